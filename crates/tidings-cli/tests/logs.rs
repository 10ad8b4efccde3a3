//! What the hub writes to its log file: no terminal escape codes when the
//! log is not a terminal, and no token, whichever way a client presents
//! one, at the most talkative levels, in both formats.

mod support;

use std::time::Duration;
use support::{token, Hub, Stream, SECRET};
use tidings::auth::{Generation, KeySource, Role};

/// Every way a token reaches the hub: header, both cookies, draft-07's
/// `authorization` query parameter and `QUERY` body field, over HTTP/1.1
/// (the direct path and hyper) and HTTP/2; valid, forged and expired; on
/// the hub URL and elsewhere; in a request hyper cannot parse.
async fn present_tokens_every_way(hub: &Hub) -> Vec<String> {
    let publisher = hub.publisher_token();
    let legacy_publisher = token(Generation::Draft07, Role::Publisher, &["*"], &hub.url, None);
    let subscriber = hub.subscriber_token(&["*"]);
    let legacy_subscriber = token(
        Generation::Draft07,
        Role::Subscriber,
        &["*"],
        &hub.url,
        None,
    );
    // A signature altered in its middle, and one made with another key.
    let middle = subscriber.len() - 10;
    let altered = if &subscriber[middle..=middle] == "A" {
        "B"
    } else {
        "A"
    };
    let forged = format!(
        "{}{altered}{}",
        &subscriber[..middle],
        &subscriber[middle + 1..]
    );
    let foreign = {
        let mut request = support::token_request(Role::Subscriber, &["*"], &hub.url);
        request.subject = "someone else".into();
        tidings::auth::mint(
            &request,
            &KeySource::Secret("another secret, of at least 32 bytes".into()),
        )
        .unwrap()
    };
    let stats = hub.subscriber_token(&["/.well-known/mercure/stats"]);
    let client = support::client();
    let h2c = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();

    // Publishing: header over HTTP/1.1 and HTTP/2, a draft-07 token, the cookie.
    for (client, token) in [
        (&client, &publisher),
        (&h2c, &publisher),
        (&client, &legacy_publisher),
    ] {
        let status = client
            .post(&hub.url)
            .bearer_auth(token)
            .form(&[("topic", "logs"), ("data", "x")])
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
    }
    let status = client
        .post(&hub.url)
        .header(
            "cookie",
            format!("__Secure-mercure_access_token={publisher}"),
        )
        .header("origin", &hub.origin)
        .form(&[("topic", "logs"), ("data", "x")])
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);

    // Subscribing on the direct path: header, both cookies, the query.
    let bearer = format!("Bearer {subscriber}");
    let cookie = format!("__Secure-mercure_access_token={subscriber}");
    let legacy_cookie = format!("mercureAuthorization={legacy_subscriber}");
    let mut streams = Vec::new();
    for headers in [
        vec![("authorization", bearer.as_str())],
        vec![("cookie", cookie.as_str())],
        vec![("cookie", legacy_cookie.as_str())],
    ] {
        let stream = Stream::open(&hub.subscribe_url("match=logs"), &headers).await;
        assert_eq!(stream.status, 200);
        streams.push(stream);
    }
    for query in [
        format!("topic=logs&authorization={legacy_subscriber}"),
        format!("match=logs&authorization={subscriber}"),
    ] {
        let stream = Stream::open(&hub.subscribe_url(&query), &[]).await;
        assert_eq!(stream.status, 200);
        streams.push(stream);
    }
    // `QUERY`, through hyper, with the token in the body.
    let query = reqwest::Method::from_bytes(b"QUERY").unwrap();
    let response = client
        .request(query, &hub.url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("topic=logs&authorization={legacy_subscriber}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    drop(response);
    // HTTP/2: header and query.
    let response = h2c
        .get(hub.subscribe_url(&format!("topic=logs&authorization={legacy_subscriber}")))
        .bearer_auth(&subscriber)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    drop(response);

    // Refused tokens, which the hub logs the reason for.
    for bad in [&forged, &foreign] {
        let refused = Stream::open(
            &hub.subscribe_url(&format!("topic=logs&authorization={bad}")),
            &[],
        )
        .await;
        assert_eq!(refused.status, 401);
        let refused = Stream::open(
            &hub.subscribe_url("match=logs"),
            &[("authorization", &format!("Bearer {bad}"))],
        )
        .await;
        assert_eq!(refused.status, 401);
        let refused = h2c
            .post(&hub.url)
            .header("cookie", format!("__Secure-mercure_access_token={bad}"))
            .header("origin", &hub.origin)
            .form(&[("topic", "logs"), ("data", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 401);
    }

    // Elsewhere: the statistics stream, metrics, an unknown path.
    let response = client
        .get(format!("{}/.well-known/mercure/stats", hub.origin))
        .bearer_auth(&stats)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    drop(response);
    for path in ["/metrics", "/nowhere"] {
        client
            .get(format!("{}{path}?authorization={subscriber}", hub.origin))
            .bearer_auth(&subscriber)
            .send()
            .await
            .unwrap();
    }
    // A request hyper refuses to parse, token and all.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let address = hub.origin.trim_start_matches("http://").to_string();
        let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
        let request = format!(
            "POST /.well-known/mercure?authorization={subscriber} HTTP/1.1\r\nAuthorization: Bearer {publisher}\r\nbroken header\r\n\r\n"
        );
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut answer)).await;
        assert!(
            answer.starts_with(b"HTTP/1.1 400"),
            "{}",
            String::from_utf8_lossy(&answer)
        );
    }
    drop(streams);
    tokio::time::sleep(Duration::from_millis(300)).await;
    vec![
        publisher,
        legacy_publisher,
        subscriber,
        legacy_subscriber,
        forged,
        foreign,
        stats,
    ]
}

#[tokio::test]
async fn logs_hold_no_token_and_no_escape_codes() {
    for (format, level) in [("text", "debug"), ("json", "trace")] {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("hub.log");
        let hub = Hub::start_logging(
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--jwt-key",
                SECRET,
                "--legacy-query-token",
                "--stats",
                "token",
                "--log",
                level,
                "--log-format",
                format,
            ],
            &log,
        );
        let tokens = present_tokens_every_way(&hub).await;
        drop(hub);
        let logged = std::fs::read(&log).unwrap();
        let text = String::from_utf8_lossy(&logged);
        // The level is what it says: the refusals above were logged.
        assert!(
            text.contains("refused an access token"),
            "{format} at {level}: nothing logged?\n{text}"
        );
        assert!(
            !logged.contains(&0x1b),
            "{format} at {level}: escape codes in a log file"
        );
        for token in &tokens {
            let signature = token.rsplit('.').next().unwrap();
            for secret in [token.as_str(), signature] {
                assert!(
                    !text.contains(secret),
                    "{format} at {level}: a token in the log:\n{}",
                    text.lines().find(|line| line.contains(secret)).unwrap()
                );
            }
        }
    }
}
