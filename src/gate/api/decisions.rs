//! `POST /v1/decisions` and `POST /v1/decisions/batch`.

use actix_web::{post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::{check_batch, observe, resolve_all, resolve_one, subject_and_purpose, Resolved};
use crate::auth::{Principal, Role};
use crate::consent::identifiers::{IdentifierInput, SubjectRef};
use crate::consent::signals::request_gpc;
use crate::gate::rules::decide_for;
use crate::gate::rules::{DecisionRequest, Reason};
use crate::http::responses::{AuthProblems, BodyProblems};
use crate::http::{ApiError, AppState, FieldError, ValidJson};
use crate::policy::{Basis, Channel, Policies, Purpose};

const CALLERS: [Role; 1] = [Role::Service];
const MAX_CATEGORIES: usize = 50;

#[derive(Debug, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"subject_id": "cust-8412", "purpose": "marketing.email", "channel": "email", "data_categories": ["user.contact.email"], "token": true}))]
pub struct DecisionInput {
    /// The subject; or name them by `identifier` instead (exactly one of the two).
    #[schema(schema_with = crate::http::subject_path::optional_subject_id_schema)]
    pub subject_id: Option<String>,
    /// An identifier the subject is known by (`PUT /v1/subjects/{id}/identifiers`),
    /// instead of `subject_id`.
    pub identifier: Option<IdentifierInput>,
    #[schema(min_length = 1, max_length = 200)]
    pub purpose: String,
    /// A channel of `policies/channels.toml` (`GET /v1/channels`): deny
    /// `channel_opted_out` when the subject opted out of it.
    #[schema(schema_with = crate::consent::preferences::optional_channel_schema)]
    pub channel: Option<String>,
    /// Data categories the caller will use (at most 50); each must be declared by the
    /// purpose.
    #[validate(length(max = 50))]
    #[schema(max_items = 50)]
    pub data_categories: Option<Vec<String>>,
    /// Also return a signed decision token.
    #[serde(default)]
    pub token: bool,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Allow,
    Deny,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionView {
    /// The subject decided for: the one the identifier names, or the one a merged id
    /// became; null when the identifier names nobody.
    #[schema(example = "cust-8412")]
    pub subject_id: Option<String>,
    pub decision: Verdict,
    pub reason: Reason,
    #[schema(example = "marketing.email")]
    pub purpose: String,
    pub basis: Basis,
    #[schema(example = "eea")]
    pub jurisdiction: String,
    /// The revision of the policy files decided under.
    #[schema(example = "3f2a9c01be47")]
    pub policy_version: String,
    /// The purpose's version.
    pub purpose_version: u32,
    /// False when no such subject exists: the default jurisdiction decided.
    pub subject_known: bool,
    /// The ledger record relied on.
    pub record_id: Option<String>,
    pub decided_at: DateTime<Utc>,
    /// A JWT (EdDSA) of this decision, verifiable with `/.well-known/jwks.json`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// A checked request.
pub(crate) struct Checked<'p> {
    pub(crate) subject: SubjectRef,
    pub(crate) purpose: &'p Purpose,
    pub(crate) channel: Option<Channel>,
    pub(crate) categories: Vec<String>,
    pub(crate) token: bool,
}

/// Checks one decision against the policies; only the policies, so that the fuzz target
/// runs exactly this.
pub(crate) fn check<'p>(
    policies: &'p Policies,
    input: DecisionInput,
    prefix: &str,
) -> Result<Checked<'p>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let field = |name: &str| format!("{prefix}{name}");
    let (subject, purpose) = subject_and_purpose(
        policies,
        input.subject_id.as_deref(),
        input.identifier.as_ref(),
        &input.purpose,
        prefix,
        &mut errors,
    );
    let channel = input.channel.as_deref().and_then(|name| {
        policies
            .channels
            .checked(name, field("channel"))
            .map_err(|e| errors.push(e))
            .ok()
    });
    let categories = input.data_categories.unwrap_or_default();
    if categories.len() > MAX_CATEGORIES {
        errors.push(FieldError::new(
            field("data_categories"),
            "length",
            format!("at most {MAX_CATEGORIES}"),
        ));
    }
    for (i, category) in categories.iter().enumerate() {
        if !policies.taxonomy.contains(category) {
            errors.push(FieldError::new(
                field(&format!("data_categories[{i}]")),
                "unknown_category",
                format!("`{category}` is not a data category of the policies"),
            ));
        }
    }
    match (subject, purpose, errors.is_empty()) {
        (Some(subject), Some(purpose), true) => Ok(Checked {
            subject,
            purpose,
            channel,
            categories,
            token: input.token,
        }),
        _ => Err(errors),
    }
}

