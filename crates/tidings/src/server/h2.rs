//! HTTP/2 connections, served on the `h2` crate with one task each.
//!
//! Through hyper every HTTP/2 stream is a task of its own, sized for the
//! router's largest future, which made an extra subscription on a shared
//! connection cost about 1.9 KiB. Here the connection's task drives every
//! stream it carries: an event stream is the protocol's stream state, the
//! subscriber's queue and a small future. Other requests go through the
//! same router as HTTP/1.1, with their bodies adapted to and from `h2`.

use crate::forwarded::Peer;
use crate::http::{read_body, subscribe, HubHttp, Reply};
use crate::stream::{concat, EventStream};
use axum::body::Body;
use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::FutureExt;
use h2::server::{Connection, SendResponse};
use h2::{Reason, RecvStream, SendStream};
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body::{Body as HttpBody, Frame};
use http_body_util::Full;
use hyper::service::Service;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

/// Streams one client may have open at once; hyper's default.
const MAX_CONCURRENT_STREAMS: u32 = 200;
/// Bytes `h2` may hold for one stream beyond what the client's window
/// admits. Event streams stop taking frames from their queue well before.
const MAX_SEND_BUFFER: usize = 64 * 1024;
/// Largest request head accepted, as on the HTTP/1.1 path.
const MAX_HEADER_LIST: u32 = 64 * 1024;

/// The work one request stands for. Event streams, the many long-lived
/// ones, sit unboxed in the connection's set of futures.
enum Exchange {
    /// Opening an event stream (a cursor being looked up in a shared log);
    /// becomes `Events` once open.
    Opening(Pin<Box<dyn Future<Output = Option<Exchange>> + Send>>),
    Events(EventPump),
    Other(Pin<Box<dyn Future<Output = ()> + Send>>),
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
                Exchange::Events(pump) => pump.poll_send(cx).map(log_error),
                Exchange::Other(future) => future.as_mut().poll(cx),
            };
        }
    }
}

/// Serves one HTTP/2 connection until the client leaves, it stays without
/// a stream for `idle_timeout`, or, once the hub stops, its last stream has
/// ended.
pub async fn serve<T>(
    io: T,
    http: Arc<HubHttp>,
    router: axum::Router,
    peer: Peer,
    stopping: CancellationToken,
    idle_timeout: Duration,
) -> io::Result<()>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let handshake = h2::server::Builder::new()
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .max_send_buffer_size(MAX_SEND_BUFFER)
        .max_header_list_size(MAX_HEADER_LIST)
        .handshake(io);
    let mut connection: Connection<T, Bytes> = tokio::time::timeout(idle_timeout, handshake)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no HTTP/2 handshake in time"))?
        .map_err(into_io)?;
    let service = TowerToHyperService::new(router);
    let mut exchanges = FuturesUnordered::<Exchange>::new();
    let stop = stopping.cancelled();
    let idle = tokio::time::sleep(idle_timeout);
    tokio::pin!(stop, idle);
    let (mut closing, mut idle_armed) = (false, true);
    loop {
        // The idle clock runs from the moment the last stream ended.
        if exchanges.is_empty() && !idle_armed {
            idle.as_mut()
                .reset(tokio::time::Instant::now() + idle_timeout);
        }
        idle_armed = exchanges.is_empty();
        tokio::select! {
            biased;
            Some(()) = exchanges.next(), if !exchanges.is_empty() => {}
            accepted = connection.accept() => match accepted {
                Some(Ok((request, respond))) => {
                    if let Some(exchange) = exchange(request, respond, &http, &service, peer) {
                        exchanges.push(exchange);
                    }
                    // A connection past the per-address limit is answered,
                    // then closed.
                    if peer.refused && !closing {
                        closing = true;
                        connection.graceful_shutdown();
                    }
                }
                Some(Err(error)) => return Err(into_io(error)),
                // Closed, by the client or after a graceful shutdown.
                None => return Ok(()),
            },
            _ = &mut stop, if !closing => {
                closing = true;
                connection.graceful_shutdown();
            }
            _ = &mut idle, if idle_armed && !closing => {
                closing = true;
                connection.graceful_shutdown();
            }
        }
    }
}

/// Starts the exchange for one request, after the per-address limit
/// (`--max-connections-per-ip`) has had its say.
fn exchange(
    mut request: Request<RecvStream>,
    respond: SendResponse<Bytes>,
    http: &Arc<HubHttp>,
    service: &TowerToHyperService<axum::Router>,
    peer: Peer,
) -> Option<Exchange> {
    if !is_event_stream(&request, http) && !is_query_stream(&request, http) {
        // The router applies the per-address limit itself
        // (`admission::per_ip`).
        request.extensions_mut().insert(peer);
        return exchange_uncounted(request, respond, http, service);
    }
    match http
        .admission
        .request(&peer, request.headers(), http.hub.metrics())
    {
        Err(reply) => Some(Exchange::Other(Box::pin(send_reply(
            respond,
            reply,
            http.alt_svc.clone(),
        )))),
        Ok(None) => exchange_uncounted(request, respond, http, service),
        // Counted for as long as the stream lasts: an allocation only for
        // streams a trusted proxy forwards under a per-address limit.
        Ok(Some(slot)) => exchange_uncounted(request, respond, http, service).map(|exchange| {
            Exchange::Other(Box::pin(async move {
                exchange.await;
                drop(slot);
            }))
        }),
    }
}

