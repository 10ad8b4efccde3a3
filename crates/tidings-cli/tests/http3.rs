//! HTTP/3 (`--http3`): subscribing, publishing, resuming, a stalled reader's
//! reset and bad requests over QUIC with a real HTTP/3 client, the Alt-Svc
//! advertisement over TCP, and Chromium's `EventSource` over HTTP/3.

mod support;

use bytes::{Buf, Bytes};
use h3::client::{RequestStream, SendRequest};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use support::browser::{run_script, tools};
use support::Hub;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::CertificateDer;

/// A hub serving TLS and HTTP/3 with a certificate the test made and trusts.
struct Secure {
    hub: Hub,
    certificate: CertificateDer<'static>,
    address: SocketAddr,
    _files: tempfile::TempDir,
}

impl Secure {
    fn start(extra: &[&str]) -> Secure {
        Secure::start_serving(true, extra)
    }

    fn start_serving(http3: bool, extra: &[&str]) -> Secure {
        let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let files = tempfile::tempdir().unwrap();
        let cert = files.path().join("cert.pem");
        let key = files.path().join("key.pem");
        std::fs::write(&cert, generated.cert.pem()).unwrap();
        std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
        let mut args = vec![
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--http3",
            if http3 { "true" } else { "false" },
        ];
        args.extend_from_slice(extra);
        let hub = Hub::start(&args);
        let address = hub.origin.trim_start_matches("https://").parse().unwrap();
        Secure {
            hub,
            certificate: generated.cert.der().clone(),
            address,
            _files: files,
        }
    }

    async fn connect(&self) -> Client {
        Client::connect(self, None).await
    }

    fn tls(&self, alpn: &[u8]) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.certificate.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![alpn.to_vec()];
        tls
    }

    /// A TCP client (HTTP/1.1 and HTTP/2) trusting the hub's certificate.
    fn tcp_client(&self) -> reqwest::Client {
        let pem = pem_of(&self.certificate);
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
            .build()
            .unwrap()
    }
}

