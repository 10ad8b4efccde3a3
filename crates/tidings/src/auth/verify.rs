//! Token verification: turns a presented JWT into [`Grants`] or refuses it.
//!
//! The order matters: the header is checked (algorithm allowlist, token
//! type) and the signing issuer chosen before any key is tried, keys are
//! tried only from that issuer's ring, and claims are trusted only once a
//! signature verified.

use super::cache::Verified;
use super::config::AuthConfig;
use super::grants::{GrantError, Grants, Rights};
use super::keys::KeyRing;
use super::{AuthError, AuthSetupError, Generation, Role};
use jsonwebtoken::errors::{Error as JwtError, ErrorKind};
use jsonwebtoken::{decode, decode_header, Algorithm, Header, Validation};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use url::Url;

/// Longest token considered, in bytes; parsing and matcher compilation are
/// bounded by it.
pub const MAX_TOKEN_LEN: usize = 64 * 1024;
/// Clock skew beyond an hour is a misconfiguration, not skew.
const MAX_LEEWAY_SECS: u64 = 3600;

/// Verifies tokens for both roles; cheap to share behind an `Arc`.
pub struct Authorizer {
    config: AuthConfig,
    verified: Verified,
    publisher: Arc<KeyRing>,
    subscriber: Arc<KeyRing>,
    hub_url: Url,
}

impl Authorizer {
    /// Loads the configured keys and fetches JWK Sets once; JWK Sets are
    /// then refreshed in the background until the `Authorizer` is dropped.
    /// An empty `audience` becomes the hub's URL.
    pub async fn new(mut config: AuthConfig, hub_url: &Url) -> Result<Authorizer, AuthSetupError> {
        if config.algorithms.is_empty() {
            return Err(AuthSetupError::NoAlgorithms);
        }
        if config.audience.is_empty() {
            config.audience = hub_url.to_string();
        }
        let publisher =
            Arc::new(KeyRing::load(&config.publisher, Role::Publisher, config.legacy).await?);
        // One ring (and one refresh task) when both roles trust the same keys.
        let subscriber = if config.subscriber == config.publisher {
            publisher.clone()
        } else {
            Arc::new(KeyRing::load(&config.subscriber, Role::Subscriber, config.legacy).await?)
        };
        Ok(Authorizer {
            config,
            verified: Verified::default(),
            publisher,
            subscriber,
            hub_url: hub_url.clone(),
        })
    }

    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// Verifies a token presented to a `role` endpoint. Every failure is
    /// [`AuthError::InvalidToken`]; the reason is only logged.
    pub fn verify(&self, token: &str, role: Role) -> Result<Arc<Grants>, AuthError> {
        let keys = self.ring(role).version();
        if let Some(grants) = self.verified.get(token, role, keys) {
            return Ok(grants);
        }
        let grants = self.check(token, role).map(Arc::new).map_err(|refusal| {
            tracing::debug!(%role, reason = %refusal, "refused an access token");
            AuthError::InvalidToken
        })?;
        self.verified.put(token, role, keys, &grants);
        Ok(grants)
    }

    fn ring(&self, role: Role) -> &KeyRing {
        match role {
            Role::Publisher => &self.publisher,
            Role::Subscriber => &self.subscriber,
        }
    }

