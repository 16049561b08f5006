//! Survey storage: definitions and their versions, displays, responses and their answer
//! rows, follow-ups; and what spans them, a subject's history, erasure and retention.

mod displays;
mod followups;
mod responses;
mod surveys;

use chrono::NaiveDateTime;
use diesel::dsl::{count, count_star, max};
use diesel::prelude::*;

pub use self::displays::{dismiss, find_display, insert_display, subject_displays, Display};
pub use self::followups::{
    close_followup, find_followup, followup_of_response, insert_followup, list_followups,
    open_followups, reopen_followup, set_followup_score, subject_followups, Followup,
};
pub use self::responses::{
    answers_json, find_response, replace_answer_rows, response_page, save_response,
    subject_responses, ResponseRow,
};
pub use self::surveys::{
    active_candidates, find, find_locked, has_responses, insert, key_taken, list, update,
    version_definition, versions, Lock, Survey,
};
use super::eligibility::{SubjectHistory, SurveyHistory};
use crate::storage::schema::{survey_answers, survey_displays, survey_followups, survey_responses};
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

/// Moves a subject's survey history to another (a merge). A survey both answered keeps
/// the answer of `into`: one response per survey and subject. Answers how many of
/// `from`'s responses were dropped so. Call inside the merge's transaction.
pub fn move_subject(
    conn: &mut DbConnection,
    from: &str,
    into: &str,
) -> Result<usize, StorageError> {
    let answered: Vec<String> = survey_responses::table
        .filter(survey_responses::subject_id.eq(into))
        .select(survey_responses::survey_id)
        .load(conn)?;
    let dropped: Vec<String> = survey_responses::table
        .filter(survey_responses::subject_id.eq(from))
        .filter(survey_responses::survey_id.eq_any(&answered))
        .select(survey_responses::id)
        .load(conn)?;
    diesel::delete(survey_followups::table.filter(survey_followups::response_id.eq_any(&dropped)))
        .execute(conn)?;
    diesel::delete(survey_answers::table.filter(survey_answers::response_id.eq_any(&dropped)))
        .execute(conn)?;
    diesel::delete(survey_responses::table.filter(survey_responses::id.eq_any(&dropped)))
        .execute(conn)?;
    diesel::update(survey_responses::table.filter(survey_responses::subject_id.eq(from)))
        .set(survey_responses::subject_id.eq(into))
        .execute(conn)?;
    diesel::update(survey_answers::table.filter(survey_answers::subject_id.eq(from)))
        .set(survey_answers::subject_id.eq(into))
        .execute(conn)?;
    diesel::update(survey_followups::table.filter(survey_followups::subject_id.eq(from)))
        .set(survey_followups::subject_id.eq(into))
        .execute(conn)?;
    diesel::update(survey_displays::table.filter(survey_displays::subject_id.eq(from)))
        .set(survey_displays::subject_id.eq(into))
        .execute(conn)?;
    Ok(dropped.len())
}

/// Deletes at most `limit` responses last touched before `before`, with their answers
/// and follow-ups, and at most `limit` displays shown before it (retention works in
/// short batches).
pub fn delete_older_than(
    conn: &mut DbConnection,
    before: NaiveDateTime,
    limit: i64,
) -> Result<(usize, usize), StorageError> {
    let ids: Vec<String> = survey_responses::table
        .filter(survey_responses::updated_at.lt(before))
        .order(survey_responses::updated_at.asc())
        .limit(limit)
        .select(survey_responses::id)
        .load(conn)?;
    let mut responses = 0;
    if !ids.is_empty() {
        diesel::delete(survey_followups::table.filter(survey_followups::response_id.eq_any(&ids)))
            .execute(conn)?;
        diesel::delete(survey_answers::table.filter(survey_answers::response_id.eq_any(&ids)))
            .execute(conn)?;
        responses =
            diesel::delete(survey_responses::table.filter(survey_responses::id.eq_any(&ids)))
                .execute(conn)?;
    }
    let display_ids: Vec<String> = survey_displays::table
        .filter(survey_displays::shown_at.lt(before))
        .order(survey_displays::shown_at.asc())
        .limit(limit)
        .select(survey_displays::id)
        .load(conn)?;
    let displays = if display_ids.is_empty() {
        0
    } else {
        diesel::delete(survey_displays::table.filter(survey_displays::id.eq_any(&display_ids)))
            .execute(conn)?
    };
    Ok((responses, displays))
}
