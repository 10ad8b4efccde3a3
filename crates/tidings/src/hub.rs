//! The hub: publishing, the lifecycle of subscriptions, and the sweeper.
//!
//! Publishing funnels every update through one committer ([`crate::commit`]),
//! which has the log take it: a local store in the order this hub gives, or
//! a shared log in the order its engine gives to every node of a cluster.
//! Dispatch ([`crate::dispatch`]) follows the log's order. A subscriber
//! registers under the same lock dispatch holds, so it learns exactly which
//! position its replay must stop at: live events after that point reach its
//! queue, earlier ones come from the log. Nothing is lost or sent twice
//! across the switch.

use crate::auth::{Authorizer, Grants};
use crate::commit::{Job, Published};
use crate::config::{HubConfig, StatsAccess};
use crate::event::{SharedEvent, Update};
use crate::flush::{flush_loop, Flusher};
use crate::frame::Encoding;
use crate::history::{HistoryError, Log};
use crate::index::Index;
use crate::log_throttle::LogThrottle;
use crate::matcher::{MatchKind, Matcher, MatcherError};
use crate::metrics::Metrics;
use crate::nodes::Nodes;
use crate::outbox::{CloseReason, Push, Tick};
use crate::presence::Presence;
use crate::publish::Rejection;
use crate::stream::{EventStream, Start};
use crate::subscriber::{Deadline, Subscriber};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How often history retention runs; a run still going is not doubled.
const TRIM_EVERY: Duration = Duration::from_secs(1);

/// A running hub. Cheap to clone; all clones share one hub.
#[derive(Clone)]
pub struct Hub {
    shared: Arc<Shared>,
}

/// What the committer, the follower, the sweeper and every stream share.
pub(crate) struct Core {
    pub config: HubConfig,
    pub log: Log,
    pub index: Mutex<Index>,
    /// Whether the shared log answered last time; always true for a local one.
    pub engine_reachable: AtomicBool,
    pub metrics: Metrics,
    /// Wakes the writers whose frames wait to be written together.
    pub flusher: Arc<Flusher>,
    /// Slow-consumer disconnects, logged at most once per interval.
    pub slow_log: LogThrottle,
    /// Active subscriptions; `None`, and free, when the feature is off.
    pub presence: Option<Presence>,
    /// This process among the nodes of a cluster: new at every start.
    pub node: Arc<str>,
    pub started: Instant,
    /// The other nodes of a cluster, as their alive notes describe them.
    pub nodes: Nodes,
}

struct Shared {
    core: Arc<Core>,
    auth: Authorizer,
    jobs: mpsc::Sender<Job>,
    next_key: AtomicU64,
    shutdown: CancellationToken,
    /// The live statistics; `None` when they are off.
    stats: Option<crate::stats::Samples>,
}

/// Why a publication failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// History cannot store the event; nothing was dispatched.
    #[error(transparent)]
    Unavailable(#[from] HistoryError),
    #[error("the hub is shutting down")]
    ShuttingDown,
}

/// Why a subscription was refused.
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    #[error("matcher `{source_text}` {reason}")]
    Matcher {
        source_text: String,
        reason: MatcherError,
    },
    #[error("no topic matcher given")]
    NoMatcher,
    #[error("more than {0} topic matchers")]
    TooManyMatchers(usize),
    #[error("the hub is at its limit of {0} subscriber connections")]
    TooManyConnections(usize),
    #[error("the hub is shutting down")]
    ShuttingDown,
    #[error(transparent)]
    History(#[from] HistoryError),
}

/// What a subscriber asks for.
#[derive(Default)]
pub struct SubscribeRequest {
    pub matchers: Vec<(MatchKind, String)>,
    /// `Last-Event-ID` or its query-parameter spellings.
    pub cursor: Option<String>,
    /// The validated token, if one was presented.
    pub grants: Option<Arc<Grants>>,
}

