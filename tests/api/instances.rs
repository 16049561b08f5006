//! Two server processes on one PostgreSQL database: a withdrawal through one is honoured
//! by the other within a second.

use std::time::{Duration, Instant};

use consentry::auth::Role;
use serde_json::{json, Value};

use crate::helpers::TestDatabase;
use crate::process::{Keys, Server};

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
    // One key for both instances, made before either starts.
    let keys = Keys::make(dir.path().join("data"));
    let service = keys.token(Role::Service, "it");
    let (a, b) = (
        Server::start(&db.url, &keys.data_dir),
        Server::start(&db.url, &keys.data_dir),
    );
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
