//! The NATS JetStream engine against real `nats-server` processes.

use async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::HeaderMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tidings::event::{Event, SharedEvent};
use tidings::history::{self, Appended, HistoryError, Retention, SharedLog};
use tidings::Update;
use tidings_testkit::{Certificates, Nats, NatsCluster};

fn event(id: &str) -> Event {
    let mut update = Update::new(
        format!("https://example.com/books/{id}"),
        format!("data of {id}"),
    );
    update.topics.push("https://example.com/books".into());
    update.private = id.ends_with('p');
    update.kind = Some("book".into());
    Event::from_update(0, id.into(), &update)
}

fn events(prefix: &str, range: std::ops::Range<usize>) -> Vec<Event> {
    range.map(|i| event(&format!("{prefix}{i}"))).collect()
}

async fn open(url: &str, retention: Retention) -> Arc<dyn SharedLog> {
    match history::connect(url, retention).await {
        Ok(log) => log,
        Err(err) => panic!("connect: {err}"),
    }
}

fn ids(events: &[SharedEvent]) -> Vec<String> {
    events.iter().map(|e| e.id.to_string()).collect()
}

fn seqs(events: &[SharedEvent]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}

/// Follows the log from `after` until position `to`.
async fn follow_to(log: &Arc<dyn SharedLog>, mut after: u64, to: u64) -> Vec<SharedEvent> {
    let mut got = Vec::new();
    while after < to {
        let events = log
            .follow(after, 1_000, Duration::from_secs(2))
            .await
            .unwrap();
        assert!(
            !events.is_empty(),
            "follow timed out at {after}, short of {to}"
        );
        after = events.last().map_or(after, |e| e.seq);
        got.extend(events);
    }
    got
}

