//! Shared state across gateway replicas: presence, rate limits, connection
//! limits and idempotency keys. Redis when several replicas run (cluster
//! mode), an in-memory map with identical semantics when one process runs
//! alone (embedded mode).
//!
//! # Modules
//!
//! - [`Kv`] (this file): the store handle. A cheap `Clone` over one of two
//!   backends, chosen once at start-up with [`Kv::memory`] or
//!   [`Kv::connect_redis`]. Every operation validates its input here (key
//!   length, value size, TTL range), so both backends accept and reject the
//!   same things, then dispatches.
//! - `memory` (private): a bounded `HashMap` plus an expiry index, behind a
//!   mutex held only for the duration of one operation.
//! - `redis_kv` (private): a [`redis::aio::ConnectionManager`] (one
//!   multiplexed connection that reconnects on its own), every call bounded
//!   by [`OP_TIMEOUT`]; compare-and-act operations are Lua scripts, so they
//!   are atomic on the server.
//! - [`presence`]: which replica holds a node's connection.
//! - [`limits`]: a fixed-window [`RateLimiter`] and a per-IP
//!   [`ConnectionLimiter`] whose counts survive a replica crash.
//! - [`error`]: [`KvError`], the one error type.
//!
//! # Data flow
//!
//! A gateway replica builds one [`Kv`] at start-up and hands clones to its
//! handlers. The higher-level types ([`Presence`], [`RateLimiter`],
//! [`ConnectionLimiter`]) own a clone and a key prefix, build each key as
//! `prefix + caller's key`, and call either the public operations below or
//! one crate-private atomic operation each (a Lua script in Redis, the same
//! steps under the mutex in memory).
//!
//! # Key formats
//!
//! | user | key | value |
//! | --- | --- | --- |
//! | [`Presence`] | `sw:presence:<66 hex chars of the node id>` | the replica id, UTF-8 |
//! | [`RateLimiter`] | `sw:rate:<caller's key>` | a decimal counter, TTL = the window |
//! | [`ConnectionLimiter`] | `sw:conn:<ip>` | a sorted set of `<replica>:<conn id>` scored by expiry (unix ms) |
//! | idempotency keys | chosen by the caller | chosen by the caller |
//!
//! Every key carries a TTL ([`MIN_TTL`]..=[`MAX_TTL`]): nothing written here
//! outlives the replica that wrote it by more than its TTL.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use skywire_kv::{Kv, Presence, RateLimiter};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), skywire_kv::KvError> {
//! // Embedded mode; in cluster mode: `Kv::connect_redis("redis://…").await?`.
//! let kv = Kv::memory();
//!
//! // Idempotency key: only the first request with this id does the work.
//! assert!(kv.set_nx("idem:req-42", b"done", Duration::from_secs(60)).await?);
//! assert!(!kv.set_nx("idem:req-42", b"done", Duration::from_secs(60)).await?);
//!
//! let presence = Presence::new(kv.clone());
//! let node_id = [2u8; 33];
//! presence.claim(&node_id, "gw-1", Duration::from_secs(30)).await?;
//! assert_eq!(presence.lookup(&node_id).await?.as_deref(), Some("gw-1"));
//!
//! let limiter = RateLimiter::new(kv, 100, Duration::from_secs(1));
//! assert!(limiter.check("203.0.113.7").await?.allowed);
//! # Ok(())
//! # }
//! ```

pub mod error;
pub mod limits;
mod memory;
pub mod presence;
mod redis_kv;

use std::time::Duration;

pub use error::KvError;
pub use limits::{ConnectionLimiter, RateDecision, RateLimiter};
pub use presence::Presence;
pub use redis_kv::{
    CONNECT_ATTEMPT_TIMEOUT, CONNECT_TIMEOUT, OP_TIMEOUT, RECONNECT_MAX_DELAY, RECONNECT_MIN_DELAY,
    RECONNECT_RETRIES,
};

use memory::MemoryKv;
use redis_kv::RedisKv;

/// Capacity of [`Kv::memory`] in live keys. One entry per connected node
/// (presence), per active rate-limit key and per client IP: a million covers
/// an embedded node's worst day by far, and at a few hundred bytes per entry
/// stays within a few hundred MiB.
pub const MAX_MEMORY_KEYS: usize = 1_000_000;

/// Longest key accepted (prefix included), in bytes. Keys here are a prefix
/// plus an id, a hex node id or an IP; 1 KiB leaves room and stops a caller
/// from turning a client-supplied string into a huge key.
pub const MAX_KEY_LEN: usize = 1024;

