//! One customer under many identifiers: the keys other services know a subject by
//! (a hashed e-mail, a CRM id, a device id; kinds from `policies/identifiers.toml`), one
//! subject per identifier, and where a merged subject's old id now leads.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::ledger::lock_subject;
use super::SubjectId;
use crate::audit::{self, Actor, AuditEntry, Pseudonymizer};
use crate::policy::identifier_kind::normalise;
use crate::policy::IdentifierKinds;
use crate::storage::schema::{subject_identifiers, subject_merges};
use crate::storage::{write_transaction, DbConnection, StorageError};
use crate::validation::FieldError;

/// An identifier as a request writes it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"type": "email_sha256", "value": "b4c9a289323b21a01c3e940f150eb9b8c542587f1abfd8f0e1cc1ffc5e475514"}))]
pub struct IdentifierInput {
    /// A kind of `policies/identifiers.toml`: `email_sha256`, `phone_sha256`, `crm_id`,
    /// `device_id`, `advertising_id`.
    #[serde(rename = "type")]
    #[schema(pattern = "^[a-z][a-z0-9_]{0,31}$")]
    pub kind: String,
    /// The value in its kind's format; raw e-mail addresses and phone numbers are
    /// refused.
    #[schema(min_length = 1, max_length = 128)]
    pub value: String,
}

/// A checked identifier: a known kind and a normalised value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, ToSchema)]
pub struct Identifier {
    #[serde(rename = "type")]
    #[schema(example = "crm_id")]
    pub kind: String,
    #[schema(example = "CRM-00012345")]
    pub value: String,
}

impl IdentifierInput {
    /// Checks the kind and the value; `field` names the identifier in the request
    /// (`identifier`, `identifiers[2]`).
    pub fn checked(&self, kinds: &IdentifierKinds, field: &str) -> Result<Identifier, FieldError> {
        let Some(kind) = kinds.get(&self.kind) else {
            return Err(FieldError::new(
                format!("{field}.type"),
                "unknown_identifier_type",
                format!(
                    "`{}` is not an identifier type; one of: {}",
                    self.kind,
                    kinds.listed()
                ),
            ));
        };
        let value = normalise(kind.format, &self.value).map_err(|problem| {
            FieldError::new(
                format!("{field}.value"),
                problem.code(),
                problem.to_string(),
            )
        })?;
        Ok(Identifier {
            kind: kind.name.clone(),
            value,
        })
    }
}

/// A subject's identifiers, by kind then value.
pub fn of_subject(
    conn: &mut DbConnection,
    subject: &str,
) -> Result<BTreeSet<Identifier>, StorageError> {
    let rows: Vec<(String, String)> = subject_identifiers::table
        .filter(subject_identifiers::subject_id.eq(subject))
        .select((subject_identifiers::kind, subject_identifiers::value))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(kind, value)| Identifier { kind, value })
        .collect())
}

/// Whose an identifier is.
pub fn owner(
    conn: &mut DbConnection,
    identifier: &Identifier,
) -> Result<Option<String>, StorageError> {
    Ok(subject_identifiers::table
        .find((&identifier.kind, &identifier.value))
        .select(subject_identifiers::subject_id)
        .first(conn)
        .optional()?)
}

/// The subject an id was merged into, if it was.
pub fn merged_into(conn: &mut DbConnection, id: &str) -> Result<Option<String>, StorageError> {
    Ok(subject_merges::table
        .find(id)
        .select(subject_merges::into_id)
        .first(conn)
        .optional()?)
}

/// What replacing a subject's identifiers came to.
#[derive(Debug)]
pub enum Replaced {
    Saved(BTreeSet<Identifier>),
    NoSuchSubject,
    /// An identifier already names another subject; nothing was changed.
    Taken {
        identifier: Identifier,
        owner: String,
    },
}

