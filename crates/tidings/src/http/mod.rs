//! The hub's HTTP interface as an axum router: subscribe, publish, the
//! protected resource metadata, health, metrics, the statistics stream and
//! the web console.
//!
//! Applications embedding tidings mount [`router`] in their own server; the
//! `tidings` binary serves it through [`crate::server`], which adds a
//! lighter path for HTTP/1.1 event streams.

pub(crate) mod admission;
mod console;
pub(crate) mod cors;
mod details;
mod page;
pub(crate) mod publish;
mod reply;
mod stats;
pub mod subscribe;
mod subscriptions;

pub use reply::Reply;

use crate::auth::AuthError;
use crate::config::Limits;
use crate::hub::Hub;
use crate::server::StallWatch;
use crate::stream::EventBody;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use http::{HeaderMap, StatusCode};
use std::sync::Arc;

/// The hub plus what every handler derives from its configuration once.
pub struct HubHttp {
    pub hub: Hub,
    /// Absolute URL of the protected resource metadata, for challenges.
    pub resource_metadata: String,
    /// Where that metadata is served.
    pub metadata_path: String,
    pub origin: String,
    /// Limits on what one client may take.
    pub(crate) admission: admission::Admission,
    /// `Alt-Svc` for responses over TCP when HTTP/3 is served too.
    pub(crate) alt_svc: Option<http::HeaderValue>,
}

impl HubHttp {
    pub fn new(hub: Hub) -> HubHttp {
        let url = &hub.config().url;
        let origin = url.origin().ascii_serialization();
        let metadata_path = format!("/.well-known/oauth-protected-resource{}", url.path());
        HubHttp {
            admission: admission::Admission::new(hub.config()),
            resource_metadata: format!("{origin}{metadata_path}"),
            metadata_path,
            origin,
            hub,
            alt_svc: None,
        }
    }

    pub(crate) fn auth_reply(&self, error: &AuthError, detail: &str) -> Reply {
        Reply::auth(error, &self.resource_metadata, detail)
    }
}

/// The protocol's routes (the hub URL and its protected resource
/// metadata), for applications that mount the hub in their own server.
pub fn router(hub: Hub) -> Router {
    protocol(Arc::new(HubHttp::new(hub)))
}

fn protocol(http: Arc<HubHttp>) -> Router {
    let hub_path = http.hub.config().path().to_string();
    let metadata_path = http.metadata_path.clone();
    let mut router = Router::new()
        .route(&hub_path, any(hub_endpoint))
        .route(&metadata_path, get(page::metadata));
    // Without active subscriptions these paths are not found, as for any
    // hub that does not offer the feature.
    if let Some(presence) = http.hub.presence() {
        let root = presence.root();
        router = router
            .route(root, any(subscriptions::serve))
            .route(&format!("{root}/{{*rest}}"), any(subscriptions::serve));
    }
    router.with_state(http)
}

/// Everything the standalone hub serves: the protocol, health, readiness,
/// metrics, the statistics stream and, unless turned off, the console.
pub(crate) fn standalone(http: Arc<HubHttp>) -> Router {
    let config = http.hub.config();
    let mut operations = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(page::ready))
        .route("/metrics", get(page::metrics))
        .route(&stats::path(config.path()), any(stats::serve));
    if config.console {
        operations = operations
            .route("/", get(console::page))
            .route(console::SCRIPT_PATH, get(console::script))
            .route(console::STYLE_PATH, get(console::style))
            .route(&details::path(config.path()), any(details::serve));
    }
    protocol(http.clone())
        .merge(operations.with_state(http.clone()))
        .layer(axum::middleware::from_fn_with_state(
            http,
            admission::per_ip,
        ))
}

/// The hub URL: GET and QUERY subscribe, POST publishes, OPTIONS preflights.
async fn hub_endpoint(State(http): State<Arc<HubHttp>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let query = parts.uri.query().unwrap_or("").as_bytes().to_vec();
    match parts.method.as_str() {
        "GET" if crate::websocket::is_upgrade(&parts.headers) => {
            crate::websocket::upgrade(http, parts).await
        }
        "GET" => serve_stream(&http, &query, None, &parts).await,
        "QUERY" => match read_body(body, &http.hub.config().limits).await {
            Ok(form) => serve_stream(&http, &query, Some(&form), &parts).await,
            Err(reply) => reply.into_response(),
        },
        "POST" => {
            // The address's bucket first: a refused publisher costs neither
            // reading its body nor verifying its token.
            if let Some(client) = http.admission.client(&parts) {
                let publisher = crate::publish_rate::Publisher::address(client);
                if let Err(reply) = http.admission.publish(publisher, http.hub.metrics()) {
                    return reply.into_response();
                }
            }
            match read_body(body, &http.hub.config().limits).await {
                Ok(form) => publish::handle(&http, &parts.headers, &form)
                    .await
                    .into_response(),
                Err(reply) => reply.into_response(),
            }
        }
        "OPTIONS" => {
            let mut headers = HeaderMap::new();
            cors::preflight(
                &http.hub.config().cors_origins,
                &parts.headers,
                &mut headers,
            );
            (StatusCode::NO_CONTENT, headers).into_response()
        }
        _ => Reply::method_not_allowed(
            "use GET or QUERY to subscribe, POST to publish",
            "GET, QUERY, POST, OPTIONS",
        )
        .into_response(),
    }
}

async fn serve_stream(
    http: &HubHttp,
    query: &[u8],
    body: Option<&[u8]>,
    request: &http::request::Parts,
) -> Response {
    match subscribe::open(http, query, body, &request.headers).await {
        Ok(opened) => {
            // On the hub's own hyper connections: tell the connection which
            // queue to watch while a stalled client blocks its writes.
            if let Some(watch) = request.extensions.get::<StallWatch>() {
                watch.watch(&opened.stream);
            }
            let mut response = Response::new(Body::new(EventBody::new(opened.stream)));
            *response.headers_mut() = opened.headers;
            response
        }
        Err(reply) => (*reply).into_response(),
    }
}

/// Reads a request body of at most `limits.body` bytes, within
/// `limits.head_timeout`: a client trickling its body must not hold the
/// connection longer than one trickling its head.
pub(crate) async fn read_body(body: Body, limits: &Limits) -> Result<bytes::Bytes, Reply> {
    let limit = limits.body;
    let read = tokio::time::timeout(limits.head_timeout, axum::body::to_bytes(body, limit));
    match read.await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(Reply::problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body exceeds {limit} bytes or could not be read"),
        )),
        Err(_) => Err(body_too_slow(limits)),
    }
}

/// The answer to a body that did not arrive within `limits.head_timeout`.
pub(crate) fn body_too_slow(limits: &Limits) -> Reply {
    Reply::problem(
        StatusCode::REQUEST_TIMEOUT,
        format!(
            "the body did not arrive within {} s (--head-timeout)",
            limits.head_timeout.as_secs_f64()
        ),
    )
}
