//! What a survey is: its questions, targeting and throttling, and the checks that make a
//! definition usable (every reference resolves, every rule can be true).

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::schema::{ArrayBuilder, Object, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::ToSchema;

use crate::policy::key::is_valid_key;
use crate::policy::taxonomy::category_covers;
use crate::policy::{Basis, Policies};
use crate::validation::FieldError;

/// The purpose a survey needs when its definition names none.
pub const DEFAULT_PURPOSE: &str = "functional.service.improve.feedback_surveys";
/// The category NPS write-back is tagged with when the question names none.
pub const FEEDBACK_CATEGORY: &str = "user.behavior.feedback";
pub const MAX_QUESTIONS: usize = 50;
pub const MAX_TEXT_LENGTH: u32 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SurveyKind {
    Nps,
    Csat,
    Onboarding,
    Custom,
}

impl SurveyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nps => "nps",
            Self::Csat => "csat",
            Self::Onboarding => "onboarding",
            Self::Custom => "custom",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Nps, Self::Csat, Self::Onboarding, Self::Custom]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SurveyStatus {
    Draft,
    Active,
    Paused,
    Closed,
}

impl SurveyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Active => "active",
            Self::Paused => "paused",
            Self::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Draft, Self::Active, Self::Paused, Self::Closed]
            .into_iter()
            .find(|k| k.as_str() == s)
    }

    /// `draft → active ⇄ paused → closed`; a draft may be discarded by closing it, and
    /// closed is final.
    pub fn may_become(self, to: SurveyStatus) -> bool {
        use SurveyStatus::*;
        matches!(
            (self, to),
            (Draft, Active)
                | (Draft, Closed)
                | (Active, Paused)
                | (Paused, Active)
                | (Active, Closed)
                | (Paused, Closed)
        )
    }

    /// Whether answers are still taken: a paused survey is not offered any more, but
    /// those already shown it may finish.
    pub fn takes_answers(self) -> bool {
        matches!(self, Self::Active | Self::Paused)
    }
}

/// Text per language tag; `en` is required and is the fallback.
pub type Localized = BTreeMap<String, String>;
/// The longest question prompt and choice label, in characters.
const MAX_PROMPT_CHARS: usize = 1000;
const MAX_LABEL_CHARS: usize = 200;

/// The OpenAPI schema of localized text, as `check_localized` takes it.
fn localized_schema(max_chars: usize) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(format!(
            "Text by BCP 47 language tag, `en` required (the fallback); each 1–{max_chars} characters."
        )))
        .additional_properties(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(max_chars)),
        ))
        .required("en")
        .build()
}

fn prompt_schema() -> Object {
    localized_schema(MAX_PROMPT_CHARS)
}

fn label_schema() -> Object {
    localized_schema(MAX_LABEL_CHARS)
}

/// A score or an option id.
fn score_or_option() -> OneOfBuilder {
    OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::Integer))
        .item(ObjectBuilder::new().schema_type(Type::String))
}

/// The OpenAPI schema of an answer value in a report: a score, an option id or yes/no.
pub fn answer_value_schema() -> Schema {
    Schema::OneOf(
        score_or_option()
            .item(ObjectBuilder::new().schema_type(Type::Boolean))
            .description(Some("A score, an option id, or `true`/`false`."))
            .build(),
    )
}

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
pub enum QuestionType {
    /// 0–10.
    Nps,
    /// 1 to `scale` (5 or 7).
    Rating,
    SingleChoice,
    MultiChoice,
    /// Free text up to `max_length` characters.
    Text,
    Boolean,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChoiceOption {
    /// 1–64 characters: lower-case letters, digits and `_`; unique within the question.
    #[schema(
        example = "admin",
        min_length = 1,
        max_length = 64,
        pattern = "^[a-z0-9_]+$"
    )]
    pub id: String,
    #[schema(schema_with = label_schema)]
    pub label: Localized,
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

