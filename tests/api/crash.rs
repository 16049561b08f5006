//! A process killed with consent writes, preference writes and survey answers in flight
//! loses none it acknowledged, and its ledger, state and audit chain still agree; a
//! process asked to stop (SIGTERM) refuses new connections, finishes what it started
//! within its bound and loses nothing either.

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use consentry::auth::Role;
use serde_json::{json, Value};

use crate::cli::consentry;
use crate::helpers::TestDatabase;
use crate::process::{environment, Keys, Server};
use crate::receiver::Receiver;

/// Writers of each kind, each on subjects of its own so that their order is known.
const WRITERS: usize = 2;
/// Demo subjects seeded; a writer takes a band of them.
const SUBJECTS: usize = 240;

#[derive(Default)]
struct Acknowledged {
    /// Subject and ledger record of every consent write answered 200.
    consents: Vec<(String, String)>,
    /// Per subject, the highest weekly cap acknowledged and the highest sent.
    preferences: BTreeMap<String, (u32, u32)>,
    /// Response ids of survey answers answered 200.
    answers: Vec<String>,
    /// Any answer that was neither 2xx nor a failure to reach the server.
    refused: Vec<String>,
}

struct Scene {
    _dir: tempfile::TempDir,
    db: TestDatabase,
    keys: Keys,
    /// This scene's NATS subjects and stream.
    nats_prefix: String,
}

impl Scene {
    /// A database with demo customers and the survey templates, and keys for tokens.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = TestDatabase::create(dir.path());
        let keys = Keys::make(dir.path().join("data"));
        let env = environment(&db.url, &keys.data_dir);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let seeded = consentry(&["demo", "--subjects", &SUBJECTS.to_string()], &env);
        assert!(seeded.status.success(), "{seeded:?}");
        Self {
            _dir: dir,
            db,
            keys,
            nats_prefix: crate::nats::fresh_prefix(),
        }
    }

    fn start(&self) -> Server {
        Server::start_with(
            &self.db.url,
            &self.keys.data_dir,
            &[
                ("CONSENTRY_NATS_URL", crate::nats::nats_url()),
                ("CONSENTRY_NATS_PREFIX", self.nats_prefix.clone()),
            ],
        )
    }
}

fn demo(n: usize) -> String {
    consentry::demo::subject_id(n)
}

/// What each writer needs.
#[derive(Clone)]
struct Writer {
    client: reqwest::Client,
    base: String,
    token: String,
    acked: Arc<Mutex<Acknowledged>>,
    stop: Arc<AtomicBool>,
}

impl Writer {
    fn going(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
    }

    /// Grants and denials in turn on subjects `first..first + band`.
    async fn consents(self, first: usize, band: usize) {
        let mut n = 0usize;
        while self.going() {
            let subject = demo(first + n % band);
            let status = if n.is_multiple_of(2) {
                "granted"
            } else {
                "denied"
            };
            n += 1;
            let sent = self
                .client
                .put(format!(
                    "{}/v1/subjects/{subject}/consents/analytics",
                    self.base
                ))
                .bearer_auth(&self.token)
                .json(&json!({"status": status, "source": "api"}))
                .send()
                .await;
            if let Some(body) = answered(sent, &self.acked).await {
                let record = body["record_id"].as_str().unwrap().to_owned();
                self.acked.lock().unwrap().consents.push((subject, record));
            }
        }
    }

    /// Each subject's weekly cap rises 1, 2, 3...: the newest is the largest.
    async fn preferences(self, first: usize, band: usize) {
        let mut n = 0usize;
        while self.going() {
            let subject = demo(first + n % band);
            let cap = u32::try_from(n / band + 1).unwrap().min(100);
            n += 1;
            self.acked
                .lock()
                .unwrap()
                .preferences
                .entry(subject.clone())
                .or_default()
                .1 = cap;
            let sent = self
                .client
                .put(format!("{}/v1/subjects/{subject}/preferences", self.base))
                .bearer_auth(&self.token)
                .json(&json!({"channels": {"email": {"opted_in": true, "max_per_week": cap}}}))
                .send()
                .await;
            if answered(sent, &self.acked).await.is_some() {
                let mut acked = self.acked.lock().unwrap();
                let entry = acked.preferences.get_mut(&subject).unwrap();
                entry.0 = entry.0.max(cap);
            }
        }
    }

