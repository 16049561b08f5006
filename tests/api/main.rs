//! The HTTP API, driven through the real server against a real database.

mod access;
mod audit;
mod auth;
mod cli;
mod consents;
mod console;
mod decisions;
mod dsar;
mod erasure;
mod errors;
mod health;
mod helpers;
mod instances;
mod openapi;
mod pages;
mod portal;
mod preferences;
mod profiles;
mod proxy;
mod purposes;
mod retention;
mod signals;
mod snapshot;
mod subjects;
mod surveys;
mod tls;
