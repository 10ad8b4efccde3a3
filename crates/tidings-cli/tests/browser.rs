//! A real browser against a real hub: headless Chromium's native
//! `EventSource`, opened on the hub's own welcome page, while this test
//! publishes over HTTP. `tests/browser/eventsource.mjs` drives Chromium and
//! reports what each source received as JSON on stdout.
//!
//! Needs `chromium` and `node` on PATH, and playwright-core in
//! `tests/browser/node_modules` (installed here with npm when missing).
//! Without them the tests skip loudly, or fail under
//! `TIDINGS_TEST_REQUIRE_ALL=1`.

mod support;

use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::Mutex;
use std::time::Duration;
use support::programs::require_program;
use support::Hub;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser");

struct Tools {
    node: PathBuf,
    chromium: PathBuf,
}

/// The programs the browser tests need, or `None` when a test should skip.
fn tools() -> Option<Tools> {
    let chromium = require_program("chromium")?;
    let node = require_program("node")?;
    // Tests in one binary run in parallel: one npm install at a time.
    static INSTALL: Mutex<()> = Mutex::new(());
    let _installing = INSTALL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !Path::new(DIR).join("node_modules/playwright-core").is_dir() {
        let npm = require_program("npm")?;
        let status = Command::new(npm)
            .args(["install", "--no-audit", "--no-fund"])
            .current_dir(DIR)
            .stdout(Stdio::null())
            .status()
            .expect("run npm");
        assert!(status.success(), "npm install in {DIR} failed: {status}");
    }
    Some(Tools { node, chromium })
}

#[derive(Serialize)]
struct Subscription<'a> {
    name: &'a str,
    query: String,
    types: &'a [&'a str],
    /// Events to wait for before reporting.
    expect: usize,
}

#[derive(Deserialize, Debug)]
struct Report {
    subscriptions: Vec<Received>,
    #[serde(rename = "timedOut")]
    timed_out: bool,
}

#[derive(Deserialize, Debug)]
struct Received {
    name: String,
    events: Vec<Event>,
    /// `open` fires once per connection, so opens - 1 is the reconnections.
    opens: usize,
    errors: usize,
}

#[derive(Deserialize, Debug, PartialEq)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    data: String,
    id: String,
}

fn event(kind: &str, data: &str, id: &str) -> Event {
    Event {
        kind: kind.into(),
        data: data.into(),
        id: id.into(),
    }
}

/// The Node script with Chromium, its stdout read line by line.
struct Browser {
    child: Child,
    lines: Receiver<String>,
}

impl Browser {
    /// Opens the page and its sources; returns once every source is open.
    fn open(tools: &Tools, hub: &Hub, subscriptions: &[Subscription], linger: Duration) -> Browser {
        let spec = serde_json::json!({
            "chromium": tools.chromium,
            "origin": hub.origin,
            "subscriptions": subscriptions,
            "lingerMs": linger.as_millis() as u64,
            "timeoutMs": 30_000,
        });
        let mut child = Command::new(&tools.node)
            .arg("eventsource.mjs")
            .arg(spec.to_string())
            .current_dir(DIR)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let browser = Browser { child, lines };
        let ready = browser.lines.recv_timeout(Duration::from_secs(60));
        assert_eq!(
            ready.as_deref(),
            Ok("READY"),
            "the page did not open its EventSources (see stderr)"
        );
        browser
    }

