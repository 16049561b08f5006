//! Data subject requests: deadlines per jurisdiction by the test clock, extensions,
//! status history, overdue lists, and other people's requests.

use chrono::TimeDelta;
use consentry::auth::Role;
use serde_json::{json, Value};

use crate::helpers::{invalid_fields, problem, spawn_app, TestApp};

async fn file(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url("/v1/dsar"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn change(app: &TestApp, id: &str, body: Value) -> reqwest::Response {
    let compliance = app.token(Role::Compliance, Some("officer"));
    app.client
        .patch(app.url(&format!("/v1/dsar/{id}")))
        .bearer_auth(compliance)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn deadlines_follow_the_jurisdiction_and_extend_once() {
    let app = spawn_app().await;
    app.create_subject("eu", json!({"region": "DE"})).await;
    app.create_subject("ca", json!({"region": "US-CA"})).await;
    // The test clock reads 2026-11-23T12:00:00Z.
    let eu: Value = file(
        &app,
        &app.service(),
        json!({"subject_id": "eu", "kind": "access"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        (eu["jurisdiction"].as_str(), eu["due_at"].as_str()),
        (Some("eea"), Some("2026-12-23T12:00:00Z"))
    );
    assert_eq!(eu["status"], "received");
    let ca: Value = file(
        &app,
        &app.service(),
        json!({"subject_id": "ca", "kind": "opt_out_sale"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        (ca["jurisdiction"].as_str(), ca["due_at"].as_str()),
        (Some("us_ca"), Some("2027-01-07T12:00:00Z"))
    );
    let unknown: Value = file(
        &app,
        &app.service(),
        json!({"subject_id": "stranger", "kind": "access"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(unknown["jurisdiction"], "default");

    let id = eu["id"].as_str().unwrap();
    let extended: Value = change(
        &app,
        id,
        json!({"extend": {"reason": "complex request across systems"}}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        extended["due_at"], "2027-02-23T12:00:00Z",
        "two further months"
    );
    assert_eq!(
        extended["extension_reason"],
        "complex request across systems"
    );
    problem(
        change(&app, id, json!({"extend": {"reason": "again"}})).await,
        409,
    )
    .await;
    assert_eq!(app.audit_count("dsar.received").await, 3);
    assert_eq!(app.audit_count("dsar.extended").await, 1);
}

#[tokio::test]
async fn statuses_move_forward_with_who_and_when() {
    let app = spawn_app().await;
    app.create_subject("s", json!({"region": "GB"})).await;
    let request: Value = file(
        &app,
        &app.service(),
        json!({"subject_id": "s", "kind": "rectification", "details": {"field": "name"}}),
    )
    .await
    .json()
    .await
    .unwrap();
    let id = request["id"].as_str().unwrap();
    problem(change(&app, id, json!({"status": "completed"})).await, 409).await;
    for status in ["verified", "in_progress", "completed"] {
        let response = change(
            &app,
            id,
            json!({"status": status, "note": format!("now {status}")}),
        )
        .await;
        assert_eq!(response.status(), 200, "{status}");
    }
    problem(change(&app, id, json!({"status": "rejected"})).await, 409).await;
    let compliance = app.token(Role::Compliance, Some("officer"));
    let full = app.get_json(&format!("/v1/dsar/{id}"), &compliance).await;
    let steps: Vec<(&str, &str)> = full["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["status"].as_str().unwrap(),
                s["actor_role"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("received", "service"),
            ("verified", "compliance"),
            ("in_progress", "compliance"),
            ("completed", "compliance")
        ]
    );
    assert_eq!(full["details"]["field"], "name");
}

#[tokio::test]
async fn overdue_requests_are_listed_by_the_clock() {
    let app = spawn_app().await;
    app.create_subject("late", json!({"region": "FR"})).await;
    app.create_subject("done", json!({"region": "FR"})).await;
    let late: Value = file(
        &app,
        &app.service(),
        json!({"subject_id": "late", "kind": "erasure"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let done: Value = file(
        &app,
        &app.service(),
        json!({"subject_id": "done", "kind": "access"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let done_id = done["id"].as_str().unwrap();
    for status in ["verified", "in_progress", "completed"] {
        change(&app, done_id, json!({"status": status})).await;
    }
    let compliance = app.token(Role::Compliance, Some("officer"));
    assert!(
        app.get_json("/v1/dsar?overdue=true", &compliance).await["requests"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    app.clock.advance(TimeDelta::days(31));
    let compliance = app.token(Role::Compliance, Some("officer"));
    let overdue = app.get_json("/v1/dsar?overdue=true", &compliance).await;
    let ids: Vec<&str> = overdue["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [late["id"].as_str().unwrap()]);
    assert_eq!(overdue["requests"][0]["overdue"], true);
    let completed = app.get_json("/v1/dsar?status=completed", &compliance).await;
    assert_eq!(completed["requests"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn subjects_file_and_see_only_their_own() {
    let app = spawn_app().await;
    app.create_subject("me", json!({"region": "DE"})).await;
    app.create_subject("you", json!({"region": "DE"})).await;
    let me = app.token(Role::Subject, Some("me"));
    let mine: Value = file(&app, &me, json!({"subject_id": "me", "kind": "access"}))
        .await
        .json()
        .await
        .unwrap();
    let yours: Value = file(
        &app,
        &app.service(),
        json!({"subject_id": "you", "kind": "erasure"}),
    )
    .await
    .json()
    .await
    .unwrap();
    problem(
        file(&app, &me, json!({"subject_id": "you", "kind": "access"})).await,
        404,
    )
    .await;
    let listed = app.get_json("/v1/dsar", &me).await;
    assert_eq!(listed["requests"].as_array().unwrap().len(), 1);
    assert_eq!(listed["requests"][0]["id"], mine["id"]);
    assert_eq!(
        app.get(&format!("/v1/dsar/{}", mine["id"].as_str().unwrap()), &me)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let other = problem(
        app.get(&format!("/v1/dsar/{}", yours["id"].as_str().unwrap()), &me)
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    let missing = problem(
        app.get("/v1/dsar/no-such-request", &me)
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    assert_eq!(other, missing);
    let response = app
        .client
        .patch(app.url(&format!("/v1/dsar/{}", mine["id"].as_str().unwrap())))
        .bearer_auth(&me)
        .json(&json!({"status": "verified"}))
        .send()
        .await
        .unwrap();
    problem(response, 403).await;
}

#[tokio::test]
async fn bad_requests_name_the_field() {
    let app = spawn_app().await;
    let service = app.service();
    assert_eq!(
        invalid_fields(
            file(
                &app,
                &service,
                json!({"subject_id": "x", "kind": "forget_me"})
            )
            .await
        )
        .await,
        ["kind"]
    );
    assert_eq!(
        invalid_fields(file(&app, &service, json!({"kind": "access"})).await).await,
        ["subject_id"]
    );
    assert_eq!(
        invalid_fields(
            file(
                &app,
                &service,
                json!({"subject_id": "x", "kind": "access", "details": "text"})
            )
            .await
        )
        .await,
        ["details"]
    );
    assert_eq!(
        invalid_fields(file(&app, &service, json!({"subject_id": "", "kind": "access"})).await)
            .await,
        ["subject_id"]
    );
    let request: Value = file(&app, &service, json!({"subject_id": "x", "kind": "access"}))
        .await
        .json()
        .await
        .unwrap();
    let id = request["id"].as_str().unwrap();
    assert_eq!(
        invalid_fields(change(&app, id, json!({})).await).await,
        ["body"]
    );
    assert_eq!(
        invalid_fields(change(&app, id, json!({"status": "done"})).await).await,
        ["status"]
    );
    assert_eq!(
        invalid_fields(change(&app, id, json!({"extend": {"reason": ""}})).await).await,
        ["extend.reason"]
    );
}

async fn decide(app: &TestApp, subject: &str, purpose: &str) -> (String, String) {
    let response = app
        .client
        .post(app.url("/v1/decisions"))
        .bearer_auth(app.service())
        .json(&json!({"subject_id": subject, "purpose": purpose}))
        .send()
        .await
        .unwrap();
    let d: Value = response.json().await.unwrap();
    (
        d["decision"].as_str().unwrap().to_owned(),
        d["reason"].as_str().unwrap().to_owned(),
    )
}

fn r(decision: &str, reason: &str) -> (String, String) {
    (decision.to_owned(), reason.to_owned())
}

#[tokio::test]
async fn restriction_objection_and_opt_out_take_effect_in_the_gate_at_once() {
    let app = spawn_app().await;
    app.create_subject("eu", json!({"region": "DE"})).await;
    app.put_consent("eu", "analytics", "granted").await;
    // Cached allows, before the requests.
    assert_eq!(
        decide(&app, "eu", "analytics").await,
        r("allow", "consent_granted")
    );
    assert_eq!(
        decide(&app, "eu", "functional.service.improve").await,
        r("allow", "legitimate_interest")
    );

    let objection: Value = file(
        &app,
        &app.service(),
        json!({"subject_id": "eu", "kind": "objection"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(objection["status"], "received");
    assert_eq!(
        decide(&app, "eu", "functional.service.improve").await,
        r("deny", "objected")
    );
    assert_eq!(
        decide(&app, "eu", "analytics").await,
        r("allow", "consent_granted"),
        "consent-based purposes are untouched"
    );

    let restriction: Value = file(
        &app,
        &app.service(),
        json!({"subject_id": "eu", "kind": "restriction"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        decide(&app, "eu", "analytics").await,
        r("deny", "processing_restricted")
    );
    assert_eq!(
        decide(&app, "eu", "essential").await,
        r("allow", "notice_only")
    );
    assert_eq!(app.audit_count("subject.restricted").await, 1);
    // Rejecting the restriction request lifts it.
    change(
        &app,
        restriction["id"].as_str().unwrap(),
        json!({"status": "rejected", "note": "identity not confirmed"}),
    )
    .await;
    assert_eq!(
        decide(&app, "eu", "analytics").await,
        r("allow", "consent_granted")
    );
    assert_eq!(app.audit_count("subject.restriction_lifted").await, 1);

    app.create_subject("ca", json!({"region": "US-CA"})).await;
    assert_eq!(
        decide(&app, "ca", "sale_and_sharing").await,
        r("allow", "not_opted_out")
    );
    file(
        &app,
        &app.service(),
        json!({"subject_id": "ca", "kind": "opt_out_sale"}),
    )
    .await;
    assert_eq!(
        decide(&app, "ca", "sale_and_sharing").await,
        r("deny", "consent_denied")
    );
    assert_eq!(
        decide(&app, "ca", "advertising.targeted").await,
        r("deny", "consent_denied")
    );
    assert_eq!(
        decide(&app, "ca", "analytics").await,
        r("allow", "not_opted_out")
    );
}

#[tokio::test]
async fn access_requests_are_answered_with_the_bundle_once_verified() {
    let app = spawn_app().await;
    app.create_subject("ab1", json!({"region": "DE"})).await;
    app.create_subject("ab2", json!({"region": "DE"})).await;
    let own = app.token(Role::Subject, Some("ab1"));
    let request: Value = file(
        &app,
        &own,
        json!({"subject_id": "ab1", "kind": "portability"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let id = request["id"].as_str().unwrap();
    let bundle = |token: String| {
        let url = app.url(&format!("/v1/dsar/{id}/bundle"));
        let client = app.client.clone();
        async move { client.get(url).bearer_auth(token).send().await.unwrap() }
    };
    // Not before the requester is verified.
    problem(bundle(own.clone()).await, 409).await;
    change(&app, id, json!({"status": "verified"})).await;
    let got: Value = bundle(own.clone()).await.json().await.unwrap();
    assert_eq!(got["subject"]["id"], "ab1");
    assert_eq!(got["format"], "consentry.access.v4");
    let compliance = app.token(Role::Compliance, Some("officer"));
    assert_eq!(bundle(compliance).await.status(), 200);
    // Another customer, and a service, do not get it.
    problem(bundle(app.token(Role::Subject, Some("ab2"))).await, 404).await;
    problem(bundle(app.service()).await, 403).await;
    assert_eq!(app.audit_count("subject.exported").await, 2);
    // An erasure request has no bundle.
    let erasure: Value = file(
        &app,
        &app.service(),
        json!({"subject_id": "ab2", "kind": "erasure"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let other = app
        .get(
            &format!("/v1/dsar/{}/bundle", erasure["id"].as_str().unwrap()),
            &app.token(Role::Compliance, Some("officer")),
        )
        .send()
        .await
        .unwrap();
    problem(other, 409).await;
}

#[tokio::test]
async fn rectification_is_checked_when_filed_and_applied_when_completed() {
    let app = spawn_app().await;
    app.create_subject("rc1", json!({"region": "DE"})).await;
    let patched = app
        .client
        .patch(app.url("/v1/subjects/rc1/profile"))
        .bearer_auth(app.service())
        .json(&json!({"attributes": {
            "plan": {"value": "free", "category": "user.account"},
            "nickname": {"value": "Bobby", "category": "user.demographic.profile"}
        }}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let bad = file(
        &app,
        &app.service(),
        json!({"subject_id": "rc1", "kind": "rectification",
               "details": {"attributes": {"plan": {"value": "pro", "category": "user.nope"}}}}),
    )
    .await;
    assert_eq!(
        invalid_fields(bad).await,
        ["details.attributes.plan.category"]
    );
    let shapeless = file(
        &app,
        &app.service(),
        json!({"subject_id": "rc1", "kind": "rectification", "details": {"attributes": {"plan": "pro"}}}),
    )
    .await;
    assert_eq!(invalid_fields(shapeless).await, ["details.attributes.plan"]);
    let request: Value = file(
        &app,
        &app.token(Role::Subject, Some("rc1")),
        json!({"subject_id": "rc1", "kind": "rectification",
               "details": {"attributes": {"plan": {"value": "pro", "category": "user.account"}, "nickname": null}}}),
    )
    .await
    .json()
    .await
    .unwrap();
    let id = request["id"].as_str().unwrap();
    // Nothing changes until the request is completed.
    let profile = app
        .get_json("/v1/subjects/rc1/profile", &app.service())
        .await;
    assert_eq!(profile["attributes"]["plan"]["value"], "free");
    for status in ["verified", "in_progress", "completed"] {
        assert_eq!(
            change(&app, id, json!({"status": status})).await.status(),
            200
        );
    }
    let profile = app
        .get_json("/v1/subjects/rc1/profile", &app.service())
        .await;
    assert_eq!(profile["attributes"]["plan"]["value"], "pro");
    assert_eq!(profile["attributes"]["plan"]["source"], "rectification");
    assert!(profile["attributes"].get("nickname").is_none());
    assert_eq!(app.audit_count("dsar.rectified").await, 1);
}
