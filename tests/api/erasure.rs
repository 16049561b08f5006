//! Erasure: the data goes, the proof of consent stays under a pseudonym, the chain still
//! verifies, and the gate denies everything but strictly necessary processing.

use consentry::auth::Role;
use serde_json::{json, Value};

use crate::helpers::{problem, spawn_app, TestApp};

async fn decide(app: &TestApp, purpose: &str) -> Value {
    app.client
        .post(app.url("/v1/decisions"))
        .bearer_auth(app.service())
        .json(&json!({"subject_id": "gone", "purpose": purpose}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn rows(app: &TestApp, sql: &'static str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    app.app_db
        .run(move |conn| {
            use diesel::RunQueryDsl;
            diesel::sql_query(sql)
                .get_result::<Count>(conn)
                .map(|c| c.n)
                .map_err(consentry::storage::StorageError::from)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn erasure_removes_the_data_keeps_the_proof_and_the_gate_denies() {
    let app = spawn_app().await;
    app.create_subject(
        "gone",
        json!({"region": "DE", "locale": "en", "birth_year": 1990}),
    )
    .await;
    app.put_consent("gone", "analytics", "granted").await;
    app.put_json(
        "/v1/subjects/gone/preferences",
        &app.service(),
        &json!({"language": "en"}),
    )
    .send()
    .await
    .unwrap();
    app.client
        .patch(app.url("/v1/subjects/gone/profile"))
        .bearer_auth(app.service())
        .json(&json!({"attributes": {"email": {"value": "gone@example.com", "category": "user.contact.email"}}}))
        .send()
        .await
        .unwrap();
    let sent = app
        .client
        .post(app.url("/v1/subjects/gone/contacts"))
        .bearer_auth(app.service())
        .json(&json!({"channel": "email", "purpose": "marketing"}))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 201);
    assert_eq!(
        decide(&app, "analytics").await["decision"],
        "allow",
        "cached before the erasure"
    );

    let compliance = app.token(Role::Compliance, Some("officer"));
    problem(
        app.client
            .delete(app.url("/v1/subjects/gone"))
            .bearer_auth(app.service())
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
    let response = app
        .client
        .delete(app.url("/v1/subjects/gone"))
        .bearer_auth(&compliance)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);

    let d = decide(&app, "analytics").await;
    assert_eq!(
        (d["decision"].as_str(), d["reason"].as_str()),
        (Some("deny"), Some("subject_erased"))
    );
    assert_eq!(decide(&app, "essential").await["decision"], "allow");
    problem(
        app.get("/v1/subjects/gone", &app.service())
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    problem(
        app.get("/v1/subjects/gone/export", &compliance)
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;

    assert_eq!(
        rows(&app, "SELECT COUNT(*) AS n FROM profile_attributes").await,
        0
    );
    assert_eq!(rows(&app, "SELECT COUNT(*) AS n FROM preferences").await, 0);
    assert_eq!(rows(&app, "SELECT COUNT(*) AS n FROM contacts").await, 0);
    assert_eq!(
        rows(&app, "SELECT COUNT(*) AS n FROM subjects WHERE id = 'gone'").await,
        0
    );
    // The proof of consent stays, without evidence and under the pseudonym.
    assert_eq!(
        rows(
            &app,
            "SELECT COUNT(*) AS n FROM consent_records WHERE subject_id = 'gone'"
        )
        .await,
        0
    );
    assert_eq!(rows(&app, "SELECT COUNT(*) AS n FROM consent_records WHERE ip_hash IS NULL AND user_agent IS NULL").await, 1);
    // Nothing about them is readable in the audit log, and the chain still verifies.
    assert_eq!(rows(&app, "SELECT COUNT(*) AS n FROM audit_events WHERE subject_id = 'gone' OR payload LIKE '%gone@example.com%'").await, 0);
    let verified = app.get_json("/v1/audit/verify", &compliance).await;
    assert_eq!(verified["ok"], true, "{verified}");
    assert_eq!(app.audit_count("subject.erased").await, 1);
    problem(
        app.client
            .delete(app.url("/v1/subjects/gone"))
            .bearer_auth(&compliance)
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
}

#[tokio::test]
async fn completing_an_erasure_request_erases() {
    let app = spawn_app().await;
    app.create_subject("gone", json!({"region": "FR"})).await;
    let request: Value = app
        .client
        .post(app.url("/v1/dsar"))
        .bearer_auth(app.service())
        .json(&json!({"subject_id": "gone", "kind": "erasure"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let compliance = app.token(Role::Compliance, Some("officer"));
    let id = request["id"].as_str().unwrap();
    for status in ["verified", "in_progress", "completed"] {
        let response = app
            .client
            .patch(app.url(&format!("/v1/dsar/{id}")))
            .bearer_auth(&compliance)
            .json(&json!({"status": status}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{status}");
    }
    assert_eq!(decide(&app, "analytics").await["reason"], "subject_erased");
    let still = app.get_json(&format!("/v1/dsar/{id}"), &compliance).await;
    assert_eq!(still["status"], "completed");
    assert_eq!(
        app.get_json("/v1/audit/verify", &compliance).await["ok"],
        true
    );
}

/// How many values, in every text-like column of every table, contain `needle`.
async fn mentions_in_database(app: &TestApp, needle: &'static str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Column {
        #[diesel(sql_type = diesel::sql_types::Text)]
        t: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        c: String,
    }
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let listing = if app.db.is_postgres() {
        "SELECT table_name::text AS t, column_name::text AS c FROM information_schema.columns \
         WHERE table_schema = current_schema()"
    } else {
        "SELECT m.name AS t, p.name AS c FROM sqlite_master m \
         JOIN pragma_table_info(m.name) p WHERE m.type = 'table'"
    };
    app.app_db
        .run(move |conn| {
            use diesel::RunQueryDsl;
            let mut total = 0;
            for Column { t, c } in diesel::sql_query(listing).load::<Column>(conn)? {
                total += diesel::sql_query(format!(
                    "SELECT COUNT(*) AS n FROM \"{t}\" WHERE CAST(\"{c}\" AS TEXT) LIKE '%{needle}%'"
                ))
                .get_result::<Count>(conn)?
                .n;
            }
            Ok::<_, consentry::storage::StorageError>(total)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn an_erased_subject_leaves_no_raw_id_in_the_audit_log_or_its_exports() {
    const ID: &str = "cust-erase-7f3a";
    let app = spawn_app().await;
    app.create_subject(ID, json!({"region": "DE"})).await;
    app.put_consent(ID, "analytics", "granted").await;
    let own = app.token(Role::Subject, Some(ID));
    let response = app
        .put_json(
            &format!("/v1/subjects/{ID}/consents/marketing"),
            &own,
            &json!({"status": "denied", "source": "portal"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the subject withdraws themselves");
    let compliance = app.token(Role::Compliance, Some("officer"));
    let export = |query: String| {
        let request = app.get(&format!("/v1/audit/events{query}"), &compliance);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.text().await.unwrap()
        }
    };
    // Exports about the subject before the erasure, by subject and by actor...
    export(format!("?subject={ID}")).await;
    export(format!("?actor={ID}")).await;
    let response = app
        .client
        .delete(app.url(&format!("/v1/subjects/{ID}")))
        .bearer_auth(&compliance)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    // ...and after it: none of them may bring the raw id back.
    let after = export(format!("?subject={ID}")).await;
    assert!(
        after.lines().count() > 2,
        "the erased subject's events: {after}"
    );
    export(format!("?actor={ID}&format=csv")).await;
    let full = export(String::new()).await;
    assert!(
        !full.contains(ID),
        "the full export names the erased subject"
    );
    // The outbox keeps the id until the erasure has been handed on downstream, then
    // clears it (every few seconds).
    let started = std::time::Instant::now();
    while mentions_in_database(&app, ID).await > 0 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "the raw id stays in the database"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let keys = crate::audit::jwks(&app).await;
    consentry::audit::export::verify_export(&full, Some(&keys)).unwrap();
    assert_eq!(
        app.get_json("/v1/audit/verify", &compliance).await["ok"],
        true
    );
}