impl Hub {
    /// Starts a hub on `log`: its committer, its follower for a shared log,
    /// and its sweeper task. Needs a Tokio runtime.
    pub async fn start(config: HubConfig, log: impl Into<Log>) -> Result<Hub, crate::StartError> {
        let log = log.into();
        let auth = Authorizer::new(config.auth.clone(), &config.url).await?;
        let last = newest(&log).await?;
        let node: Arc<str> = format!("urn:uuid:{}", uuid::Uuid::new_v4()).into();
        let (presence, announcements) = match config.subscriptions {
            true => {
                let cursor = last
                    .as_ref()
                    .and_then(|(_, id)| id.as_deref())
                    .map(String::from);
                let (presence, announcements) = Presence::new(config.path(), cursor, node.clone());
                (Some(presence), Some(announcements))
            }
            false => (None, None),
        };
        let core = Arc::new(Core {
            index: Mutex::new(Index::new(config.url.clone(), last)),
            log,
            engine_reachable: AtomicBool::new(true),
            metrics: Metrics::new(),
            flusher: Arc::default(),
            slow_log: LogThrottle::default(),
            config,
            presence,
            node,
            started: Instant::now(),
            nodes: Nodes::default(),
        });
        let jobs = crate::commit::start(&core).map_err(|e| crate::StartError::Io(e.to_string()))?;
        if let Some(announcements) = announcements {
            tokio::spawn(crate::presence::announce(
                Arc::downgrade(&core),
                jobs.downgrade(),
                announcements,
            ));
        }
        let shutdown = CancellationToken::new();
        if let Log::Shared(log) = &core.log {
            if let Some(presence) = &core.presence {
                let through = core.index.lock().last_dispatched();
                presence.recall(&**log, through).await?;
            }
            if core.presence.is_some() || core.config.stats != StatsAccess::Off {
                let notes =
                    crate::lease::keep(Arc::downgrade(&core), jobs.downgrade(), shutdown.clone());
                tokio::spawn(notes);
            }
            let follower =
                crate::follow::follow(Arc::downgrade(&core), log.clone(), shutdown.clone());
            tokio::spawn(follower);
        }
        tokio::spawn(sweep_loop(Arc::downgrade(&core), shutdown.clone()));
        tokio::spawn(flush_loop(core.flusher.clone(), shutdown.clone()));
        let stats = (core.config.stats != StatsAccess::Off)
            .then(|| crate::stats::start(&core, shutdown.clone()));
        Ok(Hub {
            shared: Arc::new(Shared {
                core,
                auth,
                jobs,
                next_key: AtomicU64::new(1),
                shutdown,
                stats,
            }),
        })
    }

    pub fn config(&self) -> &HubConfig {
        &self.shared.core.config
    }

    pub fn authorizer(&self) -> &Authorizer {
        &self.shared.auth
    }

    pub fn metrics(&self) -> &Metrics {
        &self.shared.core.metrics
    }

