//! `POST/GET /v1/surveys`, `GET/PATCH /v1/surveys/{id}`.

use actix_web::{get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::audit::Actor;
use crate::auth::{Principal, Role};
use crate::http::responses::{AuthProblems, BodyProblems, ParameterProblems};
use crate::http::{ApiError, AppState, Problem, ValidJson};
use crate::surveys::catalog::{self, NewSurvey, SurveyPatch};
use crate::surveys::definition::{Question, SurveyKind, SurveyStatus, Targeting, Throttling};
use crate::surveys::store::{self, Survey};
use crate::surveys::SurveyError;

const EDITORS: [Role; 1] = [Role::Admin];
pub(super) use crate::surveys::READERS;

#[derive(Debug, Serialize, ToSchema)]
pub struct VersionView {
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub responses: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SurveyView {
    pub id: String,
    pub key: String,
    pub name: String,
    pub kind: SurveyKind,
    pub status: SurveyStatus,
    pub purpose: String,
    pub priority: i32,
    /// The current version of the questions.
    pub version: i32,
    pub questions: Vec<Question>,
    pub targeting: Targeting,
    pub throttling: Throttling,
    /// The profile attribute recorded with each answer, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breakdown: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Every version with its response count (only on a single survey).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versions: Option<Vec<VersionView>>,
}

pub fn view(survey: Survey, versions: Option<Vec<(i32, DateTime<Utc>, i64)>>) -> SurveyView {
    SurveyView {
        id: survey.id,
        key: survey.key,
        name: survey.name,
        kind: survey.kind,
        status: survey.status,
        purpose: survey.purpose,
        priority: survey.priority,
        version: survey.version,
        questions: survey.definition.questions,
        targeting: survey.definition.targeting,
        throttling: survey.definition.throttling,
        breakdown: survey.definition.breakdown,
        created_at: survey.created_at,
        updated_at: survey.updated_at,
        versions: versions.map(|v| {
            v.into_iter()
                .map(|(version, created_at, responses)| VersionView {
                    version,
                    created_at,
                    responses,
                })
                .collect()
        }),
    }
}

/// Creates a survey (a draft unless `status` is `active`).
///
/// A question referring to a missing or later question, an unknown data category or
/// purpose, or a show-if rule that can never (or always) hold is 422 naming the field.
#[utoipa::path(
    tag = "surveys",
    request_body = NewSurvey,
    responses(
        (status = 201, description = "Created", body = SurveyView),
        (status = 409, description = "The key is taken", body = Problem, content_type = "application/problem+json"),
        BodyProblems, AuthProblems,
    ),
    security(("bearer" = [])),
)]
#[post("/v1/surveys")]
pub async fn create_survey(
    state: web::Data<AppState>,
    principal: Principal,
    body: ValidJson<NewSurvey>,
) -> Result<HttpResponse, ApiError> {
    principal.require(&EDITORS)?;
    let (policies, pseudonyms, actor, now) = (
        state.policies.clone(),
        state.pseudonyms.clone(),
        Actor::from(&principal),
        state.clock.now(),
    );
    let new = body.into_inner();
    let survey = state
        .db
        .run(move |conn| catalog::create(conn, &policies, &pseudonyms, &actor, new, now))
        .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/v1/surveys/{}", survey.id)))
        .json(view(survey, None)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub status: Option<SurveyStatus>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SurveyList {
    /// Highest priority first.
    pub surveys: Vec<SurveyView>,
}

/// Lists surveys, highest priority first.
#[utoipa::path(
    tag = "surveys",
    params(ListQuery),
    responses((status = 200, description = "Surveys", body = SurveyList), ParameterProblems, AuthProblems),
    security(("bearer" = [])),
)]
#[get("/v1/surveys")]
pub async fn list_surveys(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(&READERS)?;
    let status = query.status;
    let surveys = state.db.run(move |conn| store::list(conn, status)).await?;
    Ok(HttpResponse::Ok().json(SurveyList {
        surveys: surveys.into_iter().map(|s| view(s, None)).collect(),
    }))
}

/// One survey (by id or key), with its versions.
#[utoipa::path(
    tag = "surveys",
    params(("id" = String, Path, description = "The survey's id or key")),
    responses(
        (status = 200, description = "The survey", body = SurveyView),
        (status = 404, description = "No such survey", body = Problem, content_type = "application/problem+json"),
        AuthProblems,
    ),
    security(("bearer" = [])),
)]
#[get("/v1/surveys/{id}")]
pub async fn get_survey(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(&READERS)?;
    let id = path.into_inner();
    let found = state
        .db
        .run(move |conn| {
            let Some(survey) = store::find(conn, &id)? else {
                return Err(SurveyError::NotFound("survey"));
            };
            let versions = store::versions(conn, &survey.id)?;
            Ok((survey, versions))
        })
        .await?;
    Ok(HttpResponse::Ok().json(view(found.0, Some(found.1))))
}

/// Changes a survey: status (`draft → active ⇄ paused → closed`; anything else is 409),
/// name, purpose, priority, questions, targeting, throttling.
///
/// Questions of a version that has answers are frozen: replacing them makes a new
/// version. A closed survey does not change (409).
#[utoipa::path(
    tag = "surveys",
    params(("id" = String, Path, description = "The survey's id or key")),
    request_body = SurveyPatch,
    responses(
        (status = 200, description = "The survey after the change", body = SurveyView),
        (status = 404, description = "No such survey", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "An illegal status change, or the survey is closed", body = Problem, content_type = "application/problem+json"),
        BodyProblems, AuthProblems,
    ),
    security(("bearer" = [])),
)]
#[patch("/v1/surveys/{id}")]
pub async fn change_survey(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: ValidJson<SurveyPatch>,
) -> Result<HttpResponse, ApiError> {
    principal.require(&EDITORS)?;
    let (policies, pseudonyms, actor, now) = (
        state.policies.clone(),
        state.pseudonyms.clone(),
        Actor::from(&principal),
        state.clock.now(),
    );
    let (id, patch) = (path.into_inner(), body.into_inner());
    let found = state
        .db
        .run(move |conn| {
            let survey = catalog::change(conn, &policies, &pseudonyms, &actor, &id, patch, now)?;
            let versions = store::versions(conn, &survey.id)?;
            Ok::<_, SurveyError>((survey, versions))
        })
        .await?;
    Ok(HttpResponse::Ok().json(view(found.0, Some(found.1))))
}
