//! A subject's whole state as the rules see it, loaded in one go: the gate caches it,
//! surveys judge eligibility on it.

use std::collections::{BTreeSet, HashSet};

use super::identifiers::{self, Identifier};
use super::ledger::{self, ConsentStates};
use super::preferences::{self, Preferences};
use super::subject::{self, Subject, SubjectId};
use crate::audit::{tombstones, Pseudonymizer};
use crate::consent::contacts::SentMessages;
use crate::storage::{DbConnection, StorageError};

/// Everything the rules need about one subject.
#[derive(Debug, Clone, Default)]
pub struct SubjectSnapshot {
    /// `None`: no such subject; the default jurisdiction decides.
    pub subject: Option<Subject>,
    pub consents: ConsentStates,
    pub preferences: Option<Preferences>,
    /// Purposes a GPC opt-out was ever recorded for.
    pub gpc_recorded: HashSet<String>,
    /// No such subject, because it was erased (a tombstone under its pseudonym).
    pub erased: bool,
    /// Messages recently sent to the subject, for reach's weekly caps.
    pub sent: SentMessages,
    /// The identifiers the subject is known by elsewhere.
    pub identifiers: BTreeSet<Identifier>,
    /// No such subject, because it was merged into this one.
    pub merged_into: Option<SubjectId>,
}

impl SubjectSnapshot {
    /// The subject's state; for an absent subject, whether its tombstone (under its
    /// keyed pseudonym, computed only then) says it was erased.
    pub fn load(
        conn: &mut DbConnection,
        id: &SubjectId,
        pseudonyms: &Pseudonymizer,
    ) -> Result<Self, StorageError> {
        let Some(found) = subject::find(conn, id)? else {
            if let Some(into) = identifiers::merged_into(conn, id.as_str())? {
                return Ok(Self {
                    merged_into: SubjectId::parse(&into).ok(),
                    ..Self::default()
                });
            }
            return Ok(Self {
                erased: tombstones::is_erased(conn, &pseudonyms.of(id.as_str()))?,
                ..Self::default()
            });
        };
        Ok(Self {
            consents: ledger::states(conn, id)?,
            preferences: preferences::find(conn, id)?.map(|(p, _)| p),
            gpc_recorded: ledger::gpc_recorded(conn, id)?,
            sent: SentMessages::load(conn, id)?,
            identifiers: identifiers::of_subject(conn, id.as_str())?,
            merged_into: None,
            subject: Some(found),
            erased: false,
        })
    }
}
