//! What a Redis URL names: the servers and how to reach them (directly or
//! through Sentinels, with credentials and TLS as Redis clients take them),
//! and the query parameters that are tidings' own.

use super::link::Connector;
use super::Replicas;
use crate::history::HistoryError;
use percent_encoding::percent_decode_str;
use redis::sentinel::{SentinelClientBuilder, SentinelServerType};
use redis::{Client, ConnectionAddr, TlsCertificates, TlsMode};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::Mutex;

const DEFAULT_STREAM: &str = "tidings";
const DEFAULT_REPLICA_TIMEOUT: Duration = Duration::from_millis(1000);
const SENTINEL_PORT: u16 = 26379;

/// What a URL names, split into what the redis crate takes and what is ours.
pub(super) struct Target {
    pub connector: Connector,
    /// Scheme, servers and database: never credentials.
    pub address: String,
    pub options: Options,
}

pub(super) struct Options {
    pub stream: String,
    pub replicas: Option<Replicas>,
    /// A PEM file of the certificates that sign the servers', trusted
    /// instead of the system's.
    ca: Option<PathBuf>,
}

impl Target {
    pub(super) fn parse(url: &str) -> Result<Target, HistoryError> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let options = Options::parse(query)?;
        let (scheme, rest) = base.split_once("://").unwrap_or(("", base));
        let tls = matches!(scheme, "rediss" | "rediss+sentinel");
        let certificates = options.certificates(tls)?;
        match scheme {
            "redis" | "rediss" => Target::direct(base, certificates, options),
            "redis+sentinel" | "rediss+sentinel" => {
                Target::sentinel(scheme, tls, rest, certificates, options)
            }
            _ => Err(HistoryError::Failed(format!(
                "`{scheme}` is not a Redis URL scheme"
            ))),
        }
    }

    fn direct(
        base: &str,
        certificates: Option<TlsCertificates>,
        options: Options,
    ) -> Result<Target, HistoryError> {
        let invalid = || HistoryError::Failed("the Redis URL does not parse".into());
        let url = url::Url::parse(base).map_err(|_| invalid())?;
        let address = format!(
            "{}://{}:{}{}",
            url.scheme(),
            url.host_str().unwrap_or(""),
            url.port().unwrap_or(6379),
            url.path()
        );
        let client = match certificates {
            Some(certificates) => Client::build_with_tls(base, certificates),
            None => Client::open(base),
        }
        .map_err(|_| invalid())?;
        Ok(Target {
            connector: Connector::Direct(client),
            address,
            options,
        })
    }

    /// `[user:pass@]host:port[,host:port…]/MASTER[/db]`: the credentials
    /// and database are the primary's; the Sentinels are asked without.
    fn sentinel(
        scheme: &str,
        tls: bool,
        rest: &str,
        certificates: Option<TlsCertificates>,
        options: Options,
    ) -> Result<Target, HistoryError> {
        let invalid = |why: &str| {
            HistoryError::Failed(format!(
                "the Sentinel URL {why}: use {scheme}://[user:pass@]host:port[,host:port…]/MASTER[/db]"
            ))
        };
        let (authority, path) = rest
            .split_once('/')
            .ok_or_else(|| invalid("names no master"))?;
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((userinfo, hosts)) => (Some(userinfo), hosts),
            None => (None, authority),
        };
        let sentinels = hosts
            .split(',')
            .map(|host| sentinel_addr(host, tls))
            .collect::<Option<Vec<_>>>()
            .filter(|sentinels| !sentinels.is_empty())
            .ok_or_else(|| invalid("has a server that is not host:port"))?;
        let mut segments = path.split('/').filter(|s| !s.is_empty());
        let master = segments.next().ok_or_else(|| invalid("names no master"))?;
        let db = segments
            .next()
            .map(|db| {
                db.parse::<i64>()
                    .map_err(|_| invalid("has a database that is not a number"))
            })
            .transpose()?;
        if segments.next().is_some() {
            return Err(invalid("has a path past the database"));
        }
        let mut builder = SentinelClientBuilder::new(sentinels, master, SentinelServerType::Master)
            .map_err(|e| HistoryError::Failed(format!("the Sentinel URL: {e}")))?;
        if let Some(db) = db {
            builder = builder.set_client_to_redis_db(db);
        }
        if let Some(userinfo) = userinfo {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
            if !user.is_empty() {
                builder = builder.set_client_to_redis_username(decode(user));
            }
            if !password.is_empty() {
                builder = builder.set_client_to_redis_password(decode(password));
            }
        }
        if tls {
            builder = builder.set_client_to_redis_tls_mode(TlsMode::Secure);
        }
        if let Some(certificates) = certificates {
            // The Sentinels speak TLS too, with certificates from the same CA.
            builder = builder
                .set_client_to_sentinel_certificates(certificates.clone())
                .set_client_to_redis_certificates(certificates);
        }
        let client = builder
            .build()
            .map_err(|e| HistoryError::Failed(format!("the Sentinel URL: {e}")))?;
        Ok(Target {
            connector: Connector::Sentinel(Mutex::new(client)),
            address: format!(
                "{scheme}://{hosts}/{master}{}",
                db.map_or(String::new(), |db| format!("/{db}"))
            ),
            options,
        })
    }
}

