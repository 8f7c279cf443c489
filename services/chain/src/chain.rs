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
//! snapshot ([`ChainStore::head_and_unspent`]), checks the block with [`verify_block`](crate::verify::verify_block)
//! against them on tokio's blocking pool (the signature recoveries take ~30 µs per input
//! and core: too long for a runtime thread), and hands what it spends and creates, and the
//! unspent set's new hash, to [`ChainStore::apply`], which writes it all in one database
//! transaction.
//!
//! # Applying blocks in batches
//!
//! [`Chain::apply_many`] does the same for consecutive blocks (sync hands them out by the
//! hundred), [`MAX_APPLY_BATCH`] at a time: one snapshot read for the whole batch's
//! lookups, then [`verify_blocks`]: each block in turn against the set the blocks before
//! it leave (the outputs read, without those they spent, with those they created: an
//! overlay, nothing is copied), the signatures of later blocks recovered on the other
//! cores while earlier ones are walked; then one [`ChainStore::apply_many`] for the blocks that
//! passed. Each batch is checked while the one before is written: its outputs are read
//! without the head (the store holds the set before that batch or after it, as its write
//! may have committed) and that batch's changes are laid on them, which gives the set
//! after it either way. A block refused stops there: those before it are applied, as
//! they would have been one by one. [`Chain::apply`] is a batch of one.
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

use crate::store::{BlockChanges, ChainStore, Head, MAX_APPLY_BATCH, StoreError};
use crate::verify::{
    BlockRejection, ChainParams, Verified, block_lookups, verify_blocks, verify_genesis,
};

/// Why [`Chain::apply`] did not apply a block. Nothing was written in either case.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The block breaks a rule of the chain ([`verify_genesis`] or
    /// [`verify_block`](crate::verify::verify_block)).
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

/// Why [`Chain::apply_many`] stopped before the end of its blocks: the blocks before the
/// one refused are applied, that one and those after it are not.
#[derive(Debug, thiserror::Error)]
#[error("block {} of the batch not applied: {error}", .applied.len())]
pub struct BatchError {
    /// What each block applied did, in order: the batch up to the one refused.
    pub applied: Vec<Verified>,
    /// Why the next block was not applied.
    pub error: ChainError,
}

/// Blocks checked in turn ([`Chain::apply_many`]): what each does, and the head after
/// them.
struct Checked<'b> {
    /// The blocks, consecutive.
    blocks: &'b [SignedBlock],
    /// What each block does, in order.
    verified: Vec<Verified>,
    /// The head after the blocks (`None`: the chain is empty).
    head: Option<Head>,
    /// Whether the blocks are written already (the genesis block).
    written: bool,
}

impl Checked<'_> {
    /// No blocks.
    fn empty() -> Checked<'static> {
        Checked {
            blocks: &[],
            verified: Vec::new(),
            head: None,
            written: false,
        }
    }

    /// `unspent` (read before the blocks, or after them) as after them: without what they
    /// spent, with what they created.
    fn change(&self, unspent: &mut HashMap<Hash, UxOut>) {
        for (block, verified) in self.blocks.iter().zip(&self.verified) {
            for id in inputs(block) {
                unspent.remove(&id);
            }
            unspent.extend(verified.created.iter().map(|ux| (ux.hash(), *ux)));
        }
    }

    /// The blocks are applied: logs each and adds what it did to `applied`.
    fn accepted(self, applied: &mut Vec<Verified>) {
        for (block, verified) in self.blocks.iter().zip(&self.verified) {
            let header = &block.block.header;
            tracing::debug!(seq = header.bk_seq, hash = %header.hash(), fee = verified.fee, "block accepted");
        }
        applied.extend(self.verified);
    }
}

