//! The one error type handlers return, mapped once to RFC 9457 problem+json.

use std::fmt;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::storage::StorageError;
pub use crate::validation::FieldError;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "urn:consentry:problem:validation",
    "title": "Invalid request",
    "status": 422,
    "detail": "1 field is invalid",
    "errors": [{"field": "region", "code": "invalid", "message": "`XX` is not an ISO 3166-1 alpha-2 country code"}]
}))]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Problem-specific members (e.g. the current notice digest on a 409).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extensions: Map<String, Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("invalid fields")]
    Validation(Vec<FieldError>),
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Refused by the gate: the problem carries the decision (purpose, reason, basis).
    #[error("denied: {detail}")]
    Denied {
        detail: String,
        extensions: Map<String, Value>,
    },
    #[error("not found")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed {
        /// The `Allow` header: the methods the resource takes.
        allow: String,
    },
    #[error("conflict: {detail}")]
    Conflict {
        detail: String,
        extensions: Map<String, Value>,
    },
    #[error("payload too large")]
    PayloadTooLarge { limit: usize },
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error("request line too long")]
    UriTooLong { limit: usize },
    #[error("request headers too large")]
    HeadersTooLarge { limit: usize, fields: usize },
    /// An address used up its share of a rate-limited door.
    #[error("too many requests")]
    TooManyRequests { retry_after_seconds: u64 },
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("bad gateway: {0}")]
    BadGateway(String),
    #[error("gateway timeout: {0}")]
    GatewayTimeout(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, "invalid", message)])
    }

    pub fn not_found() -> Self {
        Self::NotFound("The resource does not exist.".into())
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::Conflict {
            detail: detail.into(),
            extensions: Map::new(),
        }
    }

    fn slug_and_title(&self) -> (&'static str, &'static str) {
        match self {
            Self::BadRequest(_) => ("bad-request", "Bad request"),
            Self::Validation(_) => ("validation", "Invalid request"),
            Self::Unauthorized(_) => ("unauthorized", "Authentication required"),
            Self::Forbidden(_) => ("forbidden", "Not allowed"),
            Self::Denied { .. } => ("purpose-denied", "Denied by consent"),
            Self::NotFound(_) => ("not-found", "Not found"),
            Self::MethodNotAllowed { .. } => ("method-not-allowed", "Method not allowed"),
            Self::Conflict { .. } => ("conflict", "Conflict"),
            Self::PayloadTooLarge { .. } => ("payload-too-large", "Request body too large"),
            Self::UnsupportedMediaType(_) => ("unsupported-media-type", "Unsupported media type"),
            Self::UriTooLong { .. } => ("uri-too-long", "Request line too long"),
            Self::HeadersTooLarge { .. } => (
                "request-header-fields-too-large",
                "Request headers too large",
            ),
            Self::TooManyRequests { .. } => ("too-many-requests", "Too many requests"),
            Self::Unavailable(_) => ("unavailable", "Service unavailable"),
            Self::BadGateway(_) => ("bad-gateway", "Upstream unreachable"),
            Self::GatewayTimeout(_) => ("gateway-timeout", "Upstream timed out"),
            Self::Internal(_) => ("internal", "Internal error"),
        }
    }

    pub fn problem(&self) -> Problem {
        let (slug, title) = self.slug_and_title();
        let mut extensions = Map::new();
        let mut errors = Vec::new();
        let detail = match self {
            Self::BadRequest(d)
            | Self::Unauthorized(d)
            | Self::Forbidden(d)
            | Self::NotFound(d)
            | Self::UnsupportedMediaType(d)
            | Self::Unavailable(d)
            | Self::BadGateway(d)
            | Self::GatewayTimeout(d) => d.clone(),
            Self::MethodNotAllowed { allow } => {
                format!("This method is not allowed on this resource; it takes {allow}.")
            }
            Self::Validation(fields) => {
                errors = fields.clone();
                match fields.len() {
                    1 => format!("`{}`: {}", fields[0].field, fields[0].message),
                    n => format!("{n} fields are invalid"),
                }
            }
            Self::Conflict {
                detail,
                extensions: ext,
            }
            | Self::Denied {
                detail,
                extensions: ext,
            } => {
                extensions = ext.clone();
                detail.clone()
            }
            Self::PayloadTooLarge { limit } => {
                format!("The request body is larger than the limit of {limit} bytes.")
            }
            Self::UriTooLong { limit } => {
                format!("The request line is longer than the limit of {limit} bytes.")
            }
            Self::HeadersTooLarge { limit, fields } => format!(
                "The request head is larger than the limit of {limit} bytes or {fields} header fields."
            ),
            Self::TooManyRequests {
                retry_after_seconds,
            } => format!(
                "Too many requests from this address; try again in {retry_after_seconds} s."
            ),
            // Nothing about the cause leaks to the client; it is logged instead.
            Self::Internal(_) => "An unexpected error occurred.".into(),
        };
        Problem {
            kind: format!("urn:consentry:problem:{slug}"),
            title: title.into(),
            status: self.status_code().as_u16(),
            detail,
            errors,
            extensions,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::Denied { .. } => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::UriTooLong { .. } => StatusCode::URI_TOO_LONG,
            Self::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Self::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Internal(err) = self {
            tracing::error!(error = format!("{err:#}"), "unexpected error");
        }
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
        if matches!(self, Self::Unauthorized(_)) {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        if let Self::MethodNotAllowed { allow } = self {
            if let Ok(value) = HeaderValue::from_str(allow) {
                response.insert_header((header::ALLOW, value));
            }
        }
        if matches!(self, Self::Unavailable(_)) {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
        }
        if let Self::TooManyRequests {
            retry_after_seconds,
        } = self
        {
            response.insert_header((header::RETRY_AFTER, retry_after_seconds.max(&1).to_string()));
        }
        response.body(serde_json::to_string(&self.problem()).unwrap_or_default())
    }
}

impl From<StorageError> for ApiError {
    fn from(err: StorageError) -> Self {
        if err.is_unavailable() {
            tracing::warn!(error = %err, "database unavailable");
            Self::Unavailable("The database is unavailable; try again shortly.".into())
        } else {
            Self::Internal(anyhow::Error::new(err))
        }
    }
}

impl From<validator::ValidationErrors> for ApiError {
    fn from(errors: validator::ValidationErrors) -> Self {
        let mut fields = Vec::new();
        flatten_validation(&errors, "", &mut fields);
        fields.sort_by(|a, b| a.field.cmp(&b.field));
        Self::Validation(fields)
    }
}

fn flatten_validation(
    errors: &validator::ValidationErrors,
    prefix: &str,
    out: &mut Vec<FieldError>,
) {
    use validator::ValidationErrorsKind as Kind;
    for (field, kind) in errors.errors() {
        let path = if prefix.is_empty() {
            field.to_string()
        } else {
            format!("{prefix}.{field}")
        };
        match kind {
            Kind::Field(list) => out.extend(list.iter().map(|e| {
                let message = e
                    .message
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_else(|| describe(e));
                FieldError::new(path.clone(), e.code.to_string(), message)
            })),
            Kind::Struct(inner) => flatten_validation(inner, &path, out),
            Kind::List(items) => {
                for (index, inner) in items {
                    flatten_validation(inner, &format!("{path}[{index}]"), out);
                }
            }
        }
    }
}

/// A readable message for validator's built-in rules.
fn describe(error: &validator::ValidationError) -> String {
    let param = |name: &str| error.params.get(name).map(|v| v.to_string());
    match error.code.as_ref() {
        "length" => match (param("min"), param("max")) {
            (Some(min), Some(max)) => format!("length must be between {min} and {max}"),
            (Some(min), None) => format!("length must be at least {min}"),
            (None, Some(max)) => format!("length must be at most {max}"),
            _ => "invalid length".into(),
        },
        "range" => match (param("min"), param("max")) {
            (Some(min), Some(max)) => format!("must be between {min} and {max}"),
            (Some(min), None) => format!("must be at least {min}"),
            (None, Some(max)) => format!("must be at most {max}"),
            _ => "out of range".into(),
        },
        code => format!("invalid ({code})"),
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.title, self.detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    #[test]
    fn validation_problem_lists_fields() {
        let err = ApiError::Validation(vec![
            FieldError::new("region", "invalid", "bad region"),
            FieldError::new("birth_year", "range", "too old"),
        ]);
        let problem = err.problem();
        assert_eq!(problem.status, 422);
        assert_eq!(problem.kind, "urn:consentry:problem:validation");
        assert_eq!(problem.errors.len(), 2);
        assert_eq!(problem.detail, "2 fields are invalid");
    }

    #[test]
    fn internal_errors_leak_nothing() {
        let err = ApiError::Internal(anyhow::anyhow!("secret table name"));
        let response = err.error_response();
        assert_eq!(response.status(), 500);
        assert_eq!(
            response.headers().get("content-type").unwrap(),
            PROBLEM_JSON
        );
        let body = response.into_body().try_into_bytes().unwrap();
        assert!(!String::from_utf8_lossy(&body).contains("secret"));
    }

    #[test]
    fn conflict_carries_extensions() {
        let mut extensions = Map::new();
        extensions.insert("current".into(), Value::from("abc"));
        let problem = ApiError::Conflict {
            detail: "stale".into(),
            extensions,
        }
        .problem();
        let json = serde_json::to_value(&problem).unwrap();
        assert_eq!(json["current"], "abc");
        assert_eq!(json["status"], 409);
    }
}
