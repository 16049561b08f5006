//! Reach: which channels may carry a message to a customer now, in their order, with
//! each refusal named (the gate, a channel's opt-in, the weekly cap counted from recorded
//! contacts, quiet hours in their time zone); contacts recorded once per idempotency key;
//! the batch form; bad input named field by field.

use chrono::TimeDelta;
use consentry::auth::Role;
use serde_json::{json, Value};

use crate::helpers::{invalid_fields, problem, spawn_app, TestApp};

async fn reach(app: &TestApp, body: Value) -> reqwest::Response {
    app.post("/v1/reach", &app.service(), &body).await
}

async fn reach_ok(app: &TestApp, body: Value) -> Value {
    let response = reach(app, body).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn contact(app: &TestApp, subject: &str, body: Value) -> reqwest::Response {
    app.post(
        &format!("/v1/subjects/{subject}/contacts"),
        &app.service(),
        &body,
    )
    .await
}

/// `channel: reason` for each channel answered, in order.
fn reasons(answer: &Value) -> Vec<String> {
    answer["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let mut line = format!("{}: {}", c["channel"], c["reason"]).replace('"', "");
            if let Some(why) = c["decision_reason"].as_str() {
                line.push_str(&format!(" ({why})"));
            }
            line
        })
        .collect()
}

