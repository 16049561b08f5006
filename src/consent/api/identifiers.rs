//! `GET/PUT /v1/subjects/{id}/identifiers`: the keys other services know a subject by.

use std::collections::BTreeSet;

use actix_web::{get, put, web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map};
use utoipa::ToSchema;
use validator::Validate;

use crate::audit::Actor;
use crate::auth::Role;
use crate::consent::identifiers::{self, Identifier, IdentifierInput, Replaced};
use crate::http::responses::{AuthProblems, BodyProblems, ParameterProblems, SubjectNotFound};
use crate::http::subject_path::{SubjectCaller, SubjectPath};
use crate::http::{ApiError, AppState, FieldError, Problem, ValidJson};
use crate::policy::IdentifierKinds;

const WRITERS: [Role; 2] = [Role::Service, Role::Admin];
const READERS: [Role; 3] = [Role::Service, Role::Admin, Role::Compliance];
const MAX_IDENTIFIERS: usize = 50;

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"identifiers": [
    {"type": "email_sha256", "value": "b4c9a289323b21a01c3e940f150eb9b8c542587f1abfd8f0e1cc1ffc5e475514"},
    {"type": "crm_id", "value": "CRM-00012345"}
]}))]
pub struct IdentifiersInput {
    /// The subject's whole set (at most 50); identifiers left out are removed.
    #[schema(max_items = 50)]
    pub identifiers: Vec<IdentifierInput>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IdentifiersView {
    #[schema(example = "cust-8412")]
    pub subject_id: String,
    /// By type, then value; values as normalised.
    pub identifiers: BTreeSet<Identifier>,
}

fn check(
    kinds: &IdentifierKinds,
    input: IdentifiersInput,
) -> Result<BTreeSet<Identifier>, Vec<FieldError>> {
    let mut errors = Vec::new();
    if input.identifiers.len() > MAX_IDENTIFIERS {
        return Err(vec![FieldError::new(
            "identifiers",
            "too_many",
            format!("at most {MAX_IDENTIFIERS}"),
        )]);
    }
    let mut set = BTreeSet::new();
    for (i, raw) in input.identifiers.iter().enumerate() {
        match raw.checked(kinds, &format!("identifiers[{i}]")) {
            Ok(identifier) if set.contains(&identifier) => errors.push(FieldError::new(
                format!("identifiers[{i}]"),
                "duplicate",
                "listed twice (after normalisation)",
            )),
            Ok(identifier) => {
                set.insert(identifier);
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(set)
    } else {
        Err(errors)
    }
}

/// The identifiers a subject is known by (also to the subject themself).
#[utoipa::path(
    tag = "subjects",
    params(SubjectPath),
    responses((status = 200, description = "The identifiers", body = IdentifiersView), SubjectNotFound, ParameterProblems, AuthProblems),
    security(("bearer" = [])),
)]
#[get("/v1/subjects/{id}/identifiers")]
pub async fn get_identifiers(
    state: web::Data<AppState>,
    caller: SubjectCaller,
) -> Result<HttpResponse, ApiError> {
    let access = caller.access(&READERS, true)?;
    let id = caller.id;
    let lookup = id.clone();
    let found = state
        .db
        .run(move |conn| {
            if crate::consent::subject::find(conn, &lookup)?.is_none() {
                return Ok::<_, crate::storage::StorageError>(None);
            }
            identifiers::of_subject(conn, lookup.as_str()).map(Some)
        })
        .await?;
    let Some(identifiers) = found.filter(|_| !access.is_hidden()) else {
        return Err(ApiError::not_found());
    };
    Ok(HttpResponse::Ok().json(IdentifiersView {
        subject_id: id.to_string(),
        identifiers,
    }))
}

/// Replaces the identifiers a subject is known by. Types come from
/// `policies/identifiers.toml`; e-mail addresses and phone numbers only as SHA-256 of
/// the normalised value (a raw one is 422). One identifier names one subject: one that
/// already names another is 409, and only an admin is told whose it is.
#[utoipa::path(
    tag = "subjects",
    params(SubjectPath),
    request_body = IdentifiersInput,
    responses(
        (status = 200, description = "The new identifiers", body = IdentifiersView),
        (status = 409, description = "An identifier names another subject (`owner` only for an admin)", body = Problem, content_type = "application/problem+json"),
        SubjectNotFound, BodyProblems, AuthProblems),
    security(("bearer" = [])),
)]
#[put("/v1/subjects/{id}/identifiers")]
pub async fn put_identifiers(
    state: web::Data<AppState>,
    caller: SubjectCaller,
    body: ValidJson<IdentifiersInput>,
) -> Result<HttpResponse, ApiError> {
    caller.access(&WRITERS, false)?;
    let SubjectCaller { id, principal } = caller;
    let wanted =
        check(&state.policies.identifier_kinds, body.into_inner()).map_err(ApiError::Validation)?;
    let (now, actor) = (state.clock.now(), Actor::from(&principal));
    let pseudonyms = state.pseudonyms.clone();
    let subject = id.clone();
    let replaced = state
        .db
        .write(id.as_str(), move |conn| {
            identifiers::replace(conn, &pseudonyms, &actor, &subject, &wanted, now)
        })
        .await?;
    match replaced {
        Replaced::NoSuchSubject => Err(ApiError::not_found()),
        Replaced::Saved(identifiers) => {
            state.gate.changed(&id).await;
            Ok(HttpResponse::Ok().json(IdentifiersView {
                subject_id: id.to_string(),
                identifiers,
            }))
        }
        Replaced::Taken { identifier, owner } => {
            let mut extensions = Map::new();
            extensions.insert("field".into(), json!("identifiers"));
            extensions.insert("identifier".into(), json!(identifier));
            if principal.role == Role::Admin {
                extensions.insert("owner".into(), json!(owner));
            }
            Err(ApiError::Conflict {
                detail: format!(
                    "The {} identifier already names another subject.",
                    identifier.kind
                ),
                extensions,
            })
        }
    }
}
