//! The one way blocks enter the [store](crate::store): [`Chain::apply`] checks a block with
//! the [verifier](crate::verify) against what the store holds, then has the store apply it.
//! Nothing else should call [`ChainStore::apply`], which trusts its caller on every
//! consensus rule.
//!
//! # Applying a block
//!
//! On the empty chain the block must be the configured genesis ([`verify_genesis`]).
//! Otherwise [`Chain::apply`] reads the head and the unspent outputs that
//! [`block_lookups`] names (the block's inputs and the outputs it would create) in one
//! snapshot ([`ChainStore::head_and_unspent`]), checks the block with [`verify_block`]
//! against them on tokio's blocking pool (the signature recoveries take ~30 µs per input
//! and core: too long for a runtime thread), and hands what it spends and creates, and the
//! unspent set's new hash, to [`ChainStore::apply`], which writes it all in one database
//! transaction.
//!
//! # Concurrent appliers
//!
//! Several tasks may apply blocks at once (sync, relay). The store takes the writes in
//! turn and refuses a block that no longer extends its head ([`StoreError::NotNext`]): of
//! two different next blocks, the first written wins and the second gets that error,
//! which proves nothing against its sender ([`ChainError::proves_sender_misbehaved`]).
//!
//! The head and the unspent outputs are read in one snapshot, so the set is exactly the
//! one after that head even if a block is applied meanwhile: an honest block for that
//! head never seems to spend an output that is not unspent. If the block does not extend
//! the head read, no output is looked up; the verifier refuses it by its signature or
//! sequence number before looking anything up ([`verify`](crate::verify)'s order of
//! checks): a stale block, as it should be.

use std::collections::HashMap;
use std::sync::Arc;

use skywire_coin::{Block, Hash, SignedBlock, UxOut};

use crate::store::{ChainStore, Head, StoreError};
use crate::verify::{
    BlockRejection, ChainParams, Verified, block_lookups, verify_block, verify_genesis,
};

