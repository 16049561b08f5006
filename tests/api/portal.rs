//! The preference centre through HTTP as a browser without JavaScript uses it: links,
//! the session cookie, forms with their token, and what each page says.

use chrono::TimeDelta;
use consentry::auth::Role;
use consentry::http::limits::LimitSettings;
use serde_json::{json, Value};

use crate::helpers::{problem, spawn_app, spawn_app_with, TestApp, TestOptions};
use crate::pages::{centre_link, Visitor};
use crate::surveys::nps_survey;

async fn decision(app: &TestApp, subject: &str, purpose: &str) -> String {
    let response = app
        .client
        .post(app.url("/v1/decisions"))
        .bearer_auth(app.service())
        .json(&json!({"subject_id": subject, "purpose": purpose}))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    body["decision"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_link_opens_once_into_the_centre_and_a_used_or_forged_one_says_so() {
    let app = spawn_app().await;
    app.create_subject("cust-1", json!({"region": "DE"})).await;
    let url = centre_link(&app, "cust-1", json!({})).await;
    assert!(url.starts_with(&app.address), "{url}");
    let visitor = Visitor::enter(&app, &url).await;
    let page = visitor.page("/portal").await;
    assert!(page.contains("<html lang=\"en\" dir=\"ltr\">"));
    assert!(page.contains("data-purpose=\"analytics\""));
    assert!(page.contains("Off: you have not agreed to this."));
    assert!(page.contains("Always on: needed to provide the service."));
    assert_eq!(page.matches("<h1>").count(), 1);

    let again = app.client.get(&url).send().await.unwrap();
    assert_eq!(again.status(), 410);
    let text = again.text().await.unwrap();
    assert!(text.contains("This link was already used"), "{text}");

    let forged = format!("{}/portal/enter/{}", app.address, "A".repeat(43));
    let response = app.client.get(&forged).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("This link does not work"));
    let garbage = app
        .client
        .get(app.url("/portal/enter/%3Cscript%3E"))
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 404);

    // Without a cookie, or with a made-up one, the centre is a "session ended" page.
    let response = app.client.get(app.url("/portal")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("Your session has ended"));
}

#[tokio::test]
async fn links_expire_and_sessions_end_when_idle_or_signed_out() {
    let app = spawn_app().await;
    app.create_subject("cust-1", json!({"region": "DE"})).await;
    let url = centre_link(&app, "cust-1", json!({})).await;
    app.clock.advance(TimeDelta::minutes(16));
    let response = app.client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 410);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("This link has expired"));

    let visitor = Visitor::open(&app, "cust-1").await;
    app.clock.advance(TimeDelta::minutes(29));
    visitor.page("/portal").await;
    app.clock.advance(TimeDelta::minutes(31));
    assert_eq!(visitor.get("/portal").await.status(), 401);

    let visitor = Visitor::open(&app, "cust-1").await;
    let response = visitor.post("/portal/sign-out", &[]).await;
    assert_eq!(response.status(), 200);
    assert!(response
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    // The old cookie opens nothing: the session ended on the server.
    assert_eq!(visitor.get("/portal").await.status(), 401);
}

