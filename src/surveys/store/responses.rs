//! Responses and their answer rows.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::Value;

use crate::storage::schema::{survey_answers, survey_responses};
use crate::storage::{DbConnection, StorageError};
use crate::surveys::answers::{stored_values, Answers, StoredValue};
use crate::surveys::definition::Definition;

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
/// `breakdown_value`: the breakdown attribute's value now, as stored (JSON).
pub fn replace_answer_rows(
    conn: &mut DbConnection,
    response: &ResponseRow,
    definition: &Definition,
    questions: &[String],
    breakdown_value: Option<&str>,
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
                    survey_answers::breakdown_value.eq(breakdown_value),
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

pub fn answers_json(answers: &Answers) -> String {
    Value::Object(answers.clone()).to_string()
}