    /// Cancelled when the hub starts shutting down.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shared.shutdown.clone()
    }

    /// Publishes an update from inside the process; returns its id once the
    /// log has it. The same
    /// rules apply as over HTTP, idempotency included: an id already in the
    /// log is answered as the first time and not published again.
    pub async fn publish(&self, update: Update) -> Result<String, PublishError> {
        crate::publish::check(&update, self.config())?;
        self.publish_checked(update)
            .await
            .map(|published| published.id.into())
    }

    pub(crate) async fn publish_checked(&self, update: Update) -> Result<Published, PublishError> {
        if self.shared.shutdown.is_cancelled() {
            return Err(PublishError::ShuttingDown);
        }
        let started = Instant::now();
        let (job, acknowledged) = Job::publication(update);
        if self.shared.jobs.send(job).await.is_err() {
            return Err(PublishError::ShuttingDown);
        }
        let published = acknowledged
            .await
            .map_err(|_| PublishError::ShuttingDown)??;
        let metrics = &self.shared.core.metrics;
        metrics.published.inc();
        let took = started.elapsed();
        metrics.publish_seconds.observe(took.as_secs_f64());
        metrics.publish_latency.observe(took);
        Ok(published)
    }

    /// Opens a subscription: registers it for live events and prepares the
    /// replay of what it missed. Waits only to find a cursor in a shared log.
    pub async fn subscribe(
        &self,
        request: SubscribeRequest,
    ) -> Result<EventStream, SubscribeError> {
        self.subscribe_encoded(request, Encoding::EventStream).await
    }

    /// [`Hub::subscribe`] for a connection whose frames take `encoding`.
    pub(crate) async fn subscribe_encoded(
        &self,
        request: SubscribeRequest,
        encoding: Encoding,
    ) -> Result<EventStream, SubscribeError> {
        let core = &self.shared.core;
        let limits = core.config.limits;
        if request.matchers.is_empty() {
            return Err(SubscribeError::NoMatcher);
        }
        if request.matchers.len() > limits.matchers {
            return Err(SubscribeError::TooManyMatchers(limits.matchers));
        }
        let matchers = request
            .matchers
            .iter()
            .map(|(kind, source)| self.matcher(*kind, source))
            .collect::<Result<Vec<_>, _>>()?;
        let resume = match request.cursor.as_deref() {
            None => None,
            Some("earliest") => Some((0, "earliest".into())),
            // An unknown or discarded id replays everything retained; the
            // `earliest` answer tells the client that events may be lost.
            Some(id) => Some(match core.log.locate(id).await? {
                Some(seq) => (seq, id.into()),
                None => (0, "earliest".into()),
            }),
        };
        let subscriber = Arc::new(Subscriber::new(
            self.shared.next_key.fetch_add(1, Ordering::Relaxed),
            uuid::Uuid::new_v4(),
            matchers.into(),
            request.grants.clone(),
            self.deadline(request.grants.as_deref()),
            // A cursor this node has not dispatched yet (taken on a node
            // ahead of it in the log) is where its live events begin.
            resume.as_ref().map_or(0, |(after, _)| *after),
            encoding,
        ));
        let (live_after, start) = {
            let mut index = core.index.lock();
            // Checked under the lock: shutdown's farewell sees every
            // subscriber registered before it, and no later one.
            if self.shared.shutdown.is_cancelled() {
                return Err(SubscribeError::ShuttingDown);
            }
            if index.len() >= limits.connections {
                drop(index);
                // One line per thousand refusals: a flood must not flood the logs.
                if core.metrics.refused.inc().is_multiple_of(1000) {
                    tracing::warn!(
                        limit = limits.connections,
                        "refusing subscribers: at the connection limit"
                    );
                }
                return Err(SubscribeError::TooManyConnections(limits.connections));
            }
            let live_after = index.insert(subscriber.clone());
            if let Some(presence) = &core.presence {
                presence.started(&subscriber);
            }
            // A live subscriber learns where it stands at once, so a stream
            // cut before its first event still resumes without a gap.
            let start = match resume {
                Some((after, answer)) => Start::Resume { after, answer },
                None => Start::Live {
                    cursor: index.last_event_id().unwrap_or("earliest").into(),
                },
            };
            (live_after, start)
        };
        core.metrics.subscribers.inc();
        core.metrics
            .subscriptions
            .inc_by(subscriber.matchers.len() as i64);
        Ok(EventStream::new(
            core.clone(),
            subscriber,
            start,
            live_after,
        ))
    }

    fn matcher(&self, kind: MatchKind, source: &str) -> Result<Arc<Matcher>, SubscribeError> {
        let core = &self.shared.core;
        if let Some(shared) = core.index.lock().shared_matcher(kind, source) {
            return Ok(shared);
        }
        Matcher::parse(
            kind,
            source,
            &core.config.url,
            core.config.limits.matcher_len,
        )
        .map(Arc::new)
        .map_err(|reason| SubscribeError::Matcher {
            source_text: source.to_string(),
            reason,
        })
    }

    /// The earlier of the token's expiry and the maximum lifetime.
    /// The sweeper closes a stream at its first pass after this instant;
    /// token expiry is moved one pass earlier, so the close comes no later
    /// than `exp`.
    fn deadline(&self, grants: Option<&Grants>) -> Option<Deadline> {
        let lifetime = self.config().max_lifetime.map(|d| Instant::now() + d);
        let expiry = grants.and_then(|g| g.expires_at).map(|at| {
            let left = at
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO);
            Instant::now() + left.saturating_sub(sweep_period(self.config()))
        });
        let earliest = match (lifetime, expiry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        earliest.map(Deadline::at)
    }

    /// The id of the last event dispatched, the hub's current
    /// reconciliation cursor.
    pub fn last_event_id(&self) -> Option<String> {
        self.shared
            .core
            .index
            .lock()
            .last_event_id()
            .map(Into::into)
    }

    /// The retained event with this id, if any.
    pub(crate) async fn find(&self, id: &str) -> Result<Option<SharedEvent>, HistoryError> {
        let log = &self.shared.core.log;
        let Some(seq) = log.locate(id).await? else {
            return Ok(None);
        };
        let events = match log {
            Log::Local(history) => history.read_after(seq.saturating_sub(1), 1)?,
            Log::Shared(log) => log.read_after(seq.saturating_sub(1), 1).await?,
        };
        Ok(events.into_iter().find(|event| event.seq == seq))
    }

    /// Whether a subscription opens without waiting: true unless a cursor
    /// may have to be looked up in a shared log.
    pub fn opens_at_once(&self) -> bool {
        matches!(self.shared.core.log, Log::Local(_))
    }

    /// Whether the hub's log answers: a shared log can be out of reach, a
    /// local one never is.
    pub fn log_reachable(&self) -> bool {
        self.shared.core.engine_reachable.load(Ordering::Relaxed)
    }

    /// Ends every stream cleanly so clients reconnect elsewhere, and stops
    /// accepting publications and subscriptions. With active subscriptions
    /// on, the end of every subscription is announced first, so that
    /// watchers still connected hear it; see [`Hub::closed`].
    pub fn shutdown(&self) {
        self.shared.shutdown.cancel();
        let core = &self.shared.core;
        if !core.presence.as_ref().is_some_and(Presence::farewell) {
            core.close_streams(CloseReason::Shutdown);
        }
    }

    /// After [`Hub::shutdown`]: resolves once every stream has ended (and,
    /// with active subscriptions on, once their ends are committed).
    pub async fn closed(&self) {
        let core = &self.shared.core;
        if let Some(presence) = &core.presence {
            presence.farewell_done().await;
        }
        while core.index.lock().len() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The live statistics, one JSON sample about every second; `None`
    /// when they are off.
    pub(crate) fn stats(&self) -> Option<crate::stats::Samples> {
        self.shared.stats.clone()
    }

    pub(crate) fn presence(&self) -> Option<&Presence> {
        self.shared.core.presence.as_ref()
    }
}

