//! HTTP/3 connections (`--http3`): QUIC on the TLS port's number (UDP),
//! served with `quinn` and `h3`, one task per connection.
//!
//! The shape is HTTP/2's (`h2.rs`): the connection's task accepts request
//! streams and drives every exchange in one `FuturesUnordered`. An event
//! stream is opened, its head sent, and then only a small pump is left: the
//! subscriber's queue and the QUIC stream. The pump hands a batch to QUIC,
//! which takes it only within the client's flow-control window, so a client
//! that stops reading leaves frames in the bounded queue, and on overflow
//! the stream is reset. Every other request goes through the same axum
//! router as HTTP/1.1 and HTTP/2.

use super::h2::{head_with, strip_connection_headers};
use crate::config::HubConfig;
use crate::forwarded::Peer;
use crate::http::{read_body, subscribe, HubHttp, Reply};
use crate::stream::{concat, EventStream};
use axum::body::Body;
use bytes::{Buf, Bytes};
use futures_util::stream::{FuturesUnordered, StreamExt};
use h3::error::Code;
use h3::server::{RequestResolver, RequestStream};
use http::{header, Method, Request, Response};
use http_body::{Body as HttpBody, Frame};
use hyper::service::Service;
use hyper_util::service::TowerToHyperService;
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Request streams one client may have open at once, as on HTTP/2.
const MAX_CONCURRENT_STREAMS: u32 = 200;
/// Bytes QUIC may hold unacknowledged for one connection. Beyond the
/// client's window nothing is taken from a subscriber's queue anyway; this
/// bounds what a client that stops reading with a large window costs.
const SEND_WINDOW: u64 = 1 << 20;
/// Largest request head accepted, as on HTTP/1.1 and HTTP/2.
const MAX_HEADER_LIST: u64 = 64 * 1024;
/// How long a closing connection without requests waits for the client to
/// close it before closing it itself: closing abandons data not yet sent,
/// the ends of the last streams among it.
const LINGER: Duration = Duration::from_secs(1);

type Quic = h3_quinn::Connection;
type Stream = RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>;
type SendHalf = RequestStream<h3_quinn::SendStream<Bytes>, Bytes>;
type RecvHalf = RequestStream<h3_quinn::RecvStream, Bytes>;

/// The hub's HTTP/3 endpoint: a UDP socket speaking QUIC, bound before the
/// hub serves so that a taken port is an error at start.
pub struct Http3 {
    endpoint: quinn::Endpoint,
}

