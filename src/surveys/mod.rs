//! Surveys: definitions with versions and a status machine, customer events, the
//! eligibility call that records displays, responses with write-back to the profile,
//! follow-ups for detractors, and reports computed in SQL.

pub mod answers;
pub mod api;
pub mod catalog;
pub mod definition;
pub mod eligibility;
pub mod events;
pub mod metrics;
pub mod report;
pub mod respond;
pub mod score;
pub mod store;
pub mod templates;

use serde_json::{Map, Value};

use crate::http::{ApiError, FieldError};
use crate::storage::StorageError;

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

impl From<SurveyError> for ApiError {
    fn from(err: SurveyError) -> Self {
        match err {
            SurveyError::NotFound(what) => ApiError::NotFound(format!("There is no such {what}.")),
            SurveyError::Invalid(errors) => ApiError::Validation(errors),
            SurveyError::Conflict { detail, extensions } => {
                ApiError::Conflict { detail, extensions }
            }
            SurveyError::PurposeNotAllowed { purpose, reason } => {
                let mut extensions = Map::new();
                extensions.insert("purpose".into(), Value::from(purpose.clone()));
                extensions.insert("reason".into(), reason);
                ApiError::Denied {
                    detail: format!(
                        "The subject has not allowed `{purpose}`, which this survey needs."
                    ),
                    extensions,
                }
            }
            SurveyError::Storage(e) => e.into(),
        }
    }
}