/// Largest value accepted, in bytes. Values are replica ids, counters and
/// idempotency records (a stored response); 1 MiB is ample for those while
/// bounding what one call can make the store hold.
pub const MAX_VALUE_LEN: usize = 1024 * 1024;

/// Longest set member accepted by [`ConnectionLimiter`] (`<replica>:<conn
/// id>`), in bytes: same reasoning as [`MAX_KEY_LEN`].
pub const MAX_MEMBER_LEN: usize = 1024;

/// Shortest TTL accepted: Redis counts expiry in whole milliseconds, and a
/// TTL of zero is an error there.
pub const MIN_TTL: Duration = Duration::from_millis(1);

/// Longest TTL accepted: 30 days. Everything stored here is soft state
/// (presence, limits, idempotency windows); a longer TTL is almost surely a
/// unit mistake.
pub const MAX_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// A handle to the shared store. Cheap to clone; clones share the backend
/// (the same map in memory, the same connection to Redis).
#[derive(Clone, Debug)]
pub struct Kv {
    backend: Backend,
}

#[derive(Clone, Debug)]
enum Backend {
    Memory(MemoryKv),
    Redis(RedisKv),
}

impl Kv {
    /// An in-process store holding at most [`MAX_MEMORY_KEYS`] live keys.
    /// When full, expired keys are purged; if none has expired, writes of new
    /// keys fail with [`KvError::Full`].
    pub fn memory() -> Kv {
        Self::memory_with_capacity(MAX_MEMORY_KEYS)
    }

    /// Like [`Kv::memory`] with a capacity of `max_keys` live keys.
    pub fn memory_with_capacity(max_keys: usize) -> Kv {
        Kv {
            backend: Backend::Memory(MemoryKv::new(max_keys)),
        }
    }

    /// Connects to Redis at `url` (e.g. `redis://127.0.0.1:6379`).
    ///
    /// Fails within [`CONNECT_TIMEOUT`] if Redis cannot be reached. Once
    /// connected, the handle reconnects on its own after Redis restarts;
    /// operations issued while it is down fail with [`KvError::Unavailable`]
    /// or [`KvError::Timeout`] within [`OP_TIMEOUT`], never hang.
    pub async fn connect_redis(url: &str) -> Result<Kv, KvError> {
        Ok(Kv {
            backend: Backend::Redis(RedisKv::connect(url).await?),
        })
    }

