//! Connections to the primary: opened when first needed, dropped when they
//! fail so that the next call opens another (through the Sentinels, when
//! the URL names them, so a failover is followed), and every call bounded
//! in time.

use super::super::HistoryError;
use redis::aio::MultiplexedConnection;
use redis::sentinel::SentinelClient;
use redis::{AsyncConnectionConfig, Client, ErrorKind, RedisError, RedisResult, ServerErrorKind};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// How long opening a connection may take, Sentinel queries included.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a command may take beyond what it waits for on purpose.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(3);

/// Opens connections to the primary: directly, or wherever the Sentinels
/// say it is now.
pub(super) enum Connector {
    Direct(Client),
    Sentinel(Mutex<SentinelClient>),
}

impl Connector {
    async fn open(&self) -> RedisResult<MultiplexedConnection> {
        // Calls bound their own time, waits included; the connection's
        // default half-second answer timeout would cut WAIT and XREAD short.
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(None);
        match self {
            Connector::Direct(client) => {
                client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
            }
            Connector::Sentinel(sentinel) => {
                sentinel
                    .lock()
                    .await
                    .get_async_connection_with_config(&config)
                    .await
            }
        }
    }
}

/// One connection, opened when first needed and dropped when it fails, so
/// that the next call opens another.
pub(super) struct Link {
    connector: Arc<Connector>,
    slot: Mutex<Slot>,
}

#[derive(Default)]
struct Slot {
    /// Counts connections opened, so that a call failing on an old one
    /// does not drop its replacement.
    generation: u64,
    connection: Option<MultiplexedConnection>,
}

impl Link {
    pub(super) fn new(connector: &Arc<Connector>) -> Link {
        Link {
            connector: Arc::clone(connector),
            slot: Mutex::new(Slot::default()),
        }
    }

    /// Runs `op` on this link's connection, within the time it takes to
    /// connect and answer plus `waits`, what the command waits on purpose.
    ///
    /// A connection that broke while it sat idle (the server restarted, or
    /// failed over) fails the next call made on it; that call runs once
    /// more on a new connection rather than being refused. An append may run
    /// twice: its events carry their ids, so the second run answers the
    /// first one's as duplicates at their positions.
    pub(super) async fn run<T, F, Fut>(
        &self,
        describe: &str,
        waits: Duration,
        op: F,
    ) -> Result<T, HistoryError>
    where
        F: Fn(MultiplexedConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let limit = CONNECT_TIMEOUT + ANSWER_TIMEOUT + waits;
        let mut retried = false;
        loop {
            let mut used = None;
            let outcome = tokio::time::timeout(limit, async {
                let (generation, reused, connection) = self.connection().await?;
                used = Some((generation, reused));
                op(connection).await
            })
            .await;
            let (error, retry) = match outcome {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(error)) if transient(&error) => (
                    HistoryError::Unavailable(format!("{describe}: {error}")),
                    true,
                ),
                Ok(Err(error)) => return Err(HistoryError::Failed(format!("{describe}: {error}"))),
                Err(_) => (
                    HistoryError::Unavailable(format!(
                        "{describe}: no answer within {} ms",
                        limit.as_millis()
                    )),
                    false,
                ),
            };
            let Some((generation, reused)) = used else {
                return Err(error);
            };
            self.drop_connection(generation).await;
            if !(retry && reused) || retried {
                return Err(error);
            }
            retried = true;
        }
    }

    /// The open connection and its generation, and whether it was opened
    /// before this call (and so may have broken since).
    async fn connection(&self) -> RedisResult<(u64, bool, MultiplexedConnection)> {
        let mut slot = self.slot.lock().await;
        if let Some(connection) = &slot.connection {
            return Ok((slot.generation, true, connection.clone()));
        }
        let connection = self.connector.open().await?;
        slot.generation += 1;
        slot.connection = Some(connection.clone());
        Ok((slot.generation, false, connection))
    }

    async fn drop_connection(&self, generation: u64) {
        let mut slot = self.slot.lock().await;
        if slot.generation == generation {
            slot.connection = None;
        }
    }
}

/// Whether an error should pass once the server is back, or the primary
/// found: the call is answered `Unavailable` and the connection reopened.
fn transient(error: &RedisError) -> bool {
    matches!(
        error.kind(),
        // Not Parse: that is also what an answer of the wrong type gives,
        // bad data that waiting will not mend.
        ErrorKind::Io
            | ErrorKind::MasterNameNotFoundBySentinel
            | ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::ReadOnly
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
            )
    ) || matches!(error.code(), Some("BUSY" | "NOREPLICAS"))
}
