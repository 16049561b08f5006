//! The data-subject-request endpoints: requests and their workflow, erasure, merging,
//! and the access bundle.

pub mod access;
pub mod merge;
pub mod requests;
