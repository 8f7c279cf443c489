//! Database connections: SQLite embedded, PostgreSQL in cluster mode, each
//! service with its own migrations.
//!
//! - [`Db`] is a connection pool to one database, either backend, opened from
//!   a URL ([`Db::connect`]: `sqlite:PATH` or `postgres://…`) or a SQLite
//!   file ([`Db::sqlite_file`]). Services write their queries once with
//!   `sqlx::query(..).bind(..)` (parameterised, `$1`-style placeholders work
//!   in both backends) and match on [`Db`] where the SQL must differ.
//! - [`Migrations`] holds one service's migrations for each backend (from
//!   `sqlx::migrate!` in the service's crate, under
//!   `migrations/<service>/{sqlite,postgres}/`); [`Db::migrate`] runs the
//!   ones for the backend in use.
//! - [`DbError`] is the crate's one error type; URLs in it are redacted
//!   ([`redact_url`]).
//! - `testing` (cargo feature `testing`): a fresh, uniquely named PostgreSQL
//!   database or SQLite file per test.
//!
//! # Several services, one database
//!
//! In cluster mode several services share one PostgreSQL database (and the
//! embedded node may share one SQLite file). Two things keep them apart:
//!
//! - **Migration bookkeeping.** sqlx records applied migrations in a table,
//!   `_sqlx_migrations` by default; two services using that one table would
//!   each see the other's migrations as unknown ("previously applied but
//!   missing") and refuse to start. sqlx 0.9's
//!   `Migrator::dangerous_set_table_name` renames it, so [`Migrations::new`]
//!   gives every service its own table, `_sqlx_migrations_<service>` (e.g.
//!   `_sqlx_migrations_pool`), in both backends. The migrations of different
//!   services still run one at a time: sqlx takes a PostgreSQL advisory lock
//!   keyed on the database name while migrating.
//! - **Tables.** Every service prefixes its tables with its name
//!   (`pool_peers`, `pool_endpoints`), so all services can live in the
//!   default schema without a `search_path` per service.
//!
//! # Bounds
//!
//! Pool sizes, the acquire timeout, the connect timeout and SQLite's busy
//! timeout are the named constants below. [`Db::connect`] opens one
//! connection before returning, within [`CONNECT_TIMEOUT`]: a database that is
//! down yields [`DbError::Connect`] or [`DbError::ConnectTimeout`] at startup,
//! not a service that hangs.

mod error;
mod migrations;
mod url;

#[cfg(feature = "testing")]
pub mod testing;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};

pub use error::DbError;
pub use migrations::{MAX_SERVICE_NAME_LEN, MIGRATIONS_TABLE_PREFIX, Migrations};
pub use url::redact_url;

/// Connections in a SQLite pool. In WAL mode readers run alongside the one
/// writer, but writers take turns on the file lock: more connections than a
/// small machine has cores would only queue inside SQLite instead of here.
pub const SQLITE_MAX_CONNECTIONS: u32 = 4;

/// Connections in a PostgreSQL pool, per service replica. Several services,
/// each with replicas, share one server whose default `max_connections` is
/// 100; ten each leaves room for a handful of services times a few replicas
/// plus administration.
pub const POSTGRES_MAX_CONNECTIONS: u32 = 10;

/// How long a query waits for a free pooled connection (or for a new one to
/// open) before failing with `sqlx::Error::PoolTimedOut`. Long enough to ride
/// out a burst; short enough that the caller's request fails before its own
/// client gives up.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long [`Db::connect`] waits for its first connection. A server that is
/// down (or a firewall that drops packets) makes startup fail with
/// [`DbError::ConnectTimeout`] after this long instead of hanging.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A PostgreSQL connection idle this long is closed, so that a quiet service
/// does not hold server connection slots that busier ones could use.
pub const POSTGRES_IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// How long a SQLite statement waits for another connection's write lock
/// before failing with "database is locked". Writes are short; this only
/// matters under contention, where waiting beats failing.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The `application_name` PostgreSQL shows in `pg_stat_activity` when the
/// URL does not set one.
pub const POSTGRES_APPLICATION_NAME: &str = "skywire";

/// Which database a [`Db`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// SQLite: one file, embedded mode.
    Sqlite,
    /// PostgreSQL: a server, cluster mode.
    Postgres,
}

