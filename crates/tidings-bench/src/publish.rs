//! Publishing events at a steady rate through each server's own API.
//!
//! Events are handed to a small pool of keep-alive HTTP/1.1 connections,
//! each sending one request at a time: like several application servers
//! publishing at once, and so not bound to one server's answer time per
//! event. Events of one stream may therefore reach the server slightly out
//! of order, which receivers allow for (see `tally`). Each payload is
//! stamped just before its request is written, so time an event spends
//! queued inside this tool does not count against the server.

use crate::payload::Payload;
use crate::target::Template;
use anyhow::Context;
use bytes::Bytes;
use clap::ValueEnum;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Mutex};
use tokio::task::JoinSet;

/// Longest wait for one publish answer before it counts as failed.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// How a server takes publications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Method {
    /// Mercure: form-encoded `topic` and `data`, bearer token.
    Mercure,
    /// Nchan publisher location: the raw data as body.
    Nchan,
    /// Pushpin's HTTP control API: JSON items with an `http-stream` format.
    Pushpin,
    /// Generic `POST ...?topic=<topic>` with the raw data as body.
    Post,
}

/// Where and how to publish.
#[derive(Debug, Clone)]
pub struct Target {
    pub method: Method,
    pub url: Template,
    /// Bearer token, for Mercure.
    pub token: Option<String>,
}

impl Target {
    fn request(&self, topic: &str, data: &str) -> anyhow::Result<http::Request<Full<Bytes>>> {
        let path = self.url.path_for(topic);
        let builder = http::Request::post(path).header("host", self.url.authority());
        let (content_type, body) = match self.method {
            Method::Mercure => (
                "application/x-www-form-urlencoded",
                form_urlencoded::Serializer::new(String::new())
                    .append_pair("topic", topic)
                    .append_pair("data", data)
                    .finish(),
            ),
            Method::Pushpin => (
                "application/json",
                serde_json::json!({ "items": [{
                    "channel": topic,
                    "formats": { "http-stream": {
                        "content": format!("event: message\ndata: {data}\n\n")
                    }}
                }]})
                .to_string(),
            ),
            Method::Nchan | Method::Post => ("text/plain", data.to_string()),
        };
        let builder = builder.header("content-type", content_type);
        let builder = match &self.token {
            Some(token) => builder.header("authorization", format!("Bearer {token}")),
            None => builder,
        };
        Ok(builder.body(Full::new(Bytes::from(body)))?)
    }
}

/// One event to publish.
#[derive(Debug)]
struct Job {
    stream: u32,
    seq: u64,
    topic: String,
}

/// What a publishing run achieved.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub attempted: u64,
    pub failed: u64,
    pub elapsed: Duration,
}

/// Per-stream counts of events the server accepted, and how long the
/// accepted ones took to be answered.
#[derive(Debug)]
pub struct Published {
    counts: Box<[AtomicU64]>,
    answers: std::sync::Mutex<Histogram<u64>>,
}

impl Published {
    fn new(streams: u32) -> Published {
        Published {
            counts: (0..streams).map(|_| AtomicU64::new(0)).collect(),
            answers: std::sync::Mutex::new(
                Histogram::new_with_bounds(1, 60_000_000, 3)
                    .expect("static histogram bounds are valid"),
            ),
        }
    }

    pub fn get(&self, stream: u32) -> u64 {
        self.counts[stream as usize].load(Relaxed)
    }

    /// Every stream's count.
    pub fn counts(&self) -> Vec<u64> {
        self.counts.iter().map(|c| c.load(Relaxed)).collect()
    }

    /// p50 and p99 of the time from writing a publication to its answer, in µs.
    pub fn answer_us(&self) -> (u64, u64) {
        let hist = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        (hist.value_at_quantile(0.5), hist.value_at_quantile(0.99))
    }
}

/// How many events to publish, how fast, and for how long at most.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub events: u64,
    /// Events per second; 0: as fast as the connections go.
    pub rate: f64,
    /// No event is handed out after this long.
    pub until: Option<Duration>,
}

/// Publishes `events` events at `rate` per second (0: as fast as the
/// connections go) over `connections` connections to one target.
/// `pick(i)` gives the stream and topic of event `i`; streams must be
/// below `streams`.
pub async fn run(
    target: &Target,
    connections: usize,
    streams: u32,
    events: u64,
    rate: f64,
    pick: impl FnMut(u64) -> (u32, String),
) -> anyhow::Result<(Outcome, Arc<Published>)> {
    let pace = Pace {
        events,
        rate,
        until: None,
    };
    run_spread(
        std::slice::from_ref(target),
        connections,
        streams,
        pace,
        pick,
    )
    .await
}

