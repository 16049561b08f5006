//! `GET /v1/subjects/{id}/export`: everything held on a subject, in one machine-readable
//! bundle.

use actix_web::{get, web, HttpResponse};

use crate::audit::Actor;
use crate::auth::{Principal, Role};
use crate::consent::subject;
use crate::dsar::bundle::{self, AccessBundle};
use crate::http::responses::{AuthProblems, ParameterProblems, SubjectNotFound};
use crate::http::subject_path::{SubjectCaller, SubjectPath};
use crate::http::{ApiError, AppState};

const STAFF: [Role; 1] = [Role::Compliance];

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
    let (policies, pseudonyms) = (state.policies.clone(), state.pseudonyms.clone());
    let actor = Actor::from(principal);
    state
        .db
        .run(move |conn| {
            if hidden {
                return subject::find(conn, &id).map(|_| None);
            }
            let request_id = request_id.as_deref();
            bundle::assemble(conn, &policies, &pseudonyms, &actor, &id, request_id, now)
        })
        .await?
        .ok_or_else(ApiError::not_found)
}
