//! The decision rules (DESIGN §3), as one pure function of the policies, what is known of
//! the subject, and the request. No I/O: the caller loads the state.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::consent::ledger::{ConsentSource, ConsentState, ConsentStates, ConsentStatus};
use crate::consent::preferences::Preferences;
use crate::consent::{Subject, SubjectSnapshot};
use crate::policy::key::self_and_ancestors;
use crate::policy::taxonomy::category_covers;
use crate::policy::{Basis, Channel, PersonFacts, Policies, Purpose};

/// Why the gate answered as it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    // Allow
    /// A current, unexpired consent under the current purpose version.
    ConsentGranted,
    /// Opt-out basis and the customer has not opted out.
    NotOptedOut,
    /// Legitimate interest and the customer has not objected.
    LegitimateInterest,
    /// Strictly necessary: always allowed.
    NoticeOnly,
    // Deny
    /// The subject was erased.
    SubjectErased,
    /// Processing is restricted (GDPR Art. 18).
    ProcessingRestricted,
    /// The purpose is prohibited in this jurisdiction.
    Prohibited,
    /// The customer refused, withdrew or opted out.
    ConsentDenied,
    /// The customer objected to processing on legitimate interest.
    Objected,
    /// A Global Privacy Control signal opted the customer out.
    GpcOptOut,
    /// An IAB US Privacy or GPP string opted the customer out.
    SignalOptOut,
    /// The consent has passed its lifetime and must be asked again.
    ConsentExpired,
    /// The consent was given under an older version of the purpose.
    ReconsentRequired,
    /// Consent is needed and none was given.
    NoConsent,
    /// The customer opted out of the channel asked about.
    ChannelOptedOut,
    /// A data category asked for is not declared by the purpose.
    CategoryNotDeclared,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::ConsentGranted => "consent_granted",
            Reason::NotOptedOut => "not_opted_out",
            Reason::LegitimateInterest => "legitimate_interest",
            Reason::NoticeOnly => "notice_only",
            Reason::SubjectErased => "subject_erased",
            Reason::ProcessingRestricted => "processing_restricted",
            Reason::Prohibited => "prohibited",
            Reason::ConsentDenied => "consent_denied",
            Reason::Objected => "objected",
            Reason::GpcOptOut => "gpc_opt_out",
            Reason::SignalOptOut => "signal_opt_out",
            Reason::ConsentExpired => "consent_expired",
            Reason::ReconsentRequired => "reconsent_required",
            Reason::NoConsent => "no_consent",
            Reason::ChannelOptedOut => "channel_opted_out",
            Reason::CategoryNotDeclared => "category_not_declared",
        }
    }
}

/// What is known of the subject; a subject that does not exist is decided by the default
/// jurisdiction with no records.
#[derive(Debug, Clone, Copy)]
pub struct SubjectFacts<'a> {
    pub person: PersonFacts<'a>,
    pub erased: bool,
    pub restricted: bool,
    pub consents: &'a ConsentStates,
    pub preferences: Option<&'a Preferences>,
}

impl<'a> SubjectFacts<'a> {
    /// The one way facts are built: a stored subject (or none: the default jurisdiction,
    /// erased if a tombstone says so), their current consents and preferences.
    pub fn new(
        policies: &'a Policies,
        subject: Option<&'a Subject>,
        erased: bool,
        consents: &'a ConsentStates,
        preferences: Option<&'a Preferences>,
    ) -> Self {
        match subject {
            Some(subject) => Self {
                person: subject.person(policies),
                erased: false,
                restricted: subject.restricted_at.is_some(),
                consents,
                preferences,
            },
            None => Self {
                person: PersonFacts::unknown(policies),
                erased,
                restricted: false,
                consents,
                preferences: None,
            },
        }
    }
}

/// Decides one request against a subject's snapshot (an unknown subject gets the default
/// jurisdiction and no records).
pub fn decide_for(
    policies: &Policies,
    snapshot: &SubjectSnapshot,
    request: &DecisionRequest<'_>,
) -> Decision {
    let facts = SubjectFacts::new(
        policies,
        snapshot.subject.as_ref(),
        snapshot.erased,
        &snapshot.consents,
        snapshot.preferences.as_ref(),
    );
    decide(policies, &facts, request)
}

#[derive(Debug, Clone, Copy)]
pub struct DecisionRequest<'a> {
    pub purpose: &'a Purpose,
    pub channel: Option<&'a Channel>,
    pub data_categories: &'a [String],
    /// A `Sec-GPC: 1` header came with the request.
    pub gpc: bool,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: Reason,
    /// The basis that applied (a known minor turns opt-out into opt-in for sale/sharing).
    pub basis: Basis,
    pub jurisdiction: String,
    /// The record relied on, its own purpose or the nearest ancestor's.
    pub record: Option<ConsentState>,
}

