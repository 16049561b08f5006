//! Export lines and their offline check. An export is a header, then one line per event
//! in the covered range — the whole event when it matches the filters, only its link
//! (`seq`, `prev_hash`, `hash`) when it does not, so the chain can be checked across the
//! gaps — and a checkpoint signed with the service's key that pins the last hash.

use std::collections::HashMap;
use std::io::BufRead;

use serde::{Deserialize, Serialize};

use super::chain::{ChainedEvent, CHAIN_VERSION};
use crate::crypto::sha256_hex;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ExportLine {
    Header {
        version: String,
        /// The filters the export was made with.
        filters: serde_json::Value,
        exported_at: String,
    },
    Event {
        seq: i64,
        occurred_at: String,
        actor_role: String,
        actor_id: Option<String>,
        action: String,
        subject_pseudonym: Option<String>,
        payload: String,
        payload_digest: String,
        prev_hash: String,
        hash: String,
    },
    Link {
        seq: i64,
        prev_hash: String,
        hash: String,
    },
    Checkpoint {
        seq: i64,
        hash: String,
        kid: String,
        /// A JWS (EdDSA) over `{seq, hash, iat}`.
        signature: String,
    },
}

impl ExportLine {
    pub fn event(e: &ChainedEvent) -> Self {
        Self::Event {
            seq: e.seq,
            occurred_at: super::chain::timestamp(e.occurred_at),
            actor_role: e.actor_role.clone(),
            actor_id: e.actor_id.clone(),
            action: e.action.clone(),
            subject_pseudonym: e.subject_pseudonym.clone(),
            payload: e.payload.clone(),
            payload_digest: e.payload_digest.clone(),
            prev_hash: e.prev_hash.clone(),
            hash: e.hash.clone(),
        }
    }

    pub fn link(e: &ChainedEvent) -> Self {
        Self::Link {
            seq: e.seq,
            prev_hash: e.prev_hash.clone(),
            hash: e.hash.clone(),
        }
    }
}

/// CSV columns; a link leaves the event's fields empty, a checkpoint puts its signature
/// in `payload` and its key id in `actor_id`.
pub const CSV_HEADER: [&str; 11] = [
    "type",
    "seq",
    "occurred_at",
    "actor_role",
    "actor_id",
    "action",
    "subject_pseudonym",
    "payload",
    "payload_digest",
    "prev_hash",
    "hash",
];

pub fn csv_record(line: &ExportLine) -> [String; 11] {
    let s = |v: &str| v.to_owned();
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    match line {
        ExportLine::Header {
            version,
            filters,
            exported_at,
        } => [
            "header".into(),
            String::new(),
            s(exported_at),
            String::new(),
            String::new(),
            s(version),
            String::new(),
            filters.to_string(),
            String::new(),
            String::new(),
            String::new(),
        ],
        ExportLine::Event {
            seq,
            occurred_at,
            actor_role,
            actor_id,
            action,
            subject_pseudonym,
            payload,
            payload_digest,
            prev_hash,
            hash,
        } => [
            "event".into(),
            seq.to_string(),
            s(occurred_at),
            s(actor_role),
            o(actor_id),
            s(action),
            o(subject_pseudonym),
            s(payload),
            s(payload_digest),
            s(prev_hash),
            s(hash),
        ],
        ExportLine::Link {
            seq,
            prev_hash,
            hash,
        } => [
            "link".into(),
            seq.to_string(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            s(prev_hash),
            s(hash),
        ],
        ExportLine::Checkpoint {
            seq,
            hash,
            kid,
            signature,
        } => [
            "checkpoint".into(),
            seq.to_string(),
            String::new(),
            String::new(),
            s(kid),
            String::new(),
            String::new(),
            s(signature),
            String::new(),
            String::new(),
            s(hash),
        ],
    }
}

fn from_csv(record: &csv::StringRecord) -> Result<ExportLine, String> {
    let field = |i: usize| record.get(i).unwrap_or_default().to_owned();
    let optional = |i: usize| Some(field(i)).filter(|v| !v.is_empty());
    let seq = || {
        field(1)
            .parse::<i64>()
            .map_err(|_| "seq is not a number".to_owned())
    };
    Ok(match field(0).as_str() {
        "header" => ExportLine::Header {
            version: field(5),
            filters: serde_json::from_str(&field(7)).unwrap_or_default(),
            exported_at: field(2),
        },
        "event" => ExportLine::Event {
            seq: seq()?,
            occurred_at: field(2),
            actor_role: field(3),
            actor_id: optional(4),
            action: field(5),
            subject_pseudonym: optional(6),
            payload: field(7),
            payload_digest: field(8),
            prev_hash: field(9),
            hash: field(10),
        },
        "link" => ExportLine::Link {
            seq: seq()?,
            prev_hash: field(9),
            hash: field(10),
        },
        "checkpoint" => ExportLine::Checkpoint {
            seq: seq()?,
            hash: field(10),
            kid: field(4),
            signature: field(7),
        },
        other => return Err(format!("unknown line type `{other}`")),
    })
}

/// The outcome of an offline check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineReport {
    pub events: u64,
    pub links: u64,
    pub head_seq: i64,
    pub head_hash: String,
    /// Whether the closing checkpoint's signature was checked against a key set.
    pub signature_checked: bool,
}

