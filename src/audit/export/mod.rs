//! Export lines and their offline check (`docs/audit-export.md` specifies the format). An
//! export is a header naming its filters and range, then one line per event in the
//! range — the whole event when it matches the filters, only its link (`seq`,
//! `prev_hash`, `hash`) when it does not, so the chain can be checked across the gaps —
//! and a closing checkpoint whose signature covers the last event's hash and the
//! header's claims.

mod offline;
pub mod stream;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

pub use offline::{verify_export, verify_reader, OfflineReport};

use super::chain::{self, ChainedEvent};
use crate::auth::keys::SigningKey;
use crate::storage::schema::audit_events;
use crate::storage::{DbConnection, StorageError};

/// The export format. v1 (whose header said `consentry.audit.v1`) signed only the last
/// hash: its header, and so its filters and first event, could be changed unseen.
pub const EXPORT_VERSION: &str = "consentry.audit.export.v2";

/// What an export claims about itself; the closing signature covers all of it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ExportHeader {
    pub version: String,
    pub exported_at: String,
    /// The filters the export was made with.
    pub filters: ExportFilter,
    /// The first and last event the export covers (the first and last that match), or
    /// `null` when none matches.
    #[serde(deserialize_with = "serde::Deserialize::deserialize")]
    pub first_seq: Option<i64>,
    #[serde(deserialize_with = "serde::Deserialize::deserialize")]
    pub last_seq: Option<i64>,
}

/// The claims of the closing checkpoint's signature: the header's, and the head it pins.
#[derive(Debug, Clone, Serialize)]
pub struct SealClaims {
    #[serde(flatten)]
    pub header: ExportHeader,
    pub seq: i64,
    pub hash: String,
    pub iat: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ExportLine {
    Header(ExportHeader),
    Event {
        seq: i64,
        occurred_at: String,
        actor_role: String,
        #[serde(deserialize_with = "serde::Deserialize::deserialize")]
        actor_id: Option<String>,
        action: String,
        #[serde(deserialize_with = "serde::Deserialize::deserialize")]
        subject_pseudonym: Option<String>,
        payload: String,
        payload_digest: String,
        prev_hash: String,
        hash: String,
    },
    Link {
        seq: i64,
        prev_hash: String,
        hash: String,
    },
    Checkpoint {
        seq: i64,
        hash: String,
        kid: String,
        /// A compact JWS (EdDSA) over `SealClaims`.
        signature: String,
    },
}

impl ExportLine {
    pub fn event(e: &ChainedEvent) -> Self {
        Self::Event {
            seq: e.seq,
            occurred_at: super::chain::timestamp(e.occurred_at),
            actor_role: e.actor_role.clone(),
            actor_id: e.actor_id.clone(),
            action: e.action.clone(),
            subject_pseudonym: e.subject_pseudonym.clone(),
            payload: e.payload.clone(),
            payload_digest: e.payload_digest.clone(),
            prev_hash: e.prev_hash.clone(),
            hash: e.hash.clone(),
        }
    }

    pub fn link(e: &ChainedEvent) -> Self {
        Self::Link {
            seq: e.seq,
            prev_hash: e.prev_hash.clone(),
            hash: e.hash.clone(),
        }
    }

    /// The line for an event in an export's range: whole when it matches the filters,
    /// its link otherwise.
    pub fn within(e: &ChainedEvent, filters: &ExportFilter) -> Self {
        if filters.matches(e) {
            Self::event(e)
        } else {
            Self::link(e)
        }
    }

