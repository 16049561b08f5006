//! Evidence kept with a consent: the client IP as a keyed hash (comparable across
//! records, not reversible without the secret) and the user agent.

use std::path::Path;

use actix_web::HttpRequest;

use super::ledger::Evidence;
use crate::auth::keys::KeyError;
use crate::auth::secret::KeyedHasher;

const SECRET_FILE: &str = "secrets/evidence.key";
const MAX_USER_AGENT: usize = 512;

/// Hashes client IPs with the service's secret.
pub struct EvidenceHasher(KeyedHasher);

impl EvidenceHasher {
    /// Uses the configured secret, or the one in the data folder (generated on first start).
    pub fn load_or_generate(data_dir: &Path, configured: Option<&str>) -> Result<Self, KeyError> {
        KeyedHasher::load_or_generate(data_dir, SECRET_FILE, configured).map(Self)
    }

    pub fn hash(&self, value: &str) -> String {
        self.0.hash(value)
    }

    /// The evidence of a request: the peer's IP (or the one a proxy forwarded) and the
    /// user agent, cut to a sane length.
    pub fn of_request(&self, req: &HttpRequest) -> Evidence {
        let ip = req
            .connection_info()
            .realip_remote_addr()
            .map(strip_port)
            .map(|ip| self.hash(&ip));
        let user_agent = req
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(MAX_USER_AGENT).collect());
        Evidence {
            ip_hash: ip,
            user_agent,
        }
    }
}

/// `1.2.3.4:5678` → `1.2.3.4`; `[::1]:80` → `::1`; a bare address is kept.
fn strip_port(addr: &str) -> String {
    if let Ok(socket) = addr.parse::<std::net::SocketAddr>() {
        return socket.ip().to_string();
    }
    addr.trim_matches(['[', ']']).to_owned()
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

    #[test]
    fn ports_are_dropped() {
        assert_eq!(strip_port("1.2.3.4:5678"), "1.2.3.4");
        assert_eq!(strip_port("[::1]:80"), "::1");
        assert_eq!(strip_port("10.0.0.1"), "10.0.0.1");
    }
}
