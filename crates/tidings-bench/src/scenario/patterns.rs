//! `patterns`: half the subscribers use a URL pattern
//! (`https://example.com/p/<i>/:kind/*`), half a URI template
//! (`https://example.com/t/<j>/{id}`), while events go to a stream of
//! varied topics: each subscriber's own, plus topics of the same shapes
//! that no subscriber matches. A subscriber receiving a foreign event fails
//! the run as surely as one missing its own.

use super::{publish_and_drain, subscribe, Context, Load};
use crate::fleet::{Subscription, Transport};
use crate::report::Report;
use crate::tally::Tally;
use crate::target::Template;
use anyhow::Context as _;
use std::sync::Arc;

const KINDS: [&str; 3] = ["item", "user", "order"];

pub async fn run(ctx: &Context) -> anyhow::Result<Report> {
    let mut report = Report::new(&ctx.args.server, "patterns");
    let pattern_url = ctx
        .args
        .pattern_url
        .as_deref()
        .context("the patterns scenario needs --pattern-url")?;
    let pattern_url = Template::parse(pattern_url)?;
    let urlpatterns = (ctx.args.subs / 2).max(1);
    let templates = (ctx.args.subs - ctx.args.subs / 2).max(1);
    let subscribed = urlpatterns + templates;

    let subs = (0..urlpatterns)
        .map(|i| Subscription {
            url: pattern_url.clone(),
            topic: format!("https://example.com/p/{i}/:kind/*"),
        })
        .chain((0..templates).map(|j| Subscription {
            url: ctx.subscribe.clone(),
            topic: format!("https://example.com/t/{j}/{{id}}"),
        }))
        .collect::<Vec<_>>();
    let tally = Arc::new(Tally::new(0..subscribed as u32, 0));
    let fleet = subscribe(
        ctx,
        &mut report,
        subs,
        tally.clone(),
        &ctx.options(Transport::Http1),
    )
    .await?;
    if report.reason.is_none() {
        // One in five events goes to a topic nobody matches.
        let noise = subscribed as u32;
        let cycle = (subscribed + subscribed / 4).max(subscribed + 1) as u64;
        let load = Load {
            streams: noise + 1,
            events: ctx.events(),
            rate: ctx.args.rate,
            pick: |i: u64| {
                let slot = (i % cycle) as usize;
                let kind = KINDS[(i / cycle) as usize % KINDS.len()];
                if slot < urlpatterns {
                    (
                        slot as u32,
                        format!("https://example.com/p/{slot}/{kind}/{i}"),
                    )
                } else if slot < subscribed {
                    let j = slot - urlpatterns;
                    (slot as u32, format!("https://example.com/t/{j}/{i}"))
                } else if i.is_multiple_of(2) {
                    let unknown = urlpatterns + slot;
                    (noise, format!("https://example.com/p/{unknown}/{kind}/{i}"))
                } else {
                    let unknown = templates + slot;
                    (noise, format!("https://example.com/t/{unknown}/{i}"))
                }
            },
        };
        publish_and_drain(ctx, &mut report, &fleet, &tally, load).await?;
    }
    fleet.close().await;
    Ok(report)
}
