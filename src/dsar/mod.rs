//! Data subject requests: the access and portability bundle, requests with their
//! jurisdiction deadlines and status history. Erasure and restriction come next.

pub mod api;
pub mod bundle;
pub mod effects;
pub mod erasure;
pub mod rectification;
pub mod requests;
pub mod retention;
pub mod rules;
