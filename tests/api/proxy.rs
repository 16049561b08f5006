//! The reverse-proxy gate against a real upstream that the test starts.

use std::io::{Read, Write};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use consentry::auth::Role;
use serde_json::{json, Map, Value};

use crate::helpers::{problem, spawn_app_with, TestApp, TestOptions};

/// An upstream that echoes what it received, answers slowly, or streams.
async fn start_upstream() -> u16 {
    async fn echo(req: HttpRequest, body: web::Bytes) -> HttpResponse {
        let headers: Map<String, Value> = req
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    Value::from(v.to_str().unwrap_or_default()),
                )
            })
            .collect();
        // Every copy of the subject header, since a map keeps only one.
        let subject_ids: Vec<&str> = req
            .headers()
            .get_all("x-subject-id")
            .map(|v| v.to_str().unwrap_or_default())
            .collect();
        HttpResponse::Ok()
            .insert_header(("X-Upstream", "echo"))
            .json(json!({
                "subject_ids": subject_ids,
                "method": req.method().as_str(),
                "path": req.path(),
                "query": req.query_string(),
                "headers": headers,
                "body": String::from_utf8_lossy(&body),
            }))
    }
    async fn slow() -> HttpResponse {
        tokio::time::sleep(Duration::from_secs(3)).await;
        HttpResponse::Ok().finish()
    }
    async fn stream() -> HttpResponse {
        let chunks =
            (0..3).map(|i| Ok::<_, actix_web::Error>(web::Bytes::from(format!("chunk-{i};"))));
        HttpResponse::Ok()
            .content_type("text/plain")
            .streaming(futures_util::stream::iter(chunks))
    }
    let server = HttpServer::new(|| {
        App::new()
            .route("/base/slow", web::get().to(slow))
            .route("/base/stream", web::get().to(stream))
            .default_service(web::to(echo))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    port
}

async fn spawn_gate() -> TestApp {
    let port = start_upstream().await;
    // A port with nothing listening: bind, note, release.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gate = format!(
        r#"
[[upstream]]
name = "recs"
base_url = "http://127.0.0.1:{port}/base"
purpose = "personalize.product_recommendations"
data_categories = ["user.behavior.purchase_history"]
timeout_ms = 500
fallback = {{ status = 200, body = {{ items = [], personalized = false }} }}

[[upstream]]
name = "mail"
base_url = "http://127.0.0.1:{port}/base"
purpose = "marketing.email"
channel = "email"

[[upstream]]
name = "down"
base_url = "http://127.0.0.1:{closed}"
purpose = "essential"
"#
    );
    let app = spawn_app_with(TestOptions {
        gate_toml: Some(gate),
        ..Default::default()
    })
    .await;
    app.create_subject("allowed", json!({"region": "DE"})).await;
    app.put_consent("allowed", "personalize", "granted").await;
    app.put_consent("allowed", "marketing", "granted").await;
    app.create_subject("refused", json!({"region": "DE"})).await;
    app
}

fn through(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    subject: &str,
) -> reqwest::RequestBuilder {
    app.client
        .request(method, app.url(path))
        .bearer_auth(app.service())
        .header("X-Subject-Id", subject)
}

#[tokio::test]
async fn an_allowed_call_is_forwarded_with_the_signed_decision() {
    let app = spawn_gate().await;
    let response = through(
        &app,
        reqwest::Method::POST,
        "/gate/recs/items/42?limit=5&lang=ar",
        "allowed",
    )
    .header("X-Request-Id", "req-1")
    .header("Content-Type", "application/json")
    .body(r#"{"context":"home"}"#)
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers().get("x-upstream").unwrap(), "echo");
    assert_eq!(
        response.headers().get("x-consent-reason").unwrap(),
        "consent_granted"
    );
    let echo: Value = response.json().await.unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/base/items/42");
    assert_eq!(echo["query"], "limit=5&lang=ar");
    assert_eq!(echo["body"], r#"{"context":"home"}"#);
    let headers = &echo["headers"];
    assert_eq!(headers["x-request-id"], "req-1");
    assert_eq!(headers["x-subject-id"], "allowed");
    assert!(
        headers.get("authorization").is_none(),
        "credentials stay with the gate"
    );

    // The upstream can check the decision offline, with the JWKS alone.
    let token = headers["x-consent-decision"].as_str().unwrap();
    let jwks: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = jsonwebtoken::DecodingKey::from_ed_components(jwks["keys"][0]["x"].as_str().unwrap())
        .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.validate_exp = false;
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(
        (claims["sub"].as_str(), claims["decision"].as_str()),
        (Some("allowed"), Some("allow"))
    );
    assert_eq!(claims["purpose"], "personalize.product_recommendations");
}

#[tokio::test]
async fn a_denied_call_gets_the_fallback() {
    let app = spawn_gate().await;
    let response = through(&app, reqwest::Method::GET, "/gate/recs/items", "refused")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers().get("x-consent-reason").unwrap(),
        "no_consent"
    );
    assert!(
        response.headers().get("x-upstream").is_none(),
        "the upstream was not called"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"items": [], "personalized": false}));

    let body = problem(
        through(&app, reqwest::Method::GET, "/gate/mail/send", "refused")
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
    assert_eq!(
        (body["reason"].as_str(), body["upstream"].as_str()),
        (Some("no_consent"), Some("mail"))
    );

    // The channel counts: an email opt-out closes the mail upstream.
    app.put_json(
        "/v1/subjects/allowed/preferences",
        &app.service(),
        &json!({"channels": {"email": {"opted_in": false}}}),
    )
    .send()
    .await
    .unwrap();
    let body = problem(
        through(&app, reqwest::Method::GET, "/gate/mail/send", "allowed")
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
    assert_eq!(body["reason"], "channel_opted_out");
    // And a withdrawal closes recommendations at once.
    app.put_consent("allowed", "personalize.product_recommendations", "denied")
        .await;
    let response = through(&app, reqwest::Method::GET, "/gate/recs/items", "allowed")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers().get("x-consent-reason").unwrap(),
        "consent_denied"
    );
}

