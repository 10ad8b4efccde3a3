//! `idle` and `h3`: N subscribers that receive nothing, over HTTP/1.1 or
//! multiplexed over HTTP/3 connections. Measures set-up rate and server
//! memory per subscriber (and, on HTTP/3, per extra stream).

use super::{subscribe, topic, Context};
use crate::fleet::{Subscription, Transport};
use crate::report::Report;
use crate::tally::Tally;
use std::sync::Arc;

pub async fn run(ctx: &Context, transport: Transport) -> anyhow::Result<Report> {
    let name = match transport {
        Transport::Http3 { .. } => "h3",
        _ => "idle",
    };
    if matches!(transport, Transport::Http3 { .. }) != ctx.subscribe.is_https() {
        anyhow::bail!("the h3 scenario, and only it, takes an https:// subscribe URL");
    }
    let mut report = Report::new(&ctx.args.server, name);
    let subs = (0..ctx.args.subs)
        .map(|_| Subscription {
            url: ctx.subscribe.clone(),
            topic: topic("idle", 0),
        })
        .collect::<Vec<_>>();
    let tally = Arc::new(Tally::new(vec![0; subs.len()], 0));
    let fleet = subscribe(
        ctx,
        &mut report,
        subs,
        tally.clone(),
        &ctx.options(transport),
    )
    .await?;
    if fleet.ended() > 0 {
        report.fail(format!("server ended {} idle subscriptions", fleet.ended()));
    }
    if tally.delivered() > 0 {
        report.fail(format!("{} unexpected events", tally.delivered()));
    }
    fleet.close().await;
    Ok(report)
}
