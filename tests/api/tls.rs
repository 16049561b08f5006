//! TLS to PostgreSQL: libpq is built with TLS (against OpenSSL compiled from source), so
//! `sslmode` and `sslrootcert` in `CONSENTRY_DATABASE_URL` are honoured by the app, the
//! change listener and the CLI alike. Needs a server with TLS on and its throw-away CA:
//! `tools/postgres_tls.sh` sets both up and prints the CA's path, for
//! `CONSENTRY_TEST_PG_TLS_ROOT`; without the variable the CA is looked for beside the
//! server's certificate (`ca.crt`), and the unrelated CA beside it (`other-ca.crt`).
//! Skipped, with a note, when the suite runs on SQLite.

use std::path::PathBuf;

use consentry::storage::{Database, DatabaseUrl, DbConnection, PoolSettings, StorageError};
use diesel::pg::PgConnection;
use diesel::sql_types::{BigInt, Bool, Text};
use diesel::{Connection, QueryableByName, RunQueryDsl};
use serde_json::json;

use crate::cli::consentry;
use crate::helpers::{spawn_app_with, with_params, TestDatabase, TestOptions, TEST_DB_ENV};

const TLS_ROOT_ENV: &str = "CONSENTRY_TEST_PG_TLS_ROOT";

/// A database of the test's own on PostgreSQL, or `None` (and a note) on SQLite.
fn postgres_database(dir: &std::path::Path) -> Option<TestDatabase> {
    if std::env::var(TEST_DB_ENV).map_or(true, |url| url.is_empty()) {
        eprintln!("skipped: TLS to PostgreSQL needs PostgreSQL ({TEST_DB_ENV} unset)");
        return None;
    }
    Some(TestDatabase::create(dir))
}

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = Text)]
    value: String,
}

/// The CA that signed the server's certificate, and an unrelated one.
fn certificate_authorities(admin_url: &str) -> (String, String) {
    let ca = match std::env::var(TLS_ROOT_ENV) {
        Ok(path) if !path.is_empty() => PathBuf::from(path),
        _ => {
            let mut admin = PgConnection::establish(admin_url).expect("the admin connection");
            let cert = diesel::sql_query("SELECT current_setting('ssl_cert_file') AS value")
                .get_result::<Setting>(&mut admin)
                .expect("SHOW ssl_cert_file")
                .value;
            PathBuf::from(cert).with_file_name("ca.crt")
        }
    };
    let other = ca.with_file_name("other-ca.crt");
    for file in [&ca, &other] {
        assert!(
            file.is_file(),
            "no {} : run tools/postgres_tls.sh on the database's machine and set {TLS_ROOT_ENV} \
             to the path it prints",
            file.display()
        );
    }
    (
        ca.to_str().unwrap().to_owned(),
        other.to_str().unwrap().to_owned(),
    )
}

/// The test database's URL with another host (and port 5432 kept), optionally dialled at
/// another address (`hostaddr`), plus query parameters.
fn url_for_host(db: &TestDatabase, host: &str, params: &str) -> String {
    let (scheme, rest) = db.url.split_once("://").unwrap();
    let (server, path) = rest.split_once('/').unwrap();
    let (user, server) = server
        .rsplit_once('@')
        .map_or(("", server), |(u, s)| (u, s));
    let port = server.rsplit_once(':').map_or("5432", |(_, port)| port);
    let at = if user.is_empty() { "" } else { "@" };
    with_params(
        &format!("{scheme}://{user}{at}{host}:{port}/{path}"),
        params,
    )
}

fn admin_url() -> String {
    std::env::var(TEST_DB_ENV).unwrap()
}

#[derive(QueryableByName)]
struct Sessions {
    #[diesel(sql_type = BigInt)]
    tls: i64,
    #[diesel(sql_type = BigInt)]
    plain: i64,
    #[diesel(sql_type = Bool)]
    this_one: bool,
}

/// How the sessions on the current database are made, as the server sees them.
fn sessions(conn: &mut PgConnection) -> Sessions {
    diesel::sql_query(
        "SELECT count(*) FILTER (WHERE s.ssl) AS tls, count(*) FILTER (WHERE NOT s.ssl) AS plain, \
                bool_or(s.ssl AND s.pid = pg_backend_pid()) AS this_one \
         FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
         WHERE a.datname = current_database()",
    )
    .get_result(conn)
    .expect("pg_stat_ssl")
}

fn open(url: &str) -> Result<Database, StorageError> {
    let settings = PoolSettings {
        max_size: 2,
        ..PoolSettings::default()
    };
    Database::open(&DatabaseUrl::parse(url).unwrap(), &settings)
}

/// Whether the server sees this database's own connection as TLS.
fn session_is_tls(db: &Database) -> bool {
    match db.manager().establish().expect("a connection") {
        DbConnection::Postgres(mut conn) => sessions(&mut conn).this_one,
        DbConnection::Sqlite(_) => unreachable!("a postgres:// URL"),
    }
}

