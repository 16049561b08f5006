//! `POST/GET /v1/dsar`, `GET/PATCH /v1/dsar/{id}`.

use actix_web::{delete, get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::audit::Actor;
use crate::auth::{Principal, Role};
use crate::consent::{subject, SubjectId};
use crate::dsar::filing;
use crate::dsar::requests::{self, DataSubjectRequest, ListFilter, Step};
use crate::dsar::rules::{RequestKind, RequestStatus};
use crate::dsar::workflow::{self, ChangeAsked, ChangePlan, ChangeRefused};
use crate::http::responses::{AuthProblems, BodyProblems, ParameterProblems, SubjectNotFound};
use crate::http::subject_path::subject_id_schema;
use crate::http::{ApiError, AppState, FieldError, Problem, ValidJson};

const FILERS: [Role; 2] = [Role::Service, Role::Compliance];
use crate::dsar::requests::HANDLERS;

#[derive(Debug, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"subject_id": "cust-8412", "kind": "access"}))]
pub struct NewRequest {
    #[schema(schema_with = subject_id_schema)]
    pub subject_id: String,
    pub kind: RequestKind,
    /// Anything the request says (e.g. what to rectify), as a JSON object.
    #[schema(value_type = Option<Object>)]
    pub details: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StepView {
    pub status: RequestStatus,
    pub actor_role: String,
    pub actor_id: Option<String>,
    pub note: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RequestView {
    pub id: String,
    pub subject_id: String,
    pub kind: RequestKind,
    pub status: RequestStatus,
    #[schema(value_type = Object)]
    pub details: Value,
    /// The jurisdiction whose deadline applies.
    pub jurisdiction: String,
    pub received_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    /// Open and past its due date.
    pub overdue: bool,
    pub extended: bool,
    pub extension_reason: Option<String>,
    pub updated_at: DateTime<Utc>,
    /// Who moved it to each status, and when (only on a single request).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<StepView>>,
}

fn view(request: DataSubjectRequest, steps: Option<Vec<Step>>, now: DateTime<Utc>) -> RequestView {
    RequestView {
        overdue: request.is_overdue(now),
        id: request.id,
        subject_id: request.subject_id,
        kind: request.kind,
        status: request.status,
        details: request.details,
        jurisdiction: request.jurisdiction,
        received_at: request.received_at,
        due_at: request.due_at,
        extended: request.extended,
        extension_reason: request.extension_reason,
        updated_at: request.updated_at,
        steps: steps.map(|steps| {
            steps
                .into_iter()
                .map(|s| StepView {
                    status: s.status,
                    actor_role: s.actor_role,
                    actor_id: s.actor_id,
                    note: s.note,
                    at: s.at,
                })
                .collect()
        }),
    }
}

/// Files a data subject request; its due date follows the subject's jurisdiction.
///
/// A service, a compliance officer, or the subject for themself (another subject's id
/// is 404). A subject Consentry does not know is answered under the default jurisdiction.
#[utoipa::path(
    tag = "dsar",
    request_body = NewRequest,
    responses((status = 201, description = "Received", body = RequestView), SubjectNotFound, BodyProblems, AuthProblems),
    security(("bearer" = [])),
)]
#[post("/v1/dsar")]
pub async fn file_request(
    state: web::Data<AppState>,
    principal: Principal,
    body: ValidJson<NewRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let subject_id =
        SubjectId::parse(&body.subject_id).map_err(|m| ApiError::invalid("subject_id", m))?;
    let access = principal.subject_access(&FILERS, true, subject_id.as_str());
    access.check_role()?;
    if body.details.as_ref().is_some_and(|d| !d.is_object()) {
        return Err(ApiError::Validation(vec![FieldError::new(
            "details",
            "type",
            "must be a JSON object",
        )]));
    }
    if body.kind == RequestKind::Rectification {
        let details = body.details.clone().unwrap_or(Value::Null);
        crate::dsar::rectification::changes(&state.policies, &details)
            .map_err(ApiError::Validation)?;
    }
    if access.is_hidden() {
        let lookup = subject_id.clone();
        state
            .db
            .run(move |conn| subject::find(conn, &lookup))
            .await?;
        return Err(ApiError::not_found());
    }
    let now = state.clock.now();
    let (pseudonyms, actor) = (state.pseudonyms.clone(), Actor::from(&principal));
    let policies = state.policies.clone();
    let asked = filing::Filing {
        subject_id: subject_id.clone(),
        kind: body.kind,
        details: body.details.unwrap_or(Value::Object(Default::default())),
    };
    let filed = state
        .db
        .run(move |conn| filing::file(conn, &policies, &pseudonyms, &actor, asked, now))
        .await?;
    if filed.consents_changed {
        state.gate.changed(&subject_id).await;
    }
    let request = filed.request;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/v1/dsar/{}", request.id)))
        .json(view(request, None, now)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub status: Option<RequestStatus>,
    /// `true`: only open requests past their due date.
    pub overdue: Option<bool>,
    pub subject_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RequestList {
    /// Soonest due first.
    pub requests: Vec<RequestView>,
}

/// Lists requests; a subject sees only their own.
#[utoipa::path(
    tag = "dsar",
    params(ListQuery),
    responses((status = 200, description = "Requests, soonest due first", body = RequestList), ParameterProblems, AuthProblems),
    security(("bearer" = [])),
)]
#[get("/v1/dsar")]
pub async fn list_requests(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let now = state.clock.now();
    let subject_id = match principal.role {
        Role::Subject => principal.sub.clone(),
        _ => {
            principal.require(&FILERS)?;
            query.subject_id
        }
    };
    let filter = ListFilter {
        status: query.status,
        subject_id,
        overdue_at: query.overdue.filter(|o| *o).map(|_| now),
        ..ListFilter::default()
    };
    let found = state
        .db
        .run(move |conn| requests::list(conn, &filter, 1_000))
        .await?;
    Ok(HttpResponse::Ok().json(RequestList {
        requests: found.into_iter().map(|r| view(r, None, now)).collect(),
    }))
}

async fn load(
    state: &AppState,
    principal: &Principal,
    id: String,
) -> Result<(DataSubjectRequest, Vec<Step>), ApiError> {
    let found = state.db.run(move |conn| requests::find(conn, &id)).await?;
    let Some((request, steps)) = found else {
        return Err(ApiError::not_found());
    };
    match principal.subject_access(&FILERS, true, &request.subject_id) {
        crate::auth::SubjectAccess::Granted => Ok((request, steps)),
        crate::auth::SubjectAccess::Hidden => Err(ApiError::not_found()),
        crate::auth::SubjectAccess::Denied(reason) => Err(ApiError::Forbidden(reason)),
    }
}

/// One request with its status history.
#[utoipa::path(
    tag = "dsar",
    params(("id" = String, Path, description = "The request id")),
    responses(
        (status = 200, description = "The request", body = RequestView),
        (status = 404, description = "No such request, or not yours", body = Problem, content_type = "application/problem+json"),
        AuthProblems,
    ),
    security(("bearer" = [])),
)]
#[get("/v1/dsar/{id}")]
pub async fn get_request(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (request, steps) = load(&state, &principal, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(view(request, Some(steps), state.clock.now())))
}

