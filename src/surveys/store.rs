//! Survey storage: definitions and their versions, displays, responses and their answer
//! rows, follow-ups.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::dsl::{count, count_star, max};
use diesel::prelude::*;
use serde_json::Value;

use super::answers::{stored_values, Answers, StoredValue};
use super::definition::{Definition, SurveyKind, SurveyStatus};
use super::eligibility::{Candidate, SubjectHistory, SurveyHistory};
use crate::storage::schema::{
    survey_answers, survey_displays, survey_followups, survey_responses, survey_versions, surveys,
};
use crate::storage::{DbConnection, StorageError};

fn corrupt(e: impl std::error::Error + Send + Sync + 'static) -> StorageError {
    StorageError::Query(diesel::result::Error::DeserializationError(Box::new(e)))
}

#[derive(Debug)]
struct BadValue(String);
impl std::fmt::Display for BadValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unexpected stored value `{}`", self.0)
    }
}
impl std::error::Error for BadValue {}

#[derive(Debug, Clone)]
pub struct Survey {
    pub id: String,
    pub key: String,
    pub name: String,
    pub kind: SurveyKind,
    pub status: SurveyStatus,
    pub purpose: String,
    pub priority: i32,
    pub version: i32,
    pub definition: Definition,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = surveys)]
struct SurveyRow {
    id: String,
    key: String,
    name: String,
    kind: String,
    status: String,
    purpose: String,
    priority: i32,
    version: i32,
    definition: String,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

impl TryFrom<SurveyRow> for Survey {
    type Error = StorageError;
    fn try_from(row: SurveyRow) -> Result<Self, StorageError> {
        Ok(Self {
            kind: SurveyKind::parse(&row.kind).ok_or_else(|| corrupt(BadValue(row.kind)))?,
            status: SurveyStatus::parse(&row.status)
                .ok_or_else(|| corrupt(BadValue(row.status)))?,
            definition: serde_json::from_str(&row.definition).map_err(corrupt)?,
            id: row.id,
            key: row.key,
            name: row.name,
            purpose: row.purpose,
            priority: row.priority,
            version: row.version,
            created_at: row.created_at.and_utc(),
            updated_at: row.updated_at.and_utc(),
        })
    }
}

impl From<&Survey> for SurveyRow {
    fn from(s: &Survey) -> Self {
        Self {
            id: s.id.clone(),
            key: s.key.clone(),
            name: s.name.clone(),
            kind: s.kind.as_str().into(),
            status: s.status.as_str().into(),
            purpose: s.purpose.clone(),
            priority: s.priority,
            version: s.version,
            definition: serde_json::to_string(&s.definition).unwrap_or_default(),
            created_at: s.created_at.naive_utc(),
            updated_at: s.updated_at.naive_utc(),
        }
    }
}

pub fn key_taken(conn: &mut DbConnection, key: &str) -> Result<bool, StorageError> {
    Ok(surveys::table
        .filter(surveys::key.eq(key))
        .select(surveys::id)
        .first::<String>(conn)
        .optional()?
        .is_some())
}

/// Stores a new survey and its first version.
pub fn insert(conn: &mut DbConnection, survey: &Survey) -> Result<(), StorageError> {
    let row = SurveyRow::from(survey);
    diesel::insert_into(surveys::table)
        .values(&row)
        .execute(conn)?;
    save_version(conn, survey)
}

/// Writes the current version's definition (a new row, or the unanswered current one).
fn save_version(conn: &mut DbConnection, survey: &Survey) -> Result<(), StorageError> {
    let definition = serde_json::to_string(&survey.definition).unwrap_or_default();
    let updated = diesel::update(survey_versions::table.find((&survey.id, survey.version)))
        .set(survey_versions::definition.eq(&definition))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(survey_versions::table)
            .values((
                survey_versions::survey_id.eq(&survey.id),
                survey_versions::version.eq(survey.version),
                survey_versions::definition.eq(&definition),
                survey_versions::created_at.eq(survey.updated_at.naive_utc()),
            ))
            .execute(conn)?;
    }
    Ok(())
}

