//! History: the ordered log of events that lets a reconnecting client
//! catch up from its `Last-Event-ID`.
//!
//! Two kinds of log stand behind [`Log`]. A local store ([`History`]: an
//! in-memory ring, the embedded redb file) has this hub as its only writer,
//! so the hub gives each event its place and the store keeps it. A shared
//! log ([`SharedLog`]: Redis Streams, NATS JetStream) is written by every
//! node of a cluster, and the engine gives the order.

mod memory;
mod nats;
mod record;
mod redb;
mod redis;
mod shared;

pub use self::redb::{Durability, RedbHistory, FILE_NAME, FLUSH_EVERY};
pub use memory::MemoryHistory;
pub use shared::{Appended, Pending, SharedLog};

use crate::event::SharedEvent;
use std::sync::Arc;
use std::time::Duration;

/// Connects to the log engine an URL names, as a node of the cluster that
/// shares it: `redis://`, `rediss://` and `redis+sentinel://` for Redis
/// Streams, `nats://` and `tls://` (a comma-separated list of servers) for
/// NATS JetStream. The stream is named by the `stream` query parameter
/// (`tidings` by default); every node given the same URL and stream serves
/// one logical hub.
pub async fn connect(url: &str, retention: Retention) -> Result<Arc<dyn SharedLog>, HistoryError> {
    // Not parsed here: a NATS URL may list several servers, which no URL
    // parser takes.
    let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
    match scheme {
        "redis" | "rediss" | "redis+sentinel" | "rediss+sentinel" => {
            redis::connect(url, retention).await
        }
        "nats" | "tls" => nats::connect(url, retention).await,
        _ => Err(HistoryError::Failed(format!(
            "`{scheme}` is not a log engine: use redis://, rediss://, redis+sentinel:// or nats://"
        ))),
    }
}

/// Where events are kept, and so who orders them.
#[derive(Clone)]
pub enum Log {
    /// This hub orders; the store keeps.
    Local(Arc<dyn History>),
    /// The engine orders, for every node of the cluster.
    Shared(Arc<dyn SharedLog>),
}

impl<H: History> From<Arc<H>> for Log {
    fn from(history: Arc<H>) -> Log {
        Log::Local(history)
    }
}

impl From<Arc<dyn History>> for Log {
    fn from(history: Arc<dyn History>) -> Log {
        Log::Local(history)
    }
}

impl From<Arc<dyn SharedLog>> for Log {
    fn from(log: Arc<dyn SharedLog>) -> Log {
        Log::Shared(log)
    }
}

impl Log {
    /// The position of the retained event with this id.
    pub async fn locate(&self, id: &str) -> Result<Option<u64>, HistoryError> {
        match self {
            Log::Local(history) => history.locate(id),
            Log::Shared(log) => log.locate(id).await,
        }
    }

    pub fn stats(&self) -> HistoryStats {
        match self {
            Log::Local(history) => history.stats(),
            Log::Shared(log) => log.stats(),
        }
    }
}

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
    /// Damaged records met since start (the durable file only), skipped.
    pub damaged: u64,
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
