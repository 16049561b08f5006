//! Telling other instances that a subject changed. Every write that changes what the gate
//! would decide calls this inside its transaction; on PostgreSQL it is a `NOTIFY`,
//! delivered on commit to the instances listening (`gate::notify`), which drop the
//! subject from their caches. SQLite has one instance, which invalidates in process.

use diesel::sql_types::Text;
use diesel::RunQueryDsl;

use super::{DbConnection, StorageError};

/// The notification channel; the payload is the subject id.
pub const SUBJECT_CHANGED: &str = "consentry_subject_changed";

/// Announces a change to `subject_id`. Call inside the write transaction.
pub fn announce_subject_changed(
    conn: &mut DbConnection,
    subject_id: &str,
) -> Result<(), StorageError> {
    if let DbConnection::Postgres(c) = conn {
        diesel::sql_query("SELECT pg_notify($1, $2)")
            .bind::<Text, _>(SUBJECT_CHANGED)
            .bind::<Text, _>(subject_id)
            .execute(c)?;
    }
    Ok(())
}
