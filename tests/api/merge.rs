//! Merging two subjects found to be one person: everything moves, both ledgers' evidence
//! stays, each purpose keeps the stricter current choice, and the old id leads on.

use chrono::TimeDelta;
use consentry::auth::Role;
use serde_json::{json, Value};

use crate::helpers::{effect, invalid_fields, pair, problem, spawn_app, TestApp};

async fn merge(app: &TestApp, into: &str, token: &str, body: Value) -> reqwest::Response {
    app.post(&format!("/v1/subjects/{into}/merge"), token, &body)
        .await
}

/// A service's PUT, which must succeed.
async fn put_ok(app: &TestApp, path: &str, body: Value) {
    let response = app
        .put_json(path, &app.service(), &body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "PUT {path}");
}

/// A service's POST, which must create.
async fn created(app: &TestApp, path: &str, body: Value) {
    assert_eq!(post(app, path, body).await.status(), 201, "POST {path}");
}

/// A service's POST.
async fn post(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    app.post(path, &app.service(), &body).await
}

#[tokio::test]
async fn a_merge_moves_everything_and_keeps_the_stricter_choice() {
    let app = spawn_app().await;
    app.create_subject("ana", json!({"region": "DE", "locale": "de"}))
        .await;
    app.create_subject("ana-app", json!({"region": "DE", "birth_year": 1990}))
        .await;
    app.put_consent("ana", "marketing", "granted").await;
    app.put_consent("ana", "analytics", "denied").await;
    put_ok(
        &app,
        "/v1/subjects/ana/preferences",
        json!({"channels": {"email": {"opted_in": true, "max_per_week": 5}}}),
    )
    .await;

    // An hour later, in the app: marketing withdrawn, analytics granted.
    app.clock.advance(TimeDelta::hours(1));
    app.put_consent("ana-app", "marketing", "denied").await;
    app.put_consent("ana-app", "analytics", "granted").await;
    app.put_consent("ana-app", "personalize", "granted").await;
    let app_prefs = json!({"channels": {
        "email": {"opted_in": true, "max_per_week": 2},
        "sms": {"opted_in": false}
    }});
    put_ok(&app, "/v1/subjects/ana-app/preferences", app_prefs).await;
    let device = json!({"type": "device_id", "value": "6d92078a-8246-4ba4-ae5b-76104861e7dc"});
    put_ok(
        &app,
        "/v1/subjects/ana-app/identifiers",
        json!({ "identifiers": [device] }),
    )
    .await;
    created(
        &app,
        "/v1/subjects/ana-app/contacts",
        json!({"channel": "email", "purpose": "marketing"}),
    )
    .await;
    created(
        &app,
        "/v1/events",
        json!({"subject_id": "ana-app", "name": "app.opened"}),
    )
    .await;
    // Cached before the merge.
    let before: Value = post(
        &app,
        "/v1/decisions",
        json!({"subject_id": "ana-app", "purpose": "marketing"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(before["subject_id"], "ana-app");

    let admin = app.token(Role::Admin, Some("ops"));
    let response = merge(&app, "ana", &admin, json!({"from": "ana-app"})).await;
    assert_eq!(response.status(), 200);
    let summary: Value = response.json().await.unwrap();
    assert_eq!(summary["subject_id"], "ana");
    assert_eq!(summary["merged_from"], "ana-app");
    assert_eq!(
        summary["consents"],
        json!({"analytics": "from", "marketing": "from"}),
        "a later withdrawal and a later grant both win"
    );
    assert_eq!(summary["consent_records_moved"], 3);

    let consents = app.consents("ana").await;
    assert_eq!(
        effect(&consents, "marketing"),
        pair("deny", "consent_denied")
    );
    assert_eq!(
        effect(&consents, "analytics"),
        pair("allow", "consent_granted")
    );
    assert_eq!(
        effect(&consents, "personalize"),
        pair("allow", "consent_granted")
    );
    // Both ledgers, each record with its evidence.
    assert_eq!(app.ledger("ana").await.len(), 5);

    let prefs = app
        .get_json("/v1/subjects/ana/preferences", &app.service())
        .await;
    assert_eq!(
        prefs["channels"]["email"],
        json!({"opted_in": true, "max_per_week": 2})
    );
    assert_eq!(prefs["channels"]["sms"]["opted_in"], false);
    let subject = app.get_json("/v1/subjects/ana", &app.service()).await;
    assert_eq!(
        (subject["locale"].as_str(), subject["birth_year"].as_i64()),
        (Some("de"), Some(1990))
    );

    // The old id and its identifier now lead to Ana, at once.
    let d: Value = post(
        &app,
        "/v1/decisions",
        json!({"subject_id": "ana-app", "purpose": "marketing"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        (d["subject_id"].as_str(), d["decision"].as_str()),
        (Some("ana"), Some("deny"))
    );
    let d: Value = post(
        &app,
        "/v1/decisions",
        json!({"identifier": {"type": "device_id", "value": "6d92078a-8246-4ba4-ae5b-76104861e7dc"}, "purpose": "analytics"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        (d["subject_id"].as_str(), d["decision"].as_str()),
        (Some("ana"), Some("allow"))
    );
    let event = post(
        &app,
        "/v1/events",
        json!({"subject_id": "ana-app", "name": "app.opened"}),
    )
    .await;
    assert_eq!(event.json::<Value>().await.unwrap()["subject_id"], "ana");
    problem(
        app.get("/v1/subjects/ana-app", &app.service())
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;

    let bundle = app
        .get_json(
            "/v1/subjects/ana/export",
            &app.token(Role::Compliance, Some("officer")),
        )
        .await;
    assert_eq!(bundle["messages_sent"].as_array().unwrap().len(), 1);
    assert_eq!(bundle["identifiers"].as_array().unwrap().len(), 1);
    // Two app openings, and the journey's first stage, derived from the first.
    assert_eq!(bundle["events"].as_array().unwrap().len(), 3);
    assert_eq!(app.audit_count("subject.merged").await, 1);
    assert_eq!(app.audit_count("subject.merged_away").await, 1);
    let verified = app
        .get_json(
            "/v1/audit/verify",
            &app.token(Role::Compliance, Some("officer")),
        )
        .await;
    assert_eq!(verified["ok"], true);
}

#[tokio::test]
async fn only_an_admin_merges_two_existing_subjects() {
    let app = spawn_app().await;
    app.create_subject("ana", json!({"region": "DE"})).await;
    app.create_subject("bea", json!({"region": "DE"})).await;
    let admin = app.token(Role::Admin, Some("ops"));
    problem(
        merge(&app, "ana", &app.service(), json!({"from": "bea"})).await,
        403,
    )
    .await;
    assert_eq!(
        invalid_fields(merge(&app, "ana", &admin, json!({"from": "ana"})).await).await,
        ["from"]
    );
    assert_eq!(
        invalid_fields(merge(&app, "ana", &admin, json!({"from": "nobody"})).await).await,
        ["from"]
    );
    assert_eq!(
        invalid_fields(merge(&app, "ana", &admin, json!({"from": "bad id"})).await).await,
        ["from"]
    );
    assert_eq!(
        invalid_fields(merge(&app, "ana", &admin, json!({})).await).await,
        ["from"]
    );
    problem(
        merge(&app, "nobody", &admin, json!({"from": "bea"})).await,
        404,
    )
    .await;
    // Nothing moved.
    assert_eq!(
        app.get_json("/v1/subjects/bea", &app.service()).await["id"],
        "bea"
    );

    // Erasing the subject an id was merged into erases what the old id leads to.
    assert_eq!(
        merge(&app, "ana", &admin, json!({"from": "bea"}))
            .await
            .status(),
        200
    );
    let response = app
        .client
        .delete(app.url("/v1/subjects/ana"))
        .bearer_auth(app.token(Role::Compliance, Some("officer")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let d: Value = post(
        &app,
        "/v1/decisions",
        json!({"subject_id": "bea", "purpose": "analytics"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(d["reason"], "subject_erased", "{d}");
}

#[tokio::test]
async fn an_id_merged_away_and_created_again_can_be_merged_again() {
    let app = spawn_app().await;
    for id in ["ana", "bea", "old"] {
        app.create_subject(id, json!({"region": "DE"})).await;
    }
    let admin = app.token(Role::Admin, Some("ops"));
    assert_eq!(
        merge(&app, "ana", &admin, json!({"from": "old"}))
            .await
            .status(),
        200
    );
    // The old id is a subject of its own again, then found to be another person.
    app.create_subject("old", json!({"region": "DE"})).await;
    assert_eq!(
        merge(&app, "bea", &admin, json!({"from": "old"}))
            .await
            .status(),
        200
    );
    // It leads to its newest target.
    let decision: Value = post(
        &app,
        "/v1/decisions",
        json!({"subject_id": "old", "purpose": "analytics"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(decision["subject_id"], "bea", "{decision}");
}
