//! Who subscribes to what, where events go, and when each subscriber
//! reconnects or stops reading.
//!
//! Stream `s` is an exact topic when `s % 3 == 0`, a URL pattern when
//! `s % 3 == 1` and a draft-07 URI template when `s % 3 == 2`; subscriber
//! `i` follows stream `i % streams`. The last `slow_percent` of every
//! hundred subscribers are slow readers: they connect with little buffer
//! room and stop reading once a period. Churn runs in periods: in period
//! `k`, another subscriber `i` has slot `(i + 37 k) % 100`, and those in the
//! first `reconnect_percent` slots reconnect. Each acts at its own moment of
//! the period, so churn is spread evenly.

use super::SoakArgs;
use crate::source::Sources;
use crate::target::{encode, Template};
use std::time::Duration;
use tokio::sync::Semaphore;

const KINDS: [&str; 3] = ["item", "user", "order"];

/// Distinct topics of one pattern or template stream. Bounded like real
/// resources, so that the hub's per-topic match cache (65,536 topics) fills
/// during warm-up instead of growing for half an hour.
const RESOURCES: u64 = 300;

/// Coprime with 100: a subscriber's slot visits all 100 in 100 periods, so
/// its turns to reconnect come about every 20 periods, not five in a row.
const STRIDE: u64 = 37;

/// What a subscriber does at its moment of a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Churn {
    /// Closes its connection and resumes with Last-Event-ID.
    Reconnect,
    /// Stops reading for the slow pause.
    Pause,
}

pub struct Plan {
    pub hub: Template,
    pub streams: u32,
    pub subs: usize,
    pub sources: Sources,
    pub connecting: Semaphore,
    pub setup_timeout: Duration,
    pub period: f64,
    pub slow_pause: Duration,
    pub recv_buffer: u32,
    pub pad: String,
    pub rate: f64,
    pub publishers: usize,
    reconnect_slots: f64,
    slow_slots: f64,
}

impl Plan {
    pub fn new(args: &SoakArgs) -> anyhow::Result<Plan> {
        anyhow::ensure!(args.streams > 0, "--streams must be at least 1");
        anyhow::ensure!(args.period > 0.0, "--period must be positive");
        anyhow::ensure!(args.rate > 0.0, "--rate must be positive");
        Ok(Plan {
            hub: Template::parse(&args.hub)?,
            streams: args.streams,
            subs: args.subs,
            sources: Sources::new(args.sources),
            connecting: Semaphore::new(args.connect_concurrency.max(1)),
            setup_timeout: Duration::from_secs(300),
            period: args.period,
            slow_pause: Duration::from_secs_f64(args.slow_pause),
            recv_buffer: args.slow_recv_buffer,
            pad: "x".repeat(args.pad),
            rate: args.rate,
            publishers: args.publishers,
            reconnect_slots: args.reconnect_percent,
            slow_slots: args.slow_percent,
        })
    }

    pub fn stream_of(&self, subscriber: usize) -> u32 {
        (subscriber % self.streams as usize) as u32
    }

    /// The stream of every subscriber, in order.
    pub fn subscriber_streams(&self) -> Vec<u32> {
        (0..self.subs).map(|i| self.stream_of(i)).collect()
    }

    /// The request path and query of a subscription to `stream`.
    pub fn subscription_path(&self, stream: u32) -> String {
        let (param, selector) = match stream % 3 {
            0 => ("match", format!("https://example.com/soak/exact/{stream}")),
            1 => (
                "match_urlpattern",
                format!("https://example.com/soak/p/{stream}/:kind/*"),
            ),
            _ => (
                "topic",
                format!("https://example.com/soak/t/{stream}/{{id}}"),
            ),
        };
        let path = self.hub.path_for("");
        let sep = if path.contains('?') { '&' } else { '?' };
        format!("{path}{sep}{param}={}", encode(&selector))
    }

