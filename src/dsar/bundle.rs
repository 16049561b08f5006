//! The access and portability bundle (GDPR Art. 15 and 20, the CCPA right to know):
//! everything held on one subject, as one JSON document.
//!
//! Its types are its own, built from the domains' records and never from the API's
//! response types, so that changing an endpoint cannot change what a regulator receives.
//! A change to what a member holds, or to its shape, is a new `bundle_version` (and
//! `format`), whatever version the API is at.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::audit::chain::ChainedEvent;
use crate::audit::{self, Actor, AuditEntry, Pseudonymizer};
use crate::consent::contacts::{self, Contact};
use crate::consent::identifiers::{self, Identifier};
use crate::consent::ledger::{self, ConsentRecord, ConsentSource, ConsentStatus, IpSource};
use crate::consent::preferences::{self, Preferences};
use crate::consent::subject::{self, Subject, SubjectId};
use crate::dsar::requests::{self, DataSubjectRequest, ListFilter};
use crate::dsar::rules::{RequestKind, RequestStatus};
use crate::gate::rules::{decide, Decision, DecisionRequest, Reason, SubjectFacts};
use crate::policy::{Basis, Policies};
use crate::profiles::attributes::{self, Attributes};
use crate::storage::{DbConnection, StorageError};
use crate::surveys::events::{self as survey_events, Event};
use crate::surveys::store::{self, Display, Followup, ResponseRow};

/// The version of the bundle's shape: an integer, raised on any change to a member.
pub const BUNDLE_VERSION: u32 = 4;
/// The same version as a name, for readers that sniff the document.
pub const FORMAT: &str = "consentry.access.v4";
/// The most items one bundle carries from the ledger, the audit log and the requests,
/// each: the bundle is built in memory, so it is bounded, and says what it left out
/// (`limits`) and where the rest is.
pub const MAX_ROWS: i64 = 10_000;

/// Everything held on one subject.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccessBundle {
    /// The bundle's own version, independent of the API's: raised whenever a member
    /// changes what it holds or its shape.
    #[schema(example = 4, minimum = 1)]
    pub bundle_version: u32,
    /// `consentry.access.v4`: the bundle's version as a name.
    #[schema(example = "consentry.access.v4")]
    pub format: &'static str,
    pub generated_at: DateTime<Utc>,
    /// Whether a member was cut at its bound (`limits` says which and by how much).
    pub truncated: bool,
    /// The bounds of the members that can grow long, and what each left out.
    pub limits: BundleLimits,
    pub subject: BundleSubject,
    /// The effective state of every purpose, as the gate sees it.
    pub consents: Vec<BundleConsent>,
    /// Every consent record, newest first.
    pub consent_ledger: Vec<BundleConsentRecord>,
    /// Channel preferences; empty when the subject gave none.
    pub preferences: BundlePreferences,
    /// Every profile attribute, unfiltered.
    pub profile: BundleProfile,
    /// The audit events about the subject, oldest first.
    pub audit_events: Vec<BundleAuditEvent>,
    /// Their data subject requests, soonest due first.
    pub requests: Vec<BundleRequest>,
    /// Customer events, oldest first.
    pub events: Vec<BundleEvent>,
    /// Surveys shown to them, oldest first.
    pub survey_displays: Vec<BundleSurveyDisplay>,
    /// Their survey answers, oldest first.
    pub survey_responses: Vec<BundleSurveyResponse>,
    /// Follow-ups their answers opened.
    pub survey_followups: Vec<BundleSurveyFollowup>,
    /// Messages services recorded sending them (kept 35 days, for weekly caps), newest
    /// first.
    pub messages_sent: Vec<Contact>,
    /// The identifiers other services know them by, by type then value.
    pub identifiers: Vec<Identifier>,
    /// The recipients (processors) their data is disclosed to, with the purposes and
    /// data categories each receives (GDPR Art. 15(1)(c)).
    pub recipients: Vec<crate::policy::Recipient>,
}

