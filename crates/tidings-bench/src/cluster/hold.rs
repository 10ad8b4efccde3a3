//! A holder: one load-generator process's share of a cluster run's
//! subscriptions.
//!
//! One process can hold no more subscriptions than its open-file limit, so
//! a cluster run spreads them over several holders, children of the
//! coordinator (`tidings-bench cluster`). They speak JSON lines: the holder
//! says [`Ready`] once its subscriptions are open, the coordinator answers
//! with what was published ([`Go`]), and the holder drains and says
//! [`Held`]. Closing its stdin instead ends it at once.

use super::{node_of, topic_name, topic_of};
use crate::fleet::{Fleet, Options, Subscription, Transport};
use crate::procfs;
use crate::source::Sources;
use crate::tally::Tally;
use crate::target::Template;
use clap::Args;
use serde::{Deserialize, Serialize};
use std::io::BufRead;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Args)]
pub struct HoldArgs {
    /// Subscription URL of each node, in node order.
    #[arg(long, required = true)]
    pub subscribe_url: Vec<String>,
    /// Global index of this holder's first subscriber.
    #[arg(long)]
    pub first: usize,
    /// Subscribers held by this process.
    #[arg(long)]
    pub subs: usize,
    /// Topics the run's subscribers are spread over.
    #[arg(long)]
    pub topics: usize,
    #[arg(long)]
    pub topic_prefix: String,
    #[arg(long)]
    pub sources: u8,
    #[arg(long)]
    pub connect_concurrency: usize,
    #[arg(long)]
    pub setup_timeout: f64,
    #[arg(long)]
    pub drain: f64,
}

/// The holder's subscriptions are open (or some failed).
#[derive(Debug, Serialize, Deserialize)]
pub struct Ready {
    pub opened: usize,
    pub failed: usize,
    pub error: Option<String>,
    /// This process's RSS growth while subscribing, bytes.
    pub rss_growth: u64,
}

/// What the coordinator published: accepted events per topic.
#[derive(Debug, Serialize, Deserialize)]
pub struct Go {
    pub published: Vec<u64>,
}

/// What the holder's subscribers received.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Held {
    pub expected: u64,
    pub delivered: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub foreign: u64,
    /// Subscriptions the server ended.
    pub ended: u64,
    /// Unix time of the last delivery, ns.
    pub last_delivery_ns: u64,
    /// Latency histogram of each node's subscribers: (µs, count) pairs.
    pub latency: Vec<Vec<(u64, u64)>>,
    /// This process's CPU time over the whole run, s.
    pub cpu_s: f64,
}

pub fn main(args: HoldArgs) -> anyhow::Result<()> {
    crate::limits::raise_nofile()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(hold(args))
}

async fn hold(args: HoldArgs) -> anyhow::Result<()> {
    let urls = args
        .subscribe_url
        .iter()
        .map(|url| Template::parse(url))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let nodes = urls.len();
    let globals = args.first..args.first + args.subs;
    let tally = Arc::new(Tally::grouped(
        globals
            .clone()
            .map(|g| (topic_of(g, args.topics) as u32, node_of(g, nodes) as u32)),
        nodes as u32,
        0,
    ));
    let subs = globals
        .clone()
        .map(|g| Subscription {
            url: urls[node_of(g, nodes)].clone(),
            topic: topic_name(&args.topic_prefix, topic_of(g, args.topics)),
        })
        .collect();
    let options = Options {
        transport: Transport::Http1,
        sources: Sources::new(args.sources),
        concurrency: args.connect_concurrency,
        timeout: Duration::from_secs_f64(args.setup_timeout),
        headers: Vec::new(),
        subscribe_message: None,
    };
    let rss_before = procfs::self_rss();
    let mut fleet = Fleet::connect(urls[0].addr(), &options).await?;
    let setup = fleet.open(subs, tally.clone(), &options).await?;
    say(&Ready {
        opened: setup.opened,
        failed: setup.failed,
        error: setup.first_error,
        rss_growth: procfs::self_rss().saturating_sub(rss_before),
    });

    // The coordinator's answer comes on stdin, read off the runtime.
    let line = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map(|_| line)
    })
    .await??;
    if line.trim().is_empty() {
        fleet.close().await;
        return Ok(());
    }
    let go: Go = serde_json::from_str(&line)?;
    let published = |topic: u32| go.published.get(topic as usize).copied().unwrap_or(0);
    let expected = tally.summary(published).expected;
    let idle = Duration::from_secs_f64(args.drain);
    let last = crate::scenario::drain(&tally, expected, idle).await;
    let last_delivery_ns = (SystemTime::now() - last.elapsed())
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let summary = tally.summary(published);
    let latency = (0..nodes as u32)
        .map(|group| {
            tally
                .group_histogram(group)
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect()
        })
        .collect();
    let ended = fleet.ended();
    fleet.close().await;
    say(&Held {
        expected: summary.expected,
        delivered: summary.delivered,
        lost: summary.lost,
        duplicated: summary.duplicated,
        foreign: summary.foreign,
        ended,
        last_delivery_ns,
        latency,
        cpu_s: procfs::self_cpu().as_secs_f64(),
    });
    Ok(())
}

fn say(message: &impl Serialize) {
    println!(
        "{}",
        serde_json::to_string(message).expect("messages always serialize")
    );
}
