//! `POST /v1/reach` and `POST /v1/reach/batch`: where and when a customer may be
//! reached for a purpose, answered from the gate's cache like decisions.

use actix_web::{post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::{check_batch, resolve_all, resolve_one, subject_and_purpose, Resolved};
use crate::auth::{Principal, Role};
use crate::consent::identifiers::{IdentifierInput, SubjectRef};
use crate::consent::signals::request_gpc;
use crate::consent::SubjectSnapshot;
use crate::gate::reach::{channels_in_order, reach, ChannelFacts, Clock, ReachReason};
use crate::gate::rules::{decide_for, DecisionRequest, Reason};
use crate::http::responses::{AuthProblems, BodyProblems};
use crate::http::{ApiError, AppState, FieldError, ValidJson};
use crate::policy::{Channel, Policies, Purpose};

const CALLERS: [Role; 1] = [Role::Service];

/// How far back `at` may be (a request in flight), and how far ahead (a campaign being
/// planned; consents may expire and caps free up by then, and the answer says so).
const AT_PAST: TimeDelta = TimeDelta::minutes(5);
const AT_AHEAD: TimeDelta = TimeDelta::days(90);

#[derive(Debug, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"subject_id": "cust-8412", "purpose": "marketing", "channels": ["whatsapp", "email", "sms"]}))]
pub struct ReachInput {
    /// The subject; or name them by `identifier` instead (exactly one of the two).
    #[schema(schema_with = crate::http::subject_path::optional_subject_id_schema)]
    pub subject_id: Option<String>,
    /// An identifier the subject is known by, instead of `subject_id`.
    pub identifier: Option<IdentifierInput>,
    #[schema(min_length = 1, max_length = 200)]
    pub purpose: String,
    /// Only these channels (each a channel of `GET /v1/channels`, at most once). Without
    /// it: the customer's order (or their country's default), then any other channel
    /// they opted in to.
    #[schema(schema_with = asked_channels_schema)]
    pub channels: Option<Vec<String>>,
    /// The moment to answer for; default now. From five minutes ago to 90 days ahead.
    pub at: Option<DateTime<Utc>>,
}

fn asked_channels_schema() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            utoipa::openapi::schema::Type::Array,
            utoipa::openapi::schema::Type::Null,
        ]))
        .items(crate::consent::preferences::channel_schema())
        .min_items(Some(1))
        .max_items(Some(MAX_ASKED))
        .build()
}

const MAX_ASKED: usize = 32;

/// One channel's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelReachView {
    #[schema(example = "whatsapp")]
    pub channel: String,
    pub allowed: bool,
    pub reason: ReachReason,
    /// The gate's reason when the purpose is denied on this channel
    /// (`reason: purpose_denied`), e.g. `no_consent`, `channel_opted_out`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_reason: Option<Reason>,
    /// When the channel may be used again, for a cap or quiet hours.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_allowed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReachView {
    /// The subject answered for; null when the identifier names nobody.
    #[schema(example = "cust-8412")]
    pub subject_id: Option<String>,
    #[schema(example = "marketing")]
    pub purpose: String,
    /// False when no such subject exists: the default jurisdiction and order decided.
    pub subject_known: bool,
    #[schema(example = "eea")]
    pub jurisdiction: String,
    /// The moment answered for.
    pub at: DateTime<Utc>,
    /// The time zone quiet hours and caps were reckoned in: the customer's, else UTC.
    #[schema(example = "Europe/Berlin")]
    pub timezone: String,
    /// Null when the order is the customer's own; otherwise where the default came from:
    /// a region (`BR`), a jurisdiction (`eea`) or `default`.
    #[schema(example = "BR")]
    pub channel_order_default_for: Option<String>,
    /// The first channel allowed now, if any: where to send.
    #[schema(example = "whatsapp")]
    pub first_allowed: Option<String>,
    /// Every channel answered, most preferred first.
    pub channels: Vec<ChannelReachView>,
}

/// A checked request.
struct Checked<'p> {
    subject: SubjectRef,
    purpose: &'p Purpose,
    asked: Option<Vec<Channel>>,
    at: Option<DateTime<Utc>>,
}

