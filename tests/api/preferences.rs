use consentry::auth::Role;
use serde_json::{json, Value};

use crate::helpers::{invalid_fields, problem, spawn_app};

#[tokio::test]
async fn preferences_default_then_replace() {
    let app = spawn_app().await;
    app.create_subject("p1", json!({"region": "SA", "locale": "ar"}))
        .await;
    let empty = app
        .get_json("/v1/subjects/p1/preferences", &app.service())
        .await;
    assert_eq!(empty["channels"], json!({}));
    assert_eq!(empty["updated_at"], Value::Null);

    let document = json!({
        "channels": {"email": {"opted_in": true, "max_per_week": 3}, "whatsapp": {"opted_in": true}, "sms": {"opted_in": false}},
        "channel_order": ["whatsapp", "email"],
        "language": "AR",
        "timezone": "Asia/Riyadh",
        "quiet_hours": {"start": "22:00", "end": "08:00"}
    });
    let response = app
        .put_json("/v1/subjects/p1/preferences", &app.service(), &document)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let stored = app
        .get_json("/v1/subjects/p1/preferences", &app.service())
        .await;
    assert_eq!(
        stored["channels"]["email"],
        json!({"opted_in": true, "max_per_week": 3})
    );
    assert_eq!(stored["channel_order"], json!(["whatsapp", "email"]));
    assert_eq!(stored["language"], "ar");
    assert_eq!(stored["timezone"], "Asia/Riyadh");
    assert!(stored["updated_at"].is_string());
    assert_eq!(app.audit_count("preferences.updated").await, 1);

    // PUT replaces the whole document.
    app.put_json(
        "/v1/subjects/p1/preferences",
        &app.service(),
        &json!({"channels": {"push": {"opted_in": true}}}),
    )
    .send()
    .await
    .unwrap();
    let stored = app
        .get_json("/v1/subjects/p1/preferences", &app.service())
        .await;
    assert_eq!(stored["channels"], json!({"push": {"opted_in": true}}));
    assert_eq!(stored["timezone"], Value::Null);
}

#[tokio::test]
async fn each_bad_field_is_named() {
    let app = spawn_app().await;
    app.create_subject("p2", json!({"region": "DE"})).await;
    let cases = [
        (json!({"timezone": "Mars/Olympus"}), vec!["timezone"]),
        (
            json!({"channels": {"pigeon": {"opted_in": true}}}),
            vec!["channels.pigeon"],
        ),
        (
            json!({"channels": {"email": {"opted_in": true, "max_per_week": 0}}}),
            vec!["channels.email.max_per_week"],
        ),
        (
            json!({"channels": {"email": {"opted_in": "yes"}}}),
            vec!["channels.email.opted_in"],
        ),
        (
            json!({"channel_order": ["sms", "sms"]}),
            vec!["channel_order[1]"],
        ),
        (json!({"language": "english"}), vec!["language"]),
        (
            json!({"quiet_hours": {"start": "22:00", "end": "8"}, "timezone": "UTC"}),
            vec!["quiet_hours.end"],
        ),
        (
            json!({"quiet_hours": {"start": "22:00", "end": "07:00"}}),
            vec!["timezone"],
        ),
        (json!({"colour": "blue"}), vec!["colour"]),
    ];
    for (body, fields) in cases {
        let response = app
            .put_json("/v1/subjects/p2/preferences", &app.service(), &body)
            .send()
            .await
            .unwrap();
        assert_eq!(invalid_fields(response).await, fields, "{body}");
    }
}

#[tokio::test]
async fn the_subject_manages_their_own_only() {
    let app = spawn_app().await;
    app.create_subject("carol", json!({"region": "DE"})).await;
    app.create_subject("dave", json!({"region": "DE"})).await;
    let carol = app.token(Role::Subject, Some("carol"));
    let body = json!({"channels": {"sms": {"opted_in": false}}});
    assert_eq!(
        app.put_json("/v1/subjects/carol/preferences", &carol, &body)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    problem(
        app.put_json("/v1/subjects/dave/preferences", &carol, &body)
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    problem(
        app.get("/v1/subjects/dave/preferences", &carol)
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    let compliance = app.token(Role::Compliance, Some("officer"));
    problem(
        app.get("/v1/subjects/carol/preferences", &compliance)
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
    problem(
        app.put_json("/v1/subjects/nobody/preferences", &app.service(), &body)
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
}
