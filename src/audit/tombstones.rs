//! Tombstones of erased subjects, under their keyed pseudonyms: the gate denies an erased
//! subject all but strictly necessary processing, and the audit log never writes their
//! raw id again, though nothing else of them is left.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::storage::schema::erasures;
use crate::storage::{DbConnection, StorageError};

pub fn is_erased(conn: &mut DbConnection, pseudonym: &str) -> Result<bool, StorageError> {
    Ok(erasures::table
        .find(pseudonym)
        .select(erasures::pseudonym)
        .first::<String>(conn)
        .optional()?
        .is_some())
}

/// Which of these pseudonyms have a tombstone, in one query.
pub fn erased_among(
    conn: &mut DbConnection,
    pseudonyms: Vec<&str>,
) -> Result<std::collections::HashSet<String>, StorageError> {
    if pseudonyms.is_empty() {
        return Ok(Default::default());
    }
    Ok(erasures::table
        .filter(erasures::pseudonym.eq_any(pseudonyms))
        .select(erasures::pseudonym)
        .load::<String>(conn)?
        .into_iter()
        .collect())
}

/// Records that the subject with this pseudonym was erased (once; a second erasure keeps
/// the first time). Call inside the erasure's transaction.
pub fn record(
    conn: &mut DbConnection,
    pseudonym: &str,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let row = (
        erasures::pseudonym.eq(pseudonym),
        erasures::erased_at.eq(now.naive_utc()),
    );
    // The MultiConnection has no on_conflict: one line per backend.
    match conn {
        DbConnection::Postgres(c) => diesel::insert_into(erasures::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(c)?,
        DbConnection::Sqlite(c) => diesel::insert_into(erasures::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(c)?,
    };
    Ok(())
}
