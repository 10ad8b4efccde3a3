//! A real browser against a real hub: headless Chromium's native
//! `EventSource`, opened on the hub's own page (the console), while this test
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
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};
use support::browser::{tools, Tools, DIR};
use support::Hub;

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
    /// What the page and its sources were served over.
    protocol: String,
}

#[derive(Deserialize, Debug)]
struct Received {
    name: String,
    events: Vec<Event>,
    /// `open` fires once per connection, so opens - 1 is the reconnections.
    opens: usize,
    errors: usize,
    /// The source gave up reconnecting.
    #[serde(default)]
    closed: bool,
}

#[derive(Deserialize, Debug, PartialEq)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    data: String,
    id: String,
}

/// Asserts that `source` received the events numbered 1, 2, … with the
/// `ids` the hub answered their publications with: each exactly once, in
/// order, as plain messages.
fn assert_numbered_once_in_order(source: &Received, ids: &[String], timed_out: bool) {
    let got: Vec<(&str, &str)> = source
        .events
        .iter()
        .map(|e| (e.data.as_str(), e.id.as_str()))
        .collect();
    let numbers: Vec<String> = (1..=ids.len()).map(|n| n.to_string()).collect();
    let want: Vec<(&str, &str)> = numbers
        .iter()
        .zip(ids)
        .map(|(n, id)| (n.as_str(), id.as_str()))
        .collect();
    let arrival: Vec<&str> = source.events.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(
        got,
        want,
        "each event exactly once and in order, as (data, id); data in arrival order: {}; \
         {} opens, {} errors, closed: {}, timed out: {timed_out}",
        arrival.join(" "),
        source.opens,
        source.errors,
        source.closed,
    );
    assert!(source.events.iter().all(|e| e.kind == "message"));
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
    /// How long the report may take.
    wait: Duration,
}

impl Browser {
    /// Opens the page and its sources; returns once every source is open.
    fn open(tools: &Tools, hub: &Hub, subscriptions: &[Subscription], linger: Duration) -> Browser {
        Browser::open_for(
            tools,
            &hub.origin,
            subscriptions,
            linger,
            Duration::from_secs(30),
        )
    }

