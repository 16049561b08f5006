use serde_json::{json, Value};

use crate::helpers::{effect, invalid_fields, pair, spawn_app, TestApp};

async fn post_signals(app: &TestApp, subject: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/v1/subjects/{subject}/signals")))
        .bearer_auth(app.service())
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_us_privacy_opt_out_withdraws_sale() {
    let app = spawn_app().await;
    app.create_subject("ca-usp", json!({"region": "US-CA"}))
        .await;
    let response = post_signals(&app, "ca-usp", json!({"usp": "1YYN"})).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["usp"]["sale"], true);
    assert_eq!(body["recorded"].as_array().unwrap().len(), 1);
    assert_eq!(body["recorded"][0]["purpose"], "sale_and_sharing");
    let consents = app.consents("ca-usp").await;
    assert_eq!(
        effect(&consents, "sale_and_sharing"),
        pair("deny", "signal_opt_out")
    );
    assert_eq!(
        effect(&consents, "advertising.targeted"),
        pair("allow", "not_opted_out")
    );

    // The same signal again records nothing new.
    let again: Value = post_signals(&app, "ca-usp", json!({"usp": "1YYN"}))
        .await
        .json()
        .await
        .unwrap();
    assert!(again["recorded"].as_array().unwrap().is_empty());
    // A string that does not opt out records nothing.
    app.create_subject("ca-usp-no", json!({"region": "US-CA"}))
        .await;
    let none: Value = post_signals(&app, "ca-usp-no", json!({"usp": "1YNN"}))
        .await
        .json()
        .await
        .unwrap();
    assert!(none["recorded"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn gpp_usnat_opt_outs_and_its_gpc_flag() {
    let app = spawn_app().await;
    app.create_subject("us-gpp", json!({"region": "US-VA"}))
        .await;
    let body: Value = post_signals(&app, "us-gpp", json!({"gpp": "DBABLA~BVVVVVVVVWA.YA"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["gpp"]["sections"], json!(["usnat"]));
    assert_eq!(
        (
            body["gpp"]["sale"].as_bool(),
            body["gpp"]["targeted_advertising"].as_bool(),
            body["gpp"]["gpc"].as_bool()
        ),
        (Some(true), Some(true), Some(true))
    );
    let consents = app.consents("us-gpp").await;
    assert_eq!(
        effect(&consents, "sale_and_sharing"),
        pair("deny", "signal_opt_out")
    );
    assert_eq!(
        effect(&consents, "advertising.targeted"),
        pair("deny", "signal_opt_out")
    );
    assert_eq!(
        effect(&consents, "analytics"),
        pair("allow", "not_opted_out")
    );
    let ledger = app.ledger("us-gpp").await;
    assert!(ledger.iter().all(|r| r["source"] == "gpp"), "{ledger:?}");

    app.create_subject("ca-gpp", json!({"region": "US-CA"}))
        .await;
    let body: Value = post_signals(&app, "ca-gpp", json!({"gpp": "DBABBg~BVqqqqpY.YA"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["gpp"]["sale"], false);
    assert_eq!(body["gpp"]["gpc"], true);
    let consents = app.consents("ca-gpp").await;
    assert_eq!(
        effect(&consents, "sale_and_sharing"),
        pair("deny", "signal_opt_out")
    );
}

#[tokio::test]
async fn a_gpc_flag_in_the_body_is_recorded_as_gpc() {
    let app = spawn_app().await;
    app.create_subject("ca-flag", json!({"region": "US-CA"}))
        .await;
    let body: Value = post_signals(&app, "ca-flag", json!({"gpc": true}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["recorded"].as_array().unwrap().len(), 2);
    assert_eq!(
        effect(&app.consents("ca-flag").await, "advertising.targeted"),
        pair("deny", "gpc_opt_out")
    );
}

#[tokio::test]
async fn a_malformed_string_records_nothing() {
    let app = spawn_app().await;
    app.create_subject("ca-bad", json!({"region": "US-CA"}))
        .await;
    for (body, fields) in [
        (json!({"usp": "1YY"}), vec!["usp"]),
        (json!({"usp": "2YYN"}), vec!["usp"]),
        (json!({"gpp": "not-gpp"}), vec!["gpp"]),
        (json!({"gpp": "DBABLA~"}), vec!["gpp"]),
        (json!({"usp": "1YYN", "gpp": "DBABLA~!!"}), vec!["gpp"]),
        (
            json!({"usp": "zzzz", "gpp": "DBABLA~!!"}),
            vec!["usp", "gpp"],
        ),
        (json!({}), vec!["body"]),
        (json!({"tcf": "CP..."}), vec!["tcf"]),
    ] {
        let response = post_signals(&app, "ca-bad", body.clone()).await;
        assert_eq!(invalid_fields(response).await, fields, "{body}");
    }
    assert!(app.ledger("ca-bad").await.is_empty());
}

#[tokio::test]
async fn strings_the_iab_library_refuses_are_422_and_record_nothing() {
    let app = spawn_app().await;
    app.create_subject("ca-strict", json!({"region": "US-CA"}))
        .await;
    for (body, field) in [
        // A usnat section with `+`, outside base64url: it used to be read as opt-outs.
        (json!({"gpp": "DBABLA~CVVVkkkkkpFY+YA"}), "gpp"),
        // A uspv1 section of five characters.
        (json!({"gpp": "DBABTA~1YNNN"}), "gpp"),
        (json!({"usp": "1YNNN"}), "usp"),
        (json!({"usp": "1XYZ"}), "usp"),
    ] {
        let response = post_signals(&app, "ca-strict", body.clone()).await;
        assert_eq!(response.status(), 422, "{body}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{body}"
        );
        let problem: Value = response.json().await.unwrap();
        let errors = problem["errors"].as_array().expect("errors");
        assert_eq!(errors.len(), 1, "{problem}");
        assert_eq!(errors[0]["field"], field, "{problem}");
        assert!(
            errors[0]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{problem}"
        );
    }
    assert!(app.ledger("ca-strict").await.is_empty());
    assert_eq!(
        effect(&app.consents("ca-strict").await, "sale_and_sharing"),
        pair("allow", "not_opted_out")
    );
}

#[tokio::test]
async fn a_gpp_string_with_only_tcf_is_accepted_and_records_nothing() {
    let app = spawn_app().await;
    app.create_subject("eu-tcf", json!({"region": "US-CA"}))
        .await;
    let response = post_signals(
        &app,
        "eu-tcf",
        json!({"gpp": "DBABM~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["gpp"]["sections"], json!([]));
    assert_eq!(body["gpp"]["ignored_sections"], json!(["tcfeuv2"]));
    assert!(body["recorded"].as_array().unwrap().is_empty());
    let notes = body["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{body}");
    assert!(
        notes[0].as_str().unwrap().contains("tcfeuv2")
            && notes[0].as_str().unwrap().contains("nothing was recorded"),
        "{body}"
    );
    assert!(app.ledger("eu-tcf").await.is_empty());
}

#[tokio::test]
async fn a_valid_usnat_opt_out_is_still_recorded() {
    let app = spawn_app().await;
    app.create_subject("us-usnat", json!({"region": "US-CA"}))
        .await;
    // usnat v2, opted out of sale, sharing and targeted advertising (written by the IAB
    // library).
    let body: Value = post_signals(&app, "us-usnat", json!({"gpp": "DBABLA~CFQVAAAAAABA"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["gpp"]["sections"], json!(["usnat"]), "{body}");
    assert_eq!(body["gpp"]["sale"], true);
    assert!(body["notes"].as_array().unwrap().is_empty());
    assert_eq!(body["recorded"].as_array().unwrap().len(), 2, "{body}");
    let consents = app.consents("us-usnat").await;
    assert_eq!(
        effect(&consents, "sale_and_sharing"),
        pair("deny", "signal_opt_out")
    );
    assert_eq!(
        effect(&consents, "advertising.targeted"),
        pair("deny", "signal_opt_out")
    );
}
