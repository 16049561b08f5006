//! An optional, sampled log of decisions. The hot path only offers an entry to a bounded
//! queue (dropping it when full); a thread writes batches. Subjects are recorded under
//! the audit log's keyed pseudonyms, never as ids. Rows past `decision_log_days` are
//! deleted by the retention job (`dsar::retention`), like every other kind of data.

use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use prometheus::{IntCounter, Registry};

use super::rules::Decision;
use crate::storage::schema::decision_log;
use crate::storage::{write_transaction, ConnectionManager, DbConnection, StorageError};

const QUEUE: usize = 10_000;
const FLUSH_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = decision_log)]
pub struct LoggedDecision {
    pub decided_at: NaiveDateTime,
    pub subject_pseudonym: String,
    pub purpose: String,
    pub channel: Option<String>,
    pub decision: String,
    pub reason: String,
    pub basis: String,
    pub jurisdiction: String,
}

pub struct DecisionLog {
    sender: SyncSender<LoggedDecision>,
    sample: f64,
    dropped: IntCounter,
}

impl DecisionLog {
    /// Starts the writer thread; `None` when sampling is off.
    /// `sample`: the share of decisions logged, 0.0 (off) to 1.0 (all).
    pub fn start(
        sample: f64,
        manager: ConnectionManager,
        registry: &Registry,
    ) -> Result<Option<Arc<Self>>, anyhow::Error> {
        if sample <= 0.0 {
            return Ok(None);
        }
        let dropped = IntCounter::new(
            "decision_log_dropped_total",
            "Sampled decisions dropped because the log queue was full",
        )?;
        registry.register(Box::new(dropped.clone()))?;
        let (sender, receiver) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("consentry-decision-log".into())
            .spawn(move || write_loop(receiver, manager))?;
        Ok(Some(Arc::new(Self {
            sender,
            sample: sample.min(1.0),
            dropped,
        })))
    }

    /// Whether this decision is in the sample (cheap: one random draw).
    pub fn sampled(&self) -> bool {
        self.sample >= 1.0 || fastrand_unit() < self.sample
    }

    pub fn offer(&self, entry: LoggedDecision) {
        if let Err(TrySendError::Full(_)) = self.sender.try_send(entry) {
            self.dropped.inc();
        }
    }
}

/// A decision as a log row.
pub fn entry(
    pseudonym: String,
    purpose: &str,
    channel: Option<&str>,
    decision: &Decision,
    at: DateTime<Utc>,
) -> LoggedDecision {
    LoggedDecision {
        decided_at: at.naive_utc(),
        subject_pseudonym: pseudonym,
        purpose: purpose.to_owned(),
        channel: channel.map(str::to_owned),
        decision: if decision.allowed { "allow" } else { "deny" }.to_owned(),
        reason: decision.reason.as_str().to_owned(),
        basis: decision.basis.as_str().to_owned(),
        jurisdiction: decision.jurisdiction.clone(),
    }
}

/// A uniform number in [0, 1) from a thread-local xorshift: sampling needs speed, not
/// secrecy.
fn fastrand_unit() -> f64 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1) | 1
        );
    }
    STATE.with(|state| {
        let mut x = state.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    })
}

fn write_loop(receiver: Receiver<LoggedDecision>, manager: ConnectionManager) {
    let mut conn: Option<DbConnection> = None;
    let mut batch = Vec::new();
    loop {
        match receiver.recv_timeout(FLUSH_EVERY) {
            Ok(entry) => {
                batch.push(entry);
                batch.extend(receiver.try_iter().take(999));
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if batch.is_empty() {
            continue;
        }
        if conn.is_none() {
            conn = manager.establish().ok();
        }
        let Some(c) = conn.as_mut() else { continue };
        match flush(c, &batch) {
            Ok(()) => batch.clear(),
            Err(err) => {
                tracing::warn!(error = %err, "decision log write failed; retrying");
                conn = None;
                // Bounded: a database down for long loses samples, never memory.
                batch.truncate(QUEUE);
            }
        }
    }
}

fn flush(conn: &mut DbConnection, batch: &[LoggedDecision]) -> Result<(), StorageError> {
    // Row by row (batch inserts are not shared by both backends), in one transaction.
    write_transaction(conn, |conn| {
        for row in batch {
            diesel::insert_into(decision_log::table)
                .values(row)
                .execute(conn)?;
        }
        Ok(())
    })
}
