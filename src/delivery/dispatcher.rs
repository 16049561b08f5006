//! The delivery loop, one thread per instance: copies new outbox messages into
//! deliveries, publishes them to NATS when configured, sends due deliveries (several at
//! once, each the oldest pending one of its endpoint and subject) and records how each
//! attempt went. It idles in short sleeps when there is nothing to do; with work it goes
//! round at once.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use serde_json::{json, Map, Value};

use super::deliveries::{self, Delivery, Outcome, Recorded};
use super::endpoints::Endpoint;
use super::nats::{Acknowledged, Publisher};
use super::{address, notices, signing, DeliverySettings};
use crate::audit::Pseudonymizer;
use crate::clock::SharedClock;
use crate::outbox::StoredMessage;
use crate::policy::recipient::Acknowledgement;
use crate::policy::{Policies, Recipient};
use crate::storage::{ConnectionManager, DbConnection, StorageError};

/// How long the loop sleeps when a round found nothing to do.
const IDLE_POLL: Duration = Duration::from_millis(20);
/// Messages copied into deliveries per round.
const FAN_OUT_BATCH: i64 = 500;
/// Deliveries taken per round.
const SEND_BATCH: i64 = 200;
/// Deliveries sent at the same time.
const SENDERS: usize = 8;
/// On SQLite, the pause after a busy round.
const SQLITE_GATHER: Duration = Duration::from_millis(40);
/// How long a round waits for SQLite's write lock before it fails (and is retried).
const LOCK_WAIT: Duration = Duration::from_secs(5);
/// How often gauges are read and old messages pruned.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(5);

/// `/metrics` for delivery: lag, failures, queue depth.
pub struct DeliveryMetrics {
    delivered: IntCounter,
    failed: IntCounterVec,
    dead: IntCounter,
    published: IntCounter,
    lag: Histogram,
    pending: IntGauge,
    dead_letters: IntGauge,
    outbox_unfanned: IntGauge,
    outbox_unpublished: IntGauge,
    oldest_pending_seconds: IntGauge,
}

impl DeliveryMetrics {
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let metrics = Self {
            delivered: IntCounter::new(
                "consentry_webhook_deliveries_total",
                "Webhook deliveries answered 2xx",
            )?,
            failed: IntCounterVec::new(
                Opts::new(
                    "consentry_webhook_failures_total",
                    "Webhook attempts that failed, by reason (status, timeout, connect, refused)",
                ),
                &["reason"],
            )?,
            dead: IntCounter::new(
                "consentry_webhook_dead_letters_total",
                "Webhook deliveries given up after the retry window",
            )?,
            published: IntCounter::new(
                "consentry_nats_published_total",
                "Outbox messages acknowledged by JetStream",
            )?,
            lag: Histogram::with_opts(
                HistogramOpts::new(
                    "consentry_webhook_lag_seconds",
                    "From the change's commit to the receiver's 2xx",
                )
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 600.0, 3600.0,
                ]),
            )?,
            pending: IntGauge::new(
                "consentry_webhook_queue_depth",
                "Webhook deliveries waiting (due or backing off)",
            )?,
            dead_letters: IntGauge::new(
                "consentry_webhook_dead_letters",
                "Webhook deliveries given up and not replayed",
            )?,
            outbox_unfanned: IntGauge::new(
                "consentry_outbox_depth",
                "Outbox messages not yet queued for webhooks",
            )?,
            outbox_unpublished: IntGauge::new(
                "consentry_outbox_unpublished",
                "Outbox messages not yet acknowledged by JetStream",
            )?,
            oldest_pending_seconds: IntGauge::new(
                "consentry_webhook_oldest_pending_seconds",
                "Age of the oldest change still waiting for a webhook",
            )?,
        };
        registry.register(Box::new(metrics.delivered.clone()))?;
        registry.register(Box::new(metrics.failed.clone()))?;
        registry.register(Box::new(metrics.dead.clone()))?;
        registry.register(Box::new(metrics.published.clone()))?;
        registry.register(Box::new(metrics.lag.clone()))?;
        registry.register(Box::new(metrics.pending.clone()))?;
        registry.register(Box::new(metrics.dead_letters.clone()))?;
        registry.register(Box::new(metrics.outbox_unfanned.clone()))?;
        registry.register(Box::new(metrics.outbox_unpublished.clone()))?;
        registry.register(Box::new(metrics.oldest_pending_seconds.clone()))?;
        Ok(metrics)
    }
}

