//! `GET/PATCH /v1/subjects/{id}/profile`.

use std::collections::BTreeMap;

use actix_web::{get, patch, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::openapi::schema::{Object, ObjectBuilder, OneOfBuilder, Ref, Schema, Type};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use super::attributes::{self, AttributeChange, Attributes};
use super::changes::{check_changes, AttributeInput};
use crate::audit::{self, Actor, AuditEntry};
use crate::auth::Role;
use crate::consent::ledger::lock_subject;
use crate::consent::signals::request_gpc;
use crate::consent::write::{self, ConsentError, ConsentWrite};
use crate::consent::SubjectId;
use crate::gate::rules::{decide, DecisionRequest, SubjectFacts};
use crate::http::responses::{AuthProblems, BodyProblems, SubjectNotFound};
use crate::http::subject_path::{SubjectCaller, SubjectPath};
use crate::http::{ApiError, AppState, Problem, ValidJson};
use crate::storage::write_transaction;

const READERS: [Role; 1] = [Role::Service];
const WRITERS: [Role; 1] = [Role::Service];

#[derive(Debug, Serialize, ToSchema)]
pub struct AttributeView {
    /// Any JSON value but null.
    #[schema(value_type = Value)]
    pub value: Value,
    #[schema(example = "user.account")]
    pub category: String,
    #[schema(example = "api")]
    pub source: String,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileView {
    pub subject_id: String,
    /// The purpose the attributes were filtered for, if any.
    pub purpose: Option<String>,
    pub attributes: BTreeMap<String, AttributeView>,
}

pub fn view(subject: &SubjectId, purpose: Option<String>, attributes: Attributes) -> ProfileView {
    ProfileView {
        subject_id: subject.to_string(),
        purpose,
        attributes: attributes
            .into_iter()
            .map(|(key, a)| {
                (
                    key,
                    AttributeView {
                        value: a.value,
                        category: a.category,
                        source: a.source,
                        updated_at: a.updated_at,
                    },
                )
            })
            .collect(),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProfileQuery {
    /// Return only what this purpose may use, and only if it is allowed for the subject.
    pub purpose: Option<String>,
}

/// A subject's profile attributes, or with `?purpose=` only those the purpose may use.
///
/// With a purpose, the gate decides first: a purpose not allowed for this subject is 403
/// with the decision's reason; an allowed one sees only the attributes whose data
/// categories it declares.
#[utoipa::path(
    tag = "profiles",
    params(SubjectPath, ProfileQuery,
           ("Sec-GPC" = Option<String>, Header, description = "`1`: a Global Privacy Control signal")),
    responses(
        (status = 200, description = "The attributes", body = ProfileView),
        (status = 422, description = "Unknown purpose", body = Problem, content_type = "application/problem+json"),
        SubjectNotFound, AuthProblems,
    ),
    security(("bearer" = [])),
)]
#[get("/v1/subjects/{id}/profile")]
pub async fn get_profile(
    state: web::Data<AppState>,
    caller: SubjectCaller,
    query: web::Query<ProfileQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.access(&READERS, false)?;
    let SubjectCaller { id, principal } = caller;
    let purpose = match &query.purpose {
        Some(key) => Some(state.policies.purpose(key).cloned().ok_or_else(|| {
            ApiError::invalid(
                "purpose",
                format!("`{key}` is not a purpose (see GET /v1/purposes)"),
            )
        })?),
        None => None,
    };
    let gpc = purpose.is_some() && request_gpc(&req);
    let pseudonyms = state.pseudonyms.clone();
    let (now, actor, evidence) = (
        state.clock.now(),
        Actor::from(&principal),
        crate::http::client_ip::request_evidence(&state, &req, None),
    );
    let policies = state.policies.clone();
    let subject_id = id.clone();
    let loaded = state
        .db
        .run(move |conn| {
            let request =
                ConsentWrite::without_changes(&id, &actor, &pseudonyms, &evidence, gpc, now);
            let Some((found, states)) = write::load_recording_gpc(conn, &policies, &request)?
            else {
                return Ok::<_, ConsentError>(None);
            };
            let prefs = crate::consent::preferences::find(conn, &id)?.map(|(p, _)| p);
            Ok(Some((found, states, prefs, attributes::load(conn, &id)?)))
        })
        .await?;
    if gpc {
        state.gate.changed(&subject_id).await;
    }
    let Some((found, states, prefs, all)) = loaded else {
        return Err(ApiError::not_found());
    };
    let Some(purpose) = purpose else {
        return Ok(HttpResponse::Ok().json(view(&subject_id, None, all)));
    };
    let facts = SubjectFacts::new(
        &state.policies,
        Some(&found),
        false,
        &states,
        prefs.as_ref(),
    );
    let decision = decide(
        &state.policies,
        &facts,
        &DecisionRequest {
            purpose: &purpose,
            channel: None,
            data_categories: &[],
            gpc,
            now,
        },
    );
    if !decision.allowed {
        let mut extensions = Map::new();
        extensions.insert("purpose".into(), Value::from(purpose.key.clone()));
        extensions.insert("reason".into(), json!(decision.reason));
        extensions.insert("basis".into(), json!(decision.basis));
        extensions.insert(
            "jurisdiction".into(),
            Value::from(decision.jurisdiction.clone()),
        );
        return Err(ApiError::Denied {
            detail: format!(
                "`{}` is not allowed for this subject ({}).",
                purpose.key,
                decision.reason.as_str()
            ),
            extensions,
        });
    }
    let visible = attributes::visible_to(all, &purpose);
    Ok(HttpResponse::Ok().json(view(&subject_id, Some(purpose.key.clone()), visible)))
}

#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttributeSource {
    #[default]
    Api,
    Import,
    Survey,
    Portal,
}

impl AttributeSource {
    fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Import => "import",
            Self::Survey => "survey",
            Self::Portal => "portal",
        }
    }
}

