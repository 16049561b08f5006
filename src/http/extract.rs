//! Request bodies: JSON only, size-limited, deserialized with the path of the bad field,
//! then validated. Every failure is a problem, never actix's plain-text default.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use validator::Validate;

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use super::problem::{ApiError, FieldError};

/// The largest body accepted, set once by the app.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

impl Default for BodyLimit {
    fn default() -> Self {
        Self(256 * 1024)
    }
}

/// A JSON body that parsed and passed its `Validate` rules.
#[derive(Debug)]
pub struct ValidJson<T>(pub T);

impl<T> ValidJson<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: DeserializeOwned + Validate + 'static> FromRequest for ValidJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<web::Data<BodyLimit>>()
            .map(|l| l.0)
            .unwrap_or_default();
        let content_type = check_content_type(req);
        let declared_length = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            content_type?;
            if declared_length.is_some_and(|n| n > limit) {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk
                    .map_err(|e| ApiError::BadRequest(format!("could not read the body: {e}")))?;
                if body.len() + chunk.len() > limit {
                    return Err(ApiError::PayloadTooLarge { limit });
                }
                body.extend_from_slice(&chunk);
            }
            let value: T = parse_json(&body)?;
            value.validate()?;
            Ok(ValidJson(value))
        })
    }
}

/// A JSON body that may be left out: no body at all (no length, or length 0, and not
/// chunked) is `T::default()`, whatever the content type says; anything sent is checked
/// as `ValidJson`.
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Validate + Default + 'static> FromRequest for OptionalJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let headers = req.headers();
        let length = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok());
        let empty = headers.get(header::TRANSFER_ENCODING).is_none()
            && length.is_none_or(|n| n.trim() == "0");
        if empty {
            return Box::pin(async { Ok(OptionalJson(T::default())) });
        }
        let body = ValidJson::<T>::from_request(req, payload);
        Box::pin(async move { body.await.map(|b| OptionalJson(b.0)) })
    }
}

fn check_content_type(req: &HttpRequest) -> Result<(), ApiError> {
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return Err(ApiError::UnsupportedMediaType(
            "Send the body as JSON with `Content-Type: application/json`.".into(),
        ));
    };
    let essence = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
    {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "Content type `{essence}` is not accepted; send `application/json`."
        )))
    }
}

/// Parses JSON, naming the field on a type or shape error (422) and the position on a
/// syntax error (400).
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest(
            "The request body is empty; a JSON object is expected.".into(),
        ));
    }
    // Before anything is built from the body: nesting and array lengths within bounds.
    super::json_shape::check(
        body,
        super::json_shape::MAX_DEPTH,
        super::json_shape::MAX_ARRAY_ITEMS,
    )
    .map_err(|e| ApiError::Validation(vec![FieldError::new(e.field, e.code, e.message)]))?;
    if super::printable::body_may_hold_controls(body) {
        // Parsed twice only when a refused character may be there, to name its field.
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
            super::printable::check_json(&value).map_err(|e| ApiError::Validation(vec![e]))?;
        }
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        // A map key that failed to parse shows as `?`: name its map instead.
        let path = err
            .path()
            .to_string()
            .split('.')
            .filter(|s| *s != "?")
            .collect::<Vec<_>>()
            .join(".");
        let inner = err.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                ApiError::Validation(vec![data_error(&path, &inner)])
            }
            _ => syntax_error(&inner),
        }
    })?;
    deserializer.end().map_err(|e| syntax_error(&e))?;
    Ok(value)
}

fn syntax_error(err: &serde_json::Error) -> ApiError {
    if err.is_eof() {
        ApiError::BadRequest(format!(
            "The body is not complete JSON (it ends at line {}, column {}).",
            err.line(),
            err.column()
        ))
    } else {
        ApiError::BadRequest(format!(
            "The body is not valid JSON: {} (line {}, column {}).",
            strip_position(&err.to_string()),
            err.line(),
            err.column()
        ))
    }
}

/// Turns a serde data error into a field error, naming the field even when serde names
/// it only in the message (missing and unknown fields).
fn data_error(path: &str, err: &serde_json::Error) -> FieldError {
    let message = strip_position(&err.to_string());
    let join = |name: &str| {
        if path == name || path.ends_with(&format!(".{name}")) {
            path.to_owned()
        } else if path.is_empty() || path == "." {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        }
    };
    let quoted = |prefix: &str| {
        message
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned)
    };
    if let Some(name) = quoted("missing field `") {
        FieldError::new(join(&name), "required", "this field is required")
    } else if let Some(name) = quoted("unknown field `") {
        FieldError::new(
            join(&name),
            "unknown_field",
            "this field is not accepted here",
        )
    } else {
        let field = if path.is_empty() || path == "." {
            "body".to_owned()
        } else {
            path.to_owned()
        };
        FieldError::new(field, "type", message)
    }
}

