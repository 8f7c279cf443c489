//! [`Migrations`]: one service's schema history, for each backend.

use sqlx::migrate::Migrator;

use crate::DbError;

/// The longest service name [`Migrations::new`] accepts: PostgreSQL
/// identifiers hold 63 bytes, and `_sqlx_migrations_` takes 17 of them.
pub const MAX_SERVICE_NAME_LEN: usize = 40;

/// What every service's migrations table name starts with; the service name
/// follows (`_sqlx_migrations_pool`).
pub const MIGRATIONS_TABLE_PREFIX: &str = "_sqlx_migrations_";

/// One service's migrations for each backend, from
/// `sqlx::migrate!("../../migrations/<service>/<backend>")` in that
/// service's crate:
///
/// ```ignore
/// Migrations::new(
///     "pool",
///     sqlx::migrate!("../../migrations/pool/sqlite"),
///     sqlx::migrate!("../../migrations/pool/postgres"),
/// )
/// ```
///
/// [`Migrations::new`] points both migrators at the service's own
/// bookkeeping table, `_sqlx_migrations_<service>`, so that services sharing
/// one database never see each other's migration history (see the crate
/// docs).
#[derive(Debug)]
pub struct Migrations {
    /// The migrations for SQLite (embedded mode).
    pub sqlite: Migrator,
    /// The migrations for PostgreSQL (cluster mode).
    pub postgres: Migrator,
    /// The service the migrations belong to; names the bookkeeping table.
    service: &'static str,
}

impl Migrations {
    /// `service`'s migrations, each backend's recorded in table
    /// `_sqlx_migrations_<service>`.
    ///
    /// `service` must be 1 to [`MAX_SERVICE_NAME_LEN`] characters of `a-z`,
    /// `0-9` and `_`, starting with a letter; [`crate::Db::migrate`] refuses
    /// (with [`DbError::InvalidServiceName`]) to run migrations under any
    /// other name.
    pub fn new(service: &'static str, mut sqlite: Migrator, mut postgres: Migrator) -> Self {
        let table = format!("{MIGRATIONS_TABLE_PREFIX}{service}");
        sqlite.dangerous_set_table_name(table.clone());
        postgres.dangerous_set_table_name(table);
        Self {
            sqlite,
            postgres,
            service,
        }
    }

    /// The service these migrations belong to.
    pub fn service(&self) -> &'static str {
        self.service
    }

    /// The table that records which of these migrations ran:
    /// `_sqlx_migrations_<service>`.
    pub fn table_name(&self) -> String {
        format!("{MIGRATIONS_TABLE_PREFIX}{}", self.service)
    }

    /// Checks the service name (it becomes part of an SQL identifier).
    pub(crate) fn validate(&self) -> Result<(), DbError> {
        let s = self.service;
        let ok = !s.is_empty()
            && s.len() <= MAX_SERVICE_NAME_LEN
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(())
        } else {
            Err(DbError::InvalidServiceName {
                service: s.to_owned(),
                max: MAX_SERVICE_NAME_LEN,
            })
        }
    }
}
