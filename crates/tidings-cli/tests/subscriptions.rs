//! Active subscriptions over real HTTP, in both protocol generations:
//! subscription events for every start and every kind of end, the
//! subscription API and its authorization, payload selection, and a list
//! that stays consistent with the events while clients come and go.

mod support;

use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;
use support::{client, Hub, Message, Stream, SECRET};
use tidings::auth::{mint, Generation, KeySource, Role, TokenRequest};

const ROOT: &str = "/.well-known/mercure/subscriptions";
/// The URL pattern selecting every subscription event.
const EVERY: &str = "/.well-known/mercure/subscriptions/*";

fn start(extra: &[&str]) -> Hub {
    let mut args = vec!["--subscriptions"];
    args.extend_from_slice(extra);
    Hub::start(&args)
}

/// A draft-08 subscriber token granting `topics` (`urlpattern:` prefix for
/// URL patterns), with a payload on its single authorization detail.
fn token08(hub: &Hub, topics: &[&str], payload: Option<Value>, ttl: Duration) -> String {
    let request = TokenRequest {
        generation: Generation::Draft08,
        role: Role::Subscriber,
        topics: topics.iter().map(|t| t.to_string()).collect(),
        ttl: Some(ttl),
        issuer: hub.origin.clone(),
        audience: hub.url.clone(),
        subject: "test".into(),
        payload,
        algorithm: "HS256".parse().unwrap(),
    };
    mint(&request, &KeySource::Secret(SECRET.into())).unwrap()
}

fn token07(hub: &Hub, selectors: &[&str], payload: Option<Value>) -> String {
    let request = TokenRequest {
        generation: Generation::Draft07,
        role: Role::Subscriber,
        topics: selectors.iter().map(|t| t.to_string()).collect(),
        ttl: Some(Duration::from_secs(3600)),
        issuer: hub.origin.clone(),
        audience: hub.url.clone(),
        subject: "test".into(),
        payload,
        algorithm: "HS256".parse().unwrap(),
    };
    mint(&request, &KeySource::Secret(SECRET.into())).unwrap()
}

/// May read every subscription event and every API resource.
fn watcher_token(hub: &Hub) -> String {
    let pattern = format!("urlpattern:{EVERY}");
    token08(hub, &[ROOT, &pattern], None, Duration::from_secs(3600))
}

/// Form encoding, for query strings.
fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// RFC 6570 simple string expansion of one variable.
fn expand(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Opens an event stream with `query` and a bearer token; waits until the
/// hub has registered it.
async fn open(hub: &Hub, query: &str, token: Option<&str>) -> Stream {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = bearer
        .iter()
        .map(|b| ("authorization", b.as_str()))
        .collect();
    let mut stream = Stream::open(&hub.subscribe_url(query), &headers).await;
    assert_eq!(stream.status, 200, "{query}");
    stream.wait_registered().await;
    stream
}

/// Follows every subscription event, from `cursor` if given.
async fn watch(hub: &Hub, cursor: Option<&str>) -> Stream {
    let mut query = format!("match_urlpattern={}", encode(EVERY));
    if let Some(cursor) = cursor {
        query.push_str(&format!("&last_event_id={}", encode(cursor)));
    }
    open(hub, &query, Some(&watcher_token(hub))).await
}

fn document(message: &Message) -> Value {
    serde_json::from_str(&message.data).unwrap_or_else(|e| panic!("{e}: {}", message.data))
}

/// The next subscription event whose document satisfies `wanted`.
async fn next_where(stream: &mut Stream, wanted: impl Fn(&Value) -> bool) -> (Message, Value) {
    loop {
        let message = stream.next().await;
        let doc = document(&message);
        if wanted(&doc) {
            return (message, doc);
        }
    }
}

/// A draft-08 event about the subscription matching `source`.
fn about(source: &str, active: bool) -> impl Fn(&Value) -> bool + '_ {
    move |doc| doc["match"] == source && doc["active"] == active
}

