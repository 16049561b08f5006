//! The outbox: every change that downstream systems hear of is written here by
//! `audit::record`, in the transaction that makes the change, so that a change commits
//! with its message or not at all. The `delivery` room reads it: webhooks, NATS.

pub mod rules;

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use diesel::prelude::*;
use serde_json::Value;

use crate::storage::schema::outbox_messages;
use crate::storage::{DbConnection, StorageError};

pub use rules::{is_event_type, message_for, Message, EVENT_TYPES};

/// A message as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = outbox_messages)]
pub struct StoredMessage {
    pub seq: i64,
    pub id: String,
    pub event_type: String,
    pub subject_id: Option<String>,
    pub purpose: Option<String>,
    pub payload: String,
    pub occurred_at: NaiveDateTime,
}

impl StoredMessage {
    pub fn occurred_at(&self) -> DateTime<Utc> {
        self.occurred_at.and_utc()
    }

    /// The change's fields, as written.
    pub fn data(&self) -> Value {
        serde_json::from_str(&self.payload).unwrap_or(Value::Null)
    }
}

/// A change as the outbox hears of it: its action, its subject (raw id and keyed
/// pseudonym), its payload and when it happened.
pub type Change = (String, Option<(String, String)>, Value, DateTime<Utc>);

/// Writes the messages audited changes leave, for those that leave one, in order. Call
/// inside the changes' transaction (`audit::record`'s append does).
pub fn enqueue_all(conn: &mut DbConnection, changes: &[Change]) -> Result<(), StorageError> {
    let rows: Vec<_> = changes
        .iter()
        .filter_map(|(action, subject, payload, at)| {
            let message = message_for(action, payload)?;
            Some((
                outbox_messages::id.eq(format!("msg_{}", uuid::Uuid::new_v4().simple())),
                outbox_messages::event_type.eq(message.event_type),
                outbox_messages::subject_id.eq(subject.as_ref().map(|(id, _)| id.clone())),
                outbox_messages::subject_pseudonym.eq(subject.as_ref().map(|(_, p)| p.clone())),
                outbox_messages::purpose.eq(message.purpose),
                outbox_messages::payload.eq(message.data.to_string()),
                outbox_messages::occurred_at.eq(at.trunc_subsecs(6).naive_utc()),
            ))
        })
        .collect();
    for chunk in rows.chunks(500) {
        crate::insert_rows!(conn, outbox_messages::table, chunk)?;
    }
    Ok(())
}

/// The oldest messages whose `flag` is still false. On PostgreSQL the rows are locked,
/// skipping those another instance holds: call inside a transaction. (A macro: the
/// selection is typed by backend, so each arm builds its own.)
macro_rules! take_waiting {
    ($conn:expr, $flag:expr, $limit:expr) => {{
        macro_rules! waiting {
            () => {
                outbox_messages::table
                    .filter($flag.eq(false))
                    .order(outbox_messages::seq)
                    .limit($limit)
                    .select(StoredMessage::as_select())
            };
        }
        Ok(match $conn {
            DbConnection::Postgres(c) => waiting!().for_update().skip_locked().load(c)?,
            DbConnection::Sqlite(c) => waiting!().load(c)?,
        })
    }};
}

/// Messages not yet copied into deliveries, oldest first, locked (see `take_waiting`).
pub fn take_unfanned(
    conn: &mut DbConnection,
    limit: i64,
) -> Result<Vec<StoredMessage>, StorageError> {
    take_waiting!(conn, outbox_messages::fanned_out, limit)
}

/// Whether any message waits to be copied into deliveries: a read, so that an idle
/// loop never takes the write lock.
pub fn has_unfanned(conn: &mut DbConnection) -> Result<bool, StorageError> {
    Ok(diesel::select(diesel::dsl::exists(
        outbox_messages::table.filter(outbox_messages::fanned_out.eq(false)),
    ))
    .get_result(conn)?)
}

/// Marks messages as copied into their deliveries; without NATS, as published too (no
/// one publishes them).
pub fn mark_fanned_out(
    conn: &mut DbConnection,
    seqs: &[i64],
    published: bool,
) -> Result<(), StorageError> {
    let rows = outbox_messages::table.filter(outbox_messages::seq.eq_any(seqs));
    if published {
        diesel::update(rows)
            .set((
                outbox_messages::fanned_out.eq(true),
                outbox_messages::published.eq(true),
            ))
            .execute(conn)?;
    } else {
        diesel::update(rows)
            .set(outbox_messages::fanned_out.eq(true))
            .execute(conn)?;
    }
    Ok(())
}

/// Messages not yet acknowledged by JetStream, oldest first, locked like `take_unfanned`.
pub fn take_unpublished(
    conn: &mut DbConnection,
    limit: i64,
) -> Result<Vec<StoredMessage>, StorageError> {
    take_waiting!(conn, outbox_messages::published, limit)
}

pub fn mark_published(conn: &mut DbConnection, seqs: &[i64]) -> Result<(), StorageError> {
    if seqs.is_empty() {
        return Ok(());
    }
    diesel::update(outbox_messages::table.filter(outbox_messages::seq.eq_any(seqs)))
        .set(outbox_messages::published.eq(true))
        .execute(conn)?;
    Ok(())
}

/// How many messages wait to be copied into deliveries, and to be published.
pub fn depth(conn: &mut DbConnection) -> Result<(i64, i64), StorageError> {
    let unfanned = outbox_messages::table
        .filter(outbox_messages::fanned_out.eq(false))
        .count()
        .get_result(conn)?;
    let unpublished = outbox_messages::table
        .filter(outbox_messages::published.eq(false))
        .count()
        .get_result(conn)?;
    Ok((unfanned, unpublished))
}

/// Erasure's last step downstream: once every receiver has an erased subject's messages
/// (queued, published, none waiting), their raw id is cleared, leaving the pseudonym.
/// Until then the id stays: the erasure itself must reach the recipients.
pub fn forget_erased(conn: &mut DbConnection) -> Result<usize, StorageError> {
    Ok(diesel::sql_query(
        "UPDATE outbox_messages SET subject_id = NULL
         WHERE subject_id IS NOT NULL AND fanned_out = TRUE AND published = TRUE
           AND subject_pseudonym IN (SELECT pseudonym FROM erasures)
           AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d
                           WHERE d.message_seq = outbox_messages.seq AND d.status = 'pending')",
    )
    .execute(conn)?)
}

/// Messages since `from`, oldest first (replays).
pub fn since(
    conn: &mut DbConnection,
    from: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<StoredMessage>, StorageError> {
    Ok(outbox_messages::table
        .filter(outbox_messages::occurred_at.ge(from.naive_utc()))
        .order(outbox_messages::seq)
        .limit(limit)
        .select(StoredMessage::as_select())
        .load(conn)?)
}
