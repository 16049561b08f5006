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

/// About how many bytes a snapshot takes in memory, its own and what it points to, as
/// the allocator hands them out: what the decision cache weighs against a memory
/// budget. Hash tables count their buckets, B-trees their nodes, strings their
/// capacity, each allocation its header and rounding. Checked against the process's
/// growth in `bench/memory.sh`.
pub mod footprint {
    use std::mem::size_of;

    use super::SubjectSnapshot;

    /// One allocation of `bytes`: a word of header, rounded up to 16, at least 32.
    pub fn allocation(bytes: usize) -> usize {
        if bytes == 0 {
            0
        } else {
            ((bytes + 8).div_ceil(16) * 16).max(32)
        }
    }

    pub fn string(s: &str) -> usize {
        allocation(s.len())
    }

    fn optional(s: &Option<String>) -> usize {
        s.as_deref().map_or(0, string)
    }

    /// A hash table's one allocation: its buckets and a control byte each.
    pub fn hash_table<T>(capacity: usize) -> usize {
        if capacity == 0 {
            return 0;
        }
        let buckets = if capacity < 8 {
            (capacity + 1).next_power_of_two()
        } else {
            (capacity * 8 / 7).next_power_of_two()
        };
        allocation(buckets * (size_of::<T>() + 1) + 16)
    }

    /// A B-tree's nodes: eleven slots each, filled two thirds on average.
    pub fn btree<T>(len: usize) -> usize {
        if len == 0 {
            return 0;
        }
        let nodes = len.div_ceil(7);
        nodes * allocation(11 * size_of::<T>() + 16)
    }

    pub(super) fn of(snapshot: &SubjectSnapshot) -> usize {
        let subject = snapshot.subject.as_ref().map_or(0, |s| {
            string(s.id.as_str()) + string(s.region.as_str()) + optional(&s.locale)
        });
        let consents =
            hash_table::<(String, super::ledger::ConsentState)>(snapshot.consents.capacity())
                + snapshot
                    .consents
                    .iter()
                    .map(|(key, state)| {
                        string(key)
                            + string(&state.purpose)
                            + string(&state.record_id)
                            + optional(&state.notice_digest)
                    })
                    .sum::<usize>();
        let preferences = snapshot.preferences.as_ref().map_or(0, |p| {
            allocation(size_of::<super::Preferences>())
                + btree::<(String, super::preferences::ChannelPreference)>(p.channels.len())
                + p.channels.keys().map(|k| string(k)).sum::<usize>()
                + allocation(p.channel_order.capacity() * size_of::<String>())
                + p.channel_order.iter().map(|c| string(c)).sum::<usize>()
                + optional(&p.language)
                + optional(&p.timezone)
                + p.quiet_hours
                    .as_ref()
                    .map_or(0, |q| string(&q.start) + string(&q.end))
        });
        let gpc = hash_table::<String>(snapshot.gpc_recorded.capacity())
            + snapshot
                .gpc_recorded
                .iter()
                .map(|p| string(p))
                .sum::<usize>();
        let identifiers = btree::<super::Identifier>(snapshot.identifiers.len())
            + snapshot
                .identifiers
                .iter()
                .map(|i| string(&i.kind) + string(&i.value))
                .sum::<usize>();
        // The snapshot itself sits behind an `Arc` (two counters before it).
        allocation(size_of::<SubjectSnapshot>() + 16)
            + subject
            + consents
            + preferences
            + gpc
            + identifiers
            + snapshot.sent.approximate_bytes()
            + snapshot
                .merged_into
                .as_ref()
                .map_or(0, |m| string(m.as_str()))
    }
}

impl SubjectSnapshot {
    /// About how many bytes the snapshot takes in memory (see `footprint`).
    pub fn approximate_bytes(&self) -> usize {
        footprint::of(self)
    }
}

#[cfg(test)]
mod tests {
    use super::footprint::{allocation, hash_table};
    use super::*;

    #[test]
    fn allocations_count_their_header_and_rounding() {
        assert_eq!(allocation(0), 0);
        assert_eq!(allocation(1), 32);
        assert_eq!(allocation(24), 32);
        assert_eq!(allocation(25), 48);
        assert_eq!(hash_table::<u64>(0), 0);
        // Three entries take four buckets; fourteen take sixteen.
        assert_eq!(hash_table::<u64>(3), allocation(4 * 9 + 16));
        assert_eq!(hash_table::<u64>(14), allocation(16 * 9 + 16));
    }

    #[test]
    fn a_fuller_snapshot_weighs_more() {
        let empty = SubjectSnapshot::default();
        let mut full = SubjectSnapshot::default();
        full.gpc_recorded.insert("marketing.email".into());
        full.identifiers.insert(Identifier {
            kind: "crm_id".into(),
            value: "CRM-00012345".into(),
        });
        assert!(full.approximate_bytes() > empty.approximate_bytes() + 64);
    }
}
