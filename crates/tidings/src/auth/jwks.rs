//! Keys fetched from an authorization server's JWK Set and refreshed in
//! the background, so that key rotation needs no restart.
//!
//! A failed refresh keeps the last good keys: an authorization server
//! outage must not lock every client out. The first fetch must succeed,
//! though, so a wrong URL is reported at startup.

use super::keys::TrustedKey;
use super::{AuthSetupError, Role};
use jsonwebtoken::jwk::Jwk;
use parking_lot::RwLock;
use reqwest::redirect;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::oneshot;
use url::{Host, Url};

/// A JWK Set larger than this is refused: no honest set comes close.
const MAX_JWKS_BYTES: usize = 1 << 20;
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_REDIRECTS: usize = 3;

/// The current keys, and how many times they were replaced.
type Shared = Arc<RwLock<(Arc<Vec<TrustedKey>>, u64)>>;

/// The current keys of one JWK Set; dropping it stops the refresh task.
pub(super) struct FetchedKeys {
    keys: Shared,
    _stop: oneshot::Sender<()>,
}

impl FetchedKeys {
    /// Fetches the set once, then refreshes it every `refresh_secs`.
    pub(super) async fn start(
        url: &str,
        refresh_secs: u64,
        role: Role,
    ) -> Result<FetchedKeys, AuthSetupError> {
        let setup_error = |reason: String| AuthSetupError::Jwks {
            role,
            url: url.to_owned(),
            reason,
        };
        let parsed = checked_url(url).map_err(|reason| AuthSetupError::JwksUrl {
            role,
            url: url.to_owned(),
            reason,
        })?;
        let client = http_client().map_err(&setup_error)?;
        let first = fetch(&client, &parsed).await.map_err(&setup_error)?;
        let keys: Shared = Arc::new(RwLock::new((Arc::new(first), 0)));
        let (stop, stopped) = oneshot::channel();
        let every = Duration::from_secs(refresh_secs.max(1));
        tokio::spawn(refresh(
            client,
            parsed,
            Arc::downgrade(&keys),
            every,
            stopped,
        ));
        Ok(FetchedKeys { keys, _stop: stop })
    }

    pub(super) fn current(&self) -> Arc<Vec<TrustedKey>> {
        self.keys.read().0.clone()
    }

    /// Changes whenever the set is replaced, so verifications made with
    /// older keys can be told apart.
    pub(super) fn version(&self) -> u64 {
        self.keys.read().1
    }
}

/// The refresh task. It holds the keys only weakly so it never keeps them
/// alive, and ends as soon as its [`FetchedKeys`] is dropped rather than at
/// its next tick.
async fn refresh(
    client: reqwest::Client,
    url: Url,
    keys: Weak<RwLock<(Arc<Vec<TrustedKey>>, u64)>>,
    every: Duration,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            _ = ticks.tick() => {}
        }
        let outcome = fetch(&client, &url).await;
        let Some(keys) = keys.upgrade() else { return };
        match outcome {
            Ok(fresh) => {
                tracing::debug!(%url, count = fresh.len(), "refreshed JWK Set");
                let mut current = keys.write();
                *current = (Arc::new(fresh), current.1 + 1);
            }
            Err(reason) => {
                tracing::warn!(%url, %reason, "JWK Set refresh failed; keeping the last good keys")
            }
        }
    }
}

/// Only https, except on loopback where there is nobody in the middle.
fn checked_url(url: &str) -> Result<Url, String> {
    let parsed = Url::parse(url).map_err(|e| e.to_string())?;
    if allowed(&parsed) {
        Ok(parsed)
    } else {
        Err("must be https (http only on loopback)".into())
    }
}

fn allowed(url: &Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => match url.host() {
            Some(Host::Ipv4(ip)) => ip.is_loopback(),
            Some(Host::Ipv6(ip)) => ip.is_loopback(),
            Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            None => false,
        },
        _ => false,
    }
}

