//! A signed block, or a lone transaction, checked against the chain's head and its
//! unspent set. Sans-IO: no database, no async; the store fetches what a block touches
//! ([`block_lookups`]) and hands it over as an [`UnspentSet`].
//!
//! The rules are Skycoin's (its `verifyBlockHeader`, `processTransactions`,
//! `verifyTxnHardConstraints` and `verifyTxnSoftConstraints`), with two tightenings,
//! because on this network every node checks every rule of every block:
//!
//! - the *soft* rules Skycoin applies only to its mempool and to the blocks it makes
//!   (transaction size, fee and burn factor, droplet precision, no output to the null
//!   address) are checked on received blocks too, and the header's `fee` must be the sum
//!   of its transactions' fees;
//! - a block whose transactions add up to more than [`ChainParams::max_block_size`] bytes
//!   is refused (Skycoin applies its limit only when making a block).
//!
//! # Order of the checks
//!
//! [`verify_block`]: the publisher's signature first (so that every later failure is
//! about a block the publisher really signed), then the header against the head
//! (sequence number, time, previous hash, unspent-set hash), then the body (not empty,
//! size, body hash), then every transaction with [`verify_transaction`] and the rules
//! across the block's transactions, and last the header's fee.
//!
//! [`verify_transaction`]: the rules that need only the transaction first (size,
//! [`Transaction::verify`], outputs' addresses and precision), then those that need the
//! outputs it spends (they exist, their owners signed, coins, hours, fee). A transaction
//! refused only by the second group may be valid at another head; see
//! [`TxRejection::proves_sender_misbehaved`].
//!
//! # Signatures, once each, across the cores
//!
//! Recovering the key behind each input's signature is nearly all of the work. Each is
//! recovered once ([`Transaction::recover_signer`]) and the result serves both signature
//! checks ([`Transaction::verify_signers`], [`Transaction::verify_input_signers`]).
//! [`verify_block`] recovers every input of the block first, before any rule about its
//! transactions, on up to [`std::thread::available_parallelism`] threads
//! (`std::thread::scope`) when there are enough of them ([`MIN_SIGNATURES_PER_THREAD`]
//! each); then it walks the transactions in order with every cheap, order-dependent check
//! (double spends, the unspent set, coins, hours, fees) as before, reading each input's
//! recovered signer where the signature's turn comes. The recoveries are pure and the walk
//! is sequential, so the error reported is always the first in the order above, whatever
//! the threads did. The block's size limit is checked before, so the recoveries are
//! bounded; the publisher's signature before that, so only a block the publisher signed
//! gets that far. [`verify_transaction`] recovers after the checks that need no
//! signature, spread over threads in the same way for a transaction with many inputs.
//!
//! The threads claim the inputs one by one from a shared counter, so no
//! core waits for another's share. [`verify_blocks`] checks a run of consecutive blocks,
//! each as [`verify_block`] would (same results, same errors), but recovers the
//! signatures of every block the publisher signed within the size limit ahead, for the
//! whole run; the calling thread walks each block once its signers are in and recovers
//! others while it waits. One thread start per run instead of per block, and the walks
//! overlap the recoveries (docs/benchmarks.md §7.3).
//!
//! These functions block their thread for as long as the recoveries take (about 30 µs
//! per input and core): call them from async code through `spawn_blocking`, as
//! [`Chain::apply`](crate::chain::Chain::apply) does.
//!
//! # Coin hours
//!
//! Hours are computed at the *head's* time, the block before the one the transaction goes
//! into (Skycoin's rule: block 1's fee is the genesis output's hours at the genesis time
//! minus the outputs' hours). As in Skycoin's block check, an input whose hours overflow
//! `u64` in the last addition of [`UxOut::coin_hours`]
//! ([`HoursError::EarnedHoursOverflow`]) counts as 0 hours, the compatibility rule
//! Skycoin keeps for the output spent in its block 13277; any other overflow refuses the
//! transaction.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, OnceLock};

use skywire_coin::fee::{MAX_DROPLET_PRECISION, check_droplet_precision};
use skywire_coin::{
    Block, BlockHeader, DEFAULT_BURN_FACTOR, FeeError, Hash, HoursError, MAX_TRANSACTION_SIZE,
    SigError, SignedBlock, Transaction, UxHash, UxOut, create_unspents, is_null, verify_fee,
};
use skywire_identity::{Address, PublicKey};

/// Default [`ChainParams::max_block_size`]: the sum of a block's transaction sizes, in
/// bytes. Skycoin's `MaxBlockTransactionsSize` (32 KiB), the most its node puts in a
/// block; one transaction of the largest size fits.
pub const DEFAULT_MAX_BLOCK_SIZE: usize = 32768;

/// Default [`ChainParams::max_transaction_size`], Skycoin's (32 KiB).
pub const DEFAULT_MAX_TRANSACTION_SIZE: usize = MAX_TRANSACTION_SIZE;

/// Default [`ChainParams::max_droplet_precision`]: Skycoin's node value, 3 decimal places
/// (amounts are multiples of 1000 droplets).
pub const DEFAULT_MAX_DROPLET_PRECISION: u8 = MAX_DROPLET_PRECISION;

