//! Durable history across hub restarts: what was acknowledged comes back
//! byte for byte, in order, and a client resuming from before the restart
//! gets exactly what it missed.

mod support;

use std::time::Duration;

/// Every topic under https://example.com/.
const EVERYTHING: &str = "match_urlpattern=https%3A%2F%2Fexample.com%2F*";
use support::{Hub, Stream};

/// A hub keeping its history in `dir`.
fn hub(dir: &std::path::Path, extra: &[&str]) -> Hub {
    let mut args = vec!["--data-dir", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    Hub::start(&args)
}

/// Stops the hub the way a deploy does, and waits for it to exit.
fn stop(mut hub: Hub) {
    std::process::Command::new("kill")
        .args(["-TERM", &hub.pid().to_string()])
        .status()
        .unwrap();
    hub.child.wait().unwrap();
}

/// The frames of a stream's events, without its opening comment.
fn frames(raw: &str) -> Vec<String> {
    raw.split_inclusive("\n\n")
        // Events only: a live stream also opens with a bare `id:` cursor.
        .filter(|frame| frame.starts_with("id: ") && frame.contains("\ndata: "))
        .map(str::to_string)
        .collect()
}

/// Reads events until `last_id` arrives.
async fn read_until(stream: &mut Stream, last_id: &str) -> Vec<support::Message> {
    let mut events = Vec::new();
    loop {
        let event = stream.next().await;
        let done = event.id.as_deref() == Some(last_id);
        events.push(event);
        if done {
            return events;
        }
    }
}

#[tokio::test]
async fn a_restart_keeps_every_event_with_all_its_fields() {
    let dir = tempfile::tempdir().unwrap();
    let first = hub(dir.path(), &[]);
    let reader = format!("Bearer {}", first.subscriber_token(&["*"]));
    let mut live = Stream::open(
        &first.subscribe_url(EVERYTHING),
        &[("authorization", &reader)],
    )
    .await;
    live.wait_registered().await;
    let publisher = first.publisher_token();
    let updates: [&[(&str, &str)]; 4] = [
        &[("topic", "https://example.com/a"), ("data", "plain")],
        &[
            ("topic", "https://example.com/a"),
            ("id", "chosen-id"),
            ("type", "note"),
            ("retry", "1500"),
            ("data", "one\ntwo"),
        ],
        &[
            ("topic", "https://example.com/secret"),
            ("data", "private"),
            ("private", "on"),
        ],
        &[
            ("topic", "https://example.com/b"),
            ("topic", "https://example.com/alt"),
            ("data", "two topics"),
        ],
    ];
    let mut ids = Vec::new();
    for form in updates {
        let (status, id) = first.post(Some(&publisher), form).await;
        assert_eq!(status, 200, "{id}");
        ids.push(id);
    }
    read_until(&mut live, ids.last().unwrap()).await;
    let before = frames(&live.raw);
    assert_eq!(before.len(), 4);
    drop(live);
    stop(first);

    let second = hub(dir.path(), &[]);
    let reader = format!("Bearer {}", second.subscriber_token(&["*"]));
    let query = &format!("{EVERYTHING}&last_event_id=earliest");
    let mut replay =
        Stream::open(&second.subscribe_url(query), &[("authorization", &reader)]).await;
    read_until(&mut replay, ids.last().unwrap()).await;
    assert_eq!(
        frames(&replay.raw),
        before,
        "the replay repeats the frames byte for byte"
    );

    // The private flag and the alternate topic survived too.
    let mut anonymous = Stream::open(&second.subscribe_url(query), &[]).await;
    let public: Vec<String> = read_until(&mut anonymous, ids.last().unwrap())
        .await
        .into_iter()
        .map(|m| m.data)
        .collect();
    assert_eq!(public, ["plain", "one\ntwo", "two topics"]);
    let mut alternate = Stream::open(
        &second.subscribe_url("match=https%3A%2F%2Fexample.com%2Falt&last_event_id=earliest"),
        &[],
    )
    .await;
    assert_eq!(alternate.next().await.data, "two topics");

    // Sequencing resumes after the stored events: new ones come after the
    // old ones in replay, and generated ids are new.
    let newer = second
        .publish("https://example.com/a", "after the restart")
        .await;
    assert!(!ids.contains(&newer));
    let mut again = Stream::open(&second.subscribe_url(query), &[("authorization", &reader)]).await;
    let all: Vec<String> = read_until(&mut again, &newer)
        .await
        .into_iter()
        .filter_map(|m| m.id)
        .collect();
    let mut expected = ids.clone();
    expected.push(newer);
    assert_eq!(all, expected);
}

#[tokio::test]
async fn resuming_from_before_a_restart_gets_exactly_the_missed_events() {
    let dir = tempfile::tempdir().unwrap();
    let first = hub(dir.path(), &[]);
    let mut client = Stream::open(&first.subscribe_url("match=t"), &[]).await;
    client.wait_registered().await;
    let mut published = Vec::new();
    for n in 0..5 {
        published.push(first.publish("t", &format!("before {n}")).await);
    }
    let seen = client.take(3).await;
    let cursor = seen.last().unwrap().id.clone().unwrap();
    assert_eq!(cursor, published[2]);
    drop(client);
    // Events 3 and 4 were published while the client was away; the hub is
    // then killed without warning.
    let mut first = first;
    first.child.kill().unwrap();
    first.child.wait().unwrap();

    let second = hub(dir.path(), &[]);
    for n in 0..3 {
        published.push(second.publish("t", &format!("after {n}")).await);
    }
    let mut resumed = Stream::open(
        &second.subscribe_url("match=t"),
        &[("last-event-id", &cursor)],
    )
    .await;
    assert_eq!(
        resumed.header("mercure-last-event-id").as_deref(),
        Some(cursor.as_str())
    );
    let missed: Vec<String> = resumed
        .take(5)
        .await
        .into_iter()
        .map(|m| m.id.unwrap())
        .collect();
    assert_eq!(missed, published[3..]);
    assert!(
        resumed
            .next_within(Duration::from_millis(300))
            .await
            .is_none(),
        "nothing twice"
    );
}

#[tokio::test]
async fn a_cursor_past_retention_is_answered_with_earliest() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub(dir.path(), &["--retain-events", "3"]);
    let mut ids = Vec::new();
    for n in 0..8 {
        ids.push(hub.publish("t", &format!("{n}")).await);
    }
    // Retention runs in the background, about once a second.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut stream =
            Stream::open(&hub.subscribe_url("match=t&last_event_id=earliest"), &[]).await;
        if stream.next().await.id.as_deref() == Some(ids[5].as_str()) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "retention never applied"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut stream =
        Stream::open(&hub.subscribe_url("match=t"), &[("last-event-id", &ids[1])]).await;
    assert_eq!(
        stream.header("mercure-last-event-id").as_deref(),
        Some("earliest")
    );
    let replayed: Vec<String> = stream
        .take(3)
        .await
        .into_iter()
        .map(|m| m.id.unwrap())
        .collect();
    assert_eq!(replayed, ids[5..]);
}

#[tokio::test]
async fn eventual_durability_keeps_everything_over_a_clean_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = hub(dir.path(), &["--durability", "eventual"]);
    let mut ids = Vec::new();
    for n in 0..20 {
        ids.push(first.publish("t", &format!("{n}")).await);
    }
    stop(first);
    let second = hub(dir.path(), &["--durability", "eventual"]);
    let mut replay =
        Stream::open(&second.subscribe_url("match=t&last_event_id=earliest"), &[]).await;
    let replayed: Vec<String> = replay
        .take(20)
        .await
        .into_iter()
        .map(|m| m.id.unwrap())
        .collect();
    assert_eq!(replayed, ids);
}
