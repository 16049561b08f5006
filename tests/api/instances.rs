//! Two server processes on one PostgreSQL database: a withdrawal through one is honoured
//! by the other within a second.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use consentry::auth::{token, KeyRing, Role};
use serde_json::{json, Value};

use crate::helpers::{jwt_settings, policies_dir, TestDatabase};

struct Server {
    child: Child,
    address: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `consentry serve` on a free port and waits until it says it is serving.
fn start(database_url: &str, data_dir: &std::path::Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_consentry"))
        .arg("serve")
        .env("CONSENTRY_DATABASE_URL", database_url)
        .env("CONSENTRY_DATA_DIR", data_dir)
        .env("CONSENTRY_POLICIES_DIR", policies_dir())
        .env("CONSENTRY_BIND", "127.0.0.1:0")
        .env("CONSENTRY_LOG_FORMAT", "json")
        .env("CONSENTRY_LOG", "info")
        .env("CONSENTRY_WORKERS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(event) = serde_json::from_str::<Value>(&line) {
                if event["message"] == "consentry is serving" {
                    let _ = port_tx.send(event["port"].as_u64().unwrap_or_default());
                }
            }
        }
    });
    let port = port_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the server starts");
    Server {
        child,
        address: format!("http://127.0.0.1:{port}"),
    }
}

#[tokio::test]
async fn a_withdrawal_through_one_instance_is_honoured_by_another_within_a_second() {
    if std::env::var(crate::helpers::TEST_DB_ENV).is_err() {
        eprintln!(
            "skipped: needs PostgreSQL ({} unset)",
            crate::helpers::TEST_DB_ENV
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::create(dir.path());
    let data_dir = dir.path().join("data");
    // One key for both instances, made before either starts.
    let keys = KeyRing::load_or_generate(&data_dir, None, Utc::now()).unwrap();
    let service = token::mint(
        &keys,
        &jwt_settings(),
        Role::Service,
        Some("it".into()),
        TimeDelta::hours(1),
        Utc::now(),
    )
    .unwrap()
    .token;
    let (a, b) = (start(&db.url, &data_dir), start(&db.url, &data_dir));
    let client = reqwest::Client::new();
    let put = |server: &Server, path: &str, body: Value| {
        client
            .put(format!("{}{path}", server.address))
            .bearer_auth(&service)
            .json(&body)
            .send()
    };
    let decide = |server: &Server| {
        client
            .post(format!("{}/v1/decisions", server.address))
            .bearer_auth(&service)
            .json(&json!({"subject_id": "shared", "purpose": "marketing.email"}))
            .send()
    };
    let verdict = |response: reqwest::Response| async move {
        let body: Value = response.json().await.unwrap();
        body["decision"].as_str().unwrap().to_owned()
    };

    assert_eq!(
        put(&a, "/v1/subjects/shared", json!({"region": "DE"}))
            .await
            .unwrap()
            .status(),
        201
    );
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        put(
            &a,
            "/v1/subjects/shared/consents/marketing.email",
            json!({"status": "granted", "source": "api"}),
        )
        .await
        .unwrap();
        let started = Instant::now();
        while verdict(decide(&b).await.unwrap()).await != "allow" {
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "B did not see the grant within a second"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // B now holds the subject in its cache.
        assert_eq!(verdict(decide(&b).await.unwrap()).await, "allow");
        let withdrawn = put(
            &a,
            "/v1/subjects/shared/consents/marketing.email",
            json!({"status": "denied", "source": "portal"}),
        )
        .await
        .unwrap();
        assert_eq!(withdrawn.status(), 200);
        let started = Instant::now();
        while verdict(decide(&b).await.unwrap()).await != "deny" {
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "B still allowed a second after the withdrawal"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        worst = worst.max(started.elapsed());
        // And A, which took the write, never allows after answering it.
        assert_eq!(verdict(decide(&a).await.unwrap()).await, "deny");
    }
    eprintln!("slowest cross-instance invalidation: {worst:?}");
    drop((a, b));
}
