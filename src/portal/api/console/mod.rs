//! The compliance console (`/console/...`): pages for officers, opened from a console
//! link. A customer's session finds nothing here (404), and a section answers only the
//! roles that may read the same data through the API. Pages read through the domains'
//! functions; the one form that changes something (closing a follow-up) calls the same
//! domain function as the API, and no console page can touch a customer's choices.

pub mod audit;
pub mod rates;
pub mod requests;
pub mod surveys;

use actix_web::http::StatusCode;
use actix_web::{get, web, HttpRequest, HttpResponse};
use askama::Template;

use super::{html, respond, Chrome, Failure, Live, Visit};
use crate::auth::Role;
use crate::http::AppState;
use crate::portal::i18n::Tr;
use crate::portal::session::Holder;

/// Who may hold a console session at all.
pub use crate::portal::session::OFFICER_ROLES as OFFICERS;

pub fn pages(cfg: &mut web::ServiceConfig) {
    cfg.service(overview)
        .service(rates::consent_rates)
        .service(surveys::trends)
        .service(surveys::open_followups)
        .service(surveys::close_followup)
        .service(requests::due)
        .service(requests::detail)
        .service(audit::audit_log)
        .service(audit::verify_chain)
        .service(audit::download);
}

/// The console's sections, each with the roles that may open it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Rates,
    Surveys,
    Followups,
    Requests,
    Audit,
}

impl Section {
    pub const ALL: [Section; 5] = [
        Section::Rates,
        Section::Surveys,
        Section::Followups,
        Section::Requests,
        Section::Audit,
    ];

    pub fn path(self) -> &'static str {
        match self {
            Section::Rates => "/console/consents",
            Section::Surveys => "/console/surveys",
            Section::Followups => "/console/followups",
            Section::Requests => "/console/requests",
            Section::Audit => "/console/audit",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Section::Rates => "rates",
            Section::Surveys => "surveys",
            Section::Followups => "followups",
            Section::Requests => "requests",
            Section::Audit => "audit",
        }
    }

    /// The message key of the section's title (its page's `h1`).
    pub fn title_key(self) -> String {
        format!("console-section-{}", self.name())
    }

    /// The same roles the API lets read this data.
    pub fn readers(self) -> &'static [Role] {
        match self {
            // Counts only, no one's data: every officer.
            Section::Rates => &OFFICERS,
            Section::Surveys => &crate::surveys::READERS,
            Section::Followups => &crate::surveys::followups::READERS,
            Section::Requests => &crate::dsar::requests::HANDLERS,
            Section::Audit => &crate::audit::READERS,
        }
    }
}

/// A signed-in officer.
pub struct Officer<'a> {
    pub live: &'a Live,
    pub role: Role,
    pub name: &'a str,
}

impl Officer<'_> {
    /// The officer, if their role may open `section`.
    pub fn may(&self, section: Section) -> Result<(), Failure> {
        if section.readers().contains(&self.role) {
            Ok(())
        } else {
            Err(Failure::NotAllowed)
        }
    }
}

/// The officer a session belongs to; a customer's session (or a respondent's) finds no
/// console.
pub fn officer(visit: &Visit) -> Result<Officer<'_>, Failure> {
    let live = visit.require()?;
    match &live.session.holder {
        Holder::Officer { sub, role } if OFFICERS.contains(role) => Ok(Officer {
            live,
            role: *role,
            name: sub,
        }),
        _ => Err(Failure::NotFound),
    }
}

/// An officer allowed into `section`.
pub fn officer_in(visit: &Visit, section: Section) -> Result<Officer<'_>, Failure> {
    let officer = officer(visit)?;
    officer.may(section)?;
    Ok(officer)
}

/// A link of the console's navigation.
pub struct NavItem {
    pub href: &'static str,
    pub label: String,
    pub current: bool,
}

/// The sections the officer may open, the current one marked.
pub fn nav(tr: &Tr, officer: &Officer<'_>, current: Option<Section>) -> Vec<NavItem> {
    Section::ALL
        .into_iter()
        .filter(|s| officer.may(*s).is_ok())
        .map(|s| NavItem {
            href: s.path(),
            label: tr.t(&s.title_key()),
            current: Some(s) == current,
        })
        .collect()
}

/// "Signed in as …" for the page's header line.
pub fn signed_in_as(tr: &Tr, officer: &Officer<'_>) -> String {
    tr.with(
        "console-signed-in-as",
        &[
            ("name", officer.name.to_owned()),
            (
                "role",
                tr.t(&format!("console-role-{}", officer.role.as_str())),
            ),
        ],
    )
}

pub struct SectionCard {
    pub href: &'static str,
    pub title: String,
    pub text: String,
}

#[derive(Template)]
#[template(path = "portal/console.html")]
struct OverviewPage {
    chrome: Chrome,
    who: String,
    sections: Vec<SectionCard>,
}

#[get("/console")]
pub async fn overview(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let visit = Visit::load(&state, &req).await;
    let result = (|| {
        let officer = officer(&visit)?;
        let tr = visit.tr();
        let sections = Section::ALL
            .into_iter()
            .filter(|s| officer.may(*s).is_ok())
            .map(|s| SectionCard {
                href: s.path(),
                title: tr.t(&s.title_key()),
                text: tr.t(&format!("console-section-{}-text", s.name())),
            })
            .collect();
        let page = OverviewPage {
            chrome: Chrome::new(&visit, "console-title", "/console"),
            who: signed_in_as(&tr, &officer),
            sections,
        };
        Ok(html(StatusCode::OK, &page))
    })();
    respond(&visit, result)
}
