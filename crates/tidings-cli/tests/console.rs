//! The web console and the statistics stream, against a real hub: each
//! panel of the console in headless Chromium (`tests/browser/console.mjs`
//! types and clicks, this test checks what the page showed), who may read
//! the statistics, turning the console off, and `tidings top`.
//!
//! The browser test needs `chromium` and `node` on PATH (see
//! `support/browser.rs`); without them it skips loudly, or fails under
//! `TIDINGS_TEST_REQUIRE_ALL=1`.

mod support;

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::browser::{run_script, tools};
use support::Hub;
use tidings::auth::{Generation, Role};

const STATS: &str = "/.well-known/mercure/stats";

#[test]
fn every_panel_of_the_console_works_in_a_browser() {
    let Some(tools) = tools() else { return };
    let hub = Hub::start(&["--history", "memory", "--subscriptions"]);
    let screenshot = tempfile::Builder::new()
        .suffix(".png")
        .tempfile()
        .expect("a screenshot file");
    let spec = serde_json::json!({
        "chromium": tools.chromium,
        "origin": hub.origin,
        "hubPath": "/.well-known/mercure",
        "publisher": hub.publisher_token(),
        "reader": hub.subscriber_token(&["*"]),
        "notStats": hub.subscriber_token(&["https://example.com/secrets/1"]),
        "screenshot": screenshot.path(),
    });
    let (_, stdout) = run_script(&tools, "console.mjs", &spec);
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("no report from the page ({e}): {stdout}"));
    let step = |name: &str| -> &Value {
        let step = &report[name];
        assert!(
            step.get("error").is_none(),
            "step {name} failed: {}",
            step["error"].as_str().unwrap_or_default()
        );
        step
    };

    assert!(
        report["csp"]
            .as_str()
            .is_some_and(|csp| csp.contains("script-src 'self'")),
        "the page is served under a content security policy: {report}"
    );

    let refused = step("statsRefused");
    assert!(
        refused["before"].as_str().unwrap().contains("enter one"),
        "{refused}"
    );
    assert!(
        refused["after"].as_str().unwrap().contains("403"),
        "a token without the grant is refused with its reason: {refused}"
    );

    let live = step("statsLive");
    let subscribers = live["subscribers"].as_u64().unwrap();
    assert!(
        live["withThree"].as_u64().unwrap() >= subscribers + 3,
        "the subscriber count follows three new subscribers: {live}"
    );
    assert!(live["after"].as_u64().unwrap() <= subscribers, "{live}");
    let nodes = live["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1, "one node: {live}");
    assert!(
        nodes[0][0].as_str().unwrap().ends_with("(this node)"),
        "{live}"
    );
    assert_eq!(nodes[0][1], "ready", "{live}");
    let row: Vec<&str> = nodes[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|cell| cell.as_str().unwrap())
        .collect();
    assert_eq!(row[2], "–", "no engine lag on a local log: {live}");
    assert!(row[3].parse::<u64>().is_ok(), "subscribers: {live}");
    assert!(
        row[4].ends_with("/s") && row[5].ends_with("/s"),
        "publications and deliveries per second: {live}"
    );
    assert_eq!(row[6], "now", "{live}");

    let round_trip = step("roundTrip");
    let result = round_trip["result"].as_str().unwrap();
    let id = result.strip_prefix("Published: ").expect("an id");
    assert!(id.starts_with("urn:uuid:"), "{round_trip}");
    let event = &round_trip["event"];
    assert_eq!(event["id"], id, "the inspector shows the published event");
    assert_eq!(event["type"], "book.updated");
    assert_eq!(event["topics"], "topics: https://example.com/books/1");
    assert_eq!(
        event["data"], "{\n  \"title\": \"Dune\",\n  \"year\": 1965\n}",
        "JSON data is pretty-printed"
    );
    assert_eq!(event["private"], false);

    let refused = step("refusedPublish");
    assert!(
        refused["result"]
            .as_str()
            .unwrap()
            .starts_with("Refused: 401"),
        "a publish without a token shows the problem: {refused}"
    );

    let private = step("private");
    let private_id = private["id"].as_str().unwrap();
    let without: Vec<&str> = private["withoutToken"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert_eq!(
        without,
        ["public after"],
        "without a token the private update is not shown"
    );
    let with = private["withToken"].as_array().unwrap();
    let secret = with
        .iter()
        .find(|e| e["id"] == private_id)
        .unwrap_or_else(|| panic!("with the token, the private update is shown: {private}"));
    assert_eq!(secret["data"], "for your eyes only");
    assert_eq!(secret["private"], true, "marked private: {private}");
    assert_eq!(secret["topics"], "topics: https://example.com/secrets/1");

    let hostile = step("hostile");
    let shown = &hostile["shown"];
    assert_eq!(shown["id"], "<script>window.pwned=2</script>", "{hostile}");
    assert_eq!(shown["type"], "<b onmouseover=\"window.pwned=3\">bold</b>");
    assert_eq!(
        shown["topics"],
        "topics: https://example.com/\"><img src=x onerror=\"window.pwned=1\">"
    );
    assert_eq!(
        shown["data"],
        "<img src=x onerror=\"window.pwned=4\"><script>window.pwned=5</script>"
    );
    assert_eq!(
        hostile["injected"], 0,
        "no element made from input: {hostile}"
    );
    assert_eq!(hostile["pwned"], Value::Null, "no script ran: {hostile}");

    let subscriptions = step("subscriptions");
    let cell = |rows: &Value, text: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .any(|row| row.as_array().unwrap().iter().any(|c| c == text))
    };
    let hostile_matcher = "https://example.com/<svg onload=\"window.pwned=6\">";
    assert!(
        cell(
            &subscriptions["before"],
            "https://example.com/\"><img src=x onerror=\"window.pwned=1\">"
        ),
        "the inspector's own subscription is listed: {subscriptions}"
    );
    assert!(
        cell(&subscriptions["during"], hostile_matcher),
        "{subscriptions}"
    );
    assert!(
        !cell(&subscriptions["after"], hostile_matcher),
        "{subscriptions}"
    );
    assert_eq!(subscriptions["injected"], 0, "{subscriptions}");
    assert_eq!(subscriptions["pwned"], Value::Null, "{subscriptions}");

    let many = step("many");
    eprintln!(
        "{} events shown live in {:.1} s",
        many["count"], many["seconds"]
    );
    assert_eq!(
        many["shown"], 200,
        "the page holds 200 events at most: {many}"
    );
    assert!(
        many["newest"].as_str().unwrap().starts_with("{\n  \"n\": "),
        "the newest event first, pretty-printed: {many}"
    );
    assert_eq!(
        many["pausedHas"], false,
        "paused, the list stays still: {many}"
    );
    assert_eq!(many["resumedHas"], true, "resumed, it catches up: {many}");
    let filtered = many["filtered"].as_array().unwrap();
    assert_eq!(filtered.len(), 1, "the filter finds one event: {many}");

    step("screenshot");
    let png = std::fs::read(screenshot.path()).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    // TIDINGS_BLESS=1 refreshes the README's picture.
    if std::env::var_os("TIDINGS_BLESS").is_some_and(|value| value == "1") {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/console.png");
        std::fs::write(docs, &png).expect("write docs/console.png");
    }

    let phone = step("phone");
    assert!(
        phone["scrollWidth"].as_u64() <= phone["width"].as_u64(),
        "on a phone the page holds in its width: {phone}"
    );

    assert_eq!(report["pageErrors"], serde_json::json!([]), "{report}");
}

