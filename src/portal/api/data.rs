//! The customer's own data: their history of choices, a copy of their data (an access
//! request, answered by the bundle as soon as they ask from their session), a
//! correction, and deletion (a confirmation, then an erasure request).

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;
use serde_json::{json, Value};

use super::centre::customer;
use super::{html, message_page, respond, see_other, Chrome, Failure, Live, Visit};
use crate::consent::ledger::{self, ConsentSource, ConsentStatus};
use crate::consent::SubjectId;
use crate::dsar::filing::{self, Filed, Filing};
use crate::dsar::rules::RequestKind;
use crate::http::AppState;
use crate::portal::session;

/// Rows of history shown: the latest first.
const HISTORY_ROWS: i64 = 200;

pub struct HistoryRow {
    pub when: String,
    pub purpose: String,
    pub choice: String,
    pub source: String,
}

#[derive(Template)]
#[template(path = "portal/history.html")]
struct HistoryPage {
    chrome: Chrome,
    rows: Vec<HistoryRow>,
}

fn source_key(source: ConsentSource) -> &'static str {
    match source {
        ConsentSource::Portal => "source-portal",
        ConsentSource::Api => "source-api",
        ConsentSource::Import => "source-import",
        ConsentSource::Survey => "source-survey",
        ConsentSource::Gpc => "source-gpc",
        ConsentSource::Usp => "source-usp",
        ConsentSource::Gpp => "source-gpp",
    }
}

#[get("/portal/history")]
pub async fn history(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let visit = Visit::load(&state, &req).await;
    let result = async {
        let live = visit.require()?;
        let id = customer(live)?.clone();
        let records = state
            .db
            .run(move |conn| ledger::history(conn, &id, None, None, HISTORY_ROWS))
            .await
            .map_err(Failure::internal)?;
        let tr = visit.tr();
        let locale = tr.lang.code();
        let rows = records
            .into_iter()
            .map(|r| HistoryRow {
                when: tr.date_time(r.recorded_at),
                purpose: state
                    .policies
                    .purpose(&r.purpose)
                    .and_then(|p| p.name.get(locale))
                    .unwrap_or(&r.purpose)
                    .to_owned(),
                choice: tr.t(match r.status {
                    ConsentStatus::Granted => "history-granted",
                    ConsentStatus::Denied => "history-denied",
                }),
                source: tr.t(source_key(r.source)),
            })
            .collect();
        let page = HistoryPage {
            chrome: Chrome::new(&visit, "history-heading", "/portal/history"),
            rows,
        };
        Ok(html(StatusCode::OK, &page))
    }
    .await;
    respond(&visit, result)
}

/// Files a request as the customer (actor `subject`, from the portal).
async fn file(
    state: &AppState,
    live: &Live,
    id: &SubjectId,
    kind: RequestKind,
    details: Value,
) -> Result<Filed, Failure> {
    let (policies, pseudonyms, now) = (
        state.policies.clone(),
        state.pseudonyms.clone(),
        state.clock.now(),
    );
    let actor = live.session.holder.actor();
    let asked = Filing {
        subject_id: id.clone(),
        kind,
        details,
    };
    let restrict = kind == RequestKind::Erasure;
    let filed = state
        .db
        .run(move |conn| {
            let mut filed = filing::file(conn, &policies, &pseudonyms, &actor, asked, now)?;
            // A customer who asks to be deleted has asked us to stop: processing is
            // restricted until the erasure is carried out.
            if restrict {
                let subject = SubjectId::from_stored(filed.request.subject_id.clone());
                filed.consents_changed |= crate::dsar::effects::restrict(
                    conn,
                    &pseudonyms,
                    &actor,
                    &subject,
                    Some(now),
                    now,
                )?;
            }
            Ok::<_, crate::consent::write::ConsentError>(filed)
        })
        .await
        .map_err(Failure::internal)?;
    if filed.consents_changed {
        state.gate.changed(id).await;
    }
    Ok(filed)
}

fn filed_page(filed: &Filed) -> HttpResponse {
    see_other(&format!(
        "/portal?done=request&due={}#requests",
        filed.request.due_at.format("%Y-%m-%d")
    ))
}

#[derive(Deserialize)]
struct Empty {}

#[post("/portal/requests/access")]
pub async fn request_access(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let visit = Visit::load(&state, &req).await;
    let result = async {
        let (live, id, _): (_, _, Empty) = visit.customer_form(&state, &req, &body)?;
        let filed = file(
            &state,
            live,
            id,
            RequestKind::Access,
            json!({"via": "portal"}),
        )
        .await?;
        Ok(filed_page(&filed))
    }
    .await;
    respond(&visit, result)
}

