//! Topic index benchmarks: what one publication to an exact topic costs
//! with 1 and with 100,000 distinct topics in the index, and what pattern
//! subscribers cost per event, as ratios measured in one run.
//!
//! Run with `cargo bench -p tidings --bench index`. Prints Markdown for
//! docs/benchmarks.md.

use std::future::poll_fn;
use std::sync::Arc;
use std::time::Instant;
use tidings::auth::AuthConfig;
use tidings::matcher::MatchKind;
use tidings::{EventStream, Hub, HubConfig, MemoryHistory, SubscribeRequest, Update};

const EVENTS: usize = 20_000;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        println!("| index holds | publications/s to one exact topic | ratio to 1 topic |");
        println!("|---|---:|---:|");
        let alone = exact(0).await;
        for others in [0, 100_000] {
            let rate = if others == 0 {
                alone
            } else {
                exact(others).await
            };
            println!(
                "| {} topics | {rate:.0} | {:.2} |",
                others + 1,
                rate / alone
            );
        }
        println!();
        println!(
            "| pattern subscribers | publications/s, each matching one of them | ratio to 1 |"
        );
        println!("|---|---:|---:|");
        let one = patterns(1).await;
        for count in [1, 1_000, 10_000] {
            let rate = if count == 1 {
                one
            } else {
                patterns(count).await
            };
            println!(
                "| {count} distinct URI templates | {rate:.0} | {:.2} |",
                rate / one
            );
        }
    });
}

async fn hub() -> Hub {
    let url = "http://127.0.0.1:1/.well-known/mercure"
        .parse()
        .expect("url");
    let history = Arc::new(MemoryHistory::new(10_000, 64 << 20));
    Hub::start(HubConfig::new(url, AuthConfig::default()), history)
        .await
        .expect("hub")
}

async fn subscribe(hub: &Hub, kind: MatchKind, matcher: String) -> EventStream {
    hub.subscribe(SubscribeRequest {
        matchers: vec![(kind, matcher)],
        ..SubscribeRequest::default()
    })
    .await
    .expect("subscription")
}

/// Publications per second to a topic with one subscriber, with `others`
/// subscribers on other exact topics.
async fn exact(others: usize) -> f64 {
    let hub = hub().await;
    let mut _others = Vec::with_capacity(others);
    for n in 0..others {
        let matcher = format!("https://example.com/other/{n}");
        _others.push(subscribe(&hub, MatchKind::Exact, matcher).await);
    }
    let target = subscribe(&hub, MatchKind::Exact, "https://example.com/target".into()).await;
    rate(&hub, target, |_| "https://example.com/target".into()).await
}

/// Publications per second when `count` distinct templates are subscribed
/// and every event goes to a new topic matching one of them.
async fn patterns(count: usize) -> f64 {
    let hub = hub().await;
    let mut streams = Vec::with_capacity(count);
    for n in 0..count {
        let matcher = format!("https://example.com/t/{n}/{{id}}");
        streams.push(subscribe(&hub, MatchKind::Selector, matcher).await);
    }
    let target = streams.swap_remove(0);
    rate(&hub, target, |i| format!("https://example.com/t/0/{i}")).await
}

/// Publishes `EVENTS` updates and drains them from `stream`.
async fn rate(hub: &Hub, mut stream: EventStream, topic: impl Fn(usize) -> String) -> f64 {
    let reader = tokio::spawn(async move {
        let mut received = 0;
        while received < EVENTS {
            match poll_fn(|cx| stream.poll_batch(cx)).await {
                Some(frames) => {
                    received += frames
                        .iter()
                        .filter(|f| {
                            f.starts_with(b"id: ")
                                && f.len() > 20
                                && f.windows(6).any(|w| w == b"data: ")
                        })
                        .count()
                }
                None => break,
            }
        }
        received
    });
    let started = Instant::now();
    for i in 0..EVENTS {
        hub.publish(Update::new(topic(i), "x"))
            .await
            .expect("publish");
    }
    assert_eq!(
        reader.await.expect("reader"),
        EVENTS,
        "every event delivered"
    );
    EVENTS as f64 / started.elapsed().as_secs_f64()
}