fn check<'p>(
    policies: &'p Policies,
    input: ReachInput,
    prefix: &str,
    now: DateTime<Utc>,
) -> Result<Checked<'p>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let field = |name: &str| format!("{prefix}{name}");
    let (subject, purpose) = subject_and_purpose(
        policies,
        input.subject_id.as_deref(),
        input.identifier.as_ref(),
        &input.purpose,
        prefix,
        &mut errors,
    );
    let asked = input.channels.map(|names| {
        if names.is_empty() || names.len() > MAX_ASKED {
            errors.push(FieldError::new(
                field("channels"),
                "length",
                format!("between 1 and {MAX_ASKED} channels, or leave it out"),
            ));
        }
        let mut asked: Vec<Channel> = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate().take(MAX_ASKED) {
            match policies
                .channels
                .checked(name, field(&format!("channels[{i}]")))
            {
                Ok(channel) if asked.contains(&channel) => errors.push(FieldError::new(
                    field(&format!("channels[{i}]")),
                    "duplicate",
                    format!("`{name}` is listed twice"),
                )),
                Ok(channel) => asked.push(channel),
                Err(e) => errors.push(e),
            }
        }
        asked
    });
    if let Some(at) = input.at {
        if at < now - AT_PAST || at > now + AT_AHEAD {
            errors.push(FieldError::new(
                field("at"),
                "out_of_range",
                "from five minutes ago to 90 days ahead (leave it out for now)",
            ));
        }
    }
    match (subject, purpose, errors.is_empty()) {
        (Some(subject), Some(purpose), true) => Ok(Checked {
            subject,
            purpose,
            asked,
            at: input.at,
        }),
        _ => Err(errors),
    }
}

/// The answer for one checked request: pure but for the metrics.
fn answer(
    state: &AppState,
    checked: &Checked<'_>,
    resolved: &Resolved,
    gpc: bool,
    now: DateTime<Utc>,
) -> ReachView {
    let policies = &state.policies;
    let snapshot: &SubjectSnapshot = &resolved.snapshot;
    let at = checked.at.unwrap_or(now);
    let preferences = snapshot.preferences.as_ref();
    let own: Vec<Channel> = preferences
        .map(|p| {
            p.channel_order
                .iter()
                .filter_map(|c| policies.channels.parse(c))
                .collect()
        })
        .unwrap_or_default();
    let default = match &snapshot.subject {
        Some(subject) => policies.default_channel_order(&subject.region),
        None => policies.channels.fallback_order(),
    };
    let opted_in: Vec<Channel> = preferences
        .map(|p| {
            p.opted_in()
                .filter_map(|c| policies.channels.parse(c))
                .collect()
        })
        .unwrap_or_default();
    let order = channels_in_order(&own, default.channels, &opted_in, checked.asked.as_deref());
    let zone = preferences.and_then(|p| p.zone()).unwrap_or(Tz::UTC);
    let clock = Clock {
        zone,
        quiet: preferences.and_then(|p| p.quiet_times()),
    };
    let mut jurisdiction = None;
    let channels: Vec<ChannelReachView> = order
        .iter()
        .map(|channel| {
            let category = policies
                .channels
                .spec(channel)
                .map(|s| vec![s.category.clone()])
                .unwrap_or_default();
            let decision = decide_for(
                policies,
                snapshot,
                &DecisionRequest {
                    purpose: checked.purpose,
                    channel: Some(channel),
                    data_categories: &category,
                    gpc,
                    now: at,
                },
            );
            let choice = preferences.and_then(|p| p.channels.get(channel.as_str()));
            let answer = reach(
                &ChannelFacts {
                    decision: &decision,
                    needs_opt_in: policies
                        .channels
                        .needs_opt_in(channel, &decision.jurisdiction),
                    opted_in: choice.is_some_and(|c| c.opted_in),
                    cap: choice.and_then(|c| c.max_per_week),
                    sent: snapshot.sent.on(channel.as_str()),
                },
                &clock,
                at,
            );
            state.gate.count_reach(answer.reason);
            jurisdiction.get_or_insert_with(|| decision.jurisdiction.clone());
            ChannelReachView {
                channel: channel.to_string(),
                allowed: answer.allowed,
                reason: answer.reason,
                decision_reason: (answer.reason == ReachReason::PurposeDenied)
                    .then_some(decision.reason),
                next_allowed_at: answer.next_allowed_at,
            }
        })
        .collect();
    let jurisdiction = jurisdiction.unwrap_or_else(|| match &snapshot.subject {
        Some(subject) => policies
            .jurisdictions
            .for_region(&subject.region)
            .key
            .clone(),
        None => policies.jurisdictions.default_jurisdiction().key.clone(),
    });
    ReachView {
        subject_id: resolved.subject.as_ref().map(|s| s.to_string()),
        purpose: checked.purpose.key.clone(),
        subject_known: snapshot.subject.is_some(),
        jurisdiction,
        at,
        timezone: zone.name().to_owned(),
        channel_order_default_for: own.is_empty().then(|| default.from.to_owned()),
        first_allowed: channels
            .iter()
            .find(|c| c.allowed)
            .map(|c| c.channel.clone()),
        channels,
    }
}

