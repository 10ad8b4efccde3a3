//! CORS: an explicit allowlist of origins, never a reflected arbitrary
//! origin, and never `*` together with credentials.

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ORIGIN,
    VARY,
};
use http::{HeaderMap, HeaderValue};

/// Adds the CORS headers a response to `request` needs. An allowlist entry
/// of `*` admits every origin without credentials (cookies are then
/// useless cross-origin, which is the point).
pub fn apply(allowlist: &[String], request: &HeaderMap, response: &mut HeaderMap) {
    let Some(origin) = request.get(ORIGIN) else {
        return;
    };
    response.append(VARY, HeaderValue::from_static("Origin"));
    if allowlist
        .iter()
        .any(|allowed| allowed.as_bytes() == origin.as_bytes())
    {
        response.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        response.insert(
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    } else if allowlist.iter().any(|allowed| allowed == "*") {
        response.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    } else {
        return;
    }
    response.insert(
        ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Mercure-Last-Event-ID, Last-Event-ID, Link, WWW-Authenticate"),
    );
}

/// Adds what a preflight answer needs on top of [`apply`].
pub fn preflight(allowlist: &[String], request: &HeaderMap, response: &mut HeaderMap) {
    apply(allowlist, request, response);
    if !response.contains_key(ACCESS_CONTROL_ALLOW_ORIGIN) {
        return;
    }
    response.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, QUERY, OPTIONS"),
    );
    response.insert(
        ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization, Content-Type, Last-Event-ID, Cache-Control"),
    );
    response.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
}

/// True when a cookie-authenticated publish comes from an allowed origin,
/// the CSRF defence the spec asks for. Requests with neither `Origin` nor
/// `Referer` are refused.
pub fn same_or_allowed_origin(hub_origin: &str, allowlist: &[String], request: &HeaderMap) -> bool {
    let source = request
        .get(ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            let referer = request.get(http::header::REFERER)?.to_str().ok()?;
            let url = url::Url::parse(referer).ok()?;
            Some(url.origin().ascii_serialization())
        });
    match source {
        Some(origin) => origin == hub_origin || allowlist.contains(&origin),
        None => false,
    }
}
