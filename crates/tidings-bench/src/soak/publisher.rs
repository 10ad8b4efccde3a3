//! Publishing each stream's events in order, at a steady total rate.
//!
//! Every stream belongs to one publishing connection, which waits for each
//! answer before sending the next event: the hub receives a stream's events
//! in order, so subscribers may demand them in order. An event is counted
//! as published only once the hub has accepted it; a refused one is retried
//! with the same number.

use super::ledger::Ledger;
use super::plan::Plan;
use super::subscriber::encode;
use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Publishes for `duration` seconds; returns how many events were accepted.
pub async fn run(plan: &Plan, ledger: &Ledger, token: &str, duration: f64) -> u64 {
    let start = Instant::now();
    let _ = ledger.epoch.set(start);
    let connections = plan.publishers.clamp(1, plan.streams as usize);
    let until = start + Duration::from_secs_f64(duration);
    let workers = (0..connections).map(|c| {
        let streams: Vec<u32> = (0..plan.streams)
            .filter(|s| *s as usize % connections == c)
            .collect();
        let rate = plan.rate * streams.len() as f64 / plan.streams as f64;
        publish_streams(plan, ledger, token, streams, rate, start, until)
    });
    futures_util::future::join_all(workers).await;
    ledger.total_published()
}

async fn publish_streams(
    plan: &Plan,
    ledger: &Ledger,
    token: &str,
    streams: Vec<u32>,
    rate: f64,
    start: Instant,
    until: Instant,
) {
    let mut conn = None;
    for k in 0u64.. {
        let due = start + Duration::from_secs_f64(k as f64 / rate);
        // A publisher behind its pace stops on time all the same.
        if due >= until || Instant::now() >= until {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        let stream = streams[k as usize % streams.len()];
        let seq = ledger.published(stream);
        let sent = tokio::time::timeout(
            ANSWER_TIMEOUT,
            publish_one(plan, &mut conn, token, stream, seq),
        )
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within {ANSWER_TIMEOUT:?}")));
        match sent {
            Ok(()) => ledger.count_published(stream),
            Err(e) => {
                if ledger.counts.failed_publishes.fetch_add(1, Relaxed) == 0 {
                    eprintln!("soak: publish failed: {e:#}");
                }
                conn = None;
            }
        }
    }
}

async fn publish_one(
    plan: &Plan,
    conn: &mut Option<http1::SendRequest<Full<Bytes>>>,
    token: &str,
    stream: u32,
    seq: u64,
) -> anyhow::Result<()> {
    let send = match conn {
        Some(send) => send,
        None => {
            let socket = TcpStream::connect(plan.hub.addr()).await?;
            socket.set_nodelay(true)?;
            let (send, connection) = http1::handshake(TokioIo::new(socket)).await?;
            tokio::spawn(connection);
            conn.insert(send)
        }
    };
    send.ready().await.context("publishing connection closed")?;
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("topic", &plan.topic(stream, seq))
        .append_pair("data", &encode(stream, seq, &plan.pad))
        .finish();
    let request = http::Request::post(plan.hub.path_for(""))
        .header("host", plan.hub.authority())
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::from(body)))?;
    let response = send.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    anyhow::ensure!(
        status.is_success(),
        "publish answered {status}: {}",
        String::from_utf8_lossy(&body[..body.len().min(200)])
    );
    Ok(())
}