    /// The closing line: `(seq, hash)` is the last event's (or, when none matched, the
    /// chain's head), signed together with the header's claims.
    pub fn seal(
        header: &ExportHeader,
        seq: i64,
        hash: &str,
        key: &SigningKey,
        iat: i64,
    ) -> Result<Self, super::checkpoint::SignError> {
        let claims = SealClaims {
            header: header.clone(),
            seq,
            hash: hash.to_owned(),
            iat,
        };
        Ok(Self::Checkpoint {
            seq,
            hash: hash.to_owned(),
            kid: key.kid.clone(),
            signature: super::checkpoint::jws(key, &claims)?,
        })
    }
}

/// CSV columns; the header row holds its JSON Lines object in `payload`, a link leaves
/// the event's fields empty, a checkpoint puts its signature in `payload` and its key id
/// in `actor_id`.
pub const CSV_HEADER: [&str; 11] = [
    "type",
    "seq",
    "occurred_at",
    "actor_role",
    "actor_id",
    "action",
    "subject_pseudonym",
    "payload",
    "payload_digest",
    "prev_hash",
    "hash",
];

/// A line's CSV cells, each neutralised for spreadsheets (`csv_cell::inert`: a leading
/// `'` before a cell starting with `= + - @`, a tab, a carriage return or `'`); readers
/// drop it again (`csv_cell::read_back`), so the chain verifies from the CSV form too.
pub fn csv_record(line: &ExportLine) -> [String; 11] {
    csv_cells(line).map(|cell| match crate::csv_cell::inert(&cell) {
        std::borrow::Cow::Borrowed(_) => cell,
        std::borrow::Cow::Owned(marked) => marked,
    })
}

fn csv_cells(line: &ExportLine) -> [String; 11] {
    let s = |v: &str| v.to_owned();
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    match line {
        ExportLine::Header(_) => [
            "header".into(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            serde_json::to_string(line).unwrap_or_default(),
            String::new(),
            String::new(),
            String::new(),
        ],
        ExportLine::Event {
            seq,
            occurred_at,
            actor_role,
            actor_id,
            action,
            subject_pseudonym,
            payload,
            payload_digest,
            prev_hash,
            hash,
        } => [
            "event".into(),
            seq.to_string(),
            s(occurred_at),
            s(actor_role),
            o(actor_id),
            s(action),
            o(subject_pseudonym),
            s(payload),
            s(payload_digest),
            s(prev_hash),
            s(hash),
        ],
        ExportLine::Link {
            seq,
            prev_hash,
            hash,
        } => [
            "link".into(),
            seq.to_string(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            s(prev_hash),
            s(hash),
        ],
        ExportLine::Checkpoint {
            seq,
            hash,
            kid,
            signature,
        } => [
            "checkpoint".into(),
            seq.to_string(),
            String::new(),
            String::new(),
            s(kid),
            String::new(),
            String::new(),
            s(signature),
            String::new(),
            String::new(),
            s(hash),
        ],
    }
}

/// What an export covers: each filter given, all of them; times inclusive, to the
/// microsecond. As written in an export's header, every key is present (`null` when not
/// given).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExportFilter {
    #[serde(with = "chain::optional_timestamp")]
    pub from: Option<DateTime<Utc>>,
    #[serde(with = "chain::optional_timestamp")]
    pub to: Option<DateTime<Utc>>,
    // Present even when null: a missing key is a malformed header, not "no filter".
    #[serde(deserialize_with = "serde::Deserialize::deserialize")]
    pub subject_pseudonym: Option<String>,
    #[serde(deserialize_with = "serde::Deserialize::deserialize")]
    pub action: Option<String>,
    #[serde(deserialize_with = "serde::Deserialize::deserialize")]
    pub actor: Option<String>,
}

impl ExportFilter {
    /// No filter at all: the export is the whole log.
    pub fn is_everything(&self) -> bool {
        *self == Self::default()
    }

    pub fn matches(&self, e: &ChainedEvent) -> bool {
        self.from.is_none_or(|from| e.occurred_at >= from)
            && self.to.is_none_or(|to| e.occurred_at <= to)
            && self
                .subject_pseudonym
                .as_ref()
                .is_none_or(|p| e.subject_pseudonym.as_ref() == Some(p))
            && self.action.as_ref().is_none_or(|a| e.action == *a)
            && self
                .actor
                .as_ref()
                .is_none_or(|a| e.actor_id.as_ref() == Some(a))
    }
}

/// The first and last `seq` of the events an export covers, if any match.
pub fn export_range(
    conn: &mut DbConnection,
    filter: &ExportFilter,
) -> Result<Option<(i64, i64)>, StorageError> {
    let bounds = |descending: bool, conn: &mut DbConnection| -> Result<Option<i64>, StorageError> {
        let mut query = audit_events::table.select(audit_events::seq).into_boxed();
        if let Some(from) = filter.from {
            query = query.filter(audit_events::occurred_at.ge(from.naive_utc()));
        }
        if let Some(to) = filter.to {
            query = query.filter(audit_events::occurred_at.le(to.naive_utc()));
        }
        if let Some(p) = &filter.subject_pseudonym {
            query = query.filter(audit_events::subject_pseudonym.eq(p.clone()));
        }
        if let Some(a) = &filter.action {
            query = query.filter(audit_events::action.eq(a.clone()));
        }
        if let Some(a) = &filter.actor {
            query = query.filter(audit_events::actor_id.eq(a.clone()));
        }
        query = if descending {
            query.order(audit_events::seq.desc())
        } else {
            query.order(audit_events::seq.asc())
        };
        Ok(query.first::<i64>(conn).optional()?)
    };
    Ok(match (bounds(false, conn)?, bounds(true, conn)?) {
        (Some(first), Some(last)) => Some((first, last)),
        _ => None,
    })
}
