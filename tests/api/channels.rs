//! Channels come from `policies/channels.toml`: the catalogue in both languages, the
//! default order by country when a customer chose none, channels beyond the original six
//! in preferences and decisions, and unknown channels refused by name.

use consentry::auth::Role;
use serde_json::{json, Value};

use crate::helpers::{invalid_fields, problem, spawn_app, TestApp};

async fn put_preferences(app: &TestApp, subject: &str, body: Value) -> reqwest::Response {
    app.put_json(
        &format!("/v1/subjects/{subject}/preferences"),
        &app.service(),
        &body,
    )
    .send()
    .await
    .unwrap()
}

async fn decide(app: &TestApp, subject: &str, purpose: &str, channel: &str) -> reqwest::Response {
    app.client
        .post(app.url("/v1/decisions"))
        .bearer_auth(app.service())
        .json(&json!({"subject_id": subject, "purpose": purpose, "channel": channel}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_catalogue_is_listed_in_the_callers_language() {
    let app = spawn_app().await;
    let list = app.get_json("/v1/channels", &app.service()).await;
    let names: Vec<&str> = list["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for expected in [
        "email",
        "sms",
        "push",
        "in_app",
        "phone",
        "whatsapp",
        "line",
        "messenger",
        "telegram",
        "viber",
        "kakaotalk",
        "wechat",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    assert_eq!(
        list["default_orders"]["BR"],
        json!(["whatsapp", "email", "sms"])
    );
    assert_eq!(list["default_orders"]["JP"][0], "line");
    assert_eq!(list["default_orders"]["KR"][0], "kakaotalk");
    assert_eq!(list["default_orders"]["CN"][0], "wechat");
    assert_eq!(
        list["default_orders"]["US"],
        json!(["email", "sms", "messenger"])
    );
    assert_eq!(list["default_orders"]["default"], json!(["email"]));

    let arabic: Value = app
        .get("/v1/channels", &app.token(Role::Subject, Some("anyone")))
        .header("Accept-Language", "ar")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(arabic["locale"], "ar");
    let whatsapp = arabic["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "whatsapp")
        .unwrap();
    assert_eq!(whatsapp["display_name"], "واتساب");
    assert_eq!(whatsapp["category"], "user.contact.phone_number");

    problem(
        app.client
            .get(app.url("/v1/channels"))
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;
}

#[tokio::test]
async fn a_customer_without_an_order_gets_their_countrys_marked_as_a_default() {
    let app = spawn_app().await;
    let cases = [
        ("br", "BR", json!(["whatsapp", "email", "sms"]), "BR"),
        ("id", "ID", json!(["whatsapp", "email", "sms"]), "ID"),
        ("mx", "MX", json!(["whatsapp", "email", "sms"]), "MX"),
        ("jp", "JP", json!(["line", "email"]), "JP"),
        ("kr", "KR", json!(["kakaotalk", "email", "sms"]), "KR"),
        ("cn", "CN", json!(["wechat", "sms"]), "CN"),
        ("ca", "US-CA", json!(["email", "sms", "messenger"]), "US"),
        ("de", "DE", json!(["email", "push"]), "eea"),
        ("sa", "SA", json!(["email"]), "default"),
    ];
    for (id, region, order, from) in cases {
        app.create_subject(id, json!({"region": region})).await;
        let prefs = app
            .get_json(&format!("/v1/subjects/{id}/preferences"), &app.service())
            .await;
        assert_eq!(prefs["channel_order"], order, "{region}");
        assert_eq!(prefs["channel_order_default_for"], from, "{region}");
    }
    // The customer's own order replaces the default, and is not marked.
    let own = json!({"channel_order": ["telegram", "email"]});
    let response = put_preferences(&app, "br", own).await;
    assert_eq!(response.status(), 200);
    let answered: Value = response.json().await.unwrap();
    assert_eq!(answered["channel_order"], json!(["telegram", "email"]));
    assert_eq!(answered["channel_order_default_for"], Value::Null);
    let prefs = app
        .get_json("/v1/subjects/br/preferences", &app.service())
        .await;
    assert_eq!(prefs["channel_order"], json!(["telegram", "email"]));
    assert_eq!(prefs["channel_order_default_for"], Value::Null);
    // Setting other preferences without an order keeps the default.
    let response = put_preferences(
        &app,
        "jp",
        json!({"channels": {"line": {"opted_in": true}}}),
    )
    .await;
    let answered: Value = response.json().await.unwrap();
    assert_eq!(answered["channel_order"], json!(["line", "email"]));
    assert_eq!(answered["channel_order_default_for"], "JP");
}

#[tokio::test]
async fn new_channels_work_in_preferences_and_decisions() {
    let app = spawn_app().await;
    app.create_subject("kim", json!({"region": "KR"})).await;
    assert_eq!(
        app.put_consent("kim", "marketing", "granted")
            .await
            .status(),
        200
    );
    let body = json!({"channels": {"kakaotalk": {"opted_in": false}, "line": {"opted_in": true}}});
    assert_eq!(put_preferences(&app, "kim", body).await.status(), 200);
    let denied: Value = decide(&app, "kim", "marketing.email", "kakaotalk")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(denied["decision"], "deny");
    assert_eq!(denied["reason"], "channel_opted_out");
    let allowed: Value = decide(&app, "kim", "marketing.email", "line")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(allowed["decision"], "allow", "{allowed}");
}

#[tokio::test]
async fn unknown_channels_are_refused_by_name() {
    let app = spawn_app().await;
    app.create_subject("u1", json!({"region": "DE"})).await;
    let cases = [
        (
            json!({"channels": {"pigeon": {"opted_in": true}}}),
            vec!["channels.pigeon"],
        ),
        (
            json!({"channel_order": ["email", "pigeon"]}),
            vec!["channel_order[1]"],
        ),
        (
            json!({"channel_order": ["EMAIL"]}),
            vec!["channel_order[0]"],
        ),
    ];
    for (body, fields) in cases {
        let shown = body.to_string();
        let response = put_preferences(&app, "u1", body).await;
        assert_eq!(invalid_fields(response).await, fields, "{shown}");
    }
    let body = problem(decide(&app, "u1", "analytics", "carrier_pigeon").await, 422).await;
    assert_eq!(body["errors"][0]["field"], "channel");
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("carrier_pigeon"));
}
