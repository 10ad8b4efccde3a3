//! Token presentation and verification (`auth/`): the `Authorization`
//! header, the cookies and draft-07's query parameter; draft-08 access
//! tokens and draft-07 `mercure` tokens; JWK Set documents.
//!
//! One verifier is built once, trusting for its issuer an HMAC secret and
//! an RSA, an EC and an Ed25519 public key. The input, readable as text,
//! starts with a mode byte:
//! - `h`: the rest is the value of an `Authorization` header;
//! - `c`: the rest is the value of a `Cookie` header;
//! - `q`: the rest is draft-07's `authorization` query parameter;
//! - `s`: the rest is a JOSE header and claims as JSON, separated by a
//!   newline and then a list of topics, one a line; the target signs them
//!   with the trusted secret (HS256), so the claims reach the code that
//!   reads grants from a token whose signature verifies;
//! - `j`: the rest is a JWK Set document as fetched from an authorization
//!   server.
//!
//! Checked: no panic; a token is judged the same whether verified first
//! or answered from the cache; a malformed presentation is refused, never
//! taken for no token.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;
use std::sync::LazyLock;
use tidings::auth::{presented_token, AuthConfig, Authorizer, KeySet, KeySource, Role};
use tidings::fuzzing::jwk_set;
use url::Url;

const ISSUER: &str = "https://example.com";
const HUB: &str = "https://hub.example.com/.well-known/mercure";
const SECRET: &str = "a test secret of at least 32 bytes!";

static CONFIG: LazyLock<AuthConfig> = LazyLock::new(|| {
    let keys = KeySet {
        issuer: Some(ISSUER.into()),
        keys: vec![
            KeySource::Secret(SECRET.into()),
            pem(include_str!(
                "../../crates/tidings/tests/fixtures/keys/rsa.pub.pem"
            )),
            pem(include_str!(
                "../../crates/tidings/tests/fixtures/keys/ec.pub.pem"
            )),
            pem(include_str!(
                "../../crates/tidings/tests/fixtures/keys/ed25519.pub.pem"
            )),
        ],
        ..KeySet::default()
    };
    AuthConfig {
        publisher: keys.clone(),
        subscriber: keys,
        query_token: true,
        ..AuthConfig::default()
    }
});

static AUTHORIZER: LazyLock<Authorizer> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let hub = Url::parse(HUB).unwrap();
    runtime
        .block_on(Authorizer::new(CONFIG.clone(), &hub))
        .expect("the fixed keys load")
});

fn pem(text: &str) -> KeySource {
    KeySource::Pem(text.into())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode {
        b'h' => present(header(AUTHORIZATION, rest), None),
        b'c' => present(header(COOKIE, rest), None),
        b'q' => present(HeaderMap::new(), std::str::from_utf8(rest).ok()),
        b's' => signed(rest),
        b'j' => {
            let _ = jwk_set(rest);
        }
        _ => {}
    }
});

fn header(name: http::HeaderName, value: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(value) {
        headers.insert(name, value);
    }
    headers
}

/// Finds the token as the subscribe and publish endpoints do, and verifies it.
fn present(headers: HeaderMap, query_token: Option<&str>) {
    match presented_token(&headers, query_token, &CONFIG) {
        Ok(Some(token)) => verify(&token, &[]),
        Ok(None) => assert!(
            !headers.contains_key(AUTHORIZATION),
            "an Authorization header was taken for no token"
        ),
        Err(_) => {}
    }
}

fn signed(rest: &[u8]) {
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let mut lines = text.split('\n');
    let header = lines.next().unwrap_or("");
    let claims = lines.next().unwrap_or("");
    let topics: Vec<&str> = lines.collect();
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    verify(&format!("{input}.{signature}"), &topics);
}

/// Verifies for both roles, twice (the second answer comes from the
/// cache), and asks the grants about `topics`.
fn verify(token: &str, topics: &[&str]) {
    for role in [Role::Publisher, Role::Subscriber] {
        let first = AUTHORIZER.verify(token, role);
        let second = AUTHORIZER.verify(token, role);
        assert_eq!(
            first.is_ok(),
            second.is_ok(),
            "the cache changed the verdict"
        );
        let Ok(grants) = first else { continue };
        for topic in topics {
            let _ = grants.may_publish(topic);
            let _ = grants.may_subscribe_to(topic);
            let _ = grants.payload_for(topic);
        }
        let _ = grants.may_read(topics.iter().copied());
    }
}
