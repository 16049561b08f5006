//! Cross-instance invalidation on PostgreSQL: every change to a subject sends
//! `NOTIFY consentry_subject_changed, '<id>'` inside its transaction (delivered on
//! commit; see `storage::announce_subject_changed`); each instance listens on a
//! connection of its own and drops the subject from its cache. After a lost connection,
//! notifications may have been missed, so the whole cache is dropped.
//!
//! The same connection carries the barriers of `fence`, so that a write answers only
//! once every instance has dropped what it changed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::pg::PgConnection;
use diesel::sql_types::{BigInt, Text};
use diesel::{Connection, QueryableByName, RunQueryDsl};
use prometheus::{IntCounter, IntGauge, Registry};
use tokio::sync::watch;

use super::cache::DecisionCache;
use super::fence::{Bookkeeping, Kind, Message};
use crate::storage::SUBJECT_CHANGED;

/// Barrier messages (see `fence::Message`).
const BARRIERS: &str = "consentry_gate_barrier";
/// How often the listener looks for notifications and waiting writes.
const POLL: Duration = Duration::from_millis(2);

/// What writes, decisions and the listener thread share.
pub struct ChangeFence {
    book: Mutex<Bookkeeping>,
    released: watch::Sender<u64>,
    base: Instant,
    /// Nanoseconds after `base` until which the cache may answer; 0 before the first lease.
    trusted_until: AtomicU64,
    patience: Duration,
    /// Set when the instance stops: the listener says so to its peers and ends.
    leaving: AtomicBool,
    left: AtomicBool,
    given_up: IntCounter,
    bypassed: IntCounter,
    peers: IntGauge,
}

impl ChangeFence {
    pub fn new(registry: &Registry, lease: Duration) -> Result<Self, prometheus::Error> {
        let given_up = IntCounter::new(
            "change_fence_given_up_total",
            "Writes that answered after waiting the whole lease for a silent instance",
        )?;
        let bypassed = IntCounter::new(
            "decision_cache_bypassed_total",
            "Subject loads that skipped the cache because change notifications were late",
        )?;
        let peers = IntGauge::new(
            "change_fence_peers",
            "Other instances this one waits for after a write",
        )?;
        registry.register(Box::new(given_up.clone()))?;
        registry.register(Box::new(bypassed.clone()))?;
        registry.register(Box::new(peers.clone()))?;
        let book = Bookkeeping::new(uuid::Uuid::new_v4().simple().to_string(), lease);
        Ok(Self {
            patience: book.patience(),
            book: Mutex::new(book),
            released: watch::Sender::new(0),
            base: Instant::now(),
            trusted_until: AtomicU64::new(0),
            leaving: AtomicBool::new(false),
            left: AtomicBool::new(false),
            given_up,
            bypassed,
            peers,
        })
    }

    fn book(&self) -> MutexGuard<'_, Bookkeeping> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this instance has heard every change recently enough to answer from its
    /// cache; counts the times it has not.
    pub fn cache_trusted(&self) -> bool {
        let until = self.trusted_until.load(Ordering::Acquire);
        let trusted = until != 0 && (self.base.elapsed().as_nanos() as u64) < until;
        if !trusted {
            self.bypassed.inc();
        }
        trusted
    }

    /// Call after a change committed: returns once every instance has heard it, or once
    /// the silent ones can no longer be answering from their caches.
    pub async fn wait_for_peers(&self) {
        let request = self.book().request();
        let mut released = self.released.subscribe();
        let heard = released.wait_for(|r| *r >= request);
        if actix_web::rt::time::timeout(self.patience, heard)
            .await
            .is_err()
        {
            self.given_up.inc();
        }
    }