    fn check(&self, token: &str, role: Role) -> Result<Grants, Refusal> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(Refusal::TooLong);
        }
        let header = decode_header(token).map_err(Refusal::Malformed)?;
        // We implement no JWS extension, so none can be critical.
        if header.crit.is_some() {
            return Err(Refusal::Critical);
        }
        if !self.config.algorithms.contains(&header.alg) {
            return Err(Refusal::Algorithm(header.alg));
        }
        let unverified: Unverified = jsonwebtoken::dangerous::insecure_decode(token)
            .map_err(Refusal::Malformed)?
            .claims;
        let generation = self.generation(&header, &unverified)?;
        let ring = self.ring(role);
        let issuer = signing_issuer(ring, generation, unverified.iss.as_deref())?;
        let validation = self.validation(generation, header.alg, issuer);
        let claims = verified_claims(ring, token, &header, &validation)?;
        self.grants(generation, claims)
    }

    /// Draft-08 tokens are `at+jwt`, or at least claim to be by carrying
    /// `authorization_details` (and are then refused for their `typ`).
    /// Anything else is a draft-07 token, if those are accepted.
    fn generation(&self, header: &Header, claims: &Unverified) -> Result<Generation, Refusal> {
        if header.typ.as_deref().is_some_and(is_access_token_type) {
            Ok(Generation::Draft08)
        } else if claims.authorization_details.is_some() {
            Err(Refusal::Type(header.typ.clone()))
        } else if self.config.legacy {
            Ok(Generation::Draft07)
        } else {
            Err(Refusal::Legacy)
        }
    }

    fn validation(
        &self,
        generation: Generation,
        alg: Algorithm,
        issuer: Option<&str>,
    ) -> Validation {
        let mut validation = Validation::new(alg);
        // jsonwebtoken subtracts the leeway from the current time.
        validation.leeway = self.config.leeway_secs.min(MAX_LEEWAY_SECS);
        validation.validate_nbf = true;
        match generation {
            Generation::Draft08 => {
                validation.set_required_spec_claims(&["exp", "iss", "aud"]);
                validation.set_audience(&[&self.config.audience]);
            }
            Generation::Draft07 => {
                // `exp` is still enforced when present.
                validation.required_spec_claims.clear();
                validation.validate_aud = false;
            }
        }
        if let Some(issuer) = issuer {
            validation.set_issuer(&[issuer]);
        }
        validation
    }

    fn grants(&self, generation: Generation, claims: Claims) -> Result<Grants, Refusal> {
        let rights = match (generation, &claims.authorization_details, &claims.mercure) {
            (Generation::Draft08, Some(details), _) => {
                Rights::from_authorization_details(details, &self.hub_url)?
            }
            (Generation::Draft07, _, Some(claim)) => {
                Rights::from_mercure_claim(claim, &self.hub_url)?
            }
            _ => Rights::default(),
        };
        Ok(Grants {
            generation,
            subject: claims.sub,
            issuer: claims.iss,
            expires_at: claims.exp.and_then(system_time),
            rights,
        })
    }
}

/// RFC 9068 `typ`, compared case-insensitively and with the optional
/// `application/` prefix.
fn is_access_token_type(typ: &str) -> bool {
    let typ = match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &typ[12..],
        _ => typ,
    };
    typ.eq_ignore_ascii_case("at+jwt")
}

/// The issuer whose keys may verify this token. A draft-08 token must name
/// the ring's issuer; a draft-07 token may omit `iss` but not contradict it.
fn signing_issuer<'a>(
    ring: &'a KeyRing,
    generation: Generation,
    claimed: Option<&str>,
) -> Result<Option<&'a str>, Refusal> {
    let trusted = ring.issuer();
    let fits = match (generation, trusted, claimed) {
        (Generation::Draft08, Some(trusted), Some(claimed)) => trusted == claimed,
        (Generation::Draft08, _, _) => false,
        (Generation::Draft07, Some(trusted), Some(claimed)) => trusted == claimed,
        (Generation::Draft07, _, _) => true,
    };
    if fits {
        Ok(trusted)
    } else {
        Err(Refusal::Issuer(claimed.map(str::to_owned)))
    }
}

/// Tries the ring's keys that fit the header until one verifies the
/// signature, then applies `validation` to the claims.
fn verified_claims(
    ring: &KeyRing,
    token: &str,
    header: &Header,
    validation: &Validation,
) -> Result<Claims, Refusal> {
    let keys = ring.snapshot();
    let mut outcome = Err(Refusal::NoKey);
    for key in keys.fitting(header.alg, header.kid.as_deref()) {
        outcome = decode::<Claims>(token, key, validation)
            .map(|data| data.claims)
            .map_err(Refusal::Rejected);
        match &outcome {
            Err(Refusal::Rejected(error)) if is_key_mismatch(error) => continue,
            _ => break,
        }
    }
    outcome
}

/// Errors that mean "not this key"; any other error came after a key
/// verified the signature, so trying more keys would only hide it.
fn is_key_mismatch(error: &JwtError) -> bool {
    matches!(
        error.kind(),
        ErrorKind::InvalidSignature
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidEddsaKey
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidKeyFormat
            | ErrorKind::InvalidAlgorithm
    )
}

fn system_time(exp: f64) -> Option<SystemTime> {
    UNIX_EPOCH.checked_add(Duration::try_from_secs_f64(exp).ok()?)
}

