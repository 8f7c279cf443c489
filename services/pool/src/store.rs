//! The pool's peer store: every peer the pool knows, where to dial it, how
//! well it has behaved, and who is banned, in the service's database (SQLite
//! embedded, PostgreSQL in cluster mode; [`skywire_db::Db`]).
//!
//! Two tables (`migrations/pool/{sqlite,postgres}/`, same meaning in both):
//!
//! - `pool_peers`: one row per peer, keyed by its 33-byte node id, with its
//!   Skycoin address (unique), the services and user agent of its last Hello,
//!   first/last contact and last dial attempt (unix ms, 0 = never), the
//!   number of consecutive failed dials, a score (+1 per connection, −1 per
//!   failed dial, within [`MIN_SCORE`]..=[`MAX_SCORE`]), an optional ban
//!   (until when, why) and `keep` (an operator asked to keep this peer
//!   connected: admin API or `--connect`).
//! - `pool_endpoints`: up to [`MAX_ENDPOINTS_PER_PEER`] dialable endpoints
//!   per peer, most recently added or confirmed first; the oldest are dropped
//!   beyond that.
//!
//! Everything is bounded: at most [`MAX_PEERS`] peers (storing a new one in
//! a full store first evicts the worst-scored, least recently seen peer that
//! is neither kept nor banned; failing that, the non-kept peer whose ban ends
//! first; failing that, [`StoreError::Full`]), at most [`MAX_ENDPOINTS_PER_PEER`] endpoints per peer, and every
//! string has a length cap; input over a cap is refused with
//! [`StoreError::Invalid`]. Rows are checked when read back: a corrupt row is
//! a [`StoreError::Corrupt`], never a panic.
//!
//! Writes that touch several rows run in one transaction (`BEGIN IMMEDIATE`
//! on SQLite, so concurrent writers queue on the busy timeout instead of
//! failing; on PostgreSQL an advisory lock serialises evictions so
//! concurrent inserts cannot overshoot [`MAX_PEERS`]).

use skywire_db::{Db, Migrations};

/// The service name the store's migrations are recorded under
/// (`_sqlx_migrations_pool`).
pub const MIGRATIONS_SERVICE: &str = "pool";

/// Peers stored at most. A node needs a few hundred good peers; this keeps a
/// deep reserve for redialing after an outage while bounding the database
/// (a row is well under 1 KiB, so ~100 MB at most with endpoints and indexes).
pub const MAX_PEERS: u64 = 100_000;

/// Endpoints kept per peer: enough for IPv4, IPv6 and a few NAT mappings or
/// DNS names; a peer advertising more than this is either misconfigured or
/// trying to make us dial third parties.
pub const MAX_ENDPOINTS_PER_PEER: usize = 8;

/// Longest endpoint accepted, in bytes: a 253-byte DNS name, `:` and a
/// 5-digit port fit, with room for a scheme prefix.
pub const MAX_ENDPOINT_LEN: usize = 260;

/// Longest address accepted, in bytes. Skycoin addresses are base58 of 25
/// bytes, so at most 35 characters; the margin is for future versions.
pub const MAX_ADDRESS_LEN: usize = 64;

/// Services stored per peer at most (names from its Hello).
pub const MAX_SERVICES: usize = 32;

/// Longest service name accepted, in bytes (`pool/1`, `messaging/1`, …).
pub const MAX_SERVICE_NAME_LEN: usize = 64;

/// Longest user agent accepted, in bytes. Generous for `skywire/0.1.0 (os; arch)`
/// style strings; anything longer is noise that would bloat every row.
pub const MAX_USER_AGENT_LEN: usize = 256;

/// Longest ban reason accepted, in bytes: a sentence for an operator.
pub const MAX_BAN_REASON_LEN: usize = 256;

/// The highest score: +1 per successful connection stops here, so a long-lived
/// peer that goes bad loses its rank within [`MAX_SCORE`] failed dials.
pub const MAX_SCORE: i64 = 1_000;

/// The lowest score: −1 per failed dial stops here, so a peer that comes back
/// recovers within a bounded number of connections.
pub const MIN_SCORE: i64 = -1_000;

/// Consecutive failures stop counting here: beyond it the number says
/// nothing more, and it stays far from `u32::MAX`.
pub const MAX_FAILURES: u32 = 1_000_000;

/// Most rows [`PeerStore::list`] and [`PeerStore::dial_candidates`] return
/// in one call; larger limits are lowered to this.
pub const MAX_LIST_LIMIT: u32 = 10_000;

/// The PostgreSQL advisory lock (transaction-scoped) held while checking the
/// peer count and evicting, so that concurrent inserts of new peers cannot
/// overshoot the cap. Any fixed number unlikely to clash: "skywpool" in ASCII.
const EVICTION_LOCK_KEY: i64 = 0x736b_7977_706f_6f6c;

