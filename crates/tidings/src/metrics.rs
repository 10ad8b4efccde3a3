//! Prometheus metrics. Handles are plain atomics, cheap on the hot path;
//! dispatch adds its delivery count once per event, not once per subscriber.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub struct Metrics {
    registry: Registry,
    pub subscribers: Gauge,
    pub subscriptions: Gauge,
    pub published: Counter,
    pub delivered: Counter,
    pub slow_disconnects: Counter,
    pub refused: Counter,
    pub refused_per_ip: Counter,
    pub publish_rate_limited: Counter,
    pub publish_seconds: Histogram,
    pub history_events: Gauge,
    pub history_bytes: Gauge,
    pub history_damaged: Gauge,
    /// Publish latency as the live statistics read it.
    pub publish_latency: PublishLatency,
}

/// Publish latency for the live statistics: the histogram's figures are
/// for Prometheus to read, these give a mean and the worst case per sample.
#[derive(Default)]
pub struct PublishLatency {
    total_us: AtomicU64,
    slowest_us: AtomicU64,
}

impl PublishLatency {
    pub fn observe(&self, took: Duration) {
        let us = took.as_micros() as u64;
        self.total_us.fetch_add(us, Ordering::Relaxed);
        self.slowest_us.fetch_max(us, Ordering::Relaxed);
    }

    /// Microseconds spent by every publish so far.
    pub fn total_us(&self) -> u64 {
        self.total_us.load(Ordering::Relaxed)
    }

    /// The slowest publish since the last call, in microseconds.
    pub fn take_slowest_us(&self) -> u64 {
        self.slowest_us.swap(0, Ordering::Relaxed)
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("tidings");
        let metrics = Metrics {
            subscribers: Gauge::default(),
            subscriptions: Gauge::default(),
            published: Counter::default(),
            delivered: Counter::default(),
            slow_disconnects: Counter::default(),
            refused: Counter::default(),
            refused_per_ip: Counter::default(),
            publish_rate_limited: Counter::default(),
            publish_seconds: Histogram::new(exponential_buckets(0.000_05, 2.0, 16)),
            history_events: Gauge::default(),
            history_bytes: Gauge::default(),
            history_damaged: Gauge::default(),
            publish_latency: PublishLatency::default(),
            registry: Registry::default(),
        };
        registry.register(
            "subscribers",
            "Subscriber connections open",
            metrics.subscribers.clone(),
        );
        registry.register(
            "subscriptions",
            "Topic matchers of open connections",
            metrics.subscriptions.clone(),
        );
        registry.register(
            "updates_published",
            "Updates accepted from publishers",
            metrics.published.clone(),
        );
        registry.register(
            "updates_delivered",
            "Update deliveries queued to subscribers",
            metrics.delivered.clone(),
        );
        registry.register(
            "slow_disconnects",
            "Subscribers disconnected because their queue overflowed",
            metrics.slow_disconnects.clone(),
        );
        registry.register(
            "connections_refused",
            "Subscriber connections refused by limits",
            metrics.refused.clone(),
        );
        registry.register(
            "connections_refused_per_ip",
            "Connections, and requests forwarded by trusted proxies, refused by --max-connections-per-ip",
            metrics.refused_per_ip.clone(),
        );
        registry.register(
            "publications_rate_limited",
            "Publications refused by --publish-rate",
            metrics.publish_rate_limited.clone(),
        );
        registry.register(
            "publish_duration_seconds",
            "Time from a publish request to its acknowledgement",
            metrics.publish_seconds.clone(),
        );
        registry.register(
            "history_events",
            "Events held in history",
            metrics.history_events.clone(),
        );
        registry.register(
            "history_bytes",
            "Bytes of events held in history",
            metrics.history_bytes.clone(),
        );
        registry.register(
            "history_damaged_records",
            "Damaged history records met since start (checksum mismatch), skipped",
            metrics.history_damaged.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}