/// The exchange proper. A GET event stream is opened and its head sent
/// here, leaving only a small pump; a QUERY one once its body is read;
/// anything else goes through the router.
fn exchange_uncounted(
    request: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    http: &Arc<HubHttp>,
    service: &TowerToHyperService<axum::Router>,
) -> Option<Exchange> {
    if is_event_stream(&request, http) {
        if http.hub.opens_at_once() {
            // Nothing to wait for: opened here, with no future allocated
            // per stream (an allocation freed once open still costs an idle
            // stream memory, in the holes it leaves).
            let query = request.uri().query().unwrap_or("").as_bytes();
            let opening = subscribe::open(http, query, None, request.headers());
            let opened = opening.now_or_never().unwrap_or_else(|| {
                let why = "the subscription could not be opened at once; try again";
                Err(Box::new(Reply::problem(
                    StatusCode::SERVICE_UNAVAILABLE,
                    why,
                )))
            });
            return events_or_refusal(respond, opened, http.alt_svc.clone());
        }
        let http = http.clone();
        return Some(Exchange::Opening(Box::pin(async move {
            let query = request.uri().query().unwrap_or("").as_bytes();
            let opened = subscribe::open(&http, query, None, request.headers()).await;
            events_or_refusal(respond, opened, http.alt_svc.clone())
        })));
    }
    if is_query_stream(&request, http) {
        let http = http.clone();
        return Some(Exchange::Other(Box::pin(async move {
            let (parts, body) = request.into_parts();
            let limits = &http.hub.config().limits;
            let form = match read_body(Body::new(RequestBody(body)), limits).await {
                Ok(form) => form,
                Err(reply) => return send_reply(respond, reply, http.alt_svc.clone()).await,
            };
            let query = parts.uri.query().unwrap_or("").as_bytes();
            let opened = subscribe::open(&http, query, Some(&form), &parts.headers).await;
            if let Some(exchange) = events_or_refusal(respond, opened, http.alt_svc.clone()) {
                exchange.await;
            }
        })));
    }
    let request = request.map(|body| Body::new(RequestBody(body)));
    let response = service.call(request);
    Some(Exchange::Other(Box::pin(async move {
        let response = match response.await {
            Ok(response) => response,
            Err(infallible) => match infallible {},
        };
        let (mut parts, body) = response.into_parts();
        strip_connection_headers(&mut parts.headers);
        if let (Some(length), false) = (
            body.size_hint().exact(),
            parts.headers.contains_key(header::CONTENT_LENGTH),
        ) {
            parts.headers.insert(header::CONTENT_LENGTH, length.into());
        }
        let end = body.is_end_stream();
        if let Some(send) = send_head(&mut respond, Response::from_parts(parts, ()), end) {
            Pump::new(send, body).await;
        }
    })))
}

/// The pump of an opened event stream, its head sent, or the refusal.
fn events_or_refusal(
    mut respond: SendResponse<Bytes>,
    opened: Result<subscribe::Opened, Box<Reply>>,
    alt_svc: Option<HeaderValue>,
) -> Option<Exchange> {
    match opened {
        Ok(opened) => {
            let mut head = head_with(opened.headers);
            advertise(&mut head, alt_svc);
            let send = send_head(&mut respond, head, false)?;
            Some(Exchange::Events(EventPump {
                send,
                events: opened.stream,
            }))
        }
        Err(reply) => Some(Exchange::Other(Box::pin(send_reply(
            respond, *reply, alt_svc,
        )))),
    }
}

/// Answers with a reply that is not a stream.
async fn send_reply(mut respond: SendResponse<Bytes>, reply: Reply, alt_svc: Option<HeaderValue>) {
    let mut head = head_of(&reply);
    advertise(&mut head, alt_svc);
    if let Some(send) = send_head(&mut respond, head, reply.body.is_empty()) {
        Pump::new(send, Full::new(reply.body)).await;
    }
}

fn is_event_stream(request: &Request<RecvStream>, http: &HubHttp) -> bool {
    request.method() == Method::GET
        && request.uri().path() == http.hub.config().path()
        && request.body().is_end_stream()
}

fn is_query_stream(request: &Request<RecvStream>, http: &HubHttp) -> bool {
    request.method().as_str() == "QUERY" && request.uri().path() == http.hub.config().path()
}

/// `Alt-Svc` on the responses the router does not make, when HTTP/3 is on.
fn advertise(head: &mut Response<()>, alt_svc: Option<HeaderValue>) {
    if let Some(alt_svc) = alt_svc {
        head.headers_mut().insert(header::ALT_SVC, alt_svc);
    }
}

pub(super) fn head_with(headers: HeaderMap) -> Response<()> {
    let mut head = Response::new(());
    *head.headers_mut() = headers;
    head
}

