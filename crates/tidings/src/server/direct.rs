//! The direct path: plain HTTP/1.1 event streams and WebSockets without
//! hyper.
//!
//! A subscriber connection is the product's unit of cost. Through hyper an
//! idle HTTP/1.1 stream keeps the connection's read and write buffers and a
//! dispatcher state machine alive for hours; here, once the request head is
//! parsed, its buffer is freed and the connection is only a socket, the
//! subscriber's queue and a small task. Plain publications are served here
//! too ([`super::publications`]). Every other HTTP/1.1 request goes to
//! hyper with the bytes already read put back in front. Over TLS, where
//! hyper serves every request, the first head is still looked at here, so
//! that a head no server could serve gets the same answer either way.

use super::publications::Publication;
use super::rewind::Rewind;
use crate::forwarded::Peer;
use crate::http::subscribe;
use crate::http::{HubHttp, Reply};
use crate::outbox::Outbox;
use crate::per_ip::IpSlot;
use crate::stream::EventStream;
use bytes::{Buf, Bytes};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest request head accepted, here and by hyper: the same as the
/// header list HTTP/2 and HTTP/3 accept.
pub(super) const MAX_HEAD: usize = 64 * 1024;
/// Most header fields a request may have: hyper's own limit, so that a
/// request reads the same on every path.
const MAX_HEADERS: usize = 100;
/// Most buffers per vectored write (below every platform's IOV_MAX).
const MAX_IOV: usize = 512;

/// What to do with a fresh connection after looking at its first request.
pub enum Route {
    /// The connection was a GET event stream or a WebSocket, and has been
    /// served.
    Served,
    /// HTTP/2 with prior knowledge, replaying what was read.
    Http2(Rewind<TcpStream>),
    /// Anything else: serve it with hyper, replaying what was read.
    Hyper(Rewind<TcpStream>),
    /// A publication, read into the buffer so far, for
    /// [`super::publications::serve`] (which has timeouts of its own).
    Publication(TcpStream, Vec<u8>, Publication),
}

/// Routes a fresh connection from `peer`. An event stream takes the
/// connection's `slot` (its count under `--max-connections-per-ip`) with it,
/// or, forwarded by a trusted proxy, a slot of its client's own.
pub async fn route(
    mut stream: TcpStream,
    http: &Arc<HubHttp>,
    peer: Peer,
    slot: &mut Option<IpSlot>,
) -> io::Result<Route> {
    let Some((head, look)) = read_head(&mut stream, http.hub.config().path()).await? else {
        return Ok(Route::Served);
    };
    let (query, headers) = match look {
        Look::Http2 => return Ok(Route::Http2(Rewind::new(head.into(), stream))),
        // (`read_head` never returns `Partial`.)
        Look::Other | Look::Partial => return Ok(Route::Hyper(Rewind::new(head.into(), stream))),
        Look::Refused { status, detail } => {
            write_reply(&mut stream, Reply::problem(status, detail)).await?;
            return Ok(Route::Served);
        }
        Look::EventStream { query, headers } => (query, headers),
        Look::Publication(publication) => {
            return Ok(Route::Publication(stream, head, publication));
        }
        Look::WebSocket { mut request, rest } => {
            drop(head);
            request.extensions.insert(peer);
            let slot = match http
                .admission
                .request(&peer, &request.headers, http.hub.metrics())
            {
                Ok(own) => own.or_else(|| slot.take()),
                Err(reply) => {
                    write_reply(&mut stream, reply).await?;
                    return Ok(Route::Served);
                }
            };
            crate::websocket::accept_direct(stream, rest, http.clone(), request, slot).await?;
            return Ok(Route::Served);
        }
    };
    drop(head);
    let slot = match http.admission.request(&peer, &headers, http.hub.metrics()) {
        Ok(own) => own.or_else(|| slot.take()),
        Err(reply) => {
            write_reply(&mut stream, reply).await?;
            return Ok(Route::Served);
        }
    };
    match subscribe::open(http, query.as_bytes(), None, &headers).await {
        Err(reply) => {
            write_reply(&mut stream, *reply).await?;
            Ok(Route::Served)
        }
        Ok(opened) => {
            let response_head = response_head(StatusCode::OK, &opened.headers, None, false);
            let events = opened.stream;
            stream.write_all(&response_head).await?;
            // The stream gets a task of its own, holding only the socket
            // and the subscription (and, under a per-address limit, its
            // count): nothing of the request survives.
            match slot {
                None => tokio::spawn(pump_logged(stream, events)),
                Some(slot) => tokio::spawn(async move {
                    pump_logged(stream, events).await;
                    drop(slot);
                }),
            };
            Ok(Route::Served)
        }
    }
}