/// A connection pool to the service's database. Cloning is cheap and shares
/// the pool.
#[derive(Clone, Debug)]
pub enum Db {
    /// A pool of connections to a SQLite file (WAL, foreign keys on).
    Sqlite(sqlx::SqlitePool),
    /// A pool of connections to a PostgreSQL database.
    Postgres(sqlx::PgPool),
}

impl Db {
    /// Opens a pool to the database at `url`, with one connection open:
    ///
    /// - `sqlite:PATH` or `sqlite://PATH` (relative), `sqlite:///PATH`
    ///   (absolute): the file is created if missing (its directory must
    ///   exist), in WAL mode with foreign keys enforced and a busy timeout
    ///   of [`SQLITE_BUSY_TIMEOUT`]. In-memory databases are refused: every
    ///   pooled connection would see its own empty database.
    /// - `postgres://` or `postgresql://` URLs as `PgConnectOptions` parses
    ///   them.
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        let url_redacted = redact_url(url);
        if url.starts_with("sqlite:") {
            if url.contains(":memory:") || url.contains("mode=memory") {
                return Err(DbError::UnsupportedUrl { url_redacted });
            }
            let options =
                SqliteConnectOptions::from_str(url).map_err(|source| DbError::Connect {
                    url_redacted: url_redacted.clone(),
                    source,
                })?;
            open_sqlite(options, url_redacted).await
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url).map_err(|source| DbError::Connect {
                url_redacted: url_redacted.clone(),
                source,
            })?;
            open_postgres(options, url_redacted).await
        } else {
            Err(DbError::UnsupportedUrl { url_redacted })
        }
    }

    /// Opens a pool to the SQLite file at `path`, created if missing (its
    /// directory must exist); same settings as a `sqlite:` URL in
    /// [`Db::connect`].
    pub async fn sqlite_file(path: &Path) -> Result<Db, DbError> {
        let options = SqliteConnectOptions::new().filename(path);
        open_sqlite(options, path.display().to_string()).await
    }

    /// Runs `migrations`' pending migrations for this backend, recording them
    /// in the service's own table (`_sqlx_migrations_<service>`). Idempotent:
    /// migrations already applied are checked (a changed one is an error)
    /// and skipped.
    pub async fn migrate(&self, migrations: &Migrations) -> Result<(), DbError> {
        migrations.validate()?;
        let result = match self {
            Db::Sqlite(pool) => migrations.sqlite.run(pool).await,
            Db::Postgres(pool) => migrations.postgres.run(pool).await,
        };
        result.map_err(|source| DbError::Migrate {
            service: migrations.service().to_owned(),
            backend: self.backend(),
            source,
        })?;
        tracing::debug!(
            service = migrations.service(),
            backend = ?self.backend(),
            "migrations applied"
        );
        Ok(())
    }

    /// Checks that the database answers (`SELECT 1`), for readiness probes.
    /// Fails after at most [`ACQUIRE_TIMEOUT`] if no connection is available.
    pub async fn ping(&self) -> Result<(), DbError> {
        match self {
            Db::Sqlite(pool) => {
                sqlx::query("SELECT 1").execute(pool).await?;
            }
            Db::Postgres(pool) => {
                sqlx::query("SELECT 1").execute(pool).await?;
            }
        }
        Ok(())
    }

    /// Which backend this pool talks to.
    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Closes the pool: waits for checked-out connections to come back, then
    /// closes every connection. Queries on any clone fail afterwards.
    pub async fn close(&self) {
        match self {
            Db::Sqlite(pool) => pool.close().await,
            Db::Postgres(pool) => pool.close().await,
        }
    }
}

