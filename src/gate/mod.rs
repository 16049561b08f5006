//! The gate: may this customer's data be used for this purpose, now? One pure rule
//! function, shared by consent reads, decisions, profile reads and surveys; a cache that
//! a write invalidates at once (and, on PostgreSQL, on every instance); signed decisions.

pub mod api;
pub mod cache;
pub mod decision_log;
pub mod fence;
mod loads;
pub mod notify;
pub mod reach;
pub mod rules;
pub mod service;

pub use cache::CacheLimit;
pub use rules::{decide, Decision, DecisionRequest, Reason, SubjectFacts};
pub use service::Gate;
