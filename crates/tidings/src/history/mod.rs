//! History: the ordered log of events that lets a reconnecting client
//! catch up from its `Last-Event-ID`.
//!
//! The trait is deliberately narrow — append, read from a cursor, locate an
//! id, trim — so that an in-memory ring, an embedded store and a shared log
//! engine can all stand behind it.

mod memory;
mod redb;

pub use self::redb::{Durability, RedbHistory, FILE_NAME, FLUSH_EVERY};
pub use memory::MemoryHistory;

use crate::event::SharedEvent;
use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error)]
pub enum HistoryError {
    /// The store cannot take writes now (disk full, read-only directory);
    /// publishing answers 503 until it can.
    #[error("history store unavailable: {0}")]
    Unavailable(String),
    #[error("history store failed: {0}")]
    Failed(String),
}

/// How much history a store keeps; `None` leaves that dimension unbounded.
/// The oldest events go first once any bound is exceeded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    pub events: Option<u64>,
    pub age: Option<Duration>,
    /// Stored bytes of events: frames plus ids and topics.
    pub bytes: Option<u64>,
}

/// Size figures for metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct HistoryStats {
    pub events: u64,
    pub bytes: u64,
}

pub trait History: Send + Sync + 'static {
    /// Stores sequenced events in order; returns once they are as durable
    /// as this store promises. Called from one thread at a time, in
    /// sequence order.
    fn append(&self, events: &[SharedEvent]) -> Result<(), HistoryError>;

    /// Up to `limit` events whose sequence is greater than `after`, in order.
    fn read_after(&self, after: u64, limit: usize) -> Result<Vec<SharedEvent>, HistoryError>;

    /// The sequence of the earliest retained event carrying this id.
    fn locate(&self, id: &str) -> Result<Option<u64>, HistoryError>;

    /// The newest event's sequence and id: sequencing resumes after it on
    /// restart, and it is the hub's current reconciliation cursor.
    fn last(&self) -> Result<Option<(u64, Box<str>)>, HistoryError>;

    /// Applies the retention policy; called in the background.
    fn trim(&self) -> Result<(), HistoryError>;

    fn stats(&self) -> HistoryStats;

    /// Whether `append` may block (disk writes): the hub then sequences on
    /// a thread of its own rather than on the async runtime.
    fn blocks(&self) -> bool {
        true
    }
}
