//! Sampling the hub and the run every few seconds into a CSV file.

use super::ledger::Ledger;
use super::metrics::{self, HubFigures};
use super::SoakArgs;
use crate::procfs::{self, ProcSet};
use crate::target::Template;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The CSV header; `Sample::row` writes the same columns.
pub const HEADER: &str = "seconds,rss_mib,fds,threads,hub_subscribers,hub_slow_disconnects,\
hub_history_events,connected,published,deliveries_per_s,latency_p50_ms,latency_p99_ms,\
lost,duplicated,foreign,reconnects,pauses,slow_resumes,unexpected_ends,failed_connects,\
failed_publishes";

/// One row: the hub's process figures, its own metrics, and the run's counts.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    pub seconds: f64,
    pub rss_mib: Option<f64>,
    pub fds: Option<usize>,
    pub threads: Option<u64>,
    pub hub: HubFigures,
    pub connected: usize,
    pub published: u64,
    pub deliveries_per_s: f64,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub lost: u64,
    pub duplicated: u64,
    pub foreign: u64,
    pub reconnects: u64,
    pub pauses: u64,
    pub slow_resumes: u64,
    pub unexpected_ends: u64,
    pub failed_connects: u64,
    pub failed_publishes: u64,
}

impl Sample {
    fn row(&self) -> String {
        fn opt<T: ToString>(v: Option<T>) -> String {
            v.map_or_else(String::new, |v| v.to_string())
        }
        format!(
            "{:.1},{},{},{},{},{},{},{},{},{:.0},{:.3},{:.3},{},{},{},{},{},{},{},{},{}",
            self.seconds,
            opt(self.rss_mib.map(|m| format!("{m:.2}"))),
            opt(self.fds),
            opt(self.threads),
            opt(self.hub.subscribers),
            opt(self.hub.slow_disconnects),
            opt(self.hub.history_events),
            self.connected,
            self.published,
            self.deliveries_per_s,
            self.latency_p50_ms,
            self.latency_p99_ms,
            self.lost,
            self.duplicated,
            self.foreign,
            self.reconnects,
            self.pauses,
            self.slow_resumes,
            self.unexpected_ends,
            self.failed_connects,
            self.failed_publishes,
        )
    }

    /// Descriptors beyond one per open subscription: what a leak would grow.
    pub fn fd_overhead(&self) -> Option<i64> {
        Some(self.fds? as i64 - self.hub.subscribers? as i64)
    }
}

/// Samples every `--sample-every` seconds until `done`, then once more.
pub async fn run(
    args: SoakArgs,
    server: ProcSet,
    ledger: Arc<Ledger>,
    done: Arc<AtomicBool>,
) -> anyhow::Result<Vec<Sample>> {
    let mut csv = std::io::BufWriter::new(std::fs::File::create(&args.csv)?);
    writeln!(csv, "{HEADER}")?;
    let hub = Template::parse(&args.hub)?;
    let every = Duration::from_secs_f64(args.sample_every.max(0.5));
    let start = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    let mut previous = (start, 0u64);
    for n in 1u32.. {
        let due = start + every * n;
        while Instant::now() < due && !done.load(Relaxed) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let last = done.load(Relaxed);
        let sample = take(&server, &hub, &ledger, start, &mut previous).await;
        writeln!(csv, "{}", sample.row())?;
        csv.flush()?;
        eprintln!(
            "soak: {:>6.0} s  rss {:>7.1} MiB  fds {:>6}  threads {:>3}  {:>7.0} deliveries/s  \
             p50 {:.1} ms  p99 {:.1} ms  lost {}  duplicated {}  reconnects {}  slow resumes {}",
            sample.seconds,
            sample.rss_mib.unwrap_or(0.0),
            sample.fds.unwrap_or(0),
            sample.threads.unwrap_or(0),
            sample.deliveries_per_s,
            sample.latency_p50_ms,
            sample.latency_p99_ms,
            sample.lost,
            sample.duplicated,
            sample.reconnects,
            sample.slow_resumes,
        );
        samples.push(sample);
        if last {
            break;
        }
    }
    Ok(samples)
}

async fn take(
    server: &ProcSet,
    hub: &Template,
    ledger: &Ledger,
    start: Instant,
    previous: &mut (Instant, u64),
) -> Sample {
    let now = Instant::now();
    let counts = &ledger.counts;
    let delivered = counts.delivered.load(Relaxed);
    let interval = now.duration_since(previous.0).as_secs_f64().max(1e-3);
    let deliveries_per_s = (delivered - previous.1) as f64 / interval;
    *previous = (now, delivered);
    let latency = ledger.take_latency();
    let ms = |q| match latency.len() {
        0 => 0.0,
        _ => latency.value_at_quantile(q) as f64 / 1000.0,
    };
    let pid = server.pids().first().copied();
    Sample {
        seconds: now.duration_since(start).as_secs_f64(),
        rss_mib: pid.map(|_| server.sample().rss as f64 / (1024.0 * 1024.0)),
        fds: pid.and_then(|p| procfs::open_fds(p).ok()),
        threads: pid.and_then(|p| procfs::threads(p).ok()),
        hub: metrics::fetch(hub).await,
        connected: ledger.connected(),
        published: ledger.total_published(),
        deliveries_per_s,
        latency_p50_ms: ms(0.5),
        latency_p99_ms: ms(0.99),
        lost: counts.lost.load(Relaxed),
        duplicated: counts.duplicated.load(Relaxed),
        foreign: counts.foreign.load(Relaxed),
        reconnects: counts.reconnects.load(Relaxed),
        pauses: counts.pauses.load(Relaxed),
        slow_resumes: counts.slow_resumes.load(Relaxed),
        unexpected_ends: counts.unexpected_ends.load(Relaxed),
        failed_connects: counts.failed_connects.load(Relaxed),
        failed_publishes: counts.failed_publishes.load(Relaxed),
    }
}
