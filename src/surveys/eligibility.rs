//! Which survey, if any, to show a subject now: a pure function of the active surveys,
//! the subject's attributes and history, and the gate's answer for each purpose.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use ring::digest;
use serde_json::Value;

use super::definition::{AttributeFilter, Definition, FilterOp};
use crate::consent::SubjectSnapshot;
use crate::gate::rules::decide_for;
use crate::gate::rules::DecisionRequest;
use crate::policy::Policies;
use crate::profiles::attributes::Attributes;

/// An active survey as eligibility sees it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub id: String,
    pub priority: i32,
    pub created_at: DateTime<Utc>,
    pub purpose: String,
    pub definition: Definition,
}

/// What the subject has seen of one survey.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SurveyHistory {
    pub displays: u32,
    pub dismissals: u32,
    pub responded: bool,
}

#[derive(Debug, Clone, Default)]
pub struct SubjectHistory {
    /// The last display of any survey.
    pub last_display: Option<DateTime<Utc>>,
    pub surveys: HashMap<String, SurveyHistory>,
    /// The latest occurrence of each event the subject has had.
    pub latest_events: HashMap<String, DateTime<Utc>>,
}

/// Why a survey is not offered (first reason found, in this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ineligible {
    NotTriggered,
    OutsideWindow,
    Responded,
    Dismissed,
    DisplayCap,
    Recontact,
    TooEarly,
    NotSampled,
    Attributes,
    Stage,
    PurposeNotAllowed,
}

/// The profile attribute a journey keeps its stage in.
pub const JOURNEY_STAGE: &str = "journey.stage";

pub struct Context<'a> {
    pub subject_id: &'a str,
    pub now: DateTime<Utc>,
    /// The event the caller reports, if any.
    pub event: Option<&'a str>,
    pub attributes: &'a Attributes,
    pub history: &'a SubjectHistory,
    /// The gate's answer for a survey's purpose and what it writes (see `refusal`).
    pub purpose_allowed: &'a dyn Fn(&Candidate) -> bool,
    /// The service-wide least wait between displays; a survey may only lengthen it.
    pub recontact_days: u32,
}

pub fn check(candidate: &Candidate, ctx: &Context<'_>) -> Result<(), Ineligible> {
    let targeting = &candidate.definition.targeting;
    let throttling = &candidate.definition.throttling;
    // The moment the triggering event happened: a reported event that is one of the
    // triggers counts from its recorded time (now when it has not been recorded);
    // without one, the latest recorded trigger counts. No triggers: always triggered.
    let triggered_at = if targeting.trigger_events.is_empty() {
        Some(ctx.now)
    } else {
        match ctx.event {
            Some(event) => targeting
                .trigger_events
                .iter()
                .any(|t| t == event)
                .then(|| {
                    ctx.history
                        .latest_events
                        .get(event)
                        .copied()
                        .unwrap_or(ctx.now)
                }),
            None => targeting
                .trigger_events
                .iter()
                .filter_map(|t| ctx.history.latest_events.get(t).copied())
                .max(),
        }
    };
    let Some(triggered_at) = triggered_at else {
        return Err(Ineligible::NotTriggered);
    };
    if targeting.starts_at.is_some_and(|s| ctx.now < s)
        || targeting.ends_at.is_some_and(|e| ctx.now >= e)
    {
        return Err(Ineligible::OutsideWindow);
    }
    let seen = ctx
        .history
        .surveys
        .get(&candidate.id)
        .copied()
        .unwrap_or_default();
    if seen.responded {
        return Err(Ineligible::Responded);
    }
    if seen.dismissals >= throttling.max_dismissals {
        return Err(Ineligible::Dismissed);
    }
    if seen.displays >= throttling.max_displays {
        return Err(Ineligible::DisplayCap);
    }
    // Counted from the last display of any survey; the service-wide wait is a floor.
    let recontact = TimeDelta::days(i64::from(throttling.recontact_days.max(ctx.recontact_days)));
    if ctx
        .history
        .last_display
        .is_some_and(|last| ctx.now < last + recontact)
    {
        return Err(Ineligible::Recontact);
    }
    if ctx.now < triggered_at + TimeDelta::seconds(i64::from(targeting.delay_seconds)) {
        return Err(Ineligible::TooEarly);
    }
    if !in_sample(&candidate.id, ctx.subject_id, targeting.sample_percent) {
        return Err(Ineligible::NotSampled);
    }
    if !targeting
        .attributes
        .iter()
        .all(|f| filter_holds(f, ctx.attributes))
    {
        return Err(Ineligible::Attributes);
    }
    if !targeting.stages.is_empty() {
        let stage = ctx
            .attributes
            .get(JOURNEY_STAGE)
            .and_then(|a| a.value.as_str());
        if !stage.is_some_and(|s| targeting.stages.iter().any(|t| t == s)) {
            return Err(Ineligible::Stage);
        }
    }
    if !(ctx.purpose_allowed)(candidate) {
        return Err(Ineligible::PurposeNotAllowed);
    }
    Ok(())
}

