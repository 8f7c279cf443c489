//! The cluster backend: Redis through one [`ConnectionManager`].
//!
//! The manager multiplexes every request of every clone over one connection
//! and, when that connection drops, reconnects in the background (with
//! exponential backoff, [`RECONNECT_RETRIES`] attempts per round; the next
//! request after a failed round starts a new one). Every request is bounded
//! by [`OP_TIMEOUT`], so a dead or black-holed server yields an error, never
//! a hang. Compare-and-act operations are Lua scripts: atomic on the server,
//! sent as `EVALSHA` with a fallback to loading the script. The member
//! scripts read the server clock (`TIME`) before writing, which needs Redis
//! 5 or later (effects replication; the default, and the only mode, from 7).

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, RedisResult, Script, Value};
use tokio::time::timeout;

use crate::KvError;

/// Bound on [`crate::Kv::connect_redis`] as a whole, retries included. A
/// replica that cannot reach Redis at start-up should fail fast and let its
/// supervisor restart it rather than sit half-started; on a LAN a healthy
/// Redis answers in milliseconds.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Bound on one TCP connect (plus handshake) attempt, at start-up and on
/// every reconnect. Shorter than [`CONNECT_TIMEOUT`] so a lost SYN gets
/// retried.
pub const CONNECT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);

/// Bound on every operation, waiting for a reconnect included. Two seconds
/// is far beyond a healthy Redis's latency (sub-millisecond on a LAN) yet
/// short enough that a request handler fails over (or fails open) instead of
/// piling up behind a dead server.
pub const OP_TIMEOUT: Duration = Duration::from_secs(2);

/// Connect attempts per reconnect round before the round fails; the next
/// request starts a new round, so this bounds latency, not persistence.
pub const RECONNECT_RETRIES: usize = 3;

/// First backoff delay between reconnect attempts (doubled each attempt,
/// with jitter so replicas do not reconnect in lockstep).
pub const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(100);

/// Longest backoff delay between reconnect attempts.
pub const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(1);

/// `KEYS[1]`, `ARGV[1]` = value: delete the key only if it holds the value.
static DEL_IF_EQ: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
",
    )
});

/// `KEYS[1]`, `ARGV[1]` = value, `ARGV[2]` = TTL ms: refresh the TTL only if
/// the key holds the value.
static EXPIRE_IF_EQ: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
",
    )
});

/// `KEYS[1]`, `ARGV[1]` = window ms. Fixed-window counter: `INCR`, and a key
/// without a TTL (a new one) gets the window. Returns `{count, ms left}`.
static INCR_WINDOW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local count = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {count, left}
",
    )
});

/// The server's clock in unix µs (one clock for every replica, so skew
/// between replicas does not matter; µs so that claims made in the same
/// millisecond still have an order, and exact in a double until 2255), then
/// drop members whose expiry has passed. Scores are expiries in µs.
const MEMBERS_NOW: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
";

/// Shared prologue of the member scripts: [`MEMBERS_NOW`], and `hold()`,
/// which (re)scores `ARGV[1]` to expire `ARGV[2]` ms from now.
const MEMBERS_PROLOGUE: &str = r"
local ttl = tonumber(ARGV[2])
local function hold()
  redis.call('ZADD', KEYS[1], now + ttl * 1000, ARGV[1])
  if redis.call('PTTL', KEYS[1]) < ttl then
    redis.call('PEXPIRE', KEYS[1], ttl)
  end
  return 1
end
";

/// `KEYS[1]`: drop expired members, return the live member with the latest
/// expiry (or nil).
static MEMBERS_NEWEST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{MEMBERS_NOW}
return redis.call('ZREVRANGE', KEYS[1], 0, 0)[1]
"
    ))
});

/// `KEYS[1]`, `ARGV[1]` = member, `ARGV[2]` = TTL ms, `ARGV[3]` = limit.
/// Keep a held slot, or take one if fewer than `limit` are held.
static MEMBERS_ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{MEMBERS_NOW}{MEMBERS_PROLOGUE}
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return hold()
end
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  return hold()
end
return 0
"
    ))
});

/// `KEYS[1]`, `ARGV[1]` = member, `ARGV[2]` = TTL ms. Re-score a slot that is
/// still held.
static MEMBERS_REFRESH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{MEMBERS_NOW}{MEMBERS_PROLOGUE}
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return hold()
end
return 0
"
    ))
});