/// The bundle answering one of the customer's own access requests; each download is
/// audited with the request's id.
#[get("/portal/requests/{id}/bundle")]
pub async fn download(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
) -> HttpResponse {
    let visit = Visit::load(&state, &req).await;
    let result = async {
        let live = visit.require()?;
        let id = customer(live)?.clone();
        let request_id = path.into_inner();
        let (policies, pseudonyms, now) = (
            state.policies.clone(),
            state.pseudonyms.clone(),
            state.clock.now(),
        );
        let actor = live.session.holder.actor();
        let bundle = state
            .db
            .run(move |conn| {
                let Some((request, _)) = crate::dsar::requests::find(conn, &request_id)? else {
                    return Ok(None);
                };
                // Only the customer's own access or portability request opens a bundle.
                let theirs = request.subject_id == id.as_str()
                    && matches!(request.kind, RequestKind::Access | RequestKind::Portability);
                if !theirs {
                    return Ok(None);
                }
                crate::dsar::bundle::assemble(
                    conn,
                    &policies,
                    &pseudonyms,
                    &actor,
                    &id,
                    Some(&request_id),
                    now,
                )
            })
            .await
            .map_err(Failure::internal)?
            .ok_or(Failure::NotFound)?;
        let body = serde_json::to_vec_pretty(&bundle).map_err(Failure::internal)?;
        Ok(HttpResponse::Ok()
            .content_type("application/json")
            .insert_header((
                "Content-Disposition",
                "attachment; filename=\"my-data.json\"",
            ))
            .body(body))
    }
    .await;
    respond(&visit, result)
}

#[derive(Deserialize)]
struct CorrectionForm {
    attribute: String,
    value: String,
}

/// A rectification request naming what is wrong and what it should be, in the
/// customer's words: a compliance officer checks it before anything changes.
#[post("/portal/requests/correction")]
pub async fn request_correction(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let visit = Visit::load(&state, &req).await;
    let result = async {
        let (live, id, form): (_, _, CorrectionForm) = visit.customer_form(&state, &req, &body)?;
        let (attribute, value) = (form.attribute.trim(), form.value.trim());
        if attribute.is_empty() || value.is_empty() || attribute.len() > 200 || value.len() > 2000 {
            return Ok(see_other("/portal?done=correction-invalid#correct"));
        }
        let details =
            json!({"via": "portal", "customer_says": {"attribute": attribute, "should_be": value}});
        let filed = file(&state, live, id, RequestKind::Rectification, details).await?;
        Ok(filed_page(&filed))
    }
    .await;
    respond(&visit, result)
}

#[derive(Template)]
#[template(path = "portal/delete.html")]
struct DeletePage {
    chrome: Chrome,
    csrf: String,
}

#[get("/portal/delete")]
pub async fn confirm_delete(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let visit = Visit::load(&state, &req).await;
    let result = (|| {
        let live = visit.require()?;
        customer(live)?;
        let page = DeletePage {
            chrome: Chrome::new(&visit, "delete-confirm-title", "/portal/delete"),
            csrf: live.csrf(),
        };
        Ok(html(StatusCode::OK, &page))
    })();
    respond(&visit, result)
}

/// Files the erasure request, restricts processing at once, ends every session of the
/// customer and says what happens next and when.
#[post("/portal/delete")]
pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let visit = Visit::load(&state, &req).await;
    let result = async {
        let (live, id, _): (_, _, Empty) = visit.customer_form(&state, &req, &body)?;
        let filed = file(
            &state,
            live,
            id,
            RequestKind::Erasure,
            json!({"via": "portal"}),
        )
        .await?;
        let (hash, now) = (live.session.id_hash.clone(), state.clock.now());
        state
            .db
            .run(move |conn| session::end(conn, &hash, now))
            .await
            .map_err(Failure::internal)?;
        let tr = visit.tr();
        let text = tr.with(
            "deleted-text",
            &[
                ("date", tr.date(filed.request.received_at)),
                ("due", tr.date(filed.request.due_at)),
            ],
        );
        let mut response = message_page(
            &visit,
            "deleted-title",
            text,
            live.session.return_url.clone(),
        );
        let _ = response.add_cookie(&super::session_cookie(&state, String::new(), 0));
        Ok(response)
    }
    .await;
    respond(&visit, result)
}
