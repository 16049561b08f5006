//! Taking answers: in one transaction the response is merged and stored, its answer rows
//! rewritten for reports, mapped answers (and a score's NPS fields) written back to the
//! profile with their data categories, a detractor's follow-up opened, and the whole
//! audited.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use super::answers::{merge, Answers, NpsCategory};
use super::definition::{Definition, FEEDBACK_CATEGORY};
use super::eligibility::refusal;
use super::events;
use super::store::{self, Followup, ResponseRow};
use super::SurveyError;
use crate::audit::{self, Actor, AuditEntry, Pseudonymizer};
use crate::consent::ledger::lock_subject;
use crate::consent::SubjectId;
use crate::consent::SubjectSnapshot;
use crate::policy::Policies;
use crate::profiles::attributes::{self, AttributeChange};
use crate::storage::{write_transaction, DbConnection};

/// Who closes a follow-up when the score it was opened for changes.
const AUTOMATIC: &str = "consentry";

/// The event support reads for each new detractor.
pub const DETRACTOR_EVENT: &str = "survey.detractor";
/// The event of every NPS score given or changed (journeys read it).
pub const NPS_ANSWERED: &str = "survey.nps_answered";

pub struct Submission {
    pub survey: String,
    pub subject: SubjectId,
    /// The caller may not see this subject: answered as if it did not exist.
    pub hidden: bool,
    pub display_id: Option<String>,
    pub answers: Answers,
    pub finished: bool,
}

pub struct Outcome {
    pub survey_key: String,
    pub response: ResponseRow,
    /// This submission opened (or reopened) the follow-up.
    pub followup_opened: bool,
    /// Profile attributes written (or removed) by this submission.
    pub written_back: Vec<String>,
    pub followup: Option<Followup>,
}

pub struct Context<'a> {
    pub policies: &'a Policies,
    pub pseudonyms: &'a Pseudonymizer,
    pub actor: &'a Actor,
    pub events_per_subject: u32,
    pub now: DateTime<Utc>,
}