#[derive(Debug, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Extension {
    /// Why more time is needed (told to the subject).
    #[validate(length(min = 1, max = 2000))]
    #[schema(min_length = 1, max_length = 2000)]
    pub reason: String,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"status": "verified", "note": "identity checked by video call"}))]
pub struct RequestChange {
    pub status: Option<RequestStatus>,
    /// Extend the deadline once, as the jurisdiction allows.
    #[validate(nested)]
    pub extend: Option<Extension>,
    #[validate(length(max = 2000))]
    #[schema(max_length = 2000)]
    pub note: Option<String>,
}

/// Moves a request on (`received → verified → in_progress → completed`, or `rejected`)
/// and/or extends its deadline once. An illegal move is 409.
#[utoipa::path(
    tag = "dsar",
    params(("id" = String, Path, description = "The request id")),
    request_body = RequestChange,
    responses(
        (status = 200, description = "The request after the change", body = RequestView),
        (status = 404, description = "No such request", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "An illegal status change or a second extension", body = Problem, content_type = "application/problem+json"),
        BodyProblems, AuthProblems,
    ),
    security(("bearer" = [])),
)]
#[patch("/v1/dsar/{id}")]
pub async fn change_request(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: ValidJson<RequestChange>,
) -> Result<HttpResponse, ApiError> {
    principal.require(&HANDLERS)?;
    let change = body.into_inner();
    let asked = ChangeAsked {
        status: change.status,
        extend: change.extend.as_ref().map(|e| e.reason.clone()),
    };
    if asked.status.is_none() && asked.extend.is_none() {
        return Err(ApiError::invalid("body", ChangeRefused::Empty.to_string()));
    }
    let (request, _) = load(&state, &principal, path.into_inner()).await?;
    let now = state.clock.now();
    let jurisdiction = state
        .policies
        .jurisdictions
        .get(&request.jurisdiction)
        .unwrap_or_else(|| state.policies.jurisdictions.default_jurisdiction());
    let ChangePlan {
        request,
        previous,
        action,
        erases: completes_erasure,
        rectifies,
        lifts_restriction,
    } = workflow::plan(request, &asked, jurisdiction, now)
        .map_err(|refused| ApiError::conflict(refused.to_string()))?;
    let (pseudonyms, actor, saved, note) = (
        state.pseudonyms.clone(),
        Actor::from(&principal),
        request.clone(),
        change.note.clone(),
    );
    let subject_id = SubjectId::from_stored(request.subject_id.clone());
    let lifted_id = subject_id.clone();
    // A rectification is applied as it is completed, from what the request asked.
    let rectification = rectifies
        .then(|| crate::dsar::rectification::changes(&state.policies, &request.details))
        .transpose()
        .map_err(ApiError::Validation)?
        .flatten();
    if completes_erasure {
        // Erased before the status is saved: if saving fails, a retry finds the subject
        // gone and completes the request.
        match erase(&state, &principal, &subject_id).await {
            Ok(()) | Err(ApiError::NotFound(_)) => {}
            Err(other) => return Err(other),
        }
    }
    // Recipients of a rectification: those receiving the changed attributes' categories
    // (all of them when an attribute is removed, its category unknown here).
    let rectified_categories: Option<Vec<String>> = rectification.as_ref().and_then(|changes| {
        changes
            .values()
            .map(|change| match change {
                crate::profiles::attributes::AttributeChange::Set { category, .. } => {
                    Some(category.clone())
                }
                _ => None,
            })
            .collect()
    });
    let policies = state.policies.clone();
    // The rectification and the status it completes are one transaction, and the status
    // moves only from the one this change was checked against; recipients' notices open
    // in it too.
    state
        .db
        .run(move |conn| {
            crate::storage::write_transaction(conn, |conn| {
                if let Some(changes) = &rectification {
                    if !crate::dsar::rectification::apply(
                        conn,
                        &pseudonyms,
                        &actor,
                        &lifted_id,
                        &saved.id,
                        changes,
                        now,
                    )? {
                        return Err(ApiError::conflict(
                            "The subject does not exist (any more): there is nothing to rectify.",
                        ));
                    }
                }
                if !requests::save_change(
                    conn,
                    &pseudonyms,
                    &actor,
                    &saved,
                    previous,
                    action,
                    note.as_deref(),
                )? {
                    return Err(ApiError::conflict(
                        "The request was changed meanwhile; read it again.",
                    ));
                }
                let categories: Option<Vec<&str>> = rectified_categories
                    .as_ref()
                    .map(|c| c.iter().map(String::as_str).collect());
                crate::delivery::notices::open(
                    conn,
                    &policies,
                    &saved,
                    categories.as_deref(),
                    now,
                )?;
                Ok(())
            })?;
            if lifts_restriction {
                crate::dsar::effects::restrict(conn, &pseudonyms, &actor, &lifted_id, None, now)?;
            }
            Ok::<_, ApiError>(())
        })
        .await?;
    if lifts_restriction {
        state.gate.changed(&subject_id).await;
    }
    let id = request.id.clone();
    let (request, steps) = state
        .db
        .run(move |conn| requests::find(conn, &id))
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a saved request vanished")))?;
    Ok(HttpResponse::Ok().json(view(request, Some(steps), now)))
}

