//! The service's decoding of GPP and US Privacy strings, held against what the IAB's
//! reference library (`@iabgpp/cmpapi`) says about every string of `tests/gpp/corpus.json`
//! (written by `tests/gpp/generate.mjs`): the same decision to accept or refuse, and for
//! an accepted string the same sections read and ignored and the same opt-outs of sale,
//! sharing and targeted advertising and GPC flag — the fields the gate acts on.
//!
//! Where the service is stricter than the library (a US Privacy string that is not
//! `1` + Y/N/- three times, a section version that was never published, a field value
//! the library's own validator refuses), the corpus entry says why; nowhere may the
//! service accept what the library refuses.

use consentry::consent::signals::{decode_gpp, decode_usp, section_name, OptOuts};
use serde_json::Value;

fn corpus() -> Vec<Value> {
    let text = include_str!("gpp/corpus.json");
    let corpus: Value = serde_json::from_str(text).expect("corpus.json is JSON");
    assert!(
        corpus["library"]
            .as_str()
            .is_some_and(|l| l.starts_with("@iabgpp/cmpapi ")),
        "the corpus names the library that wrote it"
    );
    corpus["entries"].as_array().expect("entries").clone()
}

/// A section the service ignored, as the id the corpus records.
fn ignored_id(name: &str) -> u64 {
    if let Some(id) = name.strip_prefix("section ") {
        return id.parse().expect("a section id");
    }
    (1..=64)
        .find(|&id| section_name(id) == Some(name))
        .map(u64::from)
        .unwrap_or_else(|| panic!("an ignored section with no id: {name}"))
}

fn differences(entry: &Value, ours: &OptOuts) -> Vec<String> {
    let library = &entry["library"];
    let mut out = Vec::new();
    let flag = |field: &str| library[field].as_bool().unwrap_or(false);
    for (field, value) in [
        ("sale", ours.sale),
        ("sharing", ours.sharing),
        ("targeted_advertising", ours.targeted_advertising),
        ("gpc", ours.gpc),
    ] {
        if flag(field) != value {
            out.push(format!("{field}: library {}, service {value}", flag(field)));
        }
    }
    if entry["kind"] == "gpp" {
        let read: Vec<&str> = library["read"]
            .as_array()
            .expect("read")
            .iter()
            .map(|v| v.as_str().expect("a section name"))
            .collect();
        if read != ours.sections {
            out.push(format!(
                "sections read: library {read:?}, service {:?}",
                ours.sections
            ));
        }
        let ignored: Vec<u64> = library["ignored"]
            .as_array()
            .expect("ignored")
            .iter()
            .map(|v| v.as_u64().expect("a section id"))
            .collect();
        let ours_ignored: Vec<u64> = ours
            .ignored_sections
            .iter()
            .map(|n| ignored_id(n))
            .collect();
        if ignored != ours_ignored {
            out.push(format!(
                "sections ignored: library {ignored:?}, service {ours_ignored:?}"
            ));
        }
    }
    out
}

#[test]
fn the_service_decodes_as_the_iab_library_does() {
    let entries = corpus();
    assert!(
        entries.len() > 500,
        "the corpus has {} entries",
        entries.len()
    );
    let mut failures = Vec::new();
    let (mut accepted, mut refused, mut stricter) = (0, 0, 0);
    for entry in &entries {
        let input = entry["input"].as_str().expect("input");
        let library_accepts = entry["library"]["accepted"].as_bool().expect("accepted");
        let service_accepts = entry["service"]["accepted"].as_bool().expect("accepted");
        let reason = entry["service"]["stricter"].as_str();
        // The corpus itself: stricter only where the library accepts, and then with a reason.
        if service_accepts && !library_accepts {
            failures.push(format!(
                "{input:?}: the corpus accepts what the library refuses"
            ));
        }
        if !service_accepts && library_accepts && reason.is_none() {
            failures.push(format!(
                "{input:?}: refused without a reason the library accepts it"
            ));
        }
        let result = match entry["kind"].as_str() {
            Some("gpp") => decode_gpp(input),
            Some("usp") => decode_usp(input),
            other => panic!("unknown kind {other:?}"),
        };
        let note = entry["note"].as_str().unwrap_or_default();
        match (&result, service_accepts) {
            (Ok(ours), true) => {
                accepted += 1;
                let diff = differences(entry, ours);
                if !diff.is_empty() {
                    failures.push(format!("{input:?} ({note}): {}", diff.join("; ")));
                }
            }
            (Err(_), false) => {
                refused += 1;
                stricter += usize::from(library_accepts);
            }
            (Ok(ours), false) => failures.push(format!(
                "{input:?} ({note}): accepted as {ours:?}, but {}",
                reason.map_or_else(
                    || format!("the library refuses it: {}", entry["library"]["error"]),
                    |r| format!("it must be refused: {r}")
                )
            )),
            (Err(e), true) => failures.push(format!(
                "{input:?} ({note}): refused ({e}), but the library reads {}",
                entry["library"]
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus entries disagree with the IAB library:\n{}",
        failures.len(),
        entries.len(),
        failures
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        accepted > 100 && refused > 100,
        "{accepted} accepted, {refused} refused"
    );
    assert!(
        stricter < refused,
        "{stricter} refused where the library accepts"
    );
}
