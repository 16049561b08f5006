//! What a survey is: its questions, targeting and throttling, and the checks that make a
//! definition usable (every reference resolves, every rule can be true).

mod checks;
#[cfg(test)]
mod fixtures;
mod show_if;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::schema::{Object, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::ToSchema;

pub use self::checks::{check, is_event_name};
pub use self::show_if::{ShowIf, ShowIfOp};

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
    #[schema(
        example = "plan",
        min_length = 1,
        max_length = 100,
        pattern = "^[a-z0-9_]+(\\.[a-z0-9_]+)*$"
    )]
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
    /// Only customers in one of these journey stages (`policies/journeys.toml`; at most
    /// 20); none: any stage, or none. With `journey.stage_changed` as a trigger event, a
    /// survey fires on entering a stage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 20)]
    pub stages: Vec<String>,
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
            stages: Vec::new(),
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
    /// A profile attribute whose value is recorded with each answer, as it is when the
    /// answer is given. A report broken down by it (`by`) counts the answers under the
    /// values they were given with, and fast; by another attribute it uses each
    /// customer's current value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "plan", max_length = 100)]
    pub breakdown: Option<String>,
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
