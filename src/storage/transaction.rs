//! Write transactions and savepoints, begun, committed and rolled back in one place, so
//! that a room above can do its part at each end (`TransactionHook`: the audit log
//! appends to its chain just before the outermost commit).

use std::sync::OnceLock;

use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::Connection;

use super::{DbConnection, StorageError};

type Tm = <DbConnection as Connection>::TransactionManager;

/// Work a room above storage does at the ends of transactions. What it keeps between
/// them is per thread: a transaction runs on one.
pub trait TransactionHook: Sync {
    /// Just before the outermost transaction commits; an error rolls it back.
    fn before_commit(&self, conn: &mut DbConnection) -> Result<(), StorageError>;
    /// The transaction (`depth` 1) or savepoint at `depth` ended. A savepoint committed
    /// hands what it kept to its parent; anything else ended takes it along.
    fn ended(&self, depth: u32, committed: bool);
}

static HOOK: OnceLock<&'static dyn TransactionHook> = OnceLock::new();

/// Sets the hook; there is one per process (the first set stays).
pub fn install_transaction_hook(hook: &'static dyn TransactionHook) {
    HOOK.get_or_init(|| hook);
}

/// How many transactions are open on the connection: 0 outside one, 1 in a
/// transaction, more in savepoints.
pub fn transaction_depth(conn: &mut DbConnection) -> Result<u32, StorageError> {
    let status = match conn {
        DbConnection::Sqlite(c) => AnsiTransactionManager::transaction_manager_status_mut(c),
        DbConnection::Postgres(c) => AnsiTransactionManager::transaction_manager_status_mut(c),
    };
    Ok(status.transaction_depth()?.map_or(0, |d| d.get()))
}

/// A write transaction. On SQLite it takes the write lock at `BEGIN` (IMMEDIATE), so
/// two writers queue on the busy timeout instead of failing when a read lock cannot be
/// upgraded; on PostgreSQL it is an ordinary transaction. Inside a transaction already
/// open (a queued write of the group commit) it is a savepoint: all or nothing still.
pub fn write_transaction<T, E, F>(conn: &mut DbConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<StorageError>,
{
    begin_write(conn)?;
    run_and_commit(conn, work)
}

/// Begins a write transaction, or a savepoint inside one already open.
pub(super) fn begin_write(conn: &mut DbConnection) -> Result<(), StorageError> {
    let outermost = transaction_depth(conn)? == 0;
    let begun = match conn {
        _ if !outermost => Tm::begin_transaction(conn),
        DbConnection::Sqlite(c) => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")
        }
        DbConnection::Postgres(c) => AnsiTransactionManager::begin_transaction(c),
    };
    if outermost {
        forget_earlier_work();
    }
    Ok(begun?)
}

/// Begins a savepoint inside the transaction open.
pub(super) fn begin_savepoint(conn: &mut DbConnection) -> Result<(), StorageError> {
    Ok(Tm::begin_transaction(conn)?)
}

/// A transaction that ended without this module hearing of it (its connection broke)
/// leaves nothing to the next one on the thread.
fn forget_earlier_work() {
    if let Some(hook) = HOOK.get() {
        hook.ended(1, false);
    }
}

/// `write_transaction` for a background task that must keep up with request writers on
/// SQLite. SQLite's busy wait sleeps longer the longer a connection has waited, so under
/// a steady stream of writers a patient one rarely gets its turn; this one asks for the
/// write lock every millisecond instead, for up to `bound` (and leaves the connection's
/// busy timeout at `bound`). The same as `write_transaction` on PostgreSQL.
pub fn eager_write_transaction<T, E, F>(
    conn: &mut DbConnection,
    bound: std::time::Duration,
    work: F,
) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<StorageError>,
{
    let DbConnection::Sqlite(c) = conn else {
        return write_transaction(conn, work);
    };
    use diesel::connection::SimpleConnection;
    c.batch_execute("PRAGMA busy_timeout = 0")
        .map_err(StorageError::from)?;
    let started = std::time::Instant::now();
    let begun = loop {
        match AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE") {
            Err(diesel::result::Error::DatabaseError(_, info))
                if info.message().contains("locked") && started.elapsed() < bound =>
            {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            other => break other,
        }
    };
    c.batch_execute(&format!("PRAGMA busy_timeout = {}", bound.as_millis()))
        .map_err(StorageError::from)?;
    begun.map_err(StorageError::from)?;
    forget_earlier_work();
    run_and_commit(conn, work)
}

/// Runs `work` in the transaction just begun; commits, or rolls back on its error.
fn run_and_commit<T, E, F>(conn: &mut DbConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<StorageError>,
{
    match work(conn) {
        Ok(value) => {
            commit(conn)?;
            Ok(value)
        }
        Err(err) => {
            // The original error matters more than a failed rollback; a broken
            // connection is discarded by the pool.
            let _ = rollback(conn);
            Err(err)
        }
    }
}

/// Commits the innermost transaction or savepoint open; the outermost after the hook's
/// work, which rolls it back if it fails.
pub(super) fn commit(conn: &mut DbConnection) -> Result<(), StorageError> {
    let depth = transaction_depth(conn)?;
    let hook = HOOK.get();
    if let (1, Some(hook)) = (depth, hook) {
        if let Err(err) = hook.before_commit(conn) {
            let _ = rollback(conn);
            return Err(err);
        }
    }
    let committed = Tm::commit_transaction(conn);
    if let Some(hook) = hook {
        hook.ended(depth, committed.is_ok());
    }
    Ok(committed?)
}

/// Rolls back the innermost transaction or savepoint open.
pub(super) fn rollback(conn: &mut DbConnection) -> Result<(), StorageError> {
    let depth = transaction_depth(conn)?;
    let rolled_back = Tm::rollback_transaction(conn);
    if let Some(hook) = HOOK.get() {
        hook.ended(depth, false);
    }
    Ok(rolled_back?)
}