/// Opens a SQLite pool with this crate's settings on top of `options`.
async fn open_sqlite(options: SqliteConnectOptions, url_redacted: String) -> Result<Db, DbError> {
    let options = options
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // With WAL, NORMAL loses at most the last transactions on power loss,
        // never consistency; FULL would fsync on every commit.
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(SQLITE_BUSY_TIMEOUT);
    let pool = SqlitePoolOptions::new()
        .max_connections(SQLITE_MAX_CONNECTIONS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        // A connection to a local file does not go stale the way a socket
        // does: the ping sqlx sends on every acquire tests nothing and costs a
        // round trip to the connection's worker thread per query.
        .test_before_acquire(false)
        .connect_with(options);
    let pool = match tokio::time::timeout(CONNECT_TIMEOUT, pool).await {
        Ok(Ok(pool)) => pool,
        Ok(Err(source)) => {
            return Err(DbError::Connect {
                url_redacted,
                source,
            });
        }
        Err(_) => {
            return Err(DbError::ConnectTimeout {
                url_redacted,
                timeout: CONNECT_TIMEOUT,
            });
        }
    };
    tracing::debug!(url = %url_redacted, "SQLite database open");
    Ok(Db::Sqlite(pool))
}

/// Opens a PostgreSQL pool with this crate's settings on top of `options`.
///
/// One connection is opened first, on its own, within [`CONNECT_TIMEOUT`]:
/// the pool would retry a refused connection until its acquire timeout and
/// then report only "pool timed out", whereas this reports the server's own
/// error (refused, authentication failed, no such database).
async fn open_postgres(options: PgConnectOptions, url_redacted: String) -> Result<Db, DbError> {
    let options = if options.get_application_name().is_none() {
        options.application_name(POSTGRES_APPLICATION_NAME)
    } else {
        options
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
        Ok(Ok(conn)) => {
            // The probe only had to succeed; the pool opens its own.
            if let Err(error) = conn.close().await {
                tracing::debug!(%error, "closing the probe connection");
            }
        }
        Ok(Err(source)) => {
            return Err(DbError::Connect {
                url_redacted,
                source,
            });
        }
        Err(_) => {
            return Err(DbError::ConnectTimeout {
                url_redacted,
                timeout: CONNECT_TIMEOUT,
            });
        }
    }
    let pool = PgPoolOptions::new()
        .max_connections(POSTGRES_MAX_CONNECTIONS)
        .min_connections(0)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .idle_timeout(POSTGRES_IDLE_TIMEOUT)
        .connect_lazy_with(options);
    tracing::debug!(url = %url_redacted, "PostgreSQL pool open");
    Ok(Db::Postgres(pool))
}

/// Runs `$body` in a write transaction on `$db` (a [`Db`]), with `$q` naming
/// the backend's query module (`$sqlite` or `$postgres`, modules in scope
/// that define the same functions for each backend) and `$conn` its
/// connection (`&mut sqlx::SqliteConnection` or `&mut sqlx::PgConnection`);
/// commits if the body returns `Ok`, rolls back otherwise. Errors of the
/// body and of sqlx convert into the caller's error type with `?`.
///
/// SQLite transactions start with `BEGIN IMMEDIATE`: a deferred transaction
/// that read first could not upgrade while another connection writes, and
/// would fail instead of waiting out the busy timeout.
#[macro_export]
macro_rules! write_tx {
    ($db:expr, $sqlite:ident, $postgres:ident, |$q:ident, $conn:ident| $body:expr) => {
        match $db {
            $crate::Db::Sqlite(pool) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let out = {
                    use $sqlite as $q;
                    let $conn: &mut ::sqlx::SqliteConnection = &mut tx;
                    $body
                }?;
                tx.commit().await?;
                Ok(out)
            }
            $crate::Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let out = {
                    use $postgres as $q;
                    let $conn: &mut ::sqlx::PgConnection = &mut tx;
                    $body
                }?;
                tx.commit().await?;
                Ok(out)
            }
        }
    };
}

/// Runs `$body` (autocommitted statements) on a connection `$conn` from
/// `$db`'s pool, with `$q` naming the backend's query module as in
/// [`write_tx!`]; the body's value is the result, and failing to get a
/// connection is an `Err` converted with `Into`.
#[macro_export]
macro_rules! with_conn {
    ($db:expr, $sqlite:ident, $postgres:ident, |$q:ident, $conn:ident| $body:expr) => {
        match $db {
            $crate::Db::Sqlite(pool) => match pool.acquire().await {
                Ok(mut c) => {
                    use $sqlite as $q;
                    let $conn: &mut ::sqlx::SqliteConnection = &mut c;
                    $body
                }
                Err(e) => Err(::core::convert::Into::into(e)),
            },
            $crate::Db::Postgres(pool) => match pool.acquire().await {
                Ok(mut c) => {
                    use $postgres as $q;
                    let $conn: &mut ::sqlx::PgConnection = &mut c;
                    $body
                }
                Err(e) => Err(::core::convert::Into::into(e)),
            },
        }
    };
}
