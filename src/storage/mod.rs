//! The database: one connection type over SQLite and PostgreSQL, a pool, the embedded
//! migrations, and the one way handlers run blocking queries.

mod changes;
mod connection;
mod group_commit;
pub mod schema;
mod transaction;

use std::path::Path;
use std::time::Duration;

use diesel::pg::PgConnection;
use diesel::{Connection, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub use changes::{announce_subject_changed, SUBJECT_CHANGED};
pub use connection::{ConnectionManager, DatabaseUrl, DbConnection, Pool, PooledConnection};
pub use group_commit::{GroupCommit, Shape as WriterShape};
pub use transaction::{
    eager_write_transaction, install_transaction_hook, transaction_depth, write_transaction,
    TransactionHook,
};

const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
/// Advisory lock key held while migrating PostgreSQL ("consentr" in ASCII).
const MIGRATION_LOCK: i64 = 0x636f_6e73_656e_7472;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database configuration: {0}")]
    Config(String),
    #[error("cannot connect to the database at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("no database connection available")]
    PoolExhausted(#[source] diesel::r2d2::PoolError),
    #[error("migrations failed: {0}")]
    Migration(String),
    #[error("database query failed")]
    Query(#[from] diesel::result::Error),
    #[error("the database task was cancelled")]
    Cancelled,
    /// The write ran, but the transaction it was part of did not commit: nothing of it
    /// was applied.
    #[error("the write's transaction did not commit: {0}")]
    NotCommitted(String),
}

impl StorageError {
    /// Whether the database, rather than the request, is at fault right now.
    /// SQLite's write lock still held by others after the busy timeout counts too: the
    /// request was not applied and may be retried.
    pub fn is_unavailable(&self) -> bool {
        use diesel::result::{DatabaseErrorKind, Error};
        match self {
            Self::Unreachable { .. }
            | Self::PoolExhausted(_)
            | Self::Cancelled
            | Self::NotCommitted(_) => true,
            Self::Query(Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _)) => true,
            Self::Query(Error::DatabaseError(_, info)) => {
                let message = info.message();
                // A deadlock's victim (PostgreSQL) was rolled back and may be retried.
                message.starts_with("database is locked")
                    || message.starts_with("database is busy")
                    || message.starts_with("deadlock detected")
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_size: u32,
    /// The group commit's writers on PostgreSQL (SQLite has one).
    pub writers: usize,
    pub acquire_timeout: Duration,
    pub busy_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_size: 16,
            writers: 4,
            acquire_timeout: Duration::from_secs(5),
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// Inserts several rows in one statement (`insert_rows!(conn, table, &rows)`). The
/// connection enum cannot, so each backend's connection does.
#[macro_export]
macro_rules! insert_rows {
    ($conn:expr, $table:expr, $rows:expr) => {
        match $conn {
            $crate::storage::DbConnection::Postgres(c) => {
                diesel::insert_into($table).values($rows).execute(c)
            }
            $crate::storage::DbConnection::Sqlite(c) => {
                diesel::insert_into($table).values($rows).execute(c)
            }
        }
    };
}

/// The pool and what it was built from; cheap to clone.
#[derive(Clone)]
pub struct Database {
    pool: Pool,
    url: DatabaseUrl,
    manager: ConnectionManager,
    /// The group commit (see `write`).
    writer: GroupCommit,
}

impl Database {
    /// Connects (creating the SQLite file and its folder if needed), applies pending
    /// migrations, and builds the pool. An unreachable server is an error, not a panic.
    pub fn open(url: &DatabaseUrl, settings: &PoolSettings) -> Result<Self, StorageError> {
        migrate(url, settings)?;
        let manager = ConnectionManager::new(url.clone(), settings.busy_timeout);
        let spare = manager.clone();
        let max_size = match url {
            // One writer at a time anyway; a few readers beside it.
            DatabaseUrl::Sqlite(_) => settings.max_size.min(8),
            DatabaseUrl::Postgres(_) => settings.max_size,
        };
        let pool = diesel::r2d2::Pool::builder()
            .max_size(max_size)
            // Every connection opened up front: opening one on demand (a process fork on
            // PostgreSQL) showed as a 100 ms tail on cache misses under load.
            .min_idle(None)
            .connection_timeout(settings.acquire_timeout)
            .build(manager)
            .map_err(|e| StorageError::Unreachable {
                url: url.redacted(),
                reason: e.to_string(),
            })?;
        let shape = match url {
            DatabaseUrl::Sqlite(_) => WriterShape::SQLITE,
            DatabaseUrl::Postgres(_) => WriterShape::postgres(settings.writers),
        };
        let writer =
            GroupCommit::start(spare.clone(), shape).map_err(|e| StorageError::Unreachable {
                url: url.redacted(),
                reason: format!("cannot start the writer threads: {e}"),
            })?;
        Ok(Self {
            pool,
            url: url.clone(),
            manager: spare,
            writer,
        })
    }

    pub fn backend_name(&self) -> &'static str {
        self.url.backend_name()
    }

    /// Opens connections outside the pool (for background writers with their own pace).
    pub fn manager(&self) -> ConnectionManager {
        self.manager.clone()
    }

    pub fn pool_state(&self) -> PoolState {
        let state = self.pool.state();
        PoolState {
            max: self.pool.max_size(),
            open: state.connections,
            idle: state.idle_connections,
        }
    }

    /// Runs blocking database work on the blocking thread pool, never on an async worker.
    pub async fn run<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
    {
        let pool = self.pool.clone();
        actix_web::rt::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(StorageError::PoolExhausted)?;
            work(&mut conn)
        })
        .await
        .map_err(|_| StorageError::Cancelled)?
    }

    /// Runs a write that requests make often (consents, preferences, signals, survey
    /// answers and offers) in the group commit (see `GroupCommit`): in one transaction
    /// with the writes queued beside it, one commit and one append to the audit chain
    /// for all, under a savepoint of its own; answered once that commit is done.
    /// `subject` is the one the write is about: its writes all go through one writer.
    pub async fn write<T, E, F>(&self, subject: &str, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
    {
        self.writer.write(subject, work).await
    }

    /// Group-commit transactions run and writes run in them, since start.
    pub fn write_counts(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let counts = self.writer.counts();
        (counts.batches.load(Relaxed), counts.writes.load(Relaxed))
    }

    /// A cheap round trip, for readiness.
    pub async fn ping(&self) -> Result<(), StorageError> {
        self.run(|conn| {
            diesel::sql_query("SELECT 1").execute(conn)?;
            Ok::<_, StorageError>(())
        })
        .await
    }
}

#[derive(Debug, Clone, Copy)]
pub struct PoolState {
    pub max: u32,
    pub open: u32,
    pub idle: u32,
}

/// Applies pending migrations on a connection of its own. Creates the SQLite folder.
pub fn migrate(url: &DatabaseUrl, settings: &PoolSettings) -> Result<Vec<String>, StorageError> {
    let unreachable = |reason: String| StorageError::Unreachable {
        url: url.redacted(),
        reason,
    };
    let applied = match url {
        DatabaseUrl::Postgres(u) => {
            let mut conn = PgConnection::establish(u).map_err(|e| unreachable(e.to_string()))?;
            // Instances starting together take turns: one migrates, the others find nothing to do.
            diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
                .execute(&mut conn)?;
            let applied = run_migrations(&mut conn, POSTGRES_MIGRATIONS);
            diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
                .execute(&mut conn)?;
            applied?
        }
        DatabaseUrl::Sqlite(path) => {
            prepare_sqlite_files(Path::new(path)).map_err(|e| unreachable(e.to_string()))?;
            let mut conn = connection::establish_sqlite(path, settings.busy_timeout)
                .map_err(|e| unreachable(e.to_string()))?;
            // WAL once per database file: readers never wait for the writer.
            diesel::connection::SimpleConnection::batch_execute(
                &mut conn,
                "PRAGMA journal_mode = WAL;",
            )?;
            run_migrations(&mut conn, SQLITE_MIGRATIONS)?
        }
    };
    Ok(applied)
}

/// The database holds personal data: its folder and files are owner-only, those created
/// now and those an older version left readable.
fn prepare_sqlite_files(path: &Path) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.exists() {
            crate::files::create_private_dir(parent)?;
        }
    }
    crate::files::ensure_private_file(path)?;
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut sidecar = path.as_os_str().to_owned();
        sidecar.push(suffix);
        crate::files::restrict_if_present(Path::new(&sidecar))?;
    }
    Ok(())
}

fn run_migrations<C>(
    conn: &mut C,
    migrations: EmbeddedMigrations,
) -> Result<Vec<String>, StorageError>
where
    C: MigrationHarness<C::Backend> + Connection,
{
    let applied = conn
        .run_pending_migrations(migrations)
        .map_err(|e| StorageError::Migration(e.to_string()))?;
    Ok(applied.iter().map(|v| v.to_string()).collect())
}

#[cfg(test)]
mod unavailable_tests {
    use super::StorageError;
    use diesel::result::{DatabaseErrorKind, Error};

    fn database_error(kind: DatabaseErrorKind, message: &str) -> StorageError {
        StorageError::Query(Error::DatabaseError(kind, Box::new(message.to_owned())))
    }

    #[test]
    fn a_lock_held_past_the_timeout_is_a_retryable_unavailability() {
        assert!(database_error(DatabaseErrorKind::Unknown, "database is locked").is_unavailable());
        assert!(database_error(DatabaseErrorKind::ClosedConnection, "gone").is_unavailable());
        assert!(!database_error(DatabaseErrorKind::UniqueViolation, "duplicate").is_unavailable());
        assert!(!StorageError::Query(Error::NotFound).is_unavailable());
    }
}