pub fn submit(
    conn: &mut DbConnection,
    ctx: &Context<'_>,
    submission: Submission,
) -> Result<Outcome, SurveyError> {
    let now = ctx.now;
    write_transaction(conn, |conn| {
        // Shared: a change to the survey (closing it, new questions) waits for answers
        // in flight, and they for it.
        let Some(survey) = store::find_locked(conn, &submission.survey, store::Lock::Shared)?
        else {
            return Err(SurveyError::NotFound("survey"));
        };
        if !survey.status.takes_answers() {
            return Err(SurveyError::conflict(
                format!(
                    "The survey is {}: it takes no answers.",
                    survey.status.as_str()
                ),
                &[("survey_status", json!(survey.status))],
            ));
        }
        if !lock_subject(conn, &submission.subject)? || submission.hidden {
            return Err(SurveyError::NotFound("subject"));
        }
        // Read under the subject's lock: a withdrawal acknowledged before is seen.
        let snapshot = SubjectSnapshot::load(conn, &submission.subject, ctx.pseudonyms)?;
        let existing = store::find_response(conn, &survey.id, submission.subject.as_str())?;
        if existing.as_ref().is_some_and(|r| r.finished) {
            return Err(SurveyError::conflict(
                "The subject has already finished this survey.",
                &[(
                    "response_id",
                    json!(existing.as_ref().map(|r| r.id.clone())),
                )],
            ));
        }
        if let Some(display_id) = &submission.display_id {
            let display = store::find_display(conn, display_id)?;
            if !display.is_some_and(|d| {
                d.survey_id == survey.id && d.subject_id == submission.subject.as_str()
            }) {
                return Err(SurveyError::invalid(
                    "display_id",
                    "unknown_display",
                    "not a display of this survey to this subject",
                ));
            }
        }
        // A response keeps the version its first answer was given to.
        let version = existing.as_ref().map_or(survey.version, |r| r.version);
        let definition: Definition = if version == survey.version {
            survey.definition.clone()
        } else {
            store::version_definition(conn, &survey.id, version)?
                .ok_or(SurveyError::NotFound("survey version"))?
        };
        if let Some(reason) = refusal(
            ctx.policies,
            &snapshot,
            &survey.purpose,
            &definition.written_categories(),
            ctx.now,
        ) {
            return Err(SurveyError::PurposeNotAllowed {
                purpose: survey.purpose.clone(),
                reason,
            });
        }
        let earlier = existing.as_ref().map(|r| r.answers()).unwrap_or_default();
        let merged = merge(
            &definition.questions,
            &earlier,
            &submission.answers,
            submission.finished,
        )
        .map_err(SurveyError::Invalid)?;
        if merged.answers.is_empty() {
            return Err(SurveyError::invalid(
                "answers",
                "required",
                "at least one answer",
            ));
        }
        let response = ResponseRow {
            id: existing
                .as_ref()
                .map_or_else(|| uuid::Uuid::new_v4().to_string(), |r| r.id.clone()),
            survey_id: survey.id.clone(),
            version,
            subject_id: submission.subject.to_string(),
            display_id: existing
                .as_ref()
                .and_then(|r| r.display_id.clone())
                .or(submission.display_id.clone()),
            answers: store::answers_json(&merged.answers),
            finished: submission.finished,
            started_at: existing.as_ref().map_or(now.naive_utc(), |r| r.started_at),
            updated_at: now.naive_utc(),
            finished_at: submission.finished.then(|| now.naive_utc()),
        };
        store::save_response(conn, &response, existing.is_none())?;
        let touched = merged.touched();
        // Before this answer's own write-back: the value the answer was given with.
        let breakdown_value = match &definition.breakdown {
            Some(key) => attributes::stored_value(conn, &submission.subject, key)?,
            None => None,
        };
        store::replace_answer_rows(
            conn,
            &response,
            &definition,
            &touched,
            breakdown_value.as_deref(),
            now,
        )?;

        let changes = write_back(&definition, &merged.answers, &touched, now);
        attributes::apply(conn, &submission.subject, &changes, "survey", now)?;

        let nps_question = definition.nps_question().map(|q| q.id.clone());
        let score = nps_question
            .as_ref()
            .filter(|id| touched.contains(id))
            .map(|id| merged.answers.get(id).and_then(Value::as_i64));
        if let Some(Some(score)) = score {
            events::record(
                conn,
                &response.subject_id,
                NPS_ANSWERED,
                &json!({"survey_key": survey.key, "response_id": response.id, "score": score}),
                now,
                now,
                ctx.events_per_subject,
            )?;
        }
        let (followup, followup_opened) = match score {
            Some(score) => follow_up(conn, ctx, &survey.key, &response, score)?,
            None => (store::followup_of_response(conn, &response.id)?, false),
        };
        audit::record(
            conn,
            ctx.pseudonyms,
            AuditEntry {
                actor: ctx.actor,
                action: "survey.responded",
                subject_id: Some(submission.subject.as_str()),
                payload: json!({
                    "survey_id": survey.id, "response_id": response.id, "version": version,
                    "finished": response.finished, "questions": touched,
                    "written_back": changes.keys().collect::<Vec<_>>(),
                    "followup_id": followup.as_ref().map(|f| f.id.clone()),
                }),
                at: now,
            },
        )?;
        Ok(Outcome {
            survey_key: survey.key.clone(),
            followup_opened,
            written_back: changes.keys().cloned().collect(),
            response,
            followup,
        })
    })
}

/// Profile changes for the answers this submission touched: each mapped question's
/// value (removed when its answer was dropped), and for the NPS question its score,
/// category and time, all tagged with a data category.
pub fn write_back(
    definition: &Definition,
    answers: &Answers,
    touched: &[String],
    now: DateTime<Utc>,
) -> BTreeMap<String, AttributeChange> {
    let mut changes = BTreeMap::new();
    for question in &definition.questions {
        if !touched.contains(&question.id) {
            continue;
        }
        let answer = answers.get(&question.id);
        if let Some(target) = &question.write_back {
            let change = match answer {
                Some(value) => AttributeChange::Set {
                    value: value.clone(),
                    category: target.category.clone(),
                },
                None => AttributeChange::Remove,
            };
            changes.insert(target.attribute.clone(), change);
        }
        let is_nps = definition
            .nps_question()
            .is_some_and(|q| q.id == question.id);
        if let (true, Some(score)) = (is_nps, answer.and_then(Value::as_i64)) {
            let category = question
                .write_back
                .as_ref()
                .map_or(FEEDBACK_CATEGORY, |w| w.category.as_str());
            let set = |value: Value| AttributeChange::Set {
                value,
                category: category.to_owned(),
            };
            changes.insert("nps.score".into(), set(Value::from(score)));
            changes.insert(
                "nps.category".into(),
                set(Value::from(NpsCategory::of(score).as_str())),
            );
            changes.insert(
                "nps.answered_at".into(),
                set(Value::from(now.to_rfc3339_opts(SecondsFormat::Secs, true))),
            );
        }
    }
    changes
}

