//! Webhook endpoints: where changes go, what each subscribes to, its signing secrets.
//! A recipient's endpoint (`recipients.toml`) is kept in step with the policy file.

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use diesel::prelude::*;
use serde::Serialize;

use super::{address, signing, DeliveryError, DeliverySettings};
use crate::outbox::StoredMessage;
use crate::policy::key::covers;
use crate::policy::{Policies, Recipients};
use crate::storage::schema::{webhook_attempts, webhook_deliveries, webhook_endpoints};
use crate::storage::{write_transaction, DbConnection, StorageError};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhook_endpoints)]
pub struct Endpoint {
    pub id: String,
    pub url: String,
    pub description: String,
    pub event_types: String,
    pub purpose: Option<String>,
    pub data_category: Option<String>,
    pub recipient: Option<String>,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<NaiveDateTime>,
    pub disabled_at: Option<NaiveDateTime>,
    pub disabled_reason: Option<String>,
    pub consecutive_failures: i32,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl Endpoint {
    pub fn event_types(&self) -> Vec<String> {
        serde_json::from_str(&self.event_types).unwrap_or_default()
    }

    pub fn is_enabled(&self) -> bool {
        self.disabled_at.is_none()
    }

    /// The secrets that sign a delivery at `now`: the current one, and the previous one
    /// during a rotation's grace period.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let (Some(old), Some(until)) = (&self.previous_secret, self.previous_secret_until) {
            if until.and_utc() > now {
                secrets.push(old);
            }
        }
        secrets
    }

    /// What it subscribes to: its own filters, or its recipient's purposes and
    /// categories.
    pub fn subscription(&self, recipients: &Recipients) -> Subscription {
        let recipient = self.recipient.as_deref().and_then(|r| recipients.get(r));
        Subscription {
            event_types: self.event_types(),
            purposes: match recipient {
                Some(r) => r.purposes.clone(),
                None => self.purpose.iter().cloned().collect(),
            },
            data_categories: match recipient {
                Some(r) => r.data_categories.clone(),
                None => self.data_category.iter().cloned().collect(),
            },
        }
    }
}

/// The filters of an endpoint.
#[derive(Debug, Clone, Default)]
pub struct Subscription {
    /// Empty: every type.
    pub event_types: Vec<String>,
    /// Empty: every purpose.
    pub purposes: Vec<String>,
    /// Empty: every category.
    pub data_categories: Vec<String>,
}

impl Subscription {
    /// Whether a message goes to this endpoint. Changes that concern the subject as a
    /// whole (erasure, restriction, requests, merges) carry no purpose and pass the
    /// purpose and category filters: every recipient must hear of those. A change under
    /// a purpose passes when the purpose is (under) a subscribed one and uses a
    /// subscribed category.
    pub fn matches(&self, policies: &Policies, event_type: &str, purpose: Option<&str>) -> bool {
        if !self.event_types.is_empty() && !self.event_types.iter().any(|t| t == event_type) {
            return false;
        }
        let Some(purpose) = purpose else {
            return true;
        };
        if !self.purposes.is_empty() && !self.purposes.iter().any(|p| covers(p, purpose)) {
            return false;
        }
        if self.data_categories.is_empty() {
            return true;
        }
        let used = policies
            .purpose(purpose)
            .map(|p| p.data_categories.as_slice())
            .unwrap_or_default();
        used.iter().any(|category| {
            self.data_categories
                .iter()
                .any(|mine| covers(mine, category) || covers(category, mine))
        })
    }
}

/// What an admin sends to create or change an endpoint.
#[derive(Debug, Clone, Default)]
pub struct EndpointChange {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub purpose: Option<Option<String>>,
    pub data_category: Option<Option<String>>,
    pub enabled: Option<bool>,
    pub rotate_secret: bool,
}

/// Checks what a change sets, field by field.
pub fn check_change(
    policies: &Policies,
    settings: &DeliverySettings,
    change: &EndpointChange,
) -> Result<(), DeliveryError> {
    if let Some(url) = &change.url {
        address::check(url, settings.allow_internal)
            .map_err(|refused| DeliveryError::invalid("url", refused))?;
    }
    if let Some(types) = &change.event_types {
        if let Some(unknown) = types.iter().find(|t| !crate::outbox::is_event_type(t)) {
            return Err(DeliveryError::invalid(
                "event_types",
                format!("`{unknown}` is not an event type (see GET /v1/webhooks/event-types)"),
            ));
        }
    }
    if let Some(Some(purpose)) = &change.purpose {
        if policies.purpose(purpose).is_none() {
            return Err(DeliveryError::invalid(
                "purpose",
                format!("`{purpose}` is not a purpose"),
            ));
        }
    }
    if let Some(Some(category)) = &change.data_category {
        if !policies.taxonomy.contains(category) {
            return Err(DeliveryError::invalid(
                "data_category",
                format!("`{category}` is not a data category"),
            ));
        }
    }
    Ok(())
}