impl Decision {
    fn new(
        allowed: bool,
        reason: Reason,
        basis: Basis,
        subject: &SubjectFacts<'_>,
        record: Option<&ConsentState>,
    ) -> Self {
        Self {
            allowed,
            reason,
            basis,
            jurisdiction: subject.person.jurisdiction.key.clone(),
            record: record.cloned(),
        }
    }

    /// The record's purpose when it is an ancestor's.
    pub fn inherited_from(&self, purpose: &str) -> Option<&str> {
        self.record
            .as_ref()
            .map(|r| r.purpose.as_str())
            .filter(|p| *p != purpose)
    }
}

/// The most specific record: the purpose's own, else the nearest ancestor's.
fn most_specific<'a>(consents: &'a ConsentStates, purpose: &str) -> Option<&'a ConsentState> {
    self_and_ancestors(purpose).find_map(|key| consents.get(key))
}

/// The gate's answer. Rules in order: erasure and restriction, prohibition and notice,
/// the most specific record, the basis when there is none, then the channel, then
/// purpose limitation.
pub fn decide(
    policies: &Policies,
    subject: &SubjectFacts<'_>,
    request: &DecisionRequest<'_>,
) -> Decision {
    let purpose = request.purpose;
    let basis = purpose.effective_basis(&subject.person, request.now);
    let deny = |reason, record| Decision::new(false, reason, basis, subject, record);

    // Rule 2: erased or restricted subjects keep only what is strictly necessary.
    if basis != Basis::NoticeOnly {
        if subject.erased {
            return deny(Reason::SubjectErased, None);
        }
        if subject.restricted {
            return deny(Reason::ProcessingRestricted, None);
        }
    }
    let by_consent = match basis {
        Basis::Prohibited => return deny(Reason::Prohibited, None),
        Basis::NoticeOnly => Decision::new(true, Reason::NoticeOnly, basis, subject, None),
        _ => match most_specific(subject.consents, &purpose.key) {
            // Rule 3: the most specific explicit record wins.
            Some(record) => judge_record(policies, record, basis, subject, request.now),
            // Rule 4: no record, the basis decides.
            None => match basis {
                Basis::OptIn => deny(Reason::NoConsent, None),
                Basis::OptOut if request.gpc && purpose.gpc => deny(Reason::GpcOptOut, None),
                Basis::OptOut => Decision::new(true, Reason::NotOptedOut, basis, subject, None),
                _ => Decision::new(true, Reason::LegitimateInterest, basis, subject, None),
            },
        },
    };
    if !by_consent.allowed {
        return by_consent;
    }
    // Rule 5: the channel the customer opted out of.
    if let Some(channel) = request.channel {
        if subject.preferences.is_some_and(|p| p.opted_out_of(channel)) {
            return Decision {
                allowed: false,
                reason: Reason::ChannelOptedOut,
                ..by_consent
            };
        }
    }
    // Rule 6: purpose limitation.
    if request
        .data_categories
        .iter()
        .any(|c| !category_covers(&purpose.data_categories, c))
    {
        return Decision {
            allowed: false,
            reason: Reason::CategoryNotDeclared,
            ..by_consent
        };
    }
    by_consent
}

fn judge_record(
    policies: &Policies,
    record: &ConsentState,
    basis: Basis,
    subject: &SubjectFacts<'_>,
    now: DateTime<Utc>,
) -> Decision {
    let decision = |allowed, reason| Decision::new(allowed, reason, basis, subject, Some(record));
    match record.status {
        ConsentStatus::Denied => decision(
            false,
            match record.source {
                ConsentSource::Gpc => Reason::GpcOptOut,
                ConsentSource::Usp | ConsentSource::Gpp => Reason::SignalOptOut,
                _ if basis == Basis::LegitimateInterest => Reason::Objected,
                _ => Reason::ConsentDenied,
            },
        ),
        ConsentStatus::Granted => {
            // Compared with the version of the purpose the record was given for.
            let current_version = policies.purpose(&record.purpose).map(|p| p.version);
            if current_version.is_some_and(|v| record.purpose_version < v) {
                decision(false, Reason::ReconsentRequired)
            } else if record.expires_at.is_some_and(|at| at <= now) {
                decision(false, Reason::ConsentExpired)
            } else {
                decision(true, Reason::ConsentGranted)
            }
        }
    }
}

#[cfg(test)]
mod tests;
