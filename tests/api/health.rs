use serde_json::{json, Value};

use crate::helpers::spawn_app;

#[tokio::test]
async fn healthz_and_readyz() {
    let app = spawn_app().await;
    let health: Value = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(
        ready["database"],
        if app.db.is_postgres() {
            "postgres"
        } else {
            "sqlite"
        }
    );
    assert!(ready["purposes"].as_u64().unwrap() >= 10);
}

#[tokio::test]
async fn metrics_count_requests_by_route_never_by_subject() {
    let app = spawn_app().await;
    app.create_subject("very-private-customer-id", json!({"region": "DE"}))
        .await;
    app.get("/v1/subjects/very-private-customer-id", &app.service())
        .send()
        .await
        .unwrap();
    app.client
        .get(app.url("/v1/subjects/another-private-id"))
        .send()
        .await
        .unwrap();
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert!(response
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = response.text().await.unwrap();
    assert!(text.contains(r#"consentry_http_requests_total{method="PUT",route="/v1/subjects/{id}",status="201"} 1"#), "{text}");
    assert!(text.contains(r#"consentry_http_requests_total{method="GET",route="/v1/subjects/{id}",status="200"} 1"#), "{text}");
    assert!(text.contains(r#"consentry_http_requests_total{method="GET",route="/v1/subjects/{id}",status="401"} 1"#), "{text}");
    assert!(
        text.contains("consentry_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        text.contains("consentry_db_pool_max_connections 4"),
        "{text}"
    );
    assert!(
        text.contains("consentry_db_pool_open_connections"),
        "{text}"
    );
    assert!(
        !text.contains("private"),
        "subject ids must never reach metrics"
    );
}

#[tokio::test]
async fn each_start_records_the_policies_it_serves_under() {
    let app = spawn_app().await;
    assert_eq!(app.audit_count("policy.loaded").await, 1);
}
