//! The hub's settings, with the defaults a development hub starts with.

use crate::auth::AuthConfig;
use crate::history::Retention;
use crate::outbox::Bounds;
use ipnet::IpNet;
use serde::Deserialize;
use std::time::Duration;
use url::Url;

#[derive(Debug, Clone)]
pub struct HubConfig {
    /// The hub's public URL: the base for relative topics and patterns, the
    /// root of the reserved namespace, and the default token audience.
    pub url: Url,
    pub auth: AuthConfig,
    /// Whether subscribers without a token are served (public updates only).
    pub anonymous: bool,
    /// Serve the draft-07 generation (`topic=`, `lastEventID`, `mercure` claims).
    pub legacy: bool,
    /// Idle time after which a keep-alive comment is sent.
    pub keep_alive: Duration,
    /// Streams are closed after this long, so clients re-authenticate.
    pub max_lifetime: Option<Duration>,
    /// Sent as `retry:` when a stream opens.
    pub retry: Option<u64>,
    /// Origins allowed to subscribe and publish cross-origin, with credentials.
    pub cors_origins: Vec<String>,
    pub queue: Bounds,
    pub limits: Limits,
    /// Most events replayed per read of the history.
    pub replay_batch: usize,
    /// Active subscriptions: subscription events and the subscription API.
    pub subscriptions: bool,
    /// Serve the web console at `/` (standalone hub only).
    pub console: bool,
    /// Who may read the live statistics stream.
    pub stats: StatsAccess,
    /// The bounds history was opened with, as the statistics report them;
    /// the store applies its own.
    pub retention: Retention,
    /// Proxies whose `X-Forwarded-For` or `Forwarded` header tells the
    /// client's address; from any other peer these headers are ignored.
    pub trusted_proxies: Vec<IpNet>,
}

/// Who may read the live statistics stream (`{hub path}/stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsAccess {
    /// Anyone who can reach the hub: a development hub on loopback.
    Public,
    /// A subscriber token granting `subscribe` on `{hub path}/stats`, as it
    /// would a topic.
    Token,
    /// Not served.
    Off,
}

impl std::str::FromStr for StatsAccess {
    type Err = String;

    fn from_str(text: &str) -> Result<StatsAccess, String> {
        match text {
            "public" => Ok(StatsAccess::Public),
            "token" => Ok(StatsAccess::Token),
            "off" => Ok(StatsAccess::Off),
            other => Err(format!(
                "unknown stats access `{other}` (use public, token or off)"
            )),
        }
    }
}

/// Bounds on what one request may ask, against resource exhaustion.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Matchers in one subscription request.
    pub matchers: usize,
    /// Bytes in one matcher, topic or id.
    pub matcher_len: usize,
    /// `topic` fields in one publication.
    pub topics: usize,
    /// Bytes in a publication body.
    pub body: usize,
    /// Concurrent subscriber connections; more are refused with 429.
    pub connections: usize,
    /// How long a new connection may take to complete its TLS handshake
    /// and send a request head, and a request its body; a connection that
    /// holds a descriptor without asking for anything is closed after it.
    pub head_timeout: Duration,
    /// Connections one client address may hold at once (IPv6: one /64);
    /// more are answered 429. Behind a trusted proxy, the requests it
    /// forwards for one client.
    pub connections_per_ip: Option<u32>,
    /// Publications per second allowed to one token subject and to one
    /// client address, with `publish_burst` at once; more get 429.
    pub publish_rate: Option<u32>,
    /// Publications allowed at once above the rate [default: the rate].
    pub publish_burst: Option<u32>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            matchers: 64,
            matcher_len: 2048,
            topics: 32,
            body: 1 << 20,
            connections: 1_000_000,
            head_timeout: Duration::from_secs(60),
            connections_per_ip: None,
            publish_rate: None,
            publish_burst: None,
        }
    }
}

impl HubConfig {
    /// A hub at `url` with every other setting at its default.
    pub fn new(url: Url, auth: AuthConfig) -> HubConfig {
        HubConfig {
            url,
            auth,
            anonymous: true,
            legacy: true,
            keep_alive: Duration::from_secs(25),
            max_lifetime: None,
            retry: None,
            cors_origins: Vec::new(),
            queue: Bounds {
                events: 4096,
                bytes: 4 << 20,
            },
            limits: Limits::default(),
            replay_batch: 512,
            subscriptions: false,
            console: true,
            stats: StatsAccess::Token,
            retention: Retention::default(),
            trusted_proxies: Vec::new(),
        }
    }

    /// The path of the hub URL: the reserved namespace's root.
    pub fn path(&self) -> &str {
        self.url.path()
    }
}
