//! Trusted verification keys, each tied to the issuer it signs for.
//!
//! A [`KeyRing`] holds one role's keys: the static keys of the
//! configuration and, optionally, those of a JWK Set kept fresh by
//! `jwks.rs`. Keys only ever come from here, never from the token (`jwk`,
//! `jku`, `x5u` are ignored); the token's `alg` and `kid` can only narrow
//! which of them is tried.

use super::config::{KeySet, KeySource};
use super::jwks::FetchedKeys;
use super::{AuthSetupError, Role};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::str::FromStr;
use std::sync::Arc;

/// A verification key and what it may verify.
pub(super) struct TrustedKey {
    key: DecodingKey,
    kid: Option<String>,
    /// The only algorithm this key accepts, when its source says so (a JWK
    /// `alg`, or the curve of a JWK EC key).
    alg: Option<Algorithm>,
}

impl TrustedKey {
    /// Loads a configured key: an HMAC secret or a PEM public key.
    pub(super) fn from_source(source: &KeySource) -> Result<TrustedKey, String> {
        let key = match source {
            KeySource::Secret(secret) if secret.is_empty() => {
                return Err("an empty secret would let anyone sign tokens".into())
            }
            KeySource::Secret(secret) => {
                if secret.len() < 32 {
                    tracing::warn!("an HMAC secret shorter than 32 bytes is easy to guess");
                }
                DecodingKey::from_secret(secret.as_bytes())
            }
            KeySource::Pem(pem) => public_pem(pem)?,
        };
        Ok(TrustedKey {
            key,
            kid: None,
            alg: None,
        })
    }

    /// Loads a key published in a JWK Set.
    pub(super) fn from_jwk(jwk: &Jwk) -> Result<TrustedKey, String> {
        if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
            return Err("not a signature key (`use`)".into());
        }
        if matches!(jwk.common.key_operations, Some(ref ops) if !ops.contains(&KeyOperations::Verify))
        {
            return Err("not a verification key (`key_ops`)".into());
        }
        let declared = match jwk.common.key_algorithm {
            Some(alg) => Some(
                Algorithm::from_str(&alg.to_string())
                    .map_err(|_| format!("algorithm {alg} is not a signature algorithm"))?,
            ),
            None => None,
        };
        let implied = match &jwk.algorithm {
            // Whoever can fetch the set could sign with a published secret.
            AlgorithmParameters::OctetKey(_) => {
                return Err("symmetric keys are never taken from a JWK Set".into())
            }
            AlgorithmParameters::EllipticCurve(params) => Some(curve_algorithm(&params.curve)?),
            AlgorithmParameters::OctetKeyPair(params) if params.curve == EllipticCurve::Ed25519 => {
                Some(Algorithm::EdDSA)
            }
            AlgorithmParameters::OctetKeyPair(params) => {
                return Err(format!("unsupported curve {:?}", params.curve))
            }
            AlgorithmParameters::RSA(_) => None,
        };
        let alg = match (declared, implied) {
            (Some(declared), Some(implied)) if declared != implied => {
                return Err(format!("`alg` {declared:?} does not fit the key"))
            }
            (declared, implied) => declared.or(implied),
        };
        let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
        if alg.is_some_and(|alg| alg.family() != key.family()) {
            return Err("`alg` does not fit the key type".into());
        }
        Ok(TrustedKey {
            key,
            kid: jwk.common.key_id.clone(),
            alg,
        })
    }

    /// Whether this key may have signed a token with this `alg` and `kid`.
    /// Binding `alg` to the key's family is what stops algorithm confusion,
    /// such as an HMAC token "signed" with a public RSA key.
    fn fits(&self, alg: Algorithm, kid: Option<&str>) -> bool {
        self.key.family() == alg.family()
            && self.alg.is_none_or(|only| only == alg)
            && match (kid, &self.kid) {
                (Some(wanted), Some(mine)) => wanted == mine,
                _ => true,
            }
    }
}

fn curve_algorithm(curve: &EllipticCurve) -> Result<Algorithm, String> {
    match curve {
        EllipticCurve::P256 => Ok(Algorithm::ES256),
        EllipticCurve::P384 => Ok(Algorithm::ES384),
        other => Err(format!("unsupported curve {other:?}")),
    }
}

/// Reads a PEM public key or certificate of any supported type.
fn public_pem(pem: &str) -> Result<DecodingKey, String> {
    // jsonwebtoken would read parts of a private key as if it were public;
    // refuse it instead, and keep private keys off the verifying side.
    if pem.contains("PRIVATE KEY-----") {
        return Err("expected a public key or certificate, found a private key".into());
    }
    let bytes = pem.as_bytes();
    DecodingKey::from_rsa_pem(bytes)
        .or_else(|_| DecodingKey::from_ec_pem(bytes))
        .or_else(|_| DecodingKey::from_ed_pem(bytes))
        .map_err(|_| "not a PEM RSA, EC or Ed25519 public key or certificate".into())
}

