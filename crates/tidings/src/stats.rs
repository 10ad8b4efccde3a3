//! Live statistics: a sample of the hub's figures about once a second,
//! pushed to every watcher of the statistics stream (the web console,
//! `tidings top`).
//!
//! One task samples for every watcher. It reads the counters the metrics
//! already keep, so the hot paths pay nothing more (the slowest publish is
//! one `fetch_max`). While nobody watches it only remembers the counters;
//! a cluster node asks its engine for the head of the log, to tell how far
//! behind it is, only when somebody does. The other nodes of a cluster are
//! shown with the figures their alive notes last carried (`nodes.rs`).

use crate::follow::BATCH;
use crate::history::Log;
use crate::hub::Core;
use crate::lease::LEASE;
use crate::metrics::Metrics;
use crate::nodes::{Figures, Heard};
use serde::Serialize;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How often a sample is taken.
const EVERY: Duration = Duration::from_secs(1);
/// How long a sample waits for the engine to tell the head of the log.
const ENGINE_WAIT: Duration = Duration::from_millis(500);

/// The latest sample, as the JSON text each watcher is sent; `None` until
/// the first is taken.
pub(crate) type Samples = watch::Receiver<Option<Arc<str>>>;

/// One sample: what the statistics stream sends, as JSON.
#[derive(Serialize)]
struct Sample {
    version: &'static str,
    /// Unix time of the sample, in milliseconds.
    time_ms: u64,
    uptime_s: u64,
    subscribers: i64,
    subscriptions: i64,
    published_per_s: f64,
    delivered_per_s: f64,
    published_total: u64,
    delivered_total: u64,
    slow_disconnects_total: u64,
    refused_total: u64,
    /// Over the last interval; `null` when nothing was published.
    publish_ms_mean: Option<f64>,
    publish_ms_max: Option<f64>,
    history: HistoryFigures,
    /// This node first, then the other nodes of the cluster it knows of.
    nodes: Vec<NodeRow>,
}

#[derive(Serialize)]
struct HistoryFigures {
    /// `local`, or the shared log's engine, address and stream.
    log: String,
    events: u64,
    bytes: u64,
    retain_events: Option<u64>,
    retain_bytes: Option<u64>,
    retain_age_s: Option<u64>,
}

/// One node: this one as of this sample, another as of its last alive note.
#[derive(Serialize)]
struct NodeRow {
    /// The node's identifier in the cluster.
    id: String,
    this: bool,
    /// The node's own state (see [`state`]); for another node `silent` once
    /// unheard for a lease, or `alive` when it tells no state (its version
    /// or its `--stats off` sends no figures).
    state: String,
    /// Events of the shared log the node has not dispatched yet.
    lag: Option<u64>,
    subscribers: Option<i64>,
    subscriptions: Option<i64>,
    published_per_s: Option<f64>,
    delivered_per_s: Option<f64>,
    publish_ms_mean: Option<f64>,
    uptime_s: Option<u64>,
    version: Option<String>,
    /// Seconds since another node's last note.
    seen_s_ago: Option<f64>,
}

impl NodeRow {
    fn this(id: &str, figures: &Figures) -> NodeRow {
        NodeRow::new(id, true, figures.state.clone(), Some(figures), None)
    }

    /// A silent node's last figures are not shown: they no longer hold.
    fn other(heard: Heard) -> NodeRow {
        let seen = Some((heard.ago.as_secs_f64() * 10.0).round() / 10.0);
        let (state, figures) = match &heard.figures {
            _ if heard.ago >= LEASE => ("silent".to_string(), None),
            Some(figures) if !figures.state.is_empty() => (figures.state.clone(), Some(figures)),
            _ => ("alive".to_string(), heard.figures.as_ref()),
        };
        NodeRow::new(&heard.node, false, state, figures, seen)
    }

    fn new(
        id: &str,
        this: bool,
        state: String,
        figures: Option<&Figures>,
        seen_s_ago: Option<f64>,
    ) -> NodeRow {
        NodeRow {
            id: id.to_string(),
            this,
            state,
            lag: figures.and_then(|f| f.lag),
            subscribers: figures.map(|f| f.subscribers),
            subscriptions: figures.map(|f| f.subscriptions),
            published_per_s: figures.map(|f| f.published_per_s),
            delivered_per_s: figures.map(|f| f.delivered_per_s),
            publish_ms_mean: figures.and_then(|f| f.publish_ms_mean),
            uptime_s: figures.map(|f| f.uptime_s),
            version: figures.map(|f| f.version.clone()),
            seen_s_ago,
        }
    }
}

/// The counters the figures of an interval are computed from.
pub(crate) struct Counters {
    at: Instant,
    published: u64,
    delivered: u64,
    publish_us: u64,
}

impl Counters {
    pub(crate) fn read(metrics: &Metrics) -> Counters {
        Counters {
            at: Instant::now(),
            published: metrics.published.get(),
            delivered: metrics.delivered.get(),
            publish_us: metrics.publish_latency.total_us(),
        }
    }
}