/// Fewest input signatures worth a thread of their own in [`verify_block`] and
/// [`verify_transaction`]: the recoveries run on `n / MIN_SIGNATURES_PER_THREAD` threads,
/// at least 1 and at most the cores available. One recovery costs ~26 µs; starting a
/// scoped thread and waking an idle core for it 30–60 µs, and a thread's first recovery
/// more (its fresh stack). Measured on the 2-core benchmark machine (docs/benchmarks.md
/// §7), 2 threads lose below ~8 signatures and win from 12 (0.78 of the serial time) and
/// 16 (0.72) in a quiet run, from 32 in a busier one; so 2 threads from 16 signatures.
pub const MIN_SIGNATURES_PER_THREAD: usize = 8;

/// The rules of a chain that are settings rather than fixed: who publishes blocks, and the
/// limits every node applies to every transaction and block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainParams {
    /// The key that signs every block, genesis included.
    pub publisher: PublicKey,
    /// A transaction must burn at least `1 / burn_factor` of its input hours, rounded up
    /// ([`verify_fee`]).
    pub burn_factor: u32,
    /// The most bytes a block's transactions may add up to ([`skywire_coin::BlockBody::size`]).
    pub max_block_size: usize,
    /// The largest transaction, in encoded bytes.
    pub max_transaction_size: usize,
    /// The most decimal places an output's coins may have.
    pub max_droplet_precision: u8,
}

impl ChainParams {
    /// The parameters for the chain published by `publisher`, with the defaults:
    /// [`DEFAULT_BURN_FACTOR`], [`DEFAULT_MAX_BLOCK_SIZE`], [`DEFAULT_MAX_TRANSACTION_SIZE`]
    /// and [`DEFAULT_MAX_DROPLET_PRECISION`].
    pub fn new(publisher: PublicKey) -> Self {
        Self {
            publisher,
            burn_factor: DEFAULT_BURN_FACTOR,
            max_block_size: DEFAULT_MAX_BLOCK_SIZE,
            max_transaction_size: DEFAULT_MAX_TRANSACTION_SIZE,
            max_droplet_precision: DEFAULT_MAX_DROPLET_PRECISION,
        }
    }
}

/// The unspent outputs a check may look up, by id (uxid).
///
/// For [`verify_block`] it must answer for every id [`block_lookups`] lists; for
/// [`verify_transaction`], for the transaction's inputs. An id it does not hold is taken
/// as spent or unknown. It must return the output whose [`UxOut::hash`] is `id`.
pub trait UnspentSet {
    /// The unspent output with id `id`, if there is one.
    fn get(&self, id: &Hash) -> Option<UxOut>;
}

impl<S: BuildHasher> UnspentSet for HashMap<Hash, UxOut, S> {
    fn get(&self, id: &Hash) -> Option<UxOut> {
        HashMap::get(self, id).copied()
    }
}

impl<T: UnspentSet + ?Sized> UnspentSet for &T {
    fn get(&self, id: &Hash) -> Option<UxOut> {
        (**self).get(id)
    }
}

/// The ids [`verify_block`] looks up in the unspent set for `block`: every input of every
/// transaction, then every output the block would create (to refuse one that already
/// exists). Fetch these in one batch.
pub fn block_lookups(block: &Block) -> Vec<Hash> {
    let transactions = &block.body.transactions;
    let mut ids = Vec::with_capacity(
        transactions
            .iter()
            .map(|tx| tx.inputs.len() + tx.outputs.len())
            .sum(),
    );
    ids.extend(transactions.iter().flat_map(|tx| tx.inputs.iter().copied()));
    for tx in transactions {
        let txid = tx.hash();
        ids.extend(tx.outputs.iter().map(|output| output.uxid(&txid)));
    }
    ids
}

/// What an accepted block does to the unspent set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The outputs the block spends, leaving the set (transaction by transaction, input by
    /// input; none for genesis).
    pub spent: Vec<UxOut>,
    /// The outputs the block creates, entering the set ([`create_unspents`] with the
    /// block's header, transaction by transaction).
    pub created: Vec<UxOut>,
    /// The block's fee: the hours its transactions burn (the header's `fee`, checked).
    pub fee: u64,
    /// The unspent set's hash *after* the block is applied: the next block's header
    /// [`ux_hash`](BlockHeader::ux_hash), and the `head_ux_hash` to verify it with.
    pub ux_hash_after: UxHash,
}

/// What an accepted transaction spends and creates, checked against a head.
///
/// The outputs it creates are given by id only: their [`UxOut`] also holds the time and
/// sequence number of the block that will contain the transaction, unknown until then
/// ([`create_unspents`] makes them, as [`verify_block`] does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxVerified {
    /// The transaction's id.
    pub txid: Hash,
    /// The outputs it spends, one per input, in order.
    pub spent: Vec<UxOut>,
    /// The ids of the outputs it creates, one per output, in order.
    pub created: Vec<Hash>,
    /// The hours it burns: its inputs' hours at the head's time minus its outputs' hours.
    pub fee: u64,
}

