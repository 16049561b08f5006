//! `GET /console/surveys`: each NPS survey's weekly trend with its margin of error, from
//! the survey report; `GET /console/followups` and its close form, through the same
//! domain function as `PATCH /v1/surveys/{id}/followups/{followup_id}`.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::NaiveDate;
use serde::Deserialize;

use super::{nav, officer_in, signed_in_as, NavItem, Section};
use crate::http::AppState;
use crate::portal::api::{
    checked_form, html, query_value, respond, see_other, Chrome, Failure, Visit,
};
use crate::portal::charts::{self, Caption, NpsPoint};
use crate::portal::i18n::Tr;
use crate::surveys::followups::{self, Closing, CLOSERS, RESOLUTION_MAX_CHARS};
use crate::surveys::report::{self, Interval, Report};
use crate::surveys::store::{self, Followup, Survey};
use crate::surveys::SurveyError;

pub struct TrendRow {
    pub period: String,
    pub n: String,
    pub score: String,
    pub margin: String,
}

pub struct SurveyTrend {
    pub id: String,
    pub name: String,
    pub key: String,
    pub summary: String,
    pub chart: Option<String>,
    pub rows: Vec<TrendRow>,
}

#[derive(Template)]
#[template(path = "portal/console_surveys.html")]
struct TrendsPage {
    chrome: Chrome,
    who: String,
    nav: Vec<NavItem>,
    surveys: Vec<SurveyTrend>,
}

/// A score or margin in words, or a dash without answers.
fn figure(tr: &Tr, value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), |v| tr.decimal(v, 1))
}

fn survey_trend(tr: &Tr, index: usize, survey: &Survey, report: &Report) -> SurveyTrend {
    let points: Vec<NpsPoint> = report
        .trend
        .iter()
        .filter_map(|t| {
            Some(NpsPoint {
                period: NaiveDate::parse_from_str(&t.period, "%Y-%m-%d").ok()?,
                n: t.n,
                score: t.nps.as_ref().and_then(|f| f.score),
                margin: t.nps.as_ref().and_then(|f| f.margin_of_error),
            })
        })
        .collect();
    let overall = report.nps.as_ref();
    let summary = match overall.and_then(|f| f.score) {
        Some(score) => tr.with(
            "surveys-overall",
            &[
                ("score", tr.decimal(score, 1)),
                (
                    "margin",
                    figure(tr, overall.and_then(|f| f.margin_of_error)),
                ),
                ("count", tr.int(overall.map_or(0, |f| f.n))),
            ],
        ),
        None => tr.t("surveys-no-answers"),
    };
    let id = format!("nps-{index}");
    let chart = (!points.is_empty()).then(|| {
        let title = tr.with("surveys-chart-title", &[("survey", survey.name.clone())]);
        charts::nps_trend(
            tr,
            &Caption {
                id: &id,
                title: &title,
                desc: &summary,
            },
            &points,
        )
    });
    let rows = points
        .iter()
        .map(|p| TrendRow {
            period: tr.date(p.period.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()),
            n: tr.int(p.n),
            score: figure(tr, p.score),
            margin: figure(tr, p.margin),
        })
        .collect();
    SurveyTrend {
        id,
        name: survey.name.clone(),
        key: survey.key.clone(),
        summary,
        chart,
        rows,
    }
}

#[get("/console/surveys")]
pub async fn trends(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let visit = Visit::load(&state, &req).await;
    let result = async {
        let officer = officer_in(&visit, Section::Surveys)?;
        let reports = state
            .db
            .run(|conn| report::nps_reports(conn, Interval::Week))
            .await
            .map_err(Failure::internal)?;
        let tr = visit.tr();
        let page = TrendsPage {
            chrome: Chrome::new(
                &visit,
                &Section::Surveys.title_key(),
                Section::Surveys.path(),
            ),
            who: signed_in_as(&tr, &officer),
            nav: nav(&tr, &officer, Some(Section::Surveys)),
            surveys: reports
                .iter()
                .enumerate()
                .map(|(i, (survey, report))| survey_trend(&tr, i, survey, report))
                .collect(),
        };
        Ok(html(StatusCode::OK, &page))
    }
    .await;
    respond(&visit, result)
}

/// Open follow-ups shown at most.
const FOLLOWUPS_SHOWN: i64 = 500;

pub struct FollowupItem {
    pub id: String,
    pub survey_id: String,
    pub heading: String,
    pub subject: String,
    pub opened: String,
    /// What was sent, when the form comes back with an error.
    pub resolution: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "portal/console_followups.html")]