/// Why the gate refuses a survey's purpose, and the categories it writes, for this
/// subject (`None`: allowed) — the gate's own rule function, on the given state. A
/// restricted subject is refused whatever the purpose's basis.
pub fn refusal(
    policies: &Policies,
    snapshot: &SubjectSnapshot,
    purpose: &str,
    categories: &[String],
    now: DateTime<Utc>,
) -> Option<Value> {
    if snapshot
        .subject
        .as_ref()
        .is_some_and(|s| s.restricted_at.is_some())
    {
        return Some(Value::from("processing_restricted"));
    }
    let Some(purpose) = policies.purpose(purpose) else {
        return Some(Value::from("unknown_purpose"));
    };
    let decision = decide_for(
        policies,
        snapshot,
        &DecisionRequest {
            purpose,
            channel: None,
            data_categories: categories,
            gpc: false,
            now,
        },
    );
    (!decision.allowed).then(|| serde_json::to_value(decision.reason).unwrap_or(Value::Null))
}

/// The highest-priority eligible survey (the older one on a tie).
pub fn choose<'c>(candidates: &'c [Candidate], ctx: &Context<'_>) -> Option<&'c Candidate> {
    let mut ordered: Vec<&Candidate> = candidates.iter().collect();
    ordered.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then(a.created_at.cmp(&b.created_at))
            .then(a.id.cmp(&b.id))
    });
    ordered.into_iter().find(|c| check(c, ctx).is_ok())
}

/// The subject's fixed place in a survey's sample, 0–9999: from a hash of (survey id,
/// subject id), so that it never changes and raising the percentage only adds people.
pub fn sample_bucket(survey_id: &str, subject_id: &str) -> u64 {
    let mut context = digest::Context::new(&digest::SHA256);
    context.update(survey_id.as_bytes());
    context.update(&[0]);
    context.update(subject_id.as_bytes());
    let hash = context.finish();
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.as_ref()[..8]);
    u64::from_be_bytes(first) % 10_000
}

pub fn in_sample(survey_id: &str, subject_id: &str, percent: f64) -> bool {
    (sample_bucket(survey_id, subject_id) as f64) < percent * 100.0
}

