//! Show-if rules: a question shown only when an earlier answer meets a condition, and the
//! check that such a condition is well-formed and can be both true and false.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::ToSchema;

use super::{score_or_option, Question, QuestionType};

/// The OpenAPI schema of a condition's value: an answer value, or for `in` a list of
/// scores or option ids.
fn condition_value_schema() -> Schema {
    Schema::OneOf(
        score_or_option()
            .item(ObjectBuilder::new().schema_type(Type::Boolean))
            .item(ArrayBuilder::new().items(score_or_option()))
            .description(Some(
                "What the answer is compared with: a score, an option id, or `true`/`false`; for `in`, a list of scores or option ids; none for `answered`.",
            ))
            .build(),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShowIfOp {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    In,
    /// The earlier question has an answer (`value` omitted).
    Answered,
}

/// Shows a question only when an earlier answer meets a condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShowIf {
    /// An earlier question's id.
    #[schema(min_length = 1, max_length = 64)]
    pub question: String,
    pub op: ShowIfOp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = condition_value_schema)]
    pub value: Option<Value>,
}

/// A show-if condition must be well-formed for the earlier question's type and able to
/// be both true and false (otherwise it is a mistake, not a rule).
pub(super) fn check_condition(earlier: &Question, show_if: &ShowIf) -> Result<(), String> {
    use ShowIfOp::*;
    let value = show_if.value.as_ref();
    if show_if.op == Answered {
        return match value {
            None => Ok(()),
            Some(_) => Err("`answered` takes no value".into()),
        };
    }
    let value = value.ok_or("this operator needs a `value`")?;
    if let Some((min, max)) = earlier.range() {
        let number = |v: &Value| {
            v.as_i64()
                .ok_or(format!("values are whole numbers from {min} to {max}"))
        };
        let satisfiable = match show_if.op {
            Eq | Neq => {
                let v = number(value)?;
                (min..=max).contains(&v)
            }
            Lt => number(value)? > min && number(value)? <= max,
            Lte => number(value)? >= min && number(value)? < max,
            Gt => number(value)? < max && number(value)? >= min,
            Gte => number(value)? > min && number(value)? <= max,
            In => {
                let items = value.as_array().ok_or("`in` takes a list")?;
                let mut all = Vec::new();
                for item in items {
                    all.push(number(item)?);
                }
                !all.is_empty() && all.iter().all(|v| (min..=max).contains(v))
            }
            Answered => true,
        };
        return if satisfiable {
            Ok(())
        } else {
            Err(format!(
                "this condition is always true or never true for answers from {min} to {max}"
            ))
        };
    }
    match earlier.kind {
        QuestionType::SingleChoice | QuestionType::MultiChoice => {
            let option = |v: &Value| match v.as_str() {
                Some(id) if earlier.has_option(id) => Ok(()),
                _ => Err(format!("`{v}` is not an option of `{}`", earlier.id)),
            };
            match show_if.op {
                Eq | Neq => option(value),
                In => {
                    let items = value.as_array().ok_or("`in` takes a list of options")?;
                    if items.is_empty() {
                        return Err("`in` takes at least one option".into());
                    }
                    items.iter().try_for_each(option)
                }
                _ => Err("choice questions compare with eq, neq, in or answered".into()),
            }
        }
        QuestionType::Boolean => match (show_if.op, value.is_boolean()) {
            (Eq | Neq, true) => Ok(()),
            _ => Err("yes/no questions compare with eq or neq and true or false".into()),
        },
        _ => Err("text answers can only be tested with `answered`".into()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::fixtures::{fields, nps_definition, policies};
    use super::super::{check, SurveyKind, DEFAULT_PURPOSE};
    use super::*;

    #[test]
    fn show_if_may_only_look_back() {
        let mut d = nps_definition();
        d.questions[0].show_if = Some(ShowIf {
            question: "why_low".into(),
            op: ShowIfOp::Answered,
            value: None,
        });
        assert_eq!(
            fields(check(&policies(), SurveyKind::Nps, DEFAULT_PURPOSE, &d)),
            ["questions[0].show_if.question"]
        );
    }

    #[test]
    fn impossible_rules_are_refused() {
        let cases = [
            json!({"question": "score", "op": "gt", "value": 10}),
            json!({"question": "score", "op": "lt", "value": 0}),
            json!({"question": "score", "op": "lte", "value": 10}),
            json!({"question": "score", "op": "eq", "value": 11}),
            json!({"question": "score", "op": "eq", "value": "high"}),
            json!({"question": "score", "op": "in", "value": []}),
            json!({"question": "role", "op": "eq", "value": "ceo"}),
            json!({"question": "role", "op": "gt", "value": 1}),
            json!({"question": "score", "op": "answered", "value": 1}),
        ];
        for case in cases {
            let mut d = nps_definition();
            d.questions[2].show_if = None;
            d.questions.push(Question {
                id: "extra".into(),
                kind: QuestionType::Boolean,
                required: false,
                prompt: [("en".to_string(), "?".to_string())].into(),
                scale: None,
                options: None,
                max_length: None,
                show_if: Some(serde_json::from_value(case.clone()).unwrap()),
                write_back: None,
            });
            assert_eq!(
                fields(check(&policies(), SurveyKind::Nps, DEFAULT_PURPOSE, &d)),
                ["questions[3].show_if"],
                "{case}"
            );
        }
    }
}
