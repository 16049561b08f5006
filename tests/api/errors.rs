//! Bad input of every shape answers problem+json, never actix's plain-text defaults.

use serde_json::json;

use crate::helpers::{problem, spawn_app, spawn_app_with, TestOptions};

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
    problem(response, 404).await;
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
