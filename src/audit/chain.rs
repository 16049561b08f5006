//! The hash chain, as pure functions: how an event's hash is computed, and how a run of
//! events is checked. The README specifies the encoding for outside verifiers.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::crypto::sha256_hex;

/// The `prev_hash` of the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
pub const CHAIN_VERSION: &str = "consentry.audit.v1";

/// One event as the chain sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainedEvent {
    pub seq: i64,
    pub occurred_at: DateTime<Utc>,
    pub actor_role: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub subject_pseudonym: Option<String>,
    /// The payload as stored; empty once erased (its digest stays).
    pub payload: String,
    pub payload_digest: String,
    pub prev_hash: String,
    pub hash: String,
}

/// `occurred_at` exactly as hashed: RFC 3339, UTC, microseconds.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Reads a time written by `timestamp`, and only in that form: the text is what is
/// hashed, signed and compared, so another spelling of the same instant is refused.
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
        .filter(|t| timestamp(*t) == text)
}

/// Serde for an optional time in `timestamp`'s form (`null` when absent).
pub mod optional_timestamp {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => s.serialize_str(&super::timestamp(*at)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| {
                super::parse_timestamp(&text).ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "`{text}` is not a UTC time with six fractional digits"
                    ))
                })
            })
            .transpose()
    }
}

impl ChainedEvent {
    /// SHA-256 (hex) of the compact JSON array
    /// `["consentry.audit.v1", seq, occurred_at, actor_role, actor_id|null, action,
    ///   subject_pseudonym|null, payload_digest, prev_hash]`.
    pub fn expected_hash(&self) -> String {
        let canonical = json!([
            CHAIN_VERSION,
            self.seq,
            timestamp(self.occurred_at),
            self.actor_role,
            self.actor_id,
            self.action,
            self.subject_pseudonym,
            self.payload_digest,
            self.prev_hash
        ]);
        sha256_hex(canonical.to_string().as_bytes())
    }
}

/// Walks events in order and stops at the first that breaks the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainCheck {
    expected_seq: i64,
    expected_prev: String,
    pub checked: u64,
    pub first_bad_seq: Option<i64>,
    pub problem: Option<String>,
    pub head_seq: i64,
    pub head_hash: String,
    /// Signed checkpoints the walk compared the chain with.
    pub checkpoints_checked: u64,
}

impl ChainCheck {
    /// A check starting after `(seq, hash)`: `(0, GENESIS)` for the whole chain.
    pub fn after(seq: i64, hash: &str) -> Self {
        Self {
            expected_seq: seq + 1,
            expected_prev: hash.to_owned(),
            checked: 0,
            first_bad_seq: None,
            problem: None,
            head_seq: seq,
            head_hash: hash.to_owned(),
            checkpoints_checked: 0,
        }
    }

    /// Marks the chain broken at `seq` for a reason found outside `push`.
    pub fn fail(&mut self, seq: i64, problem: impl Into<String>) {
        if self.ok() {
            self.first_bad_seq = Some(seq);
            self.problem = Some(problem.into());
        }
    }

    pub fn ok(&self) -> bool {
        self.first_bad_seq.is_none()
    }

    /// Checks the next event; returns false once the chain is broken.
    pub fn push(&mut self, event: &ChainedEvent) -> bool {
        if !self.ok() {
            return false;
        }
        let problem = if event.seq != self.expected_seq {
            Some(format!(
                "expected event {} here, found {}",
                self.expected_seq, event.seq
            ))
        } else if event.prev_hash != self.expected_prev {
            Some("prev_hash is not the previous event's hash".to_owned())
        } else if !event.payload.is_empty()
            && sha256_hex(event.payload.as_bytes()) != event.payload_digest
        {
            Some("the payload does not match its digest".to_owned())
        } else if event.expected_hash() != event.hash {
            Some("the hash does not match the event's fields".to_owned())
        } else {
            None
        };
        if let Some(problem) = problem {
            self.first_bad_seq = Some(event.seq);
            self.problem = Some(problem);
            return false;
        }
        self.checked += 1;
        self.expected_seq = event.seq + 1;
        self.expected_prev = event.hash.clone();
        self.head_seq = event.seq;
        self.head_hash = event.hash.clone();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn chain(n: i64) -> Vec<ChainedEvent> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let payload = format!(r#"{{"n":{seq}}}"#);
                let mut event = ChainedEvent {
                    seq,
                    occurred_at: Utc
                        .with_ymd_and_hms(2026, 11, 23, 12, 0, seq as u32)
                        .unwrap(),
                    actor_role: "service".into(),
                    actor_id: Some("svc".into()),
                    action: "consent.granted".into(),
                    subject_pseudonym: Some("ab".repeat(32)),
                    payload_digest: sha256_hex(payload.as_bytes()),
                    payload,
                    prev_hash: prev.clone(),
                    hash: String::new(),
                };
                event.hash = event.expected_hash();
                prev = event.hash.clone();
                event
            })
            .collect()
    }

    fn check(events: &[ChainedEvent]) -> ChainCheck {
        let mut check = ChainCheck::after(0, GENESIS);
        for event in events {
            if !check.push(event) {
                break;
            }
        }
        check
    }

    #[test]
    fn the_encoding_is_stable() {
        let at = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(timestamp(at), "2026-01-02T03:04:05.000000Z");
        // Pinned: a change to the encoding must be deliberate (and versioned).
        let event = ChainedEvent {
            seq: 1,
            occurred_at: at,
            actor_role: "service".into(),
            actor_id: None,
            action: "subject.created".into(),
            subject_pseudonym: None,
            payload: "{}".into(),
            payload_digest: sha256_hex(b"{}"),
            prev_hash: GENESIS.into(),
            hash: String::new(),
        };
        let hash = event.expected_hash();
        let canonical = format!(
            r#"["consentry.audit.v1",1,"2026-01-02T03:04:05.000000Z","service",null,"subject.created",null,"{}","{}"]"#,
            sha256_hex(b"{}"),
            GENESIS
        );
        assert_eq!(hash, sha256_hex(canonical.as_bytes()));
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let result = check(&chain(5));
        assert!(result.ok());
        assert_eq!((result.checked, result.head_seq), (5, 5));
    }

    #[test]
    fn every_kind_of_tampering_is_found() {
        let good = chain(5);
        let mut edited_payload = good.clone();
        edited_payload[2].payload = r#"{"n":99}"#.into();
        assert_eq!(check(&edited_payload).first_bad_seq, Some(3));

        let mut edited_field = good.clone();
        edited_field[1].action = "consent.denied".into();
        assert_eq!(check(&edited_field).first_bad_seq, Some(2));

        let mut deleted = good.clone();
        deleted.remove(2);
        assert_eq!(check(&deleted).first_bad_seq, Some(4));

        let mut inserted = good.clone();
        let mut extra = good[1].clone();
        extra.seq = 3;
        inserted.insert(2, extra);
        assert_eq!(check(&inserted).first_bad_seq, Some(3));

        let mut reordered = good.clone();
        reordered.swap(1, 2);
        assert_eq!(check(&reordered).first_bad_seq, Some(3));

        // Re-hashing an edited event does not help: the next one's prev_hash breaks.
        let mut rehashed = good.clone();
        rehashed[1].actor_id = Some("someone-else".into());
        rehashed[1].hash = rehashed[1].expected_hash();
        assert_eq!(check(&rehashed).first_bad_seq, Some(3));
    }

    #[test]
    fn an_erased_payload_keeps_the_chain() {
        let mut erased = chain(3);
        erased[1].payload = String::new();
        assert!(check(&erased).ok());
    }
}
