//! The routing table: [`KEY_BITS`] k-buckets of verified contacts.
//!
//! Bucket `i` holds contacts whose distance to us has `i` leading zero bits,
//! least recently seen first, at most [`TableConfig::k`] of them, and a small
//! cache of replacements. A contact enters only once we have talked to it
//! over an authenticated SWP/1 connection ([`Origin`]), so the table never
//! holds a node nobody could reach.
//!
//! Hardening against Sybil and eclipse attacks (discv5, S/Kademlia):
//! - at most [`MAX_PER_SUBNET_PER_BUCKET`] contacts of one /24 (IPv6: /48)
//!   per bucket and [`MAX_PER_SUBNET_PER_TABLE`] in the whole table;
//! - nodes that contacted us ([`Origin::Inbound`]) are not admitted until
//!   the table is stocked ([`RoutingTable::mark_stocked`], after the first
//!   bootstrap lookup), so an attacker cannot fill a starting node's table;
//! - a full bucket never drops a contact that still answers: a newcomer
//!   waits in the replacement cache while the least recently seen contact
//!   is checked ([`Insert::Replacement`]), and takes its place only if the
//!   check fails ([`RoutingTable::failed`]).
//!
//! The table does no I/O: the caller checks liveness, and passes the time.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use skywire_record::NodeRecord;

use crate::key::{Distance, KEY_BITS, Key};

/// Contacts per bucket (Kademlia's k), and nodes returned per lookup.
pub const K: usize = 20;

/// Replacements cached per bucket: newcomers that wait for a contact to
/// fail. Half a bucket is enough to refill it after a burst of departures.
pub const REPLACEMENTS: usize = K / 2;

/// Contacts of one subnet per bucket (discv5's limit).
pub const MAX_PER_SUBNET_PER_BUCKET: usize = 2;

/// Contacts of one subnet in the whole table (discv5's limit).
pub const MAX_PER_SUBNET_PER_TABLE: usize = 10;

/// Consecutive failures after which a contact is dropped even when no
/// replacement waits: one failure may be a passing network fault.
pub const MAX_FAILURES: u8 = 2;

/// How often a bucket nobody looked into is refreshed with a lookup of a
/// random key in its range.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// The table's limits.
#[derive(Debug, Clone)]
pub struct TableConfig {
    /// Contacts per bucket.
    pub k: usize,
    /// Replacements cached per bucket.
    pub replacements: usize,
    /// Contacts of one subnet per bucket.
    pub per_subnet_per_bucket: usize,
    /// Contacts of one subnet in the table.
    pub per_subnet_per_table: usize,
}

impl Default for TableConfig {
    fn default() -> Self {
        Self {
            k: K,
            replacements: REPLACEMENTS,
            per_subnet_per_bucket: MAX_PER_SUBNET_PER_BUCKET,
            per_subnet_per_table: MAX_PER_SUBNET_PER_TABLE,
        }
    }
}

/// The network a contact's address belongs to, for the subnet limits: its
/// /24 for IPv4, its /48 for IPv6 (what one operator easily holds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subnet {
    /// The first three bytes of an IPv4 address.
    V4([u8; 3]),
    /// The first six bytes of an IPv6 address.
    V6([u8; 6]),
}

impl Subnet {
    /// The subnet of `ip` (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => {
                let o = v4.octets();
                Self::V4([o[0], o[1], o[2]])
            }
            IpAddr::V6(v6) => {
                let o = v6.octets();
                Self::V6([o[0], o[1], o[2], o[3], o[4], o[5]])
            }
        }
    }
}

/// A node we can reach: its verified record and the endpoint it answered
/// at (for a candidate not yet contacted, the endpoint it advertises first).
#[derive(Debug, Clone)]
pub struct Contact {
    key: Key,
    record: Arc<NodeRecord>,
    endpoint: SocketAddr,
}

impl Contact {
    /// The contact `record` describes, reached at `endpoint`.
    pub fn new(record: Arc<NodeRecord>, endpoint: SocketAddr) -> Self {
        Self {
            key: Key::of_address(&record.address()),
            record,
            endpoint,
        }
    }

