//! Authorization: which tokens the hub accepts and what they allow.
//!
//! A request presents a JWT (see [`presented_token`]); an [`Authorizer`]
//! verifies it with the trusted keys of the endpoint's [`Role`] and turns it
//! into [`Grants`]. Two token generations are understood: draft-08 JWT access
//! tokens (`at+jwt`, `authorization_details`) and, unless disabled, the
//! draft-07 tokens still deployed (`mercure` claim). This file holds the
//! vocabulary shared by the submodules and the errors reported to clients.

mod cache;
mod config;
mod grants;
mod jwks;
mod keys;
mod mint;
mod present;
mod verify;

#[cfg(test)]
mod testing;

/// How many usable signature keys a JWK Set document holds, as the hub
/// reads a fetched one.
#[cfg(feature = "fuzzing")]
pub(crate) fn usable_jwks_keys(document: &[u8]) -> Result<usize, String> {
    jwks::parse(document).map(|keys| keys.len())
}

pub use config::{AuthConfig, KeySet, KeySource, DEFAULT_ALGORITHMS};
pub use grants::{Grants, MAX_DETAILS, MAX_MATCHER_LEN, MAX_TOPICS};
pub use mint::{mint, MintError, TokenRequest, URL_PATTERN_PREFIX};
pub use present::presented_token;
pub use verify::{Authorizer, MAX_TOKEN_LEN};

use http::{HeaderValue, StatusCode};
use std::fmt;

/// The endpoint a token is presented to; each role has its own trusted keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Publisher,
    Subscriber,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Publisher => "publisher",
            Role::Subscriber => "subscriber",
        })
    }
}

/// The protocol revision a token was issued for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Generation {
    /// Pre-standardization tokens: any signed JWT with a `mercure` claim.
    Draft07,
    /// JWT access tokens carrying `authorization_details`.
    Draft08,
}

/// Why a request was refused, as reported to the client.
///
/// Deliberately coarse: every failure of a presented token is
/// [`AuthError::InvalidToken`], so a client cannot learn why validation
/// failed (the reason is logged at debug level instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("an access token is required")]
    Missing,
    #[error("the access token is invalid")]
    InvalidToken,
    #[error("the access token does not allow this operation")]
    InsufficientScope,
    #[error("malformed token presentation: {0}")]
    InvalidRequest(String),
}

impl AuthError {
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::Missing | AuthError::InvalidToken => StatusCode::UNAUTHORIZED,
            AuthError::InsufficientScope => StatusCode::FORBIDDEN,
            AuthError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// The RFC 6750 error code; none when no token was presented.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            AuthError::Missing => None,
            AuthError::InvalidToken => Some("invalid_token"),
            AuthError::InsufficientScope => Some("insufficient_scope"),
            AuthError::InvalidRequest(_) => Some("invalid_request"),
        }
    }

    /// The `WWW-Authenticate` value for this error, pointing clients at the
    /// hub's protected resource metadata so they can discover the audience
    /// and authorization servers.
    pub fn challenge(&self, resource_metadata_url: &str) -> HeaderValue {
        let metadata = quoted(resource_metadata_url);
        let value = match self.code() {
            Some(code) => format!("Bearer error=\"{code}\", resource_metadata={metadata}"),
            None => format!("Bearer resource_metadata={metadata}"),
        };
        // Only a metadata URL with control characters can fail here; the
        // challenge is still worth sending without it.
        HeaderValue::from_str(&value).unwrap_or_else(|_| match self.code() {
            Some(code) => HeaderValue::from_str(&format!("Bearer error=\"{code}\""))
                .unwrap_or(HeaderValue::from_static("Bearer")),
            None => HeaderValue::from_static("Bearer"),
        })
    }
}

/// An RFC 9110 quoted-string.
fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Why an [`Authorizer`] could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error("no signature algorithm is allowed")]
    NoAlgorithms,
    #[error("{role} key #{index}: {reason}")]
    Key {
        role: Role,
        index: usize,
        reason: String,
    },
    #[error("{role} keys have no issuer: draft-08 tokens are verified only with the keys of their `iss`, and draft-07 tokens are disabled")]
    MissingIssuer { role: Role },
    #[error("{role} JWKS URL {url:?}: {reason}")]
    JwksUrl {
        role: Role,
        url: String,
        reason: String,
    },
    #[error("{role} JWKS from {url}: {reason}")]
    Jwks {
        role: Role,
        url: String,
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    const METADATA: &str =
        "https://hub.example.com/.well-known/oauth-protected-resource/.well-known/mercure";

    #[test]
    fn statuses() {
        assert_eq!(AuthError::Missing.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(AuthError::InvalidToken.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(AuthError::InsufficientScope.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            AuthError::InvalidRequest("x".into()).status(),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn missing_token_challenge_has_no_error_code() {
        assert_eq!(
            AuthError::Missing.challenge(METADATA),
            format!("Bearer resource_metadata=\"{METADATA}\"")
        );
    }

    #[test]
    fn challenges_carry_the_error_code_and_metadata() {
        for (error, code) in [
            (AuthError::InvalidToken, "invalid_token"),
            (AuthError::InsufficientScope, "insufficient_scope"),
            (
                AuthError::InvalidRequest("two tokens".into()),
                "invalid_request",
            ),
        ] {
            assert_eq!(
                error.challenge(METADATA),
                format!("Bearer error=\"{code}\", resource_metadata=\"{METADATA}\"")
            );
        }
    }

    #[test]
    fn challenge_quotes_the_metadata_url() {
        assert_eq!(
            AuthError::Missing.challenge("https://h/a\"b\\c"),
            "Bearer resource_metadata=\"https://h/a\\\"b\\\\c\""
        );
        assert_eq!(
            AuthError::InvalidToken.challenge("https://h/\n"),
            "Bearer error=\"invalid_token\""
        );
    }
}
