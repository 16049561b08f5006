//! The HTTP layer: app factory, error mapping, extractors, OpenAPI, health and metrics.

pub mod api;
pub mod client_ip;
pub mod extract;
pub mod fallback;
pub mod head;
mod headers;
pub mod json_shape;
pub mod limits;
pub mod observe;
mod principal;
mod printable;
pub mod problem;
pub mod responses;
pub mod schemas;
mod state;
pub mod subject_path;

pub use extract::ValidJson;
pub use problem::{ApiError, FieldError, Problem};
pub use state::{streamed, AppState};

/// The one answer to a request without a valid token.
pub const UNAUTHORIZED_DETAIL: &str =
    "A valid bearer token is required: send `Authorization: Bearer <token>`.";

impl From<crate::auth::AuthError> for ApiError {
    fn from(err: crate::auth::AuthError) -> Self {
        use crate::auth::AuthError;
        match err {
            // Which check failed is for the operator, not for whoever holds the token.
            AuthError::Invalid(reason) => {
                tracing::info!(reason = %reason, "authentication failed");
                ApiError::Unauthorized(UNAUTHORIZED_DETAIL.into())
            }
            AuthError::Forbidden(reason) => ApiError::Forbidden(reason),
        }
    }
}
