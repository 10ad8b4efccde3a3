//! The committer: gives each publication its place in the order, appends
//! it to history, dispatches it to subscribers, then acknowledges it.
//!
//! A store that may block (an fsync per append) gets a thread of its own
//! that group-commits: one durable write for many publishers. A store that
//! never blocks is committed by a task on the runtime, where handing a
//! publication over and acknowledging it wakes no other thread. (Letting
//! publishers commit for each other, with no handoff at all, measured the
//! same.) One committer, so sequence, history and dispatch order agree.

use crate::event::{Event, SharedEvent, Update};
use crate::history::HistoryError;
use crate::hub::Core;
use crate::outbox::Push;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Publishes waiting for the committer thread beyond this apply backpressure.
const PUBLISH_QUEUE: usize = 65_536;
/// Subscribers of one event that dispatch writes to directly; the rest are
/// left to their connections' tasks.
const WRITE_THROUGH_FANOUT: usize = 64;
/// Most updates sequenced and written together.
const BATCH: usize = 1024;

/// One update on its way through the committer.
pub(crate) struct Job {
    update: Update,
    done: oneshot::Sender<Result<SharedEvent, HistoryError>>,
    /// What a subscription event does to the list of active subscriptions.
    change: Option<crate::presence::Change>,
}

/// What a publisher waits on.
pub(crate) type Acknowledgement = oneshot::Receiver<Result<SharedEvent, HistoryError>>;

impl Job {
    pub(crate) fn publication(update: Update) -> (Job, Acknowledgement) {
        let (done, acknowledged) = oneshot::channel();
        let job = Job {
            update,
            done,
            change: None,
        };
        (job, acknowledged)
    }

    /// A subscription event: nobody waits for it unless [`Job::notify`] says so.
    pub(crate) fn announcement(update: Update, change: crate::presence::Change) -> Job {
        Job {
            update,
            done: oneshot::channel().0,
            change: Some(change),
        }
    }

    pub(crate) fn notify(&mut self, done: oneshot::Sender<Result<SharedEvent, HistoryError>>) {
        self.done = done;
    }
}

/// Starts the committer that suits `core`'s history; jobs go to the
/// returned queue.
pub(crate) fn start(core: &Arc<Core>) -> std::io::Result<mpsc::Sender<Job>> {
    let seq = core.index.lock().last_dispatched();
    let (jobs, queue) = mpsc::channel(PUBLISH_QUEUE);
    let core = core.clone();
    if core.history.blocks() {
        std::thread::Builder::new()
            .name("tidings-committer".into())
            .spawn(move || commit_loop(&core, seq, queue))?;
    } else {
        tokio::spawn(commit_task(core, seq, queue));
    }
    Ok(jobs)
}

/// Commits on a thread of its own, for a history whose appends block.
fn commit_loop(core: &Core, mut seq: u64, mut queue: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(BATCH);
    let (mut peak, mut write) = (0, Duration::ZERO);
    while queue.blocking_recv_many(&mut jobs, BATCH) > 0 {
        gather(&mut queue, &mut jobs, peak, write);
        // A peak that decays slowly: one short batch must not shrink the next.
        peak = jobs.len().max(peak - peak / 8);
        write = commit(core, &mut seq, &mut jobs);
    }
}

/// Group commit with a slow store (an fsync per append): publishers whose
/// last update was just acknowledged are sending their next one. When fewer
/// are queued than recent batches held, waiting a fraction of a write for
/// them saves the stragglers a whole write of their own. A fast store never
/// waits.
fn gather(queue: &mut mpsc::Receiver<Job>, jobs: &mut Vec<Job>, peak: usize, write: Duration) {
    let linger = write / 4;
    if linger < Duration::from_micros(100) {
        return;
    }
    let deadline = Instant::now() + linger;
    while jobs.len() < peak.min(BATCH) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_micros(50));
        while jobs.len() < BATCH {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
    }
}

/// Commits on the runtime, for a history that never blocks.
async fn commit_task(core: Arc<Core>, mut seq: u64, mut queue: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(BATCH);
    while queue.recv_many(&mut jobs, BATCH).await > 0 {
        commit(&core, &mut seq, &mut jobs);
    }
}

/// Commits one batch; returns how long the history append took.
fn commit(core: &Core, seq: &mut u64, jobs: &mut Vec<Job>) -> Duration {
    let events: Vec<SharedEvent> = jobs
        .iter()
        .map(|job| {
            *seq += 1;
            let id = job.update.id.clone().unwrap_or_else(new_id);
            Arc::new(Event::from_update(*seq, id, &job.update))
        })
        .collect();
    let started = Instant::now();
    let appended = core.history.append(&events);
    let write = started.elapsed();
    if let Err(error) = appended {
        tracing::warn!(%error, "refusing publications");
        for job in jobs.drain(..) {
            let _ = job.done.send(Err(error.clone()));
        }
        return write;
    }
    dispatch(core, &events, jobs);
    for (job, event) in jobs.drain(..).zip(events) {
        let _ = job.done.send(Ok(event));
    }
    write
}

fn dispatch(core: &Core, events: &[SharedEvent], jobs: &[Job]) {
    let bounds = core.config.queue;
    let mut slow = Vec::new();
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
                let outcome = subscriber
                    .outbox
                    .push(event.frame.clone(), bounds, write_through);
                if outcome == Push::Queued {
                    subscriber.mark_active();
                }
                outcome
            });
            delivered += delivery.delivered;
            slow.extend(delivery.overflowed);
        }
        if let Some(presence) = &core.presence {
            presence.dispatched(jobs.iter().filter_map(|job| job.change.as_ref()), events);
            // Announced now, not when the writer lets go of the stream: a
            // stuck client can hold a blocked write for a long time.
            for subscriber in &slow {
                presence.ended(subscriber);
            }
        }
    }
    core.metrics.delivered.inc_by(delivered);
    for subscriber in slow {
        core.metrics.slow_disconnects.inc();
        tracing::info!(subscriber = %subscriber.identifier, "disconnecting slow consumer: its queue overflowed");
    }
}

/// Hub-generated ids are opaque, unguessable IRIs. Version 7 UUIDs rise
/// with time, so a durable id index grows at its end instead of rewriting
/// pages all over: group commits write a third as much.
fn new_id() -> String {
    format!("urn:uuid:{}", uuid::Uuid::now_v7())
}
