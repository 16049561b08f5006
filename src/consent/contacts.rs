//! Messages sent to a subject, as the services that sent them record them: what reach
//! counts weekly caps with. Kept only as long as a cap can look back; erasure deletes
//! them; a subject's access bundle lists them.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use crate::consent::ledger::lock_subject;
use crate::consent::SubjectId;
use crate::storage::schema::contacts;
use crate::storage::{write_transaction, DbConnection, StorageError};
use crate::validation::FieldError;

/// How long a contact is kept: a week's cap in any time zone, and a margin for senders
/// that record late.
pub const RETENTION_DAYS: i64 = 35;

/// How far ahead of the server's clock a sender's `sent_at` may be (clock skew).
pub const MAX_CLOCK_SKEW: TimeDelta = TimeDelta::minutes(5);

/// The most contacts a snapshot holds: far above any cap a customer may set (100 a week
/// per channel), so that a flood of records cannot make a snapshot large.
pub(super) const SNAPSHOT_LIMIT: i64 = 2_000;

pub const MAX_IDEMPOTENCY_KEY: usize = 200;

/// One message sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Queryable, Selectable, ToSchema)]
#[diesel(table_name = contacts)]
pub struct Contact {
    #[schema(example = "5f0c6c0e-4b8e-4d57-9a53-0d3c8d1f2a11")]
    pub id: String,
    #[serde(skip)]
    pub subject_id: String,
    #[schema(example = "whatsapp")]
    pub channel: String,
    #[schema(example = "marketing.email")]
    pub purpose: String,
    #[schema(value_type = DateTime<Utc>)]
    #[serde(serialize_with = "as_utc")]
    pub sent_at: NaiveDateTime,
    #[schema(value_type = DateTime<Utc>)]
    #[serde(serialize_with = "as_utc")]
    pub recorded_at: NaiveDateTime,
    pub idempotency_key: Option<String>,
}

fn as_utc<S: serde::Serializer>(at: &NaiveDateTime, s: S) -> Result<S::Ok, S::Error> {
    at.and_utc().serialize(s)
}

/// A contact to record, already checked.
#[derive(Debug, Clone)]
pub struct NewContact {
    pub channel: String,
    pub purpose: String,
    pub sent_at: DateTime<Utc>,
    /// The sender said when; otherwise `sent_at` is when it was recorded, and a retry
    /// matches the first record whatever its time.
    pub sent_at_given: bool,
    pub idempotency_key: Option<String>,
}

/// What recording a contact came to.
#[derive(Debug)]
pub enum Recorded {
    /// A new contact.
    Created(Contact),
    /// The key was used before for the same message: the contact recorded then.
    Replayed(Contact),
    /// The key was used before for a different message.
    KeyReused(Contact),
    NoSuchSubject,
}

/// Whether a sender's `sent_at` can be counted: not in the future beyond clock skew, not
/// older than what is kept.
pub fn check_sent_at(sent_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), FieldError> {
    if sent_at > now + MAX_CLOCK_SKEW {
        return Err(FieldError::new(
            "sent_at",
            "in_future",
            format!(
                "`{}` is in the future; record a message once it is sent",
                sent_at.to_rfc3339()
            ),
        ));
    }
    if sent_at < now - TimeDelta::days(RETENTION_DAYS) {
        return Err(FieldError::new(
            "sent_at",
            "too_old",
            format!("older than {RETENTION_DAYS} days: no cap counts it"),
        ));
    }
    Ok(())
}

/// A sender's idempotency key: 1–200 printable characters.
pub fn check_idempotency_key(key: &str) -> Result<(), FieldError> {
    let printable = key.chars().all(|c| !c.is_control());
    if key.is_empty() || key.chars().count() > MAX_IDEMPOTENCY_KEY || !printable {
        return Err(FieldError::new(
            "idempotency_key",
            "invalid",
            format!("1–{MAX_IDEMPOTENCY_KEY} printable characters"),
        ));
    }
    Ok(())
}

/// Records a contact, once per idempotency key, and drops the subject's contacts older
/// than the retention; announces the change so that every instance recounts.
pub fn record(
    conn: &mut DbConnection,
    subject: &SubjectId,
    contact: &NewContact,
    now: DateTime<Utc>,
) -> Result<Recorded, StorageError> {
    write_transaction(conn, |conn| {
        if !lock_subject(conn, subject)? {
            return Ok(Recorded::NoSuchSubject);
        }
        if let Some(key) = &contact.idempotency_key {
            let earlier = contacts::table
                .filter(contacts::subject_id.eq(subject.as_str()))
                .filter(contacts::idempotency_key.eq(key))
                .select(Contact::as_select())
                .first(conn)
                .optional()?;
            if let Some(earlier) = earlier {
                let same = earlier.channel == contact.channel
                    && earlier.purpose == contact.purpose
                    && (!contact.sent_at_given || earlier.sent_at == contact.sent_at.naive_utc());
                return Ok(if same {
                    Recorded::Replayed(earlier)
                } else {
                    Recorded::KeyReused(earlier)
                });
            }
        }
        let row = insert(conn, subject, contact, now)?;
        let expired = (now - TimeDelta::days(RETENTION_DAYS)).naive_utc();
        diesel::delete(
            contacts::table
                .filter(contacts::subject_id.eq(subject.as_str()))
                .filter(contacts::sent_at.lt(expired)),
        )
        .execute(conn)?;
        crate::storage::announce_subject_changed(conn, subject.as_str())?;
        Ok(Recorded::Created(row))
    })
}

