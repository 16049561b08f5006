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
        let body = read_json::<T>(req, payload);
        Box::pin(async move {
            let value = body.await?;
            value.validate()?;
            Ok(ValidJson(value))
        })
    }
}

/// The body, JSON by its content type, within the size limit, parsed into `T`.
fn read_json<T: DeserializeOwned + 'static>(
    req: &HttpRequest,
    payload: &mut Payload,
) -> impl Future<Output = Result<T, ApiError>> + 'static {
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
    // Not boxed: the caller's future is the one allocation per request.
    async move {
        content_type?;
        if declared_length.is_some_and(|n| n > limit) {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk =
                chunk.map_err(|e| ApiError::BadRequest(format!("could not read the body: {e}")))?;
            if body.len() + chunk.len() > limit {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        parse_json(&body)
    }
}

/// A JSON body that may be left out: no body at all (no length, or length 0, and not
/// chunked) is `T::default()`, whatever the content type says, and so is a JSON `null`
/// (the document says the body may be null); anything else is checked as `ValidJson`.
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
        let body = read_json::<Option<T>>(req, payload);
        Box::pin(async move {
            let value = body.await?.unwrap_or_default();
            value.validate()?;
            Ok(OptionalJson(value))
        })
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
    let controls = super::printable::body_may_hold_controls(body);
    if controls || may_hold_fractions(body) {
        // Through a `Value` only when the body may need it: to name the field holding a
        // refused character, or to read `5.0` as the integer it is.
        let mut value =
            serde_json::from_slice::<serde_json::Value>(body).map_err(|e| syntax_error(&e))?;
        if controls {
            super::printable::check_json(&value).map_err(|e| ApiError::Validation(vec![e]))?;
        }
        integral_floats_to_integers(&mut value);
        return serde_path_to_error::deserialize(value)
            .map_err(|err| typed_error(err.path().to_string(), &err.into_inner()));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|err| typed_error(err.path().to_string(), &err.into_inner()))?;
    deserializer.end().map_err(|e| syntax_error(&e))?;
    Ok(value)
}

/// A type or shape error names its field (422); a syntax error its position (400).
fn typed_error(path: String, inner: &serde_json::Error) -> ApiError {
    // A map key that failed to parse shows as `?`: name its map instead.
    let path = path
        .split('.')
        .filter(|s| *s != "?")
        .collect::<Vec<_>>()
        .join(".");
    match inner.classify() {
        serde_json::error::Category::Data => ApiError::Validation(vec![data_error(&path, inner)]),
        _ => syntax_error(inner),
    }
}

/// A cheap look at raw JSON for a number with a fraction or an exponent (a digit followed
/// by `.`, `e` or `E`); text such as `v1.2` may say yes too, which costs a second parse.
fn may_hold_fractions(body: &[u8]) -> bool {
    body.windows(2)
        .any(|pair| pair[0].is_ascii_digit() && matches!(pair[1], b'.' | b'e' | b'E'))
}

/// JSON has one number type: `5.0` and `5e0` are the integer 5, and the document calls
/// such fields `integer`, but serde refuses a float for an integer field. Every float
/// without a fraction that an `i64` or `u64` holds becomes that integer.
fn integral_floats_to_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(number) => {
            if let Some(float) = number.as_f64().filter(|_| number.is_f64()) {
                // `as` saturates: the range checks keep 2^63 and beyond out.
                if float.fract() == 0.0
                    && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&float)
                {
                    *number = (float as i64).into();
                } else if float.fract() == 0.0 && (0.0..1.844_674_407_370_955_2e19).contains(&float)
                {
                    *number = (float as u64).into();
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_to_integers),
        Value::Object(members) => members.values_mut().for_each(integral_floats_to_integers),
        _ => {}
    }
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

