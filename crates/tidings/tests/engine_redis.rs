//! The Redis Streams engine against real `redis-server` processes.

use std::sync::Arc;
use std::time::{Duration, Instant};
use tidings::event::{Event, Update};
use tidings::history::{self, Appended, HistoryError, Retention, SharedLog};
use tidings_testkit::{Certificates, Redis};

/// A server whose AOF is fsynced before every reply: what an acknowledged
/// publication stands on.
fn redis() -> Option<Redis> {
    Redis::start_with(&[("appendfsync", "always")])
}

fn event(id: &str) -> Event {
    let mut update = Update::new("https://example.com/a", format!("payload of {id}"));
    update.topics.push(format!("urn:{id}"));
    update.private = id.ends_with('p');
    Event::from_update(0, id.into(), &update)
}

fn events(ids: &[&str]) -> Vec<Event> {
    ids.iter().map(|id| event(id)).collect()
}

async fn open(url: &str) -> Arc<dyn SharedLog> {
    open_with(url, Retention::default()).await
}

async fn open_with(url: &str, retention: Retention) -> Arc<dyn SharedLog> {
    history::connect(url, retention)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"))
}

fn ids(events: &[tidings::event::SharedEvent]) -> Vec<String> {
    events.iter().map(|e| e.id.to_string()).collect()
}

fn seqs(events: &[tidings::event::SharedEvent]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}

#[tokio::test]
async fn positions_are_contiguous_from_one_and_read_back_whole() {
    let Some(redis) = redis() else { return };
    let log = open(&redis.url()).await;
    assert_eq!(log.last().await.unwrap(), 0);

    let first = log.append(&events(&["a", "b", "cp"])).await.unwrap();
    let second = log.append(&events(&["d"])).await.unwrap();
    assert_eq!(
        [first, second].concat(),
        vec![
            Appended::New(1),
            Appended::New(2),
            Appended::New(3),
            Appended::New(4)
        ]
    );
    assert_eq!(log.last().await.unwrap(), 4);

    let read = log.read_after(0, 100).await.unwrap();
    assert_eq!(seqs(&read), vec![1, 2, 3, 4]);
    for (got, id) in read.iter().zip(["a", "b", "cp", "d"]) {
        let want = event(id);
        assert_eq!(got.id, want.id);
        assert_eq!(got.topics, want.topics);
        assert_eq!(got.private, want.private);
        assert_eq!(got.frame, want.frame);
    }
    assert_eq!(seqs(&log.read_after(2, 1).await.unwrap()), vec![3]);
    assert!(log.read_after(4, 10).await.unwrap().is_empty());
    assert_eq!(log.locate("b").await.unwrap(), Some(2));
    assert_eq!(log.locate("nope").await.unwrap(), None);
    let stats = log.stats();
    assert_eq!(stats.events, 4);
    assert!(stats.bytes > 0);
}