    /// Like `open`, on the page at `origin` (a hub's, or a proxy's in front
    /// of hubs), waiting up to `timeout` for every expected event.
    fn open_for(
        tools: &Tools,
        origin: &str,
        subscriptions: &[Subscription],
        linger: Duration,
        timeout: Duration,
    ) -> Browser {
        let spec = serde_json::json!({
            "chromium": tools.chromium,
            "origin": origin,
            "subscriptions": subscriptions,
            "lingerMs": linger.as_millis() as u64,
            "timeoutMs": timeout.as_millis() as u64,
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
        let browser = Browser {
            child,
            lines,
            wait: timeout + linger + Duration::from_secs(60),
        };
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
            .recv_timeout(self.wait)
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
    assert_numbered_once_in_order(ticker, &ids, report.timed_out);
    // Otherwise the test proved nothing about resuming.
    assert!(
        ticker.opens >= 3,
        "expected at least two reconnections, saw {} opens",
        ticker.opens
    );
}

const RESTART_TOPIC: &str = "https://example.com/restart";

/// A hub at a fixed address keeping durable history in `data_dir`, so the
/// hub started again after a restart has the same URL, origin and history.
fn durable_hub(listen: &str, data_dir: &Path) -> Hub {
    Hub::start_with(&[
        "serve",
        "--listen",
        listen,
        "--jwt-key",
        support::SECRET,
        "--log",
        "warn",
        "--history",
        "redb",
        "--data-dir",
        data_dir.to_str().expect("a UTF-8 path"),
        // The browser tries again 200 ms after losing the hub.
        "--retry",
        "200",
    ])
}

/// Publishes numbered events, each tried until the hub answers 200: every
/// id kept is of an event the hub acknowledged as stored.
struct Publisher {
    client: reqwest::Client,
    url: String,
    token: String,
    /// The id of event n at n - 1.
    ids: Vec<String>,
    /// Each failed attempt.
    failures: Vec<String>,
}

impl Publisher {
    /// Publishes events `range`, one after the other.
    async fn publish(&mut self, range: std::ops::RangeInclusive<usize>) {
        for n in range {
            let id = self.until_stored(n).await;
            self.ids.push(id);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn until_stored(&mut self, n: usize) -> String {
        let body = query(&[("topic", RESTART_TOPIC), ("data", &n.to_string())]);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let attempt = self
                .client
                .post(&self.url)
                .header("content-type", "application/x-www-form-urlencoded")
                .bearer_auth(&self.token)
                .body(body.clone())
                .send()
                .await;
            match attempt {
                Ok(response) if response.status() == 200 => {
                    // A 200 without its body leaves the id unknown; trying
                    // again would store the event twice.
                    return response
                        .text()
                        .await
                        .unwrap_or_else(|e| panic!("event {n}: a 200 without its id: {e}"));
                }
                Ok(response) => self
                    .failures
                    .push(format!("event {n}: status {}", response.status())),
                Err(error) if error.is_connect() => {
                    self.failures.push(format!("event {n}: no connection"))
                }
                Err(error) => self.failures.push(format!("event {n}: {error:?}")),
            }
            assert!(
                Instant::now() < deadline,
                "event {n} still not stored after a minute: {:?}",
                self.failures
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A browser subscribed on the hub's own page while the hub is stopped with
/// `signal` and started again on the same port and data directory, with
/// publishes before, during and after: every acknowledged event arrives
/// once, in order. The subscription has no `last_event_id`: the hub opens
/// every stream with an `id:` field holding the subscriber's cursor, so the
/// browser always has a Last-Event-ID to resume from.
fn eventsource_resumes_across_a_hub_restart(signal: libc::c_int, name: &str) {
    let Some(tools) = tools() else { return };
    const BEFORE: usize = 10;
    const DURING: usize = 10;
    const AFTER: usize = 10;
    const COUNT: usize = BEFORE + DURING + AFTER;
    // How long the hub stays down once it has exited.
    const DOWN: Duration = Duration::from_millis(500);

    let data_dir = tempfile::tempdir().expect("data dir");
    let listen = format!("127.0.0.1:{}", support::free_port());
    let hub = durable_hub(&listen, data_dir.path());
    let url = hub.url.clone();
    let subscriptions = [Subscription {
        name,
        query: query(&[("match", RESTART_TOPIC)]),
        types: &["message"],
        expect: COUNT,
    }];
    // Lingering catches replays of already-seen events.
    let browser = Browser::open_for(
        &tools,
        &hub.origin,
        &subscriptions,
        Duration::from_millis(1500),
        Duration::from_secs(60),
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut publisher = Publisher {
        client: support::client(),
        url: url.clone(),
        token: hub.publisher_token(),
        ids: Vec::with_capacity(COUNT),
        failures: Vec::new(),
    };
    runtime.block_on(publisher.publish(1..=BEFORE));
    let failed_before = publisher.failures.len();

    // Signalled between publishes, so no request is in flight when the hub
    // goes: what it acknowledged it stored, and it can have stored nothing
    // it did not acknowledge.
    let mut old = hub;
    let signalled = Instant::now();
    // SAFETY: a plain system call, on our own child process.
    assert_eq!(unsafe { libc::kill(old.pid() as libc::pid_t, signal) }, 0);
    let restart = {
        let listen = listen.clone();
        let dir = data_dir.path().to_path_buf();
        std::thread::spawn(move || {
            let status = old.child.wait().expect("wait for the hub");
            let stopped = signalled.elapsed();
            std::thread::sleep(DOWN);
            let started = Instant::now();
            let hub = durable_hub(&listen, &dir);
            (status, stopped, started.elapsed(), hub)
        })
    };
    // Meanwhile the next events go out, each tried until it is stored.
    runtime.block_on(publisher.publish(BEFORE + 1..=BEFORE + DURING));
    let (status, stopped, startup, hub) = restart.join().expect("the restart");
    runtime.block_on(publisher.publish(BEFORE + DURING + 1..=COUNT));
    assert_eq!(hub.url, url, "the restarted hub is at the same URL");

    let report = browser.report();
    let source = &report.subscriptions[0];
    let arrival: Vec<&str> = source.events.iter().map(|e| e.data.as_str()).collect();
    eprintln!(
        "{name}: hub exited {status} {stopped:?} after the signal, down {DOWN:?}, \
         up again in {startup:?}; {} failed publish attempts; browser: {} events, \
         {} opens, {} errors",
        publisher.failures.len(),
        source.events.len(),
        source.opens,
        source.errors
    );
    // A native EventSource gives up for good on any answer but a 200.
    assert!(
        !source.closed,
        "the EventSource gave up reconnecting (the hub answered it with an error status: see \
         the [page] lines above) after events {}",
        arrival.join(" ")
    );
    assert_numbered_once_in_order(source, &publisher.ids, report.timed_out);
    assert!(
        source.opens >= 2,
        "the browser never reconnected: {} opens",
        source.opens
    );
    assert_eq!(
        failed_before, 0,
        "publishes failed before the restart: {:?}",
        publisher.failures
    );
    // Otherwise no publish met the restart, and the test proved less.
    assert!(
        !publisher.failures.is_empty(),
        "every publish succeeded at once, even while the hub was down"
    );
    if signal == libc::SIGTERM {
        assert!(
            status.success(),
            "SIGTERM should stop the hub cleanly: {status}"
        );
    }
}

#[test]
fn eventsource_resumes_across_a_hub_restart_after_sigterm() {
    eventsource_resumes_across_a_hub_restart(libc::SIGTERM, "sigterm");
}

#[test]
fn eventsource_resumes_across_a_hub_restart_after_sigkill() {
    eventsource_resumes_across_a_hub_restart(libc::SIGKILL, "sigkill");
}

/// Over HTTPS the browser and the hub agree on HTTP/2 (ALPN), and the
/// native `EventSource` receives every event over it.
#[test]
fn eventsource_over_https_speaks_http2() {
    let Some(tools) = tools() else { return };
    let hub = Hub::start(&["--tls-self-signed"]);
    let subscriptions = [Subscription {
        name: "secure",
        query: query(&[("match", "https://example.com/secure")]),
        types: &["message"],
        expect: 3,
    }];
    let browser = Browser::open(&tools, &hub, &subscriptions, Duration::from_millis(200));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let ids: Vec<String> = runtime.block_on(async {
        // The certificate is the hub's own, generated at start.
        let client = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .build()
            .unwrap();
        let mut ids = Vec::new();
        for n in 1..=3 {
            let body = format!("topic=https%3A%2F%2Fexample.com%2Fsecure&data={n}");
            let response = client
                .post(&hub.url)
                .bearer_auth(hub.publisher_token())
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            ids.push(response.text().await.unwrap());
        }
        ids
    });
    let report = browser.report();
    assert_eq!(report.protocol, "h2", "{report:?}");
    let want: Vec<Event> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| event("message", &(i + 1).to_string(), id))
        .collect();
    assert_eq!(report.subscriptions[0].events, want, "{report:?}");
}

const CLUSTER_TOPIC: &str = "https://example.com/cluster";

/// A node of the cluster on `history`, listening on `listen` behind the
/// proxy at `public_url`, which is the hub's URL for clients, so the audience
/// of their tokens. The returned `Hub`'s URL is the node's own, for talking
/// to this node directly.
fn cluster_node(listen: std::net::SocketAddr, public_url: &str, history: &str) -> Hub {
    let listen = listen.to_string();
    let mut node = Hub::start_with(&[
        "serve",
        "--listen",
        &listen,
        "--public-url",
        public_url,
        "--jwt-key",
        support::SECRET,
        "--log",
        "warn",
        "--history",
        history,
        // The browser tries again 200 ms after losing its node.
        "--retry",
        "200",
    ]);
    assert_eq!(node.url, public_url, "the hub announces its public URL");
    node.origin = format!("http://{listen}");
    node.url = format!("{}/.well-known/mercure", node.origin);
    node
}

/// The one node whose metrics count the page's subscriber: the node nginx
/// sent the page's EventSource to.
async fn node_holding_the_subscriber(nodes: &[Hub]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut counts = Vec::with_capacity(nodes.len());
        for node in nodes {
            counts.push(node.metric("tidings_subscribers").await);
        }
        if counts.iter().sum::<u64>() == 1 {
            return counts.iter().position(|&count| count == 1).expect("a 1");
        }
        assert!(
            Instant::now() < deadline,
            "the page's one subscriber is not on exactly one node: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Publishes event `n` (data `n`) on `node`, directly, with `token`; its id.
async fn publish_numbered(node: &Hub, token: &str, n: usize) -> String {
    let form = [("topic", CLUSTER_TOPIC), ("data", &n.to_string())];
    let (status, body) = node.post(Some(token), &form).await;
    assert_eq!(status, 200, "publish {n} on {}: {body}", node.url);
    body
}

/// Three nodes on one Redis log behind nginx, the page knowing only nginx's
/// URL. Its EventSource sits on one node, A, which is killed (SIGKILL) while
/// events are published on the two others, B and C, before, during and
/// after: nginx sends the browser's reconnection to a live node, the browser
/// sends its Last-Event-ID, and the page ends up with every event exactly
/// once and in order.
#[test]
fn eventsource_behind_nginx_survives_the_death_of_its_cluster_node() {
    let Some(tools) = tools() else { return };
    let Some(redis) = tidings_testkit::Redis::start() else {
        return;
    };
    let history = format!("{}?stream=browser-cluster", redis.url());
    eventsource_behind_nginx_survives_node_death(&tools, &history);
}

/// The same on a NATS JetStream log.
#[test]
fn eventsource_behind_nginx_survives_the_death_of_its_cluster_node_on_nats() {
    let Some(tools) = tools() else { return };
    let Some(nats) = tidings_testkit::Nats::start() else {
        return;
    };
    let history = format!("{}?stream=browser-cluster", nats.url());
    eventsource_behind_nginx_survives_node_death(&tools, &history);
}

/// The cluster test on the shared log at `history`.
fn eventsource_behind_nginx_survives_node_death(tools: &Tools, history: &str) {
    const BEFORE: usize = 10;
    const DURING: usize = 30;
    const AFTER: usize = 10;
    const COUNT: usize = BEFORE + DURING + AFTER;
    // Events of the `DURING` run published before A is killed.
    const KILL_AFTER: usize = 5;

    // nginx starts first, in front of the nodes' addresses: the nodes need
    // its URL, their public one.
    let upstreams: Vec<std::net::SocketAddr> = (0..3)
        .map(|_| ([127, 0, 0, 1], support::free_port()).into())
        .collect();
    let Some(nginx) = tidings_testkit::Nginx::start(&upstreams) else {
        return;
    };
    let public_url = format!("{}/.well-known/mercure", nginx.url());
    let mut nodes: Vec<Hub> = upstreams
        .iter()
        .map(|&listen| cluster_node(listen, &public_url, history))
        .collect();
    // One hub to its clients: a token for the public URL, good on any node.
    let token = support::token(
        tidings::auth::Generation::Draft08,
        tidings::auth::Role::Publisher,
        &["*"],
        &public_url,
        None,
    );
    // The docs show `config_text`: nginx runs exactly that.
    let config = tidings_testkit::Nginx::config_text(&upstreams, nginx.port());
    assert!(
        nginx.config_file_text().contains(&config),
        "nginx runs another config than Nginx::config_text:\n{}",
        nginx.config_file_text()
    );

    // The page and its EventSource come through nginx, so the page is
    // same-origin with its hub URL: no CORS.
    let subscriptions = [Subscription {
        name: "cluster",
        query: query(&[("match", CLUSTER_TOPIC)]),
        types: &["message"],
        expect: COUNT,
    }];
    // Lingering catches replays of already-seen events.
    let browser = Browser::open_for(
        tools,
        &nginx.url(),
        &subscriptions,
        Duration::from_millis(1500),
        Duration::from_secs(60),
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (ids, killed, status, while_away) = runtime.block_on(async {
        let a = node_holding_the_subscriber(&nodes).await;
        let mut a_node = nodes.remove(a);
        let others = &nodes;
        // Alternately on B and C, each publish acknowledged before the next:
        // the log's order is the order of the numbers.
        let mut ids = Vec::with_capacity(COUNT);
        for n in 1..=BEFORE {
            ids.push(publish_numbered(&others[n % 2], &token, n).await);
        }
        let published = std::sync::atomic::AtomicUsize::new(0);
        let during = async {
            let mut ids = Vec::with_capacity(DURING);
            for n in BEFORE + 1..=BEFORE + DURING {
                ids.push(publish_numbered(&others[n % 2], &token, n).await);
                published.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            ids
        };
        let kill = async {
            while published.load(std::sync::atomic::Ordering::SeqCst) < KILL_AFTER {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            // SAFETY: a plain system call, on our own child process.
            let pid = a_node.pid() as libc::pid_t;
            assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
            let at_kill = published.load(std::sync::atomic::Ordering::SeqCst);
            let status = a_node.exits_within(Duration::from_secs(10)).await;
            // The page is back once B or C counts its subscriber.
            node_holding_the_subscriber(others).await;
            let at_return = published.load(std::sync::atomic::Ordering::SeqCst);
            (a_node.origin.clone(), status, at_return - at_kill)
        };
        let (during_ids, (killed, status, while_away)) = tokio::join!(during, kill);
        ids.extend(during_ids);
        for n in BEFORE + DURING + 1..=COUNT {
            ids.push(publish_numbered(&others[n % 2], &token, n).await);
        }
        (ids, killed, status, while_away)
    });

    let report = browser.report();
    let source = &report.subscriptions[0];
    let arrival: Vec<&str> = source.events.iter().map(|e| e.data.as_str()).collect();
    eprintln!(
        "cluster on {history}: node A {killed} killed ({status}), {while_away} events published before the \
         page's stream was back on B or C; browser: {} events, {} opens, {} errors",
        source.events.len(),
        source.opens,
        source.errors
    );
    assert!(
        !source.closed,
        "the EventSource gave up reconnecting (nginx or a node answered it with an error \
         status) after events {}\n{}",
        arrival.join(" "),
        nginx.log_text()
    );
    assert_numbered_once_in_order(source, &ids, report.timed_out);
    // Otherwise the test proved nothing about failing over and resuming.
    assert!(
        while_away >= 1,
        "no event was published while the page had no stream, so none had to be resumed"
    );
    assert!(
        source.errors >= 1 && source.opens >= 2,
        "the browser never lost and reopened its stream: {} errors, {} opens",
        source.errors,
        source.opens
    );
}

/// The nginx sample in the docs, `docs/cluster-nginx.conf`: a comment header,
/// then exactly what `Nginx::config_text` gives for three nodes on this
/// machine, the config that the cluster test above runs.
/// `TIDINGS_BLESS=1` writes the file anew after `config_text` changes.
#[test]
fn docs_nginx_sample_is_the_tested_config() {
    const HEADER: &str = "\
# nginx in front of a tidings cluster: three `tidings serve` nodes started with
# the same --history engine URL (redis://…?stream=NAME or nats://…), the same
# keys and the same --public-url, nginx's (http://127.0.0.1:8080/.well-known/mercure
# here): one hub URL, and one token audience, for browsers and publishers alike.
# A stream cut by a node's death is reopened by the browser on another node,
# which resumes it from the Last-Event-ID header: no event lost or repeated.
#
# This is the config the browser test runs (crates/tidings-cli/tests/browser.rs,
# eventsource_behind_nginx_survives_the_death_of_its_cluster_node); the text
# comes from tidings_testkit::Nginx::config_text. Goes in nginx's http context
# (e.g. /etc/nginx/conf.d/tidings.conf). Put your nodes' addresses in the
# upstream block and your public address in `listen` (add TLS there).

";
    let nodes: Vec<std::net::SocketAddr> = ["127.0.0.1:8081", "127.0.0.1:8082", "127.0.0.1:8083"]
        .iter()
        .map(|address| address.parse().unwrap())
        .collect();
    let want = format!(
        "{HEADER}{}",
        tidings_testkit::Nginx::config_text(&nodes, 8080)
    );
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/cluster-nginx.conf");
    if std::env::var_os("TIDINGS_BLESS").is_some_and(|value| value == "1") {
        std::fs::write(&path, &want).expect("write the docs sample");
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{} is not Nginx::config_text's; run this test with TIDINGS_BLESS=1 to write it anew",
        path.display()
    );
}