/// Inserts a contact. Call inside a write transaction.
pub fn insert(
    conn: &mut DbConnection,
    subject: &SubjectId,
    contact: &NewContact,
    now: DateTime<Utc>,
) -> Result<Contact, StorageError> {
    let row = Contact {
        id: uuid::Uuid::new_v4().to_string(),
        subject_id: subject.as_str().to_owned(),
        channel: contact.channel.clone(),
        purpose: contact.purpose.clone(),
        sent_at: contact.sent_at.naive_utc(),
        recorded_at: now.naive_utc(),
        idempotency_key: contact.idempotency_key.clone(),
    };
    diesel::insert_into(contacts::table)
        .values((
            contacts::id.eq(&row.id),
            contacts::subject_id.eq(&row.subject_id),
            contacts::channel.eq(&row.channel),
            contacts::purpose.eq(&row.purpose),
            contacts::sent_at.eq(row.sent_at),
            contacts::recorded_at.eq(row.recorded_at),
            contacts::idempotency_key.eq(&row.idempotency_key),
        ))
        .execute(conn)?;
    Ok(row)
}

/// When messages were sent to one subject, by channel: what the gate's snapshot holds
/// for caps.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SentMessages(HashMap<String, Vec<DateTime<Utc>>>);

impl SentMessages {
    /// About how many bytes the contacts take (see `snapshot::footprint`).
    pub fn approximate_bytes(&self) -> usize {
        use super::footprint;
        footprint::hash_table::<(String, Vec<DateTime<Utc>>)>(self.0.capacity())
            + self
                .0
                .iter()
                .map(|(channel, times)| {
                    footprint::string(channel)
                        + footprint::allocation(
                            times.capacity() * std::mem::size_of::<DateTime<Utc>>(),
                        )
                })
                .sum::<usize>()
    }

    pub fn on(&self, channel: &str) -> &[DateTime<Utc>] {
        self.0.get(channel).map(Vec::as_slice).unwrap_or_default()
    }

    /// The subject's newest contacts (bounded; older than the retention are gone).
    pub fn load(conn: &mut DbConnection, subject: &SubjectId) -> Result<Self, StorageError> {
        let rows: Vec<(String, NaiveDateTime)> = contacts::table
            .filter(contacts::subject_id.eq(subject.as_str()))
            .order(contacts::sent_at.desc())
            .limit(SNAPSHOT_LIMIT)
            .select((contacts::channel, contacts::sent_at))
            .load(conn)?;
        Ok(Self::from_rows(rows))
    }

    /// Contacts as `(channel, sent at)` rows, grouped by channel, newest first.
    pub(super) fn from_rows(rows: impl IntoIterator<Item = (String, NaiveDateTime)>) -> Self {
        let mut by_channel: HashMap<String, Vec<DateTime<Utc>>> = HashMap::new();
        for (channel, sent_at) in rows {
            by_channel
                .entry(channel)
                .or_default()
                .push(sent_at.and_utc());
        }
        for times in by_channel.values_mut() {
            times.sort_unstable_by(|a, b| b.cmp(a));
        }
        Self(by_channel)
    }
}

/// Every contact kept for a subject, the newest first (for the access bundle).
pub fn all(conn: &mut DbConnection, subject: &str) -> Result<Vec<Contact>, StorageError> {
    Ok(contacts::table
        .filter(contacts::subject_id.eq(subject))
        .order((contacts::sent_at.desc(), contacts::id))
        .select(Contact::as_select())
        .load(conn)?)
}

/// Deletes a subject's contacts (erasure). Call inside its transaction.
pub fn erase_subject(conn: &mut DbConnection, subject: &str) -> Result<(), StorageError> {
    diesel::delete(contacts::table.filter(contacts::subject_id.eq(subject))).execute(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn sent_at_may_lag_but_not_run_ahead() {
        let now = at("2026-12-02T12:00:00Z");
        assert!(check_sent_at(now, now).is_ok());
        assert!(check_sent_at(at("2026-12-02T12:05:00Z"), now).is_ok());
        assert_eq!(
            check_sent_at(at("2026-12-02T12:05:01Z"), now)
                .unwrap_err()
                .code,
            "in_future"
        );
        assert!(check_sent_at(at("2026-10-28T12:00:00Z"), now).is_ok());
        assert_eq!(
            check_sent_at(at("2026-10-28T11:59:59Z"), now)
                .unwrap_err()
                .code,
            "too_old"
        );
    }

    #[test]
    fn idempotency_keys_are_bounded_and_printable() {
        assert!(check_idempotency_key("campaign-42/cust-8412").is_ok());
        assert!(check_idempotency_key(&"k".repeat(200)).is_ok());
        for bad in ["", "a\u{0}b", "line\nbreak"] {
            assert!(check_idempotency_key(bad).is_err(), "{bad:?}");
        }
        assert!(check_idempotency_key(&"k".repeat(201)).is_err());
    }
}
