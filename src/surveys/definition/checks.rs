//! The checks that make a definition usable: every reference resolves, every shape fits
//! its question type, targeting and throttling stay in range.

use std::collections::HashSet;

use serde_json::Value;

use super::show_if::check_condition;
use super::{
    Definition, FilterOp, Localized, Question, QuestionType, SurveyKind, Targeting,
    FEEDBACK_CATEGORY, MAX_LABEL_CHARS, MAX_PROMPT_CHARS, MAX_QUESTIONS, MAX_TEXT_LENGTH,
};
use crate::policy::key::is_valid_key;
use crate::policy::taxonomy::category_covers;
use crate::policy::{Basis, Policies};
use crate::validation::FieldError;

/// Checks a definition against the policies; every problem is named by its field path.
pub fn check(
    policies: &Policies,
    kind: SurveyKind,
    purpose: &str,
    definition: &Definition,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut err = |field: String, code: &str, message: String| {
        errors.push(FieldError::new(field, code, message))
    };
    let declared = match policies.purpose(purpose) {
        None => {
            err(
                "purpose".into(),
                "unknown_purpose",
                format!("`{purpose}` is not a purpose (see GET /v1/purposes)"),
            );
            None
        }
        // A survey must rest on something the customer can refuse.
        Some(p) if p.basis.values().any(|b| *b == Basis::NoticeOnly) => {
            err(
                "purpose".into(),
                "not_refusable",
                format!("`{purpose}` cannot be refused somewhere (notice only); a survey needs a purpose customers may decline"),
            );
            None
        }
        Some(p) => Some(p),
    };
    if let Some(key) = &definition.breakdown {
        if !is_valid_key(key) || key.len() > 100 {
            err(
                "breakdown".into(),
                "invalid",
                "attribute keys are dotted lower-case words, e.g. `plan`".into(),
            );
        }
    }
    let questions = &definition.questions;
    if questions.is_empty() || questions.len() > MAX_QUESTIONS {
        err(
            "questions".into(),
            "length",
            format!("1 to {MAX_QUESTIONS} questions"),
        );
    }
    let mut seen: HashSet<&str> = HashSet::new();
    for (i, q) in questions.iter().enumerate() {
        let at = |field: &str| format!("questions[{i}].{field}");
        if !is_question_id(&q.id) {
            err(
                at("id"),
                "invalid",
                "1–64 characters: lower-case letters, digits and `_`".into(),
            );
        } else if !seen.insert(&q.id) {
            err(at("id"), "duplicate", format!("`{}` is used twice", q.id));
        }
        check_localized(&q.prompt, &at("prompt"), MAX_PROMPT_CHARS, &mut err);
        check_shape(q, &at, &mut err);
        if let Some(show_if) = &q.show_if {
            match questions[..i].iter().find(|e| e.id == show_if.question) {
                None => err(
                    at("show_if.question"),
                    "unknown_question",
                    format!("`{}` is not an earlier question", show_if.question),
                ),
                Some(earlier) => {
                    if let Err(message) = check_condition(earlier, show_if) {
                        err(at("show_if"), "impossible", message);
                    }
                }
            }
        }
        if let Some(write_back) = &q.write_back {
            if !is_valid_key(&write_back.attribute) || write_back.attribute.len() > 100 {
                err(
                    at("write_back.attribute"),
                    "invalid",
                    "attribute keys are dotted lower-case words, e.g. `onboarding.role`".into(),
                );
            }
            if !policies.taxonomy.contains(&write_back.category) {
                err(
                    at("write_back.category"),
                    "unknown_category",
                    format!(
                        "`{}` is not a data category of the policies",
                        write_back.category
                    ),
                );
            } else if let Some(p) =
                declared.filter(|p| !category_covers(&p.data_categories, &write_back.category))
            {
                err(
                    at("write_back.category"),
                    "not_declared",
                    format!(
                        "`{}` does not declare `{}`: the survey may only collect what its purpose declares",
                        p.key, write_back.category
                    ),
                );
            }
        } else if q.kind == QuestionType::Nps
            && declared.is_some_and(|p| !category_covers(&p.data_categories, FEEDBACK_CATEGORY))
        {
            err(
                at("write_back"),
                "required",
                format!("the purpose does not declare `{FEEDBACK_CATEGORY}`, where NPS scores are kept by default: name a category it declares"),
            );
        }
    }
    let has = |t: QuestionType| questions.iter().any(|q| q.kind == t);
    match kind {
        SurveyKind::Nps if !has(QuestionType::Nps) => err(
            "questions".into(),
            "required",
            "an `nps` survey needs a question of type `nps`".into(),
        ),
        SurveyKind::Csat if !has(QuestionType::Rating) => err(
            "questions".into(),
            "required",
            "a `csat` survey needs a question of type `rating`".into(),
        ),
        _ => {}
    }
    check_targeting(&definition.targeting, &mut err);
    if definition.targeting.stages.len() > 20 {
        err("targeting.stages".into(), "too_many", "at most 20".into());
    }
    for (i, stage) in definition.targeting.stages.iter().enumerate() {
        if !policies.journeys.is_stage(stage) {
            err(
                format!("targeting.stages[{i}]"),
                "unknown_stage",
                format!(
                    "`{stage}` is not a journey stage (policies/journeys.toml: {})",
                    policies.journeys.stages.join(", ")
                ),
            );
        }
    }
    let throttling = &definition.throttling;
    if throttling.recontact_days > 365 {
        err(
            "throttling.recontact_days".into(),
            "range",
            "0 to 365 days".into(),
        );
    }
    if !(1..=100).contains(&throttling.max_displays) {
        err("throttling.max_displays".into(), "range", "1 to 100".into());
    }
    if !(1..=100).contains(&throttling.max_dismissals) {
        err(
            "throttling.max_dismissals".into(),
            "range",
            "1 to 100".into(),
        );
    }
    errors
}

