//! Surveys end to end: definitions, events, the next-survey call, answers with
//! write-back, follow-ups, reports and exports.

use chrono::TimeDelta;
use consentry::auth::Role;
use reqwest::Response;
use serde_json::{json, Value};

use crate::helpers::{invalid_fields, problem, spawn_app, TestApp};

pub(crate) fn nps_survey(key: &str) -> Value {
    json!({
        "key": key, "name": "NPS", "kind": "nps", "status": "active", "priority": 5,
        "questions": [
            {"id": "score", "type": "nps", "required": true,
             "prompt": {"en": "How likely are you to recommend us?", "ar": "ما مدى احتمال أن توصي بنا؟"},
             "write_back": {"attribute": "nps.score", "category": "user.behavior.feedback"}},
            {"id": "why_low", "type": "text", "max_length": 50, "required": true,
             "prompt": {"en": "What went wrong?", "ar": "ما الخطأ؟"},
             "show_if": {"question": "score", "op": "lte", "value": 6}},
            {"id": "best", "type": "multi_choice", "prompt": {"en": "What do you like?"},
             "options": [{"id": "speed", "label": {"en": "Speed"}}, {"id": "price", "label": {"en": "Price"}}],
             "show_if": {"question": "score", "op": "gte", "value": 9}}
        ],
        "targeting": {"trigger_events": ["onboarding.completed"]},
        "throttling": {"recontact_days": 14, "max_displays": 3, "max_dismissals": 1}
    })
}

impl TestApp {
    pub(crate) fn admin(&self) -> String {
        self.token(Role::Admin, Some("ops"))
    }

