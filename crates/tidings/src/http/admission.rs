//! Limits on what one client may take: connections per client address
//! (`--max-connections-per-ip`) and publications per second per token
//! subject and per address (`--publish-rate`). Past either, a 429 with
//! `Retry-After` and the reason; each refusal is counted in `/metrics` and
//! logged, at most one line per limit every few seconds.
//!
//! Connections are counted when accepted, under the peer's address. A
//! trusted proxy's connections are not: one proxy carries many clients,
//! and its address would exhaust the limit for all of them. Each request
//! it forwards is counted instead, under the client address it forwards,
//! for as long as the request lasts (an event stream: as long as it is
//! open).

use super::reply::Reply;
use super::HubHttp;
use crate::config::HubConfig;
use crate::forwarded::{Peer, TrustedProxies};
use crate::log_throttle::LogThrottle;
use crate::metrics::Metrics;
use crate::per_ip::{ConnectionsPerIp, IpSlot, SlotHandoff};
use crate::publish_rate::{retry_after_secs, PublishRate, Publisher};
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header::{CONNECTION, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body::{Body as HttpBody, Frame, SizeHint};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// What a client over `--max-connections-per-ip` is told to wait, in
/// seconds: long enough not to hammer, short enough for a page reload.
const PER_IP_RETRY_AFTER: u64 = 10;

pub struct Admission {
    trusted: TrustedProxies,
    per_ip: Option<Arc<ConnectionsPerIp>>,
    publish_rate: Option<PublishRate>,
    per_ip_log: LogThrottle,
    rate_log: LogThrottle,
}

impl Admission {
    pub fn new(config: &HubConfig) -> Admission {
        let limits = &config.limits;
        let publish_rate = limits.publish_rate.and_then(NonZeroU32::new).map(|rate| {
            let burst = limits
                .publish_burst
                .and_then(NonZeroU32::new)
                .unwrap_or(rate);
            PublishRate::new(rate, burst)
        });
        Admission {
            trusted: TrustedProxies::new(config.trusted_proxies.clone()),
            per_ip: limits.connections_per_ip.map(ConnectionsPerIp::new),
            publish_rate,
            per_ip_log: LogThrottle::default(),
            rate_log: LogThrottle::default(),
        }
    }

    /// A connection just accepted from `ip`: counted under it (the slot
    /// lives as long as the connection), or refused; a trusted proxy's is
    /// not counted itself.
    pub fn accept(&self, ip: IpAddr, metrics: &Metrics) -> (Peer, Option<IpSlot>) {
        let mut peer = Peer {
            ip,
            proxy: self.trusted.contains(ip),
            refused: false,
        };
        let Some(table) = self.per_ip.as_ref().filter(|_| !peer.proxy) else {
            return (peer, None);
        };
        let slot = table.acquire(ip);
        if slot.is_none() {
            peer.refused = true;
            self.count_refusal(ip, metrics);
        }
        (peer, slot)
    }

    /// A request on a connection from `peer`: refused when the connection
    /// was; when a proxy forwarded it, counted under its client for as
    /// long as the returned slot lives.
    #[allow(clippy::result_large_err)] // the refusal is the rare case
    pub fn request(
        &self,
        peer: &Peer,
        headers: &HeaderMap,
        metrics: &Metrics,
    ) -> Result<Option<IpSlot>, Reply> {
        if peer.refused {
            return Err(self.per_ip_refusal(true));
        }
        let Some(table) = self.per_ip.as_ref().filter(|_| peer.proxy) else {
            return Ok(None);
        };
        let client = self.trusted.client(peer.ip, headers);
        match table.acquire(client) {
            Some(slot) => Ok(Some(slot)),
            None => {
                self.count_refusal(client, metrics);
                // The proxy's connection serves others: it stays.
                Err(self.per_ip_refusal(false))
            }
        }
    }

    fn count_refusal(&self, client: IpAddr, metrics: &Metrics) {
        metrics.refused_per_ip.inc();
        if let Some(refused) = self.per_ip_log.refused() {
            let limit = self.per_ip.as_ref().map_or(0, |t| t.limit());
            tracing::warn!(
                limit,
                refused,
                last = %client,
                "refusing connections: a client address is at --max-connections-per-ip"
            );
        }
    }

    /// The 429; with `close`, the connection goes too: it is one too many.
    fn per_ip_refusal(&self, close: bool) -> Reply {
        let limit = self.per_ip.as_ref().map_or(0, |t| t.limit());
        let mut reply = too_many(
            format!("this address already holds the hub's limit of {limit} connections"),
            PER_IP_RETRY_AFTER,
        );
        if close {
            reply
                .headers
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        reply
    }

    /// The client address of a request the router serves: the connection's
    /// peer as the server recorded it (or as axum's `ConnectInfo` has it,
    /// in an application's own server), resolved through trusted proxies.
    pub fn client(&self, request: &http::request::Parts) -> Option<IpAddr> {
        let peer = request
            .extensions
            .get::<Peer>()
            .map(|peer| peer.ip)
            .or_else(|| {
                let info = request.extensions.get::<ConnectInfo<SocketAddr>>();
                info.map(|ConnectInfo(address)| address.ip())
            })?;
        Some(self.client_of(peer, &request.headers))
    }

    /// The client behind a connection from `peer`: the peer itself, or
    /// the client a trusted proxy names in `headers`.
    pub fn client_of(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        self.trusted.client(peer, headers)
    }

    /// Takes one publication from `publisher`'s bucket, or the 429.
    #[allow(clippy::result_large_err)] // the refusal is the rare case
    pub fn publish(&self, publisher: Publisher, metrics: &Metrics) -> Result<(), Reply> {
        let Some(rate) = &self.publish_rate else {
            return Ok(());
        };
        let wait = match rate.check(&publisher) {
            Ok(()) => return Ok(()),
            Err(wait) => retry_after_secs(wait),
        };
        metrics.publish_rate_limited.inc();
        if let Some(refused) = self.rate_log.refused() {
            tracing::warn!(refused, last = %publisher, "refusing publications: over --publish-rate");
        }
        let whose = match publisher {
            Publisher::Subject(_) => "this token's subject",
            Publisher::Address(_) => "this address",
        };
        Err(too_many(
            format!("{whose} is publishing faster than the hub allows; retry in {wait} s"),
            wait,
        ))
    }
}

fn too_many(detail: String, retry_after: u64) -> Reply {
    let mut reply = Reply::problem(StatusCode::TOO_MANY_REQUESTS, detail);
    reply.headers.insert(RETRY_AFTER, retry_after.into());
    reply
}

/// The per-address limit for requests the router serves, on connections
/// the hub's server accepted (which record their [`Peer`]).
pub(crate) async fn per_ip(
    State(http): State<Arc<HubHttp>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(peer) = request.extensions().get::<Peer>().copied() else {
        return next.run(request).await;
    };
    let metrics = http.hub.metrics();
    match http.admission.request(&peer, request.headers(), metrics) {
        Err(reply) => reply.into_response(),
        Ok(None) => next.run(request).await,
        Ok(Some(slot)) => {
            // Offered to the handler first: a WebSocket takes it along.
            let handoff = SlotHandoff::new(slot);
            let mut request = request;
            request.extensions_mut().insert(handoff.clone());
            let response = next.run(request).await;
            match handoff.take() {
                Some(slot) => response.map(|body| Body::new(Holding { body, _slot: slot })),
                None => response,
            }
        }
    }
}

/// A response body that keeps its request counted until it is over.
struct Holding {
    body: Body,
    _slot: IpSlot,
}

impl HttpBody for Holding {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<bytes::Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
