//! The faces people see: the preference centre a company links its customers to, the
//! survey pages an NPS e-mail opens, and the compliance console. Server-rendered, no
//! JavaScript. This room holds what is the portal's own — links, sessions, languages,
//! the words for each state — and nothing of the rules: its pages call the same domain
//! functions the API's endpoints call.

pub mod api;
pub mod charts;
pub mod i18n;
pub mod session;
pub mod wording;

use chrono::Duration;

/// The portal's settings, shared by every worker.
pub struct Portal {
    pub settings: PortalSettings,
}

/// How long links and sessions last.
#[derive(Debug, Clone, Copy)]
pub struct PortalDurations {
    /// A customer or console link, from its making to its opening.
    pub link: Duration,
    /// A session without a request.
    pub idle: Duration,
    /// A session, however active.
    pub absolute: Duration,
}

/// The portal's configuration.
#[derive(Debug, Clone)]
pub struct PortalSettings {
    /// Where links point, without a trailing `/`.
    pub public_url: String,
    return_urls: Vec<String>,
    pub secure_cookies: bool,
    pub durations: PortalDurations,
}

impl PortalSettings {
    pub fn new(
        public_url: String,
        return_urls: &str,
        secure_cookies: Option<bool>,
        durations: PortalDurations,
    ) -> Result<Self, String> {
        let public_url = public_url.trim_end_matches('/').to_owned();
        if !is_web_url(&public_url) {
            return Err(format!(
                "CONSENTRY_PUBLIC_URL must be an http(s) URL, not `{public_url}`"
            ));
        }
        let return_urls: Vec<String> = return_urls
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect();
        if let Some(bad) = return_urls.iter().find(|u| !is_web_url(u)) {
            return Err(format!(
                "CONSENTRY_PORTAL_RETURN_URLS: `{bad}` is not an http(s) URL"
            ));
        }
        Ok(Self {
            secure_cookies: secure_cookies.unwrap_or(public_url.starts_with("https://")),
            public_url,
            return_urls,
            durations,
        })
    }

    /// The session cookie's name: `__Host-` binds it to this host over TLS only.
    pub fn cookie_name(&self) -> &'static str {
        if self.secure_cookies {
            "__Host-consentry-session"
        } else {
            "consentry-session"
        }
    }

    /// Whether a customer may be sent back to `url` (`return_url`).
    pub fn return_url_allowed(&self, url: &str) -> bool {
        is_web_url(url)
            && self
                .return_urls
                .iter()
                .any(|allowed| url_within(allowed, url))
    }

    pub fn link(&self, path: &str) -> String {
        format!("{}{path}", self.public_url)
    }

    /// A public URL left at the bind address with port 0 (tests) takes the real port.
    pub fn with_port(mut self, port: u16) -> Self {
        if let Some(base) = self.public_url.strip_suffix(":0") {
            self.public_url = format!("{base}:{port}");
        }
        self
    }
}

/// An absolute http(s) URL with a host, no spaces, quotes or control characters.
fn is_web_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let Some(rest) = rest else { return false };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    !host.is_empty()
        && !host.contains('@')
        && url.len() <= 2_000
        && url
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '<' | '>' | '\\'))
}

/// `url` is `allowed` or lies under it: `https://shop.example` allows
/// `https://shop.example/account` but not `https://shop.example.evil.test`.
fn url_within(allowed: &str, url: &str) -> bool {
    match url.strip_prefix(allowed) {
        Some("") => true,
        Some(rest) => allowed.ends_with('/') || rest.starts_with(['/', '?', '#']),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(return_urls: &str, public: &str) -> PortalSettings {
        let durations = PortalDurations {
            link: Duration::minutes(15),
            idle: Duration::minutes(30),
            absolute: Duration::hours(12),
        };
        PortalSettings::new(public.into(), return_urls, None, durations).unwrap()
    }

    #[test]
    fn return_urls_must_lie_under_an_allowed_prefix() {
        let s = settings(
            "https://shop.example, https://app.example/account/",
            "http://x",
        );
        assert!(s.return_url_allowed("https://shop.example"));
        assert!(s.return_url_allowed("https://shop.example/settings?tab=1"));
        assert!(s.return_url_allowed("https://app.example/account/privacy"));
        assert!(!s.return_url_allowed("https://shop.example.evil.test/"));
        assert!(!s.return_url_allowed("https://shop.example@evil.test/"));
        assert!(!s.return_url_allowed("https://app.example/accounts"));
        assert!(!s.return_url_allowed("javascript:alert(1)"));
        assert!(!s.return_url_allowed("https://shop.example/\"><script>"));
        assert!(!settings("", "http://x").return_url_allowed("https://shop.example"));
    }

    #[test]
    fn cookies_are_secure_when_served_over_tls() {
        assert_eq!(
            settings("", "https://privacy.example/").cookie_name(),
            "__Host-consentry-session"
        );
        assert_eq!(
            settings("", "http://127.0.0.1:8080").cookie_name(),
            "consentry-session"
        );
        assert_eq!(
            settings("", "https://privacy.example/").link("/portal"),
            "https://privacy.example/portal"
        );
    }

    #[test]
    fn the_public_url_and_allow_list_are_checked_at_start() {
        let durations = PortalDurations {
            link: Duration::minutes(1),
            idle: Duration::minutes(1),
            absolute: Duration::hours(1),
        };
        assert!(PortalSettings::new("ftp://x".into(), "", None, durations).is_err());
        assert!(PortalSettings::new("http://x".into(), "shop.example", None, durations).is_err());
    }
}