/// serde_json appends " at line L column C"; the problem says so separately.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// Error handlers for actix's own extractors, so they answer problem+json too.
pub fn path_error(err: actix_web::error::PathError, _: &HttpRequest) -> actix_web::Error {
    ApiError::invalid("path", err.to_string()).into()
}

pub fn query_error(err: actix_web::error::QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    let message = err.to_string();
    let field = message
        .split('`')
        .nth(1)
        .map(str::to_owned)
        .unwrap_or_else(|| "query".into());
    ApiError::Validation(vec![FieldError::new(
        field,
        "invalid",
        strip_position(&message),
    )])
    .into()
}

/// A time in a query: `2026-11-01` (midnight UTC) or RFC 3339, years 1970 to 9998
/// (reports compare day strings as text, so four-digit years only).
pub fn query_time(field: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, FieldError> {
    let Some(value) = value else { return Ok(None) };
    if let Some(date) = NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .filter(|d| (1970..=9998).contains(&d.year()))
    {
        return Ok(Some(
            date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc(),
        ));
    }
    DateTime::parse_from_rfc3339(value)
        .ok()
        .map(|t| t.with_timezone(&Utc))
        // Day strings compare as text: keep to four-digit years.
        .filter(|t| (1970..=9998).contains(&t.year()))
        .map(Some)
        .ok_or_else(|| {
            FieldError::new(
                field,
                "invalid",
                "a date (2026-11-01) or an RFC 3339 time (2026-11-01T00:00:00Z), 1970 to 9998",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        region: String,
        nested: Option<Nested>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Nested {
        count: u8,
    }

    fn fields(err: ApiError) -> Vec<FieldError> {
        match err {
            ApiError::Validation(f) => f,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn names_the_missing_unknown_and_mistyped_field() {
        let missing = fields(parse_json::<Body>(br#"{}"#).unwrap_err());
        assert_eq!(
            (missing[0].field.as_str(), missing[0].code.as_str()),
            ("region", "required")
        );
        let unknown = fields(parse_json::<Body>(br#"{"region":"DE","regoin":1}"#).unwrap_err());
        assert_eq!(
            (unknown[0].field.as_str(), unknown[0].code.as_str()),
            ("regoin", "unknown_field")
        );
        let typed =
            fields(parse_json::<Body>(br#"{"region":"DE","nested":{"count":300}}"#).unwrap_err());
        assert_eq!(
            (typed[0].field.as_str(), typed[0].code.as_str()),
            ("nested.count", "type")
        );
        let nested_missing =
            fields(parse_json::<Body>(br#"{"region":"DE","nested":{}}"#).unwrap_err());
        assert_eq!(nested_missing[0].field, "nested.count");
        let not_object = fields(parse_json::<Body>(br#""text""#).unwrap_err());
        assert_eq!(not_object[0].field, "body");
    }

    #[test]
    fn syntax_errors_are_400() {
        for body in [
            &b"{"[..],
            b"{\"region\": }",
            b"nope",
            b"",
            b"  ",
            b"{\"region\":\"DE\"} trailing",
        ] {
            match parse_json::<Body>(body) {
                Err(ApiError::BadRequest(_)) => {}
                other => panic!("{:?}: {other:?}", String::from_utf8_lossy(body)),
            }
        }
    }

    #[test]
    fn query_times_are_dates_or_rfc3339_with_four_digit_years() {
        use chrono::TimeZone;
        let midnight = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
        assert_eq!(
            super::query_time("from", Some("2026-11-01")).unwrap(),
            Some(midnight)
        );
        assert_eq!(
            super::query_time("from", Some("2026-11-01T02:00:00+02:00")).unwrap(),
            Some(midnight)
        );
        assert_eq!(super::query_time("from", None).unwrap(), None);
        for bad in ["yesterday", "9999-12-31T23:00:00-05:00", "1900-01-01"] {
            assert_eq!(super::query_time("to", Some(bad)).unwrap_err().field, "to");
        }
    }
}
