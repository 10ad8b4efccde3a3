//! Minting tokens, for `tidings token`, the dev hub's printed publisher
//! token, and tests.
//!
//! Draft-08 tokens carry every claim RFC 9068 requires of issuers, so any
//! conforming validator accepts them; draft-07 tokens carry only what
//! deployed hubs read, since some of them refuse an `aud` they don't expect.

use super::config::KeySource;
use super::{Generation, Role};
use jsonwebtoken::{
    encode, get_current_timestamp, Algorithm, AlgorithmFamily, EncodingKey, Header,
};
use serde_json::{json, Map, Value};
use std::time::Duration;

/// Prefix marking a draft-08 topic as a `urlpattern` matcher (the rest of
/// the string is the pattern); other topics are `exact`, `*` matches all.
pub const URL_PATTERN_PREFIX: &str = "urlpattern:";

/// What to put in a token.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub generation: Generation,
    /// `publish` or `subscribe` rights.
    pub role: Role,
    /// Draft-08: matchers (see [`URL_PATTERN_PREFIX`]); draft-07: selectors.
    pub topics: Vec<String>,
    /// Required for draft-08; draft-07 tokens without one never expire.
    pub ttl: Option<Duration>,
    pub issuer: String,
    pub audience: String,
    /// Draft-08 tokens get a random `urn:uuid:` subject when empty.
    pub subject: String,
    /// A JSON object for draft-08; any JSON for draft-07.
    pub payload: Option<Value>,
    pub algorithm: Algorithm,
}

#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error("draft-08 tokens need {0}")]
    Missing(&'static str),
    #[error("draft-08 payloads must be JSON objects")]
    Payload,
    #[error("this key cannot sign {0:?}")]
    KeyMismatch(Algorithm),
    #[error("an empty secret would let anyone sign tokens")]
    EmptySecret,
    #[error("unusable signing key: {0}")]
    Key(jsonwebtoken::errors::Error),
    #[error("signing failed: {0}")]
    Sign(jsonwebtoken::errors::Error),
}

/// Signs a token for `request` with `key`: a secret for HMAC algorithms, a
/// PEM private key otherwise.
pub fn mint(request: &TokenRequest, key: &KeySource) -> Result<String, MintError> {
    let key = encoding_key(key, request.algorithm)?;
    let mut header = Header::new(request.algorithm);
    let claims = match request.generation {
        Generation::Draft08 => {
            header.typ = Some("at+jwt".into());
            draft08_claims(request)?
        }
        Generation::Draft07 => draft07_claims(request),
    };
    encode(&header, &claims, &key).map_err(MintError::Sign)
}

fn encoding_key(key: &KeySource, alg: Algorithm) -> Result<EncodingKey, MintError> {
    let pem = match (key, alg.family()) {
        (KeySource::Secret(secret), _) if secret.is_empty() => return Err(MintError::EmptySecret),
        (KeySource::Secret(secret), AlgorithmFamily::Hmac) => {
            return Ok(EncodingKey::from_secret(secret.as_bytes()))
        }
        (KeySource::Pem(pem), family) if family != AlgorithmFamily::Hmac => pem.as_bytes(),
        _ => return Err(MintError::KeyMismatch(alg)),
    };
    match alg.family() {
        AlgorithmFamily::Rsa => EncodingKey::from_rsa_pem(pem),
        AlgorithmFamily::Ec => EncodingKey::from_ec_pem(pem),
        _ => EncodingKey::from_ed_pem(pem),
    }
    .map_err(MintError::Key)
}

fn action(role: Role) -> &'static str {
    match role {
        Role::Publisher => "publish",
        Role::Subscriber => "subscribe",
    }
}

