//! Publications on the direct path: `POST`s to the hub URL with a
//! `Content-Length` body, one after another on a kept-alive HTTP/1.1
//! connection, served without hyper.
//!
//! A publisher sends update after update on the same connection. Through
//! hyper and axum, the request and response types, the routing and the
//! middleware cost as much as checking, storing and dispatching the update
//! itself; here the head parsed by [`look`] is all the handler needs, the
//! body is read into the same buffer and the answer is one write. The
//! checks and the answer are the handler's own ([`crate::http::publish`]).
//!
//! Only the plain case is served here. Anything else on the connection (a
//! chunked body, `Expect: 100-continue`, HTTP/1.0, an upgrade, a body over
//! the limit, another path or method) goes to hyper with the unread bytes
//! put back in front, so hyper keeps answering everything unusual.

use super::direct::{look, response_head, Look};
use super::rewind::Rewind;
use crate::forwarded::Peer;
use crate::http::{publish, HubHttp, Reply};
use crate::per_ip::IpSlot;
use http::HeaderMap;
use std::io;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// A publication's request head, as [`look`] found it.
pub(crate) struct Publication {
    pub headers: HeaderMap,
    /// Length of the request head, where the body starts.
    pub head: usize,
    /// The body's `Content-Length`.
    pub body: u64,
    /// The client asked to close the connection after the answer.
    pub close: bool,
}

/// What the connection asks for once the publications are answered.
pub(crate) enum After {
    /// Closed, or answered and closed.
    Closed,
    /// Something hyper serves, with what was read put back in front.
    Hyper(Rewind<TcpStream>),
}

/// Serves `first`, read into `buffer`, and every plain publication after
/// it on the connection.
pub(crate) async fn serve(
    mut stream: TcpStream,
    mut buffer: Vec<u8>,
    first: Publication,
    http: &Arc<HubHttp>,
    peer: Peer,
    stopping: &CancellationToken,
) -> io::Result<After> {
    let config = http.hub.config();
    let wait = config.limits.head_timeout;
    let mut next = first;
    loop {
        if next.body > config.limits.body as u64 {
            return Ok(After::Hyper(Rewind::new(buffer.into(), stream)));
        }
        let slot = match admit(http, &peer, &next.headers) {
            Ok(slot) => slot,
            Err(reply) => return answer_and_close(&mut stream, reply).await,
        };
        let end = next.head + next.body as usize;
        match tokio::time::timeout(wait, read_to(&mut stream, &mut buffer, end)).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => return Ok(After::Closed),
            Ok(Err(error)) => return Err(error),
            Err(_) => {
                let reply = crate::http::body_too_slow(&config.limits);
                return answer_and_close(&mut stream, reply).await;
            }
        }
        let reply = publish::handle(http, &next.headers, &buffer[next.head..end]).await;
        drop(slot);
        let length = Some(reply.body.len());
        let mut answer = response_head(reply.status, &reply.headers, length, !next.close);
        answer.extend_from_slice(&reply.body);
        stream.write_all(&answer).await?;
        if next.close {
            stream.shutdown().await?;
            return Ok(After::Closed);
        }
        buffer.drain(..end);
        // The next request, or the end of the connection: a kept-alive
        // connection waits at most as long as a fresh one for its head,
        // and not past shutdown.
        let looked = tokio::select! {
            looked = tokio::time::timeout(wait, next_head(&mut stream, &mut buffer, config.path())) => looked,
            () = stopping.cancelled() => return Ok(After::Closed),
        };
        next = match looked {
            Err(_) | Ok(Ok(None)) => return Ok(After::Closed),
            Ok(Err(error)) => return Err(error),
            Ok(Ok(Some(Look::Publication(publication)))) => publication,
            Ok(Ok(Some(Look::Refused { status, detail }))) => {
                return answer_and_close(&mut stream, Reply::problem(status, detail)).await;
            }
            Ok(Ok(Some(_))) => return Ok(After::Hyper(Rewind::new(buffer.into(), stream))),
        };
    }
}

/// The checks hyper's path makes before reading a body: the address's
/// request and publication limits. A slot, under a trusted proxy, counts
/// the request until it is answered.
#[allow(clippy::result_large_err)] // the refusal is the rare case
fn admit(http: &HubHttp, peer: &Peer, headers: &HeaderMap) -> Result<Option<IpSlot>, Reply> {
    let metrics = http.hub.metrics();
    let slot = http.admission.request(peer, headers, metrics)?;
    let client = http.admission.client_of(peer.ip, headers);
    let publisher = crate::publish_rate::Publisher::address(client);
    http.admission.publish(publisher, metrics)?;
    Ok(slot)
}

/// Reads until `buffer` holds `end` bytes; false when the client closes
/// first.
async fn read_to(stream: &mut TcpStream, buffer: &mut Vec<u8>, end: usize) -> io::Result<bool> {
    buffer.reserve(end.saturating_sub(buffer.len()));
    while buffer.len() < end {
        if stream.read_buf(buffer).await? == 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Reads until the bytes after the last request call for more than more
/// bytes (they may already be there, pipelined); `None` when the client
/// closes first.
async fn next_head(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    path: &str,
) -> io::Result<Option<Look>> {
    loop {
        if !buffer.is_empty() {
            match look(buffer, path) {
                Look::Partial => {}
                looked => return Ok(Some(looked)),
            }
        }
        if buffer.capacity() == buffer.len() {
            buffer.reserve(buffer.len().max(1024));
        }
        if stream.read_buf(buffer).await? == 0 {
            return Ok(None);
        }
    }
}

async fn answer_and_close(stream: &mut TcpStream, reply: Reply) -> io::Result<After> {
    super::write_reply(stream, reply).await?;
    Ok(After::Closed)
}
