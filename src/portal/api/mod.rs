//! The portal's endpoints: the API calls that make links, and the pages. Page handlers
//! answer HTML in the visitor's language, errors included; this module holds what they
//! share — who is visiting, the form guard, rendering and the failure pages.

pub mod assets;
pub mod centre;
pub mod console;
pub mod data;
pub mod links;
pub mod preferences;
pub mod survey;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use serde::de::DeserializeOwned;

use crate::http::AppState;
use crate::portal::i18n::{self, Lang, Tr};
use crate::portal::session::{self, LinkRefusal, Session};
use crate::storage::StorageError;

/// The pages (not part of the API document).
pub fn pages(cfg: &mut web::ServiceConfig) {
    cfg.service(assets::stylesheet)
        .service(links::enter)
        .service(links::sign_out)
        .service(centre::centre)
        .service(centre::set_consent)
        .service(centre::all_off)
        .service(preferences::save_preferences)
        .service(data::history)
        .service(data::request_access)
        .service(data::download)
        .service(data::request_correction)
        .service(data::confirm_delete)
        .service(data::delete)
        .service(survey::show_survey)
        .service(survey::answer_survey);
    console::pages(cfg);
}

/// A signed-in visitor: their session and the secret their cookie holds.
pub struct Live {
    pub secret: String,
    pub session: Session,
}

impl Live {
    pub fn csrf(&self) -> String {
        session::csrf_token(&self.secret)
    }
}

/// Who is asking, and in which language to answer.
pub struct Visit {
    pub live: Option<Live>,
    pub lang: Lang,
}

impl Visit {
    /// Reads the session cookie and the language: `?lang=` (remembered by the session),
    /// else the session's, else the browser's.
    pub async fn of(state: &AppState, req: &HttpRequest) -> Result<Self, Failure> {
        let settings = &state.portal.settings;
        let secret = req
            .cookie(settings.cookie_name())
            .map(|c| c.value().to_owned())
            .filter(|v| !v.is_empty() && v.len() <= 64);
        let (now, idle) = (state.clock.now(), settings.durations.idle);
        let asked = query_value(req, "lang").and_then(|l| Lang::from_tag(&l));
        let live = match secret {
            Some(secret) => {
                let lookup = secret.clone();
                let found = state
                    .db
                    .run(move |conn| {
                        let found = session::find_live(conn, &lookup, now, idle)?;
                        if let (Some(found), Some(lang)) = (&found, asked) {
                            session::set_locale(conn, &found.id_hash, lang.code())?;
                        }
                        Ok::<_, StorageError>(found)
                    })
                    .await
                    .map_err(Failure::internal)?;
                found.map(|mut session| {
                    if let Some(lang) = asked {
                        session.locale = Some(lang.code().to_owned());
                    }
                    Live { secret, session }
                })
            }
            None => None,
        };
        let accept = req
            .headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        let lang = asked.unwrap_or_else(|| {
            i18n::negotiate(
                live.as_ref().and_then(|l| l.session.locale.as_deref()),
                None,
                accept,
            )
        });
        Ok(Self { live, lang })
    }

    /// The visit; when the session cannot be read (the database is down), an anonymous
    /// one, whose pages then say the session ended rather than fail.
    pub async fn load(state: &AppState, req: &HttpRequest) -> Self {
        match Self::of(state, req).await {
            Ok(visit) => visit,
            Err(_) => Self::anonymous(req),
        }
    }

    /// A customer's form: their session, their id and the form's fields, once the
    /// form's token is checked.
    pub fn customer_form<T: DeserializeOwned>(
        &self,
        state: &AppState,
        req: &HttpRequest,
        body: &[u8],
    ) -> Result<(&Live, &crate::consent::SubjectId, T), Failure> {
        let live = self.require()?;
        let id = centre::customer(live)?;
        let form = checked_form(state, req, live, body)?;
        Ok((live, id, form))
    }

    /// A visitor whose session could not be read: the browser's language only.
    pub fn anonymous(req: &HttpRequest) -> Self {
        let accept = req
            .headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        Self {
            live: None,
            lang: i18n::negotiate(None, None, accept),
        }
    }

    pub fn tr(&self) -> Tr {
        Tr::new(self.lang)
    }

    /// The live session, or the "session ended" page.
    pub fn require(&self) -> Result<&Live, Failure> {
        self.live.as_ref().ok_or(Failure::SessionEnded)
    }
}

/// Why a page cannot be shown; each has its own page in the visitor's language.
#[derive(Debug)]
pub enum Failure {
    Link(LinkRefusal),
    SessionEnded,
    NotFound,
    /// A form without its session's token, or from another site.
    Forged,
    /// A console section the officer's role may not open.
    NotAllowed,
    TooMany(crate::http::limits::Refused),
    Internal,
}

