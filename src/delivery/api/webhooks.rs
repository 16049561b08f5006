//! `/v1/webhooks`: where changes are pushed (admin). Secrets are shown when created or
//! rotated, never again.

use actix_web::{delete, get, patch, post, web, HttpResponse};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::auth::{Principal, Role};
use crate::delivery::deliveries::{self, DeliveryView};
use crate::delivery::endpoints::{self, EndpointChange, EndpointView};
use crate::delivery::DeliveryError;
use crate::http::responses::{AuthProblems, BodyProblems, ParameterProblems};
use crate::http::{ApiError, AppState, Problem, ValidJson};

const ADMINS: [Role; 1] = [Role::Admin];

/// `null` in a PATCH clears the field; leaving it out keeps it.
fn nullable<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://hooks.example.com/consentry", "description": "E-mail platform", "event_types": ["consent.granted", "consent.denied", "subject.erased"], "purpose": "marketing"}))]
pub struct WebhookInput {
    /// An `http(s)` URL on a public address.
    #[validate(length(min = 1, max = 2048))]
    pub url: String,
    #[serde(default)]
    #[validate(length(max = 500))]
    pub description: String,
    /// Event types to receive (`GET /v1/webhooks/event-types`); empty or absent for all.
    #[serde(default)]
    #[validate(length(max = 50))]
    pub event_types: Vec<String>,
    /// Only changes under this purpose (or one below it); changes about the subject as
    /// a whole (erasure, restriction, requests) always pass.
    pub purpose: Option<String>,
    /// Only changes under purposes that use this data category.
    pub data_category: Option<String>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"rotate_secret": true}))]
pub struct WebhookPatch {
    #[validate(length(min = 1, max = 2048))]
    pub url: Option<String>,
    #[validate(length(max = 500))]
    pub description: Option<String>,
    #[validate(length(max = 50))]
    pub event_types: Option<Vec<String>>,
    /// `null` removes the filter.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub purpose: Option<Option<String>>,
    /// `null` removes the filter.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub data_category: Option<Option<String>>,
    /// `true` turns a disabled endpoint on again (and clears its failure count).
    pub enabled: Option<bool>,
    /// A new secret, shown in the answer; the old one signs too for the grace period.
    #[serde(default)]
    pub rotate_secret: bool,
}

/// An endpoint, with its secret when it was just created or rotated.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookCreated {
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// `whsec_…`: verify deliveries with it. Shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    pub webhooks: Vec<EndpointView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypes {
    /// Each type and the fields its `data` carries (besides `subject_id`).
    pub event_types: Vec<EventType>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventType {
    pub name: &'static str,
    pub fields: Vec<&'static str>,
}

async fn checked(state: &AppState, change: EndpointChange) -> Result<EndpointChange, ApiError> {
    let (policies, settings) = (state.policies.clone(), state.delivery.clone());
    // The URL's name is resolved: a blocking call, off the worker.
    actix_web::rt::task::spawn_blocking(move || {
        endpoints::check_change(&policies, &settings, &change).map(|()| change)
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("checking a webhook: {e}")))?
    .map_err(ApiError::from)
}

/// Creates an endpoint (admin). Changes that match it are delivered from now on, signed
/// by the Standard Webhooks specification (`webhook-id`, `webhook-timestamp`,
/// `webhook-signature`) with the secret in the answer, which is not shown again.
#[utoipa::path(
    tag = "webhooks",
    request_body = WebhookInput,
    responses(
        (status = 201, description = "Created, with its secret", body = WebhookCreated),
        BodyProblems, AuthProblems),
    security(("bearer" = [])),
)]
#[post("/v1/webhooks")]
pub async fn create_webhook(
    state: web::Data<AppState>,
    principal: Principal,
    body: ValidJson<WebhookInput>,
) -> Result<HttpResponse, ApiError> {
    principal.require(&ADMINS)?;
    let input = body.into_inner();
    let change = checked(
        &state,
        EndpointChange {
            url: Some(input.url),
            description: Some(input.description),
            event_types: Some(input.event_types),
            purpose: Some(input.purpose),
            data_category: Some(input.data_category),
            ..EndpointChange::default()
        },
    )
    .await?;
    let now = state.clock.now();
    let endpoint = state
        .db
        .run(move |conn| endpoints::create(conn, &change, None, now))
        .await?;
    Ok(HttpResponse::Created().json(WebhookCreated {
        endpoint: EndpointView::from(&endpoint),
        secret: Some(endpoint.secret),
    }))
}

