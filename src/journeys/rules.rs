//! Where a customer is on their journey, as a pure function of the stage they are in,
//! what they did, what they answered, and the time.

use chrono::{DateTime, Utc};

use crate::policy::journey::{Journeys, NpsClass, Trigger};

/// What is known of one customer.
#[derive(Debug, Clone, Copy)]
pub struct JourneyFacts<'a> {
    /// Their stage and since when; `None` before their first event.
    pub stage: Option<(&'a str, DateTime<Utc>)>,
    /// Their events, by name and when they happened (any order).
    pub events: &'a [(String, DateTime<Utc>)],
    /// Their NPS answers, by class and when given (any order).
    pub answers: &'a [(NpsClass, DateTime<Utc>)],
}

/// A move from one stage to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// `None` for the first stage.
    pub from: Option<String>,
    pub to: String,
    pub at: DateTime<Utc>,
}

/// Whether a rule's trigger has fired for a customer in a stage since `since`. Events and
/// answers count only from when the customer entered the stage, so that what moved them
/// in does not move them again.
fn fired(
    trigger: &Trigger,
    facts: &JourneyFacts<'_>,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    match trigger {
        Trigger::Events {
            event,
            count,
            within,
        } => {
            let from = within.map_or(since, |w| since.max(now - w));
            let seen = facts
                .events
                .iter()
                .filter(|(name, at)| name == event && *at >= from && *at <= now)
                .count();
            seen >= *count as usize
        }
        Trigger::Inactive { days } => {
            // Answering a survey is activity too.
            let last = facts
                .events
                .iter()
                .map(|(_, at)| *at)
                .chain(facts.answers.iter().map(|(_, at)| *at))
                .filter(|at| *at <= now)
                .max()
                .unwrap_or(since);
            now - last >= *days
        }
        Trigger::Nps(class) => facts
            .answers
            .iter()
            .any(|(c, at)| c == class && *at >= since && *at <= now),
    }
}

