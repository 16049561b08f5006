//! The doors: `POST /v1/subjects/{id}/portal-sessions` and `POST /v1/console-sessions`
//! make single-use links; `GET /portal/enter/{token}` exchanges one for a session
//! cookie; `POST /portal/sign-out` ends it.

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use validator::Validate;

use super::{checked_form, message_page, respond, see_other, session_cookie, Failure, Visit};
use crate::audit::{self, Actor, AuditEntry};
use crate::auth::{Principal, Role};
use crate::consent::{subject, SubjectId};
use crate::http::extract::OptionalJson;
use crate::http::limits::Refused;
use crate::http::responses::{AuthProblems, BodyProblems};
use crate::http::subject_path::{SubjectCaller, SubjectPath};
use crate::http::{ApiError, AppState, Problem};
use crate::portal::i18n::Lang;
use crate::portal::session::{self, Holder, LinkError, NewLink};

const CENTRE_ISSUERS: [Role; 2] = [Role::Service, Role::Admin];
const CONSOLE_ISSUERS: [Role; 2] = [Role::Compliance, Role::Admin];

#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"return_url": "https://shop.example/account", "locale": "ar"}))]
pub struct NewPortalSession {
    /// Where "back to the site" leads; must lie under a configured allowed prefix.
    #[validate(length(max = 2000))]
    pub return_url: Option<String>,
    /// The page language (`en` or `ar`); default the customer's, else the browser's.
    #[validate(length(max = 35))]
    #[schema(schema_with = crate::http::schemas::page_language)]
    pub locale: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PortalLink {
    /// Opens the session once, until `expires_at`.
    #[schema(example = "https://privacy.example/portal/enter/7Yp…")]
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

/// Link requests and link openings share one door limit per client address.
fn limited(state: &AppState, req: &HttpRequest) -> Result<(), Refused> {
    let limits = &state.limits;
    limits.portal_doors.check(&limits.client(req))
}

impl From<LinkError> for ApiError {
    fn from(err: LinkError) -> Self {
        match err {
            LinkError::Storage(e) => e.into(),
            LinkError::Random(e) => ApiError::Internal(e.into()),
        }
    }
}

/// Issues a link and records who issued it for whom (the link itself is never logged).
async fn issue(
    state: &AppState,
    principal: &Principal,
    holder: Holder,
    locale: Option<String>,
    return_url: Option<String>,
    lifetime: chrono::Duration,
) -> Result<NewLink, ApiError> {
    let now = state.clock.now();
    let (pseudonyms, actor) = (state.pseudonyms.clone(), Actor::from(principal));
    state
        .db
        .run(move |conn| {
            let link = session::create_link(
                conn,
                &holder,
                locale.as_deref(),
                return_url.as_deref(),
                now,
                lifetime,
            )?;
            audit::record_alone(
                conn,
                &pseudonyms,
                AuditEntry {
                    actor: &actor,
                    action: "portal.link_issued",
                    subject_id: holder.subject().map(SubjectId::as_str),
                    payload: json!({"kind": holder.kind(), "expires_at": link.expires_at}),
                    at: now,
                },
            )?;
            Ok::<_, LinkError>(link)
        })
        .await
        .map_err(ApiError::from)
}

/// Makes a single-use link into a customer's preference centre, for a company to send
/// them (in an e-mail, or as a redirect from its own site).
#[utoipa::path(
    tag = "portal",
    params(SubjectPath),
    request_body(content = Option<NewPortalSession>, description = "Optional"),
    responses(
        (status = 201, description = "The link, valid once until `expires_at`", body = PortalLink),
        (status = 404, description = "No such subject", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many links asked from this address", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u64, description = "Seconds to wait"))),
        BodyProblems, AuthProblems,
    ),
    security(("bearer" = [])),
)]
#[post("/v1/subjects/{id}/portal-sessions")]
pub async fn create_portal_session(
    state: web::Data<AppState>,
    caller: SubjectCaller,
    body: OptionalJson<NewPortalSession>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.access(&CENTRE_ISSUERS, false)?;
    limited(&state, &req)?;
    let NewPortalSession { return_url, locale } = body.0;
    if let Some(url) = &return_url {
        if !state.portal.settings.return_url_allowed(url) {
            return Err(ApiError::invalid(
                "return_url",
                "is not under an allowed return URL (CONSENTRY_PORTAL_RETURN_URLS)",
            ));
        }
    }
    let locale = match locale {
        Some(tag) => Some(
            Lang::from_tag(&tag)
                .ok_or_else(|| ApiError::invalid("locale", "must be `en` or `ar`"))?
                .code()
                .to_owned(),
        ),
        None => None,
    };
    let id = caller.id.clone();
    let found = state
        .db
        .run(move |conn| subject::find(conn, &id))
        .await?
        .ok_or_else(ApiError::not_found)?;
    // Without a language asked for, the customer's own comes first.
    let locale = locale.or_else(|| customer_language(&found));
    let link = issue(
        &state,
        &caller.principal,
        Holder::Customer(caller.id),
        locale,
        return_url,
        state.portal.settings.durations.link,
    )
    .await?;
    Ok(created(&state, link))
}

fn customer_language(subject: &crate::consent::subject::Subject) -> Option<String> {
    subject
        .locale
        .as_deref()
        .and_then(Lang::from_tag)
        .map(|l| l.code().to_owned())
}

fn created(state: &AppState, link: NewLink) -> HttpResponse {
    HttpResponse::Created().json(PortalLink {
        url: state
            .portal
            .settings
            .link(&format!("/portal/enter/{}", link.token)),
        expires_at: link.expires_at,
    })
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"subject_id": "cust-8412", "expires_in_days": 14}))]
pub struct NewSurveyLink {
    #[schema(schema_with = crate::http::subject_path::subject_id_schema)]
    pub subject_id: String,
    /// 1–90 days (default 14). The link opens again until then, so the customer can
    /// finish later.
    #[validate(range(min = 1, max = 90))]
    #[schema(minimum = 1, maximum = 90)]
    pub expires_in_days: Option<u32>,
}

