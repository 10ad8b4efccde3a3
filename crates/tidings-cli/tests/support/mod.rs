//! What the integration tests share: a real hub process on an ephemeral
//! port, tokens, and an SSE client over a real socket.
#![allow(dead_code)]

pub mod browser;
pub mod cluster;
pub mod programs;

#[path = "../../src/sse.rs"]
mod sse;

pub use sse::Message;

use futures_util::StreamExt;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tidings::auth::{mint, Generation, KeySource, Role, TokenRequest};

pub const SECRET: &str = "integration-test-secret-of-32-bytes!";

/// A `tidings serve` process, killed when dropped.
pub struct Hub {
    pub child: Child,
    pub url: String,
    pub origin: String,
    /// The hub's own data directory, so hubs running side by side never
    /// share a history file; removed when dropped.
    pub data_dir: tempfile::TempDir,
    /// What the hub printed on stdout after its URL line.
    pub stdout: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Hub {
    pub fn start(extra: &[&str]) -> Hub {
        let mut args = vec![
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--jwt-key",
            SECRET,
            "--log",
            "warn",
        ];
        args.extend_from_slice(extra);
        Hub::start_with(&args)
    }

    /// Starts with exactly these arguments; waits for the hub's URL line.
    pub fn start_with(args: &[&str]) -> Hub {
        Hub::start_env(args, &[])
    }

    /// Starts with these arguments and environment variables.
    pub fn start_env(args: &[&str], env: &[(&str, &str)]) -> Hub {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tidings"));
        command.args(args).envs(env.iter().copied());
        Hub::spawn(command)
    }

    /// Starts a shell command line that `exec`s the hub (to set limits).
    pub fn start_with_shell(line: &str) -> Hub {
        let mut command = Command::new("sh");
        command.args(["-c", line]);
        Hub::spawn(command)
    }

    fn spawn(command: Command) -> Hub {
        Hub::spawn_logging(command, Stdio::inherit(), || {
            "(on the test's stderr)".into()
        })
    }

    /// Starts with these arguments, the hub's stderr appended to the file
    /// `log`, which a failed start quotes.
    pub fn start_logging(args: &[&str], log: &std::path::Path) -> Hub {
        let file = std::fs::File::options()
            .create(true)
            .append(true)
            .open(log)
            .expect("open the hub's log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_tidings"));
        // A file, not a terminal: plain text, without colours.
        command.args(args);
        Hub::spawn_logging(command, Stdio::from(file), || {
            std::fs::read_to_string(log).unwrap_or_default()
        })
    }

