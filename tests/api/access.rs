//! The access and portability bundle.

use consentry::auth::Role;
use serde_json::{json, Value};

use crate::helpers::{problem, spawn_app};
use crate::snapshot::assert_snapshot;
use crate::surveys::nps_survey;

#[tokio::test]
async fn the_bundle_holds_everything_about_the_subject_and_is_audited() {
    let app = spawn_app().await;
    app.create_subject("me", json!({"region": "DE", "locale": "ar"}))
        .await;
    app.create_subject("someone-else", json!({"region": "FR"}))
        .await;
    app.put_consent("me", "marketing", "granted").await;
    app.put_consent("me", "analytics", "denied").await;
    app.put_consent("someone-else", "analytics", "granted")
        .await;
    app.put_json(
        "/v1/subjects/me/preferences",
        &app.service(),
        &json!({"language": "ar"}),
    )
    .send()
    .await
    .unwrap();
    app.client
        .patch(app.url("/v1/subjects/me/profile"))
        .bearer_auth(app.service())
        .json(&json!({"attributes": {"plan": {"value": "pro", "category": "user.account"}}}))
        .send()
        .await
        .unwrap();

    let compliance = app.token(Role::Compliance, Some("officer"));
    let response = app
        .get("/v1/subjects/me/export", &compliance)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response
        .headers()
        .get("content-disposition")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    let bundle: Value = response.json().await.unwrap();
    assert_eq!(bundle["format"], "consentry.access.v4");
    assert_eq!(bundle["subject"]["id"], "me");
    assert_eq!(bundle["subject"]["jurisdiction"], "eea");
    let consents = bundle["consents"].as_array().unwrap();
    let email = consents
        .iter()
        .find(|c| c["purpose"] == "marketing.email")
        .unwrap();
    assert_eq!(
        (
            email["effective"].as_str(),
            email["inherited_from"].as_str()
        ),
        (Some("allow"), Some("marketing"))
    );
    assert_eq!(bundle["consent_ledger"].as_array().unwrap().len(), 2);
    assert_eq!(bundle["preferences"]["language"], "ar");
    assert_eq!(bundle["profile"]["attributes"]["plan"]["value"], "pro");
    let actions: Vec<&str> = bundle["audit_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "subject.created",
            "consent.granted",
            "consent.denied",
            "preferences.updated",
            "profile.updated"
        ]
    );
    assert!(
        !bundle.to_string().contains("someone-else"),
        "nothing about other subjects"
    );
    assert_eq!(app.audit_count("subject.exported").await, 1);
}

#[tokio::test]
async fn a_subject_gets_their_own_bundle_and_nobody_elses() {
    let app = spawn_app().await;
    app.create_subject("me", json!({"region": "DE"})).await;
    app.create_subject("you", json!({"region": "DE"})).await;
    let me = app.token(Role::Subject, Some("me"));
    assert_eq!(
        app.get("/v1/subjects/me/export", &me)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let other = problem(
        app.get("/v1/subjects/you/export", &me)
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    let missing = problem(
        app.get("/v1/subjects/nobody/export", &me)
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    assert_eq!(other, missing);
    problem(
        app.get("/v1/subjects/me/export", &app.service())
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
    assert_eq!(
        app.audit_count("subject.exported").await,
        1,
        "refused requests export nothing"
    );
}

/// The bundle's shape is a promise to regulators and to the subjects who read it: any
/// change to it shows here, whatever changed underneath.
#[tokio::test]
async fn the_bundle_keeps_the_shape_of_its_version() {
    let app = spawn_app().await;
    app.create_survey(nps_survey("nps-b")).await;
    app.create_subject(
        "me",
        json!({"region": "DE", "locale": "de", "birth_year": 1980}),
    )
    .await;
    app.put_consent("me", "marketing", "granted").await;
    app.put_consent("me", "analytics", "denied").await;
    app.put_json(
        "/v1/subjects/me/preferences",
        &app.service(),
        &json!({"channels": {"email": {"opted_in": true, "max_per_week": 2}},
                "channel_order": ["email"], "language": "de", "timezone": "Europe/Berlin",
                "quiet_hours": {"start": "22:00", "end": "07:00"}}),
    )
    .send()
    .await
    .unwrap();
    app.patch(
        "/v1/subjects/me/profile",
        &app.service(),
        &json!({"attributes": {"plan": {"value": "pro", "category": "user.account"}}}),
    )
    .await;
    app.post(
        "/v1/dsar",
        &app.service(),
        &json!({"subject_id": "me", "kind": "access"}),
    )
    .await;
    app.event("me", "onboarding.completed").await;
    app.post(
        "/v1/subjects/me/contacts",
        &app.service(),
        &json!({"channel": "email", "purpose": "marketing", "idempotency_key": "welcome-1"}),
    )
    .await;
    app.put_json(
        "/v1/subjects/me/identifiers",
        &app.service(),
        &json!({"identifiers": [{"type": "crm_id", "value": "CRM-7"}]}),
    )
    .send()
    .await
    .unwrap();
    app.next("me", None).await;
    app.answer(
        "nps-b",
        json!({"subject_id": "me", "answers": {"score": 2}, "finished": false}),
    )
    .await;

    let compliance = app.token(Role::Compliance, Some("officer"));
    let bundle = app.get_json("/v1/subjects/me/export", &compliance).await;
    assert_eq!(bundle["bundle_version"], 4);
    assert_snapshot(
        "access_bundle_v4",
        bundle,
        "A deliberate change to the access bundle is a new bundle version: raise \
         BUNDLE_VERSION and FORMAT in the bundle module and describe the change in the \
         README's \"Access and portability\" section.",
    );
}

#[tokio::test]
async fn a_bundle_carries_a_bounded_audit_trail_and_says_what_it_left_out() {
    use consentry::audit::{Actor, AuditEntry, Pseudonymizer};
    use consentry::dsar::bundle::MAX_ROWS;
    use consentry::storage::{write_transaction, StorageError};
    let app = spawn_app().await;
    app.create_subject("busy", json!({"region": "DE"})).await;
    // The subject's creation and this many more events about them.
    let extra = MAX_ROWS + 4;
    let pseudonyms = Pseudonymizer::load_or_generate(&app.data_dir, None).unwrap();
    let at = consentry::clock::Clock::now(&app.clock);
    app.app_db
        .run(move |conn| {
            write_transaction(conn, |conn| {
                for i in 0..extra {
                    consentry::audit::record(
                        conn,
                        &pseudonyms,
                        AuditEntry {
                            actor: &Actor::operator(),
                            action: "profile.updated",
                            subject_id: Some("busy"),
                            payload: json!({"n": i}),
                            at,
                        },
                    )?;
                }
                Ok::<_, StorageError>(())
            })
        })
        .await
        .unwrap();
    let compliance = app.token(Role::Compliance, Some("officer"));
    let bundle = app.get_json("/v1/subjects/busy/export", &compliance).await;
    let kept = bundle["audit_events"].as_array().unwrap().len();
    assert_eq!(kept as i64, MAX_ROWS);
    assert_eq!(bundle["truncated"], true);
    let limit = &bundle["limits"]["audit_events"];
    assert_eq!(
        (&limit["max"], &limit["total"], &limit["omitted"]),
        (&json!(MAX_ROWS), &json!(extra + 1), &json!(5))
    );
    assert_eq!(
        limit["all_at"],
        "GET /v1/audit/events?subject=busy (streamed, verifiable)"
    );
    assert_eq!(bundle["limits"]["consent_ledger"]["omitted"], 0);
}
