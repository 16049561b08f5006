//! The bodies of the fuzz targets (`fuzz/fuzz_targets/`), here so that the fuzzers and
//! the corpus replay in `tests/fuzz_corpus.rs` run one and the same code. Each takes
//! arbitrary bytes, drives the library the way the server does with them, and must
//! never panic: a panic is a bug (a 500 or a dead worker in the service, a crash of
//! `consentry policies check` or `consentry audit verify`).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use chrono::{DateTime, TimeZone, Utc};
use validator::Validate;

use crate::consent::api::consents::{self, BatchConsentRequest, ConsentRequest};
use crate::consent::ledger::ConsentChange;
use crate::consent::signals;
use crate::consent::write;
use crate::consent::{SubjectId, SubjectSnapshot};
use crate::gate::api::decisions::{self, BatchInput, DecisionInput};
use crate::gate::rules::{decide_for, DecisionRequest};
use crate::http::extract::{parse_json, BodyLimit};
use crate::policy::taxonomy::category_covers;
use crate::policy::Policies;
use crate::surveys::answers::{merge, stored_values};
use crate::surveys::api::responses::NewAnswers;
use crate::surveys::catalog::{self, NewSurvey, SurveyPatch};
use crate::surveys::definition::{Definition, SurveyStatus, DEFAULT_PURPOSE};
use crate::surveys::{respond, store, templates};

/// A target's body: arbitrary bytes in, a panic on a bug.
pub type Target = fn(&[u8]);

/// Every target by name, as `fuzz/fuzz_targets/<name>.rs` and `fuzz/corpus/<name>/`.
pub const TARGETS: [(&str, Target); 8] = [
    ("privacy_signals", privacy_signals),
    ("policy_files", policy_files),
    ("decision_body", decision_body),
    ("consent_body", consent_body),
    ("survey_definition_body", survey_definition_body),
    ("survey_response_body", survey_response_body),
    ("audit_export_jsonl", audit_export_jsonl),
    ("audit_export_csv", audit_export_csv),
];

/// The repository's own policies, loaded once: what body checks are made against.
fn policies() -> &'static Policies {
    static POLICIES: OnceLock<Policies> = OnceLock::new();
    POLICIES.get_or_init(|| {
        crate::policy::load(&policies_dir()).expect("the repository's policies load")
    })
}

fn policies_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")
}

/// A fixed clock, so that a failing input fails again.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
}

/// A body as `ValidJson` takes it: within the default size limit, parsed, then validated.
fn valid_json<T: serde::de::DeserializeOwned + Validate>(data: &[u8]) -> Option<T> {
    if data.len() > BodyLimit::default().0 {
        return None;
    }
    let value: T = parse_json(data).ok()?;
    value.validate().ok()?;
    Some(value)
}

/// `POST /v1/subjects/{id}/signals`: the input as a US Privacy string (when within its
/// 16 characters) and as a GPP string (within 8,192).
pub fn privacy_signals(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let chars = text.chars().count();
    if chars <= 16 {
        if let Ok(out) = signals::decode_usp(text) {
            assert_eq!(out.sections, ["uspv1"], "{text:?}");
        }
    }
    if chars <= 8192 {
        if let Ok(out) = signals::decode_gpp(text) {
            // What the handler then does with a decoded string.
            out.purposes(policies());
        }
    }
}

/// The policy files this target replaces one at a time: the input's first byte picks
/// one (`0` purposes, `1` jurisdictions, `2` categories, `3` gate, `4` retention, `5`
/// the English notice, `6` channels), the rest is its text; the others stay the
/// repository's.
pub const POLICY_FILES: [&str; 7] = [
    "purposes.toml",
    "jurisdictions.toml",
    "data_categories.toml",
    "gate.toml",
    "retention.toml",
    "notices/en.md",
    "channels.toml",
];

/// A private copy of `policies/` that the policy target writes into, one per process.
static POLICY_COPY: Mutex<Option<PathBuf>> = Mutex::new(None);

