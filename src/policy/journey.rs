//! Journeys (`journeys.toml`): the stages a customer moves through and the rules that
//! move them, as data; `journeys::rules` applies them.

use chrono::TimeDelta;

/// What moves a customer from one stage to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// `count` events named `event` within the last `within` (or ever).
    Events {
        event: String,
        count: u32,
        within: Option<TimeDelta>,
    },
    /// No event at all for `days`.
    Inactive { days: TimeDelta },
    /// An NPS answer of this class.
    Nps(NpsClass),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NpsClass {
    Detractor,
    Passive,
    Promoter,
}

impl NpsClass {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "detractor" => Some(Self::Detractor),
            "passive" => Some(Self::Passive),
            "promoter" => Some(Self::Promoter),
            _ => None,
        }
    }

    /// The class of a 0–10 score.
    pub fn of(score: i64) -> Self {
        match score {
            9.. => Self::Promoter,
            7..=8 => Self::Passive,
            _ => Self::Detractor,
        }
    }
}

/// One rule: from any of `from`, on `trigger`, to `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JourneyRule {
    pub from: Vec<String>,
    pub to: String,
    pub trigger: Trigger,
}

/// The stages and rules. Empty (no stages) when the file is absent: journeys are off.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Journeys {
    pub stages: Vec<String>,
    /// Where a customer starts, on their first event.
    pub initial: String,
    /// Stages that mean the customer may be slipping away (`journey.at_risk`).
    pub at_risk: Vec<String>,
    /// The purpose under which stages may be derived and kept.
    pub purpose: String,
    /// Rules in the file's order: the first that applies moves the customer.
    pub rules: Vec<JourneyRule>,
}

impl Journeys {
    pub fn enabled(&self) -> bool {
        !self.stages.is_empty()
    }

    pub fn is_stage(&self, name: &str) -> bool {
        self.stages.iter().any(|s| s == name)
    }
}