#[tokio::test]
async fn with_sslmode_require_every_session_of_the_app_is_tls() {
    if std::env::var(TEST_DB_ENV).map_or(true, |url| url.is_empty()) {
        eprintln!("skipped: TLS to PostgreSQL needs PostgreSQL ({TEST_DB_ENV} unset)");
        return;
    }
    let app = spawn_app_with(TestOptions {
        database_params: "sslmode=require",
        ..TestOptions::default()
    })
    .await;
    // The app works: a write and a read through the pool.
    app.create_subject("tls-1", json!({"region": "DE"})).await;
    let response = app.put_consent("tls-1", "analytics", "granted").await;
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(
        app.consents("tls-1").await["analytics"]["status"],
        "granted"
    );
    // Every session on the app's database is TLS: the pool's and the change listener's.
    let seen = app
        .app_db
        .run(|conn| match conn {
            DbConnection::Postgres(c) => Ok::<_, StorageError>(sessions(c)),
            DbConnection::Sqlite(_) => unreachable!("the suite runs on PostgreSQL"),
        })
        .await
        .unwrap();
    assert!(seen.this_one, "the pooled session is not TLS");
    assert_eq!(seen.plain, 0, "sessions without TLS on the app's database");
    // 4 pooled (opened up front) and the listener.
    assert!(seen.tls >= 5, "only {} TLS sessions", seen.tls);
}

#[test]
fn verify_full_accepts_the_servers_certificate_for_localhost() {
    let dir = tempfile::tempdir().unwrap();
    let Some(test_db) = postgres_database(dir.path()) else {
        return;
    };
    let (ca, _) = certificate_authorities(&admin_url());
    let url = url_for_host(
        &test_db,
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    let db = open(&url).unwrap_or_else(|e| panic!("{url}: {e}"));
    assert!(session_is_tls(&db), "connected, but not over TLS");
}

#[test]
fn verify_full_refuses_a_certificate_for_another_host_name() {
    let dir = tempfile::tempdir().unwrap();
    let Some(test_db) = postgres_database(dir.path()) else {
        return;
    };
    let (ca, _) = certificate_authorities(&admin_url());
    // The same server, dialled by address: only the name asked for differs from those
    // in its certificate (localhost, 127.0.0.1, ::1).
    let params = format!("hostaddr=127.0.0.1&sslrootcert={ca}");
    let url = url_for_host(&test_db, "db.elsewhere.invalid", &params);

    let refused = open(&with_params(&url, "sslmode=verify-full"))
        .err()
        .expect("verify-full connected to a server whose certificate names other hosts");
    let message = refused.to_string();
    assert!(
        matches!(refused, StorageError::Unreachable { .. }),
        "{message}"
    );
    assert!(
        message.contains(r#"does not match host name "db.elsewhere.invalid""#),
        "{message}"
    );
    // The chain itself is fine: verify-ca, which checks it but not the name, connects.
    let db = open(&with_params(&url, "sslmode=verify-ca")).unwrap_or_else(|e| panic!("{e}"));
    assert!(session_is_tls(&db));
}

#[test]
fn verify_full_refuses_a_server_signed_by_another_ca() {
    let dir = tempfile::tempdir().unwrap();
    let Some(test_db) = postgres_database(dir.path()) else {
        return;
    };
    let (_, other_ca) = certificate_authorities(&admin_url());
    let url = url_for_host(
        &test_db,
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={other_ca}"),
    );
    let message = open(&url)
        .err()
        .expect("verify-full trusted a server signed by a CA it was not given")
        .to_string();
    assert!(message.contains("certificate verify failed"), "{message}");
}

#[test]
fn the_cli_keeps_the_tls_parameters_and_never_prints_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let Some(test_db) = postgres_database(dir.path()) else {
        return;
    };
    let (ca, _) = certificate_authorities(&admin_url());
    let params = format!("sslrootcert={ca}&sslmode=verify-full");
    // The local server trusts its users: the password is never checked, only carried.
    let with_password = |url: String| url.replacen("://postgres@", "://postgres:hunter2@", 1);

    let good = with_password(url_for_host(&test_db, "localhost", &params));
    let out = consentry(&["migrate"], &[("CONSENTRY_DATABASE_URL", good.as_str())]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("postgres:***@localhost:") && stdout.contains("sslmode=verify-full"),
        "{stdout}"
    );
    assert!(!stdout.contains("hunter2") && !stderr.contains("hunter2"));

    let params = format!("hostaddr=127.0.0.1&{params}");
    let bad = with_password(url_for_host(&test_db, "db.elsewhere.invalid", &params));
    let out = consentry(&["migrate"], &[("CONSENTRY_DATABASE_URL", bad.as_str())]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("does not match host name"), "{stderr}");
    assert!(
        stderr.contains("postgres:***@db.elsewhere.invalid"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn a_test_database_url_keeps_the_admin_urls_parameters() {
    use crate::helpers::with_database;
    assert_eq!(
        with_database("postgres://u@h:5432/test", "x"),
        "postgres://u@h:5432/x"
    );
    assert_eq!(
        with_database(
            "postgres://u@h/test?sslmode=verify-full&sslrootcert=/etc/ca.crt",
            "x"
        ),
        "postgres://u@h/x?sslmode=verify-full&sslrootcert=/etc/ca.crt"
    );
    assert_eq!(
        with_database("postgres://u@h?sslmode=require", "x"),
        "postgres://u@h/x?sslmode=require"
    );
}
