//! Security headers on every response. A handler that sets one of them itself keeps its
//! own value (the JWKS, for one, may be cached).

use actix_web::http::header::{self, HeaderName, HeaderValue};

/// The API browser runs Swagger UI: its own scripts and styles (it styles elements
/// inline), images it draws as data URIs, and the document it fetches.
const DOCS_POLICY: &str =
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The preference centre, survey pages and console: their own stylesheet and images,
/// forms that post only to themselves, no script at all, never framed.
const PAGE_POLICY: &str = "default-src 'self'; script-src 'none'; object-src 'none'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Whether a path is one of the portal's pages (see `PAGE_POLICY`).
fn is_page(path: &str) -> bool {
    ["/portal", "/console"]
        .iter()
        .any(|root| path == *root || path.starts_with(&format!("{root}/")))
}

/// Everything else is data, never a page to render or frame.
const DATA_POLICY: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

/// The headers a response on `path` gets unless it has them already.
pub fn for_path(path: &str) -> [(HeaderName, HeaderValue); 5] {
    let policy = if path == "/docs" || path.starts_with("/docs/") {
        DOCS_POLICY
    } else if is_page(path) {
        PAGE_POLICY
    } else {
        DATA_POLICY
    };
    // Answers under /v1 and /gate are about someone (exports, bundles, receipts, consent
    // state): no cache on the way may keep them.
    let cache = if path.starts_with("/v1/") || path.starts_with("/gate/") || is_page(path) {
        "no-store"
    } else {
        "no-cache"
    };
    [
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(policy),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
    ]
}

/// Adds what `for_path` gives to a response, keeping values the handler chose.
pub fn apply(path: &str, headers: &mut actix_web::http::header::HeaderMap) {
    for (name, value) in for_path(path) {
        if !headers.contains_key(&name) {
            headers.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_answers_are_never_stored_and_only_the_docs_may_run_scripts() {
        let get = |path: &str, name: &HeaderName| {
            for_path(path)
                .into_iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.to_str().unwrap().to_owned())
                .unwrap()
        };
        assert_eq!(get("/v1/audit/events", &header::CACHE_CONTROL), "no-store");
        assert_eq!(
            get("/v1/subjects/a/export", &header::CACHE_CONTROL),
            "no-store"
        );
        assert_eq!(get("/healthz", &header::CACHE_CONTROL), "no-cache");
        assert!(get("/docs/", &header::CONTENT_SECURITY_POLICY).contains("script-src 'self'"));
        assert!(
            get("/v1/purposes", &header::CONTENT_SECURITY_POLICY).starts_with("default-src 'none'")
        );
        assert!(!get("/docsx", &header::CONTENT_SECURITY_POLICY).contains("script-src"));
        let page = get("/portal", &header::CONTENT_SECURITY_POLICY);
        assert!(page.starts_with("default-src 'self'") && page.contains("frame-ancestors 'none'"));
        assert!(!page.contains("unsafe-inline"));
        assert_eq!(get("/console/audit", &header::CACHE_CONTROL), "no-store");
        assert!(get("/portalx", &header::CONTENT_SECURITY_POLICY).starts_with("default-src 'none'"));
    }

    #[test]
    fn a_handlers_own_value_is_kept() {
        let mut headers = header::HeaderMap::new();
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        );
        apply("/.well-known/jwks.json", &mut headers);
        assert_eq!(
            headers.get(header::CACHE_CONTROL).unwrap(),
            "public, max-age=300"
        );
        assert_eq!(
            headers.get(header::X_CONTENT_TYPE_OPTIONS).unwrap(),
            "nosniff"
        );
    }
}
