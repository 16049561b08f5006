//! `POST /v1/subjects/{id}/signals` and `POST /v1/signals` (the subject named in the
//! body, perhaps by an identifier): the opt-outs privacy signals carry (US Privacy, GPP,
//! GPC).

use actix_web::{post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::consents::WRITERS;
use crate::audit::Actor;
use crate::auth::{Principal, Role};
use crate::consent::identifiers::{subject_ref, IdentifierInput};
use crate::consent::ledger::ConsentSource;
use crate::consent::signals::{self, request_gpc};
use crate::consent::subject::{self};
use crate::consent::write::{self, ConsentError, ConsentWrite};
use crate::consent::SubjectId;
use crate::http::responses::{AuthProblems, BodyProblems, SubjectNotFound};
use crate::http::subject_path::{SubjectCaller, SubjectPath};
use crate::http::{ApiError, AppState, FieldError, ValidJson};

const SERVICES: [Role; 1] = [Role::Service];

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"usp": "1YYN", "gpp": "DBABLA~BVVVVVVVVWA.YA"}))]
pub struct SignalsRequest {
    /// An IAB US Privacy string, e.g. `1YYN`.
    #[validate(length(max = 16))]
    #[schema(max_length = 16, pattern = "^1[YN-]{3}$")]
    pub usp: Option<String>,
    /// An IAB Global Privacy Platform string; its US sections (uspv1, usnat and the
    /// state sections such as usca, usva, usco) are read, other sections checked and
    /// ignored.
    #[validate(length(max = 8192))]
    #[schema(max_length = 8192)]
    pub gpp: Option<String>,
    /// A Global Privacy Control signal relayed by a service.
    pub gpc: Option<bool>,
}

/// Signals for a subject named in the body.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"identifier": {"type": "crm_id", "value": "CRM-00012345"}, "usp": "1YYN"}))]
pub struct NamedSignalsRequest {
    /// The subject; or name them by `identifier` instead (exactly one of the two).
    #[schema(schema_with = crate::http::subject_path::optional_subject_id_schema)]
    pub subject_id: Option<String>,
    /// An identifier the subject is known by, instead of `subject_id`.
    pub identifier: Option<IdentifierInput>,
    /// An IAB US Privacy string, e.g. `1YYN`.
    #[validate(length(max = 16))]
    #[schema(max_length = 16, pattern = "^1[YN-]{3}$")]
    pub usp: Option<String>,
    /// An IAB Global Privacy Platform string (see `POST /v1/subjects/{id}/signals`).
    #[validate(length(max = 8192))]
    #[schema(max_length = 8192)]
    pub gpp: Option<String>,
    /// A Global Privacy Control signal relayed by a service.
    pub gpc: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecordedOptOut {
    pub purpose: String,
    pub source: ConsentSource,
    pub record_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SignalsResponse {
    /// What each signal said.
    pub usp: Option<signals::OptOuts>,
    pub gpp: Option<signals::OptOuts>,
    /// Opt-outs recorded now; purposes already refused are not recorded again.
    pub recorded: Vec<RecordedOptOut>,
    /// What was accepted but not acted on, and why (e.g. a GPP string with only TCF
    /// sections).
    pub notes: Vec<String>,
}

/// Why a decoded GPP string recorded nothing, if it carries no US section.
fn gpp_note(gpp: &signals::OptOuts) -> Option<String> {
    gpp.has_no_us_section().then(|| {
        let ignored = if gpp.ignored_sections.is_empty() {
            "no sections".to_string()
        } else {
            format!("only {}", gpp.ignored_sections.join(", "))
        };
        format!(
            "the GPP string carries {ignored} and no US section (uspv1, usnat or a state's); nothing was recorded from it"
        )
    })
}

/// Records the opt-outs carried by privacy signals (US Privacy, GPP, GPC).
///
/// Every string is decoded before anything is written: a malformed one (one the IAB's
/// reference library refuses, or a US Privacy string that is not `1` then `Y`, `N` or
/// `-` three times) is 422 naming it, and nothing is recorded. A valid GPP string with
/// no US section (TCF EU or Canada only) is 200 and records nothing; `notes` says so.
#[utoipa::path(
    tag = "consents",
    params(
        SubjectPath,
        ("Sec-GPC" = Option<String>, Header, description = "`1`: a Global Privacy Control signal"),
    ),
    request_body = SignalsRequest,
    responses((status = 200, description = "Decoded signals and the opt-outs recorded", body = SignalsResponse), SubjectNotFound, BodyProblems, AuthProblems),
    security(("bearer" = [])),
)]
#[post("/v1/subjects/{id}/signals")]
pub async fn post_signals(
    state: web::Data<AppState>,
    caller: SubjectCaller,
    body: ValidJson<SignalsRequest>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let access = caller.access(&WRITERS, true)?;
    let SubjectCaller { id, principal } = caller;
    let decoded = decode(body.into_inner(), &req)?;
    if access.is_hidden() {
        state.db.run(move |conn| subject::find(conn, &id)).await?;
        return Err(ApiError::not_found());
    }
    record(&state, &principal, &req, id, decoded).await
}