/// A period's bounds, each optional.
pub type Period = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// A period from the query's `from` and `to` (each a date or RFC 3339), `from` before
/// `to` when both are given; every problem named.
pub fn query_period(from: Option<&str>, to: Option<&str>) -> Result<Period, Vec<FieldError>> {
    let mut errors = Vec::new();
    let from = query_time("from", from).unwrap_or_else(|e| {
        errors.push(e);
        None
    });
    let to = query_time("to", to).unwrap_or_else(|e| {
        errors.push(e);
        None
    });
    if let (Some(f), Some(t)) = (from, to) {
        if f >= t {
            errors.push(FieldError::new("to", "invalid", "must be after `from`"));
        }
    }
    if errors.is_empty() {
        Ok((from, to))
    } else {
        Err(errors)
    }
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
        .filter(|t| (1970..=9998).contains(&t.year()))
        // Day strings compare as text: keep to four-digit years in UTC too. A time an
        // offset moves out of them bounds a range beyond anything stored, as the bound
        // does.
        .map(|t| t.with_timezone(&Utc).clamp(first_instant(), last_instant()))
        .map(Some)
        .ok_or_else(|| {
            FieldError::new(
                field,
                "invalid",
                "a date (2026-11-01) or an RFC 3339 time (2026-11-01T00:00:00Z), 1970 to 9998",
            )
        })
}

fn first_instant() -> DateTime<Utc> {
    DateTime::UNIX_EPOCH
}

fn last_instant() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(9998, 12, 31)
        .and_then(|d| d.and_hms_micro_opt(23, 59, 59, 999_999))
        .unwrap_or_default()
        .and_utc()
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

    #[derive(Debug, Deserialize, PartialEq)]
    struct Counts {
        small: u8,
        signed: i32,
        share: f64,
        any: serde_json::Value,
    }

    #[test]
    fn integral_floats_are_integers() {
        let counts: Counts =
            parse_json(br#"{"small":5.0,"signed":-3e2,"share":2.0,"any":[7.0,1.5]}"#).unwrap();
        assert_eq!(
            counts,
            Counts {
                small: 5,
                signed: -300,
                share: 2.0,
                any: serde_json::json!([7, 1.5]),
            }
        );
        // With a control character too, both go through the same `Value`.
        let controls = fields(
            parse_json::<Body>(br#"{"region":"D\u0001E","nested":{"count":1.0}}"#).unwrap_err(),
        );
        assert_eq!(controls[0].code, "control_character");
        let nested: Body = parse_json(br#"{"region":"DE","nested":{"count":1.0}}"#).unwrap();
        assert_eq!(nested.nested.unwrap().count, 1);
        for (body, field) in [
            (
                &br#"{"region":"DE","nested":{"count":1.5}}"#[..],
                "nested.count",
            ),
            (
                br#"{"region":"DE","nested":{"count":256.0}}"#,
                "nested.count",
            ),
            (
                br#"{"region":"DE","nested":{"count":-1.0}}"#,
                "nested.count",
            ),
            (
                br#"{"region":"DE","nested":{"count":1e300}}"#,
                "nested.count",
            ),
            (br#"{"region":"DE","nested":{"cuont":1.0}}"#, "nested.cuont"),
        ] {
            let errors = fields(parse_json::<Body>(body).unwrap_err());
            assert_eq!(errors[0].field, field, "{}", String::from_utf8_lossy(body));
        }
        match parse_json::<Body>(br#"{"region":"DE","nested":{"count":1.0}"#) {
            Err(ApiError::BadRequest(_)) => {}
            other => panic!("{other:?}"),
        }
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
        // Stated years 1970 to 9998, whatever the offset makes of them in UTC.
        assert_eq!(
            super::query_time("from", Some("1970-01-01T00:30:00+01:00")).unwrap(),
            Some(super::first_instant())
        );
        assert_eq!(
            super::query_time("to", Some("9998-12-31T23:00:00-05:00")).unwrap(),
            Some(super::last_instant())
        );
        for bad in [
            "yesterday",
            "9999-12-31T23:00:00-05:00",
            "1900-01-01",
            "1969-12-31T23:30:00-01:00",
        ] {
            assert_eq!(super::query_time("to", Some(bad)).unwrap_err().field, "to");
        }
    }
}
