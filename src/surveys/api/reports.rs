//! `GET /v1/surveys/{id}/report` and `GET /v1/surveys/{id}/responses?format=csv|jsonl`.

use actix_web::{get, web, HttpResponse};
use chrono::NaiveDateTime;
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;

use super::definitions::READERS;
use super::responses::response_view;
use crate::audit::{self, Actor, AuditEntry};
use crate::auth::Principal;
use crate::http::extract::query_period;
use crate::http::responses::{AuthProblems, ParameterProblems};
use crate::http::{ApiError, AppState, FieldError, Problem};
use crate::policy::key::is_valid_key;
use crate::surveys::definition::Definition;
use crate::surveys::report::{self, bound, Interval, Report, Scope, VersionCount};
use crate::surveys::store;
use crate::surveys::SurveyError;

const PAGE: i64 = 1_000;

fn from_schema() -> utoipa::openapi::Schema {
    crate::http::schemas::query_time("From this time (a date or RFC 3339), inclusive.", None)
}

fn to_schema() -> utoipa::openapi::Schema {
    crate::http::schemas::query_time("To this time, exclusive; after `from`.", None)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// From this time (a date or RFC 3339), inclusive.
    #[param(schema_with = from_schema)]
    pub from: Option<String>,
    /// To this time, exclusive.
    #[param(schema_with = to_schema)]
    pub to: Option<String>,
    /// The trend's interval (default `week`; weeks start on Monday, UTC).
    pub interval: Option<Interval>,
    /// A profile attribute to break the score down by (its current value).
    #[param(
        min_length = 1,
        max_length = 200,
        pattern = "^[a-z0-9_]+(\\.[a-z0-9_]+)*$"
    )]
    pub by: Option<String>,
    /// Only this version of the questions (default: all, with the current questions).
    pub version: Option<i32>,
}

