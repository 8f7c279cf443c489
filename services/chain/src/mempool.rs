//! The transaction pool of `txrelay/1`: verified, unconfirmed transactions waiting for a
//! block, and orphans (transactions spending outputs this node does not know yet) waiting
//! for the blocks that create them. Sans-IO: no database, no async, no clock; the caller
//! passes the time in.
//!
//! # How it is used
//!
//! - A transaction arrives (from a peer or an API): the caller checks it with
//!   [`verify_transaction`](crate::verify::verify_transaction) against the current head.
//!   Accepted: [`Mempool::insert`] with what the verifier returned; the transactions it
//!   evicted to make room are no longer announced. Refused with
//!   [`TxRejection::InputNotUnspent`](crate::verify::TxRejection::InputNotUnspent) (every
//!   rule that needs only the transaction passed, but an input is unknown: spent, or created
//!   by a block we do not have yet): [`Mempool::insert_orphan`] with the inputs not found.
//! - An announcement of transaction ids: [`Mempool::missing`] says which to ask for.
//! - A block is applied: [`Mempool::remove_confirmed`] with its transaction ids and the
//!   outputs it spent drops what it confirmed and what now conflicts with it; then
//!   [`Mempool::take_ready`] with the outputs it created hands back the orphans no longer
//!   missing anything, to be verified again and inserted (or orphaned again, if another of
//!   their inputs is still unknown).
//! - Periodically: [`Mempool::expire`].
//! - The publisher: [`Mempool::select`] for the next block, to be checked against the head
//!   it builds on.
//!
//! # Policy
//!
//! - **No transaction chains.** As in Skycoin, a transaction may spend only *confirmed*
//!   outputs (every input must be in the unspent set at the head), so no pool transaction
//!   depends on another. Evicting or expiring one never invalidates another, and the
//!   transactions are ranked one by one, by their own fee rate.
//! - **Fee rate** is the fee (coin hours burned, at the head the transaction was verified
//!   against) over the encoded size in bytes, compared exactly (cross-multiplied in
//!   `u128`). Transactions of equal fee rate are ordered by id, so every node ranks the
//!   pool alike: [`Mempool::select`] takes the higher rate first, then the smaller id; the
//!   pool evicts in the reverse order.
//! - **No replacement.** A transaction spending an output a pool transaction already spends
//!   is refused ([`MempoolError::Conflict`]), whatever its fee: the first seen wins.
//!   Replacing by fee would let anyone who holds a key churn the relay's bandwidth for the
//!   price of one fee increment, and every node would have to agree on when a replacement
//!   is worth relaying.
//! - **Full pool.** A newcomer enters a full pool ([`MempoolConfig::max_transactions`] or
//!   [`MempoolConfig::max_bytes`]) only if it can evict enough transactions of a *strictly
//!   lower* fee rate, lowest first; otherwise nothing changes and it is refused
//!   ([`MempoolError::PoolFull`]).
//! - **Stored fees stay valid.** Coin hours only grow with the head's time, so a pool
//!   transaction stays valid as blocks are applied unless a block spends one of its inputs
//!   (which [`Mempool::remove_confirmed`] catches). Its recorded fee is a lower bound of its
//!   fee at a later head; the publisher verifies what it selects against its head anyway.
//!
//! # Time
//!
//! Every `now_ms` is in milliseconds on a clock of the caller's choice that must not go
//! backwards: milliseconds since the node started (from a monotonic clock) are best; Unix
//! milliseconds do. The pool only compares differences with [`MempoolConfig::expiry`] and
//! [`MempoolConfig::orphan_expiry`], never with block times.
//!
//! # Bounds
//!
//! Every structure is bounded by the configuration: at most
//! [`MempoolConfig::max_transactions`] transactions of [`MempoolConfig::max_bytes`] in all,
//! and at most [`MempoolConfig::max_orphans`] orphans of [`MempoolConfig::max_orphan_bytes`]
//! in all. The indices hold one entry per transaction, and one per input (at most one per
//! 32 bytes of transaction). Insertion, eviction, expiry and removal cost `O(log n)` per
//! transaction touched (each transaction is evicted at most once); [`Mempool::select`] is
//! one pass in rank order.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use skywire_coin::{Hash, Output, Sig, Transaction};

