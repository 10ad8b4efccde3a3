//! One soak subscriber: opens its stream, checks every event against its
//! position in the stream, and at its moments of churn either reconnects or
//! stops reading; whenever its stream ends it resumes with the id of the
//! last event it received as `Last-Event-ID`.
//!
//! A slow reader stops reading on a fresh connection: on one that has
//! carried a burst (a replay after its last disconnection), Linux has grown
//! the hub's send buffer to megabytes, which would hold a slow stream's
//! events for many minutes before the hub's own queue saw any.

use super::ledger::{Arrival, Ledger};
use super::plan::{Churn, Plan};
use crate::chunked::Decoder;
use crate::h1;
use crate::payload::unix_nanos;
use crate::sse::{Event, Parser};
use anyhow::Context;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Read buffer: the response head, or a few events.
const BUF: usize = 4096;
/// Longest wait for a subscription to be answered.
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause before reconnecting after a refusal or a closed stream.
const RETRY: Duration = Duration::from_millis(200);

/// Why a connection ended.
enum End {
    /// This subscriber's planned reconnection.
    Churned,
    /// Its turn to stop reading, on a fresh connection.
    ToPause,
    /// The hub closed the stream (or it broke); `paused` when the
    /// subscriber had stopped reading on it.
    Closed { paused: bool },
}

/// Where this subscriber stands in its stream and its churn plan.
struct Position {
    index: usize,
    stream: u32,
    last_id: Option<String>,
    next_period: u64,
    /// Stop reading as soon as the next connection opens.
    pause_first: bool,
}

pub async fn run(index: usize, plan: Arc<Plan>, ledger: Arc<Ledger>, stopping: Arc<AtomicBool>) {
    let stream = plan.stream_of(index);
    let path = plan.subscription_path(stream);
    let mut at = Position {
        index,
        stream,
        last_id: None,
        next_period: 0,
        pause_first: false,
    };
    let mut buf = vec![0u8; BUF];
    loop {
        let opened = tokio::time::timeout(
            OPEN_TIMEOUT,
            open(&plan, index, &path, at.last_id.as_deref(), &mut buf),
        )
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("not answered within {OPEN_TIMEOUT:?}")));
        let (socket, head) = match opened {
            Ok(opened) => opened,
            Err(_) => {
                ledger.counts.failed_connects.fetch_add(1, Relaxed);
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        ledger.opened();
        let end = follow(&plan, &ledger, &stopping, &mut at, socket, head, &mut buf).await;
        ledger.closed();
        match end {
            End::Churned => ledger.counts.reconnects.fetch_add(1, Relaxed),
            End::ToPause => 0,
            End::Closed { paused: true } => ledger.counts.slow_resumes.fetch_add(1, Relaxed),
            End::Closed { paused: false } => {
                tokio::time::sleep(RETRY).await;
                ledger.counts.unexpected_ends.fetch_add(1, Relaxed)
            }
        };
    }
}

/// The response head as read: where the body starts, how much of the
/// buffer is filled, and whether the body is chunked.
type Head = (usize, usize, bool);

async fn open(
    plan: &Plan,
    index: usize,
    path: &str,
    last_id: Option<&str>,
    buf: &mut [u8],
) -> anyhow::Result<(TcpStream, Head)> {
    let _turn = plan.connecting.acquire().await?;
    let narrow = plan.is_slow(index).then_some(plan.recv_buffer);
    let mut socket = plan
        .sources
        .connect_narrow(index, plan.hub.addr(), narrow)
        .await
        .context("connecting")?;
    let headers: Vec<(&str, &str)> = last_id
        .map(|id| ("Last-Event-ID", id))
        .into_iter()
        .collect();
    socket
        .write_all(&h1::request(plan.hub.authority(), path, &headers))
        .await?;
    let head = h1::read_head(&mut socket, buf).await?;
    Ok((socket, head))
}