pub fn update(conn: &mut DbConnection, survey: &Survey) -> Result<(), StorageError> {
    diesel::update(surveys::table.find(&survey.id))
        .set(&SurveyRow::from(survey))
        .execute(conn)?;
    save_version(conn, survey)
}

/// By id, or by key (ids are UUIDs, which keys cannot be, so one matches at most).
pub fn find(conn: &mut DbConnection, id_or_key: &str) -> Result<Option<Survey>, StorageError> {
    surveys::table
        .filter(surveys::id.eq(id_or_key).or(surveys::key.eq(id_or_key)))
        .select(SurveyRow::as_select())
        .first(conn)
        .optional()?
        .map(Survey::try_from)
        .transpose()
}

/// Row locks on PostgreSQL (SQLite's write transaction already serializes writers):
/// `Exclusive` for a change to the survey, `Shared` for answers, so that a change waits
/// for answers in flight (and they for it) while answers do not wait for each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    Shared,
    Exclusive,
}

/// Finds a survey by id or key, its row locked on PostgreSQL as it is read.
pub fn find_locked(
    conn: &mut DbConnection,
    id_or_key: &str,
    lock: Lock,
) -> Result<Option<Survey>, StorageError> {
    let DbConnection::Postgres(c) = conn else {
        return find(conn, id_or_key);
    };
    let query = surveys::table
        .filter(surveys::id.eq(id_or_key).or(surveys::key.eq(id_or_key)))
        .select(SurveyRow::as_select());
    let row = match lock {
        Lock::Shared => query.for_share().first(c).optional()?,
        Lock::Exclusive => query.for_update().first(c).optional()?,
    };
    row.map(Survey::try_from).transpose()
}

pub fn list(
    conn: &mut DbConnection,
    status: Option<SurveyStatus>,
) -> Result<Vec<Survey>, StorageError> {
    let mut query = surveys::table
        .select(SurveyRow::as_select())
        .order((surveys::priority.desc(), surveys::created_at))
        .into_boxed();
    if let Some(status) = status {
        query = query.filter(surveys::status.eq(status.as_str()));
    }
    query
        .load(conn)?
        .into_iter()
        .map(Survey::try_from)
        .collect()
}

pub fn version_definition(
    conn: &mut DbConnection,
    survey_id: &str,
    version: i32,
) -> Result<Option<Definition>, StorageError> {
    survey_versions::table
        .find((survey_id, version))
        .select(survey_versions::definition)
        .first::<String>(conn)
        .optional()?
        .map(|d| serde_json::from_str(&d).map_err(corrupt))
        .transpose()
}

/// `(version, created_at, responses)` for every version, oldest first.
pub fn versions(
    conn: &mut DbConnection,
    survey_id: &str,
) -> Result<Vec<(i32, DateTime<Utc>, i64)>, StorageError> {
    let created: Vec<(i32, NaiveDateTime)> = survey_versions::table
        .filter(survey_versions::survey_id.eq(survey_id))
        .select((survey_versions::version, survey_versions::created_at))
        .order(survey_versions::version)
        .load(conn)?;
    let counts: HashMap<i32, i64> = survey_responses::table
        .filter(survey_responses::survey_id.eq(survey_id))
        .group_by(survey_responses::version)
        .select((survey_responses::version, count_star()))
        .load::<(i32, i64)>(conn)?
        .into_iter()
        .collect();
    Ok(created
        .into_iter()
        .map(|(v, at)| (v, at.and_utc(), counts.get(&v).copied().unwrap_or(0)))
        .collect())
}

pub fn has_responses(
    conn: &mut DbConnection,
    survey_id: &str,
    version: i32,
) -> Result<bool, StorageError> {
    Ok(survey_responses::table
        .filter(survey_responses::survey_id.eq(survey_id))
        .filter(survey_responses::version.eq(version))
        .select(survey_responses::id)
        .first::<String>(conn)
        .optional()?
        .is_some())
}

pub fn active_candidates(conn: &mut DbConnection) -> Result<Vec<Candidate>, StorageError> {
    Ok(list(conn, Some(SurveyStatus::Active))?
        .into_iter()
        .map(|s| Candidate {
            id: s.id,
            priority: s.priority,
            created_at: s.created_at,
            purpose: s.purpose,
            definition: s.definition,
        })
        .collect())
}

