//! `GET /v1/audit/verify`: re-walks the chain and signs the head.

use actix_web::{get, web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Principal, Role};
use crate::http::responses::AuthProblems;
use crate::http::{ApiError, AppState, Problem};

const READERS: [Role; 1] = [Role::Compliance];

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VerifyQuery {
    /// First event to check (its predecessor anchors it); default the first.
    pub from_seq: Option<i64>,
    /// Last event to check; default the newest.
    pub to_seq: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyReport {
    pub ok: bool,
    pub events_checked: u64,
    /// The last event that verified.
    pub head_seq: i64,
    pub head_hash: String,
    /// The first event that does not verify, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad_seq: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// A JWS (EdDSA) over `{head_seq, head_hash, ok, iat}`, checkable with the JWKS.
    pub signed_head: String,
}

/// Re-walks the audit chain and reports the first broken link, if any.
#[utoipa::path(
    tag = "audit",
    params(VerifyQuery),
    responses(
        (status = 200, description = "The verification; `ok` is false when the chain is broken", body = VerifyReport),
        (status = 422, description = "A bad range", body = Problem, content_type = "application/problem+json"),
        AuthProblems,
    ),
    security(("bearer" = [])),
)]
#[get("/v1/audit/verify")]
pub async fn verify(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<VerifyQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(&READERS)?;
    let VerifyQuery { from_seq, to_seq } = query.into_inner();
    if from_seq.is_some_and(|s| s < 1) {
        return Err(ApiError::invalid("from_seq", "must be at least 1"));
    }
    if let (Some(from), Some(to)) = (from_seq, to_seq) {
        if to < from {
            return Err(ApiError::invalid("to_seq", "must not be before from_seq"));
        }
    }
    let check = state
        .db
        .run(move |conn| super::verify(conn, from_seq, to_seq))
        .await?;
    let now = state.clock.now();
    let signing = state.keys.signing();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(signing.kid.clone());
    let claims = json!({
        "iss": state.receipts.issuer,
        "head_seq": check.head_seq,
        "head_hash": check.head_hash,
        "ok": check.ok(),
        "iat": now.timestamp(),
    });
    let signed_head = jsonwebtoken::encode(&header, &claims, signing.encoding_key())
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("signing the audit head: {e}")))?;
    Ok(HttpResponse::Ok().json(VerifyReport {
        ok: check.ok(),
        events_checked: check.checked,
        head_seq: check.head_seq,
        head_hash: check.head_hash.clone(),
        first_bad_seq: check.first_bad_seq,
        problem: check.problem.clone(),
        signed_head,
    }))
}
