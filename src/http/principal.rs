//! The `Principal` extractor: the bearer token of a request, checked by the app's
//! `Authenticator`. Handlers take a `Principal` argument; a missing or bad token is a 401
//! before the handler runs.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};

use super::{ApiError, AppState};
use crate::auth::{AuthError, Authenticator, Principal};

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(admit(req))
    }
}

/// A valid token spends its subject's share when it writes; a rejected one spends its
/// address's share of failures, so guessing is slowed while valid tokens from the same
/// address go on working.
fn admit(req: &HttpRequest) -> Result<Principal, ApiError> {
    let limits = req.app_data::<web::Data<AppState>>().map(|s| &s.limits);
    match authenticate(req) {
        Ok(principal) => {
            if let Some(limits) = limits {
                limits.check_write(&principal, req)?;
            }
            Ok(principal)
        }
        Err(err) => {
            if let (AuthError::Invalid(_), Some(limits)) = (&err, limits) {
                limits.failed_auth.check(&limits.client(req))?;
            }
            Err(err.into())
        }
    }
}

fn authenticate(req: &HttpRequest) -> Result<Principal, AuthError> {
    let auth = req
        .app_data::<web::Data<Authenticator>>()
        .ok_or_else(|| AuthError::Invalid("authentication is not configured".into()))?;
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| AuthError::Invalid("send `Authorization: Bearer <token>`".into()))?
        .to_str()
        .map_err(|_| AuthError::Invalid("the Authorization header is not readable".into()))?;
    let token = value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| AuthError::Invalid("the Authorization scheme must be `Bearer`".into()))?;
    auth.authenticate(token)
}
