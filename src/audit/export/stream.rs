//! Making an export: it is recorded in the chain first (an export is itself audited),
//! then streamed with constant memory — the header, the covered events a page at a
//! time, and the sealing checkpoint. The API and the compliance console both serve it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{
    csv_record, export_range, ExportFilter, ExportHeader, ExportLine, CSV_HEADER, EXPORT_VERSION,
};
use crate::audit::checkpoint::{self, SignError};
use crate::audit::Pseudonymizer;
use crate::audit::{chain, chain_head, names_subject, page, record_alone, Actor, AuditEntry};
use crate::auth::KeyRing;
use crate::clock::SharedClock;
use crate::storage::{Database, DbConnection, StorageError};

/// Events read from the database per chunk of the stream.
const PAGE: i64 = 1_000;

#[derive(Debug, Clone, Copy, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Jsonl,
    Csv,
}

impl ExportFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jsonl => "application/jsonl",
            Self::Csv => "text/csv; charset=utf-8",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Jsonl => "jsonl",
            Self::Csv => "csv",
        }
    }

    fn encode(self, lines: &[ExportLine], with_columns: bool) -> Vec<u8> {
        match self {
            Self::Jsonl => {
                let mut out = Vec::new();
                for line in lines {
                    // An ExportLine is plain strings and numbers: it always serializes.
                    let _ = serde_json::to_writer(&mut out, line);
                    out.push(b'\n');
                }
                out
            }
            Self::Csv => {
                let mut writer = csv::WriterBuilder::new()
                    .has_headers(false)
                    .from_writer(Vec::new());
                if with_columns {
                    let _ = writer.write_record(CSV_HEADER);
                }
                for line in lines {
                    let _ = writer.write_record(csv_record(line));
                }
                writer.into_inner().unwrap_or_default()
            }
        }
    }
}

/// What a caller asks to export: raw ids, which become pseudonyms here.
#[derive(Debug, Clone, Default)]
pub struct ExportRequest {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Only events about this subject id.
    pub subject: Option<String>,
    pub action: Option<String>,
    /// Only events by this actor id (a customer acts under their pseudonym).
    pub actor: Option<String>,
}

/// An export whose range is fixed and whose making is recorded: ready to stream.
#[derive(Debug, Clone)]
pub struct PreparedExport {
    pub header: ExportHeader,
    range: Option<(i64, i64)>,
}

/// Records the export in the chain and fixes the events it covers, in one transaction.
pub fn prepare(
    conn: &mut DbConnection,
    pseudonyms: &Pseudonymizer,
    actor: &Actor,
    request: ExportRequest,
    now: DateTime<Utc>,
) -> Result<PreparedExport, StorageError> {
    let mut filter = ExportFilter {
        from: request.from,
        to: request.to,
        subject_pseudonym: request.subject.as_deref().map(|s| pseudonyms.of(s)),
        action: request.action,
        actor: request.actor.clone(),
    };
    // The export is about the subject it filters on (or the customer it names as actor,
    // who acted under their pseudonym): its event carries the pseudonym, and raw ids
    // only where erasure empties them.
    let mut about = request.subject;
    if let Some(id) = request.actor {
        if names_subject(conn, pseudonyms, &id)? {
            filter.actor = Some(pseudonyms.of(&id));
            about = about.or(Some(id));
        }
    }
    record_alone(
        conn,
        pseudonyms,
        AuditEntry {
            actor,
            action: "audit.exported",
            subject_id: about.as_deref(),
            payload: serde_json::to_value(&filter).unwrap_or_default(),
            at: now,
        },
    )?;
    let range = export_range(conn, &filter)?;
    Ok(PreparedExport {
        header: ExportHeader {
            version: EXPORT_VERSION.to_owned(),
            exported_at: chain::timestamp(now),
            filters: filter,
            first_seq: range.map(|(first, _)| first),
            last_seq: range.map(|(_, last)| last),
        },
        range,
    })
}

/// Why a stream ended early. A cut-short export has no seal, so it cannot pass as whole.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("reading the log: {0}")]
    Storage(#[from] StorageError),
    #[error("sealing the export: {0}")]
    Seal(#[from] SignError),
}

/// What the stream needs from the running service.
#[derive(Clone)]
pub struct Sources {
    pub db: Database,
    pub keys: Arc<KeyRing>,
    pub clock: SharedClock,
}

enum Phase {
    Header,
    Events { next: i64, last: i64 },
    Seal,
    Done,
}

struct Exporter {
    sources: Sources,
    export: PreparedExport,
    format: ExportFormat,
    phase: Phase,
    /// The last event written, which the seal pins.
    last_link: Option<(i64, String)>,
}

/// The export as a stream of chunks; the first error ends it.
pub fn stream(
    sources: Sources,
    export: PreparedExport,
    format: ExportFormat,
) -> impl Stream<Item = Result<Vec<u8>, StreamError>> {
    let exporter = Exporter {
        sources,
        export,
        format,
        phase: Phase::Header,
        last_link: None,
    };
    stream::unfold(exporter, |mut exporter| async move {
        let chunk = match exporter.next_chunk().await {
            Ok(Some(chunk)) => Ok(chunk),
            Ok(None) => return None,
            Err(e) => {
                exporter.phase = Phase::Done;
                Err(e)
            }
        };
        Some((chunk, exporter))
    })
}

impl Exporter {
    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, StreamError> {
        match self.phase {
            Phase::Header => {
                self.phase = match self.export.range {
                    Some((first, last)) => Phase::Events { next: first, last },
                    None => Phase::Seal,
                };
                let header = ExportLine::Header(self.export.header.clone());
                Ok(Some(self.format.encode(&[header], true)))
            }
            Phase::Events { next, last } => {
                let rows = self
                    .sources
                    .db
                    .run(move |conn| page(conn, next, last, PAGE))
                    .await?;
                let filter = &self.export.header.filters;
                let lines: Vec<ExportLine> =
                    rows.iter().map(|e| ExportLine::within(e, filter)).collect();
                self.phase = match rows.last() {
                    Some(e) if e.seq < last => Phase::Events {
                        next: e.seq + 1,
                        last,
                    },
                    _ => Phase::Seal,
                };
                if let Some(e) = rows.last() {
                    self.last_link = Some((e.seq, e.hash.clone()));
                }
                Ok(Some(self.format.encode(&lines, false)))
            }
            Phase::Seal => {
                self.phase = Phase::Done;
                let line = self.seal().await?;
                Ok(Some(self.format.encode(&[line], false)))
            }
            Phase::Done => Ok(None),
        }
    }

    /// The closing checkpoint. Every export pins the head it ends at, so that checkpoint
    /// is stored too.
    async fn seal(&mut self) -> Result<ExportLine, StreamError> {
        let (seq, hash) = match self.last_link.take() {
            Some(pinned) => pinned,
            None => self
                .sources
                .db
                .run(chain_head)
                .await
                .unwrap_or((0, chain::GENESIS.to_owned())),
        };
        let now = self.sources.clock.now();
        let keys = &self.sources.keys;
        let stored = checkpoint::sign(keys, seq, &hash, now)?;
        let line = ExportLine::seal(
            &self.export.header,
            seq,
            &hash,
            keys.signing(),
            now.timestamp(),
        )?;
        if seq > 0 {
            if let Err(e) = self
                .sources
                .db
                .run(move |conn| checkpoint::store(conn, &stored))
                .await
            {
                tracing::warn!(error = %e, "could not store the export's checkpoint");
            }
        }
        Ok(line)
    }
}
