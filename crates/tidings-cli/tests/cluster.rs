//! A cluster behaves as one hub: several `tidings serve` processes on one
//! Redis stream or JetStream stream deliver the same events in the same
//! order, resume each other's cursors, store a client id once, apply one
//! retention, and share the list of active subscriptions. Every test runs
//! against both engines (`one_hub::redis`, `one_hub::nats`, …).

mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use support::cluster::{data, encode, ids, Cluster, Engine, Node, Reader, PATIENCE, QUIET};
use support::{Message, Stream};
use tidings::auth::{Generation, Role};

crate::cluster_tests!(
    one_hub,
    cursors_resume_on_any_node,
    a_client_id_is_stored_once_cluster_wide,
    retention_is_the_logs,
    subscriptions_are_seen_cluster_wide,
    a_node_started_later_lists_earlier_subscriptions,
);

const BOOK: &str = "https://example.com/books/1";
const OTHER_BOOK: &str = "https://example.com/books/2";
const AUTHOR: &str = "https://example.com/authors/1";
const SECRET_TOPIC: &str = "https://example.com/secret/1";
/// Selects every topic above.
const EVERYTHING: &str = "https://example.com/*";

/// Reads exactly `n` events, then checks that no other comes.
async fn exactly(stream: &mut Stream, n: usize) -> Vec<String> {
    let events = stream.take(n).await;
    if let Some(extra) = stream.next_within(QUIET).await {
        panic!("after {:?}, an extra event {extra:?}", data(&events));
    }
    data(&events)
}

/// Which topic publication `n` of the mix goes to; every fifth is private.
fn topic_of(n: usize) -> (&'static str, bool) {
    match n % 5 {
        0 | 3 => (BOOK, false),
        1 => (OTHER_BOOK, false),
        2 => (AUTHOR, false),
        _ => (SECRET_TOPIC, true),
    }
}

/// Three subscribers per node: every public topic anonymously; an exact
/// topic, a URL pattern or a draft-07 template (one per node); and the
/// private topic with a token granting it, or, on the last node, everything
/// with a token that grants other topics only.
async fn one_hub(engine: Engine) {
    let cluster = Cluster::start(engine, 3, &[]);
    let books_pattern = format!("match_urlpattern={}", encode("https://example.com/books/*"));
    let books_template = format!("topic={}", encode("https://example.com/books/{id}"));
    let filters = [
        format!("match={}", encode(BOOK)),
        books_pattern,
        books_template,
    ];
    let mut everything = Vec::new();
    let mut filtered = Vec::new();
    let mut private = Vec::new();
    for (node, filter) in cluster.nodes.iter().zip(&filters) {
        let all = format!("match_urlpattern={}", encode(EVERYTHING));
        everything.push(node.open(&all, None, None).await);
        filtered.push(node.open(filter, None, None).await);
    }
    for node in &cluster.nodes[..2] {
        let granted = node.subscriber_token(&[SECRET_TOPIC]);
        let query = format!("match={}", encode(SECRET_TOPIC));
        private.push(node.open(&query, Some(&granted), None).await);
    }
    let not_granted = cluster[2].subscriber_token(&[BOOK, OTHER_BOOK, AUTHOR]);
    let all = format!("match_urlpattern={}", encode(EVERYTHING));
    let mut ungranted = cluster[2].open(&all, Some(&not_granted), None).await;

    // Each node publishes its share at once with the others; the log orders.
    const PER_NODE: usize = 20;
    let publishers = cluster
        .nodes
        .iter()
        .enumerate()
        .map(|(i, node)| async move {
            for k in 0..PER_NODE {
                let n = k * 3 + i;
                let (topic, private) = topic_of(n);
                let n = n.to_string();
                let mut form = vec![("topic", topic), ("data", n.as_str())];
                if private {
                    form.push(("private", "on"));
                }
                let (status, body) = node.post(Some(&node.publisher_token()), &form).await;
                assert_eq!(status, 200, "{body}");
            }
        });
    futures_util::future::join_all(publishers).await;

    let public: Vec<usize> = (0..3 * PER_NODE).filter(|&n| !topic_of(n).1).collect();
    let order = exactly(&mut everything[0], public.len()).await;
    for stream in &mut everything[1..] {
        assert_eq!(
            exactly(stream, public.len()).await,
            order,
            "every node, one order"
        );
    }
    let numbers: Vec<usize> = order.iter().map(|n| n.parse().unwrap()).collect();
    assert_eq!(
        numbers.iter().copied().collect::<BTreeSet<_>>(),
        public.iter().copied().collect(),
        "every public event, none private: {numbers:?}"
    );
    for i in 0..3 {
        let mine: Vec<usize> = numbers.iter().copied().filter(|n| n % 3 == i).collect();
        assert!(
            mine.is_sorted(),
            "node {i}'s publications in its order: {mine:?}"
        );
    }
    let selected = |wanted: &[&str]| -> Vec<String> {
        order
            .iter()
            .filter(|n| wanted.contains(&topic_of(n.parse().unwrap()).0))
            .cloned()
            .collect()
    };
    let exact = selected(&[BOOK]);
    let books = selected(&[BOOK, OTHER_BOOK]);
    assert_eq!(
        exactly(&mut filtered[0], exact.len()).await,
        exact,
        "match="
    );
    assert_eq!(
        exactly(&mut filtered[1], books.len()).await,
        books,
        "match_urlpattern="
    );
    assert_eq!(
        exactly(&mut filtered[2], books.len()).await,
        books,
        "draft-07 topic="
    );

    let secrets = (0..3 * PER_NODE).filter(|&n| topic_of(n).1).count();
    let first = exactly(&mut private[0], secrets).await;
    assert_eq!(
        exactly(&mut private[1], secrets).await,
        first,
        "same private order"
    );
    assert_eq!(
        exactly(&mut ungranted, public.len()).await,
        order,
        "no private event"
    );
}