/// Every endpoint (admin), recipients' included; never their secrets.
#[utoipa::path(
    tag = "webhooks",
    responses((status = 200, description = "The endpoints", body = WebhookList), AuthProblems),
    security(("bearer" = [])),
)]
#[get("/v1/webhooks")]
pub async fn list_webhooks(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    principal.require(&ADMINS)?;
    let all = state.db.run(endpoints::list).await?;
    Ok(HttpResponse::Ok().json(WebhookList {
        webhooks: all.iter().map(EndpointView::from).collect(),
    }))
}

/// The event types an endpoint can subscribe to, with the fields of each (admin).
#[utoipa::path(
    tag = "webhooks",
    responses((status = 200, description = "The event types", body = EventTypes), AuthProblems),
    security(("bearer" = [])),
)]
#[get("/v1/webhooks/event-types")]
pub async fn list_event_types(principal: Principal) -> Result<HttpResponse, ApiError> {
    principal.require(&ADMINS)?;
    Ok(HttpResponse::Ok().json(EventTypes {
        event_types: crate::outbox::EVENT_TYPES
            .iter()
            .map(|(name, fields)| EventType {
                name,
                fields: fields.to_vec(),
            })
            .collect(),
    }))
}

async fn load(state: &AppState, id: String) -> Result<endpoints::Endpoint, ApiError> {
    state
        .db
        .run(move |conn| endpoints::find(conn, &id))
        .await?
        .ok_or_else(ApiError::not_found)
}

/// One endpoint (admin).
#[utoipa::path(
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "The endpoint", body = EndpointView),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
        AuthProblems),
    security(("bearer" = [])),
)]
#[get("/v1/webhooks/{id}")]
pub async fn get_webhook(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(&ADMINS)?;
    let endpoint = load(&state, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(EndpointView::from(&endpoint)))
}

/// Changes an endpoint (admin): its URL, filters, description; turns it on again after
/// it was disabled; rotates its secret (the new one is in the answer; the old one signs
/// too for the grace period, so receivers can switch without missing a delivery). A
/// recipient's URL comes from `recipients.toml` and cannot be changed here.
#[utoipa::path(
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id")),
    request_body = WebhookPatch,
    responses(
        (status = 200, description = "Changed; `secret` when rotated", body = WebhookCreated),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A recipient's URL or filters", body = Problem, content_type = "application/problem+json"),
        BodyProblems, AuthProblems),
    security(("bearer" = [])),
)]
#[patch("/v1/webhooks/{id}")]
pub async fn change_webhook(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: ValidJson<WebhookPatch>,
) -> Result<HttpResponse, ApiError> {
    principal.require(&ADMINS)?;
    let current = load(&state, path.into_inner()).await?;
    let patch = body.into_inner();
    let reshapes = patch.url.is_some()
        || patch.event_types.is_some()
        || patch.purpose.is_some()
        || patch.data_category.is_some();
    if current.recipient.is_some() && reshapes {
        return Err(DeliveryError::Conflict(
            "A recipient's endpoint follows recipients.toml: change the policy file instead."
                .into(),
        )
        .into());
    }
    let rotated = patch.rotate_secret;
    let change = checked(
        &state,
        EndpointChange {
            url: patch.url,
            description: patch.description,
            event_types: patch.event_types,
            purpose: patch.purpose,
            data_category: patch.data_category,
            enabled: patch.enabled,
            rotate_secret: patch.rotate_secret,
        },
    )
    .await?;
    let (now, grace, id) = (
        state.clock.now(),
        state.delivery.rotation_grace,
        current.id.clone(),
    );
    let endpoint = state
        .db
        .run(move |conn| endpoints::update(conn, &id, &change, grace, now))
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(HttpResponse::Ok().json(WebhookCreated {
        endpoint: EndpointView::from(&endpoint),
        secret: rotated.then(|| endpoint.secret.clone()),
    }))
}

