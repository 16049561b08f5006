//! Creating and changing survey definitions: checked, versioned when answered questions
//! change, moved through the status machine, audited.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;
use validator::Validate;

use super::definition::{
    check, Definition, Question, SurveyKind, SurveyStatus, Targeting, Throttling, DEFAULT_PURPOSE,
};
use super::store::{self, Survey};
use super::SurveyError;
use crate::audit::{self, Actor, AuditEntry, Pseudonymizer};
use crate::policy::Policies;
use crate::storage::{write_transaction, DbConnection, StorageError};

/// A definition as clients (and template files) send it.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"key": "nps-after-onboarding", "name": "NPS", "kind": "nps",
    "questions": [{"id": "score", "type": "nps", "required": true,
        "prompt": {"en": "How likely are you to recommend us?", "ar": "ما مدى احتمال أن توصي بنا؟"},
        "write_back": {"attribute": "nps.score", "category": "user.behavior.feedback"}}],
    "targeting": {"trigger_events": ["onboarding.completed"], "sample_percent": 100}}))]
pub struct NewSurvey {
    /// Unique: lower-case letters, digits, `-`, `_` and `.`, 1–100 characters, not
    /// shaped like a UUID.
    #[schema(min_length = 1, max_length = 100, pattern = "^[a-z0-9._-]+$")]
    pub key: String,
    #[validate(length(min = 1, max = 200))]
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    pub kind: SurveyKind,
    /// The purpose whose permission it needs (default: the feedback-survey purpose).
    #[serde(default)]
    pub purpose: Option<String>,
    /// Higher first when several are eligible; −1000 to 1000.
    #[serde(default)]
    #[validate(range(min = -1000, max = 1000))]
    #[schema(minimum = -1000, maximum = 1000)]
    pub priority: i32,
    /// `draft` (default) or `active`.
    #[serde(default)]
    pub status: Option<SurveyStatus>,
    #[schema(min_items = 1, max_items = 50)]
    pub questions: Vec<Question>,
    #[serde(default)]
    pub targeting: Targeting,
    #[serde(default)]
    pub throttling: Throttling,
    /// A profile attribute recorded with each answer, as it is when the answer is given;
    /// a report broken down by it counts answers under those values. Set when the
    /// survey is created: every answer then carries it.
    #[serde(default)]
    #[schema(example = "plan", max_length = 100)]
    pub breakdown: Option<String>,
}

/// Changes to a survey; omitted fields stay.
#[derive(Debug, Clone, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"status": "active"}))]
pub struct SurveyPatch {
    #[validate(length(min = 1, max = 200))]
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    pub status: Option<SurveyStatus>,
    pub purpose: Option<String>,
    #[validate(range(min = -1000, max = 1000))]
    #[schema(minimum = -1000, maximum = 1000)]
    pub priority: Option<i32>,
    /// Replaces every question (1–50); once the current version has answers, this
    /// makes a new version.
    #[schema(min_items = 1, max_items = 50)]
    pub questions: Option<Vec<Question>>,
    pub targeting: Option<Targeting>,
    pub throttling: Option<Throttling>,
}

/// Keys are never shaped like an id, so `/v1/surveys/{id or key}` is never ambiguous.
fn is_survey_key(key: &str) -> bool {
    uuid::Uuid::parse_str(key).is_err()
        && (1..=100).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
}

/// What a new survey must pass before anything is stored: its definition against the
/// policies, its key and its first status. Apart from the database, so that the fuzz
/// target runs exactly this.
pub(crate) fn check_new(
    policies: &Policies,
    key: &str,
    kind: SurveyKind,
    status: SurveyStatus,
    purpose: &str,
    definition: &Definition,
) -> Vec<crate::validation::FieldError> {
    let mut errors = check(policies, kind, purpose, definition);
    if !is_survey_key(key) {
        errors.insert(
            0,
            crate::validation::FieldError::new(
                "key",
                "invalid",
                "1–100 characters: lower-case letters, digits, `-`, `_` and `.`, not shaped like a UUID",
            ),
        );
    }
    if !matches!(status, SurveyStatus::Draft | SurveyStatus::Active) {
        errors.push(crate::validation::FieldError::new(
            "status",
            "invalid",
            "a new survey is `draft` or `active`",
        ));
    }
    errors
}

