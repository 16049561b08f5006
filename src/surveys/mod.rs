//! Surveys: definitions with versions and a status machine, customer events, the
//! eligibility call that records displays, responses with write-back to the profile,
//! follow-ups for detractors, and reports computed in SQL.

pub mod answers;
pub mod api;
pub mod catalog;
pub mod definition;
pub mod eligibility;
pub mod events;
pub mod followups;
pub mod metrics;
pub mod offer;
pub mod report;
pub mod respond;
pub mod score;
pub mod store;
pub mod templates;

use serde_json::{Map, Value};

use crate::auth::Role;

use crate::storage::StorageError;
use crate::validation::FieldError;

/// Who may read survey definitions and reports.
pub const READERS: [Role; 2] = [Role::Admin, Role::Compliance];

#[derive(Debug, thiserror::Error)]
pub enum SurveyError {
    #[error("not found: {0}")]
    NotFound(&'static str),
    #[error("invalid")]
    Invalid(Vec<FieldError>),
    #[error("conflict: {detail}")]
    Conflict {
        detail: String,
        extensions: Map<String, Value>,
    },
    /// The subject has not allowed the survey's purpose.
    #[error("purpose not allowed")]
    PurposeNotAllowed { purpose: String, reason: Value },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl SurveyError {
    pub fn conflict(detail: impl Into<String>, extensions: &[(&str, Value)]) -> Self {
        Self::Conflict {
            detail: detail.into(),
            extensions: extensions
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        }
    }

    pub fn invalid(field: &str, code: &str, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(field, code, message)])
    }
}
