use serde_json::Value;

use crate::helpers::{spawn_app, TestApp};

const CHECKED_IN: &str = include_str!("../../openapi/openapi.json");

#[tokio::test]
async fn the_checked_in_document_is_what_the_server_serves() {
    let app = spawn_app().await;
    let served = served_document(&app).await;
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
    // The acknowledgement is authenticated by the token in its body, which only the
    // recipient was sent, not by a bearer token.
    let public = [
        "/healthz",
        "/readyz",
        "/metrics",
        "/.well-known/jwks.json",
        "/v1/dsar/{id}/acknowledgements",
    ];
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
async fn every_reference_in_the_served_document_resolves() {
    let app = spawn_app().await;
    let served = served_document(&app).await;
    let mut references = Vec::new();
    collect_references(&served, "", &mut references);
    assert!(references.len() > 50, "{references:?}");
    let dangling: Vec<String> = references
        .into_iter()
        .filter(|(_, target)| {
            target
                .strip_prefix('#')
                .and_then(|pointer| served.pointer(pointer))
                .is_none()
        })
        .map(|(at, target)| format!("{at} -> {target}"))
        .collect();
    assert!(dangling.is_empty(), "dangling references: {dangling:#?}");
}

async fn served_document(app: &TestApp) -> Value {
    let response = app.client.get(app.url("/openapi.json")).send().await;
    response.unwrap().json().await.unwrap()
}

/// Every `$ref` in `value`, with the JSON pointer of the object holding it.
fn collect_references(value: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("$ref", Value::String(target)) => out.push((at.to_owned(), target.clone())),
                    _ => collect_references(inner, &format!("{at}/{key}"), out),
                }
            }
        }
        Value::Array(items) => {
            for (i, inner) in items.iter().enumerate() {
                collect_references(inner, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_operation_has_its_own_id_sound_parameters_and_documents_422_for_input() {
    let document: Value = serde_json::from_str(CHECKED_IN).unwrap();
    let limits = ["minLength", "maxLength", "pattern", "minimum", "maximum"];
    let mut ids = std::collections::HashSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap_or_default();
            assert!(
                ids.insert(id.to_owned()),
                "{method} {path}: operationId `{id}` is taken"
            );
            let parameters = operation["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut declared = std::collections::HashSet::new();
            for parameter in &parameters {
                let (name, place) = (&parameter["name"], &parameter["in"]);
                assert!(
                    declared.insert((name.to_string(), place.to_string())),
                    "{method} {path} declares {place} parameter {name} twice"
                );
                if place == "path" {
                    assert_eq!(parameter["required"], true, "{method} {path}: {name}");
                }
            }
            let queried = parameters.iter().any(|p| p["in"] == "query");
            // A path parameter with limits is checked, and a bad one is 422 too.
            let checked_path = parameters
                .iter()
                .any(|p| p["in"] == "path" && limits.iter().any(|l| p["schema"].get(l).is_some()));
            if operation.get("requestBody").is_some() || queried || checked_path {
                assert!(
                    operation["responses"]["422"]["content"]["application/problem+json"]
                        .is_object(),
                    "{method} {path} takes input but does not document 422"
                );
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
