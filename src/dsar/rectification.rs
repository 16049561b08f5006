//! Rectification (GDPR Art. 16): a request whose details carry `attributes` says which
//! profile attributes are wrong and what they should be; completing it applies exactly
//! that, audited, in one transaction.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::audit::{self, Actor, AuditEntry, Pseudonymizer};
use crate::consent::ledger::lock_subject;
use crate::consent::SubjectId;
use crate::policy::Policies;
use crate::profiles::attributes::{self, AttributeChange};
use crate::profiles::changes::{check_changes, AttributeInput};
use crate::storage::{DbConnection, StorageError};
use crate::validation::FieldError;

/// `details.attributes` of a rectification request: `{"key": {"value", "category"} |
/// null}` (null: the attribute is wrong and should go).
type Requested = BTreeMap<String, Option<AttributeInput>>;

/// The profile changes a rectification request asks for (`None` when its details carry
/// no `attributes`: a correction described in words, done by hand), or its problems
/// named `details.attributes...`.
pub fn changes(
    policies: &Policies,
    details: &Value,
) -> Result<Option<BTreeMap<String, AttributeChange>>, Vec<FieldError>> {
    let Some(requested) = details.get("attributes") else {
        return Ok(None);
    };
    let parsed: Requested = serde_path_to_error::deserialize(requested.clone()).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "details.attributes".to_owned()
        } else {
            format!("details.attributes.{path}")
        };
        vec![FieldError::new(
            field,
            "invalid",
            format!(
                "{}; attributes to rectify are {{\"key\": {{\"value\", \"category\"}} or null}}",
                e.inner()
            ),
        )]
    })?;
    if parsed.is_empty() || parsed.len() > 100 {
        return Err(vec![FieldError::new(
            "details.attributes",
            "length",
            "1 to 100 attributes",
        )]);
    }
    check_changes(policies, "details.attributes", parsed).map(Some)
}

/// Applies a completed rectification; answers whether the subject still exists. Call
/// inside the write transaction that completes the request.
pub fn apply(
    conn: &mut DbConnection,
    pseudonyms: &Pseudonymizer,
    actor: &Actor,
    subject: &SubjectId,
    request_id: &str,
    changes: &BTreeMap<String, AttributeChange>,
    now: DateTime<Utc>,
) -> Result<bool, StorageError> {
    if !lock_subject(conn, subject)? {
        return Ok(false);
    }
    attributes::apply(conn, subject, changes, "rectification", now)?;
    audit::record(
        conn,
        pseudonyms,
        AuditEntry {
            actor,
            action: "dsar.rectified",
            subject_id: Some(subject.as_str()),
            payload: json!({"request_id": request_id, "attributes": changes.keys().collect::<Vec<_>>()}),
            at: now,
        },
    )?;
    Ok(true)
}
