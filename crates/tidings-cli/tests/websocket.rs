//! The WebSocket endpoint against a real `tidings serve`, with a real
//! WebSocket client (tokio-tungstenite) and, for hostile frames, raw bytes
//! on a TCP socket: every message, error and close code of
//! `docs/websocket.md`.

mod support;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use support::{token, token_request, Hub, SECRET};
use tidings::auth::{mint, Generation, KeySource, Role};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const WAIT: Duration = Duration::from_secs(10);
const BOOK: &str = "https://example.com/books/1";

struct Socket {
    ws: WebSocketStream<TcpStream>,
}

/// The handshake's outcome: a socket, or the refusal's status and body.
async fn open(hub: &Hub, headers: &[(&str, &str)]) -> Result<Socket, (u16, String)> {
    let address = hub.origin.trim_start_matches("http://");
    let tcp = TcpStream::connect(address).await.unwrap();
    handshake(hub, tcp, headers).await
}

/// A socket whose receive window is tiny, so the kernel cannot absorb
/// what a reader that stopped leaves unread.
async fn open_narrow(hub: &Hub) -> Socket {
    let address = hub.origin.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(address).await.unwrap();
    handshake(hub, tcp, &[]).await.unwrap()
}

async fn handshake(
    hub: &Hub,
    tcp: TcpStream,
    headers: &[(&str, &str)],
) -> Result<Socket, (u16, String)> {
    let url = hub.url.replacen("http://", "ws://", 1);
    let mut request = url.into_client_request().unwrap();
    for (name, value) in headers {
        let name = http::HeaderName::from_bytes(name.as_bytes()).unwrap();
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    match tokio_tungstenite::client_async(request, tcp).await {
        Ok((ws, _)) => Ok(Socket { ws }),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let body = response.body().clone().unwrap_or_default();
            Err((
                response.status().as_u16(),
                String::from_utf8_lossy(&body).into_owned(),
            ))
        }
        Err(error) => panic!("handshake failed: {error}"),
    }
}

async fn open_with_token(hub: &Hub, token: &str) -> Socket {
    let bearer = format!("Bearer {token}");
    open(hub, &[("authorization", &bearer)])
        .await
        .expect("handshake")
}

impl Socket {
    async fn send(&mut self, message: Value) {
        self.ws
            .send(Message::text(message.to_string()))
            .await
            .unwrap();
    }

    /// The next JSON message, skipping keep-alive pings.
    async fn next(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a message in time")
                .expect("the socket is open")
                .expect("a valid message");
            match message {
                Message::Text(text) => return serde_json::from_str(&text).unwrap(),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a JSON message, got {other:?}"),
            }
        }
    }

    /// Nothing arrives for a moment.
    async fn quiet(&mut self) {
        let next = tokio::time::timeout(Duration::from_millis(300), self.next()).await;
        assert!(next.is_err(), "unexpected message: {next:?}");
    }

    /// Reads until the hub closes the socket, however long it takes; no
    /// event may come first.
    async fn closed_eventually(&mut self) -> (u16, String) {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Close(Some(frame)))) => {
                    return (frame.code.into(), frame.reason.to_string())
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected the close, got {other:?}"),
            }
        }
    }

    /// Reads until the hub closes the socket: its close code and reason.
    async fn closed(&mut self) -> (u16, String) {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("the close in time");
            match message {
                Some(Ok(Message::Close(Some(frame)))) => {
                    return (frame.code.into(), frame.reason.to_string())
                }
                Some(Ok(Message::Close(None))) => return (1005, String::new()),
                Some(Ok(_)) => continue,
                other => panic!("the socket ended without a close frame: {other:?}"),
            }
        }
    }

    async fn subscribe(&mut self, name: &str, matchers: Value, cursor: Option<&str>) -> Value {
        let mut request = json!({"type": "subscribe", "subscription": name, "match": matchers});
        if let Some(cursor) = cursor {
            request["last_event_id"] = cursor.into();
        }
        self.send(request).await;
        let answer = self.next().await;
        assert_eq!(answer["type"], "subscribed", "{answer}");
        assert_eq!(answer["subscription"], name);
        answer
    }

    async fn publish(&mut self, reference: &str, topic: &str, data: &str) -> Value {
        self.send(json!({"type": "publish", "ref": reference, "topic": topic, "data": data}))
            .await;
        self.next().await
    }
}