/// Like [`run`], with connection `j` publishing to `targets[j % len]`
/// (the nodes of a cluster), and a time limit.
pub async fn run_spread(
    targets: &[Target],
    connections: usize,
    streams: u32,
    pace: Pace,
    mut pick: impl FnMut(u64) -> (u32, String),
) -> anyhow::Result<(Outcome, Arc<Published>)> {
    anyhow::ensure!(!targets.is_empty(), "no publication target");
    let published = Arc::new(Published::new(streams));
    let failed = Arc::new(AtomicU64::new(0));
    let mut workers = JoinSet::new();
    // A short queue: when the server falls behind, the pacing loop waits
    // instead of piling events up, and the achieved rate shows it.
    let (sender, jobs) = mpsc::channel(connections.max(1));
    let jobs = Arc::new(Mutex::new(jobs));
    for j in 0..connections.max(1) {
        workers.spawn(worker(
            targets[j % targets.len()].clone(),
            jobs.clone(),
            published.clone(),
            failed.clone(),
        ));
    }

    let (events, rate) = (pace.events, pace.rate);
    let mut attempted = 0;
    let mut next_seq = vec![0u64; streams as usize];
    let start = Instant::now();
    for i in 0..events {
        if pace.until.is_some_and(|limit| start.elapsed() >= limit) {
            break;
        }
        attempted += 1;
        if rate > 0.0 {
            tokio::time::sleep_until((start + Duration::from_secs_f64(i as f64 / rate)).into())
                .await;
        }
        let (stream, topic) = pick(i);
        let seq = &mut next_seq[stream as usize];
        let job = Job {
            stream,
            seq: *seq,
            topic,
        };
        *seq += 1;
        sender
            .send(job)
            .await
            .context("publisher connection tasks ended")?;
    }
    drop(sender);
    while let Some(done) = workers.join_next().await {
        done?;
    }
    let outcome = Outcome {
        attempted,
        failed: failed.load(Relaxed),
        elapsed: start.elapsed(),
    };
    Ok((outcome, published))
}

async fn worker(
    target: Target,
    jobs: Arc<Mutex<mpsc::Receiver<Job>>>,
    published: Arc<Published>,
    failed: Arc<AtomicU64>,
) {
    let mut conn: Option<http1::SendRequest<Full<Bytes>>> = None;
    loop {
        let Some(job) = jobs.lock().await.recv().await else {
            break;
        };
        let sent = Instant::now();
        let result = tokio::time::timeout(ANSWER_TIMEOUT, publish_one(&target, &mut conn, &job))
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within {ANSWER_TIMEOUT:?}")));
        match result {
            Ok(()) => {
                let us = sent.elapsed().as_micros() as u64;
                published
                    .answers
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .saturating_record(us.max(1));
                published.counts[job.stream as usize].fetch_add(1, Relaxed);
            }
            Err(e) => {
                if failed.fetch_add(1, Relaxed) == 0 {
                    eprintln!("publish failed: {e:#}");
                }
                conn = None;
            }
        }
    }
}

async fn publish_one(
    target: &Target,
    conn: &mut Option<http1::SendRequest<Full<Bytes>>>,
    job: &Job,
) -> anyhow::Result<()> {
    // A server may close a keep-alive connection between two requests
    // (Pushpin's control API does); that is no failure, just a reconnect.
    if let Some(send) = conn.as_mut() {
        if send.ready().await.is_err() {
            *conn = None;
        }
    }
    let send = match conn {
        Some(send) => send,
        None => {
            let stream = TcpStream::connect(target.url.addr()).await?;
            stream.set_nodelay(true)?;
            let (send, connection) = http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(connection);
            conn.insert(send)
        }
    };
    send.ready().await?;
    let data = Payload::now(job.stream, job.seq).encode();
    let response = send
        .send_request(target.request(&job.topic, &data)?)
        .await?;
    let status = response.status();
    let closing = response
        .headers()
        .get(http::header::CONNECTION)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
    let body = response.into_body().collect().await?.to_bytes();
    if closing {
        *conn = None;
    }
    if !status.is_success() {
        anyhow::bail!(
            "publish answered {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(method: Method, url: &str) -> Target {
        Target {
            method,
            url: Template::parse(url).unwrap(),
            token: Some("tok".into()),
        }
    }

    async fn body_of(req: http::Request<Full<Bytes>>) -> String {
        let bytes = req.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn mercure_form() {
        let t = target(Method::Mercure, "http://127.0.0.1:1/.well-known/mercure");
        let req = t.request("https://e.com/a b", "1 2 3").unwrap();
        assert_eq!(req.uri(), "/.well-known/mercure");
        assert_eq!(req.headers()["authorization"], "Bearer tok");
        assert_eq!(
            body_of(req).await,
            "topic=https%3A%2F%2Fe.com%2Fa+b&data=1+2+3"
        );
    }

    #[tokio::test]
    async fn pushpin_item() {
        let t = target(Method::Pushpin, "http://127.0.0.1:5561/publish/");
        let body = body_of(t.request("c", "1 2 3").unwrap()).await;
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["items"][0]["channel"], "c");
        assert_eq!(
            v["items"][0]["formats"]["http-stream"]["content"],
            "event: message\ndata: 1 2 3\n\n"
        );
    }

    #[tokio::test]
    async fn raw_post_puts_topic_in_url() {
        let t = target(Method::Post, "http://127.0.0.1:1/publish?topic={topic}");
        let req = t.request("a/b", "x").unwrap();
        assert_eq!(req.uri(), "/publish?topic=a%2Fb");
        assert_eq!(body_of(req).await, "x");
    }
}
