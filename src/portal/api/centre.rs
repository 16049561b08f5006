//! The preference centre: `GET /portal` shows every purpose with its state and why,
//! channel preferences, the customer's requests; its forms change consents and
//! preferences through the same domain functions as the API.

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::preferences::{default_order, preferences_form, PreferencesForm};
use super::{html, respond, see_other, Chrome, Failure, Live, Visit};
use crate::consent::ledger::ConsentStates;
use crate::consent::ledger::{ConsentChange, ConsentSource, ConsentStatus};
use crate::consent::preferences::{self, Preferences};
use crate::consent::subject::Subject;
use crate::consent::write::{self, ConsentError, ConsentWrite};
use crate::consent::SubjectId;
use crate::dsar::requests::{self as dsar_requests, DataSubjectRequest, ListFilter};
use crate::gate::rules::{decide, DecisionRequest, SubjectFacts};
use crate::http::AppState;
use crate::policy::Basis;
use crate::portal::i18n::Tr;
use crate::portal::session::Holder;
use crate::portal::wording::{self, Block, Control};

/// The customer a session belongs to; other sessions see no centre.
pub fn customer(live: &Live) -> Result<&SubjectId, Failure> {
    match &live.session.holder {
        Holder::Customer(id) => Ok(id),
        _ => Err(Failure::NotFound),
    }
}

/// One purpose as the page shows it.
pub struct PurposeItem {
    pub key: String,
    pub name: String,
    pub description: String,
    pub version: String,
    /// `on`, `off` or `ask`: the badge's look.
    pub state: &'static str,
    pub state_label: String,
    pub why: String,
    pub control: Option<Buttons>,
}

/// The two buttons of a purpose: the same form, the same single step each way.
pub struct Buttons {
    pub on_label: String,
    pub off_label: String,
    pub is_on: bool,
    pub is_off: bool,
}

pub struct RequestItem {
    pub id: String,
    pub kind: String,
    pub status: String,
    pub filed: String,
    pub due: String,
    pub open: bool,
    pub downloadable: bool,
}

#[derive(Template)]
#[template(path = "portal/centre.html")]
struct CentrePage {
    chrome: Chrome,
    csrf: String,
    flash: Option<String>,
    subject: String,
    notice_version: String,
    notice: Vec<Block>,
    necessary: Vec<PurposeItem>,
    optional: Vec<PurposeItem>,
    prefs: PreferencesForm,
    requests: Vec<RequestItem>,
}

/// What the centre loads in one visit to the database.
struct Loaded {
    subject: Subject,
    states: ConsentStates,
    preferences: Option<Preferences>,
    requests: Vec<DataSubjectRequest>,
}

async fn load(
    state: &AppState,
    req: &HttpRequest,
    live: &Live,
    id: &SubjectId,
) -> Result<Loaded, Failure> {
    let gpc = crate::consent::signals::request_gpc(req);
    let (policies, pseudonyms, now) = (
        state.policies.clone(),
        state.pseudonyms.clone(),
        state.clock.now(),
    );
    let actor = live.session.holder.actor();
    let evidence = crate::http::client_ip::request_evidence(state, req, None);
    let subject_id = id.clone();
    let id = id.clone();
    let loaded = state
        .db
        .run(move |conn| {
            let read = ConsentWrite::without_changes(&id, &actor, &pseudonyms, &evidence, gpc, now);
            let Some((subject, states)) = write::load_recording_gpc(conn, &policies, &read)? else {
                return Ok::<_, ConsentError>(None);
            };
            let preferences = preferences::find(conn, &id)?.map(|(p, _)| p);
            let filter = ListFilter {
                subject_id: Some(id.to_string()),
                ..ListFilter::default()
            };
            let requests = dsar_requests::list(conn, &filter, 100)?;
            Ok(Some(Loaded {
                subject,
                states,
                preferences,
                requests,
            }))
        })
        .await
        .map_err(Failure::internal)?;
    if gpc {
        state.gate.changed(&subject_id).await;
    }
    // An erased customer has no centre any more.
    loaded.ok_or(Failure::SessionEnded)
}

