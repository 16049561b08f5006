//! The audit log: every change is recorded here, by `record`, in the same transaction as
//! the change, as the next link of a hash chain. Nothing else writes audit rows.

pub mod api;
pub mod chain;
pub mod checkpoint;
pub mod export;
mod pending;
pub mod tombstones;

use std::path::Path;

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use diesel::prelude::*;
use serde_json::Value;

use self::chain::{ChainCheck, ChainedEvent, GENESIS};
use crate::auth::keys::KeyError;
use crate::auth::Principal;
use crate::crypto::sha256_hex;
use crate::crypto::KeyedHasher;
use crate::storage::schema::{audit_events, subjects};
use crate::storage::{write_transaction, DbConnection, StorageError};

const PSEUDONYM_SECRET_FILE: &str = "secrets/audit-pseudonym.key";
/// Advisory lock key that serializes appends on PostgreSQL ("audit" in ASCII).
const APPEND_LOCK: i64 = 0x61_7564_6974;

/// Who may export the log and verify the chain, through the API or the console.
pub const READERS: [crate::auth::Role; 1] = [crate::auth::Role::Compliance];

/// Who made a change: a caller's role and token subject, or the operator's CLI.
#[derive(Debug, Clone)]
pub struct Actor {
    pub role: String,
    pub id: Option<String>,
    /// The face the change came through when it was not the API (`portal`, `console`);
    /// recorded in the event's payload as `via`.
    pub via: Option<&'static str>,
}

impl Actor {
    pub fn operator() -> Self {
        Self {
            role: "operator".into(),
            id: None,
            via: None,
        }
    }

    /// The service itself, acting on its rules (a journey stage derived).
    pub fn system() -> Self {
        Self {
            role: "system".into(),
            id: None,
            via: None,
        }
    }
}

impl From<&Principal> for Actor {
    fn from(principal: &Principal) -> Self {
        Self {
            role: principal.role.as_str().to_owned(),
            id: principal.actor_id().map(str::to_owned),
            via: None,
        }
    }
}

/// Keyed pseudonyms of subjects: the chain hashes the pseudonym, so erasing a subject's
/// id from the log later does not break it, and a compliance officer still finds a
/// subject's events by computing the pseudonym of the id they ask about.
pub struct Pseudonymizer(KeyedHasher);

impl Pseudonymizer {
    pub fn load_or_generate(data_dir: &Path, configured: Option<&str>) -> Result<Self, KeyError> {
        KeyedHasher::load_or_generate(data_dir, PSEUDONYM_SECRET_FILE, configured).map(Self)
    }