/// Now, in milliseconds since the Unix epoch, as the store's columns hold
/// them (`i64`, SQL's `BIGINT`): [`skywire_record::now_ms`], saturating at
/// `i64::MAX` (some 292 million years away). Every time the store is given
/// (`now_ms` arguments, ban ends) is on this clock.
pub fn now_ms() -> i64 {
    i64::try_from(skywire_record::now_ms()).unwrap_or(i64::MAX)
}

/// What the store refuses or fails at.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An argument is out of bounds or malformed; nothing was written.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The argument at fault (`address`, `endpoint`, `services`, …).
        field: &'static str,
        /// What is wrong with it, with the numbers involved.
        reason: String,
    },

    /// The peer is not in the store.
    #[error("unknown peer {node_id}")]
    NotFound {
        /// The node id, hex.
        node_id: String,
    },

    /// The store holds `max` peers and every one of them is kept: there is
    /// no peer to evict for a new one.
    #[error("peer store full: all {max} stored peers are kept")]
    Full {
        /// The cap ([`MAX_PEERS`] unless set by [`PeerStore::with_max_peers`]).
        max: u64,
    },

    /// A row read back does not hold what the store writes (e.g. a node id
    /// that is not 33 bytes): the database was changed behind its back.
    #[error("corrupt peer row: {field}: {reason}")]
    Corrupt {
        /// The column at fault.
        field: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The database failed.
    #[error("peer store database error: {0}")]
    Db(#[from] sqlx::Error),
}

/// A peer as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPeer {
    /// The peer's node id: its compressed secp256k1 public key.
    pub node_id: [u8; 33],
    /// Its Skycoin address, derived from the node id.
    pub address: String,
    /// Where to dial it, most recently added or confirmed first; at most
    /// [`MAX_ENDPOINTS_PER_PEER`].
    pub endpoints: Vec<String>,
    /// The services it advertised when last connected.
    pub services: Vec<String>,
    /// Its user agent when last connected (empty if never connected).
    pub user_agent: String,
    /// When it was first connected, unix ms; 0 = never.
    pub first_seen_ms: i64,
    /// When it was last connected, unix ms; 0 = never.
    pub last_seen_ms: i64,
    /// When it was last dialed, unix ms; 0 = never.
    pub last_attempt_ms: i64,
    /// Consecutive failed dials since the last connection.
    pub failures: u32,
    /// +1 per connection, −1 per failed dial, within
    /// [`MIN_SCORE`]..=[`MAX_SCORE`].
    pub score: i64,
    /// Banned until this unix ms (a past value means the ban has expired).
    pub banned_until_ms: Option<i64>,
    /// Why it was banned.
    pub ban_reason: Option<String>,
    /// An operator asked to keep it connected: never evicted nor forgotten,
    /// dialed first.
    pub keep: bool,
}

impl StoredPeer {
    /// Whether the peer is banned at `now_ms`.
    pub fn is_banned(&self, now_ms: i64) -> bool {
        self.banned_until_ms.is_some_and(|until| until > now_ms)
    }
}

/// The pool's peer store. Cloning is cheap and shares the database pool.
#[derive(Clone, Debug)]
pub struct PeerStore {
    db: Db,
    max_peers: u64,
}

impl PeerStore {
    /// A store on `db`, which must have been migrated with
    /// [`PeerStore::migrations`], holding at most [`MAX_PEERS`] peers.
    pub fn new(db: Db) -> Self {
        Self::with_max_peers(db, MAX_PEERS)
    }

    /// A store holding at most `max_peers` peers (at least 1), for tests and
    /// small deployments.
    pub fn with_max_peers(db: Db, max_peers: u64) -> Self {
        Self {
            db,
            max_peers: max_peers.max(1),
        }
    }

    /// The store's migrations, to run with [`Db::migrate`] before use.
    pub fn migrations() -> Migrations {
        Migrations::new(
            MIGRATIONS_SERVICE,
            sqlx::migrate!("../../migrations/pool/sqlite"),
            sqlx::migrate!("../../migrations/pool/postgres"),
        )
    }

    /// The database the store is on.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Stores the peer if unknown (evicting one if the store is full), adds
    /// `endpoint` as its most recent one, and sets `keep` if `keep` is true
    /// (never clears it: see [`PeerStore::set_keep`]).
    pub async fn add(
        &self,
        node_id: &[u8; 33],
        address: &str,
        endpoint: Option<&str>,
        keep: bool,
    ) -> Result<(), StoreError> {
        check_address(address)?;
        if let Some(endpoint) = endpoint {
            check_endpoint(endpoint)?;
        }
        let max_peers = self.max_peers;
        skywire_db::write_tx!(&self.db, sqlite_queries, postgres_queries, |q, conn| {
            q::ensure_peer(conn, node_id, address, max_peers).await?;
            if keep {
                q::set_keep(conn, node_id, true).await?;
            }
            if let Some(endpoint) = endpoint {
                q::touch_endpoint(conn, node_id, endpoint, None).await?;
                q::prune_endpoints(conn, node_id).await?;
            }
            Ok::<_, StoreError>(())
        })
    }

