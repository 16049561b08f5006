//! Consent endpoints: the effective state of every purpose, and writes (one or many).

use std::net::IpAddr;

use actix_web::{get, post, put, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use validator::Validate;

use crate::audit::Actor;
use crate::auth::{Principal, Role};
use crate::consent::ledger::{
    ConsentChange, ConsentSource, ConsentState, ConsentStates, ConsentStatus,
};
use crate::consent::signals::request_gpc;
use crate::consent::subject::{self, Subject, SubjectId};
use crate::consent::write::{self, ConsentError, ConsentWrite};
use crate::gate::rules::{decide, Decision, DecisionRequest, Reason, SubjectFacts};
use crate::http::responses::{AuthProblems, BodyProblems, ParameterProblems, SubjectNotFound};
use crate::http::subject_path::{SubjectCaller, SubjectPath};
use crate::http::{ApiError, AppState, FieldError, Problem, ValidJson};
use crate::policy::{Basis, Policies};

pub(super) const READERS: [Role; 2] = [Role::Service, Role::Compliance];
pub(super) const WRITERS: [Role; 1] = [Role::Service];
pub(super) const LEDGER_READERS: [Role; 1] = [Role::Compliance];

impl From<ConsentError> for ApiError {
    fn from(err: ConsentError) -> Self {
        match err {
            ConsentError::SubjectNotFound => ApiError::not_found(),
            ConsentError::UnknownPurpose { index, purpose } => {
                let field =
                    index.map_or("purpose".to_owned(), |i| format!("consents[{i}].purpose"));
                ApiError::Validation(vec![FieldError::new(
                    field,
                    "unknown_purpose",
                    format!("`{purpose}` is not a purpose (see GET /v1/purposes)"),
                )])
            }
            ConsentError::NoticeOnly { purpose } => {
                let mut extensions = Map::new();
                extensions.insert("purpose".into(), Value::from(purpose.clone()));
                ApiError::Conflict {
                    detail: format!(
                        "`{purpose}` is strictly necessary (notice only) and cannot be refused."
                    ),
                    extensions,
                }
            }
            ConsentError::StaleNotice {
                current,
                all_current,
            } => {
                let mut extensions = Map::new();
                extensions.insert("current_notice_digest".into(), Value::from(current));
                extensions.insert(
                    "current_notice_digests".into(),
                    Value::Object(
                        all_current
                            .into_iter()
                            .map(|(l, d)| (l, Value::from(d)))
                            .collect(),
                    ),
                );
                ApiError::Conflict {
                    detail: "The notice digest is not that of the current privacy notice; show the current notice and send its digest.".into(),
                    extensions,
                }
            }
            ConsentError::Storage(e) => e.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    Allow,
    Deny,
}

/// The effective state of one purpose for one subject.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentView {
    #[schema(example = "marketing.email")]
    pub purpose: String,
    /// The status of the record relied on (the purpose's own or the nearest ancestor's);
    /// null when there is none.
    pub status: Option<ConsentStatus>,
    pub effective: Effect,
    pub reason: Reason,
    pub basis: Basis,
    #[schema(example = "eea")]
    pub jurisdiction: String,
    pub source: Option<ConsentSource>,
    /// The ledger record relied on.
    pub record_id: Option<String>,
    /// Set when the record is an ancestor purpose's (`marketing` for `marketing.email`).
    pub inherited_from: Option<String>,
    pub purpose_version: Option<u32>,
    pub notice_digest: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl ConsentView {
    pub fn new(purpose: &str, decision: &Decision) -> Self {
        let record: Option<&ConsentState> = decision.record.as_ref();
        Self {
            purpose: purpose.to_owned(),
            status: record.map(|r| r.status),
            effective: if decision.allowed {
                Effect::Allow
            } else {
                Effect::Deny
            },
            reason: decision.reason,
            basis: decision.basis,
            jurisdiction: decision.jurisdiction.clone(),
            source: record.map(|r| r.source),
            record_id: record.map(|r| r.record_id.clone()),
            inherited_from: decision.inherited_from(purpose).map(str::to_owned),
            purpose_version: record.map(|r| r.purpose_version),
            notice_digest: record.and_then(|r| r.notice_digest.clone()),
            updated_at: record.map(|r| r.updated_at),
            expires_at: record.and_then(|r| r.expires_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentList {
    pub subject_id: String,
    #[schema(example = "eea")]
    pub jurisdiction: String,
    pub policy_revision: String,
    pub consents: Vec<ConsentView>,
}

/// The effective state of `purposes` (all when `None`), by the gate's rule function.
pub fn consent_views(
    policies: &Policies,
    subject: &Subject,
    states: &ConsentStates,
    only: Option<&[String]>,
    gpc: bool,
    now: DateTime<Utc>,
) -> Vec<ConsentView> {
    let facts = SubjectFacts::new(policies, Some(subject), false, states, None);
    policies
        .purposes()
        .iter()
        .filter(|p| only.is_none_or(|keys| keys.contains(&p.key)))
        .map(|purpose| {
            let request = DecisionRequest {
                purpose,
                channel: None,
                data_categories: &[],
                gpc,
                now,
            };
            ConsentView::new(&purpose.key, &decide(policies, &facts, &request))
        })
        .collect()
}

/// Every purpose's effective state for a subject, with the reason, basis and record.
///
/// A `Sec-GPC: 1` header records, once, an opt-out of every purpose that GPC governs.
#[utoipa::path(
    tag = "consents",
    params(
        SubjectPath,
        ("Sec-GPC" = Option<String>, Header, description = "`1`: a Global Privacy Control signal"),
    ),
    responses((status = 200, description = "Effective state per purpose", body = ConsentList), SubjectNotFound, ParameterProblems, AuthProblems),
    security(("bearer" = [])),
)]
#[get("/v1/subjects/{id}/consents")]
pub async fn list_consents(
    state: web::Data<AppState>,
    caller: SubjectCaller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let access = caller.access(&READERS, true)?;
    let SubjectCaller { id, principal } = caller;
    let (now, gpc, actor) = (
        state.clock.now(),
        request_gpc(&req) && !access.is_hidden(),
        Actor::from(&principal),
    );
    let evidence = crate::http::client_ip::request_evidence(&state, &req, None);
    let policies = state.policies.clone();
    let subject_id = id.clone();
    let pseudonyms = state.pseudonyms.clone();
    let loaded = state
        .db
        .run(move |conn| {
            let request =
                ConsentWrite::without_changes(&id, &actor, &pseudonyms, &evidence, gpc, now);
            write::load_recording_gpc(conn, &policies, &request)
        })
        .await?;
    if gpc {
        state.gate.changed(&subject_id).await;
    }
    let Some((subject, states)) = loaded.filter(|_| !access.is_hidden()) else {
        return Err(ApiError::not_found());
    };
    Ok(HttpResponse::Ok().json(ConsentList {
        subject_id: subject.id.to_string(),
        jurisdiction: subject.jurisdiction(&state.policies).to_owned(),
        policy_revision: state.policies.revision.clone(),
        consents: consent_views(
            &state.policies,
            &subject,
            &states,
            None,
            request_gpc(&req),
            now,
        ),
    }))
}

/// Sources a caller may give; signal sources are recorded by Consentry itself.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WriteSource {
    Portal,
    Api,
    Import,
    Survey,
}

impl From<WriteSource> for ConsentSource {
    fn from(source: WriteSource) -> Self {
        match source {
            WriteSource::Portal => ConsentSource::Portal,
            WriteSource::Api => ConsentSource::Api,
            WriteSource::Import => ConsentSource::Import,
            WriteSource::Survey => ConsentSource::Survey,
        }
    }
}

fn validate_digest(digest: &str) -> Result<(), validator::ValidationError> {
    if digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(validator::ValidationError::new("invalid")
            .with_message("must be a SHA-256 digest: 64 hexadecimal characters".into()))
    }
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"status": "granted", "source": "portal", "notice_digest": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}))]
pub struct ConsentRequest {
    /// `denied` refuses or withdraws.
    pub status: ConsentStatus,
    pub source: WriteSource,
    /// SHA-256 (hex) of the privacy notice text the customer was shown.
    #[validate(custom(function = "validate_digest"))]
    #[schema(pattern = "^[0-9a-fA-F]{64}$", min_length = 64, max_length = 64)]
    pub notice_digest: Option<String>,
    /// The customer's IP address, stated by a service that records the consent on their
    /// behalf (services only). Kept hashed, marked as asserted by that service; without
    /// it the evidence is the connection's address.
    #[schema(schema_with = client_ip_schema)]
    pub client_ip: Option<IpAddr>,
}