/// Copies the answer to a profile attribute, tagged with a data category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteBack {
    /// A profile attribute key: dotted lower-case words, at most 100 characters.
    #[schema(example = "onboarding.role", min_length = 1, max_length = 100)]
    pub attribute: String,
    /// A data category of the policies' taxonomy, declared by the survey's purpose.
    #[schema(example = "user.demographic.profile")]
    pub category: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Question {
    /// 1–64 characters: lower-case letters, digits and `_`; unique within the survey.
    #[schema(
        example = "score",
        min_length = 1,
        max_length = 64,
        pattern = "^[a-z0-9_]+$"
    )]
    pub id: String,
    #[serde(rename = "type")]
    pub kind: QuestionType,
    #[serde(default)]
    pub required: bool,
    #[schema(schema_with = prompt_schema)]
    pub prompt: Localized,
    /// Rating questions: 5 or 7.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 5, maximum = 7)]
    pub scale: Option<u8>,
    /// Choice questions: 2–50 options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_items = 2, max_items = 50)]
    pub options: Option<Vec<ChoiceOption>>,
    /// Text questions: 1–10000 characters (default 2000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 10000)]
    pub max_length: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub show_if: Option<ShowIf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_back: Option<WriteBack>,
}

impl Question {
    /// The integer range of a scored question.
    pub fn range(&self) -> Option<(i64, i64)> {
        match self.kind {
            QuestionType::Nps => Some((0, 10)),
            QuestionType::Rating => Some((1, i64::from(self.scale.unwrap_or(5)))),
            _ => None,
        }
    }

    pub fn has_option(&self, id: &str) -> bool {
        self.options
            .as_ref()
            .is_some_and(|o| o.iter().any(|o| o.id == id))
    }

