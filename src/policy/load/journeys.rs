//! `journeys.toml`: stages and the rules that move customers between them.

use std::collections::HashSet;

use chrono::TimeDelta;
use serde::Deserialize;
use toml::Spanned;

use crate::policy::diagnostics::{Report, Source};
use crate::policy::journey::{JourneyRule, Journeys, NpsClass, Trigger};
use crate::policy::key::is_valid_key;
use crate::policy::Purpose;

pub const JOURNEYS_FILE: &str = "journeys.toml";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct JourneysFile {
    purpose: Spanned<String>,
    stages: Spanned<Vec<Spanned<String>>>,
    initial: Spanned<String>,
    #[serde(default)]
    at_risk: Vec<Spanned<String>>,
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    from: Spanned<Vec<Spanned<String>>>,
    to: Spanned<String>,
    event: Option<Spanned<String>>,
    count: Option<Spanned<u32>>,
    within_days: Option<Spanned<i64>>,
    inactive_days: Option<Spanned<i64>>,
    nps: Option<Spanned<String>>,
}

pub(super) fn check(
    source: &Source,
    file: JourneysFile,
    purposes: &[Purpose],
    report: &mut Report,
) -> Journeys {
    let mut stages = Vec::new();
    let mut seen = HashSet::new();
    for stage in file.stages.get_ref() {
        if !crate::policy::channel::is_channel_name(stage.get_ref()) {
            report.at(
                source,
                stage,
                "stages",
                "lower-case letters, digits and `_`, starting with a letter, at most 32",
            );
        } else if !seen.insert(stage.get_ref().clone()) {
            report.at(
                source,
                stage,
                "stages",
                format!("duplicate stage `{}`", stage.get_ref()),
            );
        } else {
            stages.push(stage.get_ref().clone());
        }
    }
    let known = |name: &Spanned<String>, field: &str, report: &mut Report| {
        let ok = seen.contains(name.get_ref());
        if !ok {
            report.at(
                source,
                name,
                field,
                format!("`{}` is not one of `stages`", name.get_ref()),
            );
        }
        ok
    };
    known(&file.initial, "initial", report);
    let at_risk = file
        .at_risk
        .iter()
        .filter(|s| known(s, "at_risk", report))
        .map(|s| s.get_ref().clone())
        .collect();
    if !purposes.iter().any(|p| &p.key == file.purpose.get_ref()) {
        report.at(
            source,
            &file.purpose,
            "purpose",
            format!(
                "`{}` is not a purpose of purposes.toml",
                file.purpose.get_ref()
            ),
        );
    }
    let mut rules = Vec::new();
    for (i, raw) in file.rule.into_iter().enumerate() {
        let field = |name: &str| format!("rule[{i}].{name}");
        let from: Vec<String> = raw
            .from
            .get_ref()
            .iter()
            .filter(|s| known(s, &field("from"), report))
            .map(|s| s.get_ref().clone())
            .collect();
        if raw.from.get_ref().is_empty() {
            report.at(source, &raw.from, field("from"), "name at least one stage");
        }
        known(&raw.to, &field("to"), report);
        let days = |value: &Spanned<i64>, name: &str, report: &mut Report| {
            if (1..=3650).contains(value.get_ref()) {
                Some(TimeDelta::days(*value.get_ref()))
            } else {
                report.at(source, value, field(name), "between 1 and 3650 days");
                None
            }
        };
        let trigger = match (&raw.event, &raw.inactive_days, &raw.nps) {
            (Some(event), None, None) => {
                if !(event.get_ref().len() <= 100 && is_valid_key(event.get_ref())) {
                    report.at(
                        source,
                        event,
                        field("event"),
                        "dotted lower-case words, e.g. `onboarding.step_completed`",
                    );
                }
                let count = raw.count.as_ref().map_or(1, |c| *c.get_ref());
                if count == 0 {
                    if let Some(c) = &raw.count {
                        report.at(source, c, field("count"), "at least 1");
                    }
                }
                let within = raw
                    .within_days
                    .as_ref()
                    .and_then(|d| days(d, "within_days", report));
                Some(Trigger::Events {
                    event: event.get_ref().clone(),
                    count: count.max(1),
                    within,
                })
            }
            (None, Some(inactive), None) => {
                days(inactive, "inactive_days", report).map(|days| Trigger::Inactive { days })
            }
            (None, None, Some(nps)) => {
                let class = NpsClass::parse(nps.get_ref());
                if class.is_none() {
                    report.at(
                        source,
                        nps,
                        field("nps"),
                        "one of `detractor`, `passive`, `promoter`",
                    );
                }
                class.map(Trigger::Nps)
            }
            _ => {
                report.at(
                    source,
                    &raw.to,
                    field("to"),
                    "give exactly one trigger: `event`, `inactive_days` or `nps`",
                );
                None
            }
        };
        if let Some(trigger) = trigger {
            rules.push(JourneyRule {
                from,
                to: raw.to.into_inner(),
                trigger,
            });
        }
    }
    Journeys {
        stages,
        initial: file.initial.into_inner(),
        at_risk,
        purpose: file.purpose.into_inner(),
        rules,
    }
}
