//! Starts the real app on a random port against a fresh database: a SQLite file by
//! default, or a new PostgreSQL database when `CONSENTRY_TEST_DATABASE_URL` is set.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use consentry::auth::{token, AcceptedAlgorithms, JwtSettings, KeyRing, Role};
use consentry::clock::{Clock, ManualClock};
use consentry::config::Config;
use consentry::http::limits::LimitSettings;
use consentry::server::Application;
use consentry::storage::{DatabaseUrl, PoolSettings};
use diesel::{Connection, RunQueryDsl};
use reqwest::{RequestBuilder, Response};
use serde_json::Value;

pub const TEST_DB_ENV: &str = "CONSENTRY_TEST_DATABASE_URL";

pub fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
}

pub fn policies_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("policies")
}

pub fn jwt_settings() -> JwtSettings {
    JwtSettings {
        issuer: "consentry".into(),
        audience: "consentry".into(),
        algorithms: AcceptedAlgorithms::default(),
        hmac_secret: None,
        leeway: Duration::from_secs(30),
    }
}

/// A database of the test's own, dropped with it.
pub struct TestDatabase {
    pub url: String,
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    pub fn create(dir: &std::path::Path) -> Self {
        match std::env::var(TEST_DB_ENV) {
            Ok(admin_url) if !admin_url.is_empty() => {
                let name = format!("consentry_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin = diesel::PgConnection::establish(&admin_url)
                    .unwrap_or_else(|e| panic!("{TEST_DB_ENV} is set but unreachable: {e}"));
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .expect("create the test database");
                Self {
                    url: with_database(&admin_url, &name),
                    postgres: Some((admin_url, name)),
                }
            }
            _ => Self {
                url: format!("sqlite://{}", dir.join("consentry.db").display()),
                postgres: None,
            },
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }
}

/// A PostgreSQL URL naming another database, its query (`sslmode`, `sslrootcert`, ...)
/// kept as it was.
pub fn with_database(url: &str, name: &str) -> String {
    let (location, query) = match url.split_once('?') {
        Some((location, query)) => (location, Some(query)),
        None => (url, None),
    };
    let authority = location.find("://").map_or(0, |i| i + 3);
    let server = match location[authority..].find('/') {
        Some(slash) => &location[..authority + slash],
        None => location,
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

/// A URL with query parameters added (`a=1&b=2`).
pub fn with_params(url: &str, params: &str) -> String {
    match (params.is_empty(), url.contains('?')) {
        (true, _) => url.to_owned(),
        (false, true) => format!("{url}&{params}"),
        (false, false) => format!("{url}?{params}"),
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = &self.postgres {
            if let Ok(mut admin) = diesel::PgConnection::establish(admin_url) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin);
            }
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub keys: Arc<KeyRing>,
    pub clock: ManualClock,
    pub app_db: consentry::storage::Database,
    pub data_dir: PathBuf,
    // Dropped last: the database outlives the app's connections' use.
    pub db: TestDatabase,
    _dir: tempfile::TempDir,
}

pub struct TestOptions {
    pub max_body_bytes: usize,
    pub db_timeout: Duration,
    /// Replaces the shipped `gate.toml` (upstreams on the test's own ports).
    pub gate_toml: Option<String>,
    pub decision_log_sample: f64,
    /// Text replacements applied to a copy of the shipped `purposes.toml`.
    pub purposes_edit: Vec<(String, String)>,
    /// `CONSENTRY_TRUSTED_PROXIES`.
    pub trusted_proxies: &'static str,
    /// The abuse limits; the defaults but for the portal's doors, which tests knock on
    /// more often than any customer.
    pub limits: LimitSettings,
    /// Connection parameters added to the app's database URL (`sslmode=require`).
    pub database_params: &'static str,
    /// Webhooks and NATS; receivers in tests listen on loopback.
    pub delivery: consentry::delivery::DeliverySettings,
    /// Replaces the shipped `recipients.toml`.
    pub recipients_toml: Option<String>,
}

impl Default for TestOptions {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            db_timeout: Duration::from_secs(10),
            gate_toml: None,
            decision_log_sample: 0.0,
            purposes_edit: Vec::new(),
            trusted_proxies: "",
            limits: LimitSettings {
                portal_doors_per_minute: 1_000,
                ..LimitSettings::default()
            },
            database_params: "",
            delivery: consentry::delivery::DeliverySettings {
                allow_internal: true,
                ..Default::default()
            },
            recipients_toml: None,
        }
    }
}

/// Links point at the test server (its port is known once bound); customers may be sent
/// back to the example shop.
fn portal_settings() -> consentry::portal::PortalSettings {
    let durations = consentry::portal::PortalDurations {
        link: chrono::Duration::minutes(15),
        idle: chrono::Duration::minutes(30),
        absolute: chrono::Duration::hours(12),
    };
    consentry::portal::PortalSettings::new(
        "http://127.0.0.1:0".into(),
        "https://shop.example",
        None,
        durations,
    )
    .unwrap()
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(TestOptions::default()).await
}

pub async fn spawn_app_with(options: TestOptions) -> TestApp {
    if std::env::var("TEST_LOG").is_ok() {
        // The writer thread lives as long as the test process.
        std::mem::forget(consentry::telemetry::init(
            "debug",
            consentry::config::LogFormat::Text,
        ));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let db = TestDatabase::create(dir.path());
    let clock = ManualClock::new(start_time());
    let policies = if options.gate_toml.is_none()
        && options.purposes_edit.is_empty()
        && options.recipients_toml.is_none()
    {
        policies_dir()
    } else {
        let copy = dir.path().join("policies");
        copy_dir(&policies_dir(), &copy);
        if let Some(gate) = &options.gate_toml {
            std::fs::write(copy.join("gate.toml"), gate).unwrap();
        }
        if let Some(recipients) = &options.recipients_toml {
            std::fs::write(copy.join("recipients.toml"), recipients).unwrap();
        }
        let mut purposes = std::fs::read_to_string(copy.join("purposes.toml")).unwrap();
        for (from, to) in &options.purposes_edit {
            assert!(
                purposes.contains(from.as_str()),
                "no `{from}` in purposes.toml"
            );
            purposes = purposes.replacen(from.as_str(), to, 1);
        }
        std::fs::write(copy.join("purposes.toml"), purposes).unwrap();
        copy
    };
    let config = Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        database_url: DatabaseUrl::parse(&with_params(&db.url, options.database_params)).unwrap(),
        data_dir: dir.path().join("data"),
        policies_dir: policies,
        jwt: jwt_settings(),
        signing_key_file: None,
        evidence_secret: None,
        audit_pseudonym_secret: None,
        audit_checkpoint_every: 5,
        controller_name: "Example Shop Ltd".into(),
        privacy_policy_url: Some("https://shop.example/privacy".into()),
        // A memory budget, so that the whole suite runs the weighed cache.
        decision_cache_size: consentry::gate::CacheLimit::Bytes(64 << 20),
        decision_token_ttl_seconds: 300,
        survey_recontact_days: 14,
        decision_log_sample: options.decision_log_sample,
        max_body_bytes: options.max_body_bytes,
        pool: PoolSettings {
            max_size: 4,
            // Several, so that batches on PostgreSQL run beside each other in tests too.
            writers: 2,
            acquire_timeout: options.db_timeout,
            busy_timeout: Duration::from_secs(10),
        },
        workers: Some(2),
        trusted_proxies: consentry::http::client_ip::TrustedProxies::parse(options.trusted_proxies)
            .unwrap(),
        portal: portal_settings(),
        limits: options.limits,
        delivery: options.delivery,
    };
    let data_dir = config.data_dir.clone();
    let app = Application::build(config, Arc::new(clock.clone()))
        .await
        .expect("the app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let keys = app.keys.clone();
    let app_db = app.db.clone();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        keys,
        clock,
        app_db,
        data_dir,
        db,
        _dir: dir,
    }
}

impl TestApp {
    /// A token for a role, valid for an hour from the app's clock.
    pub fn token(&self, role: Role, sub: Option<&str>) -> String {
        token::mint(
            &self.keys,
            &jwt_settings(),
            role,
            sub.map(str::to_owned),
            TimeDelta::hours(1),
            self.clock.now(),
        )
        .unwrap()
        .token
    }

    pub fn service(&self) -> String {
        self.token(Role::Service, Some("recommendations"))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn get(&self, path: &str, token: &str) -> RequestBuilder {
        self.client.get(self.url(path)).bearer_auth(token)
    }

    pub fn put_json(&self, path: &str, token: &str, body: &Value) -> RequestBuilder {
        self.client
            .put(self.url(path))
            .bearer_auth(token)
            .json(body)
    }

    /// Creates a subject as a service and checks it worked.
    pub async fn create_subject(&self, id: &str, body: Value) -> Value {
        let response = self
            .put_json(&format!("/v1/subjects/{id}"), &self.service(), &body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "creating {id}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        let response = self.client.get(self.url("/metrics")).send().await.unwrap();
        response.text().await.unwrap()
    }

    /// Counts audit rows for an action, straight from the database.
    pub async fn audit_count(&self, action: &'static str) -> i64 {
        use consentry::storage::schema::audit_events::dsl;
        use diesel::prelude::*;
        self.app_db
            .run(move |conn| {
                dsl::audit_events
                    .filter(dsl::action.eq(action))
                    .count()
                    .get_result::<i64>(conn)
                    .map_err(consentry::storage::StorageError::from)
            })
            .await
            .unwrap()
    }
}

/// Asserts a problem+json response with this status and returns its body.
pub async fn problem(response: Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status, "unexpected status");
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert!(
        body["type"]
            .as_str()
            .unwrap()
            .starts_with("urn:consentry:problem:"),
        "{body}"
    );
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    body
}

/// The fields a 422 problem names.
pub async fn invalid_fields(response: Response) -> Vec<String> {
    let body = problem(response, 422).await;
    body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect()
}

/// SHA-256 of a shipped notice, as a client shows it.
pub fn notice_digest(locale: &str) -> String {
    let text = std::fs::read(policies_dir().join("notices").join(format!("{locale}.md"))).unwrap();
    consentry::crypto::sha256_hex(&text)
}

impl TestApp {
    pub async fn get_json(&self, path: &str, token: &str) -> Value {
        let response = self.get(path, token).send().await.unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    /// Writes one consent as a service and returns the response.
    pub async fn put_consent(&self, subject: &str, purpose: &str, status: &str) -> Response {
        self.put_json(
            &format!("/v1/subjects/{subject}/consents/{purpose}"),
            &self.service(),
            &serde_json::json!({"status": status, "source": "api"}),
        )
        .send()
        .await
        .unwrap()
    }

    /// The effective state of every purpose, by purpose key.
    pub async fn consents(&self, subject: &str) -> std::collections::BTreeMap<String, Value> {
        let list = self
            .get_json(&format!("/v1/subjects/{subject}/consents"), &self.service())
            .await;
        list["consents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["purpose"].as_str().unwrap().to_owned(), c.clone()))
            .collect()
    }

    /// The whole ledger of a subject, newest first, read as compliance.
    pub async fn ledger(&self, subject: &str) -> Vec<Value> {
        let token = self.token(Role::Compliance, Some("officer"));
        let page = self
            .get_json(
                &format!("/v1/subjects/{subject}/consents/history?limit=200"),
                &token,
            )
            .await;
        page["items"].as_array().unwrap().clone()
    }
}

/// `(effective, reason)` of one purpose in a consents map.
pub fn effect(
    consents: &std::collections::BTreeMap<String, Value>,
    purpose: &str,
) -> (String, String) {
    let c = &consents[purpose];
    (
        c["effective"].as_str().unwrap().to_owned(),
        c["reason"].as_str().unwrap().to_owned(),
    )
}

pub fn pair(effective: &str, reason: &str) -> (String, String) {
    (effective.to_owned(), reason.to_owned())
}

pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
