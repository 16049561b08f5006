//! Abuse limits: token buckets per client address (requests without credentials, failed
//! authentication, the portal's link doors) and per token subject (writes). The address is
//! the one the trusted-proxy rule gives, so clients behind one proxy do not share a bucket
//! and nobody escapes theirs by writing `X-Forwarded-For`.
//!
//! What is deliberately not limited: `/healthz` (a load balancer probes it from one
//! address and it touches nothing), requests with a valid token that only read, and the
//! gate's decisions, reach and proxy — other services' hot path, which a limit must not slow.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use actix_web::http::Method;
use actix_web::HttpRequest;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

use super::client_ip::{client_address, TrustedProxies};
use super::problem::ApiError;
use crate::auth::{Principal, Role};

/// Forget idle keys after this many checks, so the tables stay small.
const SWEEP_EVERY: u32 = 1_024;

/// The configured rates; each bucket's burst equals its rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitSettings {
    /// Requests without credentials a minute per client address.
    pub anonymous_per_minute: u32,
    /// Requests with a missing, malformed or rejected token a minute per client address.
    pub failed_auth_per_minute: u32,
    /// Writes a minute per customer (tokens of the `subject` role).
    pub customer_writes_per_minute: u32,
    /// Writes a second per token subject of the other roles (one service, one officer).
    pub service_writes_per_second: u32,
    /// Portal links asked for or opened a minute per client address.
    pub portal_doors_per_minute: u32,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            anonymous_per_minute: 600,
            failed_auth_per_minute: 30,
            customer_writes_per_minute: 120,
            service_writes_per_second: 5_000,
            portal_doors_per_minute: 30,
        }
    }
}

/// One kind of bucket, keyed by address or token subject, counting what it refused.
pub struct KeyedLimit<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    checks: AtomicU32,
    refused: IntCounter,
}

impl<K: Hash + Eq + Clone> KeyedLimit<K> {
    fn new(quota: Quota, refused: IntCounter) -> Self {
        Self {
            limiter: RateLimiter::keyed(quota),
            checks: AtomicU32::new(0),
            refused,
        }
    }

    /// Refused once `key` has used up its share, saying when to retry.
    pub fn check(&self, key: &K) -> Result<(), Refused> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(key).map_err(|not_until| {
            self.refused.inc();
            Refused::after(not_until.wait_time_from(DefaultClock::default().now()))
        })
    }
}

/// A request over its limit: 429 with `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub retry_after_seconds: u64,
}

impl Refused {
    fn after(wait: Duration) -> Self {
        // Whole seconds, rounded up: `Retry-After: 0` would invite an immediate retry.
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Self {
            retry_after_seconds: seconds.max(1),
        }
    }
}

impl From<Refused> for ApiError {
    fn from(refused: Refused) -> Self {
        ApiError::TooManyRequests {
            retry_after_seconds: refused.retry_after_seconds,
        }
    }
}

fn per_minute(rate: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(rate).unwrap_or(NonZeroU32::MIN))
}

/// Every limit of the service, shared by all workers.
pub struct Limits {
    pub anonymous: KeyedLimit<IpAddr>,
    pub failed_auth: KeyedLimit<IpAddr>,
    customer_writes: KeyedLimit<String>,
    service_writes: KeyedLimit<(Role, Option<String>)>,
    pub portal_doors: KeyedLimit<IpAddr>,
    trusted_proxies: TrustedProxies,
}

impl Limits {
    pub fn new(
        settings: LimitSettings,
        trusted_proxies: TrustedProxies,
        registry: &Registry,
    ) -> Result<Self, prometheus::Error> {
        let refused = IntCounterVec::new(
            Opts::new(
                "rate_limited_total",
                "Requests refused with 429, by the limit that refused them",
            ),
            &["limit"],
        )?;
        registry.register(Box::new(refused.clone()))?;
        let counter = |limit: &str| refused.with_label_values(&[limit]);
        Ok(Self {
            anonymous: KeyedLimit::new(
                per_minute(settings.anonymous_per_minute),
                counter("anonymous"),
            ),
            failed_auth: KeyedLimit::new(
                per_minute(settings.failed_auth_per_minute),
                counter("failed_auth"),
            ),
            customer_writes: KeyedLimit::new(
                per_minute(settings.customer_writes_per_minute),
                counter("customer_writes"),
            ),
            service_writes: KeyedLimit::new(
                Quota::per_second(
                    NonZeroU32::new(settings.service_writes_per_second).unwrap_or(NonZeroU32::MIN),
                ),
                counter("service_writes"),
            ),
            portal_doors: KeyedLimit::new(
                per_minute(settings.portal_doors_per_minute),
                counter("portal_doors"),
            ),
            trusted_proxies,
        })
    }

