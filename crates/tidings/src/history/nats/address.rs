//! What a `nats://` or `tls://` URL asks for: servers, credentials, stream.

use crate::history::HistoryError;
use async_nats::ServerAddr;
use percent_encoding::percent_decode_str;
use std::path::PathBuf;

/// The stream's name when the URL does not give one.
const DEFAULT_STREAM: &str = "tidings";

/// A parsed engine URL. Credentials stay out of `Debug` and `describe`.
pub struct Address {
    pub servers: Vec<ServerAddr>,
    pub auth: Auth,
    pub tls: bool,
    pub stream: String,
    pub creds: Option<PathBuf>,
    /// A PEM file of the CAs to trust for the servers' certificates,
    /// instead of the system's.
    pub ca: Option<PathBuf>,
    pub replicas: usize,
    pub memory: bool,
    /// Scheme and servers without credentials, for logs.
    pub public: String,
}

pub enum Auth {
    None,
    Token(String),
    UserPassword(String, String),
}

impl Address {
    /// Parses `scheme://[user:pass@|token@]host:port[,host:port…][?query]`.
    /// The URL is never quoted back in an error: it may hold a password.
    pub fn parse(url: &str) -> Result<Address, HistoryError> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| invalid("the URL has no scheme"))?;
        let tls = match scheme {
            "nats" => false,
            "tls" => true,
            _ => return Err(invalid("the scheme must be nats:// or tls://")),
        };
        let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
        let authority = authority.trim_end_matches('/');
        // Credentials come once, before the first host; a password may hold
        // a comma, so the last `@` ends them.
        let (auth, hosts) = match authority.rsplit_once('@') {
            Some((userinfo, hosts)) => (Auth::parse(userinfo)?, hosts),
            None => (Auth::None, authority),
        };
        let hosts: Vec<&str> = hosts.split(',').map(str::trim).collect();
        if hosts.iter().any(|host| host.is_empty()) {
            return Err(invalid("a server address is empty"));
        }
        let servers = hosts
            .iter()
            .map(|host| format!("{scheme}://{host}").parse::<ServerAddr>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| invalid(&err.to_string()))?;
        let mut address = Address {
            servers,
            auth,
            tls,
            stream: DEFAULT_STREAM.into(),
            creds: None,
            ca: None,
            replicas: 1,
            memory: false,
            public: format!("{scheme}://{}", hosts.join(",")),
        };
        address.apply_query(query)?;
        Ok(address)
    }

    fn apply_query(&mut self, query: &str) -> Result<(), HistoryError> {
        let mut unknown = Vec::new();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match &*key {
                "stream" => self.stream = stream_name(&value)?,
                "creds" => self.creds = Some(PathBuf::from(&*value)),
                "ca" => self.ca = Some(PathBuf::from(&*value)),
                "replicas" => {
                    self.replicas = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=5).contains(n))
                        .ok_or_else(|| invalid("`replicas` must be a number from 1 to 5"))?;
                }
                "storage" => {
                    self.memory = match &*value {
                        "file" => false,
                        "memory" => true,
                        _ => return Err(invalid("`storage` must be `file` or `memory`")),
                    }
                }
                _ => unknown.push(format!("`{key}`")),
            }
        }
        if !unknown.is_empty() {
            return Err(invalid(&format!(
                "unknown query parameters {} (known: stream, creds, ca, replicas, storage)",
                unknown.join(", ")
            )));
        }
        Ok(())
    }
}

impl Auth {
    fn parse(userinfo: &str) -> Result<Auth, HistoryError> {
        let decode = |part: &str| {
            percent_decode_str(part)
                .decode_utf8()
                .map(String::from)
                .map_err(|_| invalid("the credentials are not valid percent-encoded UTF-8"))
        };
        Ok(match userinfo.split_once(':') {
            Some((user, password)) => Auth::UserPassword(decode(user)?, decode(password)?),
            None => Auth::Token(decode(userinfo)?),
        })
    }
}

/// A stream name is also the first token of its subjects, so it takes only
/// characters that are safe in both (and in a file name, for file storage).
fn stream_name(name: &str) -> Result<String, HistoryError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(name.into())
    } else {
        Err(invalid(
            "`stream` must be 1 to 64 letters, digits, `-` or `_`",
        ))
    }
}

fn invalid(reason: &str) -> HistoryError {
    HistoryError::Failed(format!("invalid NATS URL: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(url: &str) -> String {
        match Address::parse(url) {
            Err(HistoryError::Failed(reason)) => reason,
            _ => panic!("{url} was accepted"),
        }
    }

    #[test]
    fn servers_credentials_and_query() {
        let address = Address::parse(
            "nats://bob:s%40cret@a:4222,b:4223?stream=orders&replicas=3&storage=memory",
        )
        .unwrap();
        assert_eq!(address.servers.len(), 2);
        assert!(matches!(&address.auth, Auth::UserPassword(u, p) if u == "bob" && p == "s@cret"));
        assert_eq!(address.stream, "orders");
        assert_eq!(address.replicas, 3);
        assert!(address.memory);
        assert_eq!(address.public, "nats://a:4222,b:4223");
        let address = Address::parse("tls://tok@a:4222").unwrap();
        assert!(address.tls);
        assert!(matches!(&address.auth, Auth::Token(t) if t == "tok"));
        assert_eq!(address.stream, "tidings");
        assert_eq!(address.ca, None);
        let address = Address::parse("tls://a:4222?ca=/etc/ca%20files/ca.pem").unwrap();
        assert_eq!(address.ca, Some(PathBuf::from("/etc/ca files/ca.pem")));
    }

    #[test]
    fn refusals_name_the_problem_not_the_password() {
        assert!(reason("nats://a:1?stream=a.b").contains("`stream`"));
        assert!(reason("nats://a:1?replicas=0").contains("`replicas`"));
        assert!(reason("nats://a:1?storage=disk").contains("`storage`"));
        let unknown = reason("nats://u:hunter2@a:1?colour=red&size=2");
        assert!(unknown.contains("`colour`") && unknown.contains("`size`"));
        assert!(!unknown.contains("hunter2"));
        assert!(reason("nats://a:1,,b:2").contains("empty"));
    }
}
