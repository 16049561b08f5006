use serde_json::{json, Value};

use consentry::auth::Role;

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
async fn invented_methods_and_paths_cannot_grow_the_metrics() {
    let app = spawn_app().await;
    let before = scrape(&app).await.len();
    for i in 0..200 {
        let method = format!("INVENTED{i}{}", "X".repeat(200));
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = app
            .client
            .request(method, app.url(&format!("/v1/subjects/made-up-{i}")))
            .send()
            .await
            .unwrap();
        // A known path with a method it does not take.
        assert_eq!(response.status(), 405);
        app.client
            .get(app.url(&format!("/no/such/path/{i}")))
            .send()
            .await
            .unwrap();
    }
    // A route without parameters is labelled by its path, the first time and after.
    for _ in 0..3 {
        let healthz = app.client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(healthz.status(), 200);
    }
    let text = scrape(&app).await;
    assert!(
        text.contains(
            r#"consentry_http_requests_total{method="GET",route="/healthz",status="200"} 3"#
        ),
        "{text}"
    );
    assert!(!text.contains("INVENTED"), "methods are a closed set");
    assert!(!text.contains("made-up") && !text.contains("/no/such"));
    assert!(
        text.contains(r#"consentry_http_requests_total{method="other",route="/v1/subjects/{id}",status="405"} 200"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#"consentry_http_requests_total{method="GET",route="unmatched",status="404"} 200"#
        ),
        "{text}"
    );
    // A handful of new series, not one per request.
    assert!(text.len() < before + 8_000, "{} → {}", before, text.len());
}

async fn scrape(app: &crate::helpers::TestApp) -> String {
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    response.text().await.unwrap()
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let app = spawn_app().await;
    app.create_subject("hdr-1", json!({"region": "DE"})).await;
    for (path, token) in [
        ("/healthz", None),
        ("/v1/purposes", Some(app.service())),
        (
            "/v1/subjects/hdr-1/export",
            Some(app.token(Role::Compliance, Some("officer"))),
        ),
        (
            "/v1/audit/events",
            Some(app.token(Role::Compliance, Some("officer"))),
        ),
        ("/v1/nothing", None),
        ("/docs/", None),
    ] {
        let mut request = app.client.get(app.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
        assert!(!header("content-security-policy").is_empty(), "{path}");
        if path.starts_with("/v1/") {
            assert_eq!(header("cache-control"), "no-store", "{path}");
        }
        if path == "/docs/" {
            assert!(header("content-security-policy").contains("script-src 'self'"));
        }
    }
    let jwks = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        jwks.headers().get("cache-control").unwrap(),
        "public, max-age=300"
    );
}

#[tokio::test]
async fn each_start_records_the_policies_it_serves_under() {
    let app = spawn_app().await;
    assert_eq!(app.audit_count("policy.loaded").await, 1);
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_folder_and_the_database_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let app = spawn_app().await;
    // A write, so that SQLite has its -wal and -shm files.
    app.create_subject("files-1", json!({"region": "DE"})).await;
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&app.data_dir), 0o700);
    for entry in std::fs::read_dir(&app.data_dir).unwrap() {
        let path = entry.unwrap().path();
        let expected = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&path), expected, "{}", path.display());
    }
    if !app.db.is_postgres() {
        let db = app.db.url.trim_start_matches("sqlite://").to_owned();
        for suffix in ["", "-wal", "-shm"] {
            let path = std::path::PathBuf::from(format!("{db}{suffix}"));
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
}
