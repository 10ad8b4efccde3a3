//! Dispatch: hands each event of the log, in the log's order, to every
//! subscriber that listens to it and may read it.
//!
//! The committer calls it for a local store, the follower for a shared log;
//! either way an event reaches dispatch once, after its log has it.

use crate::event::SharedEvent;
use crate::hub::Core;
use crate::outbox::{Push, Tick};

/// Subscribers of one event that dispatch writes to directly; the rest are
/// left to their connections' tasks.
const WRITE_THROUGH_FANOUT: usize = 64;

/// Dispatches `events`, which follow the last dispatched one in the log.
pub(crate) fn dispatch(core: &Core, events: &[SharedEvent]) {
    if events.is_empty() {
        return;
    }
    let bounds = core.config.queue;
    let now = Tick::now();
    let mut slow = Vec::new();
    let mut waiting = Vec::new();
    let mut delivered = 0;
    {
        let mut index = core.index.lock();
        for event in events {
            let mut offered = 0;
            let delivery = index.dispatch(event, |subscriber| {
                // The first subscribers get the frame written right here; a
                // larger fan-out is queued for the connections' own tasks,
                // which run on every core and coalesce what piles up.
                offered += 1;
                let write_through = offered <= WRITE_THROUGH_FANOUT;
                let outcome = subscriber.outbox.push(
                    event.frame_for(subscriber.encoding),
                    bounds,
                    now,
                    write_through,
                );
                match outcome {
                    Push::Queued => subscriber.mark_active(),
                    Push::Deferred => {
                        subscriber.mark_active();
                        waiting.push(subscriber.clone());
                    }
                    Push::Overflowed | Push::Closed => {}
                }
                outcome
            });
            delivered += delivery.delivered;
            slow.extend(delivery.overflowed);
        }
        if let Some(presence) = &core.presence {
            presence.dispatched(events);
            // Announced now, not when the writer lets go of the stream: a
            // stuck client can hold a blocked write for a long time.
            for subscriber in &slow {
                presence.ended(subscriber);
            }
        }
    }
    core.flusher.wait(waiting);
    core.metrics.delivered.inc_by(delivered);
    for subscriber in slow {
        core.metrics.slow_disconnects.inc();
        // One line per interval: a stalled network can overflow thousands
        // of queues at once.
        if let Some(count) = core.slow_log.refused() {
            tracing::info!(latest = %subscriber.identifier, count, "disconnecting slow consumers: their queues overflowed");
        }
    }
}
