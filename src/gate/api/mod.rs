//! The gate's endpoints: decisions (one and batch) and the reverse proxy. What they share
//! is here: the subject's snapshot after any GPC signal the request carries is recorded,
//! and counting a decision.

pub mod contacts;
pub mod decisions;
pub mod proxy;
pub mod reach;

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::HttpRequest;
use chrono::{DateTime, Utc};

use super::decision_log;
use super::rules::Decision;
use super::service::pending_gpc;
use crate::audit::Actor;
use crate::auth::Principal;
use crate::consent::identifiers::{subject_ref, IdentifierInput, SubjectRef};
use crate::consent::ledger::Evidence;
use crate::consent::write::{self, ConsentError, ConsentWrite};
use crate::consent::SubjectId;
use crate::consent::SubjectSnapshot;
use crate::http::{ApiError, AppState, FieldError};
use crate::policy::Channel;
use crate::policy::{Policies, Purpose};

/// Records the GPC opt-outs a `Sec-GPC: 1` request carries for a known subject, if any
/// are still pending, and answers the fresh snapshot.
pub(super) async fn apply_gpc(
    state: &AppState,
    id: &SubjectId,
    snapshot: Arc<SubjectSnapshot>,
    actor: Actor,
    evidence: Evidence,
    now: DateTime<Utc>,
) -> Result<Arc<SubjectSnapshot>, ConsentError> {
    if !pending_gpc(&state.policies, &snapshot) {
        return Ok(snapshot);
    }
    let (policies, subject, pseudonyms) =
        (state.policies.clone(), id.clone(), state.pseudonyms.clone());
    state
        .db
        .run(move |conn| {
            let request =
                ConsentWrite::without_changes(&subject, &actor, &pseudonyms, &evidence, true, now);
            write::load_recording_gpc(conn, &policies, &request)
        })
        .await?;
    state.gate.changed(id).await;
    Ok(state.gate.snapshot(&state.db, id).await?)
}

/// Counts a decision in the metrics and offers it to the sampled log, as a pseudonym (a
/// decision about nobody known is only counted).
pub fn observe(
    state: &AppState,
    subject: Option<&SubjectId>,
    purpose: &str,
    channel: Option<&Channel>,
    decision: &Decision,
    now: DateTime<Utc>,
) {
    state.gate.count(purpose, decision);
    let Some(subject) = subject else {
        return;
    };
    if let Some(log) = state.decision_log.as_ref().filter(|l| l.sampled()) {
        let pseudonym = state.pseudonyms.of(subject.as_str());
        log.offer(decision_log::entry(
            pseudonym,
            purpose,
            channel.map(|c| c.as_str()),
            decision,
            now,
        ));
    }
}

/// The subject's snapshot for a request, after recording the GPC opt-outs the request
/// carries (if any are still pending).
pub async fn snapshot_for_request(
    state: &AppState,
    principal: &Principal,
    req: &HttpRequest,
    subject: &SubjectId,
    gpc: bool,
    now: DateTime<Utc>,
) -> Result<Arc<SubjectSnapshot>, ApiError> {
    let snapshot = state.gate.snapshot(&state.db, subject).await?;
    if !gpc {
        return Ok(snapshot);
    }
    Ok(apply_gpc(
        state,
        subject,
        snapshot,
        Actor::from(principal),
        crate::http::client_ip::request_evidence(state, req, None),
        now,
    )
    .await?)
}

/// Whom a gate question was answered for.
pub struct Resolved {
    /// The subject answered for (after a merge, the subject it became); `None` for an
    /// identifier that names nobody.
    pub subject: Option<SubjectId>,
    pub snapshot: Arc<SubjectSnapshot>,
}

impl Resolved {
    /// The subject, or the identifier as asked when it names nobody (`sub` of a signed
    /// decision).
    pub fn name(&self, asked: &SubjectRef) -> String {
        match (&self.subject, asked) {
            (Some(subject), _) => subject.to_string(),
            (None, SubjectRef::Identifier(i)) => format!("{}:{}", i.kind, i.value),
            (None, SubjectRef::Id(id)) => id.to_string(),
        }
    }
}

