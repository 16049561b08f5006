//! Survey definitions and their versions.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::dsl::count_star;
use diesel::prelude::*;

use super::{corrupt, BadValue};
use crate::storage::schema::{survey_responses, survey_versions, surveys};
use crate::storage::{DbConnection, StorageError};
use crate::surveys::definition::{Definition, SurveyKind, SurveyStatus};
use crate::surveys::eligibility::Candidate;

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