fn both_roles(hub: &Hub, topics: &[&str]) -> String {
    // With one secret for both roles, one token is verified as either; a
    // draft-08 token of the publisher role carries publish rights only.
    let mut request = token_request(Role::Publisher, topics, &hub.url);
    request.generation = Generation::Draft08;
    mint(&request, &KeySource::Secret(SECRET.into())).unwrap()
}

#[tokio::test]
async fn one_socket_subscribes_publishes_and_receives() {
    let hub = Hub::start(&[]);
    let mut socket = open_with_token(&hub, &both_roles(&hub, &["*"])).await;
    let opened = socket.subscribe("books", json!(BOOK), None).await;
    assert_eq!(opened["last_event_id"], "earliest");
    let patterns = json!({"type": "subscribe", "subscription": "all",
                          "match_urlpattern": "https://example.com/books/:id"});
    socket.send(patterns).await;
    assert_eq!(socket.next().await["type"], "subscribed");

    socket
        .send(json!({"type": "publish", "ref": "p1", "topic": BOOK, "data": "hello\nworld"}))
        .await;
    // The acknowledgement and the events, in whichever order they come.
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(socket.next().await);
    }
    got.sort_by_key(|m| m["subscription"].as_str().unwrap_or("").to_string());
    let ack = got.remove(0);
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["ref"], "p1");
    let id = ack["id"].as_str().unwrap().to_string();
    // One message per subscription the event matches.
    for (message, name) in got.iter().zip(["all", "books"]) {
        assert_eq!(
            *message,
            json!({"subscription": name, "type": "event", "id": id,
                   "topics": [BOOK], "data": "hello\nworld"})
        );
    }

    // HTTP publications arrive too, with their type and alternate topics.
    let (status, _) = hub
        .post(
            Some(&hub.publisher_token()),
            &[
                ("topic", "urn:other"),
                ("topic", BOOK),
                ("data", "x"),
                ("type", "note"),
            ],
        )
        .await;
    assert_eq!(status, 200);
    let event = socket.next().await;
    assert_eq!(event["event"], "note");
    assert_eq!(event["topics"], json!(["urn:other", BOOK]));
    let _ = socket.next().await;

    socket
        .send(json!({"type": "unsubscribe", "subscription": "all"}))
        .await;
    assert_eq!(
        socket.next().await,
        json!({"type": "unsubscribed", "subscription": "all"})
    );
    hub.publish(BOOK, "after").await;
    let event = socket.next().await;
    assert_eq!(
        (event["subscription"].as_str(), event["data"].as_str()),
        (Some("books"), Some("after"))
    );
    socket.quiet().await;
}

#[tokio::test]
async fn resume_replays_what_was_missed_without_gap_or_duplicate() {
    let hub = Hub::start(&[]);
    let ids: Vec<String> = futures_util::future::join_all((1..=3).map(|n| {
        let hub = &hub;
        async move { hub.publish(BOOK, &n.to_string()).await }
    }))
    .await;
    // Sequential ids, whatever order the publications were acknowledged in.
    let mut socket = open(&hub, &[]).await.unwrap();
    let opened = socket.subscribe("s", json!(BOOK), Some("earliest")).await;
    assert_eq!(opened["last_event_id"], "earliest");
    let mut replayed = Vec::new();
    for _ in 0..3 {
        replayed.push(socket.next().await["id"].as_str().unwrap().to_string());
    }
    let mut sorted = replayed.clone();
    sorted.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(sorted, expected);
    let first = replayed[0].clone();
    drop(socket);

    let fourth = hub.publish(BOOK, "4").await;
    let mut socket = open(&hub, &[]).await.unwrap();
    let opened = socket.subscribe("s", json!(BOOK), Some(&first)).await;
    assert_eq!(opened["last_event_id"], first.as_str());
    let mut after_first = Vec::new();
    for _ in 0..3 {
        after_first.push(socket.next().await["id"].as_str().unwrap().to_string());
    }
    assert_eq!(
        after_first,
        [replayed[1].clone(), replayed[2].clone(), fourth.clone()]
    );
    let fifth = hub.publish(BOOK, "5").await;
    assert_eq!(socket.next().await["id"], fifth.as_str());
    socket.quiet().await;

    // A live subscription learns its cursor at once.
    let mut live = open(&hub, &[]).await.unwrap();
    assert_eq!(
        live.subscribe("s", json!(BOOK), None).await["last_event_id"],
        fifth.as_str()
    );
}