/// The subjects a batch names, in order, with their snapshots: ids from the cache (the
/// rest in one database task), identifiers resolved through the gate; then the GPC
/// opt-outs the request carries recorded, once per subject.
pub async fn resolve_all(
    state: &AppState,
    principal: &Principal,
    req: &HttpRequest,
    asked: &[&SubjectRef],
    gpc: bool,
    now: DateTime<Utc>,
) -> Result<Vec<Resolved>, ApiError> {
    let ids: Vec<&SubjectId> = asked
        .iter()
        .filter_map(|r| match r {
            SubjectRef::Id(id) => Some(id),
            SubjectRef::Identifier(_) => None,
        })
        .collect();
    let by_id = state.gate.snapshots(&state.db, &ids).await?;
    let mut resolved = Vec::with_capacity(asked.len());
    for subject_ref in asked {
        resolved.push(match subject_ref {
            SubjectRef::Id(id) => {
                let snapshot = by_id.get(id.as_str()).cloned().unwrap_or_default();
                let subject = snapshot.subject.as_ref().map_or(id, |s| &s.id).clone();
                Resolved {
                    subject: Some(subject),
                    snapshot,
                }
            }
            SubjectRef::Identifier(identifier) => {
                match state.gate.resolve(&state.db, identifier).await? {
                    Some((subject, snapshot)) => Resolved {
                        subject: Some(subject),
                        snapshot,
                    },
                    None => Resolved {
                        subject: None,
                        snapshot: Arc::default(),
                    },
                }
            }
        });
    }
    if gpc {
        let mut fresh: HashMap<String, Arc<SubjectSnapshot>> = HashMap::new();
        for one in &mut resolved {
            let Some(subject) = &one.subject else {
                continue;
            };
            if let Some(done) = fresh.get(subject.as_str()) {
                one.snapshot = done.clone();
                continue;
            }
            let snapshot = apply_gpc(
                state,
                subject,
                one.snapshot.clone(),
                Actor::from(principal),
                crate::http::client_ip::request_evidence(state, req, None),
                now,
            )
            .await?;
            fresh.insert(subject.to_string(), snapshot.clone());
            one.snapshot = snapshot;
        }
    }
    Ok(resolved)
}

/// One subject, as `resolve_all` does it.
pub async fn resolve_one(
    state: &AppState,
    principal: &Principal,
    req: &HttpRequest,
    asked: &SubjectRef,
    gpc: bool,
    now: DateTime<Utc>,
) -> Result<Resolved, ApiError> {
    let mut all = resolve_all(state, principal, req, &[asked], gpc, now).await?;
    Ok(all.remove(0))
}

/// The most items one batch (decisions or reach) carries.
pub const MAX_BATCH: usize = 1000;

/// Checks a batch: 1–1,000 items, each by `check` with its field prefix (`items[3].`).
/// Any bad item fails the whole batch, every problem named.
pub(crate) fn check_batch<I, C>(
    items: Vec<I>,
    mut check: impl FnMut(I, &str) -> Result<C, Vec<FieldError>>,
) -> Result<Vec<C>, ApiError> {
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(ApiError::invalid(
            "items",
            format!("between 1 and {MAX_BATCH} items (got {})", items.len()),
        ));
    }
    let mut checked = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        match check(item, &format!("items[{i}].")) {
            Ok(c) => checked.push(c),
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() {
        Ok(checked)
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// The subject (by id or identifier) and purpose a gate question names, each problem
/// pushed to `errors` under `prefix`.
pub(crate) fn subject_and_purpose<'p>(
    policies: &'p Policies,
    subject_id: Option<&str>,
    identifier: Option<&IdentifierInput>,
    purpose: &str,
    prefix: &str,
    errors: &mut Vec<FieldError>,
) -> (Option<SubjectRef>, Option<&'p Purpose>) {
    let subject = subject_ref(&policies.identifier_kinds, subject_id, identifier, prefix)
        .map_err(|e| errors.push(e))
        .ok();
    let found = policies.purpose(purpose);
    if found.is_none() {
        errors.push(FieldError::new(
            format!("{prefix}purpose"),
            "unknown_purpose",
            format!("`{purpose}` is not a purpose (see GET /v1/purposes)"),
        ));
    }
    (subject, found)
}
