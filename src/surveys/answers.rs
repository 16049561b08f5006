//! Answers: each value checked by its question's type, show-if applied to the answers so
//! far, required questions enforced at the end, and the NPS category of a score.

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::definition::{Question, QuestionType, ShowIf, ShowIfOp};
use crate::validation::FieldError;

pub type Answers = Map<String, Value>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NpsCategory {
    Promoter,
    Passive,
    Detractor,
}

impl NpsCategory {
    /// 9–10 promoters, 7–8 passives, 0–6 detractors.
    pub fn of(score: i64) -> Self {
        match score {
            9.. => Self::Promoter,
            7..=8 => Self::Passive,
            _ => Self::Detractor,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Promoter => "promoter",
            Self::Passive => "passive",
            Self::Detractor => "detractor",
        }
    }
}

/// Checks one value against its question; the message says what is expected.
pub fn check_value(question: &Question, value: &Value) -> Result<(), String> {
    match question.kind {
        QuestionType::Nps | QuestionType::Rating => {
            let (min, max) = question.range().unwrap_or((0, 10));
            match value.as_i64() {
                Some(v) if (min..=max).contains(&v) => Ok(()),
                _ => Err(format!("a whole number from {min} to {max}")),
            }
        }
        QuestionType::SingleChoice => match value.as_str() {
            Some(id) if question.has_option(id) => Ok(()),
            _ => Err(format!("one of the options: {}", option_list(question))),
        },
        QuestionType::MultiChoice => {
            let expected = || format!("a list of distinct options from: {}", option_list(question));
            let items = value
                .as_array()
                .filter(|a| !a.is_empty())
                .ok_or_else(expected)?;
            let mut seen = std::collections::HashSet::new();
            for item in items {
                match item.as_str() {
                    Some(id) if question.has_option(id) && seen.insert(id) => {}
                    _ => return Err(expected()),
                }
            }
            Ok(())
        }
        QuestionType::Text => {
            let limit = question.text_limit() as usize;
            match value.as_str() {
                Some(text)
                    if !text.trim().is_empty()
                        && text.chars().count() <= limit
                        && !text
                            .chars()
                            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) =>
                {
                    Ok(())
                }
                _ => Err(format!(
                    "text of 1 to {limit} characters, without control characters"
                )),
            }
        }
        QuestionType::Boolean => {
            if value.is_boolean() {
                Ok(())
            } else {
                Err("true or false".into())
            }
        }
    }
}

fn option_list(question: &Question) -> String {
    question
        .options
        .iter()
        .flatten()
        .map(|o| o.id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a show-if condition holds for the answers so far. An unanswered question
/// meets no condition.
pub fn condition_holds(condition: &ShowIf, answers: &Answers) -> bool {
    let Some(answer) = answers.get(&condition.question) else {
        return false;
    };
    let value = condition.value.as_ref().unwrap_or(&Value::Null);
    let number = |v: &Value| v.as_f64();
    // A multiple-choice answer "equals" an option when it includes it.
    let equals = |expected: &Value| match answer.as_array() {
        Some(chosen) => chosen.contains(expected),
        None => answer == expected,
    };
    let compare = |holds: fn(f64, f64) -> bool| match (number(answer), number(value)) {
        (Some(a), Some(b)) => holds(a, b),
        _ => false,
    };
    match condition.op {
        ShowIfOp::Answered => true,
        ShowIfOp::Eq => equals(value),
        ShowIfOp::Neq => !equals(value),
        ShowIfOp::Lt => compare(|a, b| a < b),
        ShowIfOp::Lte => compare(|a, b| a <= b),
        ShowIfOp::Gt => compare(|a, b| a > b),
        ShowIfOp::Gte => compare(|a, b| a >= b),
        ShowIfOp::In => value
            .as_array()
            .is_some_and(|items| items.iter().any(equals)),
    }
}

/// The questions shown for these answers, in order.
pub fn visible<'q>(questions: &'q [Question], answers: &Answers) -> Vec<&'q Question> {
    questions
        .iter()
        .filter(|q| {
            q.show_if
                .as_ref()
                .is_none_or(|c| condition_holds(c, answers))
        })
        .collect()
}

/// The outcome of merging a submission into a response.
#[derive(Debug, PartialEq)]
pub struct Merged {
    /// Every answer the response now holds.
    pub answers: Answers,
    /// The questions whose answers this submission set or changed.
    pub changed: Vec<String>,
    /// Earlier answers dropped because a changed answer now hides their question.
    pub dropped: Vec<String>,
}

impl Merged {
    /// The questions whose stored answers this submission touched: set, changed or dropped.
    pub fn touched(&self) -> Vec<String> {
        self.changed.iter().chain(&self.dropped).cloned().collect()
    }
}

