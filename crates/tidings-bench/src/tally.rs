//! Counting what each subscriber received.
//!
//! Each subscriber follows one stream and expects every sequence number
//! from a first one on, exactly once. Publications travel over several
//! connections at once, so events may arrive somewhat out of order: a
//! 64-bit window of what arrived beyond the lowest missing number tells a
//! late event from a duplicate without keeping a set per subscriber. An
//! event below the window is a duplicate (or so late it is a defect all
//! the same); a number never seen shows up as a loss when the count of
//! distinct events is compared with what was published. Counters are per
//! subscriber and written only by its task, so relaxed atomics suffice and
//! the whole record is 48 bytes. Latencies go into a few sharded
//! histograms to keep lock contention low.

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
    /// Whose latencies this subscriber's go with (in a cluster: its node).
    group: u32,
    /// Lowest sequence number not received yet.
    next: AtomicU64,
    /// Bit `k` set: `next + k` was received (bit 0 never is).
    window: AtomicU64,
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
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct Latency {
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

impl Tally {
    /// `streams[i]` is the stream subscriber `i` follows; it expects
    /// sequence numbers from `first_seq` on.
    pub fn new(streams: impl IntoIterator<Item = u32>, first_seq: u64) -> Tally {
        Tally::grouped(streams.into_iter().map(|stream| (stream, 0)), 1, first_seq)
    }

    /// Like [`Tally::new`], each subscriber given as `(stream, group)`;
    /// latencies are kept apart for each of `groups` groups.
    pub fn grouped(
        subs: impl IntoIterator<Item = (u32, u32)>,
        groups: u32,
        first_seq: u64,
    ) -> Tally {
        let subs = subs
            .into_iter()
            .map(|(stream, group)| Sub {
                stream,
                group: group.min(groups.max(1) - 1),
                next: AtomicU64::new(first_seq),
                window: AtomicU64::new(0),
                ok: AtomicU64::new(0),
                dup: AtomicU64::new(0),
                foreign: AtomicU64::new(0),
            })
            .collect();
        let latency = (0..SHARDS * groups.max(1) as usize)
            .map(|_| Mutex::new(empty_histogram()))
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
        if !s.accept(p.seq) {
            s.dup.fetch_add(1, Relaxed);
            return;
        }
        s.ok.fetch_add(1, Relaxed);
        let us = now.saturating_sub(p.sent_nanos) / 1_000;
        let shard = s.group as usize * SHARDS + sub % SHARDS;
        let mut hist = self.latency[shard]
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
        Latency::of(&self.histogram(0..self.latency.len()))
    }

    /// The latencies of one group's subscribers.
    pub fn group_histogram(&self, group: u32) -> Histogram<u64> {
        let first = group as usize * SHARDS;
        self.histogram(first..(first + SHARDS).min(self.latency.len()))
    }

    fn histogram(&self, shards: std::ops::Range<usize>) -> Histogram<u64> {
        let mut all = empty_histogram();
        for shard in &self.latency[shards] {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            // Same bounds on both sides, so adding cannot fail.
            let _ = all.add(&*shard);
        }
        all
    }
}

/// A latency histogram with the tally's bounds.
pub fn empty_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("static histogram bounds are valid")
}

impl Latency {
    pub fn of(hist: &Histogram<u64>) -> Latency {
        Latency {
            p50_us: hist.value_at_quantile(0.50),
            p99_us: hist.value_at_quantile(0.99),
            max_us: hist.max(),
        }
    }
}

impl Sub {
    /// Marks `seq` received; false if it already was, or is too late to tell.
    fn accept(&self, seq: u64) -> bool {
        let mut next = self.next.load(Relaxed);
        let mut window = self.window.load(Relaxed);
        if seq < next {
            return false;
        }
        let mut offset = seq - next;
        if offset >= u64::from(u64::BITS) {
            // Slide so that `seq` is the window's last bit; the numbers
            // passed over without arriving stay missing.
            let shift = offset - u64::from(u64::BITS - 1);
            window = window.checked_shr(shift as u32).unwrap_or(0);
            next += shift;
            offset = u64::from(u64::BITS - 1);
        }
        if window & (1 << offset) != 0 {
            return false;
        }
        window |= 1 << offset;
        let done = window.trailing_ones();
        window = window.checked_shr(done).unwrap_or(0);
        next += u64::from(done);
        self.next.store(next, Relaxed);
        self.window.store(window, Relaxed);
        true
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
    fn reordering_within_the_window_is_no_defect() {
        let tally = Tally::new([0], 0);
        for seq in [1, 0, 3, 2, 60, 5, 4, 5] {
            tally.observe(0, &data(0, seq));
        }
        let s = tally.summary(|_| 61);
        // 0..=5 and 60 arrived once each; the second 5 is a duplicate;
        // 6..=59 never came.
        assert_eq!((s.delivered, s.duplicated, s.lost), (7, 1, 54));
    }

    #[test]
    fn far_jump_then_late_event_is_a_defect() {
        let tally = Tally::new([0], 0);
        tally.observe(0, &data(0, 200));
        tally.observe(0, &data(0, 100));
        let s = tally.summary(|_| 201);
        assert_eq!((s.delivered, s.duplicated, s.lost), (1, 1, 200));
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
