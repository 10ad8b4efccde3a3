//! Limits against abuse: connections per client address (behind trusted
//! proxies too, and never fooled by a forwarding header from anyone else)
//! and publications per second per token subject and per address, over
//! real sockets from distinct loopback addresses against a real hub.
//!
//! Clients connect from 127.0.0.2 and up (all of 127/8 is loopback), so
//! that the test's own metrics requests, from 127.0.0.1, are never the
//! ones a limit refuses.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::Duration;
use support::{Hub, SECRET};
use tidings::auth::{mint, KeySource, Role};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

fn loopback(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

fn address(hub: &Hub) -> SocketAddr {
    hub.origin.trim_start_matches("http://").parse().unwrap()
}

/// A connection to the hub from `127.0.0.{from}`.
async fn connect_from(hub: &Hub, from: u8) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(loopback(from), 0)).unwrap();
    socket.connect(address(hub)).await.unwrap()
}

/// Sends a raw HTTP/1.1 request and reads the response head (and, for a
/// refusal, its body): the status and what was read.
async fn request(socket: &mut TcpStream, head: &str) -> (u16, String) {
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut read = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buffer))
            .await
            .expect("an answer within 5 s")
            .unwrap();
        read.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&read).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let status = head[9..12].parse().unwrap();
            // An event stream's head is all there is to wait for; a
            // refusal's body follows at once, then the connection closes.
            if status == 200 && head.contains("text/event-stream") {
                return (status, text);
            }
            if n == 0 || body.contains('}') {
                return (status, text);
            }
        }
        assert!(n > 0, "closed without an answer: {text:?}");
    }
}

