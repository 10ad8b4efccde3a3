//! The scenarios, and the phases they share: subscribe, publish, drain.
//!
//! Every scenario compares what was delivered with what was published; a
//! run with losses, duplicates or failed subscriptions is reported as
//! FAILED rather than as figures.

mod fanout;
mod idle;
mod patterns;
mod replay;
mod topics;

use crate::cli::{RunArgs, Scenario};
use crate::fleet::{Fleet, Options, Subscription, Transport};
use crate::procfs::{self, ProcSet};
use crate::publish::{self, Target};
use crate::report::Report;
use crate::source::Sources;
use crate::syscalls;
use crate::tally::Tally;
use crate::target::Template;
use crate::token;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Everything a scenario needs from the command line, parsed once.
pub struct Context {
    pub args: RunArgs,
    pub server: ProcSet,
    pub subscribe: Template,
    pub publish: Target,
    pub fleet: Options,
}

impl Context {
    pub fn new(args: RunArgs) -> anyhow::Result<Context> {
        let publish_token = match (&args.jwt_key, args.publish) {
            (Some(key), publish::Method::Mercure) => Some(token::publisher(key)?),
            (None, publish::Method::Mercure) => anyhow::bail!("--publish mercure needs --jwt-key"),
            _ => None,
        };
        let mut headers = Vec::new();
        if args.subscriber_token {
            let key = args
                .jwt_key
                .as_deref()
                .ok_or_else(|| anyhow::anyhow!("--subscriber-token needs --jwt-key"))?;
            headers.push((
                "Authorization".to_string(),
                format!("Bearer {}", token::subscriber(key)?),
            ));
        }
        Ok(Context {
            server: ProcSet::new(args.pids.clone(), args.with_children),
            subscribe: Template::parse(&args.subscribe_url)?,
            publish: Target {
                method: args.publish,
                url: Template::parse(&args.publish_url)?,
                token: publish_token,
            },
            fleet: Options {
                transport: Transport::Http1,
                sources: Sources::new(args.sources),
                concurrency: args.connect_concurrency,
                timeout: Duration::from_secs_f64(args.setup_timeout),
                headers,
                subscribe_message: args.ws_subscribe.clone(),
            },
            args,
        })
    }

    /// Subscription options with the given transport.
    fn options(&self, transport: Transport) -> Options {
        Options {
            transport,
            ..self.fleet.clone()
        }
    }

    /// Events the publishing phase sends.
    fn events(&self) -> u64 {
        (self.args.rate * self.args.duration).round() as u64
    }
}

pub async fn run(ctx: &Context) -> anyhow::Result<Report> {
    let mut report = match ctx.args.scenario {
        Scenario::Idle => idle::run(ctx, Transport::Http1).await?,
        Scenario::Fanout => fanout::run(ctx, Transport::Http1).await?,
        Scenario::H2 => {
            let connections = ctx.args.connections;
            fanout::run(ctx, Transport::Http2 { connections }).await?
        }
        Scenario::H3 => {
            let connections = ctx.args.connections;
            idle::run(ctx, Transport::Http3 { connections }).await?
        }
        Scenario::Topics => topics::run(ctx).await?,
        Scenario::Patterns => patterns::run(ctx).await?,
        Scenario::Replay => replay::run(ctx).await?,
    };
    report.bench_cpu_s = Some(procfs::self_cpu().as_secs_f64());
    Ok(report)
}

/// Opens the subscriptions and records set-up rate and memory per
/// subscriber, both the server's and this tool's. Fails the report if any
/// subscription could not be opened.
async fn subscribe(
    ctx: &Context,
    report: &mut Report,
    subs: Vec<Subscription>,
    tally: Arc<Tally>,
    options: &Options,
) -> anyhow::Result<Fleet> {
    let count = subs.len();
    let server_before = ctx.server.sample();
    let bench_before = procfs::self_rss();
    let mut fleet = Fleet::connect(ctx.subscribe.addr(), options).await?;
    let server_connected = ctx.server.sample();
    let setup = fleet.open(subs, tally, options).await?;
    report.subscribers = count as u64;
    report.connections = match options.transport {
        Transport::Http1 => count as u64,
        Transport::Http2 { connections } | Transport::Http3 { connections } => connections as u64,
    };
    if setup.failed > 0 {
        report.fail(format!(
            "{} of {count} subscriptions failed: {}",
            setup.failed,
            setup.first_error.as_deref().unwrap_or("unknown")
        ));
        return Ok(fleet);
    }
    report.setup_per_sec = Some(count as f64 / setup.elapsed.as_secs_f64());
    tokio::time::sleep(Duration::from_secs_f64(ctx.args.settle)).await;
    let per_sub = |before: u64, after: u64| (after as f64 - before as f64) / count.max(1) as f64;
    if !ctx.server.is_empty() {
        let server_after = ctx.server.sample();
        report.server_rss_per_sub = Some(per_sub(server_before.rss, server_after.rss));
        if let Transport::Http2 { .. } | Transport::Http3 { .. } = options.transport {
            report.server_rss_per_stream = Some(per_sub(server_connected.rss, server_after.rss));
        }
    }
    report.bench_rss_per_sub = Some(per_sub(bench_before, procfs::self_rss()));
    Ok(fleet)
}

