//! `tidings serve`: settings from flags, `TIDINGS_…` variables and a TOML
//! file (in that order of precedence), then the hub on a socket.

use crate::token::parse_duration;
use anyhow::{bail, Context};
use clap::Args;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tidings::auth::{AuthConfig, Generation, KeySet, KeySource, Role, TokenRequest};
use tidings::history::{Durability, HistoryError, RedbHistory, Retention};
use tidings::{Bounds, Hub, HubConfig, Log, MemoryHistory, SharedLog, StatsAccess};
use url::Url;

/// Every setting is optional here so that a flag, a variable or the file
/// can each provide it; defaults apply last.
#[derive(Args, Serialize, Deserialize, Default, Debug)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServeArgs {
    /// A TOML file with any of these settings (keys spelled like the flags).
    #[arg(long, env = "TIDINGS_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "TIDINGS_LISTEN")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// The hub's public URL, as clients reach it (behind a proxy, say)
    /// [default: http://LISTEN/.well-known/mercure].
    #[arg(long, env = "TIDINGS_PUBLIC_URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<Url>,
    /// HMAC secret verifying both publisher and subscriber tokens. Without any
    /// key, a random one is generated and a publisher token printed.
    #[arg(long, env = "TIDINGS_JWT_KEY", hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_key: Option<String>,
    /// HMAC secret for publisher tokens only.
    #[arg(long, env = "TIDINGS_PUBLISHER_JWT_KEY", hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publisher_jwt_key: Option<String>,
    /// HMAC secret for subscriber tokens only.
    #[arg(long, env = "TIDINGS_SUBSCRIBER_JWT_KEY", hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscriber_jwt_key: Option<String>,
    /// PEM public key (RSA, EC, Ed25519) verifying publisher tokens.
    #[arg(long, env = "TIDINGS_PUBLISHER_JWT_KEY_FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publisher_jwt_key_file: Option<PathBuf>,
    /// PEM public key verifying subscriber tokens.
    #[arg(long, env = "TIDINGS_SUBSCRIBER_JWT_KEY_FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscriber_jwt_key_file: Option<PathBuf>,
    /// An authorization server's JWK Set URL, refreshed periodically.
    #[arg(long, env = "TIDINGS_JWKS_URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// The `iss` the configured keys sign for [default: the hub's origin].
    #[arg(long, env = "TIDINGS_JWT_ISSUER")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_issuer: Option<String>,
    /// Accepted signature algorithms, comma-separated [default: HS*, RS*, PS*, ES256, ES384, EdDSA].
    #[arg(long, env = "TIDINGS_JWT_ALGORITHMS", value_delimiter = ',')]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_algorithms: Option<Vec<String>>,
    /// Serve subscribers without a token (public updates only) [default: true].
    #[arg(long, env = "TIDINGS_ANONYMOUS", num_args = 0..=1, default_missing_value = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anonymous: Option<bool>,
    /// Serve the deployed draft-07 generation too [default: true].
    #[arg(long, env = "TIDINGS_LEGACY", num_args = 0..=1, default_missing_value = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legacy: Option<bool>,
    /// Accept draft-07's `authorization` query parameter (tokens in URLs get logged) [default: false].
    #[arg(long, env = "TIDINGS_LEGACY_QUERY_TOKEN", num_args = 0..=1, default_missing_value = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legacy_query_token: Option<bool>,
    /// Active subscriptions: subscription events and the subscription API [default: false].
    #[arg(long, env = "TIDINGS_SUBSCRIPTIONS", num_args = 0..=1, default_missing_value = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscriptions: Option<bool>,
    /// Serve the web console at `/` [default: true].
    #[arg(long, env = "TIDINGS_CONSOLE", num_args = 0..=1, default_missing_value = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub console: Option<bool>,
    /// Who may read the live statistics stream (HUB_PATH/stats): public, token (a subscriber
    /// token granting subscribe on that path) or off [default: public on a development hub,
    /// token otherwise].
    #[arg(long, env = "TIDINGS_STATS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<String>,
    /// Origins allowed cross-origin with credentials, comma-separated; `*` allows any origin without credentials.
    #[arg(long, env = "TIDINGS_CORS_ORIGINS", value_delimiter = ',')]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cors_origins: Option<Vec<String>>,
    /// Idle time before a keep-alive comment [default: 25s].
    #[arg(long, env = "TIDINGS_KEEP_ALIVE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<String>,
    /// Close streams after this long so clients re-authenticate [default: none].
    #[arg(long, env = "TIDINGS_MAX_LIFETIME")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_lifetime: Option<String>,
    /// Reconnection delay sent to clients as `retry:`, in milliseconds.
    #[arg(long, env = "TIDINGS_RETRY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry: Option<u64>,
    /// Where history is kept: redb (on disk, in --data-dir), memory (lost on restart), or a log
    /// engine shared by the nodes of a cluster: redis://HOST:PORT[/DB], rediss://…,
    /// redis+sentinel://HOST:PORT[,…]/MASTER, nats://HOST:PORT[,HOST:PORT…] (with ?stream=NAME)
    /// [default: redb].
    #[arg(long, env = "TIDINGS_HISTORY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<String>,
    /// Directory of the history file [default: ./tidings-data].
    #[arg(long, env = "TIDINGS_DATA_DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// immediate: a publish is acknowledged once fsynced; eventual: fsync at most every second,
    /// a crash loses up to the last second [default: immediate].
    #[arg(long, env = "TIDINGS_DURABILITY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub durability: Option<String>,
    /// Events older than this leave history, e.g. 24h (not with memory history) [default: none].
    #[arg(long, env = "TIDINGS_RETAIN_AGE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retain_age: Option<String>,
    /// Events kept in history [default: 100000].
    #[arg(long, env = "TIDINGS_RETAIN_EVENTS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retain_events: Option<usize>,
    /// Bytes of events kept in history [default: 268435456].
    #[arg(long, env = "TIDINGS_RETAIN_BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retain_bytes: Option<usize>,
    /// Events queued for one subscriber before it is disconnected as slow [default: 4096].
    #[arg(long, env = "TIDINGS_QUEUE_EVENTS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_events: Option<usize>,
    /// Bytes queued for one subscriber before it is disconnected as slow [default: 4194304].
    #[arg(long, env = "TIDINGS_QUEUE_BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_bytes: Option<usize>,
    /// Subscriber connections served at once; more get 429 [default: 1000000].
    #[arg(long, env = "TIDINGS_MAX_CONNECTIONS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    /// Connections one client address may hold at once (IPv6: one /64); more are answered 429
    /// with Retry-After [default: no limit].
    #[arg(long, env = "TIDINGS_MAX_CONNECTIONS_PER_IP")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections_per_ip: Option<u32>,
    /// Proxies (addresses or CIDR networks, comma-separated) whose X-Forwarded-For or Forwarded
    /// header gives the client address; from any other peer these headers are ignored.
    #[arg(long, env = "TIDINGS_TRUSTED_PROXIES", value_delimiter = ',')]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted_proxies: Option<Vec<String>>,
    /// Publications per second allowed to one token subject and to one client address; more
    /// are answered 429 with Retry-After [default: no limit].
    #[arg(long, env = "TIDINGS_PUBLISH_RATE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish_rate: Option<u32>,
    /// Publications allowed at once above --publish-rate [default: the rate].
    #[arg(long, env = "TIDINGS_PUBLISH_BURST")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish_burst: Option<u32>,
    /// How long a connection may take to send a request head, TLS
    /// handshake included, and a request its body, and to start its next
    /// request when kept alive; how long an HTTP/2 or HTTP/3 connection may
    /// go without a stream [default: 60s].
    #[arg(long, env = "TIDINGS_HEAD_TIMEOUT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head_timeout: Option<String>,
    /// Threads serving connections [default: one per core].
    #[arg(long, env = "TIDINGS_WORKERS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<usize>,
    /// Largest publish body, in bytes [default: 1048576].
    #[arg(long, env = "TIDINGS_MAX_BODY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_body: Option<usize>,
    /// PEM certificate chain: serve HTTPS (HTTP/2 through ALPN).
    #[arg(long, env = "TIDINGS_TLS_CERT", requires = "tls_key")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "TIDINGS_TLS_KEY", requires = "tls_cert")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// Serve HTTPS with a generated self-signed certificate for localhost.
    #[arg(long, env = "TIDINGS_TLS_SELF_SIGNED", num_args = 0..=1, default_missing_value = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_self_signed: Option<bool>,
    /// Serve HTTP/3 too (QUIC, on the same port number over UDP), advertised with Alt-Svc;
    /// needs TLS [default: false].
    #[arg(long, env = "TIDINGS_HTTP3", num_args = 0..=1, default_missing_value = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http3: Option<bool>,
    /// Log format: text or json [default: text].
    #[arg(long, env = "TIDINGS_LOG_FORMAT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<String>,
    /// Log filter, e.g. `info` or `tidings=debug` [default: info].
    #[arg(long, env = "TIDINGS_LOG")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// How long shutdown waits for connections to close [default: 10s].
    #[arg(long, env = "TIDINGS_SHUTDOWN_GRACE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown_grace: Option<String>,
}

