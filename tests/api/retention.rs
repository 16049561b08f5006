//! Retention: batches of short transactions, each audited, and a first run at start.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use consentry::audit::Pseudonymizer;
use consentry::auth::Role;
use consentry::gate::decision_log::LoggedDecision;
use consentry::policy::Retention;
use consentry::storage::schema::{audit_events, decision_log};
use consentry::storage::{write_transaction, StorageError};
use diesel::prelude::*;
use serde_json::{json, Value};

use crate::helpers::{policies_dir, spawn_app, start_time, TestApp};

fn retention() -> Retention {
    consentry::policy::load(&policies_dir()).unwrap().retention
}

fn pseudonyms(app: &TestApp) -> Arc<Pseudonymizer> {
    Arc::new(Pseudonymizer::load_or_generate(&app.data_dir, None).unwrap())
}

/// Sampled decisions made at `at`, written straight to the table.
async fn old_decisions(app: &TestApp, n: usize, at: DateTime<Utc>) {
    app.app_db
        .run(move |conn| {
            write_transaction(conn, |conn| {
                for i in 0..n {
                    diesel::insert_into(decision_log::table)
                        .values(LoggedDecision {
                            decided_at: at.naive_utc(),
                            subject_pseudonym: format!("p{i}"),
                            purpose: "analytics".into(),
                            channel: None,
                            decision: "deny".into(),
                            reason: "no_consent".into(),
                            basis: "opt_in".into(),
                            jurisdiction: "eea".into(),
                        })
                        .execute(conn)?;
                }
                Ok::<_, StorageError>(())
            })
        })
        .await
        .unwrap();
}

async fn decisions_left(app: &TestApp) -> i64 {
    app.app_db
        .run(|conn| {
            decision_log::table
                .count()
                .get_result::<i64>(conn)
                .map_err(StorageError::from)
        })
        .await
        .unwrap()
}

async fn retention_payloads(app: &TestApp) -> Vec<Value> {
    app.app_db
        .run(|conn| {
            audit_events::table
                .filter(audit_events::action.eq("retention.run"))
                .order(audit_events::seq.asc())
                .select(audit_events::payload)
                .load::<String>(conn)
                .map_err(StorageError::from)
        })
        .await
        .unwrap()
        .iter()
        .map(|p| serde_json::from_str(p).unwrap())
        .collect()
}

async fn chain_verifies(app: &TestApp) {
    let officer = app.token(Role::Compliance, Some("officer"));
    let verified = app.get_json("/v1/audit/verify", &officer).await;
    assert_eq!(verified["ok"], true, "{verified}");
    let exported = app
        .get("/v1/audit/events", &officer)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let keys = crate::audit::jwks(app).await;
    consentry::audit::export::verify_export(&exported, Some(&keys)).unwrap();
}

#[tokio::test]
async fn more_rows_than_one_batch_all_go_in_short_audited_batches() {
    let app = spawn_app().await;
    let batch = consentry::dsar::retention::BATCH_ROWS;
    let rows = 2 * batch + 1;
    old_decisions(&app, rows, start_time()).await;
    let pseudonyms = pseudonyms(&app);
    let later = start_time() + TimeDelta::days(31);
    let report = app
        .app_db
        .run(move |conn| consentry::dsar::retention::run(conn, &retention(), &pseudonyms, later))
        .await
        .unwrap();
    assert_eq!((report.decisions_deleted, report.batches), (rows, 3));
    assert_eq!(decisions_left(&app).await, 0);
    // One event per batch, each saying what its own transaction did.
    let payloads = retention_payloads(&app).await;
    let deleted: Vec<_> = payloads
        .iter()
        .map(|p| (p["batch"].clone(), p["decisions_deleted"].clone()))
        .collect();
    assert_eq!(
        deleted,
        [
            (json!(1), json!(batch)),
            (json!(2), json!(batch)),
            (json!(3), json!(1))
        ]
    );
    chain_verifies(&app).await;
}

#[tokio::test]
async fn every_kind_goes_in_batches_and_the_chain_still_verifies() {
    let app = spawn_app().await;
    for id in ["b1", "b2", "b3"] {
        app.create_subject(id, json!({"region": "DE"})).await;
        app.put_consent(id, "analytics", "granted").await;
    }
    old_decisions(&app, 5, start_time()).await;
    let pseudonyms = pseudonyms(&app);
    let six_years_on = start_time() + TimeDelta::days(2191);
    let report = app
        .app_db
        .run(move |conn| {
            consentry::dsar::retention::run_in_batches(
                conn,
                &retention(),
                &pseudonyms,
                six_years_on,
                2,
            )
        })
        .await
        .unwrap();
    // The policy load, three subjects and three consents.
    assert_eq!(report.audit_payloads_emptied, 7);
    assert_eq!(report.decisions_deleted, 5);
    assert_eq!(report.batches, 4);
    let payloads = retention_payloads(&app).await;
    assert_eq!(payloads.len(), 4);
    assert!(payloads
        .iter()
        .all(|p| p["audit_payloads_emptied"].as_u64().unwrap() <= 2
            && p["decisions_deleted"].as_u64().unwrap() <= 2));
    assert_eq!(decisions_left(&app).await, 0);
    // Nothing left to do: a second run changes and records nothing.
    let pseudonyms = self::pseudonyms(&app);
    let again = app
        .app_db
        .run(move |conn| {
            consentry::dsar::retention::run(conn, &retention(), &pseudonyms, six_years_on)
        })
        .await
        .unwrap();
    assert_eq!(again, Default::default());
    assert_eq!(app.audit_count("retention.run").await, 4);
    chain_verifies(&app).await;
}

#[tokio::test]
async fn the_task_runs_once_at_start_without_waiting_an_hour() {
    let app = spawn_app().await;
    old_decisions(&app, 3, start_time() - TimeDelta::days(40)).await;
    assert_eq!(decisions_left(&app).await, 3);
    let alive = Arc::new(());
    consentry::dsar::retention::spawn(
        app.app_db.manager(),
        retention(),
        pseudonyms(&app),
        Arc::new(app.clock.clone()),
        Arc::downgrade(&alive),
    )
    .unwrap();
    for _ in 0..100 {
        if decisions_left(&app).await == 0 {
            assert_eq!(app.audit_count("retention.run").await, 1);
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("retention did not run at start");
}