fn client_ip_schema() -> utoipa::openapi::Schema {
    crate::http::schemas::ip_address(
        "The customer's IP address, stated by a service that records the consent on their behalf (services only). Kept hashed, marked as asserted by that service; without it the evidence is the connection's address.",
    )
}

#[derive(Debug, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchConsentItem {
    #[schema(example = "marketing.email", min_length = 1, max_length = 200)]
    #[validate(length(min = 1, max = 200))]
    pub purpose: String,
    pub status: ConsentStatus,
    pub source: WriteSource,
    /// SHA-256 (hex) of the privacy notice text the customer was shown.
    #[validate(custom(function = "validate_digest"))]
    #[schema(pattern = "^[0-9a-fA-F]{64}$", min_length = 64, max_length = 64)]
    pub notice_digest: Option<String>,
}

impl BatchConsentItem {
    /// The change this item asks for; digests compare in lower case.
    pub(crate) fn into_change(self) -> ConsentChange {
        ConsentChange {
            purpose: self.purpose,
            status: self.status,
            source: self.source.into(),
            notice_digest: self.notice_digest.map(|d| d.to_ascii_lowercase()),
        }
    }
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"consents": [
    {"purpose": "marketing.email", "status": "granted", "source": "portal"},
    {"purpose": "analytics", "status": "denied", "source": "portal"}
]}))]
pub struct BatchConsentRequest {
    /// 1–100 purposes, each at most once; written all or nothing.
    #[validate(length(min = 1, max = 100), nested)]
    #[schema(min_items = 1, max_items = 100)]
    pub consents: Vec<BatchConsentItem>,
    /// The customer's IP address, stated by a service that records the consent on their
    /// behalf (services only). Kept hashed, marked as asserted by that service; without
    /// it the evidence is the connection's address.
    #[schema(schema_with = client_ip_schema)]
    pub client_ip: Option<IpAddr>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchConsentResponse {
    /// The effective state of each purpose written, in request order.
    pub consents: Vec<ConsentView>,
}

async fn write_consents(
    state: &AppState,
    principal: &Principal,
    req: &HttpRequest,
    id: SubjectId,
    changes: Vec<ConsentChange>,
    client_ip: Option<IpAddr>,
) -> Result<Vec<ConsentView>, ApiError> {
    let access = principal.subject_access(&WRITERS, true, id.as_str());
    access.check_role()?;
    if client_ip.is_some() && principal.role != Role::Service {
        return Err(ApiError::invalid(
            "client_ip",
            "only a service writing on a customer's behalf may state their address",
        ));
    }
    write::check_purposes(&state.policies, &changes, changes.len() > 1)?;
    if access.is_hidden() {
        state.db.run(move |conn| subject::find(conn, &id)).await?;
        return Err(ApiError::not_found());
    }
    let (now, gpc) = (state.clock.now(), request_gpc(req));
    let actor = Actor::from(principal);
    let evidence = crate::http::client_ip::request_evidence(state, req, client_ip);
    let policies = state.policies.clone();
    let keys: Vec<String> = changes.iter().map(|c| c.purpose.clone()).collect();
    let subject_id = id.clone();
    let pseudonyms = state.pseudonyms.clone();
    let written = state
        .db
        .write(subject_id.as_str(), move |conn| {
            let request = ConsentWrite {
                subject: &id,
                changes: &changes,
                actor: &actor,
                pseudonyms: &pseudonyms,
                evidence: &evidence,
                gpc,
                now,
            };
            write::write(conn, &policies, &request)
        })
        .await?;
    state.gate.changed(&subject_id).await;
    let mut views = consent_views(
        &state.policies,
        &written.subject,
        &written.states,
        Some(&keys),
        gpc,
        now,
    );
    views.sort_by_key(|v| keys.iter().position(|k| *k == v.purpose));
    Ok(views)
}

/// Records a consent, a refusal or a withdrawal (`denied`) for one purpose.
///
/// Appends to the ledger and updates the current state in one transaction, with the
/// purpose version, notice digest, actor and evidence. A notice-only purpose cannot be
/// denied (409); a notice digest that is not current is 409 with the current one.
#[utoipa::path(
    tag = "consents",
    params(
        SubjectPath,
        ("purpose" = String, Path, description = "A purpose key"),
        ("Sec-GPC" = Option<String>, Header, description = "`1`: a Global Privacy Control signal"),
    ),
    request_body = ConsentRequest,
    responses(
        (status = 200, description = "The purpose's new effective state", body = ConsentView),
        (status = 409, description = "Notice-only purpose denied, or a stale notice digest", body = Problem, content_type = "application/problem+json"),
        SubjectNotFound, BodyProblems, AuthProblems,
    ),
    security(("bearer" = [])),
)]
#[put("/v1/subjects/{id}/consents/{purpose}")]
pub async fn put_consent(
    state: web::Data<AppState>,
    caller: SubjectCaller,
    path: web::Path<(String, String)>,
    body: ValidJson<ConsentRequest>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    // The role is checked by write_consents, after the purposes are.
    let SubjectCaller { id, principal } = caller;
    let (_, purpose) = path.into_inner();
    let body = body.into_inner();
    let change = ConsentChange {
        purpose,
        status: body.status,
        source: body.source.into(),
        notice_digest: body.notice_digest.map(|d| d.to_ascii_lowercase()),
    };
    let mut views =
        write_consents(&state, &principal, &req, id, vec![change], body.client_ip).await?;
    Ok(HttpResponse::Ok().json(views.pop()))
}

