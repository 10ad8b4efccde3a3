//! Logging refusals without flooding the log: under a flood of refused
//! requests, one line per interval says how many there were.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How often a refusal is logged at most.
const INTERVAL: Duration = Duration::from_secs(10);

#[derive(Default)]
pub struct LogThrottle {
    /// When the next line may be written, in milliseconds since [`epoch`].
    next_ms: AtomicU64,
    /// Refusals not logged since the last line.
    unlogged: AtomicU64,
}

impl LogThrottle {
    /// Records one refusal; returns how many there were since the last
    /// line (this one included) when it is time for a line, else `None`.
    pub fn refused(&self) -> Option<u64> {
        self.unlogged.fetch_add(1, Ordering::Relaxed);
        let now = epoch().elapsed().as_millis() as u64;
        let next = self.next_ms.load(Ordering::Relaxed);
        if now < next {
            return None;
        }
        let after = now + INTERVAL.as_millis() as u64;
        self.next_ms
            .compare_exchange(next, after, Ordering::Relaxed, Ordering::Relaxed)
            .ok()?;
        Some(self.unlogged.swap(0, Ordering::Relaxed).max(1))
    }
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_counting_the_rest() {
        let throttle = LogThrottle::default();
        assert_eq!(throttle.refused(), Some(1));
        for _ in 0..999 {
            assert_eq!(throttle.refused(), None);
        }
        throttle.next_ms.store(0, Ordering::Relaxed);
        assert_eq!(throttle.refused(), Some(1000));
    }
}