impl ServeArgs {
    /// Flags and variables over the file's values.
    pub fn merged(self) -> anyhow::Result<ServeArgs> {
        let Some(path) = &self.config else {
            return Ok(self);
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let file: toml::Table = toml::from_str(&text)
            .with_context(|| format!("{} is not valid TOML", path.display()))?;
        let mut merged = serde_json::to_value(file)?;
        let overrides = serde_json::to_value(&self)?;
        if let (Some(base), Some(top)) = (merged.as_object_mut(), overrides.as_object()) {
            base.extend(top.clone());
        }
        serde_json::from_value(merged).with_context(|| format!("in {}", path.display()))
    }
}

/// Runs a hub with settings already merged ([`ServeArgs::merged`]).
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    crate::logs::init(args.log.as_deref(), args.log_format.as_deref())?;
    let listen = args
        .listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let bound = listener.local_addr()?;
    let tls = crate::tls::acceptor(&args)?;
    let url = match &args.public_url {
        Some(url) => url.clone(),
        None => {
            let (scheme, host) = match &tls {
                Some(tls) if tls.self_signed => ("https", format!("localhost:{}", bound.port())),
                Some(_) => ("https", bound.to_string()),
                None => ("http", bound.to_string()),
            };
            Url::parse(&format!("{scheme}://{host}/.well-known/mercure"))?
        }
    };
    let (auth, dev_secret) = auth_config(&args, &url)?;
    let mut config = HubConfig::new(url.clone(), auth.clone());
    config.anonymous = args.anonymous.unwrap_or(true);
    config.legacy = auth.legacy;
    config.cors_origins = args.cors_origins.clone().unwrap_or_default();
    config.retry = args.retry;
    config.subscriptions = args.subscriptions.unwrap_or(false);
    config.console = args.console.unwrap_or(true);
    // A development hub listens on loopback with a key nobody else knows:
    // its figures are for whoever runs it.
    config.stats = match &args.stats {
        Some(access) => access.parse().map_err(anyhow::Error::msg)?,
        None if dev_secret.is_some() => StatsAccess::Public,
        None => StatsAccess::Token,
    };
    config.retention = retention(&args)?;
    if let Some(keep_alive) = duration(&args.keep_alive)? {
        config.keep_alive = keep_alive;
    }
    config.max_lifetime = duration(&args.max_lifetime)?;
    config.queue = Bounds {
        events: args.queue_events.unwrap_or(config.queue.events),
        bytes: args.queue_bytes.unwrap_or(config.queue.bytes),
    };
    let open_files = raise_open_files_limit();
    // Leave descriptors for publishers, the history store and refusals, so
    // the subscriber past the limit gets a clean 429 instead of a hang.
    config.limits.connections = args
        .max_connections
        .unwrap_or_else(|| open_files.saturating_sub(RESERVED_FILES).max(1) as usize);
    config.limits.body = args.max_body.unwrap_or(config.limits.body);
    if let Some(head_timeout) = duration(&args.head_timeout)? {
        config.limits.head_timeout = head_timeout;
    }
    config.limits.connections_per_ip =
        at_least_one("--max-connections-per-ip", args.max_connections_per_ip)?;
    config.limits.publish_rate = at_least_one("--publish-rate", args.publish_rate)?;
    config.limits.publish_burst = at_least_one("--publish-burst", args.publish_burst)?;
    if args.publish_burst.is_some() && args.publish_rate.is_none() {
        bail!("--publish-burst needs --publish-rate");
    }
    config.trusted_proxies = trusted_proxies(args.trusted_proxies.as_deref().unwrap_or_default())?;
    let http3 = http3(&args, tls.as_ref(), bound, &config)?;
    let (log, store) = history(&args).await?;
    let hub = Hub::start(config, log)
        .await
        .context("cannot start the hub")?;
    println!("tidings hub: {url}");
    if let Some(secret) = dev_secret {
        let token = dev_token(&secret, Role::Publisher, &auth, &url)?;
        println!("publisher token (valid 24h, any topic): {token}");
        let token = dev_token(&secret, Role::Subscriber, &auth, &url)?;
        println!("subscriber token (valid 24h, any topic): {token}");
    }
    if hub.config().console {
        let console = url.join("/")?;
        println!("console: {console}");
    }
    if let (Some(spki), Some(_)) = (tls.as_ref().and_then(|tls| tls.spki.as_ref()), &http3) {
        // Chromium takes HTTP/3 to a self-signed certificate only when told
        // to, and to the address the hub listens on: it tries QUIC to
        // `localhost` on ::1 first, without falling back.
        println!("HTTP/3 in Chromium: --origin-to-force-quic-on={bound} --ignore-certificate-errors-spki-list={spki} (open https://{bound}/)");
    }
    tracing::info!(%url, %bound, tls = tls.is_some(), max_subscribers = hub.config().limits.connections, "listening");
    let grace = duration(&args.shutdown_grace)?.unwrap_or(Duration::from_secs(10));
    tidings::server::serve(
        listener,
        hub,
        tls.map(|tls| tls.acceptor),
        http3,
        shutdown_signal(),
        grace,
    )
    .await?;
    // The process exits without waiting for the hub's threads to drop the
    // store: close it here, so the next start needs no repair.
    if let Some(store) = store {
        store.close();
    }
    tracing::info!("stopped");
    Ok(())
}

