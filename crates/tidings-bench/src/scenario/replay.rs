//! `replay`: N clients reconnect at once with `Last-Event-ID`, each the
//! same number of events behind, and must receive exactly the events they
//! missed.
//!
//! A single probe subscription first records the ID the server gave the
//! event to resume after, since servers assign their own IDs.

use super::{check_deliveries, drain, subscribe, topic, Context};
use crate::fleet::{Subscription, Transport};
use crate::h1;
use crate::payload::Payload;
use crate::procfs;
use crate::publish;
use crate::report::Report;
use crate::source::Sources;
use crate::tally::Tally;
use anyhow::{anyhow, bail};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Events published before the one the clients resume after.
const WARM: u64 = 10;

pub async fn run(ctx: &Context) -> anyhow::Result<Report> {
    let mut report = Report::new(&ctx.args.server, "replay");
    let the_topic = topic("replay", 0);
    let behind = ctx.args.behind.max(1);
    let total = WARM + behind;

    let resume_id = match backlog(ctx, &the_topic, total).await {
        Ok(id) => id,
        Err(e) => {
            report.fail(format!("building the backlog: {e:#}"));
            return Ok(report);
        }
    };

    let subs = (0..ctx.args.subs)
        .map(|_| Subscription {
            url: ctx.subscribe.clone(),
            topic: the_topic.clone(),
        })
        .collect::<Vec<_>>();
    let tally = Arc::new(Tally::new(vec![0; subs.len()], WARM));
    let mut options = ctx.options(Transport::Http1);
    options
        .headers
        .push(("Last-Event-ID".to_string(), resume_id));
    let server_before = ctx.server.sample();
    let bench_before = procfs::self_cpu();
    let start = Instant::now();
    let fleet = subscribe(ctx, &mut report, subs, tally.clone(), &options).await?;
    if report.reason.is_none() {
        let expected = behind * ctx.args.subs as u64;
        let finished = drain(&tally, expected, Duration::from_secs_f64(ctx.args.drain)).await;
        let server_cpu = ctx.server.sample().cpu.saturating_sub(server_before.cpu);
        let bench_cpu = procfs::self_cpu().saturating_sub(bench_before);
        report.published = Some(total);
        check_deliveries(&mut report, &fleet, &tally, |_| total);
        let delivered = report.delivered.unwrap_or(0);
        if delivered > 0 {
            let elapsed = finished.duration_since(start).as_secs_f64();
            report.deliveries_per_sec = Some(delivered as f64 / elapsed);
            if !ctx.server.is_empty() {
                report.server_cpu_ns_per_event =
                    Some(server_cpu.as_nanos() as f64 / delivered as f64);
            }
            report.bench_cpu_ns_per_event = Some(bench_cpu.as_nanos() as f64 / delivered as f64);
        }
    }
    fleet.close().await;
    Ok(report)
}

/// Publishes `total` events while one probe listens, and returns the ID the
/// server gave event `WARM - 1`.
async fn backlog(ctx: &Context, topic: &str, total: u64) -> anyhow::Result<String> {
    let stream = Sources::new(0).connect(0, ctx.subscribe.addr()).await?;
    let headers: Vec<(&str, &str)> = ctx
        .fleet
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let request = h1::request(
        ctx.subscribe.authority(),
        &ctx.subscribe.path_for(topic),
        &headers,
    );
    let (ready_tx, ready_rx) = oneshot::channel();
    let (done_tx, done_rx) = oneshot::channel::<Option<String>>();
    let probe = tokio::spawn(async move {
        let mut resume_id = None;
        let mut done = Some(done_tx);
        let _ = h1::subscribe(
            stream,
            &request,
            || {
                let _ = ready_tx.send(());
            },
            |e| {
                let Some(p) = Payload::decode(e.data) else {
                    return;
                };
                if p.seq == WARM - 1 && !e.id.is_empty() {
                    resume_id = Some(String::from_utf8_lossy(e.id).into_owned());
                }
                if p.seq == total - 1 {
                    if let Some(done) = done.take() {
                        let _ = done.send(resume_id.take());
                    }
                }
            },
        )
        .await;
    });
    let seen = async {
        let wait = Duration::from_secs_f64(ctx.args.setup_timeout);
        tokio::time::timeout(wait, ready_rx)
            .await
            .map_err(|_| anyhow!("the probe subscription was not answered"))??;
        tokio::time::sleep(Duration::from_secs_f64(ctx.args.settle)).await;
        let pick = |_| (0, topic.to_string());
        let (outcome, _) = publish::run(&ctx.publish, 1, 1, total, ctx.args.rate, pick).await?;
        if outcome.failed > 0 {
            bail!("{} of {total} publications failed", outcome.failed);
        }
        let drain = Duration::from_secs_f64(ctx.args.drain);
        tokio::time::timeout(drain, done_rx)
            .await
            .map_err(|_| anyhow!("the probe did not receive all {total} events"))??
            .ok_or_else(|| anyhow!("event {} came without an id", WARM - 1))
    }
    .await;
    probe.abort();
    seen
}