/// Opens a follow-up for a detractor score (and tells the event feed), keeps an open
/// one's score current, closes it when the score is changed to a passive or promoter
/// one before the response is finished, and opens it again if it turns back.
fn follow_up(
    conn: &mut DbConnection,
    ctx: &Context<'_>,
    survey_key: &str,
    response: &ResponseRow,
    score: Option<i64>,
) -> Result<(Option<Followup>, bool), SurveyError> {
    let existing = store::followup_of_response(conn, &response.id)?;
    let detractor = score.filter(|s| NpsCategory::of(*s) == NpsCategory::Detractor);
    match (existing, detractor) {
        (None, Some(score)) => {
            let followup = Followup {
                id: uuid::Uuid::new_v4().to_string(),
                survey_id: response.survey_id.clone(),
                response_id: response.id.clone(),
                subject_id: response.subject_id.clone(),
                score: score as i32,
                status: "open".into(),
                opened_at: ctx.now.naive_utc(),
                closed_at: None,
                closed_by: None,
                resolution: None,
            };
            store::insert_followup(conn, &followup)?;
            announce_detractor(conn, ctx, survey_key, response, &followup.id, score)?;
            Ok((Some(followup), true))
        }
        (Some(open), Some(score)) if open.status == "open" => {
            store::set_followup_score(conn, &open.id, score as i32)?;
            Ok((store::followup_of_response(conn, &response.id)?, false))
        }
        (Some(open), None) if open.status == "open" => {
            store::close_followup(conn, &open.id, AUTOMATIC, Some("score_changed"), ctx.now)?;
            Ok((store::followup_of_response(conn, &response.id)?, false))
        }
        (Some(closed), Some(score))
            if closed.closed_by.as_deref() == Some(AUTOMATIC)
                && closed.resolution.as_deref() == Some("score_changed") =>
        {
            store::reopen_followup(conn, &closed.id, score as i32)?;
            announce_detractor(conn, ctx, survey_key, response, &closed.id, score)?;
            Ok((store::followup_of_response(conn, &response.id)?, true))
        }
        (existing, _) => Ok((existing, false)),
    }
}

/// The `survey.detractor` event support reads from the feed.
fn announce_detractor(
    conn: &mut DbConnection,
    ctx: &Context<'_>,
    survey_key: &str,
    response: &ResponseRow,
    followup_id: &str,
    score: i64,
) -> Result<(), SurveyError> {
    events::record(
        conn,
        &response.subject_id,
        DETRACTOR_EVENT,
        &json!({"survey_id": response.survey_id, "survey_key": survey_key,
                "response_id": response.id, "followup_id": followup_id, "score": score}),
        ctx.now,
        ctx.now,
        ctx.events_per_subject,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn nps_write_back_carries_score_category_and_time() {
        let definition: Definition = serde_json::from_value(json!({"questions": [
            {"id": "score", "type": "nps", "prompt": {"en": "?"}},
            {"id": "role", "type": "single_choice", "prompt": {"en": "?"},
             "options": [{"id": "admin", "label": {"en": "A"}}, {"id": "dev", "label": {"en": "D"}}],
             "write_back": {"attribute": "onboarding.role", "category": "user.demographic.profile"}}
        ]}))
        .unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
        let answers: Answers = json!({"score": 6, "role": "dev"})
            .as_object()
            .unwrap()
            .clone();
        let changes = write_back(&definition, &answers, &["score".into(), "role".into()], now);
        let set = |key: &str| match &changes[key] {
            AttributeChange::Set { value, category } => (value.clone(), category.clone()),
            AttributeChange::Remove => panic!("removed"),
        };
        assert_eq!(set("nps.score"), (json!(6), FEEDBACK_CATEGORY.to_owned()));
        assert_eq!(set("nps.category").0, json!("detractor"));
        assert_eq!(set("nps.answered_at").0, json!("2026-11-23T12:00:00Z"));
        assert_eq!(
            set("onboarding.role"),
            (json!("dev"), "user.demographic.profile".to_owned())
        );
        // Only what the submission touched is written; a dropped answer is removed.
        let only_role = write_back(&definition, &Answers::new(), &["role".into()], now);
        assert_eq!(only_role.len(), 1);
        assert!(matches!(
            only_role["onboarding.role"],
            AttributeChange::Remove
        ));
    }
}
