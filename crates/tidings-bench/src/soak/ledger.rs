//! What the subscribers and publishers report, shared by all of them: the
//! position of every subscriber in its stream, the events published to each
//! stream, and the counts the sampler and the verdict read.

use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How an event compared with what its subscriber expected next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    InOrder,
    /// Events were skipped: this many.
    Gap(u64),
    /// Already seen, or older than one seen.
    Duplicate,
}

#[derive(Debug, Default)]
pub struct Counts {
    pub delivered: AtomicU64,
    pub lost: AtomicU64,
    pub duplicated: AtomicU64,
    /// Events of another stream: a matcher delivered what it should not.
    pub foreign: AtomicU64,
    pub reconnects: AtomicU64,
    pub pauses: AtomicU64,
    /// Paused subscribers the hub disconnected, which then resumed.
    pub slow_resumes: AtomicU64,
    /// Streams the hub ended without being asked to.
    pub unexpected_ends: AtomicU64,
    /// Connection attempts or subscriptions that failed (and were retried).
    pub failed_connects: AtomicU64,
    pub failed_publishes: AtomicU64,
}

pub struct Ledger {
    /// When publishing started; churn is timed from it.
    pub epoch: OnceLock<Instant>,
    pub counts: Counts,
    next: Box<[AtomicU64]>,
    published: Box<[AtomicU64]>,
    connected: AtomicUsize,
    latency: Mutex<Histogram<u64>>,
}

impl Ledger {
    pub fn new(streams: u32, subs: usize) -> Ledger {
        Ledger {
            epoch: OnceLock::new(),
            counts: Counts::default(),
            next: (0..subs).map(|_| AtomicU64::new(0)).collect(),
            published: (0..streams).map(|_| AtomicU64::new(0)).collect(),
            connected: AtomicUsize::new(0),
            latency: Mutex::new(new_histogram()),
        }
    }

    /// Records event `seq` reaching `subscriber`, whose own task is the
    /// only one moving its position.
    pub fn arrive(&self, subscriber: usize, seq: u64) -> Arrival {
        let next = &self.next[subscriber];
        let expected = next.load(Relaxed);
        let arrival = match seq.cmp(&expected) {
            std::cmp::Ordering::Equal => Arrival::InOrder,
            std::cmp::Ordering::Greater => Arrival::Gap(seq - expected),
            std::cmp::Ordering::Less => Arrival::Duplicate,
        };
        match arrival {
            Arrival::InOrder => {
                self.counts.delivered.fetch_add(1, Relaxed);
                next.store(seq + 1, Relaxed);
            }
            Arrival::Gap(missing) => {
                self.counts.delivered.fetch_add(1, Relaxed);
                self.counts.lost.fetch_add(missing, Relaxed);
                next.store(seq + 1, Relaxed);
            }
            Arrival::Duplicate => {
                self.counts.duplicated.fetch_add(1, Relaxed);
            }
        }
        arrival
    }

    pub fn record_latency(&self, micros: u64) {
        self.lock_latency().saturating_record(micros.max(1));
    }

    /// The latency histogram since the last call, replaced by an empty one.
    pub fn take_latency(&self) -> Histogram<u64> {
        std::mem::replace(&mut *self.lock_latency(), new_histogram())
    }

    fn lock_latency(&self) -> std::sync::MutexGuard<'_, Histogram<u64>> {
        self.latency.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn published(&self, stream: u32) -> u64 {
        self.published[stream as usize].load(Relaxed)
    }

    pub fn total_published(&self) -> u64 {
        self.published.iter().map(|p| p.load(Relaxed)).sum()
    }

    /// Counts one more accepted event of `stream`; only that stream's
    /// publisher calls this.
    pub fn count_published(&self, stream: u32) {
        self.published[stream as usize].fetch_add(1, Relaxed);
    }

    pub fn opened(&self) {
        self.connected.fetch_add(1, Relaxed);
    }

    pub fn closed(&self) {
        self.connected.fetch_sub(1, Relaxed);
    }

    pub fn connected(&self) -> usize {
        self.connected.load(Relaxed)
    }

    /// Waits until `count` streams are open at once, or `timeout`.
    pub async fn wait_connected(&self, count: usize, timeout: Duration) -> bool {
        let start = Instant::now();
        while self.connected() < count {
            if start.elapsed() > timeout {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        true
    }

    /// Events each subscriber still lacks: published to its stream, not yet
    /// received. `streams[i]` is subscriber `i`'s stream.
    pub fn missing(&self, streams: &[u32]) -> u64 {
        streams
            .iter()
            .zip(self.next.iter())
            .map(|(&s, next)| self.published(s).saturating_sub(next.load(Relaxed)))
            .sum()
    }

    /// Waits until no subscriber lacks an event, or `timeout`.
    pub async fn wait_caught_up(&self, streams: Vec<u32>, timeout: Duration) -> bool {
        let start = Instant::now();
        while self.missing(&streams) > 0 {
            if start.elapsed() > timeout {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        true
    }
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("static histogram bounds are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_and_duplicates_are_counted() {
        let ledger = Ledger::new(1, 1);
        assert_eq!(ledger.arrive(0, 0), Arrival::InOrder);
        assert_eq!(ledger.arrive(0, 3), Arrival::Gap(2));
        assert_eq!(ledger.arrive(0, 3), Arrival::Duplicate);
        assert_eq!(ledger.arrive(0, 1), Arrival::Duplicate);
        assert_eq!(ledger.arrive(0, 4), Arrival::InOrder);
        assert_eq!(ledger.counts.lost.load(Relaxed), 2);
        assert_eq!(ledger.counts.duplicated.load(Relaxed), 2);
        assert_eq!(ledger.counts.delivered.load(Relaxed), 3);
    }

    #[test]
    fn missing_counts_what_is_published_but_not_received() {
        let ledger = Ledger::new(2, 2);
        for _ in 0..3 {
            ledger.count_published(1);
        }
        ledger.arrive(1, 0);
        assert_eq!(ledger.missing(&[0, 1]), 2);
    }
}