#[tokio::test]
async fn withdrawing_in_the_centre_is_denied_by_the_gate_at_once_and_audited() {
    let app = spawn_app().await;
    app.create_subject("cust-1", json!({"region": "DE"})).await;
    let visitor = Visitor::open(&app, "cust-1").await;
    assert_eq!(decision(&app, "cust-1", "analytics").await, "deny");
    let response = visitor
        .post(
            "/portal/consents",
            &[("purpose", "analytics"), ("status", "granted")],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/portal?done=saved");
    assert_eq!(decision(&app, "cust-1", "analytics").await, "allow");
    let page = visitor.page("/portal?done=saved").await;
    assert!(page.contains("Your choice was saved."));
    assert!(page.contains("On: you agreed on"));

    visitor
        .post(
            "/portal/consents",
            &[("purpose", "analytics"), ("status", "denied")],
        )
        .await;
    assert_eq!(decision(&app, "cust-1", "analytics").await, "deny");
    let page = visitor.page("/portal").await;
    assert!(page.contains("Off: you said no on"));

    let ledger = app.ledger("cust-1").await;
    assert!(ledger.iter().all(|r| r["source"] == "portal"), "{ledger:?}");
    assert!(
        ledger.iter().all(|r| r["actor"]["role"] == "subject"),
        "{ledger:?}"
    );
    assert_eq!(app.audit_count("consent.denied").await, 1);
    // The audit event names the customer as actor and the portal as the way in.
    let (role, payload) = app
        .app_db
        .run(|conn| {
            use consentry::storage::schema::audit_events::dsl;
            use diesel::prelude::*;
            dsl::audit_events
                .filter(dsl::action.eq("consent.denied"))
                .select((dsl::actor_role, dsl::payload))
                .first::<(String, String)>(conn)
                .map_err(consentry::storage::StorageError::from)
        })
        .await
        .unwrap();
    assert_eq!(role, "subject");
    assert!(payload.contains("\"via\":\"portal\""), "{payload}");

    // One step turns every optional purpose off; what is necessary stays on.
    visitor
        .post(
            "/portal/consents",
            &[("purpose", "marketing"), ("status", "granted")],
        )
        .await;
    let response = visitor.post("/portal/consents/all-off", &[]).await;
    assert_eq!(response.status(), 303);
    for purpose in [
        "marketing",
        "marketing.email",
        "analytics",
        "functional.service.improve",
    ] {
        assert_eq!(decision(&app, "cust-1", purpose).await, "deny", "{purpose}");
    }
    assert_eq!(decision(&app, "cust-1", "essential").await, "allow");

    // A necessary purpose cannot be refused, even by a hand-made form.
    let response = visitor
        .post(
            "/portal/consents",
            &[("purpose", "essential"), ("status", "denied")],
        )
        .await;
    assert_eq!(response.status(), 404);
    assert_eq!(decision(&app, "cust-1", "essential").await, "allow");
}

#[tokio::test]
async fn the_browsers_gpc_signal_is_recorded_and_explained() {
    let app = spawn_app().await;
    app.create_subject("ca-1", json!({"region": "US-CA"})).await;
    let visitor = Visitor::open(&app, "ca-1").await;
    assert_eq!(decision(&app, "ca-1", "sale_and_sharing").await, "allow");
    let response = app
        .client
        .get(app.url("/portal"))
        .header("cookie", &visitor.cookie)
        .header("sec-gpc", "1")
        .send()
        .await
        .unwrap();
    let page = response.text().await.unwrap();
    assert!(page.contains("Off because your browser sends Global Privacy Control."));
    assert_eq!(decision(&app, "ca-1", "sale_and_sharing").await, "deny");
}

#[tokio::test]
async fn forms_without_the_sessions_token_or_from_another_site_change_nothing() {
    let app = spawn_app().await;
    app.create_subject("cust-1", json!({"region": "DE"})).await;
    app.create_subject("cust-2", json!({"region": "DE"})).await;
    let one = Visitor::open(&app, "cust-1").await;
    let two = Visitor::open(&app, "cust-2").await;
    let grant = [("purpose", "analytics"), ("status", "granted")];

    let no_token = app
        .client
        .post(app.url("/portal/consents"))
        .header("cookie", &one.cookie)
        .form(&grant)
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 403);

    let borrowed = Visitor {
        app: &app,
        cookie: one.cookie.clone(),
        csrf: two.csrf.clone(),
    };
    assert_eq!(
        borrowed.post("/portal/consents", &grant).await.status(),
        403
    );

    let mut form = vec![("csrf", one.csrf.as_str())];
    form.extend_from_slice(&grant);
    let cross_site = app
        .client
        .post(app.url("/portal/consents"))
        .header("cookie", &one.cookie)
        .header("origin", "https://evil.example")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403);
    assert!(cross_site
        .text()
        .await
        .unwrap()
        .contains("This form has expired"));
    assert_eq!(decision(&app, "cust-1", "analytics").await, "deny");
    assert_eq!(decision(&app, "cust-2", "analytics").await, "deny");
}

