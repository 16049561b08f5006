//! The data-subject-request endpoints: requests and their workflow, erasure, and the
//! access bundle.

pub mod access;
pub mod requests;