use crate::verify::TxVerified;

/// Default [`MempoolConfig::max_bytes`]: 8 MiB of encoded transactions, 256 blocks of
/// [`DEFAULT_MAX_BLOCK_SIZE`](crate::verify::DEFAULT_MAX_BLOCK_SIZE): far more than the
/// publisher confirms within [`DEFAULT_EXPIRY`] when the network is calm, while the
/// memory of the whole pool (transactions and indices) stays in the tens of MiB.
pub const DEFAULT_MAX_BYTES: usize = 8 * 1024 * 1024;

/// Default [`MempoolConfig::max_transactions`]. Bounds the per-transaction overhead of the
/// indices when transactions are small: 10,000 of the smallest (one input, one output,
/// [`SMALLEST_TRANSACTION`] bytes) are under 2 MiB.
pub const DEFAULT_MAX_TRANSACTIONS: usize = 10_000;

/// Default [`MempoolConfig::expiry`]: 3 hours. An honest transaction is confirmed within a
/// few blocks, or never (another spent its inputs, which [`Mempool::remove_confirmed`]
/// catches). One still here after 3 hours is stuck behind better-paying ones. Skycoin's
/// node does not keep unconfirmed transactions forever either; a fixed age, the same on
/// every node, keeps a stuck transaction from holding memory and relay attention
/// indefinitely. Its sender can submit it again.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(3 * 3600);

/// Default [`MempoolConfig::max_orphans`]. Orphans cannot be fully checked (their inputs'
/// owners and hours are unknown), so they are capped far below the pool.
pub const DEFAULT_MAX_ORPHANS: usize = 1_000;

/// Default [`MempoolConfig::max_orphan_bytes`]: 1 MiB, 32 blocks of
/// [`DEFAULT_MAX_BLOCK_SIZE`](crate::verify::DEFAULT_MAX_BLOCK_SIZE), enough for the
/// transactions that spend what a short sync delivers.
pub const DEFAULT_MAX_ORPHAN_BYTES: usize = 1024 * 1024;

/// Default [`MempoolConfig::orphan_expiry`]: 10 minutes. An orphan is worth keeping while
/// our chain catches up with the sender's; one still missing its inputs after that
/// most likely spends an output that does not exist or was spent.
pub const DEFAULT_ORPHAN_EXPIRY: Duration = Duration::from_secs(10 * 60);

/// The encoded size of the smallest valid transaction: one input (and its signature), one
/// output. [`Mempool::select`] stops once less room than this is left.
pub const SMALLEST_TRANSACTION: usize =
    Transaction::BASE_LEN + Sig::LEN + Hash::LEN + Output::ENCODED_LEN;

/// The limits of a [`Mempool`]. The defaults are the `DEFAULT_*` constants of this module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MempoolConfig {
    /// The most bytes the pool's transactions may add up to (their encoded sizes). A
    /// transaction larger than this is refused outright ([`MempoolError::TooLarge`]).
    pub max_bytes: usize,
    /// The most transactions the pool holds.
    pub max_transactions: usize,
    /// How long a transaction stays in the pool unconfirmed before [`Mempool::expire`]
    /// drops it. Counted in whole milliseconds.
    pub expiry: Duration,
    /// The most orphans held; the oldest is evicted to make room. 0 keeps none
    /// ([`MempoolError::OrphansDisabled`]).
    pub max_orphans: usize,
    /// The most bytes the orphans may add up to; the oldest are evicted to make room. An
    /// orphan larger than this is refused ([`MempoolError::TooLarge`]).
    pub max_orphan_bytes: usize,
    /// How long an orphan waits for its missing inputs before [`Mempool::expire`] drops
    /// it. Counted in whole milliseconds.
    pub orphan_expiry: Duration,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_MAX_BYTES,
            max_transactions: DEFAULT_MAX_TRANSACTIONS,
            expiry: DEFAULT_EXPIRY,
            max_orphans: DEFAULT_MAX_ORPHANS,
            max_orphan_bytes: DEFAULT_MAX_ORPHAN_BYTES,
            orphan_expiry: DEFAULT_ORPHAN_EXPIRY,
        }
    }
}

