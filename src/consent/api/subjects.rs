//! `PUT/GET /v1/subjects/{id}`.

use std::borrow::Cow;

use actix_web::http::header;
use actix_web::{get, put, web, HttpResponse};
use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use validator::{Validate, ValidationError};

use crate::audit::{self, Actor, AuditEntry};
use crate::auth::Role;
use crate::consent::subject::{self, Subject, SubjectChanges};
use crate::http::responses::{AuthProblems, BodyProblems, ParameterProblems, SubjectNotFound};
use crate::http::schemas;
use crate::http::subject_path::{SubjectCaller, SubjectPath};
use crate::http::{ApiError, AppState, ValidJson};
use crate::policy::locale::parse_locale;
use crate::policy::Region;
use crate::storage::write_transaction;

/// Who may create, update and read subjects, besides the subject themself.
const SUBJECT_STAFF: [Role; 2] = [Role::Service, Role::Admin];

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubjectRequest {
    /// ISO 3166-1 country (`DE`) or ISO 3166-2 subdivision (`US-CA`); decides the jurisdiction.
    #[validate(custom(function = "validate_region"))]
    #[schema(schema_with = schemas::region)]
    pub region: String,
    /// A BCP 47 language tag such as `en`, `ar` or `ar-SA`.
    #[validate(custom(function = "validate_locale"))]
    #[schema(schema_with = schemas::language_tag)]
    pub locale: Option<String>,
    /// Known birth year; decides whether the subject is a minor. Not in the future.
    #[validate(range(min = 1900, max = 9999))]
    #[schema(example = 2009, minimum = 1900, maximum = 9999)]
    pub birth_year: Option<i32>,
}

fn validation_error(message: String) -> ValidationError {
    ValidationError::new("invalid").with_message(Cow::Owned(message))
}

fn validate_region(region: &str) -> Result<(), ValidationError> {
    Region::parse(region).map(|_| ()).map_err(validation_error)
}

fn validate_locale(locale: &str) -> Result<(), ValidationError> {
    parse_locale(locale).map(|_| ()).map_err(validation_error)
}

impl SubjectRequest {
    /// The checked changes; the birth year is compared with today's date.
    fn into_changes(self, now: DateTime<Utc>) -> Result<SubjectChanges, ApiError> {
        if self.birth_year.is_some_and(|year| year > now.year()) {
            return Err(ApiError::invalid("birth_year", "must not be in the future"));
        }
        Ok(SubjectChanges {
            region: Region::parse(&self.region).map_err(|m| ApiError::invalid("region", m))?,
            locale: self
                .locale
                .as_deref()
                .map(parse_locale)
                .transpose()
                .map_err(|m| ApiError::invalid("locale", m))?,
            birth_year: self.birth_year,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubjectView {
    #[schema(example = "cust-8412")]
    pub id: String,
    #[schema(example = "US-CA")]
    pub region: String,
    /// Derived from the region by `policies/jurisdictions.toml`.
    #[schema(example = "us_ca")]
    pub jurisdiction: String,
    #[schema(example = "ar")]
    pub locale: Option<String>,
    #[schema(example = 2009)]
    pub birth_year: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl SubjectView {
    pub fn new(subject: &Subject, state: &AppState) -> Self {
        Self {
            id: subject.id.to_string(),
            region: subject.region.to_string(),
            jurisdiction: subject.jurisdiction(&state.policies).to_owned(),
            locale: subject.locale.clone(),
            birth_year: subject.birth_year,
            created_at: subject.created_at,
            updated_at: subject.updated_at,
        }
    }
}

/// Creates a subject, or replaces its region, locale and birth year.
///
/// Fields left out are cleared: PUT sends the whole subject.
#[utoipa::path(
    tag = "subjects",
    params(SubjectPath),
    request_body = SubjectRequest,
    responses(
        (status = 201, description = "Created", body = SubjectView,
         headers(("Location" = String, description = "The subject's URL"))),
        (status = 200, description = "Updated", body = SubjectView),
        SubjectNotFound,
        BodyProblems,
        AuthProblems,
    ),
    security(("bearer" = [])),
)]
#[put("/v1/subjects/{id}")]
pub async fn put_subject(
    state: web::Data<AppState>,
    caller: SubjectCaller,
    body: ValidJson<SubjectRequest>,
) -> Result<HttpResponse, ApiError> {
    let access = caller.access(&SUBJECT_STAFF, true)?;
    let SubjectCaller { id, principal } = caller;
    let now = state.clock.now();
    if access.is_hidden() {
        // Same lookup as for a real subject, then the same answer as a missing one.
        state.db.run(move |conn| subject::find(conn, &id)).await?;
        return Err(ApiError::not_found());
    }
    let changes = body.into_inner().into_changes(now)?;
    let actor = Actor::from(&principal);
    let changed = id.clone();
    let pseudonyms = state.pseudonyms.clone();
    let (subject, created) = state
        .db
        .write(changed.as_str(), move |conn| {
            write_transaction(conn, |conn| {
                let (subject, created) = subject::upsert(conn, &id, &changes, now)?;
                crate::storage::announce_subject_changed(conn, id.as_str())?;
                audit::record(
                    conn,
                    &pseudonyms,
                    AuditEntry {
                        actor: &actor,
                        action: if created {
                            "subject.created"
                        } else {
                            "subject.updated"
                        },
                        subject_id: Some(id.as_str()),
                        payload: json!({
                            "region": changes.region.as_str(),
                            "locale": changes.locale,
                            "birth_year": changes.birth_year,
                        }),
                        at: now,
                    },
                )?;
                Ok::<_, ApiError>((subject, created))
            })
        })
        .await?;
    state.gate.changed(&changed).await;
    let view = SubjectView::new(&subject, &state);
    Ok(if created {
        HttpResponse::Created()
            .insert_header((
                header::LOCATION,
                format!("/v1/subjects/{}", encode_segment(&view.id)),
            ))
            .json(view)
    } else {
        HttpResponse::Ok().json(view)
    })
}

/// Reads a subject with its derived jurisdiction.
#[utoipa::path(
    tag = "subjects",
    params(SubjectPath),
    responses(
        (status = 200, description = "The subject", body = SubjectView),
        SubjectNotFound,
        ParameterProblems,
        AuthProblems,
    ),
    security(("bearer" = [])),
)]
#[get("/v1/subjects/{id}")]
pub async fn get_subject(
    state: web::Data<AppState>,
    caller: SubjectCaller,
) -> Result<HttpResponse, ApiError> {
    let access = caller.access(&SUBJECT_STAFF, true)?;
    let SubjectCaller { id, .. } = caller;
    let found = state.db.run(move |conn| subject::find(conn, &id)).await?;
    match found {
        Some(subject) if !access.is_hidden() => {
            Ok(HttpResponse::Ok().json(SubjectView::new(&subject, &state)))
        }
        _ => Err(ApiError::not_found()),
    }
}

/// Percent-encodes a path segment for a Location header.
fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn birth_year_cannot_be_in_the_future() {
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap();
        let request = |birth_year| SubjectRequest {
            region: "DE".into(),
            locale: Some("AR-sa".into()),
            birth_year,
        };
        assert!(request(Some(2027)).into_changes(now).is_err());
        let changes = request(Some(2026)).into_changes(now).unwrap();
        assert_eq!(changes.locale.as_deref(), Some("ar-SA"));
    }

    #[test]
    fn location_segments_are_encoded() {
        assert_eq!(encode_segment("a b/c"), "a%20b%2Fc");
        assert_eq!(encode_segment("cust-1"), "cust-1");
    }
}
