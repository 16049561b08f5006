//! The gate's endpoints: decisions (one and batch) and the reverse proxy. What they share
//! is here: the subject's snapshot after any GPC signal the request carries is recorded,
//! and counting a decision.

pub mod decisions;
pub mod proxy;

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
use crate::http::{ApiError, AppState};
use crate::policy::Channel;

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
