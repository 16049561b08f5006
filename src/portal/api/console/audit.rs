//! `GET /console/audit`: the audit log's page; `GET /console/audit/verify` re-walks the
//! chain and shows the signed head, as `GET /v1/audit/verify` does; `POST
//! /console/audit/export` streams an export of a date range (JSON Lines or CSV), made and
//! recorded by the audit room exactly as `GET /v1/audit/events` makes it.

use actix_web::http::{header, StatusCode};
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::Deserialize;

use super::{nav, officer_in, signed_in_as, NavItem, Section};
use crate::audit::checkpoint;
use crate::audit::export::stream::{self, ExportFormat, ExportRequest};
use crate::http::AppState;
use crate::portal::api::{checked_form, html, respond, Chrome, Failure, Visit};
use crate::portal::i18n::Tr;

/// The verification as the page shows it.
pub struct Verified {
    pub ok: bool,
    pub summary: String,
    pub head_seq: String,
    pub head_hash: String,
    pub signed_head: String,
}

/// The export form as sent, with its errors.
#[derive(Debug, Default)]
pub struct ExportFields {
    pub from: String,
    pub to: String,
    pub csv: bool,
    pub from_error: Option<String>,
    pub to_error: Option<String>,
}

impl ExportFields {
    pub fn has_errors(&self) -> bool {
        self.from_error.is_some() || self.to_error.is_some()
    }
}

#[derive(Template)]
#[template(path = "portal/console_audit.html")]
struct AuditPage {
    chrome: Chrome,
    who: String,
    nav: Vec<NavItem>,
    csrf: String,
    verified: Option<Verified>,
    export: ExportFields,
}

fn audit_page(
    visit: &Visit,
    path: &str,
    verified: Option<Verified>,
    export: ExportFields,
) -> Result<HttpResponse, Failure> {
    let officer = officer_in(visit, Section::Audit)?;
    let tr = visit.tr();
    let status = if export.has_errors() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = AuditPage {
        chrome: Chrome::new(visit, &Section::Audit.title_key(), path),
        who: signed_in_as(&tr, &officer),
        nav: nav(&tr, &officer, Some(Section::Audit)),
        csrf: officer.live.csrf(),
        verified,
        export,
    };
    Ok(html(status, &page))
}

#[get("/console/audit")]
pub async fn audit_log(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let visit = Visit::load(&state, &req).await;
    let result = audit_page(&visit, Section::Audit.path(), None, ExportFields::default());
    respond(&visit, result)
}

/// Re-walks the whole chain (reading only) and signs the head it reached.
#[get("/console/audit/verify")]
pub async fn verify_chain(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let visit = Visit::load(&state, &req).await;
    let result = async {
        officer_in(&visit, Section::Audit)?;
        let keys = state.keys.clone();
        let check = state
            .db
            .run(move |conn| crate::audit::verify(conn, &keys, None, None))
            .await
            .map_err(Failure::internal)?;
        let signed_head = checkpoint::sign_head(
            &state.keys,
            &state.receipts.issuer,
            &check,
            state.clock.now(),
        )
        .map_err(Failure::internal)?;
        let tr = visit.tr();
        let summary = match check.first_bad_seq {
            None => tr.with(
                "audit-ok",
                &[
                    ("events", tr.int(check.checked as i64)),
                    ("checkpoints", tr.int(check.checkpoints_checked as i64)),
                ],
            ),
            Some(seq) => tr.with(
                "audit-broken",
                &[
                    ("seq", tr.int(seq)),
                    ("problem", check.problem.clone().unwrap_or_default()),
                ],
            ),
        };
        let verified = Verified {
            ok: check.ok(),
            summary,
            head_seq: tr.int(check.head_seq),
            head_hash: check.head_hash.clone(),
            signed_head,
        };
        audit_page(
            &visit,
            "/console/audit/verify",
            Some(verified),
            ExportFields::default(),
        )
    }
    .await;
    respond(&visit, result)
}

#[derive(Deserialize)]
struct ExportForm {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    format: String,
}