fn answer(
    state: &AppState,
    checked: &Checked<'_>,
    resolved: &Resolved,
    gpc: bool,
    now: DateTime<Utc>,
) -> Result<DecisionView, ApiError> {
    let snapshot = &resolved.snapshot;
    let request = DecisionRequest {
        purpose: checked.purpose,
        channel: checked.channel.as_ref(),
        data_categories: &checked.categories,
        gpc,
        now,
    };
    let decision = decide_for(&state.policies, snapshot, &request);
    observe(
        state,
        resolved.subject.as_ref(),
        &checked.purpose.key,
        checked.channel.as_ref(),
        &decision,
        now,
    );
    let token = if checked.token {
        Some(
            state
                .gate
                .sign(
                    &state.keys,
                    &resolved.name(&checked.subject),
                    &checked.purpose.key,
                    checked.purpose.version,
                    &decision,
                    &state.policies.revision,
                    now,
                )
                .map_err(|e| ApiError::Internal(anyhow::anyhow!("signing a decision: {e}")))?,
        )
    } else {
        None
    };
    Ok(DecisionView {
        subject_id: resolved.subject.as_ref().map(|s| s.to_string()),
        decision: if decision.allowed {
            Verdict::Allow
        } else {
            Verdict::Deny
        },
        reason: decision.reason,
        purpose: checked.purpose.key.clone(),
        basis: decision.basis,
        jurisdiction: decision.jurisdiction.clone(),
        policy_version: state.policies.revision.clone(),
        purpose_version: checked.purpose.version,
        subject_known: snapshot.subject.is_some(),
        record_id: decision.record.as_ref().map(|r| r.record_id.clone()),
        decided_at: now,
        token,
    })
}

/// May this subject's data be used for this purpose (on this channel, these categories)?
///
/// Answered from the cache for a known subject; a withdrawal is honoured as soon as its
/// write has answered. An unknown subject is decided by the default jurisdiction
/// (`subject_known: false`). With the database unreachable and the subject not cached:
/// 503, never an allow.
#[utoipa::path(
    tag = "decisions",
    params(("Sec-GPC" = Option<String>, Header, description = "`1`: a Global Privacy Control signal")),
    request_body = DecisionInput,
    responses((status = 200, description = "The decision", body = DecisionView), BodyProblems, AuthProblems),
    security(("bearer" = [])),
)]
#[post("/v1/decisions")]
pub async fn decide_one(
    state: web::Data<AppState>,
    principal: Principal,
    body: ValidJson<DecisionInput>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(&CALLERS)?;
    let checked = check(&state.policies, body.into_inner(), "").map_err(ApiError::Validation)?;
    let (now, gpc) = (state.clock.now(), request_gpc(&req));
    let resolved = resolve_one(&state, &principal, &req, &checked.subject, gpc, now).await?;
    Ok(HttpResponse::Ok().json(answer(&state, &checked, &resolved, gpc, now)?))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchInput {
    /// 1–1,000 decisions.
    #[schema(min_items = 1, max_items = 1000)]
    pub items: Vec<DecisionInput>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchView {
    /// One decision per item, in order.
    pub results: Vec<DecisionView>,
}

/// Up to 1,000 decisions at once, answered in order. Any bad item is a 422 naming it
/// (`items[3].purpose`), and nothing is decided.
#[utoipa::path(
    tag = "decisions",
    params(("Sec-GPC" = Option<String>, Header, description = "`1`: a Global Privacy Control signal, for every item")),
    request_body = BatchInput,
    responses((status = 200, description = "The decisions, in order", body = BatchView), BodyProblems, AuthProblems),
    security(("bearer" = [])),
)]
#[post("/v1/decisions/batch")]
pub async fn decide_batch(
    state: web::Data<AppState>,
    principal: Principal,
    body: ValidJson<BatchInput>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(&CALLERS)?;
    let checked = check_batch(body.into_inner().items, |item, prefix| {
        check(&state.policies, item, prefix)
    })?;
    let (now, gpc) = (state.clock.now(), request_gpc(&req));
    let asked: Vec<&SubjectRef> = checked.iter().map(|c| &c.subject).collect();
    let resolved = resolve_all(&state, &principal, &req, &asked, gpc, now).await?;
    let results = checked
        .iter()
        .zip(&resolved)
        .map(|(c, r)| answer(&state, c, r, gpc, now))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(BatchView { results }))
}
