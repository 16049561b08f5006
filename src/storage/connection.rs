//! One connection type over both backends, and the pool that hands it out.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{self, ManageConnection};
use diesel::sqlite::SqliteConnection;
use diesel::Connection;

use super::StorageError;

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

/// Which database a URL names. Chosen from the scheme ourselves: `establish` on the
/// enum would try each backend in turn, and SQLite takes any string as a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Postgres(String),
    Sqlite(String),
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<Self, StorageError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(url.to_owned()))
        } else if let Some(path) = url.strip_prefix("sqlite://") {
            Self::sqlite_path(path)
        } else if let Some(path) = url.strip_prefix("sqlite:") {
            Self::sqlite_path(path)
        } else {
            Err(StorageError::Config(format!(
                "database URL must start with sqlite:// or postgres:// (got scheme `{}`)",
                url.split(':').next().unwrap_or_default()
            )))
        }
    }

    fn sqlite_path(path: &str) -> Result<Self, StorageError> {
        if path.is_empty() {
            return Err(StorageError::Config("sqlite URL has an empty path".into()));
        }
        Ok(Self::Sqlite(path.to_owned()))
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Postgres(_) => "postgres",
            Self::Sqlite(_) => "sqlite",
        }
    }

    /// The URL without its password, safe to print.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("sqlite://{path}"),
            Self::Postgres(url) => redact_password(url),
        }
    }
}

/// Hides the password in the user part and in the query parameters libpq takes a
/// secret from (`password`, `sslpassword`); the rest (`sslmode`, `sslrootcert`, ...)
/// stays, since it tells how the connection was made.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // As libpq reads it, the user part ends at an `@` before the first `/`; the last
    // one, so that a password with an unescaped `@` or `?` is hidden whole.
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (userinfo, location) = match rest[..authority_end].rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let userinfo = match userinfo {
        Some(info) => match info.split_once(':') {
            Some((user, _)) => format!("{user}:***@"),
            None => format!("{info}@"),
        },
        None => String::new(),
    };
    // Then every secret parameter after the first `?`, wherever the user part ended.
    let shown = format!("{userinfo}{location}");
    let Some((before, query)) = shown.split_once('?') else {
        return format!("{scheme}://{shown}");
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if SECRET_PARAMETERS.contains(&key) => format!("{key}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{scheme}://{before}?{}", pairs.join("&"))
}

/// Connection parameters whose value is a secret.
const SECRET_PARAMETERS: [&str; 2] = ["password", "sslpassword"];

/// Opens connections for the pool and gives every SQLite connection its pragmas.
#[derive(Debug, Clone)]
pub struct ConnectionManager {
    url: DatabaseUrl,
    busy_timeout: Duration,
}

impl ConnectionManager {
    pub fn new(url: DatabaseUrl, busy_timeout: Duration) -> Self {
        Self { url, busy_timeout }
    }

    /// The database's URL without its password, for errors.
    pub fn redacted_url(&self) -> String {
        self.url.redacted()
    }

    pub fn establish(&self) -> Result<DbConnection, diesel::ConnectionError> {
        match &self.url {
            DatabaseUrl::Postgres(url) => PgConnection::establish(url).map(DbConnection::Postgres),
            DatabaseUrl::Sqlite(path) => {
                establish_sqlite(path, self.busy_timeout).map(DbConnection::Sqlite)
            }
        }
    }
}

/// A SQLite connection with the pragmas every connection needs.
pub fn establish_sqlite(
    path: &str,
    busy_timeout: Duration,
) -> Result<SqliteConnection, diesel::ConnectionError> {
    let mut conn = SqliteConnection::establish(path)?;
    // synchronous=FULL: an acknowledged withdrawal must survive a power cut.
    conn.batch_execute(&format!(
        "PRAGMA busy_timeout = {}; PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;",
        busy_timeout.as_millis()
    ))
    .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
    Ok(conn)
}

impl ManageConnection for ConnectionManager {
    type Connection = DbConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConnection, r2d2::Error> {
        self.establish().map_err(r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        use diesel::r2d2::R2D2Connection;
        conn.ping().map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        use diesel::r2d2::R2D2Connection;
        conn.is_broken()
    }
}

pub type Pool = r2d2::Pool<ConnectionManager>;
pub type PooledConnection = r2d2::PooledConnection<ConnectionManager>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_picks_the_backend() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://./data/x.db").unwrap(),
            DatabaseUrl::Sqlite("./data/x.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("postgres://u@h/db")
                .unwrap()
                .backend_name(),
            "postgres"
        );
        assert_eq!(
            DatabaseUrl::parse("postgresql://u@h/db")
                .unwrap()
                .backend_name(),
            "postgres"
        );
        assert!(DatabaseUrl::parse("mysql://h/db").is_err());
        assert!(DatabaseUrl::parse("./plain/path.db").is_err());
        assert!(DatabaseUrl::parse("sqlite://").is_err());
    }

    #[test]
    fn redacts_passwords() {
        let url = DatabaseUrl::parse("postgres://app:s3cret@db:5432/consentry").unwrap();
        assert_eq!(url.redacted(), "postgres://app:***@db:5432/consentry");
        let url = DatabaseUrl::parse("postgres://app@db/consentry").unwrap();
        assert_eq!(url.redacted(), "postgres://app@db/consentry");
    }

    #[test]
    fn redaction_keeps_tls_parameters_and_hides_secret_ones() {
        let url = DatabaseUrl::parse(
            "postgres://app:s3cret@db:5432/consentry?sslmode=verify-full&sslrootcert=/etc/ca@2.crt",
        )
        .unwrap();
        assert_eq!(
            url.redacted(),
            "postgres://app:***@db:5432/consentry?sslmode=verify-full&sslrootcert=/etc/ca@2.crt"
        );
        // No user part, but an `@` and a `:` further on: nothing to hide there.
        let url = DatabaseUrl::parse("postgres://db:5432/c?sslkey=/k@x:1").unwrap();
        assert_eq!(url.redacted(), "postgres://db:5432/c?sslkey=/k@x:1");
        let url = DatabaseUrl::parse(
            "postgresql://app@db/c?password=s3cret&sslmode=require&sslpassword=k3y",
        )
        .unwrap();
        assert_eq!(
            url.redacted(),
            "postgresql://app@db/c?password=***&sslmode=require&sslpassword=***"
        );
        // A password holding an escaped `@`, and a host without a path.
        let url = DatabaseUrl::parse("postgres://app:p%40ss@db?sslmode=require").unwrap();
        assert_eq!(url.redacted(), "postgres://app:***@db?sslmode=require");
        // Unescaped `@` and `?` in a password.
        let url = DatabaseUrl::parse("postgres://app:p@s?s@db/c?sslmode=require").unwrap();
        assert_eq!(url.redacted(), "postgres://app:***@db/c?sslmode=require");
        // A query without a path, with an `@` in it.
        let url = DatabaseUrl::parse("postgres://db?password=s3cret&user=a@b").unwrap();
        assert_eq!(url.redacted(), "postgres://db?password=***&user=a@b");
    }
}
