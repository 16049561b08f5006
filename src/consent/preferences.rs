//! Channel preferences: which channels a customer may be reached on, how often, in which
//! order, in which language and time zone, and when not to disturb them.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, NaiveDateTime, NaiveTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::subject::SubjectId;
use crate::audit::{self, Actor, AuditEntry, Pseudonymizer};
use crate::consent::ledger::lock_subject;
use crate::policy::channel::CHANNEL_NAME_PATTERN;
use crate::policy::locale::parse_locale;
use crate::policy::{Channel, Channels};
use crate::storage::schema::preferences;
use crate::storage::{write_transaction, DbConnection, StorageError};
use crate::validation::FieldError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelPreference {
    pub opted_in: bool,
    /// At most this many messages a week on this channel (1–100).
    #[schema(example = 3, minimum = 1, maximum = 100)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_week: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    /// Local time `HH:MM` in the subject's time zone.
    #[schema(example = "22:00", pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub start: String,
    /// Local time `HH:MM`, not the start.
    #[schema(example = "08:00", pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub end: String,
}

/// The preferences document; a PUT sends it whole. Checked by `checked`, which needs
/// more than field rules (time zones, duplicates).
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, validator::Validate,
)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "channels": {"email": {"opted_in": true, "max_per_week": 3}, "whatsapp": {"opted_in": true}, "sms": {"opted_in": false}},
    "channel_order": ["whatsapp", "email"],
    "language": "ar",
    "timezone": "Asia/Riyadh",
    "quiet_hours": {"start": "22:00", "end": "08:00"}
}))]
pub struct Preferences {
    /// By channel, each a channel of `policies/channels.toml` (`GET /v1/channels`).
    #[serde(default)]
    #[schema(schema_with = channels_schema)]
    pub channels: BTreeMap<String, ChannelPreference>,
    /// Preferred channels, most preferred first, each at most once. Empty: the
    /// subject's country's default order applies (see `GET .../preferences`).
    #[serde(default)]
    #[schema(schema_with = channel_order_schema)]
    pub channel_order: Vec<String>,
    /// BCP 47 language tag.
    #[serde(default)]
    #[schema(schema_with = crate::policy::locale::tag_schema)]
    pub language: Option<String>,
    /// IANA time zone name.
    #[serde(default)]
    #[schema(schema_with = time_zone_schema)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub quiet_hours: Option<QuietHours>,
}

/// An IANA time zone name, or null. Said as a pattern, not the list of names: the list
/// holds aliases (`GMT+0`, `GMT-0`, `GMT0`) that client generators turn into one
/// identifier and refuse. Whether the zone exists is checked on write (422).
fn time_zone_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .pattern(Some("^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$"))
        .max_length(Some(64))
        .description(Some("IANA time zone name, e.g. `Asia/Riyadh`."))
        .build()
}

/// A channel name as the catalogue spells them; whether it exists is checked on write.
pub fn channel_schema() -> utoipa::openapi::Object {
    channel_schema_of(utoipa::openapi::schema::Type::String.into())
}

/// The same, or null.
pub fn optional_channel_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{SchemaType, Type};
    channel_schema_of(SchemaType::from_iter([Type::String, Type::Null]))
}

fn channel_schema_of(kind: utoipa::openapi::schema::SchemaType) -> utoipa::openapi::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(kind)
        .pattern(Some(CHANNEL_NAME_PATTERN))
        .description(Some(
            "A channel of `policies/channels.toml` (`GET /v1/channels`), e.g. `email`, `whatsapp`.",
        ))
        .build()
}

/// Preferences by channel, keyed by channel names.
pub fn channels_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
    use utoipa::openapi::{Ref, Schema};
    let mut channels = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(
            "By channel: each key a channel of `policies/channels.toml` (`GET /v1/channels`).",
        ))
        .additional_properties(Some(AdditionalProperties::RefOr(
            Ref::from_schema_name("ChannelPreference").into(),
        )))
        .build();
    channels.property_names = Some(Box::new(Schema::Object(channel_schema())));
    channels
}

fn channel_order_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::ArrayBuilder;
    ArrayBuilder::new()
        .items(channel_schema())
        .max_items(Some(MAX_CHANNELS))
        .description(Some(
            "Preferred channels, most preferred first, each at most once.",
        ))
        .build()
}

/// More than any catalogue is likely to hold; bounds what a request may list.
const MAX_CHANNELS: usize = 32;

impl Preferences {
    /// Whether the customer said no to this channel. A channel not mentioned is not
    /// opted out: the purpose's consent decides.
    pub fn opted_out_of(&self, channel: &Channel) -> bool {
        self.channels
            .get(channel.as_str())
            .is_some_and(|c| !c.opted_in)
    }

