//! Two server processes on one PostgreSQL database: once a withdrawal through one has
//! answered, neither allows any more, not even for a millisecond; and an instance that
//! stops hearing changes (frozen here) neither blocks writes for long nor answers from
//! what it cached before.

use std::time::{Duration, Instant};

use consentry::auth::Role;
use serde_json::{json, Value};

use crate::helpers::TestDatabase;
use crate::process::{Keys, Server};

struct Pair {
    a: Server,
    b: Server,
    token: String,
    admin: String,
    compliance: String,
    client: reqwest::Client,
    _db: TestDatabase,
    _dir: tempfile::TempDir,
}

impl Pair {
    /// `None` without PostgreSQL.
    fn start() -> Option<Self> {
        if std::env::var(crate::helpers::TEST_DB_ENV).is_err() {
            eprintln!(
                "skipped: needs PostgreSQL ({} unset)",
                crate::helpers::TEST_DB_ENV
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let db = TestDatabase::create(dir.path());
        // One key for both instances, made before either starts.
        let keys = Keys::make(dir.path().join("data"));
        Some(Self {
            a: Server::start(&db.url, &keys.data_dir),
            b: Server::start(&db.url, &keys.data_dir),
            token: keys.token(Role::Service, "it"),
            admin: keys.token(Role::Admin, "ops"),
            compliance: keys.token(Role::Compliance, "officer"),
            client: reqwest::Client::new(),
            _db: db,
            _dir: dir,
        })
    }

    async fn put(&self, server: &Server, path: &str, body: Value) -> reqwest::Response {
        self.client
            .put(server.url(path))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn consent(&self, server: &Server, subject: &str, status: &str) {
        let path = format!("/v1/subjects/{subject}/consents/marketing.email");
        let answer = self
            .put(server, &path, json!({"status": status, "source": "api"}))
            .await;
        assert_eq!(answer.status(), 200);
    }

    fn decide(&self, server: &Server, subject: &str) -> reqwest::RequestBuilder {
        self.client
            .post(server.url("/v1/decisions"))
            .bearer_auth(&self.token)
            .json(&json!({"subject_id": subject, "purpose": "marketing.email"}))
    }

    async fn verdict(&self, server: &Server, subject: &str) -> String {
        verdict(self.decide(server, subject).send().await.unwrap()).await
    }
}

async fn verdict(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["decision"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn once_a_withdrawal_answered_no_instance_allows() {
    let Some(pair) = Pair::start() else { return };
    let created = pair
        .put(&pair.a, "/v1/subjects/shared", json!({"region": "DE"}))
        .await;
    assert_eq!(created.status(), 201);
    for round in 0..20 {
        // Alternate the instance that writes.
        let (writer, other) = if round % 2 == 0 {
            (&pair.a, &pair.b)
        } else {
            (&pair.b, &pair.a)
        };
        pair.consent(other, "shared", "granted").await;
        // Both hold the grant in their caches.
        assert_eq!(pair.verdict(writer, "shared").await, "allow");
        assert_eq!(pair.verdict(other, "shared").await, "allow");
        pair.consent(writer, "shared", "denied").await;
        assert_eq!(
            pair.verdict(other, "shared").await,
            "deny",
            "round {round}: the other instance allowed after the withdrawal answered"
        );
        assert_eq!(pair.verdict(writer, "shared").await, "deny");
    }
}

/// Both instances commit writes in batches, each under the write-order lock: the chain
/// they build together has every write, once, with no gap and no fork.
#[tokio::test]
async fn concurrent_writes_on_two_instances_build_one_gap_free_chain() {
    let Some(pair) = Pair::start() else { return };
    const SUBJECTS: usize = 8;
    for n in 0..SUBJECTS {
        let created = pair
            .put(
                &pair.a,
                &format!("/v1/subjects/c{n}"),
                json!({"region": "DE"}),
            )
            .await;
        assert_eq!(created.status(), 201);
    }
    let head = |server: &Server| {
        let request = pair
            .client
            .get(server.url("/v1/audit/verify"))
            .bearer_auth(&pair.compliance);
        async move {
            let report: Value = request.send().await.unwrap().json().await.unwrap();
            assert_eq!(report["ok"], true, "{report}");
            report["head_seq"].as_i64().unwrap()
        }
    };
    let before = head(&pair.a).await;
    let (writers, each) = (32, 10);
    let writes = (0..writers).map(|w| {
        let pair = &pair;
        async move {
            for i in 0..each {
                let server = if (w + i) % 2 == 0 { &pair.a } else { &pair.b };
                let status = if i % 2 == 0 { "granted" } else { "denied" };
                let subject = format!("c{}", (w * each + i) % SUBJECTS);
                pair.consent(server, &subject, status).await;
            }
        }
    });
    futures_util::future::join_all(writes).await;
    // Every write appended exactly one event, whichever instance took it.
    let after = head(&pair.b).await;
    assert_eq!(after - before, (writers * each) as i64);
    assert_eq!(head(&pair.a).await, after);
}

#[tokio::test]
async fn a_frozen_instance_delays_writes_boundedly_and_then_reads_the_database() {
    let Some(pair) = Pair::start() else { return };
    pair.put(&pair.a, "/v1/subjects/frozen", json!({"region": "DE"}))
        .await;
    pair.consent(&pair.a, "frozen", "granted").await;
    assert_eq!(pair.verdict(&pair.b, "frozen").await, "allow");

    pair.b.signal("STOP");
    let started = Instant::now();
    pair.consent(&pair.a, "frozen", "denied").await;
    let waited = started.elapsed();
    // B's decision is asked while it is frozen and answered as it wakes, before its
    // listener can have caught up: its lease has run out, so it reads the database.
    let pending = tokio::spawn(pair.decide(&pair.b, "frozen").send());
    tokio::time::sleep(Duration::from_millis(200)).await;
    pair.b.signal("CONT");
    let answer = pending.await.unwrap().unwrap();
    assert_eq!(verdict(answer).await, "deny");
    assert!(
        waited < Duration::from_secs(3),
        "a write waited {waited:?} for a frozen instance"
    );
    assert!(
        waited >= Duration::from_millis(900),
        "a write answered after {waited:?}, before the frozen instance's lease ran out"
    );
    // Once B is heard again, writes do not wait for it any longer than usual.
    pair.consent(&pair.a, "frozen", "granted").await;
    let started = Instant::now();
    pair.consent(&pair.b, "frozen", "denied").await;
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(pair.verdict(&pair.a, "frozen").await, "deny");
}

#[tokio::test]
async fn an_instance_that_stopped_gracefully_is_not_waited_for() {
    let Some(mut pair) = Pair::start() else {
        return;
    };
    pair.put(&pair.a, "/v1/subjects/leaver", json!({"region": "DE"}))
        .await;
    pair.b.terminate();
    assert!(pair.b.wait_for_exit(Duration::from_secs(10)).is_some());
    // Without its goodbye, A would wait up to its patience (over a second) for B.
    let started = Instant::now();
    pair.consent(&pair.a, "leaver", "denied").await;
    let waited = started.elapsed();
    assert!(waited < Duration::from_millis(700), "waited {waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_deliver_each_message_once_and_each_subjects_in_order() {
    let Some(pair) = Pair::start() else { return };
    let receiver = crate::receiver::Receiver::start();
    let created = pair
        .client
        .post(pair.a.url("/v1/webhooks"))
        .bearer_auth(&pair.admin)
        .json(&json!({"url": receiver.url, "event_types": ["consent.granted", "consent.denied"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    const SUBJECTS: usize = 30;
    const WRITES: usize = 6;
    let pair = std::sync::Arc::new(pair);
    let mut writers = Vec::new();
    for n in 0..SUBJECTS {
        let pair = pair.clone();
        writers.push(tokio::spawn(async move {
            let subject = format!("s{n}");
            let made = pair
                .put(
                    &pair.a,
                    &format!("/v1/subjects/{subject}"),
                    json!({"region": "DE"}),
                )
                .await;
            assert!(made.status().is_success());
            // Through both instances in turn: both dispatchers see the subject's changes.
            for k in 0..WRITES {
                let server = if k % 2 == 0 { &pair.a } else { &pair.b };
                let status = if k % 2 == 0 { "granted" } else { "denied" };
                pair.consent(server, &subject, status).await;
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let got = receiver
        .wait_for_accepted(SUBJECTS * WRITES, Duration::from_secs(60))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got_all = receiver.received();
    let ids: std::collections::HashSet<&str> = got_all.iter().map(|r| r.id()).collect();
    assert_eq!(got_all.len(), SUBJECTS * WRITES, "a message was sent twice");
    assert_eq!(ids.len(), SUBJECTS * WRITES);
    for n in 0..SUBJECTS {
        let statuses: Vec<String> = got
            .iter()
            .map(|r| r.json())
            .filter(|b| b["data"]["subject_id"] == format!("s{n}"))
            .map(|b| b["data"]["status"].as_str().unwrap().to_owned())
            .collect();
        let expected: Vec<&str> = (0..WRITES)
            .map(|k| if k % 2 == 0 { "granted" } else { "denied" })
            .collect();
        assert_eq!(statuses, expected, "s{n}'s changes out of order");
    }
}
