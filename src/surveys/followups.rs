//! Follow-ups of detractor answers, as support and officers handle them: who may see and
//! close them, and the close itself, which the API and the console both carry out.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::store::{self, Followup};
use super::SurveyError;
use crate::audit::{self, Actor, AuditEntry, Pseudonymizer};
use crate::auth::{Principal, Role};
use crate::storage::{write_transaction, DbConnection, StorageError};

/// Who may list follow-ups.
pub const READERS: [Role; 3] = [Role::Admin, Role::Service, Role::Compliance];
/// Who may close one: support acts on it, and the compliance officer who follows
/// detractors up from the console.
pub const CLOSERS: [Role; 3] = [Role::Admin, Role::Service, Role::Compliance];
/// The longest note of what was done.
pub const RESOLUTION_MAX_CHARS: usize = 2_000;

/// A close asked for: the follow-up of a survey (id or key), by whom, with what was done.
pub struct Closing<'a> {
    pub survey: &'a str,
    pub followup_id: &'a str,
    pub resolution: Option<&'a str>,
    pub by: &'a Principal,
    pub now: DateTime<Utc>,
}

/// Closes an open follow-up and records it, in one transaction. A follow-up of another
/// survey is not found; one already closed is a conflict, however many closes race.
pub fn close(
    conn: &mut DbConnection,
    pseudonyms: &Pseudonymizer,
    closing: &Closing<'_>,
) -> Result<Followup, SurveyError> {
    let actor = Actor::from(closing.by);
    let closed_by = format!(
        "{}:{}",
        closing.by.role.as_str(),
        closing.by.sub.clone().unwrap_or_default()
    );
    let now = closing.now;
    write_transaction(conn, |conn| {
        let survey = store::find(conn, closing.survey)?;
        let followup = store::find_followup(conn, closing.followup_id)?;
        let (Some(survey), Some(followup)) = (survey, followup) else {
            return Err(SurveyError::NotFound("follow-up"));
        };
        if followup.survey_id != survey.id {
            return Err(SurveyError::NotFound("follow-up"));
        }
        // Only the close that finds it open counts, however many race.
        if !store::close_followup(conn, &followup.id, &closed_by, closing.resolution, now)? {
            return Err(SurveyError::conflict(
                "The follow-up is already closed.",
                &[("followup_status", json!("closed"))],
            ));
        }
        audit::record(
            conn,
            pseudonyms,
            AuditEntry {
                actor: &actor,
                action: "survey.followup_closed",
                subject_id: Some(&followup.subject_id),
                payload: json!({"survey_id": survey.id, "followup_id": followup.id}),
                at: now,
            },
        )?;
        store::find_followup(conn, &followup.id)?.ok_or(SurveyError::NotFound("follow-up"))
    })
}

/// Open follow-ups of every survey, oldest first.
pub fn open(conn: &mut DbConnection, limit: i64) -> Result<Vec<Followup>, StorageError> {
    store::open_followups(conn, limit)
}