    /// Tells the other instances not to wait for this one any more (call once it has
    /// stopped answering); waits briefly for the listener to have said so.
    pub async fn leave(&self) {
        self.trusted_until.store(0, Ordering::Release);
        self.leaving.store(true, Ordering::Release);
        for _ in 0..100 {
            if self.left.load(Ordering::Acquire) {
                return;
            }
            actix_web::rt::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn publish(&self, book: &mut Bookkeeping) {
        let released = book.release(Instant::now());
        self.released.send_if_modified(|r| {
            let later = released > *r;
            *r = (*r).max(released);
            later
        });
        if let Some(until) = book
            .trusted_until()
            .filter(|_| !self.leaving.load(Ordering::Acquire))
        {
            let nanos = until.saturating_duration_since(self.base).as_nanos() as u64;
            self.trusted_until.fetch_max(nanos, Ordering::AcqRel);
        }
        self.peers.set(book.peers() as i64);
    }
}

/// Listens until the app stops (`leave`, or the cache or the fence dropped), reconnecting with
/// back-off. Returns once the first `LISTEN` is in place (or after `wait`), so that the
/// instance does not serve from a cache that a late first connection would then clear.
pub fn spawn_listener(
    url: String,
    cache: Weak<DecisionCache>,
    fence: Weak<ChangeFence>,
    wait: Duration,
) -> std::io::Result<JoinHandle<()>> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let handle = std::thread::Builder::new()
        .name("consentry-listen".into())
        .spawn(move || listen(&url, &cache, &fence, Some(ready_tx)))?;
    if ready_rx.recv_timeout(wait).is_err() {
        tracing::warn!("change listener not connected yet; serving, and it keeps trying");
    }
    Ok(handle)
}

fn connect(url: &str) -> Result<PgConnection, diesel::ConnectionError> {
    let mut conn = PgConnection::establish(url)?;
    // A NOTIFY commits a transaction; a barrier needs its place in the queue, not a
    // flush to disk, so it does not wait for one (and does not queue writers behind it).
    let setup = [
        "SET synchronous_commit = off".to_owned(),
        format!("LISTEN {SUBJECT_CHANGED}"),
        format!("LISTEN {BARRIERS}"),
    ];
    for statement in setup {
        diesel::sql_query(statement)
            .execute(&mut conn)
            .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
    }
    Ok(conn)
}

fn listen(
    url: &str,
    cache: &Weak<DecisionCache>,
    fence: &Weak<ChangeFence>,
    mut ready: Option<std::sync::mpsc::Sender<()>>,
) {
    let Some(me) = fence.upgrade().map(|f| f.book().me().to_owned()) else {
        return;
    };
    let mut backoff = Duration::from_millis(100);
    while cache.strong_count() > 0 && fence.strong_count() > 0 {
        let mut conn = match connect(url) {
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
        if !serve(&mut conn, cache, fence) {
            // Peers need not wait for an instance that stopped.
            let _ = draw_barrier(&mut conn, &Message::prefix(&me, 0, Kind::Leaving));
            if let Some(fence) = fence.upgrade() {
                fence.left.store(true, Ordering::Release);
            }
            return;
        }
        tracing::warn!("change listener lost its connection; the decision cache was dropped");
    }
}

/// Applies notifications and sends barriers until the connection fails (`true`) or the
/// app stops (`false`).
fn serve(conn: &mut PgConnection, cache: &Weak<DecisionCache>, fence: &Weak<ChangeFence>) -> bool {
    let mut heard = Vec::new();
    loop {
        let (Some(cache), Some(fence)) = (cache.upgrade(), fence.upgrade()) else {
            return false;
        };
        if fence.leaving.load(Ordering::Acquire) {
            return false;
        }
        // Every invalidation in this batch is applied before the barriers after it count.
        for notification in conn.notifications_iter() {
            match notification {
                Ok(n) if n.channel == SUBJECT_CHANGED => cache.invalidate(&n.payload),
                Ok(n) => heard.extend(Message::parse(&n.payload)),
                Err(_) => {
                    cache.clear();
                    return true;
                }
            }
        }
        let due = {
            let mut book = fence.book();
            let now = Instant::now();
            for message in heard.drain(..) {
                book.heard(&message, now);
            }
            book.due(now)
                .map(|due| (due, Message::prefix(book.me(), due.seen, due.kind)))
        };
        // The round trip runs without the lock: writes asking for a barrier meanwhile
        // must not block their worker thread, and are covered by the next one.
        if let Some((due, prefix)) = due {
            let at = Instant::now();
            match draw_barrier(conn, &prefix) {
                Ok(seq) => fence.book().sent(due, seq, at),
                Err(_) => {
                    cache.clear();
                    return true;
                }
            }
        }
        fence.publish(&mut fence.book());
        drop((cache, fence));
        std::thread::sleep(POLL);
    }
}

#[derive(QueryableByName)]
struct Drawn {
    #[diesel(sql_type = BigInt)]
    seq: i64,
}

/// Sends one barrier: draws its number and notifies `<prefix><number>` in one statement.
fn draw_barrier(conn: &mut PgConnection, prefix: &str) -> Result<i64, diesel::result::Error> {
    diesel::sql_query(
        "SELECT seq FROM (SELECT seq, pg_notify($1, $2 || seq::text) \
         FROM (SELECT nextval('consentry_gate_barrier') AS seq) drawn) sent",
    )
    .bind::<Text, _>(BARRIERS)
    .bind::<Text, _>(prefix)
    .get_result::<Drawn>(conn)
    .map(|d| d.seq)
}
