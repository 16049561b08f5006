//! `GET /v1/audit/verify`: re-walks the chain and signs the head.

use actix_web::{get, web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Principal, Role};
use crate::http::extract::query_time;
use crate::http::responses::AuthProblems;
use crate::http::{ApiError, AppState, Problem};

const READERS: [Role; 1] = [Role::Compliance];

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
        checkpoints_checked: check.checkpoints_checked,
        head_seq: check.head_seq,
        head_hash: check.head_hash.clone(),
        first_bad_seq: check.first_bad_seq,
        problem: check.problem.clone(),
        signed_head,
    }))
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Jsonl,
    Csv,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Events at or after this time: a date (midnight UTC) or RFC 3339, at most six
    /// fractional digits.
    pub from: Option<String>,
    /// Events at or before this time (inclusive), in the same forms.
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

const PAGE: i64 = 1_000;

enum Phase {
    Header,
    Events { next: i64, last: i64 },
    Checkpoint,
    Done,
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
    use futures_util::stream;

    use super::export::{csv_record, ExportHeader, ExportLine, CSV_HEADER, EXPORT_VERSION};

    principal.require(&READERS)?;
    let query = query.into_inner();
    let format = query.format.unwrap_or(ExportFormat::Jsonl);
    // Events are timed to the microsecond, and the export states its times that way.
    let time = |field: &str, value: Option<&str>| -> Result<Option<_>, ApiError> {
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
    };
    let filter = super::ExportFilter {
        from: time("from", query.from.as_deref())?,
        to: time("to", query.to.as_deref())?,
        subject_pseudonym: query.subject.as_deref().map(|s| state.pseudonyms.of(s)),
        action: query.action.clone(),
        actor: query.actor.clone(),
    };
    let now = state.clock.now();
    let (pseudonyms, actor) = (state.pseudonyms.clone(), super::Actor::from(&principal));
    let (subject, actor_filter) = (query.subject, query.actor);
    let (filter, range) = state
        .db
        .run(move |conn| {
            let mut filter = filter;
            // The export is about the subject it filters on (or the customer it names as
            // actor, who acted under their pseudonym): its event carries the pseudonym, and
            // raw ids only where erasure empties them.
            let mut about = subject;
            if let Some(id) = actor_filter {
                if super::names_subject(conn, &pseudonyms, &id)? {
                    filter.actor = Some(pseudonyms.of(&id));
                    about = about.or(Some(id));
                }
            }
            super::record_alone(
                conn,
                &pseudonyms,
                super::AuditEntry {
                    actor: &actor,
                    action: "audit.exported",
                    subject_id: about.as_deref(),
                    payload: serde_json::to_value(&filter).unwrap_or_default(),
                    at: now,
                },
            )?;
            let range = super::export_range(conn, &filter)?;
            Ok::<_, crate::storage::StorageError>((filter, range))
        })
        .await?;
    let claims = ExportHeader {
        version: EXPORT_VERSION.to_owned(),
        exported_at: super::chain::timestamp(now),
        filters: filter.clone(),
        first_seq: range.map(|(first, _)| first),
        last_seq: range.map(|(_, last)| last),
    };
    let header = ExportLine::Header(claims.clone());
    let encode = move |lines: &[ExportLine], with_columns: bool| -> web::Bytes {
        match format {
            ExportFormat::Jsonl => {
                let mut out = String::new();
                for line in lines {
                    out.push_str(&serde_json::to_string(line).unwrap_or_default());
                    out.push('\n');
                }
                web::Bytes::from(out)
            }
            ExportFormat::Csv => {
                let mut writer = csv::WriterBuilder::new()
                    .has_headers(false)
                    .from_writer(Vec::new());
                if with_columns {
                    let _ = writer.write_record(CSV_HEADER);
                }
                for line in lines {
                    let _ = writer.write_record(csv_record(line));
                }
                web::Bytes::from(writer.into_inner().unwrap_or_default())
            }
        }
    };
    let state = state.into_inner();
    let last_link = std::rc::Rc::new(std::cell::RefCell::new(None::<(i64, String)>));
    let body = stream::unfold(Phase::Header, move |phase| {
        let (state, filter, header, claims, last_link) = (
            state.clone(),
            filter.clone(),
            header.clone(),
            claims.clone(),
            last_link.clone(),
        );
        async move {
            match phase {
                Phase::Header => {
                    let next = match range {
                        Some((first, last)) => Phase::Events { next: first, last },
                        None => Phase::Checkpoint,
                    };
                    Some((Ok::<_, actix_web::Error>(encode(&[header], true)), next))
                }
                Phase::Events { next, last } => {
                    let rows = match state
                        .db
                        .run(move |conn| super::page(conn, next, last, PAGE))
                        .await
                    {
                        Ok(rows) => rows,
                        Err(e) => {
                            tracing::error!(error = %e, "audit export stopped");
                            // A cut-short export has no checkpoint, so it cannot pass as whole.
                            return Some((
                                Err(actix_web::error::ErrorInternalServerError("export failed")),
                                Phase::Done,
                            ));
                        }
                    };
                    let lines: Vec<ExportLine> = rows
                        .iter()
                        .map(|e| ExportLine::within(e, &filter))
                        .collect();
                    let next_phase = match rows.last() {
                        Some(e) => {
                            *last_link.borrow_mut() = Some((e.seq, e.hash.clone()));
                            if e.seq >= last {
                                Phase::Checkpoint
                            } else {
                                Phase::Events {
                                    next: e.seq + 1,
                                    last,
                                }
                            }
                        }
                        None => Phase::Checkpoint,
                    };
                    Some((Ok(encode(&lines, false)), next_phase))
                }
                Phase::Checkpoint => {
                    let last = last_link.borrow().clone();
                    let pinned = match last {
                        Some(pinned) => pinned,
                        None => state
                            .db
                            .run(super::chain_head)
                            .await
                            .unwrap_or((0, super::chain::GENESIS.to_owned())),
                    };
                    let now = state.clock.now();
                    // A checkpoint of what the export pins is stored too: every export
                    // pins the head.
                    let sealed = super::checkpoint::sign(&state.keys, pinned.0, &pinned.1, now)
                        .and_then(|stored| {
                            let line = ExportLine::seal(
                                &claims,
                                pinned.0,
                                &pinned.1,
                                state.keys.signing(),
                                now.timestamp(),
                            )?;
                            Ok((stored, line))
                        });
                    let (stored, line) = match sealed {
                        Ok(sealed) => sealed,
                        Err(err) => {
                            // An export without its seal cannot pass as whole: end the
                            // stream with an error instead of an empty signature.
                            tracing::error!(error = %err, "audit export not sealed");
                            return Some((
                                Err(actix_web::error::ErrorInternalServerError(
                                    "the export could not be signed",
                                )),
                                Phase::Done,
                            ));
                        }
                    };
                    if pinned.0 > 0 {
                        if let Err(e) = state
                            .db
                            .run(move |conn| super::checkpoint::store(conn, &stored))
                            .await
                        {
                            tracing::warn!(error = %e, "could not store the export's checkpoint");
                        }
                    }
                    Some((Ok(encode(&[line], false)), Phase::Done))
                }
                Phase::Done => None,
            }
        }
    });
    let content_type = match format {
        ExportFormat::Jsonl => "application/jsonl",
        ExportFormat::Csv => "text/csv; charset=utf-8",
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .streaming(body))
}