    pub fn of(&self, subject_id: &str) -> String {
        self.0.hash(subject_id)
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
#[diesel(treat_none_as_default_value = false)]
struct NewAuditEvent {
    seq: i64,
    occurred_at: NaiveDateTime,
    actor_role: String,
    actor_id: Option<String>,
    action: String,
    subject_id: Option<String>,
    payload: String,
    subject_pseudonym: Option<String>,
    payload_digest: String,
    prev_hash: String,
    hash: String,
}

impl NewAuditEvent {
    /// A linked event's row; `subject_id` is the raw id kept beside the pseudonym.
    fn of(event: ChainedEvent, subject_id: Option<String>) -> Self {
        Self {
            seq: event.seq,
            occurred_at: event.occurred_at.naive_utc(),
            actor_role: event.actor_role,
            actor_id: event.actor_id,
            action: event.action,
            subject_id,
            payload: event.payload,
            subject_pseudonym: event.subject_pseudonym,
            payload_digest: event.payload_digest,
            prev_hash: event.prev_hash,
            hash: event.hash,
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = audit_events)]
struct AuditRow {
    seq: i64,
    occurred_at: NaiveDateTime,
    actor_role: String,
    actor_id: Option<String>,
    action: String,
    payload: String,
    subject_pseudonym: Option<String>,
    payload_digest: String,
    prev_hash: String,
    hash: String,
}

impl From<AuditRow> for ChainedEvent {
    fn from(row: AuditRow) -> Self {
        Self {
            seq: row.seq,
            occurred_at: row.occurred_at.and_utc(),
            actor_role: row.actor_role,
            actor_id: row.actor_id,
            action: row.action,
            subject_pseudonym: row.subject_pseudonym,
            payload: row.payload,
            payload_digest: row.payload_digest,
            prev_hash: row.prev_hash,
            hash: row.hash,
        }
    }
}

/// Serializes appends across requests and instances until the transaction ends. On
/// SQLite the write transaction's IMMEDIATE lock already does.
fn lock_chain(conn: &mut DbConnection) -> Result<(), StorageError> {
    if let DbConnection::Postgres(c) = conn {
        diesel::sql_query(format!("SELECT pg_advisory_xact_lock({APPEND_LOCK})")).execute(c)?;
    }
    Ok(())
}

/// The newest sealed event: `(seq, hash)`, or `(0, GENESIS)` for an empty log.
pub fn chain_head(conn: &mut DbConnection) -> Result<(i64, String), StorageError> {
    Ok(audit_events::table
        .filter(audit_events::hash.ne(""))
        .order(audit_events::seq.desc())
        .select((audit_events::seq, audit_events::hash))
        .first::<(i64, String)>(conn)
        .optional()?
        .unwrap_or((0, GENESIS.to_owned())))
}

/// Records a change as the chain's next link. Call it inside the write transaction that
/// makes the change (`write_transaction`), so that the change and its record commit or
/// fail together: the event joins the chain, and the outbox, just before that
/// transaction commits (`pending`), after the events of every transaction committed
/// before it. Outside a transaction it is one of its own.
pub fn record(
    conn: &mut DbConnection,
    pseudonyms: &Pseudonymizer,
    entry: AuditEntry<'_>,
) -> Result<(), StorageError> {
    if crate::storage::transaction_depth(conn)? == 0 {
        return record_alone(conn, pseudonyms, entry);
    }
    let at = entry.at.trunc_subsecs(6);
    let mut payload = entry.payload;
    if let (Some(via), Value::Object(fields)) = (entry.actor.via, &mut payload) {
        fields.insert("via".into(), Value::from(via));
    }
    let event = derive(
        ChainedEvent {
            occurred_at: at,
            actor_role: entry.actor.role.clone(),
            actor_id: entry.actor.id.clone(),
            action: entry.action.to_owned(),
            payload: payload.to_string(),
            ..ChainedEvent::default()
        },
        entry.subject_id,
        pseudonyms,
    );
    let waiting = pending::Waiting {
        event,
        subject_id: entry.subject_id.map(str::to_owned),
        payload,
    };
    pending::defer(conn, pending::Deferred::Event(Box::new(waiting)))
}

/// Empties the payloads and raw ids of every event about an erased subject, this
/// transaction's own included, when it commits (under the chain's lock, so that no event
/// about them slips in between). Call inside the erasure's transaction.
pub fn scrub_at_commit(conn: &mut DbConnection, pseudonym: &str) -> Result<(), StorageError> {
    pending::defer(
        conn,
        pending::Deferred::Scrub {
            pseudonym: pseudonym.to_owned(),
        },
    )
}

/// Whether a JSON payload's text holds `id`, as JSON escapes it inside a string.
fn mentions(payload: &str, id: &str) -> bool {
    let quoted = serde_json::to_string(id).unwrap_or_default();
    let escaped = quoted
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(id);
    payload.contains(escaped)
}

/// Fills in what the chain derives from an event's fields: the payload's digest, the
/// subject's keyed pseudonym, the link to the previous hash and the event's own hash.
fn link(
    event: ChainedEvent,
    subject_id: Option<&str>,
    prev_hash: String,
    pseudonyms: &Pseudonymizer,
) -> ChainedEvent {
    let mut event = derive(event, subject_id, pseudonyms);
    event.prev_hash = prev_hash;
    event.hash = event.expected_hash();
    event
}

/// What the chain derives from an event's own fields: the payload's digest and the
/// subject's keyed pseudonym. A subject acting for themselves is recorded under their
/// pseudonym too: the actor is hashed into the chain, so a raw id there could never be
/// erased.
fn derive(
    mut event: ChainedEvent,
    subject_id: Option<&str>,
    pseudonyms: &Pseudonymizer,
) -> ChainedEvent {
    event.payload_digest = sha256_hex(event.payload.as_bytes());
    event.subject_pseudonym = subject_id.map(|s| pseudonyms.of(s));
    if event.actor_role == crate::auth::Role::Subject.as_str() {
        event.actor_id = event.actor_id.map(|id| pseudonyms.of(&id));
    }
    event
}

/// `record` in a transaction of its own, for changes that have none (CLI, start-up).
pub fn record_alone(
    conn: &mut DbConnection,
    pseudonyms: &Pseudonymizer,
    entry: AuditEntry<'_>,
) -> Result<(), StorageError> {
    write_transaction(conn, |conn| record(conn, pseudonyms, entry))
}

/// Whether `id` is a customer's id, of a subject that exists or was erased.
pub fn names_subject(
    conn: &mut DbConnection,
    pseudonyms: &Pseudonymizer,
    id: &str,
) -> Result<bool, StorageError> {
    let present = subjects::table
        .find(id)
        .select(subjects::id)
        .first::<String>(conn)
        .optional()?
        .is_some();
    Ok(present || tombstones::is_erased(conn, &pseudonyms.of(id))?)
}

/// An event from before the chain: seq, time, role, actor id, action, subject id, payload.
type Unsealed = (
    i64,
    NaiveDateTime,
    String,
    Option<String>,
    String,
    Option<String>,
    String,
);

/// Seals events written before the chain existed (an empty `hash`), in order, after the
/// last sealed one. Runs at start; a no-op once everything is sealed.
pub fn seal_unchained(
    conn: &mut DbConnection,
    pseudonyms: &Pseudonymizer,
) -> Result<usize, StorageError> {
    // Unsealed events are the oldest (written before the chain) or the newest (written by
    // an older instance during an upgrade): when both ends are sealed, start-up need not
    // scan the whole log.
    let end_is_unsealed = |conn: &mut DbConnection, newest: bool| -> Result<bool, StorageError> {
        let query = audit_events::table.select(audit_events::hash).into_boxed();
        let query = if newest {
            query.order(audit_events::seq.desc())
        } else {
            query.order(audit_events::seq.asc())
        };
        Ok(query
            .first::<String>(conn)
            .optional()?
            .is_some_and(|h| h.is_empty()))
    };
    if !end_is_unsealed(conn, false)? && !end_is_unsealed(conn, true)? {
        return Ok(0);
    }
    write_transaction(conn, |conn| {
        lock_chain(conn)?;
        let pending: Vec<Unsealed> = audit_events::table
            .filter(audit_events::hash.eq(""))
            .order(audit_events::seq.asc())
            .select((
                audit_events::seq,
                audit_events::occurred_at,
                audit_events::actor_role,
                audit_events::actor_id,
                audit_events::action,
                audit_events::subject_id,
                audit_events::payload,
            ))
            .load(conn)?;
        let (_, mut prev_hash) = chain_head(conn)?;
        for (seq, at, role, actor_id, action, subject_id, payload) in &pending {
            let event = link(
                ChainedEvent {
                    seq: *seq,
                    occurred_at: at.and_utc(),
                    actor_role: role.clone(),
                    actor_id: actor_id.clone(),
                    action: action.clone(),
                    payload: payload.clone(),
                    ..ChainedEvent::default()
                },
                subject_id.as_deref(),
                prev_hash,
                pseudonyms,
            );
            diesel::update(audit_events::table.find(*seq))
                .set((
                    audit_events::actor_id.eq(&event.actor_id),
                    audit_events::subject_pseudonym.eq(&event.subject_pseudonym),
                    audit_events::payload_digest.eq(&event.payload_digest),
                    audit_events::prev_hash.eq(&event.prev_hash),
                    audit_events::hash.eq(&event.hash),
                ))
                .execute(conn)?;
            prev_hash = event.hash;
        }
        Ok(pending.len())
    })
}

/// Re-walks the chain (or the events from `from_seq` on) in pages, with constant memory,
/// and holds it against the signed checkpoints in the range.
pub fn verify(
    conn: &mut DbConnection,
    keys: &crate::auth::KeyRing,
    from_seq: Option<i64>,
    to_seq: Option<i64>,
) -> Result<ChainCheck, StorageError> {
    const PAGE: i64 = 1_000;
    let start = from_seq.unwrap_or(1).max(1);
    let mut check = if start == 1 {
        ChainCheck::after(0, GENESIS)
    } else {
        // The event before the range anchors it.
        let anchor = audit_events::table
            .find(start - 1)
            .select((audit_events::seq, audit_events::hash))
            .first::<(i64, String)>(conn)
            .optional()?
            .unwrap_or((start - 1, String::new()));
        ChainCheck::after(anchor.0, &anchor.1)
    };
    let checkpoints = checkpoint::within(conn, start, to_seq)?;
    let mut pending = checkpoints.iter().peekable();
    let mut next = start;
    loop {
        let mut query = audit_events::table
            .filter(audit_events::seq.ge(next))
            .into_boxed();
        if let Some(to) = to_seq {
            query = query.filter(audit_events::seq.le(to));
        }
        let rows: Vec<AuditRow> = query
            .order(audit_events::seq.asc())
            .limit(PAGE)
            .select(AuditRow::as_select())
            .load(conn)?;
        let count = rows.len();
        for row in rows {
            next = row.seq + 1;
            let event = ChainedEvent::from(row);
            if !check.push(&event) {
                return Ok(check);
            }
            while let Some(cp) = pending.next_if(|cp| cp.seq <= event.seq) {
                if cp.seq != event.seq || cp.hash != event.hash {
                    check.fail(cp.seq, "the chain differs from a signed checkpoint");
                } else if !checkpoint::signature_holds(keys, cp) {
                    check.fail(cp.seq, "a checkpoint's signature does not verify");
                } else {
                    check.checkpoints_checked += 1;
                }
            }
            if !check.ok() {
                return Ok(check);
            }
        }
        if (count as i64) < PAGE {
            return Ok(check);
        }
    }
}

/// Events `from..=to` by `seq`, at most `limit`.
pub fn page(
    conn: &mut DbConnection,
    from: i64,
    to: i64,
    limit: i64,
) -> Result<Vec<ChainedEvent>, StorageError> {
    Ok(audit_events::table
        .filter(audit_events::seq.ge(from))
        .filter(audit_events::seq.le(to))
        .order(audit_events::seq.asc())
        .limit(limit)
        .select(AuditRow::as_select())
        .load(conn)?
        .into_iter()
        .map(ChainedEvent::from)
        .collect())
}

/// How many events are about the subject with this pseudonym.
pub fn count_about_subject(conn: &mut DbConnection, pseudonym: &str) -> Result<i64, StorageError> {
    Ok(audit_events::table
        .filter(audit_events::subject_pseudonym.eq(pseudonym))
        .count()
        .get_result(conn)?)
}

/// Events about one subject (by pseudonym), oldest first, at most `limit`.
pub fn about_subject(
    conn: &mut DbConnection,
    pseudonym: &str,
    limit: i64,
) -> Result<Vec<ChainedEvent>, StorageError> {
    Ok(audit_events::table
        .filter(audit_events::subject_pseudonym.eq(pseudonym))
        .order(audit_events::seq.asc())
        .limit(limit)
        .select(AuditRow::as_select())
        .load(conn)?
        .into_iter()
        .map(ChainedEvent::from)
        .collect())
}