#[tokio::test]
async fn a_customers_session_reaches_only_that_customer() {
    let app = spawn_app().await;
    app.create_subject("cust-1", json!({"region": "DE"})).await;
    app.create_subject("cust-2", json!({"region": "DE"})).await;
    let one = Visitor::open(&app, "cust-1").await;
    let two = Visitor::open(&app, "cust-2").await;
    one.post("/portal/requests/access", &[]).await;
    two.post("/portal/requests/access", &[]).await;
    let request_of = |page: &str| {
        let end = page.find("/bundle\"").unwrap();
        page[end - 36..end].to_owned()
    };
    let (mine, theirs) = (
        request_of(&one.page("/portal").await),
        request_of(&two.page("/portal").await),
    );
    assert_ne!(mine, theirs);
    for (visitor, own, other) in [(&one, &mine, &theirs), (&two, &theirs, &mine)] {
        let page = visitor.page("/portal").await;
        assert!(!page.contains(other.as_str()));
        let response = visitor
            .get(&format!("/portal/requests/{other}/bundle"))
            .await;
        assert_eq!(response.status(), 404);
        let response = visitor.get(&format!("/portal/requests/{own}/bundle")).await;
        assert_eq!(response.status(), 200);
    }
    let page = one.page("/portal").await;
    assert!(page.contains(">cust-1</bdi>") && !page.contains("cust-2"));
    // Changing one customer's choices leaves the other's alone.
    one.post(
        "/portal/consents",
        &[("purpose", "analytics"), ("status", "granted")],
    )
    .await;
    assert_eq!(decision(&app, "cust-2", "analytics").await, "deny");
}