/// The ids of the outputs `block` spends: every input of its transactions, in order.
fn inputs(block: &SignedBlock) -> Vec<Hash> {
    block
        .block
        .body
        .transactions
        .iter()
        .flat_map(|tx| tx.inputs.iter().copied())
        .collect()
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
        match self.apply_many(std::slice::from_ref(block)).await {
            Ok(mut verified) => Ok(verified.pop().expect("one block applied")),
            Err(BatchError { error, .. }) => Err(error),
        }
    }

    /// [`Chain::apply`] of `blocks` in turn, in batches of up to [`MAX_APPLY_BATCH`], each
    /// checked while the one before is written (see the [module docs](self#applying-blocks-in-batches)).
    /// Far faster than one by one when syncing (docs/benchmarks.md §7.2). Returns what each
    /// block spent and created.
    ///
    /// # Errors
    ///
    /// [`BatchError`]: the blocks before the first one refused are applied (and listed in
    /// it); that block and those after it are not. A store failure applies nothing of its
    /// batch, nor after it.
    pub async fn apply_many(&self, blocks: &[SignedBlock]) -> Result<Vec<Verified>, BatchError> {
        let mut applied = Vec::with_capacity(blocks.len());
        let mut rest = blocks;
        // Checked, and written while the next batch is checked.
        let mut writing: Option<Checked<'_>> = None;
        while !rest.is_empty() || writing.is_some() {
            let batch = &rest[..rest.len().min(MAX_APPLY_BATCH)];
            let (written, (checked, refused)) = tokio::join!(
                self.write(writing.as_ref()),
                self.check(batch, writing.as_ref())
            );
            if let Some(done) = writing.take() {
                if let Err(error) = written {
                    return Err(BatchError {
                        applied,
                        error: error.into(),
                    });
                }
                done.accepted(&mut applied);
            }
            rest = &rest[checked.blocks.len()..];
            if let Some(error) = refused {
                if !checked.written
                    && !checked.blocks.is_empty()
                    && let Err(error) = self.write(Some(&checked)).await
                {
                    return Err(BatchError {
                        applied,
                        error: error.into(),
                    });
                }
                checked.accepted(&mut applied);
                let header = &rest[0].block.header;
                tracing::debug!(
                    seq = header.bk_seq,
                    hash = %header.hash(),
                    %error,
                    misbehaved = error.proves_sender_misbehaved(),
                    "block refused"
                );
                return Err(BatchError { applied, error });
            }
            if checked.written {
                checked.accepted(&mut applied);
            } else if !checked.blocks.is_empty() {
                writing = Some(checked);
            }
        }
        Ok(applied)
    }

    /// Checks the blocks of `batch` in order, after the head, or after `prior` if it is
    /// being written; those that pass, and why the next was refused. The genesis block of
    /// an empty chain is checked and written alone.
    async fn check<'b>(
        &self,
        batch: &'b [SignedBlock],
        prior: Option<&Checked<'_>>,
    ) -> (Checked<'b>, Option<ChainError>) {
        let refused = |error: ChainError| (Checked::empty(), Some(error));
        let Some(first) = batch.first() else {
            return (Checked::empty(), None);
        };
        let lookups: Vec<Hash> = batch.iter().flat_map(|b| block_lookups(&b.block)).collect();
        let (head, unspent) = match prior {
            None => match self
                .store
                .head_and_unspent(first.block.header.bk_seq, &lookups)
                .await
            {
                Ok(read) => read,
                Err(error) => return refused(error.into()),
            },
            // The store holds the set before `prior` or after it (its write may be
            // committed already); with `prior`'s changes, the set after it either way.
            Some(prior) => match self.store.unspent(&lookups).await {
                Ok(mut unspent) => {
                    prior.change(&mut unspent);
                    (prior.head, unspent)
                }
                Err(error) => return refused(error.into()),
            },
        };
        let Some(head) = head else {
            return match self.apply_first(first).await {
                Ok(verified) => {
                    let head = Head {
                        header: first.block.header,
                        ux_hash: verified.ux_hash_after,
                    };
                    let checked = Checked {
                        blocks: &batch[..1],
                        verified: vec![verified],
                        head: Some(head),
                        written: true,
                    };
                    (checked, None)
                }
                Err(error) => refused(error),
            };
        };
        let (verified, rejection) = self.verify_blocking(head, unspent, batch).await;
        let head = match (batch[..verified.len()].last(), verified.last()) {
            (Some(block), Some(last)) => Head {
                header: block.block.header,
                ux_hash: last.ux_hash_after,
            },
            _ => head,
        };
        let checked = Checked {
            blocks: &batch[..verified.len()],
            verified,
            head: Some(head),
            written: false,
        };
        (checked, rejection.map(ChainError::from))
    }

    /// Writes the blocks of `checked` (nothing if `None`) in one store transaction.
    async fn write(&self, checked: Option<&Checked<'_>>) -> Result<(), StoreError> {
        let Some(checked) = checked else {
            return Ok(());
        };
        let spent: Vec<Vec<Hash>> = checked.blocks.iter().map(inputs).collect();
        let changes: Vec<BlockChanges<'_>> = checked
            .blocks
            .iter()
            .zip(&checked.verified)
            .zip(&spent)
            .map(|((block, verified), spent)| BlockChanges {
                block,
                spent,
                created: &verified.created,
                ux_hash_after: &verified.ux_hash_after,
            })
            .collect();
        self.store.apply_many(&changes).await
    }

    /// [`verify_blocks`] of `batch` after `head`, against `unspent`, on tokio's blocking
    /// pool: it takes ~30 µs per input and core (signature recovery, spread over the
    /// cores), far too long to hold a runtime thread. What the blocks that pass do, up to
    /// the first refused, and why that one was. The blocks are copied for the blocking task
    /// (~1% of their verification).
    async fn verify_blocking(
        &self,
        head: Head,
        unspent: HashMap<Hash, UxOut>,
        batch: &[SignedBlock],
    ) -> (Vec<Verified>, Option<BlockRejection>) {
        let job = Arc::new((self.params, head, unspent, batch.to_vec()));
        let verify = |job: &(ChainParams, Head, HashMap<Hash, UxOut>, Vec<SignedBlock>)| {
            let (params, head, unspent, blocks) = job;
            verify_blocks(params, &head.header, &head.ux_hash, unspent, blocks)
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
