//! Authorization settings: the keys trusted for each role, the accepted
//! algorithms and token forms, and the hub's resource identifier.

use jsonwebtoken::Algorithm;
use serde::Deserialize;
use std::fmt;

/// The algorithms accepted when the configuration names none.
///
/// Every signature algorithm jsonwebtoken implements: none of them is weak
/// today, and each key only ever verifies algorithms of its own family
/// (see `keys.rs`), so a longer list widens interoperability (HS256 for the
/// shared secrets of self-issuing publishers, RS256/PS256/ES256 for
/// authorization servers, EdDSA) without opening algorithm confusion.
/// `none` cannot be expressed: jsonwebtoken has no such algorithm.
pub const DEFAULT_ALGORITHMS: &[Algorithm] = &[
    Algorithm::HS256,
    Algorithm::HS384,
    Algorithm::HS512,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Keys that verify publisher tokens.
    pub publisher: KeySet,
    /// Keys that verify subscriber tokens; may equal `publisher`.
    pub subscriber: KeySet,
    /// Accepted `alg` values; never derived from the token.
    pub algorithms: Vec<Algorithm>,
    /// The hub's resource identifier, required in the `aud` of draft-08
    /// tokens. Empty means the hub's URL.
    pub audience: String,
    /// Accept draft-07 tokens (`mercure` claim).
    pub legacy: bool,
    /// Accept the draft-07 `authorization` query parameter. Off by default:
    /// tokens in URLs end up in logs and browser history.
    pub query_token: bool,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            publisher: KeySet::default(),
            subscriber: KeySet::default(),
            algorithms: DEFAULT_ALGORITHMS.to_vec(),
            audience: String::new(),
            legacy: true,
            query_token: false,
            leeway_secs: 5,
        }
    }
}

/// The keys of one issuer.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeySet {
    /// The `iss` these keys sign for. Draft-08 tokens must name it; draft-07
    /// tokens must name it if they carry `iss` at all.
    pub issuer: Option<String>,
    pub keys: Vec<KeySource>,
    /// An authorization server's JWK Set; must be https unless on loopback.
    pub jwks_url: Option<String>,
    pub jwks_refresh_secs: u64,
}

impl Default for KeySet {
    fn default() -> Self {
        KeySet {
            issuer: None,
            keys: Vec::new(),
            jwks_url: None,
            jwks_refresh_secs: 300,
        }
    }
}

/// Key material, as written in the configuration (`{ secret = "..." }` or
/// `{ pem = "..." }`).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeySource {
    /// An HMAC secret, used as its UTF-8 bytes.
    Secret(String),
    /// A PEM public key or certificate (RSA, EC or Ed25519) to verify, or a
    /// PEM private key to sign with.
    Pem(String),
}

// Keeps secrets out of logs and panic messages.
impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Secret(_) => f.write_str("Secret(<redacted>)"),
            KeySource::Pem(pem) => write!(f, "Pem(<{} bytes>)", pem.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_accept_legacy_tokens_but_not_query_tokens() {
        let config = AuthConfig::default();
        assert!(config.legacy);
        assert!(!config.query_token);
        assert_eq!(config.algorithms, DEFAULT_ALGORITHMS);
        assert_eq!(config.publisher.jwks_refresh_secs, 300);
    }

    #[test]
    fn deserializes_partial_documents() {
        let config: AuthConfig = serde_json::from_value(serde_json::json!({
            "publisher": {"issuer": "https://example.com", "keys": [{"secret": "s3cr3t"}]},
            "subscriber": {"jwks_url": "https://as.example.com/jwks"},
            "algorithms": ["ES256", "EdDSA"],
            "legacy": false
        }))
        .unwrap();
        assert_eq!(
            config.publisher.keys,
            vec![KeySource::Secret("s3cr3t".into())]
        );
        assert_eq!(config.algorithms, vec![Algorithm::ES256, Algorithm::EdDSA]);
        assert!(!config.legacy);
        assert_eq!(config.subscriber.jwks_refresh_secs, 300);
    }

    #[test]
    fn refuses_none_and_unknown_fields() {
        assert!(serde_json::from_value::<AuthConfig>(serde_json::json!({
            "algorithms": ["none"]
        }))
        .is_err());
        assert!(serde_json::from_value::<AuthConfig>(serde_json::json!({
            "publisher": {"secret": "x"}
        }))
        .is_err());
    }

    #[test]
    fn debug_redacts_secrets() {
        let shown = format!("{:?}", KeySource::Secret("hunter2".into()));
        assert!(!shown.contains("hunter2"));
    }
}