/// The purposes the customer's jurisdiction shows, each with its state and why.
fn purpose_items(state: &AppState, tr: &Tr, loaded: &Loaded, gpc: bool) -> Vec<PurposeItem> {
    let policies = &state.policies;
    let now = state.clock.now();
    let facts = SubjectFacts::new(policies, Some(&loaded.subject), false, &loaded.states, None);
    let locale = tr.lang.code();
    policies
        .purposes()
        .iter()
        .filter_map(|purpose| {
            let request = DecisionRequest {
                purpose,
                channel: None,
                data_categories: &[],
                gpc,
                now,
            };
            let decision = decide(policies, &facts, &request);
            if decision.basis == Basis::Prohibited {
                return None;
            }
            let control = Control::for_basis(decision.basis);
            let sentence = wording::why(&decision);
            let why = match sentence.date {
                Some(date) => tr.with(sentence.key, &[("date", tr.date(date))]),
                None => tr.t(sentence.key),
            };
            let (state, label) = if control == Control::None {
                ("on", "state-always-on")
            } else if wording::needs_answer(&decision) && decision.record.is_some() {
                ("ask", "state-needs-answer")
            } else if decision.allowed {
                ("on", "state-on")
            } else {
                ("off", "state-off")
            };
            let record_status = decision.record.as_ref().map(|r| r.status);
            Some(PurposeItem {
                key: purpose.key.clone(),
                name: purpose.name.get(locale).unwrap_or(&purpose.key).to_owned(),
                description: purpose
                    .description
                    .get(locale)
                    .unwrap_or_default()
                    .to_owned(),
                version: tr.with(
                    "purpose-version",
                    &[("version", tr.int(purpose.version.into()))],
                ),
                state,
                state_label: tr.t(label),
                why,
                control: control.labels().map(|(on, off)| Buttons {
                    on_label: tr.t(on),
                    off_label: tr.t(off),
                    is_on: decision.allowed,
                    is_off: !decision.allowed && record_status == Some(ConsentStatus::Denied),
                }),
            })
        })
        .collect()
}

fn request_items(tr: &Tr, requests: &[DataSubjectRequest]) -> Vec<RequestItem> {
    requests
        .iter()
        .map(|r| {
            use crate::dsar::rules::{RequestKind, RequestStatus};
            let open = !matches!(r.status, RequestStatus::Completed | RequestStatus::Rejected);
            RequestItem {
                id: r.id.clone(),
                kind: tr.t(&format!("request-kind-{}", r.kind.as_str())),
                status: tr.t(&format!("request-status-{}", r.status.as_str())),
                filed: tr.with("request-filed-on", &[("date", tr.date(r.received_at))]),
                due: tr.with("request-due", &[("date", tr.date(r.due_at))]),
                open,
                downloadable: matches!(r.kind, RequestKind::Access | RequestKind::Portability)
                    && r.status != RequestStatus::Rejected,
            }
        })
        .collect()
}

/// The centre page, with a note of what just happened or the preferences form's errors.
pub(super) async fn page(
    state: &AppState,
    req: &HttpRequest,
    visit: &Visit,
    flash: Option<String>,
    sent: Option<PreferencesForm>,
) -> Result<HttpResponse, Failure> {
    let live = visit.require()?;
    let id = customer(live)?;
    let loaded = load(state, req, live, id).await?;
    let tr = visit.tr();
    let gpc = crate::consent::signals::request_gpc(req);
    let (necessary, optional): (Vec<_>, Vec<_>) = purpose_items(state, &tr, &loaded, gpc)
        .into_iter()
        .partition(|p| p.control.is_none());
    let notice = state.policies.notices.for_locale(tr.lang.code());
    let status = if sent.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = CentrePage {
        chrome: Chrome::new(visit, "centre-title", "/portal"),
        csrf: live.csrf(),
        flash,
        subject: id.to_string(),
        notice_version: notice
            .map(|n| tr.with("notice-version", &[("version", n.digest[..12].to_owned())]))
            .unwrap_or_default(),
        notice: notice
            .map(|n| wording::notice_blocks(&n.text))
            .unwrap_or_default(),
        necessary,
        optional,
        prefs: PreferencesForm {
            default_order: default_order(&tr, &state.policies, &loaded.subject.region),
            ..sent.unwrap_or_else(|| {
                preferences_form(&tr, &state.policies.channels, loaded.preferences.as_ref())
            })
        },
        requests: request_items(&tr, &loaded.requests),
    };
    Ok(html(status, &page))
}

