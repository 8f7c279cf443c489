//! What other nodes ask this node to keep: their own records (so their
//! address resolves) and provider entries (who serves a service), each for
//! [`STORE_TTL_MS`] after it was put, never past the record's own expiry,
//! and bounded in number.

use std::collections::HashMap;
use std::sync::Arc;

use skywire_record::{NodeRecord, RECORD_TTL_MS};

use crate::key::Key;

/// How long a put record or provider entry is kept: three republish
/// intervals, so one or two lost republications lose nothing.
pub const STORE_TTL_MS: u64 = 3 * REPUBLISH_INTERVAL_MS;

/// How often a node puts its record and its provider entries again.
pub const REPUBLISH_INTERVAL_MS: u64 = 10 * 60 * 1000;

/// Records kept at most. A node is asked to keep the records of the nodes
/// nearest it, about k per node in the network near its key; 64 Ki records
/// of at most 8 KiB bound the store to 512 MiB in the worst case and a few
/// MiB in practice.
pub const MAX_RECORDS: usize = 65_536;

/// Providers kept per service, at most; a lookup wants 20.
pub const MAX_PROVIDERS_PER_SERVICE: usize = 64;

/// Provider entries kept at most, across services.
pub const MAX_PROVIDER_ENTRIES: usize = 65_536;

/// Why something was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A record with a higher sequence number is held.
    #[error("a newer record is held")]
    Stale,
    /// A different record with the same sequence number is held.
    #[error("a different record with the same sequence number is held")]
    Equivocation,
    /// The record does not list the service it provides.
    #[error("the record does not list the service")]
    NotListed,
    /// The store is full of unexpired entries.
    #[error("store full")]
    Full,
    /// The record expires before it could be kept.
    #[error("the record has expired")]
    Expired,
}

#[derive(Debug, Clone)]
struct Held {
    record: Arc<NodeRecord>,
    until_ms: u64,
}

impl Held {
    /// The entry for `record` put at `now_ms`, and its TTL in ms.
    ///
    /// # Errors
    ///
    /// [`Refusal::Expired`] if the record expires by `now_ms`.
    fn new(record: Arc<NodeRecord>, now_ms: u64) -> Result<(Self, u64), Refusal> {
        let until_ms = now_ms
            .saturating_add(STORE_TTL_MS)
            .min(record.timestamp_ms().saturating_add(RECORD_TTL_MS));
        if until_ms <= now_ms {
            return Err(Refusal::Expired);
        }
        Ok((Self { record, until_ms }, until_ms - now_ms))
    }

    fn live(&self, now_ms: u64) -> bool {
        self.until_ms > now_ms
    }
}

/// Decides whether `new` may replace `held` (the same node's).
fn replaces(held: &NodeRecord, new: &NodeRecord) -> Result<(), Refusal> {
    if new.seq() < held.seq() {
        Err(Refusal::Stale)
    } else if new.seq() == held.seq() && new.digest() != held.digest() {
        Err(Refusal::Equivocation)
    } else {
        Ok(())
    }
}

/// The records and provider entries this node keeps for others.
#[derive(Debug, Default)]
pub struct Values {
    records: HashMap<Key, Held>,
    providers: HashMap<Key, Vec<Held>>,
    provider_entries: usize,
}

impl Values {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps `record` (already verified, put by its own node); returns how
    /// long, in milliseconds.
    ///
    /// # Errors
    ///
    /// [`Refusal::Stale`], [`Refusal::Equivocation`] or [`Refusal::Full`].
    pub fn put_record(&mut self, record: Arc<NodeRecord>, now_ms: u64) -> Result<u64, Refusal> {
        let key = Key::of_address(&record.address());
        if let Some(held) = self.records.get(&key).filter(|h| h.live(now_ms)) {
            replaces(&held.record, &record)?;
        } else if self.records.len() >= MAX_RECORDS {
            self.expire(now_ms);
            if self.records.len() >= MAX_RECORDS {
                return Err(Refusal::Full);
            }
        }
        let (held, ttl) = Held::new(record, now_ms)?;
        self.records.insert(key, held);
        Ok(ttl)
    }

    /// The record kept for the node with `key`.
    pub fn record(&self, key: &Key, now_ms: u64) -> Option<Arc<NodeRecord>> {
        self.records
            .get(key)
            .filter(|h| h.live(now_ms))
            .map(|h| h.record.clone())
    }

    /// Keeps `record`'s node as a provider of `service`; returns how long,
    /// in milliseconds.
    ///
    /// # Errors
    ///
    /// [`Refusal::NotListed`] if the record does not list `service`;
    /// [`Refusal::Stale`] or [`Refusal::Equivocation`] against the entry
    /// held; [`Refusal::Full`].
    pub fn add_provider(
        &mut self,
        service: &str,
        record: Arc<NodeRecord>,
        now_ms: u64,
    ) -> Result<u64, Refusal> {
        if !record.services().iter().any(|s| s == service) {
            return Err(Refusal::NotListed);
        }
        let key = Key::of_service(service);
        if self.provider_entries >= MAX_PROVIDER_ENTRIES {
            self.expire(now_ms);
        }
        let (held, ttl) = Held::new(record, now_ms)?;
        let list = self.providers.entry(key).or_default();
        let node = held.record.node_id();
        if let Some(existing) = list.iter_mut().find(|h| h.record.node_id() == node) {
            if existing.live(now_ms) {
                replaces(&existing.record, &held.record)?;
            }
            *existing = held;
            return Ok(ttl);
        }
        let before = list.len();
        list.retain(|h| h.live(now_ms));
        self.provider_entries -= before - list.len();
        if list.len() >= MAX_PROVIDERS_PER_SERVICE {
            // The entry that expires first makes room.
            let (i, _) = list
                .iter()
                .enumerate()
                .min_by_key(|(_, h)| h.until_ms)
                .expect("a full list is not empty");
            list.swap_remove(i);
        } else if self.provider_entries >= MAX_PROVIDER_ENTRIES {
            return Err(Refusal::Full);
        } else {
            self.provider_entries += 1;
        }
        list.push(held);
        Ok(ttl)
    }

    /// Up to `n` providers of the service with key `key`, most recently
    /// put first.
    pub fn providers(&self, key: &Key, n: usize, now_ms: u64) -> Vec<Arc<NodeRecord>> {
        let Some(list) = self.providers.get(key) else {
            return Vec::new();
        };
        let mut live: Vec<&Held> = list.iter().filter(|h| h.live(now_ms)).collect();
        live.sort_by_key(|h| std::cmp::Reverse(h.until_ms));
        live.into_iter().take(n).map(|h| h.record.clone()).collect()
    }

    /// Drops what expired.
    pub fn expire(&mut self, now_ms: u64) {
        self.records.retain(|_, h| h.live(now_ms));
        let mut entries = 0;
        self.providers.retain(|_, list| {
            list.retain(|h| h.live(now_ms));
            entries += list.len();
            !list.is_empty()
        });
        self.provider_entries = entries;
    }

    /// Records kept.
    pub fn records_len(&self) -> usize {
        self.records.len()
    }

    /// Provider entries kept.
    pub fn provider_entries(&self) -> usize {
        self.provider_entries
    }
}