/// What the loop needs.
pub struct Dispatcher {
    pub manager: ConnectionManager,
    pub policies: Arc<Policies>,
    pub pseudonyms: Arc<Pseudonymizer>,
    pub settings: DeliverySettings,
    pub clock: SharedClock,
    pub metrics: Arc<DeliveryMetrics>,
}

impl Dispatcher {
    /// Runs the loop on a thread of its own while `alive` can be upgraded.
    pub fn spawn<T: Send + Sync + 'static>(self, alive: Weak<T>) -> std::io::Result<()> {
        std::thread::Builder::new()
            .name("consentry-delivery".into())
            .spawn(move || self.run(alive))
            .map(|_| ())
    }

    fn run<T>(self, alive: Weak<T>) {
        let agent = http_agent(&self.settings);
        let mut publisher = self
            .settings
            .nats_url
            .as_ref()
            .map(|url| Publisher::new(url.clone(), self.settings.nats_prefix.clone()));
        let mut conn: Option<DbConnection> = None;
        let mut housekeeping = Instant::now() - HOUSEKEEPING_EVERY;
        while alive.strong_count() > 0 {
            let c = match conn.as_mut() {
                Some(c) => c,
                None => match self.manager.establish() {
                    Ok(c) => conn.insert(c),
                    Err(err) => {
                        tracing::warn!(error = %err, "delivery cannot connect; trying again");
                        std::thread::sleep(Duration::from_secs(1));
                        continue;
                    }
                },
            };
            match self.round(c, &agent, publisher.as_mut()) {
                Ok(busy) => {
                    if housekeeping.elapsed() >= HOUSEKEEPING_EVERY {
                        housekeeping = Instant::now();
                        // In one transaction that asks for SQLite's lock eagerly: behind a
                        // steady stream of request writes a patient one timed out.
                        let done = crate::storage::eager_write_transaction(c, LOCK_WAIT, |c| {
                            self.housekeeping(c)
                        });
                        if let Err(err) = done {
                            tracing::warn!(error = %err, "delivery housekeeping failed");
                        }
                    }
                    if !busy {
                        std::thread::sleep(IDLE_POLL);
                    } else if matches!(c, DbConnection::Sqlite(_)) {
                        // Lets deliveries gather between commits: every commit is an
                        // fsync taken from the request writers' share of the lock.
                        std::thread::sleep(SQLITE_GATHER);
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "delivery round failed; reconnecting");
                    conn = None;
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        }
    }

    /// One round; answers whether it found work.
    fn round(
        &self,
        conn: &mut DbConnection,
        agent: &ureq::Agent,
        publisher: Option<&mut Publisher>,
    ) -> Result<bool, StorageError> {
        let now = self.clock.now();
        let publishing = publisher.is_some();
        let published = match publisher {
            Some(publisher) => publisher.publish_pending(conn)?,
            None => Acknowledged::default(),
        };
        let taken = deliveries::take_due(conn, now, SEND_BATCH)?;
        // The request notice each delivery fulfils when it succeeds: worked out once, for
        // the body that carries its token and for the record that marks it told.
        let told: Vec<Told<'_>> = taken
            .iter()
            .map(|(_, message, endpoint)| completion_told(&self.policies, message, endpoint))
            .collect();
        let outcomes = self.send_all(agent, &taken, &told);
        let unfanned = crate::outbox::has_unfanned(conn)?;
        let to_mark = published.to_mark();
        if !taken.is_empty() || unfanned || !to_mark.is_empty() {
            // One write transaction a round: the attempts just made, the messages new
            // since copied into deliveries, and those JetStream acknowledged. One commit
            // (one fsync, one turn at SQLite's write lock) however many.
            let round = |conn: &mut DbConnection| {
                let recorded = taken
                    .iter()
                    .zip(&outcomes)
                    .zip(told)
                    .map(|(((delivery, _, _), outcome), told)| {
                        self.record(conn, delivery, outcome, told)
                    })
                    .collect::<Result<Vec<_>, StorageError>>()?;
                if unfanned {
                    deliveries::fan_out(conn, &self.policies, now, FAN_OUT_BATCH, publishing)?;
                }
                crate::outbox::mark_published(conn, to_mark)?;
                Ok::<_, StorageError>(recorded)
            };
            let recorded = crate::storage::eager_write_transaction(conn, LOCK_WAIT, round)?;
            for (((delivery, message, endpoint), outcome), recorded) in
                taken.iter().zip(&outcomes).zip(recorded)
            {
                self.count(delivery, message, endpoint, outcome, recorded);
            }
        }
        self.metrics.published.inc_by(published.seqs.len() as u64);
        Ok(!published.seqs.is_empty() || !taken.is_empty() || unfanned)
    }

    fn send_all(
        &self,
        agent: &ureq::Agent,
        taken: &[(Delivery, StoredMessage, Endpoint)],
        told: &[Told<'_>],
    ) -> Vec<Outcome> {
        let per_sender = taken.len().div_ceil(SENDERS).max(1);
        std::thread::scope(|scope| {
            let handles: Vec<_> = taken
                .chunks(per_sender)
                .zip(told.chunks(per_sender))
                .map(|(chunk, told)| {
                    scope.spawn(move || {
                        chunk
                            .iter()
                            .zip(told)
                            .map(|((d, m, e), told)| self.send(agent, d, m, e, told.as_ref()))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        })
    }

    /// One attempt: checks the address again (names can be re-pointed), signs, posts.
    fn send(
        &self,
        agent: &ureq::Agent,
        delivery: &Delivery,
        message: &StoredMessage,
        endpoint: &Endpoint,
        told: Option<&(String, &Recipient)>,
    ) -> Outcome {
        let attempted_at = self.clock.now();
        let started = Instant::now();
        let mut outcome = Outcome {
            delivery_id: delivery.id.clone(),
            endpoint_id: endpoint.id.clone(),
            attempted_at,
            status_code: None,
            error: None,
            duration_ms: 0,
        };
        if let Err(refused) = address::check(&endpoint.url, self.settings.allow_internal) {
            outcome.error = Some(format!("refused: {refused}"));
            return outcome;
        }
        let body = body(&self.pseudonyms, &self.settings, message, told);
        let timestamp = attempted_at.timestamp();
        let signature = signing::signature_header(
            &endpoint.signing_secrets(attempted_at),
            &message.id,
            timestamp,
            &body,
        );
        let sent = agent
            .post(&endpoint.url)
            .header("webhook-id", &message.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .header("user-agent", "Consentry-Webhooks/1")
            .content_type("application/json")
            .send(body.as_bytes());
        match sent {
            Ok(mut response) => {
                outcome.status_code = Some(response.status().as_u16());
                // Read (a little of) the answer so that the connection can be reused.
                let _ = response
                    .body_mut()
                    .with_config()
                    .limit(64 * 1024)
                    .read_to_vec();
                if !outcome.succeeded() {
                    outcome.error = Some(format!("answered {}", response.status().as_u16()));
                }
            }
            Err(err) => outcome.error = Some(describe(&err)),
        }
        outcome.duration_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        outcome
    }

    /// Records an attempt; `told`: the request notice a success fulfils.
    fn record(
        &self,
        conn: &mut DbConnection,
        delivery: &Delivery,
        outcome: &Outcome,
        told: Told<'_>,
    ) -> Result<Recorded, StorageError> {
        deliveries::record(
            conn,
            delivery,
            outcome,
            self.settings.retry_window,
            self.settings.disable_after,
            jitter(),
            |conn| match told {
                Some((request_id, recipient)) => notices::mark_told(
                    conn,
                    &self.pseudonyms,
                    &request_id,
                    recipient,
                    outcome.attempted_at,
                ),
                None => Ok(()),
            },
        )
    }

    /// Metrics for a recorded attempt, once its transaction committed.
    fn count(
        &self,
        delivery: &Delivery,
        message: &StoredMessage,
        endpoint: &Endpoint,
        outcome: &Outcome,
        recorded: Recorded,
    ) {
        match recorded {
            Recorded::Delivered => {
                self.metrics.delivered.inc();
                let lag = (self.clock.now() - message.occurred_at()).num_milliseconds();
                self.metrics.lag.observe(lag.max(0) as f64 / 1000.0);
            }
            Recorded::Retrying | Recorded::Dead => {
                let reason = failure_reason(outcome);
                self.metrics.failed.with_label_values(&[reason]).inc();
                if recorded == Recorded::Dead {
                    self.metrics.dead.inc();
                }
                tracing::debug!(endpoint = %endpoint.id, reason, attempts = delivery.attempts + 1, "webhook attempt failed");
            }
        }
    }

    fn housekeeping(&self, conn: &mut DbConnection) -> Result<(), StorageError> {
        let now = self.clock.now();
        let expired = crate::consent::ledger::announce_expiries(conn, &self.pseudonyms, now, 500)?;
        if expired > 0 {
            tracing::info!(expired, "consent expiries announced");
        }
        let forgotten = crate::outbox::forget_erased(conn)?;
        if forgotten > 0 {
            tracing::info!(
                forgotten,
                "erased subjects' ids cleared from delivered messages"
            );
        }
        let pruned = deliveries::prune(conn, self.settings.keep, now)?;
        if pruned > 0 {
            tracing::info!(pruned, "old outbox messages removed");
        }
        let (unfanned, unpublished) = crate::outbox::depth(conn)?;
        let (pending, dead) = deliveries::depth(conn)?;
        self.metrics.outbox_unfanned.set(unfanned);
        self.metrics.outbox_unpublished.set(unpublished);
        self.metrics.pending.set(pending);
        self.metrics.dead_letters.set(dead);
        let oldest = deliveries::oldest_pending(conn)?
            .map(|at| (now - at).num_seconds().max(0))
            .unwrap_or(0);
        self.metrics.oldest_pending_seconds.set(oldest);
        Ok(())
    }
}

fn http_agent(settings: &DeliverySettings) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(settings.timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .max_idle_connections_per_host(SENDERS)
        .build()
        .into()
}

fn describe(err: &ureq::Error) -> String {
    match err {
        ureq::Error::Timeout(_) => "timed out".into(),
        ureq::Error::Io(io) => format!("connection failed: {}", io.kind()),
        ureq::Error::HostNotFound => "host not found".into(),
        other => format!("request failed: {other}"),
    }
}

fn failure_reason(outcome: &Outcome) -> &'static str {
    match (&outcome.status_code, outcome.error.as_deref()) {
        (Some(_), _) => "status",
        (None, Some(e)) if e.starts_with("refused") => "refused",
        (None, Some("timed out")) => "timeout",
        _ => "connect",
    }
}

fn jitter() -> f64 {
    let mut bytes = [0u8; 4];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0)
}

/// For a request's completion message to a recipient's endpoint: the request, and the
/// recipient whose notice a 2xx answer fulfils.
type Told<'a> = Option<(String, &'a Recipient)>;

fn completion_told<'a>(
    policies: &'a Policies,
    message: &StoredMessage,
    endpoint: &Endpoint,
) -> Told<'a> {
    let recipient = policies.recipients.get(endpoint.recipient.as_deref()?)?;
    let request_id = completion_request(message)?;
    Some((request_id, recipient))
}

/// The request a completion message completes, when recipients must hear of it.
fn completion_request(message: &StoredMessage) -> Option<String> {
    if message.event_type != "dsar.status_changed" {
        return None;
    }
    let data = message.data();
    let kind = data.get("kind").and_then(Value::as_str)?;
    let completed = data.get("status").and_then(Value::as_str) == Some("completed");
    let told = matches!(kind, "erasure" | "rectification" | "restriction");
    (completed && told).then(|| data.get("request_id")?.as_str().map(str::to_owned))?
}

/// The JSON a receiver gets, as the Standard Webhooks specification shapes it: `type`,
/// `timestamp`, `data`. A recipient that confirms by token finds it in `data`; `told`:
/// the request notice this delivery fulfils, if any.
fn body(
    pseudonyms: &Pseudonymizer,
    settings: &DeliverySettings,
    message: &StoredMessage,
    told: Option<&(String, &Recipient)>,
) -> String {
    let mut data = Map::new();
    if let Some(subject) = &message.subject_id {
        data.insert("subject_id".into(), Value::from(subject.as_str()));
    }
    if let Value::Object(fields) = message.data() {
        data.extend(fields);
    }
    if let Some((request_id, recipient)) = told {
        if recipient.acknowledge == Acknowledgement::Token {
            data.insert(
                "acknowledgement".into(),
                json!({
                    "recipient": recipient.name,
                    "token": notices::token(pseudonyms, request_id, &recipient.name),
                    "url": format!("{}/v1/dsar/{request_id}/acknowledgements", settings.public_url.trim_end_matches('/')),
                }),
            );
        }
    }
    json!({
        "type": message.event_type,
        "timestamp": rfc3339(message.occurred_at()),
        "data": data,
    })
    .to_string()
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}