/// The survey's report: displays, responses, response rate, NPS (counts, percentages, a
/// 95% margin of error) and CSAT, the trend per interval, a breakdown by a profile
/// attribute, and every question's distribution (text questions: the latest answers).
///
/// Everything is counted in SQL. NPS = %promoters (9–10) − %detractors (0–6) over
/// answered NPS questions; null without answers.
#[utoipa::path(
    tag = "surveys",
    params(("id" = String, Path, description = "The survey's id or key"), ReportQuery),
    responses(
        (status = 200, description = "The report", body = Report),
        (status = 404, description = "No such survey (or version)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad parameter", body = Problem, content_type = "application/problem+json"),
        AuthProblems,
    ),
    security(("bearer" = [])),
)]
#[get("/v1/surveys/{id}/report")]
pub async fn survey_report(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    query: web::Query<ReportQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(&READERS)?;
    let query = query.into_inner();
    let (mut errors, (from, to)) = match query_period(query.from.as_deref(), query.to.as_deref()) {
        Ok(period) => (Vec::new(), period),
        Err(errors) => (errors, (None, None)),
    };
    if let Some(by) = &query.by {
        if !is_valid_key(by) {
            errors.push(FieldError::new(
                "by",
                "invalid",
                "a profile attribute key, e.g. `plan`",
            ));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let id = path.into_inner();
    let interval = query.interval.unwrap_or(Interval::Week);
    let built = state
        .db
        .run(move |conn| {
            let survey = store::find(conn, &id)?.ok_or(SurveyError::NotFound("survey"))?;
            let definition: Definition = match query.version {
                None => survey.definition.clone(),
                Some(v) => store::version_definition(conn, &survey.id, v)?
                    .ok_or(SurveyError::NotFound("version of this survey"))?,
            };
            let scope = Scope {
                survey_id: survey.id.clone(),
                from: from.map_or_else(|| bound(1970), |f| f.naive_utc()),
                to: to.map_or_else(|| bound(9999), |t| t.naive_utc()),
                version: query.version,
            };
            let mut built = report::build(
                conn,
                &report::Request {
                    scope,
                    definition: &definition,
                    interval,
                    by: query.by.as_deref(),
                },
            )?;
            built.versions = store::versions(conn, &survey.id)?
                .into_iter()
                .map(|(version, created_at, responses)| VersionCount {
                    version,
                    created_at,
                    responses,
                })
                .collect();
            built.from = from;
            built.to = to;
            Ok::<Report, SurveyError>(built)
        })
        .await?;
    Ok(HttpResponse::Ok().json(built))
}

#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ResponseFormat {
    Csv,
    Jsonl,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `jsonl` (default) or `csv`.
    pub format: Option<ResponseFormat>,
}

const FIXED_COLUMNS: [&str; 8] = [
    "response_id",
    "subject_id",
    "version",
    "display_id",
    "finished",
    "started_at",
    "updated_at",
    "finished_at",
];

/// Every response of the survey, streamed page by page (constant memory): JSON Lines,
/// or CSV with one column per question of every version (multiple choices joined by
/// `;`). The export is audited.
#[utoipa::path(
    tag = "surveys",
    params(("id" = String, Path, description = "The survey's id or key"), ExportQuery),
    responses(
        (status = 200, description = "JSON Lines (`application/jsonl`) or CSV, streamed", content((String = "application/jsonl"), (String = "text/csv"))),
        (status = 404, description = "No such survey", body = Problem, content_type = "application/problem+json"),
        ParameterProblems, AuthProblems,
    ),
    security(("bearer" = [])),
)]
#[get("/v1/surveys/{id}/responses")]
pub async fn export_responses(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    use futures_util::stream;

    principal.require(&READERS)?;
    let format = query.format.unwrap_or(ResponseFormat::Jsonl);
    let id = path.into_inner();
    let (pseudonyms, actor, now) = (
        state.pseudonyms.clone(),
        Actor::from(&principal),
        state.clock.now(),
    );
    let (survey_id, columns) = state
        .db
        .run(move |conn| {
            let survey = store::find(conn, &id)?.ok_or(SurveyError::NotFound("survey"))?;
            // Columns: every question of every version, in order of first appearance.
            let mut columns: Vec<String> = Vec::new();
            for (version, _, _) in store::versions(conn, &survey.id)? {
                if let Some(d) = store::version_definition(conn, &survey.id, version)? {
                    for q in d.questions {
                        if !columns.contains(&q.id) {
                            columns.push(q.id);
                        }
                    }
                }
            }
            audit::record_alone(
                conn,
                &pseudonyms,
                AuditEntry {
                    actor: &actor,
                    action: "survey.responses_exported",
                    subject_id: None,
                    payload: json!({"survey_id": survey.id, "format": format}),
                    at: now,
                },
            )?;
            Ok::<_, SurveyError>((survey.id, columns))
        })
        .await?;
    let state = state.into_inner();
    let header_line = match format {
        ResponseFormat::Csv => {
            let mut header: Vec<String> = FIXED_COLUMNS.iter().map(|c| c.to_string()).collect();
            header.extend(columns.iter().cloned());
            Some(csv_line(&header))
        }
        ResponseFormat::Jsonl => None,
    };
    // The cursor: (started_at, id) of the last row sent; `None` once done.
    let start: Option<Option<(NaiveDateTime, String)>> = Some(None);
    let body = stream::unfold((start, header_line), move |(cursor, header_line)| {
        let (state, survey_id, columns) = (state.clone(), survey_id.clone(), columns.clone());
        async move {
            if let Some(header) = header_line {
                return Some((Ok(web::Bytes::from(header)), (cursor, None)));
            }
            let after = cursor?;
            let page = state
                .db
                .run(move |conn| store::response_page(conn, &survey_id, after.as_ref(), PAGE))
                .await;
            let rows = match page {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::error!(error = %e, "response export stopped");
                    return Some((
                        Err(actix_web::error::ErrorInternalServerError("export failed")),
                        (None, None),
                    ));
                }
            };
            if rows.is_empty() {
                return None;
            }
            let next = (rows.len() as i64 == PAGE)
                .then(|| rows.last().map(|r| (r.started_at, r.id.clone())))
                .flatten();
            let mut out = String::new();
            for row in rows {
                match format {
                    ResponseFormat::Jsonl => {
                        out.push_str(
                            &serde_json::to_string(&response_view(row)).unwrap_or_default(),
                        );
                        out.push('\n');
                    }
                    ResponseFormat::Csv => out.push_str(&csv_row(row, &columns)),
                }
            }
            Some((
                Ok::<_, actix_web::Error>(web::Bytes::from(out)),
                (next.map(Some), None),
            ))
        }
    });
    let content_type = match format {
        ResponseFormat::Jsonl => "application/jsonl",
        ResponseFormat::Csv => "text/csv; charset=utf-8",
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .streaming(body))
}

/// One CSV line; every cell that a spreadsheet would run as a formula is neutralised
/// (`csv_cell::inert`): answers are customers' free text, and no column is trusted.
fn csv_line(fields: &[String]) -> String {
    let mut writer = csv::WriterBuilder::new().from_writer(Vec::new());
    let _ = writer.write_record(
        fields
            .iter()
            .map(|f| crate::csv_cell::inert(f).into_owned()),
    );
    String::from_utf8(writer.into_inner().unwrap_or_default()).unwrap_or_default()
}

fn csv_row(row: store::ResponseRow, columns: &[String]) -> String {
    let answers = row.answers();
    let time = |t: NaiveDateTime| t.and_utc().to_rfc3339();
    let mut fields = vec![
        row.id,
        row.subject_id,
        row.version.to_string(),
        row.display_id.unwrap_or_default(),
        row.finished.to_string(),
        time(row.started_at),
        time(row.updated_at),
        row.finished_at.map(time).unwrap_or_default(),
    ];
    for column in columns {
        fields.push(match answers.get(column) {
            None => String::new(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| i.to_string())
                })
                .collect::<Vec<_>>()
                .join(";"),
            Some(other) => other.to_string(),
        });
    }
    csv_line(&fields)
}
