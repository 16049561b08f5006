//! `POST /v1/surveys/{id}/responses`, `GET /v1/surveys/{id}/followups`,
//! `PATCH /v1/surveys/{id}/followups/{followup_id}`.

use actix_web::{get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::offers::TAKERS;
use crate::audit::Actor;
use crate::auth::{Principal, Role};
use crate::consent::SubjectId;
use crate::http::responses::{AuthProblems, BodyProblems, ParameterProblems};
use crate::http::subject_path::subject_id_schema;
use crate::http::{ApiError, AppState, Problem, ValidJson};
use crate::surveys::followups;
use crate::surveys::respond::{self, Submission};
use crate::surveys::store::{self, Followup, ResponseRow};
use crate::surveys::SurveyError;

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"subject_id": "cust-8412", "display_id": "3f0c…", "answers": {"score": 4}, "finished": false}))]
pub struct NewAnswers {
    #[schema(schema_with = subject_id_schema)]
    pub subject_id: String,
    /// The display the answers come from, if any.
    pub display_id: Option<String>,
    /// By question id; each value by its question's type.
    #[schema(value_type = Object)]
    pub answers: Map<String, Value>,
    /// `false`: more answers will follow; `true`: the last submission (required
    /// questions are then checked).
    pub finished: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResponseView {
    pub response_id: String,
    pub survey_id: String,
    /// The version of the questions answered.
    pub version: i32,
    pub subject_id: String,
    pub display_id: Option<String>,
    #[schema(value_type = Object)]
    pub answers: Value,
    pub finished: bool,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Profile attributes this submission wrote or removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub written_back: Option<Vec<String>>,
    /// The follow-up a detractor score opened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub followup_id: Option<String>,
}

pub fn response_view(row: ResponseRow) -> ResponseView {
    ResponseView {
        answers: Value::Object(row.answers()),
        response_id: row.id,
        survey_id: row.survey_id,
        version: row.version,
        subject_id: row.subject_id,
        display_id: row.display_id,
        finished: row.finished,
        started_at: row.started_at.and_utc(),
        updated_at: row.updated_at.and_utc(),
        finished_at: row.finished_at.map(|t| t.and_utc()),
        written_back: None,
        followup_id: None,
    }
}

/// Answers a survey: partial submissions, then the final one, update one response.
///
/// Each answer is checked by its question's type (422 naming `answers.<question>`); an
/// answer to a question that show-if hides is refused; a finished response needs every
/// shown required question. In the same transaction, mapped answers are written to the
/// profile (and an NPS score as `nps.score`, `nps.category`, `nps.answered_at`) with
/// their data categories, and a detractor score opens a follow-up and a
/// `survey.detractor` event. A closed or draft survey is 409, a finished response 409;
/// a subject who has not allowed the survey's purpose is 403.
#[utoipa::path(
    tag = "surveys",
    params(("id" = String, Path, description = "The survey's id or key")),
    request_body = NewAnswers,
    responses(
        (status = 200, description = "The response so far", body = ResponseView),
        (status = 404, description = "No such survey or subject", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The survey takes no answers, or the response is finished", body = Problem, content_type = "application/problem+json"),
        BodyProblems, AuthProblems,
    ),
    security(("bearer" = [])),
)]
#[post("/v1/surveys/{id}/responses")]
pub async fn submit_answers(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: ValidJson<NewAnswers>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let subject =
        SubjectId::parse(&body.subject_id).map_err(|m| ApiError::invalid("subject_id", m))?;
    let access = principal.subject_access(&TAKERS, true, subject.as_str());
    access.check_role()?;
    // A customer answers only what they were shown (sampling and targeting hold).
    if principal.role == Role::Subject && !access.is_hidden() && body.display_id.is_none() {
        return Err(ApiError::Validation(vec![crate::http::FieldError::new(
            "display_id",
            "required",
            "the display the answers come from (from the next-survey call)",
        )]));
    }
    let (policies, pseudonyms, actor, now) = (
        state.policies.clone(),
        state.pseudonyms.clone(),
        Actor::from(&principal),
        state.clock.now(),
    );
    let events_per_subject = state.policies.retention.events_per_subject;
    let key = subject.to_string();
    let submission = Submission {
        survey: path.into_inner(),
        subject,
        // Another subject's id: the same lookup as for a real one, then the same 404.
        hidden: access.is_hidden(),
        display_id: body.display_id,
        answers: body.answers,
        finished: body.finished,
    };
    let outcome = state
        .db
        .write(&key, move |conn| {
            let ctx = respond::Context {
                policies: &policies,
                pseudonyms: &pseudonyms,
                actor: &actor,
                events_per_subject,
                now,
            };
            let outcome = respond::submit(conn, &ctx, submission)?;
            crate::journeys::update_after(
                conn,
                &policies,
                &pseudonyms,
                &outcome.response.subject_id,
                now,
            )?;
            Ok::<_, SurveyError>(outcome)
        })
        .await?;
    state.surveys.answered(
        &outcome.survey_key,
        outcome.response.finished,
        outcome.followup_opened,
    );
    let mut view = response_view(outcome.response);
    view.written_back = Some(outcome.written_back);
    view.followup_id = outcome.followup.map(|f| f.id);
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FollowupStatus {
    Open,
    Closed,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FollowupView {
    pub id: String,
    pub survey_id: String,
    pub response_id: String,
    pub subject_id: String,
    /// The NPS score that opened it.
    pub score: i32,
    pub status: FollowupStatus,
    pub opened_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub closed_by: Option<String>,
    pub resolution: Option<String>,
}

pub fn followup_view(f: Followup) -> FollowupView {
    FollowupView {
        status: if f.status == "open" {
            FollowupStatus::Open
        } else {
            FollowupStatus::Closed
        },
        id: f.id,
        survey_id: f.survey_id,
        response_id: f.response_id,
        subject_id: f.subject_id,
        score: f.score,
        opened_at: f.opened_at.and_utc(),
        closed_at: f.closed_at.map(|t| t.and_utc()),
        closed_by: f.closed_by,
        resolution: f.resolution,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FollowupQuery {
    pub status: Option<FollowupStatus>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FollowupList {
    /// Oldest first (at most 1000).
    pub followups: Vec<FollowupView>,
}

/// Follow-ups opened by detractor answers, oldest first.
#[utoipa::path(
    tag = "surveys",
    params(("id" = String, Path, description = "The survey's id or key"), FollowupQuery),
    responses(
        (status = 200, description = "Follow-ups", body = FollowupList),
        (status = 404, description = "No such survey", body = Problem, content_type = "application/problem+json"),
        ParameterProblems, AuthProblems,
    ),
    security(("bearer" = [])),
)]
#[get("/v1/surveys/{id}/followups")]
pub async fn list_followups(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    query: web::Query<FollowupQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(&followups::READERS)?;
    let (id, status) = (path.into_inner(), query.status);
    let found = state
        .db
        .run(move |conn| {
            let survey = store::find(conn, &id)?.ok_or(SurveyError::NotFound("survey"))?;
            let status = status.map(|s| match s {
                FollowupStatus::Open => "open",
                FollowupStatus::Closed => "closed",
            });
            Ok::<_, SurveyError>(store::list_followups(conn, &survey.id, status, 1000)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(FollowupList {
        followups: found.into_iter().map(followup_view).collect(),
    }))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"status": "closed", "resolution": "Called the customer; refund issued."}))]
pub struct FollowupChange {
    /// Only `closed`.
    #[schema(schema_with = closed_only)]
    pub status: FollowupStatus,
    #[validate(length(min = 1, max = 2000))]
    #[schema(min_length = 1, max_length = 2000)]
    pub resolution: Option<String>,
}

/// A follow-up is only ever closed through the API; `open` is where it starts.
fn closed_only() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(["closed"]))
        .description(Some("Only `closed`."))
        .build()
}