fn draft08_claims(request: &TokenRequest) -> Result<Value, MintError> {
    let ttl = request.ttl.ok_or(MintError::Missing("a ttl"))?;
    if request.issuer.is_empty() {
        return Err(MintError::Missing("an issuer"));
    }
    if request.audience.is_empty() {
        return Err(MintError::Missing("an audience"));
    }
    let now = get_current_timestamp();
    let subject = match request.subject.as_str() {
        "" => format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        subject => subject.to_owned(),
    };
    // A detail needs at least one topic; no topics means no rights.
    let details = if request.topics.is_empty() {
        Vec::new()
    } else {
        let mut detail = Map::new();
        detail.insert(
            "type".into(),
            json!("https://mercure.rocks/authorization-detail"),
        );
        detail.insert("actions".into(), json!([action(request.role)]));
        detail.insert(
            "topics".into(),
            request.topics.iter().map(|t| topic_matcher(t)).collect(),
        );
        match &request.payload {
            Some(payload @ Value::Object(_)) => {
                detail.insert("payload".into(), payload.clone());
            }
            Some(_) => return Err(MintError::Payload),
            None => {}
        }
        vec![Value::Object(detail)]
    };
    Ok(json!({
        "iss": request.issuer,
        "aud": request.audience,
        "sub": subject,
        "client_id": request.issuer,
        "iat": now,
        "exp": now.saturating_add(ttl.as_secs()),
        "jti": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        "authorization_details": details,
    }))
}

fn topic_matcher(topic: &str) -> Value {
    match topic.strip_prefix(URL_PATTERN_PREFIX) {
        Some(pattern) => json!({"match": pattern, "match_type": "urlpattern"}),
        None => json!({"match": topic}),
    }
}

