//! Deliveries: one outbox message to one endpoint. Queued from the outbox, taken in
//! order per endpoint and subject (a subject's next message waits until the one before
//! it is delivered or given up), held under a lease by the instance that took it, and
//! retried by `schedule` until delivered or dead.

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};
use serde::Serialize;

use super::endpoints::{self, Endpoint};
use super::schedule::{self, AfterFailure};
use crate::outbox::{self, StoredMessage};
use crate::policy::Policies;
use crate::storage::schema::{
    outbox_messages, webhook_attempts, webhook_deliveries, webhook_endpoints,
};
use crate::storage::{write_transaction, DbConnection, StorageError};

pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const DEAD: &str = "dead";

/// How long an instance holds the deliveries it took: far longer than an attempt may
/// take, so that only a crashed instance's deliveries are taken over.
pub const LEASE: TimeDelta = TimeDelta::seconds(60);

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhook_deliveries)]
pub struct Delivery {
    pub id: String,
    pub endpoint_id: String,
    pub message_seq: i64,
    pub subject_key: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub lease_until: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub delivered_at: Option<NaiveDateTime>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
}

/// Copies up to `limit` new outbox messages into deliveries for the endpoints they match;
/// answers how many messages it took. Call inside a write transaction (the delivery loop
/// does it in the one that records its attempts), after `outbox::has_unfanned`.
pub fn fan_out(
    conn: &mut DbConnection,
    policies: &Policies,
    now: DateTime<Utc>,
    limit: i64,
    publishing: bool,
) -> Result<usize, StorageError> {
    let messages = outbox::take_unfanned(conn, limit)?;
    if messages.is_empty() {
        return Ok(0);
    }
    let all = endpoints::list(conn)?;
    let mut rows = Vec::new();
    for message in &messages {
        for endpoint in endpoints::targets(&all, policies, message) {
            rows.push(new_delivery(&endpoint.id, message, now));
        }
    }
    insert(conn, &rows)?;
    let seqs: Vec<i64> = messages.iter().map(|m| m.seq).collect();
    outbox::mark_fanned_out(conn, &seqs, !publishing)?;
    Ok(messages.len())
}

type NewDelivery = (String, String, i64, String, NaiveDateTime);

fn new_delivery(endpoint: &str, message: &StoredMessage, now: DateTime<Utc>) -> NewDelivery {
    (
        format!("dlv_{}", uuid::Uuid::new_v4().simple()),
        endpoint.to_owned(),
        message.seq,
        message.subject_id.clone().unwrap_or_default(),
        now.naive_utc(),
    )
}

fn insert(conn: &mut DbConnection, rows: &[NewDelivery]) -> Result<(), StorageError> {
    // One statement a row: batch inserts are not offered over both backends at once.
    for (id, endpoint, seq, subject, at) in rows {
        diesel::insert_into(webhook_deliveries::table)
            .values((
                webhook_deliveries::id.eq(id),
                webhook_deliveries::endpoint_id.eq(endpoint),
                webhook_deliveries::message_seq.eq(seq),
                webhook_deliveries::subject_key.eq(subject),
                webhook_deliveries::status.eq(PENDING),
                webhook_deliveries::next_attempt_at.eq(at),
                webhook_deliveries::created_at.eq(at),
            ))
            .execute(conn)?;
    }
    Ok(())
}

#[derive(QueryableByName)]
struct TakenId {
    #[diesel(sql_type = Text)]
    id: String,
}

