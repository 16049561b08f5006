//! `GET /v1/subjects/{id}/consents/history`: the consent ledger, newest first, by cursor.

use actix_web::{get, web, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::consents::LEDGER_READERS;
use crate::consent::ledger::{self, ConsentRecord, ConsentSource, ConsentStatus, IpSource};
use crate::consent::subject::{self};
use crate::http::responses::{AuthProblems, SubjectNotFound};
use crate::http::subject_path::{SubjectCaller, SubjectPath};
use crate::http::{ApiError, AppState, Problem};
use crate::storage::StorageError;

#[derive(Debug, Deserialize, IntoParams, Validate)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Rows per page (1–200, default 50).
    #[validate(range(min = 1, max = 200))]
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
    /// Only this purpose's records.
    pub purpose: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActorView {
    #[schema(example = "service")]
    pub role: String,
    #[schema(example = "recommendations")]
    pub id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentRecordView {
    pub id: String,
    pub purpose: String,
    pub status: ConsentStatus,
    pub source: ConsentSource,
    pub purpose_version: u32,
    pub notice_digest: Option<String>,
    pub actor: ActorView,
    /// HMAC-SHA-256 of the client IP with the service's secret.
    pub ip_hash: Option<String>,
    /// Who vouches for that address: `peer` (the connection), `proxy` (a trusted
    /// proxy's forwarding header) or `asserted` (the actor stated it).
    pub ip_source: Option<IpSource>,
    pub user_agent: Option<String>,
    pub recorded_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl From<ConsentRecord> for ConsentRecordView {
    fn from(r: ConsentRecord) -> Self {
        Self {
            id: r.id,
            purpose: r.purpose,
            status: r.status,
            source: r.source,
            purpose_version: r.purpose_version,
            notice_digest: r.notice_digest,
            actor: ActorView {
                role: r.actor_role,
                id: r.actor_id,
            },
            ip_hash: r.ip_hash,
            ip_source: r.ip_source,
            user_agent: r.user_agent,
            recorded_at: r.recorded_at,
            expires_at: r.expires_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentHistory {
    /// Newest first.
    pub items: Vec<ConsentRecordView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

fn encode_cursor(seq: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("seq:{seq}"))
}

fn decode_cursor(cursor: &str) -> Result<i64, ApiError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix("seq:").and_then(|n| n.parse().ok()))
        .ok_or_else(|| ApiError::invalid("cursor", "not a cursor this API returned"))
}

/// The consent ledger, newest first, paginated by cursor.
#[utoipa::path(
    tag = "consents",
    params(SubjectPath, HistoryQuery),
    responses(
        (status = 200, description = "A page of the ledger", body = ConsentHistory),
        (status = 422, description = "A bad limit, cursor or purpose", body = Problem, content_type = "application/problem+json"),
        SubjectNotFound, AuthProblems,
    ),
    security(("bearer" = [])),
)]
#[get("/v1/subjects/{id}/consents/history")]
pub async fn consent_history(
    state: web::Data<AppState>,
    caller: SubjectCaller,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let access = caller.access(&LEDGER_READERS, true)?;
    let SubjectCaller { id, .. } = caller;
    let query = query.into_inner();
    query.validate()?;
    let before = query.cursor.as_deref().map(decode_cursor).transpose()?;
    if let Some(purpose) = &query.purpose {
        if state.policies.purpose(purpose).is_none() {
            return Err(ApiError::invalid(
                "purpose",
                format!("`{purpose}` is not a purpose"),
            ));
        }
    }
    let limit = query.limit.unwrap_or(50);
    let page = state
        .db
        .run(move |conn| {
            if subject::find(conn, &id)?.is_none() {
                return Ok(None);
            }
            // One more than asked, to know whether there is a next page.
            ledger::history(conn, &id, query.purpose.as_deref(), before, limit + 1).map(Some)
        })
        .await
        .map_err(|e: StorageError| ApiError::from(e))?;
    let Some(mut records) = page.filter(|_| !access.is_hidden()) else {
        return Err(ApiError::not_found());
    };
    let next_cursor = if records.len() as i64 > limit {
        records.truncate(limit as usize);
        records.last().map(|r| encode_cursor(r.seq))
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(ConsentHistory {
        items: records.into_iter().map(ConsentRecordView::from).collect(),
        next_cursor,
    }))
}
