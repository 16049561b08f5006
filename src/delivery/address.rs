//! Which webhook URLs may be called. Only `http(s)`, and unless the operator allows it,
//! never an address inside the network the service runs in (loopback, private,
//! link-local, shared, multicast...): a webhook must not become a way to reach internal
//! services (SSRF). Checked when an endpoint is saved and again before each delivery,
//! against every address the name resolves to.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

/// Why a URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressRefused {
    #[error("an absolute http(s) URL, such as `https://hooks.example.com/consentry`")]
    NotHttp,
    #[error("a URL without user name or password")]
    Credentials,
    #[error("`{0}` cannot be resolved")]
    Unresolvable(String),
    #[error("`{0}` is a loopback, private, link-local or otherwise internal address")]
    Internal(IpAddr),
}

/// The parts of a webhook URL a connection needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
}

/// Checks the URL's form (no I/O).
pub fn parse(url: &str) -> Result<Target, AddressRefused> {
    let parsed = url::Url::parse(url).map_err(|_| AddressRefused::NotHttp)?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(AddressRefused::NotHttp);
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(AddressRefused::Credentials);
    }
    let host = match parsed.host() {
        Some(url::Host::Domain(d)) => d.to_owned(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => return Err(AddressRefused::NotHttp),
    };
    let port = parsed
        .port_or_known_default()
        .ok_or(AddressRefused::NotHttp)?;
    Ok(Target { host, port })
}

/// Checks the URL and, unless `allow_internal`, every address its host resolves to.
pub fn check(url: &str, allow_internal: bool) -> Result<Vec<SocketAddr>, AddressRefused> {
    let target = parse(url)?;
    let addresses: Vec<SocketAddr> = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .map_err(|_| AddressRefused::Unresolvable(target.host.clone()))?
        .collect();
    if addresses.is_empty() {
        return Err(AddressRefused::Unresolvable(target.host));
    }
    if !allow_internal {
        if let Some(internal) = addresses.iter().find(|a| !is_public(a.ip())) {
            return Err(AddressRefused::Internal(internal.ip()));
        }
    }
    Ok(addresses)
}

/// Whether an address is on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // Benchmarking, 198.18.0.0/15.
        || (a == 198 && (b == 18 || b == 19))
        // Reserved, 240.0.0.0/4.
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // Unique local, fc00::/7.
        || (first & 0xfe00) == 0xfc00
        // Link-local, fe80::/10.
        || (first & 0xffc0) == 0xfe80
        // Documentation, 2001:db8::/32.
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        // NAT64 with an embedded internal address is checked as the address.
        || (first == 0x0064 && ip.segments()[1] == 0xff9b && {
            let [.., c, d] = ip.segments();
            !is_public_v4(Ipv4Addr::new((c >> 8) as u8, c as u8, (d >> 8) as u8, d as u8))
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700::1111",
            "64:ff9b::5db8:d822",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn only_plain_http_urls() {
        assert_eq!(
            parse("https://hooks.example.com/x").unwrap(),
            Target {
                host: "hooks.example.com".into(),
                port: 443
            }
        );
        assert_eq!(parse("http://[::1]:8080/").unwrap().port, 8080);
        for bad in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "example.com",
            "",
            "http://",
        ] {
            assert_eq!(parse(bad), Err(AddressRefused::NotHttp), "{bad}");
        }
        assert_eq!(
            parse("https://user:pw@example.com/"),
            Err(AddressRefused::Credentials)
        );
    }

    #[test]
    fn a_loopback_url_is_refused_unless_allowed() {
        assert!(matches!(
            check("http://127.0.0.1:9/hook", false),
            Err(AddressRefused::Internal(_))
        ));
        assert!(matches!(
            check("http://localhost:9/hook", false),
            Err(AddressRefused::Internal(_))
        ));
        assert!(check("http://127.0.0.1:9/hook", true).is_ok());
    }
}
