//! Data subject requests: requests with their jurisdiction deadlines, status workflow and
//! history; what filing and completing them does (restriction, objection, rectification,
//! erasure); the access and portability bundle; retention.

pub mod api;
pub mod bundle;
pub mod effects;
pub mod erasure;
pub mod filing;
pub mod merge;
pub mod rectification;
pub mod requests;
pub mod retention;
pub mod rules;
pub mod workflow;
