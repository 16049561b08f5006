//! `POST /v1/events` (services report what customers did) and `GET /v1/events` (the feed
//! downstream services read, e.g. `survey.detractor` for support).

use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::auth::{Principal, Role};
use crate::consent::identifiers::{subject_ref, IdentifierInput};
use crate::consent::ledger::lock_subject;
use crate::http::responses::{AuthProblems, BodyProblems};
use crate::http::{ApiError, AppState, FieldError, Problem, ValidJson};
use crate::surveys::definition::is_event_name;
use crate::surveys::events::{self, Event, Feed};
use crate::surveys::SurveyError;

const REPORTERS: [Role; 1] = [Role::Service];
const FEED_READERS: [Role; 2] = [Role::Service, Role::Admin];
const MAX_PROPERTIES_BYTES: usize = 8 * 1024;
/// Clocks differ; an event may be stamped a little ahead of ours.
const MAX_CLOCK_SKEW: TimeDelta = TimeDelta::minutes(5);

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"subject_id": "cust-8412", "name": "onboarding.completed", "properties": {"steps": 5}}))]
pub struct NewEvent {
    /// The subject; or name them by `identifier` instead (exactly one of the two).
    #[schema(schema_with = crate::http::subject_path::optional_subject_id_schema)]
    pub subject_id: Option<String>,
    /// An identifier the subject is known by, instead of `subject_id`.
    pub identifier: Option<IdentifierInput>,
    /// Dotted lower-case words of at most 100 characters, e.g. `onboarding.completed`.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[a-z0-9_]+(\\.[a-z0-9_]+)*$"
    )]
    pub name: String,
    /// A JSON object of at most 8 KiB.
    #[schema(value_type = Option<Object>)]
    pub properties: Option<Value>,
    /// When it happened (default: now); not in the future.
    pub occurred_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// Increasing: the feed's cursor.
    pub id: i64,
    pub subject_id: String,
    pub name: String,
    #[schema(value_type = Object)]
    pub properties: Value,
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
}

pub fn view(e: Event) -> EventView {
    EventView {
        properties: e.properties(),
        id: e.id,
        subject_id: e.subject_id,
        name: e.name,
        occurred_at: e.occurred_at.and_utc(),
        received_at: e.received_at.and_utc(),
    }
}

/// Records a customer event; surveys it triggers become eligible (after their delay).
///
/// Each subject keeps at most `events_per_subject` events (the oldest go first), each
/// for `events_days` (`policies/retention.toml`).
#[utoipa::path(
    tag = "events",
    request_body = NewEvent,
    responses(
        (status = 201, description = "Recorded", body = EventView),
        (status = 404, description = "No such subject", body = Problem, content_type = "application/problem+json"),
        BodyProblems, AuthProblems,
    ),
    security(("bearer" = [])),
)]
#[post("/v1/events")]
pub async fn post_event(
    state: web::Data<AppState>,
    principal: Principal,
    body: ValidJson<NewEvent>,
) -> Result<HttpResponse, ApiError> {
    principal.require(&REPORTERS)?;
    let body = body.into_inner();
    let now = state.clock.now();
    let mut errors = Vec::new();
    let asked = subject_ref(
        &state.policies.identifier_kinds,
        body.subject_id.as_deref(),
        body.identifier.as_ref(),
        "",
    )
    .map_err(|e| errors.push(e))
    .ok();
    if !is_event_name(&body.name) {
        errors.push(FieldError::new(
            "name",
            "invalid",
            "dotted lower-case words of at most 100 characters, e.g. `onboarding.completed`",
        ));
    }
    let properties = body.properties.unwrap_or(Value::Object(Default::default()));
    if !properties.is_object() {
        errors.push(FieldError::new(
            "properties",
            "type",
            "must be a JSON object",
        ));
    } else if properties.to_string().len() > MAX_PROPERTIES_BYTES {
        errors.push(FieldError::new(
            "properties",
            "too_large",
            format!("at most {MAX_PROPERTIES_BYTES} bytes of JSON"),
        ));
    }
    let occurred_at = body.occurred_at.unwrap_or(now);
    if occurred_at > now + MAX_CLOCK_SKEW {
        errors.push(FieldError::new(
            "occurred_at",
            "future",
            "an event cannot have happened in the future",
        ));
    }
    let (Some(asked), true) = (asked, errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let Some(subject_id) = state.gate.subject_of(&state.db, &asked).await? else {
        return Err(ApiError::NotFound("No such subject.".into()));
    };
    let key = subject_id.to_string();
    let cap = state.policies.retention.events_per_subject;
    let name = body.name;
    let (policies, pseudonyms) = (state.policies.clone(), state.pseudonyms.clone());
    let recorded = state
        .db
        .write(&key, move |conn| {
            crate::storage::write_transaction(conn, |conn| {
                // The subject's lock first, then the feed's: the order answers take too.
                if !lock_subject(conn, &subject_id)? {
                    return Err(SurveyError::NotFound("subject"));
                }
                let id = events::record(
                    conn,
                    subject_id.as_str(),
                    &name,
                    &properties,
                    occurred_at,
                    now,
                    cap,
                )?;
                crate::journeys::update(conn, &policies, &pseudonyms, &subject_id, now)?;
                Ok(EventView {
                    id,
                    subject_id: subject_id.to_string(),
                    name,
                    properties,
                    occurred_at,
                    received_at: now,
                })
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(recorded))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// Only events of this name, e.g. `survey.detractor`.
    pub name: Option<String>,
    pub subject_id: Option<String>,
    /// The last id already read (default 0: from the start).
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventFeed {
    pub events: Vec<EventView>,
    /// Pass as `after` to read on; null when nothing newer was found.
    pub next_after: Option<i64>,
}

/// Events in the order they were recorded, after a cursor: downstream services poll it
/// (`?name=survey.detractor` is support's queue of unhappy customers).
#[utoipa::path(
    tag = "events",
    params(FeedQuery),
    responses((status = 200, description = "A page of events", body = EventFeed),
              (status = 422, description = "A bad parameter", body = Problem, content_type = "application/problem+json"),
              AuthProblems),
    security(("bearer" = [])),
)]
#[get("/v1/events")]
pub async fn event_feed(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<FeedQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(&FEED_READERS)?;
    let query = query.into_inner();
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "1 to 1000"));
    }
    if query.after.is_some_and(|a| a < 0) {
        return Err(ApiError::invalid("after", "an event id, 0 or more"));
    }
    let feed = Feed {
        name: query.name,
        subject_id: query.subject_id,
        after: query.after.unwrap_or(0),
        limit,
    };
    let found = state.db.run(move |conn| events::feed(conn, &feed)).await?;
    let next_after = found.last().map(|e| e.id);
    Ok(HttpResponse::Ok().json(EventFeed {
        events: found.into_iter().map(view).collect(),
        next_after,
    }))
}
