//! A browser without JavaScript, for the page tests: it opens a link, keeps the session
//! cookie, reads the form token of the page it landed on, and posts forms with it.

use consentry::auth::Role;
use reqwest::Response;
use serde_json::{json, Value};

use crate::helpers::TestApp;

pub struct Visitor<'a> {
    pub app: &'a TestApp,
    pub cookie: String,
    pub csrf: String,
}

impl<'a> Visitor<'a> {
    /// Opens a fresh centre link for `subject` and lands on the centre.
    pub async fn open(app: &'a TestApp, subject: &str) -> Visitor<'a> {
        let url = centre_link(app, subject, json!({})).await;
        Self::enter(app, &url).await
    }

    /// A console link made with an officer's token, opened.
    pub async fn officer(app: &'a TestApp, role: Role, name: &str) -> Visitor<'a> {
        let response = app
            .client
            .post(app.url("/v1/console-sessions"))
            .bearer_auth(app.token(role, Some(name)))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        let officer = Self::enter(app, body["url"].as_str().unwrap()).await;
        officer
    }

    /// Opens a link: the cookie it sets, then the page it lands on.
    pub async fn enter(app: &'a TestApp, url: &str) -> Visitor<'a> {
        let response = app.client.get(url).send().await.unwrap();
        assert_eq!(response.status(), 303, "opening the link");
        let cookie = response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
            "{cookie}"
        );
        let cookie = cookie.split(';').next().unwrap().to_owned();
        let landing = response.headers()["location"].to_str().unwrap().to_owned();
        let mut visitor = Visitor {
            app,
            cookie,
            csrf: String::new(),
        };
        let page = visitor.page(&landing).await;
        visitor.csrf = form_token(&page);
        visitor
    }

    pub async fn get(&self, path: &str) -> Response {
        self.app
            .client
            .get(self.app.url(path))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap()
    }

    /// A page that must answer 200, as text, with one `h1`.
    pub async fn page(&self, path: &str) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let page = response.text().await.unwrap();
        assert_eq!(page.matches("<h1>").count(), 1, "{path}");
        page
    }

    /// Posts a form with the session's token.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let mut form: Vec<(&str, &str)> = vec![("csrf", &self.csrf)];
        form.extend_from_slice(fields);
        self.post_form(path, &form).await
    }

    /// Posts exactly these fields.
    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Response {
        self.app
            .client
            .post(self.app.url(path))
            .header("cookie", &self.cookie)
            .form(form)
            .send()
            .await
            .unwrap()
    }
}

pub fn form_token(page: &str) -> String {
    let start = page
        .find("name=\"csrf\" value=\"")
        .map(|i| i + 19)
        .expect("a form token on the page");
    page[start..start + 64].to_owned()
}

/// A centre link for `subject`, made by a service.
pub async fn centre_link(app: &TestApp, subject: &str, body: Value) -> String {
    let response = app
        .client
        .post(app.url(&format!("/v1/subjects/{subject}/portal-sessions")))
        .bearer_auth(app.service())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    body["url"].as_str().unwrap().to_owned()
}

/// The text from `marker` to the next `end`.
pub fn part<'p>(page: &'p str, marker: &str, end: &str) -> &'p str {
    let start = page
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} not on the page"));
    let rest = &page[start..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}
