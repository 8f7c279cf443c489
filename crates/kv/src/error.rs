//! The one error type of this crate.

use std::time::Duration;

/// Everything that can go wrong talking to the shared store.
///
/// Both backends return the same variants for the same misuse (a key too
/// long, a TTL out of range, a key holding the wrong kind of value), so a
/// caller's error handling does not depend on the deployment mode.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// The Redis URL could not be parsed. `url` has any password redacted.
    #[error("invalid Redis URL {url}: {source}")]
    InvalidUrl {
        /// The URL as given, password redacted.
        url: String,
        /// What the Redis client objected to.
        source: redis::RedisError,
    },

    /// Redis could not be reached, or the connection broke during `op`.
    /// The connection manager reconnects in the background; retrying later
    /// may succeed.
    #[error("Redis at {url} unavailable during {op}: {source}")]
    Unavailable {
        /// The operation that failed (`"connect"`, `"get"`, ...).
        op: &'static str,
        /// The server's URL, password redacted.
        url: String,
        /// The underlying I/O or connection error.
        source: redis::RedisError,
    },

    /// `op` did not complete within `after`: the server is unreachable,
    /// overloaded or silently dropping packets.
    #[error("{op} timed out after {after:?}")]
    Timeout {
        /// The operation that timed out (`"connect"`, `"get"`, ...).
        op: &'static str,
        /// The bound that was exceeded.
        after: Duration,
    },

    /// Redis answered `op` with an error not covered by another variant.
    #[error("Redis rejected {op}: {source}")]
    Redis {
        /// The operation that failed.
        op: &'static str,
        /// The server's (or the client's protocol) error.
        source: redis::RedisError,
    },

    /// `key` holds a value of another kind than `op` expects: bytes where a
    /// member set is expected, a member set where bytes are expected, or
    /// bytes that are not a counter.
    #[error("{op} on {key}: key holds the wrong kind of value")]
    WrongType {
        /// The operation that failed.
        op: &'static str,
        /// The full key (prefix included).
        key: String,
    },

    /// The in-memory store holds `max_keys` live keys and none has expired.
    #[error("in-memory store full: {max_keys} live keys")]
    Full {
        /// The store's capacity in keys.
        max_keys: usize,
    },

    /// A key (prefix included) is longer than the store accepts.
    #[error("key of {len} bytes exceeds the maximum of {max}")]
    KeyTooLong {
        /// Length of the key in bytes.
        len: usize,
        /// [`crate::MAX_KEY_LEN`].
        max: usize,
    },

    /// A value is larger than the store accepts.
    #[error("value of {len} bytes exceeds the maximum of {max}")]
    ValueTooLarge {
        /// Length of the value in bytes.
        len: usize,
        /// [`crate::MAX_VALUE_LEN`].
        max: usize,
    },

    /// A set member (e.g. a connection id) is longer than the store accepts.
    #[error("member of {len} bytes exceeds the maximum of {max}")]
    MemberTooLong {
        /// Length of the member in bytes.
        len: usize,
        /// [`crate::MAX_MEMBER_LEN`].
        max: usize,
    },

    /// A TTL (or window) is below one millisecond or above the maximum.
    #[error("TTL {ttl:?} outside {min:?}..={max:?}")]
    InvalidTtl {
        /// The TTL as given.
        ttl: Duration,
        /// [`crate::MIN_TTL`].
        min: Duration,
        /// [`crate::MAX_TTL`].
        max: Duration,
    },
}
