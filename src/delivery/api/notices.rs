//! Recipients told of requests (GDPR Art. 19): who was told and who confirmed, for the
//! compliance officer; the confirmation itself, for the recipient.

use actix_web::{get, post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use crate::auth::{Principal, Role};
use crate::delivery::notices::{self, NoticeView};
use crate::dsar::requests;
use crate::http::responses::{AuthProblems, BodyProblems};
use crate::http::{ApiError, AppState, Problem, ValidJson};
use crate::policy::Recipient;

const READERS: [Role; 2] = [Role::Admin, Role::Compliance];

#[derive(Debug, Serialize, ToSchema)]
pub struct RequestRecipients {
    pub request_id: String,
    /// One per recipient the completed request concerns; empty until it completes.
    pub recipients: Vec<NoticeView>,
}

/// Which recipients a completed erasure, rectification or restriction was told to, and
/// which confirmed (admin, compliance).
#[utoipa::path(
    tag = "dsar",
    params(("id" = String, Path, description = "The request id")),
    responses(
        (status = 200, description = "The recipients and their state", body = RequestRecipients),
        (status = 404, description = "No such request", body = Problem, content_type = "application/problem+json"),
        AuthProblems),
    security(("bearer" = [])),
)]
#[get("/v1/dsar/{id}/recipients")]
pub async fn request_recipients(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(&READERS)?;
    let id = path.into_inner();
    let found = state
        .db
        .run(move |conn| {
            let Some(_) = requests::find(conn, &id)? else {
                return Ok(None);
            };
            Ok::<_, crate::storage::StorageError>(Some((notices::of_request(conn, &id)?, id)))
        })
        .await?;
    let (found, request_id) = found.ok_or_else(ApiError::not_found)?;
    Ok(HttpResponse::Ok().json(RequestRecipients {
        request_id,
        recipients: found.into_iter().map(NoticeView::from).collect(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecipientState {
    #[serde(flatten)]
    pub recipient: Recipient,
    /// Requests it was told of (or must be) and has not confirmed, oldest first.
    pub unconfirmed: Vec<NoticeView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecipientList {
    pub recipients: Vec<RecipientState>,
}

/// The recipients from `recipients.toml`, each with the requests it has not confirmed
/// (admin, compliance): whom to chase.
#[utoipa::path(
    tag = "dsar",
    responses((status = 200, description = "The recipients", body = RecipientList), AuthProblems),
    security(("bearer" = [])),
)]
#[get("/v1/recipients")]
pub async fn list_recipients(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    principal.require(&READERS)?;
    let open = state
        .db
        .run(|conn| notices::unconfirmed(conn, 10_000))
        .await?;
    let recipients = state
        .policies
        .recipients
        .all()
        .iter()
        .map(|r| RecipientState {
            recipient: r.clone(),
            unconfirmed: open
                .iter()
                .filter(|n| n.recipient == r.name)
                .cloned()
                .map(NoticeView::from)
                .collect(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(RecipientList { recipients }))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"recipient": "ad_platform", "token": "3f1c…"}))]
pub struct AcknowledgementInput {
    /// The recipient's name in `recipients.toml`.
    #[validate(length(min = 1, max = 100))]
    pub recipient: String,
    /// The token it was sent with the request (`data.acknowledgement.token`).
    #[validate(length(min = 1, max = 200))]
    pub token: String,
}

/// A recipient confirms that it acted on a completed erasure, rectification or
/// restriction. No bearer token: the request's token, which only that recipient was
/// sent, is the credential. Confirming again changes nothing. A wrong token and an
/// unknown request are both 404, so that guesses learn nothing.
#[utoipa::path(
    tag = "dsar",
    params(("id" = String, Path, description = "The request id")),
    request_body = AcknowledgementInput,
    responses(
        (status = 204, description = "Confirmed"),
        (status = 404, description = "No such notice, or not its token", body = Problem, content_type = "application/problem+json"),
        BodyProblems),
)]
#[post("/v1/dsar/{id}/acknowledgements")]
pub async fn acknowledge(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: ValidJson<AcknowledgementInput>,
) -> Result<HttpResponse, ApiError> {
    let (request_id, input) = (path.into_inner(), body.into_inner());
    if !notices::token_matches(
        &state.pseudonyms,
        &request_id,
        &input.recipient,
        &input.token,
    ) {
        return Err(ApiError::not_found());
    }
    let (pseudonyms, now) = (state.pseudonyms.clone(), state.clock.now());
    let found = state
        .db
        .run(move |conn| {
            crate::storage::write_transaction(conn, |conn| {
                notices::acknowledge(
                    conn,
                    &pseudonyms,
                    &request_id,
                    &input.recipient,
                    "token",
                    now,
                )
            })
        })
        .await?;
    if found {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::not_found())
    }
}
