//! The small endpoints: protected resource metadata, readiness and metrics.

use super::HubHttp;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use std::sync::Arc;

/// RFC 9728 protected resource metadata, as draft-08 profiles it.
pub async fn metadata(State(http): State<Arc<HubHttp>>) -> Response {
    let config = http.hub.config();
    let auth = http.hub.authorizer().config();
    let mut document = serde_json::json!({
        "resource": auth.audience,
        "authorization_details_types_supported": ["https://mercure.rocks/authorization-detail"],
        "bearer_methods_supported": ["header"],
        "mercure_cookie": "__Secure-mercure_access_token",
    });
    let servers: Vec<&String> = [&auth.publisher, &auth.subscriber]
        .into_iter()
        .filter(|set| set.jwks_url.is_some())
        .filter_map(|set| set.issuer.as_ref())
        .collect();
    if !servers.is_empty() {
        document["authorization_servers"] = serde_json::json!(servers);
    }
    if config.subscriptions {
        document["mercure_subscriptions"] = serde_json::json!(true);
    }
    let mut response = axum::Json(document).into_response();
    super::cors::apply(
        &config.cors_origins,
        &http::HeaderMap::new(),
        response.headers_mut(),
    );
    response
}

pub async fn ready(State(http): State<Arc<HubHttp>>) -> (StatusCode, &'static str) {
    if http.hub.shutdown_token().is_cancelled() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down")
    } else if !http.hub.log_reachable() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the shared log is unreachable",
        )
    } else {
        (StatusCode::OK, "ready")
    }
}

pub async fn metrics(State(http): State<Arc<HubHttp>>) -> Response {
    (
        [(
            http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        http.hub.metrics().render(),
    )
        .into_response()
}