    /// One onboarding answer per customer; those in the strict default jurisdiction
    /// (outside the EEA, the UK and the US) have not allowed surveys and are left out.
    async fn answers(self, first: usize, band: usize) {
        let surveyed = |n: &usize| {
            let region = consentry::demo::region_of(*n);
            ["DE", "FR", "GB"].contains(&region) || region.starts_with("US")
        };
        for n in (first..first + band).filter(surveyed) {
            if !self.going() {
                break;
            }
            let sent = self
                .client
                .post(format!("{}/v1/surveys/onboarding-profile/responses", self.base))
                .bearer_auth(&self.token)
                .json(&json!({"subject_id": demo(n), "answers": {"role": "founder"}, "finished": false}))
                .send()
                .await;
            if let Some(body) = answered(sent, &self.acked).await {
                let id = body["response_id"].as_str().unwrap().to_owned();
                self.acked.lock().unwrap().answers.push(id);
            }
        }
    }
}

/// Consent, preference and survey writers against one server, each on a band of
/// subjects of its own, until finished.
struct Load {
    acked: Arc<Mutex<Acknowledged>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(server: &Server, keys: &Keys) -> Self {
        let (acked, stop) = (Arc::default(), Arc::new(AtomicBool::new(false)));
        let writer = Writer {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            base: server.address.clone(),
            token: keys.token(Role::Service, "writer"),
            acked: Arc::clone(&acked),
            stop: Arc::clone(&stop),
        };
        let band = SUBJECTS / (3 * WRITERS);
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let first = |kind: usize| 1 + (kind * WRITERS + w) * band;
            tasks.push(tokio::spawn(writer.clone().consents(first(0), band)));
            tasks.push(tokio::spawn(writer.clone().preferences(first(1), band)));
            tasks.push(tokio::spawn(writer.clone().answers(first(2), band)));
        }
        Self { acked, stop, tasks }
    }

    /// Waits until writes of every kind have been acknowledged.
    async fn wait_for_some_of_each(&self) {
        let started = Instant::now();
        while !some_of_each(&self.acked.lock().unwrap()) {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the load stalled"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn finish(self) -> Acknowledged {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.unwrap();
        }
        Arc::try_unwrap(self.acked)
            .ok()
            .unwrap()
            .into_inner()
            .unwrap()
    }
}

/// The body of a 2xx answer; a failure to reach the server is no answer; anything else
/// is noted as refused.
async fn answered(
    sent: reqwest::Result<reqwest::Response>,
    acked: &Mutex<Acknowledged>,
) -> Option<Value> {
    let response = sent.ok()?;
    let status = response.status();
    let body = response.text().await.ok()?;
    if status.is_success() {
        return serde_json::from_str(&body).ok();
    }
    acked
        .lock()
        .unwrap()
        .refused
        .push(format!("{status}: {body}"));
    None
}

