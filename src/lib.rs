//! Consentry: consents and data-use preferences, the gate other services ask before
//! they personalize, surveys, and the audit log that proves it all.

pub mod policy;
pub mod storage;
