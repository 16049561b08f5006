//! Journeys: which stage of their life with the company a customer is in, derived from
//! their events, NPS answers and time by `rules` (pure), kept on their profile only while
//! they allow the journey purpose, each move an event in the feed and in the audit log.

pub mod api;
pub mod report;
pub mod rules;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::{json, Value};

use crate::audit::{self, Actor, AuditEntry, Pseudonymizer};
use crate::consent::ledger::derived_source;
use crate::consent::{SubjectId, SubjectSnapshot};
use crate::gate::rules::{decide_for, DecisionRequest};
use crate::policy::journey::NpsClass;
use crate::policy::Policies;
use crate::profiles::attributes::{self, AttributeChange};
use crate::storage::schema::{customer_events, profile_attributes};
use crate::storage::{DbConnection, StorageError};
use rules::{advance, JourneyFacts, Transition};

/// The profile attributes a journey keeps.
pub use crate::surveys::eligibility::JOURNEY_STAGE as STAGE;
pub const STAGE_SINCE: &str = "journey.stage_since";
pub const AT_RISK: &str = "journey.at_risk";
/// Their data category.
pub const CATEGORY: &str = "user.derived.journey";
/// The feed event of a move.
pub const STAGE_CHANGED: &str = "journey.stage_changed";
pub use crate::surveys::respond::NPS_ANSWERED;

/// How far back a journey reads events: the longest window or quiet spell a rule can
/// name.
const LOOKBACK_DAYS: i64 = 3650;

/// The stage a subject's profile holds, and since when.
pub fn stage_of(
    conn: &mut DbConnection,
    subject: &str,
) -> Result<Option<(String, DateTime<Utc>)>, StorageError> {
    let rows: Vec<(String, String)> = profile_attributes::table
        .filter(profile_attributes::subject_id.eq(subject))
        .filter(profile_attributes::key.eq_any([STAGE, STAGE_SINCE]))
        .select((profile_attributes::key, profile_attributes::value))
        .load(conn)?;
    let get = |key: &str| {
        rows.iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| serde_json::from_str::<Value>(v).ok())
    };
    let stage = get(STAGE).and_then(|v| v.as_str().map(str::to_owned));
    let since =
        get(STAGE_SINCE).and_then(|v| v.as_str().and_then(|s| s.parse::<DateTime<Utc>>().ok()));
    Ok(stage.zip(since))
}

/// Events by name and time, NPS answers by class and time.
type History = (Vec<(String, DateTime<Utc>)>, Vec<(NpsClass, DateTime<Utc>)>);

/// The subject's events and NPS answers, as the rules read them.
fn history(
    conn: &mut DbConnection,
    subject: &str,
    now: DateTime<Utc>,
) -> Result<History, StorageError> {
    let since = (now - chrono::TimeDelta::days(LOOKBACK_DAYS)).naive_utc();
    let rows: Vec<(String, String, NaiveDateTime)> = customer_events::table
        .filter(customer_events::subject_id.eq(subject))
        .filter(customer_events::occurred_at.ge(since))
        .filter(customer_events::name.not_like("journey.%"))
        .select((
            customer_events::name,
            customer_events::properties,
            customer_events::occurred_at,
        ))
        .load(conn)?;
    let mut events = Vec::with_capacity(rows.len());
    let mut answers = Vec::new();
    for (name, properties, at) in rows {
        let at = at.and_utc();
        if name == NPS_ANSWERED {
            let score = serde_json::from_str::<Value>(&properties)
                .ok()
                .and_then(|p| p["score"].as_i64());
            if let Some(score) = score {
                answers.push((NpsClass::of(score), at));
            }
        }
        events.push((name, at));
    }
    Ok((events, answers))
}

/// Whether the subject allows stages to be derived about them now.
pub fn allowed(policies: &Policies, snapshot: &SubjectSnapshot, now: DateTime<Utc>) -> bool {
    let Some(purpose) = policies.purpose(&policies.journeys.purpose) else {
        return false;
    };
    let request = DecisionRequest {
        purpose,
        channel: None,
        data_categories: &[],
        gpc: false,
        now,
    };
    decide_for(policies, snapshot, &request).allowed
}

