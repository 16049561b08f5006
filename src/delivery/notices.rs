//! GDPR Art. 19 and CCPA §1798.105(c): when an erasure, rectification or restriction
//! completes, every recipient it concerns must be told, and the controller must be able
//! to show that it was and that the recipient confirmed. A notice per request and
//! recipient records both; the request's completion message (`dsar.status_changed`) is
//! what tells recipients with a webhook.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

use crate::audit::{self, Actor, AuditEntry, Pseudonymizer};
use crate::dsar::requests::DataSubjectRequest;
use crate::dsar::rules::{RequestKind, RequestStatus};
use crate::policy::recipient::{Acknowledgement, Recipient};
use crate::policy::Policies;
use crate::storage::schema::dsar_recipient_notices;
use crate::storage::{DbConnection, StorageError};

/// Whether completing a request of `kind` must be told to recipients.
pub fn tells_recipients(kind: RequestKind) -> bool {
    matches!(
        kind,
        RequestKind::Erasure | RequestKind::Rectification | RequestKind::Restriction
    )
}

/// The recipients a completed request concerns: every one for an erasure or a
/// restriction (each may hold the subject's data); for a rectification, those that
/// receive a category of a rectified attribute (every one when a removed attribute's
/// category is not known: `None`).
pub fn concerned<'a>(
    policies: &'a Policies,
    kind: RequestKind,
    rectified_categories: Option<&[&str]>,
) -> Vec<&'a Recipient> {
    policies
        .recipients
        .all()
        .iter()
        .filter(|r| match kind {
            RequestKind::Erasure | RequestKind::Restriction => true,
            RequestKind::Rectification => rectified_categories.is_none_or(|c| r.receives_any(c)),
            _ => false,
        })
        .collect()
}

/// Opens a notice per concerned recipient for a request completed now. Call in the
/// transaction that saves the completion.
pub fn open(
    conn: &mut DbConnection,
    policies: &Policies,
    request: &DataSubjectRequest,
    rectified_categories: Option<&[&str]>,
    now: DateTime<Utc>,
) -> Result<usize, StorageError> {
    if request.status != RequestStatus::Completed || !tells_recipients(request.kind) {
        return Ok(0);
    }
    let mut opened = 0;
    for recipient in concerned(policies, request.kind, rectified_categories) {
        opened += diesel::insert_into(dsar_recipient_notices::table)
            .values((
                dsar_recipient_notices::request_id.eq(&request.id),
                dsar_recipient_notices::recipient.eq(&recipient.name),
                dsar_recipient_notices::created_at.eq(now.naive_utc()),
            ))
            .execute(conn)?;
    }
    Ok(opened)
}

/// The token a recipient confirms a request with: a keyed hash, under the service's
/// pseudonym key, of the request and the recipient (the NUL keeps it apart from any
/// subject's pseudonym). Nothing to store, the same on every instance.
pub fn token(pseudonyms: &Pseudonymizer, request_id: &str, recipient: &str) -> String {
    pseudonyms.of(&format!(
        "recipient-acknowledgement\0{request_id}\0{recipient}"
    ))
}

/// Compares in constant time, so that a guess learns nothing from the timing.
pub fn token_matches(
    pseudonyms: &Pseudonymizer,
    request_id: &str,
    recipient: &str,
    given: &str,
) -> bool {
    let expected = token(pseudonyms, request_id, recipient);
    expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |differs, (a, b)| differs | (a ^ b))
            == 0
}

/// Records that the recipient's webhook answered 2xx to the completion message; with
/// `Acknowledgement::Delivery`, that answer is its confirmation. Audited once.
pub fn mark_told(
    conn: &mut DbConnection,
    pseudonyms: &Pseudonymizer,
    request_id: &str,
    recipient: &Recipient,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let target = dsar_recipient_notices::table
        .find((request_id, &recipient.name))
        .filter(dsar_recipient_notices::told_at.is_null());
    let told = diesel::update(target)
        .set(dsar_recipient_notices::told_at.eq(Some(now.naive_utc())))
        .execute(conn)?;
    if told == 0 {
        return Ok(());
    }
    audit_notice(
        conn,
        pseudonyms,
        "dsar.recipient_told",
        request_id,
        &recipient.name,
        now,
    )?;
    if recipient.acknowledge == Acknowledgement::Delivery {
        acknowledge(
            conn,
            pseudonyms,
            request_id,
            &recipient.name,
            "webhook",
            now,
        )?;
    }
    Ok(())
}