fn pem_of(der: &CertificateDer) -> String {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|chunk| std::str::from_utf8(chunk).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

/// An HTTP/3 connection to the hub.
struct Client {
    send: SendRequest<h3_quinn::OpenStreams, Bytes>,
    origin: String,
    /// Resolves when the connection closes, with the reason.
    closed: tokio::task::JoinHandle<h3::error::ConnectionError>,
    _endpoint: quinn::Endpoint,
}

type Stream = RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>;

impl Client {
    /// Connects; `window` is the flow-control window of each stream the
    /// client receives on.
    async fn connect(hub: &Secure, window: Option<u32>) -> Client {
        let tls = hub.tls(b"h3");
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
        let mut config = quinn::ClientConfig::new(Arc::new(crypto));
        if let Some(window) = window {
            let mut transport = quinn::TransportConfig::default();
            transport.stream_receive_window(window.into());
            config.transport_config(Arc::new(transport));
        }
        let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        endpoint.set_default_client_config(config);
        let quic = endpoint
            .connect(hub.address, "127.0.0.1")
            .unwrap()
            .await
            .expect("a QUIC connection to the hub");
        let (mut driver, send) = h3::client::new(h3_quinn::Connection::new(quic))
            .await
            .expect("an HTTP/3 connection");
        let closed = tokio::spawn(async move { driver.wait_idle().await });
        Client {
            send,
            origin: hub.hub.origin.clone(),
            closed,
            _endpoint: endpoint,
        }
    }

    /// Sends a request (`target`: path and query) and its body; returns
    /// the response head and the stream to read its body from.
    async fn request(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> (http::Response<()>, Stream) {
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("{}{}", self.origin, target));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut stream = self
            .send
            .send_request(request.body(()).unwrap())
            .await
            .unwrap();
        // The hub may stop reading a body it refuses (413) before all of it
        // is sent; its answer comes all the same.
        let sent = match body {
            Some(body) => {
                let sent = stream.send_data(Bytes::copy_from_slice(body.as_bytes()));
                sent.await
            }
            None => Ok(()),
        };
        if sent.is_ok() {
            stream.finish().await.unwrap();
        }
        let response = stream.recv_response().await.unwrap();
        (response, stream)
    }

    /// A request whose whole body is read: status, head and body.
    async fn fetch(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> (u16, http::HeaderMap, String) {
        let (response, mut stream) = self.request(method, target, headers, body).await;
        let mut text = Vec::new();
        while let Some(mut chunk) = stream.recv_data().await.unwrap() {
            text.extend_from_slice(&chunk.copy_to_bytes(chunk.remaining()));
        }
        let (parts, ()) = response.into_parts();
        (
            parts.status.as_u16(),
            parts.headers,
            String::from_utf8(text).unwrap(),
        )
    }

    /// Publishes `data` on `topic` over this connection; returns the id.
    async fn publish(&mut self, hub: &Hub, topic: &str, data: &str) -> String {
        let (status, _, body) = self.publish_form(hub, topic, data).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn publish_form(
        &mut self,
        hub: &Hub,
        topic: &str,
        data: &str,
    ) -> (u16, http::HeaderMap, String) {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("topic", topic), ("data", data)])
            .finish();
        let bearer = format!("Bearer {}", hub.publisher_token());
        let headers = [
            ("content-type", "application/x-www-form-urlencoded"),
            ("authorization", bearer.as_str()),
        ];
        self.fetch("POST", "/.well-known/mercure", &headers, Some(&body))
            .await
    }

    /// Opens an event stream on `query`, with extra request headers.
    async fn subscribe(&mut self, query: &str, headers: &[(&str, &str)]) -> Events {
        let (response, stream) = self
            .request(
                "GET",
                &format!("/.well-known/mercure?{query}"),
                headers,
                None,
            )
            .await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream",
            "{response:?}"
        );
        Events {
            stream,
            seen: String::new(),
        }
    }

    /// A gauge or counter from the hub's metrics, read over HTTP/3.
    async fn metric(&mut self, name: &str) -> u64 {
        let (status, _, text) = self.fetch("GET", "/metrics", &[], None).await;
        assert_eq!(status, 200);
        let prefix = format!("{name} ");
        text.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .trim()
            .parse()
            .unwrap()
    }

    async fn metric_reaches(&mut self, name: &str, value: u64) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::time::Instant::now() < deadline {
            if self.metric(name).await == value {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }
}

/// An event stream read over HTTP/3.
struct Events {
    stream: Stream,
    seen: String,
}

impl Events {
    /// Reads until `needle` has arrived; returns everything read so far.
    async fn until(&mut self, needle: &str) -> &str {
        while !self.seen.contains(needle) {
            let chunk = tokio::time::timeout(Duration::from_secs(5), self.stream.recv_data())
                .await
                .unwrap_or_else(|_| panic!("no {needle:?} within 5 s; got {:?}", self.seen))
                .expect("the stream goes on")
                .expect("more of the stream");
            self.seen.push_str(&String::from_utf8_lossy(chunk.chunk()));
        }
        &self.seen
    }
}

#[tokio::test]
async fn subscribe_and_publish_over_http3() {
    let secure = Secure::start(&[]);
    let mut client = secure.connect().await;
    let mut first = client.subscribe("match=https://example.com/a", &[]).await;
    let mut second = client.subscribe("match=https://example.com/b", &[]).await;
    first.until("id: ").await;
    second.until("id: ").await;
    // Both streams and the publications share one QUIC connection.
    let a = client
        .publish(&secure.hub, "https://example.com/a", "for a")
        .await;
    let b = client
        .publish(&secure.hub, "https://example.com/b", "for b")
        .await;
    let seen = first.until("data: for a").await;
    assert!(
        seen.contains(&format!("id: {a}\ndata: for a\n\n")),
        "{seen}"
    );
    let seen = second.until("data: for b").await;
    assert!(
        seen.contains(&format!("id: {b}\ndata: for b\n\n")),
        "{seen}"
    );
    assert!(!seen.contains("for a"), "{seen}");
    assert_eq!(client.metric("tidings_subscribers").await, 2);
}

/// HTTP/1.1 and HTTP/2 responses, the event stream's among them, name the
/// HTTP/3 endpoint on the same port number.
#[tokio::test]
async fn tcp_responses_advertise_http3() {
    let secure = Secure::start(&[]);
    let want = format!("h3=\":{}\"; ma=86400", secure.address.port());
    let client = secure.tcp_client();
    let response = client
        .get(format!("{}/healthz", secure.hub.origin))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.headers()["alt-svc"], want.as_str());
    let stream = client
        .get(secure.hub.subscribe_url("match=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["alt-svc"], want.as_str());
    let refused = client.get(&secure.hub.url).send().await.unwrap();
    assert_eq!(refused.status(), 400);
    assert_eq!(refused.headers()["alt-svc"], want.as_str());

    let http1 = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(pem_of(&secure.certificate).as_bytes()).unwrap(),
        )
        .http1_only()
        .build()
        .unwrap();
    let response = http1
        .get(format!("{}/healthz", secure.hub.origin))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    assert_eq!(response.headers()["alt-svc"], want.as_str());

    // Without --http3 nothing is advertised.
    let plain = Secure::start_serving(false, &[]);
    let response = plain
        .tcp_client()
        .get(format!("{}/healthz", plain.hub.origin))
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("alt-svc").is_none());
}

