//! Opening a subscription from an HTTP request: matchers and cursor from
//! the query (and, for `QUERY`, the form body), the token, and the
//! response head. Shared by the router, the hand-written HTTP/1.1 path and
//! the HTTP/2 server.

use super::reply::Reply;
use super::HubHttp;
use crate::auth::{presented_token, AuthError, Role};
use crate::hub::{SubscribeError, SubscribeRequest};
use crate::matcher::MatchKind;
use crate::stream::EventStream;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

pub static MERCURE_LAST_EVENT_ID: HeaderName = HeaderName::from_static("mercure-last-event-id");
static LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");
static X_ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");

/// An opened subscription and the headers its response starts with.
pub struct Opened {
    pub stream: EventStream,
    pub headers: HeaderMap,
}

/// What the request asked for, before authorization.
pub(crate) struct Parsed {
    pub(crate) request: SubscribeRequest,
    pub(crate) query_token: Option<String>,
}

/// Errors are boxed: they are rare, and an open stream should not pay for
/// their size.
pub async fn open(
    hub: &HubHttp,
    query: &[u8],
    body: Option<&[u8]>,
    headers: &HeaderMap,
) -> Result<Opened, Box<Reply>> {
    open_unboxed(hub, query, body, headers)
        .await
        .map_err(Box::new)
}

// Boxed once, by `open`, rather than at every early return.
#[allow(clippy::result_large_err)]
async fn open_unboxed(
    hub: &HubHttp,
    query: &[u8],
    body: Option<&[u8]>,
    headers: &HeaderMap,
) -> Result<Opened, Reply> {
    let config = hub.hub.config();
    let mut parsed = parse(query, body, config.legacy)
        .map_err(|reason| Reply::problem(StatusCode::BAD_REQUEST, reason))?;
    if let Some(value) = headers.get(&LAST_EVENT_ID) {
        let cursor = value.to_str().map_err(|_| {
            Reply::problem(StatusCode::BAD_REQUEST, "Last-Event-ID is not valid text")
        })?;
        parsed.request.cursor = Some(cursor.to_string());
    }
    let auth = hub.hub.authorizer();
    let token = presented_token(headers, parsed.query_token.as_deref(), auth.config())
        .map_err(|e| hub.auth_reply(&e, "the access token is malformed"))?;
    parsed.request.grants = match token {
        Some(token) => Some(
            auth.verify(&token, Role::Subscriber)
                .map_err(|e| hub.auth_reply(&e, "the access token is not valid"))?,
        ),
        None if config.anonymous => None,
        None => {
            return Err(hub.auth_reply(
                &AuthError::Missing,
                "this hub requires an access token to subscribe",
            ))
        }
    };
    let stream = hub.hub.subscribe(parsed.request).await.map_err(refusal)?;
    let mut out = HeaderMap::new();
    out.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    out.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache, no-store, no-transform"),
    );
    out.insert(X_ACCEL_BUFFERING.clone(), HeaderValue::from_static("no"));
    if let Some(resumed) = stream
        .resumed_from()
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        out.insert(MERCURE_LAST_EVENT_ID.clone(), resumed.clone());
        // The draft-07 spelling of the same answer.
        out.insert(LAST_EVENT_ID.clone(), resumed);
    }
    super::cors::apply(&config.cors_origins, headers, &mut out);
    Ok(Opened {
        stream,
        headers: out,
    })
}

pub(crate) fn refusal(error: SubscribeError) -> Reply {
    let status = match error {
        SubscribeError::ShuttingDown => return closing_stream(),
        SubscribeError::TooManyConnections(_) => StatusCode::TOO_MANY_REQUESTS,
        SubscribeError::History(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    Reply::problem(status, error.to_string())
}

/// What a hub shutting down answers a subscription: an event stream that
/// ends at once. `EventSource` gives up for good on any status but 200; on
/// a stream that ends it reconnects, by then to another instance or to
/// this one restarted.
fn closing_stream() -> Reply {
    let mut reply = Reply::new(StatusCode::OK, "text/event-stream", ": shutting down\n\n");
    reply
        .headers
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    reply
}

/// Reads matchers, cursor and legacy token from the query and the body,
/// taken as one list of pairs as draft-08 asks.
pub(crate) fn parse(query: &[u8], body: Option<&[u8]>, legacy: bool) -> Result<Parsed, String> {
    let mut pairs = crate::form::pairs(query)?;
    let from_query = pairs.len();
    if let Some(body) = body {
        pairs.extend(crate::form::pairs(body)?);
    }
    let mut request = SubscribeRequest::default();
    let mut query_token = None;
    for (position, (name, value)) in pairs.into_iter().enumerate() {
        match name.as_str() {
            "match" | "match_exact" => request.matchers.push((MatchKind::Exact, value)),
            "match_urlpattern" => request.matchers.push((MatchKind::UrlPattern, value)),
            // Compared as bytes: a name may split a character at byte 5.
            reserved
                if reserved
                    .as_bytes()
                    .get(..5)
                    .is_some_and(|prefix| prefix.eq_ignore_ascii_case(b"match")) =>
            {
                return Err(format!("`{reserved}` is not a matcher type this hub supports (use match, match_exact or match_urlpattern)"));
            }
            "topic" if legacy => request.matchers.push((MatchKind::Selector, value)),
            // The query's cursor wins over the body's.
            "last_event_id" | "lastEventID"
                if request.cursor.is_none() || position < from_query =>
            {
                if name == "lastEventID" && !legacy {
                    continue;
                }
                request.cursor = Some(value);
            }
            "authorization" if legacy && query_token.is_none() => query_token = Some(value),
            _ => {}
        }
    }
    if request.matchers.is_empty() {
        return Err(if legacy {
            "at least one topic matcher is required: match, match_urlpattern or topic".into()
        } else {
            "at least one topic matcher is required: match or match_urlpattern".into()
        });
    }
    Ok(Parsed {
        request,
        query_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_match_namespace() {
        for name in ["match_regex", "MATCH", "Match_exact", "matches", "match_"] {
            let query = format!("{name}=x");
            assert!(parse(query.as_bytes(), None, true).is_err(), "{name}");
        }
    }

    #[test]
    fn a_parameter_name_with_a_character_across_byte_five_is_no_matcher() {
        // Found by the query_matchers fuzz target: slicing the name at
        // byte 5 panicked inside the `\u{FFFD}`.
        let parsed = parse(b"t.co%EF%BF%BD=x&match=a", None, true).unwrap();
        assert_eq!(parsed.request.matchers.len(), 1);
        let error = parse("matc\u{e9}=x".as_bytes(), None, true).err().unwrap();
        assert!(error.contains("at least one"), "{error}");
    }

    #[test]
    fn legacy_topic_only_when_enabled() {
        assert_eq!(
            parse(b"topic=a", None, true)
                .unwrap()
                .request
                .matchers
                .len(),
            1
        );
        assert!(parse(b"topic=a", None, false).is_err());
    }

    #[test]
    fn body_and_query_are_united_and_the_query_cursor_wins() {
        let parsed = parse(
            b"match=a&last_event_id=q",
            Some(b"match=b&last_event_id=b"),
            true,
        )
        .unwrap();
        assert_eq!(parsed.request.matchers.len(), 2);
        assert_eq!(parsed.request.cursor.as_deref(), Some("q"));
        let parsed = parse(b"match=a", Some(b"last_event_id=b"), true).unwrap();
        assert_eq!(parsed.request.cursor.as_deref(), Some("b"));
    }
}
