//! Client addresses behind a reverse proxy. Every per-address limit (connections per IP, failed
//! joins per minute) counts against the address that opened the TCP connection; behind a proxy
//! that is the proxy, so all its users would share one address's allowance. With
//! `--trusted-proxies`, a connection from one of those networks is asked who it forwards for: the
//! chosen header is read from its right end (the hop the trusted proxy itself added) leftwards,
//! past every further trusted proxy, and the first address that is not one is the client. A
//! header that anyone else sends is ignored, and so is anything left of the first untrusted hop,
//! which that client could have written itself.

use std::{
    fmt,
    net::{IpAddr, Ipv6Addr, SocketAddr},
    str::FromStr,
};

use axum::http::HeaderMap;

/// A network in CIDR notation (`10.0.0.0/8`, `fd00::/8`); a bare address is the one-address
/// network (`/32` or `/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` lies in this network. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, how a
    /// dual-stack socket reports an IPv4 peer) counts as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, unmap(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(u32::from(net).into(), u32::from(ip).into(), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(u128::from(net), u128::from(ip), self.prefix, 128)
            }
            _ => false,
        }
    }
}

fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// Whether the top `prefix` of `width` bits of `a` and `b` agree.
fn prefix_eq(a: u128, b: u128, prefix: u8, width: u32) -> bool {
    let drop = width - u32::from(prefix);
    if drop >= 128 {
        return true;
    }
    (a >> drop) == (b >> drop)
}

/// Why a `--trusted-proxies` entry was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CidrError(String);

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CidrError {}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, CidrError> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net: IpAddr = addr.parse().map_err(|_| {
            CidrError(format!(
                "{s:?} is not a network: write an address with an optional prefix length, \
                 e.g. 10.0.0.0/8, 192.168.1.7 or fd00::/8"
            ))
        })?;
        let net = unmap(net);
        let width: u8 = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => width,
            Some(p) => match p.parse::<u8>() {
                Ok(p) if p <= width => p,
                _ => {
                    return Err(CidrError(format!(
                        "{s:?}: the prefix length must be a number from 0 to {width}"
                    )));
                }
            },
        };
        Ok(Cidr { net, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

/// The header a trusted proxy states the client in. Read only one: a proxy that appends to
/// `X-Forwarded-For` usually passes a client's own `Forwarded` header through untouched, so
/// reading both would let a client pick its address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, ...` (nginx, HAProxy, Caddy, Traefik by default).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client;proto=https, for=proxy1`.
    Forwarded,
}

/// The proxies whose word on the client address is taken, and where they give it.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    /// The proxies' networks; empty trusts no one.
    pub networks: Vec<Cidr>,
    /// Where they name the client.
    pub header: ForwardedHeader,
}

impl TrustedProxies {
    /// Whether `ip` is one of the trusted proxies.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.networks.iter().any(|n| n.contains(ip))
    }

    /// The address the connection from `peer` speaks for: `peer` itself unless it is a trusted
    /// proxy; otherwise the first untrusted hop of the forwarding header read from its right
    /// end. When the header is missing, or a hop that matters is unreadable or hidden
    /// (`unknown`, `_obfuscated`), the last trusted hop stands for the client: the limits then
    /// treat the proxy as one client rather than believing a guess.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let hops = self.hops(headers);
        let mut client = peer;
        for hop in hops.iter().rev() {
            match hop {
                Some(ip) => {
                    client = *ip;
                    if !self.trusts(*ip) {
                        break;
                    }
                }
                None => break,
            }
        }
        client
    }

    /// Every hop the header lists, left (the original client) to right (the last proxy);
    /// `None` for one that names no address. Repeated header lines form one list.
    fn hops(&self, headers: &HeaderMap) -> Vec<Option<IpAddr>> {
        let name = match self.header {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::Forwarded => "forwarded",
        };
        let mut hops = Vec::new();
        for line in headers.get_all(name) {
            let Ok(line) = line.to_str() else {
                hops.push(None);
                continue;
            };
            for element in line.split(',') {
                hops.push(match self.header {
                    ForwardedHeader::XForwardedFor => node_address(element.trim()),
                    ForwardedHeader::Forwarded => forwarded_for(element),
                });
            }
        }
        hops
    }
}

/// The `for=` node of one RFC 7239 element (`for=192.0.2.60;proto=http;by=203.0.113.43`).
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("for")
            .then(|| node_address(value.trim().trim_matches('"')))
            .flatten()
    })
}