#[tokio::test]
async fn a_stream_resumes_after_last_event_id_over_http3() {
    let secure = Secure::start(&[]);
    let mut client = secure.connect().await;
    let topic = "https://example.com/resume";
    let mut ids = Vec::new();
    for n in 1..=3 {
        ids.push(client.publish(&secure.hub, topic, &n.to_string()).await);
    }
    let mut events = client
        .subscribe(&format!("match={topic}"), &[("last-event-id", &ids[0])])
        .await;
    let seen = events.until("data: 3").await.to_string();
    assert!(!seen.contains("data: 1\n"), "{seen}");
    assert!(
        seen.contains(&format!(
            "id: {}\ndata: 2\n\nid: {}\ndata: 3\n\n",
            ids[1], ids[2]
        )),
        "{seen}"
    );
    // And live events follow the replay on the same stream.
    let live = client.publish(&secure.hub, topic, "4").await;
    assert!(events
        .until("data: 4")
        .await
        .contains(&format!("id: {live}\ndata: 4\n\n")));
}

/// The one sweeper's keep-alives reach HTTP/3 streams too.
#[tokio::test]
async fn keep_alive_is_sent_over_http3_too() {
    let secure = Secure::start(&["--keep-alive", "200ms"]);
    let mut client = secure.connect().await;
    let mut events = client.subscribe("match=k", &[]).await;
    events.until("id: ").await;
    let opening = events.seen.len();
    while events.seen[opening..].matches(":\n\n").count() < 3 {
        let chunk = tokio::time::timeout(Duration::from_secs(3), events.stream.recv_data())
            .await
            .expect("a keep-alive within 3 s")
            .unwrap()
            .expect("the stream goes on");
        events
            .seen
            .push_str(&String::from_utf8_lossy(chunk.chunk()));
    }
}

