//! The flush: wakes, together, the writers whose frames were left to wait.
//!
//! Dispatch leaves a frame to wait when its connection was written to less
//! than [`LINGER`] ago (see [`crate::outbox`]). The subscriber is handed
//! here once; one task, not a timer per connection, wakes every waiting
//! writer [`LINGER`] after the first frame waited, and each writer then
//! takes all its frames at once. A busy connection, which lingers longer,
//! may sit out a round. The task sleeps while nothing waits.

use crate::outbox::{Tick, LINGER};
use crate::subscriber::Subscriber;
use parking_lot::Mutex;
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

#[derive(Default)]
pub(crate) struct Flusher {
    waiting: Mutex<Vec<Arc<Subscriber>>>,
    /// Told when the first subscriber of a round starts waiting.
    started: Notify,
}

impl Flusher {
    /// Subscribers whose frames wait for the next flush.
    pub(crate) fn wait(&self, subscribers: Vec<Arc<Subscriber>>) {
        if subscribers.is_empty() {
            return;
        }
        let mut waiting = self.waiting.lock();
        let first = waiting.is_empty();
        waiting.extend(subscribers);
        drop(waiting);
        if first {
            self.started.notify_one();
        }
    }
}

/// Flushes a round [`LINGER`] after its first frame waited, until shutdown.
/// A busy connection whose longer linger is not over waits for the next
/// round, which then follows at once.
pub(crate) async fn flush_loop(flusher: Arc<Flusher>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = flusher.started.notified() => {}
            () = shutdown.cancelled() => return,
        }
        loop {
            tokio::select! {
                () = tokio::time::sleep(LINGER) => {}
                () = shutdown.cancelled() => return,
            }
            let mut round = std::mem::take(&mut *flusher.waiting.lock());
            let now = Tick::now();
            round.retain(|subscriber| !subscriber.outbox.flush(now));
            if round.is_empty() {
                break;
            }
            // Not `wait`: this loop is the next round, there is no one to tell.
            flusher.waiting.lock().extend(round);
        }
    }
}
