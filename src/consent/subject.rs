//! A data subject: an opaque id, where they live (which decides the law), their locale
//! and, if known, their birth year (which decides whether they are a minor).

use std::fmt;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::policy::{PersonFacts, Policies, Region};
use crate::storage::schema::subjects;
use crate::storage::{DbConnection, StorageError};

/// An opaque subject id, in the identifier alphabet (`crate::identifier`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubjectId(String);

impl SubjectId {
    pub const MAX_CHARS: usize = crate::identifier::MAX_CHARS;

    pub fn parse(input: &str) -> Result<Self, String> {
        crate::identifier::check(input)?;
        Ok(Self(input.to_owned()))
    }

    /// An id read back from storage. Rows written before the alphabet was narrowed keep
    /// working; the rule guards what comes in, not what is already held.
    pub fn from_stored(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SubjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = subjects)]
pub(super) struct SubjectRow {
    pub(super) id: String,
    pub(super) region: String,
    pub(super) locale: Option<String>,
    pub(super) birth_year: Option<i32>,
    pub(super) created_at: NaiveDateTime,
    pub(super) updated_at: NaiveDateTime,
    pub(super) restricted_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub id: SubjectId,
    pub region: Region,
    pub locale: Option<String>,
    pub birth_year: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Processing restricted (GDPR Art. 18) since then.
    pub restricted_at: Option<DateTime<Utc>>,
}

impl Subject {
    /// What the law sees of this subject: the basis of every purpose follows from it.
    pub fn person<'p>(&'p self, policies: &'p Policies) -> PersonFacts<'p> {
        PersonFacts::new(policies, &self.region, self.birth_year)
    }

    /// The jurisdiction key for the subject's region.
    pub fn jurisdiction<'p>(&self, policies: &'p Policies) -> &'p str {
        &policies.jurisdictions.for_region(&self.region).key
    }
}

impl TryFrom<SubjectRow> for Subject {
    type Error = StorageError;

    fn try_from(row: SubjectRow) -> Result<Self, StorageError> {
        // Rows were checked on the way in; a bad one means the database was edited.
        let corrupt = |what: String| {
            StorageError::Query(diesel::result::Error::DeserializationError(what.into()))
        };
        Ok(Self {
            id: SubjectId::from_stored(row.id),
            region: Region::parse(&row.region).map_err(corrupt)?,
            locale: row.locale,
            birth_year: row.birth_year,
            created_at: row.created_at.and_utc(),
            updated_at: row.updated_at.and_utc(),
            restricted_at: row.restricted_at.map(|t| t.and_utc()),
        })
    }
}

/// What a caller may set on a subject.
#[derive(Debug, Clone)]
pub struct SubjectChanges {
    pub region: Region,
    pub locale: Option<String>,
    pub birth_year: Option<i32>,
}

pub fn find(conn: &mut DbConnection, id: &SubjectId) -> Result<Option<Subject>, StorageError> {
    subjects::table
        .find(id.as_str())
        .select(SubjectRow::as_select())
        .first(conn)
        .optional()?
        .map(Subject::try_from)
        .transpose()
}

/// `find`, and on PostgreSQL the row locked until the transaction ends (`FOR UPDATE`):
/// `ledger::lock_subject` and `find` in one round trip. Call inside a write transaction.
pub fn find_locked(
    conn: &mut DbConnection,
    id: &SubjectId,
) -> Result<Option<Subject>, StorageError> {
    let query = || subjects::table.find(id.as_str());
    let row: Option<SubjectRow> = match conn {
        DbConnection::Postgres(c) => query()
            .select(SubjectRow::as_select())
            .for_update()
            .first(c)
            .optional()?,
        DbConnection::Sqlite(c) => query()
            .select(SubjectRow::as_select())
            .first(c)
            .optional()?,
    };
    row.map(Subject::try_from).transpose()
}

/// Creates the subject or replaces its settable fields; says whether it was created.
/// Call inside a write transaction.
pub fn upsert(
    conn: &mut DbConnection,
    id: &SubjectId,
    changes: &SubjectChanges,
    now: DateTime<Utc>,
) -> Result<(Subject, bool), StorageError> {
    let now = now.naive_utc();
    let row = SubjectRow {
        id: id.as_str().to_owned(),
        region: changes.region.as_str().to_owned(),
        locale: changes.locale.clone(),
        birth_year: changes.birth_year,
        created_at: now,
        updated_at: now,
        restricted_at: None,
    };
    // Insert-if-absent is dialect SQL: the one place per query that matches on the backend.
    let inserted = match conn {
        DbConnection::Postgres(c) => diesel::insert_into(subjects::table)
            .values(&row)
            .on_conflict_do_nothing()
            .execute(c)?,
        DbConnection::Sqlite(c) => diesel::insert_into(subjects::table)
            .values(&row)
            .on_conflict_do_nothing()
            .execute(c)?,
    };
    if inserted == 0 {
        diesel::update(subjects::table.find(id.as_str()))
            .set((
                subjects::region.eq(&row.region),
                subjects::locale.eq(&row.locale),
                subjects::birth_year.eq(row.birth_year),
                subjects::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    let subject = find(conn, id)?.ok_or(StorageError::Query(diesel::result::Error::NotFound))?;
    Ok((subject, inserted == 1))
}

/// Restricts processing from `now`, or lifts the restriction (`None`). Call inside a
/// write transaction; answers whether the subject exists.
pub fn set_restriction(
    conn: &mut DbConnection,
    id: &SubjectId,
    since: Option<DateTime<Utc>>,
) -> Result<bool, StorageError> {
    Ok(diesel::update(subjects::table.find(id.as_str()))
        .set(subjects::restricted_at.eq(since.map(|t| t.naive_utc())))
        .execute(conn)?
        == 1)
}
