//! `GET /v1/subjects/{id}/surveys/next` (which survey to show now, recording the
//! display) and `POST /v1/surveys/{id}/displays/{display_id}/dismiss`.

use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Principal, Role, SubjectAccess};
use crate::http::responses::{AuthProblems, SubjectNotFound};
use crate::http::subject_path::{SubjectCaller, SubjectPath};
use crate::http::{ApiError, AppState, Problem};
use crate::storage::write_transaction;
use crate::surveys::definition::{
    is_event_name, localize, Question, QuestionType, ShowIf, SurveyKind,
};
use crate::surveys::offer::{self, Offer, OfferAsk, OfferContext, Offered};
use crate::surveys::store;
use crate::surveys::SurveyError;

pub(super) const TAKERS: [Role; 1] = [Role::Service];

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NextQuery {
    /// The event that just happened, e.g. `onboarding.completed`: only surveys it
    /// triggers are considered. Without it, surveys triggered by any event the subject
    /// has had (and surveys without triggers). At most 100 characters.
    #[param(schema_with = event_schema)]
    pub event: Option<String>,
}

fn event_schema() -> utoipa::openapi::Object {
    crate::http::schemas::dotted_key(
        "An event name: dotted lower-case words, e.g. `onboarding.completed`.",
    )
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OptionView {
    pub id: String,
    pub label: String,
}

/// A question in the subject's language.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuestionView {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: QuestionType,
    pub required: bool,
    pub prompt: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<OptionView>>,
    /// Show only when this holds for the answers so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub show_if: Option<ShowIf>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OfferView {
    /// Send with the answers, or to dismiss.
    pub display_id: String,
    pub survey_id: String,
    pub key: String,
    pub name: String,
    pub kind: SurveyKind,
    pub version: i32,
    /// The language the texts are in (`en` when the subject's is not offered).
    pub locale: String,
    pub questions: Vec<QuestionView>,
    pub shown_at: DateTime<Utc>,
}

fn localized(questions: &[Question], locale: &str) -> Vec<QuestionView> {
    questions
        .iter()
        .map(|q| QuestionView {
            id: q.id.clone(),
            kind: q.kind,
            required: q.required,
            prompt: localize(&q.prompt, locale).to_owned(),
            scale: q.scale,
            max_length: (q.kind == QuestionType::Text).then(|| q.text_limit()),
            options: q.options.as_ref().map(|options| {
                options
                    .iter()
                    .map(|o| OptionView {
                        id: o.id.clone(),
                        label: localize(&o.label, locale).to_owned(),
                    })
                    .collect()
            }),
            show_if: q.show_if.clone(),
        })
        .collect()
}

/// The survey to show the subject now, in their language, with a `display_id`; the
/// display is recorded. 204 when none is eligible.
///
/// Eligible: active, triggered (and past its delay), inside its window, in its sticky
/// sample, matching its attribute filters, not answered, under its display and dismissal
/// caps, outside the recontact days since the last display of any survey, and with its
/// purpose allowed for the subject by the gate's rules — so never to a subject who
/// withdrew, objected, is restricted or was erased (204). The highest priority wins. No
/// survey is offered within `CONSENTRY_SURVEY_RECONTACT_DAYS` of the last display.
#[utoipa::path(
    tag = "surveys",
    params(SubjectPath, NextQuery),
    responses(
        (status = 200, description = "A survey to show now", body = OfferView),
        (status = 204, description = "None to show"),
        (status = 422, description = "A bad event name", body = Problem, content_type = "application/problem+json"),
        SubjectNotFound, AuthProblems,
    ),
    security(("bearer" = [])),
)]
#[get("/v1/subjects/{id}/surveys/next")]
pub async fn next_survey(
    state: web::Data<AppState>,
    caller: SubjectCaller,
    query: web::Query<NextQuery>,
) -> Result<HttpResponse, ApiError> {
    let access = caller.access(&TAKERS, true)?;
    let SubjectCaller { id, .. } = caller;
    let event = query.into_inner().event;
    if event.as_deref().is_some_and(|e| !is_event_name(e)) {
        return Err(ApiError::invalid(
            "event",
            "dotted lower-case words, e.g. `onboarding.completed`",
        ));
    }
    let (policies, now, hidden) = (
        state.policies.clone(),
        state.clock.now(),
        access.is_hidden(),
    );
    let key = id.to_string();
    let (pseudonyms, recontact_days) = (state.pseudonyms.clone(), state.survey_recontact_days);
    let offered = state
        .db
        .write(&key, move |conn| {
            let ctx = OfferContext {
                policies: &policies,
                pseudonyms: &pseudonyms,
                now,
                recontact_days,
            };
            let ask = OfferAsk {
                subject: &id,
                event: event.as_deref(),
                only: None,
                locale: None,
                hidden,
            };
            offer::offer(conn, &ctx, &ask)
        })
        .await?;
    match offered {
        Offered::Survey(offer) => {
            let Offer {
                display_id,
                survey,
                locale,
            } = *offer;
            state.surveys.offered(&survey.key);
            Ok(HttpResponse::Ok().json(OfferView {
                display_id,
                questions: localized(&survey.definition.questions, &locale),
                locale,
                survey_id: survey.id,
                key: survey.key,
                name: survey.name,
                kind: survey.kind,
                version: survey.version,
                shown_at: now,
            }))
        }
        Offered::Nothing => {
            state.surveys.nothing_offered();
            Ok(HttpResponse::NoContent().finish())
        }
        Offered::NoSubject => Err(ApiError::not_found()),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DismissalView {
    pub display_id: String,
    pub survey_id: String,
    pub dismissed_at: DateTime<Utc>,
}

/// Records that the subject dismissed a display (idempotent). After the survey's
/// `max_dismissals` it is not offered to them again.
#[utoipa::path(
    tag = "surveys",
    params(("id" = String, Path, description = "The survey's id or key"),
           ("display_id" = String, Path, description = "From the next-survey call")),
    responses(
        (status = 200, description = "Dismissed", body = DismissalView),
        (status = 404, description = "No such display of this survey (or not the caller's)", body = Problem, content_type = "application/problem+json"),
        AuthProblems,
    ),
    security(("bearer" = [])),
)]
#[post("/v1/surveys/{id}/displays/{display_id}/dismiss")]
pub async fn dismiss_display(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    if principal.role != Role::Subject {
        principal.require(&TAKERS)?;
    }
    let (survey_key, display_id) = path.into_inner();
    let now = state.clock.now();
    let key = display_id.clone();
    let caller = principal.clone();
    let dismissed = state
        .db
        .write(&key, move |conn| {
            write_transaction(conn, |conn| {
                let survey = store::find(conn, &survey_key)?;
                let display = store::find_display(conn, &display_id)?;
                let (Some(survey), Some(display)) = (survey, display) else {
                    return Err(SurveyError::NotFound("display"));
                };
                if display.survey_id != survey.id
                    || !matches!(
                        caller.subject_access(&TAKERS, true, &display.subject_id),
                        SubjectAccess::Granted
                    )
                {
                    return Err(SurveyError::NotFound("display"));
                }
                store::dismiss(conn, &display.id, now)?;
                Ok(DismissalView {
                    dismissed_at: display.dismissed_at.map(|d| d.and_utc()).unwrap_or(now),
                    display_id: display.id,
                    survey_id: survey.id,
                })
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(dismissed))
}
