//! `POST /v1/subjects/{id}/contacts`: a service records a message it sent, so that reach
//! counts it against the customer's weekly cap.

use actix_web::{post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map};
use utoipa::ToSchema;
use validator::Validate;

use crate::auth::Role;
use crate::consent::contacts::{self, Contact, NewContact, Recorded};
use crate::http::responses::{AuthProblems, BodyProblems, SubjectNotFound};
use crate::http::subject_path::{SubjectCaller, SubjectPath};
use crate::http::{ApiError, AppState, FieldError, Problem, ValidJson};
use crate::policy::Policies;

const CALLERS: [Role; 1] = [Role::Service];

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"channel": "whatsapp", "purpose": "marketing", "sent_at": "2026-12-02T09:30:00Z", "idempotency_key": "campaign-42/cust-8412"}))]
pub struct ContactInput {
    #[schema(schema_with = crate::consent::preferences::channel_schema)]
    pub channel: String,
    #[schema(min_length = 1, max_length = 200)]
    pub purpose: String,
    /// When the message went out; default now. At most five minutes ahead of the
    /// server's clock, at most 35 days back.
    pub sent_at: Option<DateTime<Utc>>,
    /// The sender's key for this message: a retry with the same key records nothing
    /// more and answers the first record (200); the same key for a different message is
    /// 409.
    #[schema(min_length = 1, max_length = 200)]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactView {
    #[schema(example = "cust-8412")]
    pub subject_id: String,
    #[serde(flatten)]
    pub contact: Contact,
}

fn check(
    policies: &Policies,
    input: ContactInput,
    now: DateTime<Utc>,
) -> Result<NewContact, Vec<FieldError>> {
    let mut errors = Vec::new();
    if let Err(e) = policies.channels.checked(&input.channel, "channel".into()) {
        errors.push(e);
    }
    if policies.purpose(&input.purpose).is_none() {
        errors.push(FieldError::new(
            "purpose",
            "unknown_purpose",
            format!(
                "`{}` is not a purpose (see GET /v1/purposes)",
                input.purpose
            ),
        ));
    }
    let sent_at = input.sent_at.unwrap_or(now);
    if let Err(e) = contacts::check_sent_at(sent_at, now) {
        errors.push(e);
    }
    if let Some(key) = &input.idempotency_key {
        if let Err(e) = contacts::check_idempotency_key(key) {
            errors.push(e);
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(NewContact {
        channel: input.channel,
        purpose: input.purpose,
        sent_at,
        sent_at_given: input.sent_at.is_some(),
        idempotency_key: input.idempotency_key,
    })
}

/// Records a message sent to the customer; reach counts it against their weekly cap for
/// the channel at once, on every instance. Idempotent by `idempotency_key`.
#[utoipa::path(
    tag = "decisions",
    params(SubjectPath),
    request_body = ContactInput,
    responses(
        (status = 201, description = "Recorded", body = ContactView),
        (status = 200, description = "Recorded before under this idempotency key", body = ContactView),
        (status = 409, description = "The idempotency key was used for a different message", body = Problem, content_type = "application/problem+json"),
        SubjectNotFound, BodyProblems, AuthProblems),
    security(("bearer" = [])),
)]
#[post("/v1/subjects/{id}/contacts")]
pub async fn record_contact(
    state: web::Data<AppState>,
    caller: SubjectCaller,
    body: ValidJson<ContactInput>,
) -> Result<HttpResponse, ApiError> {
    caller.access(&CALLERS, false)?;
    let now = state.clock.now();
    let contact = check(&state.policies, body.into_inner(), now).map_err(ApiError::Validation)?;
    let id = caller.id;
    let subject = id.clone();
    let recorded = state
        .db
        .write(id.as_str(), move |conn| {
            contacts::record(conn, &subject, &contact, now)
        })
        .await?;
    let view = |contact| ContactView {
        subject_id: id.to_string(),
        contact,
    };
    match recorded {
        Recorded::NoSuchSubject => Err(ApiError::not_found()),
        Recorded::Created(contact) => {
            state.gate.changed(&id).await;
            Ok(HttpResponse::Created().json(view(contact)))
        }
        Recorded::Replayed(contact) => Ok(HttpResponse::Ok().json(view(contact))),
        Recorded::KeyReused(earlier) => {
            let mut extensions = Map::new();
            extensions.insert("field".into(), json!("idempotency_key"));
            extensions.insert("contact_id".into(), json!(earlier.id));
            Err(ApiError::Conflict {
                detail: "This idempotency key was used for a different message (channel, purpose or sent_at differ).".into(),
                extensions,
            })
        }
    }
}
