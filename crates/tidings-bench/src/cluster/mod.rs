//! Cluster runs: several hub processes that act as one (or a peer's
//! equivalent), measured node by node in one run.
//!
//! Subscriber `g` of a run is on node `g % nodes` and topic `g % topics`, so
//! every topic's subscribers are spread over the nodes whenever the two
//! counts are coprime or topics is 1. Subscriptions are held by
//! `--holders` child processes ([`hold`]), each under its own open-file
//! limit; publications go out from this process, spread over the
//! `--publish-url`s. Each node's RSS is sampled before and after
//! subscribing, and its CPU time (and the engine's) over the publishing
//! phase, so every figure is per node.

pub mod hold;
pub mod table;

use crate::procfs::ProcSet;
use crate::publish::{self, Method, Pace, Target};
use crate::tally::{empty_histogram, Latency};
use crate::target::Template;
use crate::token;
use anyhow::{bail, Context as _};
use clap::Args;
use hold::{Go, Held, Ready};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// What the run is, e.g. "tidings, Redis, 6 nodes".
    #[arg(long)]
    pub label: String,
    /// Which table of docs/benchmarks.md the run belongs to.
    #[arg(long)]
    pub measure: String,
    /// Subscription URL of each node, in node order (`{topic}` for the topic).
    #[arg(long)]
    pub subscribe_url: Vec<String>,
    /// Publication URLs; publishing connection j uses the (j mod n)th.
    #[arg(long, required = true)]
    pub publish_url: Vec<String>,
    #[arg(long, value_enum)]
    pub publish: Method,
    #[arg(long)]
    pub jwt_key: Option<String>,
    /// The processes of one node, comma-separated; once per node, in node order.
    #[arg(long = "node", required = true)]
    pub nodes: Vec<String>,
    /// Also measure every descendant of the nodes' and engine's processes.
    #[arg(long)]
    pub with_children: bool,
    /// The engine's processes, comma-separated.
    #[arg(long)]
    pub engine: Option<String>,
    /// Subscribers in all.
    #[arg(long, default_value_t = 0)]
    pub subs: usize,
    /// Topics the subscribers are spread over; events go round them.
    #[arg(long, default_value_t = 1)]
    pub topics: usize,
    /// Topic names are this followed by the topic's index.
    #[arg(long, default_value = TOPIC_PREFIX)]
    pub topic_prefix: String,
    /// Load-generator processes holding the subscriptions.
    #[arg(long, default_value_t = 1)]
    pub holders: usize,
    /// Events per second (0: as fast as the publishers go).
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Seconds of publishing.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Publishing connections, each with one request in flight.
    #[arg(long, default_value_t = 4)]
    pub publishers: usize,
    #[arg(long, default_value_t = 8)]
    pub sources: u8,
    /// Subscriptions being opened at once, per holder.
    #[arg(long, default_value_t = 100)]
    pub connect_concurrency: usize,
    #[arg(long, default_value_t = 1.0)]
    pub settle: f64,
    #[arg(long, default_value_t = 5.0)]
    pub drain: f64,
    #[arg(long, default_value_t = 120.0)]
    pub setup_timeout: f64,
}

/// One node's figures.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NodeFigures {
    pub subscribers: u64,
    /// RSS growth over the node's subscribers, bytes.
    pub rss_per_sub: Option<f64>,
    /// RSS once subscribed, bytes.
    pub rss: u64,
    /// CPU time over the publishing phase, per accepted publication, ns.
    pub cpu_ns_per_event: Option<f64>,
    pub latency: Option<Latency>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClusterReport {
    pub label: String,
    pub measure: String,
    pub ok: bool,
    pub reason: Option<String>,
    pub subscribers: u64,
    pub topics: u64,
    pub holders: u64,
    pub publishers: u64,
    pub rate: f64,
    pub per_node: Vec<NodeFigures>,
    pub engine_cpu_ns_per_event: Option<f64>,
    pub setup_per_sec: Option<f64>,
    /// Publications answered with success.
    pub published: u64,
    pub publish_failed: u64,
    pub publish_per_sec: f64,
    pub answer_p50_us: u64,
    pub answer_p99_us: u64,
    pub expected: u64,
    pub delivered: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub foreign: u64,
    pub ended: u64,
    pub deliveries_per_sec: Option<f64>,
    pub latency: Option<Latency>,
    pub bench_rss_per_sub: Option<f64>,
    pub bench_cpu_ns_per_delivery: Option<f64>,
}

impl ClusterReport {
    fn fail(&mut self, reason: impl Into<String>) {
        self.ok = false;
        self.reason.get_or_insert_with(|| reason.into());
    }
}

/// Node of global subscriber `g`.
pub fn node_of(g: usize, nodes: usize) -> usize {
    g % nodes.max(1)
}

/// Topic index of global subscriber `g`.
pub fn topic_of(g: usize, topics: usize) -> usize {
    g % topics.max(1)
}

