//! Event details, `{hub path}/events?id=…`: the topics and the private flag
//! of retained events, which an event stream does not carry. The console's
//! inspector asks for those of the events it shows.
//!
//! An event's details are given to whoever could receive the event: anyone
//! who may subscribe for a public one, a token that may read one of its
//! topics for a private one. Ids not retained, and events the request could
//! not receive, are left out alike, so the answer does not tell them apart.

use super::reply::Reply;
use super::HubHttp;
use crate::auth::{presented_token, AuthError, Grants, Role};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use serde::Serialize;
use std::sync::Arc;

/// Most ids one request may ask about.
const MAX_IDS: usize = 64;

/// The path below the hub's where details are served.
pub(crate) fn path(hub_path: &str) -> String {
    format!("{}/events", hub_path.trim_end_matches('/'))
}

#[derive(Serialize)]
struct Details<'a> {
    id: &'a str,
    topics: Vec<&'a str>,
    private: bool,
}

pub async fn serve(State(http): State<Arc<HubHttp>>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    if parts.method != http::Method::GET {
        return Reply::method_not_allowed("event details are read with GET", "GET").into_response();
    }
    let query = parts.uri.query().unwrap_or("");
    match answer(&http, query, &parts.headers).await {
        Ok(response) => response,
        Err(reply) => reply.into_response(),
    }
}

async fn answer(http: &HubHttp, query: &str, headers: &HeaderMap) -> Result<Response, Box<Reply>> {
    let ids: Vec<String> = form_urlencoded::parse(query.as_bytes())
        .filter(|(name, _)| name == "id")
        .map(|(_, id)| id.into_owned())
        .collect();
    if ids.is_empty() || ids.len() > MAX_IDS {
        return Err(Box::new(Reply::problem(
            StatusCode::BAD_REQUEST,
            format!("give from 1 to {MAX_IDS} `id` parameters"),
        )));
    }
    let grants = authenticate(http, headers)?;
    let mut found = Vec::with_capacity(ids.len());
    for id in &ids {
        match http.hub.find(id).await {
            Ok(Some(event)) => found.push(event),
            Ok(None) => {}
            Err(error) => {
                return Err(Box::new(Reply::problem(
                    StatusCode::SERVICE_UNAVAILABLE,
                    error.to_string(),
                )))
            }
        }
    }
    let readable = found.iter().filter(|event| {
        !event.topics.is_empty()
            && (!event.private || grants.as_ref().is_some_and(|g| g.may_read(event.topics())))
    });
    let details: Vec<Details> = readable
        .map(|event| Details {
            id: &event.id,
            topics: event.topics().collect(),
            private: event.private,
        })
        .collect();
    let mut response = axum::Json(serde_json::json!({ "events": details })).into_response();
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("private, no-store"),
    );
    Ok(response)
}

/// The request's grants: `None` for an anonymous request where the hub
/// serves anonymous subscribers.
fn authenticate(http: &HubHttp, headers: &HeaderMap) -> Result<Option<Arc<Grants>>, Box<Reply>> {
    let auth = http.hub.authorizer();
    let refusal = |error: &AuthError, detail: &str| Box::new(http.auth_reply(error, detail));
    match presented_token(headers, None, auth.config())
        .map_err(|e| refusal(&e, "the access token is malformed"))?
    {
        Some(token) => auth
            .verify(&token, Role::Subscriber)
            .map(Some)
            .map_err(|e| refusal(&e, "the access token is not valid")),
        None if http.hub.config().anonymous => Ok(None),
        None => Err(refusal(
            &AuthError::Missing,
            "this hub requires an access token to subscribe",
        )),
    }
}
