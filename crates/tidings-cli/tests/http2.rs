//! HTTP/2: multiplexed event streams, publishing and errors on the same
//! connection, TLS through ALPN, and streams a client resets or stops
//! reading, over real sockets with real HTTP/2 clients.

mod support;

use bytes::Bytes;
use futures_util::StreamExt;
use std::time::Duration;
use support::Hub;

fn h2c_client() -> reqwest::Client {
    reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap()
}

type Body = std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// Opens an event stream, checks it came over HTTP/2, and reads its
/// opening frame.
async fn open_stream(request: reqwest::RequestBuilder) -> Body {
    let response = request.send().await.unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    let mut body: Body = Box::pin(response.bytes_stream());
    body.next().await.unwrap().unwrap();
    body
}

/// Reads until `needle` has arrived; returns what was read.
async fn read_until(body: &mut Body, needle: &str) -> String {
    let mut seen = String::new();
    while !seen.contains(needle) {
        let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} within 5 s; got {seen:?}"))
            .expect("the stream goes on")
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    seen
}

#[tokio::test]
async fn http2_cleartext_subscriptions_multiplex() {
    let hub = Hub::start(&[]);
    let client = h2c_client();
    let mut streams = Vec::new();
    for n in 0..20 {
        let url = hub.subscribe_url(&format!("match=h2-{n}"));
        streams.push(open_stream(client.get(url)).await);
    }
    for n in 0..20 {
        hub.publish(&format!("h2-{n}"), &format!("over h2 {n}"))
            .await;
    }
    for (n, stream) in streams.iter_mut().enumerate() {
        let chunk = stream.next().await.unwrap().unwrap();
        assert!(String::from_utf8_lossy(&chunk).contains(&format!("data: over h2 {n}")));
    }
}

