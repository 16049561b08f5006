//! The consent ledger (append-only) and the current state beside it, written together.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::subject::SubjectId;
use crate::audit::Actor;
use crate::policy::Purpose;
use crate::storage::schema::{consent_records, consent_states, profile_attributes, subjects};
use crate::storage::{DbConnection, StorageError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsentStatus {
    Granted,
    /// Refused, withdrawn, opted out or objected to.
    Denied,
}

impl ConsentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Granted => "granted",
            Self::Denied => "denied",
        }
    }

    fn parse(input: &str) -> Option<Self> {
        match input {
            "granted" => Some(Self::Granted),
            "denied" => Some(Self::Denied),
            _ => None,
        }
    }
}

/// Where a consent came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsentSource {
    /// The preference centre.
    Portal,
    /// A service acting for the customer.
    Api,
    /// Migrated from another system.
    Import,
    /// A survey answer.
    Survey,
    /// A Global Privacy Control signal (recorded by Consentry).
    Gpc,
    /// An IAB US Privacy string (recorded by Consentry).
    Usp,
    /// An IAB GPP string (recorded by Consentry).
    Gpp,
}

impl ConsentSource {
    pub const ALL: [ConsentSource; 7] = [
        Self::Portal,
        Self::Api,
        Self::Import,
        Self::Survey,
        Self::Gpc,
        Self::Usp,
        Self::Gpp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Portal => "portal",
            Self::Api => "api",
            Self::Import => "import",
            Self::Survey => "survey",
            Self::Gpc => "gpc",
            Self::Usp => "usp",
            Self::Gpp => "gpp",
        }
    }

    fn parse(input: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == input)
    }

    /// Sources that only Consentry itself records, from privacy signals.
    pub fn is_signal(self) -> bool {
        matches!(self, Self::Gpc | Self::Usp | Self::Gpp)
    }
}

impl fmt::Display for ConsentSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The current consent for one subject and purpose: the newest ledger row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentState {
    pub purpose: String,
    pub status: ConsentStatus,
    pub source: ConsentSource,
    pub record_id: String,
    pub purpose_version: u32,
    pub notice_digest: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Current states of one subject, by purpose key.
pub type ConsentStates = HashMap<String, ConsentState>;

/// One row of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRecord {
    pub seq: i64,
    pub id: String,
    pub purpose: String,
    pub status: ConsentStatus,
    pub source: ConsentSource,
    pub purpose_version: u32,
    pub notice_digest: Option<String>,
    pub actor_role: String,
    pub actor_id: Option<String>,
    pub ip_hash: Option<String>,
    pub ip_source: Option<IpSource>,
    pub user_agent: Option<String>,
    pub recorded_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Who saw what when a consent was given: kept as evidence.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// HMAC of the client IP with the service's secret: comparable, not reversible.
    pub ip_hash: Option<String>,
    /// Who vouches for that address.
    pub ip_source: Option<IpSource>,
    pub user_agent: Option<String>,
}

/// Where the address kept as evidence came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IpSource {
    /// The connection's own peer.
    Peer,
    /// A trusted proxy's forwarding header (`CONSENTRY_TRUSTED_PROXIES`).
    Proxy,
    /// Stated by the service that wrote the record on the customer's behalf (the
    /// record's actor), not observed by Consentry.
    Asserted,
}

impl IpSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Peer => "peer",
            Self::Proxy => "proxy",
            Self::Asserted => "asserted",
        }
    }

    fn parse(stored: &str) -> Option<Self> {
        [Self::Peer, Self::Proxy, Self::Asserted]
            .into_iter()
            .find(|s| s.as_str() == stored)
    }
}

/// A consent to write.
#[derive(Debug, Clone)]
pub struct ConsentChange {
    pub purpose: String,
    pub status: ConsentStatus,
    pub source: ConsentSource,
    pub notice_digest: Option<String>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = consent_records)]
