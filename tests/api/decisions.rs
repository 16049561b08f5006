use std::time::Duration;

use chrono::TimeDelta;
use consentry::auth::Role;
use serde_json::{json, Value};

use crate::helpers::{invalid_fields, problem, spawn_app, spawn_app_with, TestApp, TestOptions};

async fn decide(app: &TestApp, body: Value) -> Value {
    let response = app
        .client
        .post(app.url("/v1/decisions"))
        .bearer_auth(app.service())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{body}");
    response.json().await.unwrap()
}

async fn reason(app: &TestApp, body: Value) -> (String, String) {
    let d = decide(app, body).await;
    (
        d["decision"].as_str().unwrap().to_owned(),
        d["reason"].as_str().unwrap().to_owned(),
    )
}

fn r(decision: &str, reason: &str) -> (String, String) {
    (decision.to_owned(), reason.to_owned())
}

#[tokio::test]
async fn every_reason_code_is_reachable_through_the_api() {
    let app = spawn_app().await;
    app.create_subject("eu", json!({"region": "DE"})).await;
    app.create_subject("ca", json!({"region": "US-CA"})).await;
    app.create_subject("ca-signal", json!({"region": "US-CA"}))
        .await;
    app.create_subject("ca-gpc", json!({"region": "US-CA"}))
        .await;
    let d = |subject: &str, purpose: &str| json!({"subject_id": subject, "purpose": purpose});

    assert_eq!(
        reason(&app, d("eu", "analytics")).await,
        r("deny", "no_consent")
    );
    assert_eq!(
        reason(&app, d("eu", "essential")).await,
        r("allow", "notice_only")
    );
    assert_eq!(
        reason(&app, d("eu", "functional.service.improve")).await,
        r("allow", "legitimate_interest")
    );
    assert_eq!(
        reason(&app, d("ca", "sale_and_sharing")).await,
        r("allow", "not_opted_out")
    );

    app.put_consent("eu", "marketing", "granted").await;
    assert_eq!(
        reason(&app, d("eu", "marketing.email")).await,
        r("allow", "consent_granted")
    );
    app.put_consent("eu", "marketing.email", "denied").await;
    assert_eq!(
        reason(&app, d("eu", "marketing.email")).await,
        r("deny", "consent_denied")
    );
    app.put_consent("eu", "functional.service.improve", "denied")
        .await;
    assert_eq!(
        reason(&app, d("eu", "functional.service.improve")).await,
        r("deny", "objected")
    );

    let gpc = app
        .client
        .post(app.url("/v1/decisions"))
        .bearer_auth(app.service())
        .header("Sec-GPC", "1")
        .json(&d("ca-gpc", "advertising.targeted"))
        .send()
        .await
        .unwrap();
    let gpc: Value = gpc.json().await.unwrap();
    assert_eq!(gpc["reason"], "gpc_opt_out");
    assert_eq!(
        app.ledger("ca-gpc").await.len(),
        2,
        "the GPC opt-out was recorded"
    );
    assert_eq!(
        reason(&app, d("ca-gpc", "sale_and_sharing")).await,
        r("deny", "gpc_opt_out")
    );

    app.client
        .post(app.url("/v1/subjects/ca-signal/signals"))
        .bearer_auth(app.service())
        .json(&json!({"usp": "1YYN"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        reason(&app, d("ca-signal", "sale_and_sharing")).await,
        r("deny", "signal_opt_out")
    );

    app.put_consent("eu", "analytics", "granted").await;
    app.clock.advance(TimeDelta::days(400));
    assert_eq!(
        reason(&app, d("eu", "analytics")).await,
        r("deny", "consent_expired")
    );

    app.put_consent("eu", "personalize", "granted").await;
    let categories = json!({"subject_id": "eu", "purpose": "personalize", "data_categories": ["user.contact.email"]});
    assert_eq!(
        reason(&app, categories).await,
        r("deny", "category_not_declared")
    );
    let declared = json!({"subject_id": "eu", "purpose": "personalize", "data_categories": ["user.behavior.browsing_history"]});
    assert_eq!(reason(&app, declared).await, r("allow", "consent_granted"));

    app.put_json(
        "/v1/subjects/eu/preferences",
        &app.service(),
        &json!({"channels": {"email": {"opted_in": false}}}),
    )
    .send()
    .await
    .unwrap();
    let email = json!({"subject_id": "eu", "purpose": "marketing", "channel": "email"});
    assert_eq!(reason(&app, email).await, r("deny", "channel_opted_out"));
    let push = json!({"subject_id": "eu", "purpose": "marketing", "channel": "push"});
    assert_eq!(reason(&app, push).await, r("allow", "consent_granted"));
}

#[tokio::test]
async fn reconsent_is_required_after_a_version_bump() {
    // A grant recorded under version 0 of a purpose now at version 1.
    let app = spawn_app().await;
    app.create_subject("old", json!({"region": "DE"})).await;
    app.put_consent("old", "analytics", "granted").await;
    app.app_db
        .run(|conn| {
            use consentry::storage::schema::consent_states::dsl::*;
            use diesel::prelude::*;
            diesel::update(consent_states.filter(subject_id.eq("old")))
                .set(purpose_version.eq(0))
                .execute(conn)
                .map_err(consentry::storage::StorageError::from)
        })
        .await
        .unwrap();
    // The cache still holds the version-1 grant: a change made behind the service's back
    // is only seen after an invalidation, which a subject update gives.
    app.put_json("/v1/subjects/old", &app.service(), &json!({"region": "DE"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        reason(&app, json!({"subject_id": "old", "purpose": "analytics"})).await,
        r("deny", "reconsent_required")
    );
}

#[tokio::test]
async fn a_withdrawal_is_honoured_by_the_very_next_decision() {
    let app = spawn_app().await;
    app.create_subject("w", json!({"region": "DE"})).await;
    let body = json!({"subject_id": "w", "purpose": "marketing.email"});
    for round in 0..20 {
        app.put_consent("w", "marketing.email", "granted").await;
        assert_eq!(
            reason(&app, body.clone()).await,
            r("allow", "consent_granted"),
            "round {round}"
        );
        app.put_consent("w", "marketing.email", "denied").await;
        assert_eq!(
            reason(&app, body.clone()).await,
            r("deny", "consent_denied"),
            "round {round}"
        );
    }
    // Preference and subject changes invalidate too.
    app.put_consent("w", "marketing", "granted").await;
    let email = json!({"subject_id": "w", "purpose": "marketing", "channel": "email"});
    assert_eq!(
        reason(&app, email.clone()).await,
        r("allow", "consent_granted")
    );
    app.put_json(
        "/v1/subjects/w/preferences",
        &app.service(),
        &json!({"channels": {"email": {"opted_in": false}}}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(reason(&app, email).await, r("deny", "channel_opted_out"));
    app.create_subject("moves", json!({"region": "US-CA"}))
        .await;
    let sale = json!({"subject_id": "moves", "purpose": "sale_and_sharing"});
    assert_eq!(
        reason(&app, sale.clone()).await,
        r("allow", "not_opted_out")
    );
    app.put_json(
        "/v1/subjects/moves",
        &app.service(),
        &json!({"region": "FR"}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(reason(&app, sale).await, r("deny", "no_consent"));
}

#[tokio::test]
async fn an_unknown_subject_is_decided_by_the_default_jurisdiction() {
    let app = spawn_app().await;
    let d = decide(
        &app,
        json!({"subject_id": "never-seen", "purpose": "analytics"}),
    )
    .await;
    assert_eq!(
        (d["decision"].as_str(), d["reason"].as_str()),
        (Some("deny"), Some("no_consent"))
    );
    assert_eq!(d["subject_known"], false);
    assert_eq!(d["jurisdiction"], "default");
    // Creating the subject invalidates the cached absence.
    app.create_subject("never-seen", json!({"region": "US-CA"}))
        .await;
    let d = decide(
        &app,
        json!({"subject_id": "never-seen", "purpose": "analytics"}),
    )
    .await;
    assert_eq!(
        (d["decision"].as_str(), d["subject_known"].as_bool()),
        (Some("allow"), Some(true))
    );
}

#[tokio::test]
async fn signed_decisions_verify_with_the_jwks_alone() {
    let app = spawn_app().await;
    app.create_subject("t", json!({"region": "DE"})).await;
    app.put_consent("t", "analytics", "granted").await;
    let d = decide(
        &app,
        json!({"subject_id": "t", "purpose": "analytics", "token": true}),
    )
    .await;
    let token = d["token"].as_str().unwrap();
    let jwks: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap();
    let key = jsonwebtoken::DecodingKey::from_ed_components(jwk["x"].as_str().unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.validate_exp = false;
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["sub"], "t");
    assert_eq!(claims["purpose"], "analytics");
    assert_eq!(claims["decision"], "allow");
    assert_eq!(claims["reason"], "consent_granted");
    assert_eq!(claims["policy_version"], d["policy_version"]);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );
    assert!(claims["jti"].is_string());
    let without = decide(&app, json!({"subject_id": "t", "purpose": "analytics"})).await;
    assert!(without.get("token").is_none());
}

#[tokio::test]
async fn batches_answer_in_order_and_name_bad_items() {
    let app = spawn_app().await;
    app.create_subject("b1", json!({"region": "DE"})).await;
    app.put_consent("b1", "analytics", "granted").await;
    let post = |body: Value| {
        app.client
            .post(app.url("/v1/decisions/batch"))
            .bearer_auth(app.service())
            .json(&body)
            .send()
    };
    let response = post(json!({"items": [
        {"subject_id": "b1", "purpose": "analytics"},
        {"subject_id": "b1", "purpose": "marketing"},
        {"subject_id": "b2", "purpose": "essential", "token": true},
        {"subject_id": "b1", "purpose": "analytics", "channel": "email"}
    ]}))
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let results: Vec<(&str, &str)> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["purpose"].as_str().unwrap(),
                d["decision"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        results,
        [
            ("analytics", "allow"),
            ("marketing", "deny"),
            ("essential", "allow"),
            ("analytics", "allow")
        ]
    );
    assert!(body["results"][2]["token"].is_string());
    assert_eq!(body["results"][2]["subject_known"], false);

    let many: Vec<Value> = (0..1000)
        .map(|i| json!({"subject_id": format!("s{}", i % 37), "purpose": "analytics"}))
        .collect();
    let response = post(json!({"items": many})).await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["results"].as_array().unwrap().len(), 1000);

    let too_many: Vec<Value> = (0..1001)
        .map(|_| json!({"subject_id": "b1", "purpose": "analytics"}))
        .collect();
    assert_eq!(
        invalid_fields(post(json!({"items": too_many})).await.unwrap()).await,
        ["items"]
    );
    assert_eq!(
        invalid_fields(post(json!({"items": []})).await.unwrap()).await,
        ["items"]
    );
    let bad = post(json!({"items": [
        {"subject_id": "b1", "purpose": "analytics"},
        {"subject_id": "b1", "purpose": "nope"},
        {"subject_id": "", "purpose": "analytics", "channel": "fax"},
        {"subject_id": "b1", "purpose": "analytics", "data_categories": ["user.unknown"]}
    ]}))
    .await
    .unwrap();
    assert_eq!(
        invalid_fields(bad).await,
        [
            "items[1].purpose",
            "items[2].subject_id",
            "items[2].channel",
            "items[3].data_categories[0]"
        ]
    );
}

#[tokio::test]
async fn bad_single_requests_are_422_never_a_silent_decision() {
    let app = spawn_app().await;
    let post = |body: Value| {
        app.client
            .post(app.url("/v1/decisions"))
            .bearer_auth(app.service())
            .json(&body)
            .send()
    };
    for (body, fields) in [
        (
            json!({"subject_id": "x", "purpose": "nope"}),
            vec!["purpose"],
        ),
        (
            json!({"subject_id": "x", "purpose": "analytics", "channel": "fax"}),
            vec!["channel"],
        ),
        (json!({"subject_id": "x"}), vec!["purpose"]),
        (
            json!({"subject_id": "x", "purpose": "analytics", "extra": 1}),
            vec!["extra"],
        ),
        (
            json!({"subject_id": "x".repeat(200), "purpose": "analytics"}),
            vec!["subject_id"],
        ),
    ] {
        assert_eq!(
            invalid_fields(post(body.clone()).await.unwrap()).await,
            fields,
            "{body}"
        );
    }
    let subject = app.token(Role::Subject, Some("x"));
    let response = app
        .client
        .post(app.url("/v1/decisions"))
        .bearer_auth(subject)
        .json(&json!({"subject_id": "x", "purpose": "analytics"}))
        .send()
        .await
        .unwrap();
    problem(response, 403).await;
}

#[tokio::test]
async fn cached_subjects_are_decided_without_the_database_and_the_rest_fail_closed() {
    let app = spawn_app_with(TestOptions {
        db_timeout: Duration::from_millis(1500),
        ..Default::default()
    })
    .await;
    app.create_subject("cached", json!({"region": "DE"})).await;
    app.put_consent("cached", "analytics", "granted").await;
    // On PostgreSQL the instance also hears its own change notifications; let them pass
    // before filling the cache.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        reason(
            &app,
            json!({"subject_id": "cached", "purpose": "analytics"})
        )
        .await,
        r("allow", "consent_granted")
    );

    // Hold every pooled connection: the database is out of reach for the app.
    let mut holders = Vec::new();
    for _ in 0..4 {
        let db = app.app_db.clone();
        holders.push(tokio::spawn(async move {
            db.run(|_conn| {
                std::thread::sleep(Duration::from_secs(5));
                Ok::<_, consentry::storage::StorageError>(())
            })
            .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        reason(
            &app,
            json!({"subject_id": "cached", "purpose": "analytics"})
        )
        .await,
        r("allow", "consent_granted")
    );
    let response = app
        .client
        .post(app.url("/v1/decisions"))
        .bearer_auth(app.service())
        .json(&json!({"subject_id": "cold", "purpose": "essential"}))
        .send()
        .await
        .unwrap();
    let body = problem(response, 503).await;
    assert!(
        body["detail"].as_str().unwrap().contains("unavailable"),
        "{body}"
    );
    for holder in holders {
        holder.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn decisions_are_counted_in_metrics() {
    let app = spawn_app().await;
    decide(&app, json!({"subject_id": "m", "purpose": "analytics"})).await;
    decide(&app, json!({"subject_id": "m", "purpose": "analytics"})).await;
    let text = app.metrics().await;
    assert!(text.contains(r#"consentry_decisions_total{decision="deny",purpose="analytics",reason="no_consent"} 2"#), "{text}");
    assert!(
        text.contains("consentry_decision_cache_hits_total 1"),
        "{text}"
    );
    assert!(
        text.contains("consentry_decision_cache_misses_total 1"),
        "{text}"
    );
}

async fn logged(app: &TestApp) -> Vec<(String, String, String)> {
    app.app_db
        .run(|conn| {
            use consentry::storage::schema::decision_log::dsl::*;
            use diesel::prelude::*;
            decision_log
                .order(id.asc())
                .select((subject_pseudonym, purpose, reason))
                .load::<(String, String, String)>(conn)
                .map_err(consentry::storage::StorageError::from)
        })
        .await
        .unwrap()
}

async fn wait_for_log(
    app: &TestApp,
    done: impl Fn(&[(String, String, String)]) -> bool,
) -> Vec<(String, String, String)> {
    for _ in 0..100 {
        let found = logged(app).await;
        if done(&found) {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    logged(app).await
}

#[tokio::test]
async fn sampled_decisions_are_logged_under_a_pseudonym_and_expire() {
    let app = spawn_app_with(TestOptions {
        decision_log_sample: 1.0,
        ..Default::default()
    })
    .await;
    decide(
        &app,
        json!({"subject_id": "logged-person", "purpose": "analytics"}),
    )
    .await;
    let rows = wait_for_log(&app, |rows| rows.len() == 1).await;
    assert_eq!(rows.len(), 1);
    let (pseudonym, purpose, reason) = &rows[0];
    assert_eq!(
        (purpose.as_str(), reason.as_str()),
        ("analytics", "no_consent")
    );
    assert_eq!(pseudonym.len(), 64);
    assert!(!pseudonym.contains("logged-person"));
    // The audit log's pseudonym: the two can be read side by side.
    let pseudonyms = std::sync::Arc::new(
        consentry::audit::Pseudonymizer::load_or_generate(&app.data_dir, None).unwrap(),
    );
    assert_eq!(*pseudonym, pseudonyms.of("logged-person"));

    // Past the 30 days of retention, the retention run deletes the old row.
    app.clock.advance(TimeDelta::days(31));
    decide(
        &app,
        json!({"subject_id": "logged-person", "purpose": "marketing"}),
    )
    .await;
    wait_for_log(&app, |rows| rows.len() == 2).await;
    let retention = consentry::policy::load(&crate::helpers::policies_dir())
        .unwrap()
        .retention;
    let now = consentry::clock::Clock::now(&app.clock);
    let report = app
        .app_db
        .run(move |conn| consentry::dsar::retention::run(conn, &retention, &pseudonyms, now))
        .await
        .unwrap();
    assert_eq!(report.decisions_deleted, 1);
    let rows = wait_for_log(&app, |rows| {
        rows.iter().all(|r| r.1 == "marketing") && !rows.is_empty()
    })
    .await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].1, "marketing");
    assert_eq!(
        rows[0].0, *pseudonym,
        "the same subject, the same pseudonym"
    );
}

#[tokio::test]
async fn without_sampling_nothing_is_logged() {
    let app = spawn_app().await;
    decide(&app, json!({"subject_id": "quiet", "purpose": "analytics"})).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(logged(&app).await.is_empty());
}

#[tokio::test]
async fn a_prohibited_purpose_is_denied_whatever_the_records() {
    // A company that forbids selling data of Californians, whatever they say.
    let edit = (
        r#"opt_out_signals = ["sale", "sharing"]
consent_ttl_days = 395
basis = { eea = "opt_in", uk = "opt_in", us_ca = "opt_out""#
            .to_string(),
        r#"opt_out_signals = ["sale", "sharing"]
consent_ttl_days = 395
basis = { eea = "opt_in", uk = "opt_in", us_ca = "prohibited""#
            .to_string(),
    );
    let app = spawn_app_with(TestOptions {
        purposes_edit: vec![edit],
        ..Default::default()
    })
    .await;
    app.create_subject("ca", json!({"region": "US-CA"})).await;
    app.put_consent("ca", "sale_and_sharing", "granted").await;
    let d = decide(
        &app,
        json!({"subject_id": "ca", "purpose": "sale_and_sharing"}),
    )
    .await;
    assert_eq!(
        (
            d["decision"].as_str(),
            d["reason"].as_str(),
            d["basis"].as_str()
        ),
        (Some("deny"), Some("prohibited"), Some("prohibited"))
    );
}
