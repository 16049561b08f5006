//! `consentry demo`: sample subjects with consents, preferences, a CRM id, messages sent
//! and journeys, for a first look and for benchmarks. Subjects are `demo-000001`...
//! spread over the shipped jurisdictions.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use serde_json::json;

use crate::audit::{self, Actor, AuditEntry, Pseudonymizer};
use crate::consent::contacts::{self, NewContact};
use crate::consent::ledger::{self, ConsentChange, ConsentSource, ConsentStatus, Evidence};
use crate::consent::preferences::{self, ChannelPreference, Preferences, QuietHours};
use crate::consent::SubjectId;
use crate::policy::Policies;
use crate::storage::schema::{subject_identifiers, subjects};
use crate::storage::{write_transaction, DbConnection, StorageError};

/// The shipped jurisdictions, and the countries with their own default channel order.
/// The first seven (EEA, UK, US) allow surveys by their basis; the strict default
/// jurisdiction, from `SA` on, does not (the benchmark scripts rely on this order).
const REGIONS: [&str; 14] = [
    "DE", "FR", "GB", "US-CA", "US-VA", "US-TX", "US-NY", "SA", "JP", "BR", "ID", "MX", "KR", "CN",
];
const CHUNK: usize = 500;

pub fn subject_id(n: usize) -> String {
    format!("demo-{n:06}")
}

/// The region of demo subject `n`.
pub fn region_of(n: usize) -> &'static str {
    REGIONS[n % REGIONS.len()]
}

/// Creates `count` subjects (skipping ids that exist) with a few consents each.
pub fn seed(
    conn: &mut DbConnection,
    policies: &Policies,
    pseudonyms: &Pseudonymizer,
    count: usize,
    now: DateTime<Utc>,
) -> Result<usize, StorageError> {
    let actor = Actor::operator();
    let mut created = 0;
    for start in (1..=count).step_by(CHUNK) {
        let end = (start + CHUNK - 1).min(count);
        created += write_transaction(conn, |conn| {
            let mut created = 0;
            for n in start..=end {
                let id = subject_id(n);
                let region = region_of(n);
                let inserted = match conn {
                    DbConnection::Postgres(c) => diesel::insert_into(subjects::table)
                        .values(row(&id, region, n, now))
                        .on_conflict_do_nothing()
                        .execute(c)?,
                    DbConnection::Sqlite(c) => diesel::insert_into(subjects::table)
                        .values(row(&id, region, n, now))
                        .on_conflict_do_nothing()
                        .execute(c)?,
                };
                if inserted == 0 {
                    continue;
                }
                created += 1;
                // Known to the CRM too, so that decisions by identifier can be tried.
                diesel::insert_into(subject_identifiers::table)
                    .values((
                        subject_identifiers::kind.eq("crm_id"),
                        subject_identifiers::value.eq(format!("CRM-{n:06}")),
                        subject_identifiers::subject_id.eq(&id),
                        subject_identifiers::created_at.eq(now.naive_utc()),
                    ))
                    .execute(conn)?;
                let subject =
                    SubjectId::parse(&id).map_err(|e| StorageError::Config(e.to_string()))?;
                for (purpose, status) in consents_of(n) {
                    let Some(purpose) = policies.purpose(purpose) else {
                        continue;
                    };
                    let change = ConsentChange {
                        purpose: purpose.key.clone(),
                        status,
                        source: ConsentSource::Import,
                        notice_digest: None,
                    };
                    ledger::append(
                        conn,
                        &subject,
                        &change,
                        purpose,
                        &actor,
                        &Evidence::default(),
                        now,
                    )?;
                }
                if n.is_multiple_of(3) {
                    preferences::save(conn, &subject, &preferences_of(n, region), now)?;
                    // A few e-mails this week: one customer in twelve has used up the cap.
                    for days_ago in 0..(n % 4) {
                        let sent = NewContact {
                            channel: "email".into(),
                            purpose: "marketing".into(),
                            sent_at: now - TimeDelta::days(days_ago as i64 + 1),
                            sent_at_given: true,
                            idempotency_key: None,
                        };
                        contacts::insert(conn, &subject, &sent, now)?;
                    }
                }
            }
            Ok::<_, StorageError>(created)
        })?;
    }
    journeys(conn, policies, pseudonyms, count.min(JOURNEY_SUBJECTS), now)?;
    audit::record_alone(
        conn,
        pseudonyms,
        AuditEntry {
            actor: &actor,
            action: "demo.seeded",
            subject_id: None,
            payload: json!({"subjects": count, "created": created}),
            at: now,
        },
    )?;
    Ok(created)
}