#[tokio::test]
async fn the_data_download_is_the_bundle_and_deleting_stops_all_but_the_necessary() {
    let app = spawn_app().await;
    app.create_subject("cust-1", json!({"region": "DE"})).await;
    let visitor = Visitor::open(&app, "cust-1").await;
    visitor
        .post(
            "/portal/consents",
            &[("purpose", "analytics"), ("status", "granted")],
        )
        .await;
    let response = visitor.post("/portal/requests/access", &[]).await;
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let page = visitor.page(&location).await;
    assert!(page.contains("Your request was received. We will answer by"));
    assert!(page.contains("Copy of your data"));
    let end = page.find("/bundle\"").unwrap() + 7;
    let link = &page[end - 7 - 36 - 17..end];
    let response = visitor.get(link).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    let bundle: Value = response.json().await.unwrap();
    assert_eq!(bundle["bundle_version"], 4);

    let response = visitor
        .post(
            "/portal/requests/correction",
            &[("attribute", "name"), ("value", "Layla Haddad")],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert!(visitor.page("/portal").await.contains("Correction"));

    let confirm = visitor.page("/portal/delete").await;
    assert!(confirm.contains("Yes, delete my data"));
    assert_eq!(decision(&app, "cust-1", "analytics").await, "allow");
    let response = visitor.post("/portal/delete", &[]).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(text.contains("Your data will be deleted by"), "{text}");
    assert_eq!(decision(&app, "cust-1", "analytics").await, "deny");
    assert_eq!(decision(&app, "cust-1", "essential").await, "allow");
    assert_eq!(visitor.get("/portal").await.status(), 401);
    let compliance = app.token(Role::Compliance, Some("dpo"));
    let requests = app
        .get_json("/v1/dsar?subject_id=cust-1", &compliance)
        .await;
    let kinds: Vec<&str> = requests["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"erasure") && kinds.contains(&"access") && kinds.contains(&"rectification"),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn pages_speak_arabic_right_to_left_when_asked_or_preferred() {
    let app = spawn_app().await;
    app.create_subject("cust-1", json!({"region": "AE", "locale": "ar-AE"}))
        .await;
    // The customer's own language comes first.
    let visitor = Visitor::open(&app, "cust-1").await;
    let page = visitor.page("/portal").await;
    assert!(
        page.contains("<html lang=\"ar\" dir=\"rtl\">"),
        "{}",
        &page[..200]
    );
    assert!(page.contains("خيارات الخصوصية الخاصة بك"));
    // The switch is remembered by the session.
    visitor.page("/portal?lang=en").await;
    assert!(visitor
        .page("/portal")
        .await
        .contains("<html lang=\"en\" dir=\"ltr\">"));

    // Without a session, the browser's preference decides the error page's language.
    let response = app
        .client
        .get(app.url("/portal"))
        .header("accept-language", "ar-SA, en;q=0.5")
        .send()
        .await
        .unwrap();
    assert!(response.text().await.unwrap().contains("انتهت جلستك"));
}

#[tokio::test]
async fn what_a_customer_typed_comes_back_as_text_never_markup() {
    let app = spawn_app().await;
    app.create_subject("cust-1", json!({"region": "DE"})).await;
    let visitor = Visitor::open(&app, "cust-1").await;
    let response = visitor
        .post(
            "/portal/preferences",
            &[
                ("timezone", "<script>alert(1)</script>"),
                ("order", "email, carrier-pigeon"),
            ],
        )
        .await;
    assert_eq!(response.status(), 422);
    let page = response.text().await.unwrap();
    assert!(!page.contains("<script>alert(1)</script>"));
    assert!(page.contains("value=\"&#60;script&#62;alert(1)&#60;/script&#62;\""));
    assert!(page.contains("aria-describedby=\"timezone-error\""));
    assert!(page.contains("aria-describedby=\"order-hint order-error\""));

    let response = visitor
        .post(
            "/portal/preferences",
            &[
                ("channel.email", "on"),
                ("cap.email", "3"),
                ("order", "email, sms"),
                ("language", "ar"),
                ("timezone", "Asia/Riyadh"),
                ("quiet_from", "22:00"),
                ("quiet_until", "07:30"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let stored = app
        .get_json("/v1/subjects/cust-1/preferences", &app.service())
        .await;
    assert_eq!(stored["channels"]["email"]["max_per_week"], 3);
    assert_eq!(stored["quiet_hours"]["end"], "07:30");
}

#[tokio::test]
async fn only_services_and_admins_make_centre_links_and_bad_requests_name_the_field() {
    let app = spawn_app().await;
    app.create_subject("cust-1", json!({"region": "DE"})).await;
    let path = app.url("/v1/subjects/cust-1/portal-sessions");
    for role in [Role::Compliance, Role::Subject] {
        let token = app.token(role, Some("cust-1"));
        let response = app
            .client
            .post(&path)
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{role:?}");
    }
    // No body at all is the defaults, whatever the content type says.
    let bare = app
        .client
        .post(&path)
        .bearer_auth(app.service())
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 201);
    let admin = app.token(Role::Admin, Some("ops"));
    let response = app
        .client
        .post(&path)
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let bad = |body: Value| {
        app.client
            .post(&path)
            .bearer_auth(app.service())
            .json(&body)
            .send()
    };
    let body = problem(
        bad(json!({"return_url": "https://evil.example/"}))
            .await
            .unwrap(),
        422,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "return_url");
    let body = problem(bad(json!({"locale": "xx"})).await.unwrap(), 422).await;
    assert_eq!(body["errors"][0]["field"], "locale");
    let body = problem(bad(json!({"surprise": 1})).await.unwrap(), 422).await;
    assert!(
        body["detail"].as_str().unwrap().contains("surprise"),
        "{body}"
    );
    let response = bad(json!({"return_url": "https://shop.example/account"}))
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let missing = app
        .client
        .post(app.url("/v1/subjects/nobody/portal-sessions"))
        .bearer_auth(app.service())
        .send()
        .await
        .unwrap();
    problem(missing, 404).await;

    // The return link is offered when signing out.
    let url = centre_link(
        &app,
        "cust-1",
        json!({"return_url": "https://shop.example/account"}),
    )
    .await;
    let visitor = Visitor::enter(&app, &url).await;
    let page = visitor
        .post("/portal/sign-out", &[])
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("href=\"https://shop.example/account\""));
}

#[tokio::test]
async fn console_sessions_cannot_change_a_customers_choices() {
    let app = spawn_app().await;
    app.create_subject("cust-1", json!({"region": "DE"})).await;
    let compliance = app.token(Role::Compliance, Some("dpo"));
    let response = app
        .client
        .post(app.url("/v1/console-sessions"))
        .bearer_auth(&compliance)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let url = response.json::<Value>().await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = app.client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/console");
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let centre = app
        .client
        .get(app.url("/portal"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(centre.status(), 404);
    let service = app.service();
    let response = app
        .client
        .post(app.url("/v1/console-sessions"))
        .bearer_auth(&service)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn link_doors_are_limited_per_address() {
    let app = spawn_app_with(TestOptions {
        limits: LimitSettings {
            portal_doors_per_minute: 3,
            ..LimitSettings::default()
        },
        ..TestOptions::default()
    })
    .await;
    app.create_subject("cust-1", json!({"region": "DE"})).await;
    for _ in 0..3 {
        let response = app
            .client
            .get(app.url(&format!("/portal/enter/{}", "B".repeat(43))))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404);
    }
    let response = app
        .client
        .get(app.url(&format!("/portal/enter/{}", "B".repeat(43))))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    let response = app
        .client
        .post(app.url("/v1/subjects/cust-1/portal-sessions"))
        .bearer_auth(app.service())
        .send()
        .await
        .unwrap();
    let retry = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(retry.parse::<u64>().unwrap() >= 1);
    problem(response, 429).await;
}

#[tokio::test]
async fn erasing_a_customer_forgets_their_links_and_sessions() {
    use consentry::storage::schema::{portal_links, portal_sessions};
    use diesel::prelude::*;
    let app = spawn_app().await;
    app.create_subject("cust-1", json!({"region": "DE"})).await;
    let visitor = Visitor::open(&app, "cust-1").await;
    let unused = centre_link(&app, "cust-1", json!({})).await;
    let compliance = app.token(Role::Compliance, Some("dpo"));
    let response = app
        .client
        .delete(app.url("/v1/subjects/cust-1"))
        .bearer_auth(&compliance)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(visitor.get("/portal").await.status(), 401);
    assert_eq!(app.client.get(&unused).send().await.unwrap().status(), 404);
    let left = app
        .app_db
        .run(|conn| {
            let links: i64 = portal_links::table.count().get_result(conn)?;
            let sessions: i64 = portal_sessions::table.count().get_result(conn)?;
            Ok::<_, consentry::storage::StorageError>(links + sessions)
        })
        .await
        .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn every_page_carries_the_security_headers() {
    let app = spawn_app().await;
    app.create_subject("cust-1", json!({"region": "DE"})).await;
    let visitor = Visitor::open(&app, "cust-1").await;
    for path in [
        "/portal",
        "/portal/history",
        "/portal/delete",
        "/portal/enter/x",
    ] {
        let response = visitor.get(path).await;
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"));
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["cache-control"], "no-store");
    }
}

async fn survey_link(app: &TestApp, survey: &str, subject: &str) -> String {
    let response = app
        .post(
            &format!("/v1/surveys/{survey}/links"),
            &app.service(),
            &json!({"subject_id": subject, "expires_in_days": 7}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    body["url"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_nps_link_asks_the_follow_up_a_detractor_needs_and_writes_back() {
    let app = spawn_app().await;
    app.create_subject("cust-1", json!({"region": "DE", "locale": "ar"}))
        .await;
    app.create_survey(nps_survey("nps-mail")).await;
    app.event("cust-1", "onboarding.completed").await;
    let url = survey_link(&app, "nps-mail", "cust-1").await;
    let visitor = Visitor::enter(&app, &url).await;
    let page = visitor.page("/portal/survey").await;
    assert!(page.contains("dir=\"rtl\""));
    assert!(page.contains("ما مدى احتمال أن توصي بنا؟"));
    assert!(!page.contains("q.why_low"));

    // A detractor's score reveals the follow-up on the next page; the score is kept.
    let response = visitor
        .post("/portal/survey", &[("shown", "score"), ("q.score", "3")])
        .await;
    assert_eq!(response.status(), 303);
    let page = visitor.page("/portal/survey").await;
    assert!(page.contains("name=\"q.why_low\""));
    assert!(page.contains("value=\"3\" checked"));
    // Leaving the required follow-up empty is named beside it.
    let response = visitor
        .post(
            "/portal/survey",
            &[("shown", "score"), ("shown", "why_low"), ("q.score", "3")],
        )
        .await;
    assert_eq!(response.status(), 422);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("aria-describedby=\"q-why_low-error\""));
    let response = visitor
        .post(
            "/portal/survey",
            &[
                ("shown", "score"),
                ("shown", "why_low"),
                ("q.score", "3"),
                ("q.why_low", "<script>slow</script>"),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("شكراً لك!"));
    let profile = app
        .get_json("/v1/subjects/cust-1/profile", &app.service())
        .await;
    assert_eq!(
        profile["attributes"]["nps.category"]["value"], "detractor",
        "{profile}"
    );
    let followups = app
        .get_json("/v1/surveys/nps-mail/followups", &app.service())
        .await;
    assert_eq!(
        followups["followups"].as_array().unwrap().len(),
        1,
        "{followups}"
    );
    // Opening the link again thanks them instead of asking twice.
    let response = app.client.get(&url).send().await.unwrap();
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    let again = app
        .client
        .get(app.url("/portal/survey"))
        .header("cookie", cookie.split(';').next().unwrap())
        .send()
        .await
        .unwrap();
    assert!(again.text().await.unwrap().contains("شكراً لك!"));
}

#[tokio::test]
async fn a_customer_who_objected_gets_a_polite_page_and_no_survey() {
    let app = spawn_app().await;
    app.create_subject("cust-1", json!({"region": "DE"})).await;
    app.create_survey(nps_survey("nps-mail")).await;
    app.event("cust-1", "onboarding.completed").await;
    let url = survey_link(&app, "nps-mail", "cust-1").await;
    app.put_consent(
        "cust-1",
        "functional.service.improve.feedback_surveys",
        "denied",
    )
    .await;
    let response = app.client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 303);
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap();
    let page = app
        .client
        .get(app.url("/portal/survey"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("There is no survey for you at the moment."),
        "{page}"
    );
    assert!(!page.contains("q.score"));
    // A survey session reaches no centre, and a centre session no survey.
    let centre = app
        .client
        .get(app.url("/portal"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(centre.status(), 404);
    let customer = Visitor::open(&app, "cust-1").await;
    assert_eq!(customer.get("/portal/survey").await.status(), 404);
}

#[tokio::test]
async fn survey_links_are_for_services_and_name_what_is_wrong() {
    let app = spawn_app().await;
    app.create_subject("cust-1", json!({"region": "DE"})).await;
    app.create_survey(nps_survey("nps-mail")).await;
    let compliance = app.token(Role::Compliance, Some("dpo"));
    let body = json!({"subject_id": "cust-1"});
    assert_eq!(
        app.post("/v1/surveys/nps-mail/links", &compliance, &body)
            .await
            .status(),
        403
    );
    let response = app
        .post(
            "/v1/surveys/nps-mail/links",
            &app.service(),
            &json!({"subject_id": "cust-1", "expires_in_days": 91}),
        )
        .await;
    assert_eq!(
        crate::helpers::invalid_fields(response).await,
        ["expires_in_days"]
    );
    let response = app
        .post("/v1/surveys/nope/links", &app.service(), &body)
        .await;
    problem(response, 404).await;
    let response = app
        .post(
            "/v1/surveys/nps-mail/links",
            &app.service(),
            &json!({"subject_id": "nobody"}),
        )
        .await;
    problem(response, 404).await;
}
