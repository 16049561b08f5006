//! Follow-ups of detractor responses.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::storage::schema::survey_followups;
use crate::storage::{DbConnection, StorageError};

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

/// Open follow-ups of every survey, oldest first.
pub fn open_followups(conn: &mut DbConnection, limit: i64) -> Result<Vec<Followup>, StorageError> {
    Ok(survey_followups::table
        .filter(survey_followups::status.eq("open"))
        .select(Followup::as_select())
        .order((survey_followups::opened_at, survey_followups::id))
        .limit(limit)
        .load(conn)?)
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