fn draft07_claims(request: &TokenRequest) -> Value {
    let mut mercure = Map::new();
    mercure.insert(action(request.role).into(), json!(request.topics));
    if let Some(payload) = &request.payload {
        mercure.insert("payload".into(), payload.clone());
    }
    let now = get_current_timestamp();
    let mut claims = Map::new();
    claims.insert("mercure".into(), Value::Object(mercure));
    claims.insert("iat".into(), json!(now));
    if let Some(ttl) = request.ttl {
        claims.insert("exp".into(), json!(now.saturating_add(ttl.as_secs())));
    }
    for (name, value) in [("iss", &request.issuer), ("sub", &request.subject)] {
        if !value.is_empty() {
            claims.insert(name.into(), json!(value));
        }
    }
    Value::Object(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::config::AuthConfig;
    use crate::auth::testing::{fixture, hub_url, AUDIENCE, ISSUER, SECRET};
    use crate::auth::{Authorizer, KeySet};

    fn request(generation: Generation, role: Role, algorithm: Algorithm) -> TokenRequest {
        TokenRequest {
            generation,
            role,
            topics: vec![
                "https://example.com/books/1".into(),
                format!("{URL_PATTERN_PREFIX}https://example.com/authors/:id"),
            ],
            ttl: Some(Duration::from_secs(600)),
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            subject: "urn:uuid:me".into(),
            payload: Some(json!({"name": "me"})),
            algorithm,
        }
    }

    /// (algorithm, signing key, verifying key)
    fn keys() -> Vec<(Algorithm, KeySource, KeySource)> {
        let pem = |name: &str| KeySource::Pem(fixture(name).into());
        vec![
            (
                Algorithm::HS256,
                KeySource::Secret(SECRET.into()),
                KeySource::Secret(SECRET.into()),
            ),
            (Algorithm::RS256, pem("rsa.pem"), pem("rsa.pub.pem")),
            (Algorithm::ES256, pem("ec.pem"), pem("ec.pub.pem")),
            (Algorithm::EdDSA, pem("ed25519.pem"), pem("ed25519.pub.pem")),
        ]
    }

    async fn verifier(key: KeySource) -> Authorizer {
        let keys = KeySet {
            issuer: Some(ISSUER.into()),
            keys: vec![key],
            ..KeySet::default()
        };
        let config = AuthConfig {
            publisher: keys.clone(),
            subscriber: keys,
            audience: AUDIENCE.into(),
            ..AuthConfig::default()
        };
        Authorizer::new(config, &hub_url()).await.unwrap()
    }

    #[tokio::test]
    async fn draft08_round_trip() {
        for (alg, signing, verifying) in keys() {
            let auth = verifier(verifying).await;
            let token = mint(
                &request(Generation::Draft08, Role::Publisher, alg),
                &signing,
            )
            .unwrap();
            let grants = auth.verify(&token, Role::Publisher).unwrap();
            assert_eq!(grants.generation, Generation::Draft08, "{alg:?}");
            assert_eq!(grants.subject.as_deref(), Some("urn:uuid:me"));
            assert!(grants.may_publish("https://example.com/books/1"), "{alg:?}");
            assert!(
                grants.may_publish("https://example.com/authors/7"),
                "{alg:?}"
            );
            assert!(
                !grants.may_publish("https://example.com/books/2"),
                "{alg:?}"
            );
            assert!(
                !grants.may_subscribe_to("https://example.com/books/1"),
                "{alg:?}"
            );
        }
    }

    #[tokio::test]
    async fn draft07_round_trip() {
        for (alg, signing, verifying) in keys() {
            let auth = verifier(verifying).await;
            let mut request = request(Generation::Draft07, Role::Subscriber, alg);
            request.topics = vec!["https://example.com/books/1".into(), "urn:a".into()];
            request.payload = Some(json!("anything"));
            let token = mint(&request, &signing).unwrap();
            let grants = auth.verify(&token, Role::Subscriber).unwrap();
            assert_eq!(grants.generation, Generation::Draft07, "{alg:?}");
            assert!(grants.may_read(["urn:a"]), "{alg:?}");
            assert!(!grants.may_publish("urn:a"), "{alg:?}");
            assert_eq!(grants.payload_for("x"), Some(&json!("anything")));
        }
    }

    #[tokio::test]
    async fn draft08_claims_are_complete() {
        let mut request = request(Generation::Draft08, Role::Subscriber, Algorithm::HS256);
        request.subject.clear();
        request.topics = vec!["*".into()];
        let token = mint(&request, &KeySource::Secret(SECRET.into())).unwrap();
        let data = jsonwebtoken::dangerous::insecure_decode::<Value>(&token).unwrap();
        assert_eq!(data.header.typ.as_deref(), Some("at+jwt"));
        for claim in ["iss", "exp", "aud", "sub", "client_id", "iat", "jti"] {
            assert!(data.claims.get(claim).is_some(), "{claim}");
        }
        assert!(data.claims["sub"]
            .as_str()
            .unwrap()
            .starts_with("urn:uuid:"));
        assert_eq!(
            data.claims["authorization_details"][0]["payload"],
            json!({"name": "me"})
        );
        let auth = verifier(KeySource::Secret(SECRET.into())).await;
        let grants = auth.verify(&token, Role::Subscriber).unwrap();
        assert_eq!(
            grants.payload_for("https://example.com/any"),
            Some(&json!({"name": "me"}))
        );
    }

    #[test]
    fn refuses_incomplete_requests_and_mismatched_keys() {
        let secret = KeySource::Secret(SECRET.into());
        let mut no_ttl = request(Generation::Draft08, Role::Publisher, Algorithm::HS256);
        no_ttl.ttl = None;
        assert!(matches!(mint(&no_ttl, &secret), Err(MintError::Missing(_))));
        let mut bad_payload = request(Generation::Draft08, Role::Subscriber, Algorithm::HS256);
        bad_payload.payload = Some(json!([1]));
        assert!(matches!(
            mint(&bad_payload, &secret),
            Err(MintError::Payload)
        ));
        let rs256 = request(Generation::Draft08, Role::Publisher, Algorithm::RS256);
        assert!(matches!(
            mint(&rs256, &secret),
            Err(MintError::KeyMismatch(_))
        ));
        let hs256 = request(Generation::Draft08, Role::Publisher, Algorithm::HS256);
        let pem = KeySource::Pem(fixture("rsa.pem").into());
        assert!(matches!(mint(&hs256, &pem), Err(MintError::KeyMismatch(_))));
        let es256 = request(Generation::Draft08, Role::Publisher, Algorithm::ES256);
        assert!(matches!(mint(&es256, &pem), Err(MintError::Key(_))));
        assert!(matches!(
            mint(&hs256, &KeySource::Secret(String::new())),
            Err(MintError::EmptySecret)
        ));
    }

    #[test]
    fn draft07_without_ttl_never_expires() {
        let mut request = request(Generation::Draft07, Role::Publisher, Algorithm::HS256);
        request.ttl = None;
        request.issuer.clear();
        let token = mint(&request, &KeySource::Secret(SECRET.into())).unwrap();
        let claims = jsonwebtoken::dangerous::insecure_decode::<Value>(&token)
            .unwrap()
            .claims;
        assert!(claims.get("exp").is_none());
        assert!(claims.get("iss").is_none());
        assert!(claims.get("aud").is_none());
        assert_eq!(
            claims["mercure"]["publish"][0],
            "https://example.com/books/1"
        );
    }
}