/// What a finished form leaves on the page (`?done=`).
fn flash(tr: &Tr, req: &HttpRequest) -> Option<String> {
    match super::query_value(req, "done").as_deref() {
        Some("saved") => Some(tr.t("saved")),
        Some("all-off") => Some(tr.t("saved-all-off")),
        Some("preferences") => Some(tr.t("saved-preferences")),
        Some("correction-invalid") => Some(tr.t("correction-invalid")),
        Some("request") => {
            let due = super::query_value(req, "due")
                .and_then(|d| chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok())?;
            let due = due.and_hms_opt(0, 0, 0)?.and_utc();
            Some(tr.with("request-filed", &[("date", tr.date(due))]))
        }
        _ => None,
    }
}

#[get("/portal")]
pub async fn centre(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let visit = Visit::load(&state, &req).await;
    let note = flash(&visit.tr(), &req);
    respond(&visit, page(&state, &req, &visit, note, None).await)
}

#[derive(Deserialize)]
struct ConsentForm {
    purpose: String,
    status: ConsentStatus,
}

/// Writes consents as the customer, from the portal, evidenced by this request.
async fn write_consents(
    state: &AppState,
    req: &HttpRequest,
    live: &Live,
    id: &SubjectId,
    changes: Vec<ConsentChange>,
) -> Result<(), Failure> {
    if changes.is_empty() {
        return Ok(());
    }
    let (policies, pseudonyms, now) = (
        state.policies.clone(),
        state.pseudonyms.clone(),
        state.clock.now(),
    );
    let actor = live.session.holder.actor();
    let evidence = crate::http::client_ip::request_evidence(state, req, None);
    let gpc = crate::consent::signals::request_gpc(req);
    let subject = id.clone();
    let written = state
        .db
        .write(id.as_str(), move |conn| {
            let request = ConsentWrite {
                subject: &subject,
                changes: &changes,
                actor: &actor,
                pseudonyms: &pseudonyms,
                evidence: &evidence,
                gpc,
                now,
            };
            write::write(conn, &policies, &request)
        })
        .await;
    state.gate.changed(id).await;
    match written {
        Ok(_) => Ok(()),
        Err(ConsentError::SubjectNotFound) => Err(Failure::SessionEnded),
        Err(ConsentError::UnknownPurpose { .. } | ConsentError::NoticeOnly { .. }) => {
            Err(Failure::NotFound)
        }
        Err(err) => Err(Failure::internal(err)),
    }
}

/// The digest of the notice the customer was shown, kept with their choice.
fn shown_notice(state: &AppState, visit: &Visit) -> Option<String> {
    state
        .policies
        .notices
        .for_locale(visit.lang.code())
        .map(|n| n.digest.clone())
}

#[post("/portal/consents")]
pub async fn set_consent(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let visit = Visit::load(&state, &req).await;
    let result = async {
        let (live, id, form): (_, _, ConsentForm) = visit.customer_form(&state, &req, &body)?;
        let change = ConsentChange {
            purpose: form.purpose,
            status: form.status,
            source: ConsentSource::Portal,
            notice_digest: shown_notice(&state, &visit),
        };
        write_consents(&state, &req, live, id, vec![change]).await?;
        Ok(see_other("/portal?done=saved"))
    }
    .await;
    respond(&visit, result)
}

#[derive(Deserialize)]
struct Empty {}

/// "Turn off everything optional": every purpose the customer can refuse that is on now,
/// refused in one write.
#[post("/portal/consents/all-off")]
pub async fn all_off(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let visit = Visit::load(&state, &req).await;
    let result = async {
        let (live, id, _): (_, _, Empty) = visit.customer_form(&state, &req, &body)?;
        let loaded = load(&state, &req, live, id).await?;
        let tr = visit.tr();
        let gpc = crate::consent::signals::request_gpc(&req);
        let notice = shown_notice(&state, &visit);
        let changes: Vec<ConsentChange> = purpose_items(&state, &tr, &loaded, gpc)
            .into_iter()
            .filter(|p| p.control.as_ref().is_some_and(|b| !b.is_off))
            .map(|p| ConsentChange {
                purpose: p.key,
                status: ConsentStatus::Denied,
                source: ConsentSource::Portal,
                notice_digest: notice.clone(),
            })
            .collect();
        write_consents(&state, &req, live, id, changes).await?;
        Ok(see_other("/portal?done=all-off"))
    }
    .await;
    respond(&visit, result)
}