/// Which channels may carry a message to this customer for this purpose now, most
/// preferred first, and when the others may.
///
/// A channel is allowed only when the gate allows the purpose on it (consents, opt-outs,
/// objections, minors, erasure, and the channel's data category declared by the
/// purpose), the customer opted in to it where their jurisdiction needs that, their
/// weekly cap for it is not used up (a rolling week in their time zone, counted from
/// `POST /v1/subjects/{id}/contacts`), and it is not quiet hours where they are.
/// Answered from the gate's cache for a known subject.
#[utoipa::path(
    tag = "decisions",
    params(("Sec-GPC" = Option<String>, Header, description = "`1`: a Global Privacy Control signal")),
    request_body = ReachInput,
    responses((status = 200, description = "The channels, most preferred first", body = ReachView), BodyProblems, AuthProblems),
    security(("bearer" = [])),
)]
#[post("/v1/reach")]
pub async fn reach_one(
    state: web::Data<AppState>,
    principal: Principal,
    body: ValidJson<ReachInput>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(&CALLERS)?;
    let (now, gpc) = (state.clock.now(), request_gpc(&req));
    let checked =
        check(&state.policies, body.into_inner(), "", now).map_err(ApiError::Validation)?;
    let resolved = resolve_one(&state, &principal, &req, &checked.subject, gpc, now).await?;
    Ok(HttpResponse::Ok().json(answer(&state, &checked, &resolved, gpc, now)))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReachBatchInput {
    /// 1–1,000 questions.
    #[schema(min_items = 1, max_items = 1000)]
    pub items: Vec<ReachInput>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReachBatchView {
    /// One answer per item, in order.
    pub results: Vec<ReachView>,
}

/// Up to 1,000 reach questions at once (a campaign's audience), answered in order. Any
/// bad item is a 422 naming it (`items[3].channels[0]`), and nothing is answered.
#[utoipa::path(
    tag = "decisions",
    params(("Sec-GPC" = Option<String>, Header, description = "`1`: a Global Privacy Control signal, for every item")),
    request_body = ReachBatchInput,
    responses((status = 200, description = "The answers, in order", body = ReachBatchView), BodyProblems, AuthProblems),
    security(("bearer" = [])),
)]
#[post("/v1/reach/batch")]
pub async fn reach_batch(
    state: web::Data<AppState>,
    principal: Principal,
    body: ValidJson<ReachBatchInput>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(&CALLERS)?;
    let now = state.clock.now();
    let checked = check_batch(body.into_inner().items, |item, prefix| {
        check(&state.policies, item, prefix, now)
    })?;
    let gpc = request_gpc(&req);
    let asked: Vec<&SubjectRef> = checked.iter().map(|c| &c.subject).collect();
    let resolved = resolve_all(&state, &principal, &req, &asked, gpc, now).await?;
    let results = checked
        .iter()
        .zip(&resolved)
        .map(|(c, r)| answer(&state, c, r, gpc, now))
        .collect();
    Ok(HttpResponse::Ok().json(ReachBatchView { results }))
}
