//! Structured logs. Nothing personal is logged: requests by route pattern, never path,
//! query or body. Lines go through a bounded queue to a writer thread of their own: a
//! worker never waits for stderr, and when the queue is full a line is dropped and
//! counted (`consentry_log_lines_dropped_total`) rather than slowing requests down.

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Lines the queue holds before new ones are dropped.
const QUEUED_LINES: usize = 16 * 1024;

/// Installs the global subscriber once; later calls are ignored (tests call it often) and
/// answer `None`. Keep the guard while the process runs: dropping it flushes the queue.
pub fn init(filter: &str, format: LogFormat) -> Option<WorkerGuard> {
    // Before the writer: building one starts its thread.
    if tracing::dispatcher::has_been_set() {
        return None;
    }
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("consentry-log")
        // Lines reach stderr in blocks: the writer thread drains the queue into the
        // buffer and flushes when the queue is empty, so a burst costs a few writes.
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stderr(),
        ));
    let dropped = writer.error_counter();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false);
    let installed = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    installed.ok()?;
    crate::http::observe::count_dropped_log_lines(move || dropped.dropped_lines() as u64);
    Some(guard)
}
