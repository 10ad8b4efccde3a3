//! A cluster loses nothing it acknowledged: through an engine outage, a
//! node cut off from the log, a node killed under load, and (with a
//! replicated engine) the death of the engine's leader. Every test runs
//! against both engines (`…_under_load::redis`, `…_under_load::nats`, …); the
//! nodes' logs are printed when one fails.

mod support;

use std::time::Duration;
use support::cluster::{
    data, encode, eventually, ids, Cluster, Engine, Kind, Node, Reader, Target, PATIENCE,
};
use tidings::auth::{Generation, Role};
use tokio::time::Instant;

crate::cluster_tests!(
    engine_outage_refuses_publications_then_recovers,
    a_node_cut_off_from_the_log_catches_up_in_order,
    a_node_behind_the_retention_sends_its_subscribers_back_to_the_log,
    a_node_killed_under_load_loses_nothing,
    a_killed_nodes_subscriptions_end_once,
);
crate::cluster_tests!(replicated: the_engines_leader_dies_under_load);

/// Numbers as event data.
fn numbers(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|n| n.to_string()).collect()
}

/// Publishes `range` on `topic`, round robin across the cluster's nodes.
async fn publish_round_robin(cluster: &Cluster, topic: &str, range: std::ops::Range<usize>) {
    for n in range {
        let node = &cluster[n % cluster.nodes.len()];
        node.publish_as(topic, &n.to_string(), None).await;
    }
}

/// One reader on `topic` per node, opened live.
async fn readers(cluster: &Cluster, topic: &str) -> Vec<Reader> {
    let mut readers = Vec::new();
    for node in &cluster.nodes {
        readers.push(Reader::open(node, &format!("match={topic}")).await);
    }
    readers
}

/// Each reader (resuming on its own node if its stream ends) has exactly
/// `expected`, in order, and nothing more.
async fn all_have(cluster: &Cluster, readers: &mut [Reader], expected: &[String]) {
    for (reader, node) in readers.iter_mut().zip(&cluster.nodes) {
        reader.read_resuming(node, expected.len(), PATIENCE).await;
        assert_eq!(data(&reader.events), expected, "on {}", node.url);
        reader.assert_quiet().await;
    }
}

/// With the engine gone, publications are refused with a problem document,
/// never acknowledged, and the nodes report themselves not ready; with the
/// engine back (and its data: Redis fsyncs every write, JetStream keeps its
/// files), they become ready by themselves and the open subscriptions get
/// what is published next, in order and once.
async fn engine_outage_refuses_publications_then_recovers(engine: Engine) {
    let mut cluster = Cluster::start(engine, 3, &[]);
    let mut readers = readers(&cluster, "t").await;
    publish_round_robin(&cluster, "t", 0..3).await;
    all_have(&cluster, &mut readers, &numbers(0..3)).await;

    // Refused, and so not stored: none of these may reach a subscriber.
    let refused = |target: Target, label: &'static str| async move {
        let data = format!("refused by {} {label}", target.url);
        let answer = target
            .post(&[("topic", "t"), ("data", &data)], PATIENCE)
            .await;
        let (status, body) = answer.unwrap_or_else(|error| panic!("no answer: {error}"));
        assert_eq!(status, 503, "{body}");
        let problem: serde_json::Value = serde_json::from_str(&body).expect("a problem document");
        assert_eq!(problem["status"], 503, "{body}");
    };
    cluster.engine.kill();
    refused(cluster[0].target(), "at once").await;
    for node in &cluster.nodes {
        assert!(
            node.readiness_becomes(503, PATIENCE).await,
            "{} not ready",
            node.url
        );
        refused(node.target(), "once not ready").await;
    }

    cluster.engine.restart();
    for node in &cluster.nodes {
        assert!(
            node.readiness_becomes(200, PATIENCE).await,
            "{} ready",
            node.url
        );
    }
    cluster[1].publish_as("t", "3", None).await;
    cluster[2].publish_as("t", "4", None).await;
    cluster[0].publish_as("t", "5", None).await;
    all_have(&cluster, &mut readers, &numbers(0..6)).await;
}