/// Moves the subject along their journey as the rules say at `now`, if journeys are on
/// and the subject allows it (otherwise forgets any stage kept). Stores the stage on the
/// profile and records each move in the feed and the audit log. Call inside a write
/// transaction, after the change that may move them.
pub fn update(
    conn: &mut DbConnection,
    policies: &Policies,
    pseudonyms: &Pseudonymizer,
    subject: &SubjectId,
    now: DateTime<Utc>,
) -> Result<Vec<Transition>, StorageError> {
    let journeys = &policies.journeys;
    if !journeys.enabled() {
        return Ok(Vec::new());
    }
    let snapshot = SubjectSnapshot::load(conn, subject, pseudonyms)?;
    if snapshot.subject.is_none() {
        return Ok(Vec::new());
    }
    let current = stage_of(conn, subject.as_str())?;
    if !allowed(policies, &snapshot, now) {
        if current.is_some() {
            forget(conn, subject)?;
        }
        return Ok(Vec::new());
    }
    let (events, answers) = history(conn, subject.as_str(), now)?;
    let facts = JourneyFacts {
        stage: current.as_ref().map(|(s, at)| (s.as_str(), *at)),
        events: &events,
        answers: &answers,
    };
    let moves = advance(journeys, &facts, now);
    let Some(last) = moves.last() else {
        return Ok(moves);
    };
    let set = |value: Value| AttributeChange::Set {
        value,
        category: CATEGORY.to_owned(),
    };
    let changes = [
        (STAGE.to_owned(), set(json!(last.to))),
        (STAGE_SINCE.to_owned(), set(json!(last.at))),
        (
            AT_RISK.to_owned(),
            set(json!(journeys.at_risk.contains(&last.to))),
        ),
    ]
    .into_iter()
    .collect();
    attributes::apply(
        conn,
        subject,
        &changes,
        &derived_source(&journeys.purpose),
        now,
    )?;
    let actor = Actor::system();
    for step in &moves {
        let payload = json!({"from": step.from, "to": step.to});
        crate::surveys::events::record(
            conn,
            subject.as_str(),
            STAGE_CHANGED,
            &payload,
            step.at,
            now,
            policies.retention.events_per_subject,
        )?;
        audit::record(
            conn,
            pseudonyms,
            AuditEntry {
                actor: &actor,
                action: STAGE_CHANGED,
                subject_id: Some(subject.as_str()),
                payload,
                at: now,
            },
        )?;
    }
    Ok(moves)
}

/// `update` in a transaction of its own, for a subject by its stored id (after a survey
/// answer, whose transaction has committed).
pub fn update_after(
    conn: &mut DbConnection,
    policies: &Policies,
    pseudonyms: &Pseudonymizer,
    subject: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Transition>, StorageError> {
    let Ok(subject) = SubjectId::parse(subject) else {
        return Ok(Vec::new());
    };
    crate::storage::write_transaction(conn, |conn| {
        update(conn, policies, pseudonyms, &subject, now)
    })
}

/// Deletes the stage kept about a subject.
fn forget(conn: &mut DbConnection, subject: &SubjectId) -> Result<(), StorageError> {
    diesel::delete(
        profile_attributes::table
            .filter(profile_attributes::subject_id.eq(subject.as_str()))
            .filter(profile_attributes::key.eq_any([STAGE, STAGE_SINCE, AT_RISK])),
    )
    .execute(conn)?;
    Ok(())
}

/// The subjects with a stage that time alone may change (every stage but those no rule
/// leaves by inactivity is a candidate; the rules decide).
pub fn staged_subjects(conn: &mut DbConnection) -> Result<Vec<String>, StorageError> {
    Ok(profile_attributes::table
        .filter(profile_attributes::key.eq(STAGE))
        .select(profile_attributes::subject_id)
        .load(conn)?)
}

/// Moves every staged subject as time says (inactivity). Each subject in a transaction
/// of its own; answers how many moved.
pub fn sweep(
    conn: &mut DbConnection,
    policies: &Policies,
    pseudonyms: &Pseudonymizer,
    now: DateTime<Utc>,
) -> Result<usize, StorageError> {
    let mut moved = 0;
    for id in staged_subjects(conn)? {
        let moves = update_after(conn, policies, pseudonyms, &id, now)?;
        moved += usize::from(!moves.is_empty());
    }
    Ok(moved)
}

/// How often time alone is let move customers (inactivity rules count days).
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Sweeps once at once, then every hour, while `alive` can be upgraded (the app runs).
pub fn spawn<T: Send + Sync + 'static>(
    manager: crate::storage::ConnectionManager,
    policies: std::sync::Arc<Policies>,
    pseudonyms: std::sync::Arc<Pseudonymizer>,
    clock: crate::clock::SharedClock,
    alive: std::sync::Weak<T>,
) -> std::io::Result<()> {
    if !policies.journeys.enabled() {
        return Ok(());
    }
    std::thread::Builder::new()
        .name("consentry-journeys".into())
        .spawn(move || loop {
            if alive.strong_count() == 0 {
                return;
            }
            match manager.establish() {
                Ok(mut conn) => match sweep(&mut conn, &policies, &pseudonyms, clock.now()) {
                    Ok(moved) => tracing::info!(moved, "journeys swept"),
                    Err(err) => {
                        tracing::warn!(error = %err, "journey sweep failed; next hour again")
                    }
                },
                Err(err) => {
                    tracing::warn!(error = %err, "journey sweep cannot connect; next hour again")
                }
            }
            std::thread::sleep(SWEEP_EVERY);
        })
        .map(|_| ())
}
