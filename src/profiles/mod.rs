//! Profile attributes, each tagged with a data category so that the gate governs their
//! use: a purpose sees only the attributes whose categories it declares.

pub mod api;
pub mod attributes;
pub mod changes;