/// The HTTP/3 endpoint on the TCP port's number, when `--http3` is on.
fn http3(
    args: &ServeArgs,
    tls: Option<&crate::tls::Tls>,
    bound: SocketAddr,
    config: &HubConfig,
) -> anyhow::Result<Option<tidings::server::Http3>> {
    if !args.http3.unwrap_or(false) {
        return Ok(None);
    }
    let Some(tls) = tls else {
        bail!("--http3 needs TLS (--tls-cert and --tls-key, or --tls-self-signed)");
    };
    let http3 = tidings::server::Http3::bind(bound, &tls.config, config)
        .with_context(|| format!("cannot serve HTTP/3 on {bound} (UDP)"))?;
    tracing::info!(%bound, "serving HTTP/3");
    Ok(Some(http3))
}

fn at_least_one(flag: &str, value: Option<u32>) -> anyhow::Result<Option<u32>> {
    match value {
        Some(0) => bail!("{flag} must be at least 1"),
        value => Ok(value),
    }
}

/// Addresses and CIDR networks: `10.0.0.0/8`, `::1`.
fn trusted_proxies(list: &[String]) -> anyhow::Result<Vec<ipnet::IpNet>> {
    list.iter()
        .map(|entry| {
            let entry = entry.trim();
            entry
                .parse::<ipnet::IpNet>()
                .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    anyhow::anyhow!("--trusted-proxies: `{entry}` is not an address or a network")
                })
        })
        .collect()
}

