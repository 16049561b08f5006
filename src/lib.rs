//! Consentry: consents and data-use preferences, the gate other services ask before
//! they personalize, surveys, and the audit log that proves it all.

pub mod audit;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod consent;
pub mod crypto;
pub mod csv_cell;
pub mod delivery;
pub mod demo;
pub mod dsar;
pub mod files;
/// The fuzz targets' bodies, shared with the corpus replay test; not an API.
#[doc(hidden)]
pub mod fuzzing;
pub mod gate;
pub mod http;
pub mod identifier;
pub mod journeys;
pub mod outbox;
pub mod policy;
pub mod portal;
pub mod profiles;
pub mod server;
pub mod storage;
pub mod surveys;
pub mod telemetry;
pub mod validation;
