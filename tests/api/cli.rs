//! The `consentry` binary itself: policy checks, migrations, tokens, and clear failures.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{policies_dir, spawn_app};

pub(crate) fn consentry(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_consentry"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that should fail fast must not hang the suite if it starts serving.
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("`consentry {}` did not exit", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn copy_policies(to: &Path) {
    std::fs::create_dir_all(to.join("notices")).unwrap();
    for file in [
        "purposes.toml",
        "jurisdictions.toml",
        "data_categories.toml",
        "channels.toml",
        "identifiers.toml",
        "journeys.toml",
        "notices/en.md",
        "notices/ar.md",
    ] {
        std::fs::copy(policies_dir().join(file), to.join(file)).unwrap();
    }
}

#[test]
fn policies_check_passes_on_the_shipped_set() {
    let dir = policies_dir();
    let out = consentry(
        &["policies", "check"],
        &[("CONSENTRY_POLICIES_DIR", dir.to_str().unwrap())],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("17 purposes"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn policies_check_and_serve_refuse_a_broken_file_naming_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    copy_policies(dir.path());
    let purposes = dir.path().join("purposes.toml");
    let original = std::fs::read_to_string(&purposes).unwrap();
    let broken = original.replacen(
        "basis = { default = \"opt_in\" }",
        "basis = { default = \"opt-in\" }",
        1,
    );
    std::fs::write(&purposes, &broken).unwrap();
    let line = broken
        .lines()
        .position(|l| l.contains("\"opt-in\""))
        .unwrap()
        + 1;
    let expected = format!(
        "purposes.toml:{line}: purpose[11] (marketing.sms).basis.default: unknown basis `opt-in`"
    );

    let env = [
        ("CONSENTRY_POLICIES_DIR", dir.path().to_str().unwrap()),
        ("CONSENTRY_DATA_DIR", dir.path().to_str().unwrap()),
        ("CONSENTRY_BIND", "127.0.0.1:0"),
    ];
    let check = consentry(&["policies", "check"], &env);
    assert_eq!(check.status.code(), Some(1));
    assert!(
        text(&check.stderr).contains(&expected),
        "{}",
        text(&check.stderr)
    );

    let sqlite = format!("sqlite://{}/c.db", dir.path().display());
    let mut serve_env = env.to_vec();
    serve_env.push(("CONSENTRY_DATABASE_URL", &sqlite));
    let serve = consentry(&["serve"], &serve_env);
    assert_eq!(serve.status.code(), Some(1));
    assert!(
        text(&serve.stderr).contains(&expected),
        "{}",
        text(&serve.stderr)
    );
}

#[test]
fn an_unreachable_postgres_is_a_clear_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        (
            "CONSENTRY_DATABASE_URL",
            "postgres://app:secret@127.0.0.1:1/consentry",
        ),
        ("CONSENTRY_DATA_DIR", dir.path().to_str().unwrap()),
        (
            "CONSENTRY_POLICIES_DIR",
            policies_dir().to_str().unwrap().to_owned().leak(),
        ),
        ("CONSENTRY_BIND", "127.0.0.1:0"),
    ];
    for args in [&["migrate"][..], &["serve"][..]] {
        let out = consentry(args, &env);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(
                "cannot connect to the database at postgres://app:***@127.0.0.1:1/consentry"
            ),
            "{stderr}"
        );
        assert!(
            !stderr.contains("secret") && !stderr.contains("panicked"),
            "{stderr}"
        );
    }
}

#[test]
fn bad_configuration_is_refused_at_start() {
    let out = consentry(
        &["policies", "check"],
        &[("CONSENTRY_JWT_ALGORITHMS", "none")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("`none` is not accepted"),
        "{}",
        text(&out.stderr)
    );
    let out = consentry(&["migrate"], &[("CONSENTRY_DATABASE_URL", "mysql://x")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("sqlite:// or postgres://"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn migrate_applies_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/nested/folder/c.db", dir.path().display());
    let env = [("CONSENTRY_DATABASE_URL", url.as_str())];
    let first = consentry(&["migrate"], &env);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
        .unwrap()
        .count();
    assert!(
        text(&first.stdout).contains(&format!("{migrations} migration(s) applied")),
        "{}",
        text(&first.stdout)
    );
    let second = consentry(&["migrate"], &env);
    assert!(
        text(&second.stdout).contains("0 migration(s) applied"),
        "{}",
        text(&second.stdout)
    );
}

#[test]
fn help_documents_every_setting() {
    let out = consentry(&["--help"], &[]);
    let help = text(&out.stdout);
    for variable in [
        "CONSENTRY_BIND",
        "CONSENTRY_DATABASE_URL",
        "CONSENTRY_DATA_DIR",
        "CONSENTRY_POLICIES_DIR",
        "CONSENTRY_LOG",
        "CONSENTRY_JWT_ISSUER",
        "CONSENTRY_JWT_AUDIENCE",
        "CONSENTRY_JWT_ALGORITHMS",
    ] {
        assert!(help.contains(variable), "{variable} missing from --help");
    }
}

#[tokio::test]
async fn a_minted_token_is_accepted_by_the_server_and_audited() {
    let app = spawn_app().await;
    let env = [
        ("CONSENTRY_DATA_DIR", app.data_dir.to_str().unwrap()),
        ("CONSENTRY_DATABASE_URL", app.db.url.as_str()),
    ];
    let out = consentry(
        &[
            "token", "--role", "subject", "--sub", "cust-9", "--ttl", "600000",
        ],
        &env,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let token = text(&out.stdout).trim().to_owned();
    let response = app.get("/v1/purposes", &token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let list: Value = response.json().await.unwrap();
    assert!(list["purposes"].is_array());
    assert_eq!(app.audit_count("token.minted").await, 1);

    let bad = consentry(&["token", "--role", "root"], &env);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        text(&bad.stderr).contains("--role must be one of"),
        "{}",
        text(&bad.stderr)
    );
    let no_sub = consentry(&["token", "--role", "subject"], &env);
    assert_eq!(no_sub.status.code(), Some(1));
}

#[test]
fn rotated_keys_keep_verifying_what_older_ones_signed() {
    use chrono::{TimeDelta, Utc};
    use consentry::auth::{token, KeyRing, Role};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let old = KeyRing::load_or_generate(dir.path(), None, Utc::now()).unwrap();
    let signed = token::mint(
        &old,
        &crate::helpers::jwt_settings(),
        Role::Service,
        Some("svc".into()),
        TimeDelta::minutes(5),
        Utc::now(),
    )
    .unwrap()
    .token;
    let out = consentry(&["keys", "rotate"], &[("CONSENTRY_DATA_DIR", data)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let new_kid = text(&out.stdout).trim().to_owned();
    let ring = KeyRing::load_or_generate(dir.path(), None, Utc::now()).unwrap();
    assert_eq!(ring.signing().kid, new_kid);
    assert_ne!(new_kid, old.signing().kid);
    assert!(token::verify(&signed, &ring, &crate::helpers::jwt_settings(), Utc::now()).is_ok());
    let kids: Vec<String> = ring.jwks().keys.into_iter().map(|k| k.kid).collect();
    assert_eq!(kids, [new_kid, old.signing().kid.clone()]);
}

#[tokio::test]
async fn audit_verify_checks_an_export_file_offline() {
    let app = spawn_app().await;
    app.create_subject("f1", serde_json::json!({"region": "DE"}))
        .await;
    app.put_consent("f1", "analytics", "granted").await;
    let token = app.token(consentry::auth::Role::Compliance, Some("officer"));
    let export = app
        .get("/v1/audit/events", &token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let jwks = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (file, keys) = (dir.path().join("audit.jsonl"), dir.path().join("jwks.json"));
    std::fs::write(&file, &export).unwrap();
    std::fs::write(&keys, &jwks).unwrap();
    let args = [
        "audit",
        "verify",
        file.to_str().unwrap(),
        "--jwks",
        keys.to_str().unwrap(),
    ];
    let ok = consentry(&args, &[]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(
        text(&ok.stdout).contains("signature verified"),
        "{}",
        text(&ok.stdout)
    );
    // Without keys it fails, unless the caller says they check the chain alone.
    let keyless = consentry(&["audit", "verify", file.to_str().unwrap()], &[]);
    assert_eq!(keyless.status.code(), Some(2), "{}", text(&keyless.stdout));
    assert!(
        text(&keyless.stderr).contains("--no-signature"),
        "{}",
        text(&keyless.stderr)
    );
    let chain_only = ["audit", "verify", file.to_str().unwrap(), "--no-signature"];
    let unsigned = consentry(&chain_only, &[]);
    assert!(unsigned.status.success(), "{}", text(&unsigned.stderr));
    assert!(
        text(&unsigned.stdout).contains("signature NOT checked"),
        "{}",
        text(&unsigned.stdout)
    );
    // An export whose first event was deleted does not pass, with keys or without.
    let mut lines: Vec<&str> = export.lines().collect();
    lines.remove(1);
    std::fs::write(&file, lines.join("\n")).unwrap();
    let headless = consentry(&args, &[]);
    assert_eq!(headless.status.code(), Some(1));
    assert!(
        text(&headless.stderr).contains("starts at event 1"),
        "{}",
        text(&headless.stderr)
    );
    assert_eq!(consentry(&chain_only, &[]).status.code(), Some(1));

    let tampered = export.replacen(
        "\"action\":\"consent.granted\"",
        "\"action\":\"consent.denied\"",
        1,
    );
    assert_ne!(tampered, export);
    std::fs::write(&file, tampered).unwrap();
    let bad = consentry(&args, &[]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        text(&bad.stderr).contains("line 4:"),
        "{}",
        text(&bad.stderr)
    );
}

#[test]
fn a_token_must_name_someone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let env = [("CONSENTRY_DATA_DIR", data.to_str().unwrap())];
    for args in [
        &["token", "--role", "service", "--sub", ""][..],
        &["token", "--role", "admin"][..],
        &["token", "--role", "subject", "--sub", "demo\u{200B}-000002"][..],
        &["token", "--role", "service", "--sub", "svc\u{202E}lanretni"][..],
    ] {
        let out = consentry(args, &env);
        assert!(!out.status.success(), "{args:?} minted a token");
        assert!(text(&out.stderr).contains("--sub"), "{}", text(&out.stderr));
        assert!(text(&out.stdout).is_empty(), "{args:?}");
    }
}
