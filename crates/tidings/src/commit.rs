//! The committer: gives each publication its id, has the log take it, then
//! acknowledges it.
//!
//! With a local store the hub orders, so the committer gives each event its
//! sequence, appends the batch, acknowledges it and dispatches it itself: a
//! store's appends are its whole log. A store that may
//! block (an fsync per append) gets a thread of its own that group-commits,
//! one durable write for many publishers; a store that never blocks is
//! committed by a task on the runtime, where handing a publication over and
//! acknowledging it wakes no other thread. (Letting publishers commit for
//! each other, with no handoff at all, measured the same.)
//!
//! With a shared log the engine orders: the committer appends a batch and
//! acknowledges it once the engine has it, and the node's follower
//! ([`crate::follow`]) dispatches what the log gives back, this node's
//! events among every other node's.
//!
//! Either way a publication whose id the log already retains is answered
//! as the original was and neither stored nor dispatched again, so a
//! publisher retrying after a timeout gets its update exactly once.

use crate::dispatch::dispatch;
use crate::event::{Event, PresenceNote, SharedEvent, Update};
use crate::history::{Appended, History, HistoryError, SharedLog};
use crate::hub::Core;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Publishes waiting for the committer beyond this apply backpressure.
const PUBLISH_QUEUE: usize = 65_536;
/// Most updates sequenced and written together.
const BATCH: usize = 1024;

/// One update on its way through the committer.
pub(crate) struct Job {
    update: Update,
    done: oneshot::Sender<Result<Published, HistoryError>>,
    /// What an event of active subscriptions tells the list.
    presence: Option<PresenceNote>,
}

/// A publication the log has taken (or already had).
#[derive(Debug, Clone)]
pub(crate) struct Published {
    pub id: Box<str>,
    /// Its position in the log.
    pub seq: u64,
}

/// What a publisher waits on.
pub(crate) type Acknowledgement = oneshot::Receiver<Result<Published, HistoryError>>;

impl Job {
    pub(crate) fn publication(update: Update) -> (Job, Acknowledgement) {
        let (done, acknowledged) = oneshot::channel();
        let job = Job {
            update,
            done,
            presence: None,
        };
        (job, acknowledged)
    }

    /// An event of active subscriptions: nobody waits for it unless
    /// [`Job::notify`] says so.
    pub(crate) fn announcement(update: Update, note: PresenceNote) -> Job {
        Job {
            update,
            done: oneshot::channel().0,
            presence: Some(note),
        }
    }

    pub(crate) fn notify(&mut self, done: oneshot::Sender<Result<Published, HistoryError>>) {
        self.done = done;
    }

    /// The event this job stores, with the id the publisher gave or a new one.
    fn event(&mut self, seq: u64) -> Event {
        let id = self.update.id.clone().unwrap_or_else(new_id);
        let mut event = Event::from_update(seq, id, &self.update);
        event.presence = self.presence.take();
        event
    }

    fn acknowledge(self, outcome: Result<Published, HistoryError>) {
        let _ = self.done.send(outcome);
    }
}

/// Starts the committer that suits `core`'s log; jobs go to the returned
/// queue.
pub(crate) fn start(core: &Arc<Core>) -> std::io::Result<mpsc::Sender<Job>> {
    let seq = core.index.lock().last_dispatched();
    let (jobs, queue) = mpsc::channel(PUBLISH_QUEUE);
    let core = core.clone();
    match core.log.clone() {
        crate::history::Log::Local(history) if history.blocks() => {
            std::thread::Builder::new()
                .name("tidings-committer".into())
                .spawn(move || commit_loop(&core, &*history, seq, queue))?;
        }
        crate::history::Log::Local(history) => {
            tokio::spawn(commit_task(core, history, seq, queue));
        }
        crate::history::Log::Shared(log) => {
            tokio::spawn(append_task(log, queue));
        }
    }
    Ok(jobs)
}

