//! Consent writes: one transaction that locks the subject, records any GPC opt-out the
//! request carries, appends each change to the ledger, updates the current state and
//! records the audit event.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::ledger::{self, ConsentChange, ConsentSource, ConsentStates, ConsentStatus, Evidence};
use super::subject::{self, Subject, SubjectId};
use crate::audit::{self, Actor, AuditEntry, Pseudonymizer};
use crate::policy::{Basis, Policies, Purpose};
use crate::storage::{write_transaction, DbConnection, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    #[error("the subject does not exist")]
    SubjectNotFound,
    #[error("unknown purpose `{purpose}`")]
    UnknownPurpose {
        index: Option<usize>,
        purpose: String,
    },
    #[error("`{purpose}` is strictly necessary here and cannot be refused")]
    NoticeOnly { purpose: String },
    #[error("the notice digest is not the current notice's")]
    StaleNotice {
        current: String,
        all_current: Vec<(String, String)>,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What a request asks to write.
pub struct ConsentWrite<'a> {
    pub subject: &'a SubjectId,
    pub changes: &'a [ConsentChange],
    pub actor: &'a Actor,
    pub pseudonyms: &'a Pseudonymizer,
    pub evidence: &'a Evidence,
    /// The request carried `Sec-GPC: 1`.
    pub gpc: bool,
    pub now: DateTime<Utc>,
}

impl<'a> ConsentWrite<'a> {
    /// A request that changes no purpose itself: a read, or signals, that records what a
    /// `Sec-GPC: 1` it carried means (when `gpc`).
    pub fn without_changes(
        subject: &'a SubjectId,
        actor: &'a Actor,
        pseudonyms: &'a Pseudonymizer,
        evidence: &'a Evidence,
        gpc: bool,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            subject,
            changes: &[],
            actor,
            pseudonyms,
            evidence,
            gpc,
            now,
        }
    }
}

/// Checks that each change names a purpose that exists; done before any database work.
pub fn check_purposes(
    policies: &Policies,
    changes: &[ConsentChange],
    batch: bool,
) -> Result<(), ConsentError> {
    for (index, change) in changes.iter().enumerate() {
        if policies.purpose(&change.purpose).is_none() {
            return Err(ConsentError::UnknownPurpose {
                index: batch.then_some(index),
                purpose: change.purpose.clone(),
            });
        }
    }
    Ok(())
}

/// Refuses what the law or the policies do not allow for this subject.
fn check_change(
    policies: &Policies,
    subject: &Subject,
    change: &ConsentChange,
    now: DateTime<Utc>,
) -> Result<(), ConsentError> {
    let purpose =
        policies
            .purpose(&change.purpose)
            .ok_or_else(|| ConsentError::UnknownPurpose {
                index: None,
                purpose: change.purpose.clone(),
            })?;
    if change.status == ConsentStatus::Denied
        && purpose.effective_basis(&subject.person(policies), now) == Basis::NoticeOnly
    {
        return Err(ConsentError::NoticeOnly {
            purpose: change.purpose.clone(),
        });
    }
    if let Some(digest) = &change.notice_digest {
        if !policies.notices.is_current(digest) {
            let locale = subject.locale.as_deref().unwrap_or("en");
            let current = policies
                .notices
                .for_locale(locale)
                .map(|n| n.digest.clone())
                .unwrap_or_default();
            let all_current = policies
                .notices
                .iter()
                .map(|n| (n.locale.clone(), n.digest.clone()))
                .collect();
            return Err(ConsentError::StaleNotice {
                current,
                all_current,
            });
        }
    }
    Ok(())
}

/// Purposes a GPC signal should opt out now: `gpc = true`, not already refused, and never
/// opted out by GPC before (a grant the customer gave after a GPC opt-out stands).
/// `recorded`: the purposes a GPC opt-out was ever recorded for.
pub fn gpc_pending<'p>(
    policies: &'p Policies,
    states: &ConsentStates,
    recorded: &HashSet<String>,
) -> Vec<&'p Purpose> {
    policies
        .purposes()
        .iter()
        .filter(|p| p.gpc)
        .filter(|p| {
            states
                .get(&p.key)
                .is_none_or(|s| s.status != ConsentStatus::Denied)
        })
        .filter(|p| !recorded.contains(&p.key))
        .collect()
}

