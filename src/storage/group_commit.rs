//! Group commit, on SQLite: request writes queue for one writer thread, which runs
//! whatever has queued in one transaction and commits it once (one fsync), then answers
//! each write. Every write runs under a savepoint of its own, so a write that fails is
//! rolled back alone and the others commit. A write is answered only after its batch
//! committed: an acknowledged write is durable.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use diesel::connection::TransactionManager;
use diesel::Connection;
use tokio::sync::{mpsc, oneshot};

use super::{begin_write, ConnectionManager, DbConnection, StorageError};

/// Writes waiting beyond this make callers wait to queue (back pressure, bounded memory).
const QUEUE: usize = 4_096;
/// The most writes one transaction takes: bounds how long a batch holds the lock.
const MAX_BATCH: usize = 256;

/// One queued write, type-erased so that writes of every kind share the queue.
trait Job: Send {
    /// Runs the write inside the batch's transaction. `true`: it succeeded.
    fn run(&mut self, conn: &mut DbConnection) -> bool;
    /// Answers the caller once the batch committed, or failed to.
    fn answer(self: Box<Self>, committed: Result<(), &StorageError>);
}

struct Queued<T, E, F> {
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
}

/// The queue in front of the writer; cheap to clone.
#[derive(Clone)]
pub struct GroupCommit {
    queue: mpsc::Sender<Box<dyn Job>>,
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
    /// Starts the writer thread, with a connection of its own (not one of the pool's,
    /// which stay for reads). It stops once every `GroupCommit` is dropped.
    pub fn start(connections: ConnectionManager) -> std::io::Result<Self> {
        let (queue, receiver) = mpsc::channel(QUEUE);
        let counts = Arc::new(Counts::default());
        let writer = Writer {
            connections,
            conn: None,
            counts: counts.clone(),
        };
        std::thread::Builder::new()
            .name("group-commit".into())
            .spawn(move || writer.run(receiver))?;
        Ok(Self { queue, counts })
    }

    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// Runs `work` in the next group transaction and answers once that has committed.
    /// `work` must be short (it holds up the writes queued behind it) and must not open
    /// a transaction of its own other than through `write_transaction`.
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(Queued {
            work: Some(work),
            outcome: None,
            reply,
        });
        self.queue
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
}

impl Writer {
    fn run(mut self, mut receiver: mpsc::Receiver<Box<dyn Job>>) {
        let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
        while let Some(first) = receiver.blocking_recv() {
            batch.push(first);
            // Whatever queued while the last batch committed joins this one.
            while batch.len() < MAX_BATCH {
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

type Tm = <DbConnection as Connection>::TransactionManager;

/// One transaction: each job under its own savepoint, then one commit.
fn run_batch(conn: &mut DbConnection, batch: &mut [Box<dyn Job>]) -> Result<(), StorageError> {
    begin_write(conn)?;
    let ran = batch.iter_mut().try_for_each(|job| run_alone(conn, job));
    match ran {
        Ok(()) => Ok(Tm::commit_transaction(conn)?),
        Err(err) => {
            let _ = Tm::rollback_transaction(conn);
            Err(err)
        }
    }
}

/// Runs one job under a savepoint; its failure (or panic) rolls back its own work only.
/// A `write_transaction` inside it is a savepoint within that one. An error here is the
/// batch's: a savepoint could not be made or undone.
fn run_alone(conn: &mut DbConnection, job: &mut Box<dyn Job>) -> Result<(), StorageError> {
    Tm::begin_transaction(conn)?;
    let ok = catch_unwind(AssertUnwindSafe(|| job.run(conn))).unwrap_or_else(|_| {
        tracing::error!("a queued write panicked; it was rolled back alone");
        false
    });
    // A panic may have left savepoints of its own open above the job's.
    while transaction_depth(conn)? > 2 {
        Tm::rollback_transaction(conn)?;
    }
    if ok {
        Tm::commit_transaction(conn)?;
    } else {
        Tm::rollback_transaction(conn)?;
    }
    Ok(())
}

fn transaction_depth(conn: &mut DbConnection) -> Result<u32, StorageError> {
    use diesel::connection::AnsiTransactionManager;
    let status = match conn {
        DbConnection::Sqlite(c) => AnsiTransactionManager::transaction_manager_status_mut(c),
        DbConnection::Postgres(c) => AnsiTransactionManager::transaction_manager_status_mut(c),
    };
    Ok(status.transaction_depth()?.map_or(0, |d| d.get()))
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
        db.write(|conn| {
            diesel::sql_query("CREATE TABLE scratch (n INTEGER NOT NULL UNIQUE)").execute(conn)?;
            Ok::<_, StorageError>(())
        })
        .await
        .unwrap();
        let busy = db.clone();
        tokio::spawn(async move {
            busy.write(|_| {
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
                db.write(move |conn| {
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
                db.write(move |conn| Ok::<_, Refused>(insert(conn, n)?))
                    .await
            })
        };
        let first = good(1);
        let failing = {
            let db = db.clone();
            tokio::spawn(async move {
                db.write(|conn| {
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
                db.write(|conn| {
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
                db.write(|conn| {
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
        db.write(|conn| insert(conn, 6)).await.unwrap();
        assert_eq!(rows(&db).await, vec![1, 3, 5, 6]);
    }
}
