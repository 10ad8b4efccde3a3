//! The follower: a cluster node's tail of the shared log.
//!
//! Every node dispatches what it reads back from the log, its own
//! publications included, so all nodes deliver the same events in the same
//! order. One task per node reads many events per round trip and hands them
//! to dispatch. When the engine cannot be reached the node reports itself
//! not ready, keeps its subscribers' streams open, and tries again with
//! backoff; once the engine answers, it carries on from the last event it
//! dispatched, so nothing appended in the meantime is skipped. It also
//! passes each batch to `Nodes::heard`, which keeps the other nodes' latest
//! figures from their alive notes.

use crate::dispatch::dispatch;
use crate::history::{HistoryError, SharedLog};
use crate::hub::Core;
use crate::outbox::CloseReason;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Most events one read takes from the log.
pub(crate) const BATCH: usize = 1024;
/// How long one read waits for the next event: also how soon a reset log
/// is noticed while nothing is published.
const WAIT: Duration = Duration::from_secs(1);
const FIRST_RETRY: Duration = Duration::from_millis(100);
const LAST_RETRY: Duration = Duration::from_secs(5);

/// Follows `log` from the last dispatched event until the hub stops.
pub(crate) async fn follow(core: Weak<Core>, log: Arc<dyn SharedLog>, stop: CancellationToken) {
    let mut retry = FIRST_RETRY;
    loop {
        let Some(after) = core
            .upgrade()
            .map(|core| core.index.lock().last_dispatched())
        else {
            return;
        };
        let read = tokio::select! {
            read = log.follow(after, BATCH, WAIT) => read,
            _ = stop.cancelled() => return,
        };
        let Some(core) = core.upgrade() else { return };
        let outcome = match read {
            Ok(events) if events.is_empty() => check_reset(&core, &*log, after).await,
            Ok(events) => {
                if events[0].seq > after + 1 {
                    fell_behind(&core, &*log, after, events[0].seq);
                }
                let fresh = events.partition_point(|event| event.seq <= after);
                dispatch(&core, &events[fresh..]);
                core.nodes.heard(&events[fresh..]);
                Ok(())
            }
            Err(error) => Err(error),
        };
        match outcome {
            Ok(()) => {
                if !core.engine_reachable.swap(true, Ordering::Relaxed) {
                    tracing::info!(engine = %log.describe(), "following the shared log again");
                }
                retry = FIRST_RETRY;
            }
            Err(error) => {
                if core.engine_reachable.swap(false, Ordering::Relaxed) {
                    tracing::warn!(engine = %log.describe(), %error, "lost the shared log; retrying");
                }
                drop(core);
                tokio::select! {
                    _ = tokio::time::sleep(retry) => {}
                    _ = stop.cancelled() => return,
                }
                retry = (retry * 2).min(LAST_RETRY);
            }
        }
    }
}

/// Events between `after` and `next` left the log before this node read
/// them. Its subscribers may have missed some: their streams are closed, and
/// each reconnects and resumes from the log, with the `earliest` answer if
/// its own cursor is gone too.
fn fell_behind(core: &Core, log: &dyn SharedLog, after: u64, next: u64) {
    tracing::warn!(
        engine = %log.describe(),
        missed = next - after - 1,
        "fell behind the shared log's retention; closing streams so clients resume"
    );
    core.close_streams(CloseReason::Behind);
}

/// A log whose newest position is below what this node dispatched was
/// emptied or recreated (an engine restarted without its data): the order
/// starts over, so the node does too, and its subscribers resume afresh.
async fn check_reset(core: &Core, log: &dyn SharedLog, after: u64) -> Result<(), HistoryError> {
    let last = log.last().await?;
    if last < after {
        tracing::warn!(
            engine = %log.describe(),
            was = after,
            now = last,
            "the shared log starts over; closing streams so clients resume"
        );
        core.index.lock().restart_at(0);
        core.close_streams(CloseReason::Behind);
    }
    Ok(())
}
