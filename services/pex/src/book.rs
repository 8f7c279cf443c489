//! The records peer exchange knows, in two bounded sets:
//!
//! - *given*: peers this node dialed and connected to successfully, with
//!   their records — the only ones it gives out, for [`GIVE_OUT_FOR_MS`]
//!   after the last such connection and while the record lives;
//! - *heard*: records other peers gave us, not yet confirmed; one moves to
//!   *given* when this node connects to its peer.
//!
//! Keeping them apart means a flood of fresh records from askers or
//! answerers can push out only other hearsay, never a first-hand peer.

use std::collections::HashMap;
use std::sync::Arc;

use rand::Rng;
use rand::seq::IteratorRandom as _;
use skywire_identity::PublicKey;
use skywire_record::{Insert, NodeRecord, RecordSet};

/// Records heard of at most: 30 per answer, one answer per peer per
/// minute, so hearsay from a few hundred peers; the oldest-signed go first.
pub const MAX_HEARD: usize = 4096;

/// First-hand peers kept at most (a node's outbound connections over a
/// day are far fewer); the least recently connected go first.
pub const MAX_GIVEN: usize = 1024;

/// How long after its last successful connection a peer is still given
/// out: a day, as long as a record lives.
pub const GIVE_OUT_FOR_MS: u64 = 24 * 3600 * 1000;

#[derive(Debug)]
struct Given {
    record: Arc<NodeRecord>,
    connected_ms: u64,
}

/// The records peer exchange knows (see the module documentation).
#[derive(Debug)]
pub struct Book {
    given: HashMap<PublicKey, Given>,
    /// Peers connected to whose record we do not have yet, and when.
    pending: HashMap<PublicKey, u64>,
    heard: RecordSet,
    max_given: usize,
}

impl Default for Book {
    fn default() -> Self {
        Self::new(MAX_HEARD, MAX_GIVEN)
    }
}

impl Book {
    /// A book holding at most `max_heard` hearsay records and `max_given`
    /// first-hand peers (each at least 1).
    pub fn new(max_heard: usize, max_given: usize) -> Self {
        Self {
            given: HashMap::new(),
            pending: HashMap::new(),
            heard: RecordSet::new(max_heard.max(1)),
            max_given: max_given.max(1),
        }
    }

    /// Takes in a record someone gave us: it refreshes the record of a
    /// first-hand peer, or joins the hearsay (see [`RecordSet::insert`]).
    /// A record of a peer connected to just before (see
    /// [`Book::connected`]) is first-hand at once.
    pub fn heard(&mut self, record: Arc<NodeRecord>, now_ms: u64) -> Insert {
        let node = record.node_id();
        if let Some(given) = self.given.get_mut(&node) {
            return if record.seq() > given.record.seq() {
                given.record = record;
                Insert::Replaced
            } else {
                Insert::Stale
            };
        }
        if let Some(connected_ms) = self.pending.remove(&node) {
            self.give(record, connected_ms);
            return Insert::New;
        }
        self.heard.insert(NodeRecord::clone(&record), now_ms)
    }

    /// This node connected successfully to `node` (it dialed it) at
    /// `now_ms`: its record, if known, may be given out from now on; if
    /// not, the next record of it heard will be.
    pub fn connected(&mut self, node: PublicKey, now_ms: u64) {
        if let Some(given) = self.given.get_mut(&node) {
            given.connected_ms = now_ms;
            return;
        }
        match self.heard.get(&node, now_ms) {
            Some(record) => {
                let record = Arc::new(record.clone());
                self.give(record, now_ms);
            }
            None => {
                if !self.pending.contains_key(&node) && self.pending.len() >= self.max_given {
                    evict_oldest(&mut self.pending, |at| *at);
                }
                self.pending.insert(node, now_ms);
            }
        }
    }

    fn give(&mut self, record: Arc<NodeRecord>, connected_ms: u64) {
        if self.given.len() >= self.max_given {
            evict_oldest(&mut self.given, |g| g.connected_ms);
        }
        self.given.insert(
            record.node_id(),
            Given {
                record,
                connected_ms,
            },
        );
    }

    /// Whether `node` may be given out at `now_ms`.
    pub fn is_given(&self, node: &PublicKey, now_ms: u64) -> bool {
        self.given.get(node).is_some_and(|g| g.fresh(now_ms))
    }

    /// Up to `n` first-hand records at random, none of `exclude` (the
    /// asker), all fresh at `now_ms`.
    pub fn sample(
        &self,
        exclude: &PublicKey,
        n: usize,
        now_ms: u64,
        rng: &mut impl Rng,
    ) -> Vec<Arc<NodeRecord>> {
        self.given
            .iter()
            .filter(|(node, given)| *node != exclude && given.fresh(now_ms))
            .map(|(_, given)| given.record.clone())
            .choose_multiple(rng, n)
    }

    /// Drops what is stale at `now_ms`: expired records, peers not
    /// connected within [`GIVE_OUT_FOR_MS`].
    pub fn expire(&mut self, now_ms: u64) {
        self.given.retain(|_, given| given.fresh(now_ms));
        self.pending
            .retain(|_, at| now_ms.saturating_sub(*at) < GIVE_OUT_FOR_MS);
        self.heard.expire(now_ms);
    }

    /// First-hand peers held (fresh or not yet expired).
    pub fn given_len(&self) -> usize {
        self.given.len()
    }

    /// Hearsay records held.
    pub fn heard_len(&self) -> usize {
        self.heard.len()
    }
}

impl Given {
    fn fresh(&self, now_ms: u64) -> bool {
        !self.record.is_expired(now_ms)
            && now_ms.saturating_sub(self.connected_ms) < GIVE_OUT_FOR_MS
    }
}

/// Removes the entry of `map` with the lowest `at`.
fn evict_oldest<V>(map: &mut HashMap<PublicKey, V>, at: impl Fn(&V) -> u64) {
    if let Some(oldest) = map.iter().min_by_key(|(_, v)| at(v)).map(|(k, _)| *k) {
        map.remove(&oldest);
    }
}