/// Looks at a TLS connection's first request head, which hyper serves: a
/// head no server could serve is answered here with a problem document
/// saying why, as on the plain path, where hyper would send an empty body.
/// Anything else goes on to hyper with what was read put back in front;
/// `None` when the connection was answered or closed.
pub async fn screen<S>(mut stream: S, path: &str) -> io::Result<Option<Rewind<S>>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match read_head(&mut stream, path).await? {
        None => Ok(None),
        Some((_, Look::Refused { status, detail })) => {
            write_reply(&mut stream, Reply::problem(status, detail)).await?;
            Ok(None)
        }
        Some((head, _)) => Ok(Some(Rewind::new(head.into(), stream))),
    }
}

/// Reads until the bytes so far call for more than more bytes, and says
/// what they call for; `None` when the client closes first.
async fn read_head<S>(stream: &mut S, path: &str) -> io::Result<Option<(Vec<u8>, Look)>>
where
    S: AsyncRead + Unpin,
{
    let mut head = Vec::with_capacity(1024);
    loop {
        if head.capacity() == head.len() {
            head.reserve(head.len());
        }
        if stream.read_buf(&mut head).await? == 0 {
            return Ok(None);
        }
        match look(&head, path) {
            Look::Partial => continue,
            look => return Ok(Some((head, look))),
        }
    }
}

/// What the bytes read so far from a fresh connection call for.
pub(crate) enum Look {
    /// An incomplete request head: read more.
    Partial,
    /// HTTP/2 with prior knowledge.
    Http2,
    /// Anything else, for hyper.
    Other,
    /// A head no server could serve: malformed, too large, too many
    /// fields. Answered here, with a problem document saying why, where
    /// hyper would answer with an empty body.
    Refused { status: StatusCode, detail: String },
    /// A GET event stream: what opening the subscription needs, copied out
    /// so that the request head's buffer can go.
    EventStream { query: String, headers: HeaderMap },
    /// A `POST` on the hub URL with a plain `Content-Length` body, for
    /// [`super::publications`].
    Publication(Publication),
    /// A WebSocket handshake on the hub URL, as a request without a body,
    /// and whatever the client sent after it.
    WebSocket {
        request: http::request::Parts,
        rest: Vec<u8>,
    },
}

/// Looks at everything read so far from a connection to a hub at `path`;
/// called after every read, so it must not depend on how the bytes were
/// split. Synchronous, so the parser's borrows of the buffer never live on
/// in the task.
pub(crate) fn look(head: &[u8], path: &str) -> Look {
    if head.starts_with(b"PRI ") {
        return Look::Http2;
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(head) {
        Ok(httparse::Status::Partial) if head.len() >= MAX_HEAD => Look::Refused {
            status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            detail: format!("the request head exceeds {} KiB", MAX_HEAD / 1024),
        },
        Ok(httparse::Status::Partial) => Look::Partial,
        Ok(httparse::Status::Complete(length)) if is_websocket(&request, path) => {
            let target = request.path.unwrap_or("/");
            let Ok(built) = http::Request::builder().uri(target).body(()) else {
                return Look::Other;
            };
            let (mut parts, ()) = built.into_parts();
            parts.headers = header_map(request.headers);
            // A client should wait for the answer before it sends frames;
            // one that did not still has them read.
            let rest = head[length..].to_vec();
            Look::WebSocket {
                request: parts,
                rest,
            }
        }
        Ok(httparse::Status::Complete(_)) if is_event_stream(&request, path) => {
            let target = request.path.unwrap_or("/");
            let query = target.split_once('?').map_or("", |(_, q)| q);
            Look::EventStream {
                query: query.to_string(),
                headers: header_map(request.headers),
            }
        }
        Ok(httparse::Status::Complete(length)) => match content_length(request.headers) {
            Err(value) => Look::Refused {
                status: StatusCode::BAD_REQUEST,
                detail: format!("an invalid Content-Length: {value:?}"),
            },
            Ok(Some(body)) if is_plain_publication(&request, path) => {
                Look::Publication(Publication {
                    close: has_token(request.headers, "connection", "close"),
                    headers: header_map(request.headers),
                    head: length,
                    body,
                })
            }
            Ok(_) => Look::Other,
        },
        Err(httparse::Error::TooManyHeaders) => Look::Refused {
            status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            detail: format!("the request head has more than {MAX_HEADERS} header fields"),
        },
        Err(error) => Look::Refused {
            status: StatusCode::BAD_REQUEST,
            detail: format!("a malformed request head: {error}"),
        },
    }
}

/// The request's `Content-Length`, or the first value hyper would refuse,
/// where it would answer with an empty body: one that is not a decimal
/// number, or differs from another (RFC 9110, section 8.6).
fn content_length(headers: &[httparse::Header<'_>]) -> Result<Option<u64>, String> {
    let mut length = None;
    let values = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("content-length"));
    for header in values {
        let value = String::from_utf8_lossy(header.value);
        for part in value.split(',').map(str::trim) {
            let parsed = part
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| part.parse::<u64>().ok())
                .flatten();
            match (parsed, length) {
                (None, _) => return Err(value.into_owned()),
                (Some(n), Some(seen)) if n != seen => return Err(value.into_owned()),
                (Some(n), _) => length = Some(n),
            }
        }
    }
    Ok(length)
}

