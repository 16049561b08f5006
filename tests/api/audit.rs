//! The audit chain through the real app: it verifies after ordinary and concurrent
//! writes, and names the first event that was tampered with.

use consentry::auth::Role;
use serde_json::{json, Value};

use crate::helpers::{problem, spawn_app, TestApp};

async fn verify(app: &TestApp, query: &str) -> Value {
    let token = app.token(Role::Compliance, Some("officer"));
    app.get_json(&format!("/v1/audit/verify{query}"), &token)
        .await
}

async fn tamper(app: &TestApp, sql: &'static str) {
    app.app_db
        .run(move |conn| {
            use diesel::RunQueryDsl;
            diesel::sql_query(sql)
                .execute(conn)
                .map_err(consentry::storage::StorageError::from)
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn the_chain_verifies_and_signs_its_head() {
    let app = spawn_app().await;
    app.create_subject("a1", json!({"region": "DE"})).await;
    app.put_consent("a1", "analytics", "granted").await;
    app.put_consent("a1", "analytics", "denied").await;
    let report = verify(&app, "").await;
    assert_eq!(report["ok"], true, "{report}");
    // policy.loaded, subject.created, two consents.
    assert_eq!(report["events_checked"], 4);
    assert_eq!(report["head_seq"], 4);
    let signed = report["signed_head"].as_str().unwrap();
    let jwks: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = jsonwebtoken::DecodingKey::from_ed_components(jwks["keys"][0]["x"].as_str().unwrap())
        .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    let claims = jsonwebtoken::decode::<Value>(signed, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["head_hash"], report["head_hash"]);
    let part = verify(&app, "?from_seq=3&to_seq=4").await;
    assert_eq!(
        (part["ok"].as_bool(), part["events_checked"].as_u64()),
        (Some(true), Some(2))
    );
}

#[tokio::test]
async fn tampering_with_any_field_is_found() {
    for (sql, bad) in [
        (
            "UPDATE audit_events SET payload = '{\"purpose\":\"marketing\"}' WHERE seq = 3",
            3,
        ),
        (
            "UPDATE audit_events SET action = 'consent.denied' WHERE seq = 3",
            3,
        ),
        (
            "UPDATE audit_events SET actor_role = 'admin' WHERE seq = 2",
            2,
        ),
        ("DELETE FROM audit_events WHERE seq = 2", 3),
    ] {
        let app = spawn_app().await;
        app.create_subject("t1", json!({"region": "DE"})).await;
        app.put_consent("t1", "analytics", "granted").await;
        app.put_consent("t1", "marketing", "granted").await;
        tamper(&app, sql).await;
        let report = verify(&app, "").await;
        assert_eq!(report["ok"], false, "{sql}");
        assert_eq!(report["first_bad_seq"], bad, "{sql}: {report}");
        assert!(report["problem"].is_string());
    }
}

#[tokio::test]
async fn concurrent_writers_keep_one_unbroken_chain() {
    let app = spawn_app().await;
    for i in 0..4 {
        app.create_subject(&format!("c{i}"), json!({"region": "DE"}))
            .await;
    }
    let mut handles = Vec::new();
    for i in 0..80 {
        let subject = format!("c{}", i % 4);
        let purpose = ["analytics", "marketing", "personalize"][i % 3];
        let request = app.put_json(
            &format!("/v1/subjects/{subject}/consents/{purpose}"),
            &app.service(),
            &json!({"status": if i % 2 == 0 { "granted" } else { "denied" }, "source": "api"}),
        );
        handles.push(tokio::spawn(async move {
            request.send().await.unwrap().status().as_u16()
        }));
    }
    for handle in handles {
        assert_eq!(handle.await.unwrap(), 200);
    }
    let report = verify(&app, "").await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["events_checked"], 1 + 4 + 80);
}

#[tokio::test]
async fn only_compliance_verifies() {
    let app = spawn_app().await;
    problem(
        app.get("/v1/audit/verify", &app.service())
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
    let token = app.token(Role::Compliance, Some("officer"));
    problem(
        app.get("/v1/audit/verify?from_seq=0", &token)
            .send()
            .await
            .unwrap(),
        422,
    )
    .await;
    problem(
        app.get("/v1/audit/verify?from_seq=5&to_seq=2", &token)
            .send()
            .await
            .unwrap(),
        422,
    )
    .await;
}

#[tokio::test]
async fn events_from_before_the_chain_are_sealed_into_it() {
    let app = spawn_app().await;
    app.create_subject("old", json!({"region": "DE"})).await;
    // An event as an earlier version wrote it: no pseudonym, digest or hashes.
    tamper(&app, "INSERT INTO audit_events (seq, occurred_at, actor_role, actor_id, action, subject_id, payload) VALUES (3, '2026-11-23 12:00:00', 'service', NULL, 'subject.updated', 'old', '{}')").await;
    assert_eq!(verify(&app, "").await["ok"], false);
    let pseudonyms =
        consentry::audit::Pseudonymizer::load_or_generate(&app.data_dir, None).unwrap();
    let sealed = app
        .app_db
        .run(move |conn| consentry::audit::seal_unchained(conn, &pseudonyms))
        .await
        .unwrap();
    assert_eq!(sealed, 1);
    let report = verify(&app, "").await;
    assert_eq!(
        (report["ok"].as_bool(), report["head_seq"].as_i64()),
        (Some(true), Some(3)),
        "{report}"
    );
    // And the next write chains on.
    app.put_consent("old", "analytics", "granted").await;
    assert_eq!(verify(&app, "").await["head_seq"], 4);
}

async fn export(app: &TestApp, query: &str) -> String {
    let token = app.token(Role::Compliance, Some("officer"));
    let response = app
        .get(&format!("/v1/audit/events{query}"), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// The service's key set, as an auditor fetches it.
pub async fn jwks(app: &TestApp) -> Value {
    app.client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn some_history(app: &TestApp) {
    app.create_subject("x1", json!({"region": "DE"})).await;
    app.create_subject("x2", json!({"region": "FR"})).await;
    app.put_consent("x1", "analytics", "granted").await;
    app.put_consent("x2", "marketing", "granted").await;
    app.put_consent("x1", "analytics", "denied").await;
}

#[tokio::test]
async fn exports_verify_offline_in_both_formats() {
    use consentry::audit::export::verify_export;
    let app = spawn_app().await;
    some_history(&app).await;
    let keys = jwks(&app).await;

    let jsonl = export(&app, "").await;
    let report = verify_export(&jsonl, Some(&keys)).unwrap();
    // Five changes, the policy load, and this export's own audit event.
    assert_eq!((report.events, report.links, report.head_seq), (7, 0, 7));
    assert!(report.signature_checked);
    assert_eq!(app.audit_count("audit.exported").await, 1);

    let csv = export(&app, "?format=csv").await;
    assert!(csv.starts_with("type,seq,occurred_at"));
    let report = verify_export(&csv, Some(&keys)).unwrap();
    assert_eq!(report.events, 8);

    // A filtered export keeps the links of what it leaves out; the events about x1 now
    // include the export of them itself.
    let x1 = export(&app, "?subject=x1").await;
    let report = verify_export(&x1, Some(&keys)).unwrap();
    assert_eq!((report.events, report.links), (4, 4), "{x1}");
    assert_eq!(
        (report.header.first_seq, report.header.last_seq),
        (Some(2), Some(9))
    );
    assert!(!x1.contains("\"x1\""), "subjects appear only as pseudonyms");
    let denied = export(&app, "?action=consent.denied").await;
    assert_eq!(verify_export(&denied, Some(&keys)).unwrap().events, 1);

    let token = app.token(Role::Compliance, Some("officer"));
    problem(
        app.get("/v1/audit/events?format=xml", &token)
            .send()
            .await
            .unwrap(),
        422,
    )
    .await;
    problem(
        app.get("/v1/audit/events?from=yesterday", &token)
            .send()
            .await
            .unwrap(),
        422,
    )
    .await;
    problem(
        app.get("/v1/audit/events", &app.service())
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
}

/// An app with `some_history`, its key set, and an unfiltered export.
async fn exported_history() -> (TestApp, Value, String) {
    let app = spawn_app().await;
    some_history(&app).await;
    let keys = jwks(&app).await;
    let whole = export(&app, "").await;
    (app, keys, whole)
}

#[tokio::test]
async fn every_kind_of_tampering_with_an_export_is_named() {
    use consentry::audit::export::verify_export;
    let (_app, keys, good) = exported_history().await;
    let lines: Vec<&str> = good.lines().collect();
    let join = |lines: Vec<&str>| lines.join("\n");

    let edited = good.replacen(
        "\"action\":\"consent.denied\"",
        "\"action\":\"consent.granted\"",
        1,
    );
    assert!(
        verify_export(&edited, Some(&keys))
            .unwrap_err()
            .starts_with("line 7:"),
        "edited field"
    );
    let mut deleted = lines.clone();
    deleted.remove(3);
    assert!(
        verify_export(&join(deleted), Some(&keys))
            .unwrap_err()
            .starts_with("line 4:"),
        "deleted line"
    );
    let mut inserted = lines.clone();
    inserted.insert(3, lines[2]);
    assert!(
        verify_export(&join(inserted), Some(&keys))
            .unwrap_err()
            .starts_with("line 4:"),
        "inserted line"
    );
    let mut reordered = lines.clone();
    reordered.swap(2, 3);
    assert!(
        verify_export(&join(reordered), Some(&keys))
            .unwrap_err()
            .starts_with("line 3:"),
        "reordered lines"
    );
    let cut = join(lines[..lines.len() - 1].to_vec());
    assert!(
        verify_export(&cut, Some(&keys))
            .unwrap_err()
            .contains("checkpoint"),
        "cut short"
    );
    let other_keys = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": keys["keys"][0]["kid"], "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]});
    assert!(
        verify_export(&good, Some(&other_keys))
            .unwrap_err()
            .contains("signature"),
        "another key"
    );
}

#[tokio::test]
async fn an_export_proves_where_it_starts_and_what_its_header_claims() {
    use consentry::audit::export::verify_export;
    let (app, keys, whole) = exported_history().await;
    let lines: Vec<&str> = whole.lines().collect();
    let fails = |text: String, expected: &str, what: &str| {
        let problem = verify_export(&text, Some(&keys)).expect_err(what);
        assert!(problem.contains(expected), "{what}: {problem}");
    };

    // The first event, or the first three, deleted: the chain that is left still links up.
    let mut first_gone = lines.clone();
    first_gone.remove(1);
    fails(
        first_gone.join("\n"),
        "starts at event 1",
        "first event deleted",
    );
    let mut three_gone = lines.clone();
    three_gone.drain(1..4);
    fails(three_gone.join("\n"), "line 2:", "first three deleted");
    // ...and the header edited to match: an unfiltered export starts at event 1, with or
    // without the key set.
    let edited = three_gone
        .join("\n")
        .replacen(r#""first_seq":1,"#, r#""first_seq":4,"#, 1);
    fails(edited.clone(), "must start at event 1", "range edited");
    assert!(verify_export(&edited, None).is_err());
    let unchecked = verify_export(&whole, None).unwrap();
    assert!(!unchecked.signature_checked);

    // The filters in the header are signed too.
    let denied = export(&app, "?action=consent.denied").await;
    assert_eq!(verify_export(&denied, Some(&keys)).unwrap().events, 1);
    let edited = denied.replacen(
        r#""action":"consent.denied","actor":null"#,
        r#""action":"consent.denied","actor":"recommendations""#,
        1,
    );
    assert_ne!(edited, denied);
    fails(edited, "other header claims", "filters edited");
    let narrowed = whole.replacen(
        r#""action":null,"actor""#,
        r#""action":"policy.loaded","actor""#,
        1,
    );
    fails(
        narrowed,
        "does not match the export's filters",
        "filters added",
    );

    // A filtered export that lost its first lines no longer starts where it says, and
    // its range is signed.
    let x1 = export(&app, "?subject=x1").await;
    let mut x1_lines: Vec<&str> = x1.lines().collect();
    x1_lines.drain(1..3);
    let cut = x1_lines.join("\n");
    fails(cut.clone(), "starts at event 2", "filtered, first deleted");
    let moved = cut.replacen(r#""first_seq":2,"#, r#""first_seq":4,"#, 1);
    assert_ne!(moved, cut);
    fails(moved, "other header claims", "filtered, range edited");

    // Times in the filters are stated to the microsecond, inclusive.
    let at = "2026-11-23T12:00:00.000000Z";
    let timed = export(&app, &format!("?from={at}&to={at}")).await;
    let report = verify_export(&timed, Some(&keys)).unwrap();
    assert!(report.events >= 1, "{timed}");
    assert!(timed.contains(&format!(r#""from":"{at}","to":"{at}""#)));
    let token = app.token(Role::Compliance, Some("officer"));
    problem(
        app.get("/v1/audit/events?from=2026-11-23T12:00:00.0000001Z", &token)
            .send()
            .await
            .unwrap(),
        422,
    )
    .await;
}

/// Rewrites event 3 and recomputes every hash after it, as someone with database access
/// but without the service's private key could.
async fn rewrite_chain_from_event_3(app: &TestApp) {
    app.app_db
        .run(|conn| {
            use consentry::storage::schema::audit_events::dsl::*;
            use diesel::prelude::*;
            let mut events = consentry::audit::page(conn, 1, i64::MAX, 10_000)?;
            events[2].action = "consent.denied".into();
            for i in 2..events.len() {
                events[i].prev_hash = events[i - 1].hash.clone();
                events[i].hash = events[i].expected_hash();
                diesel::update(audit_events.find(events[i].seq))
                    .set((
                        action.eq(&events[i].action),
                        prev_hash.eq(&events[i].prev_hash),
                        hash.eq(&events[i].hash),
                    ))
                    .execute(conn)?;
            }
            Ok::<_, consentry::storage::StorageError>(())
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_rewritten_chain_no_longer_matches_its_signed_checkpoints() {
    let app = spawn_app().await;
    some_history(&app).await;
    export(&app, "").await; // stores a checkpoint of the head
    let before = verify(&app, "").await;
    assert_eq!(
        (
            before["ok"].as_bool(),
            before["checkpoints_checked"].as_u64()
        ),
        (Some(true), Some(1)),
        "{before}"
    );
    rewrite_chain_from_event_3(&app).await;
    let after = verify(&app, "").await;
    assert_eq!(after["ok"], false, "{after}");
    assert_eq!(after["first_bad_seq"], 7);
    assert!(
        after["problem"]
            .as_str()
            .unwrap()
            .contains("signed checkpoint"),
        "{after}"
    );
}

#[tokio::test]
async fn checkpoints_are_signed_every_n_events() {
    // The test app signs every 5 events.
    let app = spawn_app().await;
    some_history(&app).await;
    for _ in 0..50 {
        let report = verify(&app, "").await;
        if report["checkpoints_checked"].as_u64() >= Some(1) {
            assert_eq!(report["ok"], true);
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no checkpoint was signed within 5 s");
}

#[tokio::test]
async fn retention_empties_old_payloads_and_the_chain_still_verifies() {
    let app = spawn_app().await;
    some_history(&app).await;
    let pseudonyms =
        consentry::audit::Pseudonymizer::load_or_generate(&app.data_dir, None).unwrap();
    let policies = consentry::policy::load(&crate::helpers::policies_dir()).unwrap();
    assert_eq!(policies.retention.audit_payload_days, Some(2190));
    let six_years_on = crate::helpers::start_time() + chrono::TimeDelta::days(2191);
    let report = app
        .app_db
        .run(move |conn| {
            consentry::dsar::retention::run(conn, &policies.retention, &pseudonyms, six_years_on)
        })
        .await
        .unwrap();
    // The policy load and five changes.
    assert_eq!(report.audit_payloads_emptied, 6);
    let verified = verify(&app, "").await;
    assert_eq!(verified["ok"], true, "{verified}");
    let exported = export(&app, "").await;
    let report =
        consentry::audit::export::verify_export(&exported, Some(&jwks(&app).await)).unwrap();
    assert!(report.events >= 7);
    assert!(exported.contains(r#""action":"subject.created","subject_pseudonym""#));
    assert!(
        !exported.contains(r#""payload":"{\"region\""#),
        "old payloads are emptied"
    );
    assert_eq!(app.audit_count("retention.run").await, 1);
}