impl Core {
    pub(crate) fn close_streams(&self, reason: CloseReason) {
        for subscriber in self.index.lock().subscribers() {
            subscriber.outbox.close(reason);
        }
    }

    /// Resolves once the event at `seq` has been dispatched here. Polled,
    /// as [`Hub::closed`] is: only shutdown waits, and dispatch stays free
    /// of notifying anyone.
    pub(crate) async fn dispatched_through(&self, seq: u64) {
        while self.index.lock().last_dispatched() < seq {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The newest event of `log`: its position and, while the log still holds
/// it, its id.
async fn newest(log: &Log) -> Result<Option<(u64, Option<Box<str>>)>, HistoryError> {
    match log {
        Log::Local(history) => Ok(history.last()?.map(|(seq, id)| (seq, Some(id)))),
        Log::Shared(log) => {
            let seq = log.last().await?;
            if seq == 0 {
                return Ok(None);
            }
            let newest = log.read_after(seq - 1, 1).await?;
            let id = newest
                .first()
                .filter(|event| event.seq == seq)
                .map(|event| event.id.clone());
            Ok(Some((seq, id)))
        }
    }
}

/// How often the sweeper passes: often enough for keep-alives and deadlines.
fn sweep_period(config: &HubConfig) -> Duration {
    config.keep_alive.min(Duration::from_secs(1))
}

/// Sends keep-alives to idle streams and closes streams past their deadline;
/// one task for all subscribers, so no connection needs a timer of its own.
/// Also applies history retention, on a blocking thread so the sweep (and
/// the committer) never wait for it.
async fn sweep_loop(core: std::sync::Weak<Core>, shutdown: CancellationToken) {
    let period = match core.upgrade() {
        Some(core) => sweep_period(&core.config),
        None => return,
    };
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut trim: Option<tokio::task::JoinHandle<()>> = None;
    // Counted in ticks: comparing clocks would skip every other tick.
    let trim_ticks = (TRIM_EVERY.as_millis() / period.as_millis().max(1)).max(1) as u64;
    let mut ticks = 0u64;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let Some(core) = core.upgrade() else { return };
        // Ticks are counted in 16 bits: a keep-alive of more than 18 hours
        // is sent every 18 hours.
        let idle_limit = (core.config.keep_alive.as_millis() / period.as_millis().max(1))
            .clamp(1, u16::MAX.into()) as u16;
        // Once per pass, not once per subscriber.
        let now = Deadline::at(Instant::now());
        let bounds = core.config.queue;
        let tick = Tick::now();
        for subscriber in core.index.lock().subscribers() {
            if subscriber.deadline.is_some_and(|deadline| deadline <= now) {
                subscriber.outbox.close(CloseReason::Expired);
                if let Some(presence) = &core.presence {
                    presence.ended(subscriber);
                }
            } else if subscriber.tick_idle(idle_limit) {
                let push = subscriber.outbox.push(
                    crate::frame::keep_alive(subscriber.encoding),
                    bounds,
                    tick,
                    true,
                );
                if push == Push::Deferred {
                    core.flusher.wait(vec![subscriber.clone()]);
                }
                subscriber.mark_active();
            }
        }
        let stats = core.log.stats();
        core.metrics.history_events.set(stats.events as i64);
        core.metrics.history_bytes.set(stats.bytes as i64);
        core.metrics.history_damaged.set(stats.damaged as i64);
        ticks += 1;
        if ticks.is_multiple_of(trim_ticks) && trim.as_ref().is_none_or(|task| task.is_finished()) {
            trim = Some(match core.log.clone() {
                Log::Local(history) => tokio::task::spawn_blocking(move || {
                    if let Err(error) = history.trim() {
                        tracing::warn!(%error, "history retention failed");
                    }
                }),
                Log::Shared(log) => tokio::spawn(async move {
                    if let Err(error) = log.trim().await {
                        tracing::warn!(%error, "history retention failed");
                    }
                }),
            });
        }
    }
}