    /// The contact `record` describes, at its first endpoint; `None` if it
    /// advertises none (it cannot be dialed).
    pub fn from_record(record: Arc<NodeRecord>) -> Option<Self> {
        let endpoint = *record.endpoints().first()?;
        Some(Self::new(record, endpoint))
    }

    /// The node's key (the hash in its address).
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// The node's signed record.
    pub fn record(&self) -> &Arc<NodeRecord> {
        &self.record
    }

    /// Where the node is reached.
    pub fn endpoint(&self) -> SocketAddr {
        self.endpoint
    }

    /// The subnet of the endpoint.
    pub fn subnet(&self) -> Subnet {
        Subnet::of(self.endpoint.ip())
    }
}

/// How we came to know a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// We reached it: it answered a request we sent to its endpoint.
    Outbound,
    /// It reached us, from the address in its record.
    Inbound,
}

/// What [`RoutingTable::insert`] did.
#[derive(Debug)]
pub enum Insert {
    /// A new contact, now in its bucket.
    Added,
    /// A known contact: marked seen, its record replaced if newer.
    Updated,
    /// The bucket is full: the contact waits among the replacements. If
    /// `check` is set, the caller must check that contact (the bucket's
    /// least recently seen) and report [`RoutingTable::seen`] or
    /// [`RoutingTable::failed`]; `None` means a check is already under way.
    Replacement {
        /// The contact to check.
        check: Option<Contact>,
    },
    /// Not admitted.
    Rejected(Rejection),
}

/// Why a contact was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// It is this node.
    Own,
    /// It reached us before the table was stocked.
    NotStocked,
    /// Its record is older than the one held.
    Stale,
    /// Its bucket already holds the most contacts of its subnet.
    SubnetBucket,
    /// The table already holds the most contacts of its subnet.
    SubnetTable,
}

#[derive(Debug, Clone)]
struct Entry {
    contact: Contact,
    failures: u8,
}

#[derive(Debug, Default)]
struct Bucket {
    /// Least recently seen first.
    entries: Vec<Entry>,
    /// Most recent last.
    replacements: Vec<Contact>,
    /// The entry under a liveness check, if any.
    check: Option<Key>,
    /// When a lookup last went into this bucket's range.
    refreshed: Option<Instant>,
}

impl Bucket {
    fn position(&self, key: &Key) -> Option<usize> {
        self.entries.iter().position(|e| e.contact.key == *key)
    }

    fn in_subnet(&self, subnet: Subnet) -> usize {
        self.entries
            .iter()
            .filter(|e| e.contact.subnet() == subnet)
            .count()
    }
}

/// The routing table of one node.
#[derive(Debug)]
pub struct RoutingTable {
    local: Key,
    config: TableConfig,
    buckets: Vec<Bucket>,
    subnets: HashMap<Subnet, usize>,
    len: usize,
    stocked: bool,
}

impl RoutingTable {
    /// An empty table for the node whose key is `local`.
    pub fn new(local: Key, config: TableConfig) -> Self {
        Self {
            local,
            config,
            buckets: (0..KEY_BITS).map(|_| Bucket::default()).collect(),
            subnets: HashMap::new(),
            len: 0,
            stocked: false,
        }
    }

    /// Our own key.
    pub fn local(&self) -> &Key {
        &self.local
    }

    /// The table's limits.
    pub fn config(&self) -> &TableConfig {
        &self.config
    }

    /// Contacts in the table (not counting replacements).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table holds no contact.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether nodes that reach us may be admitted.
    pub fn is_stocked(&self) -> bool {
        self.stocked
    }

    /// Opens the table to nodes that reach us: called once the first
    /// bootstrap lookup is over.
    pub fn mark_stocked(&mut self) {
        self.stocked = true;
    }

    fn bucket_of(&self, key: &Key) -> Option<usize> {
        self.local.distance(key).bucket()
    }

    /// The contact with this key, if it is in the table.
    pub fn get(&self, key: &Key) -> Option<&Contact> {
        let bucket = &self.buckets[self.bucket_of(key)?];
        bucket.position(key).map(|i| &bucket.entries[i].contact)
    }

