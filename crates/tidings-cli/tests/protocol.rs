//! Subscribing and publishing over real HTTP: matchers of both generations,
//! the event stream format, and every publish rule.

mod support;

use std::time::Duration;
use support::{opened, Hub, Stream};

#[tokio::test]
async fn an_exact_subscriber_receives_what_is_published() {
    let hub = Hub::start(&[]);
    let mut stream =
        opened(&hub.subscribe_url("match=https%3A%2F%2Fexample.com%2Fbooks%2F1")).await;
    assert_eq!(
        stream.header("content-type").as_deref(),
        Some("text/event-stream")
    );
    let cache = stream.header("cache-control").unwrap();
    assert!(
        cache.contains("no-cache") && cache.contains("no-transform"),
        "{cache}"
    );
    assert_eq!(stream.header("x-accel-buffering").as_deref(), Some("no"));
    hub.publish("https://example.com/books/2", "not for us")
        .await;
    let id = hub.publish("https://example.com/books/1", "dune").await;
    let event = stream.next().await;
    assert_eq!(event.data, "dune");
    assert_eq!(event.id.as_deref(), Some(id.as_str()));
    assert!(id.starts_with("urn:uuid:"), "{id}");
}

#[tokio::test]
async fn frames_carry_every_field_and_split_data_lines() {
    let hub = Hub::start(&[]);
    let mut stream = opened(&hub.subscribe_url("match=t")).await;
    let form = [
        ("topic", "t"),
        ("data", "line one\nline two\r\nid: forged"),
        ("id", "my-id-1"),
        ("type", "book"),
        ("retry", "2500"),
    ];
    let (status, body) = hub.post(Some(&hub.publisher_token()), &form).await;
    assert_eq!((status, body.as_str()), (200, "my-id-1"));
    let event = stream.next().await;
    assert_eq!(event.data, "line one\nline two\nid: forged");
    assert_eq!(event.id.as_deref(), Some("my-id-1"));
    assert_eq!(event.kind.as_deref(), Some("book"));
    assert!(stream.raw.contains("retry: 2500\n"), "{}", stream.raw);
    assert!(stream.raw.contains("data: id: forged\n"), "{}", stream.raw);
}

#[tokio::test]
async fn url_patterns_and_uri_templates_select_topics() {
    let hub = Hub::start(&[]);
    let mut pattern =
        opened(&hub.subscribe_url("match_urlpattern=https%3A%2F%2Fexample.com%2Fbooks%2F%3Aid"))
            .await;
    let mut template =
        opened(&hub.subscribe_url("topic=https%3A%2F%2Fexample.com%2Fbooks%2F%7Bid%7D")).await;
    let mut wildcard = opened(&hub.subscribe_url("topic=*")).await;
    hub.publish("https://example.com/books/1/chapters/2", "deeper")
        .await;
    hub.publish("https://example.com/authors/1", "author").await;
    hub.publish("https://example.com/books/7", "seven").await;
    assert_eq!(pattern.next().await.data, "seven");
    assert_eq!(template.next().await.data, "seven");
    let all: Vec<String> = wildcard.take(3).await.into_iter().map(|m| m.data).collect();
    assert_eq!(all, ["deeper", "author", "seven"]);
}

#[tokio::test]
async fn alternate_topics_reach_their_subscribers_once() {
    let hub = Hub::start(&[]);
    let mut both = opened(
        &hub.subscribe_url("match=a&match=b&match_urlpattern=https%3A%2F%2Fx.example%2F%3Aany"),
    )
    .await;
    let mut alternate = opened(&hub.subscribe_url("match=b")).await;
    let token = hub.publisher_token();
    let form = [
        ("topic", "a"),
        ("topic", "b"),
        ("topic", "https://x.example/1"),
        ("data", "once"),
    ];
    assert_eq!(hub.post(Some(&token), &form).await.0, 200);
    hub.publish("a", "second").await;
    assert_eq!(both.next().await.data, "once");
    assert_eq!(both.next().await.data, "second");
    assert_eq!(alternate.next().await.data, "once");
}

