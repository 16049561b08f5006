//! The compliance console through HTTP as an officer's browser without JavaScript uses
//! it: a console link, the session cookie, pages per section, forms with their token.

use chrono::TimeDelta;
use consentry::auth::Role;
use reqwest::Response;
use serde_json::{json, Value};

use crate::audit::jwks;
use crate::helpers::{spawn_app, TestApp};
use crate::pages::{form_token, part, Visitor};
use crate::surveys::nps_survey;

async fn get_with(app: &TestApp, cookie: &str, path: &str) -> Response {
    app.client
        .get(app.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

const SECTIONS: [&str; 6] = [
    "/console",
    "/console/consents",
    "/console/surveys",
    "/console/followups",
    "/console/requests",
    "/console/audit",
];

#[tokio::test]
async fn only_officers_reach_the_console_and_each_only_their_sections() {
    let app = spawn_app().await;
    app.create_subject("cust-1", json!({"region": "DE"})).await;
    // A customer's session finds no console at all.
    let response = app
        .client
        .post(app.url("/v1/subjects/cust-1/portal-sessions"))
        .bearer_auth(app.service())
        .send()
        .await
        .unwrap();
    let url = response.json::<Value>().await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let entered = app.client.get(&url).send().await.unwrap();
    let customer = entered.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    for path in SECTIONS
        .into_iter()
        .chain(["/console/audit/verify", "/console/requests/x"])
    {
        assert_eq!(
            get_with(&app, &customer, path).await.status(),
            404,
            "{path}"
        );
        assert_eq!(
            app.client.get(app.url(path)).send().await.unwrap().status(),
            401
        );
    }
    let customer_csrf = form_token(
        &get_with(&app, &customer, "/portal")
            .await
            .text()
            .await
            .unwrap(),
    );
    let export = app
        .client
        .post(app.url("/console/audit/export"))
        .header("cookie", &customer)
        .form(&[("csrf", customer_csrf.as_str()), ("format", "jsonl")])
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), 404);
    assert_eq!(app.audit_count("audit.exported").await, 0);

    // Services cannot make console links.
    let response = app
        .client
        .post(app.url("/v1/console-sessions"))
        .bearer_auth(app.service())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    let dpo = Visitor::officer(&app, Role::Compliance, "dpo").await;
    let overview = dpo.page("/console").await;
    assert!(overview.contains("Compliance console"));
    assert!(overview.contains("Signed in as dpo (compliance officer)"));
    for path in &SECTIONS[1..] {
        assert!(overview.contains(&format!("href=\"{path}\"")), "{path}");
        let page = dpo.page(path).await;
        assert!(page.contains("aria-current=\"page\""), "{path}");
    }
    // A console session never changes a customer's choices.
    let response = dpo
        .post(
            "/portal/consents",
            &[("purpose", "analytics"), ("status", "granted")],
        )
        .await;
    assert_eq!(response.status(), 404);
    assert_eq!(dpo.get("/portal").await.status(), 404);
    assert!(app.ledger("cust-1").await.is_empty());

    // An administrator reads what an administrator reads through the API.
    let admin = Visitor::officer(&app, Role::Admin, "ops").await;
    let overview = admin.page("/console").await;
    assert!(!overview.contains("href=\"/console/audit\""));
    for path in [
        "/console/consents",
        "/console/surveys",
        "/console/followups",
    ] {
        admin.page(path).await;
    }
    for path in [
        "/console/audit",
        "/console/audit/verify",
        "/console/requests",
    ] {
        let response = admin.get(path).await;
        assert_eq!(response.status(), 403, "{path}");
        assert!(response
            .text()
            .await
            .unwrap()
            .contains("Not available to your role"));
    }
    let response = admin
        .post("/console/audit/export", &[("format", "jsonl")])
        .await;
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn consent_rates_count_each_jurisdictions_answers() {
    let app = spawn_app().await;
    for (id, region) in [
        ("a1", "DE"),
        ("a2", "DE"),
        ("a3", "FR"),
        ("a4", "DE"),
        ("c1", "US-CA"),
    ] {
        app.create_subject(id, json!({"region": region})).await;
    }
    app.put_consent("a1", "analytics", "granted").await;
    app.put_consent("a2", "analytics", "granted").await;
    app.put_consent("a3", "analytics", "denied").await;
    app.put_consent("c1", "analytics", "denied").await;
    let dpo = Visitor::officer(&app, Role::Compliance, "dpo").await;
    let page = dpo.page("/console/consents").await;
    let eea = part(&page, "data-jurisdiction=\"rates-eea\"", "</section>");
    assert!(
        eea.contains("European Economic Area — 4 customers"),
        "{eea}"
    );
    let row = part(eea, "data-purpose=\"analytics\"", "</tr>");
    assert!(row.contains(">2 (50.0%)<"), "{row}");
    assert!(row.contains(">1 (25.0%)<") && row.contains(">4<"), "{row}");
    // The chart draws the same figures, named for assistive technology.
    assert!(eea.contains("<svg") && eea.contains("role=\"img\""));
    assert!(eea.contains("Allowed: 2 (50.0%)"), "{eea}");
    let ca = part(&page, "data-jurisdiction=\"rates-us_ca\"", "</section>");
    let row = part(ca, "data-purpose=\"analytics\"", "</tr>");
    assert!(row.contains(">1 (100.0%)<"), "{row}");
    // Necessary purposes have nothing to answer.
    assert!(!eea.contains("data-purpose=\"essential\""));

    // In Arabic the page mirrors, the chart does not.
    let page = dpo.page("/console/consents?lang=ar").await;
    assert!(page.contains("<html lang=\"ar\" dir=\"rtl\">"));
    assert!(page.contains("direction=\"ltr\""));
    assert!(page.contains("٢ (٥٠٫٠٪)"), "Arabic digits");
}

/// Answers the NPS survey `key` as a new customer `id` with `score`.
async fn nps_answer(app: &TestApp, key: &str, id: &str, score: i64) -> Value {
    app.create_subject(id, json!({"region": "DE"})).await;
    app.event(id, "onboarding.completed").await;
    let offer: Value = app.next(id, None).await.json().await.unwrap();
    let response = app
        .answer(
            key,
            json!({"subject_id": id, "display_id": offer["display_id"], "answers": {"score": score}, "finished": false}),
        )
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn nps_trends_are_drawn_with_their_margin_of_error_and_counts() {
    let app = spawn_app().await;
    app.create_survey(nps_survey("nps-c")).await;
    let dpo = Visitor::officer(&app, Role::Compliance, "dpo").await;
    let page = dpo.page("/console/surveys").await;
    assert!(page.contains("data-survey=\"nps-c\""));
    assert!(page.contains("No answers yet."));

    for (i, score) in [10, 9, 7, 3].into_iter().enumerate() {
        nps_answer(&app, "nps-c", &format!("w1-{i}"), score).await;
    }
    app.clock.advance(TimeDelta::days(7));
    for (i, score) in [10, 2].into_iter().enumerate() {
        nps_answer(&app, "nps-c", &format!("w2-{i}"), score).await;
    }
    // A week later the first session has ended: a new link.
    let dpo = Visitor::officer(&app, Role::Compliance, "dpo").await;
    let page = dpo.page("/console/surveys").await;
    let survey = part(&page, "data-survey=\"nps-c\"", "</section>");
    // 3 promoters, 1 passive, 2 detractors of 6: NPS 16.7, MoE 71.8.
    assert!(
        survey.contains("Overall NPS 16.7 ± 71.8 from 6 answers."),
        "{survey}"
    );
    assert!(survey.contains("<polygon class=\"chart-band\""), "{survey}");
    assert!(survey.contains("<polyline class=\"chart-line\""));
    assert!(survey.contains(">n = 4<") && survey.contains(">n = 2<"));
    // The table has each week's count, score and margin.
    assert!(survey.contains("23 November 2026"), "{survey}");
    assert!(survey.contains("<td class=\"num\">4</td><td class=\"num\">25.0</td>"));
    assert!(survey.contains("<td class=\"num\">2</td><td class=\"num\">0.0</td>"));
}

#[tokio::test]
async fn a_follow_up_closes_from_the_page_with_the_sessions_token() {
    let app = spawn_app().await;
    app.create_survey(nps_survey("nps-f")).await;
    let answered = nps_answer(&app, "nps-f", "d1", 2).await;
    let followup = answered["followup_id"].as_str().unwrap().to_owned();
    let path = format!("/console/followups/{followup}");

    // A compliance officer sees it with the form that closes it.
    let dpo = Visitor::officer(&app, Role::Compliance, "dpo").await;
    let page = dpo.page("/console/followups").await;
    assert!(page.contains(&format!("data-followup=\"{followup}\"")));
    assert!(page.contains(&format!("action=\"{path}\"")));
    let survey_id = app.get_json("/v1/surveys/nps-f", &app.admin()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let ops = Visitor::officer(&app, Role::Admin, "ops").await;
    let page = ops.page("/console/followups").await;
    let item = part(&page, &format!("data-followup=\"{followup}\""), "</li>");
    assert!(
        item.contains("score 2") && item.contains(">d1</bdi>"),
        "{item}"
    );
    assert!(item.contains(&format!("<label for=\"resolution-{followup}\">")));
    // Without the session's token, nothing happens.
    let forged = ops
        .post_form(
            &path,
            &[("survey", survey_id.as_str()), ("resolution", "x")],
        )
        .await;
    assert_eq!(forged.status(), 403);
    let long = "x".repeat(2_001);
    let too_long = ops
        .post(&path, &[("survey", &survey_id), ("resolution", &long)])
        .await;
    assert_eq!(too_long.status(), 422);
    let text = too_long.text().await.unwrap();
    assert!(text.contains(&format!("aria-describedby=\"resolution-{followup}-error\"")));
    let open = app
        .get_json("/v1/surveys/nps-f/followups?status=open", &app.admin())
        .await;
    assert_eq!(open["followups"].as_array().unwrap().len(), 1);

    let closed = ops
        .post(
            &path,
            &[("survey", &survey_id), ("resolution", "Called back")],
        )
        .await;
    assert_eq!(closed.status(), 303);
    assert_eq!(
        closed.headers()["location"],
        "/console/followups?done=closed"
    );
    let list = app
        .get_json("/v1/surveys/nps-f/followups", &app.admin())
        .await;
    assert_eq!(list["followups"][0]["status"], "closed");
    assert_eq!(list["followups"][0]["closed_by"], "admin:ops");
    assert_eq!(list["followups"][0]["resolution"], "Called back");
    assert_eq!(app.audit_count("survey.followup_closed").await, 1);
    let page = ops.page("/console/followups?done=closed").await;
    assert!(
        page.contains("The follow-up was closed.")
            && page.contains("There are no open follow-ups.")
    );
    let again = ops.post(&path, &[("survey", &survey_id)]).await;
    assert_eq!(
        again.headers()["location"],
        "/console/followups?done=already-closed"
    );
    // A follow-up of another survey is not found.
    let other = ops.post(&path, &[("survey", "nope")]).await;
    assert_eq!(other.status(), 404);
}

async fn file(app: &TestApp, subject: &str, kind: &str) -> String {
    let response = app
        .client
        .post(app.url("/v1/dsar"))
        .bearer_auth(app.service())
        .json(&json!({"subject_id": subject, "kind": kind}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn requests_overdue_and_due_within_a_week_are_listed_with_their_detail() {
    let app = spawn_app().await;
    app.create_subject("eu", json!({"region": "DE"})).await;
    app.create_subject("ca", json!({"region": "US-CA"})).await;
    // Filed 2026-11-23: the EEA one is due a month later, the Californian one in 45 days.
    let late = file(&app, "eu", "access").await;
    let soon = file(&app, "ca", "opt_out_sale").await;
    app.clock.advance(TimeDelta::days(40));
    let later = file(&app, "eu", "erasure").await;
    let dpo = Visitor::officer(&app, Role::Compliance, "dpo").await;
    let page = dpo.page("/console/requests").await;
    let overdue = part(&page, "id=\"overdue\"", "</section>");
    let due = part(&page, "id=\"due-soon\"", "</section>");
    assert!(
        overdue.contains(&format!("href=\"/console/requests/{late}\"")),
        "{overdue}"
    );
    assert!(!overdue.contains(&soon));
    assert!(
        due.contains(&format!("href=\"/console/requests/{soon}\"")),
        "{due}"
    );
    assert!(due.contains("7 January 2027"), "{due}");
    assert!(!page.contains(&later), "due in a month: not listed");

    let detail = dpo.page(&format!("/console/requests/{late}")).await;
    assert!(detail.contains("This request is overdue."));
    assert!(detail.contains("Copy of your data") && detail.contains(">eu</bdi>"));
    assert!(detail.contains("23 December 2026"), "the due date");
    assert!(detail.contains("Received"), "the history");
    assert_eq!(dpo.get("/console/requests/nope").await.status(), 404);

    // Completed requests are no longer due.
    let compliance = app.token(Role::Compliance, Some("dpo"));
    for status in ["verified", "in_progress", "completed"] {
        let response = app
            .client
            .patch(app.url(&format!("/v1/dsar/{soon}")))
            .bearer_auth(&compliance)
            .json(&json!({"status": status}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{status}");
    }
    let page = dpo.page("/console/requests").await;
    assert!(!page.contains(&soon));
    assert!(page.contains("Nothing else is due in the next 7 days."));
}

#[tokio::test]
async fn the_chain_verifies_with_a_signed_head_and_exports_download_verifiable() {
    use consentry::audit::export::verify_export;
    let app = spawn_app().await;
    app.create_subject("x1", json!({"region": "DE"})).await;
    app.put_consent("x1", "analytics", "granted").await;
    let dpo = Visitor::officer(&app, Role::Compliance, "dpo").await;
    let page = dpo.page("/console/audit").await;
    assert!(page.contains("<label for=\"export-from\">"));
    assert!(!page.contains("data-verified"));

    let page = dpo.page("/console/audit/verify").await;
    assert!(page.contains("data-verified=\"ok\""), "{page}");
    assert!(page.contains("The chain is intact"));
    let head = part(&page, "id=\"signed-head\"", "</textarea>");
    let jws = head[head.find('>').unwrap() + 1..].trim();
    let keys = jwks(&app).await;
    let key = jsonwebtoken::DecodingKey::from_ed_components(keys["keys"][0]["x"].as_str().unwrap())
        .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    let claims = jsonwebtoken::decode::<Value>(jws, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["ok"], true);
    assert!(claims["head_seq"].as_i64().unwrap() >= 3, "{claims}");

    // Exports stream as files that verify offline, and each is recorded.
    for (format, content_type) in [("jsonl", "application/jsonl"), ("csv", "text/csv")] {
        let response = dpo
            .post(
                "/console/audit/export",
                &[("from", ""), ("to", ""), ("format", format)],
            )
            .await;
        assert_eq!(response.status(), 200, "{format}");
        let headers = response.headers().clone();
        assert!(headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with(content_type));
        assert!(headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment"));
        assert!(headers.get("content-length").is_none(), "streamed");
        let body = response.text().await.unwrap();
        let report = verify_export(&body, Some(&keys)).unwrap();
        assert!(report.signature_checked && report.events >= 3, "{format}");
    }
    assert_eq!(app.audit_count("audit.exported").await, 2);

    // A range of days covers them whole; a day after the events has none of them.
    let day = dpo
        .post(
            "/console/audit/export",
            &[
                ("from", "2026-11-23"),
                ("to", "2026-11-23"),
                ("format", "jsonl"),
            ],
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(verify_export(&day, Some(&keys)).unwrap().events >= 3);
    let after = dpo
        .post(
            "/console/audit/export",
            &[("from", "2026-11-24"), ("to", ""), ("format", "jsonl")],
        )
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(verify_export(&after, Some(&keys)).unwrap().events, 0);

    // Wrong dates are named beside their field; without the token nothing is exported.
    let bad = dpo
        .post(
            "/console/audit/export",
            &[
                ("from", "23/11/2026"),
                ("to", "2026-11-01"),
                ("format", "csv"),
            ],
        )
        .await;
    assert_eq!(bad.status(), 422);
    let text = bad.text().await.unwrap();
    assert!(text.contains("aria-describedby=\"export-from-error\""));
    assert!(text.contains("value=\"23/11/2026\""));
    let forged = dpo
        .post_form("/console/audit/export", &[("format", "jsonl")])
        .await;
    assert_eq!(forged.status(), 403);
    assert_eq!(app.audit_count("audit.exported").await, 4);
}

#[tokio::test]
async fn the_console_link_command_prints_a_link_that_opens_the_console() {
    let app = spawn_app().await;
    // The command reads the real clock; the server's follows it here.
    app.clock.set(chrono::Utc::now());
    let env = [
        ("CONSENTRY_DATA_DIR", app.data_dir.to_str().unwrap()),
        ("CONSENTRY_DATABASE_URL", app.db.url.as_str()),
        ("CONSENTRY_PUBLIC_URL", app.address.as_str()),
    ];
    let out = crate::cli::consentry(
        &[
            "console-link",
            "--role",
            "compliance",
            "--sub",
            "dpo-cli",
            "--locale",
            "ar",
        ],
        &env,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        url.starts_with(&format!("{}/portal/enter/", app.address)),
        "{url}"
    );
    let officer = Visitor::enter(&app, &url).await;
    let page = officer.page("/console").await;
    assert!(page.contains("<html lang=\"ar\" dir=\"rtl\">"));
    assert!(page.contains("dpo-cli"));
    assert_eq!(app.client.get(&url).send().await.unwrap().status(), 410);

    for args in [
        &["console-link", "--role", "service", "--sub", "svc"][..],
        &["console-link", "--role", "compliance", "--sub", ""][..],
    ] {
        let out = crate::cli::consentry(args, &env);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(out.stdout.is_empty());
    }
}

#[tokio::test]
async fn a_completed_erasure_shows_which_recipients_confirmed() {
    let app = spawn_app().await;
    app.create_subject("eu", json!({"region": "DE"})).await;
    let erasure = file(&app, "eu", "erasure").await;
    let compliance = app.token(Role::Compliance, Some("dpo"));
    let dpo = Visitor::officer(&app, Role::Compliance, "dpo").await;
    let before = dpo.page(&format!("/console/requests/{erasure}")).await;
    assert!(before.contains("No recipient is concerned, or the request is not completed yet."));
    for status in ["verified", "in_progress", "completed"] {
        let response = app
            .client
            .patch(app.url(&format!("/v1/dsar/{erasure}")))
            .bearer_auth(&compliance)
            .json(&json!({"status": status}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{status}");
    }
    // The shipped policy's ad platform has no webhook: told by other means.
    let detail = dpo.page(&format!("/console/requests/{erasure}")).await;
    let recipients = part(&detail, "id=\"recipients-heading\"", "</section>");
    assert!(recipients.contains(">ad_platform</bdi>"), "{recipients}");
    assert!(recipients.contains("Not told yet"), "{recipients}");

    let pseudonyms =
        consentry::audit::Pseudonymizer::load_or_generate(&app.data_dir, None).unwrap();
    let token = consentry::delivery::notices::token(&pseudonyms, &erasure, "ad_platform");
    let confirmed = app
        .client
        .post(app.url(&format!("/v1/dsar/{erasure}/acknowledgements")))
        .json(&json!({"recipient": "ad_platform", "token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), 204);
    let detail = dpo.page(&format!("/console/requests/{erasure}")).await;
    let recipients = part(&detail, "id=\"recipients-heading\"", "</section>");
    assert!(recipients.contains("Confirmed"), "{recipients}");
    assert!(recipients.contains("with its token"), "{recipients}");
    let arabic = dpo
        .page(&format!("/console/requests/{erasure}?lang=ar"))
        .await;
    assert!(arabic.contains("برمزها"), "the Arabic page");
}