/// Each purpose a batch gives a second time (a batch names a purpose at most once).
pub(crate) fn duplicate_purposes(items: &[BatchConsentItem]) -> Vec<FieldError> {
    let mut duplicates = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if items[..i]
            .iter()
            .any(|earlier| earlier.purpose == item.purpose)
        {
            duplicates.push(FieldError::new(
                format!("consents[{i}].purpose"),
                "duplicate",
                format!("`{}` is given twice", item.purpose),
            ));
        }
    }
    duplicates
}

/// Records several consents at once, all or nothing.
#[utoipa::path(
    tag = "consents",
    params(
        SubjectPath,
        ("Sec-GPC" = Option<String>, Header, description = "`1`: a Global Privacy Control signal"),
    ),
    request_body = BatchConsentRequest,
    responses(
        (status = 200, description = "The effective state of each purpose written", body = BatchConsentResponse),
        (status = 409, description = "A notice-only purpose denied, or a stale notice digest; nothing was written", body = Problem, content_type = "application/problem+json"),
        SubjectNotFound, BodyProblems, AuthProblems,
    ),
    security(("bearer" = [])),
)]
#[post("/v1/subjects/{id}/consents")]
pub async fn post_consents(
    state: web::Data<AppState>,
    caller: SubjectCaller,
    body: ValidJson<BatchConsentRequest>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let SubjectCaller { id, principal } = caller;
    let BatchConsentRequest {
        consents: items,
        client_ip,
    } = body.into_inner();
    let duplicates = duplicate_purposes(&items);
    if !duplicates.is_empty() {
        return Err(ApiError::Validation(duplicates));
    }
    let changes = items
        .into_iter()
        .map(BatchConsentItem::into_change)
        .collect();
    let consents = write_consents(&state, &principal, &req, id, changes, client_ip).await?;
    Ok(HttpResponse::Ok().json(BatchConsentResponse { consents }))
}