/// How many demo subjects get a journey: enough for the report to show every stage.
const JOURNEY_SUBJECTS: usize = 300;

/// What demo subject `n` did, as (event, days ago, NPS score): five kinds of customer,
/// who end up engaged, onboarding, at risk by silence, churned, and at risk by a low
/// score.
fn history_of(n: usize) -> Vec<(&'static str, i64, Option<i64>)> {
    let steps = |from: i64| {
        vec![
            ("onboarding.started", from, None),
            ("onboarding.step_completed", from - 1, None),
            ("onboarding.step_completed", from - 2, None),
            ("onboarding.step_completed", from - 3, None),
        ]
    };
    match n % 5 {
        0 => {
            let mut h = steps(40 + (n % 7) as i64);
            h.extend([("order.placed", 30, None), ("order.placed", 20, None)]);
            h.push(("order.placed", 10, None));
            h.push(("survey.nps_answered", 5, Some(9 + (n % 2) as i64)));
            h
        }
        1 => vec![
            ("onboarding.started", 20, None),
            ("onboarding.step_completed", 19, None),
        ],
        2 => steps(60),
        3 => vec![("app.opened", 120 + (n % 30) as i64, None)],
        _ => {
            let mut h = steps(15);
            h.push(("survey.nps_answered", 5, Some((n % 7) as i64)));
            h
        }
    }
}

/// Plays each demo subject's history through the journey rules, as it would have
/// happened, then lets time speak (inactivity). Subjects who do not allow the journey
/// purpose get events but no stage.
fn journeys(
    conn: &mut DbConnection,
    policies: &Policies,
    pseudonyms: &Pseudonymizer,
    count: usize,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    if !policies.journeys.enabled() {
        return Ok(());
    }
    let cap = policies.retention.events_per_subject;
    for n in 1..=count {
        let id =
            SubjectId::parse(&subject_id(n)).map_err(|e| StorageError::Config(e.to_string()))?;
        if crate::journeys::stage_of(conn, id.as_str())?.is_some() {
            continue;
        }
        write_transaction(conn, |conn| {
            for (name, days_ago, score) in history_of(n) {
                let at = now - TimeDelta::days(days_ago);
                let properties =
                    score.map_or(json!({}), |s| json!({"score": s, "survey_key": "demo"}));
                crate::surveys::events::record(conn, id.as_str(), name, &properties, at, at, cap)?;
                crate::journeys::update(conn, policies, pseudonyms, &id, at)?;
            }
            crate::journeys::update(conn, policies, pseudonyms, &id, now)?;
            Ok::<_, StorageError>(())
        })?;
    }
    Ok(())
}

/// The time zone of a demo region.
fn zone_of(region: &str) -> &'static str {
    match region {
        "DE" => "Europe/Berlin",
        "FR" => "Europe/Paris",
        "GB" => "Europe/London",
        "US-CA" => "America/Los_Angeles",
        "US-TX" => "America/Chicago",
        "US-VA" | "US-NY" => "America/New_York",
        "SA" => "Asia/Riyadh",
        "JP" => "Asia/Tokyo",
        "BR" => "America/Sao_Paulo",
        "ID" => "Asia/Jakarta",
        "MX" => "America/Mexico_City",
        "KR" => "Asia/Seoul",
        "CN" => "Asia/Shanghai",
        _ => "UTC",
    }
}

/// Every third customer's preferences: e-mail capped at three a week (opted in for
/// half), no text messages, their country's first channel opted in to, their time zone
/// and quiet nights.
fn preferences_of(n: usize, region: &str) -> Preferences {
    let choice = |opted_in, max_per_week| ChannelPreference {
        opted_in,
        max_per_week,
    };
    let mut channels: BTreeMap<String, ChannelPreference> = [
        ("email".to_string(), choice(n.is_multiple_of(2), Some(3))),
        ("sms".to_string(), choice(false, None)),
    ]
    .into();
    let first = match region {
        "BR" | "ID" | "MX" => Some("whatsapp"),
        "JP" => Some("line"),
        "KR" => Some("kakaotalk"),
        "CN" => Some("wechat"),
        _ => None,
    };
    if let Some(first) = first {
        channels.insert(first.to_string(), choice(true, Some(5)));
    }
    Preferences {
        channels,
        timezone: Some(zone_of(region).to_string()),
        quiet_hours: Some(QuietHours {
            start: "22:00".into(),
            end: "08:00".into(),
        }),
        ..Default::default()
    }
}