#[tokio::test]
async fn query_method_takes_matchers_from_the_body() {
    let hub = Hub::start(&[]);
    let response = reqwest::Client::new()
        .request(reqwest::Method::from_bytes(b"QUERY").unwrap(), &hub.url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("match=from-body")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    use futures_util::StreamExt;
    let opening = body.next().await.unwrap().unwrap();
    assert!(
        opening.starts_with(b"id: "),
        "the opening frame carries the cursor"
    );
    hub.publish("from-body", "queried").await;
    let mut seen = String::new();
    while !seen.contains("data: queried") {
        seen.push_str(&String::from_utf8_lossy(
            &body.next().await.unwrap().unwrap(),
        ));
    }
}

#[tokio::test]
async fn bad_subscriptions_get_400_with_a_reason() {
    let hub = Hub::start(&[]);
    let long = "x".repeat(5000);
    let many = vec!["match=a"; 65].join("&");
    let wild = format!("match_urlpattern=%2F{}", "*".repeat(17));
    let cases = [
        ("match_regex=a", "not a matcher type"),
        ("MATCH=a", "not a matcher type"),
        ("matches=a", "not a matcher type"),
        ("other=a", "at least one topic matcher"),
        ("match=a%0Ab", "control character"),
        ("match=a%E2%80%8Bb", "format character"),
        ("match=%FF", "not valid UTF-8"),
        (
            "match_urlpattern=https%3A%2F%2Fexample.com%2F(",
            "URL pattern",
        ),
        (&wild, "at most 16 wildcards and groups"),
        (&format!("match={long}"), "longer than"),
        (&many, "more than 64"),
    ];
    for (query, reason) in cases {
        let response = reqwest::get(hub.subscribe_url(query)).await.unwrap();
        assert_eq!(response.status(), 400, "{query}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let body = response.text().await.unwrap();
        assert!(body.contains(reason), "{query}: {body}");
    }
}

#[tokio::test]
async fn bad_publications_get_400_or_413_with_a_reason() {
    let hub = Hub::start(&["--max-body", "4096"]);
    let token = hub.publisher_token();
    type Case<'a> = (Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (vec![("data", "no topic")], 400, "at least one `topic`"),
        (vec![("topic", "*")], 400, "reserved for the wildcard"),
        (
            vec![("topic", "/.well-known/mercure/subscriptions/x")],
            400,
            "reserved namespace",
        ),
        (
            vec![("topic", "/.well-known/%6Dercure/x")],
            400,
            "reserved namespace",
        ),
        (
            vec![("topic", "/.well-known/mercure/../mercure/x")],
            400,
            "reserved namespace",
        ),
        (
            vec![("topic", "ok"), ("topic", &hub.url)],
            400,
            "reserved namespace",
        ),
        (vec![("topic", "a\u{0}b")], 400, "control character"),
        (vec![("topic", "a\u{202e}b")], 400, "format character"),
        (
            vec![("topic", "t"), ("type", "mercure")],
            400,
            "reserved for events the hub",
        ),
        (
            vec![("topic", "t"), ("type", "a\nb")],
            400,
            "control character",
        ),
        (
            vec![("topic", "t"), ("id", "#1")],
            400,
            "must not start with `#`",
        ),
        (
            vec![("topic", "t"), ("id", "earliest")],
            400,
            "`earliest` is reserved",
        ),
        (
            vec![("topic", "t"), ("id", "a\rb")],
            400,
            "control character",
        ),
        (vec![("topic", "t"), ("retry", "10s")], 400, "ASCII digits"),
        (vec![("topic", "t"), ("retry", "-1")], 400, "ASCII digits"),
    ];
    for (form, status, reason) in cases {
        let (got, body) = hub.post(Some(&token), &form).await;
        assert_eq!(got, status, "{form:?}: {body}");
        assert!(body.contains(reason), "{form:?}: {body}");
    }
    let big = "x".repeat(5000);
    let (status, body) = hub
        .post(Some(&token), &[("topic", "t"), ("data", &big)])
        .await;
    assert_eq!(status, 413, "{body}");
    let topics: Vec<(&str, &str)> = (0..33).map(|_| ("topic", "t")).collect();
    let (status, body) = hub.post(Some(&token), &topics).await;
    assert_eq!(status, 413, "{body}");
    let response = support::client()
        .post(&hub.url)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"topic\":\"t\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    let invalid_utf8 = support::client()
        .post(&hub.url)
        .bearer_auth(&token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("topic=t&data=%FF")
        .send()
        .await
        .unwrap();
    assert_eq!(invalid_utf8.status(), 400);
}

#[tokio::test]
async fn unknown_fields_are_ignored_and_private_needs_no_value() {
    let hub = Hub::start(&[]);
    let (status, _) = hub
        .post(
            Some(&hub.publisher_token()),
            &[("topic", "t"), ("future", "x"), ("private", "")],
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn keep_alive_comments_flow_on_idle_streams() {
    let hub = Hub::start(&["--keep-alive", "300ms"]);
    let mut stream = Stream::open(&hub.subscribe_url("match=idle"), &[]).await;
    assert!(stream
        .next_within(Duration::from_millis(1500))
        .await
        .is_none());
    let comments = stream.raw.matches(":\n\n").count();
    assert!(comments >= 3, "expected keep-alives, got {:?}", stream.raw);
}

#[tokio::test]
async fn the_retry_setting_opens_every_stream() {
    let hub = Hub::start(&["--retry", "1234"]);
    let mut stream = opened(&hub.subscribe_url("match=t")).await;
    hub.publish("t", "x").await;
    stream.next().await;
    assert!(
        stream.raw.starts_with("retry: 1234\n\n"),
        "{:?}",
        stream.raw
    );
}

/// Events published back to back reach a subscriber on the direct path
/// through lingering writes: every one, in order, and the last ones too,
/// which wait for the flusher with nothing published after them.
#[tokio::test]
async fn a_burst_arrives_whole_and_in_order_through_the_flush() {
    let hub = Hub::start(&[]);
    let mut stream = opened(&hub.subscribe_url("match=burst")).await;
    for round in 0..3 {
        for i in 0..100 {
            hub.publish("burst", &format!("{round}-{i}")).await;
        }
        for i in 0..100 {
            let event = stream
                .next_within(Duration::from_secs(2))
                .await
                .unwrap_or_else(|| panic!("event {round}-{i} not flushed"));
            assert_eq!(event.data, format!("{round}-{i}"));
        }
        // A quiet spell: the next round starts on an idle connection.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A method an endpoint does not serve gets 405, the methods it does
/// serve in `Allow`, and a problem document.
#[tokio::test]
async fn other_methods_get_405_with_allow() {
    let hub = Hub::start(&["--subscriptions"]);
    let client = reqwest::Client::new();
    for (url, allow) in [
        (hub.url.clone(), "GET, QUERY, POST, OPTIONS"),
        (format!("{}/stats", hub.url), "GET, OPTIONS"),
        (format!("{}/subscriptions", hub.url), "GET, HEAD, OPTIONS"),
    ] {
        let answer = client.delete(&url).send().await.unwrap();
        assert_eq!(answer.status(), 405, "{url}");
        assert_eq!(answer.headers()["allow"], allow, "{url}");
        assert_eq!(
            answer.headers()["content-type"],
            "application/problem+json",
            "{url}"
        );
    }
}

/// Sends `request` on a fresh connection, in pieces of `piece` bytes, and
/// returns the status line of the answer (empty if the hub just closed).
async fn raw_status(address: &str, request: &[u8], piece: usize) -> String {
    let answer = raw_answer(address, request, piece, |answer| {
        answer.windows(2).any(|w| w == b"\r\n")
    })
    .await;
    answer.lines().next().unwrap_or("").to_string()
}

/// Sends `request` in pieces of `piece` bytes; what the hub answers, read
/// until `enough` says so or the hub closes the connection.
async fn raw_answer(
    address: &str,
    request: &[u8],
    piece: usize,
    enough: impl Fn(&[u8]) -> bool,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    socket.set_nodelay(true).unwrap();
    for chunk in request.chunks(piece) {
        // The hub may answer and close before reading everything.
        if socket.write_all(chunk).await.is_err() {
            break;
        }
    }
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !enough(&answer) {
        match tokio::time::timeout(Duration::from_secs(10), socket.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Err(_) => panic!("no answer to {:?}", String::from_utf8_lossy(&request[..40])),
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// Raw request heads a stranger may send: garbage, a head too large, too
/// many header fields, a bad Content-Length, and a valid head arriving one
/// byte at a time. Each is answered, none disturbs the live stream.
#[tokio::test]
async fn malformed_and_oversized_request_heads_are_answered() {
    let hub = Hub::start(&[]);
    let address = hub.origin.trim_start_matches("http://").to_string();
    let mut stream = opened(&hub.subscribe_url("match=t")).await;
    let get = "GET /.well-known/mercure?match=t HTTP/1.1\r\nHost: x\r\n";
    let huge = format!("{get}X-Big: {}\r\n\r\n", "a".repeat(1 << 20));
    let many: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many = format!("{get}{many}\r\n");
    let post = "POST /.well-known/mercure HTTP/1.1\r\nHost: x\r\n";
    let bad_length = format!("{post}Content-Length: abc\r\n\r\n");
    let two_lengths = format!("{post}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello");
    // The heads no server could serve get a problem document saying why.
    let refused: [(&str, &[u8], &str, &str); 5] = [
        (
            "garbage",
            b"\x00\x01GARBAGE\r\n\r\n",
            "HTTP/1.1 400",
            "a malformed request head",
        ),
        (
            "a 1 MiB head",
            huge.as_bytes(),
            "HTTP/1.1 431",
            "exceeds 64 KiB",
        ),
        (
            "200 header fields",
            many.as_bytes(),
            "HTTP/1.1 431",
            "more than 100 header fields",
        ),
        (
            "a Content-Length that is not a number",
            bad_length.as_bytes(),
            "HTTP/1.1 400",
            "an invalid Content-Length",
        ),
        (
            "two Content-Lengths that differ",
            two_lengths.as_bytes(),
            "HTTP/1.1 400",
            "an invalid Content-Length",
        ),
    ];
    for (what, request, status, detail) in refused {
        let answer = raw_answer(&address, request, 16 * 1024, |_| false).await;
        assert!(answer.starts_with(status), "{what}: {answer:?}");
        assert!(
            answer.contains("application/problem+json") && answer.contains(detail),
            "{what}: {answer:?}"
        );
    }
    // A later head on a connection hyper serves is hyper's to judge: a 400
    // with an empty body (hyper has no hook for its own refusals). After a
    // publication the direct path judges it (`publishers.rs`).
    let fine = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let answer = raw_answer(
        &address,
        format!("{fine}{bad_length}").as_bytes(),
        16 * 1024,
        |answer| String::from_utf8_lossy(answer).matches("HTTP/1.1 ").count() >= 2,
    )
    .await;
    let statuses: Vec<_> = answer
        .match_indices("HTTP/1.1 ")
        .map(|(at, _)| &answer[at + 9..at + 12])
        .collect();
    assert_eq!(statuses, ["200", "400"], "a later bad head: {answer:?}");
    let trickled = format!("{get}Accept: text/event-stream\r\n\r\n");
    let status = raw_status(&address, trickled.as_bytes(), 1).await;
    assert!(status.starts_with("HTTP/1.1 200"), "trickled: {status:?}");

    hub.publish("t", "still served").await;
    assert_eq!(stream.next().await.data, "still served");
}