/// Opens an event stream over plain HTTP/1.1 (the direct path) from
/// `127.0.0.{from}`, with extra header lines; returns the socket and status.
async fn subscribe_from(hub: &Hub, from: u8, extra: &str) -> (TcpStream, u16, String) {
    let mut socket = connect_from(hub, from).await;
    let head = format!("GET /.well-known/mercure?match=limits HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
    let (status, text) = request(&mut socket, &head).await;
    (socket, status, text)
}

fn client_from(from: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(loopback(from))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn h2c_client_from(from: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(loopback(from))
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn assert_too_many(status: u16, text: &str) {
    assert_eq!(status, 429, "{text}");
    let lower = text.to_ascii_lowercase();
    assert!(lower.contains("retry-after: "), "{text}");
    assert!(lower.contains("application/problem+json"), "{text}");
}

/// Past the limit, a client address gets 429 with `Retry-After` on every
/// path (the direct event stream path, hyper, HTTP/2), counted and logged
/// once however many are refused; closing a connection frees its place.
#[tokio::test]
async fn connections_past_the_per_address_limit_get_429_on_every_path() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hub.log");
    let hub = Hub::start_logging(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--jwt-key",
            SECRET,
            "--log",
            "warn",
            "--max-connections-per-ip",
            "2",
        ],
        &log,
    );
    let (first, status, _) = subscribe_from(&hub, 2, "").await;
    assert_eq!(status, 200);
    let (_second, status, _) = subscribe_from(&hub, 2, "").await;
    assert_eq!(status, 200);

    // The direct path.
    let (_, status, text) = subscribe_from(&hub, 2, "").await;
    assert_too_many(status, &text);
    assert!(text.contains("limit of 2 connections"), "{text}");
    // hyper: a publication.
    let published = client_from(2)
        .post(&hub.url)
        .bearer_auth(hub.publisher_token())
        .form(&[("topic", "limits"), ("data", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(published.status(), 429);
    assert_eq!(published.headers()["retry-after"], "10");
    // HTTP/2 with prior knowledge: a stream and a plain request.
    let h2 = h2c_client_from(2);
    let refused = h2
        .get(hub.subscribe_url("match=limits"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.version(), reqwest::Version::HTTP_2);
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let problem: serde_json::Value = serde_json::from_str(&refused.text().await.unwrap()).unwrap();
    assert_eq!(problem["status"], 429);
    // Another address is not concerned.
    let (_other, status, _) = subscribe_from(&hub, 3, "").await;
    assert_eq!(status, 200);

    // A flood of refusals: every one counted, one log line.
    for _ in 0..200 {
        let mut socket = connect_from(&hub, 2).await;
        let (status, _) = request(&mut socket, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(status, 429);
    }
    assert!(hub.metric("tidings_connections_refused_per_ip_total").await >= 203);
    let logged = std::fs::read_to_string(&log).unwrap();
    let lines = logged
        .lines()
        .filter(|line| line.contains("max-connections-per-ip"))
        .count();
    assert_eq!(lines, 1, "{logged}");

    // Closing a stream frees its place.
    drop(first);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (_socket, status, _) = subscribe_from(&hub, 2, "").await;
        if status == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the place was never freed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `X-Forwarded-For` and `Forwarded` from a peer that is not a trusted
/// proxy are ignored: a client cannot dodge its limit by claiming to be
/// someone else.
#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_change_nothing() {
    let hub = Hub::start(&[
        "--max-connections-per-ip",
        "1",
        "--trusted-proxies",
        "127.0.0.3",
    ]);
    let (_held, status, _) = subscribe_from(&hub, 2, "X-Forwarded-For: 198.51.100.1\r\n").await;
    assert_eq!(status, 200);
    for spoof in [
        "X-Forwarded-For: 198.51.100.2\r\n",
        "X-Forwarded-For: 198.51.100.3, 127.0.0.3\r\n",
        "Forwarded: for=198.51.100.4\r\n",
    ] {
        let (_, status, text) = subscribe_from(&hub, 2, spoof).await;
        assert_too_many(status, &text);
    }
    let response = h2c_client_from(2)
        .get(hub.subscribe_url("match=limits"))
        .header("x-forwarded-for", "198.51.100.5")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
}

/// Behind a trusted proxy, each request is counted under the client it
/// forwards (the right-most hop the proxy did not add itself), for as
/// long as it lasts: the proxy's own address never fills up, one client
/// behind it is still held to the limit, on HTTP/1.1 and HTTP/2 alike.
#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_is_counted() {
    let hub = Hub::start(&[
        "--max-connections-per-ip",
        "1",
        "--trusted-proxies",
        "127.0.0.3/32,10.0.0.0/8",
    ]);
    let proxy = 3;
    let forwarded = |client: &str| format!("X-Forwarded-For: {client}\r\n");
    let (first, status, _) = subscribe_from(&hub, proxy, &forwarded("198.51.100.1")).await;
    assert_eq!(status, 200);
    // Many clients through one proxy.
    let mut held = Vec::new();
    for n in 2..6 {
        let (socket, status, text) =
            subscribe_from(&hub, proxy, &forwarded(&format!("198.51.100.{n}"))).await;
        assert_eq!(status, 200, "{text}");
        held.push(socket);
    }
    // One client behind it is held to its limit, whatever it prepends, and
    // however the proxy says it (an inner proxy in 10/8 being trusted).
    for again in [
        forwarded("198.51.100.1"),
        forwarded("203.0.113.7, 198.51.100.1"),
        forwarded("198.51.100.1, 10.1.2.3"),
        "Forwarded: for=\"198.51.100.1:4711\";proto=https\r\n".to_string(),
    ] {
        let (_, status, text) = subscribe_from(&hub, proxy, &again).await;
        assert_too_many(status, &text);
    }
    // Over HTTP/2, per stream.
    let h2 = h2c_client_from(proxy);
    let refused = h2
        .get(hub.subscribe_url("match=limits"))
        .header("x-forwarded-for", "198.51.100.1")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    let admitted = h2
        .get(hub.subscribe_url("match=limits"))
        .header("x-forwarded-for", "198.51.100.9")
        .send()
        .await
        .unwrap();
    assert_eq!(admitted.status(), 200);
    let second = h2
        .get(hub.subscribe_url("match=limits"))
        .header("x-forwarded-for", "198.51.100.9")
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 429);
    // A request the router serves (a publication, through hyper) is
    // counted too.
    let published = client_from(proxy)
        .post(&hub.url)
        .header("x-forwarded-for", "198.51.100.1")
        .bearer_auth(hub.publisher_token())
        .form(&[("topic", "limits"), ("data", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(published.status(), 429);
    let published = client_from(proxy)
        .post(&hub.url)
        .header("x-forwarded-for", "198.51.100.200")
        .bearer_auth(hub.publisher_token())
        .form(&[("topic", "limits"), ("data", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(published.status(), 200);
    // Ending a forwarded stream frees its client's place, on either path.
    drop(first);
    drop(admitted);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (_socket, status, _) = subscribe_from(&hub, proxy, &forwarded("198.51.100.1")).await;
        let again = h2
            .get(hub.subscribe_url("match=limits"))
            .header("x-forwarded-for", "198.51.100.9")
            .send()
            .await
            .unwrap();
        if status == 200 && again.status() == 200 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "places never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn token_for(hub: &Hub, subject: &str) -> String {
    let mut request = support::token_request(Role::Publisher, &["*"], &hub.url);
    request.subject = subject.into();
    mint(&request, &KeySource::Secret(SECRET.into())).unwrap()
}

async fn publish_from(
    hub: &Hub,
    from: u8,
    token: &str,
    forwarded: Option<&str>,
) -> reqwest::Response {
    let mut request = client_from(from)
        .post(&hub.url)
        .bearer_auth(token)
        .form(&[("topic", "rate"), ("data", "x")]);
    if let Some(client) = forwarded {
        request = request.header("x-forwarded-for", client);
    }
    request.send().await.unwrap()
}

/// A token bucket per token subject and per client address: past the
/// burst, 429 with `Retry-After` and a reason, counted; a spoofed
/// forwarding header does not open a new bucket; the bucket refills.
#[tokio::test]
async fn publishing_past_the_rate_gets_429_until_the_bucket_refills() {
    let hub = Hub::start(&[
        "--publish-rate",
        "1",
        "--publish-burst",
        "3",
        "--trusted-proxies",
        "127.0.0.9",
    ]);
    let alice = token_for(&hub, "alice");
    for _ in 0..3 {
        assert_eq!(publish_from(&hub, 2, &alice, None).await.status(), 200);
    }
    let refused = publish_from(&hub, 2, &alice, None).await;
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    let problem: serde_json::Value = serde_json::from_str(&refused.text().await.unwrap()).unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("faster than"),
        "{problem}"
    );

    // The subject's bucket, from another address.
    let refused = publish_from(&hub, 4, &alice, None).await;
    assert_eq!(refused.status(), 429);
    assert!(refused.text().await.unwrap().contains("subject"));
    // The address's bucket, with another subject, and whatever it claims.
    let bob = token_for(&hub, "bob");
    for claim in [None, Some("198.51.100.1"), Some("198.51.100.2")] {
        let refused = publish_from(&hub, 2, &bob, claim).await;
        assert_eq!(refused.status(), 429);
        assert!(refused.text().await.unwrap().contains("address"));
    }
    // Neither: a new subject from a new address.
    assert_eq!(publish_from(&hub, 5, &bob, None).await.status(), 200);
    // Behind the trusted proxy, the forwarded client has its own bucket.
    let carol = token_for(&hub, "carol");
    assert_eq!(
        publish_from(&hub, 9, &carol, Some("198.51.100.1"))
            .await
            .status(),
        200
    );
    assert!(hub.metric("tidings_publications_rate_limited_total").await >= 5);

    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    assert_eq!(publish_from(&hub, 2, &alice, None).await.status(), 200);
}

/// The limits are settings like any other: a TOML key, a variable, a
/// flag; nonsense fails with one line.
#[tokio::test]
async fn the_limits_come_from_the_file_and_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tidings.toml");
    std::fs::write(
        &file,
        "max-connections-per-ip = 1\ntrusted-proxies = [\"127.0.0.3\"]\npublish-rate = 1\n",
    )
    .unwrap();
    let args = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--jwt-key",
        SECRET,
        "--log",
        "warn",
        "--config",
        file.to_str().unwrap(),
    ];
    let hub = Hub::start_env(&args, &[("TIDINGS_PUBLISH_BURST", "2")]);
    let (_held, status, _) = subscribe_from(&hub, 2, "").await;
    assert_eq!(status, 200);
    let (_, status, text) = subscribe_from(&hub, 2, "").await;
    assert_too_many(status, &text);
    let (_proxied, status, _) = subscribe_from(&hub, 3, "X-Forwarded-For: 198.51.100.1\r\n").await;
    assert_eq!(status, 200);
    let (_, status, _) = subscribe_from(&hub, 3, "X-Forwarded-For: 198.51.100.2\r\n").await;
    assert_eq!(status, 200);
    // One connection (kept alive): a second would be past the limit.
    let publisher = client_from(4);
    let token = token_for(&hub, "dave");
    for expected in [200, 200, 429] {
        let response = publisher
            .post(&hub.url)
            .bearer_auth(&token)
            .form(&[("topic", "rate"), ("data", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected);
        if expected == 429 {
            let text = response.text().await.unwrap();
            assert!(text.contains("faster than"), "{text}");
        }
    }

    for (flag, value, complaint) in [
        ("--max-connections-per-ip", "0", "at least 1"),
        ("--publish-rate", "0", "at least 1"),
        (
            "--trusted-proxies",
            "10.0.0.0/8,proxy.example",
            "proxy.example",
        ),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_tidings"))
            .args(["serve", "--listen", "127.0.0.1:0", flag, value])
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(complaint), "{stderr}");
    }
}
