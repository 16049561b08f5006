use chrono::TimeDelta;
use consentry::auth::Role;
use serde_json::{json, Value};

use crate::helpers::{
    effect, invalid_fields, notice_digest, pair, problem, spawn_app, spawn_app_with, TestApp,
    TestOptions,
};

#[tokio::test]
async fn a_grant_is_recorded_with_its_evidence_and_read_back_effective() {
    let app = spawn_app().await;
    app.create_subject("eu-1", json!({"region": "DE"})).await;
    let digest = notice_digest("en");
    let response = app
        .client
        .put(app.url("/v1/subjects/eu-1/consents/marketing.email"))
        .bearer_auth(app.service())
        .header("User-Agent", "ShopApp/5.1 (iPhone)")
        .json(&json!({"status": "granted", "source": "portal", "notice_digest": digest.to_uppercase()}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let written: Value = response.json().await.unwrap();
    assert_eq!(written["purpose"], "marketing.email");
    assert_eq!(
        (written["effective"].as_str(), written["reason"].as_str()),
        (Some("allow"), Some("consent_granted"))
    );
    assert_eq!(written["notice_digest"], digest);
    assert_eq!(
        written["expires_at"], "2028-11-22T12:00:00Z",
        "730 days of consent_ttl_days"
    );

    let consents = app.consents("eu-1").await;
    assert_eq!(
        effect(&consents, "marketing.email"),
        pair("allow", "consent_granted")
    );
    assert_eq!(
        consents["marketing.email"]["record_id"],
        written["record_id"]
    );
    assert_eq!(consents["marketing.email"]["basis"], "opt_in");
    assert_eq!(consents["marketing.email"]["jurisdiction"], "eea");
    assert_eq!(
        effect(&consents, "marketing.sms"),
        pair("deny", "no_consent")
    );
    assert_eq!(effect(&consents, "marketing"), pair("deny", "no_consent"));
    assert_eq!(effect(&consents, "essential"), pair("allow", "notice_only"));
    assert_eq!(
        effect(&consents, "functional.service.improve"),
        pair("allow", "legitimate_interest")
    );
    assert_eq!(consents["analytics"]["status"], Value::Null);

    let ledger = app.ledger("eu-1").await;
    assert_eq!(ledger.len(), 1);
    let record = &ledger[0];
    assert_eq!(record["id"], written["record_id"]);
    assert_eq!(
        (
            record["source"].as_str(),
            record["purpose_version"].as_u64()
        ),
        (Some("portal"), Some(1))
    );
    assert_eq!(
        record["actor"],
        json!({"role": "service", "id": "recommendations"})
    );
    assert_eq!(record["user_agent"], "ShopApp/5.1 (iPhone)");
    let ip_hash = record["ip_hash"].as_str().unwrap();
    assert!(ip_hash.len() == 64 && !ip_hash.contains("127.0.0.1"));
    assert_eq!(app.audit_count("consent.granted").await, 1);
}

#[tokio::test]
async fn the_most_specific_record_wins_and_withdrawal_is_immediate() {
    let app = spawn_app().await;
    app.create_subject("eu-2", json!({"region": "FR"})).await;
    app.put_consent("eu-2", "marketing", "granted").await;
    let consents = app.consents("eu-2").await;
    assert_eq!(
        effect(&consents, "marketing.push"),
        pair("allow", "consent_granted")
    );
    assert_eq!(consents["marketing.push"]["inherited_from"], "marketing");

    app.put_consent("eu-2", "marketing.push", "denied").await;
    let consents = app.consents("eu-2").await;
    assert_eq!(
        effect(&consents, "marketing.push"),
        pair("deny", "consent_denied")
    );
    assert_eq!(consents["marketing.push"]["inherited_from"], Value::Null);
    assert_eq!(
        effect(&consents, "marketing.email"),
        pair("allow", "consent_granted")
    );

    app.put_consent("eu-2", "marketing", "denied").await;
    let consents = app.consents("eu-2").await;
    assert_eq!(
        effect(&consents, "marketing.email"),
        pair("deny", "consent_denied")
    );
    let ledger = app.ledger("eu-2").await;
    let order: Vec<(&str, &str)> = ledger
        .iter()
        .map(|r| {
            (
                r["purpose"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        order,
        [
            ("marketing", "denied"),
            ("marketing.push", "denied"),
            ("marketing", "granted")
        ]
    );
}

#[tokio::test]
async fn consents_expire_by_the_clock() {
    let app = spawn_app().await;
    app.create_subject("eu-3", json!({"region": "IT"})).await;
    app.put_consent("eu-3", "analytics", "granted").await;
    app.clock.advance(TimeDelta::days(394));
    assert_eq!(
        effect(&app.consents("eu-3").await, "analytics"),
        pair("allow", "consent_granted")
    );
    app.clock.advance(TimeDelta::days(2));
    assert_eq!(
        effect(&app.consents("eu-3").await, "analytics"),
        pair("deny", "consent_expired")
    );
}

#[tokio::test]
async fn california_opt_out_and_minors() {
    let app = spawn_app().await;
    app.create_subject("ca-adult", json!({"region": "US-CA", "birth_year": 1990}))
        .await;
    app.create_subject("ca-minor", json!({"region": "US-CA", "birth_year": 2012}))
        .await;
    let adult = app.consents("ca-adult").await;
    assert_eq!(
        effect(&adult, "sale_and_sharing"),
        pair("allow", "not_opted_out")
    );
    assert_eq!(adult["sale_and_sharing"]["basis"], "opt_out");
    assert_eq!(effect(&adult, "marketing.sms"), pair("deny", "no_consent"));
    let minor = app.consents("ca-minor").await;
    assert_eq!(
        effect(&minor, "sale_and_sharing"),
        pair("deny", "no_consent")
    );
    assert_eq!(minor["sale_and_sharing"]["basis"], "opt_in");
    assert_eq!(effect(&minor, "analytics"), pair("allow", "not_opted_out"));

    app.put_consent("ca-adult", "sale_and_sharing", "denied")
        .await;
    assert_eq!(
        effect(&app.consents("ca-adult").await, "sale_and_sharing"),
        pair("deny", "consent_denied")
    );
}

#[tokio::test]
async fn notice_only_cannot_be_denied_and_stale_notices_are_refused() {
    let app = spawn_app().await;
    app.create_subject("eu-4", json!({"region": "DE", "locale": "ar"}))
        .await;
    let response = app.put_consent("eu-4", "essential", "denied").await;
    let body = problem(response, 409).await;
    assert_eq!(body["purpose"], "essential");

    let stale = "0".repeat(64);
    let response = app
        .put_json(
            "/v1/subjects/eu-4/consents/analytics",
            &app.service(),
            &json!({"status": "granted", "source": "portal", "notice_digest": stale}),
        )
        .send()
        .await
        .unwrap();
    let body = problem(response, 409).await;
    assert_eq!(
        body["current_notice_digest"],
        notice_digest("ar"),
        "the subject reads Arabic"
    );
    assert_eq!(body["current_notice_digests"]["en"], notice_digest("en"));
    assert!(app.ledger("eu-4").await.is_empty(), "nothing was recorded");

    // Granting notice-only is pointless but harmless.
    assert_eq!(
        app.put_consent("eu-4", "essential", "granted")
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn each_bad_field_is_named() {
    let app = spawn_app().await;
    app.create_subject("eu-5", json!({"region": "DE"})).await;
    let token = app.service();
    let cases = [
        (
            "analytics",
            json!({"status": "maybe", "source": "api"}),
            "status",
        ),
        (
            "analytics",
            json!({"status": "granted", "source": "gpc"}),
            "source",
        ),
        ("analytics", json!({"status": "granted"}), "source"),
        (
            "analytics",
            json!({"status": "granted", "source": "api", "notice_digest": "abc"}),
            "notice_digest",
        ),
        (
            "analytics",
            json!({"status": "granted", "source": "api", "why": "x"}),
            "why",
        ),
        (
            "not.a.purpose",
            json!({"status": "granted", "source": "api"}),
            "purpose",
        ),
    ];
    for (purpose, body, field) in cases {
        let response = app
            .put_json(
                &format!("/v1/subjects/eu-5/consents/{purpose}"),
                &token,
                &body,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(invalid_fields(response).await, [field], "{body}");
    }
    problem(app.put_consent("nobody", "analytics", "granted").await, 404).await;
}

#[tokio::test]
async fn batch_writes_are_all_or_nothing() {
    let app = spawn_app().await;
    app.create_subject("eu-6", json!({"region": "DE"})).await;
    let token = app.service();
    let url = "/v1/subjects/eu-6/consents";
    let post = |body: Value| {
        app.client
            .post(app.url(url))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };

    let refused = post(json!({"consents": [
        {"purpose": "analytics", "status": "granted", "source": "portal"},
        {"purpose": "essential", "status": "denied", "source": "portal"}
    ]}))
    .await
    .unwrap();
    problem(refused, 409).await;
    let unknown = post(json!({"consents": [
        {"purpose": "analytics", "status": "granted", "source": "portal"},
        {"purpose": "nope", "status": "denied", "source": "portal"}
    ]}))
    .await
    .unwrap();
    assert_eq!(invalid_fields(unknown).await, ["consents[1].purpose"]);
    let duplicate = post(json!({"consents": [
        {"purpose": "analytics", "status": "granted", "source": "portal"},
        {"purpose": "analytics", "status": "denied", "source": "portal"}
    ]}))
    .await
    .unwrap();
    assert_eq!(invalid_fields(duplicate).await, ["consents[1].purpose"]);
    assert_eq!(
        invalid_fields(post(json!({"consents": []})).await.unwrap()).await,
        ["consents"]
    );
    assert!(app.ledger("eu-6").await.is_empty());

    let ok = post(json!({"consents": [
        {"purpose": "personalize.content", "status": "granted", "source": "portal"},
        {"purpose": "analytics", "status": "denied", "source": "portal"}
    ]}))
    .await
    .unwrap();
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    let purposes: Vec<&str> = body["consents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["purpose"].as_str().unwrap())
        .collect();
    assert_eq!(purposes, ["personalize.content", "analytics"]);
    assert_eq!(app.ledger("eu-6").await.len(), 2);
}

#[tokio::test]
async fn gpc_is_recorded_once_and_a_later_grant_stands() {
    let app = spawn_app().await;
    app.create_subject("ca-gpc", json!({"region": "US-CA"}))
        .await;
    let with_gpc = || {
        app.get("/v1/subjects/ca-gpc/consents", &app.service())
            .header("Sec-GPC", "1")
    };
    let list: Value = with_gpc().send().await.unwrap().json().await.unwrap();
    let reason = |list: &Value, purpose: &str| {
        list["consents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["purpose"] == purpose)
            .unwrap()["reason"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(reason(&list, "sale_and_sharing"), "gpc_opt_out");
    assert_eq!(reason(&list, "advertising.targeted"), "gpc_opt_out");
    assert_eq!(reason(&list, "analytics"), "not_opted_out");
    let ledger = app.ledger("ca-gpc").await;
    assert_eq!(ledger.len(), 2);
    assert!(ledger
        .iter()
        .all(|r| r["source"] == "gpc" && r["status"] == "denied"));

    with_gpc().send().await.unwrap();
    assert_eq!(app.ledger("ca-gpc").await.len(), 2, "recorded once");

    app.put_consent("ca-gpc", "sale_and_sharing", "granted")
        .await;
    let list: Value = with_gpc().send().await.unwrap().json().await.unwrap();
    assert_eq!(reason(&list, "sale_and_sharing"), "consent_granted");
    assert_eq!(app.ledger("ca-gpc").await.len(), 3);

    // Without the header nothing is recorded.
    app.create_subject("ca-plain", json!({"region": "US-CA"}))
        .await;
    app.consents("ca-plain").await;
    assert!(app.ledger("ca-plain").await.is_empty());
    // A write carrying GPC records it too.
    let response = app
        .put_json(
            "/v1/subjects/ca-plain/consents/analytics",
            &app.service(),
            &json!({"status": "granted", "source": "api"}),
        )
        .header("Sec-GPC", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(app.ledger("ca-plain").await.len(), 3);
}

#[tokio::test]
async fn who_may_read_and_write() {
    let app = spawn_app().await;
    app.create_subject("alice", json!({"region": "DE"})).await;
    app.create_subject("bob", json!({"region": "DE"})).await;
    let alice = app.token(Role::Subject, Some("alice"));
    let compliance = app.token(Role::Compliance, Some("officer"));
    let admin = app.token(Role::Admin, Some("ops"));
    let body = json!({"status": "granted", "source": "portal"});

    let own = app
        .put_json("/v1/subjects/alice/consents/analytics", &alice, &body)
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    assert_eq!(
        app.get("/v1/subjects/alice/consents", &alice)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        app.get("/v1/subjects/alice/consents/history", &alice)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let other = app
        .put_json("/v1/subjects/bob/consents/analytics", &alice, &body)
        .send()
        .await
        .unwrap();
    let missing = app
        .put_json("/v1/subjects/nobody/consents/analytics", &alice, &body)
        .send()
        .await
        .unwrap();
    assert_eq!(problem(other, 404).await, problem(missing, 404).await);
    for path in [
        "/v1/subjects/bob/consents",
        "/v1/subjects/bob/consents/history",
        "/v1/subjects/bob/consents/analytics/receipt",
    ] {
        problem(app.get(path, &alice).send().await.unwrap(), 404).await;
    }
    assert!(app.ledger("bob").await.is_empty());

    problem(
        app.put_json("/v1/subjects/alice/consents/analytics", &compliance, &body)
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
    problem(
        app.put_json("/v1/subjects/alice/consents/analytics", &admin, &body)
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
    assert_eq!(
        app.get("/v1/subjects/alice/consents", &compliance)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    problem(
        app.get("/v1/subjects/alice/consents/history", &app.service())
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
}

#[tokio::test]
async fn history_pages_by_cursor() {
    let app = spawn_app().await;
    app.create_subject("eu-7", json!({"region": "DE"})).await;
    for status in ["granted", "denied", "granted", "denied", "granted"] {
        app.put_consent("eu-7", "analytics", status).await;
    }
    app.put_consent("eu-7", "marketing", "granted").await;
    let token = app.token(Role::Compliance, Some("officer"));
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => {
                format!("/v1/subjects/eu-7/consents/history?purpose=analytics&limit=2&cursor={c}")
            }
            None => "/v1/subjects/eu-7/consents/history?purpose=analytics&limit=2".into(),
        };
        let page = app.get_json(&path, &token).await;
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["status"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["granted", "denied", "granted", "denied", "granted"]);
    for bad in [
        "limit=0",
        "limit=500",
        "cursor=bm9wZQ",
        "purpose=nope",
        "unknown=1",
    ] {
        let response = app
            .get(&format!("/v1/subjects/eu-7/consents/history?{bad}"), &token)
            .send()
            .await
            .unwrap();
        problem(response, 422).await;
    }
}

#[tokio::test]
async fn receipts_verify_with_the_jwks_alone() {
    let app = spawn_app().await;
    app.create_subject("eu-8", json!({"region": "DE", "locale": "ar"}))
        .await;
    let written: Value = app
        .put_consent("eu-8", "personalize.content", "granted")
        .await
        .json()
        .await
        .unwrap();
    let receipt = app
        .get_json(
            "/v1/subjects/eu-8/consents/personalize.content/receipt",
            &app.service(),
        )
        .await;
    let jwks: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = receipt["receipt"].as_str().unwrap();
    let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap();
    let key = jsonwebtoken::DecodingKey::from_ed_components(jwk["x"].as_str().unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["version"], "KI-CR-v1.1.0");
    assert_eq!(claims["consentReceiptID"], written["record_id"]);
    assert_eq!(claims["piiPrincipalId"], "eu-8");
    assert_eq!(claims["jurisdiction"], "eea");
    assert_eq!(claims["language"], "ar");
    assert_eq!(claims["consentStatus"], "granted");
    assert_eq!(
        claims["piiControllers"][0]["piiController"],
        "Example Shop Ltd"
    );
    assert_eq!(claims["services"][0]["service"], "محتوى مخصص");
    assert_eq!(
        claims["services"][0]["purposes"][0]["consentType"],
        "EXPLICIT"
    );

    // A tampered receipt does not verify.
    let mut parts: Vec<&str> = token.split('.').collect();
    let forged_claims = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        br#"{"consentStatus":"denied"}"#,
    );
    parts[1] = &forged_claims;
    assert!(jsonwebtoken::decode::<Value>(&parts.join("."), &key, &validation).is_err());

    problem(
        app.get(
            "/v1/subjects/eu-8/consents/analytics/receipt",
            &app.service(),
        )
        .send()
        .await
        .unwrap(),
        404,
    )
    .await;
    problem(
        app.get("/v1/subjects/eu-8/consents/nope/receipt", &app.service())
            .send()
            .await
            .unwrap(),
        422,
    )
    .await;
}

#[tokio::test]
async fn parallel_writers_leave_ledger_and_state_in_agreement() {
    let app = spawn_app().await;
    app.create_subject("busy", json!({"region": "DE"})).await;
    let purposes = ["analytics", "marketing.email", "personalize.content"];
    let mut handles = Vec::new();
    for i in 0..120 {
        let purpose = purposes[i % 3];
        let status = if i % 2 == 0 { "granted" } else { "denied" };
        let request = app.put_json(
            &format!("/v1/subjects/busy/consents/{purpose}"),
            &app.service(),
            &json!({"status": status, "source": "api"}),
        );
        handles.push(tokio::spawn(async move {
            request.send().await.unwrap().status().as_u16()
        }));
    }
    for handle in handles {
        assert_eq!(handle.await.unwrap(), 200);
    }
    let ledger = app.ledger("busy").await;
    assert_eq!(ledger.len(), 120);
    let consents = app.consents("busy").await;
    for purpose in purposes {
        let newest = ledger.iter().find(|r| r["purpose"] == purpose).unwrap();
        assert_eq!(consents[purpose]["record_id"], newest["id"], "{purpose}");
        assert_eq!(consents[purpose]["status"], newest["status"], "{purpose}");
    }
    assert_eq!(
        app.audit_count("consent.granted").await + app.audit_count("consent.denied").await,
        120
    );
}

/// Writes `purpose` for `subject` as a service with extra headers and body fields, and
/// returns the newest ledger record.
async fn write_with(
    app: &TestApp,
    subject: &str,
    purpose: &str,
    headers: &[(&str, &str)],
    extra: Value,
) -> Value {
    let mut body = json!({"status": "granted", "source": "api"});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let mut request = app.put_json(
        &format!("/v1/subjects/{subject}/consents/{purpose}"),
        &app.service(),
        &body,
    );
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    app.ledger(subject).await[0].clone()
}

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_are_not_evidence() {
    let app = spawn_app().await;
    app.create_subject("ev-1", json!({"region": "DE"})).await;
    let plain = write_with(&app, "ev-1", "analytics", &[], json!({})).await;
    assert_eq!(plain["ip_source"], "peer");
    for headers in [
        &[("X-Forwarded-For", "198.51.100.9")][..],
        &[("Forwarded", "for=198.51.100.9")][..],
        &[("X-Forwarded-For", "not an address <script>")][..],
    ] {
        let record = write_with(&app, "ev-1", "analytics", headers, json!({})).await;
        assert_eq!(record["ip_hash"], plain["ip_hash"], "{headers:?}");
        assert_eq!(record["ip_source"], "peer", "{headers:?}");
    }
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_evidence() {
    let app = spawn_app_with(TestOptions {
        trusted_proxies: "127.0.0.1/32, 10.0.0.0/8",
        ..Default::default()
    })
    .await;
    app.create_subject("ev-2", json!({"region": "DE"})).await;
    let peer = write_with(&app, "ev-2", "analytics", &[], json!({})).await;
    let forwarded = write_with(
        &app,
        "ev-2",
        "analytics",
        &[("X-Forwarded-For", "203.0.113.1, 198.51.100.9, 10.1.2.3")],
        json!({}),
    )
    .await;
    assert_eq!(forwarded["ip_source"], "proxy");
    assert_ne!(forwarded["ip_hash"], peer["ip_hash"]);
    // The client wrote 203.0.113.1 itself; the proxy's word is 198.51.100.9.
    let same = write_with(
        &app,
        "ev-2",
        "analytics",
        &[("Forwarded", "for=198.51.100.9;proto=https")],
        json!({}),
    )
    .await;
    assert_eq!(same["ip_hash"], forwarded["ip_hash"]);
    let garbage = write_with(
        &app,
        "ev-2",
        "analytics",
        &[("X-Forwarded-For", "_hidden")],
        json!({}),
    )
    .await;
    assert_eq!(
        (&garbage["ip_source"], &garbage["ip_hash"]),
        (&peer["ip_source"], &peer["ip_hash"])
    );
}

#[tokio::test]
async fn a_service_may_state_the_customers_address_as_its_own_assertion() {
    let app = spawn_app().await;
    app.create_subject("ev-3", json!({"region": "DE"})).await;
    let peer = write_with(&app, "ev-3", "analytics", &[], json!({})).await;
    let asserted = write_with(
        &app,
        "ev-3",
        "analytics",
        &[],
        json!({"client_ip": "198.51.100.9"}),
    )
    .await;
    assert_eq!(asserted["ip_source"], "asserted");
    assert_eq!(asserted["actor"]["id"], "recommendations");
    assert_ne!(asserted["ip_hash"], peer["ip_hash"]);
    let response = app
        .client
        .post(app.url("/v1/subjects/ev-3/consents"))
        .bearer_auth(app.service())
        .json(&json!({"client_ip": "2001:db8::7", "consents": [
            {"purpose": "marketing.email", "status": "granted", "source": "api"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(app.ledger("ev-3").await[0]["ip_source"], "asserted");

    for bad in ["198.51.100.999", "localhost", ""] {
        let response = app
            .put_json(
                "/v1/subjects/ev-3/consents/analytics",
                &app.service(),
                &json!({"status": "granted", "source": "api", "client_ip": bad}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(invalid_fields(response).await, ["client_ip"], "{bad}");
    }
    // A customer's own word about their address is no evidence.
    let customer = app.token(Role::Subject, Some("ev-3"));
    let response = app
        .put_json(
            "/v1/subjects/ev-3/consents/analytics",
            &customer,
            &json!({"status": "granted", "source": "portal", "client_ip": "198.51.100.9"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(invalid_fields(response).await, ["client_ip"]);
}
