//! The gate's endpoints: decisions (one and batch) and the reverse proxy. What they share
//! is here: the subject's snapshot after any GPC signal the request carries is recorded,
//! and counting a decision.

pub mod contacts;
pub mod decisions;
pub mod proxy;
pub mod reach;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use actix_web::HttpRequest;
use chrono::{DateTime, Utc};

use super::decision_log;
use super::rules::Decision;
use super::service::pending_gpc;
use crate::audit::Actor;
use crate::auth::Principal;
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

/// Counts a decision in the metrics and offers it to the sampled log, as a pseudonym.
pub fn observe(
    state: &AppState,
    subject: &SubjectId,
    purpose: &str,
    channel: Option<&Channel>,
    decision: &Decision,
    now: DateTime<Utc>,
) {
    state.gate.count(purpose, decision);
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

/// The snapshots of a batch's subjects, after recording the GPC opt-outs the request
/// carries for each (once per subject).
pub async fn snapshots_for_batch(
    state: &AppState,
    principal: &Principal,
    req: &HttpRequest,
    ids: &[&SubjectId],
    gpc: bool,
    now: DateTime<Utc>,
) -> Result<HashMap<String, Arc<SubjectSnapshot>>, ApiError> {
    let mut snapshots = state.gate.snapshots(&state.db, ids).await?;
    if !gpc {
        return Ok(snapshots);
    }
    let mut seen = HashSet::new();
    for id in ids.iter().filter(|id| seen.insert(id.as_str())) {
        let snapshot = snapshots.get(id.as_str()).cloned().unwrap_or_default();
        let fresh = apply_gpc(
            state,
            id,
            snapshot,
            Actor::from(principal),
            crate::http::client_ip::request_evidence(state, req, None),
            now,
        )
        .await?;
        snapshots.insert(id.to_string(), fresh);
    }
    Ok(snapshots)
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

/// The subject and purpose a gate question names, each problem pushed to `errors` under
/// `prefix`.
pub(crate) fn subject_and_purpose<'p>(
    policies: &'p Policies,
    subject_id: &str,
    purpose: &str,
    prefix: &str,
    errors: &mut Vec<FieldError>,
) -> (Option<SubjectId>, Option<&'p Purpose>) {
    let subject = SubjectId::parse(subject_id)
        .map_err(|m| errors.push(FieldError::new(format!("{prefix}subject_id"), "invalid", m)))
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