/// One role's trusted keys.
pub(super) struct KeyRing {
    issuer: Option<String>,
    configured: Vec<TrustedKey>,
    fetched: Option<FetchedKeys>,
}

impl KeyRing {
    pub(super) async fn load(
        set: &KeySet,
        role: Role,
        legacy: bool,
    ) -> Result<KeyRing, AuthSetupError> {
        let configured = set
            .keys
            .iter()
            .enumerate()
            .map(|(index, source)| {
                TrustedKey::from_source(source).map_err(|reason| AuthSetupError::Key {
                    role,
                    index,
                    reason,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let has_keys = !configured.is_empty() || set.jwks_url.is_some();
        if has_keys && set.issuer.is_none() {
            if !legacy {
                return Err(AuthSetupError::MissingIssuer { role });
            }
            tracing::warn!(%role, "keys have no issuer: only draft-07 tokens can be verified");
        }
        let fetched = match &set.jwks_url {
            Some(url) => Some(FetchedKeys::start(url, set.jwks_refresh_secs, role).await?),
            None => None,
        };
        Ok(KeyRing {
            issuer: set.issuer.clone(),
            configured,
            fetched,
        })
    }

    /// Changes when fetched keys are replaced; static keys never change.
    pub(super) fn version(&self) -> u64 {
        self.fetched.as_ref().map_or(0, FetchedKeys::version)
    }

    /// The issuer these keys sign for.
    pub(super) fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// A consistent view of the keys, unaffected by a concurrent refresh.
    pub(super) fn snapshot(&self) -> Keys<'_> {
        Keys {
            configured: &self.configured,
            fetched: self
                .fetched
                .as_ref()
                .map(FetchedKeys::current)
                .unwrap_or_default(),
        }
    }
}

pub(super) struct Keys<'a> {
    configured: &'a [TrustedKey],
    fetched: Arc<Vec<TrustedKey>>,
}

impl Keys<'_> {
    /// The keys that may have signed a token with this `alg` and `kid`.
    pub(super) fn fitting(
        &self,
        alg: Algorithm,
        kid: Option<&str>,
    ) -> impl Iterator<Item = &DecodingKey> + '_ {
        let kid = kid.map(str::to_owned);
        self.configured
            .iter()
            .chain(self.fetched.iter())
            .filter(move |key| key.fits(alg, kid.as_deref()))
            .map(|key| &key.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::testing::{fixture, jwk_for};
    use jsonwebtoken::AlgorithmFamily;

    fn pem(name: &str) -> KeySource {
        KeySource::Pem(fixture(name).into())
    }

    #[test]
    fn loads_public_pems_of_each_family() {
        for (name, family) in [
            ("rsa.pub.pem", AlgorithmFamily::Rsa),
            ("ec.pub.pem", AlgorithmFamily::Ec),
            ("ed25519.pub.pem", AlgorithmFamily::Ed),
        ] {
            let key = TrustedKey::from_source(&pem(name)).unwrap();
            assert_eq!(key.key.family(), family, "{name}");
        }
    }

    #[test]
    fn refuses_private_pems_empty_secrets_and_garbage() {
        assert!(TrustedKey::from_source(&pem("rsa.pem")).is_err());
        assert!(TrustedKey::from_source(&KeySource::Secret(String::new())).is_err());
        assert!(TrustedKey::from_source(&KeySource::Pem("nope".into())).is_err());
    }

    #[test]
    fn binds_algorithms_to_the_key_family() {
        let rsa = TrustedKey::from_source(&pem("rsa.pub.pem")).unwrap();
        assert!(rsa.fits(Algorithm::RS256, None));
        assert!(rsa.fits(Algorithm::PS512, None));
        assert!(!rsa.fits(Algorithm::HS256, None));
        let secret = TrustedKey::from_source(&KeySource::Secret("s".repeat(32))).unwrap();
        assert!(secret.fits(Algorithm::HS512, None));
        assert!(!secret.fits(Algorithm::ES256, None));
    }

    #[test]
    fn kid_narrows_but_never_adds() {
        let mut key = TrustedKey::from_jwk(&jwk_for("ec.pem", "one")).unwrap();
        assert!(key.fits(Algorithm::ES256, Some("one")));
        assert!(key.fits(Algorithm::ES256, None));
        assert!(!key.fits(Algorithm::ES256, Some("two")));
        assert!(!key.fits(Algorithm::ES384, Some("one")), "P-256 key");
        key.kid = None;
        assert!(key.fits(Algorithm::ES256, Some("anything")));
    }

    #[test]
    fn jwk_sets_never_supply_secrets_or_encryption_keys() {
        let secret: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "oct", "k": "c2VjcmV0", "alg": "HS256"
        }))
        .unwrap();
        assert!(TrustedKey::from_jwk(&secret).is_err());
        let mut encryption = jwk_for("ec.pem", "enc");
        encryption.common.public_key_use = Some(PublicKeyUse::Encryption);
        assert!(TrustedKey::from_jwk(&encryption).is_err());
    }
}
