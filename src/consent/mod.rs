//! Subjects (the customers whose data this is), the consent ledger and current state,
//! channel preferences, messages sent (for reach's caps), privacy signals and profile
//! attributes.

pub mod api;
pub mod contacts;
pub mod evidence;
pub mod identifiers;
pub mod ledger;
pub mod preferences;
pub mod rates;
pub mod receipt;
pub mod signals;
mod snapshot;
pub mod subject;
pub mod write;

pub use snapshot::{footprint, SubjectSnapshot};
pub use subject::{Subject, SubjectId};
