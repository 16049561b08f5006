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

/// Sends `request` on a connection of its own (from another thread, so that a server
/// that answers before reading everything is not blocked) and reads until the server
/// closes: every response on the connection, as text.
async fn raw_exchange(address: &str, request: Vec<u8>) -> String {
    use std::io::{Read, Write};
    let addr = address.trim_start_matches("http://").to_owned();
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        let mut writer = stream.try_clone().unwrap();
        let sender = std::thread::spawn(move || {
            // The server may stop reading once it has answered.
            let _ = writer.write_all(&request);
        });
        let mut received = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            match stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
                Err(e) if !received.is_empty() => {
                    eprintln!("after {} bytes: {e}", received.len());
                    break;
                }
                Err(e) => panic!("no answer: {e}"),
            }
        }
        drop(stream);
        let _ = sender.join();
        String::from_utf8_lossy(&received).into_owned()
    })
    .await
    .unwrap()
}

/// The status, headers and body of the last response in `raw`; checks it is a
/// problem document of that status.
fn raw_problem(raw: &str, status: u16) -> serde_json::Value {
    let last = raw.rfind("HTTP/1.1 ").expect("a response");
    let (head, body) = raw[last..].split_once("\r\n\r\n").expect("a whole head");
    assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/problem+json"),
        "{head}"
    );
    let problem: serde_json::Value = serde_json::from_str(body).expect(body);
    assert_eq!(problem["status"], status, "{problem}");
    problem
}

#[tokio::test]
async fn an_oversized_request_line_is_a_414_problem() {
    let app = spawn_app().await;
    let path = format!("/v1/subjects/{}", "a".repeat(100_000));
    let raw = raw_exchange(
        &app.address,
        format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").into_bytes(),
    )
    .await;
    let problem = raw_problem(&raw, 414);
    assert_eq!(problem["type"], "urn:consentry:problem:uri-too-long");
}