/// A cursor taken on one node (an event's id, or the bare opening `id:`)
/// resumes on every other node with exactly what was missed, and every node
/// replays the same history.
async fn cursors_resume_on_any_node(engine: Engine) {
    let cluster = Cluster::start(engine, 3, &[]);
    for n in 0..3 {
        cluster[n].publish_as("t", &n.to_string(), None).await;
    }
    let mut live = Reader::open(&cluster[0], "match=t").await;
    let opening = live.cursor();
    for n in 3..6 {
        cluster[n % 3].publish_as("t", &n.to_string(), None).await;
    }
    assert!(live.read_to(3, PATIENCE).await);
    assert_eq!(data(&live.events), ["3", "4", "5"]);
    let taken = live.events[1].id.clone().expect("an id");
    for n in 6..9 {
        cluster[2].publish_as("t", &n.to_string(), None).await;
    }

    let missed = |from: usize| (from..9).map(|n| n.to_string()).collect::<Vec<_>>();
    for (cursor, from) in [(&taken, 5), (&opening, 3)] {
        for node in &cluster.nodes[1..] {
            let mut resumed = node.open("match=t", None, Some(cursor)).await;
            assert_eq!(
                resumed.header("mercure-last-event-id").as_ref(),
                Some(cursor)
            );
            assert_eq!(
                exactly(&mut resumed, 9 - from).await,
                missed(from),
                "from {cursor}"
            );
        }
    }

    let mut earliest = cluster[1].open("match=t", None, Some("earliest")).await;
    assert_eq!(
        earliest.header("mercure-last-event-id").as_deref(),
        Some("earliest")
    );
    assert_eq!(exactly(&mut earliest, 9).await, missed(0));
    let history = cluster[0].history_through("match=t", "8").await;
    assert_eq!(data(&history), missed(0));
    for node in &cluster.nodes[1..] {
        assert_eq!(
            ids(&node.history_through("match=t", "8").await),
            ids(&history)
        );
    }
}

