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
    EventStream { query: String, headers: HeaderMap },
    WebSocket { target: String, headers: HeaderMap },
}

/// The decision the direct path takes after a read, for a hub at `path`.
pub fn request_head(head: &[u8], path: &str) -> Head {
    use crate::server::direct::{look, Look};
    match look(head, path) {
        Look::Partial => Head::Partial,
        Look::Http2 => Head::Http2,
        Look::Other => Head::Other,
        Look::EventStream { query, headers } => Head::EventStream { query, headers },
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
pub fn websocket_event(id: &str, update: &Update, subscription: &str) -> String {
    use crate::websocket::message::{join, subscription_prefix};
    let event = crate::event::Event::from_update(1, id.into(), update);
    let body = event.frame_for(crate::frame::Encoding::WebSocket);
    join(&subscription_prefix(subscription), &body)
}
