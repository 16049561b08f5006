//! The survey endpoints: definitions, customer events, the next survey to show, answers
//! and follow-ups, reports and exports.

pub mod definitions;
pub mod events;
pub mod offers;
pub mod reports;
pub mod responses;

use serde_json::{Map, Value};

use super::SurveyError;
use crate::http::ApiError;

/// Survey errors as problems: the one place they meet HTTP.
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