/// The same client id, published on two nodes one after the other or at the
/// same time, is answered with that id on both, delivered and stored once.
async fn a_client_id_is_stored_once_cluster_wide(engine: Engine) {
    let cluster = Cluster::start(engine, 3, &[]);
    let mut live = Vec::new();
    for node in &cluster.nodes {
        live.push(node.open("match=t", None, None).await);
    }
    assert_eq!(post(&cluster[0], "once", "0").await, (200, "once".into()));
    assert_eq!(
        post(&cluster[1], "once", "retry").await,
        (200, "once".into())
    );
    let (a, b) = tokio::join!(
        post(&cluster[0], "racing", "1"),
        post(&cluster[1], "racing", "1")
    );
    assert_eq!((a, b), ((200, "racing".into()), (200, "racing".into())));
    cluster[2].publish_as("t", "2", Some("end")).await;

    for stream in &mut live {
        assert_eq!(exactly(stream, 3).await, ["0", "1", "2"]);
    }
    for node in &cluster.nodes {
        assert_eq!(
            ids(&node.history_through("match=t", "2").await),
            ["once", "racing", "end"]
        );
    }
}

async fn post(node: &Node, id: &str, data: &str) -> (u16, String) {
    let form = [("topic", "t"), ("id", id), ("data", data)];
    node.post(Some(&node.publisher_token()), &form).await
}

/// `--retain-events 5` on every node: a cursor that left the log resumes
/// with `earliest` and the five retained events, on any node. (With
/// statistics off the nodes append no alive notes, which retention would
/// count among the five.)
async fn retention_is_the_logs(engine: Engine) {
    let cluster = Cluster::start(engine, 3, &["--retain-events", "5", "--stats", "off"]);
    let gone = cluster[0].publish_as("t", "0", None).await;
    for n in 1..12 {
        cluster[n % 3].publish_as("t", &n.to_string(), None).await;
    }
    let retained: Vec<String> = (7..12).map(|n| n.to_string()).collect();
    for node in &cluster.nodes {
        let mut stream = node.open("match=t", None, Some(&gone)).await;
        assert_eq!(
            stream.header("mercure-last-event-id").as_deref(),
            Some("earliest")
        );
        assert_eq!(exactly(&mut stream, 5).await, retained, "on {}", node.url);
        assert_eq!(data(&node.history_through("match=t", "11").await), retained);
    }
}

const SUBSCRIPTIONS: &str = "/.well-known/mercure/subscriptions";

/// May read every subscription event and the subscription API on `node`.
fn watcher_token(node: &Node) -> String {
    let every = format!("urlpattern:{SUBSCRIPTIONS}/*");
    support::token(
        Generation::Draft08,
        Role::Subscriber,
        &[SUBSCRIPTIONS, &every],
        &node.url,
        None,
    )
}

/// Follows every subscription event on `node`, from `cursor` if given.
async fn watch(node: &Node, cursor: Option<&str>) -> Stream {
    let query = format!("match_urlpattern={}", encode(&format!("{SUBSCRIPTIONS}/*")));
    node.open(&query, Some(&watcher_token(node)), cursor).await
}

/// The next subscription event whose document says `topic` turned `active`.
async fn next_about(stream: &mut Stream, topic: &str, active: bool) -> Value {
    loop {
        let event = stream.next().await;
        let doc: Value = serde_json::from_str(&event.data).expect("a JSON document");
        if doc["match"] == topic && doc["active"] == active {
            return doc;
        }
    }
}

