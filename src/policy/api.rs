//! `GET /v1/purposes`: what each purpose is, in the caller's language, and its bases;
//! `GET /v1/channels`: the channel catalogue and the default orders.

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
    let locale = negotiate(accept_language(&req), &policies.text_locales()).to_owned();
    let list = PurposeList {
        purposes: policies
            .purposes()
            .iter()
            .map(|p| PurposeView::new(p, &locale))
            .collect(),
        policy_revision: policies.revision.clone(),
        locale: locale.clone(),
    };
    Ok(in_language(locale, list))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelView {
    #[schema(example = "whatsapp")]
    pub name: String,
    /// The name in the language chosen.
    #[schema(example = "WhatsApp")]
    pub display_name: String,
    /// The contact data category the channel uses.
    #[schema(example = "user.contact.phone_number")]
    pub category: String,
    /// Jurisdictions where a message on it needs the customer's opt-in to the channel.
    #[schema(example = json!(["eea", "uk"]))]
    pub opt_in_required: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelList {
    /// The locale the display names are in.
    #[schema(example = "en")]
    pub locale: String,
    /// The revision of the policy files.
    #[schema(example = "3f2a9c01be47")]
    pub policy_revision: String,
    /// In the file's order.
    pub channels: Vec<ChannelView>,
    /// The order for a customer who chose none, by region code (`BR`, `US-CA`) or
    /// jurisdiction key (`eea`), with `default` for the rest. A subject's region is
    /// looked up first, then its country, then its jurisdiction.
    #[schema(example = json!({"BR": ["whatsapp", "email", "sms"], "default": ["email"]}))]
    pub default_orders: BTreeMap<String, Vec<String>>,
}

/// Lists the channels customers can be reached on, named in the language of
/// `Accept-Language`, and the default channel orders (`policies/channels.toml`).
#[utoipa::path(
    tag = "preferences",
    params(("Accept-Language" = Option<String>, Header, description = "Preferred languages, e.g. `ar, en;q=0.5`")),
    responses(
        (status = 200, description = "The catalogue and the default orders", body = ChannelList,
         headers(("Content-Language" = String, description = "The locale chosen"))),
        AuthProblems,
    ),
    security(("bearer" = [])),
)]
#[get("/v1/channels")]
pub async fn list_channels(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(&Role::ALL)?;
    let catalogue = &state.policies.channels;
    let mut locales: Vec<&str> = catalogue
        .all()
        .iter()
        .flat_map(|c| c.names.locales())
        .collect();
    locales.sort_unstable();
    locales.dedup();
    let locale = negotiate(accept_language(&req), &locales).to_owned();
    let default_orders = catalogue
        .orders()
        .map(|(key, list)| (key.to_owned(), list.iter().map(|c| c.to_string()).collect()))
        .collect();
    let list = ChannelList {
        channels: catalogue
            .all()
            .iter()
            .map(|spec| ChannelView {
                name: spec.channel.to_string(),
                display_name: spec.display_name(&locale).to_owned(),
                category: spec.category.clone(),
                opt_in_required: spec.opt_in_required.clone(),
            })
            .collect(),
        default_orders,
        policy_revision: state.policies.revision.clone(),
        locale: locale.clone(),
    };
    Ok(in_language(locale, list))
}

fn accept_language(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
}

/// A JSON answer in `locale`, which varies with `Accept-Language`.
fn in_language(locale: String, body: impl Serialize) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_LANGUAGE, locale))
        .insert_header((header::VARY, "Accept-Language"))
        .json(body)
}