    /// The customer's time zone, once checked.
    pub fn zone(&self) -> Option<chrono_tz::Tz> {
        self.timezone.as_deref().and_then(|z| z.parse().ok())
    }

    /// The quiet hours as local times, once checked.
    pub fn quiet_times(&self) -> Option<(NaiveTime, NaiveTime)> {
        let quiet = self.quiet_hours.as_ref()?;
        Some((parse_hhmm(&quiet.start)?, parse_hhmm(&quiet.end)?))
    }

    /// The channels the customer explicitly opted in to, by name.
    pub fn opted_in(&self) -> impl Iterator<Item = &str> {
        self.channels
            .iter()
            .filter(|(_, c)| c.opted_in)
            .map(|(name, _)| name.as_str())
    }

    /// Checks every field against the channel catalogue; normalizes the language tag.
    pub fn checked(mut self, catalogue: &Channels) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        for (channel, preference) in &self.channels {
            if let Err(e) = catalogue.checked(channel, format!("channels.{channel}")) {
                errors.push(e);
            }
            if preference
                .max_per_week
                .is_some_and(|n| !(1..=100).contains(&n))
            {
                errors.push(FieldError::new(
                    format!("channels.{channel}.max_per_week"),
                    "range",
                    "must be between 1 and 100 (leave it out for no cap)",
                ));
            }
        }
        let mut seen = HashSet::new();
        if self.channel_order.len() > MAX_CHANNELS {
            errors.push(FieldError::new(
                "channel_order",
                "too_many",
                format!("at most {MAX_CHANNELS} channels"),
            ));
        }
        for (i, channel) in self.channel_order.iter().enumerate() {
            if let Err(e) = catalogue.checked(channel, format!("channel_order[{i}]")) {
                errors.push(e);
            } else if !seen.insert(channel) {
                errors.push(FieldError::new(
                    format!("channel_order[{i}]"),
                    "duplicate",
                    format!("`{channel}` is listed twice"),
                ));
            }
        }
        if let Some(language) = &self.language {
            match parse_locale(language) {
                Ok(tag) => self.language = Some(tag),
                Err(message) => errors.push(FieldError::new("language", "invalid", message)),
            }
        }
        if let Some(zone) = &self.timezone {
            if zone.parse::<chrono_tz::Tz>().is_err() {
                errors.push(FieldError::new(
                    "timezone",
                    "invalid",
                    format!("`{zone}` is not an IANA time zone such as `Asia/Riyadh` or `Europe/Berlin`"),
                ));
            }
        }
        if let Some(quiet) = &self.quiet_hours {
            let start = parse_hhmm(&quiet.start);
            let end = parse_hhmm(&quiet.end);
            if start.is_none() {
                errors.push(FieldError::new(
                    "quiet_hours.start",
                    "invalid",
                    "must be a time `HH:MM`",
                ));
            }
            if end.is_none() {
                errors.push(FieldError::new(
                    "quiet_hours.end",
                    "invalid",
                    "must be a time `HH:MM`",
                ));
            }
            if start.is_some() && start == end {
                errors.push(FieldError::new(
                    "quiet_hours.end",
                    "invalid",
                    "must differ from the start",
                ));
            }
            if self.timezone.is_none() {
                errors.push(FieldError::new(
                    "timezone",
                    "required",
                    "quiet hours need a time zone",
                ));
            }
        }
        if errors.is_empty() {
            Ok(self)
        } else {
            Err(errors)
        }
    }
}

fn parse_hhmm(input: &str) -> Option<NaiveTime> {
    (input.len() == 5)
        .then(|| NaiveTime::parse_from_str(input, "%H:%M").ok())
        .flatten()
}

#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = preferences)]
struct PreferencesRow {
    subject_id: String,
    document: String,
    updated_at: NaiveDateTime,
}

/// The stored preferences and when they last changed.
pub fn find(
    conn: &mut DbConnection,
    subject: &SubjectId,
) -> Result<Option<(Preferences, DateTime<Utc>)>, StorageError> {
    let row = preferences::table
        .find(subject.as_str())
        .select(PreferencesRow::as_select())
        .first(conn)
        .optional()?;
    row.map(|row| Ok((stored_document(&row.document)?, row.updated_at.and_utc())))
        .transpose()
}

/// A preferences document as stored.
pub(super) fn stored_document(text: &str) -> Result<Preferences, StorageError> {
    serde_json::from_str(text)
        .map_err(|e| StorageError::Query(diesel::result::Error::DeserializationError(Box::new(e))))
}