/// Displays, dismissals and responses of the subject, for eligibility.
pub fn history(
    conn: &mut DbConnection,
    subject_id: &str,
    trigger_events: &[String],
) -> Result<SubjectHistory, StorageError> {
    let mut history = SubjectHistory::default();
    let displays: Vec<(String, i64, i64, Option<NaiveDateTime>)> = survey_displays::table
        .filter(survey_displays::subject_id.eq(subject_id))
        .group_by(survey_displays::survey_id)
        .select((
            survey_displays::survey_id,
            count_star(),
            count(survey_displays::dismissed_at),
            max(survey_displays::shown_at),
        ))
        .load(conn)?;
    for (survey_id, shown, dismissed, last) in displays {
        let last = last.map(|l| l.and_utc());
        history.last_display = history.last_display.max(last);
        history.surveys.insert(
            survey_id,
            SurveyHistory {
                displays: u32::try_from(shown).unwrap_or(u32::MAX),
                dismissals: u32::try_from(dismissed).unwrap_or(u32::MAX),
                responded: false,
            },
        );
    }
    let responded: Vec<String> = survey_responses::table
        .filter(survey_responses::subject_id.eq(subject_id))
        .select(survey_responses::survey_id)
        .load(conn)?;
    for survey_id in responded {
        history.surveys.entry(survey_id).or_default().responded = true;
    }
    history.latest_events = super::events::latest(conn, subject_id, trigger_events)?;
    Ok(history)
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = survey_displays)]
pub struct Display {
    pub id: String,
    pub survey_id: String,
    pub version: i32,
    pub subject_id: String,
    pub event: Option<String>,
    pub shown_at: NaiveDateTime,
    pub dismissed_at: Option<NaiveDateTime>,
}

pub fn insert_display(conn: &mut DbConnection, display: &Display) -> Result<(), StorageError> {
    diesel::insert_into(survey_displays::table)
        .values(display)
        .execute(conn)?;
    Ok(())
}

pub fn find_display(conn: &mut DbConnection, id: &str) -> Result<Option<Display>, StorageError> {
    Ok(survey_displays::table
        .find(id)
        .select(Display::as_select())
        .first(conn)
        .optional()?)
}

pub fn dismiss(conn: &mut DbConnection, id: &str, now: DateTime<Utc>) -> Result<(), StorageError> {
    diesel::update(
        survey_displays::table
            .find(id)
            .filter(survey_displays::dismissed_at.is_null()),
    )
    .set(survey_displays::dismissed_at.eq(now.naive_utc()))
    .execute(conn)?;
    Ok(())
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = survey_responses, treat_none_as_null = true)]
pub struct ResponseRow {
    pub id: String,
    pub survey_id: String,
    pub version: i32,
    pub subject_id: String,
    pub display_id: Option<String>,
    pub answers: String,
    pub finished: bool,
    pub started_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub finished_at: Option<NaiveDateTime>,
}

impl ResponseRow {
    pub fn answers(&self) -> Answers {
        serde_json::from_str(&self.answers).unwrap_or_default()
    }
}

