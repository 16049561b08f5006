//! Journeys: stages derived from events, NPS answers and time, kept on the profile only
//! while the customer allows it, each move in the feed and the audit log; the report.

use chrono::TimeDelta;
use consentry::auth::Role;
use serde_json::{json, Value};

use crate::helpers::{problem, spawn_app, TestApp};
use crate::surveys::nps_survey;

/// The stage the profile keeps, read whole (a purpose filter would refuse to read for a
/// purpose the customer does not allow).
async fn stage(app: &TestApp, subject: &str) -> Value {
    let profile = app
        .get_json(&format!("/v1/subjects/{subject}/profile"), &app.service())
        .await;
    profile["attributes"]["journey.stage"]["value"].clone()
}

async fn sweep(app: &TestApp) -> usize {
    let now = consentry::clock::Clock::now(&app.clock);
    let policies =
        std::sync::Arc::new(consentry::policy::load(&crate::helpers::policies_dir()).unwrap());
    let pseudonyms =
        consentry::audit::Pseudonymizer::load_or_generate(&app.data_dir, None).unwrap();
    app.app_db
        .run(move |conn| consentry::journeys::sweep(conn, &policies, &pseudonyms, now))
        .await
        .unwrap()
}

#[tokio::test]
async fn events_answers_and_time_move_a_customer_along() {
    let app = spawn_app().await;
    app.create_survey(nps_survey("nps-j")).await;
    // In the EEA the journey purpose rests on legitimate interest: no consent needed.
    app.create_subject("ana", json!({"region": "DE"})).await;
    assert_eq!(stage(&app, "ana").await, Value::Null);

    assert_eq!(app.event("ana", "onboarding.started").await.status(), 201);
    assert_eq!(stage(&app, "ana").await, "onboarding");
    for _ in 0..2 {
        app.event("ana", "onboarding.step_completed").await;
    }
    assert_eq!(stage(&app, "ana").await, "onboarding", "two steps of three");
    app.clock.advance(TimeDelta::days(1));
    app.event("ana", "onboarding.step_completed").await;
    assert_eq!(stage(&app, "ana").await, "activated");

    // A detractor answer, an hour later, puts them at risk; the profile says so.
    app.clock.advance(TimeDelta::hours(1));
    app.next("ana", None).await;
    let response = app
        .answer(
            "nps-j",
            json!({"subject_id": "ana", "answers": {"score": 3}, "finished": false}),
        )
        .await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert_eq!(stage(&app, "ana").await, "at_risk");
    let profile = app
        .get_json(
            "/v1/subjects/ana/profile?purpose=personalize.journey",
            &app.service(),
        )
        .await;
    assert_eq!(profile["attributes"]["journey.at_risk"]["value"], true);
    assert_eq!(
        profile["attributes"]["journey.stage"]["category"],
        "user.derived.journey"
    );

    // Ninety quiet days: churned, by the sweep.
    app.clock.advance(TimeDelta::days(89));
    assert_eq!(sweep(&app).await, 0);
    app.clock.advance(TimeDelta::days(1));
    assert_eq!(sweep(&app).await, 1);
    assert_eq!(stage(&app, "ana").await, "churned");

    // Every move is in the feed and the audit log.
    let feed = app
        .get_json("/v1/events?name=journey.stage_changed", &app.service())
        .await;
    let moves: Vec<(Value, Value)> = feed["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["properties"]["from"].clone(),
                e["properties"]["to"].clone(),
            )
        })
        .collect();
    assert_eq!(
        moves,
        [
            (Value::Null, json!("signed_up")),
            (json!("signed_up"), json!("onboarding")),
            (json!("onboarding"), json!("activated")),
            (json!("activated"), json!("at_risk")),
            (json!("at_risk"), json!("churned")),
        ]
    );
    assert_eq!(app.audit_count("journey.stage_changed").await, 5);

    // The report: where customers are and how they got there.
    let compliance = app.token(Role::Compliance, Some("officer"));
    let report = app
        .get_json("/v1/journeys/report?from=2026-11-01", &compliance)
        .await;
    let figures = |name: &str| {
        report["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["stage"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(figures("churned")["customers"], 1);
    assert_eq!(figures("activated")["entered"], 1);
    assert_eq!(figures("activated")["median_days_to_reach"], 1.0);
    assert_eq!(figures("activated")["nps"]["detractors"], 1, "{report}");
    problem(
        app.get("/v1/journeys/report", &app.service())
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
    let response = app
        .get(
            "/v1/journeys/report?from=2026-12-01&to=2026-11-01",
            &compliance,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(problem(response, 422).await["errors"][0]["field"], "to");
}

#[tokio::test]
async fn no_stage_is_derived_or_kept_without_the_customers_leave() {
    let app = spawn_app().await;
    // Under an opt-in basis (Saudi Arabia here), nothing without consent.
    app.create_subject("sara", json!({"region": "SA"})).await;
    app.event("sara", "onboarding.started").await;
    assert_eq!(stage(&app, "sara").await, Value::Null);
    app.put_consent("sara", "personalize.journey", "granted")
        .await;
    app.event("sara", "app.opened").await;
    assert_eq!(stage(&app, "sara").await, "onboarding");

    // Withdrawing it removes what was derived, at once.
    app.put_consent("sara", "personalize.journey", "denied")
        .await;
    let profile = app
        .get_json("/v1/subjects/sara/profile", &app.service())
        .await;
    assert!(
        profile["attributes"].get("journey.stage").is_none(),
        "{profile}"
    );
    app.event("sara", "onboarding.step_completed").await;
    assert_eq!(stage(&app, "sara").await, Value::Null);

    // Under the GDPR an objection to the legitimate interest stops it too; so does one
    // to the parent purpose.
    app.create_subject("ana", json!({"region": "DE"})).await;
    app.event("ana", "onboarding.started").await;
    assert_eq!(stage(&app, "ana").await, "onboarding");
    app.put_consent("ana", "personalize", "denied").await;
    app.event("ana", "app.opened").await;
    let profile = app
        .get_json("/v1/subjects/ana/profile", &app.service())
        .await;
    assert!(
        profile["attributes"].get("journey.stage").is_none(),
        "{profile}"
    );
}

#[tokio::test]
async fn a_survey_can_fire_on_entering_a_stage() {
    let app = spawn_app().await;
    let mut welcome = nps_survey("welcome");
    welcome["targeting"] =
        json!({"trigger_events": ["journey.stage_changed"], "stages": ["onboarding"]});
    let mut bad = welcome.clone();
    bad["key"] = json!("bad");
    bad["targeting"]["stages"] = json!(["onboarding", "lost_in_space"]);
    let response = app.post("/v1/surveys", &app.admin(), &bad).await;
    assert_eq!(
        problem(response, 422).await["errors"][0]["field"],
        "targeting.stages[1]"
    );
    app.create_survey(welcome).await;

    app.create_subject("ana", json!({"region": "DE"})).await;
    app.event("ana", "app.opened").await;
    assert_eq!(stage(&app, "ana").await, "signed_up");
    assert_eq!(
        app.next("ana", None).await.status(),
        204,
        "not onboarding yet"
    );
    app.event("ana", "onboarding.started").await;
    let offered = app.next("ana", None).await;
    assert_eq!(offered.status(), 200);
    assert_eq!(offered.json::<Value>().await.unwrap()["key"], "welcome");
}