/// An HTTP client on rustls with the `ring` provider and the platform's
/// roots; redirects are followed only to URLs [`allowed`] would accept.
fn http_client() -> Result<reqwest::Client, String> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_platform_verifier())
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth();
    let redirects = redirect::Policy::custom(|attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS || !allowed(attempt.url()) {
            attempt.stop()
        } else {
            attempt.follow()
        }
    });
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(FETCH_TIMEOUT)
        .redirect(redirects)
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

async fn fetch(client: &reqwest::Client, url: &Url) -> Result<Vec<TrustedKey>, String> {
    let mut response = client
        .get(url.clone())
        .header(
            http::header::ACCEPT,
            "application/jwk-set+json, application/json",
        )
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("HTTP status {}", response.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(format!("larger than {MAX_JWKS_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    parse(&body)
}

/// Reads the usable keys of a JWK Set, skipping (and logging) the others:
/// a set may legitimately hold encryption keys or algorithms we don't know.
pub(super) fn parse(body: &[u8]) -> Result<Vec<TrustedKey>, String> {
    #[derive(serde::Deserialize)]
    struct JwkSet {
        keys: Vec<serde_json::Value>,
    }
    let set: JwkSet = serde_json::from_slice(body).map_err(|e| format!("not a JWK Set: {e}"))?;
    let keys: Vec<TrustedKey> = set
        .keys
        .into_iter()
        .enumerate()
        .filter_map(|(index, value)| {
            let loaded = serde_json::from_value::<Jwk>(value)
                .map_err(|e| e.to_string())
                .and_then(|jwk| TrustedKey::from_jwk(&jwk));
            loaded
                .inspect_err(|reason| tracing::debug!(index, %reason, "skipping JWK"))
                .ok()
        })
        .collect();
    if keys.is_empty() {
        return Err("no usable signature key".into());
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::testing::{jwk_for, serve_jwks};

    #[test]
    fn only_https_or_loopback_http() {
        for ok in [
            "https://as.example.com/jwks",
            "http://127.0.0.1:8080/jwks",
            "http://[::1]/jwks",
            "http://localhost/jwks",
        ] {
            assert!(checked_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://as.example.com/jwks",
            "http://10.0.0.1/jwks",
            "ftp://127.0.0.1/jwks",
            "file:///etc/jwks",
            "not a url",
        ] {
            assert!(checked_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parse_skips_unusable_keys_and_refuses_empty_sets() {
        let set = serde_json::json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0"},
            {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"},
            jwk_for("ec.pem", "good"),
        ]});
        let keys = parse(set.to_string().as_bytes()).unwrap();
        assert_eq!(keys.len(), 1);
        assert!(parse(br#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#).is_err());
        assert!(parse(b"[]").is_err());
    }

    #[tokio::test]
    async fn first_fetch_failure_is_a_setup_error() {
        let server = serve_jwks(serde_json::json!({"keys": []})).await;
        let error = FetchedKeys::start(&server.url(), 60, Role::Subscriber)
            .await
            .err()
            .unwrap();
        assert!(matches!(error, AuthSetupError::Jwks { .. }), "{error}");
        let error = FetchedKeys::start("http://example.com/jwks", 60, Role::Subscriber)
            .await
            .err()
            .unwrap();
        assert!(matches!(error, AuthSetupError::JwksUrl { .. }), "{error}");
    }

    #[tokio::test]
    async fn refresh_task_ends_when_the_keys_are_dropped() {
        let server = serve_jwks(serde_json::json!({"keys": [jwk_for("ec.pem", "a")]})).await;
        let fetched = FetchedKeys::start(&server.url(), 1, Role::Subscriber)
            .await
            .unwrap();
        let weak = Arc::downgrade(&fetched.keys);
        drop(fetched);
        assert!(
            weak.upgrade().is_none(),
            "the task holds no strong reference"
        );
        let requests = server.requests();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(server.requests(), requests, "no refresh after drop");
    }
}