/// The premise of idempotency, checked on the installed server: an
/// expected last subject sequence of 0 refuses a second message on a subject.
#[tokio::test]
async fn server_refuses_a_second_message_when_expecting_none() {
    let Some(nats) = Nats::start() else {
        return;
    };
    let client = async_nats::connect(nats.url()).await.unwrap();
    let context = async_nats::jetstream::new(client);
    context
        .create_stream(async_nats::jetstream::stream::Config {
            name: "probe".into(),
            subjects: vec!["probe.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    let publish = || async {
        let mut headers = HeaderMap::new();
        headers.insert(NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, "0");
        context
            .publish_with_headers("probe.a", headers, "x".into())
            .await
            .unwrap()
            .await
    };
    assert_eq!(publish().await.unwrap().sequence, 1);
    let refused = publish().await.expect_err("a second message was stored");
    assert_eq!(refused.kind(), PublishErrorKind::WrongLastSequence);
}

#[tokio::test]
async fn positions_are_contiguous_and_events_read_back_whole() {
    let Some(nats) = Nats::start() else {
        return;
    };
    let log = open(&nats.url(), Retention::default()).await;
    assert_eq!(log.last().await.unwrap(), 0);
    assert!(log.read_after(0, 10).await.unwrap().is_empty());
    let first = log.append(&events("e", 0..3)).await.unwrap();
    let second = log.append(&[event("e3p")]).await.unwrap();
    assert_eq!(
        [first, second].concat(),
        (1..=4).map(Appended::New).collect::<Vec<_>>()
    );
    assert_eq!(log.last().await.unwrap(), 4);

    let read = log.read_after(0, 100).await.unwrap();
    assert_eq!(seqs(&read), [1, 2, 3, 4]);
    let mut sent = events("e", 0..3);
    sent.push(event("e3p"));
    for (got, sent) in read.iter().zip(&sent) {
        assert_eq!(got.id, sent.id);
        assert_eq!(got.topics, sent.topics);
        assert_eq!(got.private, sent.private);
        assert_eq!(got.frame, sent.frame);
    }
    assert!(read[3].private && !read[0].private);
    assert_eq!(seqs(&log.read_after(1, 2).await.unwrap()), [2, 3]);
    assert!(log.read_after(4, 10).await.unwrap().is_empty());
    assert_eq!(log.locate("e2").await.unwrap(), Some(3));
    assert_eq!(log.locate("nowhere").await.unwrap(), None);
    assert!(log.describe().contains("tidings"));
}

#[tokio::test]
async fn a_long_replay_comes_back_in_order() {
    let Some(nats) = Nats::start() else {
        return;
    };
    let log = open(&nats.url(), Retention::default()).await;
    for batch in 0..10 {
        log.append(&events("r", batch * 100..batch * 100 + 100))
            .await
            .unwrap();
    }
    let started = Instant::now();
    let read = log.read_after(0, 1_000).await.unwrap();
    println!("replay of 1000 events: {:?}", started.elapsed());
    assert_eq!(seqs(&read), (1..=1_000).collect::<Vec<_>>());
    assert_eq!(
        seqs(&log.read_after(990, 1_000).await.unwrap()),
        (991..=1_000).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_duplicate_id_takes_no_position() {
    let Some(nats) = Nats::start() else {
        return;
    };
    let log = open(&nats.url(), Retention::default()).await;
    let landed = log
        .append(&[event("a"), event("b"), event("a"), event("c")])
        .await
        .unwrap();
    assert_eq!(
        landed,
        [
            Appended::New(1),
            Appended::New(2),
            Appended::Duplicate(1),
            Appended::New(3)
        ]
    );
    let again = log.append(&[event("b"), event("d")]).await.unwrap();
    assert_eq!(again, [Appended::Duplicate(2), Appended::New(4)]);
    assert_eq!(
        ids(&log.read_after(0, 10).await.unwrap()),
        ["a", "b", "c", "d"]
    );
    assert_eq!(log.last().await.unwrap(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_appending_the_same_ids_store_each_once() {
    let Some(nats) = Nats::start() else {
        return;
    };
    let one = open(&nats.url(), Retention::default()).await;
    let two = open(&nats.url(), Retention::default()).await;
    let batches: Vec<Vec<Event>> = (0..10).map(|b| events("s", b * 64..b * 64 + 64)).collect();
    let appends = |log: Arc<dyn SharedLog>| {
        let batches: Vec<Vec<Event>> = batches
            .iter()
            .map(|batch| batch.iter().map(|e| event(&e.id)).collect())
            .collect();
        tokio::spawn(async move {
            let mut landed = Vec::new();
            for batch in &batches {
                landed.extend(log.append(batch).await.unwrap());
            }
            landed
        })
    };
    let (a, b) = tokio::join!(appends(one.clone()), appends(two.clone()));
    let (a, b) = (a.unwrap(), b.unwrap());
    let positions = |landed: &[Appended]| landed.iter().map(|l| l.position()).collect::<Vec<_>>();
    assert_eq!(
        positions(&a),
        positions(&b),
        "the nodes disagree on where an id is"
    );
    let new = a
        .iter()
        .chain(&b)
        .filter(|l| matches!(l, Appended::New(_)))
        .count();
    assert_eq!(new, 640, "each id stored exactly once");
    let stored = one.read_after(0, 10_000).await.unwrap();
    assert_eq!(stored.len(), 640);
    assert_eq!(one.last().await.unwrap(), 640);
}

#[tokio::test]
async fn retention_by_events_trims_the_front() {
    let Some(nats) = Nats::start() else {
        return;
    };
    let retention = Retention {
        events: Some(5),
        ..Retention::default()
    };
    let log = open(&nats.url(), retention).await;
    log.append(&events("t", 0..12)).await.unwrap();
    assert_eq!(
        seqs(&log.read_after(0, 100).await.unwrap()),
        [8, 9, 10, 11, 12]
    );
    assert_eq!(seqs(&log.read_after(3, 2).await.unwrap()), [8, 9]);
    assert_eq!(log.locate("t0").await.unwrap(), None);
    assert_eq!(log.locate("t11").await.unwrap(), Some(12));
    assert_eq!(log.last().await.unwrap(), 12);
}

#[tokio::test]
async fn retention_by_bytes_trims_the_front() {
    let Some(nats) = Nats::start() else {
        return;
    };
    let retention = Retention {
        bytes: Some(2_000),
        ..Retention::default()
    };
    let log = open(&nats.url(), retention).await;
    log.append(&events("b", 0..100)).await.unwrap();
    let kept = log.read_after(0, 1_000).await.unwrap();
    assert!(!kept.is_empty() && kept.len() < 100, "kept {}", kept.len());
    assert_eq!(kept.last().map(|e| e.seq), Some(100));
    assert_eq!(log.locate("b0").await.unwrap(), None);
    assert_eq!(log.last().await.unwrap(), 100);
    let mut stats = log.stats();
    for _ in 0..30 {
        if stats.events == kept.len() as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        log.trim().await.unwrap();
        stats = log.stats();
    }
    assert_eq!(stats.events, kept.len() as u64);
    assert!(stats.bytes <= 2_000);
}

#[tokio::test]
async fn retention_by_age_empties_the_log_but_keeps_its_last_position() {
    let Some(nats) = Nats::start() else {
        return;
    };
    let retention = Retention {
        age: Some(Duration::from_secs(1)),
        ..Retention::default()
    };
    let log = open(&nats.url(), retention).await;
    log.append(&events("g", 0..3)).await.unwrap();
    assert_eq!(log.read_after(0, 10).await.unwrap().len(), 3);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert!(log.read_after(0, 10).await.unwrap().is_empty());
    assert_eq!(log.locate("g1").await.unwrap(), None);
    assert_eq!(log.last().await.unwrap(), 3);
    // Gone, so no longer a duplicate: stored again, at a new position.
    assert_eq!(
        log.append(&[event("g1")]).await.unwrap(),
        [Appended::New(4)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_wakes_on_another_nodes_append_with_many_events_a_call() {
    let Some(nats) = Nats::start() else {
        return;
    };
    let follower = open(&nats.url(), Retention::default()).await;
    let publisher = open(&nats.url(), Retention::default()).await;

    let started = Instant::now();
    assert!(follower
        .follow(0, 100, Duration::from_millis(300))
        .await
        .unwrap()
        .is_empty());
    assert!(started.elapsed() >= Duration::from_millis(300));

    let reader = tokio::spawn(async move {
        let (mut after, mut calls, mut got) = (0, 0, Vec::new());
        while got.len() < 500 {
            let events = follower
                .follow(after, 1_000, Duration::from_secs(5))
                .await
                .unwrap();
            assert!(!events.is_empty(), "follow timed out with events appended");
            calls += 1;
            after = events.last().map_or(after, |e| e.seq);
            got.extend(events);
        }
        (got, calls)
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    for batch in 0..5 {
        publisher
            .append(&events("f", batch * 100..batch * 100 + 100))
            .await
            .unwrap();
    }
    let (got, calls) = reader.await.unwrap();
    println!(
        "follow: 500 events in {calls} calls, {:?}",
        started.elapsed()
    );
    assert_eq!(seqs(&got), (1..=500).collect::<Vec<_>>());
    assert!(calls <= 50, "{calls} calls for 500 events");
}

#[tokio::test]
async fn follow_starts_again_where_it_is_asked() {
    let Some(nats) = Nats::start() else {
        return;
    };
    let log = open(&nats.url(), Retention::default()).await;
    log.append(&events("o", 0..10)).await.unwrap();
    let wait = Duration::from_secs(2);
    assert_eq!(seqs(&log.follow(0, 4, wait).await.unwrap()), [1, 2, 3, 4]);
    assert_eq!(seqs(&log.follow(4, 2, wait).await.unwrap()), [5, 6]);
    // Not the continuation: a consumer from position 3.
    assert_eq!(seqs(&log.follow(2, 3, wait).await.unwrap()), [3, 4, 5]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_fails_calls_quickly_and_the_log_comes_back_whole() {
    let Some(mut nats) = Nats::start() else {
        return;
    };
    let log = open(&nats.url(), Retention::default()).await;
    log.append(&events("o", 0..20)).await.unwrap();
    assert_eq!(follow_to(&log, 0, 20).await.len(), 20);

    nats.kill();
    let bound = Duration::from_secs(5);
    let timed = |what: &'static str, started: Instant, result: Result<(), HistoryError>| {
        let elapsed = started.elapsed();
        assert!(
            matches!(result, Err(HistoryError::Unavailable(_))),
            "{what}: {result:?}"
        );
        assert!(elapsed < bound, "{what} took {elapsed:?}");
    };
    let t = Instant::now();
    timed("append", t, log.append(&[event("lost?")]).await.map(drop));
    let t = Instant::now();
    timed("read_after", t, log.read_after(0, 10).await.map(drop));
    let t = Instant::now();
    timed("locate", t, log.locate("o1").await.map(drop));
    let t = Instant::now();
    timed("last", t, log.last().await.map(drop));
    let t = Instant::now();
    timed(
        "follow",
        t,
        log.follow(20, 10, Duration::from_secs(1)).await.map(drop),
    );

    nats.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    let landed = loop {
        match log.append(&[event("after")]).await {
            Ok(landed) => break landed,
            Err(err) if Instant::now() < deadline => {
                println!("not back yet: {err}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(err) => panic!("the log did not come back: {err}"),
        }
    };
    let read = log.read_after(0, 100).await.unwrap();
    let before: Vec<String> = (0..20).map(|i| format!("o{i}")).collect();
    assert_eq!(
        ids(&read)[..20],
        before[..],
        "an acknowledged event was lost"
    );
    // The publication during the outage may have been taken when the
    // connection returned; either way positions stay contiguous.
    assert_eq!(seqs(&read), (1..=read.len() as u64).collect::<Vec<_>>());
    // A try that timed out may have been taken once the server was back:
    // the retry is then answered as a duplicate, at the same place.
    assert_eq!(landed.len(), 1);
    assert_eq!(landed[0].position(), read.len() as u64);
    assert_eq!(read.last().map(|e| &*e.id), Some("after"));
    let tail = follow_to(&log, 20, read.len() as u64).await;
    assert_eq!(ids(&tail), ids(&read[20..]));
}

#[tokio::test]
async fn an_undecodable_message_is_an_error_naming_its_position() {
    let Some(nats) = Nats::start() else {
        return;
    };
    let log = open(&nats.url(), Retention::default()).await;
    log.append(&[event("fine")]).await.unwrap();
    let client = async_nats::connect(nats.url()).await.unwrap();
    let context = async_nats::jetstream::new(client);
    context
        .publish("tidings.garbage", "not a record".into())
        .await
        .unwrap()
        .await
        .unwrap();
    match log.read_after(0, 10).await {
        Err(HistoryError::Failed(reason)) => assert!(reason.contains("position 2"), "{reason}"),
        other => panic!("read_after: {other:?}"),
    }
    match log.follow(0, 10, Duration::from_secs(1)).await {
        Err(HistoryError::Failed(reason)) => assert!(reason.contains("position 2"), "{reason}"),
        other => panic!("follow: {other:?}"),
    }
}

#[tokio::test]
async fn a_bad_url_is_refused_with_a_reason() {
    let reason = |url: &'static str| async move {
        match history::connect(url, Retention::default()).await {
            Err(HistoryError::Failed(reason)) => reason,
            Err(other) => panic!("{url}: {other}"),
            Ok(_) => panic!("{url} was accepted"),
        }
    };
    assert!(reason("nats://127.0.0.1:1?stream=a.b")
        .await
        .contains("`stream`"));
    let unknown = reason("nats://u:secret@127.0.0.1:1?colour=red").await;
    assert!(unknown.contains("`colour`") && !unknown.contains("secret"));
    // Nothing listens on port 1: unavailable, promptly, without the password.
    let started = Instant::now();
    match history::connect("nats://u:secret@127.0.0.1:1", Retention::default()).await {
        Err(HistoryError::Unavailable(reason)) => assert!(!reason.contains("secret"), "{reason}"),
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("connected to nothing"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_of_batches_of_64() {
    let Some(nats) = Nats::start() else {
        return;
    };
    for storage in ["file", "memory"] {
        let log = open(
            &format!("{}?storage={storage}&stream={storage}", nats.url()),
            Retention::default(),
        )
        .await;
        let batches: Vec<Vec<Event>> = (0..50).map(|b| events("p", b * 64..b * 64 + 64)).collect();
        let started = Instant::now();
        for batch in &batches {
            log.append(batch).await.unwrap();
        }
        let elapsed = started.elapsed();
        println!(
            "{storage} storage: {} appends/s in batches of 64",
            (50.0 * 64.0 / elapsed.as_secs_f64()) as u64
        );
        let started = Instant::now();
        let read = log.read_after(0, 3_200).await.unwrap();
        println!(
            "{storage} storage: replay of {} events in {:?}",
            read.len(),
            started.elapsed()
        );
    }
}

/// The node that leads `stream`, as the nodes' `/jsz` report it.
fn stream_leader(cluster: &NatsCluster, nodes: usize, stream: &str) -> Option<usize> {
    let named = format!("\"name\":\"{stream}\"");
    let leader = (0..nodes).find_map(|i| {
        let jsz = cluster.monitor(i, "/jsz?accounts=true&streams=true")?;
        let jsz: String = jsz.split_whitespace().collect();
        let (_, details) = jsz.split_once("\"stream_detail\":")?;
        let (_, detail) = details.split_once(&named)?;
        let (_, rest) = detail.split_once("\"leader\":\"")?;
        rest.split('"').next().map(str::to_owned)
    })?;
    (0..nodes).find(|&i| cluster.server_name(i) == leader)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicated_stream_loses_no_acknowledged_event_when_its_leader_dies() {
    let Some(mut cluster) = NatsCluster::start(3) else {
        return;
    };
    let url = format!("{}?replicas=3", cluster.url());
    let log = open(&url, Retention::default()).await;
    let other = open(&url, Retention::default()).await;
    let mut leader = None;
    for _ in 0..100 {
        leader = stream_leader(&cluster, 3, "tidings");
        if leader.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let leader = leader.expect("a stream leader");

    // Two nodes publish the same batches, retrying each until it is taken, as
    // publishers do.
    let publish = |log: Arc<dyn SharedLog>| {
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(60);
            for b in 0..60 {
                let batch = events("k", b * 16..b * 16 + 16);
                let landed = loop {
                    match log.append(&batch).await {
                        Ok(landed) => break landed,
                        Err(err) => {
                            assert!(Instant::now() < deadline, "appends did not resume: {err}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                };
                for (event, landed) in batch.iter().zip(landed) {
                    acknowledged.push((event.id.to_string(), landed.position()));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            acknowledged
        })
    };
    let (one, two) = (publish(log.clone()), publish(other));
    tokio::time::sleep(Duration::from_millis(400)).await;
    cluster.kill(leader);
    let started = Instant::now();
    let (one, two) = (one.await.unwrap(), two.await.unwrap());
    println!(
        "leader {} killed; the publishers finished {:?} later",
        cluster.server_name(leader),
        started.elapsed()
    );
    assert_eq!(one, two, "the nodes disagree on where an id is");

    // The new leader may still be settling: a read can be refused for a
    // moment (Unavailable), as a subscriber's replay would be, then retried.
    let deadline = Instant::now() + Duration::from_secs(30);
    let stored = loop {
        match log.read_after(0, 10_000).await {
            Ok(stored) => break stored,
            Err(err) => {
                assert!(Instant::now() < deadline, "reads did not resume: {err}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    assert_eq!(seqs(&stored), (1..=stored.len() as u64).collect::<Vec<_>>());
    assert_eq!(stored.len(), 960, "each id stored once");
    for (id, position) in &one {
        assert_eq!(
            &*stored[*position as usize - 1].id,
            id.as_str(),
            "acknowledged at {position}"
        );
    }
}

/// A replica that has none of the stream yet, as far as direct gets go: a
/// client on the server at `port` answering every direct get for `stream`
/// with 404, as a replica does for a message it does not hold yet. The
/// replicas answer too; a requester takes whichever answer comes first.
async fn lagging_replica(port: u16, stream: &str) -> tokio::task::JoinHandle<()> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let socket = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    socket.set_nodelay(true).unwrap();
    let (read, mut write) = socket.into_split();
    let mut read = BufReader::new(read);
    let mut info = String::new();
    read.read_line(&mut info).await.unwrap();
    assert!(info.starts_with("INFO"), "{info}");
    let hello = format!(
        "CONNECT {{\"verbose\":false,\"headers\":true,\"protocol\":1}}\r\n\
         SUB $JS.API.DIRECT.GET.{stream} 1\r\nSUB $JS.API.DIRECT.GET.{stream}.> 2\r\nPING\r\n"
    );
    write.write_all(hello.as_bytes()).await.unwrap();
    let mut pong = String::new();
    read.read_line(&mut pong).await.unwrap();
    assert!(pong.starts_with("PONG"), "{pong}");
    tokio::spawn(async move {
        let mut line = String::new();
        loop {
            line.clear();
            if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let parts: Vec<&str> = line.split_whitespace().collect();
            let (reply, size) = match parts[..] {
                ["PING"] => {
                    let _ = write.write_all(b"PONG\r\n").await;
                    continue;
                }
                ["MSG", _, _, reply, size] => (reply.to_owned(), size),
                ["HMSG", _, _, reply, _, size] => (reply.to_owned(), size),
                _ => continue,
            };
            let mut body = vec![0; size.parse::<usize>().unwrap() + 2];
            read.read_exact(&mut body).await.unwrap();
            let headers = "NATS/1.0 404 Message Not Found\r\n\r\n";
            let answer = format!("HPUB {reply} {0} {0}\r\n{headers}\r\n", headers.len());
            if write.write_all(answer.as_bytes()).await.is_err() {
                return;
            }
        }
    })
}

/// A replay reads only what the stream leader answers for: an empty or short
/// answer ends a subscriber's replay, so one from a replica that lags would
/// skip events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_is_never_short_of_what_the_leader_acknowledged() {
    let Some(cluster) = NatsCluster::start(3) else {
        return;
    };
    let log = open(
        &format!("{}?replicas=3", cluster.url()),
        Retention::default(),
    )
    .await;
    for b in 0..3 {
        log.append(&events("l", b * 100..b * 100 + 100))
            .await
            .unwrap();
    }
    let _lagging = lagging_replica(cluster.port(0), "tidings").await;
    let reader = open(
        &format!("nats://127.0.0.1:{}?replicas=3", cluster.port(0)),
        Retention::default(),
    )
    .await;
    for round in 0..10 {
        for (after, limit) in [(0, 1_000), (0, 300), (250, 1_000), (290, 5), (299, 10)] {
            let read = reader.read_after(after, limit).await.unwrap();
            let want: Vec<u64> = (after + 1..=300.min(after + limit as u64)).collect();
            assert_eq!(
                (read.len(), read.first().map(|e| e.seq)),
                (want.len(), want.first().copied()),
                "round {round}: read_after({after}, {limit})"
            );
            assert_eq!(seqs(&read), want);
        }
    }
}

/// The stream's limits are the first node's: a node started with other
/// bounds neither shrinks nor grows them.
#[tokio::test]
async fn a_node_with_other_bounds_leaves_the_streams_limits_alone() {
    let Some(nats) = Nats::start() else {
        return;
    };
    let five = Retention {
        events: Some(5),
        ..Retention::default()
    };
    let first = open(&nats.url(), five).await;
    let other = open(
        &nats.url(),
        Retention {
            events: Some(100),
            age: Some(Duration::from_secs(3_600)),
            ..Retention::default()
        },
    )
    .await;
    other.append(&events("b", 0..12)).await.unwrap();
    assert_eq!(
        seqs(&first.read_after(0, 100).await.unwrap()),
        [8, 9, 10, 11, 12]
    );
    let client = async_nats::connect(nats.url()).await.unwrap();
    let mut stream = async_nats::jetstream::new(client)
        .get_stream("tidings")
        .await
        .unwrap();
    let config = &stream.info().await.unwrap().config;
    assert_eq!(config.max_messages, 5);
    assert_eq!(config.max_age, Duration::ZERO);
    // Again with fewer bounds: still the stream's.
    let _unbounded = open(&nats.url(), Retention::default()).await;
    let config = &stream.info().await.unwrap().config;
    assert_eq!(config.max_messages, 5);
}

/// Appends through one log and reads and follows it back through another
/// opened with the same URL: what a node needs from its engine.
async fn works_through(url: &str, prefix: &str) {
    let (one, two) = (
        open(url, Retention::default()).await,
        open(url, Retention::default()).await,
    );
    let after = one.last().await.unwrap();
    let appended = one.append(&events(prefix, 0..2)).await.unwrap();
    assert_eq!(
        appended,
        vec![Appended::New(after + 1), Appended::New(after + 2)]
    );
    let want = [format!("{prefix}0"), format!("{prefix}1")];
    assert_eq!(ids(&two.read_after(after, 10).await.unwrap()), want);
    assert_eq!(ids(&follow_to(&two, after, after + 2).await), want);
}

/// What connecting with `url` is refused with.
async fn refusal(url: &str) -> HistoryError {
    match history::connect(url, Retention::default()).await {
        Err(error) => error,
        Ok(_) => panic!("{url} was accepted"),
    }
}

/// Wrong credentials are refused at once, as Failed (a starting node does not
/// wait for them to become right), naming the server but not the secret.
fn assert_refused_credentials(refused: &HistoryError, port: u16, secret: &str) {
    let why = refused.to_string();
    assert!(matches!(refused, HistoryError::Failed(_)), "{why}");
    assert!(why.contains("authorization violation"), "{why}");
    assert!(why.contains(&format!("127.0.0.1:{port}")), "{why}");
    assert!(!why.contains(secret), "{why}");
}

#[tokio::test]
async fn a_token_in_the_url_opens_the_log_and_a_wrong_one_is_refused() {
    let Some(nats) = Nats::start_with(r#"authorization { token: "tok-secret" }"#) else {
        return;
    };
    let port = nats.port();
    works_through(&format!("nats://tok-secret@127.0.0.1:{port}"), "t").await;

    let started = Instant::now();
    let refused = refusal(&format!("nats://not-the-token@127.0.0.1:{port}")).await;
    assert_refused_credentials(&refused, port, "not-the-token");
    let refused = refusal(&format!("nats://127.0.0.1:{port}")).await;
    assert_refused_credentials(&refused, port, "tok-secret");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_user_and_password_in_the_url_open_the_log_and_wrong_ones_are_refused() {
    let config = r#"authorization { users: [ { user: hub, password: "hub-pass" } ] }"#;
    let Some(nats) = Nats::start_with(config) else {
        return;
    };
    let port = nats.port();
    // Percent-encoding is undone: `hub-pass` written as `hub%2Dpass`.
    works_through(&format!("nats://hub:hub%2Dpass@127.0.0.1:{port}"), "u").await;
    works_through(&format!("nats://hub:hub-pass@127.0.0.1:{port}"), "v").await;

    for (userinfo, secret) in [
        ("hub:not-the-pass", "not-the-pass"),
        ("nobody:hub-pass", "hub-pass"),
        ("hub-pass", "hub-pass"),
    ] {
        let refused = refusal(&format!("nats://{userinfo}@127.0.0.1:{port}")).await;
        assert_refused_credentials(&refused, port, secret);
    }
}

#[tokio::test]
async fn tls_trusts_the_ca_the_url_names_and_no_other() {
    let certificates = Certificates::generate();
    let config = format!(
        "tls {{ cert_file: \"{}\", key_file: \"{}\" }}",
        certificates.cert().display(),
        certificates.key().display()
    );
    let Some(nats) = Nats::start_with(&config) else {
        return;
    };
    let port = nats.port();
    let ca = certificates.ca();
    let ca = ca.display();

    works_through(&format!("tls://127.0.0.1:{port}?ca={ca}"), "a").await;
    works_through(
        &format!("tls://localhost:{port}?stream=tidings&ca={ca}"),
        "b",
    )
    .await;
    // The server requires TLS, so a nats:// URL upgrades to it as well.
    works_through(&format!("nats://127.0.0.1:{port}?ca={ca}"), "c").await;

    // The system's CAs did not sign the server's certificate, nor did another CA.
    let untrusted = refusal(&format!("tls://127.0.0.1:{port}")).await;
    assert!(
        untrusted.to_string().contains("invalid peer certificate"),
        "{untrusted}"
    );
    let other = Certificates::generate();
    let untrusted = refusal(&format!(
        "tls://127.0.0.1:{port}?ca={}",
        other.ca().display()
    ))
    .await;
    assert!(
        untrusted.to_string().contains("invalid peer certificate"),
        "{untrusted}"
    );

    let missing = format!("{ca}.missing");
    let refused = refusal(&format!("tls://127.0.0.1:{port}?ca={missing}")).await;
    assert!(
        matches!(&refused, HistoryError::Failed(why) if why.contains(&missing)),
        "{refused}"
    );
}

/// A JWT as nsc writes them: `header.claims.signature`, base64url without
/// padding, signed with `signer`'s ed25519 nkey; `nats` holds the claims
/// particular to the subject's kind.
fn jwt(signer: &nkeys::KeyPair, subject: &str, name: &str, nats: serde_json::Value) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    let header = serde_json::json!({"typ": "JWT", "alg": "ed25519-nkey"});
    let claims = serde_json::json!({
        // Only unique: the server does not check it against the claims' hash.
        "jti": format!("{name}-{subject}"),
        "iat": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
        "iss": signer.public_key(),
        "name": name,
        "sub": subject,
        "nats": nats,
    });
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = signer.sign(signed.as_bytes()).expect("sign the JWT");
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// An operator, an account with JetStream and a user of it: the server's
/// configuration (the operator's JWT and the account's, preloaded in a
/// memory resolver), and the user's credentials file as nsc writes it.
fn operator_setup() -> (String, String) {
    let operator = nkeys::KeyPair::new_operator();
    // JetStream does not start without a system account.
    let system = nkeys::KeyPair::new_account();
    let account = nkeys::KeyPair::new_account();
    let user = nkeys::KeyPair::new_user();
    let operator_jwt = jwt(
        &operator,
        &operator.public_key(),
        "op",
        serde_json::json!({"type": "operator", "version": 2, "system_account": system.public_key()}),
    );
    let system_jwt = jwt(
        &operator,
        &system.public_key(),
        "SYS",
        serde_json::json!({"type": "account", "version": 2}),
    );
    let unlimited = serde_json::json!({
        "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
        "wildcards": true, "conn": -1, "leaf": -1,
        "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1,
    });
    let account_jwt = jwt(
        &operator,
        &account.public_key(),
        "hub",
        serde_json::json!({"type": "account", "version": 2, "limits": unlimited}),
    );
    let user_jwt = jwt(
        &account,
        &user.public_key(),
        "node",
        serde_json::json!({"type": "user", "version": 2, "subs": -1, "data": -1, "payload": -1}),
    );
    let config = format!(
        "operator: \"{operator_jwt}\"\nsystem_account: {}\nresolver: MEMORY\n\
         resolver_preload: {{\n  {}: \"{system_jwt}\"\n  {}: \"{account_jwt}\"\n}}",
        system.public_key(),
        system.public_key(),
        account.public_key()
    );
    let creds = format!(
        "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
         -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
        user.seed().expect("the user's seed")
    );
    (config, creds)
}

#[tokio::test]
async fn a_credentials_file_opens_the_log_and_another_users_is_refused() {
    let (config, creds) = operator_setup();
    let Some(nats) = Nats::start_with(&config) else {
        return;
    };
    let port = nats.port();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.creds");
    std::fs::write(&path, &creds).unwrap();
    works_through(
        &format!("nats://127.0.0.1:{port}?creds={}", path.display()),
        "c",
    )
    .await;

    // A user of another operator's account: well formed, not trusted here.
    let (_, stranger) = operator_setup();
    let seed = stranger
        .lines()
        .find(|line| line.starts_with("SU"))
        .unwrap()
        .to_owned();
    let other = dir.path().join("stranger.creds");
    std::fs::write(&other, &stranger).unwrap();
    let refused = refusal(&format!(
        "nats://127.0.0.1:{port}?creds={}",
        other.display()
    ))
    .await;
    assert_refused_credentials(&refused, port, &seed);
    // No credentials at all.
    let refused = refusal(&format!("nats://127.0.0.1:{port}")).await;
    assert_refused_credentials(&refused, port, &seed);

    let missing = dir.path().join("missing.creds");
    let refused = refusal(&format!(
        "nats://127.0.0.1:{port}?creds={}",
        missing.display()
    ))
    .await;
    assert!(
        matches!(&refused, HistoryError::Failed(why) if why.contains("missing.creds")),
        "{refused}"
    );
}