/// A Sentinel's `host:port` or `[v6]:port`, port 26379 when left out.
fn sentinel_addr(server: &str, tls: bool) -> Option<ConnectionAddr> {
    let (host, port) = match server.strip_prefix('[') {
        Some(bracketed) => {
            let (host, after) = bracketed.split_once(']')?;
            match after {
                "" => (host, SENTINEL_PORT),
                port => (host, port.strip_prefix(':')?.parse().ok()?),
            }
        }
        None => match server.split_once(':') {
            Some((host, port)) => (host, port.parse().ok()?),
            None => (server, SENTINEL_PORT),
        },
    };
    if host.is_empty() {
        return None;
    }
    Some(if tls {
        ConnectionAddr::TcpTls {
            host: host.into(),
            port,
            insecure: false,
            tls_params: None,
        }
    } else {
        ConnectionAddr::Tcp(host.into(), port)
    })
}

impl Options {
    fn parse(query: &str) -> Result<Options, HistoryError> {
        let mut stream = DEFAULT_STREAM.to_string();
        let (mut count, mut timeout) = (0, DEFAULT_REPLICA_TIMEOUT);
        let mut ca = None;
        let mut unknown = Vec::new();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let number = || {
                value.parse::<u64>().map_err(|_| {
                    HistoryError::Failed(format!(
                        "the Redis URL's `{name}` is not a whole number: `{value}`"
                    ))
                })
            };
            match &*name {
                "stream" => stream = value.to_string(),
                "replicas" => count = u32::try_from(number()?).unwrap_or(u32::MAX),
                "replica_timeout" => timeout = Duration::from_millis(number()?),
                "ca" => ca = Some(PathBuf::from(&*value)),
                _ => unknown.push(format!("`{name}`")),
            }
        }
        if !unknown.is_empty() {
            return Err(HistoryError::Failed(format!(
                "the Redis URL has unknown query parameters {}: tidings takes stream, replicas, replica_timeout and ca",
                unknown.join(", ")
            )));
        }
        // Braces would end the hash tag early and scatter the keys.
        if stream.is_empty() || stream.contains(['{', '}']) {
            return Err(HistoryError::Failed(format!(
                "the Redis URL's stream `{stream}` must be a non-empty name without braces"
            )));
        }
        Ok(Options {
            stream,
            replicas: (count > 0).then_some(Replicas { count, timeout }),
            ca,
        })
    }

    /// The `ca` file's certificates, to trust instead of the system's; only
    /// with TLS (`rediss://`), where there is a certificate to check.
    fn certificates(&self, tls: bool) -> Result<Option<TlsCertificates>, HistoryError> {
        let Some(path) = &self.ca else {
            return Ok(None);
        };
        if !tls {
            return Err(HistoryError::Failed(
                "the Redis URL's `ca` needs TLS: use rediss:// or rediss+sentinel://".into(),
            ));
        }
        let pem = std::fs::read(path).map_err(|error| {
            HistoryError::Failed(format!(
                "cannot read the Redis URL's `ca` file {}: {error}",
                path.display()
            ))
        })?;
        if !pem
            .windows(b"-----BEGIN CERTIFICATE-----".len())
            .any(|w| w == b"-----BEGIN CERTIFICATE-----")
        {
            return Err(HistoryError::Failed(format!(
                "the Redis URL's `ca` file {} holds no PEM certificate",
                path.display()
            )));
        }
        Ok(Some(TlsCertificates {
            client_tls: None,
            root_cert: Some(pem),
        }))
    }
}
