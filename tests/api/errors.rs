//! Bad input of every shape answers problem+json, never actix's plain-text defaults.

use serde_json::json;

use consentry::auth::Role;

use crate::helpers::{invalid_fields, problem, spawn_app, spawn_app_with, TestOptions};

#[tokio::test]
async fn json_syntax_errors_are_400() {
    let app = spawn_app().await;
    for body in [
        "{",
        "{\"region\": }",
        "region=DE",
        "",
        "{\"region\":\"DE\"} {}",
    ] {
        let response = app
            .client
            .put(app.url("/v1/subjects/s1"))
            .bearer_auth(app.service())
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let problem = problem(response, 400).await;
        assert!(!problem["detail"].as_str().unwrap().is_empty(), "{body}");
    }
}

#[tokio::test]
async fn wrong_or_missing_content_type_is_415() {
    let app = spawn_app().await;
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut request = app
            .client
            .put(app.url("/v1/subjects/s1"))
            .bearer_auth(app.service())
            .body(r#"{"region":"DE"}"#);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        problem(request.send().await.unwrap(), 415).await;
    }
    // `application/json; charset=utf-8` and `+json` types are fine.
    let response = app
        .client
        .put(app.url("/v1/subjects/s1"))
        .bearer_auth(app.service())
        .header(
            "content-type",
            "application/merge-patch+json; charset=utf-8",
        )
        .body(r#"{"region":"DE"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let app = spawn_app_with(TestOptions {
        max_body_bytes: 1024,
        ..Default::default()
    })
    .await;
    let body = json!({"region": "DE", "locale": "x".repeat(2000)});
    let response = app
        .put_json("/v1/subjects/s1", &app.service(), &body)
        .send()
        .await
        .unwrap();
    let problem = problem(response, 413).await;
    assert!(problem["detail"].as_str().unwrap().contains("1024"));
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let app = spawn_app().await;
    problem(
        app.client
            .get(app.url("/v1/nothing-here"))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    let response = app
        .client
        .delete(app.url("/v1/purposes"))
        .bearer_auth(app.service())
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers().get("allow").unwrap(), "GET");
    problem(response, 405).await;
    let response = app
        .client
        .request(
            reqwest::Method::from_bytes(b"BREW").unwrap(),
            app.url("/v1/subjects/s1/consents/marketing"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers().get("allow").unwrap(), "PUT");
    problem(response, 405).await;
}

#[tokio::test]
async fn control_characters_are_422_naming_the_field_on_every_backend() {
    let app = spawn_app().await;
    let admin = app.token(Role::Admin, Some("admin-1"));
    let compliance = app.token(Role::Compliance, Some("officer"));
    app.create_subject("nul-1", json!({"region": "DE"})).await;
    let survey = json!({
        "key": "nul-survey", "name": "NPS\u{0}", "kind": "nps",
        "purpose": "functional.service.improve.feedback_surveys",
        "questions": [{"id": "score", "type": "nps", "required": true,
                       "prompt": {"en": "How likely?"}}]
    });
    let response = app
        .client
        .post(app.url("/v1/surveys"))
        .bearer_auth(&admin)
        .json(&survey)
        .send()
        .await
        .unwrap();
    assert_eq!(invalid_fields(response).await, ["name"]);
    // Escapes that decode to controls, sent as raw JSON text.
    for (body, field) in [
        (
            r#"{"subject_id":"nul-1","kind":"access","details":{"what":"a\u0000b"}}"#,
            "details.what",
        ),
        (
            r#"{"subject_id":"nul\u0000","kind":"access"}"#,
            "subject_id",
        ),
        (
            r#"{"subject_id":"nul-1","kind":"access","details":{"list":["ok","back\bspace"]}}"#,
            "details.list[1]",
        ),
    ] {
        let response = app
            .client
            .post(app.url("/v1/dsar"))
            .bearer_auth(&compliance)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(invalid_fields(response).await, [field], "{body}");
    }
    // Line breaks in a note are text, not controls.
    let response = app
        .client
        .post(app.url("/v1/dsar"))
        .bearer_auth(&compliance)
        .json(&json!({"subject_id": "nul-1", "kind": "access", "details": {"what": "line one\nline two"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    for (path, token, field) in [
        ("/v1/events?subject_id=a%00b", app.service(), "subject_id"),
        (
            "/v1/dsar?subject_id=a%00b",
            compliance.clone(),
            "subject_id",
        ),
        ("/v1/audit/events?actor=a%00b", compliance.clone(), "actor"),
        ("/v1/surveys/a%00b", admin.clone(), "path"),
        ("/v1/surveys/a%1Fb/report", admin.clone(), "path"),
    ] {
        let response = app.get(path, &token).send().await.unwrap();
        assert_eq!(invalid_fields(response).await, [field], "{path}");
    }
}

#[tokio::test]
async fn authentication_is_checked_before_the_body() {
    let app = spawn_app().await;
    let response = app
        .client
        .put(app.url("/v1/subjects/s1"))
        .header("content-type", "text/plain")
        .body("garbage")
        .send()
        .await
        .unwrap();
    problem(response, 401).await;
}