fn is_question_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn check_localized(
    text: &Localized,
    field: &str,
    max: usize,
    err: &mut impl FnMut(String, &str, String),
) {
    if !text.contains_key("en") {
        err(
            format!("{field}.en"),
            "required",
            "English text is required (the fallback)".into(),
        );
    }
    for (tag, value) in text {
        if crate::policy::locale::parse_locale(tag).ok().as_deref() != Some(tag.as_str()) {
            err(
                format!("{field}.{tag}"),
                "invalid",
                "keys are BCP 47 language tags in their usual case, e.g. `en`, `ar`, `ar-SA`"
                    .into(),
            );
        }
        if value.trim().is_empty() || value.chars().count() > max {
            err(
                format!("{field}.{tag}"),
                "length",
                format!("1 to {max} characters"),
            );
        }
    }
}

fn check_shape(
    q: &Question,
    at: &impl Fn(&str) -> String,
    err: &mut impl FnMut(String, &str, String),
) {
    let not_for = |field: &str, err: &mut dyn FnMut(String, &str, String)| {
        err(
            at(field),
            "not_allowed",
            format!("not used by `{}` questions", type_name(q.kind)),
        )
    };
    if q.kind == QuestionType::Rating {
        if !matches!(q.scale, Some(5) | Some(7)) {
            err(at("scale"), "invalid", "5 or 7".into());
        }
    } else if q.scale.is_some() {
        not_for("scale", err);
    }
    if matches!(
        q.kind,
        QuestionType::SingleChoice | QuestionType::MultiChoice
    ) {
        match &q.options {
            Some(options) if (2..=50).contains(&options.len()) => {
                let mut ids = HashSet::new();
                for (j, option) in options.iter().enumerate() {
                    if !is_question_id(&option.id) {
                        err(
                            at(&format!("options[{j}].id")),
                            "invalid",
                            "1–64 characters: lower-case letters, digits and `_`".into(),
                        );
                    } else if !ids.insert(option.id.as_str()) {
                        err(
                            at(&format!("options[{j}].id")),
                            "duplicate",
                            format!("`{}` is used twice", option.id),
                        );
                    }
                    check_localized(
                        &option.label,
                        &at(&format!("options[{j}].label")),
                        MAX_LABEL_CHARS,
                        err,
                    );
                }
            }
            _ => err(at("options"), "length", "2 to 50 options".into()),
        }
    } else if q.options.is_some() {
        not_for("options", err);
    }
    if q.kind == QuestionType::Text {
        if q.max_length.is_some_and(|m| m == 0 || m > MAX_TEXT_LENGTH) {
            err(
                at("max_length"),
                "range",
                format!("1 to {MAX_TEXT_LENGTH} characters"),
            );
        }
    } else if q.max_length.is_some() {
        not_for("max_length", err);
    }
}