/// Takes up to `limit` due deliveries, each the oldest pending one of its endpoint and
/// subject, to enabled endpoints. On PostgreSQL it holds them until `now + LEASE`,
/// skipping rows another instance is taking, so each delivery has one sender. SQLite
/// has one instance, whose loop takes and records in turn: a read, so that the loop
/// needs the write lock once a round, not twice.
pub fn take_due(
    conn: &mut DbConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<(Delivery, StoredMessage, Endpoint)>, StorageError> {
    // SQLite numbers its parameters `?N`; it has one writer, so nothing to skip.
    let (lock, p1, p2, p3) = match conn {
        DbConnection::Postgres(_) => ("FOR UPDATE OF d SKIP LOCKED", "$1", "$2", "$3"),
        DbConnection::Sqlite(_) => ("", "?1", "?2", "?3"),
    };
    let due = format!(
        "SELECT d.id FROM webhook_deliveries d
         JOIN webhook_endpoints e ON e.id = d.endpoint_id
         WHERE d.status = 'pending' AND e.disabled_at IS NULL
           AND d.next_attempt_at <= {p2}
           AND (d.lease_until IS NULL OR d.lease_until < {p2})
           AND NOT EXISTS (
             SELECT 1 FROM webhook_deliveries p
             WHERE p.endpoint_id = d.endpoint_id AND p.subject_key = d.subject_key
               AND p.status = 'pending' AND p.message_seq < d.message_seq)
         ORDER BY d.message_seq LIMIT {p3} {lock}"
    );
    if !any_due(conn, now)? {
        return Ok(Vec::new());
    }
    // Parameters: 1 the lease's end (the update's), 2 now, 3 the limit.
    let query = |sql: String| {
        diesel::sql_query(sql)
            .bind::<Timestamp, _>((now + LEASE).naive_utc())
            .bind::<Timestamp, _>(now.naive_utc())
            .bind::<BigInt, _>(limit)
    };
    let ids: Vec<String> = if let DbConnection::Sqlite(_) = conn {
        query(due).load::<TakenId>(conn)?
    } else {
        let take = format!(
            "UPDATE webhook_deliveries SET lease_until = {p1} WHERE id IN ({due}) RETURNING id"
        );
        write_transaction(conn, |conn| {
            Ok::<_, StorageError>(query(take).load::<TakenId>(conn)?)
        })?
    }
    .into_iter()
    .map(|t| t.id)
    .collect();
    load_taken(conn, &ids)
}

/// The deliveries taken, with their messages and endpoints, oldest message first.
fn load_taken(
    conn: &mut DbConnection,
    ids: &[String],
) -> Result<Vec<(Delivery, StoredMessage, Endpoint)>, StorageError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut taken: Vec<(Delivery, StoredMessage, Endpoint)> = webhook_deliveries::table
        .inner_join(outbox_messages::table)
        .inner_join(webhook_endpoints::table)
        .filter(webhook_deliveries::id.eq_any(ids))
        .select((
            Delivery::as_select(),
            StoredMessage::as_select(),
            Endpoint::as_select(),
        ))
        .load(conn)?;
    taken.sort_by_key(|(d, ..)| d.message_seq);
    Ok(taken)
}

/// Whether any delivery to an enabled endpoint is due and free: a read, so that an idle
/// loop (or one whose only work waits for a disabled endpoint) never takes the write
/// lock.
fn any_due(conn: &mut DbConnection, now: DateTime<Utc>) -> Result<bool, StorageError> {
    let now = now.naive_utc();
    Ok(diesel::select(diesel::dsl::exists(
        webhook_deliveries::table
            .inner_join(webhook_endpoints::table)
            .filter(webhook_endpoints::disabled_at.is_null())
            .filter(webhook_deliveries::status.eq(PENDING))
            .filter(webhook_deliveries::next_attempt_at.le(now))
            .filter(
                webhook_deliveries::lease_until
                    .is_null()
                    .or(webhook_deliveries::lease_until.lt(now)),
            ),
    ))
    .get_result(conn)?)
}

/// How one attempt went.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub delivery_id: String,
    pub endpoint_id: String,
    pub attempted_at: DateTime<Utc>,
    /// The receiver's status, when it answered.
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: i32,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        self.status_code.is_some_and(|s| (200..300).contains(&s))
    }
}

/// What recording an attempt changed, for the caller's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Delivered,
    Retrying,
    Dead,
}

