//! Signed checkpoints of the chain's head: every N events (a background task) and at
//! every export. Verification compares the chain with them, so rewriting the chain from
//! some event on, hashes recomputed, is caught without the service's private key.

use std::sync::{Arc, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::json;

use crate::auth::keys::SigningKey;
use crate::auth::KeyRing;
use crate::clock::SharedClock;
use crate::storage::schema::audit_checkpoints;
use crate::storage::{ConnectionManager, DbConnection, StorageError};

const POLL: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_checkpoints)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: String,
    pub kid: String,
    /// A JWS (EdDSA) over `{seq, hash, iat}`.
    pub signature: String,
    pub created_at: chrono::NaiveDateTime,
}

/// Signing failed: nothing is stored or sent in place of a signature.
#[derive(Debug, thiserror::Error)]
#[error("cannot sign an audit checkpoint: {0}")]
pub struct SignError(#[from] jsonwebtoken::errors::Error);

/// A checkpoint could not be made: the database, or the signature.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Sign(#[from] SignError),
}

/// A compact JWS (EdDSA, the key's `kid` in its header) over `claims`.
pub fn jws<T: serde::Serialize>(key: &SigningKey, claims: &T) -> Result<String, SignError> {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(key.kid.clone());
    Ok(jsonwebtoken::encode(&header, claims, key.encoding_key())?)
}

/// Signs `(seq, hash)` with `key`.
pub fn sign_with(
    key: &SigningKey,
    seq: i64,
    hash: &str,
    now: DateTime<Utc>,
) -> Result<Checkpoint, SignError> {
    Ok(Checkpoint {
        seq,
        hash: hash.to_owned(),
        kid: key.kid.clone(),
        signature: jws(
            key,
            &json!({"seq": seq, "hash": hash, "iat": now.timestamp()}),
        )?,
        created_at: now.naive_utc(),
    })
}

/// Signs `(seq, hash)` with the newest key.
pub fn sign(
    keys: &KeyRing,
    seq: i64,
    hash: &str,
    now: DateTime<Utc>,
) -> Result<Checkpoint, SignError> {
    sign_with(keys.signing(), seq, hash, now)
}

/// The head a verification reached, signed for the officer who asked: a JWS (EdDSA)
/// over `{iss, head_seq, head_hash, ok, iat}`, checkable with the JWKS.
pub fn sign_head(
    keys: &KeyRing,
    issuer: &str,
    check: &super::chain::ChainCheck,
    now: DateTime<Utc>,
) -> Result<String, SignError> {
    jws(
        keys.signing(),
        &json!({
            "iss": issuer,
            "head_seq": check.head_seq,
            "head_hash": check.head_hash,
            "ok": check.ok(),
            "iat": now.timestamp(),
        }),
    )
}

/// Whether a stored checkpoint is signed by one of the ring's keys for its own `(seq, hash)`.
pub fn signature_holds(keys: &KeyRing, checkpoint: &Checkpoint) -> bool {
    let Some(key) = keys.verifying(&checkpoint.kid) else {
        return false;
    };
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    jsonwebtoken::decode::<serde_json::Value>(&checkpoint.signature, &key.decoding, &validation)
        .map(|t| t.claims["seq"] == checkpoint.seq && t.claims["hash"] == checkpoint.hash)
        .unwrap_or(false)
}

/// Stores a checkpoint; a second one for the same event (another instance) is ignored.
pub fn store(conn: &mut DbConnection, checkpoint: &Checkpoint) -> Result<(), StorageError> {
    match conn {
        DbConnection::Postgres(c) => diesel::insert_into(audit_checkpoints::table)
            .values(checkpoint)
            .on_conflict_do_nothing()
            .execute(c)?,
        DbConnection::Sqlite(c) => diesel::insert_into(audit_checkpoints::table)
            .values(checkpoint)
            .on_conflict_do_nothing()
            .execute(c)?,
    };
    Ok(())
}

/// Checkpoints with `seq` in the range, in order.
pub fn within(
    conn: &mut DbConnection,
    from: i64,
    to: Option<i64>,
) -> Result<Vec<Checkpoint>, StorageError> {
    let mut query = audit_checkpoints::table
        .filter(audit_checkpoints::seq.ge(from))
        .into_boxed();
    if let Some(to) = to {
        query = query.filter(audit_checkpoints::seq.le(to));
    }
    Ok(query
        .order(audit_checkpoints::seq.asc())
        .select(Checkpoint::as_select())
        .load(conn)?)
}

/// Signs the head when `every` events have been appended since the last checkpoint.
pub fn checkpoint_if_due(
    conn: &mut DbConnection,
    keys: &KeyRing,
    every: i64,
    now: DateTime<Utc>,
) -> Result<Option<i64>, CheckpointError> {
    let last: Option<i64> = audit_checkpoints::table
        .select(diesel::dsl::max(audit_checkpoints::seq))
        .first(conn)
        .map_err(StorageError::from)?;
    let (seq, hash) = super::chain_head(conn)?;
    if seq == 0 || seq < last.unwrap_or(0) + every {
        return Ok(None);
    }
    store(conn, &sign(keys, seq, &hash, now)?)?;
    Ok(Some(seq))
}

/// Runs `checkpoint_if_due` every couple of seconds until the app's keys are dropped.
pub fn spawn(
    manager: ConnectionManager,
    keys: Weak<KeyRing>,
    every: i64,
    clock: SharedClock,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("consentry-checkpoints".into())
        .spawn(move || {
            let mut conn: Option<DbConnection> = None;
            loop {
                std::thread::sleep(POLL);
                let Some(keys): Option<Arc<KeyRing>> = keys.upgrade() else {
                    return;
                };
                if conn.is_none() {
                    conn = manager.establish().ok();
                }
                if let Some(c) = conn.as_mut() {
                    if let Err(err) = checkpoint_if_due(c, &keys, every, clock.now()) {
                        tracing::warn!(error = %err, "audit checkpoint failed; retrying");
                        conn = None;
                    }
                }
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_signature_is_an_error_never_an_empty_string() {
        let now = Utc::now();
        let err = sign_with(&SigningKey::unusable(), 7, "abc", now).unwrap_err();
        assert!(err.to_string().contains("cannot sign"), "{err}");
        assert!(jws(&SigningKey::unusable(), &json!({"seq": 7})).is_err());

        let keys = KeyRing::ephemeral().unwrap();
        let signed = sign(&keys, 7, "abc", now).unwrap();
        assert!(!signed.signature.is_empty());
        assert!(signature_holds(&keys, &signed));
    }
}
