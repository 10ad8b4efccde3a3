//! A cluster of real `tidings serve` processes on one log engine, and what
//! the cluster tests share: engines behind one type, nodes that can be
//! killed, paused and restarted on their port, publishing that may fail,
//! and readers that resume elsewhere.
//!
//! Each node's stderr goes to a file; when a test panics, the cluster prints
//! every node's log before it goes, so a failure shows what the hubs saw.

use super::{client, free_port, Hub, Message, Next, Stream, SECRET};
use std::fs;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tidings_testkit::{Nats, NatsCluster, Redis, Sentinel};
use tokio::time::Instant;

/// Long enough for anything a healthy cluster does on a busy 2-core
/// machine; a test that waits this long has failed.
pub const PATIENCE: Duration = Duration::from_secs(20);
/// How long "nothing more arrives" is watched for.
pub const QUIET: Duration = Duration::from_millis(500);

/// Writes the tests once, runs each against both engines: `cluster_tests!(a, b)`
/// makes tests `a::redis`, `a::nats`, … calling `a(engine)` with one server
/// of each, or skipping loudly when the engine's program is not installed;
/// `cluster_tests!(replicated: c)` gives `c` a replicated engine.
#[macro_export]
macro_rules! cluster_tests {
    ($($test:ident),* $(,)?) => {
        $crate::cluster_tests!(start: $($test),*);
    };
    ($start:ident: $($test:ident),* $(,)?) => {$(
        mod $test {
            use $crate::support::cluster::{Engine, Kind};

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis() {
                if let Some(engine) = Engine::$start(Kind::Redis) {
                    super::$test(engine).await;
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn nats() {
                if let Some(engine) = Engine::$start(Kind::Nats) {
                    super::$test(engine).await;
                }
            }
        }
    )*};
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Redis,
    Nats,
}

/// A log engine, durable: one server (Redis fsyncing every write with
/// `appendfsync always`, JetStream with its file store), or a replicated one
/// that survives its leader (Redis under Sentinel with `replicas=1`, three
/// NATS servers with `replicas=3`).
pub enum Engine {
    Redis(Redis),
    Nats(Nats),
    Sentinel(Sentinel),
    NatsCluster(NatsCluster),
}

impl Engine {
    /// One server; None (after the kit's loud SKIPPED line) when the
    /// program is missing.
    pub fn start(kind: Kind) -> Option<Engine> {
        Some(match kind {
            Kind::Redis => Engine::Redis(Redis::start_with(&[("appendfsync", "always")])?),
            Kind::Nats => Engine::Nats(Nats::start()?),
        })
    }

    /// A replicated engine that fails over by itself.
    pub fn replicated(kind: Kind) -> Option<Engine> {
        tokio::task::block_in_place(|| {
            Some(match kind {
                Kind::Redis => Engine::Sentinel(Sentinel::start()?),
                Kind::Nats => Engine::NatsCluster(NatsCluster::start(3)?),
            })
        })
    }

    pub fn kind(&self) -> Kind {
        match self {
            Engine::Redis(_) | Engine::Sentinel(_) => Kind::Redis,
            Engine::Nats(_) | Engine::NatsCluster(_) => Kind::Nats,
        }
    }

    /// The `--history` URL of the cluster's log.
    pub fn history(&self) -> String {
        match self {
            Engine::Redis(redis) => format!("{}?stream=ctest", redis.url()),
            Engine::Nats(nats) => format!("{}?stream=ctest", nats.url()),
            Engine::Sentinel(sentinel) => format!("{}?stream=ctest&replicas=1", sentinel.url()),
            Engine::NatsCluster(nats) => format!("{}?stream=ctest&replicas=3", nats.url()),
        }
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        match self {
            Engine::Redis(redis) => redis.kill(),
            Engine::Nats(nats) => nats.kill(),
            _ => panic!("a replicated engine fails over instead"),
        }
    }

    /// Starts the server again on its port and data; waits until it serves.
    pub fn restart(&mut self) {
        // The wait blocks: let the runtime's other tasks (readers) go on.
        tokio::task::block_in_place(|| match self {
            Engine::Redis(redis) => redis.restart(),
            Engine::Nats(nats) => nats.restart(),
            _ => panic!("a replicated engine fails over instead"),
        })
    }

    /// Empties a Redis server, as a restart without its data would: the log
    /// starts over.
    pub fn flush(&mut self) {
        match self {
            Engine::Redis(redis) => {
                tokio::task::block_in_place(|| redis.cli(&["FLUSHALL"]));
            }
            _ => panic!("only a single Redis server is flushed"),
        }
    }

    /// Kills the server that leads the log now (the Redis primary, the NATS
    /// server leading the stream); the others carry on without it.
    pub fn kill_leader(&mut self) {
        tokio::task::block_in_place(|| match self {
            Engine::Sentinel(sentinel) => sentinel.kill_primary(),
            Engine::NatsCluster(nats) => {
                let leader = stream_leader(nats).expect("a leader of the stream");
                let i = (0..3)
                    .find(|&i| nats.server_name(i) == leader)
                    .unwrap_or_else(|| panic!("no server named {leader}"));
                nats.kill(i);
            }
            _ => panic!("a single server has no one to fail over to"),
        })
    }

    /// The servers' own logs, for failure messages.
    pub fn logs(&self) -> String {
        match self {
            Engine::Sentinel(sentinel) => sentinel.logs(),
            _ => String::new(),
        }
    }
}

/// The server leading the `ctest` stream, as the first server that answers
/// `/jsz` reports it.
fn stream_leader(nats: &NatsCluster) -> Option<String> {
    (0..3).find_map(|i| {
        let jsz = nats.monitor(i, "/jsz?streams=true")?;
        let jsz: serde_json::Value = serde_json::from_str(&jsz).ok()?;
        jsz["account_details"]
            .as_array()?
            .iter()
            .flat_map(|account| account["stream_detail"].as_array().into_iter().flatten())
            .find(|stream| stream["name"] == "ctest")
            .and_then(|stream| stream["cluster"]["leader"].as_str())
            .map(String::from)
    })
}

/// One `tidings serve` process of a cluster, on a port of its own that it
/// keeps across restarts.
pub struct Node {
    hub: Hub,
    args: Vec<String>,
    log: PathBuf,
    _logs: tempfile::TempDir,
}

impl Node {
    /// Starts a node on `history` with `extra` flags.
    pub fn start(history: &str, extra: &[&str]) -> Node {
        let port = free_port();
        // More detail when asked: TIDINGS_TEST_NODE_LOG=debug,async_nats=trace
        let log_filter = std::env::var("TIDINGS_TEST_NODE_LOG").unwrap_or_else(|_| "info".into());
        let mut args: Vec<String> = [
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--jwt-key",
            SECRET,
            "--log",
            &log_filter,
            "--history",
            history,
        ]
        .iter()
        .map(|arg| arg.to_string())
        .collect();
        args.extend(extra.iter().map(|arg| arg.to_string()));
        let logs = tempfile::tempdir().expect("a log dir");
        let log = logs.path().join("stderr.log");
        let hub = spawn(&args, &log);
        Node {
            hub,
            args,
            log,
            _logs: logs,
        }
    }

    /// SIGKILL: no goodbye to anyone.
    pub fn kill(&mut self) {
        let _ = self.hub.child.kill();
        let _ = self.hub.child.wait();
    }

    /// Kills the node if it runs and starts it again with the same flags
    /// and port.
    pub fn restart(&mut self) {
        self.kill();
        self.hub = tokio::task::block_in_place(|| spawn(&self.args, &self.log));
    }

    /// SIGSTOP: the process stays, its sockets stay open, nothing runs.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// SIGCONT.
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) on our own child's pid.
        let result = unsafe { libc::kill(self.hub.pid() as libc::pid_t, signal) };
        assert_eq!(result, 0, "kill({}, {signal})", self.hub.pid());
    }

    /// What the node wrote to stderr, across its restarts.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_else(|error| format!("(unreadable: {error})"))
    }

    /// Publishes `data` on `topic`, with the client id `id` if given; panics
    /// unless answered 200, and returns the event's id.
    pub async fn publish_as(&self, topic: &str, data: &str, id: Option<&str>) -> String {
        let mut form = vec![("topic", topic), ("data", data)];
        form.extend(id.map(|id| ("id", id)));
        let (status, body) = self.post(Some(&self.publisher_token()), &form).await;
        assert_eq!(status, 200, "publishing {data} on {}: {body}", self.url);
        body
    }

    /// `GET /readyz`'s status.
    pub async fn readiness(&self) -> u16 {
        match client()
            .get(format!("{}/readyz", self.origin))
            .timeout(Duration::from_secs(5))
            .send()
            .await
        {
            Ok(response) => response.status().as_u16(),
            Err(_) => 0,
        }
    }

    /// Waits until `/readyz` answers `status`; false if it does not in time.
    pub async fn readiness_becomes(&self, status: u16, wait: Duration) -> bool {
        eventually(wait, || async { self.readiness().await == status }).await
    }

    /// Opens an event stream with `query` (and a bearer token and a
    /// `Last-Event-ID`, when given), answered 200 and registered.
    pub async fn open(&self, query: &str, token: Option<&str>, cursor: Option<&str>) -> Stream {
        let bearer = token.map(|token| format!("Bearer {token}"));
        let mut headers: Vec<(&str, &str)> = Vec::new();
        headers.extend(bearer.as_deref().map(|b| ("authorization", b)));
        headers.extend(cursor.map(|c| ("last-event-id", c)));
        let mut stream = Stream::open(&self.subscribe_url(query), &headers).await;
        assert_eq!(stream.status, 200, "{query} on {}", self.url);
        stream.wait_registered().await;
        stream
    }

    /// What the log retains for `query`, read from this node with
    /// `Last-Event-ID: earliest` up to the event whose data is `last`, then
    /// until nothing more comes. (A node replays what it has dispatched and
    /// sends the rest live as it reads it: it may lag the log a little, so
    /// "until quiet" alone could stop short.)
    pub async fn history_through(&self, query: &str, last: &str) -> Vec<Message> {
        let mut stream = self.open(query, None, Some("earliest")).await;
        let mut events: Vec<Message> = Vec::new();
        let deadline = Instant::now() + PATIENCE;
        loop {
            let seen = events.iter().any(|event| event.data == last);
            let wait = match seen {
                true => QUIET * 2,
                false => deadline.saturating_duration_since(Instant::now()),
            };
            match stream.poll_within(wait).await {
                Next::Event(event) => events.push(event),
                Next::Quiet if seen => return events,
                Next::Quiet => panic!("{} replayed no {last} in {:?}", self.url, data(&events)),
                Next::End => panic!("{} ended the replay after {:?}", self.url, data(&events)),
            }
        }
    }

    /// Where a client publishing to this node sends its updates.
    pub fn target(&self) -> Target {
        Target {
            url: self.url.clone(),
            token: self.publisher_token(),
        }
    }
}