#[tokio::test]
async fn refusals_carry_the_http_status_and_detail() {
    let hub = Hub::start(&[]);
    let limited = both_roles(&hub, &["https://example.com/allowed"]);
    let mut socket = open_with_token(&hub, &limited).await;

    let refused = socket.publish("p", BOOK, "x").await;
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["ref"], "p");
    assert_eq!(refused["status"], 403);
    assert!(
        refused["detail"].as_str().unwrap().contains(BOOK),
        "{refused}"
    );

    socket
        .send(json!({"type": "publish", "ref": "q", "data": "no topic"}))
        .await;
    let invalid = socket.next().await;
    assert_eq!(
        (invalid["status"].as_u64(), invalid["ref"].as_str()),
        (Some(400), Some("q"))
    );
    assert!(
        invalid["detail"].as_str().unwrap().contains("topic"),
        "{invalid}"
    );

    socket
        .send(json!({"type": "subscribe", "subscription": "none"}))
        .await;
    let empty = socket.next().await;
    assert_eq!(
        (empty["status"].as_u64(), empty["subscription"].as_str()),
        (Some(400), Some("none"))
    );

    socket.subscribe("s", json!(BOOK), None).await;
    socket
        .send(json!({"type": "subscribe", "subscription": "s", "match": BOOK}))
        .await;
    assert_eq!(socket.next().await["status"], 409);
    socket
        .send(json!({"type": "unsubscribe", "subscription": "nope"}))
        .await;
    assert_eq!(socket.next().await["status"], 404);
    socket.send(json!({"type": "auth", "token": limited})).await;
    assert_eq!(socket.next().await["status"], 400);
    socket
        .send(json!({"type": "subscribe", "subscription": "bad", "match_urlpattern": "https://["}))
        .await;
    assert_eq!(socket.next().await["status"], 400);

    // Without a token, publishing is refused, as over HTTP.
    let mut anonymous = open(&hub, &[]).await.unwrap();
    assert_eq!(anonymous.publish("p", BOOK, "x").await["status"], 401);
}

#[tokio::test]
async fn browsers_authenticate_with_a_first_message() {
    let hub = Hub::start(&["--anonymous", "false"]);
    let mut early = open(&hub, &[]).await.unwrap();
    early
        .send(json!({"type": "subscribe", "subscription": "s", "match": BOOK}))
        .await;
    assert_eq!(early.closed().await.0, 4401);

    let mut forged = open(&hub, &[]).await.unwrap();
    forged
        .send(json!({"type": "auth", "token": "not.a.token"}))
        .await;
    assert_eq!(
        forged.closed().await,
        (4401, "the access token is not valid".into())
    );

    let mut socket = open(&hub, &[]).await.unwrap();
    socket
        .send(json!({"type": "auth", "token": hub.subscriber_token(&[BOOK])}))
        .await;
    socket.subscribe("s", json!(BOOK), None).await;
    hub.publish(BOOK, "ok").await;
    assert_eq!(socket.next().await["data"], "ok");

    // An invalid token in the handshake is refused before the upgrade.
    let refused = open(&hub, &[("authorization", "Bearer nope")]).await;
    assert_eq!(refused.err().map(|(status, _)| status), Some(401));
}

#[tokio::test]
async fn private_updates_reach_only_granted_subscribers() {
    let hub = Hub::start(&[]);
    let mut granted = open_with_token(&hub, &hub.subscriber_token(&[BOOK])).await;
    granted.subscribe("s", json!(BOOK), None).await;
    let mut anonymous = open(&hub, &[]).await.unwrap();
    anonymous.subscribe("s", json!(BOOK), None).await;
    let other = hub.subscriber_token(&["https://example.com/other"]);
    let mut elsewhere = open_with_token(&hub, &other).await;
    elsewhere.subscribe("s", json!(BOOK), None).await;

    let token = hub.publisher_token();
    let form = [("topic", BOOK), ("data", "secret"), ("private", "on")];
    assert_eq!(hub.post(Some(&token), &form).await.0, 200);
    hub.publish(BOOK, "public").await;
    assert_eq!(granted.next().await["data"], "secret");
    assert_eq!(granted.next().await["data"], "public");
    assert_eq!(anonymous.next().await["data"], "public");
    assert_eq!(elsewhere.next().await["data"], "public");
}

#[tokio::test]
async fn an_expiring_token_closes_the_socket() {
    let hub = Hub::start(&[]);
    let short = token(
        Generation::Draft08,
        Role::Subscriber,
        &[BOOK],
        &hub.url,
        Some(Duration::from_secs(2)),
    );
    let mut socket = open_with_token(&hub, &short).await;
    socket.subscribe("s", json!(BOOK), None).await;
    let (code, reason) = socket.closed().await;
    assert_eq!(code, 4001, "{reason}");
    assert!(reason.contains("expired"), "{reason}");
}

