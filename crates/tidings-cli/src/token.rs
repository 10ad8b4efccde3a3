//! `tidings token`: mint a token for a publisher or a subscriber.

use anyhow::Context;
use clap::{Args, ValueEnum};
use std::time::Duration;
use tidings::auth::{mint, Generation, KeySource, Role, TokenRequest};

#[derive(Args)]
pub struct TokenArgs {
    /// Who the token is for.
    #[arg(long, value_enum, default_value = "publisher")]
    pub role: RoleArg,
    /// Topics (or matchers) the token grants; repeat for several. `*` means all.
    #[arg(long = "topic", default_value = "*")]
    pub topics: Vec<String>,
    /// Protocol generation: 08 (IETF draft, `authorization_details`) or 07 (`mercure` claim).
    #[arg(long, value_enum, default_value = "08")]
    pub generation: GenerationArg,
    /// Lifetime, e.g. `3600s`, `60m`, `12h`, `7d`; `0` for no expiry (draft-07 only).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub ttl: Duration,
    /// HMAC secret to sign with.
    #[arg(
        long,
        env = "TIDINGS_JWT_KEY",
        hide_env_values = true,
        conflicts_with = "jwt_key_file"
    )]
    pub jwt_key: Option<String>,
    /// PEM private key to sign with (RSA, EC or Ed25519).
    #[arg(long, env = "TIDINGS_JWT_KEY_FILE")]
    pub jwt_key_file: Option<std::path::PathBuf>,
    /// Signing algorithm, e.g. HS256, RS256, ES256, EdDSA.
    #[arg(long, default_value = "HS256")]
    pub alg: String,
    /// The `iss` claim: the issuer the hub trusts for the key.
    #[arg(
        long,
        env = "TIDINGS_JWT_ISSUER",
        default_value = "http://127.0.0.1:8080"
    )]
    pub issuer: String,
    /// The `aud` claim: the hub's resource identifier (its URL).
    #[arg(
        long,
        env = "TIDINGS_HUB",
        default_value = "http://127.0.0.1:8080/.well-known/mercure"
    )]
    pub audience: String,
    /// The `sub` claim.
    #[arg(long, default_value = "tidings-cli")]
    pub subject: String,
    /// JSON payload attached to subscriptions (subscriber tokens).
    #[arg(long)]
    pub payload: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Publisher,
    Subscriber,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum GenerationArg {
    #[value(name = "08")]
    Draft08,
    #[value(name = "07")]
    Draft07,
}

pub fn run(args: TokenArgs) -> anyhow::Result<()> {
    let key = match (&args.jwt_key, &args.jwt_key_file) {
        (Some(secret), _) => KeySource::Secret(secret.clone()),
        (None, Some(path)) => KeySource::Pem(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
        ),
        (None, None) => anyhow::bail!("give a signing key with --jwt-key or --jwt-key-file"),
    };
    let payload = args
        .payload
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .context("--payload is not valid JSON")?;
    let request = TokenRequest {
        generation: match args.generation {
            GenerationArg::Draft08 => Generation::Draft08,
            GenerationArg::Draft07 => Generation::Draft07,
        },
        role: match args.role {
            RoleArg::Publisher => Role::Publisher,
            RoleArg::Subscriber => Role::Subscriber,
        },
        topics: args.topics,
        ttl: (!args.ttl.is_zero()).then_some(args.ttl),
        issuer: args.issuer,
        audience: args.audience,
        subject: args.subject,
        payload,
        algorithm: args
            .alg
            .parse()
            .map_err(|_| anyhow::anyhow!("unknown algorithm `{}`", args.alg))?,
    };
    println!("{}", mint(&request, &key).context("cannot mint the token")?);
    Ok(())
}

/// Parses `90`, `90s`, `15m`, `12h` or `7d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let value: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 30s, 15m, 12h or 7d"))?;
    let seconds = match unit {
        "" | "s" => value,
        "m" => value * 60,
        "h" => value * 3600,
        "d" => value * 86_400,
        "ms" => return Ok(Duration::from_millis(value)),
        _ => {
            return Err(format!(
                "`{text}`: unknown unit `{unit}` (use ms, s, m, h or d)"
            ))
        }
    };
    Ok(Duration::from_secs(seconds))
}
