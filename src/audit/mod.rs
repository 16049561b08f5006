//! The audit hook: every change is recorded here, by this one function, in the same
//! transaction as the change. Nothing else writes audit rows.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::Value;

use crate::auth::Principal;
use crate::storage::schema::audit_events;
use crate::storage::{DbConnection, StorageError};

/// Who made a change: a caller's role and token subject, or the operator's CLI.
#[derive(Debug, Clone)]
pub struct Actor {
    pub role: String,
    pub id: Option<String>,
}

impl Actor {
    pub fn operator() -> Self {
        Self {
            role: "operator".into(),
            id: None,
        }
    }
}

impl From<&Principal> for Actor {
    fn from(principal: &Principal) -> Self {
        Self {
            role: principal.role.as_str().to_owned(),
            id: principal.actor_id().map(str::to_owned),
        }
    }
}

/// One change to record.
#[derive(Debug, Clone)]
pub struct AuditEntry<'a> {
    pub actor: &'a Actor,
    /// `subject.created`, `consent.granted`, `token.minted`...
    pub action: &'a str,
    pub subject_id: Option<&'a str>,
    pub payload: Value,
    pub at: DateTime<Utc>,
}

#[derive(Insertable)]
#[diesel(table_name = audit_events)]
struct NewAuditEvent<'a> {
    occurred_at: chrono::NaiveDateTime,
    actor_role: &'a str,
    actor_id: Option<&'a str>,
    action: &'a str,
    subject_id: Option<&'a str>,
    payload: String,
}

/// Appends an event. Call it inside the transaction that makes the change.
pub fn record(conn: &mut DbConnection, entry: AuditEntry<'_>) -> Result<(), StorageError> {
    diesel::insert_into(audit_events::table)
        .values(NewAuditEvent {
            occurred_at: entry.at.naive_utc(),
            actor_role: &entry.actor.role,
            actor_id: entry.actor.id.as_deref(),
            action: entry.action,
            subject_id: entry.subject_id,
            payload: entry.payload.to_string(),
        })
        .execute(conn)?;
    Ok(())
}