/// Claims read before verification, only to pick the generation and the
/// issuer whose keys to try; never trusted for anything else.
#[derive(Deserialize)]
struct Unverified {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    authorization_details: Option<serde::de::IgnoredAny>,
}

/// Claims of a verified token.
#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    exp: Option<f64>,
    #[serde(default)]
    authorization_details: Option<Value>,
    #[serde(default)]
    mercure: Option<Value>,
}

/// Why a token was refused; logged, never shown to the client.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("longer than {MAX_TOKEN_LEN} bytes")]
    TooLong,
    #[error("malformed: {0}")]
    Malformed(JwtError),
    #[error("has critical header parameters")]
    Critical,
    #[error("algorithm {0:?} is not allowed")]
    Algorithm(Algorithm),
    #[error("typ {0:?} is not at+jwt")]
    Type(Option<String>),
    #[error("not an at+jwt access token, and draft-07 tokens are disabled")]
    Legacy,
    #[error("issuer {0:?} is not trusted for this role")]
    Issuer(Option<String>),
    #[error("no trusted key fits its alg and kid")]
    NoKey,
    #[error("{0}")]
    Rejected(JwtError),
    #[error("{0}")]
    Grants(#[from] GrantError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::config::{KeySet, KeySource};
    use crate::auth::testing::{
        authorizer, claims08, fixture, hub_url, issuer_keys, jwk_for, now, serve_jwks, sign,
        sign_none, AUDIENCE, ISSUER, SECRET,
    };
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    fn at_jwt(alg: Algorithm) -> Header {
        let mut header = Header::new(alg);
        header.typ = Some("at+jwt".into());
        header
    }

    fn hs256(header: Header, claims: &Value) -> String {
        sign(
            &header,
            claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
    }

    async fn secret_authorizer() -> Authorizer {
        authorizer(issuer_keys(ISSUER, KeySource::Secret(SECRET.into()))).await
    }

    fn refusal(auth: &Authorizer, token: &str, role: Role) -> Refusal {
        match auth.check(token, role) {
            Err(refusal) => refusal,
            Ok(grants) => panic!("accepted: {grants:?}"),
        }
    }

    #[tokio::test]
    async fn accepts_a_good_draft08_token() {
        let auth = secret_authorizer().await;
        let token = hs256(
            at_jwt(Algorithm::HS256),
            &claims08("publish", "https://example.com/books/1"),
        );
        let grants = auth.verify(&token, Role::Publisher).unwrap();
        assert_eq!(grants.generation, Generation::Draft08);
        assert_eq!(grants.issuer.as_deref(), Some(ISSUER));
        assert_eq!(grants.subject.as_deref(), Some("urn:uuid:subscriber"));
        assert!(grants.expires_at.is_some_and(|at| at > SystemTime::now()));
        assert!(grants.may_publish("https://example.com/books/1"));
        assert!(!grants.may_publish("https://example.com/books/2"));
    }

    #[tokio::test]
    async fn typ_must_be_at_jwt() {
        let auth = secret_authorizer().await;
        let claims = claims08("publish", "*");
        for typ in [
            "at+jwt",
            "AT+JWT",
            "application/at+jwt",
            "Application/At+Jwt",
        ] {
            let mut header = at_jwt(Algorithm::HS256);
            header.typ = Some(typ.into());
            assert!(
                auth.check(&hs256(header, &claims), Role::Publisher).is_ok(),
                "{typ}"
            );
        }
        for typ in [Some("JWT"), Some("jwt+at"), Some("application/jwt"), None] {
            let mut header = at_jwt(Algorithm::HS256);
            header.typ = typ.map(str::to_owned);
            assert!(
                matches!(
                    refusal(&auth, &hs256(header, &claims), Role::Publisher),
                    Refusal::Type(_)
                ),
                "{typ:?}"
            );
        }
    }

    #[tokio::test]
    async fn exp_is_required_and_enforced() {
        let auth = secret_authorizer().await;
        let mut claims = claims08("publish", "*");
        claims.as_object_mut().unwrap().remove("exp");
        let missing = refusal(
            &auth,
            &hs256(at_jwt(Algorithm::HS256), &claims),
            Role::Publisher,
        );
        assert!(
            matches!(&missing, Refusal::Rejected(e) if matches!(e.kind(), ErrorKind::MissingRequiredClaim(c) if c == "exp")),
            "{missing}"
        );
        claims["exp"] = json!(now() - 60);
        let expired = refusal(
            &auth,
            &hs256(at_jwt(Algorithm::HS256), &claims),
            Role::Publisher,
        );
        assert!(
            matches!(&expired, Refusal::Rejected(e) if matches!(e.kind(), ErrorKind::ExpiredSignature)),
            "{expired}"
        );
        claims["exp"] = json!("tomorrow");
        assert!(auth
            .check(&hs256(at_jwt(Algorithm::HS256), &claims), Role::Publisher)
            .is_err());
    }

    #[tokio::test]
    async fn leeway_tolerates_small_skew() {
        let auth = secret_authorizer().await;
        let mut claims = claims08("publish", "*");
        claims["exp"] = json!(now() - 2);
        assert!(auth
            .check(&hs256(at_jwt(Algorithm::HS256), &claims), Role::Publisher)
            .is_ok());
    }

    #[tokio::test]
    async fn nbf_in_the_future_is_refused() {
        let auth = secret_authorizer().await;
        let mut claims = claims08("publish", "*");
        claims["nbf"] = json!(now() + 600);
        let refused = refusal(
            &auth,
            &hs256(at_jwt(Algorithm::HS256), &claims),
            Role::Publisher,
        );
        assert!(
            matches!(&refused, Refusal::Rejected(e) if matches!(e.kind(), ErrorKind::ImmatureSignature)),
            "{refused}"
        );
        claims["nbf"] = json!(now() - 10);
        assert!(auth
            .check(&hs256(at_jwt(Algorithm::HS256), &claims), Role::Publisher)
            .is_ok());
    }

    #[tokio::test]
    async fn aud_must_contain_the_hub() {
        let auth = secret_authorizer().await;
        let mut claims = claims08("publish", "*");
        for good in [json!(AUDIENCE), json!(["https://other.example", AUDIENCE])] {
            claims["aud"] = good;
            assert!(auth
                .check(&hs256(at_jwt(Algorithm::HS256), &claims), Role::Publisher)
                .is_ok());
        }
        for bad in [
            json!("https://other.example"),
            json!([]),
            json!(["https://other.example"]),
        ] {
            claims["aud"] = bad;
            let refused = refusal(
                &auth,
                &hs256(at_jwt(Algorithm::HS256), &claims),
                Role::Publisher,
            );
            assert!(
                matches!(&refused, Refusal::Rejected(e) if matches!(e.kind(), ErrorKind::InvalidAudience)),
                "{refused}"
            );
        }
        claims.as_object_mut().unwrap().remove("aud");
        assert!(auth
            .check(&hs256(at_jwt(Algorithm::HS256), &claims), Role::Publisher)
            .is_err());
    }

    #[tokio::test]
    async fn audience_defaults_to_the_hub_url() {
        let mut config = issuer_keys(ISSUER, KeySource::Secret(SECRET.into()));
        config.audience = String::new();
        let auth = Authorizer::new(config, &hub_url()).await.unwrap();
        assert_eq!(auth.config().audience, hub_url().as_str());
    }

    #[tokio::test]
    async fn iss_must_be_the_key_sets_issuer() {
        let auth = secret_authorizer().await;
        let mut claims = claims08("publish", "*");
        claims["iss"] = json!("https://impostor.example");
        assert!(matches!(
            refusal(
                &auth,
                &hs256(at_jwt(Algorithm::HS256), &claims),
                Role::Publisher
            ),
            Refusal::Issuer(_)
        ));
        claims.as_object_mut().unwrap().remove("iss");
        assert!(matches!(
            refusal(
                &auth,
                &hs256(at_jwt(Algorithm::HS256), &claims),
                Role::Publisher
            ),
            Refusal::Issuer(None)
        ));
        claims["iss"] = json!([ISSUER]);
        assert!(matches!(
            refusal(
                &auth,
                &hs256(at_jwt(Algorithm::HS256), &claims),
                Role::Publisher
            ),
            Refusal::Malformed(_)
        ));
    }

    #[tokio::test]
    async fn keys_of_another_issuer_never_verify() {
        // Publishers are one issuer, subscribers another: each role only
        // trusts its own issuer's key.
        let mut config = issuer_keys(ISSUER, KeySource::Secret(SECRET.into()));
        config.subscriber.issuer = Some("https://as.example.com".into());
        config.subscriber.keys = vec![KeySource::Secret(
            "a different secret, also long enough".into(),
        )];
        let auth = authorizer(config).await;
        let publisher_token = hs256(at_jwt(Algorithm::HS256), &claims08("subscribe", "*"));
        assert!(auth.check(&publisher_token, Role::Publisher).is_ok());
        // Signed by the publisher issuer's key, claiming its own issuer...
        assert!(matches!(
            refusal(&auth, &publisher_token, Role::Subscriber),
            Refusal::Issuer(_)
        ));
        // ...or claiming the subscriber issuer.
        let mut claims = claims08("subscribe", "*");
        claims["iss"] = json!("https://as.example.com");
        let forged = hs256(at_jwt(Algorithm::HS256), &claims);
        let refused = refusal(&auth, &forged, Role::Subscriber);
        assert!(
            matches!(&refused, Refusal::Rejected(e) if matches!(e.kind(), ErrorKind::InvalidSignature)),
            "{refused}"
        );
    }

    #[tokio::test]
    async fn algorithms_outside_the_allowlist_are_refused() {
        let mut config = issuer_keys(ISSUER, KeySource::Secret(SECRET.into()));
        config.algorithms = vec![Algorithm::HS512];
        let auth = authorizer(config).await;
        let token = hs256(at_jwt(Algorithm::HS256), &claims08("publish", "*"));
        assert!(matches!(
            refusal(&auth, &token, Role::Publisher),
            Refusal::Algorithm(Algorithm::HS256)
        ));
    }

    #[tokio::test]
    async fn alg_none_is_refused() {
        let auth = secret_authorizer().await;
        let claims = claims08("publish", "*");
        for alg in ["none", "None", "NONE"] {
            let token = sign_none(&json!({"alg": alg, "typ": "at+jwt"}), &claims);
            assert!(
                matches!(
                    refusal(&auth, &token, Role::Publisher),
                    Refusal::Malformed(_)
                ),
                "{alg}"
            );
            assert_eq!(
                auth.verify(&token, Role::Publisher).unwrap_err(),
                AuthError::InvalidToken
            );
        }
    }

    #[tokio::test]
    async fn hmac_with_a_public_key_is_refused() {
        let public = fixture("rsa.pub.pem");
        let auth = authorizer(issuer_keys(ISSUER, KeySource::Pem(public.into()))).await;
        let claims = claims08("publish", "*");
        let rs256 = sign(
            &at_jwt(Algorithm::RS256),
            &claims,
            &EncodingKey::from_rsa_pem(fixture("rsa.pem").as_bytes()).unwrap(),
        );
        assert!(auth.check(&rs256, Role::Publisher).is_ok());
        // The classic confusion: HMAC keyed with the public key's bytes.
        let der = jsonwebtoken::DecodingKey::from_rsa_pem(public.as_bytes()).unwrap();
        for secret in [public.as_bytes(), der.as_bytes()] {
            let forged = sign(
                &at_jwt(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(secret),
            );
            assert!(matches!(
                refusal(&auth, &forged, Role::Publisher),
                Refusal::NoKey
            ));
        }
    }

    #[tokio::test]
    async fn key_material_in_the_token_is_ignored() {
        use jsonwebtoken::jwk::Jwk;
        let auth = authorizer(issuer_keys(
            ISSUER,
            KeySource::Pem(fixture("ec.pub.pem").into()),
        ))
        .await;
        // Signed with an attacker's key that the token itself carries.
        let attacker = EncodingKey::from_ec_pem(fixture("ec2.pem").as_bytes()).unwrap();
        let mut header = at_jwt(Algorithm::ES256);
        header.jwk = Some(Jwk::from_encoding_key(&attacker, Algorithm::ES256).unwrap());
        header.jku = Some("https://attacker.example/jwks".into());
        header.x5u = Some("https://attacker.example/cert".into());
        let token = sign(&header, &claims08("publish", "*"), &attacker);
        let refused = refusal(&auth, &token, Role::Publisher);
        assert!(
            matches!(&refused, Refusal::Rejected(e) if matches!(e.kind(), ErrorKind::InvalidSignature)),
            "{refused}"
        );
    }

    #[tokio::test]
    async fn critical_headers_are_refused() {
        let auth = secret_authorizer().await;
        let mut header = at_jwt(Algorithm::HS256);
        header.crit = Some(vec!["exp".into()]);
        assert!(matches!(
            refusal(
                &auth,
                &hs256(header, &claims08("publish", "*")),
                Role::Publisher
            ),
            Refusal::Critical
        ));
    }

    #[tokio::test]
    async fn authorization_details_without_at_jwt_are_refused() {
        let auth = secret_authorizer().await;
        let token = hs256(Header::new(Algorithm::HS256), &claims08("publish", "*"));
        assert!(matches!(
            refusal(&auth, &token, Role::Publisher),
            Refusal::Type(_)
        ));
    }

    #[tokio::test]
    async fn bad_details_refuse_the_token() {
        let auth = secret_authorizer().await;
        let mut claims = claims08("publish", "*");
        claims["authorization_details"][0]["topics"][0]["match_type"] = json!("regex");
        assert!(matches!(
            refusal(
                &auth,
                &hs256(at_jwt(Algorithm::HS256), &claims),
                Role::Publisher
            ),
            Refusal::Grants(_)
        ));
    }

    #[tokio::test]
    async fn at_jwt_without_details_grants_nothing() {
        let auth = secret_authorizer().await;
        let mut claims = claims08("publish", "*");
        claims
            .as_object_mut()
            .unwrap()
            .remove("authorization_details");
        claims["mercure"] = json!({"publish": ["*"]});
        let grants = auth
            .check(&hs256(at_jwt(Algorithm::HS256), &claims), Role::Publisher)
            .unwrap();
        assert_eq!(grants.generation, Generation::Draft08);
        assert!(!grants.may_publish("x"));
    }

    #[tokio::test]
    async fn draft07_tokens() {
        let auth = secret_authorizer().await;
        let legacy = |claims: Value| hs256(Header::new(Algorithm::HS256), &claims);
        // No typ, iss, aud or exp needed.
        let grants = auth
            .check(
                &legacy(json!({"mercure": {"publish": ["*"], "payload": {"u": 1}}})),
                Role::Publisher,
            )
            .unwrap();
        assert_eq!(grants.generation, Generation::Draft07);
        assert!(grants.may_publish("https://example.com/a"));
        assert_eq!(grants.payload_for("x"), Some(&json!({"u": 1})));
        assert!(grants.expires_at.is_none());
        // exp enforced when present.
        let expired = legacy(json!({"mercure": {"publish": ["*"]}, "exp": now() - 60}));
        assert!(auth.check(&expired, Role::Publisher).is_err());
        // iss may be absent, but not another issuer.
        let other =
            legacy(json!({"mercure": {"publish": ["*"]}, "iss": "https://impostor.example"}));
        assert!(matches!(
            refusal(&auth, &other, Role::Publisher),
            Refusal::Issuer(_)
        ));
        let same = legacy(json!({"mercure": {"publish": ["*"]}, "iss": ISSUER, "aud": "anything"}));
        assert!(auth.check(&same, Role::Publisher).is_ok());
        // Neither claim: valid, no rights.
        let bare = auth
            .check(&legacy(json!({"sub": "someone"})), Role::Publisher)
            .unwrap();
        assert!(!bare.may_publish("x") && !bare.may_subscribe_to("x"));
        // Wrong signature still refused.
        let forged = sign(
            &Header::new(Algorithm::HS256),
            &json!({"mercure": {"publish": ["*"]}}),
            &EncodingKey::from_secret(b"guess"),
        );
        assert!(auth.check(&forged, Role::Publisher).is_err());
    }

    #[tokio::test]
    async fn draft07_tokens_refused_when_legacy_is_off() {
        let mut config = issuer_keys(ISSUER, KeySource::Secret(SECRET.into()));
        config.legacy = false;
        let auth = authorizer(config).await;
        let token = hs256(
            Header::new(Algorithm::HS256),
            &json!({"mercure": {"publish": ["*"]}}),
        );
        assert!(matches!(
            refusal(&auth, &token, Role::Publisher),
            Refusal::Legacy
        ));
        assert!(auth
            .check(
                &hs256(at_jwt(Algorithm::HS256), &claims08("publish", "*")),
                Role::Publisher
            )
            .is_ok());
    }

    #[tokio::test]
    async fn setup_refuses_issuerless_keys_without_legacy_and_empty_allowlists() {
        let mut config = issuer_keys(ISSUER, KeySource::Secret(SECRET.into()));
        config.legacy = false;
        config.subscriber.issuer = None;
        config.subscriber.keys = vec![KeySource::Secret("another secret for subscribers!!".into())];
        assert!(matches!(
            Authorizer::new(config, &hub_url()).await.err(),
            Some(AuthSetupError::MissingIssuer {
                role: Role::Subscriber
            })
        ));
        let mut config = issuer_keys(ISSUER, KeySource::Secret(SECRET.into()));
        config.algorithms.clear();
        assert!(matches!(
            Authorizer::new(config, &hub_url()).await.err(),
            Some(AuthSetupError::NoAlgorithms)
        ));
    }

    #[tokio::test]
    async fn kid_selects_among_trusted_keys_only() {
        let mut config = issuer_keys(ISSUER, KeySource::Pem(fixture("ec.pub.pem").into()));
        config
            .publisher
            .keys
            .push(KeySource::Pem(fixture("ec2.pub.pem").into()));
        let auth = authorizer(config).await;
        let key = EncodingKey::from_ec_pem(fixture("ec2.pem").as_bytes()).unwrap();
        let mut header = at_jwt(Algorithm::ES256);
        header.kid = Some("unknown".into());
        // Static keys have no kid, so both are still candidates.
        assert!(auth
            .check(
                &sign(&header, &claims08("publish", "*"), &key),
                Role::Publisher
            )
            .is_ok());
    }

    #[tokio::test]
    async fn oversized_and_garbage_tokens_are_refused() {
        let auth = secret_authorizer().await;
        assert!(matches!(
            refusal(&auth, &"a".repeat(MAX_TOKEN_LEN + 1), Role::Publisher),
            Refusal::TooLong
        ));
        for garbage in ["", "a.b", "a.b.c", "....", "eyJhbGciOiJIUzI1NiJ9.e30"] {
            assert!(auth.check(garbage, Role::Publisher).is_err(), "{garbage}");
        }
    }

    #[tokio::test]
    async fn jwks_keys_verify_rotate_and_survive_outages() {
        let server = serve_jwks(json!({"keys": [jwk_for("ec.pem", "one")]})).await;
        let config = AuthConfig {
            subscriber: KeySet {
                issuer: Some(ISSUER.into()),
                jwks_url: Some(server.url()),
                jwks_refresh_secs: 1,
                ..KeySet::default()
            },
            audience: AUDIENCE.into(),
            ..AuthConfig::default()
        };
        let auth = authorizer(config).await;
        let token = |pem: &str, kid: &str| {
            let mut header = at_jwt(Algorithm::ES256);
            header.kid = Some(kid.into());
            let key = EncodingKey::from_ec_pem(fixture(pem).as_bytes()).unwrap();
            sign(&header, &claims08("subscribe", "*"), &key)
        };
        let (one, two) = (token("ec.pem", "one"), token("ec2.pem", "two"));
        assert!(auth.verify(&one, Role::Subscriber).is_ok());
        assert!(matches!(
            refusal(&auth, &two, Role::Subscriber),
            Refusal::NoKey
        ));
        assert!(
            auth.verify(&one, Role::Publisher).is_err(),
            "JWKS keys are the subscriber's"
        );

        server.set(json!({"keys": [jwk_for("ec2.pem", "two")]}));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while auth.verify(&two, Role::Subscriber).is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "keys never refreshed"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(auth.verify(&one, Role::Subscriber).is_err(), "rotated out");

        server.set(json!({"not": "a JWK Set"}));
        let seen = server.requests();
        while server.requests() < seen + 2 {
            assert!(tokio::time::Instant::now() < deadline + Duration::from_secs(5));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            auth.verify(&two, Role::Subscriber).is_ok(),
            "last good keys kept"
        );
    }

    #[test]
    fn access_token_types() {
        assert!(is_access_token_type("at+jwt"));
        assert!(is_access_token_type("application/AT+JWT"));
        assert!(!is_access_token_type("application/"));
        assert!(!is_access_token_type("application/jwt"));
        assert!(!is_access_token_type("xpplication/at+jwt"));
        assert!(!is_access_token_type("é"));
    }

    #[test]
    fn grants_are_shareable() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Grants>();
        shareable::<Authorizer>();
    }
}
