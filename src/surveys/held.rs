//! What the survey room holds on one subject, for the access bundle.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::api::events::{view as event_view, EventView};
use super::api::responses::{followup_view, response_view, FollowupView, ResponseView};
use super::events;
use super::store;
use crate::storage::{DbConnection, StorageError};

#[derive(Debug, Serialize, ToSchema)]
pub struct DisplayView {
    pub display_id: String,
    pub survey_id: String,
    pub version: i32,
    pub event: Option<String>,
    pub shown_at: DateTime<Utc>,
    pub dismissed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HeldOnSubject {
    /// Customer events, oldest first.
    pub events: Vec<EventView>,
    /// Surveys shown to them.
    pub survey_displays: Vec<DisplayView>,
    /// Their answers.
    pub survey_responses: Vec<ResponseView>,
    /// Follow-ups their answers opened.
    pub survey_followups: Vec<FollowupView>,
}

pub fn load(conn: &mut DbConnection, subject_id: &str) -> Result<HeldOnSubject, StorageError> {
    Ok(HeldOnSubject {
        events: events::of_subject(conn, subject_id)?
            .into_iter()
            .map(event_view)
            .collect(),
        survey_displays: store::subject_displays(conn, subject_id)?
            .into_iter()
            .map(|d| DisplayView {
                display_id: d.id,
                survey_id: d.survey_id,
                version: d.version,
                event: d.event,
                shown_at: d.shown_at.and_utc(),
                dismissed_at: d.dismissed_at.map(|t| t.and_utc()),
            })
            .collect(),
        survey_responses: store::subject_responses(conn, subject_id)?
            .into_iter()
            .map(response_view)
            .collect(),
        survey_followups: store::subject_followups(conn, subject_id)?
            .into_iter()
            .map(followup_view)
            .collect(),
    })
}