/// Why [`Mempool::insert`] or [`Mempool::insert_orphan`] refused a transaction. The pool is
/// unchanged. None of these proves that the sender misbehaved: they are this node's policy
/// and state (the verifier's [`TxRejection`](crate::verify::TxRejection) says that); drop
/// the transaction without penalty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MempoolError {
    /// The transaction is already held, in the pool or as an orphan.
    #[error("transaction {txid} is already held")]
    Duplicate {
        /// Its id.
        txid: Hash,
    },

    /// The transaction spends an output a pool transaction already spends. The first seen
    /// stays; there is no replacement by fee.
    #[error("transaction {txid} spends {uxid}, already spent by pool transaction {with}")]
    Conflict {
        /// The newcomer's id.
        txid: Hash,
        /// The output both spend (the first such input of the newcomer).
        uxid: Hash,
        /// The pool transaction that spends it.
        with: Hash,
    },

    /// The transaction is larger than the whole pool ([`MempoolConfig::max_bytes`]), or an
    /// orphan larger than all orphans may be ([`MempoolConfig::max_orphan_bytes`]).
    #[error("transaction is {size} bytes, more than the {max} allowed")]
    TooLarge {
        /// Its encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },

    /// The pool is full and the transactions with the lowest fee rate that would have to
    /// go to make room do not all pay a strictly lower fee rate than the newcomer.
    #[error(
        "pool full ({len} transactions, {bytes} bytes): fee {fee} over {size} bytes does not \
         outbid the transactions it would evict"
    )]
    PoolFull {
        /// The newcomer's fee, in coin hours.
        fee: u64,
        /// The newcomer's encoded size.
        size: usize,
        /// Transactions in the pool.
        len: usize,
        /// Bytes in the pool.
        bytes: usize,
    },

    /// [`MempoolConfig::max_orphans`] is 0: no orphan is kept.
    #[error("orphans are not kept")]
    OrphansDisabled,

    /// None of the inputs said to be missing is an input of the orphan: it would wait for
    /// nothing.
    #[error("orphan {txid}: no input of it is among those said to be missing")]
    NoMissingInputs {
        /// The orphan's id.
        txid: Hash,
    },

    /// The [`TxVerified`] handed over is not about this transaction (a caller's mistake).
    #[error("verified transaction {verified} is not the transaction given, {txid}")]
    VerifiedMismatch {
        /// The id of the transaction given.
        txid: Hash,
        /// [`TxVerified::txid`].
        verified: Hash,
    },
}

/// What an accepted insertion did besides adding the transaction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[must_use]
pub struct Inserted {
    /// The transactions evicted to make room, in eviction order: for [`Mempool::insert`]
    /// the pool transactions of lowest fee rate (stop announcing them), for
    /// [`Mempool::insert_orphan`] the oldest orphans.
    pub evicted: Vec<Hash>,
}

/// A fee over a size, ordered by value (exactly, by cross-multiplication).
#[derive(Debug, Clone, Copy)]
struct FeeRate {
    /// Coin hours burned.
    fee: u64,
    /// Encoded size in bytes, at least 1.
    size: usize,
}

impl FeeRate {
    fn new(fee: u64, size: usize) -> Self {
        Self {
            fee,
            size: size.max(1),
        }
    }
}

impl Ord for FeeRate {
    fn cmp(&self, other: &Self) -> Ordering {
        // Sizes are at least 1, so this orders the fractions fee / size; u128 holds the
        // product of a u64 and a usize.
        (u128::from(self.fee) * other.size as u128)
            .cmp(&(u128::from(other.fee) * self.size as u128))
    }
}

impl PartialOrd for FeeRate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for FeeRate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for FeeRate {}