/// The first `data:` line of the stream at `path`, or the answer's status.
async fn first_sample(origin: &str, path: &str, token: Option<&str>) -> Result<Value, u16> {
    let mut request = support::client().get(format!("{origin}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let mut response = request.send().await.expect("request");
    if response.status() != 200 {
        return Err(response.status().as_u16());
    }
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream",
        "an event stream"
    );
    let mut text = String::new();
    let wait = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = response.chunk().await.expect("a chunk") {
            text.push_str(&String::from_utf8_lossy(&chunk));
            if let Some(line) = text.lines().find_map(|l| l.strip_prefix("data: ")) {
                return serde_json::from_str(line).expect("a JSON sample");
            }
        }
        panic!("the stream ended without a sample: {text}")
    });
    Ok(wait.await.expect("a sample within 10 s"))
}

#[tokio::test]
async fn statistics_are_for_tokens_that_grant_them() {
    let hub = Hub::start(&["--history", "memory"]);
    assert_eq!(first_sample(&hub.origin, STATS, None).await, Err(401));
    let other = hub.subscriber_token(&["https://example.com/books/1"]);
    assert_eq!(
        first_sample(&hub.origin, STATS, Some(&other)).await,
        Err(403)
    );
    assert_eq!(
        first_sample(&hub.origin, STATS, Some(&hub.publisher_token())).await,
        Err(403),
        "publishing rights do not grant the statistics"
    );
    for grant in [STATS, "*", "urlpattern:/.well-known/mercure/*"] {
        let token = hub.subscriber_token(&[grant]);
        let sample = first_sample(&hub.origin, STATS, Some(&token))
            .await
            .unwrap_or_else(|status| panic!("a token granting {grant}: {status}"));
        assert_eq!(sample["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(sample["nodes"][0]["state"], "ready");
        assert_eq!(sample["history"]["retain_events"], 100_000);
    }
    let draft07 = support::token(
        Generation::Draft07,
        Role::Subscriber,
        &[STATS],
        &hub.url,
        None,
    );
    assert!(first_sample(&hub.origin, STATS, Some(&draft07))
        .await
        .is_ok());
}

#[tokio::test]
async fn statistics_count_what_happens() {
    let hub = Hub::start(&["--history", "memory", "--stats", "public"]);
    let client = support::client();
    let _subscriber = client
        .get(hub.subscribe_url("match=https://example.com/a&match=https://example.com/b"))
        .send()
        .await
        .expect("subscribe");
    for n in 0..5 {
        hub.publish("https://example.com/a", &n.to_string()).await;
    }
    let sample = first_sample(&hub.origin, STATS, None).await.unwrap();
    assert_eq!(sample["subscribers"], 1, "{sample}");
    assert_eq!(sample["subscriptions"], 2, "{sample}");
    assert_eq!(sample["published_total"], 5, "{sample}");
    assert_eq!(sample["delivered_total"], 5, "{sample}");
    assert_eq!(sample["history"]["events"], 5, "{sample}");
    assert_eq!(sample["history"]["log"], "local", "{sample}");
    // A watcher that comes later is sent a fresh sample, not the last one
    // the hub took for an earlier watcher.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let later = first_sample(&hub.origin, STATS, None).await.unwrap();
    assert!(
        later["time_ms"].as_u64() >= Some(sample["time_ms"].as_u64().unwrap() + 2000),
        "{sample} then {later}"
    );
}

#[tokio::test]
async fn a_development_hub_shows_its_statistics_to_anyone_and_the_flags_turn_things_off() {
    let dev = Hub::start_with(&["serve", "--listen", "127.0.0.1:0", "--history", "memory"]);
    assert!(first_sample(&dev.origin, STATS, None).await.is_ok());
    let page = reqwest::get(format!("{}/", dev.origin)).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("tidings-stats-access\" content=\"public\""));

    let quiet = Hub::start(&["--history", "memory", "--console=false", "--stats", "off"]);
    for path in ["/", "/console/console.js", STATS] {
        let response = reqwest::get(format!("{}{path}", quiet.origin))
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            404,
            "{path} with the console and statistics off"
        );
    }
    // The hub itself still serves.
    quiet.publish("https://example.com/a", "x").await;

    let by_env = Hub::start_env(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--jwt-key",
            support::SECRET,
            "--history",
            "memory",
        ],
        &[("TIDINGS_CONSOLE", "false"), ("TIDINGS_STATS", "public")],
    );
    let page = reqwest::get(format!("{}/", by_env.origin)).await.unwrap();
    assert_eq!(page.status(), 404, "TIDINGS_CONSOLE=false");
    assert!(
        first_sample(&by_env.origin, STATS, None).await.is_ok(),
        "TIDINGS_STATS=public"
    );
}