/// Records the recipient's confirmation; answers false when there is no such notice.
/// Confirming twice keeps the first time.
pub fn acknowledge(
    conn: &mut DbConnection,
    pseudonyms: &Pseudonymizer,
    request_id: &str,
    recipient: &str,
    by: &'static str,
    now: DateTime<Utc>,
) -> Result<bool, StorageError> {
    let Some(notice) = find(conn, request_id, recipient)? else {
        return Ok(false);
    };
    if notice.acknowledged_at.is_some() {
        return Ok(true);
    }
    diesel::update(dsar_recipient_notices::table.find((request_id, recipient)))
        .set((
            dsar_recipient_notices::acknowledged_at.eq(Some(now.naive_utc())),
            dsar_recipient_notices::acknowledged_by.eq(Some(by)),
            // A confirmation shows it was told, however it heard.
            dsar_recipient_notices::told_at
                .eq(Some(notice.told_at.unwrap_or_else(|| now.naive_utc()))),
        ))
        .execute(conn)?;
    audit_notice(
        conn,
        pseudonyms,
        "dsar.recipient_acknowledged",
        request_id,
        recipient,
        now,
    )?;
    Ok(true)
}

fn audit_notice(
    conn: &mut DbConnection,
    pseudonyms: &Pseudonymizer,
    action: &str,
    request_id: &str,
    recipient: &str,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    audit::record(
        conn,
        pseudonyms,
        AuditEntry {
            actor: &Actor::system(),
            action,
            subject_id: None,
            payload: json!({"request_id": request_id, "recipient": recipient}),
            at: now,
        },
    )
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = dsar_recipient_notices)]
pub struct Notice {
    pub request_id: String,
    pub recipient: String,
    pub created_at: NaiveDateTime,
    pub told_at: Option<NaiveDateTime>,
    pub acknowledged_at: Option<NaiveDateTime>,
    pub acknowledged_by: Option<String>,
}

pub fn find(
    conn: &mut DbConnection,
    request_id: &str,
    recipient: &str,
) -> Result<Option<Notice>, StorageError> {
    Ok(dsar_recipient_notices::table
        .find((request_id, recipient))
        .select(Notice::as_select())
        .first(conn)
        .optional()?)
}

/// A request's notices, in recipient order.
pub fn of_request(conn: &mut DbConnection, request_id: &str) -> Result<Vec<Notice>, StorageError> {
    Ok(dsar_recipient_notices::table
        .filter(dsar_recipient_notices::request_id.eq(request_id))
        .order(dsar_recipient_notices::recipient)
        .select(Notice::as_select())
        .load(conn)?)
}

/// Notices not yet confirmed, oldest first: who the compliance officer must chase.
pub fn unconfirmed(conn: &mut DbConnection, limit: i64) -> Result<Vec<Notice>, StorageError> {
    Ok(dsar_recipient_notices::table
        .filter(dsar_recipient_notices::acknowledged_at.is_null())
        .order((
            dsar_recipient_notices::created_at,
            dsar_recipient_notices::request_id,
        ))
        .limit(limit)
        .select(Notice::as_select())
        .load(conn)?)
}

/// A notice as the compliance officer sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NoticeView {
    pub request_id: String,
    pub recipient: String,
    /// `pending` (not yet told), `told` (told, not confirmed) or `acknowledged`.
    pub state: &'static str,
    pub told_at: Option<DateTime<Utc>>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// `webhook` (its 2xx answer) or `token` (it called the acknowledgement endpoint).
    pub acknowledged_by: Option<String>,
}

impl From<Notice> for NoticeView {
    fn from(n: Notice) -> Self {
        Self {
            state: match (n.told_at, n.acknowledged_at) {
                (_, Some(_)) => "acknowledged",
                (Some(_), None) => "told",
                (None, None) => "pending",
            },
            request_id: n.request_id,
            recipient: n.recipient,
            told_at: n.told_at.map(|t| t.and_utc()),
            acknowledged_at: n.acknowledged_at.map(|t| t.and_utc()),
            acknowledged_by: n.acknowledged_by,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_erasure_rectification_and_restriction_are_told() {
        assert!(tells_recipients(RequestKind::Erasure));
        assert!(tells_recipients(RequestKind::Rectification));
        assert!(tells_recipients(RequestKind::Restriction));
        assert!(!tells_recipients(RequestKind::Access));
        assert!(!tells_recipients(RequestKind::Objection));
    }
}