    pub(crate) async fn post(&self, path: &str, token: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn patch(&self, path: &str, token: &str, body: &Value) -> Response {
        self.client
            .patch(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn create_survey(&self, body: Value) -> Value {
        let response = self.post("/v1/surveys", &self.admin(), &body).await;
        assert_eq!(response.status(), 201);
        response.json().await.unwrap()
    }

    pub(crate) async fn event(&self, subject: &str, name: &str) -> Response {
        self.post(
            "/v1/events",
            &self.service(),
            &json!({"subject_id": subject, "name": name}),
        )
        .await
    }

    pub(crate) async fn next(&self, subject: &str, event: Option<&str>) -> Response {
        let path = match event {
            Some(e) => format!("/v1/subjects/{subject}/surveys/next?event={e}"),
            None => format!("/v1/subjects/{subject}/surveys/next"),
        };
        self.get(&path, &self.service()).send().await.unwrap()
    }

    pub(crate) async fn answer(&self, survey: &str, body: Value) -> Response {
        self.post(
            &format!("/v1/surveys/{survey}/responses"),
            &self.service(),
            &body,
        )
        .await
    }
}

#[tokio::test]
async fn definitions_are_checked_and_named_by_field() {
    let app = spawn_app().await;
    let mut bad = nps_survey("bad");
    bad["questions"][1]["show_if"]["question"] = json!("missing");
    bad["questions"][0]["write_back"]["category"] = json!("user.no_such");
    bad["questions"][2]["show_if"] = json!({"question": "score", "op": "gt", "value": 10});
    bad["targeting"]["sample_percent"] = json!(101);
    let fields = invalid_fields(app.post("/v1/surveys", &app.admin(), &bad).await).await;
    assert_eq!(
        fields,
        [
            "questions[0].write_back.category",
            "questions[1].show_if.question",
            "questions[2].show_if",
            "targeting.sample_percent"
        ]
    );
    let mut unknown = nps_survey("bad");
    unknown["questions"][0]["type"] = json!("stars");
    let fields = invalid_fields(app.post("/v1/surveys", &app.admin(), &unknown).await).await;
    assert_eq!(fields, ["questions[0].type"]);
    // A survey collects only what its purpose declares, and rests on a purpose that can
    // be refused.
    let mut undeclared = nps_survey("undeclared");
    undeclared["questions"][0]["write_back"]["category"] = json!("user.contact.email");
    let fields = invalid_fields(app.post("/v1/surveys", &app.admin(), &undeclared).await).await;
    assert_eq!(fields, ["questions[0].write_back.category"]);
    let mut essential = nps_survey("essential");
    essential["purpose"] = json!("essential");
    let fields = invalid_fields(app.post("/v1/surveys", &app.admin(), &essential).await).await;
    assert_eq!(fields, ["purpose"]);
    let mut no_key = nps_survey("Bad Key");
    no_key["purpose"] = json!("no.such.purpose");
    let fields = invalid_fields(app.post("/v1/surveys", &app.admin(), &no_key).await).await;
    assert_eq!(fields, ["key", "purpose"]);

    let created = app.create_survey(nps_survey("nps-1")).await;
    assert_eq!(created["status"], "active");
    assert_eq!(created["version"], 1);
    assert_eq!(
        created["purpose"],
        "functional.service.improve.feedback_surveys"
    );
    problem(
        app.post("/v1/surveys", &app.admin(), &nps_survey("nps-1"))
            .await,
        409,
    )
    .await;
    // Only admins define surveys.
    problem(
        app.post("/v1/surveys", &app.service(), &nps_survey("nps-2"))
            .await,
        403,
    )
    .await;
    let by_key = app.get_json("/v1/surveys/nps-1", &app.admin()).await;
    assert_eq!(by_key["id"], created["id"]);
    let list = app
        .get_json("/v1/surveys?status=active", &app.admin())
        .await;
    assert_eq!(list["surveys"].as_array().unwrap().len(), 1);
    problem(
        app.get("/v1/surveys/nope", &app.admin())
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
}

#[tokio::test]
async fn the_status_machine_refuses_illegal_moves_and_answers_freeze_questions() {
    let app = spawn_app().await;
    let mut draft = nps_survey("nps-s");
    draft["status"] = json!("draft");
    let survey = app.create_survey(draft).await;
    let path = format!("/v1/surveys/{}", survey["id"].as_str().unwrap());
    let moved = problem(
        app.patch(&path, &app.admin(), &json!({"status": "paused"}))
            .await,
        409,
    )
    .await;
    assert_eq!(
        (moved["from"].clone(), moved["to"].clone()),
        (json!("draft"), json!("paused"))
    );
    // Unanswered questions change in place.
    let mut questions = survey["questions"].clone();
    questions[0]["prompt"]["en"] = json!("Would you recommend us?");
    let changed: Value = app
        .patch(
            &path,
            &app.admin(),
            &json!({"questions": questions, "status": "active"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (changed["version"].clone(), changed["status"].clone()),
        (json!(1), json!("active"))
    );

    app.create_subject("sv1", json!({"region": "DE"})).await;
    let answered = app
        .answer(
            "nps-s",
            json!({"subject_id": "sv1", "answers": {"score": 9}, "finished": true}),
        )
        .await;
    assert_eq!(answered.status(), 200);
    questions[0]["prompt"]["en"] = json!("How likely are you to recommend us to a friend?");
    let versioned: Value = app
        .patch(&path, &app.admin(), &json!({"questions": questions}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(versioned["version"], 2);
    let versions = versioned["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["responses"], 1);
    let report = app.get_json(&format!("{path}/report"), &app.admin()).await;
    assert_eq!(report["versions"].as_array().unwrap().len(), 2);
    assert_eq!(
        app.get_json(&format!("{path}/report?version=2"), &app.admin())
            .await["responses"],
        0
    );

    for (from, to) in [
        ("active", "paused"),
        ("paused", "active"),
        ("active", "closed"),
    ] {
        let r: Value = app
            .patch(&path, &app.admin(), &json!({"status": to}))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(r["status"], to, "{from} → {to}");
    }
    problem(
        app.patch(&path, &app.admin(), &json!({"status": "active"}))
            .await,
        409,
    )
    .await;
    // A closed survey takes no answers.
    app.create_subject("sv2", json!({"region": "DE"})).await;
    problem(
        app.answer(
            "nps-s",
            json!({"subject_id": "sv2", "answers": {"score": 3}, "finished": false}),
        )
        .await,
        409,
    )
    .await;
    assert!(app.audit_count("survey.updated").await >= 5);
}

#[tokio::test]
async fn events_are_recorded_checked_and_fed() {
    let app = spawn_app().await;
    app.create_subject("ev1", json!({"region": "DE"})).await;
    let recorded: Value = app
        .event("ev1", "onboarding.completed")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(recorded["name"], "onboarding.completed");
    problem(app.event("nobody", "onboarding.completed").await, 404).await;
    let bad = app
        .post(
            "/v1/events",
            &app.service(),
            &json!({"subject_id": "ev1", "name": "Bad Name", "properties": [1],
                    "occurred_at": "2030-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(
        invalid_fields(bad).await,
        ["name", "properties", "occurred_at"]
    );
    problem(
        app.post(
            "/v1/events",
            &app.admin(),
            &json!({"subject_id": "ev1", "name": "a.b"}),
        )
        .await,
        403,
    )
    .await;
    app.event("ev1", "checkout.completed").await;
    let feed = app
        .get_json("/v1/events?name=checkout.completed", &app.service())
        .await;
    assert_eq!(feed["events"].as_array().unwrap().len(), 1);
    let after = feed["next_after"].as_i64().unwrap();
    let rest = app
        .get_json(&format!("/v1/events?after={after}"), &app.service())
        .await;
    assert_eq!(rest["events"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn the_next_survey_respects_triggers_priority_throttling_and_consent() {
    let app = spawn_app().await;
    app.create_subject("nx1", json!({"region": "DE", "locale": "ar"}))
        .await;
    let nps = app.create_survey(nps_survey("nps-n")).await;
    let mut other = nps_survey("low-priority");
    other["priority"] = json!(1);
    let other = app.create_survey(other).await;

    // Not triggered yet.
    assert_eq!(app.next("nx1", None).await.status(), 204);
    assert_eq!(
        app.next("nx1", Some("checkout.completed")).await.status(),
        204
    );
    app.event("nx1", "onboarding.completed").await;
    let offer: Value = app.next("nx1", None).await.json().await.unwrap();
    assert_eq!(offer["survey_id"], nps["id"]);
    assert_eq!(offer["locale"], "ar");
    assert_eq!(
        offer["questions"][0]["prompt"],
        "ما مدى احتمال أن توصي بنا؟"
    );
    let display = offer["display_id"].as_str().unwrap().to_owned();

    // Recontact days count from the last display of any survey.
    assert_eq!(
        app.next("nx1", Some("onboarding.completed")).await.status(),
        204
    );
    app.clock.advance(TimeDelta::days(15));
    // Dismissed once (max_dismissals 1): never again; the other survey comes next.
    let dismissed = app
        .client
        .post(app.url(&format!("/v1/surveys/nps-n/displays/{display}/dismiss")))
        .bearer_auth(app.service())
        .send()
        .await
        .unwrap();
    assert_eq!(dismissed.status(), 200);
    let offer: Value = app
        .next("nx1", Some("onboarding.completed"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(offer["survey_id"], other["id"]);

    // A subject who objects to feedback surveys is never offered one.
    app.clock.advance(TimeDelta::days(15));
    app.create_subject("nx2", json!({"region": "DE"})).await;
    app.event("nx2", "onboarding.completed").await;
    let withdrawn = app
        .put_consent(
            "nx2",
            "functional.service.improve.feedback_surveys",
            "denied",
        )
        .await;
    assert_eq!(withdrawn.status(), 200);
    assert_eq!(app.next("nx2", None).await.status(), 204);
    problem(
        app.answer(
            "nps-n",
            json!({"subject_id": "nx2", "answers": {"score": 9}, "finished": true}),
        )
        .await,
        403,
    )
    .await;
    // Granting it back makes them eligible at once.
    app.put_consent(
        "nx2",
        "functional.service.improve.feedback_surveys",
        "granted",
    )
    .await;
    assert_eq!(app.next("nx2", None).await.status(), 200);

    // Restricted subjects and unknown ones are not surveyed.
    app.create_subject("nx3", json!({"region": "DE"})).await;
    app.event("nx3", "onboarding.completed").await;
    let restricted = app
        .post(
            "/v1/dsar",
            &app.service(),
            &json!({"subject_id": "nx3", "kind": "restriction"}),
        )
        .await;
    assert_eq!(restricted.status(), 201);
    assert_eq!(app.next("nx3", None).await.status(), 204);
    // Unknown is 404; an erased subject is simply never surveyed (204).
    problem(app.next("nobody", None).await, 404).await;

    // A customer may ask for their own survey, not someone else's.
    let own = app.token(Role::Subject, Some("nx1"));
    let theirs = app
        .get("/v1/subjects/nx2/surveys/next", &own)
        .send()
        .await
        .unwrap();
    problem(theirs, 404).await;
    let bad = app
        .get("/v1/subjects/nx1/surveys/next?event=Not%20An%20Event", &own)
        .send()
        .await
        .unwrap();
    assert_eq!(invalid_fields(bad).await, ["event"]);
}

#[tokio::test]
async fn sampling_delay_window_and_attribute_filters_gate_the_offer() {
    let app = spawn_app().await;
    let mut targeted = nps_survey("targeted");
    targeted["targeting"] = json!({
        "trigger_events": ["onboarding.completed"], "delay_seconds": 3600,
        "attributes": [{"key": "plan", "op": "eq", "value": "pro"}],
        "ends_at": "2026-12-31T00:00:00Z"
    });
    app.create_survey(targeted).await;
    let mut nobody = nps_survey("sampled-out");
    nobody["targeting"] = json!({"sample_percent": 0});
    app.create_survey(nobody).await;
    app.create_subject("tg1", json!({"region": "DE"})).await;
    app.event("tg1", "onboarding.completed").await;
    app.clock.advance(TimeDelta::minutes(61));
    // Not on the pro plan yet.
    assert_eq!(app.next("tg1", None).await.status(), 204);
    let patched = app
        .patch(
            "/v1/subjects/tg1/profile",
            &app.service(),
            &json!({"attributes": {"plan": {"value": "pro", "category": "user.account"}}}),
        )
        .await;
    assert_eq!(patched.status(), 200);
    assert_eq!(app.next("tg1", None).await.status(), 200);
    // Too early after a fresh event, and outside the window later.
    app.create_subject("tg2", json!({"region": "DE"})).await;
    app.patch(
        "/v1/subjects/tg2/profile",
        &app.service(),
        &json!({"attributes": {"plan": {"value": "pro", "category": "user.account"}}}),
    )
    .await;
    app.event("tg2", "onboarding.completed").await;
    assert_eq!(app.next("tg2", None).await.status(), 204);
    app.clock.advance(TimeDelta::days(60));
    assert_eq!(app.next("tg2", None).await.status(), 204);
}

#[tokio::test]
async fn answers_are_validated_merged_written_back_and_followed_up() {
    let app = spawn_app().await;
    app.create_subject("rs1", json!({"region": "DE"})).await;
    let survey = app.create_survey(nps_survey("nps-r")).await;
    app.event("rs1", "onboarding.completed").await;
    let offer: Value = app.next("rs1", None).await.json().await.unwrap();
    let display = offer["display_id"].as_str().unwrap();

    // Every bad value is named by its question.
    let bad = app
        .answer(
            "nps-r",
            json!({"subject_id": "rs1", "answers": {"score": 11, "nope": 1}, "finished": false}),
        )
        .await;
    assert_eq!(invalid_fields(bad).await, ["answers.nope", "answers.score"]);
    // A promoter follow-up is hidden from a detractor.
    let hidden = app
        .answer("nps-r", json!({"subject_id": "rs1", "answers": {"score": 3, "best": ["speed"]}, "finished": false}))
        .await;
    assert_eq!(problem(hidden, 422).await["errors"][0]["code"], "hidden");
    // Finishing needs the detractor follow-up.
    let unfinished = app
        .answer(
            "nps-r",
            json!({"subject_id": "rs1", "answers": {"score": 3}, "finished": true}),
        )
        .await;
    assert_eq!(invalid_fields(unfinished).await, ["answers.why_low"]);
    let wrong_display = app
        .answer("nps-r", json!({"subject_id": "rs1", "display_id": "nope", "answers": {"score": 3}, "finished": false}))
        .await;
    assert_eq!(invalid_fields(wrong_display).await, ["display_id"]);

    let partial: Value = app
        .answer("nps-r", json!({"subject_id": "rs1", "display_id": display, "answers": {"score": 3}, "finished": false}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(partial["finished"], false);
    assert_eq!(
        partial["written_back"],
        json!(["nps.answered_at", "nps.category", "nps.score"])
    );
    let followup = partial["followup_id"].as_str().unwrap().to_owned();
    let done: Value = app
        .answer(
            "nps-r",
            json!({"subject_id": "rs1", "answers": {"why_low": "Too slow"}, "finished": true}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(done["response_id"], partial["response_id"]);
    assert_eq!(done["answers"], json!({"score": 3, "why_low": "Too slow"}));
    problem(
        app.answer(
            "nps-r",
            json!({"subject_id": "rs1", "answers": {"score": 9}, "finished": true}),
        )
        .await,
        409,
    )
    .await;

    // The profile has the score, tagged as feedback, hidden from purposes without it.
    let profile = app
        .get_json("/v1/subjects/rs1/profile", &app.service())
        .await;
    assert_eq!(profile["attributes"]["nps.score"]["value"], 3);
    assert_eq!(profile["attributes"]["nps.category"]["value"], "detractor");
    assert_eq!(
        profile["attributes"]["nps.score"]["category"],
        "user.behavior.feedback"
    );
    assert_eq!(profile["attributes"]["nps.score"]["source"], "survey");
    app.put_consent("rs1", "personalize.product_recommendations", "granted")
        .await;
    let recommendations = app
        .get_json(
            "/v1/subjects/rs1/profile?purpose=personalize.product_recommendations",
            &app.service(),
        )
        .await;
    assert!(recommendations["attributes"].get("nps.score").is_none());
    let feedback = app
        .get_json(
            "/v1/subjects/rs1/profile?purpose=functional.service.improve.feedback_surveys",
            &app.service(),
        )
        .await;
    assert_eq!(feedback["attributes"]["nps.category"]["value"], "detractor");

    // Support sees the follow-up and the event, and closes it.
    let open = app
        .get_json("/v1/surveys/nps-r/followups?status=open", &app.service())
        .await;
    assert_eq!(open["followups"][0]["id"], followup.as_str());
    assert_eq!(open["followups"][0]["score"], 3);
    let feed = app
        .get_json("/v1/events?name=survey.detractor", &app.service())
        .await;
    assert_eq!(
        feed["events"][0]["properties"]["followup_id"],
        followup.as_str()
    );
    assert_eq!(feed["events"][0]["properties"]["survey_id"], survey["id"]);
    let path = format!("/v1/surveys/nps-r/followups/{followup}");
    let closed: Value = app
        .patch(
            &path,
            &app.service(),
            &json!({"status": "closed", "resolution": "Called back"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(closed["status"], "closed");
    problem(
        app.patch(&path, &app.service(), &json!({"status": "closed"}))
            .await,
        409,
    )
    .await;
    let open = app
        .get_json("/v1/surveys/nps-r/followups?status=open", &app.service())
        .await;
    assert_eq!(open["followups"].as_array().unwrap().len(), 0);

    // Someone else's answers are not a customer's to send.
    app.create_subject("rs2", json!({"region": "DE"})).await;
    let other = app
        .post(
            "/v1/surveys/nps-r/responses",
            &app.token(Role::Subject, Some("rs1")),
            &json!({"subject_id": "rs2", "answers": {"score": 10}, "finished": true}),
        )
        .await;
    problem(other, 404).await;
    assert_eq!(app.audit_count("survey.responded").await, 2);
    let metrics = app.metrics().await;
    for line in [
        r#"survey_offers_total{survey="nps-r"} 1"#,
        r#"survey_submissions_total{finished="true",survey="nps-r"} 1"#,
        r#"survey_followups_opened_total{survey="nps-r"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} missing");
    }
}

/// A survey that records `plan` with each answer reports each answer under the plan the
/// customer had when answering; a breakdown by another attribute uses current values.
#[tokio::test]
async fn a_recorded_breakdown_counts_answers_under_the_value_they_were_given_with() {
    let app = spawn_app().await;
    let mut bad = nps_survey("nps-seg-bad");
    bad["breakdown"] = json!("Not A Key");
    let refused = app.post("/v1/surveys", &app.admin(), &bad).await;
    let body = problem(refused, 422).await;
    assert_eq!(body["errors"][0]["field"], "breakdown", "{body}");

    let mut survey = nps_survey("nps-seg");
    survey["breakdown"] = json!("plan");
    let created = app.create_survey(survey).await;
    assert_eq!(created["breakdown"], "plan");
    let app = &app;
    let set = |id: &str, plan: &str| {
        let body = json!({"attributes": {
            "plan": {"value": plan, "category": "user.account"},
            "tier": {"value": plan, "category": "user.account"},
        }});
        let path = format!("/v1/subjects/{id}/profile");
        async move {
            let answer = app.patch(&path, &app.service(), &body).await;
            assert_eq!(answer.status(), 200);
        }
    };
    for (id, plan, score) in [("sg0", "free", 10), ("sg1", "pro", 9)] {
        app.create_subject(id, json!({"region": "DE"})).await;
        set(id, plan).await;
        app.event(id, "onboarding.completed").await;
        let offer: Value = app.next(id, None).await.json().await.unwrap();
        let answered = app
            .answer("nps-seg", json!({"subject_id": id, "display_id": offer["display_id"], "answers": {"score": score}, "finished": true}))
            .await;
        assert_eq!(answered.status(), 200);
    }
    // The free customer upgrades after answering.
    set("sg0", "pro").await;

    let groups = |report: &Value| -> Vec<(Value, Value)> {
        let mut groups: Vec<(Value, Value)> = report["breakdown"]["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| (g["value"].clone(), g["n"].clone()))
            .collect();
        groups.sort_by_key(|(value, _)| value.to_string());
        groups
    };
    let by_plan = app
        .get_json("/v1/surveys/nps-seg/report?by=plan", &app.admin())
        .await;
    assert_eq!(by_plan["breakdown"]["as_answered"], true);
    assert_eq!(
        groups(&by_plan),
        vec![(json!("free"), json!(1)), (json!("pro"), json!(1))]
    );
    let by_tier = app
        .get_json("/v1/surveys/nps-seg/report?by=tier", &app.admin())
        .await;
    assert_eq!(by_tier["breakdown"]["as_answered"], false);
    assert_eq!(groups(&by_tier), vec![(json!("pro"), json!(2))]);
}

#[tokio::test]
async fn the_report_counts_in_sql_and_the_export_streams_every_response() {
    let app = spawn_app().await;
    app.create_survey(nps_survey("nps-rep")).await;
    // 4 promoters, 2 passives, 2 detractors (one unfinished); 2 plans.
    let scores = [10, 9, 9, 10, 7, 8, 0, 6];
    for (i, score) in scores.iter().enumerate() {
        let id = format!("rp{i}");
        app.create_subject(&id, json!({"region": "DE"})).await;
        app.patch(
            &format!("/v1/subjects/{id}/profile"),
            &app.service(),
            &json!({"attributes": {"plan": {"value": if i % 2 == 0 {"pro"} else {"free"}, "category": "user.account"}}}),
        )
        .await;
        app.event(&id, "onboarding.completed").await;
        let offer: Value = app.next(&id, None).await.json().await.unwrap();
        let mut answers = json!({"score": score});
        if *score <= 6 && i != 7 {
            answers["why_low"] = json!("slow");
        }
        if *score >= 9 {
            answers["best"] = json!(["speed", "price"]);
        }
        let answered = app
            .answer("nps-rep", json!({"subject_id": id, "display_id": offer["display_id"], "answers": answers, "finished": i != 7}))
            .await;
        assert_eq!(answered.status(), 200);
        if i == 3 {
            app.clock.advance(TimeDelta::days(7));
        }
    }
    let report = app
        .get_json(
            "/v1/surveys/nps-rep/report?interval=week&by=plan",
            &app.admin(),
        )
        .await;
    assert_eq!(report["displays"], 8);
    assert_eq!(report["responses"], 8);
    assert_eq!(report["finished"], 7);
    assert_eq!(report["response_rate"], 1.0);
    let nps = &report["nps"];
    assert_eq!(
        (
            nps["n"].clone(),
            nps["promoters"].clone(),
            nps["passives"].clone(),
            nps["detractors"].clone()
        ),
        (json!(8), json!(4), json!(2), json!(2))
    );
    // p = 0.5, d = 0.25: NPS 25; MoE = 196·√((0.75 − 0.0625)/8) = 57.46 → 57.5.
    assert_eq!(nps["score"], 25.0);
    assert_eq!(nps["margin_of_error"], 57.5);
    assert_eq!(nps["promoters_pct"], 50.0);
    let trend = report["trend"].as_array().unwrap();
    assert_eq!(trend.len(), 2);
    assert_eq!(trend[0]["n"], 4);
    assert_eq!(trend[0]["nps"]["score"], 100.0);
    assert_eq!(trend[1]["nps"]["score"], -50.0);
    let groups = report["breakdown"]["groups"].as_array().unwrap();
    let pro = groups.iter().find(|g| g["value"] == "pro").unwrap();
    assert_eq!(pro["n"], 4);
    let best = report["questions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["id"] == "best")
        .unwrap();
    assert_eq!(best["answered"], 4);
    assert_eq!(
        best["distribution"],
        json!([{"value": "speed", "count": 4}, {"value": "price", "count": 4}])
    );
    let why = report["questions"][1]["text_answers"].as_array().unwrap();
    assert_eq!(why.len(), 1);
    // A period with nothing in it has a null score, not 0.
    let empty = app
        .get_json(
            "/v1/surveys/nps-rep/report?from=2020-01-01&to=2020-02-01",
            &app.admin(),
        )
        .await;
    assert_eq!(empty["nps"]["score"], Value::Null);
    assert_eq!(empty["nps"]["n"], 0);
    let bad = app
        .get(
            "/v1/surveys/nps-rep/report?from=yesterday&interval=year",
            &app.admin(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    problem(
        app.get("/v1/surveys/nps-rep/report", &app.service())
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;

    let compliance = app.token(Role::Compliance, Some("officer"));
    let csv = app
        .get("/v1/surveys/nps-rep/responses?format=csv", &compliance)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "response_id,subject_id,version,display_id,finished,started_at,updated_at,finished_at,score,why_low,best"
    );
    assert_eq!(lines.count(), 8);
    assert!(csv.contains(",speed;price"));
    let jsonl = app
        .get("/v1/surveys/nps-rep/responses", &compliance)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 8);
    let first = lines.iter().find(|l| l["subject_id"] == "rp0").unwrap();
    assert_eq!(first["answers"]["score"], 10);
    assert_eq!(app.audit_count("survey.responses_exported").await, 2);
}

#[tokio::test]
async fn survey_data_is_in_the_access_bundle_and_goes_with_erasure() {
    let app = spawn_app().await;
    app.create_survey(nps_survey("nps-e")).await;
    app.create_subject("er1", json!({"region": "DE"})).await;
    app.event("er1", "onboarding.completed").await;
    app.next("er1", None).await;
    app.answer(
        "nps-e",
        json!({"subject_id": "er1", "answers": {"score": 2}, "finished": false}),
    )
    .await;
    let compliance = app.token(Role::Compliance, Some("officer"));
    let bundle = app.get_json("/v1/subjects/er1/export", &compliance).await;
    assert_eq!(bundle["survey_responses"][0]["answers"]["score"], 2);
    assert_eq!(bundle["survey_displays"].as_array().unwrap().len(), 1);
    assert_eq!(bundle["survey_followups"].as_array().unwrap().len(), 1);
    let names: Vec<&str> = bundle["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "onboarding.completed",
            // The journey starts with the first event; every NPS score is told.
            "journey.stage_changed",
            "survey.nps_answered",
            "survey.detractor"
        ]
    );

    let erased = app
        .client
        .delete(app.url("/v1/subjects/er1"))
        .bearer_auth(&compliance)
        .send()
        .await
        .unwrap();
    assert!(erased.status().is_success());
    assert_eq!(app.next("er1", None).await.status(), 204);
    let report = app.get_json("/v1/surveys/nps-e/report", &app.admin()).await;
    assert_eq!(
        (report["responses"].clone(), report["displays"].clone()),
        (json!(0), json!(0))
    );
    let feed = app.get_json("/v1/events", &app.service()).await;
    assert_eq!(feed["events"].as_array().unwrap().len(), 0);
    let followups = app
        .get_json("/v1/surveys/nps-e/followups", &app.admin())
        .await;
    assert_eq!(followups["followups"].as_array().unwrap().len(), 0);
    let verify = app.get_json("/v1/audit/verify", &compliance).await;
    assert_eq!(verify["ok"], true);
}

#[tokio::test]
async fn no_cell_of_the_responses_csv_runs_in_a_spreadsheet() {
    let app = spawn_app().await;
    app.create_survey(nps_survey("nps-csv")).await;
    let typed = [
        ("cs1", "=HYPERLINK(\"https://evil.example\")"),
        ("cs2", "'=1+1"),
        ("cs3", "@SUM(A1)"),
    ];
    for (id, text) in typed {
        app.create_subject(id, json!({"region": "DE"})).await;
        app.event(id, "onboarding.completed").await;
        app.next(id, None).await;
        let answered = app
            .answer(
                "nps-csv",
                json!({"subject_id": id, "answers": {"score": 2, "why_low": text}, "finished": true}),
            )
            .await;
        assert_eq!(answered.status(), 200, "{}", answered.text().await.unwrap());
    }
    let compliance = app.token(Role::Compliance, Some("officer"));
    let csv = app
        .get("/v1/surveys/nps-csv/responses?format=csv", &compliance)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let cells: Vec<String> = csv::Reader::from_reader(csv.as_bytes())
        .records()
        .flat_map(|r| r.unwrap().iter().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    assert!(
        cells
            .iter()
            .all(|c| !c.starts_with(['=', '+', '-', '@', '\t', '\r'])),
        "{csv}"
    );
    // Each cell reads back to what was typed by dropping one leading `'`.
    for (_, text) in typed {
        assert!(
            cells.iter().any(|c| c.strip_prefix('\'') == Some(text)),
            "{text} in {csv}"
        );
    }
}

#[tokio::test]
async fn events_and_answers_are_kept_no_longer_than_retention_says() {
    let app = spawn_app().await;
    app.create_survey(nps_survey("nps-ret")).await;
    app.create_subject("rt1", json!({"region": "DE"})).await;
    app.event("rt1", "onboarding.completed").await;
    app.next("rt1", None).await;
    let answered = app
        .answer(
            "nps-ret",
            json!({"subject_id": "rt1", "answers": {"score": 4}, "finished": false}),
        )
        .await;
    assert_eq!(answered.status(), 200);
    let pseudonyms = std::sync::Arc::new(
        consentry::audit::Pseudonymizer::load_or_generate(&app.data_dir, None).unwrap(),
    );
    let mut retention = consentry::policy::load(&crate::helpers::policies_dir())
        .unwrap()
        .retention;
    let run = |retention: consentry::policy::Retention, days: i64| {
        let pseudonyms = pseudonyms.clone();
        let at = crate::helpers::start_time() + TimeDelta::days(days);
        app.app_db
            .run(move |conn| consentry::dsar::retention::run(conn, &retention, &pseudonyms, at))
    };
    // Within both periods nothing goes.
    let report = run(retention, 300).await.unwrap();
    assert_eq!(
        (report.events_deleted, report.survey_responses_deleted),
        (0, 0)
    );
    // Past the events' period (365 days) the events go (with the journey's first stage
    // and the NPS score told); the answers stay until 730.
    let report = run(retention, 400).await.unwrap();
    assert_eq!(
        (report.events_deleted, report.survey_responses_deleted),
        (4, 0)
    );
    retention.survey_responses_days = 500;
    let report = run(retention, 501).await.unwrap();
    assert_eq!(
        (
            report.survey_responses_deleted,
            report.survey_displays_deleted
        ),
        (1, 1)
    );
    let report = app
        .get_json("/v1/surveys/nps-ret/report", &app.admin())
        .await;
    assert_eq!(
        (report["responses"].clone(), report["nps"]["n"].clone()),
        (json!(0), json!(0))
    );
    let followups = app
        .get_json("/v1/surveys/nps-ret/followups", &app.admin())
        .await;
    assert_eq!(followups["followups"].as_array().unwrap().len(), 0);
    // The profile keeps what was written back: it is the profile's now.
    let profile = app
        .get_json("/v1/subjects/rt1/profile", &app.service())
        .await;
    assert_eq!(profile["attributes"]["nps.score"]["value"], 4);
    // The first run had nothing to do and recorded nothing.
    assert_eq!(app.audit_count("retention.run").await, 2);
}

#[tokio::test]
async fn each_subject_keeps_only_its_latest_events() {
    let app = spawn_app().await;
    app.create_subject("cap1", json!({"region": "DE"})).await;
    let now = crate::helpers::start_time();
    let kept = app
        .app_db
        .run(move |conn| {
            for n in 0..5 {
                consentry::surveys::events::record(
                    conn,
                    "cap1",
                    &format!("step.n{n}"),
                    &json!({}),
                    now,
                    now,
                    3,
                )?;
            }
            consentry::surveys::events::of_subject(conn, "cap1")
        })
        .await
        .unwrap();
    let names: Vec<&str> = kept.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["step.n2", "step.n3", "step.n4"]);
}

#[tokio::test]
async fn a_follow_up_follows_the_score_while_the_response_is_open() {
    let app = spawn_app().await;
    app.create_survey(nps_survey("nps-f")).await;
    app.create_subject("fu1", json!({"region": "DE"})).await;
    let partial = |score: i64| {
        app.answer(
            "nps-f",
            json!({"subject_id": "fu1", "answers": {"score": score}, "finished": false}),
        )
    };
    let opened: Value = partial(2).await.json().await.unwrap();
    let id = opened["followup_id"].as_str().unwrap().to_owned();
    partial(10).await;
    let list = app
        .get_json("/v1/surveys/nps-f/followups", &app.admin())
        .await;
    assert_eq!(list["followups"][0]["status"], "closed");
    assert_eq!(list["followups"][0]["resolution"], "score_changed");
    // Back to a detractor: the same follow-up opens again, and support hears of it again.
    let again: Value = partial(5).await.json().await.unwrap();
    assert_eq!(again["followup_id"], id.as_str());
    let open = app
        .get_json("/v1/surveys/nps-f/followups?status=open", &app.admin())
        .await;
    assert_eq!(open["followups"][0]["score"], 5);
    let feed = app
        .get_json("/v1/events?name=survey.detractor", &app.service())
        .await;
    assert_eq!(feed["events"].as_array().unwrap().len(), 2);
    // A customer answers only what they were shown.
    let own = app.token(Role::Subject, Some("fu1"));
    let unshown = app
        .post(
            "/v1/surveys/nps-f/responses",
            &own,
            &json!({"subject_id": "fu1", "answers": {"score": 9}, "finished": false}),
        )
        .await;
    assert_eq!(invalid_fields(unshown).await, ["display_id"]);
}

#[tokio::test]
async fn long_text_answers_are_kept_whole() {
    let app = spawn_app().await;
    let mut survey = nps_survey("nps-long");
    survey["questions"][1]["max_length"] = json!(10000);
    app.create_survey(survey).await;
    app.create_subject("lt1", json!({"region": "DE"})).await;
    // 6,000 Arabic letters: 12 kB of UTF-8, far past any index entry's size.
    let long = "ع".repeat(6000);
    let answered = app
        .answer(
            "nps-long",
            json!({"subject_id": "lt1", "answers": {"score": 1, "why_low": long}, "finished": true}),
        )
        .await;
    assert_eq!(answered.status(), 200);
    let report = app
        .get_json("/v1/surveys/nps-long/report", &app.admin())
        .await;
    assert_eq!(
        report["questions"][1]["text_answers"][0]["text"],
        long.as_str()
    );
    // A question that changes type needs a new id, so answers stay comparable.
    let survey = app.get_json("/v1/surveys/nps-long", &app.admin()).await;
    let mut changed = survey["questions"].clone();
    changed[1] = json!({"id": "why_low", "type": "boolean", "prompt": {"en": "Was it slow?"},
                        "show_if": {"question": "score", "op": "lte", "value": 6}});
    let refused = app
        .patch(
            "/v1/surveys/nps-long",
            &app.admin(),
            &json!({"questions": changed}),
        )
        .await;
    assert_eq!(invalid_fields(refused).await, ["questions[1].type"]);
}
