//! `idle`: N subscribers that receive nothing. Measures set-up rate and
//! server memory per subscriber.

use super::{subscribe, topic, Context};
use crate::fleet::{Subscription, Transport};
use crate::report::Report;
use crate::tally::Tally;
use std::sync::Arc;

pub async fn run(ctx: &Context) -> anyhow::Result<Report> {
    let mut report = Report::new(&ctx.args.server, "idle");
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
        &ctx.options(Transport::Http1),
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
