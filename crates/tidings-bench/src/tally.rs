//! Counting what each subscriber received.
//!
//! Each subscriber follows one stream and expects its events in order from
//! a first sequence number. A sequence number below the next expected one
//! is a duplicate (or a reordering, equally a defect); one above it leaves
//! a gap that shows up as a loss when the received count is compared with
//! what was published. Counters are per subscriber and written only by its
//! task, so relaxed atomics suffice and the whole record is 40 bytes.
//! Latencies go into a few sharded histograms to keep lock contention low.

use crate::payload::{unix_nanos, Payload};
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

const SHARDS: usize = 16;
/// Latencies are recorded in microseconds, up to an hour.
const MAX_LATENCY_US: u64 = 3_600_000_000;

#[derive(Debug)]
struct Sub {
    stream: u32,
    next: AtomicU64,
    ok: AtomicU64,
    dup: AtomicU64,
    foreign: AtomicU64,
}

#[derive(Debug)]
pub struct Tally {
    subs: Box<[Sub]>,
    first_seq: u64,
    delivered: AtomicU64,
    latency: Box<[Mutex<Histogram<u64>>]>,
}

/// Totals over all subscribers, given how many events each stream got.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub expected: u64,
    pub delivered: u64,
    pub lost: u64,
    pub duplicated: u64,
    /// Events for a stream the subscriber did not ask for, or unparsable.
    pub foreign: u64,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Latency {
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

impl Tally {
    /// `streams[i]` is the stream subscriber `i` follows; it expects
    /// sequence numbers from `first_seq` on.
    pub fn new(streams: impl IntoIterator<Item = u32>, first_seq: u64) -> Tally {
        let subs = streams
            .into_iter()
            .map(|stream| Sub {
                stream,
                next: AtomicU64::new(first_seq),
                ok: AtomicU64::new(0),
                dup: AtomicU64::new(0),
                foreign: AtomicU64::new(0),
            })
            .collect();
        let latency = (0..SHARDS)
            .map(|_| {
                Mutex::new(
                    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                        .expect("static histogram bounds are valid"),
                )
            })
            .collect();
        Tally {
            subs,
            first_seq,
            delivered: AtomicU64::new(0),
            latency,
        }
    }

    /// Events received so far by all subscribers, duplicates included.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Relaxed)
    }

    /// Records one event's data as received by subscriber `sub`.
    pub fn observe(&self, sub: usize, data: &[u8]) {
        let now = unix_nanos();
        self.delivered.fetch_add(1, Relaxed);
        let s = &self.subs[sub];
        let Some(p) = Payload::decode(data).filter(|p| p.stream == s.stream) else {
            s.foreign.fetch_add(1, Relaxed);
            return;
        };
        let next = s.next.load(Relaxed);
        if p.seq < next {
            s.dup.fetch_add(1, Relaxed);
            return;
        }
        s.next.store(p.seq + 1, Relaxed);
        s.ok.fetch_add(1, Relaxed);
        let us = now.saturating_sub(p.sent_nanos) / 1_000;
        let mut hist = self.latency[sub % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        hist.saturating_record(us.clamp(1, MAX_LATENCY_US));
    }

    /// Compares what arrived with `published(stream)`, the number of events
    /// each stream received from the publisher.
    pub fn summary(&self, published: impl Fn(u32) -> u64) -> Summary {
        let mut total = Summary::default();
        for s in self.subs.iter() {
            let expected = published(s.stream).saturating_sub(self.first_seq);
            let ok = s.ok.load(Relaxed);
            total.expected += expected;
            total.delivered += ok;
            total.lost += expected.saturating_sub(ok);
            total.duplicated += s.dup.load(Relaxed) + ok.saturating_sub(expected);
            total.foreign += s.foreign.load(Relaxed);
        }
        total
    }

    pub fn latency(&self) -> Latency {
        let mut all = Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_US, 3)
            .expect("static histogram bounds are valid");
        for shard in self.latency.iter() {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            // Same bounds on both sides, so adding cannot fail.
            let _ = all.add(&*shard);
        }
        Latency {
            p50_us: all.value_at_quantile(0.50),
            p99_us: all.value_at_quantile(0.99),
            max_us: all.max(),
        }
    }
}

impl Summary {
    pub fn is_clean(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.foreign == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(stream: u32, seq: u64) -> Vec<u8> {
        Payload::now(stream, seq).encode().into_bytes()
    }

    #[test]
    fn counts_losses_duplicates_and_foreign_events() {
        let tally = Tally::new([0, 1], 0);
        for seq in [0, 1, 1, 3] {
            tally.observe(0, &data(0, seq));
        }
        tally.observe(1, &data(0, 0));
        tally.observe(1, b"junk");
        let s = tally.summary(|_| 4);
        assert_eq!(
            s,
            Summary {
                expected: 8,
                delivered: 3,
                lost: 5,
                duplicated: 1,
                foreign: 2
            }
        );
        assert!(!s.is_clean());
        assert_eq!(tally.delivered(), 6);
        assert!(tally.latency().max_us >= 1);
    }

    #[test]
    fn replay_counts_from_the_first_sequence() {
        let tally = Tally::new([0], 10);
        tally.observe(0, &data(0, 9));
        for seq in 10..15 {
            tally.observe(0, &data(0, seq));
        }
        let s = tally.summary(|_| 15);
        assert_eq!((s.expected, s.delivered, s.duplicated), (5, 5, 1));
        assert!(!s.is_clean());
    }
}
