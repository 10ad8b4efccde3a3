//! Opening and holding many subscriptions at once.
//!
//! A fleet is a set of subscription tasks feeding one [`Tally`]. Opening
//! is throttled by a semaphore so that a burst of SYNs does not overflow a
//! server's accept backlog and turn into one-second retransmit stalls that
//! would measure the kernel instead of the server.

use crate::h1;
use crate::h2;
use crate::h3;
use crate::source::Sources;
use crate::tally::Tally;
use crate::target::Template;
use crate::ws;
use ::h2::client::SendRequest;
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

/// One subscription to open.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub url: Template,
    pub topic: String,
}

/// How subscriptions reach the server.
#[derive(Debug, Clone, Copy)]
pub enum Transport {
    /// One HTTP/1.1 connection per subscription.
    Http1,
    /// Subscriptions spread over this many HTTP/2 connections.
    Http2 { connections: usize },
    /// Subscriptions spread over this many HTTP/3 connections.
    Http3 { connections: usize },
}

#[derive(Debug, Clone)]
pub struct Options {
    pub transport: Transport,
    pub sources: Sources,
    /// Connections (or streams) being opened at the same time.
    pub concurrency: usize,
    pub timeout: Duration,
    pub headers: Vec<(String, String)>,
    /// For `ws://` subscriptions: the message that subscribes, with
    /// `{topic}` where the topic goes (JSON-escaped); none when the URL
    /// subscribes.
    pub subscribe_message: Option<String>,
}

/// How opening went.
#[derive(Debug, Clone)]
pub struct Setup {
    pub opened: usize,
    pub failed: usize,
    pub elapsed: Duration,
    pub first_error: Option<String>,
}

pub struct Fleet {
    tasks: JoinSet<()>,
    /// Subscriptions that ended after they had been established.
    ended: Arc<AtomicU64>,
    /// The HTTP/2 connections subscriptions are spread over, if any.
    connections: Vec<SendRequest<Bytes>>,
    /// The HTTP/3 connections subscriptions are spread over, if any.
    quic: Vec<h3::Send>,
}

impl Fleet {
    /// Makes the connections that subscriptions will share: with HTTP/2,
    /// `connections` handshaken connections to `server`; with HTTP/1.1 none,
    /// as each subscription opens its own. Separate from [`Fleet::open`] so
    /// that what a connection costs and what a stream on it costs can be
    /// measured apart.
    pub async fn connect(server: SocketAddr, options: &Options) -> anyhow::Result<Fleet> {
        let mut fleet = Fleet {
            tasks: JoinSet::new(),
            ended: Arc::new(AtomicU64::new(0)),
            connections: Vec::new(),
            quic: Vec::new(),
        };
        match options.transport {
            Transport::Http1 => {}
            Transport::Http2 { connections } => {
                for i in 0..connections.max(1) {
                    let stream = options.sources.connect(i, server).await?;
                    let (send, driver) = h2::connect(stream).await?;
                    fleet.tasks.spawn(driver);
                    fleet.connections.push(send);
                }
            }
            Transport::Http3 { connections } => {
                let endpoint = h3::endpoint()?;
                for _ in 0..connections.max(1) {
                    let (send, driver) = h3::connect(&endpoint, server).await?;
                    fleet.tasks.spawn(driver);
                    fleet.quic.push(send);
                }
            }
        }
        Ok(fleet)
    }

    /// Opens `subs[i]` as subscriber `i` of `tally` and waits until every
    /// one is established or has failed, or `options.timeout` has passed.
    pub async fn open(
        &mut self,
        subs: Vec<Subscription>,
        tally: Arc<Tally>,
        options: &Options,
    ) -> anyhow::Result<Setup> {
        let total = subs.len();
        let start = Instant::now();
        let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<Result<(), String>>();
        let headers: Arc<[(String, String)]> = options.headers.clone().into();
        let mut setup = Setup {
            opened: 0,
            failed: 0,
            elapsed: Duration::ZERO,
            first_error: None,
        };
        {
            let opening = self.spawn_all(subs, tally, options, headers, ready_tx);
            let deadline = tokio::time::sleep(options.timeout);
            tokio::pin!(opening, deadline);
            let mut spawned = false;
            while setup.opened + setup.failed < total {
                tokio::select! {
                    done = &mut opening, if !spawned => {
                        done?;
                        spawned = true;
                    }
                    Some(result) = ready_rx.recv() => match result {
                        Ok(()) => setup.opened += 1,
                        Err(e) => {
                            setup.failed += 1;
                            setup.first_error.get_or_insert(e);
                        }
                    },
                    () = &mut deadline => {
                        setup.failed = total - setup.opened;
                        setup.first_error.get_or_insert(format!(
                            "not established within {:?}",
                            options.timeout
                        ));
                        break;
                    }
                }
            }
        }
        setup.elapsed = start.elapsed();
        Ok(setup)
    }