struct FollowupsPage {
    chrome: Chrome,
    who: String,
    nav: Vec<NavItem>,
    csrf: String,
    flash: Option<String>,
    can_close: bool,
    max_chars: usize,
    items: Vec<FollowupItem>,
}

/// A follow-up form sent back with an error.
struct Returned {
    id: String,
    resolution: String,
    error: String,
}

async fn followups_page(
    state: &AppState,
    req: &HttpRequest,
    visit: &Visit,
    returned: Option<Returned>,
) -> Result<HttpResponse, Failure> {
    let officer = officer_in(visit, Section::Followups)?;
    let (open, surveys): (Vec<Followup>, Vec<Survey>) = state
        .db
        .run(|conn| {
            Ok::<_, SurveyError>((
                followups::open(conn, FOLLOWUPS_SHOWN)?,
                store::list(conn, None)?,
            ))
        })
        .await
        .map_err(Failure::internal)?;
    let names: HashMap<&str, &str> = surveys
        .iter()
        .map(|s| (s.id.as_str(), s.name.as_str()))
        .collect();
    let tr = visit.tr();
    let flash = match query_value(req, "done").as_deref() {
        Some("closed") => Some(tr.t("followups-closed")),
        Some("already-closed") => Some(tr.t("followups-already-closed")),
        _ => None,
    };
    let items = open
        .into_iter()
        .map(|f| {
            let back = returned.as_ref().filter(|r| r.id == f.id);
            FollowupItem {
                heading: tr.with(
                    "followup-heading",
                    &[
                        (
                            "survey",
                            names
                                .get(f.survey_id.as_str())
                                .copied()
                                .unwrap_or(&f.survey_id)
                                .to_owned(),
                        ),
                        ("score", tr.int(f.score.into())),
                    ],
                ),
                subject: f.subject_id,
                opened: tr.with(
                    "followup-opened",
                    &[("date", tr.date_time(f.opened_at.and_utc()))],
                ),
                resolution: back.map(|r| r.resolution.clone()).unwrap_or_default(),
                error: back.map(|r| r.error.clone()),
                id: f.id,
                survey_id: f.survey_id,
            }
        })
        .collect();
    let status = if returned.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = FollowupsPage {
        chrome: Chrome::new(
            visit,
            &Section::Followups.title_key(),
            Section::Followups.path(),
        ),
        who: signed_in_as(&tr, &officer),
        nav: nav(&tr, &officer, Some(Section::Followups)),
        csrf: officer.live.csrf(),
        flash,
        can_close: CLOSERS.contains(&officer.role),
        max_chars: RESOLUTION_MAX_CHARS,
        items,
    };
    Ok(html(status, &page))
}

#[get("/console/followups")]
pub async fn open_followups(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let visit = Visit::load(&state, &req).await;
    let result = followups_page(&state, &req, &visit, None).await;
    respond(&visit, result)
}

#[derive(Deserialize)]
struct CloseForm {
    survey: String,
    #[serde(default)]
    resolution: String,
}

/// Closes a follow-up as the officer, with what was done.
#[post("/console/followups/{id}")]
pub async fn close_followup(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let visit = Visit::load(&state, &req).await;
    let result = async {
        let officer = officer_in(&visit, Section::Followups)?;
        if !CLOSERS.contains(&officer.role) {
            return Err(Failure::NotAllowed);
        }
        let form: CloseForm = checked_form(&state, &req, officer.live, &body)?;
        let id = path.into_inner();
        let resolution = form.resolution.trim().to_owned();
        if resolution.chars().count() > RESOLUTION_MAX_CHARS {
            let tr = visit.tr();
            let error = tr.with(
                "followup-resolution-too-long",
                &[("max", tr.int(RESOLUTION_MAX_CHARS as i64))],
            );
            let returned = Returned {
                id,
                resolution,
                error,
            };
            return followups_page(&state, &req, &visit, Some(returned)).await;
        }
        let (pseudonyms, now) = (state.pseudonyms.clone(), state.clock.now());
        let principal = officer.live.session.holder.principal();
        let closed = state
            .db
            .run(move |conn| {
                let closing = Closing {
                    survey: &form.survey,
                    followup_id: &id,
                    resolution: Some(resolution.as_str()).filter(|r| !r.is_empty()),
                    by: &principal,
                    now,
                };
                followups::close(conn, &pseudonyms, &closing)
            })
            .await;
        match closed {
            Ok(_) => Ok(see_other("/console/followups?done=closed")),
            Err(SurveyError::Conflict { .. }) => {
                Ok(see_other("/console/followups?done=already-closed"))
            }
            Err(SurveyError::NotFound(_)) => Err(Failure::NotFound),
            Err(err) => Err(Failure::internal(err)),
        }
    }
    .await;
    respond(&visit, result)
}