/// Records an attempt: delivered, retried later, or given up; an endpoint that failed
/// `disable_after` times in a row is turned off. Call inside a write transaction (the
/// delivery loop records a whole round's attempts in one).
pub fn record(
    conn: &mut DbConnection,
    delivery: &Delivery,
    outcome: &Outcome,
    retry_window: TimeDelta,
    disable_after: i32,
    jitter: f64,
    on_delivered: impl FnOnce(&mut DbConnection) -> Result<(), StorageError>,
) -> Result<Recorded, StorageError> {
    let attempts = delivery.attempts + 1;
    let at = outcome.attempted_at.naive_utc();
    diesel::insert_into(webhook_attempts::table)
        .values((
            webhook_attempts::id.eq(format!("att_{}", uuid::Uuid::new_v4().simple())),
            webhook_attempts::delivery_id.eq(&delivery.id),
            webhook_attempts::attempted_at.eq(at),
            webhook_attempts::status_code.eq(outcome.status_code.map(i32::from)),
            webhook_attempts::error.eq(&outcome.error),
            webhook_attempts::duration_ms.eq(outcome.duration_ms),
        ))
        .execute(conn)?;
    let target = webhook_deliveries::table.find(&delivery.id);
    let endpoint = webhook_endpoints::table.find(&outcome.endpoint_id);
    let last = (
        webhook_deliveries::attempts.eq(attempts),
        webhook_deliveries::lease_until.eq(None::<NaiveDateTime>),
        webhook_deliveries::last_status.eq(outcome.status_code.map(i32::from)),
        webhook_deliveries::last_error.eq(&outcome.error),
    );
    if outcome.succeeded() {
        diesel::update(target)
            .set((
                last,
                webhook_deliveries::status.eq(DELIVERED),
                webhook_deliveries::delivered_at.eq(Some(at)),
            ))
            .execute(conn)?;
        // Written only when there was a failure to forget.
        diesel::update(endpoint.filter(webhook_endpoints::consecutive_failures.ne(0)))
            .set(webhook_endpoints::consecutive_failures.eq(0))
            .execute(conn)?;
        on_delivered(conn)?;
        return Ok(Recorded::Delivered);
    }
    let recorded = match schedule::after_failure(
        attempts,
        delivery.created_at.and_utc(),
        outcome.attempted_at,
        retry_window,
        jitter,
    ) {
        AfterFailure::RetryAt(next) => {
            diesel::update(target)
                .set((
                    last,
                    webhook_deliveries::next_attempt_at.eq(next.naive_utc()),
                ))
                .execute(conn)?;
            Recorded::Retrying
        }
        AfterFailure::GiveUp => {
            diesel::update(target)
                .set((last, webhook_deliveries::status.eq(DEAD)))
                .execute(conn)?;
            Recorded::Dead
        }
    };
    let failures: i32 = diesel::update(endpoint)
        .set(
            webhook_endpoints::consecutive_failures.eq(webhook_endpoints::consecutive_failures + 1),
        )
        .returning(webhook_endpoints::consecutive_failures)
        .get_result(conn)?;
    if schedule::disables(failures, disable_after) {
        let disabled: Option<NaiveDateTime> = webhook_endpoints::table
            .find(&outcome.endpoint_id)
            .select(webhook_endpoints::disabled_at)
            .first(conn)?;
        if disabled.is_none() {
            endpoints::disable(
                conn,
                &outcome.endpoint_id,
                &format!("{failures} failed attempts in a row"),
                outcome.attempted_at,
            )?;
        }
    }
    Ok(recorded)
}