/// Makes `identifiers` the subject's whole set, audited, in one transaction.
pub fn replace(
    conn: &mut DbConnection,
    pseudonyms: &Pseudonymizer,
    actor: &Actor,
    subject: &SubjectId,
    identifiers: &BTreeSet<Identifier>,
    now: DateTime<Utc>,
) -> Result<Replaced, StorageError> {
    write_transaction(conn, |conn| {
        if !lock_subject(conn, subject)? {
            return Ok(Replaced::NoSuchSubject);
        }
        for identifier in identifiers {
            if let Some(owner) = owner(conn, identifier)? {
                if owner != subject.as_str() {
                    return Ok(Replaced::Taken {
                        identifier: identifier.clone(),
                        owner,
                    });
                }
            }
        }
        let before = of_subject(conn, subject.as_str())?;
        for gone in before.difference(identifiers) {
            diesel::delete(subject_identifiers::table.find((&gone.kind, &gone.value)))
                .execute(conn)?;
        }
        for new in identifiers.difference(&before) {
            diesel::insert_into(subject_identifiers::table)
                .values((
                    subject_identifiers::kind.eq(&new.kind),
                    subject_identifiers::value.eq(&new.value),
                    subject_identifiers::subject_id.eq(subject.as_str()),
                    subject_identifiers::created_at.eq(now.naive_utc()),
                ))
                .execute(conn)?;
        }
        crate::storage::announce_subject_changed(conn, subject.as_str())?;
        // Kinds and counts only: the values are keys to the person elsewhere.
        let kinds: BTreeSet<&str> = identifiers.iter().map(|i| i.kind.as_str()).collect();
        audit::record(
            conn,
            pseudonyms,
            AuditEntry {
                actor,
                action: "identifiers.updated",
                subject_id: Some(subject.as_str()),
                payload: json!({
                    "types": kinds,
                    "added": identifiers.difference(&before).count(),
                    "removed": before.difference(identifiers).count(),
                }),
                at: now,
            },
        )?;
        Ok(Replaced::Saved(identifiers.clone()))
    })
}

/// Deletes a subject's identifiers and the merges into it (erasure); answers the ids
/// merged into it, which must be tombstoned too. Call inside its transaction.
pub fn erase_subject(conn: &mut DbConnection, subject: &str) -> Result<Vec<String>, StorageError> {
    diesel::delete(subject_identifiers::table.filter(subject_identifiers::subject_id.eq(subject)))
        .execute(conn)?;
    let merged: Vec<String> = subject_merges::table
        .filter(subject_merges::into_id.eq(subject))
        .select(subject_merges::from_id)
        .load(conn)?;
    diesel::delete(subject_merges::table.filter(subject_merges::into_id.eq(subject)))
        .execute(conn)?;
    Ok(merged)
}

/// Whom a request names: a subject id, or an identifier to resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectRef {
    Id(SubjectId),
    Identifier(Identifier),
}

/// Checks the `subject_id` or `identifier` of a request body (exactly one of them),
/// naming the field under `prefix`.
pub fn subject_ref(
    kinds: &IdentifierKinds,
    subject_id: Option<&str>,
    identifier: Option<&IdentifierInput>,
    prefix: &str,
) -> Result<SubjectRef, FieldError> {
    match (subject_id, identifier) {
        (Some(id), None) => SubjectId::parse(id)
            .map(SubjectRef::Id)
            .map_err(|m| FieldError::new(format!("{prefix}subject_id"), "invalid", m)),
        (None, Some(identifier)) => identifier
            .checked(kinds, &format!("{prefix}identifier"))
            .map(SubjectRef::Identifier),
        (Some(_), Some(_)) => Err(FieldError::new(
            format!("{prefix}identifier"),
            "conflict",
            "give `subject_id` or `identifier`, not both",
        )),
        (None, None) => Err(FieldError::new(
            format!("{prefix}subject_id"),
            "required",
            "required (or name the subject by `identifier`)",
        )),
    }
}
