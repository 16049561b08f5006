//! The survey endpoints: definitions, customer events, the next survey to show, answers
//! and follow-ups, reports and exports.

pub mod definitions;
pub mod events;
pub mod offers;
pub mod reports;
pub mod responses;