/// Erases a subject: profile and preferences removed, consent proof kept under a keyed
/// pseudonym without evidence, audit payloads emptied (the chain still verifies), and a
/// tombstone so that the gate denies all but strictly necessary processing.
#[utoipa::path(
    tag = "dsar",
    params(crate::http::subject_path::SubjectPath),
    responses(
        (status = 204, description = "Erased"),
        (status = 404, description = "No such subject", body = Problem, content_type = "application/problem+json"),
        ParameterProblems, AuthProblems,
    ),
    security(("bearer" = [])),
)]
#[delete("/v1/subjects/{id}")]
pub async fn erase_subject(
    state: web::Data<AppState>,
    caller: crate::http::subject_path::SubjectCaller,
) -> Result<HttpResponse, ApiError> {
    caller.access(&HANDLERS, false)?;
    erase(&state, &caller.principal, &caller.id).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn erase(state: &AppState, principal: &Principal, id: &SubjectId) -> Result<(), ApiError> {
    let (pseudonyms, actor, target, now) = (
        state.pseudonyms.clone(),
        Actor::from(principal),
        id.clone(),
        state.clock.now(),
    );
    let erased = state
        .db
        .run(move |conn| crate::dsar::erasure::erase(conn, &pseudonyms, &actor, &target, now))
        .await?;
    state.gate.changed(id).await;
    if erased {
        Ok(())
    } else {
        Err(ApiError::not_found())
    }
}

/// The answer to an access or portability request: the subject's whole bundle (as
/// `GET /v1/subjects/{id}/export` gives it), once the requester is verified. For
/// compliance, or the subject for their own request; each fetch is audited with the
/// request's id.
#[utoipa::path(
    tag = "dsar",
    params(("id" = String, Path, description = "The request id")),
    responses(
        (status = 200, description = "The bundle", body = crate::dsar::bundle::AccessBundle,
         headers(("Content-Disposition" = String, description = "attachment; filename=…"))),
        (status = 404, description = "No such request, or its subject is gone", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not an access or portability request, or not verified (or rejected)", body = Problem, content_type = "application/problem+json"),
        AuthProblems,
    ),
    security(("bearer" = [])),
)]
#[get("/v1/dsar/{id}/bundle")]
pub async fn request_bundle(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    if principal.role != Role::Subject {
        principal.require(&HANDLERS)?;
    }
    let (request, _) = load(&state, &principal, path.into_inner()).await?;
    if !matches!(request.kind, RequestKind::Access | RequestKind::Portability) {
        return Err(ApiError::conflict(
            "Only access and portability requests are answered with a bundle.",
        ));
    }
    if !matches!(
        request.status,
        RequestStatus::Verified | RequestStatus::InProgress | RequestStatus::Completed
    ) {
        return Err(ApiError::conflict(format!(
            "The request is `{}`: a bundle is given once the requester is verified.",
            request.status.as_str()
        )));
    }
    let subject_id = SubjectId::from_stored(request.subject_id.clone());
    let bundle =
        super::access::assemble(&state, &principal, subject_id, false, Some(request.id)).await?;
    Ok(HttpResponse::Ok()
        .insert_header((
            "Content-Disposition",
            "attachment; filename=\"subject-export.json\"",
        ))
        .json(bundle))
}
