//! Durable history benchmarks: publish throughput with group commit against
//! in-memory history, replay throughput, and the time to the first replayed
//! event from a cursor deep in a million events.
//!
//! Run with `cargo bench -p tidings --bench durable`; `--quick` shortens the
//! publish runs and the replay history. Prints Markdown for
//! docs/benchmarks.md. The data directory is a temporary one on the same
//! file system as the system temp dir (set TMPDIR to measure another disk).

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tidings::auth::AuthConfig;
use tidings::event::{Event, SharedEvent};
use tidings::history::{Durability, RedbHistory, Retention};
use tidings::matcher::MatchKind;
use tidings::{History, Hub, HubConfig, MemoryHistory, SubscribeRequest, Update};

/// A typical small JSON update.
const PAYLOAD: &str = r#"{"id":42,"status":"shipped","updated":"2026-01-01T00:00:00Z"}"#;

fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        publishing(quick).await;
        replay(if quick { 100_000 } else { 1_000_000 }).await;
    });
}

async fn hub(history: Arc<dyn History>) -> Hub {
    let url = "http://127.0.0.1:1/.well-known/mercure"
        .parse()
        .expect("url");
    Hub::start(HubConfig::new(url, AuthConfig::default()), history)
        .await
        .expect("hub")
}

async fn publishing(quick: bool) {
    let (run, rounds) = if quick {
        (Duration::from_secs(1), 1)
    } else {
        (Duration::from_secs(3), 3)
    };
    let fsync = fsync_latency();
    println!(
        "fdatasync of a 4 KiB write in the data directory: p50 {:.2} ms",
        fsync.as_secs_f64() * 1e3
    );
    println!("Best of {rounds} runs of {} s each:", run.as_secs());
    println!();
    println!("| history | publishers | publishes/s | p50 publish latency | events per write |");
    println!("|---|---:|---:|---:|---:|");
    for publishers in [1, 16, 256] {
        for kind in ["memory", "redb, immediate", "redb, eventual"] {
            let mut best = (0.0, Duration::ZERO, 0.0);
            for _ in 0..rounds {
                let dir = tempfile::tempdir().expect("temp dir");
                let (history, per_write): (Arc<dyn History>, Box<dyn Fn() -> f64>) = match kind {
                    "memory" => {
                        let counted = Counted::new(MemoryHistory::new(1_000_000, 1 << 30));
                        (counted.clone(), Box::new(move || counted.per_write()))
                    }
                    _ => {
                        let durability = if kind.ends_with("immediate") {
                            Durability::Immediate
                        } else {
                            Durability::Eventual
                        };
                        let counted = Counted::new(open(dir.path(), durability));
                        (counted.clone(), Box::new(move || counted.per_write()))
                    }
                };
                let (rate, p50) = publish_rate(hub(history).await, publishers, run).await;
                if rate > best.0 {
                    best = (rate, p50, per_write());
                }
            }
            let (rate, p50, per_write) = best;
            println!(
                "| {kind} | {publishers} | {rate:.0} | {:.2} ms | {per_write:.0} |",
                p50.as_secs_f64() * 1e3
            );
        }
    }
    println!();
}

/// Counts appends, to report how many events each write carried.
struct Counted<H> {
    inner: H,
    appends: AtomicU64,
    events: AtomicU64,
}

impl<H: History> Counted<H> {
    fn new(inner: H) -> Arc<Counted<H>> {
        Arc::new(Counted {
            inner,
            appends: AtomicU64::new(0),
            events: AtomicU64::new(0),
        })
    }

    fn per_write(&self) -> f64 {
        self.events.load(Ordering::Relaxed) as f64
            / self.appends.load(Ordering::Relaxed).max(1) as f64
    }
}

impl<H: History> History for Counted<H> {
    fn append(&self, events: &[SharedEvent]) -> Result<(), tidings::history::HistoryError> {
        self.appends.fetch_add(1, Ordering::Relaxed);
        self.events
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        self.inner.append(events)
    }
    fn read_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<SharedEvent>, tidings::history::HistoryError> {
        self.inner.read_after(after, limit)
    }
    fn locate(&self, id: &str) -> Result<Option<u64>, tidings::history::HistoryError> {
        self.inner.locate(id)
    }
    fn last(&self) -> Result<Option<(u64, Box<str>)>, tidings::history::HistoryError> {
        self.inner.last()
    }
    fn trim(&self) -> Result<(), tidings::history::HistoryError> {
        self.inner.trim()
    }
    fn stats(&self) -> tidings::history::HistoryStats {
        self.inner.stats()
    }
}

