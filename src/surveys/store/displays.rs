//! Displays: a survey shown to a subject, and its dismissal.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::storage::schema::survey_displays;
use crate::storage::{DbConnection, StorageError};

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
