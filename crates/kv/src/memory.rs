//! The embedded backend: a bounded map with the semantics of the Redis
//! backend, for a single process.
//!
//! Every key has an expiry (all writes take a TTL). An ordered index of
//! `(expiry, key)` lets each operation purge a few expired keys cheaply
//! ([`PURGE_BATCH`]) and lets a full store purge all of them before refusing
//! a new key. Expired keys that were not purged yet are treated as absent.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::KvError;

/// Expired keys purged by each write, at most: amortises the cleanup over
/// the traffic without making any one call scan a large backlog.
const PURGE_BATCH: usize = 64;

/// The in-memory store. Clones share the map.
#[derive(Clone)]
pub(crate) struct MemoryKv {
    state: Arc<Mutex<State>>,
    max_keys: usize,
}

impl std::fmt::Debug for MemoryKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryKv")
            .field("max_keys", &self.max_keys)
            .finish_non_exhaustive()
    }
}

struct State {
    entries: HashMap<String, Entry>,
    /// One record per entry: `(entry.expires_at, key)`.
    expiries: BTreeSet<(Instant, String)>,
    max_keys: usize,
}

struct Entry {
    value: Value,
    expires_at: Instant,
}

enum Value {
    /// A plain value (Redis string); counters are decimal text, as in Redis.
    Bytes(Vec<u8>),
    /// A set of members, each with its own expiry (Redis sorted set scored
    /// by expiry).
    Members(HashMap<String, Instant>),
}

impl MemoryKv {
    pub(crate) fn new(max_keys: usize) -> Self {
        MemoryKv {
            state: Arc::new(Mutex::new(State {
                entries: HashMap::new(),
                expiries: BTreeSet::new(),
                max_keys,
            })),
            max_keys,
        }
    }

