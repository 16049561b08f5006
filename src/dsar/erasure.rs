//! Erasure (GDPR Art. 17, CCPA right to delete). In one transaction: the profile,
//! preferences, identifiers, customer events, messages sent, and survey displays, responses and follow-ups go;
//! consent records and requests keep only what proves consent — the purpose, status,
//! time, version and notice digest — under the subject's keyed pseudonym, without the
//! client IP hash or user agent, and what the subject did themselves names them by the
//! pseudonym too; audit events keep their digests and pseudonym but lose their payloads
//! and the raw id, so the chain still verifies (events recorded later about an erased
//! subject never hold the raw id: see `audit::record`); a tombstone under the pseudonym
//! makes the gate deny all but strictly necessary processing.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::json;

use crate::audit::{self, Actor, AuditEntry, Pseudonymizer};
use crate::consent::subject::SubjectId;
use crate::storage::schema::{
    consent_records, consent_states, dsar_requests, dsar_steps, portal_links, portal_sessions,
    preferences, profile_attributes, subjects,
};
use crate::storage::{write_transaction, DbConnection, StorageError};

/// Erases a subject; answers whether there was one.
pub fn erase(
    conn: &mut DbConnection,
    pseudonyms: &Pseudonymizer,
    actor: &Actor,
    id: &SubjectId,
    now: DateTime<Utc>,
) -> Result<bool, StorageError> {
    let pseudonym = pseudonyms.of(id.as_str());
    write_transaction(conn, |conn| {
        let Some((region, created_at)) = subjects::table
            .find(id.as_str())
            .select((subjects::region, subjects::created_at))
            .first::<(String, chrono::NaiveDateTime)>(conn)
            .optional()?
        else {
            return Ok(false);
        };
        crate::storage::announce_subject_changed(conn, id.as_str())?;
        // The proof of consent moves to a row named by the pseudonym (region kept: it says
        // which law the consents were given under); the foreign keys hold throughout.
        diesel::insert_into(subjects::table)
            .values((
                subjects::id.eq(&pseudonym),
                subjects::region.eq(&region),
                subjects::created_at.eq(created_at),
                subjects::updated_at.eq(now.naive_utc()),
            ))
            .execute(conn)?;
        diesel::update(consent_records::table.filter(consent_records::subject_id.eq(id.as_str())))
            .set((
                consent_records::subject_id.eq(&pseudonym),
                consent_records::ip_hash.eq(None::<String>),
                consent_records::user_agent.eq(None::<String>),
            ))
            .execute(conn)?;
        // What the subject did themselves is kept under their pseudonym too.
        let subject_role = crate::auth::Role::Subject.as_str();
        diesel::update(
            consent_records::table
                .filter(consent_records::actor_role.eq(subject_role))
                .filter(consent_records::actor_id.eq(id.as_str())),
        )
        .set(consent_records::actor_id.eq(&pseudonym))
        .execute(conn)?;
        diesel::update(
            dsar_steps::table
                .filter(dsar_steps::actor_role.eq(subject_role))
                .filter(dsar_steps::actor_id.eq(id.as_str())),
        )
        .set(dsar_steps::actor_id.eq(&pseudonym))
        .execute(conn)?;
        diesel::update(consent_states::table.filter(consent_states::subject_id.eq(id.as_str())))
            .set(consent_states::subject_id.eq(&pseudonym))
            .execute(conn)?;
        diesel::update(dsar_requests::table.filter(dsar_requests::subject_id.eq(id.as_str())))
            .set(dsar_requests::subject_id.eq(&pseudonym))
            .execute(conn)?;
        diesel::delete(
            profile_attributes::table.filter(profile_attributes::subject_id.eq(id.as_str())),
        )
        .execute(conn)?;
        diesel::delete(preferences::table.find(id.as_str())).execute(conn)?;
        // Portal links and sessions name the subject; none may open anything after.
        diesel::delete(portal_links::table.filter(portal_links::subject_id.eq(id.as_str())))
            .execute(conn)?;
        diesel::delete(portal_sessions::table.filter(portal_sessions::subject_id.eq(id.as_str())))
            .execute(conn)?;
        crate::surveys::store::erase_subject(conn, id.as_str())?;
        crate::surveys::events::erase_subject(conn, id.as_str())?;
        crate::consent::contacts::erase_subject(conn, id.as_str())?;
        // Ids merged into the subject lead nowhere now; each is erased as they are.
        for merged in crate::consent::identifiers::erase_subject(conn, id.as_str())? {
            audit::tombstones::record(conn, &pseudonyms.of(&merged), now)?;
            crate::storage::announce_subject_changed(conn, &merged)?;
        }
        diesel::delete(subjects::table.find(id.as_str())).execute(conn)?;
        audit::tombstones::record(conn, &pseudonym, now)?;
        audit::record(
            conn,
            pseudonyms,
            AuditEntry {
                actor,
                action: "subject.erased",
                subject_id: Some(id.as_str()),
                payload: json!({}),
                at: now,
            },
        )?;
        // Payloads and raw ids of every event about the subject go; digests and pseudonyms stay.
        audit::scrub_at_commit(conn, &pseudonym)?;
        Ok(true)
    })
}