    /// `"memory"` or `"redis"`, for logs and readiness output.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Memory(_) => "memory",
            Backend::Redis(_) => "redis",
        }
    }

    /// Stores `value` under `key` for `ttl`, replacing whatever was there.
    pub async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), KvError> {
        check_key(key)?;
        check_value(value)?;
        let ttl_ms = ttl_millis(ttl)?;
        match &self.backend {
            Backend::Memory(m) => m.set(key, value, ttl_ms),
            Backend::Redis(r) => r.set(key, value, ttl_ms).await,
        }
    }

    /// Stores `value` under `key` for `ttl` only if `key` is absent. Returns
    /// `true` if it stored, `false` if `key` already existed (the basis of
    /// idempotency keys and locks).
    pub async fn set_nx(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, KvError> {
        check_key(key)?;
        check_value(value)?;
        let ttl_ms = ttl_millis(ttl)?;
        match &self.backend {
            Backend::Memory(m) => m.set_nx(key, value, ttl_ms),
            Backend::Redis(r) => r.set_nx(key, value, ttl_ms).await,
        }
    }

    /// The value under `key`, or `None` if absent or expired.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        check_key(key)?;
        match &self.backend {
            Backend::Memory(m) => m.get(key),
            Backend::Redis(r) => r.get(key).await,
        }
    }

    /// Removes `key` whatever it holds. Removing an absent key is not an
    /// error.
    pub async fn del(&self, key: &str) -> Result<(), KvError> {
        check_key(key)?;
        match &self.backend {
            Backend::Memory(m) => m.del(key),
            Backend::Redis(r) => r.del(key).await,
        }
    }

    /// Atomically removes `key` only if it holds exactly `value`. Returns
    /// `true` if it removed. Releasing a claim this way never removes a newer
    /// claim written by someone else.
    pub async fn del_if_eq(&self, key: &str, value: &[u8]) -> Result<bool, KvError> {
        check_key(key)?;
        check_value(value)?;
        match &self.backend {
            Backend::Memory(m) => m.del_if_eq(key, value),
            Backend::Redis(r) => r.del_if_eq(key, value).await,
        }
    }

    /// Atomically sets the TTL of `key` to `ttl` only if it holds exactly
    /// `value`. Returns `true` if it did: refreshing a claim that is still
    /// ours.
    pub async fn expire_if_eq(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, KvError> {
        check_key(key)?;
        check_value(value)?;
        let ttl_ms = ttl_millis(ttl)?;
        match &self.backend {
            Backend::Memory(m) => m.expire_if_eq(key, value, ttl_ms),
            Backend::Redis(r) => r.expire_if_eq(key, value, ttl_ms).await,
        }
    }

    /// Checks that the store answers (a Redis `PING`); for readiness probes.
    pub async fn ping(&self) -> Result<(), KvError> {
        match &self.backend {
            Backend::Memory(_) => Ok(()),
            Backend::Redis(r) => r.ping().await,
        }
    }

    /// Increments the counter at `key`, starting a window of `window` when
    /// the key is new. Returns the count and the time left in the window.
    pub(crate) async fn incr_window(
        &self,
        key: &str,
        window: Duration,
    ) -> Result<(i64, Duration), KvError> {
        check_key(key)?;
        let window_ms = ttl_millis(window)?;
        let (count, left_ms) = match &self.backend {
            Backend::Memory(m) => m.incr_window(key, window_ms)?,
            Backend::Redis(r) => r.incr_window(key, window_ms).await?,
        };
        Ok((count, Duration::from_millis(left_ms)))
    }

    /// Drops expired members of the set at `key`, then adds (or re-scores)
    /// `member` with expiry now + `ttl` if it is already there or the set has
    /// fewer than `limit` members. Returns whether `member` holds a slot.
    pub(crate) async fn members_acquire(
        &self,
        key: &str,
        member: &str,
        limit: u32,
        ttl: Duration,
    ) -> Result<bool, KvError> {
        check_key(key)?;
        check_member(member)?;
        let ttl_ms = ttl_millis(ttl)?;
        match &self.backend {
            Backend::Memory(m) => m.members_acquire(key, member, limit, ttl_ms),
            Backend::Redis(r) => r.members_acquire(key, member, limit, ttl_ms).await,
        }
    }

    /// Drops expired members of the set at `key`, then re-scores `member`
    /// with expiry now + `ttl` if it is still there. Returns whether it was.
    pub(crate) async fn members_refresh(
        &self,
        key: &str,
        member: &str,
        ttl: Duration,
    ) -> Result<bool, KvError> {
        check_key(key)?;
        check_member(member)?;
        let ttl_ms = ttl_millis(ttl)?;
        match &self.backend {
            Backend::Memory(m) => m.members_refresh(key, member, ttl_ms),
            Backend::Redis(r) => r.members_refresh(key, member, ttl_ms).await,
        }
    }

    /// The live member of the set at `key` whose expiry is latest (the one
    /// acquired or refreshed last).
    pub(crate) async fn members_newest(&self, key: &str) -> Result<Option<String>, KvError> {
        check_key(key)?;
        match &self.backend {
            Backend::Memory(m) => m.members_newest(key),
            Backend::Redis(r) => r.members_newest(key).await,
        }
    }

    /// Removes `member` from the set at `key` (the key goes when the set is
    /// empty).
    pub(crate) async fn members_remove(&self, key: &str, member: &str) -> Result<(), KvError> {
        check_key(key)?;
        check_member(member)?;
        match &self.backend {
            Backend::Memory(m) => m.members_remove(key, member),
            Backend::Redis(r) => r.members_remove(key, member).await,
        }
    }
}

fn check_key(key: &str) -> Result<(), KvError> {
    if key.len() > MAX_KEY_LEN {
        return Err(KvError::KeyTooLong {
            len: key.len(),
            max: MAX_KEY_LEN,
        });
    }
    Ok(())
}

fn check_value(value: &[u8]) -> Result<(), KvError> {
    if value.len() > MAX_VALUE_LEN {
        return Err(KvError::ValueTooLarge {
            len: value.len(),
            max: MAX_VALUE_LEN,
        });
    }
    Ok(())
}

fn check_member(member: &str) -> Result<(), KvError> {
    if member.len() > MAX_MEMBER_LEN {
        return Err(KvError::MemberTooLong {
            len: member.len(),
            max: MAX_MEMBER_LEN,
        });
    }
    Ok(())
}

/// `ttl` in whole milliseconds (sub-millisecond parts dropped, as Redis
/// counts), checked against [`MIN_TTL`]..=[`MAX_TTL`].
fn ttl_millis(ttl: Duration) -> Result<u64, KvError> {
    let invalid = || KvError::InvalidTtl {
        ttl,
        min: MIN_TTL,
        max: MAX_TTL,
    };
    if ttl < MIN_TTL || ttl > MAX_TTL {
        return Err(invalid());
    }
    u64::try_from(ttl.as_millis()).map_err(|_| invalid())
}