/// Every acknowledged write is there, the effective state is the newest ledger record,
/// and the audit chain verifies.
async fn everything_acknowledged_is_there(server: &Server, keys: &Keys, acked: &Acknowledged) {
    let client = reqwest::Client::new();
    let officer = keys.token(Role::Compliance, "officer");
    let service = keys.token(Role::Service, "checker");
    let get = |path: String, token: &str| {
        let request = client.get(server.url(&path)).bearer_auth(token).send();
        async move {
            let response = request.await.unwrap();
            assert_eq!(response.status(), 200, "GET {path}");
            response.json::<Value>().await.unwrap()
        }
    };

    let subjects: HashSet<&String> = acked.consents.iter().map(|(s, _)| s).collect();
    for subject in subjects {
        let history = get(
            format!("/v1/subjects/{subject}/consents/history?limit=200"),
            &officer,
        )
        .await;
        let records: Vec<&Value> = history["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["purpose"] == "analytics")
            .collect();
        let kept: HashSet<&str> = records.iter().filter_map(|r| r["id"].as_str()).collect();
        for (_, record) in acked.consents.iter().filter(|(s, _)| s == subject) {
            assert!(
                kept.contains(record.as_str()),
                "{subject}: record {record} lost"
            );
        }
        let state = get(format!("/v1/subjects/{subject}/consents"), &service).await;
        let analytics = state["consents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["purpose"] == "analytics")
            .unwrap()
            .clone();
        assert_eq!(
            analytics["record_id"], records[0]["id"],
            "{subject}: the state is not the newest ledger record"
        );
    }
    for (subject, (acknowledged, sent)) in &acked.preferences {
        if *acknowledged == 0 {
            continue;
        }
        let stored = get(format!("/v1/subjects/{subject}/preferences"), &service).await;
        let cap = u32::try_from(
            stored["channels"]["email"]["max_per_week"]
                .as_u64()
                .unwrap(),
        )
        .unwrap();
        assert!(
            (*acknowledged..=*sent).contains(&cap),
            "{subject}: cap {cap}, acknowledged {acknowledged}, sent up to {sent}"
        );
    }
    let admin = keys.token(Role::Admin, "ops");
    let export = client
        .get(server.url("/v1/surveys/onboarding-profile/responses?format=jsonl"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), 200);
    let export = export.text().await.unwrap();
    let stored: HashSet<String> = export
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|r| r["response_id"].as_str().map(str::to_owned))
        .collect();
    for id in &acked.answers {
        assert!(stored.contains(id), "answer {id} lost");
    }
    let report = get("/v1/audit/verify".into(), &officer).await;
    assert_eq!(report["ok"], true, "{report}");
}

fn some_of_each(acked: &Acknowledged) -> bool {
    acked.consents.len() >= 20
        && acked.answers.len() >= 10
        && acked.preferences.values().filter(|(a, _)| *a > 0).count() >= 10
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_write_acknowledged_before_a_kill_is_there_after_restart() {
    let scene = Scene::new();
    let server = scene.start();
    let receiver = Receiver::start();
    let created = reqwest::Client::new()
        .post(server.url("/v1/webhooks"))
        .bearer_auth(scene.keys.token(Role::Admin, "ops"))
        .json(&json!({"url": receiver.url}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let webhook: Value = created.json().await.unwrap();
    let load = Load::start(&server, &scene.keys);
    load.wait_for_some_of_each().await;
    server.kill();
    let acked = load.finish().await;
    eprintln!(
        "acknowledged before the kill: {} consents, {} preference subjects, {} answers",
        acked.consents.len(),
        acked.preferences.len(),
        acked.answers.len()
    );
    assert!(acked.refused.is_empty(), "{:?}", acked.refused);

    let restarted = scene.start();
    everything_acknowledged_is_there(&restarted, &scene.keys, &acked).await;
    let pending = format!(
        "{}?status=pending",
        restarted.url(&format!(
            "/v1/webhooks/{}/deliveries",
            webhook["id"].as_str().unwrap()
        ))
    );
    every_acknowledged_consent_reached_downstream(&scene, &receiver, &acked, async || {
        let admin = scene.keys.token(Role::Admin, "ops");
        let client = reqwest::Client::new();
        match client.get(&pending).bearer_auth(admin).send().await {
            Ok(answer) => answer.text().await.unwrap_or_default(),
            Err(err) => err.to_string(),
        }
    })
    .await;
}

/// Every acknowledged consent write was delivered to the webhook (at least once) and
/// published to NATS exactly once, across the kill.
async fn every_acknowledged_consent_reached_downstream(
    scene: &Scene,
    receiver: &Receiver,
    acked: &Acknowledged,
    pending_deliveries: impl AsyncFn() -> String,
) {
    let record_ids = |bodies: Vec<Value>| -> HashSet<String> {
        bodies
            .iter()
            .filter_map(|b| b["data"]["record_id"].as_str().map(str::to_owned))
            .collect()
    };
    let wanted: HashSet<String> = acked.consents.iter().map(|(_, r)| r.clone()).collect();
    let started = Instant::now();
    loop {
        let delivered = record_ids(receiver.accepted().iter().map(|r| r.json()).collect());
        let published = crate::nats::published(&scene.nats_prefix).await;
        let on_the_bus = record_ids(published.iter().map(|p| p.body.clone()).collect());
        let missing_hook = wanted.difference(&delivered).count();
        let missing_bus = wanted.difference(&on_the_bus).count();
        if missing_hook == 0 && missing_bus == 0 {
            crate::nats::assert_no_duplicates(&published);
            // Every message the webhook had is on the bus, once.
            let bus_ids: HashSet<&str> = published.iter().map(|p| p.msg_id.as_str()).collect();
            let hook_ids: HashSet<String> = receiver
                .accepted()
                .iter()
                .map(|r| r.id().to_owned())
                .collect();
            assert!(hook_ids.iter().all(|id| bus_ids.contains(id.as_str())));
            eprintln!(
                "downstream: {} webhook deliveries ({} distinct), {} on the bus",
                receiver.accepted().len(),
                hook_ids.len(),
                published.len()
            );
            return;
        }
        // On PostgreSQL the killed instance's leased deliveries wait out their lease
        // (60 s from when they were taken) before the new one sends them.
        if started.elapsed() > Duration::from_secs(90) {
            panic!(
                "acknowledged consents not downstream: {missing_hook} by webhook, \
                 {missing_bus} on NATS; the server's pending deliveries: {}",
                pending_deliveries().await
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stop_signal_refuses_new_connections_drains_the_rest_and_loses_nothing() {
    let scene = Scene::new();
    let mut server = scene.start();
    let load = Load::start(&server, &scene.keys);
    load.wait_for_some_of_each().await;
    let port: u16 = server.address.rsplit(':').next().unwrap().parse().unwrap();
    // A request in flight when the signal comes: its head is sent, its body not yet.
    let subject = demo(SUBJECTS);
    let body = r#"{"status": "denied", "source": "api"}"#;
    let mut in_flight = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        in_flight,
        "PUT /v1/subjects/{subject}/consents/analytics HTTP/1.1\r\nhost: 127.0.0.1\r\n\
         authorization: Bearer {}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{}",
        scene.keys.token(Role::Service, "late"),
        body.len(),
        &body[..10]
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.terminate();
    let signalled = Instant::now();
    // New connections are refused at once, while what was in flight finishes.
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            break;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(2),
            "still accepting connections 2 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The request in flight is finished and answered.
    in_flight.write_all(&body.as_bytes()[10..]).unwrap();
    let mut answer = String::new();
    in_flight.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let record = answer.split("\r\n\r\n").nth(1).unwrap();
    let record: Value = serde_json::from_str(record).unwrap();
    let status = server
        .wait_for_exit(Duration::from_secs(6))
        .expect("the process ends within its shutdown bound");
    assert!(status.success(), "{status:?}");
    eprintln!("stopped {:?} after SIGTERM", signalled.elapsed());
    let mut acked = load.finish().await;
    acked
        .consents
        .push((subject, record["record_id"].as_str().unwrap().to_owned()));
    // A stop is no failure: nothing in flight was answered with an error.
    assert!(acked.refused.is_empty(), "{:?}", acked.refused);

    let restarted = scene.start();
    everything_acknowledged_is_there(&restarted, &scene.keys, &acked).await;
}
