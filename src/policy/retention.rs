//! `retention.toml`: how long each kind of data is kept.

use serde::Deserialize;
use toml::Spanned;

use super::diagnostics::{Report, Source};

pub const RETENTION_FILE: &str = "retention.toml";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Audit payloads are emptied after this many days (`None`: kept).
    pub audit_payload_days: Option<u32>,
    /// Sampled decisions are deleted after this many days.
    pub decision_log_days: u32,
    /// Customer events are deleted this many days after they arrived.
    pub events_days: u32,
    /// Each subject keeps at most this many events; the oldest go first.
    pub events_per_subject: u32,
    /// Survey responses (with their answers and follow-ups) and displays are deleted
    /// this many days after they last changed.
    pub survey_responses_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            audit_payload_days: None,
            decision_log_days: 30,
            events_days: 365,
            events_per_subject: 1000,
            survey_responses_days: 730,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RetentionFile {
    audit_payload_days: Option<Spanned<i64>>,
    decision_log_days: Option<Spanned<i64>>,
    events_days: Option<Spanned<i64>>,
    events_per_subject: Option<Spanned<i64>>,
    survey_responses_days: Option<Spanned<i64>>,
}

pub(super) fn check(source: &Source, file: RetentionFile, report: &mut Report) -> Retention {
    let defaults = Retention::default();
    let events_per_subject = file.events_per_subject.as_ref().and_then(|value| {
        let count = u32::try_from(*value.get_ref())
            .ok()
            .filter(|n| (1..=100_000).contains(n));
        if count.is_none() {
            report.at(
                source,
                value,
                "events_per_subject",
                "a whole number from 1 to 100000",
            );
        }
        count
    });
    let mut days = |value: &Option<Spanned<i64>>, field: &str| -> Option<u32> {
        let value = value.as_ref()?;
        let days = u32::try_from(*value.get_ref())
            .ok()
            .filter(|d| (1..=36_500).contains(d));
        if days.is_none() {
            report.at(
                source,
                value,
                field,
                "a whole number of days from 1 to 36500",
            );
        }
        days
    };
    Retention {
        audit_payload_days: days(&file.audit_payload_days, "audit_payload_days"),
        decision_log_days: days(&file.decision_log_days, "decision_log_days")
            .unwrap_or(defaults.decision_log_days),
        events_days: days(&file.events_days, "events_days").unwrap_or(defaults.events_days),
        events_per_subject: events_per_subject.unwrap_or(defaults.events_per_subject),
        survey_responses_days: days(&file.survey_responses_days, "survey_responses_days")
            .unwrap_or(defaults.survey_responses_days),
    }
}