/// Why a transaction was refused. One variant per rule, in the order they are checked.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TxRejection {
    /// The transaction is larger than [`ChainParams::max_transaction_size`] (Skycoin:
    /// "Transaction size bigger than max block size").
    #[error("transaction is {size} bytes, at most {max} allowed")]
    TooLarge {
        /// Its encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },

    /// The transaction fails [`Transaction::verify`] (signed): malformed on its own.
    #[error("invalid transaction: {0}")]
    Invalid(#[source] skywire_coin::TxError),

    /// An output is sent to the null address, whose key nobody holds ("Transaction output
    /// is sent to the null address").
    #[error("output {index} is sent to the null address")]
    NullAddressOutput {
        /// Index of the output.
        index: usize,
    },

    /// An output's coins have more decimal places than
    /// [`ChainParams::max_droplet_precision`] ("invalid amount, too many decimal places").
    #[error("output {index}: {coins} droplets is not a multiple of {divisor}")]
    TooManyDecimals {
        /// Index of the output.
        index: usize,
        /// Its coins, in droplets.
        coins: u64,
        /// What they must be a multiple of.
        divisor: u64,
    },

    /// An input is not in the unspent set: already spent, never created, or created by a
    /// block this node does not have yet.
    #[error("input {index} spends {uxid}, which is not unspent")]
    InputNotUnspent {
        /// Index of the input.
        index: usize,
        /// The uxid it names.
        uxid: Hash,
    },

    /// The unspent set answered for `uxid` with an output whose id is `found`: a fault of
    /// the set (the store), not of the transaction.
    #[error("input {index}: the unspent set returned output {found} for {uxid}")]
    UnspentSetMismatch {
        /// Index of the input.
        index: usize,
        /// The uxid asked for.
        uxid: Hash,
        /// The id of the output returned.
        found: Hash,
    },

    /// An input's signature is not by the owner of the output it spends ("Signature not
    /// valid for output being spent").
    #[error("input {index}: signature not valid for the output spent: {source}")]
    InputSignature {
        /// Index of the input.
        index: usize,
        /// Why; [`SigError::AddressMismatch`] when made by another key.
        #[source]
        source: SigError,
    },

    /// The inputs' coins add up past `u64::MAX`.
    #[error("input coins overflow")]
    InputCoinsOverflow,

    /// The outputs hold more coins than the inputs ("Insufficient coins").
    #[error("outputs hold {output} droplets, inputs only {input}")]
    CoinsCreated {
        /// The inputs' coins, in droplets.
        input: u64,
        /// The outputs' coins, in droplets.
        output: u64,
    },

    /// The outputs hold fewer coins than the inputs ("Transactions may not destroy
    /// coins").
    #[error("outputs hold {output} droplets, inputs {input}: coins would be destroyed")]
    CoinsDestroyed {
        /// The inputs' coins, in droplets.
        input: u64,
        /// The outputs' coins, in droplets.
        output: u64,
    },

    /// An input's hours at the head's time cannot be computed (a product overflows).
    #[error("input {index}: {source}")]
    InputHours {
        /// Index of the input.
        index: usize,
        /// The overflow.
        #[source]
        source: HoursError,
    },

    /// The inputs' hours add up past `u64::MAX`.
    #[error("input hours overflow")]
    InputHoursOverflow,

    /// The outputs' hours add up past `u64::MAX` ("Transaction output hours overflow").
    #[error("output hours overflow")]
    OutputHoursOverflow,

    /// The outputs hold more hours than the inputs have at the head's time ("Insufficient
    /// coin hours").
    #[error("outputs hold {output} hours, inputs only {input}")]
    HoursIncreased {
        /// The inputs' hours at the head's time.
        input: u64,
        /// The outputs' hours.
        output: u64,
    },

    /// The transaction burns no hours ("Transaction has zero coinhour fee").
    #[error("transaction burns no coin hours")]
    ZeroFee,

    /// The transaction burns fewer hours than the burn factor requires ("Transaction
    /// coinhour fee minimum not met").
    #[error("fee {fee} is below the {required} hours required (burn factor {burn_factor})")]
    InsufficientFee {
        /// The hours burned.
        fee: u64,
        /// The hours required: the input hours over the burn factor, rounded up.
        required: u64,
        /// [`ChainParams::burn_factor`].
        burn_factor: u32,
    },

    /// Another fee error from [`verify_fee`] (none is reachable with input hours that
    /// fit a `u64`).
    #[error("fee: {0}")]
    Fee(#[source] FeeError),
}

impl TxRejection {
    /// Whether this rejection proves that whoever sent the transaction *on its own* (relay,
    /// mempool) misbehaved: an honest node checks before relaying.
    ///
    /// `false` for the rejections that depend on the head the transaction is checked
    /// against, because the sender's head may differ from ours without anyone lying: an
    /// input not unspent (spent by a block the sender has not seen, or created by one we
    /// have not seen), and the input hours and everything computed from them (a sender
    /// further ahead has a later head time, so more input hours and a larger fee). Also
    /// `false` for [`TxRejection::UnspentSetMismatch`], our own store's fault. Drop such a
    /// transaction without penalty.
    ///
    /// Every other rule depends only on the transaction and the outputs it names (whose
    /// owner and coins are fixed by their id), so breaking it is a lie whatever the head.
    ///
    /// Inside a block every rejection but [`TxRejection::UnspentSetMismatch`] is proof:
    /// see [`BlockRejection::proves_sender_misbehaved`].
    pub fn proves_sender_misbehaved(&self) -> bool {
        !matches!(
            self,
            Self::InputNotUnspent { .. }
                | Self::UnspentSetMismatch { .. }
                | Self::InputHours { .. }
                | Self::InputHoursOverflow
                | Self::HoursIncreased { .. }
                | Self::ZeroFee
                | Self::InsufficientFee { .. }
                | Self::Fee(_)
        )
    }
}

/// Why a block was refused. One variant per rule, in the order they are checked.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BlockRejection {
    /// The genesis block is not the one this chain is configured with.
    #[error("genesis block {found} is not the configured genesis {expected}")]
    GenesisMismatch {
        /// Hash of the configured genesis block.
        expected: Hash,
        /// Hash of the block received.
        found: Hash,
    },

    /// The block is not signed by [`ChainParams::publisher`] over its header hash.
    #[error("block is not signed by the publisher: {0}")]
    Signature(#[source] SigError),

    /// The sequence number is not the head's plus one ("BkSeq invalid").
    #[error("block sequence number {found} does not follow the head's {head}")]
    Sequence {
        /// The head's sequence number.
        head: u64,
        /// The block's.
        found: u64,
    },

    /// The block's time is not after the head's ("Block time must be > head time").
    #[error("block time {time} is not after the head's {head_time}")]
    TimeNotAfterHead {
        /// The block's time.
        time: u64,
        /// The head's time.
        head_time: u64,
    },

    /// The previous hash is not the head's hash ("PrevHash does not match current head").
    #[error("previous hash {found} is not the head's {expected}")]
    PrevHash {
        /// The head's hash.
        expected: Hash,
        /// The header's `prev_hash`.
        found: Hash,
    },

    /// The header's unspent-set hash is not that of the set at the head ("UxHash does not
    /// match").
    #[error("unspent set hash {found} is not the head's {expected}")]
    UxHash {
        /// The set's hash at the head.
        expected: Hash,
        /// The header's `ux_hash`.
        found: Hash,
    },

    /// The block has no transactions ("Refusing to create block with no transactions").
    #[error("block has no transactions")]
    Empty,

    /// The transactions add up to more than [`ChainParams::max_block_size`] bytes.
    #[error("block transactions are {size} bytes, at most {max} allowed")]
    TooLarge {
        /// The sum of the transactions' sizes.
        size: usize,
        /// The limit.
        max: usize,
    },

    /// The header's body hash is not the Merkle root of the transaction ids ("Computed
    /// body hash does not match").
    #[error("body hash {found} is not the computed {computed}")]
    BodyHash {
        /// [`skywire_coin::BlockBody::hash`].
        computed: Hash,
        /// The header's `body_hash`.
        found: Hash,
    },

    /// An input is spent by an earlier transaction of the same block ("Cannot spend output
    /// twice in the same block").
    #[error("transaction {index} spends {uxid}, already spent earlier in the block")]
    DoubleSpend {
        /// Index of the transaction.
        index: usize,
        /// The uxid spent twice.
        uxid: Hash,
    },

    /// A transaction breaks a transaction rule.
    #[error("transaction {index}: {source}")]
    Transaction {
        /// Index of the transaction.
        index: usize,
        /// The rule it breaks.
        #[source]
        source: TxRejection,
    },

    /// A transaction creates an output an earlier transaction of the block creates
    /// ("Duplicate unspent output across transactions"). Kept from Skycoin; unreachable
    /// without a hash collision, since equal output ids need equal transactions, and those
    /// spend the same inputs.
    #[error("transaction {index} creates {uxid}, already created earlier in the block")]
    DuplicateOutput {
        /// Index of the transaction.
        index: usize,
        /// The uxid created twice.
        uxid: Hash,
    },

    /// A transaction creates an output that is already unspent. Kept from Skycoin;
    /// unreachable without a hash collision, as for [`BlockRejection::DuplicateOutput`].
    #[error("transaction {index} creates {uxid}, which is already unspent")]
    OutputExists {
        /// Index of the transaction.
        index: usize,
        /// The uxid.
        uxid: Hash,
    },

    /// The transactions' fees add up past `u64::MAX`.
    #[error("transaction fees overflow")]
    FeeOverflow,

    /// The header's fee is not the sum of the transactions' fees.
    #[error("header fee {found} is not the transactions' total fee {expected}")]
    Fee {
        /// The sum of the transactions' fees.
        expected: u64,
        /// The header's `fee`.
        found: u64,
    },
}

impl BlockRejection {
    /// Whether this rejection proves that the peer who sent the block misbehaved: an
    /// honest node checks a block before passing it on, and the block names the head it
    /// extends, so nothing here depends on the receiver's view.
    ///
    /// True for every rule but two:
    ///
    /// - [`BlockRejection::Sequence`]: the block is signed by the publisher (the signature
    ///   is checked first) but for another height: a stale or early announcement that
    ///   crossed a new head in flight, not a lie. The sync code should ask for the blocks
    ///   in between, or drop it.
    /// - [`BlockRejection::Transaction`] with [`TxRejection::UnspentSetMismatch`]: our own
    ///   store answered wrongly.
    pub fn proves_sender_misbehaved(&self) -> bool {
        !matches!(
            self,
            Self::Sequence { .. }
                | Self::Transaction {
                    source: TxRejection::UnspentSetMismatch { .. },
                    ..
                }
        )
    }
}

/// Checks the genesis block received against `expected`, the one built from the chain's
/// configuration ([`Block::genesis`]): it must equal it and carry the publisher's
/// signature over its header hash.
///
/// # Errors
///
/// [`BlockRejection::GenesisMismatch`] or [`BlockRejection::Signature`].
pub fn verify_genesis(
    params: &ChainParams,
    expected: &Block,
    block: &SignedBlock,
) -> Result<Verified, BlockRejection> {
    if block.block != *expected {
        return Err(BlockRejection::GenesisMismatch {
            expected: expected.hash(),
            found: block.block.hash(),
        });
    }
    block
        .verify_signature(&params.publisher)
        .map_err(BlockRejection::Signature)?;
    let header = &block.block.header;
    let created: Vec<UxOut> = block
        .block
        .body
        .transactions
        .iter()
        .flat_map(|tx| create_unspents(header, tx))
        .collect();
    let mut ux_hash_after = UxHash::new();
    for ux in &created {
        ux_hash_after.xor(&ux.snapshot_hash());
    }
    Ok(Verified {
        spent: Vec::new(),
        created,
        fee: header.fee,
        ux_hash_after,
    })
}

/// Checks `block` as the next block after `head`, whose unspent set has hash
/// `head_ux_hash` and holds (at least) the outputs [`block_lookups`] names, in `unspent`.
///
/// See the [module docs](self) for the order of the checks. Every transaction is checked
/// with [`verify_transaction`] against the set *before* the block: a transaction cannot
/// spend an output created in the same block.
///
/// # Errors
///
/// The first [`BlockRejection`] found.
pub fn verify_block(
    params: &ChainParams,
    head: &BlockHeader,
    head_ux_hash: &UxHash,
    unspent: &impl UnspentSet,
    block: &SignedBlock,
) -> Result<Verified, BlockRejection> {
    verify_block_with(params, head, head_ux_hash, unspent, block, recover_signers)
}

/// [`verify_block`], with the inputs' signers from `signers` (given the block's
/// transactions: [`recover_signers`] of them, or the same recovered ahead), asked once the
/// checks before the recoveries pass.
fn verify_block_with(
    params: &ChainParams,
    head: &BlockHeader,
    head_ux_hash: &UxHash,
    unspent: &impl UnspentSet,
    block: &SignedBlock,
    signers: impl FnOnce(&[Transaction]) -> Vec<Result<Address, SigError>>,
) -> Result<Verified, BlockRejection> {
    block
        .verify_signature(&params.publisher)
        .map_err(BlockRejection::Signature)?;
    let header = &block.block.header;
    let body = &block.block.body;
    if head.bk_seq.checked_add(1) != Some(header.bk_seq) {
        return Err(BlockRejection::Sequence {
            head: head.bk_seq,
            found: header.bk_seq,
        });
    }
    if header.time <= head.time {
        return Err(BlockRejection::TimeNotAfterHead {
            time: header.time,
            head_time: head.time,
        });
    }
    let head_hash = head.hash();
    if header.prev_hash != head_hash {
        return Err(BlockRejection::PrevHash {
            expected: head_hash,
            found: header.prev_hash,
        });
    }
    if header.ux_hash != head_ux_hash.hash() {
        return Err(BlockRejection::UxHash {
            expected: head_ux_hash.hash(),
            found: header.ux_hash,
        });
    }
    if body.transactions.is_empty() {
        return Err(BlockRejection::Empty);
    }
    let size = body.size();
    if size > params.max_block_size {
        return Err(BlockRejection::TooLarge {
            size,
            max: params.max_block_size,
        });
    }
    let computed = body.hash();
    if header.body_hash != computed {
        return Err(BlockRejection::BodyHash {
            computed,
            found: header.body_hash,
        });
    }

    // Every input's signer at once, across the cores; the walk below reads them in order.
    let signers = signers(&body.transactions);
    let mut signers = signers.as_slice();

    let inputs: usize = body.transactions.iter().map(|tx| tx.inputs.len()).sum();
    let outputs: usize = body.transactions.iter().map(|tx| tx.outputs.len()).sum();
    let mut spent_ids = HashSet::with_capacity(inputs);
    let mut created_ids = HashSet::with_capacity(outputs);
    let mut spent = Vec::with_capacity(inputs);
    let mut created = Vec::with_capacity(outputs);
    let mut fee = 0u64;
    let mut ux_hash_after = *head_ux_hash;
    for (index, tx) in body.transactions.iter().enumerate() {
        // Within a transaction duplicates are `Transaction::verify`'s; here, across them.
        if let Some(uxid) = tx.inputs.iter().find(|uxid| spent_ids.contains(*uxid)) {
            return Err(BlockRejection::DoubleSpend { index, uxid: *uxid });
        }
        // A short slice (only if the counts disagreed) fails closed: `SignerCount`.
        let (tx_signers, rest) = signers
            .split_at_checked(signer_count(tx))
            .unwrap_or((signers, &[]));
        signers = rest;
        let verified = check_transaction(params, head, unspent, tx, Some(tx_signers))
            .map_err(|source| BlockRejection::Transaction { index, source })?;
        spent_ids.extend(tx.inputs.iter().copied());
        // The block's sequence number is at least 1, so these are the outputs whose ids
        // `verified.created` holds (genesis alone gives its outputs a zero source).
        let outs = create_unspents(header, tx);
        for uxid in &verified.created {
            if !created_ids.insert(*uxid) {
                return Err(BlockRejection::DuplicateOutput { index, uxid: *uxid });
            }
            if unspent.get(uxid).is_some() {
                return Err(BlockRejection::OutputExists { index, uxid: *uxid });
            }
        }
        fee = fee
            .checked_add(verified.fee)
            .ok_or(BlockRejection::FeeOverflow)?;
        for ux in &verified.spent {
            ux_hash_after.xor(&ux.snapshot_hash());
        }
        for ux in &outs {
            ux_hash_after.xor(&ux.snapshot_hash());
        }
        spent.extend(verified.spent);
        created.extend(outs);
    }
    if header.fee != fee {
        return Err(BlockRejection::Fee {
            expected: fee,
            found: header.fee,
        });
    }
    Ok(Verified {
        spent,
        created,
        fee,
        ux_hash_after,
    })
}

/// [`verify_block`] of each of `blocks` in turn: the first after `head` (whose unspent
/// set has hash `head_ux_hash`) against `base`, each next one after the one before and
/// against `base` as the blocks before it leave it (without what they spent, with what
/// they created). `base` must hold the outputs [`block_lookups`] names for every block
/// that are unspent after `head`. What the blocks that pass do, up to the first refused,
/// and why that one was: the same as [`verify_block`] of each in turn.
///
/// Faster than that for many blocks: the signatures of every block the publisher signed
/// within the size limit (up to the first that is not) are recovered ahead on helper
/// threads, one per core beyond the first, while this thread walks the blocks already
/// recovered, helping with the recoveries when it has to wait.
pub fn verify_blocks(
    params: &ChainParams,
    head: &BlockHeader,
    head_ux_hash: &UxHash,
    base: &HashMap<Hash, UxOut>,
    blocks: &[SignedBlock],
) -> (Vec<Verified>, Option<BlockRejection>) {
    // Only a bounded block the publisher signed gets its signatures recovered (as in
    // `verify_block`), so a peer's garbage costs one recovery per block.
    let ahead = blocks
        .iter()
        .take_while(|block| {
            block.verify_signature(&params.publisher).is_ok()
                && block.block.body.size() <= params.max_block_size
        })
        .count();
    let recoveries = Recoveries::new(
        blocks[..ahead]
            .iter()
            .flat_map(|block| &block.block.body.transactions),
    );
    recoveries.with_helpers(parallelism(), |recoveries| {
        walk_blocks(params, head, head_ux_hash, base, blocks, ahead, recoveries)
    })
}

/// [`verify_blocks`]' walk: each block in turn, the first `ahead` with their signers
/// from `recoveries` (in order), the others recovering their own.
fn walk_blocks(
    params: &ChainParams,
    head: &BlockHeader,
    head_ux_hash: &UxHash,
    base: &HashMap<Hash, UxOut>,
    blocks: &[SignedBlock],
    ahead: usize,
    recoveries: &Recoveries<'_>,
) -> (Vec<Verified>, Option<BlockRejection>) {
    let mut set = Overlay {
        base,
        spent: HashSet::new(),
        created: HashMap::new(),
    };
    let mut header = *head;
    let mut ux_hash = *head_ux_hash;
    let mut passed = Vec::with_capacity(blocks.len());
    let mut first_job = 0;
    for (i, block) in blocks.iter().enumerate() {
        let checked = if i < ahead {
            let transactions = &block.block.body.transactions;
            let jobs = first_job..first_job + transactions.iter().map(signer_count).sum::<usize>();
            first_job = jobs.end;
            verify_block_with(params, &header, &ux_hash, &set, block, |_| {
                recoveries.take(jobs)
            })
        } else {
            verify_block(params, &header, &ux_hash, &set, block)
        };
        let verified = match checked {
            Ok(verified) => verified,
            Err(rejection) => return (passed, Some(rejection)),
        };
        for tx in &block.block.body.transactions {
            for id in &tx.inputs {
                if set.created.remove(id).is_none() {
                    set.spent.insert(*id);
                }
            }
        }
        set.created
            .extend(verified.created.iter().map(|ux| (ux.hash(), *ux)));
        header = block.block.header;
        ux_hash = verified.ux_hash_after;
        passed.push(verified);
    }
    (passed, None)
}

/// The signers of many transactions' inputs ([`Transaction::recover_signer`] of each, in
/// order), recovered by whichever thread claims each next: helper threads
/// ([`Recoveries::help`]) and the walking one while it waits ([`Recoveries::take`]).
struct Recoveries<'t> {
    /// Every input to recover: its transaction and index.
    jobs: Vec<(&'t Transaction, usize)>,
    /// The next job not claimed yet (at or past the end: none left).
    next: AtomicUsize,
    /// Each job's result, once recovered.
    signers: Vec<OnceLock<Option<Result<Address, SigError>>>>,
    /// Helper threads still recovering.
    helpers: AtomicUsize,
}

impl<'t> Recoveries<'t> {
    fn new(txs: impl Iterator<Item = &'t Transaction>) -> Self {
        let jobs: Vec<(&Transaction, usize)> = txs
            .flat_map(|tx| (0..signer_count(tx)).map(move |index| (tx, index)))
            .collect();
        let signers = jobs.iter().map(|_| OnceLock::new()).collect();
        Self {
            jobs,
            next: AtomicUsize::new(0),
            signers,
            helpers: AtomicUsize::new(0),
        }
    }

    /// Runs `walk` on this thread while helper threads recover: as many as there are
    /// [`MIN_SIGNATURES_PER_THREAD`] jobs, at most `threads` threads in all (this one
    /// included). A helper that cannot be started leaves its share to [`Recoveries::take`].
    /// Once `walk` returns (perhaps early, on a refused block), nothing more is claimed.
    fn with_helpers<T>(&self, threads: usize, walk: impl FnOnce(&Self) -> T) -> T {
        let threads = (self.jobs.len() / MIN_SIGNATURES_PER_THREAD).clamp(1, threads.max(1));
        std::thread::scope(|scope| {
            for _ in 1..threads {
                self.helpers.fetch_add(1, Ordering::AcqRel);
                let helper = std::thread::Builder::new()
                    .name("chain-verify".to_owned())
                    .spawn_scoped(scope, || self.help());
                if helper.is_err() {
                    self.helpers.fetch_sub(1, Ordering::AcqRel);
                }
            }
            let out = walk(self);
            self.next.store(self.jobs.len(), Ordering::Release);
            out
        })
    }

    /// Claims the next job and recovers it; false if none was left.
    fn recover_next(&self) -> bool {
        let claimed = self.next.fetch_add(1, Ordering::AcqRel);
        let Some((tx, index)) = self.jobs.get(claimed) else {
            return false;
        };
        // Each job is claimed once: the cell is empty.
        let _ = self.signers[claimed].set(tx.recover_signer(*index));
        true
    }

    /// A helper thread: recovers jobs until none is left.
    fn help(&self) {
        /// Counts the helper out however it ends (a panic included), so that the walking
        /// thread never waits for a job nobody will finish.
        struct Out<'a>(&'a AtomicUsize);
        impl Drop for Out<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        let _out = Out(&self.helpers);
        while self.recover_next() {}
    }

    /// The results of `jobs`, in order (inputs without a signature left out, as
    /// [`recover_signers`] does), recovering others while one is not there yet.
    fn take(&self, jobs: std::ops::Range<usize>) -> Vec<Result<Address, SigError>> {
        jobs.filter_map(|job| {
            loop {
                if let Some(signer) = self.signers[job].get() {
                    break signer.clone();
                }
                if !self.recover_next() {
                    if self.helpers.load(Ordering::Acquire) == 0
                        && self.signers[job].get().is_none()
                    {
                        // Claimed by a helper that is gone: recover it here.
                        let (tx, index) = self.jobs[job];
                        break tx.recover_signer(index);
                    }
                    // A helper is finishing it.
                    std::thread::yield_now();
                }
            }
        })
        .collect()
    }
}

/// The unspent set after some blocks ([`verify_blocks`]): the outputs read before them
/// (`base`) without those the blocks spent, with those they created.
struct Overlay<'a> {
    base: &'a HashMap<Hash, UxOut>,
    spent: HashSet<Hash>,
    created: HashMap<Hash, UxOut>,
}

