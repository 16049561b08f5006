//! A subject's whole state as the rules see it, loaded in one go: the gate caches it,
//! surveys judge eligibility on it.

use std::collections::{BTreeSet, HashSet};
use std::sync::LazyLock;

use chrono::NaiveDateTime;
use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, HasSqlType, Integer, Nullable, Text, Timestamp, Untyped};
use diesel::{QueryResult, QueryableByName, RunQueryDsl};

use super::contacts::{self, SentMessages};
use super::identifiers::Identifier;
use super::ledger::{corrupt, ConsentSource, ConsentState, ConsentStates, StateRow};
use super::preferences::{self, Preferences};
use super::subject::{Subject, SubjectId, SubjectRow};
use crate::audit::Pseudonymizer;
use crate::storage::{DbConnection, StorageError};

/// Everything the rules need about one subject.
#[derive(Debug, Clone, Default, PartialEq)]
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
    /// The subject's state, in one query (one round trip on PostgreSQL): a cache miss
    /// on the gate's hot path waits for it. For an absent subject, whether it was merged
    /// into another, or else erased (a tombstone under its keyed pseudonym).
    pub fn load(
        conn: &mut DbConnection,
        id: &SubjectId,
        pseudonyms: &Pseudonymizer,
    ) -> Result<Self, StorageError> {
        let query = OneQuery {
            id: id.as_str(),
            pseudonym: &pseudonyms.of(id.as_str()),
            gpc: ConsentSource::Gpc.as_str(),
        };
        let rows: Vec<PartRow> = match conn {
            DbConnection::Postgres(c) => query.load(c)?,
            DbConnection::Sqlite(c) => query.load(c)?,
        };
        Self::from_parts(rows)
    }

    fn from_parts(rows: Vec<PartRow>) -> Result<Self, StorageError> {
        let mut snapshot = Self::default();
        let mut merged_into = None;
        let mut erased = false;
        let mut contacts = Vec::new();
        for row in rows {
            match row.part {
                part::SUBJECT => {
                    snapshot.subject = Some(Subject::try_from(SubjectRow {
                        id: required(row.a)?,
                        region: required(row.b)?,
                        locale: row.c,
                        birth_year: row
                            .n1
                            .map(i32::try_from)
                            .transpose()
                            .map_err(|_| corrupt("birth year"))?,
                        created_at: required(row.t1)?,
                        updated_at: required(row.t2)?,
                        restricted_at: row.t3,
                    })?)
                }
                part::CONSENT => {
                    let state = ConsentState::try_from(StateRow {
                        subject_id: String::new(),
                        purpose: required(row.a)?,
                        status: required(row.b)?,
                        source: required(row.c)?,
                        record_id: required(row.d)?,
                        notice_digest: row.e,
                        record_seq: required(row.n1)?,
                        purpose_version: i32::try_from(required(row.n2)?)
                            .map_err(|_| corrupt("version"))?,
                        updated_at: required(row.t1)?,
                        expires_at: row.t2,
                    })?;
                    snapshot.consents.insert(state.purpose.clone(), state);
                }
                part::PREFERENCES => {
                    snapshot.preferences = Some(preferences::stored_document(&required(row.a)?)?)
                }
                part::GPC => {
                    snapshot.gpc_recorded.insert(required(row.a)?);
                }
                part::CONTACT => contacts.push((required(row.a)?, required(row.t1)?)),
                part::IDENTIFIER => {
                    snapshot.identifiers.insert(Identifier {
                        kind: required(row.a)?,
                        value: required(row.b)?,
                    });
                }
                part::MERGED => merged_into = row.a.and_then(|to| SubjectId::parse(&to).ok()),
                part::ERASED => erased = true,
                other => return Err(corrupt(&format!("snapshot part {other}"))),
            }
        }
        snapshot.sent = SentMessages::from_rows(contacts);
        if snapshot.subject.is_none() {
            // Merged wins: the tombstone of a merged id, if any, is not what it is now.
            snapshot.erased = erased && merged_into.is_none();
            snapshot.merged_into = merged_into;
        }
        Ok(snapshot)
    }
}

/// Which part of a snapshot a row of the one query carries.
mod part {
    pub const SUBJECT: i32 = 0;
    pub const CONSENT: i32 = 1;
    pub const PREFERENCES: i32 = 2;
    pub const GPC: i32 = 3;
    pub const CONTACT: i32 = 4;
    pub const IDENTIFIER: i32 = 5;
    pub const MERGED: i32 = 6;
    pub const ERASED: i32 = 7;
}

/// A row of the one query: its part and that part's columns in shared slots, as the
/// query's branches place them.
#[derive(QueryableByName)]
struct PartRow {
    #[diesel(sql_type = Integer)]
    part: i32,
    #[diesel(sql_type = Nullable<Text>)]
    a: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    b: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    c: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    d: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    e: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    n1: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    n2: Option<i64>,
    #[diesel(sql_type = Nullable<Timestamp>)]
    t1: Option<NaiveDateTime>,
    #[diesel(sql_type = Nullable<Timestamp>)]
    t2: Option<NaiveDateTime>,
    #[diesel(sql_type = Nullable<Timestamp>)]
    t3: Option<NaiveDateTime>,
}