/// The moves a customer makes at `now`: into the initial stage on their first event, then
/// by the first rule that fires, again from the new stage, until none does. A stage is
/// entered at most once a call, so a cycle of rules cannot spin.
pub fn advance(
    journeys: &Journeys,
    facts: &JourneyFacts<'_>,
    now: DateTime<Utc>,
) -> Vec<Transition> {
    if !journeys.enabled() {
        return Vec::new();
    }
    let mut moves = Vec::new();
    let (mut stage, mut since) = match facts.stage {
        Some((stage, since)) => (stage.to_owned(), since),
        None => {
            let Some(first) = facts
                .events
                .iter()
                .map(|(_, at)| *at)
                .filter(|at| *at <= now)
                .min()
            else {
                return moves;
            };
            moves.push(Transition {
                from: None,
                to: journeys.initial.clone(),
                at: now,
            });
            (journeys.initial.clone(), first)
        }
    };
    let mut entered = vec![stage.clone()];
    loop {
        let next = journeys.rules.iter().find(|rule| {
            rule.from.contains(&stage)
                && rule.to != stage
                && !entered.contains(&rule.to)
                && fired(&rule.trigger, facts, since, now)
        });
        let Some(rule) = next else {
            return moves;
        };
        moves.push(Transition {
            from: Some(stage.clone()),
            to: rule.to.clone(),
            at: now,
        });
        stage = rule.to.clone();
        entered.push(stage.clone());
        // A new stage counts only what happens from now on.
        since = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::journey::JourneyRule;
    use chrono::TimeDelta;

    fn day(n: i64) -> DateTime<Utc> {
        "2026-11-01T09:00:00Z".parse::<DateTime<Utc>>().unwrap() + TimeDelta::days(n)
    }

    fn rule(from: &[&str], to: &str, trigger: Trigger) -> JourneyRule {
        JourneyRule {
            from: from.iter().map(|s| s.to_string()).collect(),
            to: to.into(),
            trigger,
        }
    }

    fn events(name: &str, count: u32, within: Option<i64>) -> Trigger {
        Trigger::Events {
            event: name.into(),
            count,
            within: within.map(TimeDelta::days),
        }
    }

    /// The shipped shape of `journeys.toml`.
    fn journeys() -> Journeys {
        let all = ["signed_up", "onboarding", "activated", "engaged", "at_risk"];
        Journeys {
            stages: [
                "signed_up",
                "onboarding",
                "activated",
                "engaged",
                "at_risk",
                "churned",
            ]
            .map(String::from)
            .to_vec(),
            initial: "signed_up".into(),
            at_risk: vec!["at_risk".into()],
            purpose: "personalize.journey".into(),
            rules: vec![
                rule(
                    &["signed_up"],
                    "onboarding",
                    events("onboarding.started", 1, None),
                ),
                rule(
                    &["signed_up", "onboarding"],
                    "activated",
                    events("onboarding.step_completed", 3, Some(14)),
                ),
                rule(
                    &["activated"],
                    "engaged",
                    events("order.placed", 3, Some(30)),
                ),
                rule(
                    &["onboarding", "activated", "engaged"],
                    "at_risk",
                    Trigger::Nps(NpsClass::Detractor),
                ),
                rule(&["at_risk"], "engaged", Trigger::Nps(NpsClass::Promoter)),
                rule(
                    &all,
                    "churned",
                    Trigger::Inactive {
                        days: TimeDelta::days(90),
                    },
                ),
                rule(
                    &all[..4],
                    "at_risk",
                    Trigger::Inactive {
                        days: TimeDelta::days(30),
                    },
                ),
                rule(
                    &["at_risk", "churned"],
                    "activated",
                    events("order.placed", 1, Some(1)),
                ),
            ],
        }
    }

    fn ev(name: &str, d: i64) -> (String, DateTime<Utc>) {
        (name.to_string(), day(d))
    }

    fn stages(moves: &[Transition]) -> Vec<&str> {
        moves.iter().map(|t| t.to.as_str()).collect()
    }

    #[test]
    fn the_first_event_starts_the_journey_and_may_move_it_on_at_once() {
        let j = journeys();
        let none = JourneyFacts {
            stage: None,
            events: &[],
            answers: &[],
        };
        assert!(
            advance(&j, &none, day(0)).is_empty(),
            "no event, no journey"
        );
        let first = [ev("app.opened", 0)];
        let facts = JourneyFacts {
            stage: None,
            events: &first,
            answers: &[],
        };
        let moves = advance(&j, &facts, day(0));
        assert_eq!(moves[0].from, None);
        assert_eq!(stages(&moves), ["signed_up"]);
        let started = [ev("onboarding.started", 0)];
        let facts = JourneyFacts {
            stage: None,
            events: &started,
            answers: &[],
        };
        assert_eq!(
            stages(&advance(&j, &facts, day(0))),
            ["signed_up", "onboarding"]
        );
    }

    #[test]
    fn counted_events_must_fall_in_the_window_and_in_the_stage() {
        let j = journeys();
        let steps = |days: &[i64]| -> Vec<(String, DateTime<Utc>)> {
            days.iter()
                .map(|d| ev("onboarding.step_completed", *d))
                .collect()
        };
        // (steps on days, stage entered on day, now, moves to activated)
        let cases: [(&[i64], i64, i64, bool); 5] = [
            (&[1, 2, 3], 0, 3, true),
            // Three within 14 days, counted at the boundary...
            (&[1, 8, 15], 0, 15, true),
            // ...and not once the first has left the window.
            (&[1, 8, 16], 0, 16, false),
            // Two only.
            (&[1, 2], 0, 20, false),
            // Steps before the stage began do not count.
            (&[1, 2, 3], 2, 4, false),
        ];
        for (i, (days, entered, now, activated)) in cases.into_iter().enumerate() {
            let evs = steps(days);
            let facts = JourneyFacts {
                stage: Some(("onboarding", day(entered))),
                events: &evs,
                answers: &[],
            };
            let moves = advance(&j, &facts, day(now));
            assert_eq!(
                stages(&moves).first() == Some(&"activated"),
                activated,
                "case {i}: {moves:?}"
            );
        }
    }

    #[test]
    fn inactivity_puts_at_risk_then_churns() {
        let j = journeys();
        let evs = [ev("order.placed", 10)];
        let at = |now: i64, stage: &str, since: i64| {
            let facts = JourneyFacts {
                stage: Some((stage, day(since))),
                events: &evs,
                answers: &[],
            };
            advance(&j, &facts, day(now))
        };
        assert!(at(39, "engaged", 10).is_empty(), "29 days quiet");
        assert_eq!(stages(&at(40, "engaged", 10)), ["at_risk"]);
        assert!(at(99, "at_risk", 40).is_empty());
        assert_eq!(stages(&at(100, "at_risk", 40)), ["churned"]);
        // Ninety quiet days from engaged: churned, not stopping at at_risk.
        assert_eq!(stages(&at(100, "engaged", 10)), ["churned"]);
        assert!(at(400, "churned", 100).is_empty(), "churned stays");
    }

    #[test]
    fn nps_answers_move_in_and_out_of_at_risk() {
        let j = journeys();
        let evs = [ev("order.placed", 0)];
        let detractor = [(NpsClass::Detractor, day(5))];
        let facts = JourneyFacts {
            stage: Some(("engaged", day(1))),
            events: &evs,
            answers: &detractor,
        };
        assert_eq!(stages(&advance(&j, &facts, day(5))), ["at_risk"]);
        // The same answer does not count again once at risk; a later promoter leaves.
        let both = [(NpsClass::Detractor, day(5)), (NpsClass::Promoter, day(9))];
        let facts = JourneyFacts {
            stage: Some(("at_risk", day(5))),
            events: &evs,
            answers: &both,
        };
        assert_eq!(stages(&advance(&j, &facts, day(9))), ["engaged"]);
        let passive = [(NpsClass::Passive, day(9))];
        let facts = JourneyFacts {
            stage: Some(("at_risk", day(5))),
            events: &evs,
            answers: &passive,
        };
        assert!(advance(&j, &facts, day(9)).is_empty());
        // A promoter answer given before becoming at risk does not bring them back.
        let early = [(NpsClass::Promoter, day(2))];
        let facts = JourneyFacts {
            stage: Some(("at_risk", day(5))),
            events: &evs,
            answers: &early,
        };
        assert!(advance(&j, &facts, day(9)).is_empty());
    }

    #[test]
    fn an_order_brings_back_whoever_left_and_cycles_cannot_spin() {
        let j = journeys();
        let evs = [ev("order.placed", 200)];
        let facts = JourneyFacts {
            stage: Some(("churned", day(100))),
            events: &evs,
            answers: &[],
        };
        assert_eq!(stages(&advance(&j, &facts, day(200))), ["activated"]);
        // Two rules that send each other back and forth fire once each at most.
        let ping = Journeys {
            rules: vec![
                rule(
                    &["signed_up"],
                    "onboarding",
                    Trigger::Inactive {
                        days: TimeDelta::days(1),
                    },
                ),
                rule(
                    &["onboarding"],
                    "signed_up",
                    Trigger::Inactive {
                        days: TimeDelta::days(1),
                    },
                ),
            ],
            ..journeys()
        };
        let old = [ev("app.opened", 0)];
        let facts = JourneyFacts {
            stage: Some(("signed_up", day(0))),
            events: &old,
            answers: &[],
        };
        assert_eq!(stages(&advance(&ping, &facts, day(10))), ["onboarding"]);
    }
}
