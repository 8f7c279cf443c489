//! [`DbError`], the one error type of this crate.

use std::time::Duration;

use crate::Backend;

/// What can go wrong opening, migrating or querying a database.
///
/// URLs in errors are always redacted ([`crate::redact_url`]): a password
/// never reaches a log line through this type.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL names no backend this crate knows: it must start with
    /// `sqlite:` or `postgres://` (or `postgresql://`).
    #[error("unsupported database URL {url_redacted:?}: expected sqlite:PATH or postgres://…")]
    UnsupportedUrl {
        /// The URL, password removed.
        url_redacted: String,
    },

    /// The URL could not be parsed, or the first connection was refused by
    /// the server (authentication, unknown database, unreachable host…).
    #[error("cannot connect to {url_redacted}: {source}")]
    Connect {
        /// The URL (or SQLite path), password removed.
        url_redacted: String,
        /// What sqlx reported.
        #[source]
        source: sqlx::Error,
    },

    /// The first connection did not complete within `timeout`
    /// ([`crate::CONNECT_TIMEOUT`]): the server is down or unreachable.
    #[error(
        "cannot connect to {url_redacted}: no connection after {timeout:?} (is the database up?)"
    )]
    ConnectTimeout {
        /// The URL (or SQLite path), password removed.
        url_redacted: String,
        /// How long the connection attempt was given.
        timeout: Duration,
    },

    /// A service name given to [`crate::Migrations::new`] cannot name a
    /// migrations table.
    #[error(
        "invalid service name {service:?} for migrations: 1 to {max} characters of a-z, 0-9 and _, starting with a letter"
    )]
    InvalidServiceName {
        /// The name as given.
        service: String,
        /// The longest name accepted ([`crate::MAX_SERVICE_NAME_LEN`]).
        max: usize,
    },

    /// Running a service's migrations failed (bad SQL, a previously applied
    /// migration changed, a dirty migration left by a crash…).
    #[error("migrating {service} on {backend:?}: {source}")]
    Migrate {
        /// The service whose migrations ran.
        service: String,
        /// Which backend's migrations ran.
        backend: Backend,
        /// What sqlx reported.
        #[source]
        source: sqlx::migrate::MigrateError,
    },

    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] sqlx::Error),
}
