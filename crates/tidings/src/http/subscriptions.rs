//! The subscription API: `{hub}/subscriptions`, the per-matcher (draft-08)
//! or per-topic (draft-07) collections below it, and single subscriptions.
//!
//! The requested path, in its canonical relative form, is authorized as a
//! topic: the token must grant `subscribe` on it, exactly as it would for
//! the subscription events describing the same subscriptions. Documents take
//! the form of the token's generation: draft-08 `application/json` with the
//! cursor on the `Link` header, draft-07 `application/ld+json` with
//! `lastEventID` in the body. Either way the cursor was read together with
//! the list, so following the events from it misses nothing.

use super::reply::Reply;
use super::HubHttp;
use crate::auth::{presented_token, AuthError, Generation, Grants, Role};
use crate::presence::{canonical, Selection, Snapshot};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH, LINK, VARY};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use std::sync::Arc;

/// A refused request's answer, boxed: refusals are the rare path.
type Refusal = Box<Reply>;

/// Characters an entity tag cannot hold (and `%`, to stay unambiguous).
const NOT_ETAGC: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'%');

pub async fn serve(State(http): State<Arc<HubHttp>>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let mut headers = HeaderMap::new();
    super::cors::apply(
        &http.hub.config().cors_origins,
        &parts.headers,
        &mut headers,
    );
    match parts.method {
        Method::GET | Method::HEAD => {}
        Method::OPTIONS => {
            super::cors::preflight(
                &http.hub.config().cors_origins,
                &parts.headers,
                &mut headers,
            );
            return (StatusCode::NO_CONTENT, headers).into_response();
        }
        _ => {
            return Reply::method_not_allowed(
                "the subscription API is read with GET",
                "GET, HEAD, OPTIONS",
            )
            .into_response();
        }
    }
    let mut response = match answer(&http, parts.uri.path(), parts.uri.query(), &parts.headers) {
        Ok(response) => response,
        Err(reply) => reply.into_response(),
    };
    response.headers_mut().extend(headers);
    response
}