#[tokio::test]
async fn responses_stream_back() {
    let app = spawn_gate().await;
    let response = through(&app, reqwest::Method::GET, "/gate/recs/stream", "allowed")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "chunk-0;chunk-1;chunk-2;");
}

#[tokio::test]
async fn an_upstream_down_or_slow_is_502_or_504() {
    let app = spawn_gate().await;
    problem(
        through(&app, reqwest::Method::GET, "/gate/down/x", "allowed")
            .send()
            .await
            .unwrap(),
        502,
    )
    .await;
    let body = problem(
        through(&app, reqwest::Method::GET, "/gate/recs/slow", "allowed")
            .send()
            .await
            .unwrap(),
        504,
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("500 ms"),
        "{body}"
    );
}

/// Sends a raw request line, so that no client tidies the path first.
fn raw_status(address: &str, token: &str, path: &str) -> u16 {
    let answer = raw_request(address, token, path, "X-Subject-Id: allowed\r\n");
    answer.split(' ').nth(1).unwrap().parse().unwrap()
}

/// The body of a raw answer, chunked or not.
fn raw_body(answer: &str) -> String {
    let (head, mut rest) = answer.split_once("\r\n\r\n").unwrap();
    if !head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return rest.to_owned();
    }
    let mut body = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        body.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
    body
}

/// Sends a raw GET with extra header lines; the whole answer comes back.
fn raw_request(address: &str, token: &str, path: &str, headers: &str) -> String {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n{headers}Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[tokio::test]
async fn paths_cannot_leave_the_upstreams_base() {
    let app = spawn_gate().await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let token = app.service();
    let statuses = tokio::task::spawn_blocking(move || {
        [
            "/gate/recs/../secret",
            "/gate/recs/a/../../secret",
            "/gate/recs/%2e%2e/secret",
            "/gate/recs/..%2fsecret",
            "/gate/recs/a%5c..%5csecret",
            "/gate/recs/..;/secret",
            "/gate/recs/ok;jsessionid=1/path",
            "/gate/recs//secret",
            "/gate/recs/%252e%252e/secret",
            "/gate/recs/ok/path",
        ]
        .map(|p| raw_status(&address, &token, p))
    })
    .await
    .unwrap();
    assert_eq!(statuses, [400, 400, 400, 400, 400, 400, 400, 400, 400, 200]);
}

#[tokio::test]
async fn bad_calls_are_refused() {
    let app = spawn_gate().await;
    problem(
        through(&app, reqwest::Method::GET, "/gate/nope/x", "allowed")
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    let response = app
        .client
        .get(app.url("/gate/recs/x"))
        .bearer_auth(app.service())
        .send()
        .await
        .unwrap();
    assert_eq!(
        crate::helpers::invalid_fields(response).await,
        ["X-Subject-Id"]
    );
    let subject = app.token(Role::Subject, Some("allowed"));
    let response = app
        .client
        .get(app.url("/gate/recs/x"))
        .bearer_auth(subject)
        .header("X-Subject-Id", "allowed")
        .send()
        .await
        .unwrap();
    problem(response, 403).await;
    problem(
        app.client
            .get(app.url("/gate/recs/x"))
            .header("X-Subject-Id", "allowed")
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;
}

#[tokio::test]
async fn two_subject_headers_are_refused_and_the_upstream_gets_the_decided_one() {
    let app = spawn_gate().await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let token = app.service();
    let answers = tokio::task::spawn_blocking(move || {
        [
            // An upstream reading the last value would act for `refused`.
            "X-Subject-Id: allowed\r\nX-Subject-Id: refused\r\n",
            "X-Subject-Id: allowed, refused\r\n",
            // Listing the header as hop-by-hop would strip it after the decision.
            "X-Subject-Id: allowed\r\nConnection: X-Subject-Id, X-Consent-Decision\r\n",
        ]
        .map(|headers| raw_request(&address, &token, "/gate/recs/items", headers))
    })
    .await
    .unwrap();
    assert!(answers[0].starts_with("HTTP/1.1 400"), "{}", answers[0]);
    assert!(
        answers[0].contains("application/problem+json"),
        "{}",
        answers[0]
    );
    assert!(answers[1].starts_with("HTTP/1.1 422"), "{}", answers[1]);
    assert!(answers[2].starts_with("HTTP/1.1 200"), "{}", answers[2]);
    let echo: Value = serde_json::from_str(&raw_body(&answers[2])).unwrap();
    assert_eq!(echo["subject_ids"], json!(["allowed"]), "{echo}");
    assert!(echo["headers"]["x-consent-decision"].is_string(), "{echo}");
}
