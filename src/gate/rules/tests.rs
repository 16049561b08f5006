//! The rules as tables: one row per rule and jurisdiction.

use std::path::Path;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use super::*;
use crate::consent::ledger::{ConsentSource, ConsentState, ConsentStates, ConsentStatus};
use crate::consent::preferences::{ChannelPreference, Preferences};
use crate::policy::{load, Basis, Policies, Region};

fn policies() -> Policies {
    load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")).unwrap()
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
}

/// A record as the ledger would hold it.
fn record(purpose: &str, status: ConsentStatus, source: ConsentSource) -> ConsentState {
    ConsentState {
        purpose: purpose.into(),
        status,
        source,
        record_id: format!("rec-{purpose}"),
        purpose_version: 1,
        notice_digest: None,
        updated_at: now() - TimeDelta::days(10),
        expires_at: None,
    }
}

fn granted(purpose: &str) -> ConsentState {
    record(purpose, ConsentStatus::Granted, ConsentSource::Portal)
}

fn denied(purpose: &str) -> ConsentState {
    record(purpose, ConsentStatus::Denied, ConsentSource::Portal)
}

struct Case<'a> {
    region: &'a str,
    birth_year: Option<i32>,
    purpose: &'a str,
    records: Vec<ConsentState>,
    gpc: bool,
    channel: Option<&'a str>,
    categories: &'a [&'a str],
    erased: bool,
    restricted: bool,
    preferences: Option<Preferences>,
}

impl Default for Case<'_> {
    fn default() -> Self {
        Self {
            region: "DE",
            birth_year: None,
            purpose: "analytics",
            records: Vec::new(),
            gpc: false,
            channel: None,
            categories: &[],
            erased: false,
            restricted: false,
            preferences: None,
        }
    }
}

fn run(policies: &Policies, case: &Case<'_>) -> Decision {
    let region = Region::parse(case.region).unwrap();
    let consents: ConsentStates = case
        .records
        .iter()
        .map(|r| (r.purpose.clone(), r.clone()))
        .collect();
    let subject = SubjectFacts {
        person: PersonFacts::new(policies, &region, case.birth_year),
        erased: case.erased,
        restricted: case.restricted,
        consents: &consents,
        preferences: case.preferences.as_ref(),
    };
    let categories: Vec<String> = case.categories.iter().map(|c| c.to_string()).collect();
    let channel = case.channel.map(|c| policies.channels.parse(c).unwrap());
    let request = DecisionRequest {
        purpose: policies.purpose(case.purpose).unwrap(),
        channel: channel.as_ref(),
        data_categories: &categories,
        gpc: case.gpc,
        now: now(),
    };
    decide(policies, &subject, &request)
}

