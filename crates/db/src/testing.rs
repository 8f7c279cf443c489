//! Fresh databases for integration tests (cargo feature `testing`): a
//! uniquely named PostgreSQL database per call on a real server, or a SQLite
//! file. No mocks: tests run the same SQL as production.
//!
//! ```ignore
//! let (db, _url) = skywire_db::testing::fresh_postgres().await?;
//! db.migrate(&MyStore::migrations()).await?;
//! ```

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::url::{redact_url, with_database};
use crate::{CONNECT_TIMEOUT, Db, DbError};

/// The environment variable naming the PostgreSQL server (as a URL to a
/// database on it that the user can connect to, with `CREATEDB`) that
/// [`fresh_postgres`] creates databases on.
pub const TEST_DATABASE_URL_ENV: &str = "SKYWIRE_TEST_DATABASE_URL";

/// The server [`fresh_postgres`] uses when [`TEST_DATABASE_URL_ENV`] is
/// unset: the local one that `scripts/services.sh` starts, trust auth.
pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// What every test database's name starts with; the rest is
/// `<unix seconds>_<pid>_<counter>`.
pub const TEST_DATABASE_PREFIX: &str = "skywire_test_";

/// Test databases older than this are dropped by the next
/// [`fresh_postgres`] call, so that test runs do not pile up databases on
/// the server. Far longer than any test run.
pub const TEST_DATABASE_MAX_AGE: Duration = Duration::from_secs(60 * 60);

/// Makes names unique within the process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Creates an empty, uniquely named database on the server at
/// `$SKYWIRE_TEST_DATABASE_URL` (default [`DEFAULT_TEST_DATABASE_URL`]) and
/// returns a pool to it and its URL (the server URL with the new database's
/// name). The database is left behind for inspection; databases from earlier
/// runs older than [`TEST_DATABASE_MAX_AGE`] are dropped here, best effort.
pub async fn fresh_postgres() -> Result<(Db, String), DbError> {
    let server_url = std::env::var(TEST_DATABASE_URL_ENV)
        .unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_owned());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let name = format!(
        "{TEST_DATABASE_PREFIX}{}_{}_{}",
        now.as_secs(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );

    let mut admin = admin_connection(&server_url).await?;
    drop_old_test_databases(&mut admin, now).await;
    // `name` is ours: ASCII letters, digits and underscores only.
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut admin)
        .await?;
    if let Err(error) = admin.close().await {
        tracing::debug!(%error, "closing the admin connection");
    }

    let url = with_database(&server_url, &name);
    let db = Db::connect(&url).await?;
    Ok((db, url))
}

/// Opens a new SQLite database in a uniquely named file in `dir` (which must
/// exist; a `tempfile::TempDir` is the usual choice).
pub async fn fresh_sqlite(dir: &Path) -> Result<Db, DbError> {
    let name = format!(
        "test_{}_{}.sqlite3",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    Db::sqlite_file(&dir.join(name)).await
}

/// One connection to the server's administration database.
async fn admin_connection(server_url: &str) -> Result<PgConnection, DbError> {
    let url_redacted = redact_url(server_url);
    match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect(server_url)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(source)) => Err(DbError::Connect {
            url_redacted,
            source,
        }),
        Err(_) => Err(DbError::ConnectTimeout {
            url_redacted,
            timeout: CONNECT_TIMEOUT,
        }),
    }
}

/// Drops test databases created more than [`TEST_DATABASE_MAX_AGE`] before
/// `now`. Best effort: failures are only logged.
async fn drop_old_test_databases(admin: &mut PgConnection, now: Duration) {
    let names: Vec<String> =
        match sqlx::query_scalar("SELECT datname FROM pg_database WHERE starts_with(datname, $1)")
            .bind(TEST_DATABASE_PREFIX)
            .fetch_all(&mut *admin)
            .await
        {
            Ok(names) => names,
            Err(error) => {
                tracing::debug!(%error, "listing old test databases");
                return;
            }
        };
    let cutoff = now.saturating_sub(TEST_DATABASE_MAX_AGE).as_secs();
    for name in names {
        let created = name
            .strip_prefix(TEST_DATABASE_PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse::<u64>().ok());
        let safe = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !safe || created.is_none_or(|created| created >= cutoff) {
            continue;
        }
        let drop = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
        if let Err(error) = sqlx::query(AssertSqlSafe(drop)).execute(&mut *admin).await {
            tracing::debug!(%error, database = %name, "dropping an old test database");
        }
    }
}
