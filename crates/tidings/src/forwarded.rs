//! Who a request comes from: the connection's peer, or, when the peer is a
//! trusted proxy, the client address that proxy forwards.
//!
//! `X-Forwarded-For` and `Forwarded` are written by whoever sends the
//! request, so they are read only from a peer in `--trusted-proxies`, and
//! then from the right: each trusted proxy appends the address it got the
//! request from, so the right-most hop that is not a trusted proxy is the
//! first one no trusted party vouches for beyond. Anything to its left may
//! be the client's own invention.

use http::HeaderMap;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv6Addr};

/// The peer of a connection, as every request on it needs to know.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub ip: IpAddr,
    /// The peer is a trusted proxy: each request names its own client.
    pub proxy: bool,
    /// The connection is past `--max-connections-per-ip`: every request on
    /// it is answered 429 and the connection closed.
    pub refused: bool,
}

#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(networks: Vec<IpNet>) -> TrustedProxies {
        TrustedProxies(networks)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|network| network.contains(&ip))
    }

    /// The client's address for a request from `peer`. `X-Forwarded-For`
    /// is read when present (what most proxies append to), else
    /// `Forwarded`; a proxy should set the one it uses and drop the other.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let xff = headers.contains_key("x-forwarded-for");
        let name = if xff { "x-forwarded-for" } else { "forwarded" };
        let hops = headers
            .get_all(name)
            .iter()
            .rev()
            .flat_map(|value| value.to_str().unwrap_or("").rsplit(','))
            .map(|hop| if xff { node(hop) } else { forwarded_for(hop) });
        let mut leftmost = peer;
        for hop in hops {
            match hop {
                Some(ip) if self.contains(ip) => leftmost = ip,
                Some(ip) => return canonical(ip),
                // A hop a trusted proxy wrote but that is no address
                // (`unknown`, an obfuscated name): nobody to count but the
                // proxy.
                None => return peer,
            }
        }
        leftmost
    }
}

/// The `for=` node of one `Forwarded` element.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("for")
            .then(|| node(value))
            .flatten()
    })
}

/// An address as forwarding headers write it: `192.0.2.1`, `192.0.2.1:80`,
/// `2001:db8::1`, `[2001:db8::1]:80`, quoted or not.
fn node(text: &str) -> Option<IpAddr> {
    let text = text.trim().trim_matches('"');
    if let Ok(ip) = text.parse() {
        return Some(ip);
    }
    if let Some(rest) = text.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let (host, _port) = text.rsplit_once(':')?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// IPv4 addresses mapped into IPv6 (a dual-stack socket's peers) as IPv4.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The key one client is counted under: its IPv4 address, or its IPv6
/// /64, since a single host is routinely given a whole /64 to pick from.
pub(crate) fn client_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(list.iter().map(|n| n.parse().unwrap()).collect())
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let claims = headers(&[("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=5.6.7.8")]);
        assert_eq!(trusted.client(ip("192.0.2.9"), &claims), ip("192.0.2.9"));
        assert_eq!(
            TrustedProxies::default().client(ip("10.0.0.1"), &claims),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let trusted = proxies(&["10.0.0.0/8", "2001:db8:ffff::/48"]);
        let peer = ip("10.0.0.1");
        // The client wrote 6.6.6.6 itself; the edge proxy appended 1.2.3.4,
        // an inner proxy 10.1.1.1.
        let chain = headers(&[("x-forwarded-for", "6.6.6.6, 1.2.3.4, 10.1.1.1")]);
        assert_eq!(trusted.client(peer, &chain), ip("1.2.3.4"));
        let split = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "1.2.3.4:5678"),
        ]);
        assert_eq!(trusted.client(peer, &split), ip("1.2.3.4"));
        let all_trusted = headers(&[("x-forwarded-for", "10.9.9.9, 10.1.1.1")]);
        assert_eq!(trusted.client(peer, &all_trusted), ip("10.9.9.9"));
        assert_eq!(trusted.client(peer, &HeaderMap::new()), peer);
        let unknown = headers(&[("x-forwarded-for", "1.2.3.4, unknown")]);
        assert_eq!(trusted.client(peer, &unknown), peer);
    }

    #[test]
    fn forwarded_is_read_when_there_is_no_x_forwarded_for() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let peer = ip("10.0.0.1");
        let forwarded = headers(&[(
            "forwarded",
            "for=6.6.6.6, For=\"[2001:db8:cafe::17]:4711\";proto=https, for=10.2.2.2;by=10.0.0.1",
        )]);
        assert_eq!(trusted.client(peer, &forwarded), ip("2001:db8:cafe::17"));
        let both = headers(&[("forwarded", "for=6.6.6.6"), ("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(trusted.client(peer, &both), ip("1.2.3.4"));
        let mapped = proxies(&["127.0.0.1/32"]);
        assert!(mapped.contains(ip("::ffff:127.0.0.1")));
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        assert_eq!(
            client_key(ip("2001:db8:1:2:aaaa::1")),
            client_key(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(
            client_key(ip("2001:db8:1:2::1")),
            client_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(client_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }
}