/// Closes a follow-up, with what was done. Closing a closed one is 409.
#[utoipa::path(
    tag = "surveys",
    params(("id" = String, Path, description = "The survey's id or key"),
           ("followup_id" = String, Path, description = "The follow-up id")),
    request_body = FollowupChange,
    responses(
        (status = 200, description = "The follow-up", body = FollowupView),
        (status = 404, description = "No such follow-up of this survey", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already closed", body = Problem, content_type = "application/problem+json"),
        BodyProblems, AuthProblems,
    ),
    security(("bearer" = [])),
)]
#[patch("/v1/surveys/{id}/followups/{followup_id}")]
pub async fn change_followup(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(String, String)>,
    body: ValidJson<FollowupChange>,
) -> Result<HttpResponse, ApiError> {
    principal.require(&followups::CLOSERS)?;
    let body = body.into_inner();
    if body.status != FollowupStatus::Closed {
        return Err(ApiError::invalid(
            "status",
            "a follow-up can only be `closed`",
        ));
    }
    let (survey_key, followup_id) = path.into_inner();
    let (pseudonyms, now) = (state.pseudonyms.clone(), state.clock.now());
    let closed = state
        .db
        .run(move |conn| {
            let closing = followups::Closing {
                survey: &survey_key,
                followup_id: &followup_id,
                resolution: body.resolution.as_deref(),
                by: &principal,
                now,
            };
            followups::close(conn, &pseudonyms, &closing)
        })
        .await?;
    Ok(HttpResponse::Ok().json(followup_view(closed)))
}