/// One attribute filter against the profile; a missing attribute meets only `neq` and
/// `exists: false`.
pub fn filter_holds(filter: &AttributeFilter, attributes: &Attributes) -> bool {
    let actual = attributes.get(&filter.key).map(|a| &a.value);
    let expected = filter.value.as_ref();
    match filter.op {
        FilterOp::Exists => actual.is_some() == expected.and_then(Value::as_bool).unwrap_or(true),
        FilterOp::Eq => actual.is_some() && actual == expected,
        FilterOp::Neq => actual != expected,
        FilterOp::In => match (actual, expected.and_then(Value::as_array)) {
            (Some(a), Some(list)) => list.contains(a),
            _ => false,
        },
        FilterOp::Gt | FilterOp::Lt => {
            match (
                actual.and_then(Value::as_f64),
                expected.and_then(Value::as_f64),
            ) {
                (Some(a), Some(b)) if filter.op == FilterOp::Gt => a > b,
                (Some(a), Some(b)) => a < b,
                _ => false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profiles::attributes::Attribute;
    use chrono::TimeZone;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
    }

    fn candidate(id: &str, priority: i32, targeting: Value) -> Candidate {
        Candidate {
            id: id.into(),
            priority,
            created_at: now() - TimeDelta::days(30),
            purpose: "functional.service.improve.feedback_surveys".into(),
            definition: serde_json::from_value(json!({
                "questions": [{"id": "score", "type": "nps", "prompt": {"en": "?"}}],
                "targeting": targeting,
            }))
            .unwrap(),
        }
    }

    fn attrs(pairs: &[(&str, Value)]) -> Attributes {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    Attribute {
                        value: v.clone(),
                        category: "user.account".into(),
                        source: "api".into(),
                        updated_at: now(),
                    },
                )
            })
            .collect()
    }

    struct World {
        attributes: Attributes,
        history: SubjectHistory,
        allowed: bool,
        event: Option<&'static str>,
        at: DateTime<Utc>,
        recontact_days: u32,
    }

    impl World {
        fn new() -> Self {
            Self {
                attributes: attrs(&[("plan", json!("pro")), ("seats", json!(12))]),
                history: SubjectHistory::default(),
                allowed: true,
                event: None,
                at: now(),
                recontact_days: 0,
            }
        }

        fn check(&self, c: &Candidate) -> Result<(), Ineligible> {
            let allowed = self.allowed;
            let purpose_allowed = move |_: &Candidate| allowed;
            check(
                c,
                &Context {
                    subject_id: "cust-1",
                    now: self.at,
                    event: self.event,
                    attributes: &self.attributes,
                    history: &self.history,
                    purpose_allowed: &purpose_allowed,
                    recontact_days: self.recontact_days,
                },
            )
        }
    }

    #[test]
    fn triggers_and_delay() {
        let survey = candidate(
            "s1",
            0,
            json!({"trigger_events": ["onboarding.completed"], "delay_seconds": 3600}),
        );
        let mut world = World::new();
        assert_eq!(world.check(&survey), Err(Ineligible::NotTriggered));
        world.event = Some("checkout.completed");
        assert_eq!(world.check(&survey), Err(Ineligible::NotTriggered));
        world.event = Some("onboarding.completed");
        assert_eq!(world.check(&survey), Err(Ineligible::TooEarly));
        world.history.latest_events.insert(
            "onboarding.completed".into(),
            now() - TimeDelta::minutes(61),
        );
        assert_eq!(world.check(&survey), Ok(()));
        world.event = None;
        assert_eq!(world.check(&survey), Ok(()));
    }

    #[test]
    fn window() {
        let survey = candidate(
            "s1",
            0,
            json!({"starts_at": "2026-12-01T00:00:00Z", "ends_at": "2027-01-01T00:00:00Z"}),
        );
        let mut world = World::new();
        assert_eq!(world.check(&survey), Err(Ineligible::OutsideWindow));
        world.at = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        assert_eq!(world.check(&survey), Ok(()));
        world.at = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(world.check(&survey), Err(Ineligible::OutsideWindow));
    }

    #[test]
    fn throttling() {
        let survey = candidate("s1", 0, json!({}));
        let mut world = World::new();
        // Recontact counts from the last display of any survey.
        world.history.last_display = Some(now() - TimeDelta::days(13));
        assert_eq!(world.check(&survey), Err(Ineligible::Recontact));
        world.history.last_display = Some(now() - TimeDelta::days(14));
        assert_eq!(world.check(&survey), Ok(()));
        // The service-wide wait holds even for a survey that asks for less.
        let mut eager = candidate("s2", 0, json!({}));
        eager.definition.throttling.recontact_days = 0;
        world.history.last_display = Some(now() - TimeDelta::days(3));
        assert_eq!(world.check(&eager), Ok(()));
        world.recontact_days = 7;
        assert_eq!(world.check(&eager), Err(Ineligible::Recontact));
        world.recontact_days = 0;
        world.history.last_display = Some(now() - TimeDelta::days(14));
        let mut seen = SurveyHistory {
            displays: 3,
            ..Default::default()
        };
        world.history.surveys.insert("s1".into(), seen);
        assert_eq!(world.check(&survey), Err(Ineligible::DisplayCap));
        seen.dismissals = 2;
        world.history.surveys.insert("s1".into(), seen);
        assert_eq!(world.check(&survey), Err(Ineligible::Dismissed));
        seen.responded = true;
        world.history.surveys.insert("s1".into(), seen);
        assert_eq!(world.check(&survey), Err(Ineligible::Responded));
    }

    #[test]
    fn consent_withdrawn_means_no_survey() {
        let mut world = World::new();
        world.allowed = false;
        assert_eq!(
            world.check(&candidate("s1", 0, json!({}))),
            Err(Ineligible::PurposeNotAllowed)
        );
    }

    #[test]
    fn stage_targeting_needs_one_of_the_stages() {
        let mut world = World::new();
        let onboarding = candidate("s1", 0, json!({"stages": ["onboarding"]}));
        assert_eq!(
            world.check(&onboarding),
            Err(Ineligible::Stage),
            "no stage yet"
        );
        world.attributes = attrs(&[(JOURNEY_STAGE, json!("activated"))]);
        assert_eq!(world.check(&onboarding), Err(Ineligible::Stage));
        world.attributes = attrs(&[(JOURNEY_STAGE, json!("onboarding"))]);
        assert_eq!(world.check(&onboarding), Ok(()));
        assert_eq!(
            world.check(&candidate("s2", 0, json!({}))),
            Ok(()),
            "no stages: any"
        );
    }

    #[test]
    fn attribute_filters() {
        let world = World::new();
        let with = |f: Value| world.check(&candidate("s1", 0, json!({"attributes": [f]})));
        assert_eq!(
            with(json!({"key": "plan", "op": "eq", "value": "pro"})),
            Ok(())
        );
        assert_eq!(
            with(json!({"key": "plan", "op": "eq", "value": "free"})),
            Err(Ineligible::Attributes)
        );
        assert_eq!(
            with(json!({"key": "plan", "op": "neq", "value": "free"})),
            Ok(())
        );
        assert_eq!(
            with(json!({"key": "plan", "op": "in", "value": ["pro", "team"]})),
            Ok(())
        );
        assert_eq!(
            with(json!({"key": "seats", "op": "gt", "value": 10})),
            Ok(())
        );
        assert_eq!(
            with(json!({"key": "seats", "op": "lt", "value": 10})),
            Err(Ineligible::Attributes)
        );
        assert_eq!(with(json!({"key": "plan", "op": "exists"})), Ok(()));
        assert_eq!(
            with(json!({"key": "churned", "op": "exists", "value": false})),
            Ok(())
        );
        assert_eq!(
            with(json!({"key": "churned", "op": "eq", "value": true})),
            Err(Ineligible::Attributes)
        );
        assert_eq!(
            with(json!({"key": "churned", "op": "neq", "value": true})),
            Ok(())
        );
    }

    #[test]
    fn sampling_is_sticky_and_only_adds_people() {
        let subjects: Vec<String> = (0..2000).map(|i| format!("cust-{i}")).collect();
        let in_at = |p: f64| -> Vec<&String> {
            subjects.iter().filter(|s| in_sample("s1", s, p)).collect()
        };
        let (ten, thirty) = (in_at(10.0), in_at(30.0));
        assert!(ten.iter().all(|s| thirty.contains(s)));
        assert!((150..250).contains(&ten.len()), "{}", ten.len());
        assert!((500..700).contains(&thirty.len()), "{}", thirty.len());
        assert_eq!(in_at(0.0).len(), 0);
        assert_eq!(in_at(100.0).len(), 2000);
        // Another survey samples other people.
        let other: Vec<_> = subjects
            .iter()
            .filter(|s| in_sample("s2", s, 10.0))
            .collect();
        assert_ne!(ten, other);
        let world = World::new();
        let survey = candidate("s1", 0, json!({"sample_percent": 0}));
        assert_eq!(world.check(&survey), Err(Ineligible::NotSampled));
    }

    #[test]
    fn the_highest_priority_eligible_survey_wins() {
        let surveys = vec![
            candidate("low", 1, json!({})),
            candidate("high_but_unsampled", 9, json!({"sample_percent": 0})),
            candidate("high", 5, json!({})),
        ];
        let world = World::new();
        let allowed = |_: &Candidate| true;
        let ctx = Context {
            subject_id: "cust-1",
            now: now(),
            event: None,
            attributes: &world.attributes,
            history: &world.history,
            purpose_allowed: &allowed,
            recontact_days: 14,
        };
        assert_eq!(choose(&surveys, &ctx).unwrap().id, "high");
        assert!(choose(&surveys[1..2], &ctx).is_none());
    }
}