    /// The client's address by the trusted-proxy rule; unknown peers share one bucket.
    pub fn client(&self, req: &HttpRequest) -> IpAddr {
        self.client_of(req.peer_addr().map(|a| a.ip()), req.headers())
    }

    pub fn client_of(
        &self,
        peer: Option<IpAddr>,
        headers: &actix_web::http::header::HeaderMap,
    ) -> IpAddr {
        client_address(peer, headers, &self.trusted_proxies)
            .map_or(IpAddr::from([0, 0, 0, 0]), |(ip, _)| ip)
    }

    /// A write by an authenticated caller counts against their token subject's share.
    pub fn check_write(&self, principal: &Principal, req: &HttpRequest) -> Result<(), Refused> {
        if !is_limited_write(req.method(), req.path()) {
            return Ok(());
        }
        match (principal.role, &principal.sub) {
            (Role::Subject, Some(sub)) => self.customer_writes.check(sub),
            (role, sub) => self.service_writes.check(&(role, sub.clone())),
        }
    }
}

/// Whether a request counts as a write: every unsafe method except the gate's, whose
/// POSTs ask rather than change (decisions, reach) or pass through to an upstream (the
/// proxy).
/// Judged by the path, not the route pattern, which would cost the hot path an
/// allocation per request.
pub fn is_limited_write(method: &Method, path: &str) -> bool {
    let unsafe_method = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    let gate = matches!(
        path,
        "/v1/decisions" | "/v1/decisions/batch" | "/v1/reach" | "/v1/reach/batch"
    ) || path.starts_with("/gate/");
    unsafe_method && !gate
}

/// Whether a request without credentials counts against its address: all but liveness.
pub fn is_limited_anonymous(path: &str) -> bool {
    path != "/healthz"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(settings: LimitSettings) -> Limits {
        Limits::new(settings, TrustedProxies::default(), &Registry::new()).unwrap()
    }

    #[test]
    fn each_address_has_its_own_share() {
        let limits = limits(LimitSettings {
            failed_auth_per_minute: 3,
            ..LimitSettings::default()
        });
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        for _ in 0..3 {
            assert!(limits.failed_auth.check(&a).is_ok());
        }
        let refused = limits.failed_auth.check(&a).unwrap_err();
        assert!((1..=20).contains(&refused.retry_after_seconds));
        assert!(limits.failed_auth.check(&b).is_ok());
        assert_eq!(limits.failed_auth.refused.get(), 1);
    }

    #[test]
    fn the_wait_is_rounded_up_to_a_whole_second() {
        let seconds = |d| Refused::after(d).retry_after_seconds;
        assert_eq!(seconds(Duration::ZERO), 1);
        assert_eq!(seconds(Duration::from_millis(100)), 1);
        assert_eq!(seconds(Duration::from_millis(1_001)), 2);
        assert_eq!(seconds(Duration::from_secs(2)), 2);
    }

    #[test]
    fn the_gates_posts_are_not_writes() {
        let post = Method::POST;
        for path in [
            "/v1/decisions",
            "/v1/decisions/batch",
            "/v1/reach",
            "/v1/reach/batch",
            "/gate/recs/items/42",
        ] {
            assert!(!is_limited_write(&post, path), "{path}");
        }
        for path in [
            "/v1/subjects/alice/consents",
            "/v1/decisions/other",
            "/v1/decisionsx",
            "/v1/subjects/alice/contacts",
            "/gateway",
        ] {
            assert!(is_limited_write(&post, path), "{path}");
        }
        assert!(is_limited_write(&Method::DELETE, "/v1/subjects/alice"));
        assert!(is_limited_write(&Method::PUT, "/nowhere"));
        assert!(!is_limited_write(&Method::GET, "/v1/subjects/alice"));
        assert!(!is_limited_write(&Method::HEAD, "/v1/decisions"));
    }

    #[test]
    fn only_liveness_is_free_without_credentials() {
        assert!(!is_limited_anonymous("/healthz"));
        for path in [
            "/readyz",
            "/metrics",
            "/openapi.json",
            "/portal",
            "/nowhere",
        ] {
            assert!(is_limited_anonymous(path), "{path}");
        }
    }
}
