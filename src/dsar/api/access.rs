//! `GET /v1/subjects/{id}/export`: everything held on a subject, in one machine-readable
//! bundle.

use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::audit::{self, Actor, AuditEntry};
use crate::auth::{Principal, Role};
use crate::consent::api::consents::{consent_views, ConsentRecordView, ConsentView};
use crate::consent::api::subjects::SubjectView;
use crate::consent::preferences::{self, Preferences};
use crate::consent::{ledger, subject};
use crate::http::responses::{AuthProblems, ParameterProblems, SubjectNotFound};
use crate::http::subject_path::{SubjectCaller, SubjectPath};
use crate::http::{ApiError, AppState};
use crate::profiles::api::{view as profile_view, ProfileView};
use crate::profiles::attributes;
use crate::storage::StorageError;

const STAFF: [Role; 1] = [Role::Compliance];
/// A bound on what one bundle carries from the ledger and the audit log.
const MAX_ROWS: i64 = 100_000;

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventView {
    pub seq: i64,
    pub occurred_at: DateTime<Utc>,
    pub actor_role: String,
    pub action: String,
    /// The event's payload; null once erasure blanked it.
    #[schema(value_type = Value)]
    pub payload: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccessBundle {
    /// `consentry.access.v1`
    pub format: &'static str,
    pub generated_at: DateTime<Utc>,
    pub subject: SubjectView,
    /// The effective state of every purpose, as the gate sees it.
    pub consents: Vec<ConsentView>,
    /// Every consent record, newest first.
    pub consent_ledger: Vec<ConsentRecordView>,
    pub preferences: Preferences,
    pub profile: ProfileView,
    /// The audit events about the subject, oldest first.
    pub audit_events: Vec<AuditEventView>,
    /// Their data subject requests, soonest due first.
    pub requests: Vec<crate::dsar::api::requests::RequestView>,
    /// Customer events and everything about surveys: displays, answers, follow-ups.
    #[serde(flatten)]
    pub surveys: crate::surveys::held::HeldOnSubject,
}

/// One JSON bundle of everything held on a subject (access and portability).
///
/// The subject may ask for their own; another subject's id is 404, as if absent.
/// The export is recorded in the audit log.
#[utoipa::path(
    tag = "subjects",
    params(SubjectPath),
    responses(
        (status = 200, description = "The bundle", body = AccessBundle,
         headers(("Content-Disposition" = String, description = "attachment; filename=…"))),
        SubjectNotFound, ParameterProblems, AuthProblems,
    ),
    security(("bearer" = [])),
)]
#[get("/v1/subjects/{id}/export")]
pub async fn export_subject(
    state: web::Data<AppState>,
    caller: SubjectCaller,
) -> Result<HttpResponse, ApiError> {
    let access = caller.access(&STAFF, true)?;
    let SubjectCaller { id, principal } = caller;
    let bundle = assemble(&state, &principal, id, access.is_hidden(), None).await?;
    Ok(HttpResponse::Ok()
        .insert_header((
            "Content-Disposition",
            "attachment; filename=\"subject-export.json\"",
        ))
        .json(bundle))
}

/// Everything held on a subject, as one bundle; recorded in the audit log (with the
/// request it answers, if any). `hidden`: the caller may not see it, answered as absent
/// after the same lookup.
pub async fn assemble(
    state: &AppState,
    principal: &Principal,
    id: crate::consent::SubjectId,
    hidden: bool,
    request_id: Option<String>,
) -> Result<AccessBundle, ApiError> {
    let now = state.clock.now();
    let (pseudonyms, actor) = (state.pseudonyms.clone(), Actor::from(principal));
    let loaded = state
        .db
        .run(move |conn| {
            let Some(found) = subject::find(conn, &id)? else {
                return Ok::<_, StorageError>(None);
            };
            if hidden {
                return Ok(None);
            }
            let states = ledger::states(conn, &id)?;
            let ledger_rows = ledger::history(conn, &id, None, None, MAX_ROWS)?;
            let prefs = preferences::find(conn, &id)?.map(|(p, _)| p).unwrap_or_default();
            let profile = attributes::load(conn, &id)?;
            let events = audit::about_subject(conn, &pseudonyms.of(id.as_str()), MAX_ROWS)?;
            let filter = crate::dsar::requests::ListFilter { subject_id: Some(id.to_string()), ..Default::default() };
            let requests = crate::dsar::requests::list(conn, &filter, MAX_ROWS)?;
            let surveys = crate::surveys::held::load(conn, id.as_str())?;
            audit::record_alone(
                conn,
                &pseudonyms,
                AuditEntry {
                    actor: &actor,
                    action: "subject.exported",
                    subject_id: Some(id.as_str()),
                    payload: json!({"consent_records": ledger_rows.len(), "audit_events": events.len(), "request_id": request_id}),
                    at: now,
                },
            )?;
            Ok(Some((found, states, ledger_rows, prefs, profile, events, requests, surveys)))
        })
        .await?;
    let Some((found, states, ledger_rows, prefs, profile, events, requests, surveys)) = loaded
    else {
        return Err(ApiError::not_found());
    };
    Ok(AccessBundle {
        format: "consentry.access.v1",
        generated_at: now,
        consents: consent_views(&state.policies, &found, &states, None, false, now),
        consent_ledger: ledger_rows
            .into_iter()
            .map(ConsentRecordView::from)
            .collect(),
        preferences: prefs,
        profile: profile_view(&found.id, None, profile),
        audit_events: events
            .into_iter()
            .map(|e| AuditEventView {
                seq: e.seq,
                occurred_at: e.occurred_at,
                actor_role: e.actor_role,
                action: e.action,
                payload: serde_json::from_str(&e.payload).unwrap_or(Value::Null),
            })
            .collect(),
        requests: requests
            .into_iter()
            .map(|r| crate::dsar::api::requests::request_view(r, now))
            .collect(),
        subject: SubjectView::new(&found, state),
        surveys,
    })
}