impl Deref for Node {
    type Target = Hub;

    fn deref(&self) -> &Hub {
        &self.hub
    }
}

fn spawn(args: &[String], log: &Path) -> Hub {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Hub::start_logging(&args, log)
}

/// Nodes sharing one engine's log; prints their logs if the test fails.
pub struct Cluster {
    // Before the engine: nodes go first, and print no engine errors as they do.
    pub nodes: Vec<Node>,
    pub engine: Engine,
}

impl Cluster {
    /// `n` nodes on `engine`, each with `extra` flags.
    pub fn start(engine: Engine, n: usize, extra: &[&str]) -> Cluster {
        let history = engine.history();
        let nodes = (0..n).map(|_| Node::start(&history, extra)).collect();
        Cluster { nodes, engine }
    }

    pub fn kind(&self) -> Kind {
        self.engine.kind()
    }

    /// Every node's log, headed by its URL.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, node)| format!("--- node {i} ({}) ---\n{}", node.url, node.log_text()))
            .collect()
    }

    /// Where a client publishing round robin sends its updates.
    pub fn targets(&self) -> Vec<Target> {
        self.nodes.iter().map(Node::target).collect()
    }
}

impl std::ops::Index<usize> for Cluster {
    type Output = Node;

    fn index(&self, i: usize) -> &Node {
        &self.nodes[i]
    }
}

