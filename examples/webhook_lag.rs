//! Delivery lag, commit to receiver: a webhook receiver and a paced writer in one
//! process (`bench/webhooks.sh` runs it against a release server).
//!
//! Registers a receiver for consent changes, creates `SUBJECTS` subjects, then writes
//! consent changes at `RATE` a second for `SECONDS` (each a real change: grants and
//! withdrawals alternate per subject), and measures for every delivery the time from
//! the change (the message's `timestamp`) to its arrival, the writes' own latency, the
//! deepest queue seen in `/metrics`, and how long the queue took to drain after the
//! last write. Settings: `BASE`, `ADMIN` and `SERVICE` (tokens), `RATE` (1000),
//! `SECONDS` (20), `SUBJECTS` (2000), `RECEIVER_PORT` (9200), `WRITERS` (32).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpResponse, HttpServer};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Default)]
struct Received {
    lags_ms: Vec<f64>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn receiver(port: u16, received: Arc<Mutex<Received>>) {
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let data = web::Data::new(received);
            HttpServer::new(move || {
                App::new().app_data(data.clone()).default_service(web::to(
                    |body: web::Bytes, data: web::Data<Arc<Mutex<Received>>>| async move {
                        let arrived = Utc::now();
                        if let Ok(message) = serde_json::from_slice::<Value>(&body) {
                            if let Some(at) = message["timestamp"]
                                .as_str()
                                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                            {
                                let lag = (arrived - at.with_timezone(&Utc)).num_microseconds();
                                data.lock()
                                    .unwrap()
                                    .lags_ms
                                    .push(lag.unwrap_or(0) as f64 / 1000.0);
                            }
                        }
                        HttpResponse::NoContent().finish()
                    },
                ))
            })
            .workers(1)
            .bind(("127.0.0.1", port))
            .expect("the receiver's port")
            .run()
            .await
            .expect("the receiver runs");
        });
    });
}

fn queue_depth(agent: &ureq::Agent, base: &str) -> i64 {
    let Ok(mut response) = agent.get(&format!("{base}/metrics")).call() else {
        return -1;
    };
    let text = response.body_mut().read_to_string().unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("consentry_webhook_queue_depth "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(-1)
}

fn main() {
    let base: String = setting("BASE", "http://127.0.0.1:18090".to_owned());
    let admin: String = setting("ADMIN", String::new());
    let service: String = setting("SERVICE", String::new());
    let rate: usize = setting("RATE", 1000);
    let seconds: usize = setting("SECONDS", 20);
    let subjects: usize = setting("SUBJECTS", 2000);
    let port: u16 = setting("RECEIVER_PORT", 9200);
    let writers: usize = setting("WRITERS", 32);

    let received = Arc::new(Mutex::new(Received::default()));
    receiver(port, received.clone());
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_idle_connections_per_host(writers)
        .build()
        .into();
    let created = agent
        .post(&format!("{base}/v1/webhooks"))
        .header("authorization", &format!("Bearer {admin}"))
        .content_type("application/json")
        .send(
            json!({"url": format!("http://127.0.0.1:{port}/hooks"),
                          "event_types": ["consent.granted", "consent.denied"]})
            .to_string(),
        )
        .expect("registering the receiver");
    assert_eq!(created.status().as_u16(), 201, "registering the receiver");
    std::thread::scope(|scope| {
        for w in 0..8 {
            let agent = agent.clone();
            let (base, service) = (&base, &service);
            scope.spawn(move || {
                for i in (w..subjects).step_by(8) {
                    agent
                        .put(&format!("{base}/v1/subjects/lag-{i}"))
                        .header("authorization", &format!("Bearer {service}"))
                        .content_type("application/json")
                        .send(json!({"region": "DE"}).to_string())
                        .expect("creating a subject");
                }
            });
        }
    });

    let total = rate * seconds;
    let acknowledged = AtomicUsize::new(0);
    let latencies = Mutex::new(Vec::with_capacity(total));
    let max_depth = Mutex::new(0i64);
    let start = Instant::now();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                let depth = queue_depth(&agent, &base);
                let mut max = max_depth.lock().unwrap();
                *max = (*max).max(depth);
                drop(max);
                std::thread::sleep(Duration::from_millis(500));
            }
        });
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let agent = agent.clone();
                let (base, service, acknowledged, latencies) =
                    (&base, &service, &acknowledged, &latencies);
                scope.spawn(move || {
                    for k in (w..total).step_by(writers) {
                        let due = start + Duration::from_secs_f64(k as f64 / rate as f64);
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                        let status = if (k / subjects).is_multiple_of(2) {
                            "granted"
                        } else {
                            "denied"
                        };
                        let sent = Instant::now();
                        let answer = agent
                            .put(&format!(
                                "{base}/v1/subjects/lag-{}/consents/analytics",
                                k % subjects
                            ))
                            .header("authorization", &format!("Bearer {service}"))
                            .content_type("application/json")
                            .send(json!({"status": status, "source": "api"}).to_string());
                        if answer.is_ok_and(|a| a.status().is_success()) {
                            acknowledged.fetch_add(1, Ordering::Relaxed);
                            latencies
                                .lock()
                                .unwrap()
                                .push(sent.elapsed().as_secs_f64() * 1000.0);
                        }
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        let wrote_for = start.elapsed();
        let acked = acknowledged.load(Ordering::Relaxed);
        let drain_started = Instant::now();
        while received.lock().unwrap().lags_ms.len() < acked
            && drain_started.elapsed() < Duration::from_secs(120)
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        let drained_after = drain_started.elapsed();
        done.store(true, Ordering::Relaxed);

        let mut lags = received.lock().unwrap().lags_ms.clone();
        lags.sort_by(f64::total_cmp);
        let mut writes = latencies.lock().unwrap().clone();
        writes.sort_by(f64::total_cmp);
        println!("target rate            {rate} changes/s for {seconds} s ({total} writes, {writers} writers)");
        println!(
            "achieved               {:.0} acknowledged writes/s ({acked} acknowledged in {:.1} s)",
            acked as f64 / wrote_for.as_secs_f64(),
            wrote_for.as_secs_f64()
        );
        println!(
            "write latency          p50 {:.1} ms, p99 {:.1} ms",
            percentile(&writes, 50.0),
            percentile(&writes, 99.0)
        );
        println!(
            "delivery lag           p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} delivered)",
            percentile(&lags, 50.0),
            percentile(&lags, 99.0),
            lags.last().copied().unwrap_or(f64::NAN),
            lags.len()
        );
        println!(
            "queue                  deepest {} pending, drained {:.2} s after the last write",
            max_depth.lock().unwrap(),
            drained_after.as_secs_f64()
        );
    });
}
