//! History and reconnection over real HTTP: every cursor spelling, the
//! answer headers, and the races between replay and live events.

mod support;

use std::time::Duration;
use support::{opened, Hub, Stream};

async fn publish_numbered(hub: &Hub, topic: &str, range: std::ops::Range<usize>) -> Vec<String> {
    let mut ids = Vec::new();
    for n in range {
        ids.push(hub.publish(topic, &n.to_string()).await);
    }
    ids
}

fn numbers(events: &[support::Message]) -> Vec<usize> {
    events.iter().map(|e| e.data.parse().unwrap()).collect()
}

#[tokio::test]
async fn every_cursor_spelling_resumes_after_its_event() {
    let hub = Hub::start(&[]);
    let ids = publish_numbered(&hub, "t", 0..5).await;
    let cursor = &ids[1];
    let encoded: String = url::form_urlencoded::byte_serialize(cursor.as_bytes()).collect();
    let spellings = [
        (format!("match=t&last_event_id={encoded}"), None),
        (format!("topic=t&lastEventID={encoded}"), None),
        ("match=t".to_string(), Some(cursor.clone())),
        // The header wins over the query parameter.
        (
            format!("match=t&last_event_id={}", ids[3]),
            Some(cursor.clone()),
        ),
    ];
    for (query, header) in spellings {
        let headers: Vec<(&str, &str)> = header
            .iter()
            .map(|h| ("last-event-id", h.as_str()))
            .collect();
        let mut stream = Stream::open(&hub.subscribe_url(&query), &headers).await;
        assert_eq!(
            stream.header("mercure-last-event-id").as_deref(),
            Some(cursor.as_str()),
            "{query}"
        );
        assert_eq!(
            stream.header("last-event-id").as_deref(),
            Some(cursor.as_str()),
            "{query}"
        );
        assert_eq!(numbers(&stream.take(3).await), [2, 3, 4], "{query}");
    }
}

#[tokio::test]
async fn earliest_and_unknown_cursors_replay_everything_and_say_so() {
    let hub = Hub::start(&[]);
    publish_numbered(&hub, "t", 0..3).await;
    for cursor in ["earliest", "urn:uuid:not-in-history"] {
        let mut stream =
            Stream::open(&hub.subscribe_url("match=t"), &[("last-event-id", cursor)]).await;
        assert_eq!(
            stream.header("mercure-last-event-id").as_deref(),
            Some("earliest"),
            "{cursor}"
        );
        assert_eq!(numbers(&stream.take(3).await), [0, 1, 2], "{cursor}");
    }
    let live = Stream::open(&hub.subscribe_url("match=t"), &[]).await;
    assert_eq!(live.header("mercure-last-event-id"), None);
}

/// A publisher that retries with the same id (after a timeout, a dropped
/// connection) gets its update exactly once: the retry is answered with the
/// id, and neither stored nor delivered again.
#[tokio::test]
async fn a_retried_id_is_published_once() {
    for history in ["redb", "memory"] {
        let hub = Hub::start(&["--history", history]);
        let token = hub.publisher_token();
        let mut live = Stream::open(&hub.subscribe_url("match=t"), &[]).await;
        for (id, data) in [("dup", "0"), ("x", "1"), ("dup", "2"), ("y", "3")] {
            let answer = hub
                .post(Some(&token), &[("topic", "t"), ("id", id), ("data", data)])
                .await;
            assert_eq!(answer, (200, id.to_string()), "{history}");
        }
        assert_eq!(numbers(&live.take(3).await), [0, 1, 3], "{history}");
        let mut resumed = Stream::open(&hub.subscribe_url("match=t&last_event_id=dup"), &[]).await;
        assert_eq!(numbers(&resumed.take(2).await), [1, 3], "{history}");
        assert!(resumed
            .next_within(Duration::from_millis(300))
            .await
            .is_none());
    }
}

#[tokio::test]
async fn history_is_bounded_and_replay_filters_topics() {
    let hub = Hub::start(&["--history", "memory", "--retain-events", "10"]);
    for n in 0..30 {
        hub.publish(if n % 2 == 0 { "even" } else { "odd" }, &n.to_string())
            .await;
    }
    let mut stream =
        Stream::open(&hub.subscribe_url("match=even&last_event_id=earliest"), &[]).await;
    assert_eq!(numbers(&stream.take(5).await), [20, 22, 24, 26, 28]);
    assert!(stream
        .next_within(Duration::from_millis(300))
        .await
        .is_none());
}