/// A customer in Germany who consented to marketing and set their channels: e-mail
/// capped at two a week, no text messages, quiet from 22:00 to 08:00 in Berlin.
async fn berlin_customer(app: &TestApp, id: &str) {
    app.create_subject(id, json!({"region": "DE"})).await;
    assert_eq!(
        app.put_consent(id, "marketing", "granted").await.status(),
        200
    );
    let response = app
        .put_json(
            &format!("/v1/subjects/{id}/preferences"),
            &app.service(),
            &json!({
                "channels": {"email": {"opted_in": true, "max_per_week": 2}, "sms": {"opted_in": false}},
                "channel_order": ["whatsapp", "email", "sms", "push"],
                "timezone": "Europe/Berlin",
                "quiet_hours": {"start": "22:00", "end": "08:00"}
            }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn reach_follows_the_customers_order_and_names_each_refusal() {
    let app = spawn_app().await;
    berlin_customer(&app, "de-1").await;

    // Monday 23 November 2026, 13:00 in Berlin.
    let answer = reach_ok(&app, json!({"subject_id": "de-1", "purpose": "marketing"})).await;
    assert_eq!(
        reasons(&answer),
        [
            "whatsapp: channel_opt_in_required",
            "email: allowed",
            "sms: purpose_denied (channel_opted_out)",
            // Marketing does not declare push tokens among its data.
            "push: purpose_denied (category_not_declared)",
        ]
    );
    assert_eq!(answer["first_allowed"], "email");
    assert_eq!(answer["jurisdiction"], "eea");
    assert_eq!(answer["timezone"], "Europe/Berlin");
    assert_eq!(answer["channel_order_default_for"], Value::Null);
    assert_eq!(answer["subject_known"], true);

    // A purpose for e-mail only refuses the other channels by their data.
    let answer = reach_ok(
        &app,
        json!({"subject_id": "de-1", "purpose": "marketing.email", "channels": ["email", "whatsapp"]}),
    )
    .await;
    assert_eq!(
        reasons(&answer),
        [
            "whatsapp: purpose_denied (category_not_declared)",
            "email: allowed"
        ]
    );

    // Two e-mails this week use up the cap; it frees when the first leaves the local
    // week (Monday 30 November, 00:00 in Berlin), but that is quiet hours until 08:00.
    for key in ["a", "b"] {
        let response = contact(
            &app,
            "de-1",
            json!({"channel": "email", "purpose": "marketing", "idempotency_key": key}),
        )
        .await;
        assert_eq!(response.status(), 201);
    }
    let answer = reach_ok(&app, json!({"subject_id": "de-1", "purpose": "marketing"})).await;
    let email = &answer["channels"][1];
    assert_eq!(email["reason"], "weekly_cap_reached");
    assert_eq!(email["next_allowed_at"], "2026-11-30T07:00:00Z");
    assert_eq!(answer["first_allowed"], Value::Null);

    // Asked about that moment ahead of time, and then there.
    let later = reach_ok(
        &app,
        json!({"subject_id": "de-1", "purpose": "marketing", "channels": ["email"], "at": "2026-11-30T07:00:00Z"}),
    )
    .await;
    assert_eq!(reasons(&later), ["email: allowed"]);
    // Monday 30 November, 00:30 in Berlin: the cap is free, but it is quiet hours.
    app.clock
        .advance(TimeDelta::days(6) + TimeDelta::hours(11) + TimeDelta::minutes(30));
    let quiet = reach_ok(&app, json!({"subject_id": "de-1", "purpose": "marketing"})).await;
    assert_eq!(quiet["channels"][1]["reason"], "quiet_hours", "{quiet}");
    assert_eq!(
        quiet["channels"][1]["next_allowed_at"],
        "2026-11-30T07:00:00Z"
    );
    // 08:00 in Berlin.
    app.clock
        .advance(TimeDelta::hours(7) + TimeDelta::minutes(30));
    let morning = reach_ok(&app, json!({"subject_id": "de-1", "purpose": "marketing"})).await;
    assert_eq!(morning["first_allowed"], "email", "{morning}");

    // A withdrawal is honoured at once.
    app.put_consent("de-1", "marketing", "denied").await;
    let answer = reach_ok(&app, json!({"subject_id": "de-1", "purpose": "marketing"})).await;
    assert_eq!(
        answer["channels"][1]["decision_reason"], "consent_denied",
        "{answer}"
    );
    assert_eq!(answer["first_allowed"], Value::Null);
}

#[tokio::test]
async fn without_an_order_of_their_own_a_customer_gets_their_countrys() {
    let app = spawn_app().await;
    app.create_subject("br-1", json!({"region": "BR"})).await;
    app.put_consent("br-1", "marketing", "granted").await;
    let answer = reach_ok(&app, json!({"subject_id": "br-1", "purpose": "marketing"})).await;
    assert_eq!(answer["channel_order_default_for"], "BR");
    let channels: Vec<&str> = answer["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels, ["whatsapp", "email", "sms"]);
    assert_eq!(answer["first_allowed"], "whatsapp", "{answer}");
    assert_eq!(answer["timezone"], "UTC");

    // Nobody by that id: the default jurisdiction and the default order decide.
    let unknown = reach_ok(
        &app,
        json!({"subject_id": "nobody", "purpose": "marketing"}),
    )
    .await;
    assert_eq!(unknown["subject_known"], false);
    assert_eq!(unknown["channel_order_default_for"], "default");
    assert_eq!(reasons(&unknown)[0], "email: purpose_denied (no_consent)");
}

#[tokio::test]
async fn reach_refuses_bad_input_by_field_and_other_callers() {
    let app = spawn_app().await;
    let fields = invalid_fields(
        reach(
            &app,
            json!({"subject_id": "", "purpose": "nope", "channels": ["email", "pigeon", "email"], "at": "2027-06-01T00:00:00Z"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        fields,
        ["subject_id", "purpose", "channels[1]", "channels[2]", "at"]
    );
    let fields = invalid_fields(
        reach(
            &app,
            json!({"subject_id": "x", "purpose": "marketing", "channels": []}),
        )
        .await,
    )
    .await;
    assert_eq!(fields, ["channels"]);
    let fields = invalid_fields(
        reach(
            &app,
            json!({"subject_id": "x", "purpose": "marketing", "at": "yesterday"}),
        )
        .await,
    )
    .await;
    assert_eq!(fields, ["at"]);
    let fields = invalid_fields(
        reach(
            &app,
            json!({"subject_id": "x", "purpose": "marketing", "channel": "email"}),
        )
        .await,
    )
    .await;
    assert_eq!(fields, ["channel"]);

    let customer = app.token(Role::Subject, Some("x"));
    let response = app
        .client
        .post(app.url("/v1/reach"))
        .bearer_auth(customer)
        .json(&json!({"subject_id": "x", "purpose": "marketing"}))
        .send()
        .await
        .unwrap();
    problem(response, 403).await;
}

#[tokio::test]
async fn a_batch_answers_in_order_and_names_bad_items() {
    let app = spawn_app().await;
    berlin_customer(&app, "de-1").await;
    app.create_subject("jp-1", json!({"region": "JP"})).await;
    let items: Vec<Value> = ["de-1", "jp-1", "nobody"]
        .iter()
        .map(|id| json!({"subject_id": id, "purpose": "marketing"}))
        .collect();
    let response = app
        .client
        .post(app.url("/v1/reach/batch"))
        .bearer_auth(app.service())
        .json(&json!({ "items": items }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let batch: Value = response.json().await.unwrap();
    let results = batch["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["first_allowed"], "email");
    assert_eq!(results[1]["channel_order_default_for"], "JP");
    assert_eq!(results[1]["channels"][0]["channel"], "line");
    assert_eq!(results[2]["subject_known"], false);

    let response = app
        .client
        .post(app.url("/v1/reach/batch"))
        .bearer_auth(app.service())
        .json(&json!({"items": [
            {"subject_id": "de-1", "purpose": "marketing"},
            {"subject_id": "de-1", "purpose": "marketing", "channels": ["pigeon"]},
            {"subject_id": "de-1", "purpose": "marketing", "at": "2020-01-01T00:00:00Z"}
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        invalid_fields(response).await,
        ["items[1].channels[0]", "items[2].at"]
    );
    let too_many: Vec<Value> = (0..1001)
        .map(|_| json!({"subject_id": "de-1", "purpose": "marketing"}))
        .collect();
    let response = app
        .client
        .post(app.url("/v1/reach/batch"))
        .bearer_auth(app.service())
        .json(&json!({ "items": too_many }))
        .send()
        .await
        .unwrap();
    assert_eq!(invalid_fields(response).await, ["items"]);
}

#[tokio::test]
async fn a_contact_is_recorded_once_per_key_and_checked_by_field() {
    let app = spawn_app().await;
    app.create_subject("c-1", json!({"region": "DE"})).await;
    let body = json!({"channel": "email", "purpose": "marketing", "idempotency_key": "k-1"});
    let first = contact(&app, "c-1", body.clone()).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["subject_id"], "c-1");
    assert_eq!(first["sent_at"], "2026-11-23T12:00:00Z");

    // A retry later answers the first record and records nothing more.
    app.clock.advance(TimeDelta::minutes(3));
    let again = contact(&app, "c-1", body).await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    let conflict = problem(
        contact(
            &app,
            "c-1",
            json!({"channel": "sms", "purpose": "marketing", "idempotency_key": "k-1"}),
        )
        .await,
        409,
    )
    .await;
    assert_eq!(conflict["field"], "idempotency_key");
    // The same key for another customer is another message.
    app.create_subject("c-2", json!({"region": "DE"})).await;
    let other = contact(
        &app,
        "c-2",
        json!({"channel": "email", "purpose": "marketing", "idempotency_key": "k-1"}),
    )
    .await;
    assert_eq!(other.status(), 201);

    let fields = invalid_fields(
        contact(
            &app,
            "c-1",
            json!({"channel": "pigeon", "purpose": "nope", "sent_at": "2026-11-23T13:00:00Z", "idempotency_key": ""}),
        )
        .await,
    )
    .await;
    assert_eq!(fields, ["channel", "purpose", "sent_at", "idempotency_key"]);
    let fields = invalid_fields(
        contact(
            &app,
            "c-1",
            json!({"channel": "email", "purpose": "marketing", "sent_at": "2026-09-01T00:00:00Z"}),
        )
        .await,
    )
    .await;
    assert_eq!(fields, ["sent_at"]);
    let fields = invalid_fields(contact(&app, "c-1", json!({"purpose": "marketing"})).await).await;
    assert_eq!(fields, ["channel"]);
    problem(
        contact(
            &app,
            "nobody",
            json!({"channel": "email", "purpose": "marketing"}),
        )
        .await,
        404,
    )
    .await;
    // Customers do not record what was sent to them, nor to anyone else.
    let own = app.token(Role::Subject, Some("c-1"));
    let response = app
        .client
        .post(app.url("/v1/subjects/c-1/contacts"))
        .bearer_auth(own)
        .json(&json!({"channel": "email", "purpose": "marketing"}))
        .send()
        .await
        .unwrap();
    problem(response, 403).await;
}