    /// Locks the state. A panic while holding the lock cannot leave the map
    /// inconsistent in a way that matters more than losing the store, so a
    /// poisoned lock is simply taken over.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn set(&self, key: &str, value: &[u8], ttl_ms: u64) -> Result<(), KvError> {
        let now = Instant::now();
        let mut s = self.lock();
        s.purge(now, PURGE_BATCH);
        s.drop_if_expired(key, now);
        s.reserve(key, now)?;
        s.put(key, Value::Bytes(value.to_vec()), expiry(now, ttl_ms));
        Ok(())
    }

    pub(crate) fn set_nx(&self, key: &str, value: &[u8], ttl_ms: u64) -> Result<bool, KvError> {
        let now = Instant::now();
        let mut s = self.lock();
        s.purge(now, PURGE_BATCH);
        s.drop_if_expired(key, now);
        if s.entries.contains_key(key) {
            return Ok(false);
        }
        s.reserve(key, now)?;
        s.put(key, Value::Bytes(value.to_vec()), expiry(now, ttl_ms));
        Ok(true)
    }

    pub(crate) fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let now = Instant::now();
        let mut s = self.lock();
        s.drop_if_expired(key, now);
        match s.entries.get(key).map(|e| &e.value) {
            None => Ok(None),
            Some(Value::Bytes(v)) => Ok(Some(v.clone())),
            Some(Value::Members(_)) => Err(wrong_type("get", key)),
        }
    }

    pub(crate) fn del(&self, key: &str) -> Result<(), KvError> {
        let mut s = self.lock();
        s.remove(key);
        Ok(())
    }

    pub(crate) fn del_if_eq(&self, key: &str, value: &[u8]) -> Result<bool, KvError> {
        let now = Instant::now();
        let mut s = self.lock();
        s.drop_if_expired(key, now);
        match s.entries.get(key).map(|e| &e.value) {
            None => Ok(false),
            Some(Value::Bytes(v)) if v.as_slice() == value => {
                s.remove(key);
                Ok(true)
            }
            Some(Value::Bytes(_)) => Ok(false),
            Some(Value::Members(_)) => Err(wrong_type("del_if_eq", key)),
        }
    }

    pub(crate) fn expire_if_eq(
        &self,
        key: &str,
        value: &[u8],
        ttl_ms: u64,
    ) -> Result<bool, KvError> {
        let now = Instant::now();
        let mut s = self.lock();
        s.drop_if_expired(key, now);
        match s.entries.get(key).map(|e| &e.value) {
            None => Ok(false),
            Some(Value::Bytes(v)) if v.as_slice() == value => {
                s.set_expiry(key, expiry(now, ttl_ms));
                Ok(true)
            }
            Some(Value::Bytes(_)) => Ok(false),
            Some(Value::Members(_)) => Err(wrong_type("expire_if_eq", key)),
        }
    }

    /// As the Redis script: `INCR`; a key without a window gets one.
    pub(crate) fn incr_window(&self, key: &str, window_ms: u64) -> Result<(i64, u64), KvError> {
        const OP: &str = "rate_limit";
        let now = Instant::now();
        let mut s = self.lock();
        s.purge(now, PURGE_BATCH);
        s.drop_if_expired(key, now);
        let Some(entry) = s.entries.get_mut(key) else {
            s.reserve(key, now)?;
            s.put(key, Value::Bytes(b"1".to_vec()), expiry(now, window_ms));
            return Ok((1, window_ms));
        };
        let Value::Bytes(bytes) = &mut entry.value else {
            return Err(wrong_type(OP, key));
        };
        let count = std::str::from_utf8(bytes)
            .ok()
            .and_then(|text| text.parse::<i64>().ok())
            .and_then(|n| n.checked_add(1))
            .ok_or_else(|| wrong_type(OP, key))?;
        *bytes = count.to_string().into_bytes();
        Ok((count, millis_left(entry.expires_at, now)))
    }

    /// As the Redis script: drop expired members, then take or keep a slot.
    pub(crate) fn members_acquire(
        &self,
        key: &str,
        member: &str,
        limit: u32,
        ttl_ms: u64,
    ) -> Result<bool, KvError> {
        const OP: &str = "connection_acquire";
        let now = Instant::now();
        let member_expiry = expiry(now, ttl_ms);
        let mut s = self.lock();
        s.purge(now, PURGE_BATCH);
        s.drop_if_expired(key, now);
        let Some(entry) = s.entries.get_mut(key) else {
            if limit == 0 {
                return Ok(false);
            }
            s.reserve(key, now)?;
            let members = HashMap::from([(member.to_owned(), member_expiry)]);
            s.put(key, Value::Members(members), member_expiry);
            return Ok(true);
        };
        let Value::Members(members) = &mut entry.value else {
            return Err(wrong_type(OP, key));
        };
        members.retain(|_, at| *at > now);
        let holds = members.contains_key(member);
        // `limit` fits in usize on every platform this builds for; if it did
        // not, it would exceed any set we could hold anyway.
        let room = usize::try_from(limit).map_or(true, |limit| members.len() < limit);
        if holds || room {
            members.insert(member.to_owned(), member_expiry);
            let key_expiry = entry.expires_at.max(member_expiry);
            s.set_expiry(key, key_expiry);
            Ok(true)
        } else {
            if members.is_empty() {
                s.remove(key);
            }
            Ok(false)
        }
    }

    /// As the Redis script: drop expired members, then re-score `member` if
    /// it is still there.
    pub(crate) fn members_refresh(
        &self,
        key: &str,
        member: &str,
        ttl_ms: u64,
    ) -> Result<bool, KvError> {
        let now = Instant::now();
        let member_expiry = expiry(now, ttl_ms);
        let mut s = self.lock();
        s.drop_if_expired(key, now);
        let Some(entry) = s.entries.get_mut(key) else {
            return Ok(false);
        };
        let Value::Members(members) = &mut entry.value else {
            return Err(wrong_type("connection_refresh", key));
        };
        members.retain(|_, at| *at > now);
        if let Some(at) = members.get_mut(member) {
            *at = member_expiry;
            let key_expiry = entry.expires_at.max(member_expiry);
            s.set_expiry(key, key_expiry);
            Ok(true)
        } else {
            if members.is_empty() {
                s.remove(key);
            }
            Ok(false)
        }
    }

    /// As the Redis script: the live member with the latest expiry.
    pub(crate) fn members_newest(&self, key: &str) -> Result<Option<String>, KvError> {
        let now = Instant::now();
        let mut s = self.lock();
        s.drop_if_expired(key, now);
        let Some(entry) = s.entries.get(key) else {
            return Ok(None);
        };
        let Value::Members(members) = &entry.value else {
            return Err(wrong_type("members_newest", key));
        };
        Ok(members
            .iter()
            .filter(|(_, at)| **at > now)
            .max_by_key(|(_, at)| **at)
            .map(|(member, _)| member.clone()))
    }

    pub(crate) fn members_remove(&self, key: &str, member: &str) -> Result<(), KvError> {
        let now = Instant::now();
        let mut s = self.lock();
        s.drop_if_expired(key, now);
        let Some(entry) = s.entries.get_mut(key) else {
            return Ok(());
        };
        let Value::Members(members) = &mut entry.value else {
            return Err(wrong_type("connection_release", key));
        };
        members.remove(member);
        if members.is_empty() {
            s.remove(key);
        }
        Ok(())
    }
}