/// `tidings top` with its output in a pipe, as a script would run it.
fn top(hub: &Hub, token: Option<&str>, count: &str) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tidings"));
    command.args(["top", "--hub", &hub.url, "--count", count]);
    if let Some(token) = token {
        command.args(["--token", token]);
    }
    command.output().expect("run tidings top")
}

#[tokio::test]
async fn top_prints_one_line_per_sample_when_not_on_a_terminal() {
    let hub = Hub::start(&["--history", "memory"]);
    let client = support::client();
    let _subscriber = client
        .get(hub.subscribe_url("match=https://example.com/a"))
        .send()
        .await
        .expect("subscribe");
    hub.publish("https://example.com/a", "x").await;
    let token = hub.subscriber_token(&[STATS]);
    // The hub's process stays up until both runs are done.
    let (output, refused) =
        tokio::task::spawn_blocking(move || (top(&hub, Some(&token), "3"), top(&hub, None, "1")))
            .await
            .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "one line per sample: {stdout}");
    for line in &lines {
        assert!(
            !line.contains('\x1b'),
            "no terminal codes in a pipe: {line:?}"
        );
        assert!(line.contains(" subscribers=1 "), "{line}");
        assert!(line.contains(" history_events=1 "), "{line}");
        assert!(line.contains(" state=ready "), "{line}");
    }
    let times: Vec<u64> = lines
        .iter()
        .map(|l| {
            l.strip_prefix("time=")
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(
        times.windows(2).all(|t| t[1] >= t[0] + 500),
        "samples about a second apart: {times:?}"
    );

    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("401"),
        "the refusal and its reason: {stderr}"
    );
}

crate::cluster_tests!(statistics_show_every_node_of_a_cluster);

