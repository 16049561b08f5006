//! Events wait in their transaction and join the chain just before it commits: every
//! transaction then takes the chain's lock last, after its row locks, and holds it only
//! for the append and the commit. So transactions (and batches of writes, each one
//! transaction) never wait on each other through the chain, and the chain stays one
//! gap-free sequence in commit order. A transaction runs on one thread, so what waits is
//! kept per thread, each item with the depth (savepoint) it was made at: a savepoint
//! rolled back takes its items with it.

use std::cell::RefCell;
use std::collections::HashSet;

use diesel::prelude::*;
use serde_json::Value;

use super::chain::ChainedEvent;
use super::{chain_head, lock_chain, mentions, NewAuditEvent};
use crate::storage::schema::audit_events;
use crate::storage::{DbConnection, StorageError, TransactionHook};

/// An event ready but for its place in the chain: everything `link` derives from the
/// change, the subject's raw id beside its pseudonym, and what the outbox needs.
#[derive(Debug)]
pub(super) struct Waiting {
    /// No `seq`, `prev_hash` or `hash` yet.
    pub event: ChainedEvent,
    pub subject_id: Option<String>,
    /// The payload as the outbox sends it (the raw id kept, even when erased).
    pub payload: Value,
}

#[derive(Debug)]
pub(super) enum Deferred {
    Event(Box<Waiting>),
    /// Empties the payloads and raw ids of every event about an erased subject (this
    /// transaction's own included), under the chain's lock: an event about them that
    /// another transaction appends first is seen, and one appended later finds the
    /// tombstone.
    Scrub {
        pseudonym: String,
    },
}

thread_local! {
    static WAITING: RefCell<Vec<(u32, Deferred)>> = const { RefCell::new(Vec::new()) };
}

/// Appends what waits to the chain before each outermost commit.
pub(super) struct AppendAtCommit;

pub(super) static APPEND_AT_COMMIT: AppendAtCommit = AppendAtCommit;

impl TransactionHook for AppendAtCommit {
    fn before_commit(&self, conn: &mut DbConnection) -> Result<(), StorageError> {
        let waiting = WAITING.with_borrow_mut(std::mem::take);
        if waiting.is_empty() {
            return Ok(());
        }
        append(conn, waiting.into_iter().map(|(_, item)| item).collect())
    }

    fn ended(&self, depth: u32, committed: bool) {
        WAITING.with_borrow_mut(|waiting| {
            if committed && depth > 1 {
                // A savepoint released: its items are its parent's now.
                for (at, _) in waiting.iter_mut().filter(|(at, _)| *at >= depth) {
                    *at = depth - 1;
                }
            } else {
                waiting.retain(|(at, _)| *at < depth);
            }
        });
    }
}

/// Keeps `item` for the commit of the transaction open on `conn`.
pub(super) fn defer(conn: &mut DbConnection, item: Deferred) -> Result<(), StorageError> {
    let depth = crate::storage::transaction_depth(conn)?;
    if depth == 0 {
        return Err(StorageError::Config(
            "an audit record waits for a transaction, and none is open".into(),
        ));
    }
    crate::storage::install_transaction_hook(&APPEND_AT_COMMIT);
    WAITING.with_borrow_mut(|waiting| waiting.push((depth, item)));
    Ok(())
}

/// Rows per insert: well under both backends' limits on bound parameters.
const ROWS_PER_INSERT: usize = 500;