/// The same as a body that names the subject, by id or by an identifier
/// (`PUT /v1/subjects/{id}/identifiers`): for services that know the customer by
/// another key.
#[utoipa::path(
    tag = "consents",
    params(("Sec-GPC" = Option<String>, Header, description = "`1`: a Global Privacy Control signal")),
    request_body = NamedSignalsRequest,
    responses((status = 200, description = "Decoded signals and the opt-outs recorded", body = SignalsResponse), SubjectNotFound, BodyProblems, AuthProblems),
    security(("bearer" = [])),
)]
#[post("/v1/signals")]
pub async fn post_named_signals(
    state: web::Data<AppState>,
    principal: Principal,
    body: ValidJson<NamedSignalsRequest>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(&SERVICES)?;
    let body = body.into_inner();
    let asked = subject_ref(
        &state.policies.identifier_kinds,
        body.subject_id.as_deref(),
        body.identifier.as_ref(),
        "",
    )
    .map_err(|e| ApiError::Validation(vec![e]))?;
    let decoded = decode(
        SignalsRequest {
            usp: body.usp,
            gpp: body.gpp,
            gpc: body.gpc,
        },
        &req,
    )?;
    let Some(id) = state.gate.subject_of(&state.db, &asked).await? else {
        return Err(ApiError::not_found());
    };
    record(&state, &principal, &req, id, decoded).await
}

/// The signals of a request, decoded before anything is written.
struct Decoded {
    usp: Option<signals::OptOuts>,
    gpp: Option<signals::OptOuts>,
    gpc: bool,
}

fn decode(body: SignalsRequest, req: &HttpRequest) -> Result<Decoded, ApiError> {
    let gpc = body.gpc == Some(true) || request_gpc(req);
    if body.usp.is_none() && body.gpp.is_none() && !gpc {
        return Err(ApiError::invalid(
            "body",
            "send at least one of `usp`, `gpp` or `gpc`",
        ));
    }
    let mut errors = Vec::new();
    let usp = body
        .usp
        .as_deref()
        .map(signals::decode_usp)
        .transpose()
        .map_err(|e| errors.push(FieldError::new("usp", "invalid", e)))
        .ok()
        .flatten();
    let gpp = body
        .gpp
        .as_deref()
        .map(signals::decode_gpp)
        .transpose()
        .map_err(|e| errors.push(FieldError::new("gpp", "invalid", e)))
        .ok()
        .flatten();
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    Ok(Decoded { usp, gpp, gpc })
}

async fn record(
    state: &AppState,
    principal: &Principal,
    req: &HttpRequest,
    id: SubjectId,
    decoded: Decoded,
) -> Result<HttpResponse, ApiError> {
    let Decoded { usp, gpp, gpc } = decoded;
    let policies = state.policies.clone();
    let (now, actor, evidence) = (
        state.clock.now(),
        Actor::from(principal),
        crate::http::client_ip::request_evidence(state, req, None),
    );
    let (usp_out, gpp_out) = (usp.clone(), gpp.clone());
    let subject_id = id.clone();
    let pseudonyms = state.pseudonyms.clone();
    let recorded = state
        .db
        .write(subject_id.as_str(), move |conn| {
            let request =
                ConsentWrite::without_changes(&id, &actor, &pseudonyms, &evidence, true, now);
            let mut recorded = Vec::new();
            if let Some(opt_outs) = &usp_out {
                let purposes = opt_outs.purposes(&policies);
                recorded.extend(write::record_signal_opt_outs(
                    conn,
                    &request,
                    &purposes,
                    ConsentSource::Usp,
                )?);
            }
            if let Some(opt_outs) = &gpp_out {
                let purposes = opt_outs.purposes(&policies);
                recorded.extend(write::record_signal_opt_outs(
                    conn,
                    &request,
                    &purposes,
                    ConsentSource::Gpp,
                )?);
            }
            if gpc {
                recorded.extend(write::write(conn, &policies, &request)?.gpc_recorded);
            }
            Ok::<_, ConsentError>(recorded)
        })
        .await?;
    state.gate.changed(&subject_id).await;
    let notes = gpp.as_ref().and_then(gpp_note).into_iter().collect();
    Ok(HttpResponse::Ok().json(SignalsResponse {
        usp,
        gpp,
        notes,
        recorded: recorded
            .into_iter()
            .map(|s| RecordedOptOut {
                purpose: s.purpose,
                source: s.source,
                record_id: s.record_id,
            })
            .collect(),
    }))
}