/// Merges new answers into the earlier ones. Every value is checked by type; an answer
/// to a question hidden by show-if is refused, an earlier one that a change now hides is
/// dropped; when `finished`, every visible required question must be answered.
pub fn merge(
    questions: &[Question],
    earlier: &Answers,
    submitted: &Answers,
    finished: bool,
) -> Result<Merged, Vec<FieldError>> {
    let mut errors = Vec::new();
    for (id, value) in submitted {
        let field = format!("answers.{id}");
        match questions.iter().find(|q| &q.id == id) {
            None => errors.push(FieldError::new(
                field,
                "unknown_question",
                format!("`{id}` is not a question of this survey"),
            )),
            Some(question) => {
                if let Err(message) = check_value(question, value) {
                    errors.push(FieldError::new(field, "invalid", message));
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut answers = earlier.clone();
    for (id, value) in submitted {
        answers.insert(id.clone(), value.clone());
    }
    // Show-if only looks back, so one pass in question order settles visibility.
    let mut dropped = Vec::new();
    for question in questions {
        let shown = question
            .show_if
            .as_ref()
            .is_none_or(|c| condition_holds(c, &answers));
        if shown || !answers.contains_key(&question.id) {
            continue;
        }
        if submitted.contains_key(&question.id) {
            errors.push(FieldError::new(
                format!("answers.{}", question.id),
                "hidden",
                format!(
                    "`{}` is not asked given the answer to `{}`",
                    question.id,
                    question
                        .show_if
                        .as_ref()
                        .map(|c| c.question.as_str())
                        .unwrap_or("")
                ),
            ));
        } else {
            answers.remove(&question.id);
            dropped.push(question.id.clone());
        }
    }
    if finished {
        for question in visible(questions, &answers) {
            if question.required && !answers.contains_key(&question.id) {
                errors.push(FieldError::new(
                    format!("answers.{}", question.id),
                    "required",
                    "this question must be answered to finish",
                ));
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let changed = submitted
        .iter()
        .filter(|(id, value)| earlier.get(*id) != Some(*value))
        .map(|(id, _)| id.clone())
        .collect();
    Ok(Merged {
        answers,
        changed,
        dropped,
    })
}

/// How an answer is stored for reports: a number, an option's id (one row per chosen
/// option), or free text (kept out of the report indexes).
#[derive(Debug, Clone, PartialEq)]
pub enum StoredValue {
    Number(i64),
    Choice(String),
    Free(String),
}

pub fn stored_values(question: &Question, value: &Value) -> Vec<StoredValue> {
    match question.kind {
        QuestionType::Nps | QuestionType::Rating => value
            .as_i64()
            .map(StoredValue::Number)
            .into_iter()
            .collect(),
        QuestionType::Boolean => value
            .as_bool()
            .map(|b| StoredValue::Number(i64::from(b)))
            .into_iter()
            .collect(),
        QuestionType::SingleChoice => value
            .as_str()
            .map(|s| StoredValue::Choice(s.to_owned()))
            .into_iter()
            .collect(),
        QuestionType::Text => value
            .as_str()
            .map(|s| StoredValue::Free(s.to_owned()))
            .into_iter()
            .collect(),
        QuestionType::MultiChoice => value
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(|s| StoredValue::Choice(s.to_owned())))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::surveys::definition::Definition;
    use serde_json::json;

    fn questions() -> Vec<Question> {
        let d: Definition = serde_json::from_value(json!({"questions": [
            {"id": "score", "type": "nps", "required": true, "prompt": {"en": "?"}},
            {"id": "why_low", "type": "text", "max_length": 10, "required": true, "prompt": {"en": "?"},
             "show_if": {"question": "score", "op": "lte", "value": 6}},
            {"id": "best", "type": "multi_choice", "prompt": {"en": "?"},
             "options": [{"id": "speed", "label": {"en": "Speed"}}, {"id": "price", "label": {"en": "Price"}}],
             "show_if": {"question": "score", "op": "gte", "value": 9}},
            {"id": "stars", "type": "rating", "scale": 5, "prompt": {"en": "?"}},
            {"id": "role", "type": "single_choice", "prompt": {"en": "?"},
             "options": [{"id": "admin", "label": {"en": "A"}}, {"id": "dev", "label": {"en": "D"}}]},
            {"id": "ok", "type": "boolean", "prompt": {"en": "?"}}
        ]}))
        .unwrap();
        d.questions
    }

    fn answers(v: Value) -> Answers {
        v.as_object().unwrap().clone()
    }

    fn codes(r: Result<Merged, Vec<FieldError>>) -> Vec<(String, String)> {
        r.unwrap_err()
            .into_iter()
            .map(|e| (e.field, e.code))
            .collect()
    }

    #[test]
    fn categories() {
        assert_eq!(NpsCategory::of(10), NpsCategory::Promoter);
        assert_eq!(NpsCategory::of(9), NpsCategory::Promoter);
        assert_eq!(NpsCategory::of(8), NpsCategory::Passive);
        assert_eq!(NpsCategory::of(7), NpsCategory::Passive);
        assert_eq!(NpsCategory::of(6), NpsCategory::Detractor);
        assert_eq!(NpsCategory::of(0), NpsCategory::Detractor);
    }

    #[test]
    fn each_type_checks_its_values() {
        let q = questions();
        let bad = answers(json!({
            "score": 11, "stars": 0, "role": "ceo", "ok": "yes", "best": ["speed", "speed"]
        }));
        assert_eq!(
            codes(merge(&q, &Answers::new(), &bad, false)),
            [
                ("answers.best".into(), "invalid".into()),
                ("answers.ok".into(), "invalid".into()),
                ("answers.role".into(), "invalid".into()),
                ("answers.score".into(), "invalid".into()),
                ("answers.stars".into(), "invalid".into()),
            ]
        );
        let q = &questions()[1];
        assert!(check_value(q, &json!("0123456789")).is_ok());
        assert!(check_value(q, &json!("01234567890")).is_err());
        assert!(check_value(q, &json!("   ")).is_err());
        assert!(check_value(q, &json!("a\u{0}b")).is_err());
        assert!(check_value(q, &json!("two\nlines")).is_ok());
        assert!(check_value(&questions()[0], &json!(7.5)).is_err());
    }

    #[test]
    fn unknown_questions_are_named() {
        assert_eq!(
            codes(merge(
                &questions(),
                &Answers::new(),
                &answers(json!({"nope": 1})),
                false
            )),
            [("answers.nope".into(), "unknown_question".into())]
        );
    }

    #[test]
    fn show_if_hides_the_other_follow_up() {
        let q = questions();
        // A promoter is not asked what went wrong.
        assert_eq!(
            codes(merge(
                &q,
                &Answers::new(),
                &answers(json!({"score": 10, "why_low": "x"})),
                false
            )),
            [("answers.why_low".into(), "hidden".into())]
        );
        // A detractor is, and must answer to finish; the promoter follow-up stays hidden.
        let detractor = answers(json!({"score": 3}));
        assert_eq!(
            codes(merge(&q, &Answers::new(), &detractor, true)),
            [("answers.why_low".into(), "required".into())]
        );
        let shown: Vec<_> = visible(&q, &detractor)
            .iter()
            .map(|q| q.id.clone())
            .collect();
        assert_eq!(shown, ["score", "why_low", "stars", "role", "ok"]);
        let done = merge(&q, &detractor, &answers(json!({"why_low": "slow"})), true).unwrap();
        assert_eq!(
            done.answers,
            answers(json!({"score": 3, "why_low": "slow"}))
        );
        assert_eq!(done.changed, ["why_low"]);
    }

    #[test]
    fn a_changed_answer_drops_follow_ups_it_hides() {
        let q = questions();
        let earlier = answers(json!({"score": 3, "why_low": "slow"}));
        let merged = merge(&q, &earlier, &answers(json!({"score": 9})), false).unwrap();
        assert_eq!(merged.answers, answers(json!({"score": 9})));
        assert_eq!(merged.dropped, ["why_low"]);
        assert_eq!(merged.changed, ["score"]);
    }

    #[test]
    fn multi_choice_eq_means_includes() {
        let condition: ShowIf =
            serde_json::from_value(json!({"question": "best", "op": "eq", "value": "price"}))
                .unwrap();
        assert!(condition_holds(
            &condition,
            &answers(json!({"best": ["speed", "price"]}))
        ));
        assert!(!condition_holds(
            &condition,
            &answers(json!({"best": ["speed"]}))
        ));
        assert!(!condition_holds(&condition, &Answers::new()));
        let within: ShowIf =
            serde_json::from_value(json!({"question": "role", "op": "in", "value": ["admin"]}))
                .unwrap();
        assert!(condition_holds(&within, &answers(json!({"role": "admin"}))));
    }

    #[test]
    fn stored_values_per_type() {
        let q = questions();
        assert_eq!(stored_values(&q[0], &json!(7)), [StoredValue::Number(7)]);
        assert_eq!(
            stored_values(&q[2], &json!(["speed", "price"])),
            [
                StoredValue::Choice("speed".into()),
                StoredValue::Choice("price".into())
            ]
        );
        assert_eq!(stored_values(&q[5], &json!(true)), [StoredValue::Number(1)]);
        assert_eq!(
            stored_values(&q[1], &json!("slow")),
            [StoredValue::Free("slow".into())]
        );
    }
}