/// Open files kept back from subscribers.
const RESERVED_FILES: u64 = 64;

/// Raises the soft open-files limit to the hard one; returns the limit.
fn raise_open_files_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    limit.rlim_cur
}

/// The hub's log, and the redb store again when it is one, to close at exit.
type Stores = (Log, Option<Arc<RedbHistory>>);

/// Opens the history store, or joins the log engine, the settings ask for.
async fn history(args: &ServeArgs) -> anyhow::Result<Stores> {
    let retention = retention(args)?;
    let (events, bytes, age) = (
        args.retain_events.unwrap_or(DEFAULT_RETAIN_EVENTS),
        args.retain_bytes.unwrap_or(DEFAULT_RETAIN_BYTES),
        retention.age,
    );
    match args.history.as_deref().unwrap_or("redb") {
        "memory" if age.is_some() => bail!("--retain-age needs --history redb or a log engine"),
        "memory" => Ok((
            Log::Local(Arc::new(MemoryHistory::new(events, bytes))),
            None,
        )),
        "redb" => {
            let durability = match args.durability.as_deref().unwrap_or("immediate") {
                "immediate" => Durability::Immediate,
                "eventual" => Durability::Eventual,
                other => bail!("unknown durability `{other}` (use immediate or eventual)"),
            };
            let dir = args
                .data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("tidings-data"));
            let store = Arc::new(RedbHistory::open(dir, durability, retention)?);
            Ok((Log::Local(store.clone()), Some(store)))
        }
        engine if engine.contains("://") => {
            let log = join(engine, retention).await?;
            tracing::info!(engine = %log.describe(), "a node of the cluster on this log");
            Ok((Log::Shared(log), None))
        }
        other => bail!(
            "unknown history `{other}` (use redb, memory, or an engine URL: redis://… or nats://…)"
        ),
    }
}

const DEFAULT_RETAIN_EVENTS: usize = 100_000;
const DEFAULT_RETAIN_BYTES: usize = 256 << 20;

/// The bounds history keeps to.
fn retention(args: &ServeArgs) -> anyhow::Result<Retention> {
    Ok(Retention {
        events: Some(args.retain_events.unwrap_or(DEFAULT_RETAIN_EVENTS) as u64),
        age: duration(&args.retain_age)?,
        bytes: Some(args.retain_bytes.unwrap_or(DEFAULT_RETAIN_BYTES) as u64),
    })
}

