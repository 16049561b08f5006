//! One customer under many identifiers: hashed values only, one subject per identifier,
//! and decisions, reach, events and signals that name the subject by an identifier,
//! resolved through the gate's cache and seen to move at once.

use consentry::auth::Role;
use serde_json::{json, Value};

use crate::helpers::{invalid_fields, problem, spawn_app, TestApp};

/// SHA-256 of `ana@example.com`, as 64 hex digits.
const ANA: &str = "d6d0a8a9a7e8f3ab52a0b8a7c0b8f8e6a3d0c1b2a3f4e5d6c7b8a9f0e1d2c3b4";

async fn put_identifiers(
    app: &TestApp,
    subject: &str,
    token: &str,
    body: Value,
) -> reqwest::Response {
    app.put_json(&format!("/v1/subjects/{subject}/identifiers"), token, &body)
        .send()
        .await
        .unwrap()
}

/// A service's POST.
async fn post(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    app.post(path, &app.service(), &body).await
}

async fn decide(app: &TestApp, body: Value) -> Value {
    let response = post(app, "/v1/decisions", body).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn identifiers_are_normalised_and_raw_contact_data_is_refused() {
    let app = spawn_app().await;
    app.create_subject("ana", json!({"region": "DE"})).await;
    let response = put_identifiers(
        &app,
        "ana",
        &app.service(),
        json!({"identifiers": [
            {"type": "email_sha256", "value": ANA.to_ascii_uppercase()},
            {"type": "crm_id", "value": "CRM-00012345"},
            {"type": "device_id", "value": "6D92078A-8246-4BA4-AE5B-76104861E7DC"}
        ]}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let saved: Value = response.json().await.unwrap();
    assert_eq!(
        saved["identifiers"],
        json!([
            {"type": "crm_id", "value": "CRM-00012345"},
            {"type": "device_id", "value": "6d92078a-8246-4ba4-ae5b-76104861e7dc"},
            {"type": "email_sha256", "value": ANA}
        ])
    );
    let own = app.token(Role::Subject, Some("ana"));
    let read = app.get_json("/v1/subjects/ana/identifiers", &own).await;
    assert_eq!(read["identifiers"], saved["identifiers"]);

    let response = put_identifiers(
        &app,
        "ana",
        &app.service(),
        json!({"identifiers": [
            {"type": "email_sha256", "value": "ana@example.com"},
            {"type": "passport", "value": "X1"},
            {"type": "crm_id", "value": "+55 11 91234-5678"},
            {"type": "email_sha256", "value": ANA},
            {"type": "email_sha256", "value": ANA.to_ascii_uppercase()},
            {"type": "advertising_id", "value": "00000000-0000-0000-0000-000000000000"}
        ]}),
    )
    .await;
    let body = problem(response, 422).await;
    let named: Vec<(&str, &str)> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap(), e["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        named,
        [
            ("identifiers[0].value", "raw_contact_data"),
            ("identifiers[1].type", "unknown_identifier_type"),
            ("identifiers[2].value", "raw_contact_data"),
            ("identifiers[4]", "duplicate"),
            ("identifiers[5].value", "invalid"),
        ]
    );
    // Nothing of a refused request was stored.
    let read = app.get_json("/v1/subjects/ana/identifiers", &own).await;
    assert_eq!(read["identifiers"], saved["identifiers"]);

    // Customers read their own, not others'; they do not set them.
    app.create_subject("bea", json!({"region": "DE"})).await;
    problem(
        app.get("/v1/subjects/bea/identifiers", &own)
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    problem(
        put_identifiers(&app, "ana", &own, json!({"identifiers": []})).await,
        403,
    )
    .await;
    problem(
        put_identifiers(&app, "nobody", &app.service(), json!({"identifiers": []})).await,
        404,
    )
    .await;
}

#[tokio::test]
async fn one_identifier_names_one_subject_and_only_an_admin_learns_whose() {
    let app = spawn_app().await;
    app.create_subject("ana", json!({"region": "DE"})).await;
    app.create_subject("bea", json!({"region": "DE"})).await;
    let crm = json!({"identifiers": [{"type": "crm_id", "value": "CRM-1"}]});
    assert_eq!(
        put_identifiers(&app, "ana", &app.service(), crm.clone())
            .await
            .status(),
        200
    );
    let to_service = problem(
        put_identifiers(&app, "bea", &app.service(), crm.clone()).await,
        409,
    )
    .await;
    assert_eq!(to_service["owner"], Value::Null, "{to_service}");
    assert_eq!(to_service["identifier"]["value"], "CRM-1");
    let admin = app.token(Role::Admin, Some("ops"));
    let to_admin = problem(put_identifiers(&app, "bea", &admin, crm.clone()).await, 409).await;
    assert_eq!(to_admin["owner"], "ana");
    // Putting the same set again is no conflict with oneself.
    assert_eq!(
        put_identifiers(&app, "ana", &app.service(), crm)
            .await
            .status(),
        200
    );
    assert_eq!(app.audit_count("identifiers.updated").await, 2);
}

#[tokio::test]
async fn the_gate_events_and_signals_take_an_identifier_and_see_it_move_at_once() {
    let app = spawn_app().await;
    app.create_subject("ana", json!({"region": "US-CA"})).await;
    app.create_subject("bea", json!({"region": "US-CA"})).await;
    app.put_consent("ana", "analytics", "granted").await;
    app.put_consent("bea", "analytics", "denied").await;
    let email = json!({"type": "email_sha256", "value": ANA});
    put_identifiers(&app, "ana", &app.service(), json!({"identifiers": [email]})).await;

    let by_email = json!({"identifier": email, "purpose": "analytics"});
    let d = decide(&app, by_email.clone()).await;
    assert_eq!(
        (d["subject_id"].as_str(), d["decision"].as_str()),
        (Some("ana"), Some("allow"))
    );
    // Again, from the cache.
    assert_eq!(decide(&app, by_email.clone()).await["subject_id"], "ana");

    // The identifier moves to Bea: the very next decision is hers.
    put_identifiers(&app, "ana", &app.service(), json!({"identifiers": []})).await;
    put_identifiers(&app, "bea", &app.service(), json!({"identifiers": [email]})).await;
    let d = decide(&app, by_email.clone()).await;
    assert_eq!(
        (d["subject_id"].as_str(), d["decision"].as_str()),
        (Some("bea"), Some("deny"))
    );

    // In batches, beside subject ids.
    let response = post(
        &app,
        "/v1/decisions/batch",
        json!({"items": [by_email, {"subject_id": "ana", "purpose": "analytics"}]}),
    )
    .await;
    let batch: Value = response.json().await.unwrap();
    assert_eq!(batch["results"][0]["subject_id"], "bea");
    assert_eq!(batch["results"][1]["decision"], "allow");

    // Reach, events and signals.
    let reach: Value = post(
        &app,
        "/v1/reach",
        json!({"identifier": email, "purpose": "marketing"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(reach["subject_id"], "bea");
    let event = post(
        &app,
        "/v1/events",
        json!({"identifier": email, "name": "app.opened"}),
    )
    .await;
    assert_eq!(event.status(), 201);
    assert_eq!(event.json::<Value>().await.unwrap()["subject_id"], "bea");
    let signals = post(
        &app,
        "/v1/signals",
        json!({"identifier": email, "usp": "1YYN"}),
    )
    .await;
    assert_eq!(signals.status(), 200);
    let recorded: Value = signals.json().await.unwrap();
    assert!(
        !recorded["recorded"].as_array().unwrap().is_empty(),
        "{recorded}"
    );
    assert_eq!(
        app.consents("bea").await["sale_and_sharing"]["effective"],
        "deny"
    );

    // An identifier of nobody: decided as an unknown subject, refused where a subject
    // must exist.
    let nobody = json!({"type": "crm_id", "value": "CRM-404"});
    let d = decide(&app, json!({"identifier": nobody, "purpose": "analytics"})).await;
    assert_eq!(d["subject_known"], false);
    assert_eq!(d["subject_id"], Value::Null);
    problem(
        post(
            &app,
            "/v1/events",
            json!({"identifier": nobody, "name": "app.opened"}),
        )
        .await,
        404,
    )
    .await;
    problem(
        post(
            &app,
            "/v1/signals",
            json!({"identifier": nobody, "gpc": true}),
        )
        .await,
        404,
    )
    .await;

    // Exactly one of subject_id and identifier, each checked.
    let both = post(
        &app,
        "/v1/decisions",
        json!({"subject_id": "ana", "identifier": email, "purpose": "analytics"}),
    )
    .await;
    assert_eq!(invalid_fields(both).await, ["identifier"]);
    let neither = post(&app, "/v1/decisions", json!({"purpose": "analytics"})).await;
    assert_eq!(invalid_fields(neither).await, ["subject_id"]);
    let raw = post(
        &app,
        "/v1/reach",
        json!({"identifier": {"type": "email_sha256", "value": "ana@example.com"}, "purpose": "marketing"}),
    )
    .await;
    assert_eq!(invalid_fields(raw).await, ["identifier.value"]);
    let batch = post(
        &app,
        "/v1/decisions/batch",
        json!({"items": [{"identifier": {"type": "shoe", "value": "42"}, "purpose": "analytics"}]}),
    )
    .await;
    assert_eq!(invalid_fields(batch).await, ["items[0].identifier.type"]);
}

#[tokio::test]
async fn erasure_removes_identifiers() {
    let app = spawn_app().await;
    app.create_subject("ana", json!({"region": "DE"})).await;
    app.create_subject("bea", json!({"region": "DE"})).await;
    let crm = json!({"identifiers": [{"type": "crm_id", "value": "CRM-1"}]});
    put_identifiers(&app, "ana", &app.service(), crm.clone()).await;
    let bundle = app
        .get_json(
            "/v1/subjects/ana/export",
            &app.token(Role::Compliance, Some("officer")),
        )
        .await;
    assert_eq!(
        bundle["identifiers"],
        json!([{"type": "crm_id", "value": "CRM-1"}])
    );
    let response = app
        .client
        .delete(app.url("/v1/subjects/ana"))
        .bearer_auth(app.token(Role::Compliance, Some("officer")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let d = decide(
        &app,
        json!({"identifier": {"type": "crm_id", "value": "CRM-1"}, "purpose": "analytics"}),
    )
    .await;
    assert_eq!(d["subject_known"], false);
    // The identifier is free again.
    assert_eq!(
        put_identifiers(&app, "bea", &app.service(), crm)
            .await
            .status(),
        200
    );
}
