//! `GET /console/requests`: open data subject requests that are overdue or due within a
//! week; `GET /console/requests/{id}`: one request, what was asked and its history.

use actix_web::http::StatusCode;
use actix_web::{get, web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::{DateTime, TimeDelta, Utc};

use super::{nav, officer_in, signed_in_as, NavItem, Section};
use crate::dsar::requests::{self, DataSubjectRequest, ListFilter};
use crate::http::AppState;
use crate::portal::api::{html, respond, Chrome, Failure, Visit};
use crate::portal::i18n::Tr;

/// How far ahead "due soon" looks.
const DUE_WITHIN_DAYS: i64 = 7;
/// Requests listed at most.
const LISTED: i64 = 1_000;

pub struct RequestRow {
    pub id: String,
    pub kind: String,
    pub status: String,
    pub subject: String,
    pub jurisdiction: String,
    pub received: String,
    pub due: String,
}

#[derive(Template)]
#[template(path = "portal/console_requests.html")]
struct DuePage {
    chrome: Chrome,
    who: String,
    nav: Vec<NavItem>,
    overdue: Vec<RequestRow>,
    due_soon: Vec<RequestRow>,
}

fn row(tr: &Tr, r: &DataSubjectRequest) -> RequestRow {
    RequestRow {
        id: r.id.clone(),
        kind: tr.t(&format!("request-kind-{}", r.kind.as_str())),
        status: tr.t(&format!("request-status-{}", r.status.as_str())),
        subject: r.subject_id.clone(),
        jurisdiction: r.jurisdiction.clone(),
        received: tr.date(r.received_at),
        due: tr.date_time(r.due_at),
    }
}

/// Splits open requests due before the horizon into overdue and due soon.
fn split(
    tr: &Tr,
    found: &[DataSubjectRequest],
    now: DateTime<Utc>,
) -> (Vec<RequestRow>, Vec<RequestRow>) {
    let (overdue, soon): (Vec<&DataSubjectRequest>, Vec<&DataSubjectRequest>) =
        found.iter().partition(|r| r.is_overdue(now));
    (
        overdue.into_iter().map(|r| row(tr, r)).collect(),
        soon.into_iter().map(|r| row(tr, r)).collect(),
    )
}

#[get("/console/requests")]
pub async fn due(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let visit = Visit::load(&state, &req).await;
    let result = async {
        let officer = officer_in(&visit, Section::Requests)?;
        let now = state.clock.now();
        let filter = ListFilter {
            due_before: Some(now + TimeDelta::days(DUE_WITHIN_DAYS)),
            ..ListFilter::default()
        };
        let found = state
            .db
            .run(move |conn| requests::list(conn, &filter, LISTED))
            .await
            .map_err(Failure::internal)?;
        let tr = visit.tr();
        let (overdue, due_soon) = split(&tr, &found, now);
        let page = DuePage {
            chrome: Chrome::new(
                &visit,
                &Section::Requests.title_key(),
                Section::Requests.path(),
            ),
            who: signed_in_as(&tr, &officer),
            nav: nav(&tr, &officer, Some(Section::Requests)),
            overdue,
            due_soon,
        };
        Ok(html(StatusCode::OK, &page))
    }
    .await;
    respond(&visit, result)
}

pub struct StepRow {
    pub at: String,
    pub status: String,
    pub by: String,
    pub note: String,
}

/// A recipient told of the request, and whether it confirmed.
pub struct RecipientRow {
    pub name: String,
    pub state: String,
    /// `acknowledged`, `told` or `pending`: the row's mark.
    pub state_key: &'static str,
    pub told: String,
    pub acknowledged: String,
}

#[derive(Template)]
#[template(path = "portal/console_request.html")]
struct DetailPage {
    chrome: Chrome,
    who: String,
    nav: Vec<NavItem>,
    request: RequestRow,
    overdue: bool,
    extended: String,
    extension_reason: Option<String>,
    details: String,
    steps: Vec<StepRow>,
    recipients: Vec<RecipientRow>,
}

#[get("/console/requests/{id}")]
pub async fn detail(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
) -> HttpResponse {
    let visit = Visit::load(&state, &req).await;
    let result = async {
        let officer = officer_in(&visit, Section::Requests)?;
        let id = path.into_inner();
        if id.len() > 64 {
            return Err(Failure::NotFound);
        }
        let self_path = format!("/console/requests/{id}");
        let (found, steps, notices) = state
            .db
            .run(move |conn| {
                let Some((found, steps)) = requests::find(conn, &id)? else {
                    return Ok(None);
                };
                let notices = crate::delivery::notices::of_request(conn, &id)?;
                Ok::<_, crate::storage::StorageError>(Some((found, steps, notices)))
            })
            .await
            .map_err(Failure::internal)?
            .ok_or(Failure::NotFound)?;
        let tr = visit.tr();
        let now = state.clock.now();
        let steps = steps
            .into_iter()
            .map(|s| StepRow {
                at: tr.date_time(s.at),
                status: tr.t(&format!("request-status-{}", s.status.as_str())),
                by: match s.actor_id {
                    Some(id) => format!("{} ({id})", s.actor_role),
                    None => s.actor_role,
                },
                note: s.note.unwrap_or_default(),
            })
            .collect();
        let recipients = notices
            .into_iter()
            .map(|n| {
                let view = crate::delivery::notices::NoticeView::from(n);
                RecipientRow {
                    name: view.recipient,
                    state: tr.t(&format!("recipient-state-{}", view.state)),
                    state_key: view.state,
                    told: view.told_at.map(|t| tr.date_time(t)).unwrap_or_default(),
                    acknowledged: match (view.acknowledged_at, view.acknowledged_by) {
                        (Some(at), Some(by)) => {
                            format!(
                                "{} ({})",
                                tr.date_time(at),
                                tr.t(&format!("recipient-by-{by}"))
                            )
                        }
                        (Some(at), None) => tr.date_time(at),
                        _ => String::new(),
                    },
                }
            })
            .collect();
        let page = DetailPage {
            recipients,
            chrome: Chrome::new(&visit, "request-detail-title", &self_path),
            who: signed_in_as(&tr, &officer),
            nav: nav(&tr, &officer, Some(Section::Requests)),
            overdue: found.is_overdue(now),
            extended: tr.t(if found.extended {
                "request-extended-yes"
            } else {
                "request-extended-no"
            }),
            extension_reason: found.extension_reason.clone(),
            details: serde_json::to_string_pretty(&found.details).unwrap_or_default(),
            request: row(&tr, &found),
            steps,
        };
        Ok(html(StatusCode::OK, &page))
    }
    .await;
    respond(&visit, result)
}