    /// Records a connection to the peer at `now_ms`: stores it if unknown,
    /// sets its last (and if unset, first) contact, clears its failures,
    /// raises its score by 1 (up to [`MAX_SCORE`]), replaces its services and
    /// user agent, and merges `endpoints` in as its most recent ones (the
    /// first of them first), marked as working at `now_ms`.
    ///
    /// At most [`MAX_ENDPOINTS_PER_PEER`] endpoints and [`MAX_SERVICES`]
    /// services: the caller truncates what a peer advertises.
    pub async fn connected(
        &self,
        node_id: &[u8; 33],
        address: &str,
        endpoints: &[String],
        services: &[String],
        user_agent: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        check_address(address)?;
        if endpoints.len() > MAX_ENDPOINTS_PER_PEER {
            return Err(StoreError::Invalid {
                field: "endpoints",
                reason: format!(
                    "{} endpoints, at most {MAX_ENDPOINTS_PER_PEER}",
                    endpoints.len()
                ),
            });
        }
        for endpoint in endpoints {
            check_endpoint(endpoint)?;
        }
        let services = encode_services(services)?;
        check_text("user_agent", user_agent, MAX_USER_AGENT_LEN)?;
        let max_peers = self.max_peers;
        skywire_db::write_tx!(&self.db, sqlite_queries, postgres_queries, |q, conn| {
            q::ensure_peer(conn, node_id, address, max_peers).await?;
            q::record_connection(conn, node_id, &services, user_agent, now_ms).await?;
            // The first endpoint given ends up the most recent.
            for endpoint in endpoints.iter().rev() {
                q::touch_endpoint(conn, node_id, endpoint, Some(now_ms)).await?;
            }
            q::prune_endpoints(conn, node_id).await?;
            Ok::<_, StoreError>(())
        })
    }

    /// Records a failed dial at `now_ms`: one more consecutive failure (up to
    /// [`MAX_FAILURES`]), score −1 (down to [`MIN_SCORE`]). Returns the
    /// consecutive failures now; [`StoreError::NotFound`] if the peer is
    /// unknown.
    pub async fn dial_failed(&self, node_id: &[u8; 33], now_ms: i64) -> Result<u32, StoreError> {
        let failures =
            skywire_db::with_conn!(&self.db, sqlite_queries, postgres_queries, |q, conn| {
                q::dial_failed(conn, node_id, now_ms).await
            })?;
        let failures = failures.ok_or_else(|| not_found(node_id))?;
        u32::try_from(failures).map_err(|_| StoreError::Corrupt {
            field: "failures".to_owned(),
            reason: format!("{failures} is not a count"),
        })
    }

    /// Records a dial attempt at `now_ms` (its outcome comes later, through
    /// [`PeerStore::connected`] or [`PeerStore::dial_failed`]);
    /// [`StoreError::NotFound`] if the peer is unknown.
    pub async fn dial_attempted(&self, node_id: &[u8; 33], now_ms: i64) -> Result<(), StoreError> {
        let updated =
            skywire_db::with_conn!(&self.db, sqlite_queries, postgres_queries, |q, conn| {
                q::dial_attempted(conn, node_id, now_ms).await
            })?;
        if updated {
            Ok(())
        } else {
            Err(not_found(node_id))
        }
    }

    /// The peer with this node id, if stored.
    pub async fn get(&self, node_id: &[u8; 33]) -> Result<Option<StoredPeer>, StoreError> {
        let rows =
            skywire_db::with_conn!(&self.db, sqlite_queries, postgres_queries, |q, conn| {
                q::get(conn, node_id).await
            })?;
        Ok(group_rows(rows)?.into_iter().next())
    }

    /// The peer with this Skycoin address, if stored (`None` for a string
    /// that cannot be a stored address).
    pub async fn by_address(&self, address: &str) -> Result<Option<StoredPeer>, StoreError> {
        if address.len() > MAX_ADDRESS_LEN {
            return Ok(None);
        }
        let rows =
            skywire_db::with_conn!(&self.db, sqlite_queries, postgres_queries, |q, conn| {
                q::by_address(conn, address).await
            })?;
        Ok(group_rows(rows)?.into_iter().next())
    }

