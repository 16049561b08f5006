//! The survey page a survey link opens: offered by the same rules as the API's
//! next-survey call, answered through the same submission (write-back, follow-ups,
//! audit). Without JavaScript, show-if works page by page: a follow-up question that an
//! answer reveals is asked on the next page, and the response is finished once every
//! question shown has been seen.

use std::collections::BTreeSet;

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use askama::Template;
use serde_json::{Map, Value};

use super::{checked_form, html, message_page, respond, see_other, Chrome, Failure, Live, Visit};
use crate::consent::SubjectId;
use crate::http::AppState;
use crate::portal::i18n::Tr;
use crate::portal::session::{self, Holder};
use crate::surveys::answers::{visible, Answers};
use crate::surveys::definition::{localize, Question, QuestionType};
use crate::surveys::offer::{self, OfferAsk, OfferContext, Offered};
use crate::surveys::respond::{self, Submission};
use crate::surveys::store::{self, Survey};
use crate::surveys::SurveyError;

/// One choice of a question as the page shows it.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub checked: bool,
}

/// A question as the page shows it.
pub struct QuestionItem {
    pub id: String,
    pub prompt: String,
    /// `scale` (radio buttons in a row), `choice`, `multi` or `text`.
    pub widget: &'static str,
    pub choices: Vec<Choice>,
    /// The words at the ends of a scale (`0` and `10` for NPS).
    pub low: Option<String>,
    pub high: Option<String>,
    pub text: String,
    pub max_length: u32,
    pub required: bool,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "portal/survey.html")]
struct SurveyPage {
    chrome: Chrome,
    csrf: String,
    name: String,
    questions: Vec<QuestionItem>,
    has_errors: bool,
}

/// The respondent a survey session belongs to; other sessions see no survey.
fn respondent(live: &Live) -> Result<(&SubjectId, &str), Failure> {
    match &live.session.holder {
        Holder::Respondent { subject, survey_id } => Ok((subject, survey_id)),
        _ => Err(Failure::NotFound),
    }
}

/// Where the respondent stands with the survey.
enum Standing {
    /// Shown (now or before): the survey, the display and the answers so far.
    Open {
        survey: Box<Survey>,
        display_id: String,
        answers: Answers,
    },
    /// Already answered in full.
    Finished,
    /// Not to be shown now (objected, withdrew, restricted, not eligible).
    NotNow,
}

async fn standing(state: &AppState, visit: &Visit, live: &Live) -> Result<Standing, Failure> {
    let (subject, survey_id) = respondent(live)?;
    let (subject, survey_id) = (subject.clone(), survey_id.to_owned());
    let (policies, pseudonyms, now) = (
        state.policies.clone(),
        state.pseudonyms.clone(),
        state.clock.now(),
    );
    let (recontact_days, locale) = (state.survey_recontact_days, visit.lang.code());
    let (session_hash, shown) = (
        live.session.id_hash.clone(),
        live.session.display_id.clone(),
    );
    let standing = state
        .db
        .run(move |conn| {
            let Some(survey) = store::find(conn, &survey_id)? else {
                return Ok(Standing::NotNow);
            };
            if let Some(response) = store::find_response(conn, &survey.id, subject.as_str())? {
                if response.finished {
                    return Ok(Standing::Finished);
                }
                if let Some(display_id) = response.display_id.clone().or(shown) {
                    return Ok(Standing::Open {
                        answers: response.answers(),
                        survey: Box::new(survey),
                        display_id,
                    });
                }
            } else if let Some(display_id) = shown {
                return Ok(Standing::Open {
                    survey: Box::new(survey),
                    display_id,
                    answers: Answers::new(),
                });
            }
            let ctx = OfferContext {
                policies: &policies,
                pseudonyms: &pseudonyms,
                now,
                recontact_days,
            };
            let ask = OfferAsk {
                subject: &subject,
                event: None,
                only: Some(&survey.id),
                locale: Some(locale),
                hidden: false,
            };
            match offer::offer(conn, &ctx, &ask)? {
                Offered::Survey(offer) => {
                    session::set_display(conn, &session_hash, &offer.display_id)?;
                    Ok(Standing::Open {
                        survey: Box::new(offer.survey),
                        display_id: offer.display_id,
                        answers: Answers::new(),
                    })
                }
                Offered::Nothing | Offered::NoSubject => Ok(Standing::NotNow),
            }
        })
        .await
        .map_err(|e: SurveyError| Failure::internal(e))?;
    if let Standing::Open { survey, .. } = &standing {
        state.surveys.offered(&survey.key);
    }
    Ok(standing)
}