#[tokio::test]
async fn a_foreign_origin_is_refused() {
    let hub = Hub::start(&["--cors-origins", "https://app.example"]);
    let cookie = format!("mercureAuthorization={}", hub.subscriber_token(&[BOOK]));
    let foreign = open(
        &hub,
        &[("origin", "https://evil.example"), ("cookie", &cookie)],
    )
    .await;
    let (status, body) = foreign.err().expect("refused");
    assert_eq!(status, 403);
    assert!(body.contains("https://evil.example"), "{body}");
    // Even without a cookie: an origin not listed is not served.
    assert_eq!(
        open(&hub, &[("origin", "https://evil.example")])
            .await
            .err()
            .map(|e| e.0),
        Some(403)
    );
    for allowed in ["https://app.example", hub.origin.as_str()] {
        let mut socket = open(&hub, &[("origin", allowed), ("cookie", &cookie)])
            .await
            .expect("an allowed origin");
        socket.subscribe("s", json!(BOOK), None).await;
    }
    // Not a browser: no Origin, no check.
    assert!(open(&hub, &[]).await.is_ok());

    // `*` admits any origin, but never on a cookie.
    let open_hub = Hub::start(&["--cors-origins", "*"]);
    let cookie = format!(
        "mercureAuthorization={}",
        open_hub.subscriber_token(&[BOOK])
    );
    assert!(open(&open_hub, &[("origin", "https://any.example")])
        .await
        .is_ok());
    let riding = open(
        &open_hub,
        &[("origin", "https://any.example"), ("cookie", &cookie)],
    )
    .await;
    assert_eq!(riding.err().map(|e| e.0), Some(403));
}

#[tokio::test]
async fn idle_sockets_get_pings_from_the_sweeper() {
    let hub = Hub::start(&["--keep-alive", "300ms"]);
    let mut socket = open(&hub, &[]).await.unwrap();
    socket.subscribe("s", json!(BOOK), None).await;
    let ping = tokio::time::timeout(WAIT, socket.ws.next()).await.unwrap();
    assert!(matches!(ping, Some(Ok(Message::Ping(_)))), "{ping:?}");
}

#[tokio::test]
async fn subscriptions_count_towards_max_connections() {
    let hub = Hub::start(&["--max-connections", "1"]);
    let mut socket = open(&hub, &[]).await.unwrap();
    socket.subscribe("a", json!(BOOK), None).await;
    socket
        .send(json!({"type": "subscribe", "subscription": "b", "match": BOOK}))
        .await;
    let refused = socket.next().await;
    assert_eq!(
        (refused["status"].as_u64(), refused["subscription"].as_str()),
        (Some(429), Some("b"))
    );
}

#[tokio::test]
async fn a_reader_that_stops_is_closed_as_slow_and_resumes_everything() {
    let hub = Hub::start(&["--queue-events", "8", "--queue-bytes", "65536"]);
    let mut socket = open_narrow(&hub).await;
    let opened = socket.subscribe("s", json!(BOOK), None).await;
    let cursor = opened["last_event_id"].as_str().unwrap().to_string();
    // The socket is not read while far more is published than its queue
    // and the kernel's buffers hold.
    let data = "x".repeat(16 * 1024);
    let mut ids = Vec::new();
    for _ in 0..400 {
        ids.push(hub.publish(BOOK, &data).await);
    }
    assert!(
        hub.metric_reaches("tidings_slow_disconnects_total", 1, WAIT)
            .await,
        "the stalled socket was not disconnected"
    );
    // What reached the socket before the close is in order, then it ends.
    let mut received = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, socket.ws.next())
            .await
            .expect("the end in time")
        {
            Some(Ok(Message::Text(text))) => {
                let message: Value = serde_json::from_str(&text).unwrap();
                received.push(message["id"].as_str().unwrap().to_string());
            }
            Some(Ok(Message::Close(frame))) => {
                if let Some(frame) = frame {
                    assert_eq!(u16::from(frame.code), 4000);
                }
                break;
            }
            Some(Ok(_)) => {}
            // Dropped with the close frame still unsent behind the stall.
            None | Some(Err(_)) => break,
        }
    }
    assert_eq!(received[..], ids[..received.len()]);
    // Resuming from the last one received replays the rest.
    let resume_from = received.last().cloned().unwrap_or(cursor);
    let mut again = open(&hub, &[]).await.unwrap();
    again.subscribe("s", json!(BOOK), Some(&resume_from)).await;
    for id in &ids[received.len()..] {
        assert_eq!(again.next().await["id"], id.as_str());
    }
}