/// The members held to `MAX_ROWS` items each.
#[derive(Debug, Serialize, ToSchema)]
pub struct BundleLimits {
    pub consent_ledger: BundleLimit,
    pub audit_events: BundleLimit,
    pub requests: BundleLimit,
}

/// How much of one member the bundle carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct BundleLimit {
    /// The most items the member carries.
    #[schema(example = 10000)]
    pub max: i64,
    /// How many items exist.
    pub total: i64,
    /// How many were left out: 0 when the member is complete.
    pub omitted: i64,
    /// Which items a cut member keeps.
    #[schema(example = "the newest")]
    pub keeps: &'static str,
    /// Where every item can be read, whatever the bound.
    pub all_at: String,
}

impl BundleLimit {
    /// The bound of a member that carries `included` items of `total` (pure).
    pub fn new(included: usize, total: i64, keeps: &'static str, all_at: String) -> Self {
        let included = i64::try_from(included).unwrap_or(i64::MAX);
        let total = total.max(included);
        Self {
            max: MAX_ROWS,
            total,
            omitted: total - included,
            keeps,
            all_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BundleSubject {
    pub id: String,
    #[schema(example = "US-CA")]
    pub region: String,
    /// Derived from the region by the jurisdiction policies.
    #[schema(example = "us_ca")]
    pub jurisdiction: String,
    pub locale: Option<String>,
    pub birth_year: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BundleEffect {
    Allow,
    Deny,
}

/// The effective state of one purpose.
#[derive(Debug, Serialize, ToSchema)]
pub struct BundleConsent {
    #[schema(example = "marketing.email")]
    pub purpose: String,
    /// The status of the record relied on; null when there is none.
    pub status: Option<ConsentStatus>,
    pub effective: BundleEffect,
    pub reason: Reason,
    pub basis: Basis,
    pub jurisdiction: String,
    pub source: Option<ConsentSource>,
    /// The ledger record relied on.
    pub record_id: Option<String>,
    /// Set when the record is an ancestor purpose's (`marketing` for `marketing.email`).
    pub inherited_from: Option<String>,
    pub purpose_version: Option<u32>,
    pub notice_digest: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BundleActor {
    pub role: String,
    pub id: Option<String>,
}

/// One record of the consent ledger, with its evidence.
#[derive(Debug, Serialize, ToSchema)]
pub struct BundleConsentRecord {
    pub id: String,
    pub purpose: String,
    pub status: ConsentStatus,
    pub source: ConsentSource,
    pub purpose_version: u32,
    pub notice_digest: Option<String>,
    pub actor: BundleActor,
    /// HMAC-SHA-256 of the client IP with the service's secret.
    pub ip_hash: Option<String>,
    /// Who vouches for that address: `peer`, `proxy` or `asserted`.
    pub ip_source: Option<IpSource>,
    pub user_agent: Option<String>,
    pub recorded_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BundleChannelPreference {
    pub opted_in: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_per_week: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BundleQuietHours {
    /// Local time `HH:MM`.
    pub start: String,
    pub end: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BundlePreferences {
    /// By channel name.
    pub channels: BTreeMap<String, BundleChannelPreference>,
    /// Channel names, most preferred first.
    pub channel_order: Vec<String>,
    pub language: Option<String>,
    pub timezone: Option<String>,
    pub quiet_hours: Option<BundleQuietHours>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BundleAttribute {
    #[schema(value_type = Value)]
    pub value: Value,
    /// The attribute's data category.
    pub category: String,
    pub source: String,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BundleProfile {
    pub subject_id: String,
    /// Always null: the bundle holds the whole profile, not one purpose's view of it.
    pub purpose: Option<String>,
    pub attributes: BTreeMap<String, BundleAttribute>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BundleAuditEvent {
    pub seq: i64,
    pub occurred_at: DateTime<Utc>,
    pub actor_role: String,
    pub action: String,
    /// The event's payload; null once erasure blanked it.
    #[schema(value_type = Value)]
    pub payload: Value,
}

/// A data subject request, without its status history.
#[derive(Debug, Serialize, ToSchema)]
pub struct BundleRequest {
    pub id: String,
    pub subject_id: String,
    pub kind: RequestKind,
    pub status: RequestStatus,
    #[schema(value_type = Object)]
    pub details: Value,
    /// The jurisdiction whose deadline applies.
    pub jurisdiction: String,
    pub received_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    /// Open and past its due date when the bundle was made.
    pub overdue: bool,
    pub extended: bool,
    pub extension_reason: Option<String>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BundleEvent {
    pub id: i64,
    pub subject_id: String,
    pub name: String,
    #[schema(value_type = Object)]
    pub properties: Value,
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BundleSurveyDisplay {
    pub display_id: String,
    pub survey_id: String,
    pub version: i32,
    /// The event that triggered it, if any.
    pub event: Option<String>,
    pub shown_at: DateTime<Utc>,
    pub dismissed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BundleSurveyResponse {
    pub response_id: String,
    pub survey_id: String,
    /// The version of the questions answered.
    pub version: i32,
    pub subject_id: String,
    pub display_id: Option<String>,
    /// By question id.
    #[schema(value_type = Object)]
    pub answers: Value,
    pub finished: bool,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BundleFollowupStatus {
    Open,
    Closed,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BundleSurveyFollowup {
    pub id: String,
    pub survey_id: String,
    pub response_id: String,
    pub subject_id: String,
    /// The NPS score that opened it.
    pub score: i32,
    pub status: BundleFollowupStatus,
    pub opened_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub closed_by: Option<String>,
    pub resolution: Option<String>,
}

/// Builds the bundle of a subject and records its export in the audit log, with the
/// request it answers if any; `None` when there is no such subject.
pub fn assemble(
    conn: &mut DbConnection,
    policies: &Policies,
    pseudonyms: &Pseudonymizer,
    actor: &Actor,
    id: &SubjectId,
    request_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<AccessBundle>, StorageError> {
    let Some(found) = subject::find(conn, id)? else {
        return Ok(None);
    };
    let states = ledger::states(conn, id)?;
    let ledger_rows = ledger::history(conn, id, None, None, MAX_ROWS)?;
    let prefs = preferences::find(conn, id)?
        .map(|(p, _)| p)
        .unwrap_or_default();
    let profile = attributes::load(conn, id)?;
    let events = audit::about_subject(conn, &pseudonyms.of(id.as_str()), MAX_ROWS)?;
    let filter = ListFilter {
        subject_id: Some(id.to_string()),
        ..Default::default()
    };
    let dsars = requests::list(conn, &filter, MAX_ROWS)?;
    let subject_id = id.as_str();
    // Counted only when a member filled its bound.
    let full = |n: usize| i64::try_from(n).unwrap_or(i64::MAX) >= MAX_ROWS;
    let limits = BundleLimits {
        consent_ledger: BundleLimit::new(
            ledger_rows.len(),
            if full(ledger_rows.len()) {
                ledger::count(conn, id)?
            } else {
                0
            },
            "the newest",
            format!("GET /v1/subjects/{subject_id}/consents/history (paged by next_cursor)"),
        ),
        audit_events: BundleLimit::new(
            events.len(),
            if full(events.len()) {
                audit::count_about_subject(conn, &pseudonyms.of(subject_id))?
            } else {
                0
            },
            "the oldest",
            format!("GET /v1/audit/events?subject={subject_id} (streamed, verifiable)"),
        ),
        requests: BundleLimit::new(
            dsars.len(),
            if full(dsars.len()) {
                requests::count_of_subject(conn, subject_id)?
            } else {
                0
            },
            "the soonest due",
            format!("GET /v1/dsar?subject_id={subject_id}"),
        ),
    };
    let truncated = [
        &limits.consent_ledger,
        &limits.audit_events,
        &limits.requests,
    ]
    .iter()
    .any(|l| l.omitted > 0);
    let customer_events = survey_events::of_subject(conn, subject_id)?;
    let displays = store::subject_displays(conn, subject_id)?;
    let responses = store::subject_responses(conn, subject_id)?;
    let followups = store::subject_followups(conn, subject_id)?;
    let messages_sent = contacts::all(conn, subject_id)?;
    let known_as = identifiers::of_subject(conn, subject_id)?;
    audit::record_alone(
        conn,
        pseudonyms,
        AuditEntry {
            actor,
            action: "subject.exported",
            subject_id: Some(subject_id),
            payload: json!({"consent_records": ledger_rows.len(), "audit_events": events.len(), "truncated": truncated, "request_id": request_id}),
            at: now,
        },
    )?;
    // The facts as the gate's read of consents takes them: no GPC signal, no preferences.
    let facts = SubjectFacts::new(policies, Some(&found), false, &states, None);
    let consents = policies
        .purposes()
        .iter()
        .map(|purpose| {
            let request = DecisionRequest {
                purpose,
                channel: None,
                data_categories: &[],
                gpc: false,
                now,
            };
            BundleConsent::new(&purpose.key, decide(policies, &facts, &request))
        })
        .collect();
    Ok(Some(AccessBundle {
        bundle_version: BUNDLE_VERSION,
        format: FORMAT,
        generated_at: now,
        truncated,
        limits,
        subject: BundleSubject::new(&found, policies),
        consents,
        consent_ledger: ledger_rows.into_iter().map(Into::into).collect(),
        preferences: prefs.into(),
        profile: BundleProfile::new(id, profile),
        audit_events: events.into_iter().map(Into::into).collect(),
        requests: dsars
            .into_iter()
            .map(|r| BundleRequest::new(r, now))
            .collect(),
        events: customer_events.into_iter().map(Into::into).collect(),
        survey_displays: displays.into_iter().map(Into::into).collect(),
        survey_responses: responses.into_iter().map(Into::into).collect(),
        survey_followups: followups.into_iter().map(Into::into).collect(),
        messages_sent,
        identifiers: known_as.into_iter().collect(),
        recipients: policies.recipients.all().to_vec(),
    }))
}

impl BundleSubject {
    fn new(subject: &Subject, policies: &Policies) -> Self {
        Self {
            id: subject.id.to_string(),
            region: subject.region.to_string(),
            jurisdiction: subject.jurisdiction(policies).to_owned(),
            locale: subject.locale.clone(),
            birth_year: subject.birth_year,
            created_at: subject.created_at,
            updated_at: subject.updated_at,
        }
    }
}

impl BundleConsent {
    fn new(purpose: &str, decision: Decision) -> Self {
        let inherited_from = decision.inherited_from(purpose).map(str::to_owned);
        let record = decision.record;
        Self {
            purpose: purpose.to_owned(),
            status: record.as_ref().map(|r| r.status),
            effective: if decision.allowed {
                BundleEffect::Allow
            } else {
                BundleEffect::Deny
            },
            reason: decision.reason,
            basis: decision.basis,
            jurisdiction: decision.jurisdiction,
            source: record.as_ref().map(|r| r.source),
            purpose_version: record.as_ref().map(|r| r.purpose_version),
            updated_at: record.as_ref().map(|r| r.updated_at),
            expires_at: record.as_ref().and_then(|r| r.expires_at),
            notice_digest: record.as_ref().and_then(|r| r.notice_digest.clone()),
            record_id: record.map(|r| r.record_id),
            inherited_from,
        }
    }
}

impl From<ConsentRecord> for BundleConsentRecord {
    fn from(r: ConsentRecord) -> Self {
        Self {
            id: r.id,
            purpose: r.purpose,
            status: r.status,
            source: r.source,
            purpose_version: r.purpose_version,
            notice_digest: r.notice_digest,
            actor: BundleActor {
                role: r.actor_role,
                id: r.actor_id,
            },
            ip_hash: r.ip_hash,
            ip_source: r.ip_source,
            user_agent: r.user_agent,
            recorded_at: r.recorded_at,
            expires_at: r.expires_at,
        }
    }
}

impl From<Preferences> for BundlePreferences {
    fn from(p: Preferences) -> Self {
        Self {
            channels: p
                .channels
                .into_iter()
                .map(|(channel, c)| {
                    let preference = BundleChannelPreference {
                        opted_in: c.opted_in,
                        max_per_week: c.max_per_week,
                    };
                    (channel, preference)
                })
                .collect(),
            channel_order: p
                .channel_order
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect(),
            language: p.language,
            timezone: p.timezone,
            quiet_hours: p.quiet_hours.map(|q| BundleQuietHours {
                start: q.start,
                end: q.end,
            }),
        }
    }
}

impl BundleProfile {
    fn new(subject: &SubjectId, attributes: Attributes) -> Self {
        Self {
            subject_id: subject.to_string(),
            purpose: None,
            attributes: attributes
                .into_iter()
                .map(|(key, a)| {
                    let attribute = BundleAttribute {
                        value: a.value,
                        category: a.category,
                        source: a.source,
                        updated_at: a.updated_at,
                    };
                    (key, attribute)
                })
                .collect(),
        }
    }
}

impl From<ChainedEvent> for BundleAuditEvent {
    fn from(e: ChainedEvent) -> Self {
        Self {
            payload: serde_json::from_str(&e.payload).unwrap_or(Value::Null),
            seq: e.seq,
            occurred_at: e.occurred_at,
            actor_role: e.actor_role,
            action: e.action,
        }
    }
}

impl BundleRequest {
    fn new(r: DataSubjectRequest, now: DateTime<Utc>) -> Self {
        Self {
            overdue: r.is_overdue(now),
            id: r.id,
            subject_id: r.subject_id,
            kind: r.kind,
            status: r.status,
            details: r.details,
            jurisdiction: r.jurisdiction,
            received_at: r.received_at,
            due_at: r.due_at,
            extended: r.extended,
            extension_reason: r.extension_reason,
            updated_at: r.updated_at,
        }
    }
}

impl From<Event> for BundleEvent {
    fn from(e: Event) -> Self {
        Self {
            properties: e.properties(),
            id: e.id,
            subject_id: e.subject_id,
            name: e.name,
            occurred_at: e.occurred_at.and_utc(),
            received_at: e.received_at.and_utc(),
        }
    }
}

impl From<Display> for BundleSurveyDisplay {
    fn from(d: Display) -> Self {
        Self {
            display_id: d.id,
            survey_id: d.survey_id,
            version: d.version,
            event: d.event,
            shown_at: d.shown_at.and_utc(),
            dismissed_at: d.dismissed_at.map(|t| t.and_utc()),
        }
    }
}

impl From<ResponseRow> for BundleSurveyResponse {
    fn from(row: ResponseRow) -> Self {
        Self {
            answers: Value::Object(row.answers()),
            response_id: row.id,
            survey_id: row.survey_id,
            version: row.version,
            subject_id: row.subject_id,
            display_id: row.display_id,
            finished: row.finished,
            started_at: row.started_at.and_utc(),
            updated_at: row.updated_at.and_utc(),
            finished_at: row.finished_at.map(|t| t.and_utc()),
        }
    }
}

impl From<Followup> for BundleSurveyFollowup {
    fn from(f: Followup) -> Self {
        Self {
            status: if f.status == "open" {
                BundleFollowupStatus::Open
            } else {
                BundleFollowupStatus::Closed
            },
            id: f.id,
            survey_id: f.survey_id,
            response_id: f.response_id,
            subject_id: f.subject_id,
            score: f.score,
            opened_at: f.opened_at.and_utc(),
            closed_at: f.closed_at.map(|t| t.and_utc()),
            closed_by: f.closed_by,
            resolution: f.resolution,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_says_how_many_items_were_left_out() {
        let whole = BundleLimit::new(3, 0, "the newest", "there".into());
        assert_eq!((whole.max, whole.total, whole.omitted), (MAX_ROWS, 3, 0));
        let cut = BundleLimit::new(10_000, 10_250, "the newest", "there".into());
        assert_eq!((cut.total, cut.omitted), (10_250, 250));
        // A count taken after more arrived never says fewer exist than were carried.
        let raced = BundleLimit::new(10_000, 9_000, "the newest", "there".into());
        assert_eq!((raced.total, raced.omitted), (10_000, 0));
    }
}
