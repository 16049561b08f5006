//! The rule function alone: what a cached decision costs before HTTP and JSON.

use std::hint::black_box;
use std::path::Path;

use chrono::{TimeDelta, TimeZone, Utc};
use consentry::consent::ledger::{ConsentSource, ConsentState, ConsentStates, ConsentStatus};
use consentry::consent::preferences::{ChannelPreference, Preferences};
use consentry::gate::{decide, DecisionRequest, SubjectFacts};
use consentry::policy::{load, PersonFacts, Region};
use criterion::{criterion_group, criterion_main, Criterion};

fn rules(c: &mut Criterion) {
    let policies = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")).unwrap();
    let email = policies.channels.parse("email").unwrap();
    let now = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
    let record = |purpose: &str, status| ConsentState {
        purpose: purpose.into(),
        status,
        source: ConsentSource::Portal,
        record_id: "r".into(),
        purpose_version: 1,
        notice_digest: None,
        updated_at: now - TimeDelta::days(3),
        expires_at: Some(now + TimeDelta::days(300)),
    };
    let consents: ConsentStates = [
        record("marketing", ConsentStatus::Granted),
        record("analytics", ConsentStatus::Denied),
        record("personalize", ConsentStatus::Granted),
    ]
    .into_iter()
    .map(|r| (r.purpose.clone(), r))
    .collect();
    let preferences = Preferences {
        channels: [(
            "email".to_string(),
            ChannelPreference {
                opted_in: true,
                max_per_week: Some(3),
            },
        )]
        .into(),
        ..Default::default()
    };
    let de = Region::parse("DE").unwrap();
    let ca = Region::parse("US-CA").unwrap();
    let subject = |region| SubjectFacts {
        person: PersonFacts::new(&policies, region, Some(1990)),
        erased: false,
        restricted: false,
        consents: &consents,
        preferences: Some(&preferences),
    };
    let categories = vec!["user.contact.email".to_string()];

    c.bench_function("decide: inherited grant, channel and category (EEA)", |b| {
        let request = DecisionRequest {
            purpose: policies.purpose("marketing.email").unwrap(),
            channel: Some(&email),
            data_categories: &categories,
            gpc: false,
            now,
        };
        let facts = subject(&de);
        b.iter(|| decide(black_box(&policies), black_box(&facts), black_box(&request)))
    });
    c.bench_function(
        "decide: no record, opt-out basis with GPC (California)",
        |b| {
            let request = DecisionRequest {
                purpose: policies.purpose("advertising.targeted").unwrap(),
                channel: None,
                data_categories: &[],
                gpc: true,
                now,
            };
            let facts = subject(&ca);
            b.iter(|| decide(black_box(&policies), black_box(&facts), black_box(&request)))
        },
    );
}

criterion_group!(benches, rules);
criterion_main!(benches);