impl UnspentSet for Overlay<'_> {
    fn get(&self, id: &Hash) -> Option<UxOut> {
        if let Some(ux) = self.created.get(id) {
            return Some(*ux);
        }
        if self.spent.contains(id) {
            return None;
        }
        self.base.get(id).copied()
    }
}

/// Checks `tx` for a block after `head` (for the mempool: against the current head),
/// whose unspent set `unspent` holds (at least) the outputs `tx` spends.
///
/// In order: size, [`Transaction::verify`] (every input signed), no output to the null
/// address, droplet precision; then every input unspent,
/// [`Transaction::verify_input_signatures`], coins in equal to coins out, hours (at
/// `head.time`, see the [module docs](self#coin-hours)) not increased, and the fee rule
/// with [`ChainParams::burn_factor`]. Each input's signature is recovered once, after
/// the checks that need none, for both signature checks.
///
/// # Errors
///
/// The first [`TxRejection`] found; see [`TxRejection::proves_sender_misbehaved`].
pub fn verify_transaction(
    params: &ChainParams,
    head: &BlockHeader,
    unspent: &impl UnspentSet,
    tx: &Transaction,
) -> Result<TxVerified, TxRejection> {
    check_transaction(params, head, unspent, tx, None)
}

/// [`verify_transaction`], with `signers` the inputs' [`Transaction::recover_signer`] if
/// they are already recovered (`None`: recovered here, after the checks that need none).
fn check_transaction(
    params: &ChainParams,
    head: &BlockHeader,
    unspent: &impl UnspentSet,
    tx: &Transaction,
    signers: Option<&[Result<Address, SigError>]>,
) -> Result<TxVerified, TxRejection> {
    let size = tx.size();
    if size > params.max_transaction_size {
        return Err(TxRejection::TooLarge {
            size,
            max: params.max_transaction_size,
        });
    }
    tx.verify_structure().map_err(TxRejection::Invalid)?;
    let recovered;
    let signers = match signers {
        Some(signers) => signers,
        None => {
            recovered = recover_signers(std::slice::from_ref(tx));
            &recovered
        }
    };
    tx.verify_signers(true, signers)
        .map_err(TxRejection::Invalid)?;
    if let Some(index) = tx
        .outputs
        .iter()
        .position(|output| is_null(&output.address))
    {
        return Err(TxRejection::NullAddressOutput { index });
    }
    for (index, output) in tx.outputs.iter().enumerate() {
        check_droplet_precision(params.max_droplet_precision, output.coins).map_err(|error| {
            match error {
                FeeError::TooManyDecimals { coins, divisor } => TxRejection::TooManyDecimals {
                    index,
                    coins,
                    divisor,
                },
                other => TxRejection::Fee(other),
            }
        })?;
    }

    let spent = tx
        .inputs
        .iter()
        .enumerate()
        .map(|(index, uxid)| {
            unspent
                .get(uxid)
                .ok_or(TxRejection::InputNotUnspent { index, uxid: *uxid })
        })
        .collect::<Result<Vec<UxOut>, TxRejection>>()?;
    tx.verify_input_signers(&spent, signers)
        .map_err(|error| match error {
            skywire_coin::TxError::SpendSignature { index, source } => {
                TxRejection::InputSignature { index, source }
            }
            skywire_coin::TxError::SpentMismatch { index, input, uxid } => {
                TxRejection::UnspentSetMismatch {
                    index,
                    uxid: input,
                    found: uxid,
                }
            }
            // The counts, the inner hash and null signatures passed above.
            other => TxRejection::Invalid(other),
        })?;

    let coins_in = spent
        .iter()
        .try_fold(0u64, |sum, ux| sum.checked_add(ux.body.coins))
        .ok_or(TxRejection::InputCoinsOverflow)?;
    let coins_out = tx.output_coins().map_err(TxRejection::Invalid)?;
    if coins_out > coins_in {
        return Err(TxRejection::CoinsCreated {
            input: coins_in,
            output: coins_out,
        });
    }
    if coins_out < coins_in {
        return Err(TxRejection::CoinsDestroyed {
            input: coins_in,
            output: coins_out,
        });
    }

    let hours_in = input_hours(&spent, head.time)?;
    let hours_out = tx.output_hours().ok_or(TxRejection::OutputHoursOverflow)?;
    let fee = hours_in
        .checked_sub(hours_out)
        .ok_or(TxRejection::HoursIncreased {
            input: hours_in,
            output: hours_out,
        })?;
    verify_fee(hours_out, fee, params.burn_factor).map_err(|error| match error {
        FeeError::NoFee => TxRejection::ZeroFee,
        FeeError::InsufficientFee { fee, required } => TxRejection::InsufficientFee {
            fee,
            required,
            burn_factor: params.burn_factor,
        },
        other => TxRejection::Fee(other),
    })?;

    let txid = tx.hash();
    let created = tx.outputs.iter().map(|output| output.uxid(&txid)).collect();
    Ok(TxVerified {
        txid,
        spent,
        created,
        fee,
    })
}

