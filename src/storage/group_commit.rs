//! Group commit: request writes queue for a writer thread, which runs whatever has
//! queued in one transaction and commits it once (one fsync, one append to the audit
//! chain), then answers each write. Every write runs under a savepoint of its own, so
//! a write that fails is rolled back alone and the others commit. A write is answered
//! only after its batch committed: an acknowledged write is durable.
//!
//! SQLite lets one writer in at a time, so it has one writer thread. PostgreSQL has
//! several, each on a connection of its own: a batch's statements are round trips, and
//! several batches run beside each other. Every write names the subject it is about,
//! and a subject's writes all queue for the same writer, so two batches never wait on
//! each other for a subject's rows (which could deadlock). They take turns only where
//! the audit chain is appended, just before each commit (see `audit::pending`), after
//! every row lock: a batch never holds the chain while it waits for a row.

use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use diesel::prelude::*;
use tokio::sync::{mpsc, oneshot};

use super::schema::subjects;
use super::transaction::{begin_savepoint, begin_write, commit, rollback, transaction_depth};
use super::{ConnectionManager, DbConnection, StorageError};

/// Writes waiting beyond this, per writer, make callers wait to queue (back pressure,
/// bounded memory).
const QUEUE: usize = 4_096;
/// How many writer threads, and the most writes one transaction takes: that bounds how
/// long a batch holds SQLite's lock, or the row locks of its writes on PostgreSQL.
pub struct Shape {
    pub writers: usize,
    pub max_batch: usize,
}

impl Shape {
    /// SQLite lets one writer in at a time.
    pub const SQLITE: Self = Self {
        writers: 1,
        max_batch: 256,
    };

    pub fn postgres(writers: usize) -> Self {
        Self {
            writers,
            max_batch: 64,
        }
    }
}

/// One queued write, type-erased so that writes of every kind share the queue.
trait Job: Send {
    /// Runs the write inside the batch's transaction. `true`: it succeeded.
    fn run(&mut self, conn: &mut DbConnection) -> bool;
    /// Answers the caller once the batch committed, or failed to.
    fn answer(self: Box<Self>, committed: Result<(), &StorageError>);
    /// The subject it is about.
    fn subject(&self) -> &str;
}

struct Queued<T, E, F> {
    subject: String,
    work: Option<F>,
    outcome: Option<Result<T, E>>,
    reply: oneshot::Sender<Result<T, E>>,
}

