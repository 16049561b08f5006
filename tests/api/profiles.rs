use consentry::auth::Role;
use serde_json::{json, Value};

use crate::helpers::{invalid_fields, problem, spawn_app, TestApp};

async fn patch(app: &TestApp, subject: &str, body: Value) -> reqwest::Response {
    app.client
        .patch(app.url(&format!("/v1/subjects/{subject}/profile")))
        .bearer_auth(app.service())
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn attributes_are_set_removed_and_read() {
    let app = spawn_app().await;
    app.create_subject("pr1", json!({"region": "DE"})).await;
    let response = patch(&app, "pr1", json!({"attributes": {
        "plan": {"value": "pro", "category": "user.account"},
        "last_order": {"value": {"sku": "A-1", "total": 42.5}, "category": "user.behavior.purchase_history"},
        "email": {"value": "c@example.com", "category": "user.contact.email"}
    }}))
    .await;
    assert_eq!(response.status(), 200);
    let profile: Value = response.json().await.unwrap();
    assert_eq!(profile["attributes"]["plan"]["value"], "pro");
    assert_eq!(profile["attributes"]["last_order"]["value"]["sku"], "A-1");
    assert_eq!(profile["attributes"]["plan"]["source"], "api");

    let profile: Value = patch(&app, "pr1", json!({"attributes": {"plan": null, "email": {"value": "d@example.com", "category": "user.contact.email"}}, "source": "import"}))
        .await
        .json()
        .await
        .unwrap();
    assert!(profile["attributes"].get("plan").is_none());
    assert_eq!(profile["attributes"]["email"]["source"], "import");
    let read = app
        .get_json("/v1/subjects/pr1/profile", &app.service())
        .await;
    assert_eq!(read["attributes"], profile["attributes"]);
    assert_eq!(app.audit_count("profile.updated").await, 2);
}

#[tokio::test]
async fn a_purpose_reads_only_what_it_declares_and_only_when_allowed() {
    let app = spawn_app().await;
    app.create_subject("pr2", json!({"region": "DE"})).await;
    patch(
        &app,
        "pr2",
        json!({"attributes": {
            "last_order": {"value": "A-1", "category": "user.behavior.purchase_history"},
            "email": {"value": "c@example.com", "category": "user.contact.email"},
            "nps.score": {"value": 9, "category": "user.behavior.feedback"}
        }}),
    )
    .await;
    let path = "/v1/subjects/pr2/profile?purpose=personalize.product_recommendations";
    let denied = problem(app.get(path, &app.service()).send().await.unwrap(), 403).await;
    assert_eq!(denied["reason"], "no_consent");
    assert_eq!(denied["purpose"], "personalize.product_recommendations");

    app.put_consent("pr2", "personalize", "granted").await;
    let allowed = app.get_json(path, &app.service()).await;
    assert_eq!(allowed["purpose"], "personalize.product_recommendations");
    let keys: Vec<&String> = allowed["attributes"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["last_order"]);

    app.put_consent("pr2", "personalize.product_recommendations", "denied")
        .await;
    let withdrawn = problem(app.get(path, &app.service()).send().await.unwrap(), 403).await;
    assert_eq!(withdrawn["reason"], "consent_denied");

    problem(
        app.get("/v1/subjects/pr2/profile?purpose=nope", &app.service())
            .send()
            .await
            .unwrap(),
        422,
    )
    .await;
    problem(
        app.get(
            "/v1/subjects/nobody/profile?purpose=analytics",
            &app.service(),
        )
        .send()
        .await
        .unwrap(),
        404,
    )
    .await;
}

#[tokio::test]
async fn gpc_on_a_purpose_read_opts_out() {
    let app = spawn_app().await;
    app.create_subject("pr3", json!({"region": "US-CA"})).await;
    let path = "/v1/subjects/pr3/profile?purpose=advertising.targeted";
    assert_eq!(
        app.get(path, &app.service()).send().await.unwrap().status(),
        200
    );
    let response = app
        .get(path, &app.service())
        .header("Sec-GPC", "1")
        .send()
        .await
        .unwrap();
    let body = problem(response, 403).await;
    assert_eq!(body["reason"], "gpc_opt_out");
    assert_eq!(
        problem(app.get(path, &app.service()).send().await.unwrap(), 403).await["reason"],
        "gpc_opt_out"
    );
}

#[tokio::test]
async fn bad_attributes_are_named_and_roles_checked() {
    let app = spawn_app().await;
    app.create_subject("pr4", json!({"region": "DE"})).await;
    let cases = [
        (
            json!({"attributes": {"plan": {"value": "pro", "category": "user.nope"}}}),
            vec!["attributes.plan.category"],
        ),
        (
            json!({"attributes": {"Bad Key": {"value": 1, "category": "user.account"}}}),
            vec!["attributes.Bad Key"],
        ),
        (
            json!({"attributes": {"plan": {"value": null, "category": "user.account"}}}),
            vec!["attributes.plan.value"],
        ),
        (
            json!({"attributes": {"plan": {"value": "x".repeat(5000), "category": "user.account"}}}),
            vec!["attributes.plan.value"],
        ),
        (
            json!({"attributes": {"plan": {"value": 1}}}),
            vec!["attributes.plan.category"],
        ),
        (json!({"attributes": {}}), vec!["attributes"]),
        (
            json!({"attributes": {"plan": {"value": 1, "category": "user.account"}}, "source": "gpc"}),
            vec!["source"],
        ),
    ];
    for (body, fields) in cases {
        assert_eq!(
            invalid_fields(patch(&app, "pr4", body.clone()).await).await,
            fields,
            "{body}"
        );
    }
    problem(
        patch(
            &app,
            "nobody",
            json!({"attributes": {"plan": {"value": 1, "category": "user.account"}}}),
        )
        .await,
        404,
    )
    .await;
    let subject = app.token(Role::Subject, Some("pr4"));
    problem(
        app.get("/v1/subjects/pr4/profile", &subject)
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
}
