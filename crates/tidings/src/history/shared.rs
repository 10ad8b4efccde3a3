//! The contract of a log engine shared by the nodes of a cluster.
//!
//! In a cluster the order of events is not the hub's to give: every node
//! appends to one log kept by an engine (Redis Streams, NATS JetStream), and
//! the engine's position is the event's place in the order. A node dispatches
//! what it reads back from the log, its own publications included, so every
//! node delivers the same events in the same order, and a cursor taken on one
//! node means the same thing on all of them.
//!
//! Positions start at 1 and are contiguous: the engine trims only from the
//! front, and a deduplicated publication takes no position. So a read that
//! skips positions tells its reader that it fell behind the retention.
//!
//! Readers never see what the engine may still lose, and never less than
//! it acknowledged: a node dispatches each position once, and a replay ends
//! at the first empty answer, so an event read and then lost in a failover
//! (its position given to another) or one a lagging copy did not have yet
//! would be missed for good by some subscriber. Engines read through their
//! leader or primary, and, when they acknowledge an append only once
//! replicas hold it, read no further than that.
//!
//! Retention bounds belong to the log, not to a node: the first node to
//! set up a log gives it its bounds, and the others apply those, warning
//! when their own differ (see each engine).

use super::{HistoryError, HistoryStats};
use crate::event::{Event, SharedEvent};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// What an engine call will answer; boxed, so that engines stand behind one
/// trait object.
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = Result<T, HistoryError>> + Send + 'a>>;

/// Where an appended event landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Stored at this position.
    New(u64),
    /// An event with the same id is retained at this position: nothing was
    /// stored, and the publisher's retry is answered as the original was.
    Duplicate(u64),
}

impl Appended {
    pub fn position(self) -> u64 {
        match self {
            Appended::New(position) | Appended::Duplicate(position) => position,
        }
    }
}

pub trait SharedLog: Send + Sync + 'static {
    /// The engine, its address and stream, for logs; never credentials.
    fn describe(&self) -> String;

    /// Appends events in order (their `seq` is ignored) and answers, for each,
    /// where it landed. Returns only once the engine has accepted every new
    /// event as durably as it is configured to: an `Ok` is what a publisher's
    /// 200 stands on. On an error some events may have been taken; the
    /// publisher's retry with the same id is then answered as a duplicate.
    fn append<'a>(&'a self, events: &'a [Event]) -> Pending<'a, Vec<Appended>>;

    /// Up to `limit` retained events after position `after`, in order, at
    /// once (replay). Never short of what the engine has acknowledged: an
    /// empty answer ends a subscriber's replay.
    fn read_after(&self, after: u64, limit: usize) -> Pending<'_, Vec<SharedEvent>>;

    /// Like `read_after`, but waits up to `wait` for the first event when
    /// there is none yet; empty when none came. A node follows the log with
    /// it, so engines batch: one round trip carries many events.
    fn follow(&self, after: u64, limit: usize, wait: Duration) -> Pending<'_, Vec<SharedEvent>>;

    /// The position of the retained event with this id.
    fn locate<'a>(&'a self, id: &'a str) -> Pending<'a, Option<u64>>;

    /// The newest position readers may see, 0 for a log never written;
    /// retention emptying the log does not take it back. A node starts
    /// following after it, and takes a `last` below what it dispatched for
    /// a log that starts over.
    fn last(&self) -> Pending<'_, u64>;

    /// Applies what retention the engine does not apply by itself (called
    /// about once a second).
    fn trim(&self) -> Pending<'_, ()>;

    /// Size of the retained log as last seen, for metrics; must not block.
    fn stats(&self) -> HistoryStats;
}