impl<T, E, F> Job for Queued<T, E, F>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E> + Send,
    T: Send,
    E: From<StorageError> + Send,
{
    fn run(&mut self, conn: &mut DbConnection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let outcome = work(conn);
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn answer(self: Box<Self>, committed: Result<(), &StorageError>) {
        let answer = match (self.outcome, committed) {
            (Some(Err(err)), _) => Err(err),
            (Some(Ok(value)), Ok(())) => Ok(value),
            // It ran and was rolled back with the batch, or never ran.
            (_, Err(err)) => Err(StorageError::NotCommitted(err.to_string()).into()),
            // It panicked: dropping the sender tells the caller it was cancelled.
            (None, Ok(())) => return,
        };
        // A caller that went away (a dropped request) no longer needs the answer.
        let _ = self.reply.send(answer);
    }

    fn subject(&self) -> &str {
        &self.subject
    }
}

/// The queue in front of the writer; cheap to clone.
#[derive(Clone)]
pub struct GroupCommit {
    /// One queue per writer thread.
    queues: Arc<[mpsc::Sender<Box<dyn Job>>]>,
    counts: Arc<Counts>,
}

/// What the writer has done since it started, for `/metrics`.
#[derive(Debug, Default)]
pub struct Counts {
    /// Transactions committed (or tried).
    pub batches: AtomicU64,
    /// Writes run in them.
    pub writes: AtomicU64,
}

impl GroupCommit {
    /// Starts the writer threads, each with a connection of its own (not one of the
    /// pool's, which stay for reads). They stop once every `GroupCommit` is dropped.
    pub fn start(connections: ConnectionManager, shape: Shape) -> std::io::Result<Self> {
        let counts = Arc::new(Counts::default());
        let mut queues = Vec::with_capacity(shape.writers);
        for n in 0..shape.writers.max(1) {
            let (queue, receiver) = mpsc::channel(QUEUE);
            let writer = Writer {
                connections: connections.clone(),
                conn: None,
                counts: counts.clone(),
                max_batch: shape.max_batch,
            };
            std::thread::Builder::new()
                .name(format!("group-commit-{n}"))
                .spawn(move || writer.run(receiver))?;
            queues.push(queue);
        }
        Ok(Self {
            queues: queues.into(),
            counts,
        })
    }

    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// Runs `work` in the next group transaction of the writer that takes `subject`'s
    /// writes, and answers once that has committed. `work` must be short (it holds up
    /// the writes queued behind it), should lock no other subject's rows, and must not
    /// open a transaction of its own other than through `write_transaction`.
    pub async fn write<T, E, F>(&self, subject: &str, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(Queued {
            subject: subject.to_owned(),
            work: Some(work),
            outcome: None,
            reply,
        });
        // A fixed hash: the same subject, the same writer, for the process's life.
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(subject);
        self.queues[(hash % self.queues.len() as u64) as usize]
            .send(job)
            .await
            .map_err(|_| StorageError::Cancelled)?;
        answer.await.map_err(|_| StorageError::Cancelled)?
    }
}

struct Writer {
    connections: ConnectionManager,
    conn: Option<DbConnection>,
    counts: Arc<Counts>,
    max_batch: usize,
}

impl Writer {
    fn run(mut self, mut receiver: mpsc::Receiver<Box<dyn Job>>) {
        let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(self.max_batch);
        while let Some(first) = receiver.blocking_recv() {
            batch.push(first);
            // Whatever queued while the last batch committed joins this one.
            while batch.len() < self.max_batch {
                match receiver.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            self.commit(&mut batch);
        }
    }

    /// Runs and commits one batch, then answers every write in it.
    fn commit(&mut self, batch: &mut Vec<Box<dyn Job>>) {
        let committed = self.connection().and_then(|conn| run_batch(conn, batch));
        if committed.is_err() {
            // The connection may be what failed: the next batch opens a fresh one.
            self.conn = None;
        }
        self.counts.batches.fetch_add(1, Ordering::Relaxed);
        self.counts
            .writes
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        for job in batch.drain(..) {
            // An error type whose conversion panics must not stop the writer.
            let _ = catch_unwind(AssertUnwindSafe(|| {
                job.answer(committed.as_ref().map(|_| ()))
            }));
        }
    }

    fn connection(&mut self) -> Result<&mut DbConnection, StorageError> {
        if self.conn.is_none() {
            let conn = self
                .connections
                .establish()
                .map_err(|e| StorageError::Unreachable {
                    url: self.connections.redacted_url(),
                    reason: e.to_string(),
                })?;
            self.conn = Some(conn);
        }
        Ok(self.conn.as_mut().expect("set above"))
    }
}

/// One transaction: each job under its own savepoint, then one commit.
fn run_batch(conn: &mut DbConnection, batch: &mut [Box<dyn Job>]) -> Result<(), StorageError> {
    begin_write(conn)?;
    let ran = lock_subjects(conn, batch)
        .and_then(|()| batch.iter_mut().try_for_each(|job| run_alone(conn, job)));
    match ran {
        Ok(()) => commit(conn),
        Err(err) => {
            let _ = rollback(conn);
            Err(err)
        }
    }
}

/// On PostgreSQL, takes the row locks of the batch's subjects first, in one statement
/// and in id order. Batches on other connections and instances take theirs in the same
/// order, so they may wait for each other but never in a circle (a deadlock, which
/// would fail a write). Each write still locks its subject itself.
fn lock_subjects(conn: &mut DbConnection, batch: &[Box<dyn Job>]) -> Result<(), StorageError> {
    let DbConnection::Postgres(c) = conn else {
        return Ok(());
    };
    let mut ids: Vec<&str> = batch.iter().map(|job| job.subject()).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() > 1 {
        subjects::table
            .filter(subjects::id.eq_any(ids))
            .order(subjects::id)
            .select(subjects::id)
            .for_update()
            .load::<String>(c)?;
    }
    Ok(())
}

/// Runs one job under a savepoint; its failure (or panic) rolls back its own work only.
/// A `write_transaction` inside it is a savepoint within that one. An error here is the
/// batch's: a savepoint could not be made or undone.
fn run_alone(conn: &mut DbConnection, job: &mut Box<dyn Job>) -> Result<(), StorageError> {
    begin_savepoint(conn)?;
    let ok = catch_unwind(AssertUnwindSafe(|| job.run(conn))).unwrap_or_else(|_| {
        tracing::error!("a queued write panicked; it was rolled back alone");
        false
    });
    // A panic may have left savepoints of its own open above the job's.
    while transaction_depth(conn)? > 2 {
        rollback(conn)?;
    }
    if ok {
        commit(conn)
    } else {
        rollback(conn)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use diesel::RunQueryDsl;

    use crate::storage::{
        write_transaction, Database, DatabaseUrl, DbConnection, PoolSettings, StorageError,
    };

    #[derive(Debug, PartialEq)]
    struct Refused;

    impl From<StorageError> for Refused {
        fn from(err: StorageError) -> Self {
            panic!("unexpected storage error: {err}")
        }
    }

    fn open() -> (tempfile::TempDir, Database) {
        let dir = tempfile::tempdir().unwrap();
        let url = DatabaseUrl::Sqlite(dir.path().join("t.db").display().to_string());
        let db = Database::open(&url, &PoolSettings::default()).unwrap();
        (dir, db)
    }

    fn insert(conn: &mut DbConnection, n: i32) -> Result<(), StorageError> {
        diesel::sql_query(format!("INSERT INTO scratch (n) VALUES ({n})")).execute(conn)?;
        Ok(())
    }

    async fn rows(db: &Database) -> Vec<i32> {
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Integer)]
            n: i32,
        }
        db.run(|conn| {
            let rows: Vec<Row> =
                diesel::sql_query("SELECT n FROM scratch ORDER BY n").load(conn)?;
            Ok::<_, StorageError>(rows.into_iter().map(|r| r.n).collect())
        })
        .await
        .unwrap()
    }

    /// Holds the writer busy for a moment, so that the writes queued meanwhile are
    /// taken together in the next batch.
    async fn prepared() -> (tempfile::TempDir, Database) {
        let (dir, db) = open();
        db.write("s", |conn| {
            diesel::sql_query("CREATE TABLE scratch (n INTEGER NOT NULL UNIQUE)").execute(conn)?;
            Ok::<_, StorageError>(())
        })
        .await
        .unwrap();
        let busy = db.clone();
        tokio::spawn(async move {
            busy.write("s", |_| {
                std::thread::sleep(Duration::from_millis(200));
                Ok::<_, StorageError>(())
            })
            .await
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        (dir, db)
    }

    #[tokio::test]
    async fn writes_queued_together_commit_in_one_transaction_and_each_is_answered() {
        let (_dir, db) = prepared().await;
        let (before, _) = db.write_counts();
        let writes = (1..=50).map(|n| {
            let db = db.clone();
            tokio::spawn(async move {
                db.write("s", move |conn| {
                    insert(conn, n)?;
                    Ok::<_, StorageError>(n * 10)
                })
                .await
            })
        });
        let answers: Vec<i32> = futures_util::future::join_all(writes)
            .await
            .into_iter()
            .map(|r| r.unwrap().unwrap())
            .collect();
        assert_eq!(answers, (1..=50).map(|n| n * 10).collect::<Vec<_>>());
        assert_eq!(rows(&db).await, (1..=50).collect::<Vec<_>>());
        let (batches, _) = db.write_counts();
        // The busy write's batch, then the fifty in one or very few.
        assert!(batches - before <= 3, "{} batches", batches - before);
    }

    #[tokio::test]
    async fn a_write_that_fails_or_panics_is_rolled_back_alone() {
        let (_dir, db) = prepared().await;
        let good = |n| {
            let db = db.clone();
            tokio::spawn(async move {
                db.write("s", move |conn| Ok::<_, Refused>(insert(conn, n)?))
                    .await
            })
        };
        let first = good(1);
        let failing = {
            let db = db.clone();
            tokio::spawn(async move {
                db.write("s", |conn| {
                    insert(conn, 2)?;
                    Err::<(), _>(Refused)
                })
                .await
            })
        };
        let nested = {
            let db = db.clone();
            // A duplicate inside a write_transaction: its savepoint undoes it alone, and
            // the write goes on to succeed with what it did before.
            tokio::spawn(async move {
                db.write("s", |conn| {
                    insert(conn, 3)?;
                    let dup = write_transaction(conn, |conn| insert(conn, 1));
                    Ok::<_, StorageError>(dup.is_err())
                })
                .await
            })
        };
        let panicking = {
            let db = db.clone();
            tokio::spawn(async move {
                db.write("s", |conn| {
                    insert(conn, 4)?;
                    if matches!(conn, DbConnection::Sqlite(_)) {
                        panic!("a bug in one write");
                    }
                    Ok::<_, StorageError>(())
                })
                .await
            })
        };
        let last = good(5);
        assert_eq!(first.await.unwrap(), Ok(()));
        assert_eq!(failing.await.unwrap(), Err(Refused));
        assert!(matches!(nested.await.unwrap(), Ok(true)));
        assert!(matches!(
            panicking.await.unwrap(),
            Err(StorageError::Cancelled)
        ));
        assert_eq!(last.await.unwrap(), Ok(()));
        assert_eq!(rows(&db).await, vec![1, 3, 5]);
        // The writer lives on after the panic.
        db.write("s", |conn| insert(conn, 6)).await.unwrap();
        assert_eq!(rows(&db).await, vec![1, 3, 5, 6]);
    }
}