impl Http3 {
    /// Binds `address` (UDP) with the certificate of `tls`, whose ALPN is
    /// replaced by `h3`. A handshake must finish within `--head-timeout`;
    /// a connection is dropped once nothing was heard from the client for
    /// that long plus a keep-alive interval (an open stream gets a
    /// keep-alive, and so an acknowledgement, at least that often).
    pub fn bind(
        address: SocketAddr,
        tls: &rustls::ServerConfig,
        config: &HubConfig,
    ) -> io::Result<Http3> {
        let mut tls = tls.clone();
        tls.alpn_protocols = vec![b"h3".to_vec()];
        tls.max_early_data_size = 0;
        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
            .map_err(|error| io::Error::other(format!("TLS for HTTP/3: {error}")))?;
        let idle = config.limits.head_timeout + config.keep_alive;
        let mut transport = quinn::TransportConfig::default();
        transport
            .max_concurrent_bidi_streams(MAX_CONCURRENT_STREAMS.into())
            .max_idle_timeout(Some(idle.try_into().map_err(io::Error::other)?))
            .send_window(SEND_WINDOW);
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        server.transport_config(Arc::new(transport));
        let endpoint = quinn::Endpoint::server(server, address)?;
        Ok(Http3 { endpoint })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// The `Alt-Svc` value advertising this endpoint for a day.
    pub(super) fn alt_svc(&self) -> io::Result<http::HeaderValue> {
        let value = format!("h3=\":{}\"; ma=86400", self.local_addr()?.port());
        http::HeaderValue::try_from(value).map_err(io::Error::other)
    }
}

/// Accepts QUIC connections until `stopping`, then waits for those open to
/// end (their streams end with the hub's shutdown).
pub(super) async fn serve(
    http3: Http3,
    http: Arc<HubHttp>,
    router: axum::Router,
    stopping: CancellationToken,
) {
    let endpoint = http3.endpoint;
    let head_timeout = http.hub.config().limits.head_timeout;
    loop {
        let incoming = tokio::select! {
            incoming = endpoint.accept() => match incoming {
                Some(incoming) => incoming,
                None => break,
            },
            _ = stopping.cancelled() => break,
        };
        let (peer, slot) = http
            .admission
            .accept(incoming.remote_address().ip(), http.hub.metrics());
        let (http, router, stopping) = (http.clone(), router.clone(), stopping.clone());
        tokio::spawn(async move {
            if let Err(error) =
                connection(incoming, http, router, peer, stopping, head_timeout).await
            {
                tracing::debug!(%error, "HTTP/3 connection ended with an error");
            }
            drop(slot);
        });
    }
    endpoint.set_server_config(None);
    endpoint.wait_idle().await;
}

/// The work one request stands for, as on HTTP/2: the resolving of its
/// head (and the opening of an event stream) is a future that is freed
/// once done, so an open event stream keeps only its pump.
enum Exchange {
    Opening(Pin<Box<dyn Future<Output = Option<Exchange>> + Send>>),
    Running(Pin<Box<dyn Future<Output = ()> + Send>>),
}

impl Future for Exchange {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let exchange = self.get_mut();
        loop {
            return match exchange {
                Exchange::Opening(opening) => match ready!(opening.as_mut().poll(cx)) {
                    Some(opened) => {
                        *exchange = opened;
                        continue;
                    }
                    None => Poll::Ready(()),
                },
                Exchange::Running(running) => running.as_mut().poll(cx),
            };
        }
    }
}

/// Serves one QUIC connection until the client leaves, it stays without a
/// request for `idle_timeout`, or, once the hub stops, its last stream has
/// ended.
async fn connection(
    incoming: quinn::Incoming,
    http: Arc<HubHttp>,
    router: axum::Router,
    peer: Peer,
    stopping: CancellationToken,
    idle_timeout: Duration,
) -> io::Result<()> {
    let handshake = async {
        let quic = incoming.accept()?.await?;
        h3::server::builder()
            .max_field_section_size(MAX_HEADER_LIST)
            .build::<Quic, Bytes>(h3_quinn::Connection::new(quic))
            .await
            .map_err(io::Error::other)
    };
    let mut connection = tokio::time::timeout(idle_timeout, handshake)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no QUIC handshake in time"))??;
    let service = TowerToHyperService::new(router);
    let mut exchanges = FuturesUnordered::<Exchange>::new();
    let stop = stopping.cancelled();
    let idle = tokio::time::sleep(idle_timeout);
    tokio::pin!(stop, idle);
    let (mut closing, mut idle_armed) = (false, true);
    loop {
        // The idle clock runs from the moment the last request ended; once
        // closing, it gives the client a moment to take the ends of its
        // streams before the connection is closed.
        if exchanges.is_empty() && !idle_armed {
            let wait = if closing { LINGER } else { idle_timeout };
            idle.as_mut().reset(tokio::time::Instant::now() + wait);
        }
        idle_armed = exchanges.is_empty();
        tokio::select! {
            biased;
            Some(()) = exchanges.next(), if !exchanges.is_empty() => {}
            accepted = connection.accept() => match accepted {
                Ok(Some(resolver)) => {
                    exchanges.push(Exchange::Opening(Box::pin(exchange(
                        resolver,
                        http.clone(),
                        service.clone(),
                        peer,
                    ))));
                    // A connection past the per-address limit is answered,
                    // then closed.
                    if peer.refused && !closing {
                        closing = true;
                        connection.shutdown(1).await.map_err(io::Error::other)?;
                    }
                }
                // Closed by the client, or after a graceful shutdown.
                Ok(None) => return Ok(()),
                Err(error) if error.is_h3_no_error() => return Ok(()),
                Err(error) => return Err(io::Error::other(error)),
            },
            _ = &mut stop, if !closing => {
                (closing, idle_armed) = (true, false);
                connection.shutdown(0).await.map_err(io::Error::other)?;
            }
            _ = &mut idle, if idle_armed => {
                if closing {
                    // Dropping the connection closes it (H3_NO_ERROR).
                    return Ok(());
                }
                (closing, idle_armed) = (true, false);
                connection.shutdown(0).await.map_err(io::Error::other)?;
            }
        }
    }
}

