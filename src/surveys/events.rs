//! Customer events: stored per subject under a cap and a retention period; surveys are
//! triggered by them and downstream services read them as a feed.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::dsl::max;
use diesel::prelude::*;
use serde_json::Value;

use crate::storage::schema::customer_events;
use crate::storage::{DbConnection, StorageError};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = customer_events)]
pub struct Event {
    pub id: i64,
    pub subject_id: String,
    pub name: String,
    pub properties: String,
    pub occurred_at: NaiveDateTime,
    pub received_at: NaiveDateTime,
}

impl Event {
    pub fn properties(&self) -> Value {
        serde_json::from_str(&self.properties).unwrap_or(Value::Null)
    }
}

/// Serializes event inserts on PostgreSQL, so ids become visible in the order they are
/// given out and a reader of the feed never skips one that commits late.
const FEED_ORDER_LOCK: i64 = 0x636f_6e73_6576_7473;

/// Records an event, then drops the subject's oldest beyond `cap` (events the service
/// itself raises, `survey.*`, are kept: support still has to read them). Answers its id.
/// Call inside a transaction.
pub fn record(
    conn: &mut DbConnection,
    subject_id: &str,
    name: &str,
    properties: &Value,
    occurred_at: DateTime<Utc>,
    received_at: DateTime<Utc>,
    cap: u32,
) -> Result<i64, StorageError> {
    let row = NewEvent {
        subject_id,
        name,
        properties: properties.to_string(),
        occurred_at: occurred_at.naive_utc(),
        received_at: received_at.naive_utc(),
    };
    let insert = diesel::insert_into(customer_events::table).values(&row);
    let id = match conn {
        DbConnection::Postgres(c) => {
            diesel::sql_query(format!("SELECT pg_advisory_xact_lock({FEED_ORDER_LOCK})"))
                .execute(c)?;
            insert.returning(customer_events::id).get_result(c)?
        }
        DbConnection::Sqlite(c) => insert.returning(customer_events::id).get_result(c)?,
    };
    let oldest_kept: Option<i64> = customer_events::table
        .filter(customer_events::subject_id.eq(subject_id))
        .filter(customer_events::name.not_like("survey.%"))
        .select(customer_events::id)
        .order(customer_events::id.desc())
        .offset(i64::from(cap.max(1)) - 1)
        .first(conn)
        .optional()?;
    if let Some(oldest_kept) = oldest_kept {
        diesel::delete(
            customer_events::table
                .filter(customer_events::subject_id.eq(subject_id))
                .filter(customer_events::name.not_like("survey.%"))
                .filter(customer_events::id.lt(oldest_kept)),
        )
        .execute(conn)?;
    }
    Ok(id)
}

#[derive(Insertable)]
#[diesel(table_name = customer_events)]
struct NewEvent<'a> {
    subject_id: &'a str,
    name: &'a str,
    properties: String,
    occurred_at: NaiveDateTime,
    received_at: NaiveDateTime,
}

/// The latest occurrence of each of `names` for the subject.
pub fn latest(
    conn: &mut DbConnection,
    subject_id: &str,
    names: &[String],
) -> Result<HashMap<String, DateTime<Utc>>, StorageError> {
    if names.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, Option<NaiveDateTime>)> = customer_events::table
        .filter(customer_events::subject_id.eq(subject_id))
        .filter(customer_events::name.eq_any(names))
        .group_by(customer_events::name)
        .select((customer_events::name, max(customer_events::occurred_at)))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(name, at)| Some((name, at?.and_utc())))
        .collect())
}

#[derive(Debug, Default)]
pub struct Feed {
    pub name: Option<String>,
    pub subject_id: Option<String>,
    pub after: i64,
    pub limit: i64,
}

/// Events in the order they were recorded, after a cursor.
pub fn feed(conn: &mut DbConnection, feed: &Feed) -> Result<Vec<Event>, StorageError> {
    let mut query = customer_events::table
        .filter(customer_events::id.gt(feed.after))
        .select(Event::as_select())
        .order(customer_events::id)
        .limit(feed.limit)
        .into_boxed();
    if let Some(name) = &feed.name {
        query = query.filter(customer_events::name.eq(name.clone()));
    }
    if let Some(subject_id) = &feed.subject_id {
        query = query.filter(customer_events::subject_id.eq(subject_id.clone()));
    }
    Ok(query.load(conn)?)
}

pub fn of_subject(conn: &mut DbConnection, subject_id: &str) -> Result<Vec<Event>, StorageError> {
    feed(
        conn,
        &Feed {
            subject_id: Some(subject_id.to_owned()),
            limit: i64::MAX,
            ..Default::default()
        },
    )
}

pub fn erase_subject(conn: &mut DbConnection, subject_id: &str) -> Result<usize, StorageError> {
    Ok(
        diesel::delete(customer_events::table.filter(customer_events::subject_id.eq(subject_id)))
            .execute(conn)?,
    )
}

/// Deletes at most `limit` events received before `before`, oldest first (retention
/// works in short batches).
pub fn delete_received_before(
    conn: &mut DbConnection,
    before: NaiveDateTime,
    limit: i64,
) -> Result<usize, StorageError> {
    let ids: Vec<i64> = customer_events::table
        .filter(customer_events::received_at.lt(before))
        .order(customer_events::id.asc())
        .limit(limit)
        .select(customer_events::id)
        .load(conn)?;
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(
        diesel::delete(customer_events::table.filter(customer_events::id.eq_any(ids)))
            .execute(conn)?,
    )
}
