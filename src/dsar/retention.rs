//! Enforces `retention.toml`: audit payloads past their time are emptied (digests and the
//! chain stay); sampled decisions, customer events, and survey responses and displays
//! past theirs are deleted.
//!
//! A run works in batches of at most `BATCH_ROWS` rows of each kind, each batch its own
//! short transaction, so that writers (on SQLite, every other writer) wait for one batch,
//! never for the whole backlog. Every batch that changes something records one
//! `retention.run` audit event with its counts, in its own transaction; a run with
//! nothing to do records nothing. The server runs it once at start, then every hour.

use std::sync::Weak;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

use crate::audit::{self, Actor, AuditEntry, Pseudonymizer};
use crate::clock::SharedClock;
use crate::policy::Retention;
use crate::storage::schema::{audit_events, decision_log};
use crate::storage::{write_transaction, ConnectionManager, DbConnection, StorageError};

const EVERY: Duration = Duration::from_secs(3600);
/// The most rows of each kind one batch (one transaction) changes.
pub const BATCH_ROWS: usize = 500;
/// A breath between batches, so that writers waiting for the lock get it.
const PAUSE: Duration = Duration::from_millis(10);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    pub audit_payloads_emptied: usize,
    pub decisions_deleted: usize,
    pub events_deleted: usize,
    pub survey_responses_deleted: usize,
    pub survey_displays_deleted: usize,
    /// Batches that changed something (each one transaction and one audit event).
    pub batches: usize,
}

impl RetentionReport {
    fn changed(&self) -> bool {
        self.audit_payloads_emptied
            + self.decisions_deleted
            + self.events_deleted
            + self.survey_responses_deleted
            + self.survey_displays_deleted
            > 0
    }

    /// Whether a batch may have left rows behind: some kind filled its allowance.
    fn full(&self, rows: usize) -> bool {
        [
            self.audit_payloads_emptied,
            self.decisions_deleted,
            self.events_deleted,
            self.survey_responses_deleted,
            self.survey_displays_deleted,
        ]
        .iter()
        .any(|&n| n >= rows)
    }

    fn add(&mut self, batch: &Self) {
        self.audit_payloads_emptied += batch.audit_payloads_emptied;
        self.decisions_deleted += batch.decisions_deleted;
        self.events_deleted += batch.events_deleted;
        self.survey_responses_deleted += batch.survey_responses_deleted;
        self.survey_displays_deleted += batch.survey_displays_deleted;
        self.batches += batch.batches;
    }
}

/// What is past its time at `now`: the instants before which each kind goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cutoffs {
    audit_payloads: Option<NaiveDateTime>,
    decisions: NaiveDateTime,
    events: NaiveDateTime,
    survey_responses: NaiveDateTime,
}

impl Cutoffs {
    fn at(retention: &Retention, now: DateTime<Utc>) -> Self {
        let days_ago = |days: u32| (now - TimeDelta::days(i64::from(days))).naive_utc();
        Self {
            audit_payloads: retention.audit_payload_days.map(days_ago),
            decisions: days_ago(retention.decision_log_days),
            events: days_ago(retention.events_days),
            survey_responses: days_ago(retention.survey_responses_days),
        }
    }
}

/// Applies the retention periods at `now`, in batches of `BATCH_ROWS`.
pub fn run(
    conn: &mut DbConnection,
    retention: &Retention,
    pseudonyms: &Pseudonymizer,
    now: DateTime<Utc>,
) -> Result<RetentionReport, StorageError> {
    run_in_batches(conn, retention, pseudonyms, now, BATCH_ROWS)
}

/// Applies the retention periods at `now`, at most `rows` rows of each kind per batch.
pub fn run_in_batches(
    conn: &mut DbConnection,
    retention: &Retention,
    pseudonyms: &Pseudonymizer,
    now: DateTime<Utc>,
    rows: usize,
) -> Result<RetentionReport, StorageError> {
    let rows = rows.max(1);
    let cutoffs = Cutoffs::at(retention, now);
    let mut total = RetentionReport::default();
    // Emptied payloads stay in the table: the next batch starts after the last one seen.
    let mut audit_after = 0;
    loop {
        let batch = write_transaction(conn, |conn| {
            let batch = one_batch(conn, &cutoffs, rows, &mut audit_after)?;
            if batch.changed() {
                record(conn, pseudonyms, retention, &batch, total.batches + 1, now)?;
            }
            Ok::<_, StorageError>(batch)
        })?;
        if !batch.changed() {
            return Ok(total);
        }
        total.add(&RetentionReport {
            batches: 1,
            ..batch
        });
        if !batch.full(rows) {
            return Ok(total);
        }
        std::thread::sleep(PAUSE);
    }
}