pub fn find_response(
    conn: &mut DbConnection,
    survey_id: &str,
    subject_id: &str,
) -> Result<Option<ResponseRow>, StorageError> {
    Ok(survey_responses::table
        .filter(survey_responses::survey_id.eq(survey_id))
        .filter(survey_responses::subject_id.eq(subject_id))
        .select(ResponseRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn save_response(
    conn: &mut DbConnection,
    row: &ResponseRow,
    is_new: bool,
) -> Result<(), StorageError> {
    if is_new {
        diesel::insert_into(survey_responses::table)
            .values(row)
            .execute(conn)?;
    } else {
        diesel::update(survey_responses::table.find(&row.id))
            .set(row)
            .execute(conn)?;
    }
    Ok(())
}

/// Rewrites the report rows of the given questions from the response's answers.
pub fn replace_answer_rows(
    conn: &mut DbConnection,
    response: &ResponseRow,
    definition: &Definition,
    questions: &[String],
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let answers = response.answers();
    for question_id in questions {
        diesel::delete(
            survey_answers::table
                .filter(survey_answers::response_id.eq(&response.id))
                .filter(survey_answers::question_id.eq(question_id)),
        )
        .execute(conn)?;
        let (Some(question), Some(value)) =
            (definition.question(question_id), answers.get(question_id))
        else {
            continue;
        };
        for (ordinal, stored) in stored_values(question, value).into_iter().enumerate() {
            let (number, choice, free) = match stored {
                StoredValue::Number(n) => (i32::try_from(n).ok(), None, None),
                StoredValue::Choice(c) => (None, Some(c), None),
                StoredValue::Free(t) => (None, None, Some(t)),
            };
            diesel::insert_into(survey_answers::table)
                .values((
                    survey_answers::response_id.eq(&response.id),
                    survey_answers::question_id.eq(question_id),
                    survey_answers::ordinal.eq(ordinal as i32),
                    survey_answers::survey_id.eq(&response.survey_id),
                    survey_answers::version.eq(response.version),
                    survey_answers::subject_id.eq(&response.subject_id),
                    survey_answers::number_value.eq(number),
                    survey_answers::text_value.eq(choice),
                    survey_answers::free_text.eq(free),
                    survey_answers::answered_at.eq(now.naive_utc()),
                    survey_answers::answered_day.eq(now.date_naive().to_string()),
                ))
                .execute(conn)?;
        }
    }
    Ok(())
}

/// A page of a survey's responses in `(started_at, id)` order, after a cursor.
pub fn response_page(
    conn: &mut DbConnection,
    survey_id: &str,
    after: Option<&(NaiveDateTime, String)>,
    limit: i64,
) -> Result<Vec<ResponseRow>, StorageError> {
    let mut query = survey_responses::table
        .filter(survey_responses::survey_id.eq(survey_id))
        .select(ResponseRow::as_select())
        .order((survey_responses::started_at, survey_responses::id))
        .limit(limit)
        .into_boxed();
    if let Some((at, id)) = after {
        query = query.filter(
            survey_responses::started_at
                .gt(*at)
                .or(survey_responses::started_at
                    .eq(*at)
                    .and(survey_responses::id.gt(id.clone()))),
        );
    }
    Ok(query.load(conn)?)
}

pub fn subject_responses(
    conn: &mut DbConnection,
    subject_id: &str,
) -> Result<Vec<ResponseRow>, StorageError> {
    Ok(survey_responses::table
        .filter(survey_responses::subject_id.eq(subject_id))
        .select(ResponseRow::as_select())
        .order(survey_responses::started_at)
        .load(conn)?)
}

pub fn subject_displays(
    conn: &mut DbConnection,
    subject_id: &str,
) -> Result<Vec<Display>, StorageError> {
    Ok(survey_displays::table
        .filter(survey_displays::subject_id.eq(subject_id))
        .select(Display::as_select())
        .order(survey_displays::shown_at)
        .load(conn)?)
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = survey_followups)]
pub struct Followup {
    pub id: String,
    pub survey_id: String,
    pub response_id: String,
    pub subject_id: String,
    pub score: i32,
    pub status: String,
    pub opened_at: NaiveDateTime,
    pub closed_at: Option<NaiveDateTime>,
    pub closed_by: Option<String>,
    pub resolution: Option<String>,
}

pub fn followup_of_response(
    conn: &mut DbConnection,
    response_id: &str,
) -> Result<Option<Followup>, StorageError> {
    Ok(survey_followups::table
        .filter(survey_followups::response_id.eq(response_id))
        .select(Followup::as_select())
        .first(conn)
        .optional()?)
}

pub fn insert_followup(conn: &mut DbConnection, followup: &Followup) -> Result<(), StorageError> {
    diesel::insert_into(survey_followups::table)
        .values(followup)
        .execute(conn)?;
    Ok(())
}

pub fn set_followup_score(
    conn: &mut DbConnection,
    id: &str,
    score: i32,
) -> Result<(), StorageError> {
    diesel::update(survey_followups::table.find(id))
        .set(survey_followups::score.eq(score))
        .execute(conn)?;
    Ok(())
}

/// Closes an open follow-up; answers whether it was open.
pub fn close_followup(
    conn: &mut DbConnection,
    id: &str,
    by: &str,
    resolution: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, StorageError> {
    let closed = diesel::update(
        survey_followups::table
            .find(id)
            .filter(survey_followups::status.eq("open")),
    )
    .set((
        survey_followups::status.eq("closed"),
        survey_followups::closed_at.eq(now.naive_utc()),
        survey_followups::closed_by.eq(by),
        survey_followups::resolution.eq(resolution),
    ))
    .execute(conn)?;
    Ok(closed == 1)
}

/// Opens a closed follow-up again with a new detractor score.
pub fn reopen_followup(conn: &mut DbConnection, id: &str, score: i32) -> Result<(), StorageError> {
    diesel::update(survey_followups::table.find(id))
        .set((
            survey_followups::status.eq("open"),
            survey_followups::score.eq(score),
            survey_followups::closed_at.eq(None::<NaiveDateTime>),
            survey_followups::closed_by.eq(None::<String>),
            survey_followups::resolution.eq(None::<String>),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn find_followup(conn: &mut DbConnection, id: &str) -> Result<Option<Followup>, StorageError> {
    Ok(survey_followups::table
        .find(id)
        .select(Followup::as_select())
        .first(conn)
        .optional()?)
}

pub fn list_followups(
    conn: &mut DbConnection,
    survey_id: &str,
    status: Option<&str>,
    limit: i64,
) -> Result<Vec<Followup>, StorageError> {
    let mut query = survey_followups::table
        .filter(survey_followups::survey_id.eq(survey_id))
        .select(Followup::as_select())
        .order((survey_followups::opened_at, survey_followups::id))
        .limit(limit)
        .into_boxed();
    if let Some(status) = status {
        query = query.filter(survey_followups::status.eq(status.to_owned()));
    }
    Ok(query.load(conn)?)
}

pub fn subject_followups(
    conn: &mut DbConnection,
    subject_id: &str,
) -> Result<Vec<Followup>, StorageError> {
    Ok(survey_followups::table
        .filter(survey_followups::subject_id.eq(subject_id))
        .select(Followup::as_select())
        .load(conn)?)
}

/// Removes everything survey-related about a subject (erasure).
pub fn erase_subject(conn: &mut DbConnection, subject_id: &str) -> Result<usize, StorageError> {
    let mut removed =
        diesel::delete(survey_followups::table.filter(survey_followups::subject_id.eq(subject_id)))
            .execute(conn)?;
    removed +=
        diesel::delete(survey_answers::table.filter(survey_answers::subject_id.eq(subject_id)))
            .execute(conn)?;
    removed +=
        diesel::delete(survey_responses::table.filter(survey_responses::subject_id.eq(subject_id)))
            .execute(conn)?;
    removed +=
        diesel::delete(survey_displays::table.filter(survey_displays::subject_id.eq(subject_id)))
            .execute(conn)?;
    Ok(removed)
}

/// Deletes responses last touched before `before`, with their answers and follow-ups,
/// and displays shown before it (retention).
pub fn delete_older_than(
    conn: &mut DbConnection,
    before: NaiveDateTime,
) -> Result<(usize, usize), StorageError> {
    // Answers and follow-ups of the responses about to go, by subquery.
    for table in ["survey_followups", "survey_answers"] {
        let sql = format!(
            "DELETE FROM {table} WHERE response_id IN \
             (SELECT id FROM survey_responses WHERE updated_at < $1)"
        );
        let query =
            |sql: String| diesel::sql_query(sql).bind::<diesel::sql_types::Timestamp, _>(before);
        match conn {
            DbConnection::Postgres(c) => query(sql).execute(c)?,
            DbConnection::Sqlite(c) => query(sql.replace("$1", "?")).execute(c)?,
        };
    }
    let responses =
        diesel::delete(survey_responses::table.filter(survey_responses::updated_at.lt(before)))
            .execute(conn)?;
    let displays =
        diesel::delete(survey_displays::table.filter(survey_displays::shown_at.lt(before)))
            .execute(conn)?;
    Ok((responses, displays))
}

pub fn answers_json(answers: &Answers) -> String {
    Value::Object(answers.clone()).to_string()
}