fn answer(
    http: &HubHttp,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response, Refusal> {
    let Some(presence) = http.hub.presence() else {
        return Err(not_found());
    };
    let grants = authenticate(http, query, headers)?;
    let target = parse(presence.root(), path, http.hub.config().legacy);
    // Authorization comes before existence, which it must not reveal.
    let topic = target
        .as_ref()
        .map_or(path, |(canonical, _)| canonical.as_str());
    if !grants.may_subscribe_to(topic) {
        return Err(refusal(
            http,
            &AuthError::InsufficientScope,
            "the token does not grant subscribe on this path",
        ));
    }
    let (path, selection) = target.ok_or_else(not_found)?;
    let snapshot = presence.read(&path, selection);
    if selection == Selection::One && snapshot.documents.is_empty() {
        return Err(not_found());
    }
    Ok(render(
        http,
        &path,
        selection,
        snapshot,
        grants.generation,
        headers,
    ))
}

/// The request's token, verified; the API is never anonymous.
fn authenticate(
    http: &HubHttp,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Arc<Grants>, Refusal> {
    let auth = http.hub.authorizer();
    let query_token = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(name, _)| name == "authorization")
        .map(|(_, value)| value.into_owned());
    let token = presented_token(headers, query_token.as_deref(), auth.config())
        .map_err(|e| refusal(http, &e, "the access token is malformed"))?
        .ok_or_else(|| {
            refusal(
                http,
                &AuthError::Missing,
                "the subscription API requires an access token",
            )
        })?;
    auth.verify(&token, Role::Subscriber)
        .map_err(|e| refusal(http, &e, "the access token is not valid"))
}

fn refusal(http: &HubHttp, error: &AuthError, detail: &str) -> Refusal {
    Box::new(http.auth_reply(error, detail))
}

/// The canonical path and what it selects, or `None` for a path that names
/// no resource of the API. Draft-08 paths start with a matcher type; any
/// other path below the root is a draft-07 one (a topic, then a subscriber).
fn parse(root: &str, path: &str, legacy: bool) -> Option<(String, Selection)> {
    let rest = path.strip_prefix(root)?;
    if rest.is_empty() {
        return Some((root.to_string(), Selection::Collection));
    }
    let segments = rest
        .strip_prefix('/')?
        .split('/')
        .map(|segment| canonical(segment).filter(|s| !s.is_empty()))
        .collect::<Option<Vec<String>>>()?;
    let draft08 = matches!(segments[0].as_str(), "exact" | "urlpattern");
    let selection = match (segments.len(), draft08) {
        (2, true) | (1, false) => Selection::Collection,
        (3, true) | (2, false) => Selection::One,
        _ => return None,
    };
    if !draft08 && !legacy {
        return None;
    }
    Some((format!("{root}/{}", segments.join("/")), selection))
}

fn render(
    http: &HubHttp,
    path: &str,
    selection: Selection,
    snapshot: Snapshot,
    generation: Generation,
    request: &HeaderMap,
) -> Response {
    let cursor = json_string(&snapshot.cursor);
    let body = match (selection, generation) {
        (Selection::One, Generation::Draft08) => snapshot.documents[0].to_string(),
        (Selection::One, Generation::Draft07) => {
            // The deployed draft carries the cursor in the document itself.
            let document = &snapshot.documents[0];
            format!(
                "{},\"lastEventID\":{cursor}}}",
                &document[..document.len() - 1]
            )
        }
        (Selection::Collection, generation) => {
            let envelope = match generation {
                Generation::Draft08 => format!("{{\"id\":{},\"type\":\"subscriptions\"", json_string(path)),
                Generation::Draft07 => format!(
                    "{{\"@context\":\"https://mercure.rocks/\",\"id\":{},\"type\":\"Subscriptions\",\"lastEventID\":{cursor}",
                    json_string(path)
                ),
            };
            format!(
                "{envelope},\"subscriptions\":[{}]}}",
                snapshot.documents.join(",")
            )
        }
    };
    let mut headers = HeaderMap::new();
    let content_type = match generation {
        Generation::Draft08 => "application/json",
        Generation::Draft07 => "application/ld+json",
    };
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(LINK, link(http, &snapshot.cursor, generation));
    let etag = format!("\"{}\"", utf8_percent_encode(&snapshot.cursor, NOT_ETAGC));
    let etag = HeaderValue::from_str(&etag).expect("an entity tag of visible ASCII");
    // Volatile data: caches revalidate before every use, and only the
    // client's own cache may keep a response to an authorized request.
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=0, must-revalidate"),
    );
    headers.insert(VARY, HeaderValue::from_static("Authorization, Cookie"));
    let unchanged = request.get(IF_NONE_MATCH).is_some_and(|tags| {
        tags.to_str().is_ok_and(|tags| {
            tags.split(',')
                .any(|tag| tag.trim() == etag || tag.trim() == "*")
        })
    });
    headers.insert(ETAG, etag);
    if unchanged {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (StatusCode::OK, headers, body).into_response()
}

/// `Link: <hub>; rel="mercure"; last-event-id="…"`, plus the draft-08 hints
/// that subscription events are typed `mercure` JSON documents.
fn link(http: &HubHttp, cursor: &str, generation: Generation) -> HeaderValue {
    let mut value = format!(
        "<{}>; rel=\"mercure\"; last-event-id={}",
        http.hub.config().url,
        quoted(cursor)
    );
    if generation == Generation::Draft08 {
        value.push_str("; type=\"mercure\"; content-type=\"application/json\"");
    }
    HeaderValue::from_bytes(value.as_bytes()).expect("ids hold no control characters")
}

/// An RFC 9110 quoted-string.
fn quoted(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

fn json_string(value: &str) -> String {
    serde_json::Value::from(value).to_string()
}

fn not_found() -> Refusal {
    Box::new(Reply::problem(
        StatusCode::NOT_FOUND,
        "no such subscription",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "/.well-known/mercure/subscriptions";

    fn shape(path: &str) -> Option<(String, Selection)> {
        parse(ROOT, path, true)
    }

    #[test]
    fn paths_of_both_generations() {
        assert_eq!(shape(ROOT), Some((ROOT.into(), Selection::Collection)));
        let draft08 = format!("{ROOT}/exact/https%3A%2F%2Fexample.com%2Fa");
        assert_eq!(
            shape(&draft08),
            Some((draft08.clone(), Selection::Collection))
        );
        assert_eq!(
            shape(&format!("{draft08}/urn%3Auuid%3Ax")).unwrap().1,
            Selection::One
        );
        let draft07 = format!("{ROOT}/https%3A%2F%2Fexample.com%2F%7Bid%7D");
        assert_eq!(
            shape(&draft07),
            Some((draft07.clone(), Selection::Collection))
        );
        assert_eq!(
            shape(&format!("{draft07}/urn%3Auuid%3Ax")).unwrap().1,
            Selection::One
        );
        assert_eq!(parse(ROOT, &draft07, false), None);
    }

    #[test]
    fn paths_are_canonicalized() {
        let (path, _) = shape(&format!(
            "{ROOT}/exact/https%3a%2f%2fexample.com%2Fa/urn:uuid:x"
        ))
        .unwrap();
        assert_eq!(
            path,
            format!("{ROOT}/exact/https%3A%2F%2Fexample.com%2Fa/urn%3Auuid%3Ax")
        );
    }

    #[test]
    fn other_paths_name_nothing() {
        for path in [
            format!("{ROOT}/"),
            format!("{ROOT}x"),
            format!("{ROOT}/exact"),
            format!("{ROOT}/exact//s"),
            format!("{ROOT}/exact/a/b/c"),
            format!("{ROOT}/a/b/c"),
            format!("{ROOT}/%FF"),
        ] {
            assert_eq!(shape(&path), None, "{path}");
        }
    }
}