/// The one query, a statement type of its own: each connection prepares it once and
/// keeps it, where a `sql_query` is prepared (and on PostgreSQL planned) again at every
/// call, which cost more than the round trips saved.
struct OneQuery<'a> {
    id: &'a str,
    pseudonym: &'a str,
    gpc: &'static str,
}

impl QueryId for OneQuery<'_> {
    type QueryId = OneQuery<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for OneQuery<'_> {
    type SqlType = Untyped;
}

impl<Conn> RunQueryDsl<Conn> for OneQuery<'_> {}

impl<DB> QueryFragment<DB> for OneQuery<'_>
where
    DB: Backend + HasSqlType<Text>,
    str: ToSql<Text, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        for piece in ONE_QUERY.iter() {
            match piece {
                Piece::Sql(sql) => out.push_sql(sql),
                Piece::Id => out.push_bind_param::<Text, str>(self.id)?,
                Piece::Pseudonym => out.push_bind_param::<Text, str>(self.pseudonym)?,
                Piece::Gpc => out.push_bind_param::<Text, str>(self.gpc)?,
            }
        }
        Ok(())
    }
}

/// The query's text between its parameters, and which parameter goes where.
enum Piece {
    Sql(String),
    Id,
    Pseudonym,
    Gpc,
}

/// The one query: `$1` stands for the subject id, `$2` its pseudonym, `$3` the GPC
/// source (each backend gets its own placeholders). Every slot a branch leaves empty is
/// a typed NULL, so PostgreSQL matches the branches' column types.
static ONE_QUERY: LazyLock<Vec<Piece>> = LazyLock::new(|| {
    let limit = contacts::SNAPSHOT_LIMIT;
    let text = format!(
        "SELECT {subject} AS part, id AS a, region AS b, locale AS c, {t} AS d, {t} AS e, \
           CAST(birth_year AS BIGINT) AS n1, {n} AS n2, \
           created_at AS t1, updated_at AS t2, restricted_at AS t3 \
         FROM subjects WHERE id = $1 \
         UNION ALL SELECT {consent}, purpose, status, source, record_id, notice_digest, \
           record_seq, CAST(purpose_version AS BIGINT), updated_at, expires_at, {ts} \
         FROM consent_states WHERE subject_id = $1 \
         UNION ALL SELECT {preferences}, document, {t}, {t}, {t}, {t}, {n}, {n}, \
           updated_at, {ts}, {ts} \
         FROM preferences WHERE subject_id = $1 \
         UNION ALL SELECT DISTINCT {gpc}, purpose, {t}, {t}, {t}, {t}, {n}, {n}, {ts}, {ts}, {ts} \
         FROM consent_records WHERE subject_id = $1 AND source = $3 \
         UNION ALL SELECT {contact}, channel, {t}, {t}, {t}, {t}, {n}, {n}, sent_at, {ts}, {ts} \
         FROM (SELECT channel, sent_at FROM contacts WHERE subject_id = $1 \
           ORDER BY sent_at DESC LIMIT {limit}) newest \
         UNION ALL SELECT {identifier}, kind, value, {t}, {t}, {t}, {n}, {n}, {ts}, {ts}, {ts} \
         FROM subject_identifiers WHERE subject_id = $1 \
         UNION ALL SELECT {merged}, into_id, {t}, {t}, {t}, {t}, {n}, {n}, {ts}, {ts}, {ts} \
         FROM subject_merges WHERE from_id = $1 \
         UNION ALL SELECT {erased}, {t}, {t}, {t}, {t}, {t}, {n}, {n}, {ts}, {ts}, {ts} \
         FROM erasures WHERE pseudonym = $2",
        subject = part::SUBJECT,
        consent = part::CONSENT,
        preferences = part::PREFERENCES,
        gpc = part::GPC,
        contact = part::CONTACT,
        identifier = part::IDENTIFIER,
        merged = part::MERGED,
        erased = part::ERASED,
        t = "CAST(NULL AS TEXT)",
        n = "CAST(NULL AS BIGINT)",
        ts = "CAST(NULL AS TIMESTAMP)",
    );
    let mut pieces = Vec::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find('$') {
        pieces.push(Piece::Sql(rest[..at].to_owned()));
        pieces.push(match &rest[at + 1..at + 2] {
            "1" => Piece::Id,
            "2" => Piece::Pseudonym,
            _ => Piece::Gpc,
        });
        rest = &rest[at + 2..];
    }
    pieces.push(Piece::Sql(rest.to_owned()));
    pieces
});

/// A column its part always fills.
fn required<T>(value: Option<T>) -> Result<T, StorageError> {
    value.ok_or_else(|| corrupt("NULL"))
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
        let consents = hash_table::<(String, super::ConsentState)>(snapshot.consents.capacity())
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