struct RecordRow {
    seq: i64,
    id: String,
    purpose: String,
    status: String,
    source: String,
    purpose_version: i32,
    notice_digest: Option<String>,
    actor_role: String,
    actor_id: Option<String>,
    ip_hash: Option<String>,
    ip_source: Option<String>,
    user_agent: Option<String>,
    recorded_at: NaiveDateTime,
    expires_at: Option<NaiveDateTime>,
}

#[derive(Insertable)]
#[diesel(table_name = consent_records)]
struct NewRecord<'a> {
    id: &'a str,
    subject_id: &'a str,
    purpose: &'a str,
    status: &'a str,
    source: &'a str,
    purpose_version: i32,
    notice_digest: Option<&'a str>,
    actor_role: &'a str,
    actor_id: Option<&'a str>,
    ip_hash: Option<&'a str>,
    ip_source: Option<&'a str>,
    user_agent: Option<&'a str>,
    recorded_at: NaiveDateTime,
    expires_at: Option<NaiveDateTime>,
}

#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = consent_states)]
pub(super) struct StateRow {
    pub(super) subject_id: String,
    pub(super) purpose: String,
    pub(super) status: String,
    pub(super) source: String,
    pub(super) record_id: String,
    pub(super) record_seq: i64,
    pub(super) purpose_version: i32,
    pub(super) notice_digest: Option<String>,
    pub(super) updated_at: NaiveDateTime,
    pub(super) expires_at: Option<NaiveDateTime>,
}

pub(super) fn corrupt(what: &str) -> StorageError {
    StorageError::Query(diesel::result::Error::DeserializationError(
        format!("unexpected {what} in the consent tables").into(),
    ))
}

impl TryFrom<StateRow> for ConsentState {
    type Error = StorageError;
    fn try_from(row: StateRow) -> Result<Self, StorageError> {
        Ok(Self {
            status: ConsentStatus::parse(&row.status).ok_or_else(|| corrupt("status"))?,
            source: ConsentSource::parse(&row.source).ok_or_else(|| corrupt("source"))?,
            purpose: row.purpose,
            record_id: row.record_id,
            purpose_version: u32::try_from(row.purpose_version).map_err(|_| corrupt("version"))?,
            notice_digest: row.notice_digest,
            updated_at: row.updated_at.and_utc(),
            expires_at: row.expires_at.map(|t| t.and_utc()),
        })
    }
}

impl TryFrom<RecordRow> for ConsentRecord {
    type Error = StorageError;
    fn try_from(row: RecordRow) -> Result<Self, StorageError> {
        Ok(Self {
            status: ConsentStatus::parse(&row.status).ok_or_else(|| corrupt("status"))?,
            source: ConsentSource::parse(&row.source).ok_or_else(|| corrupt("source"))?,
            purpose_version: u32::try_from(row.purpose_version).map_err(|_| corrupt("version"))?,
            seq: row.seq,
            id: row.id,
            purpose: row.purpose,
            notice_digest: row.notice_digest,
            actor_role: row.actor_role,
            actor_id: row.actor_id,
            ip_hash: row.ip_hash,
            ip_source: row.ip_source.as_deref().and_then(IpSource::parse),
            user_agent: row.user_agent,
            recorded_at: row.recorded_at.and_utc(),
            expires_at: row.expires_at.map(|t| t.and_utc()),
        })
    }
}

/// The current states of a subject.
pub fn states(conn: &mut DbConnection, subject: &SubjectId) -> Result<ConsentStates, StorageError> {
    consent_states::table
        .filter(consent_states::subject_id.eq(subject.as_str()))
        .select(StateRow::as_select())
        .load(conn)?
        .into_iter()
        .map(|row| ConsentState::try_from(row).map(|s| (s.purpose.clone(), s)))
        .collect()
}