/// Two nodes on one log, one with active subscriptions and one without:
/// each node's statistics show itself and the other, each with its own
/// state, engine lag and figures (the other's carried by its alive notes
/// through the log); a node killed turns silent. The notes reach no
/// subscriber, live or replaying, even one that may read every topic.
async fn statistics_show_every_node_of_a_cluster(engine: support::cluster::Engine) {
    use support::cluster::{Cluster, Node, PATIENCE, QUIET};
    // Alive notes every 5 s; a node unheard for 15 s is silent.
    const RENEW: Duration = Duration::from_secs(5);
    const LEASE: Duration = Duration::from_secs(15);
    let history = engine.history();
    let mut cluster = Cluster {
        nodes: vec![
            Node::start(&history, &["--stats", "public", "--subscriptions"]),
            Node::start(&history, &["--stats", "public"]),
        ],
        engine,
    };
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let everything = a.subscriber_token(&["*"]);
    let mut watcher = a.open("match=*", Some(&everything), None).await;
    let topic = "https://example.com/a";
    let _readers = [
        b.open(&format!("match={topic}"), None, None).await,
        b.open(&format!("match={topic}"), None, None).await,
    ];

    // B publishes all along, so that the rates its notes carry are not nil.
    let deadline = tokio::time::Instant::now() + PATIENCE + RENEW;
    let mut published = 0;
    let (on_a, on_b) = loop {
        published += 1;
        b.publish(topic, &format!("from b {published}")).await;
        let on_a = first_sample(&a.origin, STATS, None).await.expect("A's");
        let on_b = first_sample(&b.origin, STATS, None).await.expect("B's");
        let b_seen_from_a = &on_a["nodes"][1];
        if b_seen_from_a["subscribers"] == 2
            && b_seen_from_a["published_per_s"].as_f64() > Some(0.0)
            && b_seen_from_a["delivered_per_s"].as_f64() > Some(0.0)
            && on_b["nodes"][1]["subscribers"] == 1
        {
            break (on_a, on_b);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the nodes never showed each other's figures: {on_a}\n{on_b}\n{}",
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for (sample, subscribers, other_subscribers) in [(&on_a, 1, 2), (&on_b, 2, 1)] {
        let nodes = sample["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), 2, "{sample}");
        let (this, other) = (&nodes[0], &nodes[1]);
        assert_eq!(this["this"], true, "{sample}");
        assert_eq!(this["state"], "ready", "{sample}");
        assert!(this["lag"].is_u64(), "this node's engine lag: {sample}");
        assert_eq!(this["subscribers"], subscribers, "{sample}");
        assert_eq!(other["this"], false, "{sample}");
        assert_eq!(other["state"], "ready", "{sample}");
        assert!(
            other["lag"].is_u64(),
            "the other node's engine lag: {sample}"
        );
        assert_eq!(other["subscribers"], other_subscribers, "{sample}");
        assert!(other["published_per_s"].is_f64(), "{sample}");
        assert_eq!(other["version"], this["version"], "{sample}");
        assert!(other["seen_s_ago"].as_f64().unwrap() < 15.0, "{sample}");
        assert_ne!(this["id"], other["id"]);
    }
    assert_eq!(on_a["nodes"][0]["id"], on_b["nodes"][1]["id"]);
    let log = on_a["history"]["log"].as_str().unwrap();
    assert!(
        log.contains("redis") || log.contains("nats"),
        "the shared log: {log}"
    );

    // Nothing but what was published (and A's subscription events) reached
    // the watcher: alive notes have no data.
    let mut seen = 0;
    while let support::Next::Event(event) = watcher.poll_within(QUIET).await {
        assert!(!event.data.is_empty(), "a note was sent: {event:?}");
        seen += usize::from(event.data.starts_with("from b "));
    }
    assert_eq!(seen, published, "every publication, and nothing else");
    let mut replay = a.open("match=*", Some(&everything), Some("earliest")).await;
    let mut replayed = 0;
    while let support::Next::Event(event) = replay.poll_within(QUIET * 2).await {
        assert!(!event.data.is_empty(), "a note was replayed: {event:?}");
        replayed += usize::from(event.data.starts_with("from b "));
    }
    assert_eq!(replayed, published, "the replay holds no note either");

    cluster.nodes[1].kill();
    let a = &cluster.nodes[0];
    let deadline = tokio::time::Instant::now() + LEASE + RENEW + PATIENCE;
    let gone = loop {
        let sample = first_sample(&a.origin, STATS, None).await.expect("A's");
        if sample["nodes"][1]["state"] == "silent" {
            break sample;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a killed node never turned silent: {sample}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let silent = &gone["nodes"][1];
    assert!(
        silent["seen_s_ago"].as_f64().unwrap() >= LEASE.as_secs_f64(),
        "{gone}"
    );
    assert!(
        silent["subscribers"].is_null() && silent["lag"].is_null(),
        "a silent node's last figures no longer hold: {gone}"
    );
    assert_eq!(gone["nodes"][0]["state"], "ready", "{gone}");
}