    /// Up to `limit` peers (at most [`MAX_LIST_LIMIT`]), best first: by score,
    /// then most recently seen.
    pub async fn list(&self, limit: u32) -> Result<Vec<StoredPeer>, StoreError> {
        let limit = i64::from(limit.min(MAX_LIST_LIMIT));
        let rows =
            skywire_db::with_conn!(&self.db, sqlite_queries, postgres_queries, |q, conn| {
                q::list(conn, limit).await
            })?;
        group_rows(rows)
    }

    /// Bans the peer until `until_ms` (unix ms) for `reason`, storing it if
    /// unknown (evicting one if the store is full). Replaces any earlier ban,
    /// longer or shorter.
    pub async fn ban(
        &self,
        node_id: &[u8; 33],
        address: &str,
        until_ms: i64,
        reason: &str,
    ) -> Result<(), StoreError> {
        check_address(address)?;
        check_text("ban_reason", reason, MAX_BAN_REASON_LEN)?;
        let max_peers = self.max_peers;
        skywire_db::write_tx!(&self.db, sqlite_queries, postgres_queries, |q, conn| {
            q::ensure_peer(conn, node_id, address, max_peers).await?;
            q::ban(conn, node_id, until_ms, reason).await?;
            Ok::<_, StoreError>(())
        })
    }

    /// Lifts the peer's ban, expired or not. Returns whether it had one.
    pub async fn unban(&self, node_id: &[u8; 33]) -> Result<bool, StoreError> {
        skywire_db::with_conn!(&self.db, sqlite_queries, postgres_queries, |q, conn| {
            q::unban(conn, node_id).await
        })
    }

    /// The bans in force at `now_ms` (ending after it): node id, until when
    /// (unix ms), why; longest first. At most [`MAX_PEERS`] of them, as every
    /// ban is a stored peer.
    pub async fn active_bans(
        &self,
        now_ms: i64,
    ) -> Result<Vec<([u8; 33], i64, String)>, StoreError> {
        let rows =
            skywire_db::with_conn!(&self.db, sqlite_queries, postgres_queries, |q, conn| {
                q::active_bans(conn, now_ms).await
            })?;
        rows.into_iter()
            .map(|(node_id, until, reason)| {
                Ok((
                    node_id_from_row(&node_id)?,
                    until,
                    reason.unwrap_or_default(),
                ))
            })
            .collect()
    }

    /// Sets or clears the peer's `keep` flag. Returns whether the peer is
    /// stored (nothing happens otherwise).
    pub async fn set_keep(&self, node_id: &[u8; 33], keep: bool) -> Result<bool, StoreError> {
        skywire_db::with_conn!(&self.db, sqlite_queries, postgres_queries, |q, conn| {
            q::set_keep(conn, node_id, keep).await
        })
    }