fn one_batch(
    conn: &mut DbConnection,
    cutoffs: &Cutoffs,
    rows: usize,
    audit_after: &mut i64,
) -> Result<RetentionReport, StorageError> {
    let limit = i64::try_from(rows).unwrap_or(i64::MAX);
    let mut report = RetentionReport::default();
    if let Some(before) = cutoffs.audit_payloads {
        let seqs: Vec<i64> = audit_events::table
            .filter(audit_events::seq.gt(*audit_after))
            .filter(audit_events::occurred_at.lt(before))
            .filter(audit_events::payload.ne(""))
            .order(audit_events::seq.asc())
            .limit(limit)
            .select(audit_events::seq)
            .load(conn)?;
        if let Some(&last) = seqs.last() {
            *audit_after = last;
            report.audit_payloads_emptied =
                diesel::update(audit_events::table.filter(audit_events::seq.eq_any(&seqs)))
                    .set(audit_events::payload.eq(""))
                    .execute(conn)?;
        }
    }
    let ids: Vec<i64> = decision_log::table
        .filter(decision_log::decided_at.lt(cutoffs.decisions))
        .order(decision_log::id.asc())
        .limit(limit)
        .select(decision_log::id)
        .load(conn)?;
    if !ids.is_empty() {
        report.decisions_deleted =
            diesel::delete(decision_log::table.filter(decision_log::id.eq_any(&ids)))
                .execute(conn)?;
    }
    report.events_deleted =
        crate::surveys::events::delete_received_before(conn, cutoffs.events, limit)?;
    (
        report.survey_responses_deleted,
        report.survey_displays_deleted,
    ) = crate::surveys::store::delete_older_than(conn, cutoffs.survey_responses, limit)?;
    Ok(report)
}

fn record(
    conn: &mut DbConnection,
    pseudonyms: &Pseudonymizer,
    retention: &Retention,
    batch: &RetentionReport,
    number: usize,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    audit::record(
        conn,
        pseudonyms,
        AuditEntry {
            actor: &Actor::operator(),
            action: "retention.run",
            subject_id: None,
            payload: json!({
                "batch": number,
                "audit_payloads_emptied": batch.audit_payloads_emptied,
                "decisions_deleted": batch.decisions_deleted,
                "events_deleted": batch.events_deleted,
                "survey_responses_deleted": batch.survey_responses_deleted,
                "survey_displays_deleted": batch.survey_displays_deleted,
                "audit_payload_days": retention.audit_payload_days,
                "decision_log_days": retention.decision_log_days,
                "events_days": retention.events_days,
                "survey_responses_days": retention.survey_responses_days,
            }),
            at: now,
        },
    )
}

/// Runs retention once at once, then every hour, while `alive` can be upgraded (the app
/// runs).
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
            if alive.strong_count() == 0 {
                return;
            }
            match manager.establish() {
                Ok(mut conn) => match run(&mut conn, &retention, &pseudonyms, clock.now()) {
                    Ok(report) => tracing::info!(
                        batches = report.batches,
                        emptied = report.audit_payloads_emptied,
                        deleted = report.decisions_deleted
                            + report.events_deleted
                            + report.survey_responses_deleted
                            + report.survey_displays_deleted,
                        "retention ran"
                    ),
                    Err(err) => tracing::warn!(error = %err, "retention failed; next hour again"),
                },
                Err(err) => {
                    tracing::warn!(error = %err, "retention cannot connect; next hour again")
                }
            }
            std::thread::sleep(EVERY);
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn cutoffs_count_days_back_from_now() {
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
        let retention = Retention {
            audit_payload_days: Some(10),
            decision_log_days: 30,
            events_days: 365,
            events_per_subject: 1000,
            survey_responses_days: 730,
        };
        let cutoffs = Cutoffs::at(&retention, now);
        let day = |y, m, d| Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap().naive_utc();
        assert_eq!(cutoffs.audit_payloads, Some(day(2026, 11, 13)));
        assert_eq!(cutoffs.decisions, day(2026, 10, 24));
        assert_eq!(cutoffs.events, day(2025, 11, 23));
        assert_eq!(cutoffs.survey_responses, day(2024, 11, 23));
        let kept = Retention {
            audit_payload_days: None,
            ..retention
        };
        assert_eq!(Cutoffs::at(&kept, now).audit_payloads, None);
    }

    #[test]
    fn a_batch_that_filled_any_allowance_is_followed_by_another() {
        let empty = RetentionReport::default();
        assert!(!empty.changed());
        assert!(!empty.full(500));
        let some = RetentionReport {
            decisions_deleted: 499,
            events_deleted: 3,
            ..empty
        };
        assert!(some.changed());
        assert!(!some.full(500));
        let full = RetentionReport {
            survey_displays_deleted: 500,
            ..empty
        };
        assert!(full.full(500));
        let mut total = some;
        total.add(&RetentionReport { batches: 1, ..full });
        assert_eq!(
            (
                total.decisions_deleted,
                total.survey_displays_deleted,
                total.batches
            ),
            (499, 500, 1)
        );
    }
}
