//! `POST /v1/subjects/{id}/merge`: two subjects found to be one person become one.

use actix_web::{post, web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;
use validator::Validate;

use crate::audit::Actor;
use crate::auth::Role;
use crate::consent::SubjectId;
use crate::dsar::merge::{self, MergeSummary, Merged};
use crate::http::responses::{AuthProblems, BodyProblems, SubjectNotFound};
use crate::http::subject_path::{subject_id_schema, SubjectCaller, SubjectPath};
use crate::http::{ApiError, AppState, ValidJson};

const MERGERS: [Role; 1] = [Role::Admin];

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"from": "cust-9931"}))]
pub struct MergeInput {
    /// The subject merged into the one in the path; it ceases to exist, and requests
    /// naming it are answered for the other.
    #[schema(schema_with = subject_id_schema)]
    pub from: String,
}

/// Merges another subject into this one (admin), in one transaction: identifiers, the
/// consent ledger (every record keeps its evidence), preferences, the profile, events,
/// messages sent, requests and survey history move here. Each purpose both had chosen on
/// keeps the stricter current choice: a refusal or withdrawal in either wins over a
/// grant given before it or no longer current. Audited on both; decisions, reach and
/// events naming the old id are answered for this subject from then on.
#[utoipa::path(
    tag = "subjects",
    params(SubjectPath),
    request_body = MergeInput,
    responses(
        (status = 200, description = "Merged", body = MergeSummary),
        SubjectNotFound, BodyProblems, AuthProblems),
    security(("bearer" = [])),
)]
#[post("/v1/subjects/{id}/merge")]
pub async fn merge_subject(
    state: web::Data<AppState>,
    caller: SubjectCaller,
    body: ValidJson<MergeInput>,
) -> Result<HttpResponse, ApiError> {
    caller.access(&MERGERS, false)?;
    let SubjectCaller { id, principal } = caller;
    let from =
        SubjectId::parse(&body.into_inner().from).map_err(|m| ApiError::invalid("from", m))?;
    if from == id {
        return Err(ApiError::invalid(
            "from",
            "a subject cannot be merged into itself",
        ));
    }
    let (policies, pseudonyms, actor, now) = (
        state.policies.clone(),
        state.pseudonyms.clone(),
        Actor::from(&principal),
        state.clock.now(),
    );
    let (into, source) = (id.clone(), from.clone());
    let merged = state
        .db
        .run(move |conn| merge::merge(conn, &policies, &pseudonyms, &actor, &into, &source, now))
        .await?;
    match merged {
        Merged::NoSuchSubject => Err(ApiError::not_found()),
        Merged::NoSuchSource => Err(ApiError::Validation(vec![crate::http::FieldError::new(
            "from",
            "not_found",
            format!("no subject `{from}`"),
        )])),
        Merged::Done(summary) => {
            state.gate.changed(&id).await;
            state.gate.changed(&from).await;
            Ok(HttpResponse::Ok().json(summary))
        }
    }
}