fn type_name(kind: QuestionType) -> &'static str {
    match kind {
        QuestionType::Nps => "nps",
        QuestionType::Rating => "rating",
        QuestionType::SingleChoice => "single_choice",
        QuestionType::MultiChoice => "multi_choice",
        QuestionType::Text => "text",
        QuestionType::Boolean => "boolean",
    }
}
fn check_targeting(targeting: &Targeting, err: &mut impl FnMut(String, &str, String)) {
    if targeting.trigger_events.len() > 20 {
        err(
            "targeting.trigger_events".into(),
            "length",
            "at most 20 events".into(),
        );
    }
    for (i, name) in targeting.trigger_events.iter().enumerate() {
        if !is_event_name(name) {
            err(
                format!("targeting.trigger_events[{i}]"),
                "invalid",
                "event names are dotted lower-case words, e.g. `onboarding.completed`".into(),
            );
        }
    }
    if !(0.0..=100.0).contains(&targeting.sample_percent) {
        err(
            "targeting.sample_percent".into(),
            "range",
            "0 to 100".into(),
        );
    }
    if targeting.delay_seconds > 366 * 86_400 {
        err(
            "targeting.delay_seconds".into(),
            "range",
            "at most a year".into(),
        );
    }
    if let (Some(start), Some(end)) = (targeting.starts_at, targeting.ends_at) {
        if start >= end {
            err(
                "targeting.ends_at".into(),
                "impossible",
                "the window ends before it starts".into(),
            );
        }
    }
    for (i, filter) in targeting.attributes.iter().enumerate() {
        let at = |f: &str| format!("targeting.attributes[{i}].{f}");
        if !is_valid_key(&filter.key) || filter.key.len() > 100 {
            err(
                at("key"),
                "invalid",
                "attribute keys are dotted lower-case words, e.g. `plan`".into(),
            );
        }
        let value = filter.value.as_ref();
        let problem = match filter.op {
            FilterOp::Exists => value
                .filter(|v| !v.is_boolean())
                .map(|_| "`exists` takes true, false or nothing"),
            FilterOp::Eq | FilterOp::Neq => value
                .is_none_or(Value::is_null)
                .then_some("needs a `value`"),
            FilterOp::In => value
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
                .then_some("`in` takes a non-empty list"),
            FilterOp::Gt | FilterOp::Lt => (!value.is_some_and(Value::is_number))
                .then_some("`gt` and `lt` compare with a number"),
        };
        if let Some(message) = problem {
            err(at("value"), "invalid", message.into());
        }
    }
}

/// Event names: dotted lower-case words, at most 100 characters.
pub fn is_event_name(name: &str) -> bool {
    name.len() <= 100 && is_valid_key(name)
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use serde_json::json;

    use super::super::fixtures::{fields, nps_definition, policies};
    use super::super::DEFAULT_PURPOSE;
    use super::*;

    #[test]
    fn a_good_definition_passes() {
        assert!(check(
            &policies(),
            SurveyKind::Nps,
            DEFAULT_PURPOSE,
            &nps_definition()
        )
        .is_empty());
    }

    #[test]
    fn references_must_resolve() {
        let mut d = nps_definition();
        d.questions[1].show_if.as_mut().unwrap().question = "nope".into();
        d.questions[0].write_back.as_mut().unwrap().category = "user.unknown".into();
        assert_eq!(
            fields(check(&policies(), SurveyKind::Nps, "no.such.purpose", &d)),
            [
                "purpose",
                "questions[0].write_back.category",
                "questions[1].show_if.question"
            ]
        );
    }

    #[test]
    fn shapes_follow_the_type() {
        let mut d = nps_definition();
        d.questions[0].scale = Some(5);
        d.questions[1].max_length = Some(0);
        d.questions[2].options.as_mut().unwrap().truncate(1);
        d.questions[2].prompt.remove("en");
        d.questions.push(d.questions[0].clone());
        assert_eq!(
            fields(check(&policies(), SurveyKind::Csat, DEFAULT_PURPOSE, &d)),
            [
                "questions[0].scale",
                "questions[1].max_length",
                "questions[2].prompt.en",
                "questions[2].options",
                "questions[3].id",
                "questions[3].scale",
                "questions",
            ]
        );
    }

    #[test]
    fn targeting_and_throttling_are_checked() {
        let mut d = nps_definition();
        d.targeting.sample_percent = 120.0;
        d.targeting.trigger_events = vec!["Bad Name".into()];
        d.targeting.starts_at = Some(Utc::now());
        d.targeting.ends_at = d.targeting.starts_at;
        d.targeting.attributes = vec![
            serde_json::from_value(json!({"key": "plan", "op": "in", "value": "pro"})).unwrap(),
            serde_json::from_value(json!({"key": "seats", "op": "gt", "value": "10"})).unwrap(),
            serde_json::from_value(json!({"key": "plan", "op": "eq"})).unwrap(),
        ];
        d.throttling.max_displays = 0;
        assert_eq!(
            fields(check(&policies(), SurveyKind::Nps, DEFAULT_PURPOSE, &d)),
            [
                "targeting.trigger_events[0]",
                "targeting.sample_percent",
                "targeting.ends_at",
                "targeting.attributes[0].value",
                "targeting.attributes[1].value",
                "targeting.attributes[2].value",
                "throttling.max_displays",
            ]
        );
    }
}