    pub fn text_limit(&self) -> u32 {
        self.max_length.unwrap_or(2000)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FilterOp {
    Eq,
    Neq,
    In,
    Gt,
    Lt,
    /// `value` true (default) or false: the attribute is present, or absent.
    Exists,
}

/// A condition on one of the subject's profile attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttributeFilter {
    /// A profile attribute key: dotted lower-case words, at most 100 characters.
    #[schema(example = "plan", min_length = 1, max_length = 100)]
    pub key: String,
    pub op: FilterOp,
    /// Any JSON value for `eq` and `neq`, a list for `in`, a number for `gt` and `lt`,
    /// `true` or `false` for `exists`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Value>)]
    pub value: Option<Value>,
}

fn hundred() -> f64 {
    100.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Targeting {
    /// Events that trigger the survey (at most 20); none: it may be shown on any call.
    #[serde(default)]
    #[schema(max_items = 20)]
    pub trigger_events: Vec<String>,
    /// 0–100; sticky per subject (raising it only adds people).
    #[serde(default = "hundred")]
    #[schema(minimum = 0, maximum = 100)]
    pub sample_percent: f64,
    /// Offered only this long after the triggering event (at most 366 days).
    #[serde(default)]
    #[schema(maximum = 31622400)]
    pub delay_seconds: u32,
    /// Every filter must hold.
    #[serde(default)]
    pub attributes: Vec<AttributeFilter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<DateTime<Utc>>,
}

impl Default for Targeting {
    fn default() -> Self {
        Self {
            trigger_events: Vec::new(),
            sample_percent: 100.0,
            delay_seconds: 0,
            attributes: Vec::new(),
            starts_at: None,
            ends_at: None,
        }
    }
}

fn fourteen() -> u32 {
    14
}
fn three() -> u32 {
    3
}
fn two() -> u32 {
    2
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Throttling {
    /// Not offered within this many days of the subject's last display of any survey.
    #[serde(default = "fourteen")]
    #[schema(maximum = 365)]
    pub recontact_days: u32,
    /// Displays of this survey per subject.
    #[serde(default = "three")]
    #[schema(minimum = 1, maximum = 100)]
    pub max_displays: u32,
    /// Never offered again after this many dismissals.
    #[serde(default = "two")]
    #[schema(minimum = 1, maximum = 100)]
    pub max_dismissals: u32,
}

impl Default for Throttling {
    fn default() -> Self {
        Self {
            recontact_days: 14,
            max_displays: 3,
            max_dismissals: 2,
        }
    }
}

/// The versioned part of a survey, stored as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    #[schema(min_items = 1, max_items = 50)]
    pub questions: Vec<Question>,
    #[serde(default)]
    pub targeting: Targeting,
    #[serde(default)]
    pub throttling: Throttling,
}

impl Definition {
    pub fn question(&self, id: &str) -> Option<&Question> {
        self.questions.iter().find(|q| q.id == id)
    }

    /// The data categories the survey writes to the profile (its NPS fields included).
    pub fn written_categories(&self) -> Vec<String> {
        let mut categories: Vec<String> = self
            .questions
            .iter()
            .filter_map(|q| q.write_back.as_ref().map(|w| w.category.clone()))
            .collect();
        if self.nps_question().is_some_and(|q| q.write_back.is_none()) {
            categories.push(FEEDBACK_CATEGORY.to_owned());
        }
        categories.sort();
        categories.dedup();
        categories
    }

    /// The question NPS is computed from: the first of type `nps`.
    pub fn nps_question(&self) -> Option<&Question> {
        self.questions.iter().find(|q| q.kind == QuestionType::Nps)
    }
}

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

/// A show-if condition must be well-formed for the earlier question's type and able to
/// be both true and false (otherwise it is a mistake, not a rule).
fn check_condition(earlier: &Question, show_if: &ShowIf) -> Result<(), String> {
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

/// The text for a locale: the exact tag, its language, then English.
pub fn localize<'a>(text: &'a Localized, locale: &str) -> &'a str {
    let language = crate::policy::locale::language_of(locale);
    text.get(locale)
        .or_else(|| text.get(language))
        .or_else(|| text.get("en"))
        .or_else(|| text.values().next())
        .map(String::as_str)
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::Path;

    fn policies() -> Policies {
        crate::policy::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")).unwrap()
    }

    fn nps_definition() -> Definition {
        serde_json::from_value(json!({
            "questions": [
                {"id": "score", "type": "nps", "required": true,
                 "prompt": {"en": "How likely?", "ar": "ما مدى احتمال"},
                 "write_back": {"attribute": "nps.score", "category": "user.behavior.feedback"}},
                {"id": "why_low", "type": "text", "max_length": 2000, "prompt": {"en": "What went wrong?"},
                 "show_if": {"question": "score", "op": "lte", "value": 6}},
                {"id": "role", "type": "single_choice", "prompt": {"en": "Role"},
                 "options": [{"id": "admin", "label": {"en": "Admin"}}, {"id": "dev", "label": {"en": "Developer"}}]}
            ],
            "targeting": {"trigger_events": ["onboarding.completed"],
                          "attributes": [{"key": "plan", "op": "eq", "value": "pro"}]}
        }))
        .unwrap()
    }

    fn fields(errors: Vec<FieldError>) -> Vec<String> {
        errors.into_iter().map(|e| e.field).collect()
    }

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

    #[test]
    fn status_machine() {
        use SurveyStatus::*;
        assert!(Draft.may_become(Active));
        assert!(Active.may_become(Paused) && Paused.may_become(Active));
        assert!(Paused.may_become(Closed) && Active.may_become(Closed));
        assert!(!Closed.may_become(Active) && !Closed.may_become(Draft));
        assert!(!Active.may_become(Draft) && !Paused.may_become(Draft));
        assert!(!Draft.may_become(Paused));
        assert!(Paused.takes_answers() && !Closed.takes_answers() && !Draft.takes_answers());
    }

    #[test]
    fn localization_falls_back_to_english() {
        let text: Localized = [("en".into(), "Hi".into()), ("ar".into(), "مرحبا".into())].into();
        assert_eq!(localize(&text, "ar-SA"), "مرحبا");
        assert_eq!(localize(&text, "ar"), "مرحبا");
        assert_eq!(localize(&text, "fr"), "Hi");
    }
}