/// The subscription API on `node`: the active subscriptions' documents
/// and the cursor read with them.
async fn list(node: &Node) -> (Vec<Value>, String) {
    let response = support::client()
        .get(format!("{}{SUBSCRIPTIONS}", node.origin))
        .bearer_auth(watcher_token(node))
        .send()
        .await
        .expect("the subscription API");
    let link = response.headers()["link"].to_str().unwrap().to_string();
    let cursor = link
        .split("last-event-id=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("a cursor in {link}"))
        .to_string();
    let body: Value = serde_json::from_str(&response.text().await.unwrap()).expect("JSON");
    let docs = body["subscriptions"]
        .as_array()
        .unwrap_or_else(|| panic!("a list in {body}"))
        .clone();
    (docs, cursor)
}

/// What a subscription event says: which matcher turned active or not.
fn change(event: &Message) -> (String, bool) {
    let doc: Value = serde_json::from_str(&event.data).expect("a JSON document");
    (
        doc["match"].as_str().unwrap().to_string(),
        doc["active"] == true,
    )
}

/// With `--subscriptions` everywhere, a subscription's start and end on one
/// node are events on every node, and every node's API lists them, with a
/// cursor from which the events follow without a gap.
async fn subscriptions_are_seen_cluster_wide(engine: Engine) {
    let cluster = Cluster::start(engine, 3, &["--subscriptions"]);
    let mut watcher = watch(&cluster[0], None).await;
    let query = format!("match={}", encode(BOOK));
    let on_b = cluster[1].open(&query, None, None).await;
    let started = next_about(&mut watcher, BOOK, true).await;
    drop(on_b);
    let ended = next_about(&mut watcher, BOOK, false).await;
    assert_eq!(started["id"], ended["id"]);

    let held_on_b = cluster[1].open(&query, None, None).await;
    let held = next_about(&mut watcher, BOOK, true).await["id"].clone();
    let (listed, cursor) = list(&cluster[2]).await;
    let watching = format!("{SUBSCRIPTIONS}/*");
    assert!(
        listed.iter().any(|doc| doc["id"] == held),
        "{held} (on B) in {listed:?}"
    );
    assert!(
        listed.iter().any(|doc| doc["match"] == watching.as_str()),
        "the watcher (on A) in {listed:?}"
    );
    assert_eq!(listed.len(), 2, "{listed:?}");

    // What changes after the list follows from its cursor, and nothing before.
    let mut follower = watch(&cluster[2], Some(&cursor)).await;
    let on_a = cluster[0]
        .open(&format!("match={}", encode(OTHER_BOOK)), None, None)
        .await;
    drop(held_on_b);
    let changes: BTreeSet<(String, bool)> = follower.take(3).await.iter().map(change).collect();
    let expected = [
        (watching, true),
        (OTHER_BOOK.into(), true),
        (BOOK.into(), false),
    ];
    assert_eq!(changes, expected.into_iter().collect());
    assert_eq!(follower.next_within(QUIET).await, None);
    drop(on_a);
}

/// A node that joins the cluster later learns the active subscriptions from
/// the log: its API lists those held on the others since before it started,
/// and not those that already ended.
async fn a_node_started_later_lists_earlier_subscriptions(engine: Engine) {
    let mut cluster = Cluster::start(engine, 2, &["--subscriptions"]);
    let mut watcher = watch(&cluster[0], None).await;
    let ended = cluster[1]
        .open(&format!("match={}", encode(OTHER_BOOK)), None, None)
        .await;
    next_about(&mut watcher, OTHER_BOOK, true).await;
    drop(ended);
    next_about(&mut watcher, OTHER_BOOK, false).await;
    let _held = cluster[1]
        .open(&format!("match={}", encode(BOOK)), None, None)
        .await;
    let held = next_about(&mut watcher, BOOK, true).await["id"].clone();

    cluster
        .nodes
        .push(Node::start(&cluster.engine.history(), &["--subscriptions"]));
    let (listed, _) = list(&cluster[2]).await;
    let watching = format!("{SUBSCRIPTIONS}/*");
    let mut matches: Vec<&str> = listed
        .iter()
        .map(|doc| doc["match"].as_str().unwrap())
        .collect();
    matches.sort();
    assert_eq!(matches, [watching.as_str(), BOOK], "{listed:?}");
    assert!(
        listed.iter().any(|doc| doc["id"] == held),
        "{held} in {listed:?}"
    );
}