fn new_id() -> String {
    format!("ep_{}", uuid::Uuid::new_v4().simple())
}

fn secret() -> Result<String, StorageError> {
    signing::new_secret()
        .map_err(|_| StorageError::Config("the system random source failed".into()))
}

/// Creates an endpoint; answers it with its secret (shown this once).
pub fn create(
    conn: &mut DbConnection,
    change: &EndpointChange,
    recipient: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Endpoint, StorageError> {
    let id = new_id();
    let now = now.naive_utc();
    diesel::insert_into(webhook_endpoints::table)
        .values((
            webhook_endpoints::id.eq(&id),
            webhook_endpoints::url.eq(change.url.clone().unwrap_or_default()),
            webhook_endpoints::description.eq(change.description.clone().unwrap_or_default()),
            webhook_endpoints::event_types.eq(serde_json::to_string(
                &change.event_types.clone().unwrap_or_default(),
            )
            .unwrap_or_else(|_| "[]".into())),
            webhook_endpoints::purpose.eq(change.purpose.clone().flatten()),
            webhook_endpoints::data_category.eq(change.data_category.clone().flatten()),
            webhook_endpoints::recipient.eq(recipient),
            webhook_endpoints::secret.eq(secret()?),
            webhook_endpoints::created_at.eq(now),
            webhook_endpoints::updated_at.eq(now),
        ))
        .execute(conn)?;
    find(conn, &id)?.ok_or_else(|| StorageError::Config("a created endpoint vanished".into()))
}

pub fn find(conn: &mut DbConnection, id: &str) -> Result<Option<Endpoint>, StorageError> {
    Ok(webhook_endpoints::table
        .find(id)
        .select(Endpoint::as_select())
        .first(conn)
        .optional()?)
}

pub fn list(conn: &mut DbConnection) -> Result<Vec<Endpoint>, StorageError> {
    Ok(webhook_endpoints::table
        .order(webhook_endpoints::created_at)
        .then_order_by(webhook_endpoints::id)
        .select(Endpoint::as_select())
        .load(conn)?)
}

/// Applies a change; a rotation keeps the old secret signing for `grace`.
pub fn update(
    conn: &mut DbConnection,
    id: &str,
    change: &EndpointChange,
    grace: TimeDelta,
    now: DateTime<Utc>,
) -> Result<Option<Endpoint>, StorageError> {
    write_transaction(conn, |conn| {
        let Some(current) = find(conn, id)? else {
            return Ok(None);
        };
        let target = webhook_endpoints::table.find(id);
        // The fields the change names, and the time, in one statement.
        diesel::update(target)
            .set(&EndpointFields {
                url: change.url.as_deref(),
                description: change.description.as_deref(),
                event_types: change
                    .event_types
                    .as_ref()
                    .map(|types| serde_json::to_string(types).unwrap_or_else(|_| "[]".into())),
                purpose: change.purpose.as_ref().map(Option::as_deref),
                data_category: change.data_category.as_ref().map(Option::as_deref),
                updated_at: now.naive_utc(),
            })
            .execute(conn)?;
        match change.enabled {
            Some(true) => {
                diesel::update(target)
                    .set((
                        webhook_endpoints::disabled_at.eq(None::<NaiveDateTime>),
                        webhook_endpoints::disabled_reason.eq(None::<String>),
                        webhook_endpoints::consecutive_failures.eq(0),
                    ))
                    .execute(conn)?;
            }
            Some(false) if current.is_enabled() => {
                disable(conn, id, "turned off by an admin", now)?;
            }
            _ => {}
        }
        if change.rotate_secret {
            diesel::update(target)
                .set((
                    webhook_endpoints::previous_secret.eq(Some(&current.secret)),
                    webhook_endpoints::previous_secret_until.eq(Some((now + grace).naive_utc())),
                    webhook_endpoints::secret.eq(secret()?),
                ))
                .execute(conn)?;
        }
        find(conn, id)
    })
}

/// The columns an admin's change sets; a `None` leaves its column as it is.
#[derive(AsChangeset)]
#[diesel(table_name = webhook_endpoints)]
struct EndpointFields<'a> {
    url: Option<&'a str>,
    description: Option<&'a str>,
    event_types: Option<String>,
    purpose: Option<Option<&'a str>>,
    data_category: Option<Option<&'a str>>,
    updated_at: NaiveDateTime,
}

