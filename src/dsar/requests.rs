//! Requests and their status history, stored; each change is audited in its transaction.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::{json, Value};

use super::rules::{RequestKind, RequestStatus};
use crate::audit::{self, Actor, AuditEntry, Pseudonymizer};
use crate::storage::schema::{dsar_requests, dsar_steps};
use crate::storage::{write_transaction, DbConnection, StorageError};

#[derive(Debug, Clone)]
pub struct DataSubjectRequest {
    pub id: String,
    pub subject_id: String,
    pub kind: RequestKind,
    pub status: RequestStatus,
    pub details: Value,
    pub jurisdiction: String,
    pub received_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub extended: bool,
    pub extension_reason: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl DataSubjectRequest {
    /// Still open and past its due date.
    pub fn is_overdue(&self, now: DateTime<Utc>) -> bool {
        self.status.is_open() && self.due_at < now
    }
}

#[derive(Debug, Clone)]
pub struct Step {
    pub status: RequestStatus,
    pub actor_role: String,
    pub actor_id: Option<String>,
    pub note: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = dsar_requests)]
struct RequestRow {
    id: String,
    subject_id: String,
    kind: String,
    status: String,
    details: String,
    jurisdiction: String,
    received_at: NaiveDateTime,
    due_at: NaiveDateTime,
    extended: bool,
    extension_reason: Option<String>,
    updated_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = dsar_steps)]
struct NewStep<'a> {
    request_id: &'a str,
    status: &'a str,
    actor_role: &'a str,
    actor_id: Option<&'a str>,
    note: Option<&'a str>,
    at: NaiveDateTime,
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StorageError> {
    serde_json::from_value(Value::String(text.to_owned()))
        .map_err(|e| StorageError::Query(diesel::result::Error::DeserializationError(Box::new(e))))
}

impl TryFrom<RequestRow> for DataSubjectRequest {
    type Error = StorageError;
    fn try_from(row: RequestRow) -> Result<Self, StorageError> {
        Ok(Self {
            kind: parse(&row.kind)?,
            status: parse(&row.status)?,
            details: serde_json::from_str(&row.details).unwrap_or(Value::Null),
            id: row.id,
            subject_id: row.subject_id,
            jurisdiction: row.jurisdiction,
            received_at: row.received_at.and_utc(),
            due_at: row.due_at.and_utc(),
            extended: row.extended,
            extension_reason: row.extension_reason,
            updated_at: row.updated_at.and_utc(),
        })
    }
}

fn add_step(
    conn: &mut DbConnection,
    id: &str,
    status: RequestStatus,
    actor: &Actor,
    note: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), StorageError> {
    diesel::insert_into(dsar_steps::table)
        .values(NewStep {
            request_id: id,
            status: status.as_str(),
            actor_role: &actor.role,
            actor_id: actor.id.as_deref(),
            note,
            at: at.naive_utc(),
        })
        .execute(conn)?;
    Ok(())
}

/// Records a new request, its first step and its audit event.
pub fn create(
    conn: &mut DbConnection,
    pseudonyms: &Pseudonymizer,
    actor: &Actor,
    request: &DataSubjectRequest,
) -> Result<(), StorageError> {
    write_transaction(conn, |conn| {
        diesel::insert_into(dsar_requests::table)
            .values(RequestRow {
                id: request.id.clone(),
                subject_id: request.subject_id.clone(),
                kind: request.kind.as_str().to_owned(),
                status: request.status.as_str().to_owned(),
                details: request.details.to_string(),
                jurisdiction: request.jurisdiction.clone(),
                received_at: request.received_at.naive_utc(),
                due_at: request.due_at.naive_utc(),
                extended: false,
                extension_reason: None,
                updated_at: request.updated_at.naive_utc(),
            })
            .execute(conn)?;
        add_step(
            conn,
            &request.id,
            request.status,
            actor,
            None,
            request.received_at,
        )?;
        audit::record(
            conn,
            pseudonyms,
            AuditEntry {
                actor,
                action: "dsar.received",
                subject_id: Some(&request.subject_id),
                payload: json!({"request_id": request.id, "kind": request.kind.as_str(), "due_at": request.due_at}),
                at: request.received_at,
            },
        )
    })
}

