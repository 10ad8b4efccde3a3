//! WebSocket: one connection that subscribes, receives and publishes, for
//! clients that talk back (chat, collaboration, games).
//!
//! A `GET` on the hub URL with `Upgrade: websocket` opens it. The handshake
//! checks what an HTTP request would: the token (the `Authorization`
//! header, the cookie, or an `auth` message for browsers, which cannot set
//! headers on a WebSocket), and the `Origin`, since a cookie rides along on
//! a cross-site WebSocket as it does on a form. After it, the socket speaks
//! the JSON messages of [`message`], served by a [`session::Session`].
//!
//! The framing ([`wire`]) is written here on tungstenite's frame headers
//! and close codes, so that an idle socket keeps no buffers.

pub(crate) mod message;
mod session;
pub(crate) mod wire;

use crate::auth::{presented_token, AuthError};
use crate::http::{HubHttp, Reply};
use crate::per_ip::{IpSlot, SlotHandoff};
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::header::{
    CONNECTION, ORIGIN, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{HeaderMap, HeaderValue, StatusCode, Version};
use hyper_util::rt::TokioIo;
use session::{Access, Session};
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use wire::{Limits, Wire};

/// Whether a request asks to become a WebSocket.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    has_token(headers, &UPGRADE, "websocket")
}

/// Answers a WebSocket handshake that hyper served (TLS, or an application's
/// own server): `101 Switching Protocols` and a session on the upgraded
/// connection, or the reason it is refused.
pub async fn upgrade(http: Arc<HubHttp>, mut request: http::request::Parts) -> Response {
    let accepted = match handshake(&http, &request) {
        Ok(accepted) => accepted,
        Err(reply) => return reply.into_response(),
    };
    let Some(upgrading) = request.extensions.remove::<hyper::upgrade::OnUpgrade>() else {
        return Reply::problem(
            StatusCode::BAD_REQUEST,
            "this connection cannot be upgraded to a WebSocket",
        )
        .into_response();
    };
    let slot = request
        .extensions
        .get::<SlotHandoff>()
        .and_then(SlotHandoff::take);
    let opening = Opening {
        client: http.admission.client(&request),
        access: accepted.access,
        slot,
        http,
    };
    tokio::spawn(async move {
        if let Ok(upgraded) = upgrading.await {
            opening.serve(TokioIo::new(upgraded), Vec::new());
        }
    });
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(SEC_WEBSOCKET_ACCEPT, accepted.key);
    response
}

/// Answers a WebSocket handshake on the direct path (plain HTTP/1.1), where
/// the socket becomes the session's without passing through hyper: the
/// lightest way in, as for event streams. `request` carries the peer.
pub async fn accept_direct(
    mut socket: TcpStream,
    rest: Vec<u8>,
    http: Arc<HubHttp>,
    request: http::request::Parts,
    slot: Option<IpSlot>,
) -> io::Result<()> {
    let accepted = match handshake(&http, &request) {
        Ok(accepted) => accepted,
        Err(reply) => return crate::server::write_reply(&mut socket, reply).await,
    };
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\
         sec-websocket-accept: {}\r\n\r\n",
        accepted.key.to_str().unwrap_or_default()
    );
    socket.write_all(head.as_bytes()).await?;
    let opening = Opening {
        client: http.admission.client(&request),
        access: accepted.access,
        slot,
        http,
    };
    opening.serve(socket, rest);
    Ok(())
}

/// What a session starts with once the handshake is answered.
struct Opening {
    http: Arc<HubHttp>,
    access: Access,
    /// The client's address, for its publish rate.
    client: Option<IpAddr>,
    /// Its count under `--max-connections-per-ip`, held while it is open.
    slot: Option<IpSlot>,
}

