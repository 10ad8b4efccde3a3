//! Publishers on kept-alive HTTP/1.1 connections: update after update,
//! pipelined or trickled, answered in order by the hub's direct path; what
//! that path does not serve goes to hyper on the same connection.

mod support;

use std::time::Duration;
use support::{opened, Hub};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One raw connection to the hub, read one response at a time.
struct Connection {
    socket: TcpStream,
    unread: Vec<u8>,
}

/// A response as the client reads it.
#[derive(Debug)]
struct Answer {
    status: u16,
    /// Lowercased names.
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        let found = self.headers.iter().find(|(n, _)| n == name);
        found.map(|(_, value)| value.as_str())
    }
}

impl Connection {
    async fn open(hub: &Hub) -> Connection {
        let address = hub.origin.trim_start_matches("http://");
        let socket = TcpStream::connect(address).await.unwrap();
        socket.set_nodelay(true).unwrap();
        Connection {
            socket,
            unread: Vec::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.socket.write_all(bytes).await.unwrap();
    }

    /// The next response, interim ones included; its body by
    /// `Content-Length` or, for chunked ones, to its last chunk.
    async fn answer(&mut self) -> Answer {
        let end = self.fill_until(|read| find(read, b"\r\n\r\n")).await + 4;
        let head = String::from_utf8(self.unread.drain(..end).collect()).unwrap();
        let mut lines = head.trim_end().split("\r\n");
        let status = lines.next().unwrap()[9..12].parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|line| {
                let (name, value) = line.split_once(':').unwrap();
                (name.trim().to_ascii_lowercase(), value.trim().to_string())
            })
            .collect();
        let mut answer = Answer {
            status,
            headers,
            body: String::new(),
        };
        let length = answer.header("content-length").map(|n| n.parse().unwrap());
        let chunked = answer.header("transfer-encoding") == Some("chunked");
        let body = match (length, chunked) {
            (Some(length), _) => {
                self.fill_until(|read| (read.len() >= length).then_some(length))
                    .await
            }
            (None, true) => self.fill_until(|read| find(read, b"0\r\n\r\n")).await + 5,
            (None, false) => 0,
        };
        answer.body = String::from_utf8(self.unread.drain(..body).collect()).unwrap();
        answer
    }

