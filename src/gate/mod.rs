//! The gate: may this customer's data be used for this purpose, now? One pure rule
//! function, shared by consent reads, decisions, profile reads and surveys.

pub mod rules;

pub use rules::{decide, Decision, DecisionRequest, Reason, SubjectFacts};