/// The one path by which a `Sec-GPC: 1` request is recorded: loads the subject and their
/// states, and when the signal still has something to opt out, writes it (audited, in
/// one transaction). `None`: no such subject.
pub fn load_recording_gpc(
    conn: &mut DbConnection,
    policies: &Policies,
    request: &ConsentWrite<'_>,
) -> Result<Option<(Subject, ConsentStates)>, ConsentError> {
    let Some(subject) = subject::find(conn, request.subject)? else {
        return Ok(None);
    };
    let states = ledger::states(conn, request.subject)?;
    if request.gpc
        && !gpc_pending(
            policies,
            &states,
            &ledger::gpc_recorded(conn, request.subject)?,
        )
        .is_empty()
    {
        return write(conn, policies, request).map(|w| Some((w.subject, w.states)));
    }
    Ok(Some((subject, states)))
}

/// Appends a change and its audit event. The one place consents are written.
fn append_audited(
    conn: &mut DbConnection,
    request: &ConsentWrite<'_>,
    change: &ConsentChange,
    purpose: &Purpose,
) -> Result<ledger::ConsentState, StorageError> {
    let (subject, actor, now) = (request.subject, request.actor, request.now);
    let state = ledger::append(conn, subject, change, purpose, actor, request.evidence, now)?;
    let action = match (change.status, change.source.is_signal()) {
        (ConsentStatus::Granted, _) => "consent.granted",
        (ConsentStatus::Denied, false) => "consent.denied",
        (ConsentStatus::Denied, true) => "consent.signal_opt_out",
    };
    audit::record(
        conn,
        request.pseudonyms,
        AuditEntry {
            actor,
            action,
            subject_id: Some(subject.as_str()),
            payload: json!({
                "purpose": change.purpose,
                "status": change.status.as_str(),
                "source": change.source.as_str(),
                "record_id": state.record_id,
                "purpose_version": purpose.version,
                "notice_digest": change.notice_digest,
            }),
            at: now,
        },
    )?;
    Ok(state)
}

/// The outcome of a write.
pub struct Written {
    pub subject: Subject,
    /// The subject's current states after the write.
    pub states: ConsentStates,
    /// GPC opt-outs this request recorded.
    pub gpc_recorded: Vec<ledger::ConsentState>,
}

/// Writes consents all or nothing.
pub fn write(
    conn: &mut DbConnection,
    policies: &Policies,
    request: &ConsentWrite<'_>,
) -> Result<Written, ConsentError> {
    write_transaction(conn, |conn| {
        let subject =
            subject::find_locked(conn, request.subject)?.ok_or(ConsentError::SubjectNotFound)?;
        let mut states = ledger::states(conn, request.subject)?;
        for change in request.changes {
            check_change(policies, &subject, change, request.now)?;
        }
        let mut gpc_recorded = Vec::new();
        if request.gpc {
            let recorded = ledger::gpc_recorded(conn, request.subject)?;
            for purpose in gpc_pending(policies, &states, &recorded) {
                let change = signal_change(purpose, ConsentSource::Gpc);
                let state = append_audited(conn, request, &change, purpose)?;
                states.insert(state.purpose.clone(), state.clone());
                gpc_recorded.push(state);
            }
        }
        for change in request.changes {
            let purpose =
                policies
                    .purpose(&change.purpose)
                    .ok_or_else(|| ConsentError::UnknownPurpose {
                        index: None,
                        purpose: change.purpose.clone(),
                    })?;
            let state = append_audited(conn, request, change, purpose)?;
            states.insert(state.purpose.clone(), state);
        }
        if !request.changes.is_empty() || !gpc_recorded.is_empty() {
            crate::storage::announce_subject_changed(conn, request.subject.as_str())?;
        }
        Ok(Written {
            subject,
            states,
            gpc_recorded,
        })
    })
}

/// Records opt-outs from a decoded privacy signal for each purpose not already refused.
pub fn record_signal_opt_outs(
    conn: &mut DbConnection,
    request: &ConsentWrite<'_>,
    purposes: &[&Purpose],
    source: ConsentSource,
) -> Result<Vec<ledger::ConsentState>, ConsentError> {
    write_transaction(conn, |conn| {
        if !ledger::lock_subject(conn, request.subject)? {
            return Err(ConsentError::SubjectNotFound);
        }
        let states = ledger::states(conn, request.subject)?;
        let mut recorded = Vec::new();
        for purpose in purposes {
            if states
                .get(&purpose.key)
                .is_some_and(|s| s.status == ConsentStatus::Denied)
            {
                continue;
            }
            let change = signal_change(purpose, source);
            recorded.push(append_audited(conn, request, &change, purpose)?);
        }
        if !recorded.is_empty() {
            crate::storage::announce_subject_changed(conn, request.subject.as_str())?;
        }
        Ok(recorded)
    })
}

fn signal_change(purpose: &Purpose, source: ConsentSource) -> ConsentChange {
    ConsentChange {
        purpose: purpose.key.clone(),
        status: ConsentStatus::Denied,
        source,
        notice_digest: None,
    }
}
