//! Changes pushed to webhook endpoints: signed by the Standard Webhooks specification,
//! in order per subject, retried with backoff, dead-lettered and replayed; endpoints
//! turned off after repeated failure; internal addresses refused; recipients of an
//! erasure told and confirming.

use std::time::Duration;

use chrono::TimeDelta;
use consentry::auth::Role;
use consentry::clock::Clock;
use consentry::delivery::DeliverySettings;
use serde_json::{json, Value};

use crate::helpers::{invalid_fields, problem, spawn_app, spawn_app_with, TestApp, TestOptions};
use crate::receiver::{verify, Receiver};

const WAIT: Duration = Duration::from_secs(20);

impl TestApp {
    /// Creates an endpoint and answers it, with its secret.
    pub async fn create_webhook(&self, body: Value) -> Value {
        let response = self
            .client
            .post(self.url("/v1/webhooks"))
            .bearer_auth(self.admin())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "creating a webhook");
        response.json().await.unwrap()
    }

    async fn patch_webhook(&self, id: &str, body: Value) -> Value {
        let response = self
            .client
            .patch(self.url(&format!("/v1/webhooks/{id}")))
            .bearer_auth(self.admin())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "changing a webhook");
        response.json().await.unwrap()
    }

    async fn deliveries(&self, id: &str, query: &str) -> Vec<Value> {
        self.get_json(
            &format!("/v1/webhooks/{id}/deliveries{query}"),
            &self.admin(),
        )
        .await["deliveries"]
            .as_array()
            .unwrap()
            .clone()
    }
}

fn options_with(delivery: DeliverySettings) -> TestOptions {
    TestOptions {
        delivery,
        ..TestOptions::default()
    }
}

fn quick_to_give_up() -> DeliverySettings {
    DeliverySettings {
        allow_internal: true,
        retry_window: TimeDelta::minutes(1),
        disable_after: 1_000,
        ..DeliverySettings::default()
    }
}

