//! Minting Mercure JSON Web Tokens (HS256) for the benchmark's own use.

use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;

/// A token allowing publication to every topic.
pub fn publisher(key: &str) -> anyhow::Result<String> {
    mint(key, json!({ "mercure": { "publish": ["*"] } }))
}

/// A token allowing subscription to every topic.
pub fn subscriber(key: &str) -> anyhow::Result<String> {
    mint(key, json!({ "mercure": { "subscribe": ["*"] } }))
}

fn mint(key: &str, claims: serde_json::Value) -> anyhow::Result<String> {
    Ok(encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(key.as_bytes()),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{decode, DecodingKey, Validation};

    #[test]
    fn publisher_token_verifies_with_the_same_key() {
        let token = publisher("secret").unwrap();
        let mut validation = Validation::default();
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let data =
            decode::<serde_json::Value>(&token, &DecodingKey::from_secret(b"secret"), &validation)
                .unwrap();
        assert_eq!(data.claims["mercure"]["publish"][0], "*");
    }
}
