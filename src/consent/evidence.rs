//! Evidence kept with a consent: the client IP as a keyed hash (comparable across
//! records, not reversible without the secret), who vouches for that address, and the
//! user agent.

use std::net::IpAddr;
use std::path::Path;

use super::ledger::{Evidence, IpSource};
use crate::crypto::{KeyError, KeyedHasher};

const SECRET_FILE: &str = "secrets/evidence.key";
const MAX_USER_AGENT: usize = 512;

/// Hashes client IPs with the service's secret.
pub struct EvidenceHasher {
    hasher: KeyedHasher,
}

impl EvidenceHasher {
    /// Uses the configured secret, or the one in the data folder (generated on first start).
    pub fn load_or_generate(data_dir: &Path, configured: Option<&str>) -> Result<Self, KeyError> {
        KeyedHasher::load_or_generate(data_dir, SECRET_FILE, configured)
            .map(|hasher| Self { hasher })
    }

    pub fn hash(&self, value: &str) -> String {
        self.hasher.hash(value)
    }

    /// Evidence of an address seen (or stated) and the user agent, cut to a sane
    /// length; the address is kept only as its keyed hash.
    pub fn evidence(
        &self,
        address: Option<(IpAddr, IpSource)>,
        user_agent: Option<&str>,
    ) -> Evidence {
        Evidence {
            ip_hash: address.map(|(ip, _)| self.hash(&ip.to_string())),
            ip_source: address.map(|(_, source)| source),
            user_agent: user_agent.map(|ua| ua.chars().take(MAX_USER_AGENT).collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_ip_hashes_the_same_and_the_secret_persists() {
        let dir = tempfile::tempdir().unwrap();
        let a = EvidenceHasher::load_or_generate(dir.path(), None).unwrap();
        let b = EvidenceHasher::load_or_generate(dir.path(), None).unwrap();
        assert_eq!(a.hash("203.0.113.7"), b.hash("203.0.113.7"));
        assert_ne!(a.hash("203.0.113.7"), a.hash("203.0.113.8"));
        assert_eq!(a.hash("203.0.113.7").len(), 64);
        let other = EvidenceHasher::load_or_generate(dir.path(), Some("another secret")).unwrap();
        assert_ne!(a.hash("203.0.113.7"), other.hash("203.0.113.7"));
    }
}