/// A client that stops reading exhausts its stream's flow-control window;
/// the hub queues for it up to the bound, then resets that stream (and
/// only that one) and forgets the subscriber.
#[tokio::test]
async fn a_stalled_http3_reader_is_reset_when_its_queue_overflows() {
    let secure = Secure::start(&["--queue-events", "16", "--queue-bytes", "65536"]);
    let mut client = Client::connect(&secure, Some(4096)).await;
    let mut stalled = client.subscribe("match=stalled", &[]).await;
    let mut reading = client.subscribe("match=reading", &[]).await;
    reading.until("id: ").await;
    assert!(client.metric_reaches("tidings_subscribers", 2).await);

    let payload = "z".repeat(1000);
    let mut publisher = secure.connect().await;
    for _ in 0..64 {
        publisher.publish(&secure.hub, "stalled", &payload).await;
    }
    assert!(
        client.metric_reaches("tidings_subscribers", 1).await,
        "the stalled stream is still subscribed"
    );
    assert_eq!(client.metric("tidings_slow_disconnects_total").await, 1);
    // What fitted in the window arrives, then the reset.
    let mut received = 0;
    let error = loop {
        match tokio::time::timeout(Duration::from_secs(5), stalled.stream.recv_data())
            .await
            .expect("the stalled stream ends")
        {
            Ok(Some(chunk)) => received += chunk.remaining(),
            Ok(None) => panic!("ended cleanly, expected a reset"),
            Err(error) => break error,
        }
    };
    assert!(
        error.to_string().contains("H3_REQUEST_CANCELLED"),
        "expected a reset with H3_REQUEST_CANCELLED: {error}"
    );
    assert!(received <= 8 * 1024, "{received} bytes past a 4 KiB window");
    // The other stream on the connection carries on.
    let id = publisher
        .publish(&secure.hub, "reading", "still here")
        .await;
    assert!(reading
        .until("still here")
        .await
        .contains(&format!("id: {id}\n")));
}

/// Bad input over HTTP/3 gets the same answers as over HTTP/1.1 and
/// HTTP/2: a 4xx with a problem document saying why.
#[tokio::test]
async fn bad_requests_over_http3_get_4xx_with_reasons() {
    let secure = Secure::start(&[]);
    let mut client = secure.connect().await;
    let hub = &secure.hub;
    let problem = |headers: &http::HeaderMap| headers["content-type"] == "application/problem+json";

    let (status, headers, body) = client.fetch("GET", "/.well-known/mercure", &[], None).await;
    assert_eq!(status, 400, "{body}");
    assert!(problem(&headers), "{headers:?}");
    assert!(body.contains("match"), "{body}");

    // A control character in a topic selector.
    let (status, headers, body) = client
        .fetch("GET", "/.well-known/mercure?match=a%01b", &[], None)
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(problem(&headers), "{headers:?}");

    let form = "topic=https%3A%2F%2Fexample.com%2Fx&data=1";
    let (status, headers, body) = client
        .fetch(
            "POST",
            "/.well-known/mercure",
            &[("content-type", "application/x-www-form-urlencoded")],
            Some(form),
        )
        .await;
    assert_eq!(status, 401, "{body}");
    assert!(headers["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));

    let bearer = format!("Bearer {}", hub.publisher_token());
    let (status, _, body) = client
        .fetch(
            "POST",
            "/.well-known/mercure",
            &[("content-type", "text/plain"), ("authorization", &bearer)],
            Some(form),
        )
        .await;
    assert_eq!(status, 415, "{body}");

    let (status, _, body) = client
        .fetch(
            "POST",
            "/.well-known/mercure",
            &[("authorization", "Bearer not-a-token")],
            Some(form),
        )
        .await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("invalid") || body.contains("token"), "{body}");

    let (status, headers, body) = client.fetch("PUT", "/.well-known/mercure", &[], None).await;
    assert_eq!(status, 405, "{body}");
    assert_eq!(headers["allow"], "GET, QUERY, POST, OPTIONS");

    // A body over --max-body.
    let large = format!("topic=x&data={}", "a".repeat(2 << 20));
    let (status, _, body) = client
        .fetch(
            "POST",
            "/.well-known/mercure",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("authorization", &bearer),
            ],
            Some(&large),
        )
        .await;
    assert_eq!(status, 413, "{body}");

    // The connection is still good after all of that.
    let (status, _, _) = client.fetch("GET", "/healthz", &[], None).await;
    assert_eq!(status, 200);
}