/// The questions still to show: those visible for the answers so far.
fn items(
    tr: &Tr,
    survey: &Survey,
    answers: &Answers,
    errors: &[(String, String)],
) -> Vec<QuestionItem> {
    let locale = tr.lang.code();
    visible(&survey.definition.questions, answers)
        .into_iter()
        .map(|q| item(tr, q, answers.get(&q.id), locale, errors))
        .collect()
}

fn item(
    tr: &Tr,
    q: &Question,
    answer: Option<&Value>,
    locale: &str,
    errors: &[(String, String)],
) -> QuestionItem {
    let scale = |from: u8, to: u8| -> Vec<Choice> {
        (from..=to)
            .map(|n| Choice {
                value: n.to_string(),
                label: tr.int(n.into()),
                checked: answer.and_then(Value::as_i64) == Some(n.into()),
            })
            .collect()
    };
    let options = || -> Vec<Choice> {
        q.options
            .iter()
            .flatten()
            .map(|o| Choice {
                checked: match answer {
                    Some(Value::String(s)) => *s == o.id,
                    Some(Value::Array(items)) => items.iter().any(|v| v.as_str() == Some(&o.id)),
                    _ => false,
                },
                value: o.id.clone(),
                label: localize(&o.label, locale).to_owned(),
            })
            .collect()
    };
    let (widget, choices, low, high) = match q.kind {
        QuestionType::Nps => (
            "scale",
            scale(0, 10),
            Some(tr.t("survey-nps-low")),
            Some(tr.t("survey-nps-high")),
        ),
        QuestionType::Rating => (
            "scale",
            scale(1, q.scale.unwrap_or(5)),
            Some(tr.t("survey-rating-low")),
            Some(tr.t("survey-rating-high")),
        ),
        QuestionType::SingleChoice => ("choice", options(), None, None),
        QuestionType::MultiChoice => ("multi", options(), None, None),
        QuestionType::Boolean => (
            "choice",
            [("true", "survey-yes", true), ("false", "survey-no", false)]
                .into_iter()
                .map(|(value, key, b)| Choice {
                    value: value.into(),
                    label: tr.t(key),
                    checked: answer.and_then(Value::as_bool) == Some(b),
                })
                .collect(),
            None,
            None,
        ),
        QuestionType::Text => ("text", Vec::new(), None, None),
    };
    QuestionItem {
        id: q.id.clone(),
        prompt: localize(&q.prompt, locale).to_owned(),
        widget,
        choices,
        low,
        high,
        text: answer
            .and_then(Value::as_str)
            .filter(|_| q.kind == QuestionType::Text)
            .unwrap_or_default()
            .to_owned(),
        max_length: q.text_limit(),
        required: q.required,
        error: errors
            .iter()
            .find(|(field, _)| *field == format!("answers.{}", q.id))
            .map(|(_, message)| message.clone()),
    }
}