    /// True when the hub closes the connection (nothing more to read).
    async fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        let read = self.socket.read_to_end(&mut rest);
        match tokio::time::timeout(Duration::from_secs(5), read).await {
            Ok(_) => rest.is_empty() && self.unread.is_empty(),
            Err(_) => false,
        }
    }

    async fn fill_until(&mut self, done: impl Fn(&[u8]) -> Option<usize>) -> usize {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(at) = done(&self.unread) {
                return at;
            }
            let read = self.socket.read(&mut buf);
            match tokio::time::timeout(Duration::from_secs(10), read).await {
                Ok(Ok(n)) if n > 0 => self.unread.extend_from_slice(&buf[..n]),
                other => panic!(
                    "no complete answer ({other:?}); read so far: {:?}",
                    String::from_utf8_lossy(&self.unread)
                ),
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn form(topic: &str, data: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("topic", topic)
        .append_pair("data", data)
        .finish()
}

/// A publication's head, with `extra` header lines, for a `body`.
fn head(token: &str, body: &str, extra: &str) -> String {
    format!(
        "POST /.well-known/mercure HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n{extra}\r\n",
        body.len()
    )
}

fn publication(token: &str, topic: &str, data: &str) -> String {
    let body = form(topic, data);
    format!("{}{body}", head(token, &body, ""))
}

#[tokio::test]
async fn pipelined_and_trickled_publications_are_answered_in_order_on_one_connection() {
    let hub = Hub::start(&[]);
    let token = hub.publisher_token();
    let mut stream = opened(&hub.subscribe_url("match=p")).await;
    let mut connection = Connection::open(&hub).await;
    let pipelined: String = ["one", "two", "three"]
        .iter()
        .map(|data| publication(&token, "p", data))
        .collect();
    connection.send(pipelined.as_bytes()).await;
    // The fourth: its head, then its body in three pieces.
    let body = form("p", "four, trickled");
    connection.send(head(&token, &body, "").as_bytes()).await;
    let (a, rest) = body.split_at(5);
    let (b, c) = rest.split_at(5);
    for piece in [a, b, c] {
        tokio::time::sleep(Duration::from_millis(50)).await;
        connection.send(piece.as_bytes()).await;
    }
    let mut ids = Vec::new();
    for _ in 0..4 {
        let answer = connection.answer().await;
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(
            answer.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert!(answer.header("date").is_some(), "{answer:?}");
        assert_eq!(answer.header("connection"), None, "kept alive: {answer:?}");
        assert!(answer.body.starts_with("urn:uuid:"), "{answer:?}");
        ids.push(answer.body);
    }
    for (data, id) in ["one", "two", "three", "four, trickled"].iter().zip(&ids) {
        let event = stream.next().await;
        assert_eq!(event.data, *data);
        assert_eq!(event.id.as_deref(), Some(id.as_str()));
    }
}

#[tokio::test]
async fn what_the_direct_path_does_not_serve_goes_to_hyper_on_the_same_connection() {
    let hub = Hub::start(&["--max-body", "1024"]);
    let token = hub.publisher_token();
    let mut stream = opened(&hub.subscribe_url("match=h")).await;

    // A plain publication, then a chunked one, then another endpoint.
    let mut connection = Connection::open(&hub).await;
    let body = form("h", "chunked");
    let chunked =
        head(&token, "", "Transfer-Encoding: chunked\r\n").replace("Content-Length: 0\r\n", "");
    let chunked = format!("{chunked}{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
    let requests = [
        publication(&token, "h", "direct"),
        chunked,
        "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".to_string(),
    ];
    connection.send(requests.concat().as_bytes()).await;
    let answers = [
        connection.answer().await,
        connection.answer().await,
        connection.answer().await,
    ];
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [200, 200, 200], "{answers:?}");
    assert_eq!(answers[2].body, "ok");
    assert_eq!(stream.next().await.data, "direct");
    assert_eq!(stream.next().await.data, "chunked");

    // `Expect: 100-continue` first: hyper asks for the body, and keeps
    // serving the connection.
    let mut connection = Connection::open(&hub).await;
    let body = form("h", "expected");
    let expecting = head(&token, &body, "Expect: 100-continue\r\n");
    connection.send(expecting.as_bytes()).await;
    assert_eq!(connection.answer().await.status, 100);
    connection.send(body.as_bytes()).await;
    assert_eq!(connection.answer().await.status, 200);
    let after = publication(&token, "h", "after hyper");
    connection.send(after.as_bytes()).await;
    assert_eq!(connection.answer().await.status, 200);
    assert_eq!(stream.next().await.data, "expected");
    assert_eq!(stream.next().await.data, "after hyper");

    // A body over --max-body gets hyper's 413 with the limit, after a
    // plain publication on the same connection.
    let mut connection = Connection::open(&hub).await;
    let large = publication(&token, "h", &"x".repeat(2000));
    let requests = [publication(&token, "h", "small"), large];
    connection.send(requests.concat().as_bytes()).await;
    assert_eq!(connection.answer().await.status, 200);
    let refused = connection.answer().await;
    assert_eq!(refused.status, 413, "{refused:?}");
    assert!(refused.body.contains("1024 bytes"), "{refused:?}");
    assert_eq!(stream.next().await.data, "small");

    // HTTP/1.0 is hyper's, and closed after its answer.
    let mut connection = Connection::open(&hub).await;
    let old = publication(&token, "h", "1.0").replace("HTTP/1.1", "HTTP/1.0");
    connection.send(old.as_bytes()).await;
    assert_eq!(connection.answer().await.status, 200);
    assert!(connection.closed().await, "HTTP/1.0 without keep-alive");
    assert_eq!(stream.next().await.data, "1.0");
}

#[tokio::test]
async fn a_publisher_asking_to_close_is_answered_then_closed() {
    let hub = Hub::start(&[]);
    let token = hub.publisher_token();
    let mut stream = opened(&hub.subscribe_url("match=c")).await;
    let mut connection = Connection::open(&hub).await;
    let body = form("c", "last");
    let request = format!("{}{body}", head(&token, &body, "Connection: close\r\n"));
    connection.send(request.as_bytes()).await;
    let answer = connection.answer().await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("connection"), Some("close"));
    assert!(connection.closed().await, "still open after `close`");
    assert_eq!(stream.next().await.data, "last");
}

/// A refused publication whose body was read leaves the connection usable;
/// a head no server could serve is answered with a reason and closed.
#[tokio::test]
async fn refusals_on_a_kept_alive_connection_say_why() {
    let hub = Hub::start(&[]);
    let token = hub.publisher_token();
    let mut stream = opened(&hub.subscribe_url("match=r")).await;
    let mut connection = Connection::open(&hub).await;
    let requests = [
        publication("not-a-token", "r", "forged"),
        publication(&token, "*", "reserved"),
        publication(&token, "r", "fine"),
        "POST /.well-known/mercure HTTP/1.1\r\nContent-Length: x\r\n\r\n".to_string(),
    ];
    connection.send(requests.concat().as_bytes()).await;
    let unauthorized = connection.answer().await;
    assert_eq!(unauthorized.status, 401, "{unauthorized:?}");
    let challenge = unauthorized.header("www-authenticate").unwrap();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    let invalid = connection.answer().await;
    assert_eq!(invalid.status, 400, "{invalid:?}");
    assert_eq!(
        invalid.header("content-type"),
        Some("application/problem+json")
    );
    assert!(
        invalid.body.contains("reserved for the wildcard"),
        "{invalid:?}"
    );
    assert_eq!(connection.answer().await.status, 200);
    let malformed = connection.answer().await;
    assert_eq!(malformed.status, 400, "{malformed:?}");
    assert!(
        malformed.body.contains("an invalid Content-Length"),
        "{malformed:?}"
    );
    assert!(connection.closed().await, "open after a malformed head");
    assert_eq!(stream.next().await.data, "fine");
}

/// A publisher waiting with its connection open does not hold up
/// shutdown: it is closed, and the hub exits well within its grace.
#[tokio::test]
async fn a_kept_alive_publisher_is_closed_at_shutdown() {
    let mut hub = Hub::start(&["--shutdown-grace", "60s"]);
    let token = hub.publisher_token();
    let mut connection = Connection::open(&hub).await;
    let request = publication(&token, "s", "before shutdown");
    connection.send(request.as_bytes()).await;
    assert_eq!(connection.answer().await.status, 200);
    hub.terminate();
    assert!(connection.closed().await, "kept open through shutdown");
    let status = hub.exits_within(Duration::from_secs(10)).await;
    assert!(status.success(), "{status}");
}