impl std::ops::IndexMut<usize> for Cluster {
    fn index_mut(&mut self, i: usize) -> &mut Node {
        &mut self.nodes[i]
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "{:?} cluster, its nodes' logs:\n{}{}",
                self.kind(),
                self.logs(),
                self.engine.logs()
            );
        }
    }
}

/// A node as a publisher sees it: owned, so a publishing task can hold it
/// while the test kills the node.
#[derive(Clone)]
pub struct Target {
    pub url: String,
    pub token: String,
}

impl Target {
    /// Publishes; the status and body, or why no answer came.
    pub async fn post(
        &self,
        form: &[(&str, &str)],
        wait: Duration,
    ) -> Result<(u16, String), String> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let response = client()
            .post(&self.url)
            .bearer_auth(&self.token)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .timeout(wait)
            .send()
            .await
            .map_err(|error| error.to_string())?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|error| error.to_string())?;
        Ok((status, text))
    }
}

/// A subscriber that, when its stream ends, resumes with its last event id
/// on the node it is told to.
pub struct Reader {
    query: String,
    stream: Stream,
    /// The bare `id:` the first stream opened with.
    opening: Option<String>,
    pub events: Vec<Message>,
    /// How many times the stream ended and was opened again.
    pub resumed: usize,
}

impl Reader {
    pub async fn open(node: &Node, query: &str) -> Reader {
        let stream = node.open(query, None, None).await;
        Reader {
            query: query.to_string(),
            opening: stream.last_event_id(),
            stream,
            events: Vec::new(),
            resumed: 0,
        }
    }