pub fn create(
    conn: &mut DbConnection,
    policies: &Policies,
    pseudonyms: &Pseudonymizer,
    actor: &Actor,
    new: NewSurvey,
    now: DateTime<Utc>,
) -> Result<Survey, SurveyError> {
    let purpose = new.purpose.unwrap_or_else(|| DEFAULT_PURPOSE.to_owned());
    let definition = Definition {
        questions: new.questions,
        targeting: new.targeting,
        throttling: new.throttling,
        breakdown: new.breakdown,
    };
    let status = new.status.unwrap_or(SurveyStatus::Draft);
    let errors = check_new(policies, &new.key, new.kind, status, &purpose, &definition);
    if !errors.is_empty() {
        return Err(SurveyError::Invalid(errors));
    }
    let survey = Survey {
        id: uuid::Uuid::new_v4().to_string(),
        key: new.key,
        name: new.name,
        kind: new.kind,
        status,
        purpose,
        priority: new.priority,
        version: 1,
        definition,
        created_at: now,
        updated_at: now,
    };
    let key_taken = || {
        SurveyError::conflict(
            format!("A survey with the key `{}` exists.", survey.key),
            &[("key", Value::from(survey.key.clone()))],
        )
    };
    write_transaction(conn, |conn| {
        if store::key_taken(conn, &survey.key)? {
            return Err(key_taken());
        }
        // Two creations racing for one key: the unique index decides, still a 409.
        match store::insert(conn, &survey) {
            Err(StorageError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            ))) => return Err(key_taken()),
            other => other?,
        }
        audit::record(
            conn,
            pseudonyms,
            AuditEntry {
                actor,
                action: "survey.created",
                subject_id: None,
                payload: json!({"survey_id": survey.id, "key": survey.key, "kind": survey.kind,
                                "status": survey.status, "purpose": survey.purpose, "version": 1}),
                at: now,
            },
        )?;
        Ok(survey.clone())
    })
}

pub fn change(
    conn: &mut DbConnection,
    policies: &Policies,
    pseudonyms: &Pseudonymizer,
    actor: &Actor,
    id: &str,
    patch: SurveyPatch,
    now: DateTime<Utc>,
) -> Result<Survey, SurveyError> {
    write_transaction(conn, |conn| {
        let Some(found) = store::find_locked(conn, id, store::Lock::Exclusive)? else {
            return Err(SurveyError::NotFound("survey"));
        };
        let mut survey = found.clone();
        if survey.status == SurveyStatus::Closed {
            return Err(SurveyError::conflict(
                "The survey is closed; a closed survey does not change.",
                &[("survey_status", json!("closed"))],
            ));
        }
        let mut changed: Vec<&str> = Vec::new();
        if let Some(to) = patch.status.filter(|to| *to != survey.status) {
            if !survey.status.may_become(to) {
                return Err(SurveyError::conflict(
                    format!(
                        "A survey cannot go from `{}` to `{}`.",
                        survey.status.as_str(),
                        to.as_str()
                    ),
                    &[("from", json!(survey.status)), ("to", json!(to))],
                ));
            }
            survey.status = to;
            changed.push("status");
        }
        if let Some(name) = patch.name {
            survey.name = name;
            changed.push("name");
        }
        if let Some(purpose) = patch.purpose {
            survey.purpose = purpose;
            changed.push("purpose");
        }
        if let Some(priority) = patch.priority {
            survey.priority = priority;
            changed.push("priority");
        }
        if let Some(targeting) = patch.targeting {
            survey.definition.targeting = targeting;
            changed.push("targeting");
        }
        if let Some(throttling) = patch.throttling {
            survey.definition.throttling = throttling;
            changed.push("throttling");
        }
        let questions_changed = patch
            .questions
            .as_ref()
            .is_some_and(|q| *q != survey.definition.questions);
        if let Some(questions) = patch.questions {
            survey.definition.questions = questions;
            changed.push("questions");
        }
        let mut errors = check(policies, survey.kind, &survey.purpose, &survey.definition);
        // Answers to one question id are counted together across versions: a question
        // that becomes another type needs another id.
        if questions_changed {
            for (i, q) in survey.definition.questions.iter().enumerate() {
                if let Some(before) = found
                    .definition
                    .question(&q.id)
                    .filter(|b| b.kind != q.kind)
                {
                    errors.push(crate::validation::FieldError::new(
                        format!("questions[{i}].type"),
                        "changed_type",
                        format!(
                            "`{}` was a {:?} question; give the new one another id",
                            before.id, before.kind
                        ),
                    ));
                }
            }
        }
        if !errors.is_empty() {
            return Err(SurveyError::Invalid(errors));
        }
        // Answered questions are frozen: changing them starts a new version, so that
        // reports can tell which questions an answer was given to.
        if questions_changed && store::has_responses(conn, &survey.id, survey.version)? {
            survey.version += 1;
        }
        survey.updated_at = now;
        store::update(conn, &survey)?;
        audit::record(
            conn,
            pseudonyms,
            AuditEntry {
                actor,
                action: "survey.updated",
                subject_id: None,
                payload: json!({"survey_id": survey.id, "changed": changed,
                                "status": survey.status, "version": survey.version,
                                "previous_version": found.version}),
                at: now,
            },
        )?;
        Ok(survey)
    })
}