#[derive(Insertable)]
#[diesel(table_name = subjects)]
struct NewSubject<'a> {
    id: &'a str,
    region: &'a str,
    locale: Option<&'a str>,
    birth_year: Option<i32>,
    created_at: chrono::NaiveDateTime,
    updated_at: chrono::NaiveDateTime,
}

fn row<'a>(id: &'a str, region: &'a str, n: usize, now: DateTime<Utc>) -> NewSubject<'a> {
    NewSubject {
        id,
        region,
        locale: Some(if region == "SA" { "ar" } else { "en" }),
        birth_year: Some(1950 + (n % 60) as i32),
        created_at: now.naive_utc(),
        updated_at: now.naive_utc(),
    }
}

/// A deterministic mix: most grant marketing, some refuse analytics, a few opt out of sale.
fn consents_of(n: usize) -> Vec<(&'static str, ConsentStatus)> {
    let mut consents = vec![(
        "marketing",
        if n.is_multiple_of(4) {
            ConsentStatus::Denied
        } else {
            ConsentStatus::Granted
        },
    )];
    consents.push((
        "analytics",
        if n.is_multiple_of(5) {
            ConsentStatus::Denied
        } else {
            ConsentStatus::Granted
        },
    ));
    if n.is_multiple_of(7) {
        consents.push(("sale_and_sharing", ConsentStatus::Denied));
    }
    if n.is_multiple_of(2) {
        consents.push(("personalize", ConsentStatus::Granted));
    }
    consents
}

/// Appends `count` synthetic events about demo subjects to the audit chain, in large
/// transactions: material for measuring verification and export.
pub fn audit_events(
    conn: &mut DbConnection,
    pseudonyms: &Pseudonymizer,
    subjects: usize,
    count: usize,
    now: DateTime<Utc>,
) -> Result<usize, StorageError> {
    let actor = Actor::operator();
    for start in (0..count).step_by(10_000) {
        let end = (start + 10_000).min(count);
        write_transaction(conn, |conn| {
            for n in start..end {
                let subject = subject_id(n % subjects + 1);
                audit::record(
                    conn,
                    pseudonyms,
                    AuditEntry {
                        actor: &actor,
                        action: "demo.event",
                        subject_id: Some(&subject),
                        payload: json!({"n": n, "note": "synthetic event for benchmarks"}),
                        at: now,
                    },
                )?;
            }
            Ok::<_, StorageError>(())
        })?;
    }
    Ok(count)
}

