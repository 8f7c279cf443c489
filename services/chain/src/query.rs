//! Reading the chain for the APIs: one implementation of each query that the gRPC API
//! ([`crate::api`]) and the REST API ([`crate::rest`]) both answer.

use skywire_coin::ux::total_coin_hours;
use skywire_coin::{Hash, HoursError, SignedBlock, Transaction, UxOut};
use skywire_identity::Address;

use crate::mempool::MempoolError;
use crate::service::{ChainService, ServiceError};
use crate::store::{MAX_UNSPENT_PER_CALL, StoreError};

/// A block by sequence number or by hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockId {
    /// Its sequence number.
    Seq(u64),
    /// Its hash.
    Hash(Hash),
}

/// Where a transaction was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundTransaction {
    /// The transaction.
    pub tx: Transaction,
    /// The sequence number of the block holding it; `None`: only in the pool.
    pub block_seq: Option<u64>,
}

/// What an address holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressBalance {
    /// Droplets.
    pub coins: u64,
    /// Coin hours at the head's time.
    pub hours: u64,
    /// Unspent outputs.
    pub outputs: u64,
}

/// An unspent output, and the pool transaction already spending it if there is one (a
/// wallet should not spend it again: the node would refuse the second spend).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unspent {
    /// The output.
    pub output: UxOut,
    /// The id of the transaction in this node's pool that spends it.
    pub spent_by: Option<Hash>,
}

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The chain has no block yet.
    #[error("the chain has no blocks yet")]
    NoChain,
    /// Coin hours overflowed.
    #[error(transparent)]
    Hours(#[from] HoursError),
}

/// What kind of failure an API reports, whatever its transport: the gRPC API maps it to
/// a status code, the REST API to an HTTP status and a machine-readable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The request is malformed.
    InvalidArgument,
    /// The request is larger than allowed.
    TooLarge,
    /// Nothing answers it.
    NotFound,
    /// The transaction is in the pool or a block already.
    AlreadyExists,
    /// The transaction breaks a rule, or spends what is not unspent.
    Rejected,
    /// The pool is full of better-paying transactions.
    PoolFull,
    /// The node cannot answer now (its store failed, it has no chain yet).
    Unavailable,
    /// A fault of ours.
    Internal,
}

impl Failure {
    /// The machine-readable name of the failure, as the REST API writes it.
    pub fn code(self) -> &'static str {
        match self {
            Self::InvalidArgument => "invalid_argument",
            Self::TooLarge => "too_large",
            Self::NotFound => "not_found",
            Self::AlreadyExists => "already_exists",
            Self::Rejected => "rejected",
            Self::PoolFull => "pool_full",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }
}

impl ServiceError {
    /// What kind of failure refusing a submission is.
    pub fn failure(&self) -> Failure {
        match self {
            Self::Store(_) | Self::Host(_) | Self::Bus(_) | Self::NoChain => Failure::Unavailable,
            Self::Mempool(MempoolError::Duplicate { .. }) | Self::Confirmed(_) => {
                Failure::AlreadyExists
            }
            Self::Mempool(MempoolError::PoolFull { .. }) => Failure::PoolFull,
            Self::Chain(_) | Self::Block(_) | Self::NotPublisher => Failure::Internal,
            _ => Failure::Rejected,
        }
    }
}

impl QueryError {
    /// What kind of failure this is.
    pub fn failure(&self) -> Failure {
        match self {
            Self::Store(_) | Self::NoChain => Failure::Unavailable,
            Self::Hours(_) => Failure::Internal,
        }
    }
}

impl ChainService {
    /// The block `id`, if stored.
    ///
    /// # Errors
    ///
    /// The store's.
    pub async fn block(&self, id: BlockId) -> Result<Option<SignedBlock>, StoreError> {
        let store = self.chain().store();
        match id {
            BlockId::Seq(seq) => store.block_by_seq(seq).await,
            BlockId::Hash(hash) => store.block_by_hash(&hash).await,
        }
    }

    /// The transaction `txid`, confirmed or in the pool.
    ///
    /// # Errors
    ///
    /// The store's.
    pub async fn find_transaction(
        &self,
        txid: &Hash,
    ) -> Result<Option<FoundTransaction>, StoreError> {
        if let Some((tx, seq)) = self.chain().store().transaction(txid).await? {
            return Ok(Some(FoundTransaction {
                tx,
                block_seq: Some(seq),
            }));
        }
        Ok(self.pooled(txid).map(|tx| FoundTransaction {
            tx,
            block_seq: None,
        }))
    }

    /// What `address` holds: coins and outputs, and the hours of its (first
    /// [`MAX_UNSPENT_PER_CALL`]) outputs at the head's time.
    ///
    /// # Errors
    ///
    /// [`QueryError`].
    pub async fn balance(&self, address: &Address) -> Result<AddressBalance, QueryError> {
        let store = self.chain().store();
        let head = store.head().await?.ok_or(QueryError::NoChain)?;
        let outputs = store
            .unspent_by_address(address, MAX_UNSPENT_PER_CALL)
            .await?;
        let head_time = head.header.time;
        let balance = store.balance(address).await?;
        Ok(AddressBalance {
            coins: balance.coins,
            hours: total_coin_hours(&outputs, head_time)?,
            outputs: balance.outputs,
        })
    }

    /// Up to `limit` unspent outputs of `address`, oldest first, each with the pool
    /// transaction already spending it, and the head's time (what a spend's hours are
    /// computed at).
    ///
    /// # Errors
    ///
    /// [`QueryError`].
    pub async fn unspent(
        &self,
        address: &Address,
        limit: u32,
    ) -> Result<(Vec<Unspent>, u64), QueryError> {
        let store = self.chain().store();
        let head = store.head().await?.ok_or(QueryError::NoChain)?;
        let outputs = store.unspent_by_address(address, limit).await?;
        let spenders = self.pool_spenders(outputs.iter().map(UxOut::hash));
        let unspent = outputs
            .into_iter()
            .zip(spenders)
            .map(|(output, spent_by)| Unspent { output, spent_by })
            .collect();
        Ok((unspent, head.header.time))
    }
}
