//! Live statistics: a sample of the hub's figures about once a second,
//! pushed to every watcher of the statistics stream (the web console,
//! `tidings top`).
//!
//! One task samples for every watcher. It reads the counters the metrics
//! already keep, so the hot paths pay nothing more (the slowest publish is
//! one `fetch_max`). While nobody watches it only remembers the counters;
//! a cluster node asks its engine for the head of the log, to tell how far
//! behind it is, only when somebody does.

use crate::history::Log;
use crate::hub::Core;
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

#[derive(Serialize)]
struct NodeRow {
    /// The node's identifier in the cluster (`this node` without one).
    id: String,
    this: bool,
    /// `ready`, `engine unreachable` or `shutting down` for this node;
    /// `alive` for another one heard from within its lease.
    state: &'static str,
    /// Events of the shared log this node has not dispatched yet.
    lag: Option<u64>,
    /// Seconds since another node's last lease note.
    seen_s_ago: Option<f64>,
}

/// The counters one sample is compared with.
struct Previous {
    at: Instant,
    published: u64,
    delivered: u64,
    publish_us: u64,
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
    let started = Instant::now();
    let mut ticker = tokio::time::interval(EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut previous: Option<Previous> = None;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.cancelled() => return,
        }
        let Some(core) = core.upgrade() else { return };
        let metrics = &core.metrics;
        let now = Previous {
            at: Instant::now(),
            published: metrics.published.get(),
            delivered: metrics.delivered.get(),
            publish_us: metrics.publish_latency.total_us(),
        };
        let slowest_us = metrics.publish_latency.take_slowest_us();
        // The one receiver is the hub's own: nobody watches, and the next
        // watcher must not be sent a stale sample.
        if sender.receiver_count() <= 1 {
            sender.send_if_modified(|sample| sample.take().is_some());
        } else if let Some(before) = &previous {
            let sample = take(&core, before, &now, slowest_us, started, &stop).await;
            let text = serde_json::to_string(&sample).expect("a sample serializes");
            sender.send_replace(Some(text.into()));
        }
        previous = Some(now);
    }
}

async fn take(
    core: &Core,
    before: &Previous,
    now: &Previous,
    slowest_us: u64,
    started: Instant,
    stop: &CancellationToken,
) -> Sample {
    let metrics = &core.metrics;
    let seconds = (now.at - before.at).as_secs_f64().max(0.001);
    let publishes = now.published.saturating_sub(before.published);
    let stats = core.log.stats();
    let retention = core.config.retention;
    Sample {
        version: env!("CARGO_PKG_VERSION"),
        time_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        uptime_s: started.elapsed().as_secs(),
        subscribers: metrics.subscribers.get(),
        subscriptions: metrics.subscriptions.get(),
        published_per_s: now.published.saturating_sub(before.published) as f64 / seconds,
        delivered_per_s: now.delivered.saturating_sub(before.delivered) as f64 / seconds,
        published_total: now.published,
        delivered_total: now.delivered,
        slow_disconnects_total: metrics.slow_disconnects.get(),
        refused_total: metrics.refused.get(),
        publish_ms_mean: (publishes > 0).then(|| {
            now.publish_us.saturating_sub(before.publish_us) as f64 / 1000.0 / publishes as f64
        }),
        publish_ms_max: (publishes > 0).then(|| slowest_us as f64 / 1000.0),
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
        nodes: nodes(core, stop).await,
    }
}

/// This node's row, then one per other node known alive.
async fn nodes(core: &Core, stop: &CancellationToken) -> Vec<NodeRow> {
    let presence = core.presence.as_ref();
    let reachable = core.engine_reachable.load(Ordering::Relaxed);
    let lag = match &core.log {
        Log::Local(_) => None,
        Log::Shared(log) if reachable => {
            match tokio::time::timeout(ENGINE_WAIT, log.last()).await {
                Ok(Ok(head)) => Some(head.saturating_sub(core.index.lock().last_dispatched())),
                _ => None,
            }
        }
        Log::Shared(_) => None,
    };
    let state = if stop.is_cancelled() {
        "shutting down"
    } else if !reachable {
        "engine unreachable"
    } else {
        "ready"
    };
    let mut rows = vec![NodeRow {
        id: presence.map_or_else(|| "this node".into(), |p| p.node().to_string()),
        this: true,
        state,
        lag,
        seen_s_ago: None,
    }];
    if let Some(presence) = presence {
        rows.extend(
            presence
                .other_nodes()
                .into_iter()
                .map(|(id, silent)| NodeRow {
                    id: id.to_string(),
                    this: false,
                    state: "alive",
                    lag: None,
                    seen_s_ago: Some((silent.as_secs_f64() * 10.0).round() / 10.0),
                }),
        );
    }
    rows
}
