//! Who is on the other end: the peer's address, or the address a trusted proxy says it
//! forwarded for. `X-Forwarded-For` and `Forwarded` are believed only when the peer is
//! one of `CONSENTRY_TRUSTED_PROXIES`; anyone else could write anything there.

use std::net::IpAddr;

use actix_web::http::header::HeaderMap;

use crate::consent::ledger::{Evidence, IpSource};

/// An address block such as `10.0.0.0/8` or `2001:db8::/32`; a bare address is `/32` or
/// `/128`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(input: &str) -> Result<Self, String> {
        let (address, prefix) = match input.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (input, None),
        };
        let network: IpAddr = address
            .trim()
            .parse()
            .map_err(|_| format!("`{input}` is not an IP address or CIDR block"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{input}`: the prefix length must be 0 to {max}"))?,
        };
        Ok(Self { network, prefix })
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        match (self.network, address) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// IPv4 peers reached through a dual-stack socket show as `::ffff:a.b.c.d`.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// The proxies whose forwarding headers are believed; none by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// Comma-separated blocks, e.g. `10.0.0.0/8, 192.168.1.7`; empty trusts nobody.
    pub fn parse(input: &str) -> Result<Self, String> {
        input
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Cidr::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    pub fn trusts(&self, address: IpAddr) -> bool {
        self.0.iter().any(|block| block.contains(address))
    }
}

/// Where a client address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressSource {
    /// The TCP peer itself.
    Peer,
    /// A trusted proxy's forwarding header.
    Forwarded,
}

/// The client's address: walking the forwarding chain from the right, the first hop that
/// is not a trusted proxy. A hop that is not a valid address ends the walk at the last
/// trusted address seen, since nothing to its left can be believed.
pub fn client_address(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
) -> Option<(IpAddr, AddressSource)> {
    let peer = canonical(peer?);
    if !trusted.trusts(peer) {
        return Some((peer, AddressSource::Peer));
    }
    let mut nearest = (peer, AddressSource::Peer);
    for hop in forwarded_chain(headers).iter().rev() {
        let Some(address) = hop.as_deref().and_then(parse_hop) else {
            return Some(nearest);
        };
        nearest = (address, AddressSource::Forwarded);
        if !trusted.trusts(address) {
            break;
        }
    }
    Some(nearest)
}

/// The hops a request passed through, leftmost first: from `Forwarded` (RFC 7239) when
/// present, else from `X-Forwarded-For`; every header line counts, in order.
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<String>> {
    let lines = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .map(|v| v.to_str().map(str::to_owned).unwrap_or_default())
            .collect()
    };
    let forwarded = lines("forwarded");
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|line| line.split(','))
            .map(|element| {
                element.split(';').find_map(|pair| {
                    let (key, value) = pair.split_once('=')?;
                    key.trim()
                        .eq_ignore_ascii_case("for")
                        .then(|| value.trim().trim_matches('"').to_owned())
                })
            })
            .collect();
    }
    lines("x-forwarded-for")
        .iter()
        .flat_map(|line| line.split(','))
        .map(|hop| Some(hop.trim().to_owned()))
        .collect()
}

/// `203.0.113.7`, `203.0.113.7:443`, `[2001:db8::1]` or `[2001:db8::1]:443`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(address) = hop.parse::<IpAddr>() {
        return Some(canonical(address));
    }
    if let Ok(socket) = hop.parse::<std::net::SocketAddr>() {
        return Some(canonical(socket.ip()));
    }
    hop.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|h| h.parse().ok())
        .map(canonical)
}

/// The consent evidence of a request: the client's address (by the trusted-proxy rule)
/// or, when the writing service states one, that address marked as asserted; and the
/// user agent.
pub fn request_evidence(
    state: &super::AppState,
    req: &actix_web::HttpRequest,
    asserted: Option<IpAddr>,
) -> Evidence {
    let address = match asserted {
        Some(ip) => Some((ip, IpSource::Asserted)),
        None => client_address(
            req.peer_addr().map(|a| a.ip()),
            req.headers(),
            &state.trusted_proxies,
        )
        .map(|(ip, source)| {
            let source = match source {
                AddressSource::Peer => IpSource::Peer,
                AddressSource::Forwarded => IpSource::Proxy,
            };
            (ip, source)
        }),
    };
    let user_agent = req
        .headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    state.evidence.evidence(address, user_agent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn blocks_parse_and_match() {
        let block = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(block.contains(ip("10.1.200.3")));
        assert!(!block.contains(ip("10.2.0.1")));
        assert!(block.contains(ip("::ffff:10.1.0.9")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Cidr::parse("2001:db8::/32")
            .unwrap()
            .contains(ip("2001:db8:1::5")));
        assert!(Cidr::parse("192.0.2.1").unwrap().contains(ip("192.0.2.1")));
        assert!(!Cidr::parse("192.0.2.1").unwrap().contains(ip("192.0.2.2")));
        for bad in ["10.0.0.0/33", "::/129", "nope", "10.0.0/8", "1.2.3.4/x"] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            TrustedProxies::parse("").unwrap(),
            TrustedProxies::default()
        );
        assert!(TrustedProxies::parse("10.0.0.0/8, bad").is_err());
    }

    #[test]
    fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
        let trusted = TrustedProxies::default();
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.9"),
            ("forwarded", "for=198.51.100.10"),
        ]);
        assert_eq!(
            client_address(Some(ip("203.0.113.5")), &h, &trusted),
            Some((ip("203.0.113.5"), AddressSource::Peer))
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let peer = Some(ip("10.0.0.1"));
        // A client that wrote its own X-Forwarded-For cannot pick its address.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 198.51.100.9, 10.0.0.2")]);
        assert_eq!(
            client_address(peer, &h, &trusted),
            Some((ip("198.51.100.9"), AddressSource::Forwarded))
        );
        // Several header lines are one list.
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "198.51.100.9"),
        ]);
        assert_eq!(
            client_address(peer, &h, &trusted).unwrap().0,
            ip("198.51.100.9")
        );
        let h = headers(&[(
            "forwarded",
            "for=1.1.1.1, for=\"[2001:db8::7]:4711\";proto=https",
        )]);
        assert_eq!(
            client_address(peer, &h, &trusted),
            Some((ip("2001:db8::7"), AddressSource::Forwarded))
        );
    }

    #[test]
    fn garbage_stops_the_walk_at_the_last_trusted_hop() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let peer = Some(ip("10.0.0.1"));
        for value in ["<script>", "unknown", "", "1.2.3.4.5", "_hidden"] {
            let h = headers(&[("x-forwarded-for", value)]);
            assert_eq!(
                client_address(peer, &h, &trusted),
                Some((ip("10.0.0.1"), AddressSource::Peer)),
                "{value}"
            );
        }
        let h = headers(&[("x-forwarded-for", "198.51.100.9, junk, 10.0.0.3")]);
        assert_eq!(
            client_address(peer, &h, &trusted),
            Some((ip("10.0.0.3"), AddressSource::Forwarded))
        );
        // Without any forwarding header the trusted peer is all there is.
        assert_eq!(
            client_address(peer, &HeaderMap::new(), &trusted),
            Some((ip("10.0.0.1"), AddressSource::Peer))
        );
    }
}
