//! `fanout` and `h2`: N subscribers on one topic, R events/s for D seconds,
//! over HTTP/1.1 or multiplexed over HTTP/2 connections.

use super::{publish_and_drain, subscribe, topic, Context, Load};
use crate::fleet::{Subscription, Transport};
use crate::report::Report;
use crate::tally::Tally;
use std::sync::Arc;

pub async fn run(ctx: &Context, transport: Transport) -> anyhow::Result<Report> {
    let name = match transport {
        Transport::Http1 => "fanout",
        Transport::Http2 { .. } => "h2",
        Transport::Http3 { .. } => "h3",
    };
    let mut report = Report::new(&ctx.args.server, name);
    let the_topic = topic("fanout", 0);
    let subs = (0..ctx.args.subs)
        .map(|_| Subscription {
            url: ctx.subscribe.clone(),
            topic: the_topic.clone(),
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
    if report.reason.is_none() {
        let load = Load {
            streams: 1,
            events: ctx.events(),
            rate: ctx.args.rate,
            pick: |_| (0, the_topic.clone()),
        };
        publish_and_drain(ctx, &mut report, &fleet, &tally, load).await?;
    }
    fleet.close().await;
    Ok(report)
}
