//! The statistics stream, `{hub path}/stats`: one `text/event-stream`
//! message about every second, each a JSON sample of the hub's figures
//! (see `stats.rs`). The web console and `tidings top` read it.
//!
//! Who may read it is configuration ([`StatsAccess`]): anyone on a
//! development hub, otherwise a subscriber token that grants `subscribe` on
//! the path itself, as it would a topic; the same rule as the subscription
//! API, so one token can be given both.

use super::reply::Reply;
use super::HubHttp;
use crate::auth::{presented_token, AuthError, Role};
use crate::config::StatsAccess;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::VARY;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use std::sync::Arc;

/// The path below the hub's where the stream is served.
pub(crate) fn path(hub_path: &str) -> String {
    format!("{}/stats", hub_path.trim_end_matches('/'))
}

pub async fn serve(State(http): State<Arc<HubHttp>>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let mut headers = HeaderMap::new();
    super::cors::apply(
        &http.hub.config().cors_origins,
        &parts.headers,
        &mut headers,
    );
    if parts.method == Method::OPTIONS {
        super::cors::preflight(
            &http.hub.config().cors_origins,
            &parts.headers,
            &mut headers,
        );
        return (StatusCode::NO_CONTENT, headers).into_response();
    }
    if parts.method != Method::GET {
        return Reply::method_not_allowed("the statistics stream is read with GET", "GET, OPTIONS")
            .into_response();
    }
    let mut response = match open(&http, parts.uri.query(), &parts.headers) {
        Ok(response) => response,
        Err(reply) => reply.into_response(),
    };
    response.headers_mut().extend(headers);
    response
}

fn open(http: &HubHttp, query: Option<&str>, headers: &HeaderMap) -> Result<Response, Box<Reply>> {
    let config = http.hub.config();
    let samples = match (config.stats, http.hub.stats()) {
        (StatsAccess::Off, _) | (_, None) => {
            return Err(Box::new(Reply::problem(
                StatusCode::NOT_FOUND,
                "the statistics stream is off on this hub",
            )))
        }
        (access, Some(samples)) => {
            if access == StatsAccess::Token {
                authorize(http, query, headers)?;
            }
            samples
        }
    };
    let stop = http.hub.shutdown_token();
    let frames = futures_util::stream::unfold(
        (samples, stop, true),
        |(mut samples, stop, first)| async move {
            // The latest sample at once, then each new one.
            if !first {
                tokio::select! {
                    changed = samples.changed() => changed.ok()?,
                    _ = stop.cancelled() => return None,
                }
            }
            let frame = match samples.borrow_and_update().as_deref() {
                Some(sample) => format!("data: {sample}\n\n"),
                // None taken yet: a comment opens the stream.
                None => ":\n\n".into(),
            };
            Some((
                Ok::<_, std::io::Error>(Bytes::from(frame)),
                (samples, stop, false),
            ))
        },
    );
    let mut response = Response::new(Body::from_stream(frames));
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    headers.insert(VARY, HeaderValue::from_static("Authorization, Cookie"));
    Ok(response)
}

/// Refuses a request whose token is missing, invalid, or does not grant
/// `subscribe` on the stream's path.
fn authorize(http: &HubHttp, query: Option<&str>, headers: &HeaderMap) -> Result<(), Box<Reply>> {
    let refusal = |error: &AuthError, detail: &str| Box::new(http.auth_reply(error, detail));
    let auth = http.hub.authorizer();
    let query_token = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(name, _)| name == "authorization")
        .map(|(_, value)| value.into_owned());
    let token = presented_token(headers, query_token.as_deref(), auth.config())
        .map_err(|e| refusal(&e, "the access token is malformed"))?
        .ok_or_else(|| {
            refusal(
                &AuthError::Missing,
                "the statistics stream requires an access token",
            )
        })?;
    let grants = auth
        .verify(&token, Role::Subscriber)
        .map_err(|e| refusal(&e, "the access token is not valid"))?;
    if !grants.may_subscribe_to(&path(http.hub.config().path())) {
        return Err(refusal(
            &AuthError::InsufficientScope,
            "the token does not grant subscribe on the statistics stream's path",
        ));
    }
    Ok(())
}