/// The default topic prefix. Nchan 1.3.6 with Redis answers 500 to a
/// channel id holding a `%` (its publish script hands the id to Lua's
/// `string.format`), so runs that include it use a prefix that needs no
/// percent-encoding.
pub const TOPIC_PREFIX: &str = "https://example.com/bench/cluster/";

pub fn topic_name(prefix: &str, index: usize) -> String {
    format!("{prefix}{index}")
}

fn pids(list: &str) -> anyhow::Result<Vec<u32>> {
    list.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| p.trim().parse().with_context(|| format!("bad PID {p}")))
        .collect()
}

pub fn main(args: ClusterArgs) -> anyhow::Result<ClusterReport> {
    let mut report = ClusterReport {
        label: args.label.clone(),
        measure: args.measure.clone(),
        ok: true,
        subscribers: args.subs as u64,
        topics: args.topics as u64,
        holders: args.holders as u64,
        publishers: args.publishers as u64,
        rate: args.rate,
        ..ClusterReport::default()
    };
    if let Err(e) = run(&args, &mut report) {
        report.fail(format!("{e:#}"));
    }
    Ok(report)
}

fn run(args: &ClusterArgs, report: &mut ClusterReport) -> anyhow::Result<()> {
    let nodes = args
        .nodes
        .iter()
        .map(|list| Ok(ProcSet::new(pids(list)?, args.with_children)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let engine = match &args.engine {
        Some(list) => Some(ProcSet::new(pids(list)?, args.with_children)),
        None => None,
    };
    let n = nodes.len();
    if args.subs > 0 && args.subscribe_url.len() != n {
        bail!("one --subscribe-url per --node, please");
    }
    let token = match (&args.jwt_key, args.publish) {
        (Some(key), Method::Mercure) => Some(token::publisher(key)?),
        (None, Method::Mercure) => bail!("--publish mercure needs --jwt-key"),
        _ => None,
    };
    let targets = args
        .publish_url
        .iter()
        .map(|url| {
            Ok(Target {
                method: args.publish,
                url: Template::parse(url)?,
                token: token.clone(),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let subs_of = |k: usize| (0..args.subs).filter(|&g| node_of(g, n) == k).count() as u64;
    report.per_node = (0..n)
        .map(|k| NodeFigures {
            subscribers: subs_of(k),
            ..NodeFigures::default()
        })
        .collect();

    // Subscribing.
    let before: Vec<_> = nodes.iter().map(ProcSet::sample).collect();
    let mut holders = Vec::new();
    let start = Instant::now();
    if args.subs > 0 {
        let count = args.holders.clamp(1, args.subs);
        for h in 0..count {
            let first = args.subs * h / count;
            let last = args.subs * (h + 1) / count;
            holders.push(Holder::spawn(args, first, last - first)?);
        }
    }
    let wait = Duration::from_secs_f64(args.setup_timeout + 30.0);
    let mut bench_rss = 0;
    for holder in &mut holders {
        let ready: Ready = holder.receive(wait)?;
        bench_rss += ready.rss_growth;
        if ready.failed > 0 {
            report.fail(format!(
                "{} subscriptions failed: {}",
                ready.failed,
                ready.error.as_deref().unwrap_or("unknown")
            ));
        }
    }
    if !report.ok {
        return Ok(());
    }
    if args.subs > 0 {
        report.setup_per_sec = Some(args.subs as f64 / start.elapsed().as_secs_f64());
        report.bench_rss_per_sub = Some(bench_rss as f64 / args.subs as f64);
    }
    std::thread::sleep(Duration::from_secs_f64(args.settle));
    let after: Vec<_> = nodes.iter().map(ProcSet::sample).collect();
    for (k, figures) in report.per_node.iter_mut().enumerate() {
        figures.rss = after[k].rss;
        if figures.subscribers > 0 {
            figures.rss_per_sub =
                Some((after[k].rss as f64 - before[k].rss as f64) / figures.subscribers as f64);
        }
    }

    // Publishing.
    let cpu_before: Vec<_> = nodes.iter().map(|p| p.sample().cpu).collect();
    let engine_before = engine.as_ref().map(|e| e.sample().cpu);
    let publish_start_ns = unix_nanos();
    let topics = args.topics.max(1);
    let pace = Pace {
        events: if args.rate > 0.0 {
            (args.rate * args.duration).round() as u64
        } else {
            // As fast as possible: bounded by time, and by a count no
            // loopback run reaches in that time.
            1_000_000 * (args.duration.ceil() as u64).max(1)
        },
        rate: args.rate,
        until: Some(Duration::from_secs_f64(args.duration + 1.0)),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let (outcome, published) = runtime.block_on(publish::run_spread(
        &targets,
        args.publishers,
        topics as u32,
        pace,
        |i| {
            let t = (i % topics as u64) as usize;
            (t as u32, topic_name(&args.topic_prefix, t))
        },
    ))?;
    let accepted = outcome.attempted - outcome.failed;
    report.published = accepted;
    report.publish_failed = outcome.failed;
    report.publish_per_sec = accepted as f64 / outcome.elapsed.as_secs_f64();
    (report.answer_p50_us, report.answer_p99_us) = published.answer_us();
    if outcome.failed > 0 {
        report.fail(format!("{} publications failed", outcome.failed));
    }

    // Draining.
    let go = serde_json::to_string(&Go {
        published: published.counts(),
    })?;
    for holder in &mut holders {
        holder.send(&go)?;
    }
    let wait = Duration::from_secs_f64(args.drain * 4.0 + 120.0);
    let mut latency = vec![empty_histogram(); n];
    let mut last_delivery_ns = 0;
    let mut bench_cpu = 0.0;
    for holder in &mut holders {
        let held: Held = holder.receive(wait)?;
        report.expected += held.expected;
        report.delivered += held.delivered;
        report.lost += held.lost;
        report.duplicated += held.duplicated;
        report.foreign += held.foreign;
        report.ended += held.ended;
        last_delivery_ns = last_delivery_ns.max(held.last_delivery_ns);
        bench_cpu += held.cpu_s;
        for (k, values) in held.latency.iter().enumerate().take(n) {
            for &(us, count) in values {
                let _ = latency[k].record_n(us, count);
            }
        }
    }
    if holders.is_empty() {
        // Nobody to wait for: give the nodes a moment to follow the log
        // to its end before reading their CPU time.
        std::thread::sleep(Duration::from_secs_f64(args.settle));
    }
    let cpu_after: Vec<_> = nodes.iter().map(|p| p.sample().cpu).collect();
    let per_event = |cpu: Duration| (accepted > 0).then(|| cpu.as_nanos() as f64 / accepted as f64);
    for (k, figures) in report.per_node.iter_mut().enumerate() {
        figures.cpu_ns_per_event = per_event(cpu_after[k].saturating_sub(cpu_before[k]));
        if !latency[k].is_empty() {
            figures.latency = Some(Latency::of(&latency[k]));
        }
    }
    if let (Some(engine), Some(before)) = (&engine, engine_before) {
        report.engine_cpu_ns_per_event = per_event(engine.sample().cpu.saturating_sub(before));
    }
    let mut all = empty_histogram();
    for hist in &latency {
        let _ = all.add(hist);
    }
    if !all.is_empty() {
        report.latency = Some(Latency::of(&all));
    }
    if report.delivered > 0 {
        let elapsed = last_delivery_ns.saturating_sub(publish_start_ns) as f64 / 1e9;
        report.deliveries_per_sec = Some(report.delivered as f64 / elapsed.max(1e-3));
        report.bench_cpu_ns_per_delivery = Some(bench_cpu * 1e9 / report.delivered as f64);
    }
    if report.lost + report.duplicated + report.foreign > 0 {
        report.fail(format!(
            "{} lost, {} duplicated or out of order, {} not asked for",
            report.lost, report.duplicated, report.foreign
        ));
    }
    if report.ended > 0 {
        report.fail(format!("server ended {} subscriptions", report.ended));
    }
    Ok(())
}

fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A holder child process and its pipes. Dropping it closes its stdin,
/// which ends it, and reaps it.
struct Holder {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Holder {
    fn spawn(args: &ClusterArgs, first: usize, subs: usize) -> anyhow::Result<Holder> {
        let mut command = Command::new(std::env::current_exe()?);
        command.arg("hold");
        for url in &args.subscribe_url {
            command.args(["--subscribe-url", url]);
        }
        command
            .args(["--first", &first.to_string()])
            .args(["--subs", &subs.to_string()])
            .args(["--topics", &args.topics.max(1).to_string()])
            .args(["--topic-prefix", &args.topic_prefix])
            .args(["--sources", &args.sources.to_string()])
            .args([
                "--connect-concurrency",
                &args.connect_concurrency.to_string(),
            ])
            .args(["--setup-timeout", &args.setup_timeout.to_string()])
            .args(["--drain", &args.drain.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().context("starting a holder")?;
        let stdout: ChildStdout = child.stdout.take().context("holder stdout")?;
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Holder {
            stdin: child.stdin.take(),
            child,
            lines,
        })
    }

    fn receive<T: for<'de> Deserialize<'de>>(&mut self, wait: Duration) -> anyhow::Result<T> {
        let line = self
            .lines
            .recv_timeout(wait)
            .map_err(|_| anyhow::anyhow!("a holder did not answer within {wait:?}"))?;
        serde_json::from_str(&line).with_context(|| format!("holder said {line}"))
    }

    fn send(&mut self, line: &str) -> anyhow::Result<()> {
        let stdin = self.stdin.as_mut().context("holder stdin closed")?;
        writeln!(stdin, "{line}")?;
        stdin.flush()?;
        Ok(())
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.stdin.take());
        // Bounded: a holder with a closed stdin closes its fleet and exits.
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