fn survey_page(
    visit: &Visit,
    live: &Live,
    survey: &Survey,
    answers: &Answers,
    errors: &[(String, String)],
) -> HttpResponse {
    let tr = visit.tr();
    let chrome = Chrome::new(visit, "survey-title", "/portal/survey");
    let page = SurveyPage {
        chrome,
        csrf: live.csrf(),
        name: survey.name.clone(),
        questions: items(&tr, survey, answers, errors),
        has_errors: !errors.is_empty(),
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    html(status, &page)
}

fn thanks(visit: &Visit) -> HttpResponse {
    let tr = visit.tr();
    message_page(visit, "survey-thanks-title", tr.t("survey-thanks"), None)
}

fn not_now(visit: &Visit) -> HttpResponse {
    let tr = visit.tr();
    message_page(visit, "survey-none-title", tr.t("survey-none"), None)
}

#[get("/portal/survey")]
pub async fn show_survey(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let visit = Visit::load(&state, &req).await;
    let result = async {
        let live = visit.require()?;
        Ok(match standing(&state, &visit, live).await? {
            Standing::Open {
                survey, answers, ..
            } => survey_page(&visit, live, &survey, &answers, &[]),
            Standing::Finished => thanks(&visit),
            Standing::NotNow => not_now(&visit),
        })
    }
    .await;
    respond(&visit, result)
}

/// Reads the page's fields into answers by each question's type; empty fields are left
/// out (an answer already given stays).
fn read_answers(survey: &Survey, fields: &[(String, String)]) -> (Answers, BTreeSet<String>) {
    let mut answers = Map::new();
    let shown: BTreeSet<String> = fields
        .iter()
        .filter(|(k, _)| k == "shown")
        .map(|(_, v)| v.clone())
        .collect();
    for q in &survey.definition.questions {
        if !shown.contains(&q.id) {
            continue;
        }
        let name = format!("q.{}", q.id);
        let values: Vec<&str> = fields
            .iter()
            .filter(|(k, v)| *k == name && !v.trim().is_empty())
            .map(|(_, v)| v.as_str())
            .collect();
        let Some(first) = values.first() else {
            continue;
        };
        let value = match q.kind {
            QuestionType::Nps | QuestionType::Rating => first
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::from(*first)),
            QuestionType::Boolean => match *first {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                other => Value::from(other),
            },
            QuestionType::MultiChoice => {
                Value::Array(values.iter().map(|v| Value::from(*v)).collect())
            }
            QuestionType::SingleChoice | QuestionType::Text => Value::from(*first),
        };
        answers.insert(q.id.clone(), value);
    }
    (answers, shown)
}

#[post("/portal/survey")]
pub async fn answer_survey(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let visit = Visit::load(&state, &req).await;
    let result = async {
        let live = visit.require()?;
        let fields: Vec<(String, String)> = checked_form(&state, &req, live, &body)?;
        let (survey, display_id, stored) = match standing(&state, &visit, live).await? {
            Standing::Open {
                survey,
                display_id,
                answers,
            } => (survey, display_id, answers),
            Standing::Finished => return Ok(thanks(&visit)),
            Standing::NotNow => return Ok(not_now(&visit)),
        };
        let (new, shown) = read_answers(&survey, &fields);
        let mut merged = stored.clone();
        merged.extend(new.clone());
        // Finished once no question the answers reveal is still unseen.
        let finished = visible(&survey.definition.questions, &merged)
            .iter()
            .all(|q| shown.contains(&q.id) || stored.contains_key(&q.id));
        let (subject, _) = respondent(live)?;
        let key = subject.to_string();
        let submission = Submission {
            survey: survey.id.clone(),
            subject: subject.clone(),
            hidden: false,
            display_id: Some(display_id),
            answers: new,
            finished,
        };
        let (policies, pseudonyms, now) = (
            state.policies.clone(),
            state.pseudonyms.clone(),
            state.clock.now(),
        );
        let actor = live.session.holder.actor();
        let events_per_subject = state.policies.retention.events_per_subject;
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
                Ok(outcome)
            })
            .await;
        match outcome {
            Ok(outcome) => {
                state.surveys.answered(
                    &outcome.survey_key,
                    outcome.response.finished,
                    outcome.followup_opened,
                );
                if outcome.response.finished {
                    Ok(thanks(&visit))
                } else {
                    Ok(see_other("/portal/survey"))
                }
            }
            Err(SurveyError::Invalid(errors)) => {
                let tr = visit.tr();
                let errors: Vec<(String, String)> = errors
                    .into_iter()
                    .map(|e| {
                        let key = if e.code == "required" {
                            "survey-required"
                        } else {
                            "survey-invalid"
                        };
                        (e.field, tr.t(key))
                    })
                    .collect();
                Ok(survey_page(&visit, live, &survey, &merged, &errors))
            }
            Err(SurveyError::PurposeNotAllowed { .. } | SurveyError::Conflict { .. }) => {
                Ok(not_now(&visit))
            }
            Err(err) => Err(Failure::internal(err)),
        }
    }
    .await;
    respond(&visit, result)
}
