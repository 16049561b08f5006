//! `GET /v1/subjects/{id}/consents/{purpose}/receipt`: a signed Kantara receipt.

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::consents::READERS;
use crate::consent::ledger::{self};
use crate::consent::subject::{self};
use crate::http::responses::{AuthProblems, SubjectNotFound};
use crate::http::subject_path::{SubjectCaller, SubjectPath};
use crate::http::{ApiError, AppState, Problem};
use crate::storage::StorageError;

/// A consent receipt: a JWS anyone can check against `/.well-known/jwks.json`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentReceipt {
    /// Compact JWS (EdDSA) whose claims follow the Kantara Consent Receipt (v1.1) fields.
    pub receipt: String,
    /// The signing key's id in the JWKS.
    pub kid: String,
    /// The signed claims, for convenience.
    #[schema(value_type = Object)]
    pub claims: Value,
}

/// A signed receipt for the current consent record of one purpose.
#[utoipa::path(
    tag = "consents",
    params(SubjectPath, ("purpose" = String, Path, description = "A purpose key")),
    responses(
        (status = 200, description = "The signed receipt", body = ConsentReceipt),
        (status = 422, description = "Unknown purpose", body = Problem, content_type = "application/problem+json"),
        SubjectNotFound, AuthProblems,
    ),
    security(("bearer" = [])),
)]
#[get("/v1/subjects/{id}/consents/{purpose}/receipt")]
pub async fn consent_receipt(
    state: web::Data<AppState>,
    caller: SubjectCaller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let access = caller.access(&READERS, true)?;
    let SubjectCaller { id, .. } = caller;
    let (_, purpose_key) = path.into_inner();
    let Some(purpose) = state.policies.purpose(&purpose_key).cloned() else {
        return Err(ApiError::invalid(
            "purpose",
            format!("`{purpose_key}` is not a purpose"),
        ));
    };
    let found = state
        .db
        .run(move |conn| {
            let Some(subject) = subject::find(conn, &id)? else {
                return Ok::<_, StorageError>(None);
            };
            let states = ledger::states(conn, &id)?;
            Ok(Some((subject, states)))
        })
        .await?;
    let Some((subject, states)) = found.filter(|_| !access.is_hidden()) else {
        return Err(ApiError::not_found());
    };
    let Some(record) = states.get(&purpose.key) else {
        return Err(ApiError::NotFound(format!(
            "No consent is recorded for `{}`.",
            purpose.key
        )));
    };
    let now = state.clock.now();
    let claims = crate::consent::receipt::claims(
        &state.receipts,
        &state.policies,
        &subject,
        &purpose,
        record,
        now,
    );
    let signing = state.keys.signing();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(signing.kid.clone());
    header.typ = Some("JWT".into());
    let receipt = jsonwebtoken::encode(&header, &claims, signing.encoding_key())
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("signing a receipt: {e}")))?;
    Ok(HttpResponse::Ok().json(ConsentReceipt {
        receipt,
        kid: signing.kid.clone(),
        claims,
    }))
}
