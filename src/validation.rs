//! What is wrong with an input, named by its field: domain checks report it, the HTTP
//! layer lists it in a 422 problem. It is plain data, so rules that check input need no
//! HTTP type.

use serde::Serialize;
use utoipa::ToSchema;

/// One invalid field of a request.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, ToSchema)]
pub struct FieldError {
    /// Dotted path of the field in the request (`region`, `channels.email.max_per_week`),
    /// or the name of a path or query parameter.
    #[schema(example = "region")]
    pub field: String,
    #[schema(example = "`XX` is not an ISO 3166-1 alpha-2 country code")]
    pub message: String,
    /// A stable machine-readable code (`invalid`, `required`, `unknown_field`, `type`...).
    #[schema(example = "invalid")]
    pub code: String,
}

impl FieldError {
    pub fn new(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}
