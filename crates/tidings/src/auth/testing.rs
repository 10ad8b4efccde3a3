//! Test helpers: key fixtures, token crafting, and a tiny JWK Set server.

use super::config::{AuthConfig, KeySet, KeySource};
use super::Authorizer;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use url::Url;

pub const ISSUER: &str = "https://example.com";
pub const AUDIENCE: &str = "https://hub.example.com/.well-known/mercure";
pub const SECRET: &str = "a test secret of at least 32 bytes!";

/// A PEM file of `tests/fixtures/keys/`.
pub fn fixture(name: &str) -> &'static str {
    match name {
        "rsa.pem" => include_str!("../../tests/fixtures/keys/rsa.pem"),
        "rsa.pub.pem" => include_str!("../../tests/fixtures/keys/rsa.pub.pem"),
        "ec.pem" => include_str!("../../tests/fixtures/keys/ec.pem"),
        "ec.pub.pem" => include_str!("../../tests/fixtures/keys/ec.pub.pem"),
        "ec2.pem" => include_str!("../../tests/fixtures/keys/ec2.pem"),
        "ec2.pub.pem" => include_str!("../../tests/fixtures/keys/ec2.pub.pem"),
        "ed25519.pem" => include_str!("../../tests/fixtures/keys/ed25519.pem"),
        "ed25519.pub.pem" => include_str!("../../tests/fixtures/keys/ed25519.pub.pem"),
        other => panic!("no fixture {other}"),
    }
}

pub fn hub_url() -> Url {
    Url::parse(AUDIENCE).unwrap()
}

pub fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// Both roles trust `key` for `issuer`.
pub fn issuer_keys(issuer: &str, key: KeySource) -> AuthConfig {
    let keys = KeySet {
        issuer: Some(issuer.into()),
        keys: vec![key],
        ..KeySet::default()
    };
    AuthConfig {
        publisher: keys.clone(),
        subscriber: keys,
        audience: AUDIENCE.into(),
        ..AuthConfig::default()
    }
}

pub async fn authorizer(config: AuthConfig) -> Authorizer {
    Authorizer::new(config, &hub_url()).await.unwrap()
}

/// Valid draft-08 claims granting `action` on the exact `topic`.
pub fn claims08(action: &str, topic: &str) -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "urn:uuid:subscriber",
        "client_id": ISSUER,
        "iat": now(),
        "exp": now() + 600,
        "jti": "urn:uuid:token",
        "authorization_details": [{
            "type": "https://mercure.rocks/authorization-detail",
            "actions": [action],
            "topics": [{"match": topic}]
        }]
    })
}

pub fn sign(header: &Header, claims: &Value, key: &EncodingKey) -> String {
    jsonwebtoken::encode(header, claims, key).unwrap()
}

/// An unsigned token with an arbitrary header, which jsonwebtoken
/// refuses to produce.
pub fn sign_none(header: &Value, claims: &Value) -> String {
    let part = |value: &Value| URL_SAFE_NO_PAD.encode(value.to_string());
    format!("{}.{}.", part(header), part(claims))
}

/// The public JWK of an EC private key fixture.
pub fn jwk_for(pem: &str, kid: &str) -> Jwk {
    let key = EncodingKey::from_ec_pem(fixture(pem).as_bytes()).unwrap();
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap();
    jwk.common.key_id = Some(kid.into());
    jwk
}

/// Serves a JWK Set over plain HTTP on 127.0.0.1 until the runtime ends.
pub struct JwksServer {
    port: u16,
    document: Arc<Mutex<String>>,
    requests: Arc<AtomicUsize>,
}

impl JwksServer {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/jwks.json", self.port)
    }

    pub fn set(&self, document: Value) {
        *self.document.lock() = document.to_string();
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

pub async fn serve_jwks(document: Value) -> JwksServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = JwksServer {
        port: listener.local_addr().unwrap().port(),
        document: Arc::new(Mutex::new(document.to_string())),
        requests: Arc::default(),
    };
    let (document, requests) = (server.document.clone(), server.requests.clone());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut request = Vec::new();
            let mut buffer = [0; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buffer[..n]),
                }
            }
            requests.fetch_add(1, Ordering::SeqCst);
            let body = document.lock().clone();
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/jwk-set+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        }
    });
    server
}