/// QUERY subscribes with the matchers in the body, over HTTP/3 too.
#[tokio::test]
async fn query_subscriptions_over_http3() {
    let secure = Secure::start(&[]);
    let mut client = secure.connect().await;
    let (response, stream) = {
        let target = "/.well-known/mercure";
        let headers = [("content-type", "application/x-www-form-urlencoded")];
        client
            .request(
                "QUERY",
                target,
                &headers,
                Some("match=https%3A%2F%2Fexample.com%2Fq"),
            )
            .await
    };
    assert_eq!(response.status(), 200);
    let mut events = Events {
        stream,
        seen: String::new(),
    };
    events.until("id: ").await;
    let id = client
        .publish(&secure.hub, "https://example.com/q", "queried")
        .await;
    assert!(events
        .until("data: queried")
        .await
        .contains(&format!("id: {id}\n")));
}

/// A QUIC connection that asks for nothing is closed after --head-timeout;
/// one carrying an event stream is not.
#[tokio::test]
async fn an_idle_http3_connection_is_closed() {
    let secure = Secure::start(&["--head-timeout", "1s"]);
    let idle = secure.connect().await;
    let mut busy = secure.connect().await;
    let mut events = busy.subscribe("match=busy", &[]).await;
    events.until("id: ").await;
    let closed = tokio::time::timeout(Duration::from_secs(5), idle.closed)
        .await
        .expect("the hub closes an idle connection")
        .unwrap();
    assert!(closed.is_h3_no_error(), "{closed}");

    let id = secure
        .connect()
        .await
        .publish(&secure.hub, "busy", "kept")
        .await;
    assert!(events
        .until("data: kept")
        .await
        .contains(&format!("id: {id}\n")));
}

/// On SIGTERM an HTTP/3 event stream ends cleanly (the browser reconnects
/// elsewhere) and the hub exits.
#[tokio::test]
async fn sigterm_ends_http3_streams_cleanly_and_exits() {
    let mut secure = Secure::start(&["--shutdown-grace", "60s"]);
    let mut client = secure.connect().await;
    let mut events = client.subscribe("match=bye", &[]).await;
    events.until("id: ").await;
    secure.hub.terminate();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), events.stream.recv_data())
            .await
            .expect("stream not ended by shutdown")
        {
            Ok(Some(_)) => continue,
            Ok(None) => break,
            Err(error) => panic!("stream ended with an error: {error}"),
        }
    }
    let status = secure.hub.exits_within(Duration::from_secs(10)).await;
    assert!(status.success(), "{status}");
}

#[test]
fn http3_needs_tls() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--history",
            "memory",
            "--http3",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--http3 needs TLS"), "{stderr}");
}

/// Chromium's own `EventSource` over HTTP/3, against the hub's generated
/// development certificate: Chromium is told to use QUIC for the origin and
/// to accept that certificate's key (the hint the hub prints), and the page
/// reports the protocol its requests went over.
#[test]
fn eventsource_over_http3_in_chromium() {
    let Some(tools) = tools() else { return };
    let hub = Hub::start(&["--tls-self-signed", "--http3"]);
    let hint = hub
        .printed("HTTP/3 in Chromium: ", Duration::from_secs(5))
        .expect("the hub prints the Chromium flags for its certificate");
    let words: Vec<&str> = hint
        .trim_start_matches("HTTP/3 in Chromium: ")
        .split(' ')
        .collect();
    let (flags, origin) = match words.as_slice() {
        [force, spki, "(open", page] => ([*force, *spki], page.trim_end_matches("/)")),
        _ => panic!("unexpected hint {hint:?}"),
    };
    let spec = serde_json::json!({
        "chromium": tools.chromium,
        "origin": origin,
        "flags": flags,
        "topic": "https://example.com/h3",
        "publisherToken": hub.publisher_token(),
        "timeoutMs": 30_000,
    });
    let (status, stdout) = run_script(&tools, "http3.mjs", &spec);
    assert!(status.success(), "the page failed: {stdout}");
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["navigation"], "h3", "{report}");
    assert_eq!(report["publish"], "h3", "{report}");
    let events = report["events"].as_array().unwrap();
    let data: Vec<&str> = events.iter().map(|e| e["data"].as_str().unwrap()).collect();
    assert_eq!(data, ["one", "two"], "{report}");
    for (event, id) in events.iter().zip(report["published"].as_array().unwrap()) {
        assert_eq!(event["id"], *id, "{report}");
    }
}