#[tokio::test]
async fn shutdown_closes_with_going_away() {
    let hub = Hub::start(&[]);
    let mut socket = open(&hub, &[]).await.unwrap();
    socket.subscribe("s", json!(BOOK), None).await;
    hub.terminate();
    assert_eq!(socket.closed().await.0, 1001);
}

/// A handshake by hand, for frames no client library would send.
async fn raw(hub: &Hub) -> TcpStream {
    let address = hub.origin.trim_start_matches("http://");
    let mut tcp = TcpStream::connect(address).await.unwrap();
    let path = url::Url::parse(&hub.url).unwrap().path().to_string();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        assert_eq!(
            tcp.read(&mut byte).await.unwrap(),
            1,
            "the handshake answer"
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
    tcp
}

/// A masked client frame.
fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![(u8::from(fin) << 7) | opcode];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n < 65536 => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// Reads server frames until a close: its code and reason. Writes that
/// fail once the hub has closed are expected.
async fn close_of(tcp: &mut TcpStream) -> (u16, String) {
    let mut buffer = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        // Unmasked server frames with short payloads.
        while buffer.len() >= 2 {
            let length = (buffer[1] & 0x7f) as usize;
            let (start, length) = match length {
                126 => (4, u16::from_be_bytes([buffer[2], buffer[3]]) as usize),
                n => (2, n),
            };
            if buffer.len() < start + length {
                break;
            }
            let opcode = buffer[0] & 0x0f;
            let payload = buffer[start..start + length].to_vec();
            buffer.drain(..start + length);
            if opcode == 0x8 {
                let Some(([high, low], reason)) = payload.split_first_chunk() else {
                    return (NO_STATUS, String::new());
                };
                let code = u16::from_be_bytes([*high, *low]);
                return (code, String::from_utf8_lossy(reason).into_owned());
            }
        }
        let mut chunk = [0u8; 4096];
        let read = tokio::time::timeout_at(deadline, tcp.read(&mut chunk))
            .await
            .expect("a close frame in time")
            .expect("read");
        assert!(read > 0, "the connection ended without a close frame");
        buffer.extend_from_slice(&chunk[..read]);
    }
}

/// The close the hub answers these bytes with, on a fresh socket.
async fn close_after(hub: &Hub, bytes: &[u8]) -> (u16, String) {
    let mut socket = raw(hub).await;
    // The hub may close before it has read everything.
    socket.write_all(bytes).await.ok();
    close_of(&mut socket).await
}