/// How many signers [`recover_signers`] gives for `tx`: one per input with a signature
/// (as [`Transaction::recover_signers`]).
fn signer_count(tx: &Transaction) -> usize {
    tx.sigs.len().min(tx.inputs.len())
}

/// The cores signature recovery may use, asked once (on Linux the answer reads the
/// cgroup's CPU quota: not something to do per block).
fn parallelism() -> usize {
    static PARALLELISM: LazyLock<usize> =
        LazyLock::new(|| std::thread::available_parallelism().map_or(1, NonZeroUsize::get));
    *PARALLELISM
}

/// [`Transaction::recover_signer`] of every input of `txs`, transaction by transaction,
/// input by input ([`signer_count`] for each), on as many threads as
/// [`MIN_SIGNATURES_PER_THREAD`] and the cores allow.
fn recover_signers(txs: &[Transaction]) -> Vec<Result<Address, SigError>> {
    recover_signers_on(txs, parallelism())
}

/// [`recover_signers`] on at most `threads` threads (the calling one included), each
/// claiming the next input not yet recovered ([`Recoveries`]); the results in order.
fn recover_signers_on(txs: &[Transaction], threads: usize) -> Vec<Result<Address, SigError>> {
    let recoveries = Recoveries::new(txs.iter());
    let jobs = recoveries.jobs.len();
    recoveries.with_helpers(threads, |recoveries| recoveries.take(0..jobs))
}

