//! Consent receipts: the claims of a signed receipt, following the Kantara Initiative
//! Consent Receipt Specification (v1.1) where its fields apply.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::ledger::{ConsentState, ConsentStatus};
use super::subject::Subject;
use crate::policy::{Basis, Policies, Purpose};

pub const RECEIPT_VERSION: &str = "KI-CR-v1.1.0";

/// Who the receipt names as controller, and where its policy is.
#[derive(Debug, Clone)]
pub struct ReceiptSettings {
    pub issuer: String,
    pub controller: String,
    pub policy_url: Option<String>,
}

pub fn claims(
    settings: &ReceiptSettings,
    policies: &Policies,
    subject: &Subject,
    purpose: &Purpose,
    record: &ConsentState,
    now: DateTime<Utc>,
) -> Value {
    let jurisdiction = policies.jurisdictions.for_region(&subject.region);
    let basis = purpose.basis_for(&jurisdiction.key);
    let language = subject.locale.clone().unwrap_or_else(|| "en".into());
    let consent_type = match basis {
        Basis::OptIn => "EXPLICIT",
        Basis::OptOut => "OPT-OUT",
        Basis::LegitimateInterest => "LEGITIMATE-INTEREST",
        Basis::NoticeOnly => "NOTICE",
        Basis::Prohibited => "PROHIBITED",
    };
    json!({
        // JWT claims
        "iss": settings.issuer,
        "sub": subject.id.as_str(),
        "iat": now.timestamp(),
        "jti": uuid::Uuid::new_v4().to_string(),
        // Kantara Consent Receipt v1.1
        "version": RECEIPT_VERSION,
        "jurisdiction": jurisdiction.key,
        "consentTimestamp": record.updated_at.timestamp(),
        "collectionMethod": record.source.as_str(),
        "consentReceiptID": record.record_id,
        "language": language,
        "piiPrincipalId": subject.id.as_str(),
        "piiControllers": [{
            "piiController": settings.controller,
            "onBehalf": false,
            "policyUrl": settings.policy_url,
        }],
        "policyUrl": settings.policy_url,
        "services": [{
            "service": purpose.name.get(&language).unwrap_or(&purpose.key),
            "purposes": [{
                "purpose": purpose.description.get(&language).or_else(|| purpose.name.get(&language)).unwrap_or(&purpose.key),
                "purposeCategory": [purpose.key],
                "consentType": consent_type,
                "piiCategory": purpose.data_categories,
                "primaryPurpose": true,
                "termination": record.expires_at.map(|t| t.to_rfc3339()).unwrap_or_else(|| "until withdrawn".into()),
                "thirdPartyDisclosure": purpose.sale_or_share,
            }],
        }],
        "sensitive": false,
        "spiCat": [],
        // What was decided, exactly
        "consentStatus": record.status.as_str(),
        "granted": record.status == ConsentStatus::Granted,
        "purposeKey": purpose.key,
        "purposeVersion": record.purpose_version,
        "noticeDigest": record.notice_digest,
        "expiresAt": record.expires_at.map(|t| t.to_rfc3339()),
    })
}