/// Takes the subject's row lock for the rest of the transaction, so that concurrent
/// writers on one subject append to the ledger in the order they update the state.
/// SQLite's `BEGIN IMMEDIATE` already serializes writers.
pub fn lock_subject(conn: &mut DbConnection, subject: &SubjectId) -> Result<bool, StorageError> {
    let found = match conn {
        DbConnection::Postgres(c) => subjects::table
            .find(subject.as_str())
            .select(subjects::id)
            .for_update()
            .first::<String>(c)
            .optional()?,
        DbConnection::Sqlite(_) => subjects::table
            .find(subject.as_str())
            .select(subjects::id)
            .first::<String>(conn)
            .optional()?,
    };
    Ok(found.is_some())
}

/// Appends one consent to the ledger and makes it the current state. Call inside a
/// write transaction, after `lock_subject`.
pub fn append(
    conn: &mut DbConnection,
    subject: &SubjectId,
    change: &ConsentChange,
    purpose: &Purpose,
    actor: &Actor,
    evidence: &Evidence,
    now: DateTime<Utc>,
) -> Result<ConsentState, StorageError> {
    let id = uuid::Uuid::new_v4().to_string();
    // A refusal does not expire; a grant lasts as long as the purpose said when given.
    let expires_at = match change.status {
        ConsentStatus::Granted => purpose
            .consent_ttl_days
            .map(|days| now + TimeDelta::days(i64::from(days))),
        ConsentStatus::Denied => None,
    };
    let version = i32::try_from(purpose.version).unwrap_or(i32::MAX);
    let seq: i64 = diesel::insert_into(consent_records::table)
        .values(NewRecord {
            id: &id,
            subject_id: subject.as_str(),
            purpose: &change.purpose,
            status: change.status.as_str(),
            source: change.source.as_str(),
            purpose_version: version,
            notice_digest: change.notice_digest.as_deref(),
            actor_role: &actor.role,
            actor_id: actor.id.as_deref(),
            ip_hash: evidence.ip_hash.as_deref(),
            ip_source: evidence.ip_source.map(IpSource::as_str),
            user_agent: evidence.user_agent.as_deref(),
            recorded_at: now.naive_utc(),
            expires_at: expires_at.map(|t| t.naive_utc()),
        })
        .returning(consent_records::seq)
        .get_result(conn)?;
    let row = StateRow {
        subject_id: subject.as_str().to_owned(),
        purpose: change.purpose.clone(),
        status: change.status.as_str().to_owned(),
        source: change.source.as_str().to_owned(),
        record_id: id,
        record_seq: seq,
        purpose_version: version,
        notice_digest: change.notice_digest.clone(),
        updated_at: now.naive_utc(),
        expires_at: expires_at.map(|t| t.naive_utc()),
    };
    let updated =
        diesel::update(consent_states::table.find((subject.as_str(), change.purpose.as_str())))
            .set(&row)
            .execute(conn)?;
    if updated == 0 {
        // The subject lock makes this insert race-free.
        diesel::insert_into(consent_states::table)
            .values(&row)
            .execute(conn)?;
    }
    if change.status == ConsentStatus::Denied {
        forget_derived(conn, subject, &change.purpose)?;
    }
    ConsentState::try_from(row)
}

/// The `source` of profile attributes derived under a purpose (a journey stage).
pub fn derived_source(purpose: &str) -> String {
    format!("derived:{purpose}")
}

/// Deletes what was derived about the subject under a purpose, or under one of its
/// children, once the purpose is refused, withdrawn or objected to.
fn forget_derived(
    conn: &mut DbConnection,
    subject: &SubjectId,
    purpose: &str,
) -> Result<(), StorageError> {
    let own = derived_source(purpose);
    let children = format!("{own}.");
    let derived: Vec<(String, String)> = profile_attributes::table
        .filter(profile_attributes::subject_id.eq(subject.as_str()))
        .filter(profile_attributes::source.like("derived:%"))
        .select((profile_attributes::key, profile_attributes::source))
        .load(conn)?;
    for (key, source) in derived {
        if source == own || source.starts_with(&children) {
            diesel::delete(profile_attributes::table.find((subject.as_str(), key.as_str())))
                .execute(conn)?;
        }
    }
    Ok(())
}