impl Opening {
    /// Hands the session a task of its own: a task is sized for everything
    /// its future ever held, and the session's should hold only the
    /// session. `rest`: bytes of the socket already read past the handshake.
    fn serve<S>(self, socket: S, rest: Vec<u8>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let body = self.http.hub.config().limits.body;
        let limits = Limits {
            message: body,
            // Frame headers and fragments included, a message may take
            // twice its payload limit on the wire.
            wire: body.saturating_mul(2).saturating_add(4096),
        };
        let ws = Wire::new(socket, rest, limits);
        let mut session = Session::new(ws, self.http, self.access, self.client, self.slot);
        tokio::spawn(async move { session.run().await });
    }
}

struct Accepted {
    key: HeaderValue,
    access: Access,
}

/// The checks of RFC 6455 section 4.2.1, the origin and the token.
#[allow(clippy::result_large_err)] // the refusal is the rare case
fn handshake(http: &HubHttp, request: &http::request::Parts) -> Result<Accepted, Reply> {
    let headers = &request.headers;
    if request.version != Version::HTTP_11 || !has_token(headers, &CONNECTION, "upgrade") {
        return Err(Reply::problem(
            StatusCode::BAD_REQUEST,
            "a WebSocket opens with an HTTP/1.1 upgrade (Connection: Upgrade)",
        ));
    }
    if headers
        .get(SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        let mut reply = Reply::problem(
            StatusCode::UPGRADE_REQUIRED,
            "this hub speaks WebSocket version 13",
        );
        reply
            .headers
            .insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        return Err(reply);
    }
    let key = headers
        .get(SEC_WEBSOCKET_KEY)
        .filter(|key| key.len() == 24)
        .ok_or_else(|| {
            Reply::problem(
                StatusCode::BAD_REQUEST,
                "Sec-WebSocket-Key is missing or malformed",
            )
        })?;
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let config = http.hub.config();
    let query = request.uri.query().unwrap_or("").as_bytes();
    let query_token = crate::form::pairs(query)
        .ok()
        .and_then(|pairs| pairs.into_iter().find(|(name, _)| name == "authorization"))
        .map(|(_, token)| token);
    let auth = http.hub.authorizer();
    let token = presented_token(headers, query_token.as_deref(), auth.config())
        .map_err(|e| http.auth_reply(&e, "the access token is malformed"))?;
    let from_cookie = token.is_some()
        && headers.get(http::header::AUTHORIZATION).is_none()
        && !(auth.config().query_token && query_token.is_some());
    check_origin(http, headers, from_cookie)?;
    let access = match token {
        Some(token) => Access::verify(http, &token).ok_or_else(|| {
            http.auth_reply(&AuthError::InvalidToken, "the access token is not valid")
        })?,
        None if config.anonymous => Access::Granted {
            reader: None,
            publisher: None,
        },
        None => Access::Pending,
    };
    Ok(Accepted {
        key: HeaderValue::from_str(&accept).expect("base64 is a valid header value"),
        access,
    })
}

/// A browser's socket must come from the hub's origin or one of
/// `--cors-origins`: a cookie would otherwise let any site act as its user
/// (cross-site WebSocket hijacking). `*` admits other origins only when no
/// cookie carries the token. Clients without an `Origin` (not browsers)
/// pass.
#[allow(clippy::result_large_err)]
fn check_origin(http: &HubHttp, headers: &HeaderMap, cookie_token: bool) -> Result<(), Reply> {
    let Some(origin) = headers.get(ORIGIN) else {
        return Ok(());
    };
    let allowlist = &http.hub.config().cors_origins;
    let origin = origin.to_str().unwrap_or("");
    let listed = origin == http.origin || allowlist.iter().any(|allowed| allowed == origin);
    let open = allowlist.iter().any(|allowed| allowed == "*") && !cookie_token;
    if listed || open {
        return Ok(());
    }
    Err(Reply::problem(
        StatusCode::FORBIDDEN,
        format!("WebSocket connections from `{origin}` are not allowed (see --cors-origins)"),
    ))
}

/// Whether a comma-separated header has `token`, in any case.
fn has_token(headers: &HeaderMap, name: &http::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|part| part.trim().eq_ignore_ascii_case(token))
}