/// Checks an export held in memory (JSON Lines or CSV); see `verify_reader`.
pub fn verify_export(
    text: &str,
    jwks: Option<&serde_json::Value>,
) -> Result<OfflineReport, String> {
    verify_reader(text.as_bytes(), jwks)
}

type Lines<'r> = Box<dyn Iterator<Item = Result<(usize, ExportLine), String>> + 'r>;

/// Checks an export line by line, with constant memory, and names the first bad line
/// (1-based).
pub fn verify_reader<'r, R: BufRead + 'r>(
    mut reader: R,
    jwks: Option<&serde_json::Value>,
) -> Result<OfflineReport, String> {
    let first = reader
        .fill_buf()
        .map_err(|e| format!("cannot read the export: {e}"))?;
    let is_json = first.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let lines: Lines<'r> = if is_json {
        Box::new(reader.lines().enumerate().filter_map(|(i, line)| {
            match line {
                Ok(text) if text.trim().is_empty() => None,
                Ok(text) => Some(
                    serde_json::from_str(&text)
                        .map(|line| (i + 1, line))
                        .map_err(|e| format!("line {}: not an export line: {e}", i + 1)),
                ),
                Err(e) => Some(Err(format!("line {}: {e}", i + 1))),
            }
        }))
    } else {
        let records = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(reader)
            .into_records();
        Box::new(records.enumerate().map(|(i, record)| {
            let record = record.map_err(|e| format!("line {}: not CSV: {e}", i + 2))?;
            let number = record
                .position()
                .map(|p| p.line() as usize)
                .unwrap_or(i + 2);
            from_csv(&record)
                .map(|line| (number, line))
                .map_err(|e| format!("line {number}: {e}"))
        }))
    };
    check_lines(lines, jwks)
}

