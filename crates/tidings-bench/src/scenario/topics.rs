//! `topics`: N subscribers each on its own topic, R events/s spread
//! round-robin over the topics.

use super::{publish_and_drain, subscribe, topic, Context, Load};
use crate::fleet::{Subscription, Transport};
use crate::report::Report;
use crate::tally::Tally;
use std::sync::Arc;

pub async fn run(ctx: &Context) -> anyhow::Result<Report> {
    let mut report = Report::new(&ctx.args.server, "topics");
    let n = ctx.args.subs.max(1);
    let subs = (0..n)
        .map(|i| Subscription {
            url: ctx.subscribe.clone(),
            topic: topic("topic", i),
        })
        .collect::<Vec<_>>();
    let tally = Arc::new(Tally::new(0..n as u32, 0));
    let fleet = subscribe(
        ctx,
        &mut report,
        subs,
        tally.clone(),
        &ctx.options(Transport::Http1),
    )
    .await?;
    if report.reason.is_none() {
        let load = Load {
            streams: n as u32,
            events: ctx.events(),
            rate: ctx.args.rate,
            pick: |i| {
                let t = (i % n as u64) as usize;
                (t as u32, topic("topic", t))
            },
        };
        publish_and_drain(ctx, &mut report, &fleet, &tally, load).await?;
    }
    fleet.close().await;
    Ok(report)
}