/// A node that stops following the log (paused with SIGSTOP, the engine
/// restarted behind its back) delivers everything published meanwhile on
/// the other nodes once it runs again, in order, nothing skipped.
async fn a_node_cut_off_from_the_log_catches_up_in_order(engine: Engine) {
    let mut cluster = Cluster::start(engine, 3, &[]);
    let mut readers = readers(&cluster, "t").await;
    publish_round_robin(&cluster, "t", 0..2).await;
    all_have(&cluster, &mut readers, &numbers(0..2)).await;

    cluster[0].pause();
    for n in 2..10 {
        cluster[1 + n % 2]
            .publish_as("t", &n.to_string(), None)
            .await;
    }
    cluster[0].resume();
    all_have(&cluster, &mut readers, &numbers(0..10)).await;

    // Again, with the engine killed and restarted while the node sleeps:
    // its connections to the engine are dead when it wakes.
    cluster[0].pause();
    cluster[1].publish_as("t", "10", None).await;
    cluster.engine.kill();
    cluster.engine.restart();
    let up = eventually(PATIENCE, || async {
        let form = [("topic", "t"), ("data", "11"), ("id", "eleven")];
        let answer = cluster[2].target().post(&form, PATIENCE).await;
        matches!(answer, Ok((200, _)))
    });
    assert!(up.await, "node 2 publishes again once the engine is back");
    for n in 12..15 {
        cluster[1].publish_as("t", &n.to_string(), None).await;
    }
    cluster[0].resume();
    all_have(&cluster, &mut readers, &numbers(0..15)).await;
}

/// A node cut off for longer than the log keeps what it missed cannot
/// deliver those events: it closes its streams instead of skipping them, and
/// a client resuming from an event that left the log is told `earliest` and
/// gets what is retained, as on a single hub. (With statistics off the
/// nodes append no alive notes, which retention would count among the five.)
async fn a_node_behind_the_retention_sends_its_subscribers_back_to_the_log(engine: Engine) {
    // JetStream pushes to a consumer ahead of its reads, Redis hands over
    // only what a read asks for.
    let pushes_ahead = matches!(engine, Engine::Nats(_) | Engine::NatsCluster(_));
    let cluster = Cluster::start(engine, 2, &["--retain-events", "5", "--stats", "off"]);
    let mut reader = Reader::open(&cluster[0], "match=t").await;
    cluster[1].publish_as("t", "0", None).await;
    assert!(reader.read_to(1, PATIENCE).await);
    let cursor = reader.cursor();

    cluster[0].pause();
    // Past the node's read in flight (it waits a second at most), so that
    // what follows is only in the log, where retention trims it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for n in 1..=20 {
        cluster[1].publish_as("t", &n.to_string(), None).await;
    }
    cluster[0].resume();

    let complete = reader.read_to(21, PATIENCE).await;
    // What the engine had already sent the node before it trimmed may
    // arrive, in order; nothing after the gap may.
    let delivered = data(&reader.events);
    assert_eq!(
        delivered,
        numbers(0..delivered.len()),
        "nothing delivered past the gap"
    );
    // Where JetStream had pushed all twenty before trimming (on a loaded
    // machine, the paused node's socket holds them), nothing was missed and
    // the stream rightly stays open.
    assert!(
        !complete || pushes_ahead,
        "the stream of a node that missed events is closed"
    );
    let mut resumed = cluster[0].open("match=t", None, Some(&cursor)).await;
    assert_eq!(
        resumed.header("mercure-last-event-id").as_deref(),
        Some("earliest")
    );
    let retained: Vec<String> = resumed.take(5).await.into_iter().map(|m| m.data).collect();
    assert_eq!(retained, numbers(16..21));
}

/// An engine that loses its data starts the order over: every node notices
/// the log's newest position going back, closes its streams so that clients
/// resume, and delivers the new log's events; a cursor from the old log
/// answers `earliest`. (Redis: its stream is created again by the next
/// append. A JetStream stream deleted under running nodes is created again
/// only when a node starts.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_starts_over_sends_subscribers_back() {
    let Some(engine) = Engine::start(Kind::Redis) else {
        return;
    };
    let mut cluster = Cluster::start(engine, 2, &[]);
    let mut reader = Reader::open(&cluster[0], "match=t").await;
    cluster[1].publish_as("t", "0", None).await;
    cluster[1].publish_as("t", "1", None).await;
    assert!(reader.read_to(2, PATIENCE).await);
    let cursor = reader.cursor();

    cluster.engine.flush();
    let ended = !reader.read_to(3, PATIENCE).await;
    assert!(
        ended,
        "the stream of a node whose log started over is closed"
    );
    cluster[1].publish_as("t", "new", None).await;
    let mut resumed = cluster[0].open("match=t", None, Some(&cursor)).await;
    assert_eq!(
        resumed.header("mercure-last-event-id").as_deref(),
        Some("earliest")
    );
    let first = resumed.take(1).await.remove(0);
    assert_eq!(first.data, "new");
}