async fn get(hub: &Hub, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = client().get(format!("{}{path}", hub.origin));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// Reading a JSON body (this reqwest has no `json` feature).
trait JsonBody {
    async fn body(self) -> Value;
}

impl JsonBody for reqwest::Response {
    async fn body(self) -> Value {
        let text = self.text().await.unwrap();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response.headers()[name].to_str().unwrap().to_string()
}

/// The `last-event-id` of a `Link: <hub>; rel="mercure"` header.
fn link_cursor(response: &reqwest::Response) -> String {
    let link = header(response, "link");
    let start = link
        .find("last-event-id=\"")
        .expect("a last-event-id attribute")
        + 15;
    link[start..][..link[start..].find('"').unwrap()].to_string()
}

fn ids(list: &Value) -> BTreeSet<String> {
    let entries = list["subscriptions"]
        .as_array()
        .expect("a subscriptions array");
    entries
        .iter()
        .map(|doc| doc["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn draft08_events_announce_connect_and_disconnect() {
    let hub = start(&[]);
    let mut watcher = watch(&hub, None).await;
    let book = "https://example.com/books/1";
    let payload = json!({"name": "Alice"});
    let reader = token08(
        &hub,
        &[book],
        Some(payload.clone()),
        Duration::from_secs(3600),
    );
    let subscription = open(&hub, &format!("match={}", encode(book)), Some(&reader)).await;

    let (message, doc) = next_where(&mut watcher, about(book, true)).await;
    assert_eq!(message.kind.as_deref(), Some("mercure"));
    assert!(message.id.as_deref().unwrap().starts_with("urn:uuid:"));
    let subscriber = doc["subscriber"].as_str().unwrap().to_string();
    assert!(subscriber.starts_with("urn:uuid:"), "{subscriber}");
    let id = format!(
        "{ROOT}/exact/https%3A%2F%2Fexample.com%2Fbooks%2F1/{}",
        expand(&subscriber)
    );
    assert_eq!(
        doc,
        json!({"id": id, "type": "subscription", "match_type": "exact", "match": book,
            "subscriber": subscriber, "active": true, "payload": payload})
    );

    drop(subscription);
    let (message, doc) = next_where(&mut watcher, about(book, false)).await;
    assert_eq!(message.kind.as_deref(), Some("mercure"));
    assert_eq!(doc["id"], id);
    assert_eq!(doc["subscriber"], subscriber);
    assert_eq!(doc["payload"], payload);
}

#[tokio::test]
async fn draft07_events_and_documents_use_the_deployed_forms() {
    let hub = start(&[]);
    let template = "/.well-known/mercure/subscriptions/{topic}/{subscriber}";
    let per_topic = "/.well-known/mercure/subscriptions/{topic}";
    let watcher_token = token07(&hub, &[template, per_topic, ROOT], None);
    let mut watcher = open(
        &hub,
        &format!("topic={}", encode(template)),
        Some(&watcher_token),
    )
    .await;
    let selector = "https://example.com/{selector}";
    let payload = json!({"foo": "bar"});
    let reader = token07(&hub, &[selector], Some(payload.clone()));
    let subscription = open(&hub, &format!("topic={}", encode(selector)), Some(&reader)).await;

    let (message, doc) = next_where(&mut watcher, |doc| doc["topic"] == selector).await;
    // No SSE type: draft-07 clients read these with `onmessage`.
    assert_eq!(message.kind, None);
    let subscriber = doc["subscriber"].as_str().unwrap().to_string();
    let id = format!("{ROOT}/{}/{}", expand(selector), expand(&subscriber));
    assert_eq!(
        doc,
        json!({"@context": "https://mercure.rocks/", "id": id, "type": "Subscription",
            "topic": selector, "subscriber": subscriber, "active": true, "payload": payload})
    );

    let list = get(&hub, ROOT, Some(&watcher_token)).await;
    assert_eq!(list.status(), 200);
    assert_eq!(header(&list, "content-type"), "application/ld+json");
    let list: Value = list.body().await;
    assert_eq!(list["@context"], "https://mercure.rocks/");
    assert_eq!(list["type"], "Subscriptions");
    assert_eq!(list["id"], ROOT);
    assert!(list["lastEventID"]
        .as_str()
        .unwrap()
        .starts_with("urn:uuid:"));
    assert!(ids(&list).contains(&id));

    let topic = get(
        &hub,
        &format!("{ROOT}/{}", expand(selector)),
        Some(&watcher_token),
    )
    .await;
    let topic: Value = topic.body().await;
    assert_eq!(topic["type"], "Subscriptions");
    assert_eq!(ids(&topic), BTreeSet::from([id.clone()]));

    let single = get(&hub, &id, Some(&watcher_token)).await;
    assert_eq!(single.status(), 200);
    let single: Value = single.body().await;
    assert_eq!(single["lastEventID"], list["lastEventID"]);
    assert_eq!(single["payload"], payload);
    assert_eq!(single["active"], true);

    drop(subscription);
    let (_, doc) = next_where(&mut watcher, |doc| {
        doc["topic"] == selector && doc["active"] == false
    })
    .await;
    assert_eq!(doc["id"], id);
}

#[tokio::test]
async fn the_api_serves_the_collection_a_matcher_and_one_subscription() {
    let hub = start(&[]);
    let token = watcher_token(&hub);
    let pattern = "https://example.com/:selector";
    let pattern_query = format!("match_urlpattern={}", encode(pattern));
    let grant = format!("urlpattern:{pattern}");
    let foo = token08(
        &hub,
        &[&grant],
        Some(json!({"foo": "bar"})),
        Duration::from_secs(3600),
    );
    let bap = token08(
        &hub,
        &[&grant],
        Some(json!({"foo": "bap"})),
        Duration::from_secs(3600),
    );
    let _first = open(&hub, &pattern_query, Some(&foo)).await;
    let second = open(&hub, &pattern_query, Some(&bap)).await;
    let _exact = open(&hub, "match=https%3A%2F%2Fexample.com%2Fa-topic", None).await;
    let root = wait_for_count(&hub, &token, 3).await;

    let response = get(&hub, ROOT, Some(&token)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "application/json");
    let cursor = link_cursor(&response);
    assert!(header(&response, "link").starts_with(&format!("<{}>; rel=\"mercure\"", hub.url)));
    assert!(
        header(&response, "link").contains("type=\"mercure\"; content-type=\"application/json\"")
    );
    assert_eq!(header(&response, "etag"), format!("\"{cursor}\""));
    assert!(header(&response, "cache-control").contains("must-revalidate"));
    let list: Value = response.body().await;
    assert_eq!(list["type"], "subscriptions");
    assert_eq!(list["id"], ROOT);
    assert_eq!(ids(&list), ids(&root));

    let unchanged = client()
        .get(format!("{}{ROOT}", hub.origin))
        .bearer_auth(&token)
        .header("if-none-match", format!("\"{cursor}\""))
        .send()
        .await
        .unwrap();
    assert_eq!(unchanged.status(), 304);

    let matcher_path = format!("{ROOT}/urlpattern/https%3A%2F%2Fexample.com%2F%3Aselector");
    let by_matcher: Value = get(&hub, &matcher_path, Some(&token)).await.body().await;
    assert_eq!(by_matcher["id"], matcher_path);
    let payloads: BTreeSet<String> = by_matcher["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["payload"]["foo"].to_string())
        .collect();
    assert_eq!(
        payloads,
        BTreeSet::from(["\"bap\"".to_string(), "\"bar\"".to_string()])
    );

    let nobody: Value = get(&hub, &format!("{ROOT}/exact/urn%3Anobody"), Some(&token))
        .await
        .body()
        .await;
    assert_eq!(nobody["subscriptions"], json!([]));

    let exact = list["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["match_type"] == "exact")
        .unwrap();
    let single = get(&hub, exact["id"].as_str().unwrap(), Some(&token)).await;
    assert_eq!(single.status(), 200);
    assert_eq!(link_cursor(&single), cursor);
    assert_eq!(&single.body().await, exact);
    assert_eq!(
        get(
            &hub,
            &format!("{matcher_path}/urn%3Auuid%3Anobody"),
            Some(&token)
        )
        .await
        .status(),
        404
    );
    assert_eq!(
        get(&hub, &format!("{ROOT}/a/b/c/d"), Some(&token))
            .await
            .status(),
        404
    );

    // An ended subscription leaves the list and its resource.
    let ended: Value = by_matcher["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["payload"]["foo"] == "bap")
        .unwrap()
        .clone();
    drop(second);
    wait_for_count(&hub, &token, 2).await;
    assert_eq!(
        get(&hub, ended["id"].as_str().unwrap(), Some(&token))
            .await
            .status(),
        404
    );
}

/// Polls the collection until it lists `count` subscriptions.
async fn wait_for_count(hub: &Hub, token: &str, count: usize) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let list: Value = get(hub, ROOT, Some(token)).await.body().await;
        if ids(&list).len() == count {
            return list;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never {count} subscriptions: {list}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_api_challenges_like_the_rest_of_the_hub() {
    let hub = start(&[]);
    let metadata = format!(
        "resource_metadata=\"{}/.well-known/oauth-protected-resource/.well-known/mercure\"",
        hub.origin
    );
    let _exact = open(&hub, "match=https%3A%2F%2Fexample.com%2Fa-topic", None).await;
    let topic_path = format!("{ROOT}/exact/https%3A%2F%2Fexample.com%2Fa-topic");

    let missing = get(&hub, ROOT, None).await;
    assert_eq!(missing.status(), 401);
    assert_eq!(
        header(&missing, "www-authenticate"),
        format!("Bearer {metadata}")
    );
    let invalid = get(&hub, ROOT, Some("not.a.token")).await;
    assert_eq!(invalid.status(), 401);
    assert!(header(&invalid, "www-authenticate").contains("error=\"invalid_token\""));

    // A token for one matcher's collection reads that and nothing else.
    let narrow = token08(&hub, &[&topic_path], None, Duration::from_secs(3600));
    assert_eq!(get(&hub, &topic_path, Some(&narrow)).await.status(), 200);
    for path in [
        ROOT.to_string(),
        format!("{ROOT}/exact/https%3A%2F%2Fexample.com%2Fother"),
    ] {
        let forbidden = get(&hub, &path, Some(&narrow)).await;
        assert_eq!(forbidden.status(), 403, "{path}");
        let challenge = header(&forbidden, "www-authenticate");
        assert!(
            challenge.contains("error=\"insufficient_scope\"") && challenge.contains(&metadata),
            "{challenge}"
        );
    }
    // Authorization comes first: an unknown subscription is 403, not 404.
    assert_eq!(
        get(&hub, &format!("{topic_path}/urn%3Auuid%3Ax"), Some(&narrow))
            .await
            .status(),
        403
    );
    assert_eq!(
        get(
            &hub,
            &format!("{topic_path}/urn%3Auuid%3Ax"),
            Some(&watcher_token(&hub))
        )
        .await
        .status(),
        404
    );
    let pattern = format!("urlpattern:{EVERY}");
    let everything_below = token08(&hub, &[&pattern], None, Duration::from_secs(3600));
    assert_eq!(get(&hub, ROOT, Some(&everything_below)).await.status(), 403);
    assert_eq!(
        get(&hub, &topic_path, Some(&everything_below))
            .await
            .status(),
        200
    );

    // Subscription events are private: a subscriber without the grant hears none.
    let mut anonymous = open(
        &hub,
        &format!("match_urlpattern={}&last_event_id=earliest", encode(EVERY)),
        None,
    )
    .await;
    let _other = open(&hub, "match=x", None).await;
    assert!(anonymous
        .next_within(Duration::from_millis(500))
        .await
        .is_none());
}

#[tokio::test]
async fn draft08_payload_is_the_first_matching_details_and_one_connection_has_one_identifier() {
    let hub = start(&[]);
    let detail = |topics: Value, payload: Value| {
        json!({"type": "https://mercure.rocks/authorization-detail", "actions": ["subscribe"],
            "topics": topics, "payload": payload})
    };
    let details = json!([
        detail(
            json!([{"match": "https://example.com/foo"}]),
            json!({"custom1": 1})
        ),
        detail(
            json!([{"match": "https://example.com/bar/:id", "match_type": "urlpattern"}]),
            json!({"custom2": 2})
        ),
        detail(json!([{"match": "*"}]), json!({"custom3": 3})),
        detail(
            json!([{"match": "https://example.com/late"}]),
            json!({"masked": true})
        ),
    ]);
    let reader = sign08(&hub, details);
    let query = [
        ("match", "https://example.com/foo"),
        ("match_urlpattern", "https://example.com/bar/:id"),
        ("match", "https://example.com/bar/7"),
        ("match", "https://example.com/late"),
    ];
    let query: Vec<String> = query
        .iter()
        .map(|(name, value)| format!("{name}={}", encode(value)))
        .collect();
    let _subscription = open(&hub, &query.join("&"), Some(&reader)).await;

    let list = wait_for_count(&hub, &watcher_token(&hub), 4).await;
    let payload_of = |source: &str| {
        let entries = list["subscriptions"].as_array().unwrap();
        entries.iter().find(|d| d["match"] == source).unwrap()["payload"].clone()
    };
    assert_eq!(payload_of("https://example.com/foo"), json!({"custom1": 1}));
    assert_eq!(
        payload_of("https://example.com/bar/:id"),
        json!({"custom2": 2})
    );
    assert_eq!(
        payload_of("https://example.com/bar/7"),
        json!({"custom2": 2})
    );
    assert_eq!(
        payload_of("https://example.com/late"),
        json!({"custom3": 3})
    );
    let subscribers: BTreeSet<&str> = list["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["subscriber"].as_str().unwrap())
        .collect();
    assert_eq!(subscribers.len(), 1, "one connection, one identifier");
}

/// A draft-08 access token with these authorization details.
fn sign08(hub: &Hub, details: Value) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({"iss": hub.origin, "aud": hub.url, "sub": "test", "client_id": hub.origin,
        "iat": now, "exp": now + 3600, "jti": "urn:uuid:payload-test", "authorization_details": details});
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.typ = Some("at+jwt".into());
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn without_the_feature_there_is_no_api_and_no_event() {
    let hub = Hub::start(&[]);
    let token = watcher_token(&hub);
    assert_eq!(get(&hub, ROOT, Some(&token)).await.status(), 404);
    let metadata: Value = get(
        &hub,
        "/.well-known/oauth-protected-resource/.well-known/mercure",
        None,
    )
    .await
    .body()
    .await;
    assert!(
        metadata.get("mercure_subscriptions").is_none(),
        "{metadata}"
    );
    let _subscription = open(&hub, "match=x", None).await;
    let mut watcher = watch(&hub, Some("earliest")).await;
    assert!(watcher
        .next_within(Duration::from_millis(500))
        .await
        .is_none());

    let on = start(&[]);
    let metadata: Value = get(
        &on,
        "/.well-known/oauth-protected-resource/.well-known/mercure",
        None,
    )
    .await
    .body()
    .await;
    assert_eq!(metadata["mercure_subscriptions"], true);
}

/// Reads the subscriber identifier the hub gave the subscription on `source`.
async fn identifier(watcher: &mut Stream, source: &str) -> String {
    let (_, doc) = next_where(watcher, about(source, true)).await;
    doc["subscriber"].as_str().unwrap().to_string()
}

/// Waits for the end of `subscriber`'s subscription on `source`.
async fn ended(watcher: &mut Stream, source: &str, subscriber: &str) {
    next_where(watcher, |doc| {
        doc["match"] == source && doc["subscriber"] == subscriber && doc["active"] == false
    })
    .await;
}

#[tokio::test]
async fn a_slow_consumer_dropped_by_the_hub_is_announced_at_once() {
    let hub = start(&["--queue-events", "8"]);
    let mut watcher = watch(&hub, None).await;
    // A client that never reads: its socket fills, then its queue overflows.
    let address = hub.origin.strip_prefix("http://").unwrap().to_string();
    let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
    let request =
        format!("GET /.well-known/mercure?match=slow HTTP/1.1\r\nHost: {address}\r\n\r\n");
    tokio::io::AsyncWriteExt::write_all(&mut socket, request.as_bytes())
        .await
        .unwrap();
    let subscriber = identifier(&mut watcher, "slow").await;

    let publisher = tokio::spawn(async move {
        let data = "x".repeat(64 * 1024);
        for _ in 0..400 {
            hub.publish("slow", &data).await;
        }
    });
    // The socket stays open: only the hub's decision ends the subscription.
    ended(&mut watcher, "slow", &subscriber).await;
    publisher.abort();
    drop(socket);
}

#[tokio::test]
async fn an_expired_token_ends_the_subscription_and_says_so() {
    let hub = start(&[]);
    let mut watcher = watch(&hub, None).await;
    let brief = token08(
        &hub,
        &["https://example.com/brief"],
        None,
        Duration::from_secs(2),
    );
    let mut subscription = open(
        &hub,
        "match=https%3A%2F%2Fexample.com%2Fbrief",
        Some(&brief),
    )
    .await;
    let subscriber = identifier(&mut watcher, "https://example.com/brief").await;
    ended(&mut watcher, "https://example.com/brief", &subscriber).await;
    assert!(subscription.ends_within(Duration::from_secs(5)).await);
}

#[tokio::test]
async fn the_maximum_lifetime_ends_subscriptions_and_history_keeps_both_events() {
    let hub = start(&["--max-lifetime", "1s"]);
    let mut subscription = open(&hub, "match=short", None).await;
    assert!(subscription.ends_within(Duration::from_secs(5)).await);
    let token = watcher_token(&hub);
    wait_for_count(&hub, &token, 0).await;
    // Watchers live no longer than anyone else: read the story from history.
    let mut replay = watch(&hub, Some("earliest")).await;
    let (_, started) = next_where(&mut replay, |doc| doc["match"] == "short").await;
    assert_eq!(started["active"], true);
    let (_, ended) = next_where(&mut replay, |doc| doc["match"] == "short").await;
    assert_eq!(ended["active"], false);
    assert_eq!(ended["subscriber"], started["subscriber"]);
}

#[tokio::test]
async fn shutdown_announces_every_end_to_watchers_still_connected() {
    let mut hub = start(&[]);
    let mut watcher = watch(&hub, None).await;
    let own = identifier(&mut watcher, EVERY).await;
    let _subscription = open(&hub, "match=staying", None).await;
    let subscriber = identifier(&mut watcher, "staying").await;

    Command::new("kill")
        .args(["-TERM", &hub.pid().to_string()])
        .status()
        .unwrap();
    let mut ends = BTreeSet::new();
    while let Some(message) = watcher.next_within(Duration::from_secs(5)).await {
        let doc = document(&message);
        assert_eq!(doc["active"], false, "{doc}");
        ends.insert(doc["subscriber"].as_str().unwrap().to_string());
    }
    assert_eq!(ends, BTreeSet::from([subscriber, own]));
    assert!(watcher.ends_within(Duration::from_secs(5)).await);
    let status = hub.child.wait().unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn shutdown_commits_every_end_before_exiting() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let mut first = start(&["--data-dir", data_dir]);
    let mut streams = Vec::new();
    for topic in ["a", "b", "c"] {
        streams.push(open(&first, &format!("match={topic}"), None).await);
    }
    Command::new("kill")
        .args(["-TERM", &first.pid().to_string()])
        .status()
        .unwrap();
    assert!(first.child.wait().unwrap().success());

    // The durable history of the next run tells the whole story.
    let second = start(&["--data-dir", data_dir]);
    let mut replay = watch(&second, Some("earliest")).await;
    let mut story = Vec::new();
    while let Some(message) = replay.next_within(Duration::from_millis(500)).await {
        let doc = document(&message);
        if doc["match"] != EVERY {
            story.push((
                doc["match"].as_str().unwrap().to_string(),
                doc["active"] == true,
            ));
        }
    }
    story.sort();
    let expected: Vec<(String, bool)> = ["a", "b", "c"]
        .iter()
        .flat_map(|topic| [(topic.to_string(), false), (topic.to_string(), true)])
        .collect();
    assert_eq!(story, expected);
    drop(streams);
}

/// 200 clients come and go while a watcher loads the list, then follows the
/// events from the list's cursor: it ends with exactly the list the API
/// gives at the end, and that list holds exactly who is still connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_and_the_events_agree_while_200_clients_come_and_go() {
    let hub = std::sync::Arc::new(start(&[]));
    let token = watcher_token(&hub);
    let clients: Vec<_> = (0..200)
        .map(|n| {
            let hub = hub.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(n % 50)).await;
                let stream = open(
                    &hub,
                    &format!("match=https%3A%2F%2Fexample.com%2Froom%2F{}", n % 10),
                    None,
                )
                .await;
                tokio::time::sleep(Duration::from_millis((n * 7) % 40)).await;
                // Every third client stays.
                (n % 3 == 0).then_some(stream)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(30)).await;

    let response = get(&hub, ROOT, Some(&token)).await;
    let cursor = link_cursor(&response);
    let mut known = ids(&response.body().await);
    let mut watcher = watch(&hub, Some(&cursor)).await;

    let mut staying = Vec::new();
    for client in clients {
        staying.extend(client.await.unwrap());
    }
    // Everyone still connected, and the watcher itself.
    let last = wait_for_count(&hub, &token, staying.len() + 1).await;
    let response = get(&hub, ROOT, Some(&token)).await;
    let end_cursor = link_cursor(&response);
    let end: BTreeSet<String> = ids(&response.body().await);
    assert_eq!(end, ids(&last));

    let mut seen = cursor;
    while seen != end_cursor {
        let message = watcher.next().await;
        let doc = document(&message);
        let id = doc["id"].as_str().unwrap().to_string();
        if doc["active"] == true {
            known.insert(id);
        } else {
            known.remove(&id);
        }
        seen = message.id.unwrap();
    }
    let missed: Vec<&String> = end.difference(&known).collect();
    let ghosts: Vec<&String> = known.difference(&end).collect();
    assert!(
        missed.is_empty() && ghosts.is_empty(),
        "missed {missed:?}, ghosts {ghosts:?}"
    );
    assert_eq!(staying.len(), 67);
}
