//! The consent room's endpoints: subjects, consents (state, writes, the ledger,
//! receipts, signals) and preferences.

pub mod consents;
pub mod history;
pub mod preferences;
pub mod receipts;
pub mod signals;
pub mod subjects;
