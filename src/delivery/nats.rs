//! Publishing the outbox to NATS JetStream, for shops that listen on a bus. Each message
//! goes to a subject named by what changed (`<prefix>.consent.<purpose>`,
//! `<prefix>.dsar.<kind>`, `<prefix>.<event type>`) with its id as `Nats-Msg-Id`: a
//! message published again after a crash, before it was marked, is dropped by the
//! stream's de-duplication, so each lands once.

use std::time::Duration;

use serde_json::{json, Value};

use crate::outbox::{self, StoredMessage};
use crate::storage::{write_transaction, DbConnection, StorageError};

/// Messages published per round.
const BATCH: i64 = 500;
/// How long JetStream remembers ids: longer than any restart takes.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// The subject a message goes to.
pub fn subject_for(prefix: &str, message: &StoredMessage) -> String {
    let data = message.data();
    let (family, rest) = message
        .event_type
        .split_once('.')
        .unwrap_or((message.event_type.as_str(), ""));
    match family {
        "consent" => match &message.purpose {
            Some(purpose) => format!("{prefix}.consent.{purpose}"),
            None => format!("{prefix}.consent.{rest}"),
        },
        "dsar" => {
            let kind = data
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or(if rest == "rectified" {
                    "rectification"
                } else {
                    rest
                });
            format!("{prefix}.dsar.{kind}")
        }
        _ => format!("{prefix}.{}", message.event_type),
    }
}

/// The JetStream stream that captures `<prefix>.>`.
pub fn stream_name(prefix: &str) -> String {
    prefix
        .to_ascii_uppercase()
        .replace(['.', '*', '>', ' '], "_")
}

/// The outbox messages JetStream acknowledged in a round.
#[derive(Debug, Default)]
pub struct Acknowledged {
    pub seqs: Vec<i64>,
    /// Already marked published; otherwise the round's transaction marks them.
    pub marked: bool,
}

impl Acknowledged {
    /// The sequence numbers the round's transaction must still mark.
    pub fn to_mark(&self) -> &[i64] {
        if self.marked {
            &[]
        } else {
            &self.seqs
        }
    }
}

/// A connection to NATS, made on first use and again after it fails.
pub struct Publisher {
    url: String,
    prefix: String,
    runtime: Option<tokio::runtime::Runtime>,
    jetstream: Option<async_nats::jetstream::Context>,
}

impl Publisher {
    pub fn new(url: String, prefix: String) -> Self {
        Self {
            url,
            prefix,
            runtime: None,
            jetstream: None,
        }
    }

    /// Publishes the messages JetStream has not acknowledged, oldest first, and answers
    /// those it acknowledged. On PostgreSQL the rows stay locked while they are
    /// published, so that another instance does not publish them at the same time, and
    /// are marked in that transaction. SQLite has one instance: the caller marks them in
    /// the round's one write transaction. NATS being down is not an error of the round:
    /// the messages wait, and the next round tries again.
    pub fn publish_pending(
        &mut self,
        conn: &mut DbConnection,
    ) -> Result<Acknowledged, StorageError> {
        let work = |this: &mut Self, conn: &mut DbConnection| -> Result<Vec<i64>, StorageError> {
            let messages = outbox::take_unpublished(conn, BATCH)?;
            if messages.is_empty() {
                return Ok(Vec::new());
            }
            match this.publish(&messages) {
                Ok(seqs) => Ok(seqs),
                Err(err) => {
                    tracing::warn!(error = %err, "NATS publishing failed; retrying");
                    this.jetstream = None;
                    std::thread::sleep(Duration::from_millis(500));
                    Ok(Vec::new())
                }
            }
        };
        if matches!(conn, DbConnection::Postgres(_)) {
            let seqs = write_transaction(conn, |conn| {
                let seqs = work(self, conn)?;
                outbox::mark_published(conn, &seqs)?;
                Ok::<_, StorageError>(seqs)
            })?;
            Ok(Acknowledged { seqs, marked: true })
        } else {
            let seqs = work(self, conn)?;
            Ok(Acknowledged {
                seqs,
                marked: false,
            })
        }
    }

    fn publish(&mut self, messages: &[StoredMessage]) -> Result<Vec<i64>, String> {
        if self.runtime.is_none() {
            self.runtime = Some(
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?,
            );
        }
        let runtime = self.runtime.as_ref().ok_or("no runtime")?;
        if self.jetstream.is_none() {
            self.jetstream = Some(runtime.block_on(connect(&self.url, &self.prefix))?);
        }
        let jetstream = self.jetstream.as_ref().ok_or("not connected")?;
        let prefix = self.prefix.clone();
        runtime.block_on(async {
            let mut pending = Vec::with_capacity(messages.len());
            for message in messages {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert(async_nats::header::NATS_MESSAGE_ID, message.id.as_str());
                headers.insert("Consentry-Event-Type", message.event_type.as_str());
                let payload = json!({
                    "id": message.id,
                    "type": message.event_type,
                    "timestamp": message.occurred_at().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                    "subject_id": message.subject_id,
                    "data": message.data(),
                })
                .to_string();
                let ack = jetstream
                    .publish_with_headers(subject_for(&prefix, message), headers, payload.into())
                    .await
                    .map_err(|e| e.to_string())?;
                pending.push((message.seq, ack));
            }
            let mut acknowledged = Vec::with_capacity(pending.len());
            for (seq, ack) in pending {
                ack.await.map_err(|e| e.to_string())?;
                acknowledged.push(seq);
            }
            Ok(acknowledged)
        })
    }
}

async fn connect(url: &str, prefix: &str) -> Result<async_nats::jetstream::Context, String> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .map_err(|e| e.to_string())?;
    let jetstream = async_nats::jetstream::new(client);
    jetstream
        .get_or_create_stream(async_nats::jetstream::stream::Config {
            name: stream_name(prefix),
            subjects: vec![format!("{prefix}.>")],
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok(jetstream)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(event_type: &str, purpose: Option<&str>, data: Value) -> StoredMessage {
        StoredMessage {
            seq: 1,
            id: "msg_1".into(),
            event_type: event_type.into(),
            subject_id: Some("cust-1".into()),
            purpose: purpose.map(str::to_owned),
            payload: data.to_string(),
            occurred_at: chrono::NaiveDateTime::default(),
        }
    }

    #[test]
    fn subjects_name_what_changed() {
        let consent = message("consent.denied", Some("marketing.email"), json!({}));
        assert_eq!(
            subject_for("consentry", &consent),
            "consentry.consent.marketing.email"
        );
        let erasure = message("dsar.status_changed", None, json!({"kind": "erasure"}));
        assert_eq!(subject_for("consentry", &erasure), "consentry.dsar.erasure");
        let rectified = message("dsar.rectified", None, json!({}));
        assert_eq!(
            subject_for("consentry", &rectified),
            "consentry.dsar.rectification"
        );
        let erased = message("subject.erased", None, json!({}));
        assert_eq!(
            subject_for("consentry", &erased),
            "consentry.subject.erased"
        );
        assert_eq!(stream_name("consentry"), "CONSENTRY");
    }
}