/// The repository's text of each of `POLICY_FILES`, and of the Arabic notice, read once.
fn originals() -> &'static [(&'static str, Vec<u8>)] {
    static ORIGINALS: OnceLock<Vec<(&'static str, Vec<u8>)>> = OnceLock::new();
    ORIGINALS.get_or_init(|| {
        POLICY_FILES
            .iter()
            .chain(&["notices/ar.md"])
            .map(|f| {
                (
                    *f,
                    std::fs::read(policies_dir().join(f)).expect("a policy file"),
                )
            })
            .collect()
    })
}

// Written from memory with `fs::write`, which retries a write the fuzzer's timer
// interrupts (`fs::copy` does not).
fn copy_policies() -> PathBuf {
    let to = std::env::temp_dir().join(format!("consentry-fuzz-policies-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&to);
    std::fs::create_dir_all(to.join("notices")).expect("a temporary policies folder");
    for (file, text) in originals() {
        std::fs::write(to.join(file), text).expect("copying a policy file");
    }
    to
}

/// Removes the copy `policy_files` made (the corpus replay calls this when done).
pub fn remove_policy_copy() {
    let mut copy = POLICY_COPY.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(dir) = copy.take() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// `consentry policies check` and the server's start: load and check every file, and
/// report each problem as `file:line: field: message`, with a line inside the file.
pub fn policy_files(data: &[u8]) {
    let Some((&which, text)) = data.split_first() else {
        return;
    };
    let file = POLICY_FILES[usize::from(which) % POLICY_FILES.len()];
    let mut copy = POLICY_COPY.lock().unwrap_or_else(|e| e.into_inner());
    let dir = copy.get_or_insert_with(copy_policies);
    let path = dir.join(file);
    std::fs::write(&path, text).expect("writing the fuzzed policy file");
    let loaded = crate::policy::load(dir);
    let original = &originals()[usize::from(which) % POLICY_FILES.len()].1;
    std::fs::write(&path, original).expect("restoring a policy file");
    let Err(error) = loaded else {
        return;
    };
    assert!(!error.issues.is_empty(), "an error names its problems");
    let lines = text.iter().filter(|b| **b == b'\n').count() + 1;
    let shown = path.display().to_string();
    for issue in &error.issues {
        if let (true, Some(line)) = (issue.file == shown, issue.line) {
            assert!(
                (1..=lines).contains(&line),
                "{issue}: line {line} of a {lines}-line file"
            );
        }
        assert!(
            !issue.field.is_empty() && !issue.message.is_empty(),
            "{issue}"
        );
    }
    let _ = error.to_string();
}

/// Decides a checked decision for a subject the service does not know, with and
/// without a GPC signal: what the gate answers an unknown subject.
fn decide_unknown(checked: &decisions::Checked<'_>) {
    let snapshot = SubjectSnapshot::default();
    for gpc in [false, true] {
        let request = DecisionRequest {
            purpose: checked.purpose,
            channel: checked.channel.as_ref(),
            data_categories: &checked.categories,
            gpc,
            now: now(),
        };
        let decision = decide_for(policies(), &snapshot, &request);
        // Rule 1 of the gate: a purpose it does not declare is never allowed to use a
        // category.
        if decision.allowed {
            for category in &checked.categories {
                assert!(
                    category_covers(&checked.purpose.data_categories, category),
                    "allowed {category} for {}",
                    checked.purpose.key
                );
            }
        }
    }
}

/// `POST /v1/decisions` and `POST /v1/decisions/batch`: the body checked against the
/// policies, then decided.
pub fn decision_body(data: &[u8]) {
    if let Some(input) = valid_json::<DecisionInput>(data) {
        if let Ok(checked) = decisions::check(policies(), input, "") {
            decide_unknown(&checked);
        }
    }
    if let Some(batch) = valid_json::<BatchInput>(data) {
        if let Ok(all) = crate::gate::api::check_batch(batch.items, |item, prefix| {
            decisions::check(policies(), item, prefix)
        }) {
            all.iter().for_each(decide_unknown);
        }
    }
}

/// `PUT /v1/subjects/{id}/consents/{purpose}` (for the purpose `marketing.email`) and
/// `POST /v1/subjects/{id}/consents`: the body, then its purposes against the policies.
pub fn consent_body(data: &[u8]) {
    if let Some(one) = valid_json::<ConsentRequest>(data) {
        let change = ConsentChange {
            purpose: "marketing.email".into(),
            status: one.status,
            source: one.source.into(),
            notice_digest: one.notice_digest.map(|d| d.to_ascii_lowercase()),
        };
        let _ = write::check_purposes(policies(), &[change], false);
    }
    if let Some(batch) = valid_json::<BatchConsentRequest>(data) {
        if !consents::duplicate_purposes(&batch.consents).is_empty() {
            return;
        }
        let changes: Vec<ConsentChange> = batch
            .consents
            .into_iter()
            .map(consents::BatchConsentItem::into_change)
            .collect();
        let _ = write::check_purposes(policies(), &changes, changes.len() > 1);
    }
}

/// `POST /v1/surveys` (and the body of `PATCH /v1/surveys/{id}`): parsed, validated, and
/// a new survey's definition checked against the policies.
pub fn survey_definition_body(data: &[u8]) {
    if let Some(new) = valid_json::<NewSurvey>(data) {
        let purpose = new.purpose.as_deref().unwrap_or(DEFAULT_PURPOSE);
        let definition = Definition {
            questions: new.questions.clone(),
            targeting: new.targeting.clone(),
            throttling: new.throttling.clone(),
            breakdown: new.breakdown.clone(),
        };
        let status = new.status.unwrap_or(SurveyStatus::Draft);
        let errors =
            catalog::check_new(policies(), &new.key, new.kind, status, purpose, &definition);
        if errors.is_empty() {
            // A definition the service stores must read back the same.
            let stored = serde_json::to_string(&definition).expect("a definition serializes");
            let back: Definition =
                serde_json::from_str(&stored).expect("a stored definition reads back");
            assert_eq!(
                serde_json::to_value(&back).ok(),
                serde_json::to_value(&definition).ok()
            );
        }
    }
    let _ = valid_json::<SurveyPatch>(data);
}

/// The shipped survey templates: the definitions answers are checked against.
fn template_definitions() -> &'static [Definition] {
    static DEFINITIONS: OnceLock<Vec<Definition>> = OnceLock::new();
    DEFINITIONS.get_or_init(|| {
        templates::built_in()
            .expect("the shipped templates parse")
            .into_iter()
            .map(|s| Definition {
                questions: s.questions,
                targeting: s.targeting,
                throttling: s.throttling,
                breakdown: s.breakdown,
            })
            .collect()
    })
}

/// `POST /v1/surveys/{id}/responses` to each shipped template: the body, the answers
/// merged into none and then resubmitted as finished, written back and stored.
pub fn survey_response_body(data: &[u8]) {
    let Some(body) = valid_json::<NewAnswers>(data) else {
        return;
    };
    if SubjectId::parse(&body.subject_id).is_err() {
        return;
    }
    for definition in template_definitions() {
        let questions = &definition.questions;
        let Ok(merged) = merge(questions, &Default::default(), &body.answers, body.finished) else {
            continue;
        };
        if merged.answers.is_empty() {
            continue;
        }
        let touched = merged.touched();
        respond::write_back(definition, &merged.answers, &touched, now());
        for (id, value) in &merged.answers {
            if let Some(question) = questions.iter().find(|q| &q.id == id) {
                stored_values(question, value);
            }
        }
        // Stored answers are read back as they were merged.
        let stored = store::answers_json(&merged.answers);
        let back: serde_json::Value = serde_json::from_str(&stored).expect("stored answers parse");
        assert_eq!(back, serde_json::Value::Object(merged.answers.clone()));
        let _ = merge(questions, &merged.answers, &body.answers, true);
    }
}

/// The key set of the worked example in `docs/audit-export.md` (the Ed25519 key whose
/// seed is 00 01 … 1f: published, never a real key). The seeds are signed with it, so
/// the fuzzer reaches the signature check.
pub const EXAMPLE_JWKS: &str = r#"{"keys":[{"alg":"EdDSA","crv":"Ed25519","kid":"1IG2tMH7J2wbJZnOf8LJzQitKf7LMvoAElsuDMVM54Y","kty":"OKP","use":"sig","x":"A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg"}]}"#;

fn verify(data: &[u8]) {
    static JWKS: OnceLock<serde_json::Value> = OnceLock::new();
    let jwks =
        JWKS.get_or_init(|| serde_json::from_str(EXAMPLE_JWKS).expect("the example key set"));
    let with_keys = crate::audit::export::verify_reader(data, Some(jwks));
    let without = crate::audit::export::verify_reader(data, None);
    // Checking the signature only adds a check: it never passes what the chain fails.
    if with_keys.is_ok() {
        assert!(without.is_ok(), "{without:?}");
    }
}

fn is_json_lines(data: &[u8]) -> bool {
    data.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// `consentry audit verify` on a JSON Lines export (inputs in the CSV form are left to
/// the CSV target).
pub fn audit_export_jsonl(data: &[u8]) {
    if is_json_lines(data) {
        verify(data);
    }
}

/// `consentry audit verify` on a CSV export.
pub fn audit_export_csv(data: &[u8]) {
    if !is_json_lines(data) {
        verify(data);
    }
}
