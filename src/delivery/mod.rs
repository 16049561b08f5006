//! Telling the systems downstream: the outbox's messages delivered to webhook endpoints
//! (signed by the Standard Webhooks specification, retried with backoff, in order per
//! subject) and, when configured, published to NATS JetStream; the recipients of GDPR
//! Art. 19 told of erasures, rectifications and restrictions, and their confirmations.

pub mod address;
pub mod api;
pub mod deliveries;
pub mod dispatcher;
pub mod endpoints;
pub mod nats;
pub mod notices;
pub mod schedule;
pub mod signing;

use chrono::TimeDelta;

/// How deliveries behave (`CONSENTRY_WEBHOOK_*`, `CONSENTRY_NATS_*`).
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Allow endpoints on loopback, private and link-local addresses (tests, or a
    /// receiver deliberately inside the network).
    pub allow_internal: bool,
    /// How long a message is retried before it goes to the dead letters.
    pub retry_window: TimeDelta,
    /// How long one attempt may take.
    pub timeout: std::time::Duration,
    /// Failed attempts in a row after which an endpoint is turned off.
    pub disable_after: i32,
    /// How long a rotated-out secret still signs.
    pub rotation_grace: TimeDelta,
    /// How long delivered messages are kept (replays reach back this far).
    pub keep: TimeDelta,
    /// `nats://…` to publish to JetStream too.
    pub nats_url: Option<String>,
    /// The first token of every NATS subject (`consentry.consent.<purpose>`).
    pub nats_prefix: String,
    /// The public base URL recipients are told to acknowledge at.
    pub public_url: String,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            allow_internal: false,
            retry_window: TimeDelta::days(3),
            timeout: std::time::Duration::from_secs(10),
            disable_after: 50,
            rotation_grace: TimeDelta::hours(24),
            keep: TimeDelta::days(7),
            nats_url: None,
            nats_prefix: "consentry".into(),
            public_url: "http://127.0.0.1:8080".into(),
        }
    }
}

/// What the delivery room refuses or fails at.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
}

impl DeliveryError {
    pub fn invalid(field: &'static str, message: impl ToString) -> Self {
        Self::Invalid {
            field,
            message: message.to_string(),
        }
    }
}
