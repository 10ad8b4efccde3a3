//! `soak`: a long run under churn against one hub.
//!
//! Subscribers follow streams of events (an exact topic, a URL pattern or a
//! draft-07 URI template), a slice of them reconnects with `Last-Event-ID`
//! every period, another slice stops reading until the hub disconnects it
//! as slow and then resumes, while publishers send each stream's events in
//! order. Every subscriber checks that each event of its stream arrives
//! once and in order across its reconnections. A sampler writes the hub's
//! memory, descriptors, threads and the delivery figures to a CSV every few
//! seconds; the run fails on any loss, duplicate, failed publication, or
//! memory or descriptor growth after warm-up beyond the stated bounds.

mod args;
mod ledger;
mod metrics;
mod plan;
mod publisher;
mod sampler;
mod subscriber;
mod verdict;

pub use args::SoakArgs;

use crate::procfs::ProcSet;
use crate::token;
use ledger::Ledger;
use plan::Plan;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Runs the soak and returns whether it passed.
pub async fn run(args: SoakArgs) -> anyhow::Result<bool> {
    let plan = Arc::new(Plan::new(&args)?);
    let ledger = Arc::new(Ledger::new(plan.streams, plan.subs));
    let stopping = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let start = Instant::now();

    eprintln!(
        "soak: {} subscribers on {} streams, {} events/s for {} s",
        args.subs, args.streams, args.rate, args.duration
    );
    let mut subscribers = JoinSet::new();
    for index in 0..args.subs {
        subscribers.spawn(subscriber::run(
            index,
            plan.clone(),
            ledger.clone(),
            stopping.clone(),
        ));
    }
    let opened = ledger.wait_connected(args.subs, plan.setup_timeout).await;
    anyhow::ensure!(
        opened,
        "only {} of {} subscriptions opened within {:?}",
        ledger.connected(),
        args.subs,
        plan.setup_timeout
    );
    eprintln!("soak: subscribed in {:.1} s", start.elapsed().as_secs_f64());
    // Let the hub register every subscription before the first event.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let server = ProcSet::new(args.pid.into_iter().collect(), false);
    let sampler = tokio::spawn(sampler::run(
        args.clone(),
        server,
        ledger.clone(),
        done.clone(),
    ));
    let publish_token = token::publisher(&args.jwt_key)?;
    let published = publisher::run(&plan, &ledger, &publish_token, args.duration).await;

    // Resume every paused reader and stop reconnecting, then give every
    // subscriber the chance to catch up with its stream.
    stopping.store(true, Relaxed);
    let caught_up = ledger
        .wait_caught_up(
            plan.subscriber_streams(),
            Duration::from_secs_f64(args.drain),
        )
        .await;
    done.store(true, Relaxed);
    let samples = sampler.await??;
    subscribers.abort_all();

    let verdict = verdict::judge(&args, &plan, &ledger, &samples, published, caught_up);
    eprint!("{verdict}");
    Ok(verdict.passed())
}