/// Puts this endpoint's dead deliveries of messages since `from` back in the queue, and
/// queues the messages since `from` it never had (it was off, or did not exist yet)
/// when they match its subscription. Answers how many were queued.
pub fn replay(
    conn: &mut DbConnection,
    policies: &Policies,
    endpoint: &Endpoint,
    from: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<usize, StorageError> {
    write_transaction(conn, |conn| {
        let since = outbox_messages::table
            .filter(outbox_messages::occurred_at.ge(from.naive_utc()))
            .select(outbox_messages::seq);
        let revived = diesel::update(
            webhook_deliveries::table
                .filter(webhook_deliveries::endpoint_id.eq(&endpoint.id))
                .filter(webhook_deliveries::status.eq(DEAD))
                .filter(webhook_deliveries::message_seq.eq_any(since)),
        )
        .set((
            webhook_deliveries::status.eq(PENDING),
            webhook_deliveries::next_attempt_at.eq(now.naive_utc()),
            webhook_deliveries::created_at.eq(now.naive_utc()),
            webhook_deliveries::lease_until.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)?;
        let had: std::collections::HashSet<i64> = webhook_deliveries::table
            .filter(webhook_deliveries::endpoint_id.eq(&endpoint.id))
            .select(webhook_deliveries::message_seq)
            .load::<i64>(conn)?
            .into_iter()
            .collect();
        let subscription = endpoint.subscription(&policies.recipients);
        let missing: Vec<NewDelivery> = outbox::since(conn, from, 100_000)?
            .iter()
            .filter(|m| !had.contains(&m.seq))
            .filter(|m| subscription.matches(policies, &m.event_type, m.purpose.as_deref()))
            .map(|m| new_delivery(&endpoint.id, m, now))
            .collect();
        insert(conn, &missing)?;
        Ok(revived + missing.len())
    })
}

/// Counts of deliveries waiting (pending) and given up (dead), across endpoints.
pub fn depth(conn: &mut DbConnection) -> Result<(i64, i64), StorageError> {
    let count = |conn: &mut DbConnection, status: &str| -> Result<i64, StorageError> {
        Ok(webhook_deliveries::table
            .filter(webhook_deliveries::status.eq(status))
            .count()
            .get_result(conn)?)
    };
    Ok((count(conn, PENDING)?, count(conn, DEAD)?))
}

/// The oldest pending delivery's message time: how far behind delivery is.
pub fn oldest_pending(conn: &mut DbConnection) -> Result<Option<DateTime<Utc>>, StorageError> {
    Ok(webhook_deliveries::table
        .inner_join(outbox_messages::table)
        .filter(webhook_deliveries::status.eq(PENDING))
        .select(diesel::dsl::min(outbox_messages::occurred_at))
        .first::<Option<NaiveDateTime>>(conn)?
        .map(|t| t.and_utc()))
}

/// Removes delivered messages older than `keep`, with their deliveries and attempts, and
/// dead ones past the same age. A message waiting for any endpoint or for NATS stays.
pub fn prune(
    conn: &mut DbConnection,
    keep: TimeDelta,
    now: DateTime<Utc>,
) -> Result<usize, StorageError> {
    write_transaction(conn, |conn| {
        let cutoff = (now - keep).naive_utc();
        let old: Vec<i64> = outbox_messages::table
            .filter(outbox_messages::occurred_at.lt(cutoff))
            .filter(outbox_messages::fanned_out.eq(true))
            .filter(outbox_messages::published.eq(true))
            .filter(diesel::dsl::not(diesel::dsl::exists(
                webhook_deliveries::table
                    .filter(webhook_deliveries::message_seq.eq(outbox_messages::seq))
                    .filter(webhook_deliveries::status.eq(PENDING)),
            )))
            .select(outbox_messages::seq)
            .limit(5_000)
            .load(conn)?;
        if old.is_empty() {
            return Ok(0);
        }
        let deliveries: Vec<String> = webhook_deliveries::table
            .filter(webhook_deliveries::message_seq.eq_any(&old))
            .select(webhook_deliveries::id)
            .load(conn)?;
        diesel::delete(
            webhook_attempts::table.filter(webhook_attempts::delivery_id.eq_any(&deliveries)),
        )
        .execute(conn)?;
        diesel::delete(
            webhook_deliveries::table.filter(webhook_deliveries::message_seq.eq_any(&old)),
        )
        .execute(conn)?;
        Ok(
            diesel::delete(outbox_messages::table.filter(outbox_messages::seq.eq_any(&old)))
                .execute(conn)?,
        )
    })
}

/// A delivery as admins see it, with its attempts.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    pub id: String,
    /// The message id (`webhook-id` header).
    pub message_id: String,
    pub event_type: String,
    /// `pending`, `delivered` or `dead`.
    pub status: String,
    pub attempts: i32,
    pub occurred_at: DateTime<Utc>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub attempt_log: Vec<AttemptView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AttemptView {
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i32,
}

/// Delivery id, time, status code, error, duration.
type AttemptRow = (String, NaiveDateTime, Option<i32>, Option<String>, i32);

/// An endpoint's deliveries, newest first, optionally of one status.
pub fn list(
    conn: &mut DbConnection,
    endpoint_id: &str,
    status: Option<&str>,
    limit: i64,
) -> Result<Vec<DeliveryView>, StorageError> {
    let mut query = webhook_deliveries::table
        .inner_join(outbox_messages::table)
        .filter(webhook_deliveries::endpoint_id.eq(endpoint_id))
        .into_boxed();
    if let Some(status) = status {
        query = query.filter(webhook_deliveries::status.eq(status.to_owned()));
    }
    let rows: Vec<(Delivery, StoredMessage)> = query
        .order(webhook_deliveries::message_seq.desc())
        .limit(limit)
        .select((Delivery::as_select(), StoredMessage::as_select()))
        .load(conn)?;
    let ids: Vec<&str> = rows.iter().map(|(d, _)| d.id.as_str()).collect();
    let attempts: Vec<AttemptRow> = webhook_attempts::table
        .filter(webhook_attempts::delivery_id.eq_any(&ids))
        .order(webhook_attempts::attempted_at)
        .select((
            webhook_attempts::delivery_id,
            webhook_attempts::attempted_at,
            webhook_attempts::status_code,
            webhook_attempts::error,
            webhook_attempts::duration_ms,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(d, m)| DeliveryView {
            attempt_log: attempts
                .iter()
                .filter(|a| a.0 == d.id)
                .map(|a| AttemptView {
                    attempted_at: a.1.and_utc(),
                    status_code: a.2,
                    error: a.3.clone(),
                    duration_ms: a.4,
                })
                .collect(),
            message_id: m.id,
            event_type: m.event_type,
            next_attempt_at: (d.status == PENDING).then(|| d.next_attempt_at.and_utc()),
            status: d.status,
            attempts: d.attempts,
            occurred_at: m.occurred_at.and_utc(),
            delivered_at: d.delivered_at.map(|t| t.and_utc()),
            last_status: d.last_status,
            last_error: d.last_error,
            id: d.id,
        })
        .collect())
}