const SURVEY_LINK_DAYS: u32 = 14;

/// Makes the link an NPS or onboarding e-mail carries: it opens the survey page for this
/// customer, in their language. Whether they are shown the survey is decided when the
/// link is opened, by the same rules as `GET /v1/subjects/{id}/surveys/next`.
#[utoipa::path(
    tag = "surveys",
    params(("id" = String, Path, description = "The survey's id or key")),
    request_body = NewSurveyLink,
    responses(
        (status = 201, description = "The link, valid until `expires_at`", body = PortalLink),
        (status = 404, description = "No such survey or subject", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The survey takes no answers (draft or closed)", body = Problem, content_type = "application/problem+json"),
        BodyProblems, AuthProblems,
    ),
    security(("bearer" = [])),
)]
#[post("/v1/surveys/{id}/links")]
pub async fn create_survey_link(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: crate::http::ValidJson<NewSurveyLink>,
) -> Result<HttpResponse, ApiError> {
    principal.require(&[Role::Service])?;
    let body = body.into_inner();
    let subject =
        SubjectId::parse(&body.subject_id).map_err(|m| ApiError::invalid("subject_id", m))?;
    let days = body.expires_in_days.unwrap_or(SURVEY_LINK_DAYS);
    let (survey_key, lookup) = (path.into_inner(), subject.clone());
    let (found_survey, found_subject) = state
        .db
        .run(move |conn| {
            let survey = crate::surveys::store::find(conn, &survey_key)?;
            let subject = subject::find(conn, &lookup)?;
            Ok::<_, crate::storage::StorageError>((survey, subject))
        })
        .await?;
    let (Some(survey), Some(found)) = (found_survey, found_subject) else {
        return Err(ApiError::not_found());
    };
    if survey.status != crate::surveys::definition::SurveyStatus::Active {
        return Err(ApiError::conflict(
            "The survey takes no answers: it is not active.",
        ));
    }
    // The page speaks the customer's language, when the portal speaks it.
    let locale = customer_language(&found);
    let holder = Holder::Respondent {
        subject: found.id,
        survey_id: survey.id,
    };
    let lifetime = chrono::Duration::days(days.into());
    let link = issue(&state, &principal, holder, locale, None, lifetime).await?;
    Ok(created(&state, link))
}

#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConsoleSession {
    /// The console's language (`en` or `ar`).
    #[validate(length(max = 35))]
    #[schema(schema_with = crate::http::schemas::page_language)]
    pub locale: Option<String>,
}

