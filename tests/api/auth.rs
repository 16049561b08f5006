use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::TimeDelta;
use consentry::auth::token::{mint, Claims};
use consentry::auth::{KeyRing, Role};
use consentry::clock::Clock;
use jsonwebtoken::{Algorithm, Header};
use serde_json::{json, Value};

use crate::helpers::{jwt_settings, problem, spawn_app, TestApp};

async fn purposes_with(app: &TestApp, authorization: Option<String>) -> reqwest::Response {
    let mut request = app.client.get(app.url("/v1/purposes"));
    if let Some(value) = authorization {
        request = request.header("Authorization", value);
    }
    request.send().await.unwrap()
}

async fn assert_unauthorized(app: &TestApp, authorization: Option<String>) -> Value {
    let response = purposes_with(app, authorization).await;
    assert_eq!(
        response.headers().get("www-authenticate").unwrap(),
        "Bearer"
    );
    let body = problem(response, 401).await;
    // Every 401 reads the same: which check failed is logged, not told.
    assert_eq!(
        body["detail"],
        consentry::http::UNAUTHORIZED_DETAIL,
        "{body}"
    );
    body
}

fn claims(app: &TestApp, role: &str) -> Claims {
    let now = app.clock.now().timestamp();
    Claims {
        iss: "consentry".into(),
        aud: "consentry".into(),
        sub: Some("svc".into()),
        role: role.into(),
        iat: now,
        exp: now + 600,
        nbf: None,
        jti: "t".into(),
    }
}

fn signed(keys: &KeyRing, claims: &Claims) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(keys.signing().kid.clone());
    jsonwebtoken::encode(&header, claims, keys.signing().encoding_key()).unwrap()
}

#[tokio::test]
async fn a_valid_token_is_accepted() {
    let app = spawn_app().await;
    let response = purposes_with(&app, Some(format!("Bearer {}", app.service()))).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn missing_or_malformed_credentials_are_401() {
    let app = spawn_app().await;
    assert_unauthorized(&app, None).await;
    assert_unauthorized(&app, Some("Basic dXNlcjpwYXNz".into())).await;
    assert_unauthorized(&app, Some("Bearer".into())).await;
    assert_unauthorized(&app, Some("Bearer not-a-jwt".into())).await;
    assert_unauthorized(&app, Some("Bearer a.b.c".into())).await;
}

#[tokio::test]
async fn alg_none_is_401() {
    let app = spawn_app().await;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(&app, "admin")).unwrap());
    assert_unauthorized(&app, Some(format!("Bearer {header}.{body}."))).await;
}

#[tokio::test]
async fn hs256_is_401_when_only_eddsa_is_accepted() {
    let app = spawn_app().await;
    let token = consentry::auth::token::mint_hmac(
        Algorithm::HS256,
        "a-shared-secret-of-at-least-32-bytes!!",
        &claims(&app, "admin"),
    )
    .unwrap();
    let body = assert_unauthorized(&app, Some(format!("Bearer {token}"))).await;
    assert!(!body["detail"].as_str().unwrap().contains("not accepted"));
}

#[tokio::test]
async fn a_token_from_another_key_is_401() {
    let app = spawn_app().await;
    let other = KeyRing::ephemeral().unwrap();
    let foreign = mint(
        &other,
        &jwt_settings(),
        Role::Admin,
        Some("ops".into()),
        TimeDelta::hours(1),
        app.clock.now(),
    )
    .unwrap();
    assert_unauthorized(&app, Some(format!("Bearer {}", foreign.token))).await;
    // Our kid, their signature.
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(app.keys.signing().kid.clone());
    let forged = jsonwebtoken::encode(
        &header,
        &claims(&app, "admin"),
        other.signing().encoding_key(),
    )
    .unwrap();
    let body = assert_unauthorized(&app, Some(format!("Bearer {forged}"))).await;
    assert!(!body["detail"].as_str().unwrap().contains("signature"));
}

#[tokio::test]
async fn an_expired_token_is_401_by_the_apps_clock() {
    let app = spawn_app().await;
    let token = app.service();
    assert_eq!(
        purposes_with(&app, Some(format!("Bearer {token}")))
            .await
            .status(),
        200
    );
    app.clock.advance(TimeDelta::hours(2));
    let body = assert_unauthorized(&app, Some(format!("Bearer {token}"))).await;
    assert!(!body["detail"].as_str().unwrap().contains("expired"));
}

#[tokio::test]
async fn wrong_issuer_audience_or_role_is_401() {
    let app = spawn_app().await;
    let mut wrong_issuer = claims(&app, "admin");
    wrong_issuer.iss = "https://evil.example".into();
    assert_unauthorized(
        &app,
        Some(format!("Bearer {}", signed(&app.keys, &wrong_issuer))),
    )
    .await;
    let mut wrong_audience = claims(&app, "admin");
    wrong_audience.aud = "another-service".into();
    assert_unauthorized(
        &app,
        Some(format!("Bearer {}", signed(&app.keys, &wrong_audience))),
    )
    .await;
    let unknown_role = claims(&app, "root");
    let body = assert_unauthorized(
        &app,
        Some(format!("Bearer {}", signed(&app.keys, &unknown_role))),
    )
    .await;
    assert!(!body["detail"].as_str().unwrap().contains("unknown role"));
}

#[tokio::test]
async fn a_token_must_name_someone_in_the_id_alphabet() {
    let app = spawn_app().await;
    for (role, sub) in [
        ("service", None),
        ("service", Some("")),
        ("admin", Some("")),
        ("compliance", None),
        ("subject", None),
        ("service", Some("svc\u{202E}")),
        ("subject", Some("demo\u{200B}-000002")),
    ] {
        let mut nameless = claims(&app, role);
        nameless.sub = sub.map(str::to_owned);
        assert_unauthorized(
            &app,
            Some(format!("Bearer {}", signed(&app.keys, &nameless))),
        )
        .await;
    }
}

#[tokio::test]
async fn a_role_that_may_not_is_403() {
    let app = spawn_app().await;
    let compliance = app.token(Role::Compliance, Some("officer-1"));
    let response = app
        .put_json("/v1/subjects/alice", &compliance, &json!({"region": "DE"}))
        .send()
        .await
        .unwrap();
    let body = problem(response, 403).await;
    assert!(
        body["detail"].as_str().unwrap().contains("compliance"),
        "{body}"
    );
    let response = app
        .get("/v1/subjects/alice", &compliance)
        .send()
        .await
        .unwrap();
    problem(response, 403).await;
}

#[tokio::test]
async fn jwks_publishes_the_signing_key_with_its_kid() {
    let app = spawn_app().await;
    let jwks: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(
        (
            key["kty"].as_str(),
            key["crv"].as_str(),
            key["alg"].as_str()
        ),
        (Some("OKP"), Some("Ed25519"), Some("EdDSA"))
    );
    let token = app.service();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.kid.as_deref(), key["kid"].as_str());
    // Anyone can verify with the JWKS alone.
    let decoding =
        jsonwebtoken::DecodingKey::from_ed_components(key["x"].as_str().unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(Algorithm::EdDSA);
    validation.set_audience(&["consentry"]);
    validation.validate_exp = false;
    let decoded = jsonwebtoken::decode::<Value>(&token, &decoding, &validation).unwrap();
    assert_eq!(decoded.claims["role"], "service");
}