/// Commits on a thread of its own, for a history whose appends block.
fn commit_loop(core: &Core, history: &dyn History, mut seq: u64, mut queue: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(BATCH);
    let (mut peak, mut write) = (0, Duration::ZERO);
    while queue.blocking_recv_many(&mut jobs, BATCH) > 0 {
        gather(&mut queue, &mut jobs, peak, write);
        // A peak that decays slowly: one short batch must not shrink the next.
        peak = jobs.len().max(peak - peak / 8);
        write = commit(core, history, &mut seq, &mut jobs);
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
async fn commit_task(
    core: Arc<Core>,
    history: Arc<dyn History>,
    mut seq: u64,
    mut queue: mpsc::Receiver<Job>,
) {
    let mut jobs = Vec::with_capacity(BATCH);
    while queue.recv_many(&mut jobs, BATCH).await > 0 {
        commit(&core, &*history, &mut seq, &mut jobs);
    }
}

/// Commits one batch to a local store; returns how long the append took.
fn commit(core: &Core, history: &dyn History, seq: &mut u64, jobs: &mut Vec<Job>) -> Duration {
    let mut events = Vec::with_capacity(jobs.len());
    let mut outcomes = Vec::with_capacity(jobs.len());
    // Ids stored by this batch, for a retry that lands in the same batch.
    let mut fresh: HashMap<Box<str>, u64> = HashMap::new();
    for job in jobs.iter_mut() {
        let earlier = match job.update.id.as_deref() {
            None => None,
            Some(id) => match fresh.get(id) {
                Some(seq) => Some(*seq),
                None => match history.locate(id) {
                    Ok(found) => found,
                    Err(error) => {
                        refuse(jobs, error);
                        return Duration::ZERO;
                    }
                },
            },
        };
        outcomes.push(match earlier {
            Some(seq) => Appended::Duplicate(seq),
            None => {
                *seq += 1;
                let event = Arc::new(job.event(*seq));
                if job.update.id.is_some() {
                    fresh.insert(event.id.clone(), *seq);
                }
                events.push(event);
                Appended::New(*seq)
            }
        });
    }
    let started = Instant::now();
    let appended = match events.is_empty() {
        true => Ok(()),
        false => history.append(&events),
    };
    let write = started.elapsed();
    if let Err(error) = appended {
        *seq -= events.len() as u64;
        refuse(jobs, error);
        return write;
    }
    // The store has the events, which is all a publisher waits for: it
    // need not also wait for every subscriber's queue.
    acknowledge(jobs, &outcomes, &events);
    dispatch(core, &events);
    write
}

/// Appends batches to a shared log and acknowledges them once the engine
/// has them; the follower dispatches.
async fn append_task(log: Arc<dyn SharedLog>, mut queue: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(BATCH);
    while queue.recv_many(&mut jobs, BATCH).await > 0 {
        let events: Vec<Event> = jobs.iter_mut().map(|job| job.event(0)).collect();
        match log.append(&events).await {
            Ok(outcomes) if outcomes.len() == events.len() => {
                for ((job, event), outcome) in jobs.drain(..).zip(&events).zip(outcomes) {
                    job.acknowledge(Ok(Published {
                        id: event.id.clone(),
                        seq: outcome.position(),
                    }));
                }
            }
            Ok(outcomes) => {
                let error = HistoryError::Failed(format!(
                    "{} answered {} positions for {} events",
                    log.describe(),
                    outcomes.len(),
                    events.len()
                ));
                refuse(&mut jobs, error);
            }
            Err(error) => refuse(&mut jobs, error),
        }
    }
}

/// Answers a batch with the error that kept it out of the log.
fn refuse(jobs: &mut Vec<Job>, error: HistoryError) {
    tracing::warn!(%error, "refusing publications");
    for job in jobs.drain(..) {
        job.acknowledge(Err(error.clone()));
    }
}

/// Answers each job of a committed batch: a new event with itself, a
/// duplicate with the original's position.
fn acknowledge(jobs: &mut Vec<Job>, outcomes: &[Appended], events: &[SharedEvent]) {
    let mut stored = events.iter();
    for (job, outcome) in jobs.drain(..).zip(outcomes) {
        let published = match outcome {
            Appended::New(seq) => {
                let event = stored.next().expect("one event per new outcome");
                Published {
                    id: event.id.clone(),
                    seq: *seq,
                }
            }
            Appended::Duplicate(seq) => Published {
                id: job.update.id.as_deref().unwrap_or_default().into(),
                seq: *seq,
            },
        };
        job.acknowledge(Ok(published));
    }
}

/// Hub-generated ids are opaque, unguessable IRIs. Version 7 UUIDs rise
/// with time, so a durable id index grows at its end instead of rewriting
/// pages all over: group commits write a third as much.
fn new_id() -> String {
    let mut buffer = uuid::Uuid::encode_buffer();
    let uuid = uuid::Uuid::now_v7().hyphenated();
    ["urn:uuid:", uuid.encode_lower(&mut buffer)].concat()
}