/// Links the items' events after the chain's head, in order, and writes them, their
/// outbox messages and then the scrubs.
fn append(conn: &mut DbConnection, items: Vec<Deferred>) -> Result<(), StorageError> {
    lock_chain(conn)?;
    let erased = erased_among(conn, &items)?;
    let (mut seq, mut prev_hash) = chain_head(conn)?;
    let mut rows = Vec::new();
    let mut messages: Vec<crate::outbox::Change> = Vec::new();
    let mut scrubs = Vec::new();
    for item in items {
        let waiting = match item {
            Deferred::Event(waiting) => waiting,
            Deferred::Scrub { pseudonym } => {
                scrubs.push(pseudonym);
                continue;
            }
        };
        seq += 1;
        let waiting = *waiting;
        let mut event = waiting.event;
        event.seq = seq;
        event.prev_hash = prev_hash;
        event.hash = event.expected_hash();
        prev_hash = event.hash.clone();
        // Erasure empties the raw ids of the events it finds; for a subject already
        // erased it has run, so an event about them keeps no raw id from the start.
        let is_erased = event
            .subject_pseudonym
            .as_ref()
            .is_some_and(|p| erased.contains(p));
        let mut subject_id = waiting.subject_id.clone();
        if is_erased {
            if let Some(id) = subject_id.take() {
                if mentions(&event.payload, &id) {
                    event.payload = String::new();
                }
            }
        }
        messages.push((
            event.action.clone(),
            waiting.subject_id.zip(event.subject_pseudonym.clone()),
            waiting.payload,
            event.occurred_at,
        ));
        rows.push(NewAuditEvent::of(event, subject_id));
    }
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        crate::insert_rows!(conn, audit_events::table, chunk)?;
    }
    crate::outbox::enqueue_all(conn, &messages)?;
    for pseudonym in scrubs {
        diesel::update(audit_events::table.filter(audit_events::subject_pseudonym.eq(&pseudonym)))
            .set((
                audit_events::payload.eq(""),
                audit_events::subject_id.eq(None::<String>),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// The pseudonyms among the items' subjects that have a tombstone.
fn erased_among(
    conn: &mut DbConnection,
    items: &[Deferred],
) -> Result<HashSet<String>, StorageError> {
    let pseudonyms = items
        .iter()
        .filter_map(|item| match item {
            Deferred::Event(w) => w.event.subject_pseudonym.as_deref(),
            Deferred::Scrub { .. } => None,
        })
        .collect();
    super::tombstones::erased_among(conn, pseudonyms)
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    use crate::audit::{record, verify, Actor, AuditEntry, Pseudonymizer};
    use crate::auth::KeyRing;
    use crate::storage::schema::{audit_events, outbox_messages};
    use crate::storage::{write_transaction, Database, DatabaseUrl, DbConnection, StorageError};
    use diesel::prelude::*;

    fn entry<'a>(actor: &'a Actor, subject: &'a str) -> AuditEntry<'a> {
        AuditEntry {
            actor,
            action: "consent.granted",
            subject_id: Some(subject),
            payload: json!({"purpose": "analytics"}),
            at: Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap(),
        }
    }

    fn subjects_in_chain(conn: &mut DbConnection) -> Vec<(i64, Option<String>)> {
        audit_events::table
            .order(audit_events::seq)
            .select((audit_events::seq, audit_events::subject_id))
            .load(conn)
            .unwrap()
    }

    /// Events wait for their transaction's commit, leave with a savepoint rolled back or
    /// a transaction that fails, and never reach the next transaction on the thread.
    #[test]
    fn events_join_the_chain_at_commit_and_only_those_committed() {
        let dir = tempfile::tempdir().unwrap();
        let url = DatabaseUrl::Sqlite(dir.path().join("t.db").display().to_string());
        let db = Database::open(&url, &Default::default()).unwrap();
        let pseudonyms = Pseudonymizer::load_or_generate(dir.path(), Some("secret")).unwrap();
        let actor = Actor::operator();
        let mut conn = db.manager().establish().unwrap();
        let conn = &mut conn;

        write_transaction(conn, |conn| {
            record(conn, &pseudonyms, entry(&actor, "kept-1"))?;
            // Not yet in the table: it joins the chain at the commit.
            assert_eq!(subjects_in_chain(conn), []);
            let inner: Result<(), StorageError> = write_transaction(conn, |conn| {
                record(conn, &pseudonyms, entry(&actor, "rolled-back"))?;
                Err(StorageError::Cancelled)
            });
            assert!(inner.is_err());
            write_transaction(conn, |conn| {
                record(conn, &pseudonyms, entry(&actor, "kept-2"))
            })?;
            Ok::<_, StorageError>(())
        })
        .unwrap();
        let failed: Result<(), StorageError> = write_transaction(conn, |conn| {
            record(conn, &pseudonyms, entry(&actor, "failed"))?;
            Err(StorageError::Cancelled)
        });
        assert!(failed.is_err());
        // Outside a transaction, an event is a transaction of its own.
        record(conn, &pseudonyms, entry(&actor, "alone")).unwrap();

        assert_eq!(
            subjects_in_chain(conn),
            [
                (1, Some("kept-1".to_owned())),
                (2, Some("kept-2".to_owned())),
                (3, Some("alone".to_owned()))
            ]
        );
        let keys = KeyRing::load_or_generate(dir.path(), None, Utc::now()).unwrap();
        assert!(verify(conn, &keys, None, None).unwrap().ok());
        // Each event's outbox message, in the chain's order.
        let messages: Vec<Option<String>> = outbox_messages::table
            .order(outbox_messages::seq)
            .select(outbox_messages::subject_id)
            .load(conn)
            .unwrap();
        assert_eq!(
            messages,
            [Some("kept-1"), Some("kept-2"), Some("alone")].map(|s| s.map(str::to_owned))
        );
    }
}
