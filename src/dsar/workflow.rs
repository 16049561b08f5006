//! What a change to a data subject request does, decided without I/O: a status moves
//! only forward, the deadline is extended at most once while the request is open, and
//! completing or rejecting some kinds has effects (erasure, rectification, lifting a
//! restriction) that the caller then carries out.

use chrono::{DateTime, Utc};

use super::requests::DataSubjectRequest;
use super::rules::{extended_due_date, RequestKind, RequestStatus};
use crate::policy::Jurisdiction;

/// What a caller asks of a request.
#[derive(Debug, Clone, Default)]
pub struct ChangeAsked {
    pub status: Option<RequestStatus>,
    /// A reason to extend the deadline.
    pub extend: Option<String>,
}

/// A change the rules refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeRefused {
    #[error("send `status`, `extend` or both")]
    Empty,
    #[error("The deadline can be extended once, while the request is open.")]
    AlreadyExtendedOrClosed,
    #[error("This jurisdiction allows no extension.")]
    NoExtension,
    #[error("A request cannot go from `{from}` to `{to}`.")]
    IllegalMove { from: String, to: String },
}

/// The request after the change, and what the change sets off.
#[derive(Debug, Clone)]
pub struct ChangePlan {
    pub request: DataSubjectRequest,
    pub previous: RequestStatus,
    /// The audit action that records it.
    pub action: &'static str,
    /// An erasure request completed now: erase the subject.
    pub erases: bool,
    /// A rectification completed now: apply what it asked.
    pub rectifies: bool,
    /// A restriction rejected now: lift it.
    pub lifts_restriction: bool,
}

/// Applies `asked` to `request` by the rules, at `now`.
pub fn plan(
    mut request: DataSubjectRequest,
    asked: &ChangeAsked,
    jurisdiction: &Jurisdiction,
    now: DateTime<Utc>,
) -> Result<ChangePlan, ChangeRefused> {
    if asked.status.is_none() && asked.extend.is_none() {
        return Err(ChangeRefused::Empty);
    }
    let previous = request.status;
    let mut action = "dsar.status_changed";
    if let Some(reason) = &asked.extend {
        if request.extended || !request.status.is_open() {
            return Err(ChangeRefused::AlreadyExtendedOrClosed);
        }
        request.due_at =
            extended_due_date(jurisdiction, request.due_at).ok_or(ChangeRefused::NoExtension)?;
        request.extended = true;
        request.extension_reason = Some(reason.clone());
        action = "dsar.extended";
    }
    if let Some(next) = asked.status {
        if !request.status.may_become(next) {
            return Err(ChangeRefused::IllegalMove {
                from: request.status.as_str().to_owned(),
                to: next.as_str().to_owned(),
            });
        }
        request.status = next;
        action = "dsar.status_changed";
    }
    request.updated_at = now;
    let moved_to =
        |kind, status| asked.status.is_some() && request.kind == kind && request.status == status;
    let erases = moved_to(RequestKind::Erasure, RequestStatus::Completed);
    let rectifies = moved_to(RequestKind::Rectification, RequestStatus::Completed);
    let lifts_restriction = moved_to(RequestKind::Restriction, RequestStatus::Rejected);
    Ok(ChangePlan {
        request,
        previous,
        action,
        erases,
        rectifies,
        lifts_restriction,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, TimeZone};

    fn policies() -> crate::policy::Policies {
        crate::policy::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"))
            .unwrap()
    }

    fn request(kind: RequestKind, status: RequestStatus) -> DataSubjectRequest {
        let at = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
        DataSubjectRequest {
            id: "r1".into(),
            subject_id: "s1".into(),
            kind,
            status,
            details: serde_json::Value::Null,
            jurisdiction: "eea".into(),
            received_at: at,
            due_at: at + TimeDelta::days(30),
            extended: false,
            extension_reason: None,
            updated_at: at,
        }
    }

    fn ask(status: Option<RequestStatus>, extend: Option<&str>) -> ChangeAsked {
        ChangeAsked {
            status,
            extend: extend.map(str::to_owned),
        }
    }

    #[test]
    fn statuses_move_forward_and_the_deadline_extends_once() {
        let policies = policies();
        let eea = policies.jurisdictions.get("eea").unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 5, 0, 0, 0).unwrap();
        let open = request(RequestKind::Access, RequestStatus::Received);
        assert_eq!(
            plan(open.clone(), &ask(None, None), eea, now).unwrap_err(),
            ChangeRefused::Empty
        );
        let extended = plan(open.clone(), &ask(None, Some("complex")), eea, now).unwrap();
        assert!(extended.request.extended && extended.request.due_at > open.due_at);
        assert_eq!(extended.action, "dsar.extended");
        assert_eq!(
            plan(extended.request, &ask(None, Some("again")), eea, now).unwrap_err(),
            ChangeRefused::AlreadyExtendedOrClosed
        );
        let verified = plan(open, &ask(Some(RequestStatus::Verified), None), eea, now).unwrap();
        assert_eq!(
            (verified.previous, verified.request.status),
            (RequestStatus::Received, RequestStatus::Verified)
        );
        assert!(matches!(
            plan(
                verified.request,
                &ask(Some(RequestStatus::Received), None),
                eea,
                now
            ),
            Err(ChangeRefused::IllegalMove { .. })
        ));
    }

    #[test]
    fn completing_or_rejecting_some_kinds_sets_off_their_effect() {
        let policies = policies();
        let eea = policies.jurisdictions.get("eea").unwrap();
        let now = Utc::now();
        let done = |kind| {
            plan(
                request(kind, RequestStatus::InProgress),
                &ask(Some(RequestStatus::Completed), None),
                eea,
                now,
            )
            .unwrap()
        };
        assert!(done(RequestKind::Erasure).erases);
        assert!(done(RequestKind::Rectification).rectifies);
        assert!(!done(RequestKind::Access).erases);
        let rejected = plan(
            request(RequestKind::Restriction, RequestStatus::Received),
            &ask(Some(RequestStatus::Rejected), None),
            eea,
            now,
        )
        .unwrap();
        assert!(rejected.lifts_restriction && !rejected.erases);
    }
}
