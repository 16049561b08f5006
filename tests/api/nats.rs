//! The outbox published to NATS JetStream, against the real server on this machine
//! (`CONSENTRY_TEST_NATS_URL`, default `nats://127.0.0.1:4222`): subjects name what
//! changed, and a message published again (a crash after JetStream acknowledged it but
//! before it was marked) lands once.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use consentry::delivery::DeliverySettings;
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, TestOptions};

pub fn nats_url() -> String {
    std::env::var("CONSENTRY_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// A prefix of this test's own, so that runs never share a stream.
pub fn fresh_prefix() -> String {
    format!("t{}", uuid::Uuid::new_v4().simple())
}

/// One message in the stream.
pub struct Published {
    pub subject: String,
    pub msg_id: String,
    pub body: Value,
}

/// Every message in the prefix's stream, in order (empty while there is no stream).
pub async fn published(prefix: &str) -> Vec<Published> {
    let client = async_nats::connect(nats_url())
        .await
        .expect("NATS is running");
    let jetstream = async_nats::jetstream::new(client);
    let name = consentry::delivery::nats::stream_name(prefix);
    let Ok(mut stream) = jetstream.get_stream(&name).await else {
        return Vec::new();
    };
    let state = stream.info().await.unwrap().state.clone();
    let mut all = Vec::new();
    if state.messages == 0 {
        return all;
    }
    for seq in state.first_sequence..=state.last_sequence {
        let Ok(message) = stream.get_raw_message(seq).await else {
            continue;
        };
        all.push(Published {
            subject: message.subject.to_string(),
            msg_id: message
                .headers
                .get(async_nats::header::NATS_MESSAGE_ID)
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default(),
            body: serde_json::from_slice(&message.payload).unwrap(),
        });
    }
    all
}

/// Waits until the stream holds at least `n` messages.
pub async fn wait_for_published(prefix: &str, n: usize, bound: Duration) -> Vec<Published> {
    let started = Instant::now();
    loop {
        let all = published(prefix).await;
        if all.len() >= n {
            return all;
        }
        assert!(started.elapsed() < bound, "{} of {n} published", all.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn assert_no_duplicates(all: &[Published]) {
    let ids: HashSet<&str> = all.iter().map(|p| p.msg_id.as_str()).collect();
    assert_eq!(ids.len(), all.len(), "a message landed twice");
    assert!(!ids.contains(""), "a message without Nats-Msg-Id");
}

#[tokio::test]
async fn changes_are_published_under_subjects_that_name_them_and_land_once() {
    let prefix = fresh_prefix();
    let app = spawn_app_with(TestOptions {
        delivery: DeliverySettings {
            allow_internal: true,
            nats_url: Some(nats_url()),
            nats_prefix: prefix.clone(),
            ..DeliverySettings::default()
        },
        ..TestOptions::default()
    })
    .await;
    app.create_subject("eu-1", json!({"region": "DE"})).await;
    assert_eq!(
        app.put_consent("eu-1", "marketing.email", "granted")
            .await
            .status(),
        200
    );
    assert_eq!(
        app.put_consent("eu-1", "marketing.email", "denied")
            .await
            .status(),
        200
    );
    let all = wait_for_published(&prefix, 3, Duration::from_secs(20)).await;
    let subjects: Vec<&str> = all.iter().map(|p| p.subject.as_str()).collect();
    let consent = format!("{prefix}.consent.marketing.email");
    assert_eq!(
        subjects,
        [
            format!("{prefix}.subject.created"),
            consent.clone(),
            consent
        ]
    );
    assert_eq!(all[2].body["type"], "consent.denied");
    assert_eq!(all[2].body["subject_id"], "eu-1");
    assert_eq!(all[2].body["data"]["status"], "denied");
    assert_eq!(all[2].body["id"], all[2].msg_id);
    assert_no_duplicates(&all);

    // As if the process had died after JetStream acknowledged the messages and before
    // they were marked: every one is published again, and the stream drops them.
    app.app_db
        .run(|conn| {
            use consentry::storage::schema::outbox_messages::dsl;
            use diesel::prelude::*;
            diesel::update(dsl::outbox_messages)
                .set(dsl::published.eq(false))
                .execute(conn)
                .map_err(consentry::storage::StorageError::from)
        })
        .await
        .unwrap();
    let started = Instant::now();
    while !app
        .metrics()
        .await
        .contains("consentry_nats_published_total 6")
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not republished"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all = published(&prefix).await;
    assert_eq!(all.len(), 3);
    assert_no_duplicates(&all);
}
