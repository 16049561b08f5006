use serde_json::Value;

use crate::helpers::spawn_app;

async fn purposes(app: &crate::helpers::TestApp, accept_language: Option<&str>) -> (String, Value) {
    let mut request = app.get("/v1/purposes", &app.service());
    if let Some(language) = accept_language {
        request = request.header("Accept-Language", language);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let language = response
        .headers()
        .get("content-language")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    (language, response.json().await.unwrap())
}

fn find<'a>(list: &'a Value, key: &str) -> &'a Value {
    list["purposes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["key"] == key)
        .unwrap()
}

#[tokio::test]
async fn lists_purposes_with_bases_versions_and_categories() {
    let app = spawn_app().await;
    let (language, list) = purposes(&app, None).await;
    assert_eq!(language, "en");
    assert_eq!(list["locale"], "en");
    assert!(list["policy_revision"].as_str().unwrap().len() == 12);
    let recommendations = find(&list, "personalize.product_recommendations");
    assert_eq!(recommendations["name"], "Product recommendations");
    assert_eq!(recommendations["parent"], "personalize");
    assert_eq!(recommendations["version"], 1);
    assert_eq!(recommendations["basis"]["eea"], "opt_in");
    assert_eq!(recommendations["basis"]["us_ca"], "opt_out");
    assert_eq!(recommendations["basis"]["default"], "opt_in");
    assert_eq!(
        recommendations["data_categories"][0],
        "user.behavior.purchase_history"
    );
    let sale = find(&list, "sale_and_sharing");
    assert_eq!(
        (sale["gpc"].as_bool(), sale["sale_or_share"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(find(&list, "essential")["basis"]["default"], "notice_only");
    assert_eq!(find(&list, "essential")["consent_ttl_days"], Value::Null);
}

#[tokio::test]
async fn names_follow_accept_language_with_english_fallback() {
    let app = spawn_app().await;
    let (language, list) = purposes(&app, Some("ar-SA, en;q=0.5")).await;
    assert_eq!(language, "ar");
    assert_eq!(
        find(&list, "personalize.product_recommendations")["name"],
        "توصيات المنتجات"
    );
    let (language, list) = purposes(&app, Some("fr-FR, de;q=0.8")).await;
    assert_eq!(language, "en");
    assert_eq!(find(&list, "marketing.email")["name"], "Marketing emails");
    let (language, _) = purposes(&app, Some("en;q=0.4, ar;q=0.9")).await;
    assert_eq!(language, "ar");
}

#[tokio::test]
async fn every_role_may_list_purposes() {
    let app = spawn_app().await;
    for role in consentry::auth::Role::ALL {
        let token = app.token(role, Some("someone"));
        let response = app.get("/v1/purposes", &token).send().await.unwrap();
        assert_eq!(response.status(), 200, "{role:?}");
    }
}