/// An address as proxies write a node: `192.0.2.60`, `192.0.2.60:4711`, `2001:db8::1`,
/// `[2001:db8::1]` or `[2001:db8::1]:4711`.
fn node_address(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(unmap(ip));
    }
    if let Ok(sa) = node.parse::<SocketAddr>() {
        return Some(unmap(sa.ip()));
    }
    let inner = node.strip_prefix('[')?.strip_suffix(']')?;
    inner
        .parse::<Ipv6Addr>()
        .ok()
        .map(|v6| unmap(IpAddr::V6(v6)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn proxies(list: &[&str], header: ForwardedHeader) -> TrustedProxies {
        TrustedProxies {
            networks: list.iter().map(|s| s.parse().unwrap()).collect(),
            header,
        }
    }

    fn headers(name: &'static str, lines: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for l in lines {
            h.append(name, HeaderValue::from_str(l).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_parse_and_contain_what_they_say() {
        let n: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(n.contains(ip("10.1.255.3")));
        assert!(!n.contains(ip("10.2.0.1")));
        assert!(
            n.contains(ip("::ffff:10.1.0.9")),
            "a mapped IPv4 peer is its IPv4 address"
        );
        assert!(!n.contains(ip("fd00::1")));
        let one: Cidr = "192.168.1.7".parse().unwrap();
        assert!(one.contains(ip("192.168.1.7")) && !one.contains(ip("192.168.1.8")));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fdab::1")) && !v6.contains(ip("fe80::1")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        assert_eq!(one.to_string(), "192.168.1.7/32");
    }

    #[test]
    fn bad_networks_say_how_to_write_one() {
        for bad in [
            "10.0.0.0/33",
            "fd00::/129",
            "ten/8",
            "10.0.0.0/x",
            "",
            "10.0.0.0/",
        ] {
            let e = bad.parse::<Cidr>().unwrap_err().to_string();
            assert!(
                e.contains("prefix length") || e.contains("e.g."),
                "{bad:?} gave {e:?}"
            );
        }
    }

    #[test]
    fn an_untrusted_peer_is_its_own_address_whatever_it_claims() {
        let p = proxies(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        let h = headers("x-forwarded-for", &["198.51.100.1"]);
        assert_eq!(p.client_ip(ip("203.0.113.5"), &h), ip("203.0.113.5"));
        let none = TrustedProxies::default();
        assert_eq!(none.client_ip(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn the_first_untrusted_hop_from_the_right_is_the_client() {
        let p = proxies(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        // The client wrote a fake first entry; the proxy appended the real address.
        let h = headers("x-forwarded-for", &["1.2.3.4, 198.51.100.7"]);
        assert_eq!(p.client_ip(ip("10.0.0.2"), &h), ip("198.51.100.7"));
        // Two trusted proxies in a row: skip both.
        let h = headers("x-forwarded-for", &["198.51.100.7, 10.0.0.9"]);
        assert_eq!(p.client_ip(ip("10.0.0.2"), &h), ip("198.51.100.7"));
        // Repeated header lines are one list.
        let h = headers("x-forwarded-for", &["1.2.3.4", "198.51.100.7:5555"]);
        assert_eq!(p.client_ip(ip("10.0.0.2"), &h), ip("198.51.100.7"));
        let h = headers("x-forwarded-for", &["[2001:db8::9]:80"]);
        assert_eq!(p.client_ip(ip("10.0.0.2"), &h), ip("2001:db8::9"));
    }

    #[test]
    fn a_missing_or_unreadable_hop_leaves_the_proxy_as_the_client() {
        let p = proxies(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        assert_eq!(
            p.client_ip(ip("10.0.0.2"), &HeaderMap::new()),
            ip("10.0.0.2")
        );
        let h = headers("x-forwarded-for", &["198.51.100.7, garbage"]);
        assert_eq!(p.client_ip(ip("10.0.0.2"), &h), ip("10.0.0.2"));
        let h = headers("x-forwarded-for", &["198.51.100.7, garbage, 10.0.0.3"]);
        assert_eq!(p.client_ip(ip("10.0.0.2"), &h), ip("10.0.0.3"));
    }

    #[test]
    fn forwarded_is_read_by_its_for_parameter_and_only_when_chosen() {
        let p = proxies(&["10.0.0.0/8"], ForwardedHeader::Forwarded);
        let h = headers(
            "forwarded",
            &[r#"for=1.2.3.4, For="[2001:db8:cafe::17]:4711";proto=https;by=10.0.0.2"#],
        );
        assert_eq!(p.client_ip(ip("10.0.0.2"), &h), ip("2001:db8:cafe::17"));
        let h = headers("forwarded", &["for=198.51.100.7:1234;proto=http"]);
        assert_eq!(p.client_ip(ip("10.0.0.2"), &h), ip("198.51.100.7"));
        let h = headers("forwarded", &["for=unknown", "for=_hidden"]);
        assert_eq!(p.client_ip(ip("10.0.0.2"), &h), ip("10.0.0.2"));
        // With Forwarded chosen, X-Forwarded-For is a client's own words and ignored.
        let h = headers("x-forwarded-for", &["198.51.100.7"]);
        assert_eq!(p.client_ip(ip("10.0.0.2"), &h), ip("10.0.0.2"));
    }
}