fn check(rows: Vec<(&str, Case<'_>, bool, Reason, Basis)>) {
    let policies = policies();
    for (name, case, allowed, reason, basis) in rows {
        let decision = run(&policies, &case);
        assert_eq!(
            (decision.allowed, decision.reason, decision.basis),
            (allowed, reason, basis),
            "{name}"
        );
    }
}

#[test]
fn no_record_the_basis_decides_per_jurisdiction() {
    use Basis::*;
    use Reason::*;
    let no_record = |region, purpose| Case {
        region,
        purpose,
        ..Default::default()
    };
    check(vec![
        (
            "GDPR opt-in",
            no_record("DE", "analytics"),
            false,
            NoConsent,
            OptIn,
        ),
        (
            "EEA includes Norway",
            no_record("NO", "personalize.product_recommendations"),
            false,
            NoConsent,
            OptIn,
        ),
        (
            "UK opt-in",
            no_record("GB", "marketing.email"),
            false,
            NoConsent,
            OptIn,
        ),
        (
            "California opt-out",
            no_record("US-CA", "sale_and_sharing"),
            true,
            NotOptedOut,
            OptOut,
        ),
        (
            "California targeted ads",
            no_record("US-CA", "advertising.targeted"),
            true,
            NotOptedOut,
            OptOut,
        ),
        (
            "Virginia opt-out",
            no_record("US-VA", "analytics"),
            true,
            NotOptedOut,
            OptOut,
        ),
        (
            "other US states",
            no_record("US-WA", "marketing.email"),
            true,
            NotOptedOut,
            OptOut,
        ),
        (
            "SMS needs consent in the US too",
            no_record("US-CA", "marketing.sms"),
            false,
            NoConsent,
            OptIn,
        ),
        (
            "rest of the world opt-in",
            no_record("JP", "analytics"),
            false,
            NoConsent,
            OptIn,
        ),
        (
            "legitimate interest in the EEA",
            no_record("FR", "functional.service.improve"),
            true,
            Reason::LegitimateInterest,
            Basis::LegitimateInterest,
        ),
        (
            "notice only everywhere",
            no_record("DE", "essential"),
            true,
            Reason::NoticeOnly,
            Basis::NoticeOnly,
        ),
    ]);
}

#[test]
fn the_most_specific_record_wins() {
    use Basis::*;
    use Reason::*;
    check(vec![
        (
            "a grant on the parent covers the child",
            Case {
                purpose: "marketing.email",
                records: vec![granted("marketing")],
                ..Default::default()
            },
            true,
            ConsentGranted,
            OptIn,
        ),
        (
            "the child's own refusal beats the parent's grant",
            Case {
                purpose: "marketing.email",
                records: vec![granted("marketing"), denied("marketing.email")],
                ..Default::default()
            },
            false,
            ConsentDenied,
            OptIn,
        ),
        (
            "the child's own grant beats the parent's refusal",
            Case {
                purpose: "marketing.sms",
                records: vec![denied("marketing"), granted("marketing.sms")],
                ..Default::default()
            },
            true,
            ConsentGranted,
            OptIn,
        ),
        (
            "a sibling's record does not count",
            Case {
                purpose: "marketing.push",
                records: vec![granted("marketing.email")],
                ..Default::default()
            },
            false,
            NoConsent,
            OptIn,
        ),
        (
            "an opt-out under an opt-out basis",
            Case {
                region: "US-CA",
                purpose: "sale_and_sharing",
                records: vec![denied("sale_and_sharing")],
                ..Default::default()
            },
            false,
            ConsentDenied,
            OptOut,
        ),
        (
            "an objection under legitimate interest",
            Case {
                purpose: "functional.service.improve.feedback_surveys",
                records: vec![denied("functional.service.improve")],
                ..Default::default()
            },
            false,
            Objected,
            Basis::LegitimateInterest,
        ),
        (
            "notice-only ignores records",
            Case {
                purpose: "essential",
                records: vec![denied("essential")],
                ..Default::default()
            },
            true,
            Reason::NoticeOnly,
            Basis::NoticeOnly,
        ),
    ]);
}

#[test]
fn expiry_and_version_bumps_turn_a_grant_into_a_deny() {
    let policies = policies();
    let mut expired = granted("analytics");
    expired.expires_at = Some(now() - TimeDelta::seconds(1));
    let decision = run(
        &policies,
        &Case {
            records: vec![expired.clone()],
            ..Default::default()
        },
    );
    assert_eq!(
        (decision.allowed, decision.reason),
        (false, Reason::ConsentExpired)
    );
    assert_eq!(decision.record.unwrap().record_id, "rec-analytics");

    let mut fresh = expired;
    fresh.expires_at = Some(now() + TimeDelta::seconds(1));
    assert_eq!(
        run(
            &policies,
            &Case {
                records: vec![fresh],
                ..Default::default()
            }
        )
        .reason,
        Reason::ConsentGranted
    );

    // The shipped purposes are at version 1; a record from version 0 predates them.
    let mut old = granted("analytics");
    old.purpose_version = 0;
    let decision = run(
        &policies,
        &Case {
            records: vec![old.clone()],
            ..Default::default()
        },
    );
    assert_eq!(
        (decision.allowed, decision.reason),
        (false, Reason::ReconsentRequired)
    );

    // A refusal stands whatever its version.
    let mut old_refusal = denied("analytics");
    old_refusal.purpose_version = 0;
    assert_eq!(
        run(
            &policies,
            &Case {
                records: vec![old_refusal],
                ..Default::default()
            }
        )
        .reason,
        Reason::ConsentDenied
    );

    // An inherited grant is compared with its own purpose's version.
    let mut old_parent = granted("marketing");
    old_parent.purpose_version = 0;
    let decision = run(
        &policies,
        &Case {
            purpose: "marketing.email",
            records: vec![old_parent],
            ..Default::default()
        },
    );
    assert_eq!(decision.reason, Reason::ReconsentRequired);
    assert_eq!(
        decision.inherited_from("marketing.email"),
        Some("marketing")
    );
}

#[test]
fn known_minors_must_opt_in_to_sale_and_sharing() {
    use Basis::*;
    use Reason::*;
    let minor = |region, birth_year, purpose| Case {
        region,
        birth_year: Some(birth_year),
        purpose,
        ..Default::default()
    };
    check(vec![
        (
            "15 in California",
            minor("US-CA", 2011, "sale_and_sharing"),
            false,
            NoConsent,
            OptIn,
        ),
        (
            "may be 15 in California",
            minor("US-CA", 2010, "advertising.targeted"),
            false,
            NoConsent,
            OptIn,
        ),
        (
            "16 or 17 in California",
            minor("US-CA", 2009, "sale_and_sharing"),
            true,
            NotOptedOut,
            OptOut,
        ),
        (
            "a minor, but not a sale purpose",
            minor("US-CA", 2012, "analytics"),
            true,
            NotOptedOut,
            OptOut,
        ),
        (
            "Connecticut protects under 18",
            minor("US-CT", 2009, "sale_and_sharing"),
            false,
            NoConsent,
            OptIn,
        ),
        (
            "Virginia protects under 13",
            minor("US-VA", 2012, "sale_and_sharing"),
            true,
            NotOptedOut,
            OptOut,
        ),
        (
            "Virginia, 12",
            minor("US-VA", 2015, "sale_and_sharing"),
            false,
            NoConsent,
            OptIn,
        ),
        (
            "a minor who opted in",
            Case {
                records: vec![granted("sale_and_sharing")],
                ..minor("US-CA", 2012, "sale_and_sharing")
            },
            true,
            ConsentGranted,
            OptIn,
        ),
    ]);
}

#[test]
fn gpc_signals_and_recorded_signal_opt_outs() {
    use Basis::*;
    use Reason::*;
    check(vec![
        (
            "GPC opts out of a gpc purpose",
            Case {
                region: "US-CA",
                purpose: "sale_and_sharing",
                gpc: true,
                ..Default::default()
            },
            false,
            GpcOptOut,
            OptOut,
        ),
        (
            "GPC does not touch other purposes",
            Case {
                region: "US-CA",
                purpose: "analytics",
                gpc: true,
                ..Default::default()
            },
            true,
            NotOptedOut,
            OptOut,
        ),
        (
            "a recorded GPC opt-out explains itself",
            Case {
                region: "US-CA",
                purpose: "advertising.targeted",
                records: vec![record(
                    "advertising.targeted",
                    ConsentStatus::Denied,
                    ConsentSource::Gpc,
                )],
                ..Default::default()
            },
            false,
            GpcOptOut,
            OptOut,
        ),
        (
            "a recorded GPP opt-out",
            Case {
                region: "US-VA",
                purpose: "sale_and_sharing",
                records: vec![record(
                    "sale_and_sharing",
                    ConsentStatus::Denied,
                    ConsentSource::Gpp,
                )],
                ..Default::default()
            },
            false,
            SignalOptOut,
            OptOut,
        ),
        (
            "an explicit grant after GPC stands",
            Case {
                region: "US-CA",
                purpose: "sale_and_sharing",
                gpc: true,
                records: vec![granted("sale_and_sharing")],
                ..Default::default()
            },
            true,
            ConsentGranted,
            OptOut,
        ),
    ]);
}

#[test]
fn erasure_and_restriction_keep_only_notice_only() {
    use Basis::*;
    use Reason::*;
    check(vec![
        (
            "erased",
            Case {
                erased: true,
                records: vec![granted("analytics")],
                ..Default::default()
            },
            false,
            SubjectErased,
            OptIn,
        ),
        (
            "restricted",
            Case {
                restricted: true,
                region: "US-CA",
                ..Default::default()
            },
            false,
            ProcessingRestricted,
            OptOut,
        ),
        (
            "erased, essential",
            Case {
                erased: true,
                purpose: "essential",
                ..Default::default()
            },
            true,
            Reason::NoticeOnly,
            Basis::NoticeOnly,
        ),
    ]);
}

#[test]
fn channel_opt_outs_and_purpose_limitation() {
    use Basis::*;
    use Reason::*;
    let prefs = Preferences {
        channels: [
            (
                "email".to_string(),
                ChannelPreference {
                    opted_in: false,
                    max_per_week: None,
                },
            ),
            (
                "whatsapp".to_string(),
                ChannelPreference {
                    opted_in: true,
                    max_per_week: Some(2),
                },
            ),
        ]
        .into(),
        ..Default::default()
    };
    let allowed = || Case {
        purpose: "marketing.email",
        records: vec![granted("marketing")],
        preferences: Some(prefs.clone()),
        ..Default::default()
    };
    check(vec![
        (
            "channel opted out",
            Case {
                channel: Some("email"),
                ..allowed()
            },
            false,
            ChannelOptedOut,
            OptIn,
        ),
        (
            "channel opted in",
            Case {
                channel: Some("whatsapp"),
                ..allowed()
            },
            true,
            ConsentGranted,
            OptIn,
        ),
        (
            "channel not mentioned",
            Case {
                channel: Some("push"),
                ..allowed()
            },
            true,
            ConsentGranted,
            OptIn,
        ),
        (
            "declared category",
            Case {
                categories: &["user.contact.email"],
                ..allowed()
            },
            true,
            ConsentGranted,
            OptIn,
        ),
        (
            "undeclared category",
            Case {
                categories: &["user.behavior.purchase_history"],
                ..allowed()
            },
            false,
            CategoryNotDeclared,
            OptIn,
        ),
        (
            "a child of a declared category",
            Case {
                purpose: "personalize",
                records: vec![granted("personalize")],
                categories: &["user.behavior.feedback"],
                ..Default::default()
            },
            true,
            ConsentGranted,
            OptIn,
        ),
        (
            "a denial is not overridden by later rules",
            Case {
                channel: Some("email"),
                records: vec![],
                ..allowed()
            },
            false,
            NoConsent,
            OptIn,
        ),
    ]);
}