/// An export's bounds: `None` is no limit.
type Range = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// A day as the form sends it (`YYYY-MM-DD`); empty is no bound.
fn day(text: &str) -> Result<Option<NaiveDate>, ()> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| ())
}

/// The form's days as the export's times: from the first day's midnight to the last
/// microsecond of the last day (export bounds are inclusive, to the microsecond).
fn read_range(tr: &Tr, form: &ExportForm) -> Result<Range, ExportFields> {
    let mut fields = ExportFields {
        from: form.from.trim().to_owned(),
        to: form.to.trim().to_owned(),
        csv: form.format == "csv",
        ..ExportFields::default()
    };
    let from = day(&form.from).unwrap_or_else(|()| {
        fields.from_error = Some(tr.t("audit-date-invalid"));
        None
    });
    let to = day(&form.to).unwrap_or_else(|()| {
        fields.to_error = Some(tr.t("audit-date-invalid"));
        None
    });
    if let (Some(f), Some(t)) = (from, to) {
        if t < f {
            fields.to_error = Some(tr.t("audit-range-invalid"));
        }
    }
    if fields.has_errors() {
        return Err(fields);
    }
    let midnight = |d: NaiveDate| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    Ok((
        from.map(midnight),
        to.map(|d| midnight(d) + TimeDelta::days(1) - TimeDelta::microseconds(1)),
    ))
}

/// The export, recorded in the chain then streamed with constant memory.
#[post("/console/audit/export")]
pub async fn download(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let visit = Visit::load(&state, &req).await;
    let result = async {
        let officer = officer_in(&visit, Section::Audit)?;
        let form: ExportForm = checked_form(&state, &req, officer.live, &body)?;
        let format = match form.format.as_str() {
            "csv" => ExportFormat::Csv,
            _ => ExportFormat::Jsonl,
        };
        let (from, to) = match read_range(&visit.tr(), &form) {
            Ok(range) => range,
            Err(fields) => return audit_page(&visit, Section::Audit.path(), None, fields),
        };
        let request = ExportRequest {
            from,
            to,
            ..ExportRequest::default()
        };
        let (pseudonyms, now) = (state.pseudonyms.clone(), state.clock.now());
        let actor = officer.live.session.holder.actor();
        let prepared = state
            .db
            .run(move |conn| stream::prepare(conn, &pseudonyms, &actor, request, now))
            .await
            .map_err(Failure::internal)?;
        let name = format!(
            "attachment; filename=\"audit-{}.{}\"",
            now.format("%Y%m%dT%H%M%SZ"),
            format.extension()
        );
        let chunks = stream::stream(state.export_sources(), prepared, format);
        let mut response = crate::http::streamed(format.content_type(), chunks);
        if let Ok(value) = header::HeaderValue::from_str(&name) {
            response
                .headers_mut()
                .insert(header::CONTENT_DISPOSITION, value);
        }
        Ok(response)
    }
    .await;
    respond(&visit, result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::portal::i18n::Lang;

    fn form(from: &str, to: &str) -> ExportForm {
        ExportForm {
            from: from.into(),
            to: to.into(),
            format: "csv".into(),
        }
    }

    #[test]
    fn a_day_range_covers_the_last_day_whole() {
        let tr = Tr::new(Lang::En);
        let (from, to) = read_range(&tr, &form("2026-11-01", "2026-11-01")).unwrap();
        assert_eq!(from.unwrap().to_rfc3339(), "2026-11-01T00:00:00+00:00");
        assert_eq!(to.unwrap().to_rfc3339(), "2026-11-01T23:59:59.999999+00:00");
        assert_eq!(read_range(&tr, &form("", "")).unwrap(), (None, None));
    }

    #[test]
    fn bad_days_are_named_by_field() {
        let tr = Tr::new(Lang::En);
        let fields = read_range(&tr, &form("yesterday", "2026-11-01")).unwrap_err();
        assert!(fields.from_error.is_some() && fields.to_error.is_none());
        assert!(fields.csv);
        let fields = read_range(&tr, &form("2026-11-02", "2026-11-01")).unwrap_err();
        assert!(fields.to_error.is_some());
        assert_eq!(fields.from, "2026-11-02");
    }
}
