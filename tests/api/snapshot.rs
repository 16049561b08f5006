//! JSON snapshots: a document with what changes from run to run redacted, compared with
//! a file checked in under `tests/api/snapshots/`. `UPDATE_SNAPSHOTS=1` rewrites the
//! files instead of comparing.

use std::path::PathBuf;

use serde_json::Value;

/// Lines of context around each change in a failure's diff.
const CONTEXT: usize = 3;

/// Replaces uuids, timestamps, hashes and sequence numbers with placeholders, keeping
/// the document's shape (and nulls, so an optional member that fills up shows).
pub fn redact(value: &mut Value) {
    redact_under(value, None);
}

fn redact_under(value: &mut Value, key: Option<&str>) {
    match value {
        Value::Object(members) => {
            for (key, member) in members.iter_mut() {
                redact_under(member, Some(key));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| redact_under(item, key)),
        Value::String(text) => {
            if let Some(placeholder) = placeholder(text, key) {
                *value = Value::from(placeholder);
            }
        }
        // Database sequences: the same on a fresh database, but not promised to be.
        Value::Number(_) if matches!(key, Some("seq" | "id")) => *value = Value::from("[seq]"),
        _ => {}
    }
}

fn placeholder(text: &str, key: Option<&str>) -> Option<&'static str> {
    if uuid::Uuid::parse_str(text).is_ok() {
        Some("[uuid]")
    } else if chrono::DateTime::parse_from_rfc3339(text).is_ok() {
        Some("[timestamp]")
    } else if key == Some("ip_hash")
        || (text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        Some("[hash]")
    } else {
        None
    }
}

/// Redacts `actual` and compares it with the snapshot `name`; on a difference, panics
/// with a line diff of the two and `hint` (what a deliberate change must also do).
pub fn assert_snapshot(name: &str, mut actual: Value, hint: &str) {
    redact(&mut actual);
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/api/snapshots")
        .join(format!("{name}.json"));
    let actual_text = serde_json::to_string_pretty(&actual).unwrap() + "\n";
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &actual_text).unwrap();
        return;
    }
    let expected_text = std::fs::read_to_string(&path).unwrap_or_default();
    let expected: Option<Value> = serde_json::from_str(&expected_text).ok();
    if expected.as_ref() != Some(&actual) {
        panic!(
            "snapshot `{name}` differs from tests/api/snapshots/{name}.json \
             (- the file, + this run):\n{}\n{hint}\nTo accept the change, rerun with \
             UPDATE_SNAPSHOTS=1 and review the file's diff.",
            line_diff(&expected_text, &actual_text)
        );
    }
}

/// The lines that differ, with some context, from a longest common subsequence.
fn line_diff(expected: &str, actual: &str) -> String {
    let (old, new): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    // common[i][j]: the longest common subsequence of old[i..] and new[j..].
    let mut common = vec![vec![0usize; new.len() + 1]; old.len() + 1];
    for i in (0..old.len()).rev() {
        for j in (0..new.len()).rev() {
            common[i][j] = if old[i] == new[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let mut lines = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        if i < old.len() && j < new.len() && old[i] == new[j] {
            lines.push((' ', old[i]));
            (i, j) = (i + 1, j + 1);
        } else if j < new.len() && (i == old.len() || common[i][j + 1] >= common[i + 1][j]) {
            lines.push(('+', new[j]));
            j += 1;
        } else {
            lines.push(('-', old[i]));
            i += 1;
        }
    }
    let near_change = |at: usize| {
        lines[at.saturating_sub(CONTEXT)..(at + CONTEXT + 1).min(lines.len())]
            .iter()
            .any(|(mark, _)| *mark != ' ')
    };
    let mut out = String::new();
    let mut skipped = false;
    for (at, (mark, line)) in lines.iter().enumerate() {
        if near_change(at) {
            out.push_str(&format!("{mark} {line}\n"));
            skipped = false;
        } else if !skipped {
            out.push_str("  …\n");
            skipped = true;
        }
    }
    out
}