/// Creates surveys from definitions, skipping keys that exist; answers a line for each.
pub fn import_surveys(
    conn: &mut DbConnection,
    policies: &Policies,
    pseudonyms: &Pseudonymizer,
    surveys: Vec<crate::surveys::catalog::NewSurvey>,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<String>> {
    use crate::surveys::{catalog, store, SurveyError};
    let mut lines = Vec::new();
    for mut survey in surveys {
        if store::key_taken(conn, &survey.key)? {
            lines.push(format!("survey `{}` exists; kept", survey.key));
            continue;
        }
        let key = survey.key.clone();
        survey.status = Some(
            survey
                .status
                .unwrap_or(crate::surveys::definition::SurveyStatus::Active),
        );
        match catalog::create(conn, policies, pseudonyms, &Actor::operator(), survey, now) {
            Ok(created) => lines.push(format!(
                "survey `{}` created ({}, {})",
                created.key,
                created.id,
                created.status.as_str()
            )),
            Err(SurveyError::Invalid(errors)) => anyhow::bail!(
                "survey `{key}`: {}",
                errors
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            Err(other) => return Err(anyhow::anyhow!("survey `{key}`: {other}")),
        }
    }
    Ok(lines)
}

/// Records `count` answered NPS responses to the NPS template (one per subject:
/// `demo-000001`... created bare when missing), each with its display and a `plan`
/// attribute, spread over the year before `now`. Set-based SQL: a million rows take
/// seconds, not the hours one request each would.
pub fn survey_responses(
    conn: &mut DbConnection,
    count: usize,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let key = "nps-after-onboarding";
    let survey = crate::surveys::store::find(conn, key)?
        .ok_or_else(|| anyhow::anyhow!("the `{key}` template is not imported"))?;
    let (series, id, at, day) = match conn {
        DbConnection::Postgres(_) => (
            "generate_series(1, $1) AS s(n)",
            // As `demo-{n:06}` formats: six digits at least, never cut.
            "'demo-' || lpad(n::text, greatest(6, length(n::text)), '0')",
            "$2::timestamp - (n % 365) * interval '1 day' - (n % 86400) * interval '1 second'",
            "to_char($2::timestamp - (n % 365) * interval '1 day' - (n % 86400) * interval '1 second', 'YYYY-MM-DD')",
        ),
        DbConnection::Sqlite(_) => (
            "(WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < ?1) SELECT n FROM c) AS s",
            "'demo-' || printf('%06d', n)",
            "datetime(?2, '-' || (n % 365) || ' days', '-' || (n % 86400) || ' seconds')",
            "date(?2, '-' || (n % 365) || ' days', '-' || (n % 86400) || ' seconds')",
        ),
    };
    // Half promoters, a third passives, the rest detractors, mixed along n.
    let score = "CASE WHEN n % 6 < 3 THEN 9 + n % 2 WHEN n % 6 < 5 THEN 7 + n % 2 ELSE n % 7 END";
    // The template records `plan` with each answer, as the survey does when answered.
    let plan =
        "CASE WHEN n % 3 = 0 THEN '\"pro\"' WHEN n % 3 = 1 THEN '\"free\"' ELSE '\"team\"' END";
    let survey_id = survey.id.replace('\'', "");
    let statements = [
        format!("INSERT INTO subjects (id, region, created_at, updated_at) SELECT {id}, 'DE', {at}, {at} FROM {series} WHERE TRUE ON CONFLICT DO NOTHING"),
        format!("INSERT INTO profile_attributes (subject_id, key, value, category, source, updated_at) SELECT {id}, 'plan', {plan}, 'user.account', 'import', {at} FROM {series} WHERE TRUE ON CONFLICT DO NOTHING"),
        format!("INSERT INTO survey_displays (id, survey_id, version, subject_id, event, shown_at, dismissed_at) SELECT 'demo-display-' || n, '{survey_id}', {v}, {id}, 'onboarding.completed', {at}, NULL FROM {series} WHERE TRUE ON CONFLICT DO NOTHING", v = survey.version),
        format!("INSERT INTO survey_displays (id, survey_id, version, subject_id, event, shown_at, dismissed_at) SELECT 'demo-display-extra-' || n, '{survey_id}', {v}, {id}, 'onboarding.completed', {at}, {at} FROM {series} WHERE n % 4 = 0 ON CONFLICT DO NOTHING", v = survey.version),
        format!("INSERT INTO survey_responses (id, survey_id, version, subject_id, display_id, answers, finished, started_at, updated_at, finished_at) SELECT 'demo-response-' || n, '{survey_id}', {v}, {id}, 'demo-display-' || n, '{{\"score\":' || ({score}) || '}}', TRUE, {at}, {at}, {at} FROM {series} WHERE TRUE ON CONFLICT DO NOTHING", v = survey.version),
        format!("INSERT INTO survey_answers (response_id, question_id, ordinal, survey_id, version, subject_id, number_value, text_value, answered_at, answered_day, breakdown_value) SELECT 'demo-response-' || n, 'score', 0, '{survey_id}', {v}, {id}, {score}, NULL, {at}, {day}, {plan} FROM {series} WHERE TRUE ON CONFLICT DO NOTHING", v = survey.version),
    ];
    let limit = i64::try_from(count)?;
    let stamp = now.naive_utc();
    write_transaction(conn, |conn| {
        for sql in &statements {
            let query = diesel::sql_query(sql)
                .bind::<diesel::sql_types::BigInt, _>(limit)
                .bind::<diesel::sql_types::Timestamp, _>(stamp);
            match conn {
                DbConnection::Postgres(c) => query.execute(c)?,
                DbConnection::Sqlite(c) => query.execute(c)?,
            };
        }
        Ok::<_, StorageError>(())
    })?;
    Ok(count)
}
