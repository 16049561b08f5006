//! Filing a request: its deadline from the subject's jurisdiction, its record and audit
//! event, and what filing does at once (an objection or an opt-out of sale withdraws the
//! purposes it covers). The API and the preference centre file through here.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::audit::{Actor, Pseudonymizer};
use crate::consent::subject::{self, Subject};
use crate::consent::write::ConsentError;
use crate::consent::SubjectId;
use crate::dsar::requests::{self, DataSubjectRequest};
use crate::dsar::rules::{due_date, RequestKind, RequestStatus};
use crate::policy::Policies;
use crate::storage::DbConnection;

/// A request filed, and whether the subject's consents changed with it (the gate must
/// forget what it holds of them).
#[derive(Debug, Clone)]
pub struct Filed {
    pub request: DataSubjectRequest,
    pub consents_changed: bool,
}

/// A new request for a subject, received now. A request about an unknown subject is
/// still recorded (the law does not wait for us to find them), under the default
/// jurisdiction.
pub fn new_request(
    policies: &Policies,
    found: Option<&Subject>,
    subject_id: &SubjectId,
    kind: RequestKind,
    details: Value,
    now: DateTime<Utc>,
) -> DataSubjectRequest {
    let jurisdiction = match found {
        Some(s) => policies.jurisdictions.for_region(&s.region),
        None => policies.jurisdictions.default_jurisdiction(),
    };
    DataSubjectRequest {
        id: uuid::Uuid::new_v4().to_string(),
        subject_id: subject_id.to_string(),
        kind,
        status: RequestStatus::Received,
        details,
        jurisdiction: jurisdiction.key.clone(),
        received_at: now,
        due_at: due_date(jurisdiction, now),
        extended: false,
        extension_reason: None,
        updated_at: now,
    }
}

/// What is asked, by whom it is about.
#[derive(Debug, Clone)]
pub struct Filing {
    pub subject_id: SubjectId,
    pub kind: RequestKind,
    /// What the request says (e.g. what to rectify), a JSON object.
    pub details: Value,
}

/// Files a request: looks the subject up, records the request and applies its effects.
pub fn file(
    conn: &mut DbConnection,
    policies: &Policies,
    pseudonyms: &Pseudonymizer,
    actor: &Actor,
    filing: Filing,
    now: DateTime<Utc>,
) -> Result<Filed, ConsentError> {
    let Filing {
        subject_id,
        kind,
        details,
    } = filing;
    let found = subject::find(conn, &subject_id)?;
    let request = new_request(policies, found.as_ref(), &subject_id, kind, details, now);
    requests::create(conn, pseudonyms, actor, &request)?;
    let consents_changed = match &found {
        Some(found) => {
            crate::dsar::effects::on_filing(conn, policies, pseudonyms, actor, found, kind, now)?
        }
        None => false,
    };
    Ok(Filed {
        request,
        consents_changed,
    })
}
