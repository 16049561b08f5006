//! The consent room's endpoints: subjects, consents (state, writes, the ledger,
//! receipts, signals), preferences and identifiers.

pub mod consents;
pub mod history;
pub mod identifiers;
pub mod preferences;
pub mod receipts;
pub mod signals;
pub mod subjects;