    /// Offers `contact` to the table.
    pub fn insert(&mut self, contact: Contact, origin: Origin) -> Insert {
        let Some(index) = self.bucket_of(&contact.key) else {
            return Insert::Rejected(Rejection::Own);
        };
        if origin == Origin::Inbound && !self.stocked {
            return Insert::Rejected(Rejection::NotStocked);
        }
        if let Some(i) = self.buckets[index].position(&contact.key) {
            return self.update(index, i, contact);
        }
        let subnet = contact.subnet();
        let config = &self.config;
        let bucket = &mut self.buckets[index];
        if bucket.in_subnet(subnet) >= config.per_subnet_per_bucket {
            return Insert::Rejected(Rejection::SubnetBucket);
        }
        if self.subnets.get(&subnet).copied().unwrap_or(0) >= config.per_subnet_per_table {
            return Insert::Rejected(Rejection::SubnetTable);
        }
        if bucket.entries.len() < config.k {
            bucket.replacements.retain(|c| c.key != contact.key);
            bucket.entries.push(Entry {
                contact,
                failures: 0,
            });
            *self.subnets.entry(subnet).or_default() += 1;
            self.len += 1;
            return Insert::Added;
        }
        bucket.replacements.retain(|c| c.key != contact.key);
        let same_subnet = bucket
            .replacements
            .iter()
            .filter(|c| c.subnet() == subnet)
            .count();
        if same_subnet >= config.per_subnet_per_bucket {
            return Insert::Rejected(Rejection::SubnetBucket);
        }
        if bucket.replacements.len() >= config.replacements {
            bucket.replacements.remove(0);
        }
        bucket.replacements.push(contact);
        let check = if bucket.check.is_none() {
            let oldest = bucket.entries[0].contact.clone();
            bucket.check = Some(oldest.key);
            Some(oldest)
        } else {
            None
        };
        Insert::Replacement { check }
    }

    /// A contact already in bucket `index` at `i` showed up again.
    fn update(&mut self, index: usize, i: usize, contact: Contact) -> Insert {
        let held = &self.buckets[index].entries[i].contact;
        if contact.record.seq() < held.record.seq() {
            return Insert::Rejected(Rejection::Stale);
        }
        let (old, new) = (held.subnet(), contact.subnet());
        let mut entry = self.buckets[index].entries.remove(i);
        entry.failures = 0;
        if old == new {
            entry.contact = contact;
        } else {
            let bucket_ok = self.buckets[index].in_subnet(new) < self.config.per_subnet_per_bucket;
            let table_ok =
                self.subnets.get(&new).copied().unwrap_or(0) < self.config.per_subnet_per_table;
            if bucket_ok && table_ok {
                self.uncount(old);
                *self.subnets.entry(new).or_default() += 1;
                entry.contact = contact;
            }
        }
        let bucket = &mut self.buckets[index];
        if bucket.check == Some(entry.contact.key) {
            bucket.check = None;
        }
        bucket.entries.push(entry);
        Insert::Updated
    }

    fn uncount(&mut self, subnet: Subnet) {
        if let Some(n) = self.subnets.get_mut(&subnet) {
            *n -= 1;
            if *n == 0 {
                self.subnets.remove(&subnet);
            }
        }
    }

    /// The contact with `key` answered: it becomes the most recently seen of
    /// its bucket, and a liveness check of it is over.
    pub fn seen(&mut self, key: &Key) {
        let Some(index) = self.bucket_of(key) else {
            return;
        };
        let bucket = &mut self.buckets[index];
        if let Some(i) = bucket.position(key) {
            let mut entry = bucket.entries.remove(i);
            entry.failures = 0;
            bucket.entries.push(entry);
        }
        if bucket.check == Some(*key) {
            bucket.check = None;
        }
    }