/// A publication with nothing for hyper to negotiate: HTTP/1.1, a
/// `Content-Length` body, no `Transfer-Encoding`, `Expect` or upgrade.
fn is_plain_publication(request: &httparse::Request<'_, '_>, hub_path: &str) -> bool {
    request.method == Some("POST")
        && request.version == Some(1)
        && targets(request, hub_path)
        && !request.headers.iter().any(|h| {
            h.name.eq_ignore_ascii_case("transfer-encoding")
                || h.name.eq_ignore_ascii_case("expect")
                || h.name.eq_ignore_ascii_case("upgrade")
        })
        && !has_token(request.headers, "connection", "upgrade")
}

/// Whether the request's path, without its query, is the hub's.
fn targets(request: &httparse::Request<'_, '_>, hub_path: &str) -> bool {
    let target = request.path.unwrap_or("");
    target.split('?').next() == Some(hub_path)
}

/// Whether a comma-separated header field `name` lists `token`.
fn has_token(headers: &[httparse::Header<'_>], name: &str, token: &str) -> bool {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .filter_map(|h| std::str::from_utf8(h.value).ok())
        .any(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case(token)))
}

fn is_websocket(request: &httparse::Request<'_, '_>, hub_path: &str) -> bool {
    request.method == Some("GET")
        && request.version == Some(1)
        && targets(request, hub_path)
        && has_token(request.headers, "upgrade", "websocket")
}

fn is_event_stream(request: &httparse::Request<'_, '_>, hub_path: &str) -> bool {
    request.method == Some("GET")
        && targets(request, hub_path)
        // hyper handles upgrades and pipelined bodies.
        && !request.headers.iter().any(|h| {
            h.name.eq_ignore_ascii_case("upgrade")
                || h.name.eq_ignore_ascii_case("content-length")
                || h.name.eq_ignore_ascii_case("transfer-encoding")
        })
}

fn header_map(raw: &[httparse::Header<'_>]) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(raw.len());
    for header in raw {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(header.name.as_bytes()),
            HeaderValue::from_bytes(header.value),
        ) {
            headers.append(name, value);
        }
    }
    headers
}

async fn pump_logged(socket: TcpStream, events: EventStream) {
    if let Err(error) = pump(socket, events).await {
        tracing::debug!(%error, "event stream ended with an error");
    }
}

/// Writes the stream's batches until it ends or the client goes away.
async fn pump(socket: TcpStream, mut events: EventStream) -> io::Result<()> {
    let socket = Arc::new(socket);
    events.outbox().attach(socket.clone());
    loop {
        let batch = tokio::select! {
            batch = poll_fn(|cx| events.poll_batch(cx)) => batch,
            closed = peer_closed(&socket) => {
                closed?;
                return Ok(());
            }
        };
        match batch {
            Some(mut frames) => {
                write_frames(&socket, &mut frames, events.outbox()).await?;
                if events.is_live() {
                    events.outbox().allow_write_through();
                }
            }
            None => {
                // Ends the response, which is delimited by the close. The
                // outbox still holds the socket, so close our side here.
                // SAFETY: a valid descriptor, owned by `socket`, alive here.
                unsafe { libc::shutdown(socket.as_raw_fd(), libc::SHUT_WR) };
                return Ok(());
            }
        }
    }
}

