use serde_json::Value;

use crate::helpers::spawn_app;

const CHECKED_IN: &str = include_str!("../../openapi/openapi.json");

#[tokio::test]
async fn the_checked_in_document_is_what_the_server_serves() {
    let app = spawn_app().await;
    let served: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let checked_in: Value = serde_json::from_str(CHECKED_IN).unwrap();
    assert!(
        served == checked_in,
        "openapi/openapi.json is out of date: run `cargo run -- openapi > openapi/openapi.json`"
    );
    assert_eq!(served["openapi"], "3.1.0");
}

#[test]
fn every_operation_documents_its_failures() {
    let document: Value = serde_json::from_str(CHECKED_IN).unwrap();
    let public = ["/healthz", "/readyz", "/metrics", "/.well-known/jwks.json"];
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            if public.contains(&path.as_str()) {
                continue;
            }
            assert!(
                operation["security"].is_array(),
                "{method} {path} has no security"
            );
            for status in ["401", "403"] {
                let response = &responses[status];
                assert!(
                    response["content"]["application/problem+json"].is_object(),
                    "{method} {path} lacks {status}"
                );
            }
            // Every operation that takes a body documents what a bad body gets.
            if operation.get("requestBody").is_some() {
                for status in body_statuses(path) {
                    assert!(
                        responses.contains_key(status),
                        "{method} {path} lacks {status}"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn the_api_browser_works_offline() {
    let app = spawn_app().await;
    let redirect = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(redirect.status(), 308);
    let page = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"));
    for line in html
        .lines()
        .filter(|l| l.contains("src=") || l.contains("href="))
    {
        assert!(
            !line.contains("http://") && !line.contains("https://"),
            "external asset: {line}"
        );
    }
    let bundle = app
        .client
        .get(app.url("/docs/swagger-ui-bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(bundle.status(), 200);
    let init = app
        .client
        .get(app.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(init.contains("/openapi.json"), "{init}");
}

/// What a JSON-body endpoint must document; the proxy passes any body through, so a
/// content type is never refused there.
fn body_statuses(path: &str) -> Vec<&'static str> {
    if path.starts_with("/gate/") {
        vec!["400", "413", "422"]
    } else {
        vec!["400", "413", "415", "422"]
    }
}