#[tokio::test]
async fn a_duplicate_id_answers_the_first_position() {
    let Some(redis) = redis() else { return };
    let log = open(&redis.url()).await;
    let answer = log.append(&events(&["a", "b", "a"])).await.unwrap();
    assert_eq!(
        answer,
        vec![Appended::New(1), Appended::New(2), Appended::Duplicate(1)]
    );
    let answer = log.append(&events(&["b", "c"])).await.unwrap();
    assert_eq!(answer, vec![Appended::Duplicate(2), Appended::New(3)]);
    assert_eq!(ids(&log.read_after(0, 100).await.unwrap()), ["a", "b", "c"]);
    assert_eq!(log.stats().events, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_appending_the_same_ids_at_once_store_each_once() {
    let Some(redis) = redis() else { return };
    let names: Vec<String> = (0..400).map(|i| format!("id-{i}")).collect();
    let node = |log: Arc<dyn SharedLog>, names: Vec<String>| {
        tokio::spawn(async move {
            let mut answers = Vec::new();
            for chunk in names.chunks(8) {
                let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
                answers.extend(log.append(&events(&chunk)).await.unwrap());
            }
            answers
        })
    };
    let one = open(&redis.url()).await;
    let two = open(&redis.url()).await;
    let (a, b) = tokio::join!(
        node(Arc::clone(&one), names.clone()),
        node(two, names.clone())
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut races = 0;
    for (a, b) in a.iter().zip(&b) {
        // Same place, and exactly one of the two stored it.
        assert_eq!(a.position(), b.position());
        match (a, b) {
            (Appended::New(_), Appended::Duplicate(_)) => races += 1,
            (Appended::Duplicate(_), Appended::New(_)) => {}
            _ => panic!("{a:?} {b:?}"),
        }
    }
    println!("node one stored {races} of {} ids", names.len());
    let stored = one.read_after(0, 1000).await.unwrap();
    assert_eq!(seqs(&stored), (1..=400).collect::<Vec<_>>());
    assert_eq!(ids(&stored), names);
}

#[tokio::test]
async fn retention_bounds_events_bytes_and_age() {
    let Some(redis) = redis() else { return };
    let url = |stream: &str| format!("{}?stream={stream}", redis.url());
    let nine = events(&["1", "2", "3", "4", "5", "6", "7", "8", "9"]);

    let by_count = open_with(
        &url("count"),
        Retention {
            events: Some(3),
            ..Retention::default()
        },
    )
    .await;
    by_count.append(&nine[..5]).await.unwrap();
    by_count.append(&nine[5..]).await.unwrap();
    assert_eq!(seqs(&by_count.read_after(0, 100).await.unwrap()), [7, 8, 9]);
    assert_eq!(by_count.locate("6").await.unwrap(), None);
    assert_eq!(by_count.locate("7").await.unwrap(), Some(7));
    assert_eq!(by_count.stats().events, 3);
    // A trimmed id is new again.
    assert_eq!(
        by_count.append(&events(&["1"])).await.unwrap(),
        [Appended::New(10)]
    );

    // Every record of `nine` has the same length.
    let unbounded = open(&url("measure")).await;
    unbounded.append(&nine[..1]).await.unwrap();
    let one = unbounded.stats().bytes;
    let by_bytes = open_with(
        &url("bytes"),
        Retention {
            bytes: Some(one * 4),
            ..Retention::default()
        },
    )
    .await;
    by_bytes.append(&nine).await.unwrap();
    assert_eq!(
        seqs(&by_bytes.read_after(0, 100).await.unwrap()),
        [6, 7, 8, 9]
    );
    assert_eq!(by_bytes.stats().bytes, one * 4);

    let by_age = open_with(
        &url("age"),
        Retention {
            age: Some(Duration::from_millis(300)),
            ..Retention::default()
        },
    )
    .await;
    by_age.append(&nine[..3]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    by_age.append(&nine[3..5]).await.unwrap();
    assert_eq!(seqs(&by_age.read_after(0, 100).await.unwrap()), [4, 5]);
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Nobody publishes: trim() alone applies the age.
    by_age.trim().await.unwrap();
    assert!(by_age.read_after(0, 100).await.unwrap().is_empty());
    assert_eq!(by_age.locate("5").await.unwrap(), None);
    assert_eq!(by_age.last().await.unwrap(), 5);
    assert_eq!(by_age.stats().events, 0);
    assert_eq!(by_age.stats().bytes, 0);
    assert_eq!(
        by_age.append(&events(&["x"])).await.unwrap(),
        [Appended::New(6)]
    );
}

#[tokio::test]
async fn trimming_a_backlog_larger_than_a_chunk_empties_it() {
    let Some(redis) = redis() else { return };
    let filler = open(&redis.url()).await;
    let names: Vec<String> = (0..5000).map(|i| format!("e{i}")).collect();
    for chunk in names.chunks(500) {
        let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
        filler.append(&events(&chunk)).await.unwrap();
    }
    // The log keeps the bounds its first node stored; an operator changes
    // them there, and every node applies them at its next run.
    redis.cli(&["HSET", "{tidings}:meta", "retain_events", "10"]);
    let bounded = open(&redis.url()).await;
    bounded.trim().await.unwrap();
    assert_eq!(
        seqs(&bounded.read_after(0, 100).await.unwrap()),
        (4991..=5000).collect::<Vec<_>>()
    );
    assert_eq!(bounded.stats().events, 10);
}

#[tokio::test]
async fn follow_waits_and_wakes_on_an_append_from_another_node() {
    let Some(redis) = redis() else { return };
    let (follower, publisher) = (open(&redis.url()).await, open(&redis.url()).await);

    let started = Instant::now();
    let none = follower
        .follow(0, 100, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(none.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(250));

    let follow = tokio::spawn({
        let follower = Arc::clone(&follower);
        async move {
            let started = Instant::now();
            let got = follower.follow(0, 100, Duration::from_secs(10)).await;
            (got, started.elapsed())
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Publishing through the follower's own log is not held up by its
    // blocked read.
    let quick = Instant::now();
    follower.append(&events(&["own"])).await.unwrap();
    assert!(quick.elapsed() < Duration::from_secs(1));
    let (got, waited) = follow.await.unwrap();
    assert_eq!(ids(&got.unwrap()), ["own"]);
    assert!(waited < Duration::from_secs(5));

    let many: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    publisher.append(&events(&many)).await.unwrap();
    let got = follower
        .follow(1, 1000, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(seqs(&got), (2..=51).collect::<Vec<_>>());
    let got = follower
        .follow(1, 10, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(seqs(&got), (2..=11).collect::<Vec<_>>());
}

#[tokio::test]
async fn an_outage_answers_unavailable_quickly_and_the_log_comes_back_whole() {
    let Some(mut redis) = redis() else { return };
    let log = open(&redis.url()).await;
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let id = format!("before-{i}");
        log.append(&events(&[&id])).await.unwrap();
        acknowledged.push(id);
    }

    redis.kill();
    let started = Instant::now();
    let append = log.append(&events(&["during"])).await;
    assert!(
        matches!(append, Err(HistoryError::Unavailable(_))),
        "{append:?}"
    );
    let follow = log.follow(0, 10, Duration::from_secs(1)).await;
    assert!(
        matches!(follow, Err(HistoryError::Unavailable(_))),
        "{follow:?}"
    );
    let read = log.read_after(0, 10).await;
    assert!(
        matches!(read, Err(HistoryError::Unavailable(_))),
        "{read:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(6));
    // Credentials never, but the address, in what an operator reads.
    if let Err(HistoryError::Unavailable(why)) = append {
        assert!(why.contains("127.0.0.1"), "{why}");
    }

    redis.restart();
    // The same log object, no reconnecting by hand: the first call may
    // still meet the dead connection.
    let mut answer = log.append(&events(&["after"])).await;
    for _ in 0..20 {
        if answer.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        answer = log.append(&events(&["after"])).await;
    }
    assert_eq!(answer.unwrap(), [Appended::New(21)]);
    acknowledged.push("after".into());
    let read = log.read_after(0, 100).await.unwrap();
    assert_eq!(ids(&read), acknowledged);
    assert_eq!(seqs(&read), (1..=21).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_killed_server_fails_a_blocked_follow() {
    let Some(mut redis) = redis() else { return };
    let log = open(&redis.url()).await;
    let follow = tokio::spawn({
        let log = Arc::clone(&log);
        async move { log.follow(0, 10, Duration::from_secs(30)).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    redis.kill();
    let got = follow.await.unwrap();
    assert!(matches!(got, Err(HistoryError::Unavailable(_))), "{got:?}");
    assert!(started.elapsed() < Duration::from_secs(6));
}

#[tokio::test]
async fn missing_replicas_answer_unavailable_and_the_retry_a_duplicate() {
    let Some(redis) = redis() else { return };
    let log = open(&format!("{}?replicas=1&replica_timeout=100", redis.url())).await;
    let started = Instant::now();
    let answer = log.append(&events(&["a"])).await;
    assert!(
        matches!(&answer, Err(HistoryError::Unavailable(why)) if why.contains("0 of 1 replicas")),
        "{answer:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(90));
    // Stored on the primary: without the replica demand, a retry is a
    // duplicate.
    let plain = open(&redis.url()).await;
    assert_eq!(
        plain.append(&events(&["a"])).await.unwrap(),
        [Appended::Duplicate(1)]
    );
}

#[tokio::test]
async fn bad_urls_are_refused_clearly_without_credentials() {
    let Some(redis) = redis() else { return };
    let unknown = history::connect(
        &format!("{}?stream=x&colour=red&replica=1", redis.url()),
        Retention::default(),
    )
    .await
    .err()
    .expect("unknown parameters are refused");
    let HistoryError::Failed(why) = unknown else {
        panic!("{unknown:?}")
    };
    assert!(
        why.contains("`colour`") && why.contains("`replica`"),
        "{why}"
    );

    let braces = history::connect(
        &format!("{}?stream=a{{b}}", redis.url()),
        Retention::default(),
    )
    .await
    .err();
    assert!(
        matches!(braces, Some(HistoryError::Failed(_))),
        "{braces:?}"
    );

    let log = open(&format!(
        "redis://127.0.0.1:{}/2?stream=named",
        redis.port()
    ))
    .await;
    assert_eq!(
        log.describe(),
        format!("redis://127.0.0.1:{}/2 stream named", redis.port())
    );
}

#[tokio::test]
async fn credentials_stay_out_of_descriptions_and_errors() {
    let Some(redis) = redis() else { return };
    redis.cli(&["CONFIG", "SET", "requirepass", "open-sesame"]);
    let url = |password: &str| format!("redis://:{password}@127.0.0.1:{}/0", redis.port());
    let refused = history::connect(&url("wrong-guess"), Retention::default())
        .await
        .err()
        .expect("a wrong password is refused");
    let why = refused.to_string();
    assert!(matches!(refused, HistoryError::Failed(_)), "{why}");
    assert!(!why.contains("wrong-guess"), "{why}");

    let log = open(&url("open-sesame")).await;
    log.append(&events(&["a"])).await.unwrap();
    assert!(
        !log.describe().contains("open-sesame"),
        "{}",
        log.describe()
    );
}

#[tokio::test]
async fn appends_per_second_in_batches_of_64() {
    let Some(redis) = redis() else { return };
    let log = open(&redis.url()).await;
    let names: Vec<String> = (0..64 * 100).map(|i| format!("bench-{i}")).collect();
    let started = Instant::now();
    for chunk in names.chunks(64) {
        let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
        log.append(&events(&chunk)).await.unwrap();
    }
    let elapsed = started.elapsed();
    println!(
        "MEASURE redis append: {} events in batches of 64 in {elapsed:?}: {:.0} events/s, {:.0} batches/s (appendfsync always, one connection)",
        names.len(),
        names.len() as f64 / elapsed.as_secs_f64(),
        100.0 / elapsed.as_secs_f64()
    );
    assert_eq!(log.last().await.unwrap(), names.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_loses_no_acknowledged_event() {
    let Some(mut sentinel) = tidings_testkit::Sentinel::start() else {
        return;
    };
    let url = format!("{}?replicas=1&replica_timeout=500", sentinel.url());
    let log = open(&url).await;

    // Publishes one event at a time, as publishers do, and keeps the ids
    // that were acknowledged; stops once `stop` is set.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let publisher = tokio::spawn({
        let (log, stop) = (Arc::clone(&log), Arc::clone(&stop));
        async move {
            let (mut acknowledged, mut refused) = (Vec::new(), 0);
            for i in 0.. {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let id = format!("e{i}");
                match log.append(&events(&[&id])).await {
                    Ok(_) => acknowledged.push(id),
                    Err(HistoryError::Unavailable(_)) => {
                        refused += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(other) => panic!("{other}"),
                }
            }
            (acknowledged, refused)
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    sentinel.kill_primary();
    let failed_over =
        tokio::task::block_in_place(|| sentinel.wait_for_failover(Duration::from_secs(30)));
    assert!(failed_over, "no failover\n{}", sentinel.logs());
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (acknowledged, refused) = publisher.await.unwrap();
    println!(
        "failover: {} acknowledged, {refused} refused while the primary was away",
        acknowledged.len()
    );
    assert!(!acknowledged.is_empty());

    // The same log object now reads from the new primary.
    let mut stored = Vec::new();
    for _ in 0..50 {
        match log.read_after(0, 100_000).await {
            Ok(read) => {
                stored = read;
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let stored_ids = ids(&stored);
    for id in &acknowledged {
        assert!(stored_ids.contains(id), "acknowledged {id} was lost");
    }
    assert_eq!(seqs(&stored), (1..=stored.len() as u64).collect::<Vec<_>>());
    // The new primary has no replica left: appends are refused, not
    // acknowledged on one copy.
    let answer = log.append(&events(&["after"])).await;
    assert!(
        matches!(&answer, Err(HistoryError::Unavailable(why)) if why.contains("0 of 1 replicas")),
        "{answer:?}"
    );
}

#[tokio::test]
async fn bad_data_fails_naming_the_position_without_panicking() {
    let Some(redis) = redis() else { return };
    redis.cli(&["XADD", "{bad}:log", "0-1", "r", "junk", "t", "0", "i", "x"]);
    redis.cli(&["HSET", "{bad}:meta", "last", "1"]);
    redis.cli(&["HSET", "{bad}:ids", "x", "not a number"]);
    let log = open(&format!("{}?stream=bad", redis.url())).await;
    let read = log.read_after(0, 10).await;
    assert!(
        matches!(&read, Err(HistoryError::Failed(why)) if why.contains("position 1")),
        "{read:?}"
    );
    let located = log.locate("x").await;
    assert!(
        matches!(located, Err(HistoryError::Failed(_))),
        "{located:?}"
    );
}

#[tokio::test]
async fn nodes_apply_the_retention_stored_with_the_log() {
    let Some(redis) = redis() else { return };
    let three = Retention {
        events: Some(3),
        ..Retention::default()
    };
    let first = open_with(&redis.url(), three).await;
    assert_eq!(
        redis.cli(&[
            "HMGET",
            "{tidings}:meta",
            "retain_events",
            "retain_bytes",
            "retain_age_ms"
        ]),
        "3\nnone\nnone\n"
    );
    // Started with other bounds: it warns and applies the log's.
    let other = open_with(
        &redis.url(),
        Retention {
            events: Some(100),
            age: Some(Duration::from_secs(3600)),
            ..Retention::default()
        },
    )
    .await;
    let ten: Vec<String> = (0..10).map(|i| format!("r{i}")).collect();
    let ten: Vec<&str> = ten.iter().map(String::as_str).collect();
    other.append(&events(&ten)).await.unwrap();
    assert_eq!(seqs(&other.read_after(0, 100).await.unwrap()), [8, 9, 10]);
    assert_eq!(
        redis.cli(&["HGET", "{tidings}:meta", "retain_events"]),
        "3\n"
    );
    // Changed in the log: every node follows at its next run.
    redis.cli(&["HSET", "{tidings}:meta", "retain_events", "1"]);
    first.trim().await.unwrap();
    assert_eq!(seqs(&other.read_after(0, 100).await.unwrap()), [10]);
}

/// A primary and one replica of it, without Sentinels.
fn primary_and_replica() -> Option<(Redis, Redis)> {
    let primary = redis()?;
    let replica = Redis::start_with(&[
        ("appendfsync", "always"),
        ("replicaof", &format!("127.0.0.1 {}", primary.port())),
    ])?;
    let synced = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        replica
            .cli(&["INFO", "replication"])
            .contains("master_link_status:up")
    });
    assert!(synced, "the replica did not sync");
    Some((primary, replica))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_replicas_acknowledged_events_are_all_readable_and_followable() {
    let Some((primary, _replica)) = primary_and_replica() else {
        return;
    };
    let url = format!("{}?replicas=1&replica_timeout=2000", primary.url());
    let (publisher, follower) = (open(&url).await, open(&url).await);
    let follow = tokio::spawn({
        let follower = Arc::clone(&follower);
        async move {
            let (mut after, mut got) = (0, Vec::new());
            while after < 500 {
                let events = follower
                    .follow(after, 1000, Duration::from_secs(5))
                    .await
                    .unwrap();
                assert!(!events.is_empty(), "follow timed out at {after}");
                after = events.last().unwrap().seq;
                got.extend(events);
            }
            got
        }
    });
    let names: Vec<String> = (0..500).map(|i| format!("a{i}")).collect();
    for chunk in names.chunks(25) {
        let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
        publisher.append(&events(&chunk)).await.unwrap();
    }
    let followed = follow.await.unwrap();
    assert_eq!(ids(&followed), names);
    assert_eq!(seqs(&followed), (1..=500).collect::<Vec<_>>());
    let fresh = open(&url).await;
    assert_eq!(fresh.last().await.unwrap(), 500);
    assert_eq!(ids(&fresh.read_after(0, 1000).await.unwrap()), names);
}

/// With `replicas`, what the replicas do not hold yet is not read: a
/// failover would lose it, and the new primary give its position to
/// another event, which a node that had dispatched the first would never
/// dispatch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_replicas_readers_never_see_what_a_failover_may_lose() {
    let Some((primary, replica)) = primary_and_replica() else {
        return;
    };
    let url = format!("{}?replicas=1&replica_timeout=200", primary.url());
    let (publisher, follower) = (open(&url).await, open(&url).await);
    publisher.append(&events(&["kept"])).await.unwrap();
    assert_eq!(
        ids(&follower
            .follow(0, 10, Duration::from_secs(2))
            .await
            .unwrap()),
        ["kept"]
    );

    // The replica leaves: it is the primary the next failover picks.
    replica.cli(&["REPLICAOF", "NO", "ONE"]);
    let refused = publisher.append(&events(&["lost"])).await;
    assert!(
        matches!(&refused, Err(HistoryError::Unavailable(why)) if why.contains("0 of 1")),
        "{refused:?}"
    );
    let followed = follower
        .follow(1, 10, Duration::from_millis(300))
        .await
        .unwrap();
    let read = follower.read_after(0, 10).await.unwrap();
    let last = follower.last().await.unwrap();
    let fresh = open(&url).await;
    let (fresh_read, fresh_last) = (
        fresh.read_after(0, 10).await.unwrap(),
        fresh.last().await.unwrap(),
    );

    // The failover: the former replica serves, without "lost", and gives
    // position 2 to the next event.
    let promoted = open(&replica.url()).await;
    assert_eq!(
        promoted.append(&events(&["next"])).await.unwrap(),
        [Appended::New(2)]
    );
    let truth = promoted.read_after(0, 10).await.unwrap();
    assert_eq!(ids(&truth), ["kept", "next"]);
    for (what, seen) in [
        ("follow", &followed),
        ("read_after", &read),
        ("a new node's read_after", &fresh_read),
    ] {
        for event in seen {
            let there = truth.iter().find(|e| e.seq == event.seq);
            assert_eq!(
                there.map(|e| &e.id),
                Some(&event.id),
                "{what} returned {} at {}, which the failover lost",
                event.id,
                event.seq
            );
        }
    }
    assert_eq!((last, fresh_last), (1, 1), "last() went past the replicas");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_keeps_every_position_it_read_across_a_sentinel_failover() {
    let Some(mut sentinel) = tidings_testkit::Sentinel::start() else {
        return;
    };
    let url = format!("{}?replicas=1&replica_timeout=500", sentinel.url());
    let (publisher, follower) = (open(&url).await, open(&url).await);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let publishing = tokio::spawn({
        let (log, stop) = (Arc::clone(&publisher), Arc::clone(&stop));
        async move {
            let mut acknowledged = Vec::new();
            for i in 0.. {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let batch: Vec<String> = (0..4).map(|j| format!("e{i}-{j}")).collect();
                let batch: Vec<&str> = batch.iter().map(String::as_str).collect();
                match log.append(&events(&batch)).await {
                    Ok(landed) => acknowledged.extend(
                        batch
                            .iter()
                            .zip(landed)
                            .map(|(id, l)| (id.to_string(), l.position())),
                    ),
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
            acknowledged
        }
    });
    let following = tokio::spawn({
        let (log, stop) = (Arc::clone(&follower), Arc::clone(&stop));
        async move {
            let (mut after, mut got) = (0, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match log.follow(after, 1000, Duration::from_millis(200)).await {
                    Ok(events) => {
                        after = events.last().map_or(after, |e| e.seq);
                        got.extend(events);
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
            got
        }
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    sentinel.kill_primary();
    let failed_over =
        tokio::task::block_in_place(|| sentinel.wait_for_failover(Duration::from_secs(30)));
    assert!(failed_over, "no failover\n{}", sentinel.logs());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (acknowledged, followed) = (publishing.await.unwrap(), following.await.unwrap());
    println!(
        "failover: {} acknowledged, {} followed",
        acknowledged.len(),
        followed.len()
    );
    assert!(!acknowledged.is_empty());

    // The log on the new primary, read without a bound.
    let plain = open(&sentinel.url()).await;
    let mut truth = Vec::new();
    for _ in 0..50 {
        match plain.read_after(0, 100_000).await {
            Ok(read) => {
                truth = read;
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let at = |seq: u64| truth.get(seq as usize - 1).map(|e| e.id.to_string());
    assert_eq!(seqs(&truth), (1..=truth.len() as u64).collect::<Vec<_>>());
    for event in &followed {
        assert_eq!(
            at(event.seq),
            Some(event.id.to_string()),
            "followed at {}",
            event.seq
        );
    }
    for (id, position) in &acknowledged {
        assert_eq!(
            at(*position).as_ref(),
            Some(id),
            "acknowledged at {position}"
        );
    }
    // The follower read every acknowledged event, in order, with no gap.
    assert_eq!(
        seqs(&followed),
        (1..=followed.len() as u64).collect::<Vec<_>>()
    );
    let last_acknowledged = acknowledged.iter().map(|(_, p)| *p).max().unwrap();
    assert!(
        followed.len() as u64 >= last_acknowledged,
        "followed {} of {last_acknowledged}",
        followed.len()
    );
}

/// Appends through one log and reads and follows it back through another
/// opened with the same URL: what a node needs from its engine. The events'
/// ids are `{tag}1` and `{tag}2`.
async fn works_through(url: &str, tag: &str) {
    let (one, two) = (open(url).await, open(url).await);
    let after = one.last().await.unwrap();
    let names = [format!("{tag}1"), format!("{tag}2")];
    let appended = one.append(&events(&[&names[0], &names[1]])).await.unwrap();
    assert_eq!(
        appended,
        vec![Appended::New(after + 1), Appended::New(after + 2)]
    );
    assert_eq!(ids(&two.read_after(after, 10).await.unwrap()), names);
    let followed = two.follow(after, 10, Duration::from_secs(2)).await.unwrap();
    assert_eq!(ids(&followed), names);
}

/// The error `url` is refused with at connect, as text.
async fn refusal(url: &str) -> HistoryError {
    match history::connect(url, Retention::default()).await {
        Err(error) => error,
        Ok(_) => panic!("{url} was accepted"),
    }
}

#[tokio::test]
async fn a_password_alone_and_an_acl_user_both_open_the_log_and_wrong_ones_are_refused() {
    let Some(redis) = redis() else { return };
    // The ACL user first: once the default user has a password, redis-cli
    // (which sends none) is refused.
    redis.cli(&[
        "ACL",
        "SETUSER",
        "hub",
        "on",
        ">hub-pass",
        "~*",
        "&*",
        "+@all",
    ]);
    redis.cli(&["CONFIG", "SET", "requirepass", "default-pass"]);
    let port = redis.port();
    let url = |userinfo: &str| format!("redis://{userinfo}@127.0.0.1:{port}?stream=s");

    works_through(&url(":default-pass"), "default").await;
    works_through(&url("hub:hub-pass"), "hub").await;
    let log = open(&url("hub:hub-pass")).await;
    assert_eq!(log.last().await.unwrap(), 4, "both URLs name one log");
    assert!(!log.describe().contains("hub-pass"), "{}", log.describe());

    let wrong = [
        (url(":not-the-pass"), "not-the-pass"),
        (url("hub:not-the-pass"), "not-the-pass"),
        (url("nobody:hub-pass"), "hub-pass"),
        (url("hub:default-pass"), "default-pass"),
    ];
    for (url, secret) in wrong {
        let refused = refusal(&url).await;
        let why = refused.to_string();
        // Failed, not Unavailable: a node does not wait for a password to
        // become right.
        assert!(matches!(refused, HistoryError::Failed(_)), "{why}");
        assert!(!why.contains(secret), "{why}");
        assert!(why.contains(&format!("127.0.0.1:{port}")), "{why}");
        assert!(
            why.contains("WRONGPASS") || why.to_lowercase().contains("password"),
            "{why}"
        );
    }
    let anonymous = refusal(&format!("redis://127.0.0.1:{port}")).await;
    assert!(matches!(anonymous, HistoryError::Failed(_)), "{anonymous}");
    assert!(anonymous.to_string().contains("NOAUTH"), "{anonymous}");
}

#[tokio::test]
async fn rediss_trusts_the_ca_the_url_names_and_no_other() {
    let certificates = Certificates::generate();
    let Some(redis) = Redis::start_tls(&certificates) else {
        return;
    };
    let port = redis.port();
    let ca = certificates.ca();
    let ca = ca.display();
    assert_eq!(redis.url(), format!("rediss://127.0.0.1:{port}"));

    // The certificate names both 127.0.0.1 and localhost.
    works_through(&format!("rediss://127.0.0.1:{port}?ca={ca}&stream=s"), "ip").await;
    works_through(
        &format!("rediss://localhost:{port}/0?stream=s&ca={ca}"),
        "name",
    )
    .await;

    // Without `ca` the system's CAs are trusted, which did not sign the
    // server's certificate; nor did another CA.
    let untrusted = refusal(&format!("rediss://127.0.0.1:{port}")).await;
    assert!(
        untrusted.to_string().to_lowercase().contains("certificate"),
        "{untrusted}"
    );
    let other = Certificates::generate();
    let untrusted = refusal(&format!(
        "rediss://127.0.0.1:{port}?ca={}",
        other.ca().display()
    ))
    .await;
    assert!(
        untrusted.to_string().to_lowercase().contains("certificate"),
        "{untrusted}"
    );
    // The server takes no plain connections.
    refusal(&format!("redis://127.0.0.1:{port}")).await;

    let refused = refusal(&format!("redis://127.0.0.1:{port}?ca={ca}")).await;
    assert!(
        matches!(&refused, HistoryError::Failed(why) if why.contains("`ca`") && why.contains("rediss://")),
        "{refused}"
    );
    let missing = format!("{ca}.missing");
    let refused = refusal(&format!("rediss://127.0.0.1:{port}?ca={missing}")).await;
    assert!(
        matches!(&refused, HistoryError::Failed(why) if why.contains(&missing)),
        "{refused}"
    );
    let refused = refusal(&format!(
        "rediss://127.0.0.1:{port}?ca={}",
        certificates.key().display()
    ))
    .await;
    assert!(
        matches!(&refused, HistoryError::Failed(why) if why.contains("no PEM certificate")),
        "{refused}"
    );
}