impl Failure {
    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "portal page failed");
        Failure::Internal
    }

    fn status(&self) -> StatusCode {
        match self {
            Failure::Link(LinkRefusal::Unknown) | Failure::NotFound => StatusCode::NOT_FOUND,
            Failure::Link(_) => StatusCode::GONE,
            Failure::SessionEnded => StatusCode::UNAUTHORIZED,
            Failure::Forged | Failure::NotAllowed => StatusCode::FORBIDDEN,
            Failure::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            Failure::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn keys(&self) -> (&'static str, &'static str) {
        match self {
            Failure::Link(LinkRefusal::Unknown) => {
                ("error-link-unknown-title", "error-link-unknown")
            }
            Failure::Link(LinkRefusal::Used) => ("error-link-used-title", "error-link-used"),
            Failure::Link(LinkRefusal::Expired) => {
                ("error-link-expired-title", "error-link-expired")
            }
            Failure::SessionEnded => ("error-session-title", "error-session"),
            Failure::NotFound => ("error-not-found-title", "error-not-found"),
            Failure::Forged => ("error-forbidden-title", "error-forbidden"),
            Failure::NotAllowed => ("error-role-title", "error-role"),
            Failure::TooMany(_) => ("error-too-many-title", "error-too-many"),
            Failure::Internal => ("error-title", "error-internal"),
        }
    }
}

/// What every page's frame shows: language, title, the language switch and sign-out.
pub struct Chrome {
    pub tr: Tr,
    pub title: String,
    /// The form token, when signed in (the sign-out form needs it).
    pub csrf: Option<String>,
    /// This page's path, for the language switch.
    pub path: String,
}

impl Chrome {
    pub fn new(visit: &Visit, title_key: &str, path: &str) -> Self {
        let tr = visit.tr();
        Self {
            title: tr.t(title_key),
            tr,
            csrf: visit.live.as_ref().map(Live::csrf),
            path: path.to_owned(),
        }
    }

    pub fn lang(&self) -> &'static str {
        self.tr.lang.code()
    }

    pub fn dir(&self) -> &'static str {
        self.tr.lang.dir()
    }

    pub fn t(&self, key: &str) -> String {
        self.tr.t(key)
    }

    /// The other languages, as (code, own name) for the switch.
    pub fn languages(&self) -> Vec<(&'static str, String)> {
        Lang::ALL
            .into_iter()
            .filter(|l| *l != self.tr.lang)
            .map(|l| (l.code(), self.tr.t(&format!("language-name-{}", l.code()))))
            .collect()
    }
}

#[derive(Template)]
#[template(path = "portal/message.html")]
struct MessagePage {
    chrome: Chrome,
    text: String,
    back: Option<String>,
}

/// A page, or the page of what went wrong.
pub fn respond(visit: &Visit, result: Result<HttpResponse, Failure>) -> HttpResponse {
    result.unwrap_or_else(|failure| failure_page(visit, &failure))
}

pub fn failure_page(visit: &Visit, failure: &Failure) -> HttpResponse {
    let (title, text) = failure.keys();
    let mut chrome = Chrome::new(visit, title, "/portal");
    if matches!(failure, Failure::SessionEnded | Failure::Link(_)) {
        chrome.csrf = None;
    }
    let page = MessagePage {
        text: chrome.t(text),
        chrome,
        back: None,
    };
    let mut response = html(failure.status(), &page);
    if let Failure::TooMany(refused) = failure {
        let seconds = refused.retry_after_seconds.to_string();
        if let Ok(value) = header::HeaderValue::from_str(&seconds) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
    }
    response
}

/// A page with a title and one paragraph (signed out, deleted).
pub fn message_page(
    visit: &Visit,
    title_key: &str,
    text: String,
    back: Option<String>,
) -> HttpResponse {
    let mut chrome = Chrome::new(visit, title_key, "/portal");
    chrome.csrf = None;
    html(StatusCode::OK, &MessagePage { chrome, text, back })
}

/// Renders a template as an HTML response.
pub fn html(status: StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(body) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(body),
        Err(err) => {
            tracing::error!(error = %err, "rendering a portal page failed");
            HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body("internal error")
        }
    }
}

/// After a form: back to a page (303, so a reload does not post again).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// A form's fields, once its token is checked against the session. Forms come only
/// from our own pages: a browser that names another origin is refused too.
pub fn checked_form<T: DeserializeOwned>(
    state: &AppState,
    req: &HttpRequest,
    live: &Live,
    body: &[u8],
) -> Result<T, Failure> {
    if from_another_site(state, req) {
        return Err(Failure::Forged);
    }
    #[derive(serde::Deserialize)]
    struct Token {
        csrf: String,
    }
    let token: Token = serde_urlencoded::from_bytes(body).map_err(|_| Failure::Forged)?;
    if !constant_time_eq(token.csrf.as_bytes(), live.csrf().as_bytes()) {
        return Err(Failure::Forged);
    }
    serde_urlencoded::from_bytes(body).map_err(|_| Failure::NotFound)
}

/// Whether the browser says the form came from another site: `Sec-Fetch-Site`, or an
/// `Origin` that is not ours. (Under `Referrer-Policy: no-referrer` browsers send
/// `Origin: null` for our own forms, which says nothing either way.)
fn from_another_site(state: &AppState, req: &HttpRequest) -> bool {
    let headers = req.headers();
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if matches!(fetch_site, Some("cross-site" | "same-site")) {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    if origin == "null" {
        return false;
    }
    let own = state.portal.settings.public_url.as_str();
    let host = req.connection_info().host().to_owned();
    !(origin == own
        || origin.strip_prefix("http://") == Some(host.as_str())
        || origin.strip_prefix("https://") == Some(host.as_str()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// One value of the query string.
pub fn query_value(req: &HttpRequest, name: &str) -> Option<String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// The session cookie: HttpOnly, SameSite=Lax (a link from an e-mail or another site
/// must open the session; forms are guarded by their token), `Secure` with the
/// `__Host-` prefix over TLS.
pub fn session_cookie(state: &AppState, value: String, max_age_seconds: i64) -> Cookie<'static> {
    let settings = &state.portal.settings;
    let mut cookie = Cookie::build(settings.cookie_name(), value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(settings.secure_cookies)
        .finish();
    cookie.set_max_age(actix_web::cookie::time::Duration::seconds(max_age_seconds));
    cookie
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
