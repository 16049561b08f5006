//! The problem responses endpoints share, for the OpenAPI document.

use utoipa::IntoResponses;

use super::problem::Problem;

/// Failures any authenticated endpoint can answer.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum AuthProblems {
    /// No token, or one that is malformed, expired, signed by an unknown key, or for
    /// another issuer or audience.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// The token's role may not do this.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// The database is unavailable or busy; retry.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}

/// Failures of a request that carries a JSON body.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum BodyProblems {
    /// The body is not JSON (syntax) or is empty.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// The body is larger than the configured limit.
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(Problem),
    /// The body is not `application/json`.
    #[response(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Problem),
    /// A field is missing, unknown, of the wrong type or invalid; `errors` names each.
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(Problem),
}

/// The subject does not exist, or is not the caller's own.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum SubjectNotFound {
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
}

/// A path or query parameter that is unknown, malformed or out of range.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum ParameterProblems {
    /// A parameter is unknown, of the wrong type or out of range; `errors` names it.
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(Problem),
}
