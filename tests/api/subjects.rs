use consentry::auth::Role;
use serde_json::{json, Value};

use crate::helpers::{invalid_fields, problem, spawn_app};

#[tokio::test]
async fn put_creates_then_updates_and_get_derives_the_jurisdiction() {
    let app = spawn_app().await;
    let token = app.service();
    let response = app
        .put_json(
            "/v1/subjects/cust-1",
            &token,
            &json!({"region": "us-ca", "locale": "AR-sa", "birth_year": 2009}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(
        response.headers().get("location").unwrap(),
        "/v1/subjects/cust-1"
    );
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["region"], "US-CA");
    assert_eq!(created["jurisdiction"], "us_ca");
    assert_eq!(created["locale"], "ar-SA");
    assert_eq!(created["birth_year"], 2009);

    app.clock.advance(chrono::TimeDelta::minutes(5));
    let response = app
        .put_json("/v1/subjects/cust-1", &token, &json!({"region": "DE"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["jurisdiction"], "eea");
    assert_eq!(
        updated["locale"],
        Value::Null,
        "PUT replaces the whole subject"
    );
    assert_eq!(updated["created_at"], created["created_at"]);
    assert_ne!(updated["updated_at"], created["updated_at"]);

    let fetched: Value = app
        .get("/v1/subjects/cust-1", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fetched, updated);
    assert_eq!(app.audit_count("subject.created").await, 1);
    assert_eq!(app.audit_count("subject.updated").await, 1);
}

#[tokio::test]
async fn each_region_maps_to_its_jurisdiction() {
    let app = spawn_app().await;
    for (region, jurisdiction) in [
        ("FR", "eea"),
        ("NO", "eea"),
        ("GB", "uk"),
        ("US-CA", "us_ca"),
        ("US-VA", "us_states"),
        ("US-WA", "us_other"),
        ("US", "us_other"),
        ("JP", "default"),
        ("SA", "default"),
    ] {
        let subject = app
            .create_subject(&format!("s-{region}"), json!({"region": region}))
            .await;
        assert_eq!(subject["jurisdiction"], jurisdiction, "{region}");
    }
}

#[tokio::test]
async fn each_invalid_field_is_named() {
    let app = spawn_app().await;
    let token = app.service();
    let cases = [
        (json!({"region": "XX"}), vec!["region"]),
        (json!({"region": "UK"}), vec!["region"]),
        (json!({"region": "US-ZZ"}), vec!["region"]),
        (json!({"region": "DE", "locale": "english"}), vec!["locale"]),
        (
            json!({"region": "DE", "birth_year": 1800}),
            vec!["birth_year"],
        ),
        (
            json!({"region": "DE", "birth_year": 2027}),
            vec!["birth_year"],
        ),
        (
            json!({"region": "DE", "birth_year": "2009"}),
            vec!["birth_year"],
        ),
        (json!({"region": 49}), vec!["region"]),
        (json!({"locale": "en"}), vec!["region"]),
        (json!({"region": "DE", "email": "a@b.c"}), vec!["email"]),
        (
            json!({"region": "XX", "locale": "?", "birth_year": 1}),
            vec!["birth_year", "locale", "region"],
        ),
    ];
    for (body, fields) in cases {
        let response = app
            .put_json("/v1/subjects/s1", &token, &body)
            .send()
            .await
            .unwrap();
        assert_eq!(invalid_fields(response).await, fields, "{body}");
    }
    // Nothing was created by any of them.
    problem(
        app.get("/v1/subjects/s1", &token).send().await.unwrap(),
        404,
    )
    .await;
}

#[tokio::test]
async fn subject_ids_keep_to_their_alphabet() {
    let app = spawn_app().await;
    let token = app.service();
    let long = "x".repeat(129);
    // A control character anywhere in a path is refused before routing.
    let response = app
        .put_json("/v1/subjects/bad%0Aid", &token, &json!({"region": "DE"}))
        .send()
        .await
        .unwrap();
    assert_eq!(invalid_fields(response).await, ["path"]);
    for id in [
        long.as_str(),
        "%20",
        // Look-alikes of `demo-000002`: a zero-width space, a right-to-left override,
        // a byte-order mark, Cyrillic letters.
        "demo%E2%80%8B-000002",
        "demo-000002%E2%80%AE",
        "%EF%BB%BFdemo-000002",
        "d%D0%B5mo-000002",
        "..%2F..%2Fetc",
        "%D8%B9%D9%85%D9%8A%D9%84",
        "a%20b",
    ] {
        let response = app
            .put_json(
                &format!("/v1/subjects/{id}"),
                &token,
                &json!({"region": "DE"}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(invalid_fields(response).await, ["id"], "{id}");
    }
    let exact = "y".repeat(128);
    app.create_subject(&exact, json!({"region": "DE"})).await;
    for id in [
        "demo-000002",
        "auth0|5f7c8ec7",
        "user@example.com",
        "cust:8412",
    ] {
        let created = app.create_subject(id, json!({"region": "DE"})).await;
        assert_eq!(created["id"], id);
    }
    // Ids in bodies and headers follow the same rule.
    let response = app
        .client
        .post(app.url("/v1/events"))
        .bearer_auth(&token)
        .json(&json!({"subject_id": "demo\u{200B}-000002", "name": "onboarding.completed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(invalid_fields(response).await, ["subject_id"]);
}

#[tokio::test]
async fn a_subject_reaches_only_their_own_data() {
    let app = spawn_app().await;
    app.create_subject("alice", json!({"region": "DE"})).await;
    app.create_subject("bob", json!({"region": "DE"})).await;
    let alice = app.token(Role::Subject, Some("alice"));

    let own: Value = app
        .get("/v1/subjects/alice", &alice)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(own["id"], "alice");
    let response = app
        .put_json(
            "/v1/subjects/alice",
            &alice,
            &json!({"region": "FR", "locale": "en"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // Another subject's data looks exactly like a subject that does not exist.
    let other = app.get("/v1/subjects/bob", &alice).send().await.unwrap();
    let missing = app.get("/v1/subjects/nobody", &alice).send().await.unwrap();
    let other_headers = (
        other.headers().get("content-type").cloned(),
        other.headers().get("content-length").cloned(),
    );
    let missing_headers = (
        missing.headers().get("content-type").cloned(),
        missing.headers().get("content-length").cloned(),
    );
    assert_eq!(other_headers, missing_headers);
    assert_eq!(problem(other, 404).await, problem(missing, 404).await);

    let response = app
        .put_json("/v1/subjects/bob", &alice, &json!({"region": "US-CA"}))
        .send()
        .await
        .unwrap();
    problem(response, 404).await;
    let bob: Value = app
        .get("/v1/subjects/bob", &app.service())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(bob["region"], "DE", "alice's PUT must not touch bob");
}

#[tokio::test]
async fn admin_may_manage_subjects_and_a_subject_may_create_itself() {
    let app = spawn_app().await;
    let admin = app.token(Role::Admin, Some("ops"));
    let response = app
        .put_json("/v1/subjects/c1", &admin, &json!({"region": "GB"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let newcomer = app.token(Role::Subject, Some("c2"));
    let response = app
        .put_json("/v1/subjects/c2", &newcomer, &json!({"region": "GB"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn parallel_puts_on_one_subject_create_it_once() {
    let app = spawn_app().await;
    let token = app.service();
    let mut handles = Vec::new();
    for i in 0..16 {
        let request = app.put_json(
            "/v1/subjects/racer",
            &token,
            &json!({"region": if i % 2 == 0 { "DE" } else { "FR" }}),
        );
        handles.push(tokio::spawn(async move {
            request.send().await.unwrap().status().as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for handle in handles {
        statuses.push(handle.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        15,
        "{statuses:?}"
    );
    assert_eq!(app.audit_count("subject.created").await, 1);
    assert_eq!(app.audit_count("subject.updated").await, 15);
}