impl State {
    /// Removes up to `budget` keys whose expiry is at or before `now`.
    fn purge(&mut self, now: Instant, budget: usize) {
        for _ in 0..budget {
            match self.expiries.first() {
                Some((at, _)) if *at <= now => {}
                _ => return,
            }
            if let Some((_, key)) = self.expiries.pop_first() {
                self.entries.remove(&key);
            }
        }
    }

    fn drop_if_expired(&mut self, key: &str, now: Instant) {
        if self.entries.get(key).is_some_and(|e| e.expires_at <= now) {
            self.remove(key);
        }
    }

    fn remove(&mut self, key: &str) {
        if let Some(entry) = self.entries.remove(key) {
            self.expiries.remove(&(entry.expires_at, key.to_owned()));
        }
    }

    /// Makes room for `key` if it is new: purges every expired key when the
    /// store is full, and fails if that frees nothing.
    fn reserve(&mut self, key: &str, now: Instant) -> Result<(), KvError> {
        if self.entries.contains_key(key) || self.entries.len() < self.max_keys {
            return Ok(());
        }
        self.purge(now, usize::MAX);
        if self.entries.len() < self.max_keys {
            return Ok(());
        }
        tracing::warn!(max_keys = self.max_keys, "in-memory kv full");
        Err(KvError::Full {
            max_keys: self.max_keys,
        })
    }

    /// Inserts or replaces `key` (call [`State::reserve`] first).
    fn put(&mut self, key: &str, value: Value, expires_at: Instant) {
        self.remove(key);
        self.entries
            .insert(key.to_owned(), Entry { value, expires_at });
        self.expiries.insert((expires_at, key.to_owned()));
    }

    fn set_expiry(&mut self, key: &str, expires_at: Instant) {
        if let Some(entry) = self.entries.get_mut(key) {
            let old = std::mem::replace(&mut entry.expires_at, expires_at);
            self.expiries.remove(&(old, key.to_owned()));
            self.expiries.insert((expires_at, key.to_owned()));
        }
    }
}

/// `now + ttl_ms`. TTLs are bounded by [`crate::MAX_TTL`], so this does not
/// overflow; if it ever did, the key would expire at once rather than panic.
fn expiry(now: Instant, ttl_ms: u64) -> Instant {
    now.checked_add(Duration::from_millis(ttl_ms))
        .unwrap_or(now)
}

/// Whole milliseconds from `now` until `at` (Redis `PTTL`).
fn millis_left(at: Instant, now: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(now).as_millis()).unwrap_or(u64::MAX)
}

fn wrong_type(op: &'static str, key: &str) -> KvError {
    KvError::WrongType {
        op,
        key: key.to_owned(),
    }
}