/// Makes a single-use link into the compliance console for the calling officer.
#[utoipa::path(
    tag = "portal",
    request_body(content = Option<NewConsoleSession>, description = "Optional"),
    responses(
        (status = 201, description = "The link, valid once until `expires_at`", body = PortalLink),
        (status = 429, description = "Too many links asked from this address", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u64, description = "Seconds to wait"))),
        BodyProblems, AuthProblems,
    ),
    security(("bearer" = [])),
)]
#[post("/v1/console-sessions")]
pub async fn create_console_session(
    state: web::Data<AppState>,
    principal: Principal,
    body: OptionalJson<NewConsoleSession>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(&CONSOLE_ISSUERS)?;
    limited(&state, &req)?;
    let locale = match body.0.locale {
        Some(tag) => Some(
            Lang::from_tag(&tag)
                .ok_or_else(|| ApiError::invalid("locale", "must be `en` or `ar`"))?
                .code()
                .to_owned(),
        ),
        None => None,
    };
    let holder = Holder::Officer {
        sub: principal.sub.clone().unwrap_or_default(),
        role: principal.role,
    };
    let lifetime = state.portal.settings.durations.link;
    let link = issue(&state, &principal, holder, locale, None, lifetime).await?;
    Ok(created(&state, link))
}

/// Opens a link: a session cookie, then the page the link is for. A used, expired or
/// unknown link gets a page saying so in the visitor's language.
#[get("/portal/enter/{token}")]
pub async fn enter(
    state: web::Data<AppState>,
    token: web::Path<String>,
    req: HttpRequest,
) -> HttpResponse {
    // Whatever session the browser had is about to be replaced: no need to read it for
    // the language of a refusal page; the browser's preference is enough.
    let visit = Visit::anonymous(&req);
    respond(&visit, exchange(&state, &token, &req).await)
}

async fn exchange(
    state: &AppState,
    token: &str,
    req: &HttpRequest,
) -> Result<HttpResponse, Failure> {
    limited(state, req).map_err(Failure::TooMany)?;
    if token.len() != 43
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Failure::Link(session::LinkRefusal::Unknown));
    }
    let (now, durations) = (state.clock.now(), state.portal.settings.durations);
    let token = token.to_owned();
    let opened = state
        .db
        .run(move |conn| {
            crate::storage::write_transaction(conn, |conn| {
                session::exchange(conn, &token, now, &durations)
            })
        })
        .await
        .map_err(Failure::internal)?
        .map_err(Failure::Link)?;
    let landing = match &opened.session.holder {
        Holder::Customer(_) => "/portal",
        Holder::Respondent { .. } => "/portal/survey",
        Holder::Officer { .. } => "/console",
    };
    let lifetime = (opened.session.expires_at - now).num_seconds();
    let mut response = see_other(landing);
    response
        .add_cookie(&session_cookie(state, opened.session_id, lifetime))
        .map_err(Failure::internal)?;
    Ok(response)
}

#[derive(Deserialize)]
struct SignOut {}

/// Ends the session on the server and clears the cookie.
#[post("/portal/sign-out")]
pub async fn sign_out(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let visit = match Visit::of(&state, &req).await {
        Ok(visit) => visit,
        Err(failure) => {
            return super::failure_page(
                &Visit {
                    live: None,
                    lang: Lang::En,
                },
                &failure,
            )
        }
    };
    let result = async {
        let live = visit.require()?;
        let _: SignOut = checked_form(&state, &req, live, &body)?;
        let (id_hash, now) = (live.session.id_hash.clone(), state.clock.now());
        state
            .db
            .run(move |conn| session::end(conn, &id_hash, now))
            .await
            .map_err(Failure::internal)?;
        let back = live.session.return_url.clone();
        let tr = visit.tr();
        let mut response = message_page(&visit, "signed-out-title", tr.t("signed-out"), back);
        let _ = response.add_cookie(&session_cookie(&state, String::new(), 0));
        Ok(response)
    }
    .await;
    let mut response = respond(&visit, result);
    if response.status() == StatusCode::OK {
        return response;
    }
    let _ = response.add_cookie(&session_cookie(&state, String::new(), 0));
    response
}