/// The OpenAPI schema of a patch's attributes: 1–100, each an `AttributeInput` or null.
fn patch_attributes_schema() -> Object {
    let attribute_or_null = OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .item(Ref::from_schema_name("AttributeInput"));
    let keys = crate::http::schemas::dotted_key(
        "An attribute key: dotted lower-case words, at most 100 characters.",
    );
    let mut attributes = ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(Schema::OneOf(attribute_or_null.build())))
        .min_properties(Some(1))
        .max_properties(Some(100))
        .build();
    attributes.property_names = Some(Box::new(Schema::Object(keys)));
    attributes
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"attributes": {"plan": {"value": "pro", "category": "user.account"}, "old_key": null}}))]
pub struct ProfilePatch {
    /// 1–100 attributes by key (dotted lower-case words, at most 100 characters);
    /// `null` instead of an attribute removes it.
    #[validate(length(min = 1, max = 100))]
    #[schema(schema_with = patch_attributes_schema)]
    pub attributes: BTreeMap<String, Option<AttributeInput>>,
    #[serde(default)]
    pub source: AttributeSource,
}

/// Sets or removes attributes, each with its data category.
#[utoipa::path(
    tag = "profiles",
    params(SubjectPath),
    request_body = ProfilePatch,
    responses((status = 200, description = "The whole profile after the change", body = ProfileView), SubjectNotFound, BodyProblems, AuthProblems),
    security(("bearer" = [])),
)]
#[patch("/v1/subjects/{id}/profile")]
pub async fn patch_profile(
    state: web::Data<AppState>,
    caller: SubjectCaller,
    body: ValidJson<ProfilePatch>,
) -> Result<HttpResponse, ApiError> {
    caller.access(&WRITERS, false)?;
    let SubjectCaller { id, principal } = caller;
    let patch = body.into_inner();
    let changes = check_changes(&state.policies, "attributes", patch.attributes)
        .map_err(ApiError::Validation)?;
    let pseudonyms = state.pseudonyms.clone();
    let (now, actor, source) = (
        state.clock.now(),
        Actor::from(&principal),
        patch.source.as_str(),
    );
    let subject_id = id.clone();
    let all = state
        .db
        .write(subject_id.as_str(), move |conn| {
            write_transaction(conn, |conn| {
                if !lock_subject(conn, &id)? {
                    return Err(ApiError::not_found());
                }
                attributes::apply(conn, &id, &changes, source, now)?;
                let payload: Map<String, Value> = changes
                    .iter()
                    .map(|(k, c)| match c {
                        AttributeChange::Set { value, category } => {
                            (k.clone(), json!({"value": value, "category": category}))
                        }
                        AttributeChange::Remove => (k.clone(), Value::Null),
                    })
                    .collect();
                audit::record(
                    conn,
                    &pseudonyms,
                    AuditEntry {
                        actor: &actor,
                        action: "profile.updated",
                        subject_id: Some(id.as_str()),
                        payload: json!({"source": source, "attributes": payload}),
                        at: now,
                    },
                )?;
                Ok(attributes::load(conn, &id)?)
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(view(&subject_id, None, all)))
}
