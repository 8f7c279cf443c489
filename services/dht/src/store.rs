//! The routing table on disk (`migrations/dht/{sqlite,postgres}/`): SQLite
//! embedded, PostgreSQL in cluster mode ([`skywire_db::Db`]).
//!
//! One table, `dht_contacts`: a row per contact (node id, the endpoint it
//! answered at, its place in its bucket). The service saves the whole table
//! every [`SAVE_INTERVAL`](crate::service::SAVE_INTERVAL) and at shutdown,
//! and on start pings the saved contacts for their current records, so a
//! restart does not need the bootstrap peers. At most
//! [`MAX_SAVED_CONTACTS`] rows; rows that do not parse are skipped.

use std::net::SocketAddr;

use skywire_db::{Db, Migrations};
use skywire_identity::PublicKey;

use crate::key::KEY_BITS;
use crate::table::{Contact, K};

/// The service name the migrations are recorded under
/// (`_sqlx_migrations_dht`).
pub const MIGRATIONS_SERVICE: &str = "dht";

/// Rows saved at most: a full table (k per bucket).
pub const MAX_SAVED_CONTACTS: usize = K * KEY_BITS;

/// What the store fails at.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The migrations could not run.
    #[error("migrations: {0}")]
    Migrations(#[from] skywire_db::DbError),
}

/// A saved contact: enough to ping it for its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// Its public key.
    pub node_id: PublicKey,
    /// Where it answered.
    pub endpoint: SocketAddr,
}

/// The routing table's rows.
#[derive(Debug, Clone)]
pub struct TableStore {
    db: Db,
}

impl TableStore {
    /// The store on `db` (migrated with [`TableStore::migrations`]).
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// The store's migrations for both backends.
    pub fn migrations() -> Migrations {
        Migrations::new(
            MIGRATIONS_SERVICE,
            sqlx::migrate!("../../migrations/dht/sqlite"),
            sqlx::migrate!("../../migrations/dht/postgres"),
        )
    }

    /// The database the store is on.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Replaces the saved table with `contacts` (in table order, at most
    /// [`MAX_SAVED_CONTACTS`]).
    pub async fn save(&self, contacts: &[Contact]) -> Result<(), StoreError> {
        let rows: Vec<(Vec<u8>, String)> = contacts
            .iter()
            .take(MAX_SAVED_CONTACTS)
            .map(|c| {
                (
                    c.record().node_id().to_bytes().to_vec(),
                    c.endpoint().to_string(),
                )
            })
            .collect();
        skywire_db::write_tx!(&self.db, sqlite_queries, postgres_queries, |q, conn| {
            q::replace(conn, &rows).await
        })
    }

    /// The saved contacts, in saved order.
    pub async fn load(&self) -> Result<Vec<Saved>, StoreError> {
        let rows =
            skywire_db::with_conn!(&self.db, sqlite_queries, postgres_queries, |q, conn| {
                q::all(conn).await
            })?;
        Ok(rows
            .into_iter()
            .filter_map(|(node_id, endpoint)| {
                let saved = Saved {
                    node_id: PublicKey::from_bytes(&node_id).ok()?,
                    endpoint: endpoint.parse().ok()?,
                };
                Some(saved)
            })
            .collect())
    }
}

/// The queries, written once, compiled for each backend (`Conn` is the
/// backend's connection type).
macro_rules! queries {
    () => {
        use super::{MAX_SAVED_CONTACTS, StoreError};

        /// Deletes every row and inserts `rows` with their positions.
        pub(super) async fn replace(
            conn: &mut Conn,
            rows: &[(Vec<u8>, String)],
        ) -> Result<(), StoreError> {
            sqlx::query("DELETE FROM dht_contacts")
                .execute(&mut *conn)
                .await?;
            // A few hundred rows per statement stays under both backends'
            // bind-parameter limits (3 per row).
            for (chunk_index, chunk) in rows.chunks(256).enumerate() {
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO dht_contacts (node_id, endpoint, position) ",
                );
                insert.push_values(
                    chunk.iter().enumerate(),
                    |mut row, (i, (node_id, endpoint))| {
                        let position = i64::try_from(chunk_index * 256 + i).unwrap_or(i64::MAX);
                        row.push_bind(node_id.as_slice())
                            .push_bind(endpoint.as_str())
                            .push_bind(position);
                    },
                );
                insert.build().execute(&mut *conn).await?;
            }
            Ok(())
        }

        /// Every row, in position order.
        pub(super) async fn all(conn: &mut Conn) -> Result<Vec<(Vec<u8>, String)>, StoreError> {
            let limit = i64::try_from(MAX_SAVED_CONTACTS).unwrap_or(i64::MAX);
            Ok(sqlx::query_as(
                "SELECT node_id, endpoint FROM dht_contacts ORDER BY position LIMIT $1",
            )
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?)
        }
    };
}

/// The queries on SQLite.
mod sqlite_queries {
    type Conn = sqlx::SqliteConnection;
    queries!();
}

/// The queries on PostgreSQL.
mod postgres_queries {
    type Conn = sqlx::PgConnection;
    queries!();
}