    /// Waits for the script's report.
    fn report(self) -> Report {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(90))
            .expect("a report from the page");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad report {line:?}: {e}"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn query(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

async fn publish(hub: &Hub, form: &[(&str, &str)]) -> String {
    let (status, body) = hub.post(Some(&hub.publisher_token()), form).await;
    assert_eq!(status, 200, "publish {form:?}: {body}");
    body
}

#[test]
fn native_eventsource_receives_matching_events() {
    let Some(tools) = tools() else { return };
    let hub = Hub::start(&[]);
    let types = ["message", "book.updated"];
    let subscriptions = [
        Subscription {
            name: "exact",
            query: query(&[("match", "https://example.com/books/1")]),
            types: &types,
            expect: 2,
        },
        Subscription {
            name: "pattern",
            query: query(&[("match_urlpattern", "https://example.com/books/:id")]),
            types: &types,
            expect: 3,
        },
    ];
    let browser = Browser::open(&tools, &hub, &subscriptions, Duration::from_millis(500));

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (first, second, third) = runtime.block_on(async {
        let first = publish(
            &hub,
            &[
                ("topic", "https://example.com/books/1"),
                ("data", "line one\nline two"),
            ],
        )
        .await;
        let second = publish(
            &hub,
            &[
                ("topic", "https://example.com/books/2"),
                ("data", "ünïcødé ✓"),
                ("type", "book.updated"),
            ],
        )
        .await;
        // Matches neither source: it must not show up anywhere.
        publish(
            &hub,
            &[
                ("topic", "https://example.com/authors/1"),
                ("data", "not for you"),
            ],
        )
        .await;
        let third = publish(
            &hub,
            &[
                ("topic", "https://example.com/books/1"),
                ("data", "{\"n\":3}"),
                ("type", "book.updated"),
            ],
        )
        .await;
        (first, second, third)
    });

    let report = browser.report();
    assert!(!report.timed_out, "not every event arrived: {report:#?}");
    let [exact, pattern] = &report.subscriptions[..] else {
        panic!("{report:#?}")
    };
    assert_eq!(
        exact.events,
        [
            event("message", "line one\nline two", &first),
            event("book.updated", "{\"n\":3}", &third)
        ],
        "{}",
        exact.name
    );
    assert_eq!(
        pattern.events,
        [
            event("message", "line one\nline two", &first),
            event("book.updated", "ünïcødé ✓", &second),
            event("book.updated", "{\"n\":3}", &third),
        ],
        "{}",
        pattern.name
    );
}

#[test]
fn eventsource_resumes_with_last_event_id_across_cuts() {
    let Some(tools) = tools() else { return };
    // Streams end within a second; `retry: 100` brings the browser back
    // fast, and it sends Last-Event-ID by itself.
    let hub = Hub::start(&["--max-lifetime", "1s", "--retry", "100"]);
    const COUNT: usize = 60;
    let subscriptions = [Subscription {
        name: "ticker",
        // A browser that has seen no event yet has no Last-Event-ID to send,
        // so events published while its first connection is being replaced
        // would be lost (the hub may cut it within milliseconds). Asking for
        // everything from the start closes that gap; on reconnection the
        // Last-Event-ID header takes precedence over this query cursor.
        query: query(&[
            ("match", "https://example.com/ticker"),
            ("last_event_id", "earliest"),
        ]),
        types: &["message"],
        expect: COUNT,
    }];
    // Lingering past one more cut catches replays of already-seen events.
    let browser = Browser::open(&tools, &hub, &subscriptions, Duration::from_millis(1500));

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let ids: Vec<String> = runtime.block_on(async {
        let mut ids = Vec::with_capacity(COUNT);
        for n in 1..=COUNT {
            ids.push(
                publish(
                    &hub,
                    &[
                        ("topic", "https://example.com/ticker"),
                        ("data", &n.to_string()),
                    ],
                )
                .await,
            );
            // 60 events over about 4 s: several cuts land mid-run.
            tokio::time::sleep(Duration::from_millis(66)).await;
        }
        ids
    });

    let report = browser.report();
    let ticker = &report.subscriptions[0];
    eprintln!(
        "ticker: {} events over {} connections",
        ticker.events.len(),
        ticker.opens
    );
    let got: Vec<(String, String)> = ticker
        .events
        .iter()
        .map(|e| (e.data.clone(), e.id.clone()))
        .collect();
    let want: Vec<(String, String)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| ((i + 1).to_string(), id.clone()))
        .collect();
    let arrival: Vec<&str> = ticker.events.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(
        got,
        want,
        "each event exactly once and in order, as (data, id); data in arrival order: {}; \
         {} opens, {} errors, timed out: {}",
        arrival.join(" "),
        ticker.opens,
        ticker.errors,
        report.timed_out
    );
    assert!(ticker.events.iter().all(|e| e.kind == "message"));
    // Otherwise the test proved nothing about resuming.
    assert!(
        ticker.opens >= 3,
        "expected at least two reconnections, saw {} opens",
        ticker.opens
    );
}