pub fn find(
    conn: &mut DbConnection,
    id: &str,
) -> Result<Option<(DataSubjectRequest, Vec<Step>)>, StorageError> {
    let Some(row) = dsar_requests::table
        .find(id)
        .select(RequestRow::as_select())
        .first(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let steps = dsar_steps::table
        .filter(dsar_steps::request_id.eq(id))
        .order(dsar_steps::id.asc())
        .select((
            dsar_steps::status,
            dsar_steps::actor_role,
            dsar_steps::actor_id,
            dsar_steps::note,
            dsar_steps::at,
        ))
        .load::<(
            String,
            String,
            Option<String>,
            Option<String>,
            NaiveDateTime,
        )>(conn)?
        .into_iter()
        .map(|(status, actor_role, actor_id, note, at)| {
            Ok(Step {
                status: parse(&status)?,
                actor_role,
                actor_id,
                note,
                at: at.and_utc(),
            })
        })
        .collect::<Result<Vec<_>, StorageError>>()?;
    Ok(Some((DataSubjectRequest::try_from(row)?, steps)))
}

/// Who handles requests: moves them on, and reads every subject's (the API and the
/// console).
pub const HANDLERS: [crate::auth::Role; 1] = [crate::auth::Role::Compliance];

/// Filters for listing requests.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub status: Option<RequestStatus>,
    pub subject_id: Option<String>,
    /// Only open requests past their due date at this time.
    pub overdue_at: Option<DateTime<Utc>>,
    /// Only open requests due before this time (overdue ones included).
    pub due_before: Option<DateTime<Utc>>,
}

/// How many requests a subject has.
pub fn count_of_subject(conn: &mut DbConnection, subject_id: &str) -> Result<i64, StorageError> {
    Ok(dsar_requests::table
        .filter(dsar_requests::subject_id.eq(subject_id))
        .count()
        .get_result(conn)?)
}

pub fn list(
    conn: &mut DbConnection,
    filter: &ListFilter,
    limit: i64,
) -> Result<Vec<DataSubjectRequest>, StorageError> {
    let mut query = dsar_requests::table.into_boxed();
    if let Some(status) = filter.status {
        query = query.filter(dsar_requests::status.eq(status.as_str()));
    }
    if let Some(subject) = &filter.subject_id {
        query = query.filter(dsar_requests::subject_id.eq(subject.clone()));
    }
    if let Some(now) = filter.overdue_at {
        query = query
            .filter(dsar_requests::due_at.lt(now.naive_utc()))
            .filter(dsar_requests::status.ne_all(["completed", "rejected"]));
    }
    if let Some(before) = filter.due_before {
        query = query
            .filter(dsar_requests::due_at.lt(before.naive_utc()))
            .filter(dsar_requests::status.ne_all(["completed", "rejected"]));
    }
    query
        .order(dsar_requests::due_at.asc())
        .limit(limit)
        .select(RequestRow::as_select())
        .load(conn)?
        .into_iter()
        .map(DataSubjectRequest::try_from)
        .collect()
}

/// Saves a changed request with its step and audit event, in one transaction.
/// Saves a change made from `previous`; answers false (and saves nothing) when the
/// request is no longer in `previous` (someone else moved it meanwhile). Call inside a
/// write transaction.
pub fn save_change(
    conn: &mut DbConnection,
    pseudonyms: &Pseudonymizer,
    actor: &Actor,
    request: &DataSubjectRequest,
    previous: RequestStatus,
    action: &str,
    note: Option<&str>,
) -> Result<bool, StorageError> {
    let updated = diesel::update(
        dsar_requests::table
            .find(&request.id)
            .filter(dsar_requests::status.eq(previous.as_str())),
    )
    .set((
        dsar_requests::status.eq(request.status.as_str()),
        dsar_requests::due_at.eq(request.due_at.naive_utc()),
        dsar_requests::extended.eq(request.extended),
        dsar_requests::extension_reason.eq(&request.extension_reason),
        dsar_requests::updated_at.eq(request.updated_at.naive_utc()),
    ))
    .execute(conn)?;
    if updated == 0 {
        return Ok(false);
    }
    add_step(
        conn,
        &request.id,
        request.status,
        actor,
        note,
        request.updated_at,
    )?;
    audit::record(
        conn,
        pseudonyms,
        AuditEntry {
            actor,
            action,
            subject_id: Some(&request.subject_id),
            payload: json!({"request_id": request.id, "kind": request.kind.as_str(), "status": request.status.as_str(), "due_at": request.due_at, "note": note}),
            at: request.updated_at,
        },
    )?;
    Ok(true)
}
