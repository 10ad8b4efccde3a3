//! The Redis Streams engine against real `redis-server` processes.

use std::sync::Arc;
use std::time::{Duration, Instant};
use tidings::event::{Event, Update};
use tidings::history::{self, Appended, HistoryError, Retention, SharedLog};
use tidings_testkit::Redis;

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
    let bounded = open_with(
        &redis.url(),
        Retention {
            events: Some(10),
            ..Retention::default()
        },
    )
    .await;
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