fn check_lines(
    lines: Lines<'_>,
    jwks: Option<&serde_json::Value>,
) -> Result<OfflineReport, String> {
    let mut iter = lines;
    match iter.next().transpose()? {
        Some((_, ExportLine::Header { version, .. })) if version == CHAIN_VERSION => {}
        Some((n, _)) => {
            return Err(format!(
                "line {n}: the export must start with a {CHAIN_VERSION} header"
            ))
        }
        None => return Err("the export is empty".into()),
    }
    let mut report = OfflineReport {
        events: 0,
        links: 0,
        head_seq: 0,
        head_hash: String::new(),
        signature_checked: false,
    };
    let mut previous: Option<(i64, String)> = None;
    let mut checkpoint_seen = false;
    for item in iter {
        let (n, line) = item?;
        if checkpoint_seen {
            return Err(format!("line {n}: nothing may follow the checkpoint"));
        }
        let (seq, prev_hash, hash) = match &line {
            ExportLine::Header { .. } => return Err(format!("line {n}: a second header")),
            ExportLine::Checkpoint {
                seq,
                hash,
                kid,
                signature,
            } => {
                if previous.is_some() && Some((*seq, hash.clone())) != previous {
                    return Err(format!(
                        "line {n}: the checkpoint does not pin the last event"
                    ));
                }
                if let Some(jwks) = jwks {
                    check_signature(jwks, kid, signature, *seq, hash)
                        .map_err(|e| format!("line {n}: {e}"))?;
                    report.signature_checked = true;
                }
                checkpoint_seen = true;
                continue;
            }
            ExportLine::Link {
                seq,
                prev_hash,
                hash,
            } => {
                report.links += 1;
                (*seq, prev_hash, hash)
            }
            ExportLine::Event {
                seq,
                occurred_at,
                actor_role,
                actor_id,
                action,
                subject_pseudonym,
                payload,
                payload_digest,
                prev_hash,
                hash,
            } => {
                if !payload.is_empty() && sha256_hex(payload.as_bytes()) != *payload_digest {
                    return Err(format!(
                        "line {n}: event {seq}: the payload does not match its digest"
                    ));
                }
                let at = chrono::DateTime::parse_from_rfc3339(occurred_at)
                    .map_err(|_| format!("line {n}: event {seq}: occurred_at is not RFC 3339"))?
                    .with_timezone(&chrono::Utc);
                let event = ChainedEvent {
                    seq: *seq,
                    occurred_at: at,
                    actor_role: actor_role.clone(),
                    actor_id: actor_id.clone(),
                    action: action.clone(),
                    subject_pseudonym: subject_pseudonym.clone(),
                    payload: payload.clone(),
                    payload_digest: payload_digest.clone(),
                    prev_hash: prev_hash.clone(),
                    hash: hash.clone(),
                };
                if event.expected_hash() != *hash {
                    return Err(format!(
                        "line {n}: event {seq}: the hash does not match the event's fields"
                    ));
                }
                report.events += 1;
                (*seq, prev_hash, hash)
            }
        };
        if let Some((previous_seq, previous_hash)) = &previous {
            if seq != previous_seq + 1 {
                return Err(format!(
                    "line {n}: expected event {} here, found {seq}",
                    previous_seq + 1
                ));
            }
            if prev_hash != previous_hash {
                return Err(format!(
                    "line {n}: event {seq}: prev_hash is not the previous event's hash"
                ));
            }
        }
        previous = Some((seq, hash.clone()));
    }
    if !checkpoint_seen {
        return Err("the export has no closing checkpoint (it was cut short)".into());
    }
    if let Some((seq, hash)) = previous {
        report.head_seq = seq;
        report.head_hash = hash;
    }
    Ok(report)
}

fn check_signature(
    jwks: &serde_json::Value,
    kid: &str,
    signature: &str,
    seq: i64,
    hash: &str,
) -> Result<(), String> {
    let keys: HashMap<&str, &str> = jwks["keys"]
        .as_array()
        .map(|keys| {
            keys.iter()
                .filter_map(|k| Some((k["kid"].as_str()?, k["x"].as_str()?)))
                .collect()
        })
        .unwrap_or_default();
    let x = keys
        .get(kid)
        .ok_or_else(|| format!("the checkpoint's key `{kid}` is not in the key set"))?;
    let key = jsonwebtoken::DecodingKey::from_ed_components(x)
        .map_err(|_| "the key set holds a bad key".to_owned())?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    let claims = jsonwebtoken::decode::<serde_json::Value>(signature, &key, &validation)
        .map_err(|_| "the checkpoint's signature does not verify".to_owned())?
        .claims;
    if claims["seq"] != seq || claims["hash"] != hash {
        return Err("the checkpoint's signature is for another head".into());
    }
    Ok(())
}