    fn spawn_logging(mut command: Command, stderr: Stdio, log: impl Fn() -> String) -> Hub {
        let data_dir = tempfile::tempdir().expect("data dir");
        let mut child = command
            .env("TIDINGS_DATA_DIR", data_dir.path())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start tidings");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let Some(Ok(first)) = lines.next() else {
            let status = child.wait().expect("wait for the hub");
            panic!(
                "the hub exited ({status}) before serving; its log:\n{}",
                log()
            );
        };
        let url = first
            .strip_prefix("tidings hub: ")
            .expect("the hub URL line")
            .to_string();
        // Keep draining stdout so the hub never blocks on a full pipe.
        let stdout = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let printed = stdout.clone();
        std::thread::spawn(move || {
            for line in lines.by_ref().map_while(Result::ok) {
                printed.lock().unwrap().push(line);
            }
        });
        let origin = url::Url::parse(&url)
            .unwrap()
            .origin()
            .ascii_serialization();
        Hub {
            child,
            url,
            origin,
            data_dir,
            stdout,
        }
    }

    /// The first line the hub printed that starts with `prefix`, waiting
    /// for it up to `wait`.
    pub fn printed(&self, prefix: &str, wait: Duration) -> Option<String> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            let lines = self.stdout.lock().unwrap();
            if let Some(line) = lines.iter().find(|line| line.starts_with(prefix)) {
                return Some(line.clone());
            }
            drop(lines);
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn publisher_token(&self) -> String {
        token(
            Generation::Draft08,
            Role::Publisher,
            &["*"],
            &self.url,
            None,
        )
    }

    pub fn subscriber_token(&self, topics: &[&str]) -> String {
        token(
            Generation::Draft08,
            Role::Subscriber,
            topics,
            &self.url,
            None,
        )
    }

    /// Publishes with the given form pairs; returns status and body.
    pub async fn post(&self, token: Option<&str>, form: &[(&str, &str)]) -> (u16, String) {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut request = client()
            .post(&self.url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("publish request");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    /// Publishes `data` on `topic` and returns the event id.
    pub async fn publish(&self, topic: &str, data: &str) -> String {
        let (status, body) = self
            .post(
                Some(&self.publisher_token()),
                &[("topic", topic), ("data", data)],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    pub fn subscribe_url(&self, query: &str) -> String {
        format!("{}?{}", self.url, query)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A gauge or counter from the hub's metrics.
    pub async fn metric(&self, name: &str) -> u64 {
        let text = reqwest::get(format!("{}/metrics", self.origin))
            .await
            .expect("metrics request")
            .text()
            .await
            .expect("metrics body");
        let prefix = format!("{name} ");
        text.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .trim()
            .parse()
            .expect("a number")
    }

    /// Waits until a metric reads `value`; false if it does not in `wait`.
    pub async fn metric_reaches(&self, name: &str, value: u64, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        while tokio::time::Instant::now() < deadline {
            if self.metric(name).await == value {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed: {status}");
    }

    /// Waits for the process to exit, at most `wait`. The wait yields to
    /// the runtime, so clients of this test keep answering the hub (an
    /// HTTP/2 graceful close waits for its client).
    pub async fn exits_within(&mut self, wait: Duration) -> std::process::ExitStatus {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the hub") {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "hub did not exit within {wait:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on right now, so a hub can be started (and
/// restarted) at a URL known in advance.
#[allow(unused_imports)] // not every test binary restarts a hub
pub use tidings_testkit::free_port;

pub fn token(
    generation: Generation,
    role: Role,
    topics: &[&str],
    hub_url: &str,
    ttl: Option<Duration>,
) -> String {
    let mut request = token_request(role, topics, hub_url);
    request.generation = generation;
    request.ttl = Some(ttl.unwrap_or(Duration::from_secs(3600)));
    mint(&request, &KeySource::Secret(SECRET.into())).unwrap()
}

/// A draft-08 token for `hub_url`, valid an hour, with subject `test`;
/// change what a test needs and mint it.
pub fn token_request(role: Role, topics: &[&str], hub_url: &str) -> TokenRequest {
    let origin = url::Url::parse(hub_url)
        .unwrap()
        .origin()
        .ascii_serialization();
    TokenRequest {
        generation: Generation::Draft08,
        role,
        topics: topics.iter().map(|t| t.to_string()).collect(),
        ttl: Some(Duration::from_secs(3600)),
        issuer: origin,
        audience: hub_url.to_string(),
        subject: "test".into(),
        payload: None,
        algorithm: "HS256".parse().unwrap(),
    }
}

/// Publishes a form body; returns the status.
pub async fn post_form(client: &reqwest::Client, url: &str, token: &str, body: String) -> u16 {
    client
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("publish request")
        .status()
        .as_u16()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// An open event stream read over a real connection.
pub struct Stream {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    parser: sse::Parser,
    queued: std::collections::VecDeque<Message>,
    /// Raw text seen so far, comments included.
    pub raw: String,
}

impl Stream {
    pub async fn open(url: &str, headers: &[(&str, &str)]) -> Stream {
        let mut request = reqwest::Client::new().get(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("subscribe request");
        Stream {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: Box::pin(response.bytes_stream()),
            parser: sse::Parser::default(),
            queued: Default::default(),
            raw: String::new(),
        }
    }

    /// The next event, or `None` if the stream ends or `wait` passes.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(message) = self.queued.pop_front() {
                return Some(message);
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .ok()??
                .ok()?;
            self.raw.push_str(&String::from_utf8_lossy(&chunk));
            self.queued.extend(self.parser.feed(&chunk));
        }
    }

    pub async fn next(&mut self) -> Message {
        self.next_within(Duration::from_secs(10))
            .await
            .expect("an event within 10 s")
    }

    /// Collects `n` events.
    pub async fn take(&mut self, n: usize) -> Vec<Message> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.next().await);
        }
        out
    }

    /// True when the server ends the stream within `wait`.
    pub async fn ends_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Err(_) => return false,
                Ok(None) | Ok(Some(Err(_))) => return true,
                Ok(Some(Ok(chunk))) => self.raw.push_str(&String::from_utf8_lossy(&chunk)),
            }
        }
    }

    /// What comes next within `wait`: an event, the end of the stream (the
    /// server closed it or went away), or nothing yet.
    pub async fn poll_within(&mut self, wait: Duration) -> Next {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(message) = self.queued.pop_front() {
                return Next::Event(message);
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Err(_) => return Next::Quiet,
                Ok(None) | Ok(Some(Err(_))) => return Next::End,
                Ok(Some(Ok(chunk))) => {
                    self.raw.push_str(&String::from_utf8_lossy(&chunk));
                    self.queued.extend(self.parser.feed(&chunk));
                }
            }
        }
    }

    /// The id the client would resume from: the last event's, or the bare
    /// `id:` a live stream opens with.
    pub fn last_event_id(&self) -> Option<String> {
        self.parser.last_event_id().map(String::from)
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }
}

/// What [`Stream::poll_within`] saw.
#[derive(Debug)]
pub enum Next {
    Event(Message),
    End,
    Quiet,
}

/// Lets a just-opened subscription register before publishing: the stream
/// opens with a comment once the hub has registered it.
pub async fn opened(url: &str) -> Stream {
    let mut stream = Stream::open(url, &[]).await;
    assert_eq!(stream.status, 200);
    stream.wait_registered().await;
    stream
}

impl Stream {
    /// Reads the opening comment, which the hub sends after registering.
    pub async fn wait_registered(&mut self) {
        let chunk = tokio::time::timeout(Duration::from_secs(10), self.body.next())
            .await
            .expect("opening bytes")
            .expect("stream open")
            .expect("bytes");
        self.raw.push_str(&String::from_utf8_lossy(&chunk));
        self.queued.extend(self.parser.feed(&chunk));
    }
}
