//! Settings, from `CONSENTRY_*` environment variables (or flags), each with a safe default.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::auth::{AcceptedAlgorithms, JwtSettings};
use crate::gate::CacheLimit;
use crate::http::client_ip::TrustedProxies;
use crate::http::limits::LimitSettings;
use crate::portal::{PortalDurations, PortalSettings};
use crate::storage::{DatabaseUrl, PoolSettings};

#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Address and port to listen on.
    #[arg(
        long,
        env = "CONSENTRY_BIND",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub bind: SocketAddr,

    /// `sqlite://PATH` (embedded) or `postgres://USER@HOST/DB`.
    #[arg(
        long,
        env = "CONSENTRY_DATABASE_URL",
        default_value = "sqlite://./data/consentry.db",
        global = true
    )]
    pub database_url: String,

    /// Folder for keys and the SQLite file (created with owner-only rights).
    #[arg(
        long,
        env = "CONSENTRY_DATA_DIR",
        default_value = "./data",
        global = true
    )]
    pub data_dir: PathBuf,

    /// Folder of the policy files (purposes, jurisdictions, categories, notices).
    #[arg(
        long,
        env = "CONSENTRY_POLICIES_DIR",
        default_value = "./policies",
        global = true
    )]
    pub policies_dir: PathBuf,

    /// Log filter, e.g. `info` or `consentry=debug,actix_web=info`.
    #[arg(long, env = "CONSENTRY_LOG", default_value = "info", global = true)]
    pub log: String,

    /// Log format: `text` or `json`.
    #[arg(
        long,
        env = "CONSENTRY_LOG_FORMAT",
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,

    /// `iss` that tokens must carry and that minted tokens get.
    #[arg(
        long,
        env = "CONSENTRY_JWT_ISSUER",
        default_value = "consentry",
        global = true
    )]
    pub jwt_issuer: String,

    /// `aud` that tokens must carry and that minted tokens get.
    #[arg(
        long,
        env = "CONSENTRY_JWT_AUDIENCE",
        default_value = "consentry",
        global = true
    )]
    pub jwt_audience: String,

    /// Comma-separated JWT algorithms accepted: `EdDSA` (the service's keys) and/or
    /// `HS256`, `HS384`, `HS512` (with CONSENTRY_JWT_HMAC_SECRET). Never `none`.
    #[arg(
        long,
        env = "CONSENTRY_JWT_ALGORITHMS",
        default_value = "EdDSA",
        global = true
    )]
    pub jwt_algorithms: String,

    /// Shared secret for HS* tokens, at least 32 bytes; only used if an HS algorithm is accepted.
    #[arg(
        long,
        env = "CONSENTRY_JWT_HMAC_SECRET",
        hide_env_values = true,
        global = true
    )]
    pub jwt_hmac_secret: Option<String>,

    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    #[arg(
        long,
        env = "CONSENTRY_JWT_LEEWAY_SECONDS",
        default_value_t = 30,
        global = true
    )]
    pub jwt_leeway_seconds: u64,

    /// A PKCS#8 Ed25519 private key (PEM or DER) to sign with instead of generated keys.
    #[arg(long, env = "CONSENTRY_SIGNING_KEY_FILE", global = true)]
    pub signing_key_file: Option<PathBuf>,

    /// Secret for hashing client IPs kept as consent evidence (default: generated into the
    /// data folder). Instances behind one load balancer must share it.
    #[arg(
        long,
        env = "CONSENTRY_EVIDENCE_SECRET",
        hide_env_values = true,
        global = true
    )]
    pub evidence_secret: Option<String>,

    /// Secret for the keyed pseudonyms of subjects in the audit log (default: generated
    /// into the data folder). Instances sharing a database must share it.
    #[arg(
        long,
        env = "CONSENTRY_AUDIT_PSEUDONYM_SECRET",
        hide_env_values = true,
        global = true
    )]
    pub audit_pseudonym_secret: Option<String>,

    /// Sign a checkpoint of the audit chain's head every this many events.
    #[arg(
        long,
        env = "CONSENTRY_AUDIT_CHECKPOINT_EVERY",
        default_value_t = 1000,
        global = true
    )]
    pub audit_checkpoint_every: u32,

    /// The data controller named in consent receipts.
    #[arg(
        long,
        env = "CONSENTRY_CONTROLLER_NAME",
        default_value = "Consentry",
        global = true
    )]
    pub controller_name: String,

    /// The privacy policy URL named in consent receipts.
    #[arg(long, env = "CONSENTRY_PRIVACY_POLICY_URL", global = true)]
    pub privacy_policy_url: Option<String>,

    /// What the decision cache holds at most: a number of subjects (`100000`), or a
    /// memory budget for its entries (`256MiB`, `1GiB`, `500MB`).
    #[arg(
        long,
        env = "CONSENTRY_DECISION_CACHE_SIZE",
        default_value = "100000",
        global = true
    )]
    pub decision_cache_size: CacheLimit,

    /// Lifetime of signed decision tokens, in seconds.
    #[arg(
        long,
        env = "CONSENTRY_DECISION_TOKEN_TTL_SECONDS",
        default_value_t = 300,
        global = true
    )]
    pub decision_token_ttl_seconds: u32,

    /// No survey is offered to a subject within this many days of their last display of
    /// any survey (a survey may ask for a longer wait, never a shorter one).
    #[arg(
        long,
        env = "CONSENTRY_SURVEY_RECONTACT_DAYS",
        default_value_t = 14,
        global = true
    )]
    pub survey_recontact_days: u32,

    /// Share of gate decisions written to the decision log, 0 (off) to 1 (all).
    #[arg(
        long,
        env = "CONSENTRY_DECISION_LOG_SAMPLE",
        default_value_t = 0.0,
        global = true
    )]
    pub decision_log_sample: f64,

    /// Largest request body accepted, in bytes.
    #[arg(
        long,
        env = "CONSENTRY_MAX_BODY_BYTES",
        default_value_t = 262_144,
        global = true
    )]
    pub max_body_bytes: usize,

    /// Database connections in the pool (SQLite uses at most 8).
    #[arg(
        long,
        env = "CONSENTRY_DB_POOL_SIZE",
        default_value_t = 16,
        global = true
    )]
    pub db_pool_size: u32,

    /// Writer threads of the group commit on PostgreSQL, each with a connection of its
    /// own besides the pool (SQLite has one).
    #[arg(long, env = "CONSENTRY_DB_WRITERS", default_value_t = 4, global = true)]
    pub db_writers: u16,

    /// How long a request waits for a database connection or lock before a 503, in ms.
    #[arg(
        long,
        env = "CONSENTRY_DB_TIMEOUT_MS",
        default_value_t = 5000,
        global = true
    )]
    pub db_timeout_ms: u64,

    /// Comma-separated addresses or CIDR blocks of the reverse proxies in front of the
    /// service. Only from these peers are `X-Forwarded-For` and `Forwarded` believed
    /// (the rightmost hop not in the list is the client); empty trusts no header.
    #[arg(
        long,
        env = "CONSENTRY_TRUSTED_PROXIES",
        default_value = "",
        global = true
    )]
    pub trusted_proxies: String,

    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "CONSENTRY_WORKERS", global = true)]
    pub workers: Option<usize>,

    /// The address customers and officers reach the service at; portal and survey links
    /// start with it. Default: `http://` and the bind address.
    #[arg(long, env = "CONSENTRY_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,

    /// Minutes a portal or console link stays valid before it is opened.
    #[arg(
        long,
        env = "CONSENTRY_PORTAL_LINK_MINUTES",
        default_value_t = 15,
        global = true
    )]
    pub portal_link_minutes: u32,

    /// Minutes without a request after which a portal session ends.
    #[arg(
        long,
        env = "CONSENTRY_PORTAL_IDLE_MINUTES",
        default_value_t = 30,
        global = true
    )]
    pub portal_idle_minutes: u32,

    /// Hours after which a portal session ends, however active.
    #[arg(
        long,
        env = "CONSENTRY_PORTAL_SESSION_HOURS",
        default_value_t = 12,
        global = true
    )]
    pub portal_session_hours: u32,

    /// Comma-separated URL prefixes a portal session may send the customer back to
    /// (`return_url`); empty allows none.
    #[arg(
        long,
        env = "CONSENTRY_PORTAL_RETURN_URLS",
        default_value = "",
        global = true
    )]
    pub portal_return_urls: String,

    /// Portal links asked for or opened a minute per client address; more is 429.
    #[arg(
        long,
        env = "CONSENTRY_PORTAL_RATE_PER_MINUTE",
        default_value_t = 30,
        global = true
    )]
    pub portal_rate_per_minute: u32,

    /// Requests without credentials a minute per client address (all but `/healthz`);
    /// more is 429.
    #[arg(
        long,
        env = "CONSENTRY_RATE_ANONYMOUS_PER_MINUTE",
        default_value_t = 600,
        global = true
    )]
    pub rate_anonymous_per_minute: u32,

    /// Requests with a missing or rejected token a minute per client address; more is
    /// 429, while valid tokens from the same address go on working.
    #[arg(
        long,
        env = "CONSENTRY_RATE_FAILED_AUTH_PER_MINUTE",
        default_value_t = 30,
        global = true
    )]
    pub rate_failed_auth_per_minute: u32,

    /// Writes a minute per customer token (role `subject`); more is 429.
    #[arg(
        long,
        env = "CONSENTRY_RATE_CUSTOMER_WRITES_PER_MINUTE",
        default_value_t = 120,
        global = true
    )]
    pub rate_customer_writes_per_minute: u32,

    /// Writes a second per token subject of the other roles; more is 429. Decisions and
    /// the gate's proxy are never limited.
    #[arg(
        long,
        env = "CONSENTRY_RATE_SERVICE_WRITES_PER_SECOND",
        default_value_t = 5000,
        global = true
    )]
    pub rate_service_writes_per_second: u32,

    /// Mark session cookies `Secure` with the `__Host-` prefix (default: when the public
    /// URL is https).
    #[arg(long, env = "CONSENTRY_SECURE_COOKIES", global = true)]
    pub secure_cookies: Option<bool>,

    /// Allow webhook endpoints on loopback, private and link-local addresses. Off by
    /// default: a webhook must not reach services inside the network.
    #[arg(
        long,
        env = "CONSENTRY_WEBHOOK_ALLOW_INTERNAL",
        default_value_t = false,
        global = true
    )]
    pub webhook_allow_internal: bool,

    /// Hours a webhook delivery is retried (exponential backoff with jitter) before it
    /// goes to the dead letters.
    #[arg(
        long,
        env = "CONSENTRY_WEBHOOK_RETRY_HOURS",
        default_value_t = 72,
        global = true
    )]
    pub webhook_retry_hours: u32,

    /// Seconds one webhook attempt may take.
    #[arg(
        long,
        env = "CONSENTRY_WEBHOOK_TIMEOUT_SECONDS",
        default_value_t = 10,
        global = true
    )]
    pub webhook_timeout_seconds: u32,

    /// Failed attempts in a row after which an endpoint is disabled.
    #[arg(
        long,
        env = "CONSENTRY_WEBHOOK_DISABLE_AFTER",
        default_value_t = 50,
        global = true
    )]
    pub webhook_disable_after: u32,

    /// Days delivered outbox messages are kept (how far back a replay reaches).
    #[arg(
        long,
        env = "CONSENTRY_OUTBOX_KEEP_DAYS",
        default_value_t = 7,
        global = true
    )]
    pub outbox_keep_days: u32,

    /// `nats://host:4222`: publish every outbox message to NATS JetStream too.
    #[arg(long, env = "CONSENTRY_NATS_URL", global = true)]
    pub nats_url: Option<String>,

    /// The first token of the NATS subjects (and, upper-cased, the stream's name).
    #[arg(
        long,
        env = "CONSENTRY_NATS_PREFIX",
        default_value = "consentry",
        global = true
    )]
    pub nats_prefix: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Checked configuration the app runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub database_url: DatabaseUrl,
    pub data_dir: PathBuf,
    pub policies_dir: PathBuf,
    pub jwt: JwtSettings,
    pub signing_key_file: Option<PathBuf>,
    pub evidence_secret: Option<String>,
    pub audit_pseudonym_secret: Option<String>,
    pub audit_checkpoint_every: u32,
    pub controller_name: String,
    pub privacy_policy_url: Option<String>,
    pub decision_cache_size: CacheLimit,
    pub decision_token_ttl_seconds: u32,
    pub survey_recontact_days: u32,
    /// Share of gate decisions logged, 0.0 (off) to 1.0 (all).
    pub decision_log_sample: f64,
    pub max_body_bytes: usize,
    pub pool: PoolSettings,
    pub workers: Option<usize>,
    pub trusted_proxies: TrustedProxies,
    pub portal: PortalSettings,
    pub limits: LimitSettings,
    pub delivery: crate::delivery::DeliverySettings,
}

