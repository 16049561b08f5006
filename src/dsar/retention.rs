//! Enforces `retention.toml`: audit payloads past their time are emptied (digests and the
//! chain stay); sampled decisions, customer events, and survey responses and displays
//! past theirs are deleted. Every run is audited.

use std::sync::Weak;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

use crate::audit::{self, Actor, AuditEntry, Pseudonymizer};
use crate::clock::SharedClock;
use crate::policy::Retention;
use crate::storage::schema::{audit_events, decision_log};
use crate::storage::{write_transaction, ConnectionManager, DbConnection, StorageError};

const EVERY: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    pub audit_payloads_emptied: usize,
    pub decisions_deleted: usize,
    pub events_deleted: usize,
    pub survey_responses_deleted: usize,
    pub survey_displays_deleted: usize,
}

pub fn run(
    conn: &mut DbConnection,
    retention: &Retention,
    pseudonyms: &Pseudonymizer,
    now: DateTime<Utc>,
) -> Result<RetentionReport, StorageError> {
    write_transaction(conn, |conn| {
        let mut report = RetentionReport::default();
        if let Some(days) = retention.audit_payload_days {
            let before = (now - TimeDelta::days(i64::from(days))).naive_utc();
            report.audit_payloads_emptied = diesel::update(
                audit_events::table
                    .filter(audit_events::occurred_at.lt(before))
                    .filter(audit_events::payload.ne("")),
            )
            .set(audit_events::payload.eq(""))
            .execute(conn)?;
        }
        let before = (now - TimeDelta::days(i64::from(retention.decision_log_days))).naive_utc();
        report.decisions_deleted =
            diesel::delete(decision_log::table.filter(decision_log::decided_at.lt(before)))
                .execute(conn)?;
        let days_ago = |days: u32| (now - TimeDelta::days(i64::from(days))).naive_utc();
        report.events_deleted =
            crate::surveys::events::delete_received_before(conn, days_ago(retention.events_days))?;
        (
            report.survey_responses_deleted,
            report.survey_displays_deleted,
        ) = crate::surveys::store::delete_older_than(
            conn,
            days_ago(retention.survey_responses_days),
        )?;
        audit::record(
            conn,
            pseudonyms,
            AuditEntry {
                actor: &Actor::operator(),
                action: "retention.run",
                subject_id: None,
                payload: json!({
                    "audit_payloads_emptied": report.audit_payloads_emptied,
                    "decisions_deleted": report.decisions_deleted,
                    "events_deleted": report.events_deleted,
                    "survey_responses_deleted": report.survey_responses_deleted,
                    "survey_displays_deleted": report.survey_displays_deleted,
                    "audit_payload_days": retention.audit_payload_days,
                    "decision_log_days": retention.decision_log_days,
                    "events_days": retention.events_days,
                    "survey_responses_days": retention.survey_responses_days,
                }),
                at: now,
            },
        )?;
        Ok(report)
    })
}

/// Runs retention every hour while `alive` can be upgraded (the app runs).
pub fn spawn<T: Send + Sync + 'static>(
    manager: ConnectionManager,
    retention: Retention,
    pseudonyms: std::sync::Arc<Pseudonymizer>,
    clock: SharedClock,
    alive: Weak<T>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("consentry-retention".into())
        .spawn(move || loop {
            std::thread::sleep(EVERY);
            if alive.strong_count() == 0 {
                return;
            }
            match manager.establish() {
                Ok(mut conn) => match run(&mut conn, &retention, &pseudonyms, clock.now()) {
                    Ok(report) => tracing::info!(
                        emptied = report.audit_payloads_emptied,
                        deleted = report.decisions_deleted,
                        "retention ran"
                    ),
                    Err(err) => tracing::warn!(error = %err, "retention failed; next hour again"),
                },
                Err(err) => {
                    tracing::warn!(error = %err, "retention cannot connect; next hour again")
                }
            }
        })?;
    Ok(())
}