    /// The contact with `key` did not answer (a liveness check or a
    /// request). It is dropped if a replacement waits or it failed
    /// [`MAX_FAILURES`] times in a row; the newest replacement that fits the
    /// subnet limits takes its place. Returns whether it was dropped.
    pub fn failed(&mut self, key: &Key) -> bool {
        let Some(index) = self.bucket_of(key) else {
            return false;
        };
        let bucket = &mut self.buckets[index];
        if bucket.check == Some(*key) {
            bucket.check = None;
        }
        let Some(i) = bucket.position(key) else {
            bucket.replacements.retain(|c| c.key != *key);
            return false;
        };
        let entry = &mut bucket.entries[i];
        entry.failures = entry.failures.saturating_add(1);
        if entry.failures < MAX_FAILURES && bucket.replacements.is_empty() {
            return false;
        }
        let removed = bucket.entries.remove(i);
        self.len -= 1;
        self.uncount(removed.contact.subnet());
        self.promote(index);
        true
    }

    /// Moves the newest replacement of bucket `index` that fits the subnet
    /// limits into the bucket.
    fn promote(&mut self, index: usize) {
        let per_bucket = self.config.per_subnet_per_bucket;
        let per_table = self.config.per_subnet_per_table;
        let bucket = &self.buckets[index];
        let pick = bucket.replacements.iter().rposition(|c| {
            let subnet = c.subnet();
            bucket.in_subnet(subnet) < per_bucket
                && self.subnets.get(&subnet).copied().unwrap_or(0) < per_table
        });
        if let Some(r) = pick {
            let bucket = &mut self.buckets[index];
            let contact = bucket.replacements.remove(r);
            *self.subnets.entry(contact.subnet()).or_default() += 1;
            bucket.entries.push(Entry {
                contact,
                failures: 0,
            });
            self.len += 1;
        }
    }

    /// Removes the contact with `key` (and any replacement with it).
    pub fn remove(&mut self, key: &Key) -> Option<Contact> {
        let index = self.bucket_of(key)?;
        let bucket = &mut self.buckets[index];
        bucket.replacements.retain(|c| c.key != *key);
        if bucket.check == Some(*key) {
            bucket.check = None;
        }
        let i = bucket.position(key)?;
        let removed = bucket.entries.remove(i);
        self.len -= 1;
        self.uncount(removed.contact.subnet());
        self.promote(index);
        Some(removed.contact)
    }

    /// The `n` contacts closest to `target`, nearest first.
    pub fn closest(&self, target: &Key, n: usize) -> Vec<Contact> {
        let mut all: Vec<(Distance, &Contact)> = self
            .contacts()
            .map(|c| (c.key.distance(target), c))
            .collect();
        if all.len() > n {
            all.select_nth_unstable_by_key(n, |(d, _)| *d);
            all.truncate(n);
        }
        all.sort_unstable_by_key(|(d, _)| *d);
        all.into_iter().map(|(_, c)| c.clone()).collect()
    }

    /// Every contact, bucket by bucket.
    pub fn contacts(&self) -> impl Iterator<Item = &Contact> {
        self.buckets
            .iter()
            .flat_map(|b| b.entries.iter().map(|e| &e.contact))
    }

    /// A lookup of `target` went into its bucket's range at `now`.
    pub fn touch(&mut self, target: &Key, now: Instant) {
        if let Some(index) = self.bucket_of(target) {
            self.buckets[index].refreshed = Some(now);
        }
    }

    /// Buckets no lookup went into for [`REFRESH_INTERVAL`] before `now`:
    /// every bucket up to one past the nearest non-empty one (the buckets
    /// beyond are empty in any network smaller than 2^that). The caller
    /// looks up a random key in each ([`Key::random_in_bucket`]) and
    /// [`touch`](Self::touch)es it.
    pub fn stale_buckets(&self, now: Instant) -> Vec<usize> {
        let deepest = self
            .buckets
            .iter()
            .rposition(|b| !b.entries.is_empty())
            .map_or(0, |i| (i + 1).min(KEY_BITS - 1));
        (0..=deepest)
            .filter(|&i| {
                self.buckets[i]
                    .refreshed
                    .is_none_or(|t| now.saturating_duration_since(t) >= REFRESH_INTERVAL)
            })
            .collect()
    }
}