/// Deletes an endpoint with its deliveries (admin). A recipient's endpoint is turned off
/// instead (`PATCH` with `enabled: false`): it comes back from the policy file.
#[utoipa::path(
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A recipient's endpoint", body = Problem, content_type = "application/problem+json"),
        AuthProblems),
    security(("bearer" = [])),
)]
#[delete("/v1/webhooks/{id}")]
pub async fn delete_webhook(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(&ADMINS)?;
    let current = load(&state, path.into_inner()).await?;
    if current.recipient.is_some() {
        return Err(DeliveryError::Conflict(
            "A recipient's endpoint comes from recipients.toml; turn it off with `enabled: false`."
                .into(),
        )
        .into());
    }
    state
        .db
        .run(move |conn| endpoints::delete(conn, &current.id))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

fn status_schema() -> utoipa::openapi::Schema {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(["pending", "delivered", "dead"]))
        .description(Some(
            "Only deliveries in this state; `dead` lists the dead letters.",
        ))
        .into()
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    #[param(schema_with = status_schema)]
    pub status: Option<String>,
    /// At most this many, newest first (1-500, default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    pub deliveries: Vec<DeliveryView>,
}

/// An endpoint's deliveries with every attempt (admin): what was sent, when, what the
/// receiver answered. `status=dead` lists the dead letters.
#[utoipa::path(
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id"), DeliveriesQuery),
    responses(
        (status = 200, description = "The deliveries", body = DeliveryList),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
        ParameterProblems, AuthProblems),
    security(("bearer" = [])),
)]
#[get("/v1/webhooks/{id}/deliveries")]
pub async fn list_deliveries(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    query: web::Query<DeliveriesQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(&ADMINS)?;
    let query = query.into_inner();
    if let Some(status) = &query.status {
        if ![deliveries::PENDING, deliveries::DELIVERED, deliveries::DEAD]
            .contains(&status.as_str())
        {
            return Err(ApiError::invalid(
                "status",
                "one of `pending`, `delivered`, `dead`",
            ));
        }
    }
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("limit", "from 1 to 500"));
    }
    let endpoint = load(&state, path.into_inner()).await?;
    let found = state
        .db
        .run(move |conn| deliveries::list(conn, &endpoint.id, query.status.as_deref(), limit))
        .await?;
    Ok(HttpResponse::Ok().json(DeliveryList { deliveries: found }))
}

fn from_schema() -> utoipa::openapi::Schema {
    crate::http::schemas::query_time(
        "Replay messages since this time (a date or RFC 3339).",
        None,
    )
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReplayQuery {
    #[param(schema_with = from_schema)]
    pub from: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Replayed {
    /// Deliveries queued again (dead letters) or for the first time (messages it missed
    /// while off).
    pub queued: usize,
}

/// Sends an endpoint's messages since `from` again (admin): its dead letters, and the
/// messages it missed while it was off, as far back as messages are kept. A disabled
/// endpoint receives them once it is turned on.
#[utoipa::path(
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id"), ReplayQuery),
    responses(
        (status = 202, description = "Queued", body = Replayed),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
        ParameterProblems, AuthProblems),
    security(("bearer" = [])),
)]
#[post("/v1/webhooks/{id}/replay")]
pub async fn replay_webhook(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    query: web::Query<ReplayQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(&ADMINS)?;
    let from = crate::http::extract::query_time("from", Some(&query.from))
        .map_err(|e| ApiError::Validation(vec![e]))?
        .ok_or_else(|| ApiError::invalid("from", "a date or RFC 3339 time"))?;
    let endpoint = load(&state, path.into_inner()).await?;
    let (policies, now) = (state.policies.clone(), state.clock.now());
    let queued = state
        .db
        .run(move |conn| deliveries::replay(conn, &policies, &endpoint, from, now))
        .await?;
    Ok(HttpResponse::Accepted().json(Replayed { queued }))
}
