//! Abuse limits: per client address without credentials and on failed authentication,
//! per token subject on writes, never on the gate's decisions.

use consentry::auth::Role;
use consentry::http::limits::LimitSettings;
use reqwest::Response;
use serde_json::json;

use crate::helpers::{problem, spawn_app_with, TestApp, TestOptions};

fn with_limits(limits: LimitSettings) -> TestOptions {
    TestOptions {
        limits,
        ..TestOptions::default()
    }
}

async fn refused(response: Response) {
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    problem(response, 429).await;
}

async fn with_bad_token(app: &TestApp, forwarded_for: Option<&str>) -> Response {
    let mut request = app.get("/v1/purposes", "not-a-token");
    if let Some(address) = forwarded_for {
        request = request.header("x-forwarded-for", address);
    }
    request.send().await.unwrap()
}

async fn refusals(app: &TestApp, limit: &str) -> u64 {
    let metrics = app.metrics().await;
    let series = format!("consentry_rate_limited_total{{limit=\"{limit}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test]
async fn bad_tokens_are_slowed_while_good_ones_from_the_same_address_work() {
    let app = spawn_app_with(with_limits(LimitSettings {
        failed_auth_per_minute: 5,
        ..LimitSettings::default()
    }))
    .await;
    for _ in 0..5 {
        assert_eq!(with_bad_token(&app, None).await.status(), 401);
    }
    refused(with_bad_token(&app, None).await).await;
    // No token at all is a failed authentication too.
    refused(
        app.client
            .get(app.url("/v1/purposes"))
            .send()
            .await
            .unwrap(),
    )
    .await;

    let good = app
        .get("/v1/purposes", &app.service())
        .send()
        .await
        .unwrap();
    assert_eq!(good.status(), 200);
    assert_eq!(refusals(&app, "failed_auth").await, 2);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_share() {
    let app = spawn_app_with(TestOptions {
        trusted_proxies: "127.0.0.1/32",
        ..with_limits(LimitSettings {
            failed_auth_per_minute: 2,
            ..LimitSettings::default()
        })
    })
    .await;
    for _ in 0..2 {
        let response = with_bad_token(&app, Some("203.0.113.1")).await;
        assert_eq!(response.status(), 401);
    }
    refused(with_bad_token(&app, Some("203.0.113.1")).await).await;
    let other = with_bad_token(&app, Some("203.0.113.2")).await;
    assert_eq!(other.status(), 401);
}

#[tokio::test]
async fn an_untrusted_peer_cannot_escape_its_share_by_forging_forwarded_for() {
    let app = spawn_app_with(with_limits(LimitSettings {
        failed_auth_per_minute: 2,
        ..LimitSettings::default()
    }))
    .await;
    assert_eq!(
        with_bad_token(&app, Some("203.0.113.1")).await.status(),
        401
    );
    assert_eq!(
        with_bad_token(&app, Some("203.0.113.2")).await.status(),
        401
    );
    refused(with_bad_token(&app, Some("203.0.113.3")).await).await;
}

#[tokio::test]
async fn requests_without_credentials_are_limited_per_address_but_liveness_is_not() {
    let app = spawn_app_with(with_limits(LimitSettings {
        anonymous_per_minute: 5,
        ..LimitSettings::default()
    }))
    .await;
    let get = |path: &'static str| app.client.get(app.url(path)).send();
    for _ in 0..5 {
        assert_eq!(get("/readyz").await.unwrap().status(), 200);
    }
    refused(get("/readyz").await.unwrap()).await;
    refused(get("/openapi.json").await.unwrap()).await;
    refused(get("/portal").await.unwrap()).await;
    for _ in 0..20 {
        assert_eq!(get("/healthz").await.unwrap().status(), 200);
    }
    let with_token = app
        .get("/v1/purposes", &app.service())
        .send()
        .await
        .unwrap();
    assert_eq!(with_token.status(), 200);
}

#[tokio::test]
async fn customer_writes_are_limited_per_customer() {
    let app = spawn_app_with(with_limits(LimitSettings {
        customer_writes_per_minute: 3,
        ..LimitSettings::default()
    }))
    .await;
    for id in ["alice", "bob"] {
        app.create_subject(id, json!({"region": "DE"})).await;
    }
    let (alice, bob) = (
        app.token(Role::Subject, Some("alice")),
        app.token(Role::Subject, Some("bob")),
    );
    let write = |token: &str, subject: &str, status: &str| {
        app.put_json(
            &format!("/v1/subjects/{subject}/consents/analytics"),
            token,
            &json!({"status": status, "source": "portal"}),
        )
        .send()
    };
    for status in ["granted", "denied", "granted"] {
        let response = write(&alice, "alice", status).await.unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }
    refused(write(&alice, "alice", "denied").await.unwrap()).await;
    // Nothing refused was recorded.
    assert_eq!(
        app.consents("alice").await["analytics"]["status"],
        "granted"
    );

    assert_eq!(write(&bob, "bob", "granted").await.unwrap().status(), 200);
    let read = app.get("/v1/subjects/alice/consents", &alice).send().await;
    assert_eq!(read.unwrap().status(), 200);
    assert_eq!(refusals(&app, "customer_writes").await, 1);
}

#[tokio::test]
async fn service_writes_are_limited_per_token_subject_and_decisions_never() {
    let app = spawn_app_with(with_limits(LimitSettings {
        service_writes_per_second: 1,
        ..LimitSettings::default()
    }))
    .await;
    let crm = app.token(Role::Service, Some("crm"));
    let mut statuses = Vec::new();
    for n in 0..10 {
        let response = app
            .put_json(
                &format!("/v1/subjects/c-{n}"),
                &crm,
                &json!({"region": "DE"}),
            )
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses[0], 201, "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| [201, 429].contains(s)),
        "{statuses:?}"
    );

    let shop = app.token(Role::Service, Some("shop"));
    let other = app
        .put_json("/v1/subjects/s-1", &shop, &json!({"region": "DE"}))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 201);

    for _ in 0..100 {
        let decision = app
            .client
            .post(app.url("/v1/decisions"))
            .bearer_auth(&crm)
            .json(&json!({"subject_id": "c-0", "purpose": "analytics"}))
            .send()
            .await
            .unwrap();
        assert_eq!(decision.status(), 200);
    }
}