/// A pool transaction's rank, lowest first: by fee rate, then by id *descending*, so that
/// the last is the one [`Mempool::select`] takes first and the first the one evicted first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    rate: FeeRate,
    txid: Reverse<Hash>,
}

/// A pool transaction.
#[derive(Debug, Clone)]
struct Entry {
    tx: Transaction,
    fee: u64,
    size: usize,
    received: u64,
}

impl Entry {
    fn rank(&self, txid: Hash) -> Rank {
        Rank {
            rate: FeeRate::new(self.fee, self.size),
            txid: Reverse(txid),
        }
    }
}

/// A held orphan.
#[derive(Debug, Clone)]
struct Orphan {
    tx: Transaction,
    size: usize,
    /// Its key in [`Mempool::orphans_by_age`].
    age: (u64, u64),
    /// The inputs still unknown, sorted, without duplicates; never empty while held.
    missing: Vec<Hash>,
}

/// The lowest [`Hash`], to range over the orphans waiting for one output.
const HASH_MIN: Hash = Hash::ZERO;
/// The highest [`Hash`].
const HASH_MAX: Hash = Hash([0xff; 32]);

/// The transaction pool: see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Mempool {
    config: MempoolConfig,
    /// The pool's transactions, by id.
    entries: HashMap<Hash, Entry>,
    /// Every pool transaction's rank.
    by_rank: BTreeSet<Rank>,
    /// Every pool transaction by (time received, id).
    by_age: BTreeSet<(u64, Hash)>,
    /// Every input of a pool transaction: uxid to the transaction spending it.
    spent_by: HashMap<Hash, Hash>,
    /// The sum of the pool transactions' sizes.
    bytes: usize,
    /// The orphans, by id.
    orphans: HashMap<Hash, Orphan>,
    /// Every orphan by (time received, arrival number): oldest first.
    orphans_by_age: BTreeMap<(u64, u64), Hash>,
    /// (missing uxid, orphan id) for every input an orphan still misses.
    waiting: BTreeSet<(Hash, Hash)>,
    /// The sum of the orphans' sizes.
    orphan_bytes: usize,
    /// The next orphan's arrival number.
    next_orphan: u64,
}

impl Default for Mempool {
    fn default() -> Self {
        Self::new(MempoolConfig::default())
    }
}