/// Replaces a subject's preferences with its audit event and change announcement, in one
/// transaction; false when there is no such subject.
pub fn replace(
    conn: &mut DbConnection,
    pseudonyms: &Pseudonymizer,
    actor: &Actor,
    subject: &SubjectId,
    document: &Preferences,
    now: DateTime<Utc>,
) -> Result<bool, StorageError> {
    write_transaction(conn, |conn| {
        if !lock_subject(conn, subject)? {
            return Ok(false);
        }
        save(conn, subject, document, now)?;
        crate::storage::announce_subject_changed(conn, subject.as_str())?;
        audit::record(
            conn,
            pseudonyms,
            AuditEntry {
                actor,
                action: "preferences.updated",
                subject_id: Some(subject.as_str()),
                payload: serde_json::json!(document),
                at: now,
            },
        )?;
        Ok(true)
    })
}

/// Replaces the preferences. Call inside a write transaction.
pub fn save(
    conn: &mut DbConnection,
    subject: &SubjectId,
    document: &Preferences,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let row = PreferencesRow {
        subject_id: subject.as_str().to_owned(),
        document: serde_json::to_string(document).map_err(|e| {
            StorageError::Query(diesel::result::Error::SerializationError(Box::new(e)))
        })?,
        updated_at: now.naive_utc(),
    };
    let updated = diesel::update(preferences::table.find(subject.as_str()))
        .set(&row)
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(preferences::table)
            .values(&row)
            .execute(conn)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(result: Result<Preferences, Vec<FieldError>>) -> Vec<String> {
        result.unwrap_err().into_iter().map(|e| e.field).collect()
    }

    fn catalogue() -> Channels {
        crate::policy::shipped().channels
    }

    fn channel(name: &str) -> Channel {
        catalogue().parse(name).unwrap()
    }

    #[test]
    fn a_full_document_passes_and_normalizes() {
        let prefs: Preferences = serde_json::from_value(serde_json::json!({
            "channels": {"email": {"opted_in": true, "max_per_week": 3}, "sms": {"opted_in": false}},
            "channel_order": ["whatsapp", "email"],
            "language": "AR-sa",
            "timezone": "Asia/Riyadh",
            "quiet_hours": {"start": "22:00", "end": "08:00"}
        }))
        .unwrap();
        let prefs = prefs.checked(&catalogue()).unwrap();
        assert_eq!(prefs.language.as_deref(), Some("ar-SA"));
        assert!(prefs.opted_out_of(&channel("sms")));
        assert!(!prefs.opted_out_of(&channel("email")));
        assert!(
            !prefs.opted_out_of(&channel("push")),
            "unmentioned channels are not opted out"
        );
    }

    #[test]
    fn each_bad_field_is_named() {
        let bad = Preferences {
            channels: [(
                "email".to_string(),
                ChannelPreference {
                    opted_in: true,
                    max_per_week: Some(0),
                },
            )]
            .into(),
            channel_order: vec!["sms".into(), "pigeon".into(), "sms".into()],
            language: Some("english".into()),
            timezone: Some("Mars/Olympus".into()),
            quiet_hours: Some(QuietHours {
                start: "25:00".into(),
                end: "8:00".into(),
            }),
        };
        assert_eq!(
            fields(bad.checked(&catalogue())),
            [
                "channels.email.max_per_week",
                "channel_order[1]",
                "channel_order[2]",
                "language",
                "timezone",
                "quiet_hours.start",
                "quiet_hours.end"
            ]
        );
        let no_zone = Preferences {
            quiet_hours: Some(QuietHours {
                start: "22:00".into(),
                end: "22:00".into(),
            }),
            ..Default::default()
        };
        assert_eq!(
            fields(no_zone.checked(&catalogue())),
            ["quiet_hours.end", "timezone"]
        );
    }

    #[test]
    fn unknown_channels_are_named() {
        let prefs: Preferences =
            serde_json::from_value(serde_json::json!({"channels": {"pigeon": {"opted_in": true}}}))
                .unwrap();
        assert_eq!(fields(prefs.checked(&catalogue())), ["channels.pigeon"]);
    }

    #[test]
    fn channels_added_to_the_policy_are_accepted() {
        let prefs: Preferences = serde_json::from_value(serde_json::json!({
            "channels": {"line": {"opted_in": true}, "kakaotalk": {"opted_in": false}},
            "channel_order": ["line", "telegram"]
        }))
        .unwrap();
        let prefs = prefs.checked(&catalogue()).unwrap();
        assert!(prefs.channels["line"].opted_in);
        assert!(prefs.opted_out_of(&channel("kakaotalk")));
    }
}
