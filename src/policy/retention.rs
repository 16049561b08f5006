//! `retention.toml`: how long each kind of data is kept.

use serde::Deserialize;
use toml::Spanned;

use super::load::{Report, Source};

pub const RETENTION_FILE: &str = "retention.toml";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Audit payloads are emptied after this many days (`None`: kept).
    pub audit_payload_days: Option<u32>,
    /// Sampled decisions are deleted after this many days.
    pub decision_log_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            audit_payload_days: None,
            decision_log_days: 30,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RetentionFile {
    audit_payload_days: Option<Spanned<i64>>,
    decision_log_days: Option<Spanned<i64>>,
}

pub(super) fn check(source: &Source, file: RetentionFile, report: &mut Report) -> Retention {
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
        decision_log_days: days(&file.decision_log_days, "decision_log_days").unwrap_or(30),
    }
}
