//! Evidence kept with a consent: the client IP as a keyed hash (comparable across
//! records, not reversible without the secret), who vouches for that address, and the
//! user agent.

use std::net::IpAddr;
use std::path::Path;

use actix_web::HttpRequest;

use super::ledger::{Evidence, IpSource};
use crate::crypto::{KeyError, KeyedHasher};
use crate::http::client_ip::{client_address, AddressSource, TrustedProxies};

const SECRET_FILE: &str = "secrets/evidence.key";
const MAX_USER_AGENT: usize = 512;

/// Hashes client IPs with the service's secret.
pub struct EvidenceHasher {
    hasher: KeyedHasher,
    trusted_proxies: TrustedProxies,
}

impl EvidenceHasher {
    /// Uses the configured secret, or the one in the data folder (generated on first start).
    pub fn load_or_generate(
        data_dir: &Path,
        configured: Option<&str>,
        trusted_proxies: TrustedProxies,
    ) -> Result<Self, KeyError> {
        KeyedHasher::load_or_generate(data_dir, SECRET_FILE, configured).map(|hasher| Self {
            hasher,
            trusted_proxies,
        })
    }

    pub fn hash(&self, value: &str) -> String {
        self.hasher.hash(value)
    }

    /// The evidence of a request: the peer's IP (or, behind a trusted proxy, the one it
    /// forwarded for) and the user agent, cut to a sane length.
    pub fn of_request(&self, req: &HttpRequest) -> Evidence {
        let address = client_address(
            req.peer_addr().map(|a| a.ip()),
            req.headers(),
            &self.trusted_proxies,
        );
        let user_agent = req
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(MAX_USER_AGENT).collect());
        Evidence {
            ip_hash: address.map(|(ip, _)| self.hash(&ip.to_string())),
            ip_source: address.map(|(_, source)| match source {
                AddressSource::Peer => IpSource::Peer,
                AddressSource::Forwarded => IpSource::Proxy,
            }),
            user_agent,
        }
    }

    /// The evidence of a request made for a customer by a service that states the
    /// customer's address itself: recorded as asserted, so the record says the writing
    /// service vouched for it rather than Consentry having seen it.
    pub fn of_request_asserting(&self, req: &HttpRequest, asserted: Option<IpAddr>) -> Evidence {
        let mut evidence = self.of_request(req);
        if let Some(ip) = asserted {
            evidence.ip_hash = Some(self.hash(&ip.to_string()));
            evidence.ip_source = Some(IpSource::Asserted);
        }
        evidence
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_ip_hashes_the_same_and_the_secret_persists() {
        let dir = tempfile::tempdir().unwrap();
        let trusted = TrustedProxies::default;
        let a = EvidenceHasher::load_or_generate(dir.path(), None, trusted()).unwrap();
        let b = EvidenceHasher::load_or_generate(dir.path(), None, trusted()).unwrap();
        assert_eq!(a.hash("203.0.113.7"), b.hash("203.0.113.7"));
        assert_ne!(a.hash("203.0.113.7"), a.hash("203.0.113.8"));
        assert_eq!(a.hash("203.0.113.7").len(), 64);
        let other = EvidenceHasher::load_or_generate(dir.path(), Some("another secret"), trusted())
            .unwrap();
        assert_ne!(a.hash("203.0.113.7"), other.hash("203.0.113.7"));
    }
}