/// Resolves when the client closes its side; stray bytes are discarded.
async fn peer_closed(stream: &TcpStream) -> io::Result<()> {
    let mut sink = [0u8; 64];
    loop {
        stream.readable().await?;
        match stream.try_read(&mut sink) {
            Ok(0) => return Ok(()),
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Writes every frame, as few system calls as the kernel allows. A client
/// that stops reading while its queue overflows is given up on: waiting
/// for it would hold the connection open with nothing left to send.
async fn write_frames(socket: &TcpStream, frames: &mut [Bytes], outbox: &Outbox) -> io::Result<()> {
    let mut first = 0;
    while first < frames.len() {
        let slices: Vec<IoSlice<'_>> = frames[first..]
            .iter()
            .take(MAX_IOV)
            .map(|frame| IoSlice::new(frame))
            .collect();
        let mut written = match socket.try_write_vectored(&slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => written,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                tokio::select! {
                    writable = socket.writable() => writable?,
                    () = poll_fn(|cx| outbox.poll_overflowed(cx)) => {
                        return Err(io::Error::other("slow consumer: its queue overflowed"));
                    }
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        while written > 0 {
            let frame = &mut frames[first];
            let step = written.min(frame.len());
            frame.advance(step);
            written -= step;
            if frame.is_empty() {
                first += 1;
            }
        }
    }
    Ok(())
}

pub(crate) async fn write_reply<S>(stream: &mut S, reply: Reply) -> io::Result<()>
where
    S: AsyncWrite + Unpin,
{
    // One write: a client that reads the head may take only what came with
    // it as the body.
    let mut answer = response_head(reply.status, &reply.headers, Some(reply.body.len()), false);
    answer.extend_from_slice(&reply.body);
    stream.write_all(&answer).await?;
    stream.shutdown().await
}

/// The response head. Streams are delimited by closing the connection,
/// which every HTTP/1.x client and proxy understands and costs no framing;
/// an answer with a `length` may keep the connection for the next request.
pub(super) fn response_head(
    status: StatusCode,
    headers: &HeaderMap,
    length: Option<usize>,
    keep_alive: bool,
) -> Vec<u8> {
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(status.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    head.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    if let Some(length) = length {
        head.extend_from_slice(b"content-length: ");
        head.extend_from_slice(length.to_string().as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"date: ");
    push_date(&mut head);
    head.extend_from_slice(b"\r\n");
    if !keep_alive {
        head.extend_from_slice(b"connection: close\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// Appends the `Date` every answer carries (RFC 9110, section 6.6.1),
/// formatted once a second per thread: a publisher may be answered
/// thousands of times a second.
fn push_date(head: &mut Vec<u8>) {
    thread_local! {
        static DATE: std::cell::RefCell<(u64, String)> = const {
            std::cell::RefCell::new((u64::MAX, String::new()))
        };
    }
    let now = std::time::SystemTime::now();
    let second = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    DATE.with_borrow_mut(|(formatted_at, date)| {
        if *formatted_at != second {
            *date = httpdate::fmt_http_date(now);
            *formatted_at = second;
        }
        head.extend_from_slice(date.as_bytes());
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(values: &[&str]) -> bool {
        let headers: Vec<_> = values
            .iter()
            .map(|value| httparse::Header {
                name: "Content-Length",
                value: value.as_bytes(),
            })
            .collect();
        content_length(&headers).is_err()
    }

    #[test]
    fn content_lengths_hyper_would_refuse_are_caught() {
        assert!(!refused(&[]));
        assert!(!refused(&["5"]));
        assert!(!refused(&["5, 5", "5"]));
        for bad in [&["abc"][..], &["+5"], &["-1"], &[""], &["5,6"], &["5", "6"]] {
            assert!(refused(bad), "{bad:?}");
        }
        assert!(refused(&["99999999999999999999999"]), "past u64");
    }

    #[test]
    fn plain_publications_are_told_from_what_hyper_serves() {
        const HUB: &str = "/.well-known/mercure";
        let post = "POST /.well-known/mercure HTTP/1.1\r\nHost: x\r\n";
        let plain = format!("{post}Content-Length: 5\r\n\r\nhello");
        match look(plain.as_bytes(), HUB) {
            Look::Publication(p) => {
                assert_eq!((p.head, p.body, p.close), (plain.len() - 5, 5, false));
            }
            _ => panic!("a plain publication"),
        }
        let closing = format!("{post}Connection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n");
        assert!(matches!(look(closing.as_bytes(), HUB), Look::Publication(p) if p.close));
        for other in [
            format!("{post}Transfer-Encoding: chunked\r\n\r\n"),
            format!("{post}Content-Length: 5\r\nExpect: 100-continue\r\n\r\n"),
            format!("{post}Content-Length: 0\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\n"),
            format!("{post}\r\n"),
            post.replace("HTTP/1.1", "HTTP/1.0") + "Content-Length: 0\r\n\r\n",
            post.replace("mercure", "mercure/x") + "Content-Length: 0\r\n\r\n",
            post.replace("POST", "PUT") + "Content-Length: 0\r\n\r\n",
        ] {
            assert!(
                matches!(look(other.as_bytes(), HUB), Look::Other),
                "{other:?}"
            );
        }
    }
}