    /// The id it would resume from: the last whole event's (not the parser's,
    /// which a stream cut between an event's `id:` and its end has moved on),
    /// or the opening one.
    pub fn cursor(&self) -> String {
        self.events
            .last()
            .and_then(|event| event.id.clone())
            .or_else(|| self.opening.clone())
            .expect("a cursor: the opening id or an event's")
    }

    /// Reads until `count` events in all, or the stream ends (false), or
    /// `wait` passes (panics).
    pub async fn read_to(&mut self, count: usize, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        while self.events.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stream.poll_within(left).await {
                Next::Event(event) => self.events.push(event),
                Next::End => return false,
                Next::Quiet => panic!(
                    "{} events of {count} within {wait:?}: {:?}",
                    self.events.len(),
                    data(&self.events)
                ),
            }
        }
        true
    }

    /// Reads until `count` events in all, resuming on `node` each time the
    /// stream ends.
    pub async fn read_resuming(&mut self, node: &Node, count: usize, wait: Duration) {
        let deadline = Instant::now() + wait;
        while !self
            .read_to(count, deadline.saturating_duration_since(Instant::now()))
            .await
        {
            self.resume(node).await;
        }
    }

    /// Opens the stream again on `node` from where this one stopped.
    pub async fn resume(&mut self, node: &Node) {
        let cursor = self.cursor();
        self.stream = node.open(&self.query, None, Some(&cursor)).await;
        assert_eq!(
            self.stream.header("mercure-last-event-id").as_deref(),
            Some(cursor.as_str()),
            "the cursor {cursor} is in the log"
        );
        self.resumed += 1;
    }

    /// Nothing more arrives for a while (the stream may end).
    pub async fn assert_quiet(&mut self) {
        if let Next::Event(event) = self.stream.poll_within(QUIET).await {
            panic!("unexpected event {event:?} after {:?}", data(&self.events));
        }
    }
}

/// The data of events, for comparisons and messages.
pub fn data(events: &[Message]) -> Vec<String> {
    events.iter().map(|event| event.data.clone()).collect()
}

/// The ids of events.
pub fn ids(events: &[Message]) -> Vec<String> {
    events
        .iter()
        .map(|event| event.id.clone().expect("an event id"))
        .collect()
}

/// Waits until `check` holds, polling; false if it does not within `wait`.
pub async fn eventually<F, Fut>(wait: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + wait;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Form encoding, for query strings.
pub fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