/// The hours of `spent` at time `t`, added up, an input whose earned hours overflow
/// counting as 0 (Skycoin's `VerifyTransactionHoursSpending`; see the
/// [module docs](self#coin-hours)).
fn input_hours(spent: &[UxOut], t: u64) -> Result<u64, TxRejection> {
    spent.iter().enumerate().try_fold(0u64, |sum, (index, ux)| {
        let hours = match ux.coin_hours(t) {
            Ok(hours) => hours,
            Err(HoursError::EarnedHoursOverflow { .. }) => 0,
            Err(source) => return Err(TxRejection::InputHours { index, source }),
        };
        sum.checked_add(hours)
            .ok_or(TxRejection::InputHoursOverflow)
    })
}

#[cfg(test)]
mod tests {
    use skywire_coin::{Output, Sig, sha256};
    use skywire_identity::Keypair;

    use super::*;

    /// A transaction spending `inputs` made-up outputs, signed by `key`.
    fn signed(key: &Keypair, seed: u8, inputs: u8) -> Transaction {
        let mut tx = Transaction {
            inputs: (0..inputs).map(|i| sha256(&[seed, i])).collect(),
            outputs: vec![Output {
                address: key.address(),
                coins: 1_000_000,
                hours: 1,
            }],
            ..Transaction::default()
        };
        tx.sign(&vec![key.clone(); usize::from(inputs)])
            .expect("signs");
        tx.update_header().expect("header");
        tx
    }

    #[test]
    fn recovered_signers_are_the_same_in_order_on_any_number_of_threads() {
        let keys: Vec<Keypair> = (1..=3u8)
            .map(|n| Keypair::from_secret_bytes(&[n; 32]).expect("a valid secret"))
            .collect();
        let mut txs: Vec<Transaction> = (0..40u8)
            .map(|seed| signed(&keys[usize::from(seed % 3)], seed, 1 + seed % 3))
            .collect();
        // Unrecoverable, null, and one signature short: each keeps its place.
        txs[3].sigs[0].0[64] = 4;
        txs[17].sigs[1] = Sig::NULL;
        txs[29].sigs.pop();
        let serial: Vec<Result<Address, SigError>> =
            txs.iter().flat_map(Transaction::recover_signers).collect();
        assert_eq!(
            serial.len(),
            txs.iter().map(signer_count).sum::<usize>(),
            "one per input with a signature"
        );
        assert!(serial.len() >= 4 * MIN_SIGNATURES_PER_THREAD);
        for threads in [0, 1, 2, 3, 4, 7, 64] {
            assert_eq!(
                recover_signers_on(&txs, threads),
                serial,
                "{threads} threads"
            );
        }
        assert!(recover_signers_on(&[], 4).is_empty());
    }
}
