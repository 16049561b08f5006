//! An optional, sampled log of decisions. The hot path only offers an entry to a bounded
//! queue (dropping it when full); a thread writes batches. Subjects are recorded under
//! the audit log's keyed pseudonyms, never as ids. Rows past `decision_log_days` are
//! deleted by the retention job (`dsar::retention`), like every other kind of data.

use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
            "Sampled decisions dropped because the log queue was full or the database down",
        )?;
        registry.register(Box::new(dropped.clone()))?;
        let (sender, receiver) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("consentry-decision-log".into())
            .spawn({
                let dropped = dropped.clone();
                move || write_loop(receiver, manager, dropped)
            })?;
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

/// Entries waiting to be written, at most `QUEUE`: while the database is down the
/// oldest samples make way for new ones, so memory stays bounded.
struct Pending {
    entries: std::collections::VecDeque<LoggedDecision>,
    cap: usize,
}

impl Pending {
    fn new(cap: usize) -> Self {
        Self {
            entries: std::collections::VecDeque::new(),
            cap,
        }
    }

    /// Adds an entry; answers whether an older one was dropped to make room.
    fn push(&mut self, entry: LoggedDecision) -> bool {
        let full = self.entries.len() >= self.cap;
        if full {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
        full
    }
}

/// When to try the database again after a failure: doubling pauses from `FIRST_RETRY`
/// up to `LAST_RETRY`, so a database that is down is not hammered with connections.
#[derive(Debug)]
struct Retry {
    not_before: Option<Instant>,
    pause: Duration,
}

const FIRST_RETRY: Duration = Duration::from_millis(250);
const LAST_RETRY: Duration = Duration::from_secs(10);

impl Retry {
    fn new() -> Self {
        Self {
            not_before: None,
            pause: FIRST_RETRY,
        }
    }

    fn may_try(&self, now: Instant) -> bool {
        self.not_before.is_none_or(|t| now >= t)
    }

    fn failed(&mut self, now: Instant) {
        self.not_before = Some(now + self.pause);
        self.pause = (self.pause * 2).min(LAST_RETRY);
    }

    fn succeeded(&mut self) {
        *self = Self::new();
    }
}

fn write_loop(receiver: Receiver<LoggedDecision>, manager: ConnectionManager, dropped: IntCounter) {
    let mut conn: Option<DbConnection> = None;
    let mut pending = Pending::new(QUEUE);
    let mut retry = Retry::new();
    loop {
        match receiver.recv_timeout(FLUSH_EVERY) {
            Ok(entry) => {
                for entry in std::iter::once(entry).chain(receiver.try_iter().take(999)) {
                    if pending.push(entry) {
                        dropped.inc();
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if pending.entries.is_empty() || !retry.may_try(Instant::now()) {
            continue;
        }
        if conn.is_none() {
            match manager.establish() {
                Ok(c) => conn = Some(c),
                Err(err) => {
                    tracing::warn!(error = %err, "decision log cannot connect; will retry");
                    retry.failed(Instant::now());
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let batch = pending.entries.make_contiguous();
        match flush(c, batch) {
            Ok(()) => {
                pending.entries.clear();
                retry.succeeded();
            }
            Err(err) => {
                tracing::warn!(error = %err, "decision log write failed; will retry");
                conn = None;
                retry.failed(Instant::now());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize) -> LoggedDecision {
        LoggedDecision {
            decided_at: NaiveDateTime::default(),
            subject_pseudonym: format!("p{n}"),
            purpose: "analytics".into(),
            channel: None,
            decision: "allow".into(),
            reason: "consent_granted".into(),
            basis: "opt_in".into(),
            jurisdiction: "eea".into(),
        }
    }

    #[test]
    fn a_database_down_for_long_keeps_the_newest_samples_within_the_cap() {
        let mut pending = Pending::new(100);
        let dropped = (0..10_000).filter(|n| pending.push(sample(*n))).count();
        assert_eq!(pending.entries.len(), 100);
        assert_eq!(dropped, 9_900);
        assert_eq!(pending.entries[0].subject_pseudonym, "p9900");
    }

    #[test]
    fn failures_pause_longer_each_time_up_to_a_ceiling_and_success_resets() {
        let start = Instant::now();
        let mut retry = Retry::new();
        assert!(retry.may_try(start));
        let mut now = start;
        let mut pauses = Vec::new();
        for _ in 0..8 {
            retry.failed(now);
            assert!(!retry.may_try(now), "no immediate reconnect");
            let next = retry.not_before.unwrap();
            pauses.push(next - now);
            assert!(retry.may_try(next));
            now = next;
        }
        assert_eq!(pauses[0], FIRST_RETRY);
        assert_eq!(pauses[1], FIRST_RETRY * 2);
        assert_eq!(*pauses.last().unwrap(), LAST_RETRY);
        retry.succeeded();
        assert!(retry.may_try(now));
        assert_eq!(retry.pause, FIRST_RETRY);
    }
}
