//! The journeys report: customers per stage, the moves between stages (a funnel), the
//! median time to reach each stage, and NPS by the stage a customer was in when they
//! answered. `compute` is pure; `load` reads what it needs.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::{NPS_ANSWERED, STAGE, STAGE_CHANGED};
use crate::policy::journey::{Journeys, NpsClass};
use crate::storage::schema::{customer_events, profile_attributes};
use crate::storage::{DbConnection, StorageError};
use crate::surveys::score::{nps, round1, NpsFigures};

/// One recorded move.
#[derive(Debug, Clone, PartialEq)]
pub struct Move {
    pub subject: String,
    pub from: Option<String>,
    pub to: String,
    pub at: DateTime<Utc>,
}

/// One NPS answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub subject: String,
    pub score: i64,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StageFigures {
    #[schema(example = "activated")]
    pub stage: String,
    /// Customers in the stage now.
    pub customers: i64,
    /// Customers who entered it within the period.
    pub entered: i64,
    /// Median days from a customer's first stage to this one, over those who entered it
    /// within the period; null when nobody did.
    pub median_days_to_reach: Option<f64>,
    /// NPS of answers given within the period by customers in this stage at the time.
    pub nps: NpsFigures,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MoveFigures {
    /// Null for customers entering their first stage.
    pub from: Option<String>,
    pub to: String,
    pub count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JourneyReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// In the order of `journeys.toml`.
    pub stages: Vec<StageFigures>,
    /// Moves within the period, most frequent first.
    pub moves: Vec<MoveFigures>,
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

/// The report over `[from, to)`. `moves` holds every recorded move up to `to` (earlier
/// ones place answers and first stages); `answers` those within the period.
pub fn compute(
    journeys: &Journeys,
    current: &HashMap<String, i64>,
    moves: &[Move],
    answers: &[Answer],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> JourneyReport {
    let within = |at: &DateTime<Utc>| *at >= from && *at < to;
    let mut by_subject: HashMap<&str, Vec<&Move>> = HashMap::new();
    for m in moves {
        by_subject.entry(m.subject.as_str()).or_default().push(m);
    }
    for list in by_subject.values_mut() {
        list.sort_by_key(|m| m.at);
    }
    let started = |subject: &str| {
        by_subject
            .get(subject)
            .and_then(|list| list.iter().find(|m| m.from.is_none()))
            .map(|m| m.at)
    };
    // The stage before the answer: one the answer itself caused does not count.
    let stage_at = |subject: &str, at: DateTime<Utc>| {
        by_subject
            .get(subject)
            .and_then(|list| list.iter().rev().find(|m| m.at < at))
            .map(|m| m.to.clone())
    };
    let mut entered: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut days_to: HashMap<&str, Vec<f64>> = HashMap::new();
    let mut counts: BTreeMap<(Option<String>, String), i64> = BTreeMap::new();
    for m in moves.iter().filter(|m| within(&m.at)) {
        *counts.entry((m.from.clone(), m.to.clone())).or_default() += 1;
        let list = entered.entry(m.to.as_str()).or_default();
        if !list.contains(&m.subject.as_str()) {
            list.push(m.subject.as_str());
            if let Some(start) = started(&m.subject) {
                days_to
                    .entry(m.to.as_str())
                    .or_default()
                    .push((m.at - start).num_seconds() as f64 / 86_400.0);
            }
        }
    }
    let mut tallies: HashMap<String, (i64, i64, i64)> = HashMap::new();
    for a in answers.iter().filter(|a| within(&a.at)) {
        let Some(stage) = stage_at(&a.subject, a.at) else {
            continue;
        };
        let t = tallies.entry(stage).or_default();
        match NpsClass::of(a.score) {
            NpsClass::Promoter => t.0 += 1,
            NpsClass::Passive => t.1 += 1,
            NpsClass::Detractor => t.2 += 1,
        }
    }
    let stages = journeys
        .stages
        .iter()
        .map(|stage| {
            let (p, pa, d) = tallies.get(stage).copied().unwrap_or_default();
            StageFigures {
                stage: stage.clone(),
                customers: current.get(stage).copied().unwrap_or(0),
                entered: entered.get(stage.as_str()).map_or(0, |l| l.len() as i64),
                median_days_to_reach: days_to
                    .get(stage.as_str())
                    .and_then(|d| median(d.clone()))
                    .map(round1),
                nps: nps(p, pa, d),
            }
        })
        .collect();
    let mut moves: Vec<MoveFigures> = counts
        .into_iter()
        .map(|((from, to), count)| MoveFigures { from, to, count })
        .collect();
    moves.sort_by_key(|m| std::cmp::Reverse(m.count));
    JourneyReport {
        from,
        to,
        stages,
        moves,
    }
}

/// Reads what the report needs and computes it.
pub fn load(
    conn: &mut DbConnection,
    journeys: &Journeys,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<JourneyReport, StorageError> {
    let stages: Vec<String> = profile_attributes::table
        .filter(profile_attributes::key.eq(STAGE))
        .select(profile_attributes::value)
        .load(conn)?;
    let mut current: HashMap<String, i64> = HashMap::new();
    for value in stages {
        if let Ok(Value::String(stage)) = serde_json::from_str(&value) {
            *current.entry(stage).or_default() += 1;
        }
    }
    let rows = |conn: &mut DbConnection, name: &str, since: Option<NaiveDateTime>| {
        let mut query = customer_events::table
            .filter(customer_events::name.eq(name.to_owned()))
            .filter(customer_events::occurred_at.lt(to.naive_utc()))
            .into_boxed();
        if let Some(since) = since {
            query = query.filter(customer_events::occurred_at.ge(since));
        }
        query
            .select((
                customer_events::subject_id,
                customer_events::properties,
                customer_events::occurred_at,
            ))
            .load::<(String, String, NaiveDateTime)>(conn)
    };
    let moves = rows(conn, STAGE_CHANGED, None)?
        .into_iter()
        .filter_map(|(subject, properties, at)| {
            let p: Value = serde_json::from_str(&properties).ok()?;
            Some(Move {
                subject,
                from: p["from"].as_str().map(str::to_owned),
                to: p["to"].as_str()?.to_owned(),
                at: at.and_utc(),
            })
        })
        .collect::<Vec<_>>();
    let answers = rows(conn, NPS_ANSWERED, Some(from.naive_utc()))?
        .into_iter()
        .filter_map(|(subject, properties, at)| {
            let p: Value = serde_json::from_str(&properties).ok()?;
            Some(Answer {
                subject,
                score: p["score"].as_i64()?,
                at: at.and_utc(),
            })
        })
        .collect::<Vec<_>>();
    Ok(compute(journeys, &current, &moves, &answers, from, to))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn day(n: i64) -> DateTime<Utc> {
        "2026-11-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap() + TimeDelta::days(n)
    }

    fn mv(subject: &str, from: Option<&str>, to: &str, d: i64) -> Move {
        Move {
            subject: subject.into(),
            from: from.map(str::to_owned),
            to: to.into(),
            at: day(d),
        }
    }

    fn journeys() -> Journeys {
        Journeys {
            stages: ["signed_up", "activated", "at_risk"]
                .map(String::from)
                .to_vec(),
            initial: "signed_up".into(),
            ..Default::default()
        }
    }

    #[test]
    fn stages_moves_medians_and_nps_by_stage() {
        let moves = [
            mv("a", None, "signed_up", 0),
            mv("a", Some("signed_up"), "activated", 4),
            mv("b", None, "signed_up", 2),
            mv("b", Some("signed_up"), "activated", 12),
            mv("c", None, "signed_up", 3),
            mv("c", Some("signed_up"), "activated", 5),
            mv("c", Some("activated"), "at_risk", 20),
            // Outside the period: places answers, counts nowhere.
            mv("d", None, "signed_up", 40),
        ];
        let answers = [
            Answer {
                subject: "a".into(),
                score: 10,
                at: day(6),
            },
            Answer {
                subject: "c".into(),
                score: 3,
                at: day(21),
            },
            Answer {
                subject: "c".into(),
                score: 9,
                at: day(6),
            },
            Answer {
                subject: "b".into(),
                score: 8,
                at: day(5),
            },
        ];
        let current = HashMap::from([("activated".to_string(), 2), ("at_risk".to_string(), 1)]);
        let report = compute(&journeys(), &current, &moves, &answers, day(0), day(30));
        let stage = |name: &str| report.stages.iter().find(|s| s.stage == name).unwrap();
        assert_eq!(stage("signed_up").entered, 3);
        assert_eq!(stage("signed_up").customers, 0);
        assert_eq!(stage("activated").entered, 3);
        assert_eq!(stage("activated").customers, 2);
        // Days to activated: 4, 10, 2 → median 4.
        assert_eq!(stage("activated").median_days_to_reach, Some(4.0));
        assert_eq!(stage("at_risk").median_days_to_reach, Some(17.0));
        // a (10) and c (9) answered while activated, b (8) while signed up, c (3) at risk.
        assert_eq!(stage("activated").nps.n, 2);
        assert_eq!(stage("activated").nps.score, Some(100.0));
        assert_eq!(stage("signed_up").nps.passives, 1);
        assert_eq!(stage("at_risk").nps.score, Some(-100.0));
        assert_eq!(report.moves[0].count, 3);
        assert_eq!(report.moves.iter().map(|m| m.count).sum::<i64>(), 7);
        assert!(median(vec![]).is_none());
        assert_eq!(median(vec![3.0, 1.0]), Some(2.0));
    }
}