#[tokio::test]
async fn an_oversized_header_set_is_a_431_problem() {
    let app = spawn_app().await;
    let mut request = b"GET /healthz HTTP/1.1\r\nhost: x\r\n".to_vec();
    for i in 0..16 {
        request.extend_from_slice(format!("x-filler-{i}: {}\r\n", "f".repeat(65_536)).as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    assert!(request.len() > 1_000_000);
    let raw = raw_exchange(&app.address, request).await;
    let problem = raw_problem(&raw, 431);
    assert_eq!(
        problem["type"],
        "urn:consentry:problem:request-header-fields-too-large"
    );
    // Too many fields, however short, is the same answer.
    let fields: String = (0..200).map(|i| format!("x-{i}: 1\r\n")).collect();
    let raw = raw_exchange(
        &app.address,
        format!("GET /healthz HTTP/1.1\r\nhost: x\r\n{fields}\r\n").into_bytes(),
    )
    .await;
    raw_problem(&raw, 431);
}

#[tokio::test]
async fn a_malformed_request_line_is_a_400_problem() {
    let app = spawn_app().await;
    let raw = raw_exchange(
        &app.address,
        b"GET /a\x01b HTTP/1.1\r\nhost: x\r\n\r\n".to_vec(),
    )
    .await;
    raw_problem(&raw, 400);
}

#[tokio::test]
async fn heads_after_bodies_on_one_connection_are_checked_too() {
    let app = spawn_app().await;
    let body = r#"{"region": "DE"}"#;
    let mut request = format!(
        "PUT /v1/subjects/s1 HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        app.service(),
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n");
    request.extend_from_slice(
        format!("GET /{} HTTP/1.1\r\nhost: x\r\n\r\n", "a".repeat(20_000)).as_bytes(),
    );
    let raw = raw_exchange(&app.address, request).await;
    let statuses: Vec<&str> = raw
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &raw[i + 9..i + 12])
        .collect();
    assert_eq!(statuses, ["201", "200", "414"], "{raw}");
    raw_problem(&raw, 414);
}

/// Sends `body` as JSON with a service token.
async fn send_raw(
    app: &crate::helpers::TestApp,
    method: &str,
    path: &str,
    body: String,
) -> reqwest::Response {
    app.client
        .request(method.parse().unwrap(), app.url(path))
        .bearer_auth(app.service())
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn ten_thousand_levels_of_nesting_are_422_naming_the_field() {
    let app = spawn_app_with(TestOptions {
        max_body_bytes: 256 * 1024,
        ..Default::default()
    })
    .await;
    app.create_subject("deep", json!({"region": "DE"})).await;
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    // Into a field that takes any JSON value: once a 400 "recursion limit exceeded".
    let body =
        format!(r#"{{"attributes":{{"x":{{"value":{nested},"category":"user.account"}}}}}}"#);
    let response = send_raw(&app, "PATCH", "/v1/subjects/deep/profile", body).await;
    let problem = problem(response, 422).await;
    let error = &problem["errors"][0];
    assert_eq!(error["code"], "depth", "{problem}");
    assert!(
        error["field"]
            .as_str()
            .unwrap()
            .starts_with("attributes.x.value[0][0]"),
        "{problem}"
    );
    let body = format!(r#"{{"items":{nested}}}"#);
    let response = send_raw(&app, "POST", "/v1/decisions/batch", body).await;
    problem_named(response, 422, "items[0]").await;
    // The service is still there.
    let response = app
        .get("/v1/subjects/deep", &app.service())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

async fn problem_named(response: reqwest::Response, status: u16, field: &str) -> serde_json::Value {
    let problem = problem(response, status).await;
    assert!(
        problem["errors"][0]["field"]
            .as_str()
            .is_some_and(|f| f.starts_with(field)),
        "{problem}"
    );
    problem
}

#[tokio::test]
async fn a_hundred_thousand_items_are_refused_before_they_are_built() {
    // At the default limit such a batch is too large to read.
    let app = spawn_app_with(TestOptions {
        max_body_bytes: 256 * 1024,
        ..Default::default()
    })
    .await;
    app.create_subject("many", json!({"region": "DE"})).await;
    let decisions =
        json!({"items": vec![json!({"subject_id": "many", "purpose": "analytics"}); 100_000]})
            .to_string();
    let consents = json!({"items": vec![json!({"purpose": "analytics", "status": "granted", "source": "api"}); 100_000]}).to_string();
    for (path, body) in [
        ("/v1/decisions/batch", decisions.clone()),
        ("/v1/subjects/many/consents", consents.clone()),
    ] {
        let response = send_raw(&app, "POST", path, body).await;
        problem(response, 413).await;
    }
    // Under a limit raised to let them in, the array is refused as it is read.
    let app = spawn_app_with(TestOptions {
        max_body_bytes: 16 * 1024 * 1024,
        ..Default::default()
    })
    .await;
    app.create_subject("many", json!({"region": "DE"})).await;
    let tiny = format!(r#"{{"items":[{}]}}"#, vec!["{}"; 100_000].join(","));
    for (path, body) in [
        ("/v1/decisions/batch", decisions),
        ("/v1/subjects/many/consents", consents),
        ("/v1/decisions/batch", tiny),
    ] {
        let response = send_raw(&app, "POST", path, body).await;
        let problem = problem_named(response, 422, "items").await;
        assert_eq!(problem["errors"][0]["code"], "length", "{problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains("10000"),
            "{problem}"
        );
    }
}

#[tokio::test]
async fn integral_floats_are_accepted_for_integer_fields() {
    // JSON has one number type: `2009.0` is the integer 2009 the document asks for.
    let app = spawn_app().await;
    let created = app
        .create_subject("cust-1", json!({"region": "DE", "birth_year": 2009.0}))
        .await;
    assert_eq!(created["birth_year"], 2009);
    let response = app
        .put_json(
            "/v1/subjects/cust-1",
            &app.service(),
            &json!({"region": "DE", "birth_year": 2009.5}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(invalid_fields(response).await, ["birth_year"]);
}

#[tokio::test]
async fn a_subject_id_with_an_encoded_plus_is_that_id() {
    // The router leaves `%2B` encoded; the id is `a+b` all the same.
    let app = spawn_app().await;
    app.create_subject("a+b@example.com", json!({"region": "DE"}))
        .await;
    let response = app
        .get("/v1/subjects/a%2Bb%40example.com", &app.service())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let subject: serde_json::Value = response.json().await.unwrap();
    assert_eq!(subject["id"], "a+b@example.com");
}

#[tokio::test]
async fn an_optional_body_sent_as_null_is_no_body() {
    let app = spawn_app().await;
    app.create_subject("cust-1", json!({"region": "DE"})).await;
    let compliance = app.token(Role::Compliance, Some("dpo"));
    for (path, token) in [
        ("/v1/console-sessions", compliance),
        ("/v1/subjects/cust-1/portal-sessions", app.service()),
    ] {
        let response = app
            .client
            .post(app.url(path))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body("null")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{path}");
    }
}