/// What one fsync costs on the disk under the temp dir: durable throughput
/// is bounded by batch size over this.
fn fsync_latency() -> Duration {
    use std::io::Write;
    let mut file = tempfile::tempfile().expect("temp file");
    let mut times: Vec<Duration> = (0..100)
        .map(|_| {
            let started = Instant::now();
            file.write_all(&[7; 4096]).expect("write");
            file.sync_data().expect("fdatasync");
            started.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn open(dir: &std::path::Path, durability: Durability) -> RedbHistory {
    RedbHistory::open(dir, durability, Retention::default()).expect("open history")
}

/// Publishes from `publishers` tasks for `run`; returns publishes per
/// second and the median time a publish waited for its acknowledgement.
async fn publish_rate(hub: Hub, publishers: usize, run: Duration) -> (f64, Duration) {
    let done = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..publishers)
        .map(|_| {
            let (hub, done, count) = (hub.clone(), done.clone(), count.clone());
            tokio::spawn(async move {
                let mut waits = Vec::new();
                while !done.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    hub.publish(Update::new("https://example.com/orders/42", PAYLOAD))
                        .await
                        .expect("publish");
                    waits.push(sent.elapsed());
                    count.fetch_add(1, Ordering::Relaxed);
                }
                waits
            })
        })
        .collect();
    tokio::time::sleep(run).await;
    done.store(true, Ordering::Relaxed);
    let mut waits = Vec::new();
    for task in tasks {
        waits.extend(task.await.expect("publisher"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    hub.shutdown();
    waits.sort();
    let p50 = waits.get(waits.len() / 2).copied().unwrap_or_default();
    (count.load(Ordering::Relaxed) as f64 / elapsed, p50)
}

/// Fills a store with `total` events, one in a hundred on the topic the
/// subscriber of the sparse run listens to.
fn fill(dir: &std::path::Path, total: u64) {
    let history = open(dir, Durability::Eventual);
    let mut batch = Vec::with_capacity(10_000);
    for seq in 1..=total {
        let topic = if seq % 100 == 0 { "rare" } else { "common" };
        let update = Update::new(format!("https://example.com/{topic}"), PAYLOAD);
        batch.push(Arc::new(Event::from_update(seq, format!("e{seq}"), &update)) as SharedEvent);
        if batch.len() == batch.capacity() {
            history.append(&batch).expect("append");
            batch.clear();
        }
    }
    history.append(&batch).expect("append");
}

async fn replay(total: u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let filled = Instant::now();
    fill(dir.path(), total);
    let fill_secs = filled.elapsed().as_secs_f64();
    let history = Arc::new(open(dir.path(), Durability::Immediate));
    let hub = hub(history).await;
    let deep = total * 9 / 10;
    println!("History of {total} events ({fill_secs:.1} s to write), resuming at event {deep}:");
    println!();
    println!("| replay | events | first event after | total | events/s |");
    println!("|---|---:|---:|---:|---:|");
    let runs = [
        (
            "everything, from the start",
            "https://example.com/{kind}",
            "earliest".to_string(),
            total,
        ),
        (
            "everything, deep cursor",
            "https://example.com/{kind}",
            format!("e{deep}"),
            total - deep,
        ),
        (
            "1 % of topics, from the start",
            "https://example.com/rare",
            "earliest".to_string(),
            total / 100,
        ),
    ];
    for (name, matcher, cursor, expected) in runs {
        let request = SubscribeRequest {
            matchers: vec![(MatchKind::Selector, matcher.to_string())],
            cursor: Some(cursor),
            grants: None,
        };
        let started = Instant::now();
        let mut stream = hub.subscribe(request).await.expect("subscribe");
        let (mut events, mut first) = (0, None);
        // Nothing is published meanwhile: the replay ends at `expected`.
        while events < expected {
            let frames = poll_fn(|cx| stream.poll_batch(cx))
                .await
                .expect("stream open");
            let replayed = frames.iter().filter(|f| f.starts_with(b"id: ")).count() as u64;
            if replayed > 0 && first.is_none() {
                first = Some(started.elapsed());
            }
            events += replayed;
        }
        let elapsed = started.elapsed();
        println!(
            "| {name} | {events} | {:.2} ms | {:.0} ms | {:.0} |",
            first.unwrap_or_default().as_secs_f64() * 1e3,
            elapsed.as_secs_f64() * 1e3,
            events as f64 / elapsed.as_secs_f64()
        );
    }
    hub.shutdown();
}