#[tokio::test]
async fn self_signed_tls_serves_http2_through_alpn() {
    let hub = Hub::start(&["--tls-self-signed"]);
    assert!(hub.url.starts_with("https://localhost:"), "{}", hub.url);
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let response = client
        .get(hub.subscribe_url("match=tls"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
}

#[tokio::test]
async fn keep_alive_is_sent_over_http2_too() {
    let hub = Hub::start(&["--keep-alive", "200ms"]);
    let mut body = open_stream(h2c_client().get(hub.subscribe_url("match=k"))).await;
    let mut comments = 0;
    while comments < 3 {
        let chunk = tokio::time::timeout(Duration::from_secs(3), body.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        comments += String::from_utf8_lossy(&chunk).matches(":\n\n").count();
    }
}

#[tokio::test]
async fn publishing_and_errors_share_the_connection_with_streams() {
    let hub = Hub::start(&[]);
    let client = h2c_client();
    let mut body = open_stream(client.get(hub.subscribe_url("match=shared"))).await;

    let published = client
        .post(&hub.url)
        .bearer_auth(hub.publisher_token())
        .header("content-type", "application/x-www-form-urlencoded")
        .body("topic=shared&data=over+one+connection")
        .send()
        .await
        .unwrap();
    assert_eq!(published.version(), reqwest::Version::HTTP_2);
    assert_eq!(published.status(), 200);
    let id = published.text().await.unwrap();
    let chunk = body.next().await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&chunk);
    assert!(
        text.contains(&format!("id: {id}")) && text.contains("data: over one connection"),
        "{text}"
    );

    let refused = client
        .get(hub.subscribe_url("nomatch=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    let problem: serde_json::Value = serde_json::from_str(&refused.text().await.unwrap()).unwrap();
    assert_eq!(problem["status"], 400);
    assert!(problem["detail"].as_str().unwrap().contains("matcher"));

    let metadata = client
        .get(format!("{}/healthz", hub.origin))
        .send()
        .await
        .unwrap();
    assert_eq!(metadata.status(), 200);
    assert_eq!(metadata.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn a_stream_the_client_resets_is_unsubscribed() {
    let hub = Hub::start(&[]);
    let client = h2c_client();
    let mut responses = Vec::new();
    for _ in 0..3 {
        let response = client
            .get(hub.subscribe_url("match=reset"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        responses.push(response);
    }
    assert!(
        hub.metric_reaches("tidings_subscribers", 3, Duration::from_secs(5))
            .await
    );
    // Dropping a response resets its stream; the connection stays.
    responses.truncate(1);
    assert!(
        hub.metric_reaches("tidings_subscribers", 1, Duration::from_secs(5))
            .await,
        "reset streams still subscribed"
    );
    hub.publish("reset", "still here").await;
    let mut body: Body = Box::pin(responses.pop().unwrap().bytes_stream());
    read_until(&mut body, "still here").await;
}

/// A client that stops reading closes its flow-control window; the hub
/// queues for it up to the bound, then resets the stream and forgets the
/// subscriber, without the client's help and without touching the other
/// streams on the connection.
#[tokio::test]
async fn a_stalled_http2_reader_is_reset_when_its_queue_overflows() {
    let hub = Hub::start(&["--queue-events", "16", "--queue-bytes", "65536"]);
    let address = hub.origin.trim_start_matches("http://").to_string();
    let socket = tokio::net::TcpStream::connect(&address).await.unwrap();
    let (send, connection) = h2::client::Builder::new()
        .initial_window_size(1024)
        .handshake::<_, Bytes>(socket)
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut send = send.ready().await.unwrap();
    let request = |topic: &str| {
        http::Request::get(hub.subscribe_url(&format!("match={topic}")))
            .body(())
            .unwrap()
    };
    let (stalled, _) = send.send_request(request("stalled"), true).unwrap();
    let (reading, _) = send.send_request(request("reading"), true).unwrap();
    let mut stalled = stalled.await.unwrap().into_body();
    let mut reading = reading.await.unwrap().into_body();
    assert!(
        hub.metric_reaches("tidings_subscribers", 2, Duration::from_secs(5))
            .await
    );

    let payload = "z".repeat(1000);
    let token = hub.publisher_token();
    let client = support::client();
    for _ in 0..64 {
        let body = format!("topic=stalled&data={payload}");
        assert_eq!(
            support::post_form(&client, &hub.url, &token, body).await,
            200
        );
    }
    assert!(
        hub.metric_reaches("tidings_subscribers", 1, Duration::from_secs(10))
            .await,
        "the stalled stream is still subscribed"
    );
    assert_eq!(hub.metric("tidings_slow_disconnects_total").await, 1);
    // What fitted in the window arrives, then the reset.
    let mut received = 0;
    let reason = loop {
        match tokio::time::timeout(Duration::from_secs(5), stalled.data())
            .await
            .expect("the stalled stream ends")
        {
            Some(Ok(chunk)) => received += chunk.len(),
            Some(Err(error)) => break error.reason(),
            None => panic!("ended cleanly, expected a reset"),
        }
    };
    assert_eq!(reason, Some(h2::Reason::CANCEL));
    assert!(
        received <= 64 * 1024,
        "{received} bytes past a 1 KiB window"
    );

    hub.publish("reading", "unharmed").await;
    let mut seen = String::new();
    while !seen.contains("unharmed") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), reading.data())
            .await
            .expect("the other stream still delivers")
            .unwrap()
            .unwrap();
        let _ = reading.flow_control().release_capacity(chunk.len());
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}

/// Shutdown ends HTTP/2 streams cleanly (end of stream, not a reset, so
/// `EventSource` reconnects) and the hub exits well within its grace period.
#[tokio::test]
async fn sigterm_ends_http2_streams_cleanly_and_exits() {
    let mut hub = Hub::start(&["--shutdown-grace", "60s"]);
    let mut body = open_stream(h2c_client().get(hub.subscribe_url("match=bye"))).await;
    hub.terminate();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), body.next())
            .await
            .expect("stream not ended by shutdown")
        {
            Some(Ok(_)) => continue,
            Some(Err(error)) => panic!("stream ended with an error: {error}"),
            None => break,
        }
    }
    let status = hub.exits_within(Duration::from_secs(10)).await;
    assert!(status.success(), "{status}");
}

/// An HTTP/2 connection that carries no stream for `--head-timeout` is
/// closed; one carrying an event stream is not.
#[tokio::test]
async fn an_idle_http2_connection_is_closed() {
    let hub = Hub::start(&["--head-timeout", "300ms"]);
    let address = hub.origin.trim_start_matches("http://").to_string();
    let socket = tokio::net::TcpStream::connect(&address).await.unwrap();
    let (_send, connection) = h2::client::handshake(socket).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), connection)
        .await
        .expect("an idle HTTP/2 connection stayed open")
        .unwrap();

    let mut body = open_stream(h2c_client().get(hub.subscribe_url("match=busy"))).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    hub.publish("busy", "kept").await;
    read_until(&mut body, "data: kept").await;
}

/// `QUERY` subscriptions work over HTTP/2 as over HTTP/1.1: matchers from
/// the body, errors as problem details.
#[tokio::test]
async fn query_subscriptions_over_http2() {
    let hub = Hub::start(&[]);
    let client = h2c_client();
    let query = reqwest::Method::from_bytes(b"QUERY").unwrap();
    let queried = client
        .request(query.clone(), &hub.url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("match=queried-h2");
    let mut body = open_stream(queried).await;
    hub.publish("queried-h2", "by body").await;
    read_until(&mut body, "data: by body").await;

    let refused = client
        .request(query, &hub.url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("nomatch=1")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
}
