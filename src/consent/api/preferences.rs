//! `GET/PUT /v1/subjects/{id}/preferences`.

use std::collections::BTreeMap;

use actix_web::{get, put, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::audit::Actor;
use crate::auth::Role;
use crate::consent::preferences::{self, ChannelPreference, Preferences, QuietHours};
use crate::consent::subject;
use crate::http::responses::{AuthProblems, BodyProblems, ParameterProblems, SubjectNotFound};
use crate::http::subject_path::{SubjectCaller, SubjectPath};
use crate::http::{ApiError, AppState, ValidJson};
use crate::policy::{Policies, Region};
use crate::storage::StorageError;

const STAFF: [Role; 1] = [Role::Service];

/// The preferences with whose they are and when they were set: the request document's
/// fields spelled out, as that document admits no others.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreferencesView {
    pub subject_id: String,
    #[schema(schema_with = preferences::channels_schema)]
    pub channels: BTreeMap<String, ChannelPreference>,
    /// Preferred channels, most preferred first: the subject's own, or, when they chose
    /// none, their country's default (see `channel_order_default_for`).
    #[schema(example = json!(["whatsapp", "email", "sms"]))]
    pub channel_order: Vec<String>,
    /// Null when the order is the subject's own; otherwise where the default came from:
    /// a region (`BR`), a jurisdiction (`eea`) or `default` (`policies/channels.toml`).
    #[schema(example = "BR")]
    pub channel_order_default_for: Option<String>,
    /// BCP 47 language tag.
    pub language: Option<String>,
    /// IANA time zone name.
    pub timezone: Option<String>,
    pub quiet_hours: Option<QuietHours>,
    /// Null until the preferences are first set.
    pub updated_at: Option<DateTime<Utc>>,
}

impl PreferencesView {
    fn new(
        subject_id: String,
        preferences: Preferences,
        updated_at: Option<DateTime<Utc>>,
        region: &Region,
        policies: &Policies,
    ) -> Self {
        let Preferences {
            channels,
            channel_order,
            language,
            timezone,
            quiet_hours,
        } = preferences;
        let (channel_order, channel_order_default_for) = if channel_order.is_empty() {
            let default = policies.default_channel_order(region);
            let names = default.channels.iter().map(|c| c.to_string()).collect();
            (names, Some(default.from.to_owned()))
        } else {
            (channel_order, None)
        };
        Self {
            subject_id,
            channels,
            channel_order,
            channel_order_default_for,
            language,
            timezone,
            quiet_hours,
            updated_at,
        }
    }
}

/// A subject's channel preferences (defaults until first set).
#[utoipa::path(
    tag = "preferences",
    params(SubjectPath),
    responses((status = 200, description = "The preferences", body = PreferencesView), SubjectNotFound, ParameterProblems, AuthProblems),
    security(("bearer" = [])),
)]
#[get("/v1/subjects/{id}/preferences")]
pub async fn get_preferences(
    state: web::Data<AppState>,
    caller: SubjectCaller,
) -> Result<HttpResponse, ApiError> {
    let access = caller.access(&STAFF, true)?;
    let SubjectCaller { id, .. } = caller;
    let found = state
        .db
        .run(move |conn| {
            let Some(found) = subject::find(conn, &id)? else {
                return Ok::<_, StorageError>(None);
            };
            Ok(Some((found, preferences::find(conn, &id)?)))
        })
        .await?;
    let Some((subject, stored)) = found.filter(|_| !access.is_hidden()) else {
        return Err(ApiError::not_found());
    };
    let (preferences, updated_at) = match stored {
        Some((p, at)) => (p, Some(at)),
        None => (Preferences::default(), None),
    };
    Ok(HttpResponse::Ok().json(PreferencesView::new(
        subject.id.to_string(),
        preferences,
        updated_at,
        &subject.region,
        &state.policies,
    )))
}

/// Replaces a subject's channel preferences; the gate honours a channel opt-out at once.
#[utoipa::path(
    tag = "preferences",
    params(SubjectPath),
    request_body = Preferences,
    responses((status = 200, description = "The new preferences", body = PreferencesView), SubjectNotFound, BodyProblems, AuthProblems),
    security(("bearer" = [])),
)]
#[put("/v1/subjects/{id}/preferences")]
pub async fn put_preferences(
    state: web::Data<AppState>,
    caller: SubjectCaller,
    body: ValidJson<Preferences>,
) -> Result<HttpResponse, ApiError> {
    let access = caller.access(&STAFF, true)?;
    let SubjectCaller { id, principal } = caller;
    let document = body
        .into_inner()
        .checked(&state.policies.channels)
        .map_err(ApiError::Validation)?;
    if access.is_hidden() {
        state.db.run(move |conn| subject::find(conn, &id)).await?;
        return Err(ApiError::not_found());
    }
    let (now, actor) = (state.clock.now(), Actor::from(&principal));
    let saved = document.clone();
    let stored_id = id.clone();
    let pseudonyms = state.pseudonyms.clone();
    let region = state
        .db
        .write(stored_id.as_str(), move |conn| {
            if !preferences::replace(conn, &pseudonyms, &actor, &id, &saved, now)? {
                return Ok::<_, StorageError>(None);
            }
            Ok(subject::find(conn, &id)?.map(|s| s.region))
        })
        .await?;
    let Some(region) = region else {
        return Err(ApiError::not_found());
    };
    state.gate.changed(&stored_id).await;
    Ok(HttpResponse::Ok().json(PreferencesView::new(
        stored_id.to_string(),
        document,
        Some(now),
        &region,
        &state.policies,
    )))
}
