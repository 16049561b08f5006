//! The HTTP layer: app factory, error mapping, extractors, OpenAPI, health and metrics.

mod app;
pub mod extract;
pub mod head;
pub mod health;
pub mod observe;
pub mod openapi;
pub mod problem;
pub mod responses;

pub use app::{openapi_document, AppState, Application};
pub use extract::ValidJson;
pub use problem::{ApiError, FieldError, Problem};

impl From<crate::auth::AuthError> for ApiError {
    fn from(err: crate::auth::AuthError) -> Self {
        use crate::auth::AuthError;
        match err {
            AuthError::Invalid(reason) => ApiError::Unauthorized(reason),
            AuthError::Forbidden(reason) => ApiError::Forbidden(reason),
        }
    }
}