#[tokio::test]
async fn a_withdrawal_reaches_the_receiver_signed_as_the_specification_says() {
    let app = spawn_app().await;
    let receiver = Receiver::start();
    let created = app
        .create_webhook(json!({"url": receiver.url, "description": "mailer",
                                "event_types": ["consent.granted", "consent.denied"]}))
        .await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let id = created["id"].as_str().unwrap();
    // The secret is shown once.
    let shown = app
        .get_json(&format!("/v1/webhooks/{id}"), &app.admin())
        .await;
    assert!(shown.get("secret").is_none());
    assert!(!shown.to_string().contains(&secret));
    assert_eq!(shown["status"], "enabled");

    app.create_subject("eu-1", json!({"region": "DE"})).await;
    assert_eq!(
        app.put_consent("eu-1", "marketing.email", "granted")
            .await
            .status(),
        200
    );
    assert_eq!(
        app.put_consent("eu-1", "marketing.email", "denied")
            .await
            .status(),
        200
    );

    let got = receiver.wait_for_accepted(2, WAIT).await;
    let now = app.clock.now().timestamp();
    for delivery in &got {
        assert!(
            verify(&secret, delivery, now),
            "signature of {}",
            delivery.body
        );
        assert!(!verify(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            delivery,
            now
        ));
        assert!(delivery.id().starts_with("msg_"));
    }
    let types: Vec<Value> = got.iter().map(|d| d.json()["type"].clone()).collect();
    assert_eq!(types, [json!("consent.granted"), json!("consent.denied")]);
    let withdrawal = got[1].json();
    assert_eq!(withdrawal["data"]["subject_id"], "eu-1");
    assert_eq!(withdrawal["data"]["purpose"], "marketing.email");
    assert_eq!(withdrawal["data"]["status"], "denied");
    assert!(withdrawal["timestamp"].as_str().unwrap().ends_with('Z'));
    // Only the subscribed types: the subject's creation went elsewhere.
    assert_eq!(receiver.received().len(), 2);

    // The receiver has answered; the sender records it a moment later.
    let started = std::time::Instant::now();
    let mut delivered = app.deliveries(id, "?status=delivered").await;
    while delivered.len() < 2 && started.elapsed() < WAIT {
        tokio::time::sleep(Duration::from_millis(20)).await;
        delivered = app.deliveries(id, "?status=delivered").await;
    }
    assert_eq!(delivered.len(), 2);
    assert_eq!(delivered[0]["attempt_log"][0]["status_code"], 200);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("consentry_webhook_deliveries_total 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn profile_changes_name_attributes_never_their_values() {
    let app = spawn_app().await;
    let receiver = Receiver::start();
    app.create_webhook(json!({"url": receiver.url, "event_types": ["profile.updated"]}))
        .await;
    app.create_subject("eu-1", json!({"region": "DE"})).await;
    let response = app
        .client
        .patch(app.url("/v1/subjects/eu-1/profile"))
        .bearer_auth(app.service())
        .json(&json!({"attributes": {"city": {"value": "Lisbon", "category": "user.contact.address"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let got = receiver.wait_for_accepted(1, WAIT).await;
    assert_eq!(got[0].json()["data"]["attributes"], json!(["city"]));
    assert!(!got[0].body.contains("Lisbon"));
}

#[tokio::test]
async fn a_purpose_filter_passes_its_purposes_and_changes_to_the_whole_subject() {
    let app = spawn_app().await;
    let receiver = Receiver::start();
    app.create_webhook(json!({"url": receiver.url, "purpose": "marketing",
                              "event_types": ["consent.granted", "consent.denied", "subject.erased"]}))
        .await;
    app.create_subject("eu-1", json!({"region": "DE"})).await;
    app.put_consent("eu-1", "analytics", "granted").await;
    app.put_consent("eu-1", "marketing.email", "granted").await;
    let erased = app
        .client
        .delete(app.url("/v1/subjects/eu-1"))
        .bearer_auth(app.token(Role::Compliance, Some("officer")))
        .send()
        .await
        .unwrap();
    assert_eq!(erased.status(), 204);
    let got = receiver.wait_for_accepted(2, WAIT).await;
    let types: Vec<String> = got
        .iter()
        .map(|d| d.json()["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(types, ["consent.granted", "subject.erased"]);
    assert_eq!(got[0].json()["data"]["purpose"], "marketing.email");
    // The erasure names the subject: the receiver must find what to erase.
    assert_eq!(got[1].json()["data"]["subject_id"], "eu-1");
}

#[tokio::test]
async fn failed_deliveries_back_off_keep_each_subjects_order_and_go_dead_then_replay() {
    let app = spawn_app_with(options_with(quick_to_give_up())).await;
    let receiver = Receiver::start();
    let created = app
        .create_webhook(
            json!({"url": receiver.url, "event_types": ["consent.granted", "consent.denied"]}),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    app.create_subject("a", json!({"region": "DE"})).await;
    app.create_subject("b", json!({"region": "DE"})).await;
    // The first delivery fails: a's second change must wait behind it; b's goes on.
    receiver.script(&[500]);
    app.put_consent("a", "analytics", "granted").await;
    receiver.wait_for_received(1, WAIT).await;
    app.put_consent("a", "analytics", "denied").await;
    app.put_consent("b", "analytics", "granted").await;
    let got = receiver.wait_for_accepted(1, WAIT).await;
    assert_eq!(got[0].json()["data"]["subject_id"], "b");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        receiver.accepted().len(),
        1,
        "a's second change went before its first"
    );
    let pending = app.deliveries(id, "?status=pending").await;
    assert_eq!(pending.len(), 2);
    let failed = pending.iter().find(|d| d["attempts"] == 1).unwrap();
    assert_eq!(failed["last_status"], 500);
    assert_eq!(failed["attempt_log"][0]["status_code"], 500);

    // The backoff's wait passes: a's changes arrive, in order.
    app.clock.advance(TimeDelta::seconds(6));
    let got = receiver.wait_for_accepted(3, WAIT).await;
    let a: Vec<Value> = got
        .iter()
        .filter(|d| d.json()["data"]["subject_id"] == "a")
        .map(|d| d.json()["data"]["status"].clone())
        .collect();
    assert_eq!(a, [json!("granted"), json!("denied")]);

    // A receiver that keeps failing past the window: the delivery goes dead.
    receiver.script(&[503; 20]);
    app.put_consent("b", "analytics", "denied").await;
    receiver.wait_for_received(5, WAIT).await;
    for _ in 0..8 {
        app.clock.advance(TimeDelta::seconds(20));
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let dead = app.deliveries(id, "?status=dead").await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(dead[0]["attempts"].as_i64().unwrap() >= 2);
    assert!(app
        .metrics()
        .await
        .contains("consentry_webhook_dead_letters_total 1"));

    // Replayed once the receiver is fixed.
    receiver.script(&[]);
    let from = (app.clock.now() - TimeDelta::hours(1)).to_rfc3339();
    let replayed = app
        .client
        .post(app.url(&format!("/v1/webhooks/{id}/replay")))
        .query(&[("from", from.as_str())])
        .bearer_auth(app.admin())
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status(), 202);
    assert_eq!(replayed.json::<Value>().await.unwrap()["queued"], 1);
    state_of_last(&receiver, 4).await;
    assert!(app.deliveries(id, "?status=dead").await.is_empty());
}

async fn state_of_last(receiver: &Receiver, n: usize) {
    let got = receiver.wait_for_accepted(n, WAIT).await;
    assert_eq!(got[n - 1].json()["data"]["status"], "denied");
}

#[tokio::test]
async fn an_endpoint_failing_again_and_again_is_turned_off_until_an_admin_turns_it_on() {
    let app = spawn_app_with(options_with(DeliverySettings {
        allow_internal: true,
        disable_after: 2,
        ..DeliverySettings::default()
    }))
    .await;
    let receiver = Receiver::start();
    let created = app
        .create_webhook(json!({"url": receiver.url, "event_types": ["consent.granted"]}))
        .await;
    let id = created["id"].as_str().unwrap();
    receiver.script(&[500, 500]);
    app.create_subject("a", json!({"region": "DE"})).await;
    app.put_consent("a", "analytics", "granted").await;
    receiver.wait_for_received(1, WAIT).await;
    app.clock.advance(TimeDelta::seconds(6));
    receiver.wait_for_received(2, WAIT).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let shown = app
        .get_json(&format!("/v1/webhooks/{id}"), &app.admin())
        .await;
    assert_eq!(shown["status"], "disabled", "{shown}");
    assert_eq!(shown["consecutive_failures"], 2);
    // Off: nothing is sent, even when due.
    app.clock.advance(TimeDelta::minutes(5));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 2);
    let on = app.patch_webhook(id, json!({"enabled": true})).await;
    assert_eq!(on["status"], "enabled");
    assert_eq!(on["consecutive_failures"], 0);
    receiver.wait_for_accepted(1, WAIT).await;
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_old_one_for_the_grace_period() {
    let app = spawn_app().await;
    let receiver = Receiver::start();
    let created = app
        .create_webhook(json!({"url": receiver.url, "event_types": ["consent.granted"]}))
        .await;
    let (id, old) = (
        created["id"].as_str().unwrap(),
        created["secret"].as_str().unwrap(),
    );
    let rotated = app.patch_webhook(id, json!({"rotate_secret": true})).await;
    let new = rotated["secret"].as_str().unwrap();
    assert_ne!(new, old);
    assert!(rotated["previous_secret_until"].is_string());
    app.create_subject("a", json!({"region": "DE"})).await;
    app.put_consent("a", "analytics", "granted").await;
    let got = receiver.wait_for_accepted(1, WAIT).await;
    let now = app.clock.now().timestamp();
    assert!(verify(old, &got[0], now) && verify(new, &got[0], now));
    assert_eq!(got[0].headers["webhook-signature"].split(' ').count(), 2);
    // After the grace period only the new one signs.
    app.clock.advance(TimeDelta::hours(25));
    app.put_consent("a", "analytics", "granted").await;
    let got = receiver.wait_for_accepted(2, WAIT).await;
    let now = app.clock.now().timestamp();
    assert!(verify(new, &got[1], now));
    assert!(!verify(old, &got[1], now));
}

#[tokio::test]
async fn internal_addresses_and_other_schemes_are_refused_by_default() {
    let app = spawn_app_with(options_with(DeliverySettings::default())).await;
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.5/hook",
        "http://[::1]/hook",
        "http://[fd00::1]/hook",
        "ftp://hooks.example.com/",
        "https://user:pw@hooks.example.com/",
        "not a url",
    ] {
        let response = app
            .client
            .post(app.url("/v1/webhooks"))
            .bearer_auth(app.admin())
            .json(&json!({"url": url}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{url}");
        assert_eq!(invalid_fields(response).await, ["url"], "{url}");
    }
}

#[tokio::test]
async fn only_admins_manage_webhooks_and_bad_fields_are_named() {
    let app = spawn_app().await;
    for role in [Role::Service, Role::Compliance] {
        let response = app
            .client
            .post(app.url("/v1/webhooks"))
            .bearer_auth(app.token(role, Some("x")))
            .json(&json!({"url": "http://127.0.0.1:9/"}))
            .send()
            .await
            .unwrap();
        problem(response, 403).await;
    }
    for (body, field) in [
        (
            json!({"url": "http://127.0.0.1:9/", "event_types": ["consent.nope"]}),
            "event_types",
        ),
        (
            json!({"url": "http://127.0.0.1:9/", "purpose": "nope"}),
            "purpose",
        ),
        (
            json!({"url": "http://127.0.0.1:9/", "data_category": "nope"}),
            "data_category",
        ),
    ] {
        let response = app
            .client
            .post(app.url("/v1/webhooks"))
            .bearer_auth(app.admin())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(invalid_fields(response).await, [field]);
    }
    let missing = app
        .client
        .get(app.url("/v1/webhooks/ep_nope"))
        .bearer_auth(app.admin())
        .send()
        .await
        .unwrap();
    problem(missing, 404).await;
    let types = app.get_json("/v1/webhooks/event-types", &app.admin()).await;
    assert!(types["event_types"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "subject.erased"));
}

const RECIPIENTS: &str = r#"
[[recipient]]
name = "mailer"
description = "E-mail provider"
purposes = ["marketing.email"]
data_categories = ["user.contact.email"]
webhook = "RECEIVER"
acknowledge = "delivery"

[[recipient]]
name = "ads"
description = "Ad platform"
purposes = ["advertising.targeted"]
data_categories = ["user.device"]
webhook = "RECEIVER"
acknowledge = "token"

[[recipient]]
name = "print_shop"
description = "Catalogue printer, told by post"
purposes = ["marketing"]
data_categories = ["user.contact.address"]
acknowledge = "token"
"#;

#[tokio::test]
async fn an_erasure_is_told_to_every_recipient_and_each_confirmation_is_recorded() {
    let receiver = Receiver::start();
    let app = spawn_app_with(TestOptions {
        recipients_toml: Some(RECIPIENTS.replace("RECEIVER", &receiver.url)),
        ..TestOptions::default()
    })
    .await;
    app.create_subject("eu-1", json!({"region": "DE"})).await;
    let filed: Value = app
        .client
        .post(app.url("/v1/dsar"))
        .bearer_auth(app.service())
        .json(&json!({"subject_id": "eu-1", "kind": "erasure"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let request = filed["id"].as_str().unwrap().to_owned();
    let officer = app.token(Role::Compliance, Some("officer"));
    for status in ["verified", "in_progress", "completed"] {
        let response = app
            .client
            .patch(app.url(&format!("/v1/dsar/{request}")))
            .bearer_auth(&officer)
            .json(&json!({"status": status}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{status}");
    }
    // Both webhook recipients hear of the completion (and every other change).
    let completion = |r: &crate::receiver::Received| {
        let body = r.json();
        body["type"] == "dsar.status_changed" && body["data"]["status"] == "completed"
    };
    let started = std::time::Instant::now();
    while receiver.accepted().iter().filter(|r| completion(r)).count() < 2 {
        assert!(started.elapsed() < WAIT, "{:?}", receiver.received());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let told: Vec<Value> = receiver
        .accepted()
        .iter()
        .filter(|r| completion(r))
        .map(|r| r.json())
        .collect();
    assert!(told
        .iter()
        .all(|t| t["data"]["kind"] == "erasure" && t["data"]["subject_id"] == "eu-1"));
    let with_token = told
        .iter()
        .find(|t| t["data"].get("acknowledgement").is_some())
        .expect("the token recipient is sent its token");
    assert_eq!(with_token["data"]["acknowledgement"]["recipient"], "ads");
    let token = with_token["data"]["acknowledgement"]["token"]
        .as_str()
        .unwrap();
    assert!(with_token["data"]["acknowledgement"]["url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/v1/dsar/{request}/acknowledgements")));

    let state = |notices: &Value| -> Vec<(String, String)> {
        notices["recipients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                (
                    n["recipient"].as_str().unwrap().into(),
                    n["state"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    // The receiver has answered; the sender records it a moment later.
    let started = std::time::Instant::now();
    let mut notices = app
        .get_json(&format!("/v1/dsar/{request}/recipients"), &officer)
        .await;
    while state(&notices)
        .iter()
        .filter(|(_, s)| s != "pending")
        .count()
        < 2
        && started.elapsed() < WAIT
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
        notices = app
            .get_json(&format!("/v1/dsar/{request}/recipients"), &officer)
            .await;
    }
    assert_eq!(
        state(&notices),
        [
            ("ads".into(), "told".into()),
            ("mailer".into(), "acknowledged".into()),
            ("print_shop".into(), "pending".into())
        ]
    );
    // The officer sees who has not confirmed.
    let recipients = app.get_json("/v1/recipients", &officer).await;
    let unconfirmed: Vec<(String, usize)> = recipients["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().into(),
                r["unconfirmed"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(
        unconfirmed,
        [
            ("mailer".into(), 0),
            ("ads".into(), 1),
            ("print_shop".into(), 1)
        ]
    );

    // A wrong token, or another recipient's, confirms nothing.
    let acknowledge = |recipient: &str, token: &str| {
        app.client
            .post(app.url(&format!("/v1/dsar/{request}/acknowledgements")))
            .json(&json!({"recipient": recipient, "token": token}))
            .send()
    };
    problem(acknowledge("ads", "0000").await.unwrap(), 404).await;
    problem(acknowledge("print_shop", token).await.unwrap(), 404).await;
    assert_eq!(acknowledge("ads", token).await.unwrap().status(), 204);
    assert_eq!(acknowledge("ads", token).await.unwrap().status(), 204);
    let notices = app
        .get_json(&format!("/v1/dsar/{request}/recipients"), &officer)
        .await;
    assert_eq!(state(&notices)[0], ("ads".into(), "acknowledged".into()));
    assert_eq!(notices["recipients"][0]["acknowledged_by"], "token");
    assert_eq!(app.audit_count("dsar.recipient_acknowledged").await, 2);
    assert_eq!(app.audit_count("dsar.recipient_told").await, 2);
}

#[tokio::test]
async fn an_expired_grant_is_announced_once() {
    let app = spawn_app().await;
    let receiver = Receiver::start();
    app.create_webhook(json!({"url": receiver.url, "event_types": ["consent.expired"]}))
        .await;
    app.create_subject("eu-1", json!({"region": "DE"})).await;
    // Analytics grants last 395 days (purposes.toml).
    app.put_consent("eu-1", "analytics", "granted").await;
    app.clock.advance(TimeDelta::days(396));
    let got = receiver.wait_for_accepted(1, WAIT).await;
    let body = got[0].json();
    assert_eq!(body["type"], "consent.expired");
    assert_eq!(body["data"]["subject_id"], "eu-1");
    assert_eq!(body["data"]["purpose"], "analytics");
    // Once: later rounds find nothing new; a new grant expires anew.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(receiver.received().len(), 1);
    assert_eq!(app.audit_count("consent.expired").await, 1);
}

#[tokio::test]
async fn a_change_sets_only_the_fields_it_names_and_null_clears_a_filter() {
    let app = spawn_app().await;
    let receiver = Receiver::start();
    let created = app
        .create_webhook(json!({
            "url": receiver.url,
            "description": "CRM sync",
            "event_types": ["consent.granted"],
            "purpose": "analytics",
        }))
        .await;
    let id = created["id"].as_str().unwrap();
    let changed = app
        .patch_webhook(
            id,
            json!({"description": "CRM sync, EU", "event_types": ["consent.denied"]}),
        )
        .await;
    assert_eq!(changed["description"], "CRM sync, EU");
    assert_eq!(changed["event_types"], json!(["consent.denied"]));
    assert_eq!(changed["purpose"], "analytics", "not named, so kept");
    assert_eq!(changed["url"], created["url"]);
    let cleared = app.patch_webhook(id, json!({"purpose": null})).await;
    assert!(cleared["purpose"].is_null(), "{cleared}");
    assert_eq!(cleared["description"], "CRM sync, EU");
}
