//! What operators meet: health, metrics, CORS, metadata, limits, slow
//! consumers, TLS and graceful shutdown, over real sockets.

mod support;

use std::process::Command;
use std::time::Duration;
use support::{opened, Hub};

async fn get(url: &str) -> reqwest::Response {
    reqwest::get(url).await.unwrap()
}

#[tokio::test]
async fn health_readiness_page_and_metrics() {
    let hub = Hub::start(&[]);
    assert_eq!(get(&format!("{}/healthz", hub.origin)).await.status(), 200);
    assert_eq!(get(&format!("{}/readyz", hub.origin)).await.status(), 200);
    let page = get(&format!("{}/", hub.origin)).await.text().await.unwrap();
    assert!(
        page.contains("EventSource") && page.contains(&hub.url),
        "{page}"
    );
    let mut stream = opened(&hub.subscribe_url("match=m")).await;
    hub.publish("m", "x").await;
    stream.next().await;
    // Dispatch counts a delivery once it has handed the event to every
    // subscriber, which may be just after this one read it.
    let mut metrics = String::new();
    for _ in 0..50 {
        metrics = get(&format!("{}/metrics", hub.origin))
            .await
            .text()
            .await
            .unwrap();
        if metrics.contains("tidings_updates_delivered_total 1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for line in [
        "tidings_subscribers 1",
        "tidings_subscriptions 1",
        "tidings_updates_published_total 1",
        "tidings_updates_delivered_total 1",
        "tidings_slow_disconnects_total 0",
        "tidings_publish_duration_seconds_count 1",
        "tidings_history_events",
    ] {
        assert!(metrics.contains(line), "missing {line}:\n{metrics}");
    }
}

#[tokio::test]
async fn protected_resource_metadata_describes_the_hub() {
    let hub = Hub::start(&[]);
    let url = format!(
        "{}/.well-known/oauth-protected-resource/.well-known/mercure",
        hub.origin
    );
    let document: serde_json::Value =
        serde_json::from_str(&get(&url).await.text().await.unwrap()).unwrap();
    assert_eq!(document["resource"], hub.url);
    assert_eq!(
        document["authorization_details_types_supported"][0],
        "https://mercure.rocks/authorization-detail"
    );
    assert_eq!(document["bearer_methods_supported"][0], "header");
    assert_eq!(document["mercure_cookie"], "__Secure-mercure_access_token");
}

#[tokio::test]
async fn cors_allows_listed_origins_only_and_never_star_with_credentials() {
    let hub = Hub::start(&[
        "--cors-origins",
        "https://app.example,https://admin.example",
    ]);
    let client = reqwest::Client::new();
    let allowed = client
        .get(hub.subscribe_url("match=c"))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(
        allowed.headers()["access-control-allow-credentials"],
        "true"
    );
    let denied = client
        .get(hub.subscribe_url("match=c"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(denied
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    let preflight = client
        .request(reqwest::Method::OPTIONS, &hub.url)
        .header("origin", "https://admin.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://admin.example"
    );
    assert!(preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("Authorization"));

    let public = Hub::start(&["--cors-origins", "*"]);
    let any = client
        .get(public.subscribe_url("match=c"))
        .header("origin", "https://any.example")
        .send()
        .await
        .unwrap();
    assert_eq!(any.headers()["access-control-allow-origin"], "*");
    assert!(any
        .headers()
        .get("access-control-allow-credentials")
        .is_none());
}

#[tokio::test]
async fn connections_beyond_the_limit_get_429() {
    let hub = Hub::start(&["--max-connections", "2"]);
    let _a = opened(&hub.subscribe_url("match=a")).await;
    let _b = opened(&hub.subscribe_url("match=b")).await;
    let refused = get(&hub.subscribe_url("match=c")).await;
    assert_eq!(refused.status(), 429);
    assert!(refused.text().await.unwrap().contains("limit of 2"));
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Subscribers that never read are disconnected when their queue fills, so
/// the hub's memory stays bounded however long publishing goes on.
#[tokio::test]
async fn slow_consumers_are_disconnected_and_memory_stays_bounded() {
    use tokio::io::AsyncWriteExt;
    let hub = Hub::start(&[
        "--queue-events",
        "64",
        "--queue-bytes",
        "65536",
        "--retain-events",
        "1000",
    ]);
    let address = hub.origin.trim_start_matches("http://").to_string();
    let mut sleepers = Vec::new();
    for _ in 0..1000 {
        let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
        // A tiny receive window so the kernel cannot absorb the backlog.
        let request = "GET /.well-known/mercure?match=flood HTTP/1.1\r\nHost: x\r\n\r\n";
        socket.write_all(request.as_bytes()).await.unwrap();
        sleepers.push(socket);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let payload = "y".repeat(2000);
    let token = hub.publisher_token();
    let mut samples = Vec::new();
    for round in 0..6 {
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let (url, token, payload) = (hub.url.clone(), token.clone(), payload.clone());
            tasks.push(tokio::spawn(async move {
                let client = support::client();
                for _ in 0..100 {
                    let body = format!("topic=flood&data={payload}");
                    assert_eq!(support::post_form(&client, &url, &token, body).await, 200);
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        if round >= 2 {
            samples.push(rss_kib(hub.pid()));
        }
    }
    let slow = hub.metric("tidings_slow_disconnects_total").await;
    assert!(
        slow >= 900,
        "expected most sleepers disconnected as slow, got {slow}"
    );
    // 2,400 events of 2 KB to 1,000 subscribers would be 4.8 GB unbounded.
    let (first, last) = (samples[0], *samples.last().unwrap());
    assert!(last < 256 * 1024, "RSS {last} KiB");
    assert!(
        last < first * 2 + 16 * 1024,
        "RSS kept growing: {samples:?}"
    );
    drop(sleepers);
}

/// A subscriber that stops reading fills its socket, then its queue; the
/// hub then drops the connection itself instead of waiting for a client
/// that may never read again.
#[tokio::test]
async fn a_stalled_reader_is_dropped_without_its_help() {
    use tokio::io::AsyncWriteExt;
    let hub = Hub::start(&["--queue-events", "16", "--queue-bytes", "65536"]);
    let address = hub.origin.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    // A tiny receive window so the kernel cannot absorb the backlog.
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(address).await.unwrap();
    stalled
        .write_all(b"GET /.well-known/mercure?match=stall HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(
        hub.metric_reaches("tidings_subscribers", 1, Duration::from_secs(5))
            .await,
        "never subscribed"
    );
    let payload = "s".repeat(8000);
    let token = hub.publisher_token();
    let client = support::client();
    for _ in 0..400 {
        let body = format!("topic=stall&data={payload}");
        assert_eq!(
            support::post_form(&client, &hub.url, &token, body).await,
            200
        );
    }
    assert!(
        hub.metric_reaches("tidings_subscribers", 0, Duration::from_secs(10))
            .await,
        "the stalled connection is still held"
    );
    drop(stalled);
}

/// A hub serving TLS on a certificate made for 127.0.0.1, with `extra`
/// arguments; the directory holds the certificate for as long as it lives.
fn tls_hub(extra: &[&str]) -> (Hub, rcgen::CertifiedKey<rcgen::KeyPair>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
    let mut args = vec![
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    (Hub::start(&args), generated, dir)
}

/// What a rustls client needs to trust `generated` alone.
fn trusting(
    generated: &rcgen::CertifiedKey<rcgen::KeyPair>,
) -> (
    tokio_rustls::rustls::RootCertStore,
    std::sync::Arc<tokio_rustls::rustls::crypto::CryptoProvider>,
) {
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(generated.cert.der().clone()).unwrap();
    (
        roots,
        std::sync::Arc::new(rustls::crypto::ring::default_provider()),
    )
}

/// Over TLS without HTTP/2 an event stream goes through hyper, which stops
/// polling it once the client stops reading; the hub still notices its
/// queue overflow and drops the connection, as on the other paths.
#[tokio::test]
async fn a_stalled_tls_http1_reader_is_dropped_without_its_help() {
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls;
    let (hub, generated, _dir) = tls_hub(&["--queue-events", "16", "--queue-bytes", "65536"]);
    assert!(hub.url.starts_with("https://127.0.0.1:"), "{}", hub.url);
    let https = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(generated.cert.pem().as_bytes()).unwrap(),
        )
        .build()
        .unwrap();
    let subscribers = || async {
        let text = https
            .get(format!("{}/metrics", hub.origin))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("tidings_subscribers "))
            .unwrap();
        line["tidings_subscribers ".len()..]
            .trim()
            .parse::<u64>()
            .unwrap()
    };

    let (roots, provider) = trusting(&generated);
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let address = hub.origin.trim_start_matches("https://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    // A tiny receive window so the kernel cannot absorb the backlog.
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(address).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut stalled = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    assert_eq!(stalled.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    stalled
        .write_all(b"GET /.well-known/mercure?match=stall HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 512];
    let n = stalled.read(&mut head).await.unwrap();
    assert!(
        head[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&head[..n])
    );
    assert_eq!(subscribers().await, 1);

    // From here on the client reads nothing.
    let payload = "s".repeat(8000);
    let token = hub.publisher_token();
    for _ in 0..400 {
        let body = format!("topic=stall&data={payload}");
        assert_eq!(
            support::post_form(&https, &hub.url, &token, body).await,
            200
        );
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while subscribers().await != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stalled TLS connection is still held"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(stalled);
}

/// A connection that holds a descriptor without asking for anything, or
/// sends its request head a byte at a time, is closed after
/// `--head-timeout`; an open event stream is not.
#[tokio::test]
async fn connections_that_send_no_request_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let hub = Hub::start(&["--head-timeout", "300ms"]);
    let address = hub.origin.trim_start_matches("http://").to_string();
    let mut stream = opened(&hub.subscribe_url("match=t")).await;
    let mut silent = tokio::net::TcpStream::connect(&address).await.unwrap();
    let mut partial = tokio::net::TcpStream::connect(&address).await.unwrap();
    partial
        .write_all(b"GET /.well-known/mercure?match=t HTTP/1.1\r\nHo")
        .await
        .unwrap();
    let mut kept_alive = tokio::net::TcpStream::connect(&address).await.unwrap();
    kept_alive
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answered = Vec::new();
    for socket in [&mut silent, &mut partial, &mut kept_alive] {
        let mut read = Vec::new();
        // An end of file or a reset: either way the hub closed it.
        let _ = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut read))
            .await
            .expect("connection still open after the head timeout");
        answered.push(String::from_utf8_lossy(&read).into_owned());
    }
    assert_eq!(answered[0], "");
    assert!(answered[2].starts_with("HTTP/1.1 200"), "{}", answered[2]);
    hub.publish("t", "still open").await;
    assert_eq!(stream.next().await.data, "still open");
}

/// A TLS handshake that stalls (nothing sent, or a ClientHello begun and
/// never finished) is cut at `--head-timeout` like a plain request head,
/// not before; the hub serves TLS clients meanwhile.
#[tokio::test]
async fn a_stalled_tls_handshake_is_cut_at_the_head_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let hub = Hub::start(&["--tls-self-signed", "--head-timeout", "1s"]);
    let address = hub.origin.trim_start_matches("https://").to_string();
    let opened_at = std::time::Instant::now();
    let silent = tokio::net::TcpStream::connect(&address).await.unwrap();
    let mut begun = tokio::net::TcpStream::connect(&address).await.unwrap();
    // A handshake record header announcing 512 bytes, then a few of them.
    begun
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01])
        .await
        .unwrap();
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let healthy = client.get(format!("{}/healthz", hub.origin)).send().await;
    assert_eq!(healthy.unwrap().status(), 200, "served meanwhile");
    for (what, mut socket) in [("silent", silent), ("begun", begun)] {
        let mut read = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut read))
            .await
            .unwrap_or_else(|_| panic!("{what}: still open after the head timeout"));
        let waited = opened_at.elapsed();
        assert!(
            waited >= Duration::from_millis(900),
            "{what}: cut early, at {waited:?}"
        );
    }
}

/// Over TLS a first request head no server could serve gets what it gets in
/// the clear: a problem document saying why, not hyper's empty answer.
#[tokio::test]
async fn heads_no_server_could_serve_get_a_reason_over_tls_too() {
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls;
    let (hub, generated, _dir) = tls_hub(&[]);
    let (roots, provider) = trusting(&generated);
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let address = hub.origin.trim_start_matches("https://").to_string();
    let get = "GET /.well-known/mercure?match=t HTTP/1.1\r\nHost: x\r\n";
    let many: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let cases = [
        (
            "\x00\x01GARBAGE\r\n\r\n".to_string(),
            "HTTP/1.1 400",
            "a malformed request head",
        ),
        (
            format!("{get}{many}\r\n"),
            "HTTP/1.1 431",
            "more than 100 header fields",
        ),
        (format!("{get}\r\n"), "HTTP/1.1 200", "text/event-stream"),
    ];
    for (request, status, detail) in cases {
        let tcp = tokio::net::TcpStream::connect(&address).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        tls.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&answer).contains(detail) {
            match tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => answer.extend_from_slice(&buf[..n]),
                _ => break,
            }
        }
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with(status), "{request:.40?}: {answer:?}");
        assert!(answer.contains(detail), "{request:.40?}: {answer:?}");
    }
}

/// Slowloris: a head or a publication body that keeps trickling in is cut
/// at `--head-timeout` all the same, the body with a `408` saying why.
#[tokio::test]
async fn a_trickled_head_or_body_is_cut_at_the_head_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let hub = Hub::start(&["--head-timeout", "500ms"]);
    let address = hub.origin.trim_start_matches("http://").to_string();
    let token = hub.publisher_token();
    let head = "GET /.well-known/mercure?match=t HTTP/1.1\r\nHost: x\r\nX-Pad: ".to_string();
    let body = format!(
        "POST /.well-known/mercure HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\ntopic=t&data="
    );
    for (what, start) in [("head", head), ("body", body)] {
        let socket = tokio::net::TcpStream::connect(&address).await.unwrap();
        let (mut read, mut write) = socket.into_split();
        write.write_all(start.as_bytes()).await.unwrap();
        // One byte every 100 ms, well past the timeout, unless cut.
        let trickle = tokio::spawn(async move {
            for _ in 0..100 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if write.write_all(b"a").await.is_err() {
                    return;
                }
            }
        });
        let mut answer = Vec::new();
        let started = std::time::Instant::now();
        // An end of file or a reset: either way the hub closed it.
        let _ = tokio::time::timeout(Duration::from_secs(5), read.read_to_end(&mut answer))
            .await
            .unwrap_or_else(|_| panic!("{what}: still open after 5 s"));
        assert!(started.elapsed() < Duration::from_secs(3), "{what}");
        trickle.abort();
        let answer = String::from_utf8_lossy(&answer);
        match what {
            "head" => assert_eq!(answer, "", "{what}"),
            _ => {
                assert!(answer.starts_with("HTTP/1.1 408"), "{what}: {answer}");
                assert!(answer.contains("--head-timeout"), "{what}: {answer}");
            }
        }
    }
}

