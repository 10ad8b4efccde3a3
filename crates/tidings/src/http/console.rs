//! The web console at `/`: one page, its script and its style sheet, all
//! compiled into the binary (no CDN, no build step, works offline).
//!
//! The page holds no data of its own: it reads the hub through the same
//! endpoints as any client (the statistics stream, subscribe, publish, the
//! subscription API), with the token its user gives, so it can show nothing
//! the hub would not show that token. It is served under a content security
//! policy that allows only its own script and style, and the script puts
//! text into the page with `textContent`, never as markup.

use super::HubHttp;
use crate::config::StatsAccess;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::HeaderValue;
use std::sync::Arc;

const PAGE: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/console.js");
const STYLE: &str = include_str!("console/console.css");

/// Where the script and the style sheet are served.
pub(crate) const SCRIPT_PATH: &str = "/console/console.js";
pub(crate) const STYLE_PATH: &str = "/console/console.css";

/// Only the page's own script, style and connections; no framing.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

pub async fn page(State(http): State<Arc<HubHttp>>) -> Response {
    let config = http.hub.config();
    let stats = match config.stats {
        StatsAccess::Public => "public",
        StatsAccess::Token => "token",
        StatsAccess::Off => "off",
    };
    let subscriptions = http
        .hub
        .presence()
        .map_or(String::new(), |presence| presence.root().to_string());
    let html = PAGE
        .replace("{{HUB_URL}}", &escape(config.url.as_str()))
        .replace("{{HUB_PATH}}", &escape(config.path()))
        .replace("{{STATS_ACCESS}}", stats)
        .replace(
            "{{STATS_PATH}}",
            &escape(&super::stats::path(config.path())),
        )
        .replace("{{SUBSCRIPTIONS_PATH}}", &escape(&subscriptions))
        .replace("{{VERSION}}", env!("CARGO_PKG_VERSION"));
    let mut response = asset("text/html; charset=utf-8", html);
    let headers = response.headers_mut();
    headers.insert("content-security-policy", HeaderValue::from_static(POLICY));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

pub async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

fn asset(content_type: &'static str, body: impl Into<axum::body::Body>) -> Response {
    let mut response = Response::new(body.into());
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response.into_response()
}

/// Escapes text for an HTML attribute or element.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn markup_in_a_url_stays_text() {
        assert_eq!(
            escape(r#"https://h/"><script>'x'&"#),
            "https://h/&quot;&gt;&lt;script&gt;&#39;x&#39;&amp;"
        );
    }
}