/// Starts sampling `core` until `stop`; returns where samples are read.
pub(crate) fn start(core: &Arc<Core>, stop: CancellationToken) -> Samples {
    let (sender, samples) = watch::channel(None);
    tokio::spawn(sample_loop(Arc::downgrade(core), sender, stop));
    samples
}

async fn sample_loop(
    core: Weak<Core>,
    sender: watch::Sender<Option<Arc<str>>>,
    stop: CancellationToken,
) {
    let mut ticker = tokio::time::interval(EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut previous: Option<Counters> = None;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.cancelled() => return,
        }
        let Some(core) = core.upgrade() else { return };
        let now = Counters::read(&core.metrics);
        let slowest_us = core.metrics.publish_latency.take_slowest_us();
        // The one receiver is the hub's own: nobody watches, and the next
        // watcher must not be sent a stale sample.
        if sender.receiver_count() <= 1 {
            sender.send_if_modified(|sample| sample.take().is_some());
        } else if let Some(before) = &previous {
            let sample = take(&core, before, &now, slowest_us, &stop).await;
            let text = serde_json::to_string(&sample).expect("a sample serializes");
            sender.send_replace(Some(text.into()));
        }
        previous = Some(now);
    }
}

async fn take(
    core: &Core,
    before: &Counters,
    now: &Counters,
    slowest_us: u64,
    stop: &CancellationToken,
) -> Sample {
    let this = figures(core, before, now, stop).await;
    let stats = core.log.stats();
    let retention = core.config.retention;
    let mut nodes = vec![NodeRow::this(&core.node, &this)];
    nodes.extend(
        core.nodes
            .others(&core.node)
            .into_iter()
            .map(NodeRow::other),
    );
    Sample {
        version: env!("CARGO_PKG_VERSION"),
        time_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        uptime_s: this.uptime_s,
        subscribers: this.subscribers,
        subscriptions: this.subscriptions,
        published_per_s: this.published_per_s,
        delivered_per_s: this.delivered_per_s,
        published_total: now.published,
        delivered_total: now.delivered,
        slow_disconnects_total: this.slow_disconnects_total,
        refused_total: core.metrics.refused.get(),
        publish_ms_mean: this.publish_ms_mean,
        publish_ms_max: this.publish_ms_mean.map(|_| slowest_us as f64 / 1000.0),
        history: HistoryFigures {
            log: match &core.log {
                Log::Local(_) => "local".into(),
                Log::Shared(log) => log.describe(),
            },
            events: stats.events,
            bytes: stats.bytes,
            retain_events: retention.events,
            retain_bytes: retention.bytes,
            retain_age_s: retention.age.map(|age| age.as_secs()),
        },
        nodes,
    }
}

/// This node's figures over the interval from `before` to `now`: what its
/// statistics show and what its alive notes tell the other nodes.
pub(crate) async fn figures(
    core: &Core,
    before: &Counters,
    now: &Counters,
    stop: &CancellationToken,
) -> Figures {
    let metrics = &core.metrics;
    let seconds = (now.at - before.at).as_secs_f64().max(0.001);
    let publishes = now.published.saturating_sub(before.published);
    let lag = lag(core).await;
    Figures {
        state: state(core, lag, stop).into(),
        lag,
        subscribers: metrics.subscribers.get(),
        subscriptions: metrics.subscriptions.get(),
        published_per_s: publishes as f64 / seconds,
        delivered_per_s: now.delivered.saturating_sub(before.delivered) as f64 / seconds,
        publish_ms_mean: (publishes > 0).then(|| {
            now.publish_us.saturating_sub(before.publish_us) as f64 / 1000.0 / publishes as f64
        }),
        slow_disconnects_total: metrics.slow_disconnects.get(),
        uptime_s: core.started.elapsed().as_secs(),
        version: env!("CARGO_PKG_VERSION").into(),
    }
}

/// Events of the shared log this node has not dispatched yet; `None` on a
/// local log, or when the engine does not tell.
async fn lag(core: &Core) -> Option<u64> {
    let Log::Shared(log) = &core.log else {
        return None;
    };
    if !core.engine_reachable.load(Ordering::Relaxed) {
        return None;
    }
    match tokio::time::timeout(ENGINE_WAIT, log.last()).await {
        Ok(Ok(head)) => Some(head.saturating_sub(core.index.lock().last_dispatched())),
        _ => None,
    }
}

/// `shutting down`, `engine unreachable`, `behind` (more of the log to
/// dispatch than the follower reads at once), or `ready`.
fn state(core: &Core, lag: Option<u64>, stop: &CancellationToken) -> &'static str {
    if stop.is_cancelled() {
        "shutting down"
    } else if !core.engine_reachable.load(Ordering::Relaxed) {
        "engine unreachable"
    } else if lag.is_some_and(|lag| lag >= BATCH as u64) {
        "behind"
    } else {
        "ready"
    }
}
