//! Responses that are not event streams: errors with a reason, and the
//! small bodies of the other endpoints. Both servers (hyper and the
//! hand-written HTTP/1.1 path) write these.

use crate::auth::AuthError;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, StatusCode};

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn new(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        Reply {
            status,
            headers,
            body: body.into(),
        }
    }

    /// An RFC 9457 problem document carrying the reason.
    pub fn problem(status: StatusCode, detail: impl AsRef<str>) -> Reply {
        let body = serde_json::json!({
            "type": "about:blank",
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": detail.as_ref(),
        });
        Reply::new(status, "application/problem+json", body.to_string())
    }

    /// A 405 naming the methods `allow`ed, in a problem document.
    pub fn method_not_allowed(detail: &str, allow: &'static str) -> Reply {
        let mut reply = Reply::problem(StatusCode::METHOD_NOT_ALLOWED, detail);
        reply
            .headers
            .insert(http::header::ALLOW, http::HeaderValue::from_static(allow));
        reply
    }

    /// A token failure with the `WWW-Authenticate: Bearer` challenge the
    /// spec prescribes (the error code lives there, not in the body).
    pub fn auth(error: &AuthError, resource_metadata: &str, detail: &str) -> Reply {
        let mut reply = Reply::problem(error.status(), detail);
        reply
            .headers
            .insert(WWW_AUTHENTICATE, error.challenge(resource_metadata));
        reply
    }
}

impl Reply {
    /// The reason a problem document gives, for transports that carry it
    /// in their own messages.
    pub fn detail(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|problem| problem["detail"].as_str().map(String::from))
            .unwrap_or_else(|| String::from_utf8_lossy(&self.body).into_owned())
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        (self.status, self.headers, self.body).into_response()
    }
}