/// Reads the request head, then starts what it asks for, after the
/// per-address limit (`--max-connections-per-ip`) has had its say: an
/// event stream's pump, or the router's answer.
async fn exchange(
    resolver: RequestResolver<Quic, Bytes>,
    http: Arc<HubHttp>,
    service: TowerToHyperService<axum::Router>,
    peer: Peer,
) -> Option<Exchange> {
    // A stream that never brings its head would keep the connection from
    // counting as idle: it gets `--head-timeout`, as a request head does on
    // TCP.
    let head_timeout = http.hub.config().limits.head_timeout;
    let (mut request, stream) =
        match tokio::time::timeout(head_timeout, resolver.resolve_request()).await {
            Ok(Ok(resolved)) => resolved,
            Ok(Err(error)) => {
                tracing::debug!(%error, "HTTP/3 request not read");
                return None;
            }
            Err(_) => {
                tracing::debug!("no HTTP/3 request head in time");
                return None;
            }
        };
    let event_stream = is_event_stream(&request, &http);
    if !event_stream && !is_query_stream(&request, &http) {
        // The router applies the per-address limit itself.
        request.extensions_mut().insert(peer);
        return Some(routed(request, stream, service));
    }
    let slot = match http
        .admission
        .request(&peer, request.headers(), http.hub.metrics())
    {
        Ok(slot) => slot,
        Err(reply) => return Some(Exchange::Running(Box::pin(send_reply(stream, reply)))),
    };
    let (send, recv) = stream.split();
    let form = if event_stream {
        None
    } else {
        let limits = &http.hub.config().limits;
        match read_body(Body::new(RequestBody::new(recv)), limits).await {
            Ok(form) => Some(form),
            Err(reply) => return Some(Exchange::Running(Box::pin(send_reply(send, reply)))),
        }
    };
    let query = request.uri().query().unwrap_or("").as_bytes();
    let opened = subscribe::open(&http, query, form.as_deref(), request.headers()).await;
    let pump = match opened {
        Ok(opened) => {
            let mut send = send;
            if let Err(error) = send.send_response(head_with(opened.headers)).await {
                tracing::debug!(%error, "HTTP/3 response not sent");
                return None;
            }
            pump(send, opened.stream)
        }
        Err(reply) => return Some(Exchange::Running(Box::pin(send_reply(send, *reply)))),
    };
    // Counted for as long as the stream lasts when a trusted proxy forwards
    // it under a per-address limit.
    Some(Exchange::Running(match slot {
        None => Box::pin(pump),
        Some(slot) => Box::pin(async move {
            pump.await;
            drop(slot);
        }),
    }))
}

fn is_event_stream(request: &Request<()>, http: &HubHttp) -> bool {
    request.method() == Method::GET && request.uri().path() == http.hub.config().path()
}

fn is_query_stream(request: &Request<()>, http: &HubHttp) -> bool {
    request.method().as_str() == "QUERY" && request.uri().path() == http.hub.config().path()
}

/// Sends an event stream. QUIC takes a batch only within the client's
/// flow-control window; while it waits, a queue that overflows resets the
/// stream, and the client resumes from its last event id. An async block
/// rather than an `async fn`, whose state would keep a second copy of its
/// arguments, and `h3`'s write futures boxed while in flight: an idle
/// stream keeps only the two halves it drives.
// Measured: as an `async fn` with the write inline, an idle stream cost
// 2.5 KB instead of 1.85 KB.
#[allow(clippy::manual_async_fn)]
fn pump(mut send: SendHalf, mut events: EventStream) -> impl Future<Output = ()> + Send {
    async move {
        while let Some(frames) = poll_fn(|cx| events.poll_batch(cx)).await {
            let sending = Box::pin(send.send_data(concat(frames)));
            // A unique borrow: `EventStream` is `Send` but not `Sync`.
            let watched = &mut events;
            let overflowed = poll_fn(move |cx| watched.outbox().poll_overflowed(cx));
            tokio::select! {
                sent = sending => if let Err(error) = sent {
                    tracing::debug!(%error, "HTTP/3 event stream ended with an error");
                    return;
                },
                () = overflowed => {
                    send.stop_stream(Code::H3_REQUEST_CANCELLED);
                    return;
                }
            }
        }
        if let Err(error) = Box::pin(send.finish()).await {
            tracing::debug!(%error, "HTTP/3 event stream not finished");
        }
    }
}

