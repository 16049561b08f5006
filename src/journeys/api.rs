//! `GET /v1/journeys/report`.

use actix_web::{get, web, HttpResponse};
use chrono::TimeDelta;
use serde::Deserialize;
use utoipa::IntoParams;

use super::report::{self, JourneyReport};
use crate::auth::{Principal, Role};
use crate::http::extract::query_period;
use crate::http::responses::{AuthProblems, ParameterProblems};
use crate::http::{ApiError, AppState};

const READERS: [Role; 2] = [Role::Admin, Role::Compliance];
/// The period when none is given.
const DEFAULT_DAYS: i64 = 30;

fn from_schema() -> utoipa::openapi::Schema {
    crate::http::schemas::query_time(
        "From this time (a date or RFC 3339), inclusive; default 30 days before `to`.",
        None,
    )
}

fn to_schema() -> utoipa::openapi::Schema {
    crate::http::schemas::query_time(
        "To this time, exclusive; after `from`; default now (included).",
        None,
    )
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct JourneyReportQuery {
    #[param(schema_with = from_schema)]
    pub from: Option<String>,
    #[param(schema_with = to_schema)]
    pub to: Option<String>,
}

/// Customers per journey stage now; within the period, how many entered each stage, the
/// moves between stages (the funnel), the median days from a customer's first stage to
/// each, and NPS by the stage customers were in when they answered (n and a 95% margin
/// of error). Stages and rules: `policies/journeys.toml`.
#[utoipa::path(
    tag = "journeys",
    params(JourneyReportQuery),
    responses((status = 200, description = "The report", body = JourneyReport), ParameterProblems, AuthProblems),
    security(("bearer" = [])),
)]
#[get("/v1/journeys/report")]
pub async fn journey_report(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<JourneyReportQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(&READERS)?;
    let query = query.into_inner();
    let (from, to) =
        query_period(query.from.as_deref(), query.to.as_deref()).map_err(ApiError::Validation)?;
    // Now included: a move made this very second counts.
    let to = to.unwrap_or_else(|| state.clock.now() + TimeDelta::seconds(1));
    let from = from.unwrap_or(to - TimeDelta::days(DEFAULT_DAYS));
    if from >= to {
        return Err(ApiError::invalid("from", "must be before `to`"));
    }
    let policies = state.policies.clone();
    let report = state
        .db
        .run(move |conn| report::load(conn, &policies.journeys, from, to))
        .await?;
    Ok(HttpResponse::Ok().json(report))
}