/// How long a starting node waits for its engine to answer before giving up.
const ENGINE_WAIT: Duration = Duration::from_secs(30);

/// Connects to the shared log, waiting out an engine that is not up yet
/// (nodes and engine started together); a wrong URL fails at once.
async fn join(engine: &str, retention: Retention) -> anyhow::Result<Arc<dyn SharedLog>> {
    let started = std::time::Instant::now();
    let mut retry = Duration::from_millis(100);
    loop {
        match tidings::history::connect(engine, retention).await {
            Ok(log) => return Ok(log),
            Err(HistoryError::Unavailable(reason)) if started.elapsed() < ENGINE_WAIT => {
                tracing::warn!(%reason, "waiting for the shared log");
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(Duration::from_secs(2));
            }
            Err(error) => return Err(error).context("cannot join the shared log"),
        }
    }
}

/// Builds the token settings; returns the generated secret when no key was
/// configured (a development hub).
fn auth_config(args: &ServeArgs, url: &Url) -> anyhow::Result<(AuthConfig, Option<String>)> {
    let mut auth = AuthConfig {
        audience: url.to_string(),
        legacy: args.legacy.unwrap_or(true),
        query_token: args.legacy_query_token.unwrap_or(false),
        ..AuthConfig::default()
    };
    if let Some(names) = &args.jwt_algorithms {
        auth.algorithms = names
            .iter()
            .map(|name| {
                name.trim()
                    .parse()
                    .map_err(|_| anyhow::anyhow!("unknown JWT algorithm `{name}`"))
            })
            .collect::<anyhow::Result<_>>()?;
    }
    let issuer = Some(
        args.jwt_issuer
            .clone()
            .unwrap_or_else(|| url.origin().ascii_serialization()),
    );
    let publisher = keys(
        &args.publisher_jwt_key,
        &args.publisher_jwt_key_file,
        &args.jwt_key,
    )?;
    let subscriber = keys(
        &args.subscriber_jwt_key,
        &args.subscriber_jwt_key_file,
        &args.jwt_key,
    )?;
    let mut dev_secret = None;
    let (publisher, subscriber) =
        if publisher.is_empty() && subscriber.is_empty() && args.jwks_url.is_none() {
            let secret = random_secret();
            dev_secret = Some(secret.clone());
            (
                vec![KeySource::Secret(secret.clone())],
                vec![KeySource::Secret(secret)],
            )
        } else {
            (publisher, subscriber)
        };
    auth.publisher = KeySet {
        issuer: issuer.clone(),
        keys: publisher,
        jwks_url: args.jwks_url.clone(),
        ..KeySet::default()
    };
    auth.subscriber = KeySet {
        issuer,
        keys: subscriber,
        jwks_url: args.jwks_url.clone(),
        ..KeySet::default()
    };
    Ok((auth, dev_secret))
}

fn keys(
    secret: &Option<String>,
    file: &Option<PathBuf>,
    shared: &Option<String>,
) -> anyhow::Result<Vec<KeySource>> {
    let mut keys = Vec::new();
    if let Some(secret) = secret.as_ref().or(shared.as_ref()) {
        if secret.is_empty() {
            bail!("a JWT key must not be empty");
        }
        keys.push(KeySource::Secret(secret.clone()));
    }
    if let Some(path) = file {
        let pem = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        keys.push(KeySource::Pem(pem));
    }
    Ok(keys)
}

fn random_secret() -> String {
    use rand::RngExt;
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn dev_token(secret: &str, role: Role, auth: &AuthConfig, url: &Url) -> anyhow::Result<String> {
    let request = TokenRequest {
        generation: Generation::Draft08,
        role,
        topics: vec!["*".into()],
        ttl: Some(Duration::from_secs(24 * 3600)),
        issuer: auth.publisher.issuer.clone().unwrap_or_default(),
        audience: url.to_string(),
        subject: "tidings-dev".into(),
        payload: None,
        algorithm: "HS256"
            .parse()
            .map_err(|_| anyhow::anyhow!("HS256 unsupported"))?,
    };
    Ok(tidings::auth::mint(
        &request,
        &KeySource::Secret(secret.into()),
    )?)
}

fn duration(text: &Option<String>) -> anyhow::Result<Option<Duration>> {
    text.as_deref()
        .map(|t| parse_duration(t).map_err(anyhow::Error::msg))
        .transpose()
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => return interrupt.await.unwrap_or(()),
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    interrupt.await.unwrap_or(());
}
