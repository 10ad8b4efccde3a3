//! `POST` on the hub URL: authorize, validate, publish, answer with the id.
//! [`publish_granted`] is the part every transport shares.

use super::reply::Reply;
use super::HubHttp;
use crate::auth::{presented_token, AuthError, Grants, Role};
use crate::event::Update;
use crate::hub::PublishError;
use crate::publish::Rejection;
use crate::publish_rate::Publisher;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, StatusCode};

pub async fn handle(http: &HubHttp, headers: &HeaderMap, body: &[u8]) -> Reply {
    match publish(http, headers, body).await {
        Ok(id) => {
            let mut reply = Reply::new(StatusCode::OK, "text/plain; charset=utf-8", id);
            super::cors::apply(&http.hub.config().cors_origins, headers, &mut reply.headers);
            reply
        }
        Err(reply) => reply,
    }
}

async fn publish(http: &HubHttp, headers: &HeaderMap, body: &[u8]) -> Result<String, Reply> {
    let config = http.hub.config();
    let auth = http.hub.authorizer();
    let token = presented_token(headers, None, auth.config())
        .map_err(|e| http.auth_reply(&e, "the access token is malformed"))?
        .ok_or_else(|| {
            http.auth_reply(&AuthError::Missing, "publishing requires an access token")
        })?;
    // A token from a cookie rides along on cross-site requests: check where
    // the request comes from (CSRF).
    if headers.get(http::header::AUTHORIZATION).is_none()
        && !super::cors::same_or_allowed_origin(&http.origin, &config.cors_origins, headers)
    {
        return Err(Reply::problem(
            StatusCode::FORBIDDEN,
            "a cookie-authenticated publication must come from the hub's origin or an allowed one",
        ));
    }
    let grants = auth
        .verify(&token, Role::Publisher)
        .map_err(|e| http.auth_reply(&e, "the access token is not valid"))?;
    if let Some(kind) = headers.get(CONTENT_TYPE) {
        let form = kind
            .to_str()
            .unwrap_or("")
            .trim_start()
            .to_ascii_lowercase();
        if !form.starts_with("application/x-www-form-urlencoded") {
            return Err(Reply::problem(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "publish with an application/x-www-form-urlencoded body",
            ));
        }
    }
    let update = crate::publish::parse_form(body, config).map_err(rejection)?;
    publish_granted(http, &grants, update).await
}

/// Publishes a valid `update` for a publisher whose token gave `grants`:
/// its subject's rate, its rights on every topic, then the log.
pub(crate) async fn publish_granted(
    http: &HubHttp,
    grants: &Grants,
    update: Update,
) -> Result<String, Reply> {
    if let Some(subject) = &grants.subject {
        let publisher = Publisher::Subject(subject.as_str().into());
        http.admission.publish(publisher, http.hub.metrics())?;
    }
    if let Some(topic) = update.topics.iter().find(|t| !grants.may_publish(t)) {
        return Err(http.auth_reply(
            &AuthError::InsufficientScope,
            &format!("the token does not allow publishing to `{topic}`"),
        ));
    }
    match http.hub.publish_checked(update).await {
        Ok(event) => Ok(event.id.to_string()),
        Err(PublishError::Rejected(r)) => Err(rejection(r)),
        Err(error) => Err(Reply::problem(
            StatusCode::SERVICE_UNAVAILABLE,
            error.to_string(),
        )),
    }
}

pub(crate) fn rejection(rejection: Rejection) -> Reply {
    let status = match rejection {
        Rejection::Invalid(_) => StatusCode::BAD_REQUEST,
        Rejection::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
    };
    Reply::problem(status, rejection.to_string())
}
