//! `GET /v1/purposes`: what each purpose is, in the caller's language, and its bases.

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::{get, web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::locale::negotiate;
use super::purpose::OptOutSignal;
use super::{Basis, Purpose};
use crate::auth::{Principal, Role};
use crate::http::responses::AuthProblems;
use crate::http::{ApiError, AppState};

#[derive(Debug, Serialize, ToSchema)]
pub struct PurposeView {
    #[schema(example = "marketing.email")]
    pub key: String,
    /// The parent purpose whose record covers this one when it has none of its own.
    #[schema(example = "marketing")]
    pub parent: Option<String>,
    #[schema(example = 1)]
    pub version: u32,
    #[schema(example = "Marketing emails")]
    pub name: String,
    pub description: Option<String>,
    /// Legal basis per jurisdiction key, with `default` for the rest.
    #[schema(example = json!({"eea": "opt_in", "us_ca": "opt_out", "default": "opt_in"}))]
    pub basis: BTreeMap<String, Basis>,
    #[schema(example = json!(["user.contact.email"]))]
    pub data_categories: Vec<String>,
    /// Whether a Global Privacy Control signal opts the customer out.
    pub gpc: bool,
    /// A sale or sharing purpose (known minors must opt in).
    pub sale_or_share: bool,
    /// IAB opt-outs (sale, sharing, targeted_advertising) that withdraw this purpose.
    pub opt_out_signals: Vec<OptOutSignal>,
    /// Days after which a consent must be asked again; null: never.
    pub consent_ttl_days: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PurposeList {
    /// The locale the names and descriptions are in.
    #[schema(example = "en")]
    pub locale: String,
    /// The revision of the policy files.
    #[schema(example = "3f2a9c01be47")]
    pub policy_revision: String,
    pub purposes: Vec<PurposeView>,
}

impl PurposeView {
    fn new(purpose: &Purpose, locale: &str) -> Self {
        Self {
            key: purpose.key.clone(),
            parent: purpose.parent().map(str::to_owned),
            version: purpose.version,
            name: purpose.name.get(locale).unwrap_or(&purpose.key).to_owned(),
            description: purpose.description.get(locale).map(str::to_owned),
            basis: purpose.basis.clone(),
            data_categories: purpose.data_categories.clone(),
            gpc: purpose.gpc,
            sale_or_share: purpose.sale_or_share,
            opt_out_signals: purpose.opt_out_signals.clone(),
            consent_ttl_days: purpose.consent_ttl_days,
        }
    }
}

/// Lists the purposes, named in the language of `Accept-Language` (English fallback).
#[utoipa::path(
    tag = "purposes",
    params(("Accept-Language" = Option<String>, Header, description = "Preferred languages, e.g. `ar, en;q=0.5`")),
    responses(
        (status = 200, description = "Every purpose, in file order", body = PurposeList,
         headers(("Content-Language" = String, description = "The locale chosen"))),
        AuthProblems,
    ),
    security(("bearer" = [])),
)]
#[get("/v1/purposes")]
pub async fn list_purposes(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(&Role::ALL)?;
    let policies = &state.policies;
    let accept = req
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    let locale = negotiate(accept, &policies.text_locales()).to_owned();
    let list = PurposeList {
        purposes: policies
            .purposes()
            .iter()
            .map(|p| PurposeView::new(p, &locale))
            .collect(),
        policy_revision: policies.revision.clone(),
        locale: locale.clone(),
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_LANGUAGE, locale))
        .insert_header((header::VARY, "Accept-Language"))
        .json(list))
}
