//! Subjects (the customers whose data this is), the consent ledger and current state,
//! channel preferences, privacy signals and profile attributes.

pub mod consent_api;
pub mod evidence;
pub mod handlers;
pub mod ledger;
pub mod preferences;
pub mod preferences_api;
pub mod receipt;
pub mod signals;
mod snapshot;
pub mod subject;
pub mod write;

pub use snapshot::SubjectSnapshot;
pub use subject::{Subject, SubjectId};