    /// The topic event `seq` of `stream` is published to: for patterns and
    /// templates one of `RESOURCES` per stream in turn, all matching the
    /// stream's selector, as events about many resources would.
    pub fn topic(&self, stream: u32, seq: u64) -> String {
        let resource = seq % RESOURCES;
        match stream % 3 {
            0 => format!("https://example.com/soak/exact/{stream}"),
            1 => {
                let kind = KINDS[seq as usize % KINDS.len()];
                format!("https://example.com/soak/p/{stream}/{kind}/{resource}")
            }
            _ => format!("https://example.com/soak/t/{stream}/{resource}"),
        }
    }

    /// The subscriber's moment within each period, in seconds.
    fn offset(&self, subscriber: usize) -> f64 {
        // A multiplicative hash spreads neighbours over the period.
        let spread = (subscriber as u64).wrapping_mul(2_654_435_761) % 10_000;
        self.period * spread as f64 / 10_000.0
    }

    /// Whether this subscriber is one of the slow readers.
    pub fn is_slow(&self, subscriber: usize) -> bool {
        (subscriber % 100) as f64 >= 100.0 - self.slow_slots
    }

    fn churn_in(&self, subscriber: usize, period: u64) -> Option<Churn> {
        let slot = ((subscriber as u64 + period * STRIDE) % 100) as f64;
        if self.is_slow(subscriber) {
            Some(Churn::Pause)
        } else if slot < self.reconnect_slots {
            Some(Churn::Reconnect)
        } else {
            None
        }
    }

    /// The subscriber's next churn from period `from` on: the period, its
    /// time in seconds after publishing started, and what to do.
    pub fn next_churn(&self, subscriber: usize, from: u64) -> Option<(u64, f64, Churn)> {
        let offset = self.offset(subscriber);
        (from..from + 100).find_map(|k| {
            let churn = self.churn_in(subscriber, k)?;
            Some((k, k as f64 * self.period + offset, churn))
        })
    }

    /// The first period whose moment for this subscriber is after `elapsed`.
    pub fn period_after(&self, subscriber: usize, elapsed: f64) -> u64 {
        let k = ((elapsed - self.offset(subscriber)) / self.period).ceil();
        k.max(0.0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: SoakArgs,
    }

    fn plan(extra: &[&str]) -> Plan {
        let mut argv = vec!["soak", "--jwt-key", "k"];
        argv.extend_from_slice(extra);
        Plan::new(&Cli::parse_from(argv).args).unwrap()
    }

    #[test]
    fn churn_shares_match_the_percentages() {
        let plan = plan(&["--subs", "10000"]);
        for period in 0..3 {
            let count = |want| {
                (0..10_000)
                    .filter(|&i| plan.churn_in(i, period) == Some(want))
                    .count()
            };
            // Five per hundred, except where the slot falls on a slow reader.
            assert!((490..=500).contains(&count(Churn::Reconnect)));
            assert_eq!(count(Churn::Pause), 100);
        }
    }

    #[test]
    fn next_churn_is_in_the_future() {
        let plan = plan(&[]);
        for i in 0..200 {
            let from = plan.period_after(i, 125.0);
            let (_, at, _) = plan.next_churn(i, from).unwrap();
            assert!(at >= 125.0, "subscriber {i} at {at}");
            assert!(at < 125.0 + 100.0 * plan.period);
        }
    }

    #[test]
    fn topics_match_their_stream_selector_shape() {
        let plan = plan(&["--hub", "http://127.0.0.1:9/.well-known/mercure"]);
        assert_eq!(
            plan.subscription_path(1),
            "/.well-known/mercure?match_urlpattern=https%3A%2F%2Fexample.com%2Fsoak%2Fp%2F1%2F%3Akind%2F%2A"
        );
        assert_eq!(plan.topic(1, 4), "https://example.com/soak/p/1/user/4");
        assert_eq!(plan.topic(1, 305), "https://example.com/soak/p/1/order/5");
        assert_eq!(plan.topic(2, 4), "https://example.com/soak/t/2/4");
        assert_eq!(plan.topic(3, 4), "https://example.com/soak/exact/3");
    }
}