/// A node started while its engine is down waits for it instead of
/// exiting, and serves once the engine is up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_started_before_its_engine_waits_for_it() {
    let Some(mut engine) = Engine::start(Kind::Redis) else {
        return;
    };
    engine.kill();
    let history = engine.history();
    let starting = std::thread::spawn(move || Node::start(&history, &[]));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !starting.is_finished(),
        "the node did not wait for its engine"
    );
    engine.restart();
    let node = tokio::task::spawn_blocking(move || starting.join().expect("the node starts"))
        .await
        .unwrap();
    let mut reader = Reader::open(&node, "match=t").await;
    node.publish_as("t", "up", None).await;
    assert!(reader.read_to(1, PATIENCE).await);
    assert_eq!(data(&reader.events), ["up"]);
}

/// What a publisher got through.
struct Load {
    /// The numbers acknowledged, in order.
    acknowledged: Vec<usize>,
    /// Why it stopped before the end, if it did.
    gave_up: Option<String>,
}

/// Publishes numbered events with client ids, round robin across `targets`;
/// a publication refused or unanswered is tried again on the next node with
/// the same id, for up to `patience`, after which the publisher gives up.
async fn publish_load(targets: Vec<Target>, count: usize, patience: Duration) -> Load {
    let mut acknowledged = Vec::new();
    for n in 0..count {
        let (id, data) = (format!("load-{n}"), n.to_string());
        let form = [
            ("topic", "load"),
            ("id", id.as_str()),
            ("data", data.as_str()),
        ];
        let deadline = Instant::now() + patience;
        let mut attempts = Vec::new();
        for target in targets.iter().cycle().skip(n) {
            match target.post(&form, Duration::from_secs(5)).await {
                Ok((200, body)) => {
                    assert_eq!(body, id, "a retry is answered with the id");
                    acknowledged.push(n);
                    break;
                }
                answer => attempts.push(format!("{}: {answer:?}", target.url)),
            }
            if Instant::now() > deadline {
                let gave_up = format!("{id} never acknowledged: {attempts:#?}");
                return Load {
                    acknowledged,
                    gave_up: Some(gave_up),
                };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Load {
        acknowledged,
        gave_up: None,
    }
}

/// Numbers in event data.
fn parsed(events: &[String]) -> Vec<usize> {
    events
        .iter()
        .map(|n| n.parse().expect("a number"))
        .collect()
}

/// A node SIGKILLed while publishers and a reader use it: publishers retry
/// elsewhere with the same ids, the reader resumes on another node with its
/// `Last-Event-ID`, and in the end the reader has every acknowledged event
/// once, in order, and the log holds each id once. The node, restarted,
/// serves the cluster again.
async fn a_node_killed_under_load_loses_nothing(engine: Engine) {
    const COUNT: usize = 300;
    let mut cluster = Cluster::start(engine, 3, &[]);
    let mut reader = Reader::open(&cluster[0], "match=load").await;
    let load = tokio::spawn(publish_load(cluster.targets(), COUNT, PATIENCE));
    assert!(
        reader.read_to(COUNT / 3, PATIENCE).await,
        "node 0 serves until killed"
    );
    cluster[0].kill();
    assert!(
        !reader.read_to(COUNT, PATIENCE).await,
        "the stream ends with its node"
    );
    reader.resume(&cluster[1]).await;
    let load = load.await.expect("the publisher");
    assert_eq!(load.gave_up, None, "publishers carry on on the other nodes");
    reader.read_resuming(&cluster[1], COUNT, PATIENCE).await;

    let expected = numbers(0..COUNT);
    assert_eq!(
        parsed(&expected),
        load.acknowledged,
        "every publication acknowledged"
    );
    assert_eq!(data(&reader.events), expected, "once each, in order");
    reader.assert_quiet().await;
    let last = (COUNT - 1).to_string();
    let history = cluster[2].history_through("match=load", &last).await;
    let stored: Vec<String> = (0..COUNT).map(|n| format!("load-{n}")).collect();
    assert_eq!(ids(&history), stored, "each id stored once, in order");

    cluster[0].restart();
    let mut rejoined = Reader::open(&cluster[0], "match=after").await;
    cluster[1].publish_as("after", "back", None).await;
    assert!(rejoined.read_to(1, PATIENCE).await);
    assert_eq!(data(&rejoined.events), ["back"]);
}

/// A replicated engine (Redis under Sentinel with `replicas=1`, three NATS
/// servers with `replicas=3`) whose leader is killed under load: the nodes
/// follow the log through another server by themselves, and no acknowledged
/// event is lost or stored twice. NATS keeps a quorum (two of three), so
/// publishing carries on; the new Redis primary has no replica left, so
/// publications are refused rather than acknowledged on one copy.
async fn the_engines_leader_dies_under_load(engine: Engine) {
    const COUNT: usize = 300;
    let mut cluster = Cluster::start(engine, 2, &[]);
    let mut reader = Reader::open(&cluster[0], "match=load").await;
    let load = tokio::spawn(publish_load(cluster.targets(), COUNT, PATIENCE / 2));
    assert!(reader.read_to(COUNT / 3, PATIENCE).await);
    cluster.engine.kill_leader();
    let load = load.await.expect("the publisher");
    if cluster.kind() == Kind::Nats {
        assert_eq!(
            load.gave_up, None,
            "the nodes publish through the new leader"
        );
    }

    // Refused publications may be in the log too (Redis took them, its
    // replica did not); acknowledged ones must.
    let Some(last) = load.acknowledged.last() else {
        panic!("nothing acknowledged");
    };
    let stored = data(
        &cluster[1]
            .history_through("match=load", &last.to_string())
            .await,
    );
    let numbers = parsed(&stored);
    assert!(
        numbers.is_sorted_by(|a, b| a < b),
        "each once, in order: {numbers:?}"
    );
    let missing: Vec<_> = load
        .acknowledged
        .iter()
        .filter(|n| !numbers.contains(n))
        .collect();
    assert!(missing.is_empty(), "acknowledged, then lost: {missing:?}");
    reader
        .read_resuming(&cluster[0], stored.len(), PATIENCE)
        .await;
    assert_eq!(
        data(&reader.events),
        stored,
        "the reader follows the new leader"
    );
}

/// A node's lease runs out 15 to 20 s after it goes silent; this allows for
/// a busy machine.
const LEASE_PATIENCE: Duration = Duration::from_secs(45);

/// With `--subscriptions`, the subscriptions of a node that dies without a
/// goodbye are announced ended by the survivors, once each however many
/// survivors announce them, and leave every survivor's list.
async fn a_killed_nodes_subscriptions_end_once(engine: Engine) {
    const EVERY: &str = "/.well-known/mercure/subscriptions/*";
    let mut cluster = Cluster::start(engine, 3, &["--subscriptions"]);
    let token = |node: &support::cluster::Node| {
        let pattern = format!("urlpattern:{EVERY}");
        support::token(
            Generation::Draft08,
            Role::Subscriber,
            &[&pattern],
            &node.url,
            None,
        )
    };
    let query = format!("match_urlpattern={}", encode(EVERY));
    let mut watcher = cluster[0]
        .open(&query, Some(&token(&cluster[0])), None)
        .await;
    let _doomed = cluster[1].open("match=doomed", None, None).await;
    let (_, started) = changes_until(&mut watcher, "doomed", true, PATIENCE).await;

    cluster[1].kill();
    let (before, ended) = changes_until(&mut watcher, "doomed", false, LEASE_PATIENCE).await;
    assert_eq!(started["id"], ended["id"]);
    assert!(!before.contains(&("doomed".into(), false)), "{before:?}");
    // The other survivor's announcement of the same end is not a second one.
    let after = changes_for(&mut watcher, Duration::from_secs(8)).await;
    assert!(
        !after.contains(&("doomed".into(), false)),
        "ended twice: {after:?}"
    );
}

/// The `(match, active)` of subscription events until the one about
/// `topic` turning `active`, which is returned with them as its document.
async fn changes_until(
    stream: &mut support::Stream,
    topic: &str,
    active: bool,
    wait: Duration,
) -> (Vec<(String, bool)>, serde_json::Value) {
    let deadline = Instant::now() + wait;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(event) = stream.next_within(left).await else {
            panic!("no event saying {topic} turned active={active} within {wait:?}: {seen:?}");
        };
        let doc: serde_json::Value = serde_json::from_str(&event.data).expect("JSON");
        if doc["match"] == topic && doc["active"] == active {
            return (seen, doc);
        }
        seen.push((
            doc["match"].as_str().unwrap_or("").into(),
            doc["active"] == true,
        ));
    }
}

/// The `(match, active)` of subscription events that arrive within `wait`.
async fn changes_for(stream: &mut support::Stream, wait: Duration) -> Vec<(String, bool)> {
    let deadline = Instant::now() + wait;
    let mut seen = Vec::new();
    while let Some(event) = stream
        .next_within(deadline.saturating_duration_since(Instant::now()))
        .await
    {
        let doc: serde_json::Value = serde_json::from_str(&event.data).expect("JSON");
        seen.push((
            doc["match"].as_str().unwrap_or("").into(),
            doc["active"] == true,
        ));
    }
    seen
}
