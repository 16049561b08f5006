//! Cross-instance invalidation on PostgreSQL: every change to a subject sends
//! `NOTIFY consentry_subject_changed, '<id>'` inside its transaction (delivered on
//! commit; see `storage::announce_subject_changed`); each instance listens on a
//! connection of its own and drops the subject from its cache. After a lost connection,
//! notifications may have been missed, so the whole cache is dropped.

use std::sync::Weak;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::pg::PgConnection;
use diesel::{Connection, RunQueryDsl};

use super::cache::DecisionCache;
use crate::storage::SUBJECT_CHANGED;

const POLL: Duration = Duration::from_millis(20);
const PING: Duration = Duration::from_secs(1);

/// Listens until the cache is dropped (the app stopped), reconnecting with back-off.
/// Returns once the first `LISTEN` is in place (or after `wait`), so that the instance
/// does not serve from a cache that a late first connection would then clear.
pub fn spawn_listener(
    url: String,
    cache: Weak<DecisionCache>,
    wait: Duration,
) -> std::io::Result<JoinHandle<()>> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let handle = std::thread::Builder::new()
        .name("consentry-listen".into())
        .spawn(move || listen(&url, &cache, Some(ready_tx)))?;
    if ready_rx.recv_timeout(wait).is_err() {
        tracing::warn!("change listener not connected yet; serving, and it keeps trying");
    }
    Ok(handle)
}

fn listen(url: &str, cache: &Weak<DecisionCache>, mut ready: Option<std::sync::mpsc::Sender<()>>) {
    let mut backoff = Duration::from_millis(100);
    while cache.strong_count() > 0 {
        let mut conn = match PgConnection::establish(url).and_then(|mut c| {
            diesel::sql_query(format!("LISTEN {SUBJECT_CHANGED}"))
                .execute(&mut c)
                .map(|_| c)
                .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))
        }) {
            Ok(conn) => conn,
            Err(err) => {
                tracing::warn!(error = %err, "change listener cannot connect; retrying");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        // Changes made while we were not listening are unknown: forget everything.
        match cache.upgrade() {
            Some(c) => c.clear(),
            None => return,
        }
        tracing::info!("listening for subject changes");
        if let Some(ready) = ready.take() {
            let _ = ready.send(());
        }
        if !drain(&mut conn, cache) {
            return;
        }
        tracing::warn!("change listener lost its connection; the decision cache was dropped");
    }
}

/// Applies notifications until the connection fails (`true`) or the app stops (`false`).
fn drain(conn: &mut PgConnection, cache: &Weak<DecisionCache>) -> bool {
    let mut last_ping = Instant::now();
    loop {
        let Some(target) = cache.upgrade() else {
            return false;
        };
        for notification in conn.notifications_iter() {
            match notification {
                Ok(n) => target.invalidate(&n.payload),
                Err(_) => {
                    target.clear();
                    return true;
                }
            }
        }
        drop(target);
        if last_ping.elapsed() >= PING {
            if diesel::sql_query("SELECT 1").execute(conn).is_err() {
                if let Some(target) = cache.upgrade() {
                    target.clear();
                }
                return true;
            }
            last_ping = Instant::now();
        }
        std::thread::sleep(POLL);
    }
}
