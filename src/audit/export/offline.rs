//! The offline check of an export: what `consentry audit verify` and a regulator's own
//! tools do with a file, line by line, without the service.

use std::collections::HashMap;
use std::io::BufRead;

use super::{ExportFilter, ExportHeader, ExportLine, SealClaims, EXPORT_VERSION};
use crate::audit::chain::{parse_timestamp, ChainedEvent, GENESIS};
use crate::crypto::sha256_hex;

fn from_csv(record: &csv::StringRecord) -> Result<ExportLine, String> {
    // Cells were neutralised for spreadsheets on the way out; this undoes it.
    let field = |i: usize| crate::csv_cell::read_back(record.get(i).unwrap_or_default()).to_owned();
    let optional = |i: usize| Some(field(i)).filter(|v| !v.is_empty());
    let seq = || {
        field(1)
            .parse::<i64>()
            .map_err(|_| "seq is not a number".to_owned())
    };
    Ok(match field(0).as_str() {
        "header" => match serde_json::from_str(&field(7)) {
            Ok(header @ ExportLine::Header(_)) => header,
            Ok(_) => return Err("the header row's payload is not a header".into()),
            Err(e) => return Err(format!("the header row's payload: {e}")),
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
    /// The header's claims (proven only when `signature_checked`).
    pub header: ExportHeader,
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
/// (1-based). Without a key set the closing signature is not checked, so nothing the
/// header claims (filters, range) is proven: only the chain between its lines.
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

/// The header, checked on its own: the right version and a range that makes sense.
fn check_header(first: Option<(usize, ExportLine)>) -> Result<ExportHeader, String> {
    let (n, header) = match first {
        Some((n, ExportLine::Header(header))) => (n, header),
        Some((n, _)) => return Err(format!("line {n}: the export must start with its header")),
        None => return Err("the export is empty".into()),
    };
    if header.version != EXPORT_VERSION {
        return Err(format!(
            "line {n}: the export's format is `{}`; this verifier reads {EXPORT_VERSION}",
            header.version
        ));
    }
    match (header.first_seq, header.last_seq) {
        (Some(first), Some(last)) if 1 <= first && first <= last => {}
        (None, None) if !header.filters.is_everything() => {}
        (None, None) => return Err(format!("line {n}: an unfiltered export cannot be empty")),
        _ => return Err(format!("line {n}: first_seq and last_seq are not a range")),
    }
    if header.filters.is_everything() && header.first_seq != Some(1) {
        return Err(format!(
            "line {n}: an unfiltered export must start at event 1"
        ));
    }
    Ok(header)
}

/// An event line, checked on its own: digest, canonical time, hash, and the filters.
fn check_event(line: &ExportLine, filters: &ExportFilter) -> Result<(), String> {
    let ExportLine::Event {
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
    } = line
    else {
        return Ok(());
    };
    if !payload.is_empty() && sha256_hex(payload.as_bytes()) != *payload_digest {
        return Err(format!(
            "event {seq}: the payload does not match its digest"
        ));
    }
    let at = parse_timestamp(occurred_at).ok_or_else(|| {
        format!("event {seq}: occurred_at is not a UTC time with six fractional digits")
    })?;
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
            "event {seq}: the hash does not match the event's fields"
        ));
    }
    if !filters.matches(&event) {
        return Err(format!("event {seq} does not match the export's filters"));
    }
    Ok(())
}

fn check_lines(
    mut lines: Lines<'_>,
    jwks: Option<&serde_json::Value>,
) -> Result<OfflineReport, String> {
    let header = check_header(lines.next().transpose()?)?;
    let (mut events, mut links) = (0, 0);
    // The previous line's seq and hash, and whether it was a whole event.
    let mut previous: Option<(i64, String, bool)> = None;
    let mut closing = None;
    for item in lines {
        let (n, line) = item?;
        if closing.is_some() {
            return Err(format!("line {n}: nothing may follow the checkpoint"));
        }
        check_event(&line, &header.filters).map_err(|e| format!("line {n}: {e}"))?;
        let (seq, prev_hash, hash, whole) = match line {
            ExportLine::Header(_) => return Err(format!("line {n}: a second header")),
            ExportLine::Checkpoint {
                seq,
                hash,
                kid,
                signature,
            } => {
                closing = Some((n, seq, hash, kid, signature));
                continue;
            }
            ExportLine::Link {
                seq,
                prev_hash,
                hash,
            } => {
                links += 1;
                (seq, prev_hash, hash, false)
            }
            ExportLine::Event {
                seq,
                prev_hash,
                hash,
                ..
            } => {
                events += 1;
                (seq, prev_hash, hash, true)
            }
        };
        match &previous {
            None => {
                if Some(seq) != header.first_seq {
                    return Err(format!(
                        "line {n}: the header says the export starts at event {}, found {seq}",
                        header.first_seq.map_or("none".into(), |s| s.to_string())
                    ));
                }
                if !whole {
                    return Err(format!(
                        "line {n}: the export must start with a whole event, not a link"
                    ));
                }
                if seq == 1 && prev_hash != GENESIS {
                    return Err(format!("line {n}: event 1 must follow the zero hash"));
                }
            }
            Some((previous_seq, previous_hash, _)) => {
                if seq != previous_seq + 1 {
                    return Err(format!(
                        "line {n}: expected event {} here, found {seq}",
                        previous_seq + 1
                    ));
                }
                if prev_hash != *previous_hash {
                    return Err(format!(
                        "line {n}: event {seq}: prev_hash is not the previous event's hash"
                    ));
                }
            }
        }
        previous = Some((seq, hash, whole));
    }
    let Some((n, seq, hash, kid, signature)) = closing else {
        return Err("the export has no closing checkpoint (it was cut short)".into());
    };
    match previous {
        Some((last, last_hash, whole)) => {
            if Some(last) != header.last_seq {
                return Err(format!(
                    "line {n}: the header says the export ends at event {}, found {last}",
                    header.last_seq.map_or("none".into(), |s| s.to_string())
                ));
            }
            if !whole {
                return Err(format!(
                    "line {n}: the export must end with a whole event, not a link"
                ));
            }
            if (seq, &hash) != (last, &last_hash) {
                return Err(format!(
                    "line {n}: the checkpoint does not pin the last event"
                ));
            }
        }
        None if header.first_seq.is_some() => {
            return Err(format!(
                "line {n}: the header promises events, and there are none"
            ))
        }
        None => {}
    }
    let signature_checked = match jwks {
        Some(jwks) => {
            let claims =
                check_signature(jwks, &kid, &signature).map_err(|e| format!("line {n}: {e}"))?;
            if claims.header != header {
                return Err(format!(
                    "line {n}: the signature is for other header claims (filters, range or time) than this header's"
                ));
            }
            if (claims.seq, &claims.hash) != (seq, &hash) {
                return Err(format!(
                    "line {n}: the checkpoint's signature is for another head"
                ));
            }
            true
        }
        None => false,
    };
    Ok(OfflineReport {
        events,
        links,
        header,
        head_seq: seq,
        head_hash: hash,
        signature_checked,
    })
}

/// The closing signature's claims, once the signature verifies with the key set's key
/// `kid` (EdDSA only, and the JWS header must name the same key).
fn check_signature(
    jwks: &serde_json::Value,
    kid: &str,
    signature: &str,
) -> Result<SealClaims, String> {
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
    let named = jsonwebtoken::decode_header(signature)
        .map_err(|_| "the checkpoint's signature is not a JWS".to_owned())?
        .kid;
    if named.as_deref() != Some(kid) {
        return Err("the checkpoint's signature names another key".into());
    }
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    let claims = jsonwebtoken::decode::<serde_json::Value>(signature, &key, &validation)
        .map_err(|_| "the checkpoint's signature does not verify".to_owned())?
        .claims;
    seal_claims(claims)
        .map_err(|e| format!("the checkpoint's signature is not over an export's claims: {e}"))
}

/// Reads signed claims: the header's fields, and `seq`, `hash` and `iat`, nothing else.
fn seal_claims(claims: serde_json::Value) -> Result<SealClaims, String> {
    let serde_json::Value::Object(mut fields) = claims else {
        return Err("not a JSON object".into());
    };
    let seq = fields.remove("seq").and_then(|v| v.as_i64());
    let hash = fields
        .remove("hash")
        .and_then(|v| v.as_str().map(str::to_owned));
    let iat = fields.remove("iat").and_then(|v| v.as_i64());
    let header =
        serde_json::from_value(serde_json::Value::Object(fields)).map_err(|e| e.to_string())?;
    match (seq, hash, iat) {
        (Some(seq), Some(hash), Some(iat)) => Ok(SealClaims {
            header,
            seq,
            hash,
            iat,
        }),
        _ => Err("`seq`, `hash` or `iat` is missing".into()),
    }
}

#[cfg(test)]
mod tests {
    //! The worked example of `docs/audit-export.md`, made here by the code that makes real
    //! exports: the document must show exactly this, and this verifier must accept it.

    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use chrono::{TimeZone, Utc};
    use ring::signature::KeyPair;
    use serde_json::json;

    use super::*;
    use crate::auth::keys::SigningKey;

    const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/audit-export.md");

    /// The example's key: the Ed25519 seed 00 01 02 … 1f in a PKCS#8 wrapping. Public, so
    /// never a real key.
    fn example_key() -> (SigningKey, serde_json::Value) {
        let mut der = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        der.extend(0u8..32);
        let key = SigningKey::from_pkcs8(&der).unwrap();
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).unwrap();
        let jwks = json!({"keys": [{
            "kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(pair.public_key()),
            "kid": key.kid, "alg": "EdDSA", "use": "sig"
        }]});
        (key, jwks)
    }

    /// Three events: a service with a non-ASCII name grants; another customer is created
    /// (a link in this export); the customer withdraws themselves, and that payload was
    /// later emptied.
    fn example_events() -> Vec<ChainedEvent> {
        let customer = sha256_hex(b"example: the pseudonym of a customer");
        let other = sha256_hex(b"example: the pseudonym of another customer");
        let event =
            |seq: i64, role: &str, actor: &str, action: &str, subject: &str, payload: &str| {
                ChainedEvent {
                    seq,
                    occurred_at: Utc
                        .with_ymd_and_hms(2026, 11, 23, 12, 0, seq as u32)
                        .unwrap(),
                    actor_role: role.into(),
                    actor_id: Some(actor.into()),
                    action: action.into(),
                    subject_pseudonym: Some(subject.into()),
                    payload: payload.into(),
                    ..ChainedEvent::default()
                }
            };
        let mut events = vec![
            event(
                1,
                "service",
                "crm-الرياض",
                "consent.granted",
                &customer,
                r#"{"purpose":"marketing.email","source":"api","note":"Zoë, 1/2"}"#,
            ),
            event(
                2,
                "service",
                "billing",
                "subject.created",
                &other,
                r#"{"region":"DE"}"#,
            ),
            event(
                3,
                "subject",
                &customer,
                "consent.denied",
                &customer,
                r#"{"purpose":"marketing.email","source":"portal"}"#,
            ),
        ];
        let mut prev = GENESIS.to_owned();
        for e in &mut events {
            e.payload_digest = sha256_hex(e.payload.as_bytes());
            e.prev_hash = prev;
            e.hash = e.expected_hash();
            prev = e.hash.clone();
        }
        events[2].payload = String::new();
        events
    }

    /// The example's blocks, by name, as the document shows them.
    fn example_blocks() -> Vec<(&'static str, &'static str, String)> {
        let (key, jwks) = example_key();
        let events = example_events();
        let exported = Utc.with_ymd_and_hms(2026, 11, 23, 12, 5, 0).unwrap();
        let header = ExportHeader {
            version: EXPORT_VERSION.into(),
            exported_at: super::super::chain::timestamp(exported),
            filters: ExportFilter {
                subject_pseudonym: events[0].subject_pseudonym.clone(),
                ..ExportFilter::default()
            },
            first_seq: Some(1),
            last_seq: Some(3),
        };
        let mut lines = vec![ExportLine::Header(header.clone())];
        lines.extend(
            events
                .iter()
                .map(|e| ExportLine::within(e, &header.filters)),
        );
        let last = &events[2];
        let seal =
            ExportLine::seal(&header, last.seq, &last.hash, &key, exported.timestamp()).unwrap();
        let ExportLine::Checkpoint { signature, .. } = &seal else {
            unreachable!()
        };
        let part = |i: usize| {
            let text = URL_SAFE_NO_PAD
                .decode(signature.split('.').nth(i).unwrap())
                .unwrap();
            String::from_utf8(text).unwrap() + "\n"
        };
        let (jws_header, jws_claims) = (part(0), part(1));
        lines.push(seal);
        let export: String = lines
            .iter()
            .map(|l| serde_json::to_string(l).unwrap() + "\n")
            .collect();
        let first = &events[0];
        let canonical = json!([
            super::super::chain::CHAIN_VERSION,
            first.seq,
            super::super::chain::timestamp(first.occurred_at),
            first.actor_role,
            first.actor_id,
            first.action,
            first.subject_pseudonym,
            first.payload_digest,
            first.prev_hash
        ])
        .to_string();
        assert_eq!(sha256_hex(canonical.as_bytes()), first.hash);
        vec![
            ("export", "jsonl", export),
            ("jwks", "json", format!("{jwks}\n")),
            ("canonical", "text", canonical + "\n"),
            ("hash", "text", first.hash.clone() + "\n"),
            ("jws-header", "json", jws_header),
            ("jws-claims", "json", jws_claims),
        ]
    }

    #[test]
    fn the_documented_worked_example_is_what_the_code_makes_and_it_verifies() {
        let blocks = example_blocks();
        let doc = std::fs::read_to_string(DOC).unwrap_or_default();
        let expected: Vec<String> = blocks
            .iter()
            .map(|(name, lang, text)| format!("<!-- example: {name} -->\n```{lang}\n{text}```\n"))
            .collect();
        let missing: Vec<&String> = expected
            .iter()
            .filter(|b| !doc.contains(b.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "docs/audit-export.md must show the worked example as the code makes it:\n\n{}",
            missing
                .iter()
                .map(|b| b.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
        let (export, jwks) = (&blocks[0].2, serde_json::from_str(&blocks[1].2).unwrap());
        let report = verify_export(export, Some(&jwks)).unwrap();
        assert_eq!((report.events, report.links, report.head_seq), (2, 1, 3));
        assert!(report.signature_checked);
        let tampered = export.replacen("Zoë", "Zoe", 1);
        assert!(verify_export(&tampered, Some(&jwks))
            .unwrap_err()
            .starts_with("line 2:"));
        // Every key is present, null or not: a filter left out is not "no filter".
        let malformed = export.replacen(r#","actor":null}"#, "}", 1);
        assert_ne!(&malformed, export);
        assert!(verify_export(&malformed, Some(&jwks))
            .unwrap_err()
            .contains("missing field `actor`"));
    }

    #[test]
    fn csv_cells_a_spreadsheet_would_run_are_marked_and_read_back_to_verify() {
        let (key, jwks) = example_key();
        let mut events = example_events();
        events[0].actor_id = Some(r#"=HYPERLINK("https://evil.example")"#.into());
        events[0].payload = "-1+2".into();
        events[1].action = "@SUM(A1)".into();
        events[1].payload = "'quoted".into();
        events[2].actor_id = Some("+1".into());
        events[2].subject_pseudonym = Some("\t=1".into());
        events[2].payload = "\r=2".into();
        let mut prev = GENESIS.to_owned();
        for e in &mut events {
            e.payload_digest = sha256_hex(e.payload.as_bytes());
            e.prev_hash = prev;
            e.hash = e.expected_hash();
            prev = e.hash.clone();
        }
        let header = ExportHeader {
            version: EXPORT_VERSION.into(),
            exported_at: "2026-11-23T12:05:00.000000Z".into(),
            filters: ExportFilter::default(),
            first_seq: Some(1),
            last_seq: Some(3),
        };
        let mut lines = vec![ExportLine::Header(header.clone())];
        lines.extend(events.iter().map(ExportLine::event));
        lines.push(ExportLine::seal(&header, 3, &prev, &key, 1_795_435_500).unwrap());
        let mut writer = csv::WriterBuilder::new().from_writer(Vec::new());
        writer.write_record(super::super::CSV_HEADER).unwrap();
        for line in &lines {
            writer.write_record(super::super::csv_record(line)).unwrap();
        }
        let text = String::from_utf8(writer.into_inner().unwrap()).unwrap();
        let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
        for record in reader.records() {
            for cell in record.unwrap().iter() {
                assert!(
                    !cell.starts_with(crate::csv_cell::FORMULA_STARTS),
                    "a spreadsheet would run {cell:?}"
                );
            }
        }
        assert!(text.contains("'=HYPERLINK"), "{text}");
        assert!(text.contains("''quoted"), "{text}");
        let report = verify_export(&text, Some(&jwks)).unwrap();
        assert_eq!((report.events, report.head_seq), (3, 3));
    }
}
