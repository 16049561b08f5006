//! `GET /console/consents`: per jurisdiction, each purpose's allowed / refused / not
//! answered counts and shares, as a stacked bar chart and a table.

use actix_web::http::StatusCode;
use actix_web::{get, web, HttpRequest, HttpResponse};
use askama::Template;

use super::{nav, officer_in, signed_in_as, NavItem, Section};
use crate::consent::rates::{self, Counts, Rate};
use crate::http::AppState;
use crate::policy::{Basis, Policies};
use crate::portal::api::{html, respond, Chrome, Failure, Visit};
use crate::portal::charts::{self, Bar, Caption, Series};
use crate::portal::i18n::Tr;

pub struct RateRow {
    pub purpose: String,
    pub key: String,
    pub basis: String,
    pub allow: String,
    pub deny: String,
    pub no_answer: String,
    pub total: String,
}

pub struct JurisdictionRates {
    pub id: String,
    pub heading: String,
    pub chart: String,
    pub rows: Vec<RateRow>,
}

#[derive(Template)]
#[template(path = "portal/console_rates.html")]
struct RatesPage {
    chrome: Chrome,
    who: String,
    nav: Vec<NavItem>,
    jurisdictions: Vec<JurisdictionRates>,
}

fn basis_key(basis: Basis) -> &'static str {
    match basis {
        Basis::OptIn => "basis-opt-in",
        Basis::OptOut => "basis-opt-out",
        Basis::LegitimateInterest => "basis-legitimate-interest",
        Basis::NoticeOnly => "basis-notice-only",
        Basis::Prohibited => "basis-prohibited",
    }
}

/// "3 (60.0%)", or the count alone without customers.
fn cell(tr: &Tr, counts: &Counts, part: i64) -> String {
    match counts.share(part) {
        Some(share) => tr.with(
            "rates-cell",
            &[("count", tr.int(part)), ("share", tr.decimal(share, 1))],
        ),
        None => tr.int(part),
    }
}

fn purpose_name(policies: &Policies, tr: &Tr, key: &str) -> String {
    policies
        .purpose(key)
        .and_then(|p| p.name.get(tr.lang.code()))
        .unwrap_or(key)
        .to_owned()
}

/// One section per jurisdiction, in the order the rates come.
fn sections(policies: &Policies, tr: &Tr, rates: &[Rate]) -> Vec<JurisdictionRates> {
    let series = [
        Series {
            name: tr.t("rates-allow"),
            class: "c-allow",
        },
        Series {
            name: tr.t("rates-deny"),
            class: "c-deny",
        },
        Series {
            name: tr.t("rates-no-answer"),
            class: "c-none",
        },
    ];
    let mut order: Vec<&str> = Vec::new();
    for rate in rates {
        if !order.contains(&rate.jurisdiction.as_str()) {
            order.push(&rate.jurisdiction);
        }
    }
    order
        .into_iter()
        .map(|key| {
            let of_here: Vec<&Rate> = rates.iter().filter(|r| r.jurisdiction == key).collect();
            let name = policies
                .jurisdictions
                .get(key)
                .map_or_else(|| key.to_owned(), |j| j.name.clone());
            let customers = of_here.first().map_or(0, |r| r.counts.total());
            let heading = tr.with(
                "rates-jurisdiction",
                &[("name", name), ("customers", tr.int(customers))],
            );
            let bars: Vec<Bar> = of_here
                .iter()
                .map(|r| Bar {
                    label: purpose_name(policies, tr, &r.purpose),
                    values: vec![r.counts.allow, r.counts.deny, r.counts.no_answer],
                })
                .collect();
            let id = format!("rates-{key}");
            let title = tr.with("rates-chart-title", &[("jurisdiction", heading.clone())]);
            let desc = tr.with("rates-chart-desc", &[("customers", tr.int(customers))]);
            let chart = charts::stacked_bars(
                tr,
                &Caption {
                    id: &id,
                    title: &title,
                    desc: &desc,
                },
                &series,
                &bars,
            );
            let rows = of_here
                .iter()
                .map(|r| RateRow {
                    purpose: purpose_name(policies, tr, &r.purpose),
                    key: r.purpose.clone(),
                    basis: tr.t(basis_key(r.basis)),
                    allow: cell(tr, &r.counts, r.counts.allow),
                    deny: cell(tr, &r.counts, r.counts.deny),
                    no_answer: cell(tr, &r.counts, r.counts.no_answer),
                    total: tr.int(r.counts.total()),
                })
                .collect();
            JurisdictionRates {
                id,
                heading,
                chart,
                rows,
            }
        })
        .collect()
}

#[get("/console/consents")]
pub async fn consent_rates(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let visit = Visit::load(&state, &req).await;
    let result = async {
        let officer = officer_in(&visit, Section::Rates)?;
        let policies = state.policies.clone();
        let rates = state
            .db
            .run(move |conn| rates::rates(conn, &policies))
            .await
            .map_err(Failure::internal)?;
        let tr = visit.tr();
        let page = RatesPage {
            chrome: Chrome::new(&visit, &Section::Rates.title_key(), Section::Rates.path()),
            who: signed_in_as(&tr, &officer),
            nav: nav(&tr, &officer, Some(Section::Rates)),
            jurisdictions: sections(&state.policies, &tr, &rates),
        };
        Ok(html(StatusCode::OK, &page))
    }
    .await;
    respond(&visit, result)
}