/// How many consent records a subject has.
pub fn count(conn: &mut DbConnection, subject: &SubjectId) -> Result<i64, StorageError> {
    Ok(consent_records::table
        .filter(consent_records::subject_id.eq(subject.as_str()))
        .count()
        .get_result(conn)?)
}

/// The ledger newest first, `limit` rows older than `before` (a `seq`).
pub fn history(
    conn: &mut DbConnection,
    subject: &SubjectId,
    purpose: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<ConsentRecord>, StorageError> {
    let mut query = consent_records::table
        .filter(consent_records::subject_id.eq(subject.as_str()))
        .into_boxed();
    if let Some(purpose) = purpose {
        query = query.filter(consent_records::purpose.eq(purpose.to_owned()));
    }
    if let Some(before) = before {
        query = query.filter(consent_records::seq.lt(before));
    }
    query
        .order(consent_records::seq.desc())
        .limit(limit)
        .select(RecordRow::as_select())
        .load(conn)?
        .into_iter()
        .map(ConsentRecord::try_from)
        .collect()
}

/// Purposes a GPC opt-out was ever recorded for: a GPC signal is recorded once.
pub fn gpc_recorded(
    conn: &mut DbConnection,
    subject: &SubjectId,
) -> Result<std::collections::HashSet<String>, StorageError> {
    Ok(consent_records::table
        .filter(consent_records::subject_id.eq(subject.as_str()))
        .filter(consent_records::source.eq(ConsentSource::Gpc.as_str()))
        .select(consent_records::purpose)
        .distinct()
        .load::<String>(conn)?
        .into_iter()
        .collect())
}

/// Grants that expired by `now` and whose expiry is not yet announced, oldest first:
/// `(subject, purpose, record id, expired at)`.
fn unannounced_expiries(
    conn: &mut DbConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<(String, String, String, NaiveDateTime)>, StorageError> {
    use crate::storage::schema::consent_expiries;
    let rows: Vec<(String, String, String, Option<NaiveDateTime>)> = consent_states::table
        .left_join(
            consent_expiries::table.on(consent_expiries::record_id.eq(consent_states::record_id)),
        )
        .filter(consent_expiries::record_id.is_null())
        .filter(consent_states::status.eq(ConsentStatus::Granted.as_str()))
        .filter(consent_states::expires_at.le(now.naive_utc()))
        .order(consent_states::expires_at)
        .limit(limit)
        .select((
            consent_states::subject_id,
            consent_states::purpose,
            consent_states::record_id,
            consent_states::expires_at,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(s, p, r, at)| Some((s, p, r, at?)))
        .collect())
}

/// Announces grants that expired: a `consent.expired` audit event each (and so an
/// outbox message, for the systems downstream), once per grant. The gate already
/// treats them as expired; this tells everyone else. One transaction; answers how many.
pub fn announce_expiries(
    conn: &mut DbConnection,
    pseudonyms: &crate::audit::Pseudonymizer,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<usize, StorageError> {
    use crate::storage::schema::consent_expiries;
    if unannounced_expiries(conn, now, 1)?.is_empty() {
        return Ok(0);
    }
    crate::storage::write_transaction(conn, |conn| {
        let expired = unannounced_expiries(conn, now, limit)?;
        for (subject, purpose, record_id, at) in &expired {
            crate::audit::record(
                conn,
                pseudonyms,
                crate::audit::AuditEntry {
                    actor: &Actor::system(),
                    action: "consent.expired",
                    subject_id: Some(subject),
                    payload: serde_json::json!({
                        "purpose": purpose,
                        "record_id": record_id,
                        "expired_at": at.and_utc(),
                    }),
                    at: now,
                },
            )?;
            diesel::insert_into(consent_expiries::table)
                .values((
                    consent_expiries::record_id.eq(record_id),
                    consent_expiries::announced_at.eq(now.naive_utc()),
                ))
                .execute(conn)?;
        }
        Ok(expired.len())
    })
}