fn head_of(reply: &Reply) -> Response<()> {
    let mut head = head_with(reply.headers.clone());
    strip_connection_headers(head.headers_mut());
    *head.status_mut() = reply.status;
    head.headers_mut()
        .insert(header::CONTENT_LENGTH, reply.body.len().into());
    head
}

/// HTTP/2 (and HTTP/3) forbids the HTTP/1.1 connection headers; `h2`
/// refuses a response carrying them.
pub(super) fn strip_connection_headers(headers: &mut HeaderMap) {
    for name in [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::HeaderName::from_static("keep-alive"),
        header::HeaderName::from_static("proxy-connection"),
    ] {
        headers.remove(name);
    }
}

/// Sends the response head; `None` when there is no body to follow or the
/// client is gone.
fn send_head(
    respond: &mut SendResponse<Bytes>,
    head: Response<()>,
    end: bool,
) -> Option<SendStream<Bytes>> {
    match respond.send_response(head, end) {
        Ok(send) => (!end).then_some(send),
        Err(error) => {
            tracing::debug!(%error, "HTTP/2 response not sent");
            None
        }
    }
}

/// Sends an event stream within the client's flow-control window: frames
/// are taken from the subscriber's queue only while the stream has
/// capacity, so a client that stops reading leaves them in that bounded
/// queue, and when it overflows the stream is reset; the client resumes
/// from its last event id. A plain struct rather than an `async fn`, whose
/// state would keep a second copy of its fields: this is what an idle
/// HTTP/2 subscription costs.
struct EventPump {
    send: SendStream<Bytes>,
    events: EventStream,
}

impl EventPump {
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), h2::Error>> {
        loop {
            if poll_capacity(&mut self.send, cx)?.is_pending() {
                if self.events.outbox().poll_overflowed(cx).is_ready() {
                    self.send.send_reset(Reason::CANCEL);
                    return Poll::Ready(Ok(()));
                }
                return Poll::Pending;
            }
            match ready!(self.events.poll_batch(cx)) {
                Some(frames) => self.send.send_data(concat(frames), false)?,
                None => return Poll::Ready(self.send.send_data(Bytes::new(), true)),
            }
        }
    }
}

/// Sends a response body within the client's flow-control window.
struct Pump<B> {
    send: SendStream<Bytes>,
    body: B,
}

impl<B> Pump<B> {
    fn new(send: SendStream<Bytes>, body: B) -> Pump<B> {
        Pump { send, body }
    }
}

impl<B: HttpBody<Data = Bytes> + Unpin> Future for Pump<B> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.poll_send(cx).map(log_error)
    }
}

impl<B: HttpBody<Data = Bytes> + Unpin> Pump<B> {
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), h2::Error>> {
        loop {
            ready!(poll_capacity(&mut self.send, cx))?;
            let frame = match ready!(Pin::new(&mut self.body).poll_frame(cx)) {
                None => return Poll::Ready(self.send.send_data(Bytes::new(), true)),
                Some(Err(_)) => {
                    self.send.send_reset(Reason::INTERNAL_ERROR);
                    return Poll::Ready(Ok(()));
                }
                Some(Ok(frame)) => frame,
            };
            match frame.into_data() {
                Ok(data) => self.send.send_data(data, false)?,
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        return Poll::Ready(self.send.send_trailers(trailers));
                    }
                }
            }
        }
    }
}

/// Ready when the stream may send: the client has not reset it and its
/// window has room. Data is then sent whole, as `h2` allows, and buffered
/// by it beyond the window; the next piece waits for room again.
fn poll_capacity(
    send: &mut SendStream<Bytes>,
    cx: &mut Context<'_>,
) -> Poll<Result<(), h2::Error>> {
    if let Poll::Ready(reset) = send.poll_reset(cx) {
        return Poll::Ready(Err(reset.map_or_else(|e| e, h2::Error::from)));
    }
    while send.capacity() == 0 {
        send.reserve_capacity(1);
        match ready!(send.poll_capacity(cx)) {
            Some(Ok(_)) => {}
            Some(Err(error)) => return Poll::Ready(Err(error)),
            None => return Poll::Ready(Err(h2::Error::from(Reason::CANCEL))),
        }
    }
    Poll::Ready(Ok(()))
}

fn log_error(result: Result<(), h2::Error>) {
    if let Err(error) = result {
        tracing::debug!(%error, "HTTP/2 stream ended with an error");
    }
}

/// A request body read from `h2`, releasing flow-control capacity as the
/// router consumes it.
struct RequestBody(RecvStream);

impl HttpBody for RequestBody {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        match ready!(self.0.poll_data(cx)) {
            Some(Ok(data)) => {
                let _ = self.0.flow_control().release_capacity(data.len());
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Some(Err(error)) => Poll::Ready(Some(Err(error))),
            None => match ready!(self.0.poll_trailers(cx)) {
                Ok(Some(trailers)) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
                Ok(None) => Poll::Ready(None),
                Err(error) => Poll::Ready(Some(Err(error))),
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }
}

fn into_io(error: h2::Error) -> io::Error {
    if error.is_io() {
        error.into_io().expect("an I/O error")
    } else {
        io::Error::other(error)
    }
}