    /// Up to `limit` peers (at most [`MAX_LIST_LIMIT`]) worth dialing at
    /// `now_ms`: not banned then, with at least one endpoint; kept peers
    /// first, then by score (highest first), consecutive failures (fewest
    /// first) and last attempt (oldest first). Backoff between attempts is
    /// the caller's.
    pub async fn dial_candidates(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<StoredPeer>, StoreError> {
        let limit = i64::from(limit.min(MAX_LIST_LIMIT));
        let rows =
            skywire_db::with_conn!(&self.db, sqlite_queries, postgres_queries, |q, conn| {
                q::dial_candidates(conn, now_ms, limit).await
            })?;
        group_rows(rows)
    }

    /// Forgets peers not kept, not connected since before `older_than_ms`
    /// (or never) and with at least `max_failures` consecutive failed dials,
    /// along with their endpoints. A peer whose ban ends at or after
    /// `older_than_ms` is remembered (so is its ban). Returns how many peers
    /// were forgotten.
    pub async fn forget_stale(
        &self,
        older_than_ms: i64,
        max_failures: u32,
    ) -> Result<u64, StoreError> {
        skywire_db::with_conn!(&self.db, sqlite_queries, postgres_queries, |q, conn| {
            q::forget_stale(conn, older_than_ms, i64::from(max_failures)).await
        })
    }

    /// How many peers are stored.
    pub async fn count(&self) -> Result<u64, StoreError> {
        let count =
            skywire_db::with_conn!(&self.db, sqlite_queries, postgres_queries, |q, conn| {
                q::count(conn).await
            })?;
        u64::try_from(count).map_err(|_| StoreError::Corrupt {
            field: "count".to_owned(),
            reason: format!("{count} rows"),
        })
    }
}

/// The `SELECT` for peers with their endpoints: `$inner` filters, orders and
/// limits `pool_peers`; `$outer_order` repeats the order (each peer's rows
/// must be adjacent: the order ends with the node id), endpoints most recent
/// first within a peer.
macro_rules! select_peers {
    ($inner:literal, $outer_order:literal) => {
        concat!(
            "SELECT p.node_id, p.address, p.services, p.user_agent, p.first_seen_ms, ",
            "p.last_seen_ms, p.last_attempt_ms, p.failures, p.score, p.banned_until_ms, ",
            "p.ban_reason, p.keep, e.endpoint ",
            "FROM (SELECT * FROM pool_peers ",
            $inner,
            ") AS p LEFT JOIN pool_endpoints AS e ON e.node_id = p.node_id ORDER BY ",
            $outer_order,
            "e.seq DESC, e.endpoint"
        )
    };
}

/// One row of [`select_peers`]: a peer and one of its endpoints (or none).
#[derive(sqlx::FromRow)]
struct PeerRow {
    node_id: Vec<u8>,
    address: String,
    services: String,
    user_agent: String,
    first_seen_ms: i64,
    last_seen_ms: i64,
    last_attempt_ms: i64,
    failures: i64,
    score: i64,
    banned_until_ms: Option<i64>,
    ban_reason: Option<String>,
    keep: bool,
    endpoint: Option<String>,
}

/// The queries, written once, compiled for each backend (`Conn` is the
/// backend's connection type; `EVICTION_LOCK` the statement serialising
/// evictions, if the backend needs one). `$1`-style placeholders work in
/// both.
macro_rules! queries {
    () => {
        use super::{
            EVICTION_LOCK_KEY, MAX_ENDPOINTS_PER_PEER, MAX_FAILURES, MAX_SCORE, MIN_SCORE,
            PeerRow, StoreError,
        };

        /// Makes sure the peer has a row, with this address: checks a known
        /// peer's address, or makes room for and inserts a new one.
        pub(super) async fn ensure_peer(
            conn: &mut Conn,
            node_id: &[u8; 33],
            address: &str,
            max_peers: u64,
        ) -> Result<(), StoreError> {
            let stored: Option<String> =
                sqlx::query_scalar("SELECT address FROM pool_peers WHERE node_id = $1")
                    .bind(&node_id[..])
                    .fetch_optional(&mut *conn)
                    .await?;
            match stored {
                Some(stored) if stored == address => return Ok(()),
                Some(stored) => {
                    return Err(StoreError::Invalid {
                        field: "address",
                        reason: format!(
                            "{address} is not the stored address {stored} of this node id"
                        ),
                    });
                }
                None => {}
            }
            make_room(conn, max_peers).await?;
            sqlx::query(
                "INSERT INTO pool_peers (node_id, address) VALUES ($1, $2) \
                 ON CONFLICT (node_id) DO NOTHING",
            )
            .bind(&node_id[..])
            .bind(address)
            .execute(&mut *conn)
            .await
            .map_err(|e| match e.as_database_error() {
                Some(db) if db.is_unique_violation() => StoreError::Invalid {
                    field: "address",
                    reason: format!("{address} is stored for another node id"),
                },
                _ => StoreError::Db(e),
            })?;
            Ok(())
        }

        /// Evicts peers until one more fits under `max_peers`: first the
        /// worst-scored, least recently seen peers neither kept nor banned,
        /// then, if need be, banned ones whose ban ends first.
        async fn make_room(conn: &mut Conn, max_peers: u64) -> Result<(), StoreError> {
            if let Some(lock) = EVICTION_LOCK {
                sqlx::query(lock)
                    .bind(EVICTION_LOCK_KEY)
                    .execute(&mut *conn)
                    .await?;
            }
            let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pool_peers")
                .fetch_one(&mut *conn)
                .await?;
            let count = u64::try_from(count).unwrap_or(0);
            if count < max_peers {
                return Ok(());
            }
            let mut excess = count - max_peers + 1;
            for evict in [
                "DELETE FROM pool_peers WHERE node_id IN (SELECT node_id FROM pool_peers \
                 WHERE keep = FALSE AND banned_until_ms IS NULL \
                 ORDER BY score, last_seen_ms, node_id DESC LIMIT $1)",
                "DELETE FROM pool_peers WHERE node_id IN (SELECT node_id FROM pool_peers \
                 WHERE keep = FALSE ORDER BY banned_until_ms, score, node_id DESC LIMIT $1)",
            ] {
                let evicted = sqlx::query(evict)
                    .bind(i64::try_from(excess).unwrap_or(i64::MAX))
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                if evicted > 0 {
                    tracing::debug!(evicted, max_peers, "peer store full: evicted peers");
                }
                excess = excess.saturating_sub(evicted);
                if excess == 0 {
                    return Ok(());
                }
            }
            Err(StoreError::Full { max: max_peers })
        }

        /// Adds `endpoint` to the peer, or refreshes it, as its most recent;
        /// `ok_ms` (if any) records a working connection with it.
        pub(super) async fn touch_endpoint(
            conn: &mut Conn,
            node_id: &[u8; 33],
            endpoint: &str,
            ok_ms: Option<i64>,
        ) -> Result<(), sqlx::Error> {
            sqlx::query(
                "INSERT INTO pool_endpoints (node_id, endpoint, seq, last_ok_ms) \
                 VALUES ($1, $2, \
                   (SELECT COALESCE(MAX(seq), 0) + 1 FROM pool_endpoints WHERE node_id = $1), \
                   $3) \
                 ON CONFLICT (node_id, endpoint) DO UPDATE SET seq = excluded.seq, \
                   last_ok_ms = COALESCE(excluded.last_ok_ms, pool_endpoints.last_ok_ms)",
            )
            .bind(&node_id[..])
            .bind(endpoint)
            .bind(ok_ms)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        /// Drops the peer's oldest endpoints beyond [`MAX_ENDPOINTS_PER_PEER`].
        pub(super) async fn prune_endpoints(
            conn: &mut Conn,
            node_id: &[u8; 33],
        ) -> Result<(), sqlx::Error> {
            sqlx::query(
                "DELETE FROM pool_endpoints WHERE node_id = $1 AND endpoint NOT IN \
                 (SELECT endpoint FROM pool_endpoints WHERE node_id = $1 \
                  ORDER BY seq DESC, endpoint LIMIT $2)",
            )
            .bind(&node_id[..])
            .bind(MAX_ENDPOINTS_PER_PEER as i64)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        /// Sets what a connection at `now_ms` changes on the peer's row.
        pub(super) async fn record_connection(
            conn: &mut Conn,
            node_id: &[u8; 33],
            services: &str,
            user_agent: &str,
            now_ms: i64,
        ) -> Result<(), sqlx::Error> {
            sqlx::query(
                "UPDATE pool_peers SET services = $2, user_agent = $3, \
                   first_seen_ms = CASE WHEN first_seen_ms = 0 THEN $4 ELSE first_seen_ms END, \
                   last_seen_ms = $4, failures = 0, \
                   score = CASE WHEN score < $5 THEN score + 1 ELSE score END \
                 WHERE node_id = $1",
            )
            .bind(&node_id[..])
            .bind(services)
            .bind(user_agent)
            .bind(now_ms)
            .bind(MAX_SCORE)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        /// Counts a failed dial; the failures now, or `None` if the peer is
        /// unknown.
        pub(super) async fn dial_failed(
            conn: &mut Conn,
            node_id: &[u8; 33],
            now_ms: i64,
        ) -> Result<Option<i64>, StoreError> {
            Ok(sqlx::query_scalar(
                "UPDATE pool_peers SET \
                   failures = CASE WHEN failures < $3 THEN failures + 1 ELSE failures END, \
                   last_attempt_ms = $2, \
                   score = CASE WHEN score > $4 THEN score - 1 ELSE score END \
                 WHERE node_id = $1 RETURNING failures",
            )
            .bind(&node_id[..])
            .bind(now_ms)
            .bind(i64::from(MAX_FAILURES))
            .bind(MIN_SCORE)
            .fetch_optional(&mut *conn)
            .await?)
        }

        /// Records a dial attempt; whether the peer is known.
        pub(super) async fn dial_attempted(
            conn: &mut Conn,
            node_id: &[u8; 33],
            now_ms: i64,
        ) -> Result<bool, StoreError> {
            let done = sqlx::query("UPDATE pool_peers SET last_attempt_ms = $2 WHERE node_id = $1")
                .bind(&node_id[..])
                .bind(now_ms)
                .execute(&mut *conn)
                .await?;
            Ok(done.rows_affected() > 0)
        }

        /// Bans a stored peer.
        pub(super) async fn ban(
            conn: &mut Conn,
            node_id: &[u8; 33],
            until_ms: i64,
            reason: &str,
        ) -> Result<(), sqlx::Error> {
            sqlx::query(
                "UPDATE pool_peers SET banned_until_ms = $2, ban_reason = $3 WHERE node_id = $1",
            )
            .bind(&node_id[..])
            .bind(until_ms)
            .bind(reason)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        /// Lifts a ban; whether there was one.
        pub(super) async fn unban(conn: &mut Conn, node_id: &[u8; 33]) -> Result<bool, StoreError> {
            let done = sqlx::query(
                "UPDATE pool_peers SET banned_until_ms = NULL, ban_reason = NULL \
                 WHERE node_id = $1 AND banned_until_ms IS NOT NULL",
            )
            .bind(&node_id[..])
            .execute(&mut *conn)
            .await?;
            Ok(done.rows_affected() > 0)
        }

        /// Sets `keep`; whether the peer is known.
        pub(super) async fn set_keep(
            conn: &mut Conn,
            node_id: &[u8; 33],
            keep: bool,
        ) -> Result<bool, StoreError> {
            let done = sqlx::query("UPDATE pool_peers SET keep = $2 WHERE node_id = $1")
                .bind(&node_id[..])
                .bind(keep)
                .execute(&mut *conn)
                .await?;
            Ok(done.rows_affected() > 0)
        }

        /// Bans ending after `now_ms`, longest first.
        pub(super) async fn active_bans(
            conn: &mut Conn,
            now_ms: i64,
        ) -> Result<Vec<(Vec<u8>, i64, Option<String>)>, StoreError> {
            sqlx::query_as(
                "SELECT node_id, banned_until_ms, ban_reason FROM pool_peers \
                 WHERE banned_until_ms > $1 ORDER BY banned_until_ms DESC, node_id",
            )
            .bind(now_ms)
            .fetch_all(&mut *conn)
            .await
            .map_err(super::read_error)
        }

        /// One peer's rows, by node id.
        pub(super) async fn get(
            conn: &mut Conn,
            node_id: &[u8; 33],
        ) -> Result<Vec<PeerRow>, StoreError> {
            sqlx::query_as(select_peers!("WHERE node_id = $1", ""))
                .bind(&node_id[..])
                .fetch_all(&mut *conn)
                .await
                .map_err(super::read_error)
        }

        /// One peer's rows, by address.
        pub(super) async fn by_address(
            conn: &mut Conn,
            address: &str,
        ) -> Result<Vec<PeerRow>, StoreError> {
            sqlx::query_as(select_peers!("WHERE address = $1", ""))
                .bind(address)
                .fetch_all(&mut *conn)
                .await
                .map_err(super::read_error)
        }

        /// The best `limit` peers' rows.
        pub(super) async fn list(conn: &mut Conn, limit: i64) -> Result<Vec<PeerRow>, StoreError> {
            sqlx::query_as(select_peers!(
                "ORDER BY score DESC, last_seen_ms DESC, node_id LIMIT $1",
                "p.score DESC, p.last_seen_ms DESC, p.node_id, "
            ))
            .bind(limit)
            .fetch_all(&mut *conn)
            .await
            .map_err(super::read_error)
        }

        /// The rows of up to `limit` peers worth dialing at `now_ms`.
        pub(super) async fn dial_candidates(
            conn: &mut Conn,
            now_ms: i64,
            limit: i64,
        ) -> Result<Vec<PeerRow>, StoreError> {
            sqlx::query_as(select_peers!(
                "WHERE (banned_until_ms IS NULL OR banned_until_ms <= $1) \
                 AND EXISTS (SELECT 1 FROM pool_endpoints AS x \
                   WHERE x.node_id = pool_peers.node_id) \
                 ORDER BY keep DESC, score DESC, failures, last_attempt_ms, node_id LIMIT $2",
                "p.keep DESC, p.score DESC, p.failures, p.last_attempt_ms, p.node_id, "
            ))
            .bind(now_ms)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await
            .map_err(super::read_error)
        }

        /// Deletes stale peers (their endpoints cascade); how many.
        pub(super) async fn forget_stale(
            conn: &mut Conn,
            older_than_ms: i64,
            max_failures: i64,
        ) -> Result<u64, StoreError> {
            let done = sqlx::query(
                "DELETE FROM pool_peers WHERE keep = FALSE AND last_seen_ms < $1 \
                 AND failures >= $2 AND (banned_until_ms IS NULL OR banned_until_ms < $1)",
            )
            .bind(older_than_ms)
            .bind(max_failures)
            .execute(&mut *conn)
            .await?;
            Ok(done.rows_affected())
        }

        /// How many peers are stored.
        pub(super) async fn count(conn: &mut Conn) -> Result<i64, StoreError> {
            Ok(sqlx::query_scalar("SELECT COUNT(*) FROM pool_peers")
                .fetch_one(&mut *conn)
                .await?)
        }
    };
}

/// The queries on SQLite. Its write lock (`BEGIN IMMEDIATE`) already
/// serialises evictions.
mod sqlite_queries {
    type Conn = sqlx::SqliteConnection;
    const EVICTION_LOCK: Option<&str> = None;
    queries!();
}

/// The queries on PostgreSQL.
mod postgres_queries {
    type Conn = sqlx::PgConnection;
    const EVICTION_LOCK: Option<&str> = Some("SELECT pg_advisory_xact_lock($1)");
    queries!();
}

/// Turns a failure to decode a column into [`StoreError::Corrupt`].
fn read_error(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::ColumnDecode { index, source } => StoreError::Corrupt {
            field: index,
            reason: source.to_string(),
        },
        other => StoreError::Db(other),
    }
}

/// Folds [`select_peers`] rows (each peer's adjacent) into peers.
fn group_rows(rows: Vec<PeerRow>) -> Result<Vec<StoredPeer>, StoreError> {
    let mut peers: Vec<StoredPeer> = Vec::new();
    for row in rows {
        let node_id = node_id_from_row(&row.node_id)?;
        if let Some(last) = peers.last_mut().filter(|p| p.node_id == node_id) {
            last.endpoints.extend(row.endpoint);
            continue;
        }
        let failures = u32::try_from(row.failures).map_err(|_| StoreError::Corrupt {
            field: "failures".to_owned(),
            reason: format!("{} is not a count", row.failures),
        })?;
        peers.push(StoredPeer {
            node_id,
            address: row.address,
            endpoints: row.endpoint.into_iter().collect(),
            services: decode_services(&row.services),
            user_agent: row.user_agent,
            first_seen_ms: row.first_seen_ms,
            last_seen_ms: row.last_seen_ms,
            last_attempt_ms: row.last_attempt_ms,
            failures,
            score: row.score,
            banned_until_ms: row.banned_until_ms,
            ban_reason: row.ban_reason,
            keep: row.keep,
        });
    }
    Ok(peers)
}

/// A node id read back, checked to be 33 bytes.
fn node_id_from_row(bytes: &[u8]) -> Result<[u8; 33], StoreError> {
    <[u8; 33]>::try_from(bytes).map_err(|_| StoreError::Corrupt {
        field: "node_id".to_owned(),
        reason: format!("{} bytes, expected 33", bytes.len()),
    })
}

/// [`StoreError::NotFound`] for `node_id`.
fn not_found(node_id: &[u8; 33]) -> StoreError {
    StoreError::NotFound {
        node_id: node_id.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

/// Checks an address: 1 to [`MAX_ADDRESS_LEN`] base58 characters.
fn check_address(address: &str) -> Result<(), StoreError> {
    const BASE58: &str = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let reason = if address.is_empty() {
        "empty".to_owned()
    } else if address.len() > MAX_ADDRESS_LEN {
        format!("{} bytes, at most {MAX_ADDRESS_LEN}", address.len())
    } else if !address.chars().all(|c| BASE58.contains(c)) {
        "not base58".to_owned()
    } else {
        return Ok(());
    };
    Err(StoreError::Invalid {
        field: "address",
        reason,
    })
}

/// Checks an endpoint: 1 to [`MAX_ENDPOINT_LEN`] printable ASCII characters,
/// no spaces.
fn check_endpoint(endpoint: &str) -> Result<(), StoreError> {
    let reason = if endpoint.is_empty() {
        "empty".to_owned()
    } else if endpoint.len() > MAX_ENDPOINT_LEN {
        format!("{} bytes, at most {MAX_ENDPOINT_LEN}", endpoint.len())
    } else if !endpoint.bytes().all(|b| b.is_ascii_graphic()) {
        "not printable ASCII without spaces".to_owned()
    } else {
        return Ok(());
    };
    Err(StoreError::Invalid {
        field: "endpoint",
        reason,
    })
}

/// Checks free text (user agent, ban reason): at most `max` bytes, no
/// control characters.
fn check_text(field: &'static str, text: &str, max: usize) -> Result<(), StoreError> {
    let reason = if text.len() > max {
        format!("{} bytes, at most {max}", text.len())
    } else if text.chars().any(char::is_control) {
        "contains control characters".to_owned()
    } else {
        return Ok(());
    };
    Err(StoreError::Invalid { field, reason })
}

/// Checks service names and joins them with commas: at most
/// [`MAX_SERVICES`] names of 1 to [`MAX_SERVICE_NAME_LEN`] printable ASCII
/// characters, no spaces or commas.
fn encode_services(services: &[String]) -> Result<String, StoreError> {
    if services.len() > MAX_SERVICES {
        return Err(StoreError::Invalid {
            field: "services",
            reason: format!("{} services, at most {MAX_SERVICES}", services.len()),
        });
    }
    for name in services {
        let bad = name.is_empty()
            || name.len() > MAX_SERVICE_NAME_LEN
            || !name.bytes().all(|b| b.is_ascii_graphic() && b != b',');
        if bad {
            return Err(StoreError::Invalid {
                field: "services",
                reason: format!(
                    "{:?} is not 1 to {MAX_SERVICE_NAME_LEN} printable ASCII characters without commas",
                    name.chars().take(MAX_SERVICE_NAME_LEN).collect::<String>()
                ),
            });
        }
    }
    Ok(services.join(","))
}

/// Splits stored services.
fn decode_services(services: &str) -> Vec<String> {
    services
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}