/// Redis through a reconnecting, multiplexed connection. Clones share it.
#[derive(Clone)]
pub(crate) struct RedisKv {
    conn: ConnectionManager,
    /// The server's URL with any password redacted, for errors and logs.
    url: Arc<str>,
}

impl std::fmt::Debug for RedisKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisKv")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl RedisKv {
    pub(crate) async fn connect(url: &str) -> Result<Self, KvError> {
        let shown = redact_url(url);
        let client = redis::Client::open(url).map_err(|source| KvError::InvalidUrl {
            url: shown.clone(),
            source,
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_ATTEMPT_TIMEOUT))
            .set_response_timeout(Some(OP_TIMEOUT))
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_min_delay(RECONNECT_MIN_DELAY)
            .set_max_delay(RECONNECT_MAX_DELAY);
        let conn = match timeout(
            CONNECT_TIMEOUT,
            ConnectionManager::new_with_config(client, config),
        )
        .await
        {
            Ok(Ok(conn)) => conn,
            Ok(Err(source)) => {
                return Err(KvError::Unavailable {
                    op: "connect",
                    url: shown,
                    source,
                });
            }
            Err(_) => {
                return Err(KvError::Timeout {
                    op: "connect",
                    after: CONNECT_TIMEOUT,
                });
            }
        };
        tracing::info!(url = %shown, "connected to Redis");
        Ok(RedisKv {
            conn,
            url: shown.into(),
        })
    }

    pub(crate) async fn set(&self, key: &str, value: &[u8], ttl_ms: u64) -> Result<(), KvError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(value).arg("PX").arg(ttl_ms);
        let mut conn = self.conn.clone();
        let reply = timeout(OP_TIMEOUT, cmd.query_async::<()>(&mut conn)).await;
        self.finish("set", key, reply)
    }

    pub(crate) async fn set_nx(
        &self,
        key: &str,
        value: &[u8],
        ttl_ms: u64,
    ) -> Result<bool, KvError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(value).arg("PX").arg(ttl_ms).arg("NX");
        let mut conn = self.conn.clone();
        let reply = timeout(OP_TIMEOUT, cmd.query_async::<Value>(&mut conn)).await;
        // `OK` when set, nil when the key existed.
        Ok(!matches!(self.finish("set_nx", key, reply)?, Value::Nil))
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(key);
        let mut conn = self.conn.clone();
        let reply = timeout(OP_TIMEOUT, cmd.query_async(&mut conn)).await;
        self.finish("get", key, reply)
    }

    pub(crate) async fn del(&self, key: &str) -> Result<(), KvError> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(key);
        let mut conn = self.conn.clone();
        let reply = timeout(OP_TIMEOUT, cmd.query_async::<i64>(&mut conn)).await;
        self.finish("del", key, reply).map(drop)
    }

    pub(crate) async fn del_if_eq(&self, key: &str, value: &[u8]) -> Result<bool, KvError> {
        let mut call = DEL_IF_EQ.prepare_invoke();
        call.key(key).arg(value);
        let mut conn = self.conn.clone();
        let reply = timeout(OP_TIMEOUT, call.invoke_async::<i64>(&mut conn)).await;
        Ok(self.finish("del_if_eq", key, reply)? == 1)
    }

    pub(crate) async fn expire_if_eq(
        &self,
        key: &str,
        value: &[u8],
        ttl_ms: u64,
    ) -> Result<bool, KvError> {
        let mut call = EXPIRE_IF_EQ.prepare_invoke();
        call.key(key).arg(value).arg(ttl_ms);
        let mut conn = self.conn.clone();
        let reply = timeout(OP_TIMEOUT, call.invoke_async::<i64>(&mut conn)).await;
        Ok(self.finish("expire_if_eq", key, reply)? == 1)
    }

    pub(crate) async fn ping(&self) -> Result<(), KvError> {
        let cmd = redis::cmd("PING");
        let mut conn = self.conn.clone();
        let reply = timeout(OP_TIMEOUT, cmd.query_async::<()>(&mut conn)).await;
        self.finish("ping", "", reply)
    }

    pub(crate) async fn incr_window(
        &self,
        key: &str,
        window_ms: u64,
    ) -> Result<(i64, u64), KvError> {
        let mut call = INCR_WINDOW.prepare_invoke();
        call.key(key).arg(window_ms);
        let mut conn = self.conn.clone();
        let reply = timeout(OP_TIMEOUT, call.invoke_async::<(i64, i64)>(&mut conn)).await;
        let (count, left) = self.finish("rate_limit", key, reply)?;
        Ok((count, u64::try_from(left).unwrap_or(0)))
    }

    pub(crate) async fn members_acquire(
        &self,
        key: &str,
        member: &str,
        limit: u32,
        ttl_ms: u64,
    ) -> Result<bool, KvError> {
        let mut call = MEMBERS_ACQUIRE.prepare_invoke();
        call.key(key).arg(member).arg(ttl_ms).arg(limit);
        let mut conn = self.conn.clone();
        let reply = timeout(OP_TIMEOUT, call.invoke_async::<i64>(&mut conn)).await;
        Ok(self.finish("connection_acquire", key, reply)? == 1)
    }

    pub(crate) async fn members_refresh(
        &self,
        key: &str,
        member: &str,
        ttl_ms: u64,
    ) -> Result<bool, KvError> {
        let mut call = MEMBERS_REFRESH.prepare_invoke();
        call.key(key).arg(member).arg(ttl_ms);
        let mut conn = self.conn.clone();
        let reply = timeout(OP_TIMEOUT, call.invoke_async::<i64>(&mut conn)).await;
        Ok(self.finish("connection_refresh", key, reply)? == 1)
    }

    pub(crate) async fn members_newest(&self, key: &str) -> Result<Option<String>, KvError> {
        let mut call = MEMBERS_NEWEST.prepare_invoke();
        call.key(key);
        let mut conn = self.conn.clone();
        let reply = timeout(OP_TIMEOUT, call.invoke_async::<Option<String>>(&mut conn)).await;
        self.finish("members_newest", key, reply)
    }

    pub(crate) async fn members_remove(&self, key: &str, member: &str) -> Result<(), KvError> {
        let mut cmd = redis::cmd("ZREM");
        cmd.arg(key).arg(member);
        let mut conn = self.conn.clone();
        let reply = timeout(OP_TIMEOUT, cmd.query_async::<i64>(&mut conn)).await;
        self.finish("connection_release", key, reply).map(drop)
    }

    /// Turns a timed-out or failed reply into the matching [`KvError`].
    fn finish<T>(
        &self,
        op: &'static str,
        key: &str,
        reply: Result<RedisResult<T>, tokio::time::error::Elapsed>,
    ) -> Result<T, KvError> {
        match reply {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(source)) => Err(self.classify(op, key, source)),
            Err(_) => Err(KvError::Timeout {
                op,
                after: OP_TIMEOUT,
            }),
        }
    }

    fn classify(&self, op: &'static str, key: &str, source: RedisError) -> KvError {
        let not_integer = source.code() == Some("ERR")
            && source
                .detail()
                .is_some_and(|detail| detail.starts_with("value is not an integer"));
        if source.code() == Some("WRONGTYPE") || not_integer {
            KvError::WrongType {
                op,
                key: key.to_owned(),
            }
        } else if source.is_timeout() {
            KvError::Timeout {
                op,
                after: OP_TIMEOUT,
            }
        } else if source.is_io_error()
            || source.is_connection_dropped()
            || source.is_connection_refusal()
        {
            KvError::Unavailable {
                op,
                url: self.url.to_string(),
                source,
            }
        } else {
            KvError::Redis { op, source }
        }
    }
}

/// `url` with the user-info part (which may hold a password) and any query
/// string (which may too) replaced by `***`.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (rest, query) = match rest.split_once('?') {
        Some((rest, _)) => (rest, "?***"),
        None => (rest, ""),
    };
    let (authority, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, ""),
    };
    let host = match authority.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => authority.to_owned(),
    };
    format!("{scheme}://{host}{path}{query}")
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(
            redact_url("redis://user:secret@host:6379/0"),
            "redis://***@host:6379/0"
        );
        assert_eq!(
            redact_url("rediss://:p@ss@host/1?password=x"),
            "rediss://***@host/1?***"
        );
        assert_eq!(redact_url("not a url"), "not a url");
        assert_eq!(redact_url(""), "");
    }
}