    /// Subscriptions that the server ended while they were expected to stay.
    pub fn ended(&self) -> u64 {
        self.ended.load(Relaxed)
    }

    /// Closes every subscription.
    pub async fn close(mut self) {
        self.tasks.shutdown().await;
    }

    async fn spawn_all(
        &mut self,
        subs: Vec<Subscription>,
        tally: Arc<Tally>,
        options: &Options,
        headers: Arc<[(String, String)]>,
        ready: mpsc::UnboundedSender<Result<(), String>>,
    ) -> anyhow::Result<()> {
        let permits = Arc::new(Semaphore::new(options.concurrency.max(1)));
        let connections = self.connections.clone();
        let quic = self.quic.clone();
        for (i, sub) in subs.into_iter().enumerate() {
            let permit = permits.clone().acquire_owned().await?;
            let tally = tally.clone();
            let headers = headers.clone();
            let ready = ready.clone();
            let ended = self.ended.clone();
            let sources = options.sources;
            let timeout = options.timeout;
            let message = options.subscribe_message.as_ref().map(|template| {
                let topic = serde_json::to_string(&sub.topic).unwrap_or_default();
                template.replace("{topic}", topic.trim_matches('"'))
            });
            let send =
                (!connections.is_empty()).then(|| connections[i % connections.len()].clone());
            let send_quic = (!quic.is_empty()).then(|| quic[i % quic.len()].clone());
            self.tasks.spawn(async move {
                let mut pending = Some((permit, ready));
                let signal = || {
                    if let Some((permit, ready)) = pending.take() {
                        drop(permit);
                        let _ = ready.send(Ok(()));
                    }
                };
                let on_event = |e: crate::sse::Event<'_>| tally.observe(i, e.data);
                let header_refs: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                let result = match (send, send_quic) {
                    (Some(send), _) => {
                        let url = sub.url.url_for(&sub.topic);
                        h2::subscribe(send, &url, &header_refs, signal, on_event).await
                    }
                    (None, Some(send)) => {
                        let url = sub.url.url_for(&sub.topic);
                        h3::subscribe(send, &url, &header_refs, signal, on_event).await
                    }
                    (None, None) => {
                        let request = h1::request(
                            sub.url.authority(),
                            &sub.url.path_for(&sub.topic),
                            &header_refs,
                        );
                        match tokio::time::timeout(timeout, sources.connect(i, sub.url.addr()))
                            .await
                        {
                            Ok(Ok(stream)) if sub.url.is_websocket() => {
                                let url = sub.url.url_for(&sub.topic);
                                let on_data = |data: &[u8]| tally.observe(i, data);
                                let message = message.as_deref();
                                ws::subscribe(stream, &url, message, &header_refs, signal, on_data)
                                    .await
                            }
                            Ok(Ok(stream)) => {
                                h1::subscribe(stream, &request, signal, on_event).await
                            }
                            Ok(Err(e)) => Err(e.into()),
                            Err(_) => Err(anyhow::anyhow!("connect timed out")),
                        }
                    }
                };
                match pending.take() {
                    Some((_, ready)) => {
                        let reason = match result {
                            Err(e) => format!("{e:#}"),
                            Ok(()) => "closed before answering".to_string(),
                        };
                        let _ = ready.send(Err(reason));
                    }
                    None => {
                        ended.fetch_add(1, Relaxed);
                    }
                }
            });
        }
        Ok(())
    }
}