/// How the publishing phase spreads events: `pick(i)` gives the stream and
/// topic of event `i`, among `streams` streams.
struct Load<P> {
    streams: u32,
    events: u64,
    rate: f64,
    pick: P,
}

/// Publishes, waits for deliveries to stop, then fills in throughput,
/// latency, CPU and the delivered-versus-expected check.
async fn publish_and_drain<P: FnMut(u64) -> (u32, String)>(
    ctx: &Context,
    report: &mut Report,
    fleet: &Fleet,
    tally: &Tally,
    load: Load<P>,
) -> anyhow::Result<()> {
    let syscalls = match ctx.args.count_syscalls {
        true => syscalls::Counter::start(&ctx.server.pids()),
        false => None,
    };
    let server_before = ctx.server.sample();
    let bench_before = procfs::self_cpu();
    let start = Instant::now();
    // A server that cannot keep up is given three times the planned time,
    // then the run reports what it achieved instead of waiting on.
    let pace = publish::Pace {
        events: load.events,
        rate: load.rate,
        until: Some(Duration::from_secs_f64(ctx.args.duration * 3.0 + 10.0)),
    };
    let (outcome, published) = publish::run_spread(
        std::slice::from_ref(&ctx.publish),
        ctx.args.publishers,
        load.streams,
        pace,
        load.pick,
    )
    .await?;
    let expected = tally.summary(|s| published.get(s)).expected;
    let finished = drain(tally, expected, Duration::from_secs_f64(ctx.args.drain)).await;
    let server_after = ctx.server.sample();
    let server_cpu = server_after.cpu.saturating_sub(server_before.cpu);
    let server_user = server_after.user.saturating_sub(server_before.user);
    let bench_cpu = procfs::self_cpu().saturating_sub(bench_before);
    let calls = syscalls.and_then(syscalls::Counter::finish);

    report.published = Some(outcome.attempted - outcome.failed);
    report.publish_per_sec = Some(outcome.attempted as f64 / outcome.elapsed.as_secs_f64());
    if outcome.failed > 0 {
        report.fail(format!("{} publications failed", outcome.failed));
    }
    check_deliveries(report, fleet, tally, |s| published.get(s));
    let delivered = report.delivered.unwrap_or(0);
    let elapsed = finished.duration_since(start).as_secs_f64();
    if delivered > 0 {
        report.deliveries_per_sec = Some(delivered as f64 / elapsed);
        if !ctx.server.is_empty() {
            let per_delivery = |n: f64| Some(n / delivered as f64);
            report.server_cpu_ns_per_event = per_delivery(server_cpu.as_nanos() as f64);
            report.server_user_ns_per_event = per_delivery(server_user.as_nanos() as f64);
            if let Some(calls) = calls {
                report.server_writes_per_event = per_delivery(calls.writes as f64);
                report.server_futexes_per_event = per_delivery(calls.futexes as f64);
            }
        }
        report.bench_cpu_ns_per_event = Some(bench_cpu.as_nanos() as f64 / delivered as f64);
    }
    let latency = tally.latency();
    report.latency_p50_us = Some(latency.p50_us);
    report.latency_p99_us = Some(latency.p99_us);
    report.latency_max_us = Some(latency.max_us);
    Ok(())
}

/// Compares deliveries with publications and fails the report on any
/// difference or on subscriptions the server ended.
fn check_deliveries(
    report: &mut Report,
    fleet: &Fleet,
    tally: &Tally,
    published: impl Fn(u32) -> u64,
) {
    let summary = tally.summary(published);
    report.expected = Some(summary.expected);
    report.delivered = Some(summary.delivered);
    report.lost = Some(summary.lost);
    report.duplicated = Some(summary.duplicated);
    if !summary.is_clean() {
        report.fail(format!(
            "{} lost, {} duplicated or out of order, {} not asked for",
            summary.lost, summary.duplicated, summary.foreign
        ));
    }
    if fleet.ended() > 0 {
        report.fail(format!("server ended {} subscriptions", fleet.ended()));
    }
}

/// Waits until `expected` events have been delivered, or until none has
/// arrived for `idle`; returns when the last delivery was seen.
pub(crate) async fn drain(tally: &Tally, expected: u64, idle: Duration) -> Instant {
    const POLL: Duration = Duration::from_millis(5);
    let mut seen = tally.delivered();
    let mut last_progress = Instant::now();
    while seen < expected && last_progress.elapsed() < idle {
        tokio::time::sleep(POLL).await;
        let now = tally.delivered();
        if now != seen {
            seen = now;
            last_progress = Instant::now();
        }
    }
    last_progress
}

/// Topic names shared by the scenarios.
fn topic(kind: &str, index: usize) -> String {
    format!("https://example.com/bench/{kind}/{index}")
}