#[tokio::test]
async fn hostile_frames_get_their_documented_close() {
    let hub = Hub::start(&["--max-body", "4096"]);

    assert_eq!(
        close_after(&hub, &frame(true, 0x1, &[b'a'; 8192])).await.0,
        1009
    );

    // A message that never ends: empty fragments, forever.
    let mut endless = raw(&hub).await;
    endless.write_all(&frame(false, 0x1, b"{")).await.unwrap();
    let empty = frame(false, 0x0, b"");
    let writer = async {
        for _ in 0..100_000 {
            if endless.write_all(&empty).await.is_err() {
                break;
            }
        }
    };
    tokio::time::timeout(WAIT, writer)
        .await
        .expect("the hub reads");
    assert_eq!(close_of(&mut endless).await.0, 1009);

    assert_eq!(
        close_after(&hub, &frame(true, 0x1, &[0xc3, 0x28])).await.0,
        1007
    );

    let (code, reason) = close_after(&hub, &frame(true, 0x1, br#"{"type":"shout"}"#)).await;
    assert_eq!(code, 4400);
    assert!(reason.contains("shout"), "{reason}");

    assert_eq!(
        close_after(&hub, &frame(true, 0x1, b"{not json")).await.0,
        4400
    );

    assert_eq!(close_after(&hub, &frame(true, 0x1, b"")).await.0, 4400);

    assert_eq!(
        close_after(&hub, &frame(true, 0x2, b"\x00\x01")).await.0,
        1003
    );

    assert_eq!(close_after(&hub, &[0x81, 0x02, b'{', b'}']).await.0, 1002);

    // The hub is still serving.
    let mut socket = open(&hub, &[]).await.unwrap();
    socket.subscribe("s", json!(BOOK), None).await;
}

/// The code a close frame without a payload stands for (RFC 6455 7.1.5).
const NO_STATUS: u16 = 1005;

/// The next server frame: its opcode and payload.
async fn next_frame(tcp: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    tokio::time::timeout(WAIT, tcp.read_exact(&mut head))
        .await
        .expect("a frame in time")
        .expect("read");
    assert_eq!(head[1] & 0x80, 0, "server frames are not masked");
    let length = match head[1] & 0x7f {
        126 => {
            let mut long = [0u8; 2];
            tcp.read_exact(&mut long).await.unwrap();
            u16::from_be_bytes(long) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; length];
    tcp.read_exact(&mut payload).await.unwrap();
    (head[0] & 0x0f, payload)
}

#[tokio::test]
async fn frames_follow_rfc_6455() {
    let hub = Hub::start(&["--max-body", "4096"]);
    let subscribe = br#"{"type":"subscribe","subscription":"s","match":"https://example.com/a"}"#;

    // A message in three fragments with a ping between them, arriving a
    // byte at a time: the ping is answered with its payload, the message
    // served once whole.
    let mut fragmented = raw(&hub).await;
    let (one, rest) = subscribe.split_at(20);
    let (two, three) = rest.split_at(20);
    let mut bytes = frame(false, 0x1, one);
    bytes.extend(frame(false, 0x0, two));
    bytes.extend(frame(true, 0x9, b"are you there"));
    bytes.extend(frame(true, 0x0, three));
    for byte in bytes {
        fragmented.write_all(&[byte]).await.unwrap();
    }
    assert_eq!(
        next_frame(&mut fragmented).await,
        (0xa, b"are you there".to_vec())
    );
    let (opcode, answer) = next_frame(&mut fragmented).await;
    assert_eq!(opcode, 0x1);
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer["type"], "subscribed", "{answer}");

    // A client's close is answered with its code, then the hub hangs up.
    fragmented
        .write_all(&frame(true, 0x8, b"\x03\xe8bye"))
        .await
        .unwrap();
    assert_eq!(close_of(&mut fragmented).await.0, 1000);
    let mut rest = Vec::new();
    let ended = tokio::time::timeout(WAIT, fragmented.read_to_end(&mut rest)).await;
    assert!(ended.expect("the hub hangs up").is_ok() && rest.is_empty());

    // A close without a code is answered without one.
    assert_eq!(close_after(&hub, &frame(true, 0x8, b"")).await.0, NO_STATUS);

    let violations: [(&str, Vec<u8>); 7] = [
        ("reserved bits", {
            let mut bytes = frame(true, 0x1, b"{}");
            bytes[0] |= 0x40;
            bytes
        }),
        ("a reserved opcode", frame(true, 0x3, b"")),
        ("a fragmented ping", frame(false, 0x9, b"")),
        ("a ping over 125 bytes", frame(true, 0x9, &[b'p'; 126])),
        ("a continuation of nothing", frame(true, 0x0, b"{}")),
        ("a text frame inside a fragmented message", {
            let mut bytes = frame(false, 0x1, b"{");
            bytes.extend(frame(true, 0x1, b"{}"));
            bytes
        }),
        ("a close with a one-byte payload", frame(true, 0x8, b"\x03")),
    ];
    for (what, bytes) in violations {
        assert_eq!(close_after(&hub, &bytes).await.0, 1002, "{what}");
    }
    let forbidden_code = frame(true, 0x8, b"\x03\xed");
    assert_eq!(
        close_after(&hub, &forbidden_code).await.0,
        1002,
        "close code 1005 sent"
    );
    assert_eq!(
        close_after(&hub, &frame(true, 0x8, b"\x03\xe8\xc3\x28"))
            .await
            .0,
        1007
    );
}

#[tokio::test]
async fn a_handshake_that_is_not_one_is_refused() {
    let hub = Hub::start(&[]);
    let client = reqwest::Client::new();
    let response = client
        .get(&hub.url)
        .header("upgrade", "websocket")
        .header("connection", "upgrade")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-version", "8")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 426);
    assert_eq!(response.headers()["sec-websocket-version"], "13");
    let response = client
        .get(&hub.url)
        .header("upgrade", "websocket")
        .header("connection", "upgrade")
        .header("sec-websocket-version", "13")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert!(response.text().await.unwrap().contains("Sec-WebSocket-Key"));
}

#[tokio::test]
async fn open_sockets_count_towards_max_connections_per_ip() {
    let hub = Hub::start(&["--max-connections-per-ip", "2"]);
    let first = open(&hub, &[]).await.expect("first socket");
    let mut second = open(&hub, &[]).await.expect("second socket");
    // Counted after their handshakes too: a third connection is one too many.
    let third = open(&hub, &[]).await;
    assert_eq!(third.err().map(|(status, _)| status), Some(429));
    drop(first);
    let mut again = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if let Ok(socket) = open(&hub, &[]).await {
            again = Some(socket);
            break;
        }
    }
    let mut again = again.expect("a closed socket gives its count back");
    again.subscribe("s", json!(BOOK), None).await;
    second.subscribe("s", json!(BOOK), None).await;
}

/// Two Chromium pages chat through the hub: each authenticates with a first
/// message, subscribes to the room and publishes to it; both read the same
/// conversation in the same order. A page on an origin the hub does not
/// allow cannot open a socket. Needs `chromium` and `node` (skips loudly
/// without them, fails under `TIDINGS_TEST_REQUIRE_ALL=1`).
#[test]
fn two_browser_pages_chat_over_websockets() {
    use support::browser::{run_script, tools};
    let Some(tools) = tools() else { return };
    let hub = Hub::start(&["--anonymous", "false"]);
    let room = "https://example.com/rooms/1";
    let chatter = |subject: &str| {
        let mut request = token_request(Role::Publisher, &[room], &hub.url);
        request.subject = subject.into();
        // Publish rights only, verified as either role: enough for a public
        // room, as a chat's tokens would be.
        mint(&request, &KeySource::Secret(SECRET.into())).unwrap()
    };
    // Another origin for the same hub: `localhost` rather than 127.0.0.1.
    // The page itself loads from it, so only the handshake can refuse.
    let foreign = hub.origin.replace("127.0.0.1", "localhost");
    let spec = json!({
        "chromium": tools.chromium,
        "origin": hub.origin,
        "foreignOrigin": foreign,
        "hubPath": url::Url::parse(&hub.url).unwrap().path(),
        "alice": chatter("alice"),
        "bob": chatter("bob"),
    });
    let (_, stdout) = run_script(&tools, "websocket.mjs", &spec);
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("no report from the pages ({e}): {stdout}"));
    assert!(report.get("error").is_none(), "{report}");
    for name in ["alice", "bob"] {
        let side = &report[name];
        assert_eq!(side["joined"], true, "{report}");
        assert_eq!(side["errors"], json!([]), "{report}");
        assert_eq!(side["acks"], json!(["m0", "m1"]), "{report}");
        let mut lines: Vec<&str> = side["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["data"].as_str().unwrap())
            .collect();
        assert_eq!(lines.len(), 4, "{report}");
        lines.sort();
        assert_eq!(
            lines,
            ["fine, thanks", "hello bob", "hi alice", "how are you?"]
        );
    }
    // Both read one conversation, in the hub's order.
    assert_eq!(
        report["alice"]["events"], report["bob"]["events"],
        "{report}"
    );
    assert_eq!(report["foreign"]["joined"], false, "{report}");
}

crate::cluster_tests!(sockets_on_two_nodes_share_the_log);

/// WebSockets on two nodes of a cluster: publications from a socket on one
/// node and from HTTP on the other reach both sockets in the log's order,
/// and a socket resumes on either node.
async fn sockets_on_two_nodes_share_the_log(engine: support::cluster::Engine) {
    use support::cluster::{Cluster, Node};
    let history = engine.history();
    let cluster = Cluster {
        nodes: vec![Node::start(&history, &[]), Node::start(&history, &[])],
        engine,
    };
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let mut on_a = open(a, &[]).await.unwrap();
    on_a.subscribe("s", json!(BOOK), None).await;
    let mut on_b = open_with_token(b, &both_roles(b, &["*"])).await;
    on_b.subscribe("s", json!(BOOK), None).await;

    on_b.send(json!({"type": "publish", "ref": "p", "topic": BOOK, "data": "from b"}))
        .await;
    let from_a = a.publish(BOOK, "from a").await;
    let mut seen_on_b = Vec::new();
    let mut ack = None;
    while seen_on_b.len() < 2 {
        let message = on_b.next().await;
        match message["type"].as_str() {
            Some("ack") => ack = Some(message["id"].as_str().unwrap().to_string()),
            Some("event") => seen_on_b.push(message["id"].as_str().unwrap().to_string()),
            _ => panic!("unexpected {message}"),
        }
    }
    let ack = match ack {
        Some(ack) => ack,
        None => on_b.next().await["id"].as_str().unwrap().to_string(),
    };
    let seen_on_a =
        [on_a.next().await, on_a.next().await].map(|m| m["id"].as_str().unwrap().to_string());
    assert_eq!(seen_on_a[..], seen_on_b[..], "one order on every node");
    let mut both = [ack, from_a];
    both.sort();
    let mut seen = seen_on_a.clone();
    seen.sort();
    assert_eq!(seen, both);

    // A cursor from one node resumes on the other.
    let mut resumed = open(b, &[]).await.unwrap();
    resumed
        .subscribe("s", json!(BOOK), Some(&seen_on_a[0]))
        .await;
    assert_eq!(resumed.next().await["id"], seen_on_a[1].as_str());
    resumed.quiet().await;
}

crate::cluster_tests!(a_node_behind_the_log_closes_its_sockets_with_4002);

/// A node cut off for longer than the log keeps what it missed closes its
/// sockets with 4002 rather than skip events; the client resumes from the
/// log, as an event stream would.
async fn a_node_behind_the_log_closes_its_sockets_with_4002(engine: support::cluster::Engine) {
    use support::cluster::{Cluster, Engine};
    // JetStream pushes to a consumer ahead of its reads: a paused node may
    // have everything before the log trims it, and then misses nothing.
    let pushes_ahead = matches!(engine, Engine::Nats(_) | Engine::NatsCluster(_));
    let cluster = Cluster::start(engine, 2, &["--retain-events", "5", "--stats", "off"]);
    let mut socket = open(&cluster[0], &[]).await.unwrap();
    socket.subscribe("s", json!(BOOK), None).await;
    cluster[1].publish_as(BOOK, "0", None).await;
    assert_eq!(socket.next().await["data"], "0");

    cluster[0].pause();
    // Past the node's read in flight, so that what follows is only in the
    // log, where retention trims it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for n in 1..=20 {
        cluster[1].publish_as(BOOK, &n.to_string(), None).await;
    }
    cluster[0].resume();

    let mut next = 1;
    let (code, reason) = loop {
        let message = tokio::time::timeout(WAIT, socket.ws.next())
            .await
            .expect("an event or the close in time");
        match message {
            Some(Ok(Message::Text(text))) => {
                let event: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(
                    event["data"],
                    next.to_string(),
                    "in order, nothing past a gap"
                );
                next += 1;
                if next == 21 && pushes_ahead {
                    return;
                }
            }
            Some(Ok(Message::Close(Some(frame)))) => break (u16::from(frame.code), frame.reason),
            Some(Ok(_)) => continue,
            other => panic!("the socket ended without a close frame: {other:?}"),
        }
    };
    assert_eq!(code, 4002, "{reason}");
    assert!(next < 21, "closed although nothing was missed");
}

