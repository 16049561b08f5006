//! Subjects (the customers whose data this is) and, with the consents issue, their
//! consent ledger, current state, channel preferences and privacy signals.

pub mod handlers;
pub mod subject;

pub use subject::{Subject, SubjectId};
