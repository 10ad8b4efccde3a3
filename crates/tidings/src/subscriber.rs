//! One subscriber connection as the hub sees it: what it listens to, what it
//! may read, and the queue its writer drains.
//!
//! This struct is most of what a connected client costs, so it stays small:
//! no buffers while idle, no timer of its own (the hub's sweeper handles
//! keep-alives and deadlines for everyone).

use crate::auth::Grants;
use crate::event::Event;
use crate::frame::Encoding;
use crate::matcher::Matcher;
use crate::outbox::Outbox;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

pub struct Subscriber {
    /// The hub's handle for this connection; never reused.
    pub(crate) key: u64,
    /// Identifies the subscriber in subscription events and the API.
    pub(crate) identifier: uuid::Uuid,
    pub(crate) matchers: Box<[Arc<Matcher>]>,
    /// `None` for anonymous subscribers: they never read private updates.
    pub(crate) grants: Option<Arc<Grants>>,
    pub(crate) outbox: Outbox,
    /// When the hub must close the stream (token `exp`, maximum lifetime).
    pub(crate) deadline: Option<Deadline>,
    /// The last event sequence dispatched here (at first, where the
    /// subscriber resumes from): dedupes an update that reaches it through
    /// several topics or matchers, and keeps out the events before its
    /// cursor.
    last_seq: AtomicU64,
    /// Sweeper ticks since the last frame was queued, for keep-alives.
    idle_ticks: AtomicU16,
    /// Whether the end of this subscription was announced (active
    /// subscriptions only). It sits in what was padding: no extra memory.
    end_claimed: AtomicBool,
    /// What its connection speaks; also in what was padding.
    pub(crate) encoding: Encoding,
}

impl Subscriber {
    pub(crate) fn new(
        key: u64,
        identifier: uuid::Uuid,
        matchers: Box<[Arc<Matcher>]>,
        grants: Option<Arc<Grants>>,
        deadline: Option<Deadline>,
        resumed_after: u64,
        encoding: Encoding,
    ) -> Subscriber {
        Subscriber {
            key,
            identifier,
            matchers,
            grants,
            outbox: Outbox::new(),
            deadline,
            last_seq: AtomicU64::new(resumed_after),
            idle_ticks: AtomicU16::new(0),
            end_claimed: AtomicBool::new(false),
            encoding,
        }
    }

    /// True the first time an event later than the last one offered is
    /// offered: dispatch goes in the log's order.
    pub(crate) fn first_offer(&self, seq: u64) -> bool {
        self.last_seq.fetch_max(seq, Ordering::Relaxed) < seq
    }

    pub(crate) fn listens_to(&self, event: &Event) -> bool {
        event
            .topics()
            .any(|topic| self.matchers.iter().any(|m| m.matches(topic)))
    }

    /// Private updates need a grant matching at least one of their topics.
    pub(crate) fn may_receive(&self, event: &Event) -> bool {
        !event.private
            || self
                .grants
                .as_ref()
                .is_some_and(|grants| grants.may_read(event.topics()))
    }

    /// True for the first caller only: whoever ends the subscription first
    /// (stream drop, overflow, deadline, shutdown) announces the end.
    pub(crate) fn claim_end(&self) -> bool {
        !self.end_claimed.swap(true, Ordering::Relaxed)
    }

    pub(crate) fn mark_active(&self) {
        self.idle_ticks.store(0, Ordering::Relaxed);
    }

    /// Counts one sweeper tick; true when the connection has been idle for
    /// `limit` ticks and needs a keep-alive.
    pub(crate) fn tick_idle(&self, limit: u16) -> bool {
        self.idle_ticks
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1)
            >= limit
    }
}

/// An instant in whole seconds since the process started, rounded down so
/// that a stream closes at its deadline or up to a second before, never
/// after. Four bytes where an `Option<Instant>` takes sixteen; it shares a
/// word with the idle counter and the end flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Deadline(NonZeroU32);

impl Deadline {
    pub(crate) fn at(instant: Instant) -> Deadline {
        Deadline(NonZeroU32::new(seconds_since_start(instant)).unwrap_or(NonZeroU32::MIN))
    }
}

fn seconds_since_start(instant: Instant) -> u32 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    // Offset by one so that the first second is not zero.
    let seconds = instant.saturating_duration_since(start).as_secs() + 1;
    u32::try_from(seconds).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_deadline_passes_by_its_instant_and_not_seconds_before() {
        let now = Instant::now();
        let deadline = Deadline::at(now + Duration::from_secs(5));
        assert!(deadline > Deadline::at(now + Duration::from_secs(3)));
        assert!(deadline <= Deadline::at(now + Duration::from_millis(5_500)));
    }
}