/// Why [`Chain::apply`] did not apply a block. Nothing was written in either case.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The block breaks a rule of the chain ([`verify_genesis`] or [`verify_block`]).
    #[error("block refused: {0}")]
    Rejected(#[from] BlockRejection),

    /// The store refused the block the verifier accepted, or failed. See
    /// [`ChainError::proves_sender_misbehaved`] for what each refusal means here.
    #[error("chain store: {0}")]
    Store(#[from] StoreError),
}

impl ChainError {
    /// Whether this error proves that the peer who sent the block misbehaved (so that it
    /// may be dropped or banned).
    ///
    /// A rejection: [`BlockRejection::proves_sender_misbehaved`] (true for every rule but
    /// a block for another height, a stale or early announcement, and our own store's
    /// wrong answer).
    ///
    /// A store error: never. The verifier accepted the block against the head and unspent
    /// set it read, so a refusal of the store is a race or a fault of ours, not of the
    /// sender:
    ///
    /// - [`StoreError::NotNext`] (or [`StoreError::HeaderUxHash`]): another block was
    ///   applied between the check and the write (two appliers of different next blocks:
    ///   the second loses). Also what [`Chain::apply`] answers, on the empty chain, for a
    ///   block other than a genesis that the publisher signed: early, not a lie.
    /// - [`StoreError::MissingOutputs`], [`StoreError::UxHashAfter`],
    ///   [`StoreError::Duplicate`], [`StoreError::Invalid`]: the store and the verifier
    ///   disagree about a block the verifier accepted, or the block holds a value beyond
    ///   what the store holds (a time past `i64::MAX`): ours to fix.
    /// - [`StoreError::Corrupt`], [`StoreError::Db`]: the database.
    pub fn proves_sender_misbehaved(&self) -> bool {
        match self {
            Self::Rejected(rejection) => rejection.proves_sender_misbehaved(),
            Self::Store(_) => false,
        }
    }
}

/// The chain: its store, its rules and its genesis block. Cloning is cheap (a block and a
/// handle on the store's pool) and shares the store.
#[derive(Clone, Debug)]
pub struct Chain {
    store: ChainStore,
    params: ChainParams,
    genesis: Block,
}

impl Chain {
    /// The chain on `store` (migrated, see [`ChainStore::migrations`]) with the rules
    /// `params`, whose first block must be `genesis` ([`Block::genesis`] from the chain's
    /// configuration), signed by [`ChainParams::publisher`].
    pub fn new(store: ChainStore, params: ChainParams, genesis: Block) -> Self {
        Self {
            store,
            params,
            genesis,
        }
    }

    /// The store. Read from it freely; apply blocks only through [`Chain::apply`].
    pub fn store(&self) -> &ChainStore {
        &self.store
    }

    /// The chain's rules.
    pub fn params(&self) -> &ChainParams {
        &self.params
    }

    /// The configured genesis block.
    pub fn genesis(&self) -> &Block {
        &self.genesis
    }

    /// The head, or `None` before the genesis block is applied.
    ///
    /// # Errors
    ///
    /// The store's ([`ChainStore::head`]).
    pub async fn head(&self) -> Result<Option<Head>, StoreError> {
        self.store.head().await
    }

    /// Checks `block` as the next block of the chain and, if it is valid, applies it to the
    /// store (see the [module docs](self)). Returns what it spent and created.
    ///
    /// On the empty chain a block with sequence number 0 is checked with
    /// [`verify_genesis`]; one with another sequence number is refused with
    /// [`StoreError::NotNext`] (as the store would) once its signature is checked.
    ///
    /// # Errors
    ///
    /// [`ChainError::Rejected`] if the block breaks a rule; [`ChainError::Store`] if the
    /// store refuses it (another block was applied first) or fails. Nothing is written
    /// then. [`ChainError::proves_sender_misbehaved`] says which errors are the sender's.
    pub async fn apply(&self, block: &SignedBlock) -> Result<Verified, ChainError> {
        let result = self.check_and_apply(block).await;
        let header = &block.block.header;
        match &result {
            Ok(verified) => tracing::debug!(
                seq = header.bk_seq,
                hash = %header.hash(),
                fee = verified.fee,
                "block accepted"
            ),
            Err(error) => tracing::debug!(
                seq = header.bk_seq,
                hash = %header.hash(),
                %error,
                misbehaved = error.proves_sender_misbehaved(),
                "block refused"
            ),
        }
        result
    }

    /// [`Chain::apply`] without the logging.
    async fn check_and_apply(&self, block: &SignedBlock) -> Result<Verified, ChainError> {
        let (head, unspent) = self
            .store
            .head_and_unspent(block.block.header.bk_seq, &block_lookups(&block.block))
            .await?;
        let Some(head) = head else {
            return self.apply_first(block).await;
        };
        let verified = self.verify_blocking(head, unspent, block).await?;
        let spent: Vec<Hash> = verified.spent.iter().map(UxOut::hash).collect();
        self.store
            .apply(block, &spent, &verified.created, &verified.ux_hash_after)
            .await?;
        Ok(verified)
    }

    /// [`verify_block`] of `block` after `head`, against `unspent`, on tokio's blocking
    /// pool: it takes ~30 µs per input and core (signature recovery, spread over the
    /// cores), far too long to hold a runtime thread. The block is copied for the blocking
    /// task (~1% of its verification).
    async fn verify_blocking(
        &self,
        head: Head,
        unspent: HashMap<Hash, UxOut>,
        block: &SignedBlock,
    ) -> Result<Verified, BlockRejection> {
        let job = Arc::new((self.params, head, unspent, block.clone()));
        let verify = |job: &(ChainParams, Head, HashMap<Hash, UxOut>, SignedBlock)| {
            let (params, head, unspent, block) = job;
            verify_block(params, &head.header, &head.ux_hash, unspent, block)
        };
        let task = {
            let job = Arc::clone(&job);
            move || verify(&job)
        };
        match tokio::task::spawn_blocking(task).await {
            Ok(verified) => verified,
            Err(error) => match error.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                // Never started: the runtime is shutting down. Check here instead.
                Err(_) => verify(&job),
            },
        }
    }

    /// Applies `block` to the empty chain: it must be the configured genesis.
    async fn apply_first(&self, block: &SignedBlock) -> Result<Verified, ChainError> {
        let header = &block.block.header;
        if header.bk_seq != 0 {
            // Not meant as a genesis: a block of a chain we have not started yet.
            block
                .verify_signature(&self.params.publisher)
                .map_err(BlockRejection::Signature)?;
            return Err(StoreError::NotNext {
                seq: header.bk_seq,
                prev_hash: header.prev_hash,
                head: None,
            }
            .into());
        }
        let verified = verify_genesis(&self.params, &self.genesis, block)?;
        self.store
            .apply(block, &[], &verified.created, &verified.ux_hash_after)
            .await?;
        Ok(verified)
    }
}
