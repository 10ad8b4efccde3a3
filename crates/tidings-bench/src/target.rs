//! Where the load goes: URL templates on loopback.
//!
//! Every server is reached through a template such as
//! `http://127.0.0.1:8080/.well-known/mercure?topic={topic}` in which
//! `{topic}` is replaced by the percent-encoded topic. Only loopback
//! addresses are accepted: this tool opens thousands of sockets and must
//! never point them at another machine.

use anyhow::{bail, Context};
use http::Uri;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::net::{Ipv4Addr, SocketAddr};

/// Everything but RFC 3986 unreserved characters is escaped, so a topic
/// such as `https://example.com/t/{id}` survives as one query value.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A parsed `http://` URL template (or `https://` for HTTP/3, `ws://` for
/// WebSockets).
#[derive(Debug, Clone)]
pub struct Template {
    scheme: String,
    addr: SocketAddr,
    /// `host:port` as written, for the Host header.
    authority: String,
    /// Path and query, still holding `{topic}` if it did.
    path: String,
}

impl Template {
    pub fn parse(url: &str) -> anyhow::Result<Template> {
        // `{` and `}` are not valid in a URI, so parse with a stand-in.
        let probe = url.replace("{topic}", "TOPIC");
        let uri: Uri = probe.parse().with_context(|| format!("bad URL {url}"))?;
        let scheme = match uri.scheme_str() {
            Some(scheme @ ("http" | "https" | "ws")) => scheme.to_string(),
            _ => bail!("only http://, https:// (HTTP/3) and ws:// URLs are supported: {url}"),
        };
        let authority = uri.authority().context("URL without host")?;
        let ip = match authority.host() {
            "localhost" => Ipv4Addr::LOCALHOST,
            host => host
                .parse::<Ipv4Addr>()
                .with_context(|| format!("host must be an IPv4 loopback address: {url}"))?,
        };
        if !ip.is_loopback() {
            bail!("refusing non-loopback target {ip}: benchmarks run on this machine only");
        }
        let port = authority
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });
        let path_start = url
            .find("://")
            .map(|i| i + 3)
            .and_then(|start| url[start..].find('/').map(|i| start + i));
        let path = path_start.map_or("/".to_string(), |i| url[i..].to_string());
        Ok(Template {
            scheme,
            addr: SocketAddr::from((ip, port)),
            authority: authority.as_str().to_string(),
            path,
        })
    }

    pub fn is_websocket(&self) -> bool {
        self.scheme == "ws"
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// Path and query for `topic`.
    pub fn path_for(&self, topic: &str) -> String {
        self.path.replace("{topic}", &encode(topic))
    }

    /// Whether the template is an `https://` URL.
    pub fn is_https(&self) -> bool {
        self.scheme == "https"
    }

    /// Absolute URL for `topic`, as HTTP/2 and HTTP/3 requests carry it.
    pub fn url_for(&self, topic: &str) -> String {
        format!(
            "{}://{}{}",
            self.scheme,
            self.authority,
            self.path_for(topic)
        )
    }
}

/// Percent-encodes a value for a query string.
pub fn encode(value: &str) -> String {
    utf8_percent_encode(value, QUERY_VALUE).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_encoded_topic() {
        let t = Template::parse("http://127.0.0.1:9000/.well-known/mercure?topic={topic}").unwrap();
        assert_eq!(t.addr(), "127.0.0.1:9000".parse().unwrap());
        assert_eq!(t.authority(), "127.0.0.1:9000");
        assert_eq!(
            t.path_for("https://example.com/t/{id}"),
            "/.well-known/mercure?topic=https%3A%2F%2Fexample.com%2Ft%2F%7Bid%7D"
        );
    }

    #[test]
    fn template_without_topic_is_kept() {
        let t = Template::parse("http://localhost:5561/publish/").unwrap();
        assert_eq!(t.path_for("x"), "/publish/");
        assert_eq!(t.url_for("x"), "http://localhost:5561/publish/");
    }

    #[test]
    fn refuses_other_hosts() {
        assert!(Template::parse("http://10.0.0.1:80/x").is_err());
        assert!(Template::parse("http://example.com/x").is_err());
        assert!(Template::parse("ftp://127.0.0.1/x").is_err());
        assert!(Template::parse("https://127.0.0.1/x").unwrap().is_https());
    }
}
