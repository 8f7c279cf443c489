//! Limits shared by every replica: request rates and concurrent connections.
//!
//! Both live in the [`Kv`], so in cluster mode a client hitting several
//! replicas is counted once, and each check is one atomic step (one Lua
//! script in Redis, one critical section in memory).
//!
//! - [`RateLimiter`]: a fixed-window counter per key. Key format
//!   `<prefix><caller's key>`, by default `sw:rate:<key>`; value: a decimal
//!   count; TTL: what is left of the window, which starts at the window's
//!   first request.
//! - [`ConnectionLimiter`]: concurrent connections per IP. Key format
//!   `<prefix><ip>`, by default `sw:conn:<ip>`; value: a set (Redis sorted
//!   set) of members `<replica>:<conn id>`, each scored by its expiry in unix
//!   milliseconds of the Redis server's clock. Live connections refresh their
//!   member; a crashed replica's members stop being refreshed and stop
//!   counting after the TTL.

use std::time::Duration;

use crate::{Kv, KvError};

/// Default key prefix of [`RateLimiter`].
pub const RATE_PREFIX: &str = "sw:rate:";

/// Default key prefix of [`ConnectionLimiter`].
pub const CONN_PREFIX: &str = "sw:conn:";

/// The outcome of [`RateLimiter::check`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateDecision {
    /// Whether this request fits in the current window.
    pub allowed: bool,
    /// Requests still allowed in the current window after this one.
    pub remaining: u64,
    /// When denied, how long until the window resets (at least 1 ms); zero
    /// when allowed.
    pub retry_after: Duration,
}

/// At most `limit` requests per `window` per key, across replicas.
///
/// Fixed window: the first request for a key starts a window of `window`;
/// the count resets when it ends. A burst of up to `2 × limit` can straddle
/// a window boundary, the usual trade for one counter per key.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    kv: Kv,
    prefix: String,
    limit: u64,
    window: Duration,
}

impl RateLimiter {
    /// A limiter over `kv` under [`RATE_PREFIX`]. `window` must be within
    /// [`crate::MIN_TTL`]..=[`crate::MAX_TTL`], or every check fails with
    /// [`KvError::InvalidTtl`]. A `limit` of zero denies everything.
    pub fn new(kv: Kv, limit: u64, window: Duration) -> Self {
        RateLimiter {
            kv,
            prefix: RATE_PREFIX.to_owned(),
            limit,
            window,
        }
    }

    /// The same, under `prefix` instead. Limiters with different limits or
    /// windows need different prefixes.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Requests allowed per window.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The window length.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Counts one request for `key` and says whether it is allowed.
    pub async fn check(&self, key: &str) -> Result<RateDecision, KvError> {
        let full_key = format!("{}{key}", self.prefix);
        let (count, left) = self.kv.incr_window(&full_key, self.window).await?;
        // A count below one only appears if someone stored a negative
        // number under the key; treat it as an unused window.
        let used = u64::try_from(count).unwrap_or(0);
        let allowed = used <= self.limit;
        Ok(RateDecision {
            allowed,
            remaining: self.limit.saturating_sub(used),
            retry_after: if allowed {
                Duration::ZERO
            } else {
                left.max(Duration::from_millis(1))
            },
        })
    }
}

/// At most `limit` concurrent connections per IP, across replicas, robust to
/// replica crashes.
///
/// Each connection holds a member (`"<replica>:<conn id>"`, unique across
/// replicas) in its IP's set, scored by an expiry `ttl` ahead. The owner
/// calls [`refresh`](Self::refresh) well within `ttl` (say every `ttl / 3`)
/// and [`release`](Self::release) on close; members of a replica that died
/// expire after `ttl` and free their slots.
#[derive(Clone, Debug)]
pub struct ConnectionLimiter {
    kv: Kv,
    prefix: String,
    limit: u32,
    ttl: Duration,
}

impl ConnectionLimiter {
    /// A limiter over `kv` under [`CONN_PREFIX`]. `ttl` must be within
    /// [`crate::MIN_TTL`]..=[`crate::MAX_TTL`], or every call fails with
    /// [`KvError::InvalidTtl`]. A `limit` of zero denies everything.
    pub fn new(kv: Kv, limit: u32, ttl: Duration) -> Self {
        ConnectionLimiter {
            kv,
            prefix: CONN_PREFIX.to_owned(),
            limit,
            ttl,
        }
    }

    /// The same, under `prefix` instead.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Concurrent connections allowed per IP.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// How long a member counts without a refresh.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Takes a slot for `member` on `ip`, atomically: drops expired members,
    /// then adds `member` if fewer than `limit` are held. Returns `false` if
    /// the IP is at its limit. Acquiring a member already held refreshes it
    /// and returns `true`.
    pub async fn acquire(&self, ip: &str, member: &str) -> Result<bool, KvError> {
        self.kv
            .members_acquire(&self.key(ip), member, self.limit, self.ttl)
            .await
    }

    /// Extends `member`'s slot on `ip` to `ttl` from now. Returns `false` if
    /// the slot had already expired (or was released): the connection no
    /// longer counts and should [`acquire`](Self::acquire) again or close.
    pub async fn refresh(&self, ip: &str, member: &str) -> Result<bool, KvError> {
        self.kv
            .members_refresh(&self.key(ip), member, self.ttl)
            .await
    }

    /// Frees `member`'s slot on `ip`. Releasing a slot not held is not an
    /// error.
    pub async fn release(&self, ip: &str, member: &str) -> Result<(), KvError> {
        self.kv.members_remove(&self.key(ip), member).await
    }

    fn key(&self, ip: &str) -> String {
        format!("{}{ip}", self.prefix)
    }
}
