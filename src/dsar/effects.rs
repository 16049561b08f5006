//! What a request changes at once, when it is filed: a restriction stops all but strictly
//! necessary processing; an objection withdraws every purpose that rests on legitimate
//! interest; an opt-out of sale withdraws every sale or sharing purpose. Rejecting a
//! restriction request lifts the restriction.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::rules::RequestKind;
use crate::audit::{self, Actor, AuditEntry, Pseudonymizer};
use crate::consent::ledger::{ConsentChange, ConsentSource, ConsentStatus, Evidence};
use crate::consent::subject::{self, Subject, SubjectId};
use crate::consent::write::{self, ConsentError, ConsentWrite};
use crate::policy::{Basis, Policies};
use crate::storage::{write_transaction, DbConnection, StorageError};

/// The purposes a request withdraws for this subject.
pub fn withdrawn_purposes(
    policies: &Policies,
    subject: &Subject,
    kind: RequestKind,
    now: DateTime<Utc>,
) -> Vec<String> {
    let person = subject.person(policies);
    policies
        .purposes()
        .iter()
        .filter(|p| match kind {
            RequestKind::Objection => p.effective_basis(&person, now) == Basis::LegitimateInterest,
            RequestKind::OptOutSale => p.sale_or_share,
            _ => false,
        })
        .map(|p| p.key.clone())
        .collect()
}

/// Applies what filing a request changes at once; answers whether anything changed.
pub fn on_filing(
    conn: &mut DbConnection,
    policies: &Policies,
    pseudonyms: &Pseudonymizer,
    actor: &Actor,
    found: &Subject,
    kind: RequestKind,
    now: DateTime<Utc>,
) -> Result<bool, ConsentError> {
    match kind {
        RequestKind::Restriction => Ok(restrict(
            conn,
            pseudonyms,
            actor,
            &found.id,
            Some(now),
            now,
        )?),
        RequestKind::Objection | RequestKind::OptOutSale => {
            let changes: Vec<ConsentChange> = withdrawn_purposes(policies, found, kind, now)
                .into_iter()
                .map(|purpose| ConsentChange {
                    purpose,
                    status: ConsentStatus::Denied,
                    source: ConsentSource::Api,
                    notice_digest: None,
                })
                .collect();
            if changes.is_empty() {
                return Ok(false);
            }
            let request = ConsentWrite {
                subject: &found.id,
                changes: &changes,
                actor,
                pseudonyms,
                evidence: &Evidence::default(),
                gpc: false,
                now,
            };
            write::write(conn, policies, &request)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Sets or lifts the restriction, audited and announced to other instances.
pub fn restrict(
    conn: &mut DbConnection,
    pseudonyms: &Pseudonymizer,
    actor: &Actor,
    id: &SubjectId,
    since: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<bool, StorageError> {
    write_transaction(conn, |conn| {
        if !subject::set_restriction(conn, id, since)? {
            return Ok(false);
        }
        crate::storage::announce_subject_changed(conn, id.as_str())?;
        audit::record(
            conn,
            pseudonyms,
            AuditEntry {
                actor,
                action: if since.is_some() {
                    "subject.restricted"
                } else {
                    "subject.restriction_lifted"
                },
                subject_id: Some(id.as_str()),
                payload: json!({"since": since}),
                at: now,
            },
        )?;
        Ok(true)
    })
}