crate::cluster_tests!(a_resume_the_log_cannot_serve_closes_with_1011);

/// A resume whose history read fails (the cluster's engine is gone, and
/// stays gone past the replay's patience) closes the socket with 1011; the
/// client comes back once the engine does, and misses nothing.
async fn a_resume_the_log_cannot_serve_closes_with_1011(engine: support::cluster::Engine) {
    use support::cluster::Cluster;
    let mut cluster = Cluster::start(engine, 1, &[]);
    for n in 0..3 {
        cluster[0].publish_as(BOOK, &n.to_string(), None).await;
    }
    cluster.engine.kill();
    let mut socket = open(&cluster[0], &[]).await.unwrap();
    socket
        .send(json!({"type": "subscribe", "subscription": "s", "match": BOOK, "last_event_id": "earliest"}))
        .await;
    assert_eq!(socket.next().await["type"], "subscribed");
    // The replay waits out an engine failover (10 s) first.
    let closed = tokio::time::timeout(Duration::from_secs(40), socket.closed_eventually());
    let (code, reason) = closed.await.expect("the close in time");
    assert_eq!(code, 1011, "{reason}");

    cluster.engine.restart();
    assert!(cluster[0].readiness_becomes(200, WAIT * 3).await);
    let mut again = open(&cluster[0], &[]).await.unwrap();
    again.subscribe("s", json!(BOOK), Some("earliest")).await;
    for n in 0..3 {
        assert_eq!(again.next().await["data"], n.to_string());
    }
}
