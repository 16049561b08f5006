//! `GET /v1/audit/verify`: re-walks the chain and signs the head.

use actix_web::{get, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::audit::checkpoint;
pub use crate::audit::export::stream::ExportFormat;
use crate::audit::export::stream::{self, ExportRequest, PreparedExport};
use crate::audit::{Actor, READERS};
use crate::auth::Principal;
use crate::http::extract::query_time;
use crate::http::responses::AuthProblems;
use crate::http::{ApiError, AppState, Problem};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VerifyQuery {
    /// First event to check (its predecessor anchors it); default the first.
    #[param(minimum = 1)]
    pub from_seq: Option<i64>,
    /// Last event to check; default the newest.
    pub to_seq: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyReport {
    pub ok: bool,
    pub events_checked: u64,
    /// Signed checkpoints the chain was compared with.
    pub checkpoints_checked: u64,
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
    let keys = state.keys.clone();
    let check = state
        .db
        .run(move |conn| super::verify(conn, &keys, from_seq, to_seq))
        .await?;
    let signed_head = checkpoint::sign_head(
        &state.keys,
        &state.receipts.issuer,
        &check,
        state.clock.now(),
    )
    .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(HttpResponse::Ok().json(VerifyReport {
        ok: check.ok(),
        events_checked: check.checked,
        checkpoints_checked: check.checkpoints_checked,
        head_seq: check.head_seq,
        head_hash: check.head_hash.clone(),
        first_bad_seq: check.first_bad_seq,
        problem: check.problem.clone(),
        signed_head,
    }))
}

fn from_schema() -> utoipa::openapi::Schema {
    crate::http::schemas::query_time(
        "Events at or after this time: a date (midnight UTC) or RFC 3339, at most six fractional digits.",
        Some(6),
    )
}

fn to_schema() -> utoipa::openapi::Schema {
    crate::http::schemas::query_time(
        "Events at or before this time (inclusive), in the same forms.",
        Some(6),
    )
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Events at or after this time: a date (midnight UTC) or RFC 3339, at most six
    /// fractional digits.
    #[param(schema_with = from_schema)]
    pub from: Option<String>,
    /// Events at or before this time (inclusive), in the same forms.
    #[param(schema_with = to_schema)]
    pub to: Option<String>,
    /// Only events about this subject id (matched by its pseudonym).
    pub subject: Option<String>,
    /// Only this action, e.g. `consent.denied`.
    pub action: Option<String>,
    /// Only events by this actor id.
    pub actor: Option<String>,
    /// `jsonl` (default) or `csv`.
    pub format: Option<ExportFormat>,
}

/// Streams the audit log (constant memory), with what is needed to verify it offline:
/// every event in the covered range, in full when it matches and as a link otherwise, and
/// a closing checkpoint whose signature (the service's key) covers the last hash and the
/// header's filters and range. `consentry audit verify FILE --jwks JWKS` checks it; the
/// format is in `docs/audit-export.md`. The export is itself audited.
#[utoipa::path(
    tag = "audit",
    params(ExportQuery),
    responses(
        (status = 200, description = "JSON Lines (`application/jsonl`) or CSV, streamed", content((String = "application/jsonl"), (String = "text/csv"))),
        (status = 422, description = "A bad time or format", body = Problem, content_type = "application/problem+json"),
        AuthProblems,
    ),
    security(("bearer" = [])),
)]
#[get("/v1/audit/events")]
pub async fn export(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(&READERS)?;
    let query = query.into_inner();
    let format = query.format.unwrap_or(ExportFormat::Jsonl);
    let request = ExportRequest {
        from: export_time("from", query.from.as_deref())?,
        to: export_time("to", query.to.as_deref())?,
        subject: query.subject,
        action: query.action,
        actor: query.actor,
    };
    let (pseudonyms, actor, now) = (
        state.pseudonyms.clone(),
        Actor::from(&principal),
        state.clock.now(),
    );
    let prepared = state
        .db
        .run(move |conn| stream::prepare(conn, &pseudonyms, &actor, request, now))
        .await?;
    Ok(streamed_export(&state, prepared, format))
}

/// The response that streams a prepared export (the console streams the same way, as a
/// download).
pub fn streamed_export(
    state: &AppState,
    prepared: PreparedExport,
    format: ExportFormat,
) -> HttpResponse {
    crate::http::streamed(
        format.content_type(),
        stream::stream(state.export_sources(), prepared, format),
    )
}

/// Export times are stated to the microsecond, as events are timed.
pub fn export_time(
    field: &str,
    value: Option<&str>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    query_time(field, value)
        .map_err(|e| ApiError::Validation(vec![e]))?
        .map(|t| {
            if t.timestamp_subsec_nanos() % 1_000 == 0 {
                Ok(t)
            } else {
                Err(ApiError::invalid(field, "at most six fractional digits"))
            }
        })
        .transpose()
}
