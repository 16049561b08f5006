//! Subjects (the customers whose data this is), the consent ledger and current state,
//! channel preferences, privacy signals and profile attributes.

pub mod handlers;
pub mod ledger;
pub mod preferences;
pub mod subject;

pub use subject::{Subject, SubjectId};
