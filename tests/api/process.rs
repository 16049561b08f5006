//! The real binary as a separate process, for what only a process can show: two
//! instances on one database, a crash, a stop signal.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use consentry::auth::{token, KeyRing, Role};
use serde_json::Value;

use crate::helpers::{jwt_settings, policies_dir};

pub struct Server {
    child: Child,
    pub address: String,
}

impl Server {
    /// Starts `consentry serve` on a free port and waits until it says it is serving.
    pub fn start(database_url: &str, data_dir: &Path) -> Self {
        Self::start_with(database_url, data_dir, &[])
    }

    /// `start` with more settings.
    pub fn start_with(database_url: &str, data_dir: &Path, extra: &[(&str, String)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_consentry"))
            .arg("serve")
            .envs(environment(database_url, data_dir))
            .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
            .env("CONSENTRY_BIND", "127.0.0.1:0")
            .env("CONSENTRY_LOG_FORMAT", "json")
            .env("CONSENTRY_LOG", "info")
            .env("CONSENTRY_WORKERS", "2")
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
                    // Shown with the test's output when it fails: what went wrong inside.
                    if matches!(event["level"].as_str(), Some("WARN" | "ERROR")) {
                        eprintln!("server: {line}");
                    }
                }
            }
        });
        let port = port_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the server starts");
        Self {
            child,
            address: format!("http://127.0.0.1:{port}"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM: asks for a graceful stop.
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// Sends a signal by name (`TERM`, `STOP`, `CONT`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// The exit status, once the process has ended within `bound`.
    pub fn wait_for_exit(&mut self, bound: Duration) -> Option<ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < bound {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What every process on the database shares.
pub fn environment(database_url: &str, data_dir: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("CONSENTRY_DATABASE_URL", database_url.to_owned()),
        ("CONSENTRY_DATA_DIR", data_dir.display().to_string()),
        (
            "CONSENTRY_POLICIES_DIR",
            policies_dir().display().to_string(),
        ),
        // Test receivers listen on loopback.
        ("CONSENTRY_WEBHOOK_ALLOW_INTERNAL", "true".to_owned()),
    ]
}

/// The data folder with the service's keys made before any instance starts, so that all
/// share them, and a token for `role` signed with them.
pub struct Keys {
    pub data_dir: PathBuf,
    ring: KeyRing,
}

impl Keys {
    pub fn make(data_dir: PathBuf) -> Self {
        let ring = KeyRing::load_or_generate(&data_dir, None, Utc::now()).unwrap();
        Self { data_dir, ring }
    }

    pub fn token(&self, role: Role, sub: &str) -> String {
        token::mint(
            &self.ring,
            &jwt_settings(),
            role,
            Some(sub.into()),
            TimeDelta::hours(1),
            Utc::now(),
        )
        .unwrap()
        .token
    }
}
