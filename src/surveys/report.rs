//! Reports: counts come from SQL (`GROUP BY` over the answer rows, one query per
//! question and per view), never from loading responses; the arithmetic is in `score`.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use diesel::dsl::{count, count_star};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::definition::{Definition, QuestionType};
use super::score::{CsatFigures, NpsFigures, Tally};
use crate::storage::schema::{survey_answers, survey_displays, survey_responses};
use crate::storage::{DbConnection, StorageError};

const TEXT_ANSWERS: i64 = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    Day,
    Week,
    Month,
}

impl Interval {
    /// The first day of the interval a day falls in (weeks start on Monday).
    pub fn period_of(self, day: NaiveDate) -> NaiveDate {
        match self {
            Interval::Day => day,
            Interval::Week => {
                day - TimeDelta::days(i64::from(day.weekday().num_days_from_monday()))
            }
            Interval::Month => day.with_day(1).unwrap_or(day),
        }
    }
}

/// What a report covers.
#[derive(Debug, Clone)]
pub struct Scope {
    pub survey_id: String,
    pub from: NaiveDateTime,
    pub to: NaiveDateTime,
    /// Only this version (`None`: all).
    pub version: Option<i32>,
}

/// Report bounds without `from`/`to` that both backends compare correctly (SQLite
/// compares timestamps as text, so chrono's extremes would sort wrongly).
pub fn bound(year: i32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(year, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or_default()
}

impl Scope {
    /// Every answer to every version of a survey.
    pub fn all_time(survey_id: &str) -> Self {
        Self {
            survey_id: survey_id.to_owned(),
            from: bound(1970),
            to: bound(9999),
            version: None,
        }
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = Nullable<Text>)]
    bucket: Option<String>,
    /// The recorded breakdown value, when counted by day and by it at once.
    #[diesel(sql_type = Nullable<Text>)]
    segment: Option<String>,
    #[diesel(sql_type = Nullable<Integer>)]
    number_value: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    text_value: Option<String>,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Answer counts of one question by (day, value), or with `by` by (the attribute's
/// value, value). Everything the query touches is in `survey_answers_report` (and
/// `profile_attributes_values`), and the day grouping follows that index's order, so
/// a million answers are counted without visiting the table or sorting.
/// Whether answers carry `key`'s value from when they were given (the survey's own
/// `breakdown`, recorded with every answer since the survey was created).
fn recorded_breakdown(definition: &Definition, key: &str) -> bool {
    definition.breakdown.as_deref() == Some(key)
}

/// What a question's answers are counted by, besides their value.
#[derive(Clone, Copy)]
enum By<'a> {
    /// The day, and the breakdown value recorded with each answer: one pass gives both
    /// the trend and the breakdown (`split_recorded`).
    DayAndRecorded,
    /// This attribute's current value, from the profile.
    Current(&'a str),
}

/// Counts by (day, recorded value, value) summed two ways: by day, and by the recorded
/// value.
fn split_recorded(rows: Vec<Count>) -> (Vec<Count>, Vec<Count>) {
    /// A group and an answer value: (bucket, number, option).
    type Key = (Option<String>, Option<i32>, Option<String>);
    let mut by_day: BTreeMap<Key, i64> = BTreeMap::new();
    let mut by_value = by_day.clone();
    for row in rows {
        let value = (row.number_value, row.text_value);
        *by_day
            .entry((row.bucket, value.0, value.1.clone()))
            .or_default() += row.n;
        *by_value.entry((row.segment, value.0, value.1)).or_default() += row.n;
    }
    let counts = |map: BTreeMap<_, i64>| {
        map.into_iter()
            .map(|((bucket, number_value, text_value), n)| Count {
                bucket,
                segment: None,
                number_value,
                text_value,
                n,
            })
            .collect()
    };
    (counts(by_day), counts(by_value))
}

fn counts(
    conn: &mut DbConnection,
    scope: &Scope,
    question_id: &str,
    by: Option<By<'_>>,
) -> Result<Vec<Count>, StorageError> {
    let (bucket, join) = match (by, &*conn) {
        (None, _) => ("a.answered_day", ""),
        (Some(By::DayAndRecorded), DbConnection::Sqlite(_)) => {
            ("a.answered_day", "INDEXED BY survey_answers_breakdown")
        }
        (Some(By::DayAndRecorded), DbConnection::Postgres(_)) => ("a.answered_day", ""),
        // SQLite's planner would take the primary key, which is not covering, and the
        // answers in day order, which makes every lookup a random one: both are named.
        (Some(By::Current(_)), DbConnection::Sqlite(_)) => (
            "p.value",
            "INDEXED BY survey_answers_by_subject \
             LEFT JOIN profile_attributes p INDEXED BY profile_attributes_values \
             ON p.subject_id = a.subject_id AND p.key = $9",
        ),
        (Some(By::Current(_)), DbConnection::Postgres(_)) => (
            "p.value",
            "LEFT JOIN profile_attributes p ON p.subject_id = a.subject_id AND p.key = $9",
        ),
    };
    let (segment, groups) = match by {
        Some(By::DayAndRecorded) => ("a.breakdown_value", "1, 2, 3, 4"),
        _ => ("NULL", "1, 3, 4"),
    };
    let sql = format!(
        "SELECT {bucket} AS bucket, {segment} AS segment, a.number_value AS number_value, \
         a.text_value AS text_value, COUNT(*) AS n FROM survey_answers a {join} \
         WHERE a.survey_id = $1 AND a.question_id = $2 \
         AND a.answered_day >= $3 AND a.answered_day <= $4 \
         AND a.answered_at >= $5 AND a.answered_at < $6 \
         AND a.version >= $7 AND a.version <= $8 GROUP BY {groups}"
    );
    let sql = match conn {
        DbConnection::Postgres(_) => sql,
        DbConnection::Sqlite(_) => sql.replace('$', "?"),
    };
    let (low, high) = scope.version.map_or((i32::MIN, i32::MAX), |v| (v, v));
    let query = diesel::sql_query(sql)
        .bind::<Text, _>(&scope.survey_id)
        .bind::<Text, _>(question_id)
        .bind::<Text, _>(scope.from.date().to_string())
        .bind::<Text, _>(scope.to.date().to_string())
        .bind::<Timestamp, _>(scope.from)
        .bind::<Timestamp, _>(scope.to)
        .bind::<Integer, _>(low)
        .bind::<Integer, _>(high);
    Ok(match (conn, by) {
        (DbConnection::Postgres(c), Some(By::Current(key))) => {
            query.bind::<Text, _>(key).load(c)?
        }
        (DbConnection::Sqlite(c), Some(By::Current(key))) => query.bind::<Text, _>(key).load(c)?,
        (DbConnection::Postgres(c), _) => query.load(c)?,
        (DbConnection::Sqlite(c), _) => query.load(c)?,
    })
}

fn add(t: &mut Tally, value: i32, n: i64, top_two_from: i32) {
    t.n += n;
    t.sum += i64::from(value) * n;
    if value >= 9 {
        t.high += n;
    }
    if value <= 6 {
        t.low += n;
    }
    if value >= top_two_from {
        t.top_two += n;
    }
}

fn tally(rows: impl Iterator<Item = (i32, i64)>, top_two_from: i32) -> Tally {
    let mut t = Tally::default();
    for (value, n) in rows {
        add(&mut t, value, n, top_two_from);
    }
    t
}

/// Tallies of the scored rows, grouped by `group` (a period, an attribute's value).
fn tallies_by<K: Ord>(
    rows: &[Count],
    top_two_from: i32,
    group: impl Fn(&Count) -> K,
) -> BTreeMap<K, Tally> {
    let mut grouped: BTreeMap<K, Tally> = BTreeMap::new();
    for row in rows {
        if let Some(value) = row.number_value {
            add(
                grouped.entry(group(row)).or_default(),
                value,
                row.n,
                top_two_from,
            );
        }
    }
    grouped
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TrendPoint {
    /// The first day of the interval (weeks start on Monday).
    pub period: String,
    pub n: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nps: Option<NpsFigures>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csat: Option<CsatFigures>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BreakdownRow {
    /// The attribute's value (JSON): as the customer had it when answering, or their
    /// current one (see `as_answered`); null for those without it.
    #[schema(value_type = Value)]
    pub value: Value,
    pub n: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nps: Option<NpsFigures>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csat: Option<CsatFigures>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Breakdown {
    pub attribute: String,
    /// True when the attribute is the survey's `breakdown`, recorded with each answer:
    /// answers count under the value the customer had when answering. False: under
    /// each customer's current value.
    pub as_answered: bool,
    pub groups: Vec<BreakdownRow>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TextAnswer {
    pub response_id: String,
    pub text: String,
    pub answered_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QuestionReport {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: QuestionType,
    /// Responses that answered it.
    pub answered: i64,
    /// Answers per value, every possible value listed (options by id, scores by number).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distribution: Option<Vec<ValueCount>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csat: Option<CsatFigures>,
    /// The latest text answers (at most 50).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_answers: Option<Vec<TextAnswer>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ValueCount {
    #[schema(schema_with = super::definition::answer_value_schema)]
    pub value: Value,
    pub count: i64,
}

impl ValueCount {
    fn zero(value: Value) -> Self {
        Self { value, count: 0 }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VersionCount {
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub responses: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Report {
    pub survey_id: String,
    /// The version reported on; null: all versions, with the current questions.
    pub version: Option<i32>,
    pub versions: Vec<VersionCount>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub displays: i64,
    pub dismissals: i64,
    /// Responses started in the period (at least one answer).
    pub responses: i64,
    pub finished: i64,
    /// responses ÷ displays; null without displays.
    pub response_rate: Option<f64>,
    /// From the first `nps` question; absent when the survey has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nps: Option<NpsFigures>,
    /// From the first `rating` question; absent when the survey has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csat: Option<CsatFigures>,
    pub interval: String,
    pub trend: Vec<TrendPoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breakdown: Option<Breakdown>,
    pub questions: Vec<QuestionReport>,
}

pub struct Request<'a> {
    pub scope: Scope,
    pub definition: &'a Definition,
    pub interval: Interval,
    pub by: Option<&'a str>,
}

/// The scored question a report leads with, and where its top two points start.
fn headline(definition: &Definition) -> Option<(&str, bool, i32)> {
    if let Some(q) = definition.nps_question() {
        return Some((&q.id, true, 9));
    }
    definition
        .questions
        .iter()
        .find(|q| q.kind == QuestionType::Rating)
        .map(|q| (q.id.as_str(), false, i32::from(q.scale.unwrap_or(5)) - 1))
}

fn figures(t: &Tally, is_nps: bool) -> (Option<NpsFigures>, Option<CsatFigures>) {
    if is_nps {
        (Some(t.nps()), None)
    } else {
        (None, Some(t.csat()))
    }
}

pub fn build(conn: &mut DbConnection, request: &Request<'_>) -> Result<Report, StorageError> {
    Ok(assemble(request, count_all(conn, request)?))
}

/// Every survey that asks an NPS question, with its report over all time (the trend by
/// `interval`), highest priority first.
pub fn nps_reports(
    conn: &mut DbConnection,
    interval: Interval,
) -> Result<Vec<(super::store::Survey, Report)>, StorageError> {
    let mut reports = Vec::new();
    for survey in super::store::list(conn, None)? {
        if survey.definition.nps_question().is_none() {
            continue;
        }
        let report = build(
            conn,
            &Request {
                scope: Scope::all_time(&survey.id),
                definition: &survey.definition,
                interval,
                by: None,
            },
        )?;
        reports.push((survey, report));
    }
    Ok(reports)
}

/// Everything a report needs from the database, counted there.
#[derive(Default)]
struct Counted {
    displays: i64,
    dismissals: i64,
    responses: i64,
    finished: i64,
    /// Answer counts by day and value, per question that is not free text.
    by_day: BTreeMap<String, Vec<Count>>,
    /// The headline question's counts by the breakdown attribute, when asked for.
    breakdown: Option<Vec<Count>>,
    /// Responses that answered, for questions whose rows do not say it (multiple
    /// choice has a row per option; free text has no counts).
    answered: BTreeMap<String, i64>,
    /// The latest free-text answers, per text question.
    text_answers: BTreeMap<String, Vec<TextAnswer>>,
}

/// The queries: one grouped query per question, by day, and a few counts; totals, the
/// trend and distributions are sums over their rows, made by `assemble`.
fn count_all(conn: &mut DbConnection, request: &Request<'_>) -> Result<Counted, StorageError> {
    let scope = &request.scope;
    let mut shown = survey_displays::table
        .filter(survey_displays::survey_id.eq(&scope.survey_id))
        .filter(survey_displays::shown_at.ge(scope.from))
        .filter(survey_displays::shown_at.lt(scope.to))
        .select((count_star(), count(survey_displays::dismissed_at)))
        .into_boxed();
    let started = || {
        let mut q = survey_responses::table
            .filter(survey_responses::survey_id.eq(&scope.survey_id))
            .filter(survey_responses::started_at.ge(scope.from))
            .filter(survey_responses::started_at.lt(scope.to))
            .into_boxed();
        if let Some(v) = scope.version {
            q = q.filter(survey_responses::version.eq(v));
        }
        q
    };
    if let Some(v) = scope.version {
        shown = shown.filter(survey_displays::version.eq(v));
    }
    let mut counted = Counted::default();
    (counted.displays, counted.dismissals) = shown.first(conn)?;
    counted.responses = started().count().get_result(conn)?;
    counted.finished = started()
        .filter(survey_responses::finished.eq(true))
        .count()
        .get_result(conn)?;
    let headline_id = headline(request.definition).map(|(id, _, _)| id);
    // A breakdown recorded with the answers comes out of the headline question's one
    // pass; by a current value it needs a pass of its own, joined with the profile.
    let recorded = request
        .by
        .is_some_and(|key| recorded_breakdown(request.definition, key));
    for question in &request.definition.questions {
        if question.kind == QuestionType::Text {
            continue;
        }
        let rows = if recorded && headline_id == Some(question.id.as_str()) {
            let rows = counts(conn, scope, &question.id, Some(By::DayAndRecorded))?;
            let (by_day, by_value) = split_recorded(rows);
            counted.breakdown = Some(by_value);
            by_day
        } else {
            counts(conn, scope, &question.id, None)?
        };
        counted.by_day.insert(question.id.clone(), rows);
    }
    if let (Some(question_id), Some(key), false) = (headline_id, request.by, recorded) {
        counted.breakdown = Some(counts(conn, scope, question_id, Some(By::Current(key)))?);
    }
    for question in &request.definition.questions {
        let answers_in_scope = || {
            let mut q = survey_answers::table
                .filter(survey_answers::survey_id.eq(&scope.survey_id))
                .filter(survey_answers::question_id.eq(&question.id))
                .filter(survey_answers::answered_at.ge(scope.from))
                .filter(survey_answers::answered_at.lt(scope.to))
                .into_boxed();
            if let Some(v) = scope.version {
                q = q.filter(survey_answers::version.eq(v));
            }
            q
        };
        // One row per answer, except multiple choice: one per chosen option.
        if matches!(
            question.kind,
            QuestionType::MultiChoice | QuestionType::Text
        ) {
            let answered: i64 = answers_in_scope()
                .filter(survey_answers::ordinal.eq(0))
                .count()
                .get_result(conn)?;
            counted.answered.insert(question.id.clone(), answered);
        }
        if question.kind == QuestionType::Text {
            let latest: Vec<(String, Option<String>, NaiveDateTime)> = answers_in_scope()
                .select((
                    survey_answers::response_id,
                    survey_answers::free_text,
                    survey_answers::answered_at,
                ))
                .order(survey_answers::answered_at.desc())
                .limit(TEXT_ANSWERS)
                .load(conn)?;
            let latest = latest
                .into_iter()
                .map(|(response_id, text, at)| TextAnswer {
                    response_id,
                    text: text.unwrap_or_default(),
                    answered_at: at.and_utc(),
                })
                .collect();
            counted.text_answers.insert(question.id.clone(), latest);
        }
    }
    Ok(counted)
}

/// The report from what was counted: no database, so its arithmetic is testable alone.
fn assemble(request: &Request<'_>, mut counted: Counted) -> Report {
    let scope = &request.scope;
    let (displays, responses) = (counted.displays, counted.responses);
    let mut report = Report {
        survey_id: scope.survey_id.clone(),
        version: scope.version,
        versions: Vec::new(),
        from: None,
        to: None,
        displays,
        dismissals: counted.dismissals,
        responses,
        finished: counted.finished,
        response_rate: (displays > 0)
            .then(|| (responses as f64 / displays as f64 * 1000.0).round() / 1000.0),
        nps: None,
        csat: None,
        interval: match request.interval {
            Interval::Day => "day",
            Interval::Week => "week",
            Interval::Month => "month",
        }
        .into(),
        trend: Vec::new(),
        breakdown: None,
        questions: Vec::new(),
    };

    if let Some((question_id, is_nps, top_two_from)) = headline(request.definition) {
        let rows = counted
            .by_day
            .get(question_id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let total = tally(
            rows.iter().filter_map(|r| Some((r.number_value?, r.n))),
            top_two_from,
        );
        (report.nps, report.csat) = figures(&total, is_nps);
        let period = |row: &Count| {
            let day = row.bucket.clone().unwrap_or_default();
            NaiveDate::parse_from_str(&day, "%Y-%m-%d")
                .map(|d| request.interval.period_of(d).to_string())
                .unwrap_or(day)
        };
        report.trend = tallies_by(rows, top_two_from, period)
            .into_iter()
            .map(|(period, t)| {
                let (nps, csat) = figures(&t, is_nps);
                TrendPoint {
                    period,
                    n: t.n,
                    nps,
                    csat,
                }
            })
            .collect();
        if let (Some(key), Some(rows)) = (request.by, counted.breakdown.as_deref()) {
            let groups = tallies_by(rows, top_two_from, |row| row.bucket.clone())
                .into_iter()
                .map(|(value, t)| {
                    let (nps, csat) = figures(&t, is_nps);
                    BreakdownRow {
                        value: value
                            .and_then(|v| serde_json::from_str(&v).ok())
                            .unwrap_or(Value::Null),
                        n: t.n,
                        nps,
                        csat,
                    }
                })
                .collect();
            report.breakdown = Some(Breakdown {
                attribute: key.to_owned(),
                as_answered: recorded_breakdown(request.definition, key),
                groups,
            });
        }
    }

    for question in &request.definition.questions {
        let rows = counted.by_day.remove(&question.id).unwrap_or_default();
        let answered = match counted.answered.get(&question.id) {
            Some(n) => *n,
            None => rows.iter().map(|r| r.n).sum(),
        };
        let mut entry = QuestionReport {
            id: question.id.clone(),
            kind: question.kind,
            answered,
            distribution: None,
            mean: None,
            csat: None,
            text_answers: None,
        };
        if question.kind == QuestionType::Text {
            entry.text_answers = Some(
                counted
                    .text_answers
                    .remove(&question.id)
                    .unwrap_or_default(),
            );
            report.questions.push(entry);
            continue;
        }
        let mut distribution: Vec<ValueCount> = match question.kind {
            QuestionType::SingleChoice | QuestionType::MultiChoice => question
                .options
                .iter()
                .flatten()
                .map(|o| ValueCount::zero(Value::from(o.id.clone())))
                .collect(),
            QuestionType::Boolean => vec![
                ValueCount::zero(Value::from(false)),
                ValueCount::zero(Value::from(true)),
            ],
            _ => question
                .range()
                .map(|(min, max)| {
                    (min..=max)
                        .map(|v| ValueCount::zero(Value::from(v)))
                        .collect()
                })
                .unwrap_or_default(),
        };
        for row in &rows {
            let value = match (question.kind, row.number_value, &row.text_value) {
                (QuestionType::Boolean, Some(v), _) => Value::from(v != 0),
                (_, Some(v), _) => Value::from(v),
                (_, None, Some(t)) => Value::from(t.clone()),
                _ => continue,
            };
            match distribution.iter_mut().find(|d| d.value == value) {
                Some(d) => d.count += row.n,
                // An option of an earlier version that the current one no longer has.
                None => distribution.push(ValueCount {
                    value,
                    count: row.n,
                }),
            }
        }
        if let Some((_, max)) = question.range() {
            let t = tally(
                rows.iter().filter_map(|r| Some((r.number_value?, r.n))),
                max as i32 - 1,
            );
            entry.mean = t.csat().mean;
            if question.kind == QuestionType::Rating {
                entry.csat = Some(t.csat());
            }
        }
        entry.distribution = Some(distribution);
        report.questions.push(entry);
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pass_by_day_and_recorded_value_sums_both_ways() {
        let row = |day: &str, plan: Option<&str>, score: i32, n: i64| Count {
            bucket: Some(day.into()),
            segment: plan.map(Into::into),
            number_value: Some(score),
            text_value: None,
            n,
        };
        let (by_day, by_value) = split_recorded(vec![
            row("2026-12-01", Some("\"pro\""), 10, 2),
            row("2026-12-01", Some("\"free\""), 10, 1),
            row("2026-12-02", Some("\"pro\""), 10, 4),
            row("2026-12-02", None, 3, 5),
        ]);
        let flat = |counts: Vec<Count>| -> Vec<(Option<String>, Option<i32>, i64)> {
            counts
                .into_iter()
                .map(|c| (c.bucket, c.number_value, c.n))
                .collect()
        };
        assert_eq!(
            flat(by_day),
            vec![
                (Some("2026-12-01".into()), Some(10), 3),
                (Some("2026-12-02".into()), Some(3), 5),
                (Some("2026-12-02".into()), Some(10), 4),
            ]
        );
        assert_eq!(
            flat(by_value),
            vec![
                (None, Some(3), 5),
                (Some("\"free\"".into()), Some(10), 1),
                (Some("\"pro\"".into()), Some(10), 6),
            ]
        );
    }

    #[test]
    fn a_report_is_assembled_from_counts_alone() {
        let nps = crate::surveys::templates::built_in()
            .unwrap()
            .into_iter()
            .find(|s| s.kind == crate::surveys::definition::SurveyKind::Nps)
            .unwrap();
        let definition = Definition {
            questions: nps.questions,
            targeting: nps.targeting,
            throttling: nps.throttling,
            breakdown: nps.breakdown,
        };
        let (score_id, _, _) = headline(&definition).unwrap();
        let day = |d: &str, score: i32, n: i64| Count {
            bucket: Some(d.into()),
            segment: None,
            number_value: Some(score),
            text_value: None,
            n,
        };
        let mut counted = Counted {
            displays: 10,
            responses: 4,
            finished: 4,
            ..Counted::default()
        };
        counted.by_day.insert(
            score_id.to_owned(),
            vec![
                day("2026-11-02", 10, 2),
                day("2026-11-10", 3, 1),
                day("2026-11-10", 8, 1),
            ],
        );
        let at = chrono::NaiveDate::from_ymd_opt(2026, 11, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        let request = Request {
            scope: Scope {
                survey_id: "s".into(),
                from: at,
                to: at + TimeDelta::days(30),
                version: None,
            },
            definition: &definition,
            interval: Interval::Week,
            by: None,
        };
        let report = assemble(&request, counted);
        assert_eq!(report.response_rate, Some(0.4));
        let nps = report.nps.unwrap();
        // 2 promoters, 1 passive, 1 detractor of 4: NPS 25.
        assert_eq!((nps.n, nps.score), (4, Some(25.0)));
        assert_eq!(report.trend.len(), 2, "two weeks");
        let score = report.questions.iter().find(|q| q.id == score_id).unwrap();
        assert_eq!(score.answered, 4);
    }

    #[test]
    fn periods_start_on_the_first_day() {
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        // 2026-11-23 is a Monday.
        assert_eq!(
            Interval::Week.period_of(day("2026-11-23")),
            day("2026-11-23")
        );
        assert_eq!(
            Interval::Week.period_of(day("2026-11-29")),
            day("2026-11-23")
        );
        assert_eq!(
            Interval::Week.period_of(day("2026-11-30")),
            day("2026-11-30")
        );
        assert_eq!(
            Interval::Month.period_of(day("2026-11-29")),
            day("2026-11-01")
        );
        assert_eq!(
            Interval::Day.period_of(day("2026-11-29")),
            day("2026-11-29")
        );
    }

    #[test]
    fn tallies_split_nps_and_csat() {
        let t = tally([(10, 3), (8, 1), (5, 2), (4, 1)].into_iter(), 4);
        assert_eq!((t.n, t.high, t.low, t.top_two), (7, 3, 3, 7));
        assert_eq!(t.sum, 30 + 8 + 10 + 4);
    }
}