/// `duration` in milliseconds, saturating.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl Mempool {
    /// An empty pool with the limits of `config`.
    pub fn new(config: MempoolConfig) -> Self {
        Self {
            config,
            entries: HashMap::new(),
            by_rank: BTreeSet::new(),
            by_age: BTreeSet::new(),
            spent_by: HashMap::new(),
            bytes: 0,
            orphans: HashMap::new(),
            orphans_by_age: BTreeMap::new(),
            waiting: BTreeSet::new(),
            orphan_bytes: 0,
            next_orphan: 0,
        }
    }

    /// The limits.
    pub fn config(&self) -> &MempoolConfig {
        &self.config
    }

    // The pool.

    /// Adds `tx`, received at `now_ms`, which the caller checked against the current head:
    /// `verified` is what [`verify_transaction`](crate::verify::verify_transaction)
    /// returned for it. If the pool is full, first evicts the transactions of lowest fee
    /// rate needed to make room, all of a fee rate strictly below the newcomer's. An orphan
    /// with the same id is dropped (it is now in the pool).
    ///
    /// # Errors
    ///
    /// In the order checked: [`MempoolError::VerifiedMismatch`],
    /// [`MempoolError::Duplicate`] (in the pool only: an orphan is replaced),
    /// [`MempoolError::TooLarge`] (larger than [`MempoolConfig::max_bytes`]),
    /// [`MempoolError::Conflict`], [`MempoolError::PoolFull`]. The pool is then unchanged.
    pub fn insert(
        &mut self,
        tx: Transaction,
        verified: TxVerified,
        now_ms: u64,
    ) -> Result<Inserted, MempoolError> {
        let txid = tx.hash();
        if verified.txid != txid {
            return Err(MempoolError::VerifiedMismatch {
                txid,
                verified: verified.txid,
            });
        }
        if self.entries.contains_key(&txid) {
            return Err(MempoolError::Duplicate { txid });
        }
        let size = tx.size();
        if size > self.config.max_bytes {
            return Err(MempoolError::TooLarge {
                size,
                max: self.config.max_bytes,
            });
        }
        if let Some((uxid, with)) = tx
            .inputs
            .iter()
            .find_map(|uxid| self.spent_by.get(uxid).map(|with| (*uxid, *with)))
        {
            return Err(MempoolError::Conflict { txid, uxid, with });
        }
        let evicted = self.room_for(FeeRate::new(verified.fee, size))?;
        for victim in &evicted {
            self.remove_entry(victim);
        }
        self.remove_orphan(&txid);

        let entry = Entry {
            tx,
            fee: verified.fee,
            size,
            received: now_ms,
        };
        self.by_rank.insert(entry.rank(txid));
        self.by_age.insert((now_ms, txid));
        for uxid in &entry.tx.inputs {
            self.spent_by.insert(*uxid, txid);
        }
        self.bytes = self.bytes.saturating_add(size);
        self.entries.insert(txid, entry);
        Ok(Inserted { evicted })
    }

    /// The transactions to evict, lowest rank first, so that one more of `rate` fits: none
    /// if it fits already. Changes nothing.
    fn room_for(&self, rate: FeeRate) -> Result<Vec<Hash>, MempoolError> {
        let full = || MempoolError::PoolFull {
            fee: rate.fee,
            size: rate.size,
            len: self.entries.len(),
            bytes: self.bytes,
        };
        let mut len = self.entries.len();
        let mut bytes = self.bytes;
        let mut lowest = self.by_rank.iter();
        let mut evicted = Vec::new();
        while len >= self.config.max_transactions
            || bytes.saturating_add(rate.size) > self.config.max_bytes
        {
            let Some(victim) = lowest.next() else {
                return Err(full());
            };
            if victim.rate >= rate {
                return Err(full());
            }
            len -= 1;
            bytes = bytes.saturating_sub(victim.rate.size);
            evicted.push(victim.txid.0);
        }
        Ok(evicted)
    }

    /// Removes pool transaction `txid` from every index.
    fn remove_entry(&mut self, txid: &Hash) -> Option<Entry> {
        let entry = self.entries.remove(txid)?;
        self.by_rank.remove(&entry.rank(*txid));
        self.by_age.remove(&(entry.received, *txid));
        for uxid in &entry.tx.inputs {
            if self.spent_by.get(uxid) == Some(txid) {
                self.spent_by.remove(uxid);
            }
        }
        self.bytes = self.bytes.saturating_sub(entry.size);
        Some(entry)
    }

    /// After a block is applied: removes its transactions (`block_txids`) and every pool
    /// transaction spending one of the outputs it spent (`spent_by_block`: they conflict
    /// with it and can no longer be confirmed). Returns the ids removed from the pool: the
    /// block's first, in its order, then the conflicting ones. Orphans the block confirmed
    /// are dropped too, and not listed (they were never announced).
    pub fn remove_confirmed(&mut self, block_txids: &[Hash], spent_by_block: &[Hash]) -> Vec<Hash> {
        let mut removed = Vec::new();
        for txid in block_txids {
            if self.remove_entry(txid).is_some() {
                removed.push(*txid);
            }
            self.remove_orphan(txid);
        }
        for uxid in spent_by_block {
            if let Some(with) = self.spent_by.get(uxid).copied()
                && self.remove_entry(&with).is_some()
            {
                removed.push(with);
            }
        }
        removed
    }

    /// Drops the pool transactions held for [`MempoolConfig::expiry`] or longer at `now_ms`
    /// and returns their ids, oldest first; drops the orphans held for
    /// [`MempoolConfig::orphan_expiry`] or longer too (not listed: they were never
    /// announced).
    pub fn expire(&mut self, now_ms: u64) -> Vec<Hash> {
        let expiry = millis(self.config.expiry);
        let expired: Vec<Hash> = self
            .by_age
            .iter()
            .take_while(|(received, _)| now_ms.saturating_sub(*received) >= expiry)
            .map(|(_, txid)| *txid)
            .collect();
        for txid in &expired {
            self.remove_entry(txid);
        }

        let orphan_expiry = millis(self.config.orphan_expiry);
        let stale: Vec<Hash> = self
            .orphans_by_age
            .iter()
            .take_while(|((received, _), _)| now_ms.saturating_sub(*received) >= orphan_expiry)
            .map(|(_, txid)| *txid)
            .collect();
        for txid in &stale {
            self.remove_orphan(txid);
        }
        expired
    }

    /// The transactions for the next block, at most `max_block_bytes` of them in all:
    /// highest fee rate first (equal rates by id, smallest first), skipping one that does
    /// not fit in what is left for smaller ones that do. No two spend the same output (the
    /// pool holds no conflicts).
    pub fn select(&self, max_block_bytes: usize) -> Vec<Transaction> {
        let mut left = max_block_bytes;
        let mut selected = Vec::new();
        for rank in self.by_rank.iter().rev() {
            if left < SMALLEST_TRANSACTION {
                break;
            }
            if rank.rate.size > left {
                continue;
            }
            if let Some(entry) = self.entries.get(&rank.txid.0) {
                selected.push(entry.tx.clone());
                left -= entry.size;
            }
        }
        selected
    }

    /// The ids of the pool's transactions, in [`Mempool::select`]'s order.
    pub fn txids(&self) -> Vec<Hash> {
        self.by_rank.iter().rev().map(|rank| rank.txid.0).collect()
    }

    /// Pool transaction `txid`.
    pub fn get(&self, txid: &Hash) -> Option<&Transaction> {
        self.entries.get(txid).map(|entry| &entry.tx)
    }

    /// The pool transaction spending output `uxid`, if any.
    pub fn spender(&self, uxid: &Hash) -> Option<Hash> {
        self.spent_by.get(uxid).copied()
    }

    /// Whether transaction `txid` is in the pool (orphans are not).
    pub fn contains(&self, txid: &Hash) -> bool {
        self.entries.contains_key(txid)
    }

    /// The ids among `txids` held neither in the pool nor as orphans, in their order,
    /// without repeats: those to ask an announcing peer for.
    pub fn missing(&self, txids: &[Hash]) -> Vec<Hash> {
        let mut seen = HashSet::with_capacity(txids.len());
        txids
            .iter()
            .filter(|txid| {
                !self.entries.contains_key(*txid)
                    && !self.orphans.contains_key(*txid)
                    && seen.insert(**txid)
            })
            .copied()
            .collect()
    }

    /// The number of transactions in the pool (orphans are not).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the pool holds no transaction (orphans aside).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The sum of the pool transactions' encoded sizes (orphans aside).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    // Orphans.

    /// Holds `tx`, received at `now_ms`, until the outputs `missing` (inputs of it the
    /// caller could not find in the unspent set) are created by a block
    /// ([`Mempool::take_ready`]) or it expires. Ids in `missing` that are not inputs of
    /// `tx` are ignored. If the orphans are at [`MempoolConfig::max_orphans`] or would
    /// exceed [`MempoolConfig::max_orphan_bytes`], the oldest are evicted first.
    ///
    /// The caller should orphan only a transaction the verifier refused with
    /// [`TxRejection::InputNotUnspent`](crate::verify::TxRejection::InputNotUnspent): every
    /// rule that needs only the transaction passed.
    ///
    /// # Errors
    ///
    /// [`MempoolError::OrphansDisabled`], [`MempoolError::Duplicate`] (in the pool or an
    /// orphan), [`MempoolError::TooLarge`] (larger than
    /// [`MempoolConfig::max_orphan_bytes`]), [`MempoolError::NoMissingInputs`]. Nothing
    /// changes then.
    pub fn insert_orphan(
        &mut self,
        tx: Transaction,
        missing: Vec<Hash>,
        now_ms: u64,
    ) -> Result<Inserted, MempoolError> {
        if self.config.max_orphans == 0 {
            return Err(MempoolError::OrphansDisabled);
        }
        let txid = tx.hash();
        if self.entries.contains_key(&txid) || self.orphans.contains_key(&txid) {
            return Err(MempoolError::Duplicate { txid });
        }
        let size = tx.size();
        if size > self.config.max_orphan_bytes {
            return Err(MempoolError::TooLarge {
                size,
                max: self.config.max_orphan_bytes,
            });
        }
        let mut missing = missing;
        missing.retain(|uxid| tx.inputs.contains(uxid));
        missing.sort_unstable();
        missing.dedup();
        if missing.is_empty() {
            return Err(MempoolError::NoMissingInputs { txid });
        }

        let mut evicted = Vec::new();
        while self.orphans.len() >= self.config.max_orphans
            || self.orphan_bytes.saturating_add(size) > self.config.max_orphan_bytes
        {
            let Some((_, oldest)) = self.orphans_by_age.first_key_value() else {
                break;
            };
            let oldest = *oldest;
            self.remove_orphan(&oldest);
            evicted.push(oldest);
        }

        let age = (now_ms, self.next_orphan);
        self.next_orphan = self.next_orphan.wrapping_add(1);
        self.orphans_by_age.insert(age, txid);
        for uxid in &missing {
            self.waiting.insert((*uxid, txid));
        }
        self.orphan_bytes = self.orphan_bytes.saturating_add(size);
        self.orphans.insert(
            txid,
            Orphan {
                tx,
                size,
                age,
                missing,
            },
        );
        Ok(Inserted { evicted })
    }

    /// Removes orphan `txid` from every index.
    fn remove_orphan(&mut self, txid: &Hash) -> Option<Orphan> {
        let orphan = self.orphans.remove(txid)?;
        self.orphans_by_age.remove(&orphan.age);
        for uxid in &orphan.missing {
            self.waiting.remove(&(*uxid, *txid));
        }
        self.orphan_bytes = self.orphan_bytes.saturating_sub(orphan.size);
        Some(orphan)
    }

    /// The ids of the orphans waiting for any of the outputs `created` (sorted, without
    /// repeats). Changes nothing; [`Mempool::take_ready`] does.
    pub fn orphans_spending(&self, created: &[Hash]) -> Vec<Hash> {
        let mut txids = BTreeSet::new();
        for uxid in created {
            txids.extend(
                self.waiting
                    .range((*uxid, HASH_MIN)..=(*uxid, HASH_MAX))
                    .map(|(_, txid)| *txid),
            );
        }
        txids.into_iter().collect()
    }

    /// After a block is applied: marks the outputs it created (`created`, their ids) as
    /// known, and removes and returns the orphans now missing none of their inputs, oldest
    /// first. Verify each against the new head: it may be accepted, refused, or missing
    /// another input (orphan it again).
    pub fn take_ready(&mut self, created: &[Hash]) -> Vec<Transaction> {
        let mut ready = Vec::new();
        for uxid in created {
            let waiters: Vec<Hash> = self
                .waiting
                .range((*uxid, HASH_MIN)..=(*uxid, HASH_MAX))
                .map(|(_, txid)| *txid)
                .collect();
            for txid in waiters {
                self.waiting.remove(&(*uxid, txid));
                if let Some(orphan) = self.orphans.get_mut(&txid) {
                    orphan.missing.retain(|missing| missing != uxid);
                    if orphan.missing.is_empty() {
                        ready.push((orphan.age, txid));
                    }
                }
            }
        }
        ready.sort_unstable();
        ready
            .into_iter()
            .filter_map(|(_, txid)| self.remove_orphan(&txid))
            .map(|orphan| orphan.tx)
            .collect()
    }

    /// Whether transaction `txid` is held as an orphan.
    pub fn contains_orphan(&self, txid: &Hash) -> bool {
        self.orphans.contains_key(txid)
    }

    /// The number of orphans held.
    pub fn orphan_len(&self) -> usize {
        self.orphans.len()
    }

    /// The sum of the orphans' encoded sizes.
    pub fn orphan_bytes(&self) -> usize {
        self.orphan_bytes
    }
}