/// Reads the stream until it ends or this subscriber's churn ends it.
async fn follow(
    plan: &Plan,
    ledger: &Ledger,
    stopping: &AtomicBool,
    at: &mut Position,
    mut socket: TcpStream,
    (body_start, filled, chunked): Head,
    buf: &mut [u8],
) -> End {
    let connected_at = unix_nanos();
    let mut decoder = chunked.then(Decoder::default);
    let mut parser = Parser::default();
    buf.copy_within(body_start..filled, 0);
    let mut raw = filled - body_start;
    let mut pending = 0;
    let paused = std::mem::take(&mut at.pause_first);
    if paused {
        ledger.counts.pauses.fetch_add(1, Relaxed);
        pause(plan.slow_pause, stopping).await;
    }
    let mut planned = None;
    loop {
        let decoded = match decoder.as_mut() {
            Some(d) => match d.decode(&mut buf[pending..pending + raw]) {
                Ok(n) => n,
                Err(_) => return End::Closed { paused },
            },
            None => raw,
        };
        pending += decoded;
        let used = parser.feed(&buf[..pending], |e| {
            receive(ledger, at, &e, (!paused).then_some(connected_at))
        });
        buf.copy_within(used..pending, 0);
        pending -= used;
        if pending == buf.len() || decoder.as_ref().is_some_and(Decoder::is_done) {
            return End::Closed { paused };
        }
        if planned.is_none() && !stopping.load(Relaxed) {
            planned = next_churn(plan, ledger, at);
        }
        let wake = planned.map_or_else(|| Instant::now() + Duration::from_secs(1), |(_, t, _)| t);
        raw = tokio::select! {
            read = socket.read(&mut buf[pending..]) => match read {
                Ok(0) | Err(_) => return End::Closed { paused },
                Ok(n) => n,
            },
            _ = tokio::time::sleep_until(wake) => {
                if let Some((period, _, churn)) = planned.take() {
                    at.next_period = period + 1;
                    // Without an id to resume from, a reconnection would
                    // miss events; such a turn is skipped.
                    let can_resume = at.last_id.is_some();
                    match churn {
                        _ if stopping.load(Relaxed) || !can_resume => {}
                        Churn::Reconnect => return End::Churned,
                        Churn::Pause => {
                            at.pause_first = true;
                            return End::ToPause;
                        }
                    }
                }
                0
            }
        };
    }
}

/// This subscriber's next churn and when it is due, once publishing has started.
fn next_churn(plan: &Plan, ledger: &Ledger, at: &Position) -> Option<(u64, Instant, Churn)> {
    let epoch = *ledger.epoch.get()?;
    let elapsed = epoch.elapsed().as_secs_f64();
    let from = at.next_period.max(plan.period_after(at.index, elapsed));
    let (period, seconds, churn) = plan.next_churn(at.index, from)?;
    Some((
        period,
        (epoch + Duration::from_secs_f64(seconds)).into(),
        churn,
    ))
}

/// Stops reading for `length`, or until the run is stopping.
async fn pause(length: Duration, stopping: &AtomicBool) {
    let until = Instant::now() + length;
    while Instant::now() < until && !stopping.load(Relaxed) {
        tokio::time::sleep(Duration::from_secs(1).min(until - Instant::now())).await;
    }
}

/// Checks one event; `live_since` is when the connection opened, if
/// latency is to be recorded (not while catching up after a pause).
fn receive(ledger: &Ledger, at: &mut Position, event: &Event<'_>, live_since: Option<u64>) {
    let Some((stream, seq, sent)) = decode(event.data) else {
        ledger.counts.foreign.fetch_add(1, Relaxed);
        return;
    };
    if stream != at.stream {
        ledger.counts.foreign.fetch_add(1, Relaxed);
        return;
    }
    if ledger.arrive(at.index, seq) == Arrival::Duplicate {
        return;
    }
    at.last_id = Some(String::from_utf8_lossy(event.id).into_owned());
    // Events sent before this connection opened are a replay, whose delay
    // is the reconnection's, not the hub's.
    if live_since.is_some_and(|since| sent >= since) {
        ledger.record_latency(unix_nanos().saturating_sub(sent) / 1000);
    }
}

/// The data of a soak event: `<stream> <seq> <unix-nanos> <padding>`.
pub fn decode(data: &[u8]) -> Option<(u32, u64, u64)> {
    let text = std::str::from_utf8(data).ok()?;
    let mut parts = text.splitn(4, ' ');
    Some((
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
    ))
}

/// The data of event `seq` of `stream`, stamped now.
pub fn encode(stream: u32, seq: u64, pad: &str) -> String {
    format!("{stream} {seq} {} {pad}", unix_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip() {
        let data = encode(3, 9, "xx");
        let (stream, seq, sent) = decode(data.as_bytes()).unwrap();
        assert_eq!((stream, seq), (3, 9));
        assert!(sent > 0);
        assert_eq!(decode(b"hello"), None);
    }
}