impl Settings {
    pub fn into_config(self) -> anyhow::Result<Config> {
        let database_url = DatabaseUrl::parse(&self.database_url)?;
        let algorithms = AcceptedAlgorithms::parse(&self.jwt_algorithms)?;
        if algorithms.accepts_hmac() {
            match &self.jwt_hmac_secret {
                Some(secret) if secret.len() >= 32 => {}
                _ => anyhow::bail!(
                    "CONSENTRY_JWT_ALGORITHMS accepts an HS algorithm: set CONSENTRY_JWT_HMAC_SECRET to at least 32 bytes"
                ),
            }
        }
        if self.max_body_bytes == 0 {
            anyhow::bail!("CONSENTRY_MAX_BODY_BYTES must be positive");
        }
        let timeout = Duration::from_millis(self.db_timeout_ms.max(1));
        let trusted_proxies = TrustedProxies::parse(&self.trusted_proxies)
            .map_err(|m| anyhow::anyhow!("CONSENTRY_TRUSTED_PROXIES: {m}"))?;
        let portal = PortalSettings::new(
            self.public_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", self.bind)),
            &self.portal_return_urls,
            self.secure_cookies,
            PortalDurations {
                link: chrono::Duration::minutes(self.portal_link_minutes.max(1).into()),
                idle: chrono::Duration::minutes(self.portal_idle_minutes.max(1).into()),
                absolute: chrono::Duration::hours(self.portal_session_hours.max(1).into()),
            },
        )
        .map_err(|m| anyhow::anyhow!("{m}"))?;
        let limits = LimitSettings {
            anonymous_per_minute: self.rate_anonymous_per_minute.max(1),
            failed_auth_per_minute: self.rate_failed_auth_per_minute.max(1),
            customer_writes_per_minute: self.rate_customer_writes_per_minute.max(1),
            service_writes_per_second: self.rate_service_writes_per_second.max(1),
            portal_doors_per_minute: self.portal_rate_per_minute.max(1),
        };
        if self.nats_prefix.is_empty()
            || !self
                .nats_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            anyhow::bail!("CONSENTRY_NATS_PREFIX: letters, digits, `_` and `-` only");
        }
        let delivery = crate::delivery::DeliverySettings {
            allow_internal: self.webhook_allow_internal,
            retry_window: chrono::TimeDelta::hours(self.webhook_retry_hours.max(1).into()),
            timeout: Duration::from_secs(self.webhook_timeout_seconds.clamp(1, 60).into()),
            disable_after: i32::try_from(self.webhook_disable_after.max(1)).unwrap_or(i32::MAX),
            keep: chrono::TimeDelta::days(self.outbox_keep_days.max(1).into()),
            nats_url: self.nats_url.clone().filter(|u| !u.is_empty()),
            nats_prefix: self.nats_prefix.clone(),
            public_url: self
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", self.bind)),
            ..crate::delivery::DeliverySettings::default()
        };
        Ok(Config {
            bind: self.bind,
            database_url,
            data_dir: self.data_dir,
            policies_dir: self.policies_dir,
            jwt: JwtSettings {
                issuer: self.jwt_issuer,
                audience: self.jwt_audience,
                algorithms,
                hmac_secret: self.jwt_hmac_secret,
                leeway: Duration::from_secs(self.jwt_leeway_seconds),
            },
            signing_key_file: self.signing_key_file,
            evidence_secret: self.evidence_secret,
            audit_pseudonym_secret: self.audit_pseudonym_secret,
            audit_checkpoint_every: self.audit_checkpoint_every.max(1),
            controller_name: self.controller_name,
            privacy_policy_url: self.privacy_policy_url,
            decision_cache_size: self.decision_cache_size,
            decision_token_ttl_seconds: self.decision_token_ttl_seconds.max(1),
            survey_recontact_days: self.survey_recontact_days.min(365),
            decision_log_sample: if self.decision_log_sample.is_finite() {
                self.decision_log_sample.clamp(0.0, 1.0)
            } else {
                0.0
            },
            max_body_bytes: self.max_body_bytes,
            pool: PoolSettings {
                max_size: self.db_pool_size.max(1),
                writers: usize::from(self.db_writers.clamp(1, 64)),
                acquire_timeout: timeout,
                busy_timeout: timeout,
            },
            workers: self.workers,
            trusted_proxies,
            portal,
            limits,
            delivery,
        })
    }
}