/// Events published while a replay runs are neither lost nor sent twice.
#[tokio::test]
async fn publishing_during_replay_loses_and_repeats_nothing() {
    let hub = Hub::start(&[]);
    publish_numbered(&hub, "race", 0..1000).await;
    let publisher = {
        let url = hub.url.clone();
        let token = hub.publisher_token();
        tokio::spawn(async move {
            let client = support::client();
            for n in 1000..2000 {
                let body = format!("topic=race&data={n}");
                assert_eq!(support::post_form(&client, &url, &token, body).await, 200);
            }
        })
    };
    // Several subscribers start replaying at different moments of the burst.
    let mut readers = Vec::new();
    for delay in [0u64, 5, 20, 60] {
        let url = hub.subscribe_url("match=race&last_event_id=earliest");
        readers.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            let mut stream = Stream::open(&url, &[]).await;
            numbers(&stream.take(2000).await)
        }));
    }
    publisher.await.unwrap();
    for reader in readers {
        assert_eq!(reader.await.unwrap(), (0..2000).collect::<Vec<_>>());
    }
}

/// Subscribers come and go while events flow; each one sees an exact,
/// ordered suffix of the sequence from the point its cursor names.
#[tokio::test]
async fn many_subscribers_join_and_leave_while_events_flow() {
    let hub = Hub::start(&[]);
    let total = 400;
    let publisher = {
        let url = hub.url.clone();
        let token = hub.publisher_token();
        tokio::spawn(async move {
            let client = support::client();
            for n in 0..total {
                let body = format!("topic=churn&data={n}&id=e{n}");
                assert_eq!(support::post_form(&client, &url, &token, body).await, 200);
                if n % 50 == 0 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        })
    };
    let mut tasks = Vec::new();
    for worker in 0..40usize {
        let url = hub.url.clone();
        tasks.push(tokio::spawn(async move {
            let mut resume: Option<usize> = None;
            let mut seen = Vec::new();
            // Each worker reconnects several times, resuming where it left off.
            for round in 0..4 {
                let query = match resume {
                    Some(n) => format!("{url}?match=churn&last_event_id=e{n}"),
                    None => format!("{url}?match=churn&last_event_id=earliest"),
                };
                let mut stream = Stream::open(&query, &[]).await;
                let quota = if round == 3 {
                    usize::MAX
                } else {
                    20 + worker % 7
                };
                let mut got = 0;
                while got < quota && seen.last() != Some(&(total - 1)) {
                    let event = stream.next().await;
                    seen.push(event.data.parse::<usize>().unwrap());
                    got += 1;
                }
                resume = seen.last().copied();
            }
            seen
        }));
    }
    publisher.await.unwrap();
    for task in tasks {
        assert_eq!(task.await.unwrap(), (0..total).collect::<Vec<_>>());
    }
    // Every stream above ended; none is left registered.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(hub.metric("tidings_subscribers").await, 0);
}

#[tokio::test]
async fn a_live_subscriber_gets_no_history() {
    let hub = Hub::start(&[]);
    // A publisher is answered once the history has its event, before the
    // dispatch; a subscription opened in between starts before the event
    // and rightly gets it live. Watching the dispatch rules that out.
    let mut witness = opened(&hub.subscribe_url("match=t")).await;
    publish_numbered(&hub, "t", 0..3).await;
    assert_eq!(numbers(&witness.take(3).await), [0, 1, 2]);
    let mut stream = opened(&hub.subscribe_url("match=t")).await;
    hub.publish("t", "live").await;
    assert_eq!(stream.next().await.data, "live");
}

/// A live stream opens with the subscriber's cursor as an `id:` field, so
/// a client cut off before its first event still resumes without a gap.
#[tokio::test]
async fn a_live_stream_opens_with_its_cursor() {
    let hub = Hub::start(&["--history", "memory"]);
    let mut first = Stream::open(&hub.subscribe_url("match=t"), &[]).await;
    first.wait_registered().await;
    assert!(first.raw.starts_with("id: earliest\n\n"), "{:?}", first.raw);
    let before = hub.publish("t", "0").await;
    // Dispatched (see a_live_subscriber_gets_no_history) before the next opens.
    assert_eq!(first.next().await.data, "0");
    let second = opened(&hub.subscribe_url("match=t")).await;
    assert!(
        second.raw.starts_with(&format!("id: {before}\n\n")),
        "{:?}",
        second.raw
    );
    // The connection drops before any event; meanwhile two are published.
    drop(second);
    hub.publish("t", "1").await;
    hub.publish("t", "2").await;
    let mut resumed =
        Stream::open(&hub.subscribe_url("match=t"), &[("last-event-id", &before)]).await;
    assert_eq!(numbers(&resumed.take(2).await), [1, 2]);
    let mut from_start = Stream::open(
        &hub.subscribe_url("match=t"),
        &[("last-event-id", "earliest")],
    )
    .await;
    assert_eq!(numbers(&from_start.take(3).await), [0, 1, 2]);
}
