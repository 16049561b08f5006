//! Which audited changes downstream systems hear of, and what of each they are told:
//! ids, the kind of change, purposes and statuses, names of attributes. Never an
//! attribute's value, a free-text note or an identifier: a receiver that needs a value
//! asks the API, where its own purposes limit what it reads.

use serde_json::{Map, Value};

/// A change as downstream systems are told of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The event type receivers subscribe to (the audit action's name).
    pub event_type: &'static str,
    /// The purpose the change is about, for subscriptions filtered by purpose.
    pub purpose: Option<String>,
    /// The change's fields, without the subject (the outbox row carries it).
    pub data: Value,
}

/// Every event type a subscription can name, with the fields each carries.
pub const EVENT_TYPES: &[(&str, &[&str])] = &[
    ("subject.created", &["region"]),
    (
        "consent.granted",
        &[
            "purpose",
            "status",
            "source",
            "record_id",
            "purpose_version",
        ],
    ),
    (
        "consent.denied",
        &[
            "purpose",
            "status",
            "source",
            "record_id",
            "purpose_version",
        ],
    ),
    (
        "consent.signal_opt_out",
        &[
            "purpose",
            "status",
            "source",
            "record_id",
            "purpose_version",
        ],
    ),
    ("consent.expired", &["purpose", "record_id", "expired_at"]),
    ("preferences.updated", &["channels", "topics", "frequency"]),
    ("profile.updated", &["source", "attributes"]),
    ("identifiers.updated", &["types", "added", "removed"]),
    ("subject.restricted", &["since", "request_id"]),
    ("subject.restriction_lifted", &["request_id"]),
    ("subject.erased", &["request_id"]),
    ("subject.merged", &["merged_from", "consents"]),
    ("subject.merged_away", &["subject_id"]),
    ("dsar.received", &["request_id", "kind", "due_at"]),
    (
        "dsar.status_changed",
        &["request_id", "kind", "status", "due_at"],
    ),
    ("dsar.extended", &["request_id", "kind", "status", "due_at"]),
    ("dsar.rectified", &["request_id", "attributes"]),
    ("journey.stage_changed", &["from", "to"]),
    (
        "survey.responded",
        &["survey_id", "response_id", "finished", "written_back"],
    ),
    ("survey.followup_closed", &["survey_id", "followup_id"]),
];

/// Whether a subscription may name `event_type`.
pub fn is_event_type(event_type: &str) -> bool {
    EVENT_TYPES.iter().any(|(name, _)| *name == event_type)
}

/// The message an audited change leaves, or `None` for changes that concern no one
/// downstream (tokens minted, surveys defined, exports...).
pub fn message_for(action: &str, payload: &Value) -> Option<Message> {
    let (event_type, fields) = EVENT_TYPES.iter().find(|(name, _)| *name == action)?;
    let mut data = Map::new();
    for field in *fields {
        let Some(value) = payload.get(*field) else {
            continue;
        };
        let value = match *field {
            // Attribute changes carry the attributes' names, never their values.
            "attributes" => names_of(value),
            _ => value.clone(),
        };
        data.insert((*field).to_owned(), value);
    }
    Some(Message {
        event_type,
        purpose: payload
            .get("purpose")
            .and_then(Value::as_str)
            .map(str::to_owned),
        data: Value::Object(data),
    })
}

/// An object's keys, or a list of names as it is.
fn names_of(value: &Value) -> Value {
    match value {
        Value::Object(fields) => Value::from(fields.keys().cloned().collect::<Vec<_>>()),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .filter(|item| item.is_string())
                .cloned()
                .collect(),
        ),
        _ => Value::Array(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_consent_change_carries_its_purpose_and_status() {
        let message = message_for(
            "consent.denied",
            &json!({"purpose": "marketing.email", "status": "denied", "source": "api",
                    "record_id": "r1", "purpose_version": 2, "notice_digest": "abc"}),
        )
        .unwrap();
        assert_eq!(message.event_type, "consent.denied");
        assert_eq!(message.purpose.as_deref(), Some("marketing.email"));
        assert_eq!(
            message.data,
            json!({"purpose": "marketing.email", "status": "denied", "source": "api",
                   "record_id": "r1", "purpose_version": 2})
        );
    }

    #[test]
    fn attribute_values_never_leave() {
        let message = message_for(
            "profile.updated",
            &json!({"source": "api", "attributes": {"email": "a@b.example", "city": "Oslo"}}),
        )
        .unwrap();
        assert_eq!(
            message.data,
            json!({"source": "api", "attributes": ["city", "email"]})
        );
        assert!(!message.data.to_string().contains("a@b.example"));
    }

    #[test]
    fn notes_and_unknown_fields_are_left_behind() {
        let message = message_for(
            "dsar.status_changed",
            &json!({"request_id": "q1", "kind": "erasure", "status": "completed",
                    "note": "called them at +44 20 7946 0000"}),
        )
        .unwrap();
        assert_eq!(
            message.data,
            json!({"request_id": "q1", "kind": "erasure", "status": "completed"})
        );
    }

    #[test]
    fn changes_that_concern_no_one_downstream_leave_nothing() {
        for action in [
            "token.minted",
            "survey.created",
            "subject.exported",
            "policy.loaded",
        ] {
            assert_eq!(message_for(action, &json!({})), None, "{action}");
        }
    }
}