pub fn disable(
    conn: &mut DbConnection,
    id: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    diesel::update(webhook_endpoints::table.find(id))
        .set((
            webhook_endpoints::disabled_at.eq(Some(now.naive_utc())),
            webhook_endpoints::disabled_reason.eq(Some(reason)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Deletes an endpoint with its deliveries and their attempts.
pub fn delete(conn: &mut DbConnection, id: &str) -> Result<bool, StorageError> {
    write_transaction(conn, |conn| {
        let deliveries: Vec<String> = webhook_deliveries::table
            .filter(webhook_deliveries::endpoint_id.eq(id))
            .select(webhook_deliveries::id)
            .load(conn)?;
        for chunk in deliveries.chunks(500) {
            diesel::delete(
                webhook_attempts::table.filter(webhook_attempts::delivery_id.eq_any(chunk)),
            )
            .execute(conn)?;
        }
        diesel::delete(webhook_deliveries::table.filter(webhook_deliveries::endpoint_id.eq(id)))
            .execute(conn)?;
        Ok(diesel::delete(webhook_endpoints::table.find(id)).execute(conn)? > 0)
    })
}

/// Keeps one endpoint per recipient with a webhook, at the policy's URL; endpoints of
/// recipients no longer in the policy are turned off (their history stays).
pub fn sync_recipients(
    conn: &mut DbConnection,
    recipients: &Recipients,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    write_transaction(conn, |conn| {
        let existing: Vec<Endpoint> = webhook_endpoints::table
            .filter(webhook_endpoints::recipient.is_not_null())
            .select(Endpoint::as_select())
            .load(conn)?;
        for recipient in recipients.all() {
            let Some(url) = &recipient.webhook else {
                continue;
            };
            match existing
                .iter()
                .find(|e| e.recipient.as_deref() == Some(&recipient.name))
            {
                Some(endpoint) if &endpoint.url == url => {}
                Some(endpoint) => {
                    diesel::update(webhook_endpoints::table.find(&endpoint.id))
                        .set((
                            webhook_endpoints::url.eq(url),
                            webhook_endpoints::updated_at.eq(now.naive_utc()),
                        ))
                        .execute(conn)?;
                }
                None => {
                    let change = EndpointChange {
                        url: Some(url.clone()),
                        description: Some(format!("Recipient: {}", recipient.description)),
                        ..EndpointChange::default()
                    };
                    create(conn, &change, Some(&recipient.name), now)?;
                }
            }
        }
        for endpoint in &existing {
            let gone = endpoint
                .recipient
                .as_deref()
                .is_some_and(|r| recipients.get(r).is_none_or(|r| r.webhook.is_none()));
            if gone && endpoint.is_enabled() {
                disable(
                    conn,
                    &endpoint.id,
                    "no longer a recipient in the policy",
                    now,
                )?;
            }
        }
        Ok(())
    })
}

/// The enabled endpoints a message goes to.
pub fn targets<'a>(
    endpoints: &'a [Endpoint],
    policies: &Policies,
    message: &StoredMessage,
) -> Vec<&'a Endpoint> {
    endpoints
        .iter()
        .filter(|e| e.is_enabled())
        .filter(|e| {
            e.subscription(&policies.recipients).matches(
                policies,
                &message.event_type,
                message.purpose.as_deref(),
            )
        })
        .collect()
}

/// An endpoint as admins see it: never its secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EndpointView {
    pub id: String,
    pub url: String,
    pub description: String,
    /// Event types it receives; empty for every type.
    pub event_types: Vec<String>,
    pub purpose: Option<String>,
    pub data_category: Option<String>,
    /// The recipient (`recipients.toml`) this endpoint belongs to.
    pub recipient: Option<String>,
    /// `enabled`, or `disabled` (after repeated failure, or by an admin).
    pub status: &'static str,
    pub disabled_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
    pub consecutive_failures: i32,
    /// Until when the rotated-out secret still signs.
    pub previous_secret_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Endpoint> for EndpointView {
    fn from(e: &Endpoint) -> Self {
        Self {
            id: e.id.clone(),
            url: e.url.clone(),
            description: e.description.clone(),
            event_types: e.event_types(),
            purpose: e.purpose.clone(),
            data_category: e.data_category.clone(),
            recipient: e.recipient.clone(),
            status: if e.is_enabled() {
                "enabled"
            } else {
                "disabled"
            },
            disabled_at: e.disabled_at.map(|t| t.and_utc()),
            disabled_reason: e.disabled_reason.clone(),
            consecutive_failures: e.consecutive_failures,
            previous_secret_until: e.previous_secret_until.map(|t| t.and_utc()),
            created_at: e.created_at.and_utc(),
            updated_at: e.updated_at.and_utc(),
        }
    }
}