/// `--workers` sets the runtime's threads; the hub serves the same with
/// one or several, and refuses none.
#[tokio::test]
async fn workers_set_the_serving_threads() {
    for workers in ["1", "3"] {
        let hub = Hub::start(&["--workers", workers]);
        let mut stream = opened(&hub.subscribe_url("match=w")).await;
        hub.publish("w", "served").await;
        assert_eq!(stream.next().await.data, "served");
    }
    let refused = Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args(["serve", "--workers", "0"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--workers must be at least 1"), "{stderr}");
}

#[tokio::test]
async fn sigterm_ends_streams_cleanly_and_exits() {
    // A long grace period: exiting well within it shows nothing idle held
    // the shutdown up.
    let mut hub = Hub::start(&["--shutdown-grace", "60s"]);
    let mut stream = opened(&hub.subscribe_url("match=bye")).await;
    // Browsers keep a spare connection open with no request on it yet.
    let address = hub.origin.trim_start_matches("http://").to_string();
    let _spare = tokio::net::TcpStream::connect(&address).await.unwrap();
    hub.terminate();
    assert!(
        stream.ends_within(Duration::from_secs(5)).await,
        "stream not ended by shutdown"
    );
    let status = hub.exits_within(Duration::from_secs(10)).await;
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn settings_come_from_flags_then_environment_then_file() {
    let dir = std::env::temp_dir().join(format!("tidings-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tidings.toml");
    std::fs::write(
        &file,
        "retry = 111\nkeep-alive = \"10s\"\nmax-connections = 5\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let hub = Hub::start(&["--config", path, "--retry", "222"]);
    let mut stream = opened(&hub.subscribe_url("match=c")).await;
    hub.publish("c", "x").await;
    stream.next().await;
    assert!(
        stream.raw.starts_with("retry: 222\n"),
        "flag must win: {:?}",
        stream.raw
    );
    drop(stream);
    let args = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--jwt-key",
        support::SECRET,
        "--config",
        path,
    ];
    let from_env = Hub::start_env(&args, &[("TIDINGS_RETRY", "333")]);
    let mut stream = opened(&from_env.subscribe_url("match=c")).await;
    from_env.publish("c", "x").await;
    stream.next().await;
    assert!(
        stream.raw.starts_with("retry: 333\n"),
        "variable must beat the file: {:?}",
        stream.raw
    );
    let from_file = Hub::start(&["--config", path]);
    let mut stream = opened(&from_file.subscribe_url("match=c")).await;
    from_file.publish("c", "x").await;
    stream.next().await;
    assert!(
        stream.raw.starts_with("retry: 111\n"),
        "file value expected: {:?}",
        stream.raw
    );
}

#[tokio::test]
async fn bad_settings_fail_with_one_line() {
    let output = Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args(["serve", "--listen", "127.0.0.1:0", "--keep-alive", "soon"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("tidings: ") && stderr.contains("soon"),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_cli_publishes_subscribes_and_mints_tokens() {
    let hub = Hub::start(&[]);
    let bin = env!("CARGO_BIN_EXE_tidings");
    let token = Command::new(bin)
        .args([
            "token",
            "--jwt-key",
            support::SECRET,
            "--issuer",
            &hub.origin,
            "--audience",
            &hub.url,
        ])
        .output()
        .unwrap();
    assert!(token.status.success());
    let token = String::from_utf8(token.stdout).unwrap().trim().to_string();
    let reader = std::process::Command::new(bin)
        .args([
            "subscribe",
            "--hub",
            &hub.url,
            "--match",
            "cli",
            "--json",
            "--count",
            "2",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the subscription is registered before publishing.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = get(&format!("{}/metrics", hub.origin))
            .await
            .text()
            .await
            .unwrap();
        if metrics.contains("tidings_subscribers 1") {
            break;
        }
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for data in ["first", "second\nline"] {
        let published = Command::new(bin)
            .args([
                "publish", "--hub", &hub.url, "--token", &token, "--topic", "cli", "--type",
                "note", data,
            ])
            .output()
            .unwrap();
        assert!(
            published.status.success(),
            "{}",
            String::from_utf8_lossy(&published.stderr)
        );
        assert!(String::from_utf8_lossy(&published.stdout).starts_with("urn:uuid:"));
    }
    let output = reader.wait_with_output().unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["data"], "first");
    assert_eq!(lines[1]["data"], "second\nline");
    assert_eq!(lines[1]["type"], "note");
    let refused = Command::new(bin)
        .args([
            "publish", "--hub", &hub.url, "--token", "bad", "--topic", "cli", "x",
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("401"), "{stderr}");
}

/// Near the open-files limit the hub refuses new subscribers with a clean
/// 429, logs why, and keeps serving the subscribers it has.
#[tokio::test]
async fn the_open_files_limit_refuses_cleanly() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let log = std::env::temp_dir().join(format!("tidings-nofile-{}.log", std::process::id()));
    let command = format!(
        "ulimit -n 160; exec {} serve --listen 127.0.0.1:0 --jwt-key {} 2>{}",
        env!("CARGO_BIN_EXE_tidings"),
        support::SECRET,
        log.display()
    );
    let hub = Hub::start_with_shell(&command);
    let address = hub.origin.trim_start_matches("http://").to_string();
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..110 {
        let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
        socket
            .write_all(b"GET /.well-known/mercure?match=fd HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut head = [0u8; 12];
        let read = tokio::time::timeout(Duration::from_secs(5), socket.read_exact(&mut head)).await;
        match &head {
            _ if read.is_err() => panic!("a connection was left hanging instead of refused"),
            b"HTTP/1.1 200" => held.push(socket),
            b"HTTP/1.1 429" => refused += 1,
            other => panic!("unexpected answer {:?}", String::from_utf8_lossy(other)),
        }
    }
    assert_eq!(
        (held.len(), refused),
        (96, 14),
        "160 open files leave 96 subscribers"
    );
    hub.publish("fd", "still here").await;
    for socket in held.iter_mut() {
        let mut buffer = vec![0u8; 4096];
        let mut text = String::new();
        while !text.contains("still here") {
            let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buffer))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "an existing subscriber was cut off");
            text.push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
    }
    let logged = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    assert!(logged.contains("at the connection limit"), "{logged}");
}
