//! The rules of a data subject request: kinds, the status it may move to, its deadline.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::policy::Jurisdiction;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    Access,
    Portability,
    Erasure,
    Rectification,
    Restriction,
    Objection,
    /// The CCPA/CPRA right to opt out of sale and sharing.
    OptOutSale,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    Received,
    Verified,
    InProgress,
    Completed,
    Rejected,
}

impl RequestKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Portability => "portability",
            Self::Erasure => "erasure",
            Self::Rectification => "rectification",
            Self::Restriction => "restriction",
            Self::Objection => "objection",
            Self::OptOutSale => "opt_out_sale",
        }
    }
}

impl RequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Verified => "verified",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Rejected => "rejected",
        }
    }

    pub fn is_open(self) -> bool {
        !matches!(self, Self::Completed | Self::Rejected)
    }

    /// received → verified → in_progress → completed, and rejected from any open status.
    pub fn may_become(self, next: RequestStatus) -> bool {
        use RequestStatus::*;
        matches!(
            (self, next),
            (Received, Verified)
                | (Verified, InProgress)
                | (InProgress, Completed)
                | (Received | Verified | InProgress, Rejected)
        )
    }
}

/// When the answer is due: the jurisdiction's response period from receipt.
pub fn due_date(jurisdiction: &Jurisdiction, received_at: DateTime<Utc>) -> DateTime<Utc> {
    jurisdiction.dsar_response.after(received_at)
}

/// The extended deadline, if the jurisdiction allows one: the extension counts from the
/// original due date (GDPR Art. 12(3): "by two further months"; CCPA: "once by an
/// additional 45 days").
pub fn extended_due_date(
    jurisdiction: &Jurisdiction,
    due_at: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    jurisdiction
        .dsar_extension
        .map(|period| period.after(due_at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::path::Path;

    #[test]
    fn statuses_move_forward_only() {
        use RequestStatus::*;
        assert!(Received.may_become(Verified));
        assert!(Verified.may_become(InProgress));
        assert!(InProgress.may_become(Completed));
        assert!(Received.may_become(Rejected));
        for (from, to) in [
            (Received, Completed),
            (Verified, Received),
            (Completed, Rejected),
            (Rejected, Verified),
            (InProgress, Verified),
            (Completed, Completed),
        ] {
            assert!(!from.may_become(to), "{from:?} → {to:?}");
        }
    }

    #[test]
    fn deadlines_per_jurisdiction() {
        let policies =
            crate::policy::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")).unwrap();
        let received = Utc.with_ymd_and_hms(2026, 1, 31, 9, 0, 0).unwrap();
        let eea = policies.jurisdictions.get("eea").unwrap();
        let due = due_date(eea, received);
        assert_eq!(
            due,
            Utc.with_ymd_and_hms(2026, 2, 28, 9, 0, 0).unwrap(),
            "one month, clamped"
        );
        assert_eq!(
            extended_due_date(eea, due),
            Some(Utc.with_ymd_and_hms(2026, 4, 28, 9, 0, 0).unwrap())
        );
        let ca = policies.jurisdictions.get("us_ca").unwrap();
        let due = due_date(ca, received);
        assert_eq!(
            due,
            Utc.with_ymd_and_hms(2026, 3, 17, 9, 0, 0).unwrap(),
            "45 days"
        );
        assert_eq!(
            extended_due_date(ca, due),
            Some(Utc.with_ymd_and_hms(2026, 5, 1, 9, 0, 0).unwrap())
        );
    }
}