/// A request for the router: its body read from the QUIC stream, its
/// response sent back on it.
fn routed(
    request: Request<()>,
    stream: Stream,
    service: TowerToHyperService<axum::Router>,
) -> Exchange {
    let (send, recv) = stream.split();
    let request = request.map(|()| Body::new(RequestBody::new(recv)));
    let response = service.call(request);
    Exchange::Running(Box::pin(async move {
        let response = match response.await {
            Ok(response) => response,
            Err(infallible) => match infallible {},
        };
        if let Err(error) = send_response(send, response).await {
            tracing::debug!(%error, "HTTP/3 response not sent");
        }
    }))
}

async fn send_response(
    mut send: SendHalf,
    response: Response<Body>,
) -> Result<(), h3::error::StreamError> {
    let (mut parts, mut body) = response.into_parts();
    strip_connection_headers(&mut parts.headers);
    if let (Some(length), false) = (
        body.size_hint().exact(),
        parts.headers.contains_key(header::CONTENT_LENGTH),
    ) {
        parts.headers.insert(header::CONTENT_LENGTH, length.into());
    }
    send.send_response(Response::from_parts(parts, ())).await?;
    while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let Ok(frame) = frame else {
            send.stop_stream(Code::H3_INTERNAL_ERROR);
            return Ok(());
        };
        match frame.into_data() {
            Ok(data) => send.send_data(data).await?,
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    send.send_trailers(trailers).await?;
                }
            }
        }
    }
    send.finish().await
}

/// Answers with a reply that is not a stream.
async fn send_reply<S>(send: RequestStream<S, Bytes>, reply: Reply)
where
    S: h3::quic::SendStream<Bytes>,
{
    let mut send = send;
    let mut head = head_with(reply.headers);
    strip_connection_headers(head.headers_mut());
    *head.status_mut() = reply.status;
    head.headers_mut()
        .insert(header::CONTENT_LENGTH, reply.body.len().into());
    let sent = async {
        send.send_response(head).await?;
        if !reply.body.is_empty() {
            send.send_data(reply.body).await?;
        }
        send.finish().await
    };
    if let Err(error) = sent.await {
        tracing::debug!(%error, "HTTP/3 reply not sent");
    }
}

/// A request body read from the QUIC stream. Dropped with more to come (a
/// body refused as too large, say), it asks the client to stop sending
/// with `H3_NO_ERROR`, as RFC 9114 §4.1 has it, so the answer still counts.
struct RequestBody {
    recv: RecvHalf,
    /// No read in flight (`h3-quinn` cannot stop a stream mid-read) and the
    /// end not reached.
    stoppable: bool,
}

impl RequestBody {
    fn new(recv: RecvHalf) -> RequestBody {
        RequestBody {
            recv,
            stoppable: true,
        }
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        if self.stoppable {
            self.recv.stop_sending(Code::H3_NO_ERROR);
        }
    }
}

impl HttpBody for RequestBody {
    type Data = Bytes;
    type Error = h3::error::StreamError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.stoppable = false;
        let frame = match ready!(self.recv.poll_recv_data(cx)) {
            Ok(Some(mut data)) => {
                self.stoppable = true;
                let data = data.copy_to_bytes(data.remaining());
                Some(Ok(Frame::data(data)))
            }
            Ok(None) => match ready!(self.recv.poll_recv_trailers(cx)) {
                Ok(Some(trailers)) => Some(Ok(Frame::trailers(trailers))),
                Ok(None) => None,
                Err(error) => Some(Err(error)),
            },
            Err(error) => Some(Err(error)),
        };
        Poll::Ready(frame)
    }
}
