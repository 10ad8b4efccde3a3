//! Entry points for the fuzz targets under `fuzz/`, built only with the
//! `fuzzing` feature. Each forwards to the code the hub itself runs on what
//! strangers send; none holds logic of its own. Parsers that are already
//! public (`publish::parse_form`, `matcher::Matcher`, `auth::Authorizer`,
//! `auth::presented_token`) are called directly.

use crate::event::Update;
use crate::matcher::MatchKind;
use bytes::Bytes;
use http::HeaderMap;

/// What the direct HTTP/1.1 path decides from the bytes read so far.
#[derive(Debug, PartialEq)]
pub enum Head {
    Partial,
    Http2,
    Other,
    /// Answered with this status and a problem document.
    Refused(u16),
    EventStream {
        query: String,
        headers: HeaderMap,
    },
    WebSocket {
        target: String,
        headers: HeaderMap,
    },
    /// A plain publication: the head's length, the body's, and whether the
    /// client asked to close.
    Publication {
        head: usize,
        body: u64,
        close: bool,
        headers: HeaderMap,
    },
}

/// The decision the direct path takes after a read, for a hub at `path`.
pub fn request_head(head: &[u8], path: &str) -> Head {
    use crate::server::direct::{look, Look};
    match look(head, path) {
        Look::Partial => Head::Partial,
        Look::Http2 => Head::Http2,
        Look::Other => Head::Other,
        Look::Refused { status, .. } => Head::Refused(status.as_u16()),
        Look::EventStream { query, headers } => Head::EventStream { query, headers },
        Look::Publication(publication) => Head::Publication {
            head: publication.head,
            body: publication.body,
            close: publication.close,
            headers: publication.headers,
        },
        Look::WebSocket { request, .. } => Head::WebSocket {
            target: request.uri.to_string(),
            headers: request.headers,
        },
    }
}

/// A subscription request as read from its query string (and `QUERY` body).
#[derive(Debug)]
pub struct Subscription {
    pub matchers: Vec<(MatchKind, String)>,
    pub cursor: Option<String>,
    pub query_token: Option<String>,
}

/// Reads a subscription's query string and body as the subscribe endpoint does.
pub fn subscribe_query(
    query: &[u8],
    body: Option<&[u8]>,
    legacy: bool,
) -> Result<Subscription, String> {
    crate::http::subscribe::parse(query, body, legacy).map(|parsed| Subscription {
        matchers: parsed.request.matchers,
        cursor: parsed.request.cursor,
        query_token: parsed.query_token,
    })
}

/// Decodes `application/x-www-form-urlencoded` pairs as the hub does.
pub fn form_pairs(input: &[u8]) -> Result<Vec<(String, String)>, String> {
    crate::form::pairs(input)
}

/// How many usable signature keys a fetched JWK Set document yields.
pub fn jwk_set(document: &[u8]) -> Result<usize, String> {
    crate::auth::usable_jwks_keys(document)
}

/// The `text/event-stream` frame of an event with this id.
pub fn sse_event(id: &str, update: &Update) -> Bytes {
    crate::frame::encode(id, update)
}

/// The `retry:` frame a stream opens with.
pub fn sse_retry(millis: u64) -> Bytes {
    crate::frame::retry(millis)
}

/// The `id:` frame that moves a client's cursor.
pub fn sse_cursor(id: &str) -> Bytes {
    crate::frame::cursor(id)
}

/// Reads a client's WebSocket message as the session does; the error is
/// the reason its close carries.
pub fn websocket_request(text: &str) -> Result<(), String> {
    serde_json::from_str::<crate::websocket::message::ClientMessage>(text)
        .map(drop)
        .map_err(|error| error.to_string())
}

/// An event as a WebSocket subscriber receives it through its subscription
/// named `subscription`.
/// Framed by the hub's writer and read back by tungstenite's frame reader.
pub fn websocket_event(id: &str, update: &Update, subscription: &str) -> String {
    use crate::websocket::message::subscription_prefix;
    use tungstenite::protocol::frame::FrameSocket;
    let event = crate::event::Event::from_update(1, id.into(), update);
    let body = event.frame_for(crate::frame::Encoding::WebSocket);
    let mut frames = crate::websocket::wire::Outgoing::default();
    frames.text(&[subscription_prefix(subscription).as_bytes(), &body]);
    let mut reader = FrameSocket::new(std::io::Cursor::new(frames.bytes()));
    let frame = reader
        .read(None)
        .expect("a whole frame")
        .expect("one frame");
    assert!(frame.header().is_final, "one message, one frame");
    frame
        .into_text()
        .expect("a text frame is UTF-8")
        .to_string()
}

/// What the hub's WebSocket reader took from a client's bytes.
#[derive(Debug, PartialEq)]
pub enum WebSocketRead {
    Text(String),
    Ping(Vec<u8>),
    Pong,
    Close(Option<u16>),
    /// Reading stopped at a binary message, which the session refuses.
    Binary,
    /// Reading stopped: the bytes ended.
    Ended,
    /// Reading stopped: a protocol violation, with its close code.
    Violation(u16),
}

/// Reads `bytes` as a client's frames arriving `piece` bytes at a time,
/// with messages of at most `limit` bytes, until reading stops or a close.
pub fn websocket_frames(bytes: &[u8], piece: usize, limit: usize) -> Vec<WebSocketRead> {
    use crate::websocket::wire::{Incoming, Limits, ReadError, Wire};
    use std::task::{Context, Poll, Waker};
    let limits = Limits {
        message: limit,
        wire: usize::MAX,
    };
    let mut wire = Wire::new(Pieces { bytes, piece }, Vec::new(), limits);
    let mut context = Context::from_waker(Waker::noop());
    let mut read = Vec::new();
    loop {
        let Poll::Ready(incoming) = wire.poll_incoming(&mut context) else {
            unreachable!("pieces are always ready");
        };
        let (item, last) = match incoming {
            Ok(Incoming::Text(text)) => (WebSocketRead::Text(text), false),
            Ok(Incoming::Ping(payload)) => (WebSocketRead::Ping(payload), false),
            Ok(Incoming::Pong) => (WebSocketRead::Pong, false),
            Ok(Incoming::Close(code)) => (WebSocketRead::Close(code), true),
            Ok(Incoming::Binary) => (WebSocketRead::Binary, true),
            Ok(Incoming::Gone) | Err(ReadError::Io(_)) => (WebSocketRead::Ended, true),
            Err(ReadError::Violation(code, _)) => (WebSocketRead::Violation(code), true),
        };
        read.push(item);
        if last {
            return read;
        }
    }
}

/// Bytes read in pieces of a given size; writes go nowhere.
struct Pieces<'a> {
    bytes: &'a [u8],
    piece: usize,
}

impl tokio::io::AsyncRead for Pieces<'_> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let size = self.piece.max(1).min(self.bytes.len()).min(buf.remaining());
        let (piece, rest) = self.bytes.split_at(size);
        buf.put_slice(piece);
        self.bytes = rest;
        std::task::Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for Pieces<'_> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}
