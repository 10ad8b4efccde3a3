//! `--publish-rate`: a token bucket for each token subject and each client
//! address, so one publisher, however many tokens or addresses it spreads
//! over one of the two, cannot take the hub's whole capacity.

use crate::forwarded::client_key;
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Whose bucket a publication is taken from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Publisher {
    /// The `sub` of the publisher's token.
    Subject(Box<str>),
    /// The client address (IPv6: its /64).
    Address(IpAddr),
}

impl Publisher {
    pub fn address(ip: IpAddr) -> Publisher {
        Publisher::Address(client_key(ip))
    }
}

impl std::fmt::Display for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Publisher::Subject(subject) => write!(f, "subject {subject}"),
            Publisher::Address(ip) => write!(f, "address {ip}"),
        }
    }
}

/// How often buckets back to full are forgotten.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

pub struct PublishRate {
    limiter: DefaultKeyedRateLimiter<Publisher>,
    started: Instant,
    /// When full buckets were last dropped, in seconds since `started`.
    swept_at: AtomicU64,
}

impl PublishRate {
    /// `per_second` publications a second, `burst` at once.
    pub fn new(per_second: NonZeroU32, burst: NonZeroU32) -> PublishRate {
        PublishRate {
            limiter: DefaultKeyedRateLimiter::keyed(
                Quota::per_second(per_second).allow_burst(burst),
            ),
            started: Instant::now(),
            swept_at: AtomicU64::new(0),
        }
    }

    /// Takes a token from `publisher`'s bucket, or tells how long until
    /// there is one.
    pub fn check(&self, publisher: &Publisher) -> Result<(), Duration> {
        self.sweep_now_and_then();
        self.limiter
            .check_key(publisher)
            .map_err(|refused| refused.wait_time_from(self.limiter.clock().now()))
    }

    /// A bucket that has refilled is as good as none: dropping those keeps
    /// memory to the publishers active in the last minute.
    fn sweep_now_and_then(&self) {
        let now = self.started.elapsed().as_secs();
        let last = self.swept_at.load(Ordering::Relaxed);
        if now < last + SWEEP_EVERY.as_secs() {
            return;
        }
        if self
            .swept_at
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
    }
}

/// Whole seconds for a `Retry-After` header: at least one.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0 || wait.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_publisher_has_its_own_bucket() {
        let rate = PublishRate::new(NonZeroU32::new(1).unwrap(), NonZeroU32::new(3).unwrap());
        let alice = Publisher::Subject("alice".into());
        for _ in 0..3 {
            assert!(rate.check(&alice).is_ok());
        }
        let wait = rate.check(&alice).unwrap_err();
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert!(rate.check(&Publisher::Subject("bob".into())).is_ok());
        assert!(rate
            .check(&Publisher::address("2001:db8::1".parse().unwrap()))
            .is_ok());
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(200)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_secs(Duration::from_millis(2001)), 3);
    }
}
