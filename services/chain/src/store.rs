//! The chain's store: blocks, transactions and the unspent set (indexed by
//! address) in the service's database (SQLite embedded, PostgreSQL in
//! cluster mode; [`skywire_db::Db`]), with the same meaning in both.
//!
//! Four tables (`migrations/chain/{sqlite,postgres}/`, every column
//! documented there):
//!
//! - `chain_blocks`: one row per block, keyed by sequence number, with its
//!   hash (unique), encoded header, body and signature, and its time, fee and
//!   transaction count copied out for queries.
//! - `chain_transactions`: one row per transaction of a stored block: id,
//!   block, index in the block, encoding.
//! - `chain_unspent`: the unspent set after the head, one row per output,
//!   keyed by uxid, indexed by base58 address; its columns are the fields of
//!   [`UxOut`], so each output is rebuilt exactly.
//! - `chain_head`: one row: the head block's sequence number and hash and the
//!   [`UxHash`] of the unspent set after it (all NULL for the empty chain).
//!
//! # Applying a block
//!
//! [`ChainStore::apply`] and [`ChainStore::apply_many`] (consecutive blocks,
//! a batch of one for `apply`) are the only writes. A batch runs in one
//! database transaction: lock the head, check that the first block extends
//! it, insert the blocks and their transactions, delete the outputs they
//! spend that were stored before the batch (each must be unspent), check
//! each block in turn (it extends the one before, its spends are unspent,
//! its unspent-set hash after), insert the outputs created and not spent
//! within the batch, move the head. Anything refused or failing rolls the
//! whole batch back.
//!
//! Appliers take turns: on PostgreSQL the head row is locked
//! (`SELECT … FOR UPDATE`) before it is read, on SQLite the write
//! transaction holds the database's write lock from its start
//! (`BEGIN IMMEDIATE`). Of two concurrent appliers of different next blocks,
//! the second sees the first's head and is refused with
//! [`StoreError::NotNext`].
//!
//! The store trusts its caller (the verifier) on everything that needs the
//! chain key or consensus rules, but checks what is cheap and would otherwise
//! corrupt the chain silently: the block extends the head (sequence number,
//! previous hash, unspent-set hash in its header), `spent` and `created` are
//! exactly the block's inputs and [`create_unspents`] of its transactions,
//! every spent output is unspent, and `ux_hash_after` is the head's
//! unspent-set hash with the spent and created outputs toggled.
//!
//! # Crash safety
//!
//! Everything one block (or one batch) changes commits together or not at
//! all. After a crash (of the process, or of the machine: SQLite's WAL and
//! PostgreSQL's WAL both recover to the last committed transaction) the head,
//! the blocks and the unspent set are exactly those after the last committed
//! block; no block is ever half applied. With SQLite in `synchronous =
//! NORMAL` a power loss may lose the last few committed blocks, never
//! consistency: the store is then simply at an earlier head, and sync fetches
//! the rest again.
//!
//! # Reading
//!
//! Rows read back are decoded and checked (lengths, ranges, hashes against
//! their keys, a block's body against its header); a row the store would not
//! have written is [`StoreError::Corrupt`], never a panic. Every read is
//! bounded: lists by the `MAX_*` constants below, id lookups split into
//! queries of at most [`MAX_BATCH`] ids. What checking the next block needs,
//! the head and the outputs the block names, is read in one snapshot
//! ([`ChainStore::head_and_unspent`]).
//!
//! # Integers
//!
//! SQL integers are signed 64-bit. Sequence numbers, times and coins must fit
//! (`apply` refuses larger ones with [`StoreError::Invalid`]; real chains are
//! many orders of magnitude below). Coin hours and fees are stored as the
//! two's-complement bit pattern of the `u64`, so any value round-trips
//! (Skycoin's chain holds outputs with hours beyond `i64::MAX`); SQL never
//! compares or sums them.

use std::collections::{HashMap, HashSet};

use skywire_coin::{
    Block, BlockBody, BlockHeader, Decode, Encode, Hash, SignedBlock, Transaction, UxBody, UxHash,
    UxHead, UxOut, create_unspents,
};
use skywire_db::{Db, Migrations};
use skywire_identity::Address;

use crate::sync::SignedHeader;

use self::rows::{BlockRow, HeadRow, LockedHeadRow, UnspentRow};

/// The service name the store's migrations are recorded under
/// (`_sqlx_migrations_chain`).
pub const MIGRATIONS_SERVICE: &str = "chain";

/// Most ids in one `IN (…)` list and most rows in one multi-row `INSERT`:
/// with at most 7 columns a row that is 3,500 bind parameters, well under
/// SQLite's 32,766 and PostgreSQL's 65,535, while a typical block (a few
/// hundred inputs and outputs at most) still takes one statement each.
/// Longer lists are split.
pub const MAX_BATCH: usize = 500;

/// Most blocks [`ChainStore::apply_many`] applies in one transaction. At
/// Skycoin's default 32 KiB block size limit that is at most 2 MiB of
/// bodies and ~64 000 rows.
pub const MAX_APPLY_BATCH: usize = 32;

/// Most blocks [`ChainStore::blocks`] returns in one call; larger limits are
/// lowered to this. At Skycoin's default 32 KiB block size limit that is at
/// most 8 MiB, a sync response's worth.
pub const MAX_BLOCKS_PER_CALL: u32 = 256;

/// Most headers [`ChainStore::headers`] returns in one call; larger limits
/// are lowered to this. 124 bytes each: about 250 KB.
pub const MAX_HEADERS_PER_CALL: u32 = 2_000;

/// Most outputs [`ChainStore::unspent_by_address`] returns in one call;
/// larger limits are lowered to this. A wallet spending more outputs than
/// this in one transaction would be far over Skycoin's transaction size
/// limit anyway.
pub const MAX_UNSPENT_PER_CALL: u32 = 10_000;

/// What the store refuses or fails at.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The block does not extend the head: its sequence number is not the
    /// head's plus one (0 on the empty chain), or its previous hash is not
    /// the head's hash (zero for the genesis). Nothing was written.
    #[error(
        "block {seq} with previous hash {prev_hash} does not extend the head ({})",
        describe_head(*.head)
    )]
    NotNext {
        /// The block's sequence number.
        seq: u64,
        /// The block's previous hash.
        prev_hash: Hash,
        /// The head's sequence number and hash; `None` for the empty chain.
        head: Option<(u64, Hash)>,
    },

    /// The block's header does not carry the hash of the unspent set after
    /// the head. Nothing was written.
    #[error(
        "block {seq} carries unspent-set hash {header}, the set after the head hashes to {head}"
    )]
    HeaderUxHash {
        /// The block's sequence number.
        seq: u64,
        /// The [`BlockHeader::ux_hash`] of the block.
        header: Hash,
        /// The hash of the unspent set after the head.
        head: Hash,
    },

    /// The block spends an output that is not unspent (unknown, already
    /// spent, or spent twice by the block). Nothing was written.
    #[error("block {seq} spends {spent} outputs, {found} of them unspent; {missing} is not")]
    MissingOutputs {
        /// The block's sequence number.
        seq: u64,
        /// How many outputs the block spends.
        spent: usize,
        /// How many of them were in the unspent set.
        found: usize,
        /// The first output that was not (or was spent a second time).
        missing: Hash,
    },

    /// `ux_hash_after` is not the head's unspent-set hash with the spent and
    /// created outputs toggled. Nothing was written.
    #[error("block {seq}: the unspent set after it hashes to {computed}, not the {given} given")]
    UxHashAfter {
        /// The block's sequence number.
        seq: u64,
        /// The `ux_hash_after` passed to [`ChainStore::apply`].
        given: Hash,
        /// The hash the store computed.
        computed: Hash,
    },

    /// An argument is malformed, out of range, or inconsistent with the
    /// block. Nothing was written.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The argument at fault (`block`, `spent`, `created`, …).
        field: &'static str,
        /// What is wrong with it, with the numbers involved.
        reason: String,
    },

    /// A transaction or output of the block is already stored (the same
    /// transaction in an earlier block, or two outputs with one uxid).
    /// Nothing was written.
    #[error("block {seq}: {what} already stored: {detail}")]
    Duplicate {
        /// The block's sequence number.
        seq: u64,
        /// `transaction` or `unspent output`.
        what: &'static str,
        /// The database's message.
        detail: String,
    },

    /// A row read back does not hold what the store writes (e.g. a header
    /// whose hash is not the row's key): the database was changed behind the
    /// store's back.
    #[error("corrupt row {row}: {reason}")]
    Corrupt {
        /// The row (or column) at fault: `block 12`, `transaction <txid>`, …
        row: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The database failed.
    #[error("chain store database error: {0}")]
    Db(#[from] sqlx::Error),
}

/// The head for [`StoreError::NotNext`]'s message.
fn describe_head(head: Option<(u64, Hash)>) -> String {
    match head {
        Some((seq, hash)) => format!("block {seq}, {hash}"),
        None => "empty chain".to_owned(),
    }
}

/// The chain's head: its last block's header and the hash of the unspent set
/// after that block (what the next block's header must carry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// The head block's header.
    pub header: BlockHeader,
    /// The [`UxHash`] of the unspent set after the head block.
    pub ux_hash: UxHash,
}

impl Head {
    /// The head block's sequence number.
    pub fn seq(&self) -> u64 {
        self.header.bk_seq
    }

    /// The head block's hash.
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }
}

/// The unspent outputs of one address, summed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Balance {
    /// Their coins, in droplets.
    pub coins: u64,
    /// How many outputs.
    pub outputs: u64,
}

/// Runs `$body` in a read-only transaction on `$db`, so that its several
/// statements see one snapshot (SQLite: a deferred transaction in WAL mode;
/// PostgreSQL: `REPEATABLE READ`), with `$q` and `$conn` as in
/// [`skywire_db::write_tx!`].
macro_rules! read_tx {
    ($db:expr, |$q:ident, $conn:ident| $body:expr) => {
        match $db {
            Db::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                let out = {
                    use sqlite_queries as $q;
                    let $conn: &mut sqlx::SqliteConnection = &mut tx;
                    $body
                }?;
                tx.commit().await?;
                Ok::<_, StoreError>(out)
            }
            Db::Postgres(pool) => {
                let mut tx = pool
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?;
                let out = {
                    use postgres_queries as $q;
                    let $conn: &mut sqlx::PgConnection = &mut tx;
                    $body
                }?;
                tx.commit().await?;
                Ok::<_, StoreError>(out)
            }
        }
    };
}

/// The chain's store. Cloning is cheap and shares the database pool.
#[derive(Clone, Debug)]
pub struct ChainStore {
    db: Db,
}

impl ChainStore {
    /// A store on `db`, which must have been migrated with
    /// [`ChainStore::migrations`].
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// The store's migrations, to run with [`Db::migrate`] before use.
    pub fn migrations() -> Migrations {
        Migrations::new(
            MIGRATIONS_SERVICE,
            sqlx::migrate!("../../migrations/chain/sqlite"),
            sqlx::migrate!("../../migrations/chain/postgres"),
        )
    }

    /// The database the store is on.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The head, or `None` for the empty chain.
    pub async fn head(&self) -> Result<Option<Head>, StoreError> {
        let row = skywire_db::with_conn!(&self.db, sqlite_queries, postgres_queries, |q, conn| {
            q::head(conn).await
        })?;
        decode_head(row)
    }

    /// The head (`None` for the empty chain) and, if a block with sequence number
    /// `next_seq` would extend it, the unspent outputs among `ids` as in
    /// [`ChainStore::unspent`] (otherwise none), read in one snapshot: the outputs are
    /// those of the set after that head, whatever is applied meanwhile. What a block's
    /// verifier needs, in one read transaction.
    pub async fn head_and_unspent(
        &self,
        next_seq: u64,
        ids: &[Hash],
    ) -> Result<(Option<Head>, HashMap<Hash, UxOut>), StoreError> {
        let ids = sorted_ids(ids);
        let (head, rows) = read_tx!(&self.db, |q, conn| {
            let head = decode_head(q::head(conn).await?)?;
            let next = head.map_or(Some(0), |head| head.seq().checked_add(1));
            let mut rows = Vec::new();
            if next == Some(next_seq) {
                for chunk in ids.chunks(MAX_BATCH) {
                    rows.extend(q::unspent(conn, chunk).await?);
                }
            }
            Ok::<_, StoreError>((head, rows))
        })?;
        Ok((head, decode_unspent_by_id(rows)?))
    }

    /// Applies `block` on top of the head, in one database transaction:
    /// stores the block and its transactions, removes the outputs it spends
    /// (`spent`: every input of its transactions) from the unspent set, adds
    /// those it creates (`created`: [`create_unspents`] of each of its
    /// transactions), and makes it the head, with `ux_hash_after` as the
    /// unspent set's hash.
    ///
    /// Refused, with nothing written:
    ///
    /// - [`StoreError::NotNext`] unless the block's sequence number is the
    ///   head's plus one and its previous hash the head's hash (on the empty
    ///   chain: sequence number 0 and a zero previous hash);
    /// - [`StoreError::HeaderUxHash`] unless its header's unspent-set hash is
    ///   the head's;
    /// - [`StoreError::Invalid`] if `spent` or `created` (in any order) are
    ///   not exactly what the block's transactions spend and create, or a
    ///   sequence number, time or coin value is above `i64::MAX`;
    /// - [`StoreError::MissingOutputs`] if a spent output is not unspent;
    /// - [`StoreError::UxHashAfter`] if `ux_hash_after` is not the head's
    ///   hash with every spent and created output toggled;
    /// - [`StoreError::Duplicate`] if a transaction or created output is
    ///   already stored.
    ///
    /// Whatever the signature, fees, hours and coin rules say is the
    /// caller's to check (the verifier), before calling this.
    pub async fn apply(
        &self,
        block: &SignedBlock,
        spent: &[Hash],
        created: &[UxOut],
        ux_hash_after: &UxHash,
    ) -> Result<(), StoreError> {
        self.apply_many(&[BlockChanges {
            block,
            spent,
            created,
            ux_hash_after,
        }])
        .await
    }

    /// Applies `blocks`, consecutive, on top of the head in one database
    /// transaction: as [`ChainStore::apply`] of each in turn, with the same
    /// refusals (for the first block at fault), except that an output
    /// created by one block of the batch and spent by a later one is never
    /// written, and the head moves once. All of them are applied or none.
    ///
    /// A batch costs one transaction, one head lock and one commit, and its
    /// spends of outputs stored before it are one `DELETE` per
    /// [`MAX_BATCH`]: several blocks this way cost far less than one by one
    /// (docs/benchmarks.md §7.2). After a crash the head is the last block of
    /// the last committed batch. At most [`MAX_APPLY_BATCH`] blocks.
    pub async fn apply_many(&self, blocks: &[BlockChanges<'_>]) -> Result<(), StoreError> {
        let (Some(first), Some(last)) = (blocks.first(), blocks.last()) else {
            return Ok(());
        };
        if blocks.len() > MAX_APPLY_BATCH {
            return Err(invalid(
                "blocks",
                format!(
                    "{} blocks, at most {MAX_APPLY_BATCH} per batch",
                    blocks.len()
                ),
            ));
        }
        let news = blocks
            .iter()
            .map(|b| NewBlock::prepare(b.block, b.spent, b.created))
            .collect::<Result<Vec<_>, _>>()?;
        let batch = NetChanges::of(&news);
        let applied: Result<(), StoreError> =
            skywire_db::write_tx!(&self.db, sqlite_queries, postgres_queries, |q, conn| {
                let head = q::lock_head(conn).await?.ok_or_else(head_row_missing)?;
                let mut head = decode_locked_head(&head)?;
                // Refuse a batch that does not extend the head before writing anything.
                check_extends(head.as_ref(), &first.block.block.header)?;
                for (b, new) in blocks.iter().zip(&news) {
                    q::insert_block(conn, new).await?;
                    q::insert_transactions(conn, new.seq, &new.transactions)
                        .await
                        .map_err(|e| duplicate(b.block.block.header.bk_seq, "transaction", e))?;
                }
                let mut removed = HashMap::with_capacity(batch.from_store.len());
                for chunk in batch.from_store.chunks(MAX_BATCH) {
                    for row in q::delete_unspent(conn, chunk).await? {
                        let (uxid, ux) = decode_unspent_with_id(row)?;
                        removed.insert(uxid, ux);
                    }
                }
                let mut pending: HashMap<Hash, UxOut> = HashMap::new();
                for (b, new) in blocks.iter().zip(&news) {
                    let header = &b.block.block.header;
                    let mut ux_hash = check_extends(head.as_ref(), header)?;
                    take_spent(
                        header.bk_seq,
                        b.spent,
                        &mut pending,
                        &mut removed,
                        &mut ux_hash,
                    )?;
                    // `new.created` holds `b.created`'s ids, in the same order.
                    for (ux, row) in b.created.iter().zip(&new.created) {
                        ux_hash.xor(&ux.snapshot_hash());
                        pending.insert(row.uxid, *ux);
                    }
                    if ux_hash != *b.ux_hash_after {
                        return Err(StoreError::UxHashAfter {
                            seq: header.bk_seq,
                            given: b.ux_hash_after.hash(),
                            computed: ux_hash.hash(),
                        });
                    }
                    head = Some(LockedHead {
                        seq: header.bk_seq,
                        hash: new.hash,
                        ux_hash: ux_hash.hash(),
                    });
                }
                for chunk in batch.created.chunks(MAX_BATCH) {
                    q::insert_unspent(conn, chunk).await.map_err(|e| {
                        duplicate(last.block.block.header.bk_seq, "unspent output", e)
                    })?;
                }
                let head = head.as_ref().expect("the batch holds a block");
                q::set_head(
                    conn,
                    to_i64("block seq", head.seq)?,
                    &head.hash,
                    &head.ux_hash,
                )
                .await?;
                Ok::<_, StoreError>(())
            });
        applied?;
        tracing::debug!(
            from = first.block.block.header.bk_seq,
            to = last.block.block.header.bk_seq,
            transactions = news.iter().map(|new| new.transactions.len()).sum::<usize>(),
            from_store = batch.from_store.len(),
            created = batch.created.len(),
            "blocks applied"
        );
        Ok(())
    }

    /// The unspent outputs among `ids`, by uxid; ids not in the unspent set
    /// (unknown or spent) are left out. Read in one snapshot, in queries of
    /// at most [`MAX_BATCH`] ids.
    pub async fn unspent(&self, ids: &[Hash]) -> Result<HashMap<Hash, UxOut>, StoreError> {
        let ids = sorted_ids(ids);
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = read_tx!(&self.db, |q, conn| {
            let mut rows = Vec::new();
            for chunk in ids.chunks(MAX_BATCH) {
                rows.extend(q::unspent(conn, chunk).await?);
            }
            Ok::<_, StoreError>(rows)
        })?;
        decode_unspent_by_id(rows)
    }

    /// Up to `limit` (at most [`MAX_UNSPENT_PER_CALL`]) unspent outputs of
    /// `address`, oldest first (by creating block, then uxid). Coin hours
    /// at a given time are the caller's to compute
    /// ([`UxOut::coin_hours`], [`skywire_coin::ux::total_coin_hours`]).
    pub async fn unspent_by_address(
        &self,
        address: &Address,
        limit: u32,
    ) -> Result<Vec<UxOut>, StoreError> {
        let limit = i64::from(limit.min(MAX_UNSPENT_PER_CALL));
        let address = address.to_string();
        let rows =
            skywire_db::with_conn!(&self.db, sqlite_queries, postgres_queries, |q, conn| {
                q::unspent_by_address(conn, &address, limit).await
            })?;
        rows.into_iter().map(decode_unspent).collect()
    }

    /// The coins and number of unspent outputs of `address`. (Coin hours
    /// depend on the time and each output's age: sum
    /// [`UxOut::coin_hours`] over [`ChainStore::unspent_by_address`].)
    pub async fn balance(&self, address: &Address) -> Result<Balance, StoreError> {
        let address = address.to_string();
        let (coins, outputs) =
            skywire_db::with_conn!(&self.db, sqlite_queries, postgres_queries, |q, conn| {
                q::balance(conn, &address).await
            })?;
        let row = || format!("balance of {address}");
        Ok(Balance {
            coins: u64::try_from(coins).map_err(|_| corrupt(row(), format!("{coins} coins")))?,
            outputs: u64::try_from(outputs)
                .map_err(|_| corrupt(row(), format!("{outputs} outputs")))?,
        })
    }

    /// The block with sequence number `seq`, if stored.
    pub async fn block_by_seq(&self, seq: u64) -> Result<Option<SignedBlock>, StoreError> {
        let Ok(seq) = i64::try_from(seq) else {
            return Ok(None);
        };
        let row = skywire_db::with_conn!(&self.db, sqlite_queries, postgres_queries, |q, conn| {
            q::block_by_seq(conn, seq).await
        })?;
        row.map(decode_block).transpose()
    }

    /// The block with hash `hash`, if stored.
    pub async fn block_by_hash(&self, hash: &Hash) -> Result<Option<SignedBlock>, StoreError> {
        let row = skywire_db::with_conn!(&self.db, sqlite_queries, postgres_queries, |q, conn| {
            q::block_by_hash(conn, &hash.0).await
        })?;
        // The row's hash is `hash`; decoding checks that the header hashes to it.
        row.map(decode_block).transpose()
    }

    /// Up to `limit` (at most [`MAX_BLOCKS_PER_CALL`]) consecutive blocks
    /// from sequence number `from_seq`, in order: fewer only at the head.
    pub async fn blocks(&self, from_seq: u64, limit: u32) -> Result<Vec<SignedBlock>, StoreError> {
        let Ok(from) = i64::try_from(from_seq) else {
            return Ok(Vec::new());
        };
        let limit = i64::from(limit.min(MAX_BLOCKS_PER_CALL));
        let rows =
            skywire_db::with_conn!(&self.db, sqlite_queries, postgres_queries, |q, conn| {
                q::blocks(conn, from, limit).await
            })?;
        check_consecutive(from_seq, rows.iter().map(|row| row.seq))?;
        rows.into_iter().map(decode_block).collect()
    }

    /// Up to `limit` (at most [`MAX_HEADERS_PER_CALL`]) consecutive block
    /// headers with their signatures from sequence number `from_seq`, in
    /// order: fewer only at the head.
    pub async fn headers(
        &self,
        from_seq: u64,
        limit: u32,
    ) -> Result<Vec<SignedHeader>, StoreError> {
        let Ok(from) = i64::try_from(from_seq) else {
            return Ok(Vec::new());
        };
        let limit = i64::from(limit.min(MAX_HEADERS_PER_CALL));
        let rows =
            skywire_db::with_conn!(&self.db, sqlite_queries, postgres_queries, |q, conn| {
                q::headers(conn, from, limit).await
            })?;
        check_consecutive(from_seq, rows.iter().map(|row| row.seq))?;
        rows.into_iter()
            .map(|row| {
                let seq = decode_seq(&format!("block {}", row.seq), row.seq)?;
                let name = format!("block {seq}");
                let hash = decode_hash(&name, "hash", &row.hash)?;
                let header = decode_header(&row.header, seq, &hash)?;
                let sig = decode_sig(&name, &row.sig)?;
                Ok(SignedHeader { header, sig })
            })
            .collect()
    }

    /// The transaction with id `txid` and the sequence number of the block
    /// holding it, if stored.
    pub async fn transaction(&self, txid: &Hash) -> Result<Option<(Transaction, u64)>, StoreError> {
        let row = skywire_db::with_conn!(&self.db, sqlite_queries, postgres_queries, |q, conn| {
            q::transaction(conn, &txid.0).await
        })?;
        let Some(row) = row else {
            return Ok(None);
        };
        let what = format!("transaction {txid}");
        let seq = decode_seq(&what, row.block_seq)?;
        if row.idx < 0 {
            return Err(corrupt(what, format!("index {}", row.idx)));
        }
        let tx = Transaction::decode_exact(&row.tx).map_err(|e| corrupt(&what, e.to_string()))?;
        if row.txid != txid.0 || tx.hash() != *txid {
            return Err(corrupt(what, format!("hashes to {}", tx.hash())));
        }
        Ok(Some((tx, seq)))
    }
}

/// A block to apply and what the verifier found it does: the outputs it
/// spends (every input of its transactions), those it creates
/// ([`create_unspents`] of each of its transactions) and the unspent set's
/// hash after it. See [`ChainStore::apply`].
#[derive(Clone, Copy, Debug)]
pub struct BlockChanges<'a> {
    /// The block.
    pub block: &'a SignedBlock,
    /// The ids of the outputs it spends, in any order.
    pub spent: &'a [Hash],
    /// The outputs it creates, in any order.
    pub created: &'a [UxOut],
    /// The unspent set's hash after it.
    pub ux_hash_after: &'a UxHash,
}

/// What a batch of blocks does to the unspent set as a whole: the outputs
/// stored before it that it spends, and those it creates and leaves unspent.
/// An output created and spent within the batch is in neither.
struct NetChanges<'a> {
    /// Spent outputs not created earlier in the batch, as bytes, in order
    /// (one may repeat: a double spend, which the delete then misses).
    from_store: Vec<[u8; 32]>,
    /// Created outputs still unspent after the batch, in order.
    created: Vec<&'a NewUnspent>,
}

impl<'a> NetChanges<'a> {
    fn of(news: &'a [NewBlock]) -> Self {
        let mut pending: HashSet<Hash> = HashSet::new();
        let mut from_store = Vec::new();
        for new in news {
            // A block's spends come before its own outputs: it cannot spend them.
            for id in &new.spent {
                if !pending.remove(&Hash(*id)) {
                    from_store.push(*id);
                }
            }
            pending.extend(new.created.iter().map(|ux| ux.uxid));
        }
        let created = news
            .iter()
            .flat_map(|new| &new.created)
            .filter(|ux| pending.contains(&ux.uxid))
            .collect();
        Self {
            from_store,
            created,
        }
    }
}

/// A block encoded for its rows, checked against `spent` and `created`.
struct NewBlock {
    seq: i64,
    hash: Hash,
    header: Vec<u8>,
    body: Vec<u8>,
    sig: Vec<u8>,
    time: i64,
    fee: i64,
    tx_count: i64,
    transactions: Vec<NewTransaction>,
    /// The uxids spent, as bytes.
    spent: Vec<[u8; 32]>,
    created: Vec<NewUnspent>,
}

/// A transaction's row.
struct NewTransaction {
    txid: Hash,
    idx: i64,
    bytes: Vec<u8>,
}

/// An unspent output's row.
struct NewUnspent {
    uxid: Hash,
    address: String,
    coins: i64,
    hours: i64,
    time: i64,
    block_seq: i64,
    src_transaction: Hash,
}

impl NewBlock {
    /// Encodes `block` and checks `spent` and `created` against its
    /// transactions (as multisets) and every value against SQL's range.
    fn prepare(block: &SignedBlock, spent: &[Hash], created: &[UxOut]) -> Result<Self, StoreError> {
        let header = &block.block.header;
        let transactions = &block.block.body.transactions;

        let mut expected: Vec<Hash> = transactions
            .iter()
            .flat_map(|tx| tx.inputs.iter().copied())
            .collect();
        let mut given = spent.to_vec();
        expected.sort_unstable();
        given.sort_unstable();
        if expected != given {
            return Err(invalid(
                "spent",
                format!(
                    "{} outputs given, the block's transactions spend {} (or other ones)",
                    spent.len(),
                    expected.len()
                ),
            ));
        }

        // An output is its uxid (which binds its body) and its head: compare those, each
        // hashed once.
        let key = |ux: &UxOut| (ux.hash(), ux.head.time, ux.head.bk_seq);
        let mut expected: Vec<(Hash, u64, u64)> = transactions
            .iter()
            .flat_map(|tx| create_unspents(header, tx))
            .map(|ux| key(&ux))
            .collect();
        let given: Vec<(Hash, u64, u64)> = created.iter().map(key).collect();
        let mut given_sorted = given.clone();
        expected.sort_unstable();
        given_sorted.sort_unstable();
        if expected != given_sorted {
            return Err(invalid(
                "created",
                format!(
                    "{} outputs given, the block's transactions create {} (or other ones)",
                    created.len(),
                    expected.len()
                ),
            ));
        }

        let body = block
            .block
            .body
            .encode()
            .map_err(|e| invalid("block", e.to_string()))?;
        let header_bytes = header
            .encode()
            .map_err(|e| invalid("block", e.to_string()))?;
        let transactions = transactions
            .iter()
            .enumerate()
            .map(|(idx, tx)| {
                Ok(NewTransaction {
                    txid: tx.hash(),
                    idx: to_i64("transaction index", idx as u64)?,
                    bytes: tx.encode().map_err(|e| invalid("block", e.to_string()))?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let created = created
            .iter()
            .zip(given)
            .map(|(ux, (uxid, _, _))| {
                Ok(NewUnspent {
                    uxid,
                    address: ux.body.address.to_string(),
                    coins: to_i64("created coins", ux.body.coins)?,
                    hours: ux.body.hours.cast_signed(),
                    time: to_i64("created time", ux.head.time)?,
                    block_seq: to_i64("created block seq", ux.head.bk_seq)?,
                    src_transaction: ux.body.src_transaction,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Self {
            seq: to_i64("block seq", header.bk_seq)?,
            hash: header.hash(),
            header: header_bytes,
            body,
            sig: block.sig.0.to_vec(),
            time: to_i64("block time", header.time)?,
            fee: header.fee.cast_signed(),
            tx_count: to_i64("transaction count", transactions.len() as u64)?,
            transactions,
            spent: spent.iter().map(|id| id.0).collect(),
            created,
        })
    }
}

/// The head as locked for an apply.
struct LockedHead {
    seq: u64,
    hash: Hash,
    ux_hash: Hash,
}

/// Checks that `header` extends `head` ([`StoreError::NotNext`],
/// [`StoreError::HeaderUxHash`]); the unspent-set hash after the head.
fn check_extends(head: Option<&LockedHead>, header: &BlockHeader) -> Result<UxHash, StoreError> {
    let (next_seq, prev_hash, ux_hash) = match head {
        Some(head) => (head.seq.checked_add(1), head.hash, head.ux_hash),
        None => (Some(0), Hash::ZERO, Hash::ZERO),
    };
    if Some(header.bk_seq) != next_seq || header.prev_hash != prev_hash {
        return Err(StoreError::NotNext {
            seq: header.bk_seq,
            prev_hash: header.prev_hash,
            head: head.map(|head| (head.seq, head.hash)),
        });
    }
    if header.ux_hash != ux_hash {
        return Err(StoreError::HeaderUxHash {
            seq: header.bk_seq,
            header: header.ux_hash,
            head: ux_hash,
        });
    }
    let mut out = UxHash::new();
    out.xor(&ux_hash);
    Ok(out)
}

/// Takes each output of `spent` (a block's, with sequence number `seq`) from
/// `pending` (created earlier in the batch) or else from `removed` (deleted
/// from the store), toggling it in `ux_hash`; [`StoreError::MissingOutputs`]
/// if one is in neither (unknown, or spent already).
fn take_spent(
    seq: u64,
    spent: &[Hash],
    pending: &mut HashMap<Hash, UxOut>,
    removed: &mut HashMap<Hash, UxOut>,
    ux_hash: &mut UxHash,
) -> Result<(), StoreError> {
    let mut missing = None;
    let mut found = 0;
    for id in spent {
        match pending.remove(id).or_else(|| removed.remove(id)) {
            Some(ux) => {
                ux_hash.xor(&ux.snapshot_hash());
                found += 1;
            }
            None => {
                missing.get_or_insert(*id);
            }
        }
    }
    match missing {
        None => Ok(()),
        Some(missing) => Err(StoreError::MissingOutputs {
            seq,
            spent: spent.len(),
            found,
            missing,
        }),
    }
}

/// Checks that rows read from `from` are numbered `from`, `from + 1`, …
fn check_consecutive(from: u64, seqs: impl Iterator<Item = i64>) -> Result<(), StoreError> {
    for (expected, seq) in (from..).zip(seqs) {
        if u64::try_from(seq).ok() != Some(expected) {
            return Err(corrupt(
                format!("block {seq}"),
                format!("expected block {expected}: the chain has a gap"),
            ));
        }
    }
    Ok(())
}

/// A `u64` that SQL compares or sums, as a BIGINT.
fn to_i64(field: &'static str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| invalid(field, format!("{value} is above {}", i64::MAX)))
}

/// [`StoreError::Invalid`].
fn invalid(field: &'static str, reason: String) -> StoreError {
    StoreError::Invalid { field, reason }
}

/// [`StoreError::Corrupt`].
fn corrupt(row: impl Into<String>, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        row: row.into(),
        reason: reason.into(),
    }
}

/// The head row is gone (the migration inserts it; nothing deletes it).
fn head_row_missing() -> StoreError {
    corrupt("head", "the chain_head row is missing")
}

/// A unique violation on inserting `what` is [`StoreError::Duplicate`].
fn duplicate(seq: u64, what: &'static str, e: sqlx::Error) -> StoreError {
    match e.as_database_error() {
        Some(db) if db.is_unique_violation() => StoreError::Duplicate {
            seq,
            what,
            detail: db.message().to_owned(),
        },
        _ => StoreError::Db(e),
    }
}

/// Turns a failure to decode a column into [`StoreError::Corrupt`].
fn read_error(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::ColumnDecode { index, source } => corrupt(index, source.to_string()),
        other => StoreError::Db(other),
    }
}

/// A sequence number read back.
fn decode_seq(row: &str, seq: i64) -> Result<u64, StoreError> {
    u64::try_from(seq).map_err(|_| corrupt(row, format!("sequence number {seq}")))
}

/// A 32-byte hash read back from column `column` of `row`.
fn decode_hash(row: &str, column: &str, bytes: &[u8]) -> Result<Hash, StoreError> {
    hash_column(bytes, column, || row.to_owned())
}

/// [`decode_hash`] with the row's name made only on error.
fn hash_column(
    bytes: &[u8],
    column: &str,
    row: impl FnOnce() -> String,
) -> Result<Hash, StoreError> {
    <[u8; 32]>::try_from(bytes).map(Hash).map_err(|_| {
        corrupt(
            row(),
            format!("{column}: {} bytes, expected 32", bytes.len()),
        )
    })
}

/// A header read back for block `seq` with hash `hash`.
fn decode_header(bytes: &[u8], seq: u64, hash: &Hash) -> Result<BlockHeader, StoreError> {
    let row = || format!("block {seq}");
    let header =
        BlockHeader::decode_exact(bytes).map_err(|e| corrupt(row(), format!("header: {e}")))?;
    if header.bk_seq != seq {
        return Err(corrupt(row(), format!("header of block {}", header.bk_seq)));
    }
    if header.hash() != *hash {
        return Err(corrupt(
            row(),
            format!("header hashes to {}, not {hash}", header.hash()),
        ));
    }
    Ok(header)
}

/// A block read back: header, body and signature decoded, the header
/// checked against the row's key and hash, the body against the header.
fn decode_block(row: BlockRow) -> Result<SignedBlock, StoreError> {
    let name = format!("block {}", row.seq);
    let seq = decode_seq(&name, row.seq)?;
    let hash = decode_hash(&name, "hash", &row.hash)?;
    let header = decode_header(&row.header, seq, &hash)?;
    let body =
        BlockBody::decode_exact(&row.body).map_err(|e| corrupt(&name, format!("body: {e}")))?;
    if body.hash() != header.body_hash {
        return Err(corrupt(
            name,
            format!("body hashes to {}, not {}", body.hash(), header.body_hash),
        ));
    }
    let sig = decode_sig(&name, &row.sig)?;
    Ok(SignedBlock {
        block: Block { header, body },
        sig,
    })
}

/// A block's signature read back.
fn decode_sig(name: &str, sig: &[u8]) -> Result<skywire_coin::Sig, StoreError> {
    skywire_coin::Sig::decode_exact(sig).map_err(|e| corrupt(name, format!("sig: {e}")))
}

/// An unspent output read back, checked against its uxid.
fn decode_unspent(row: UnspentRow) -> Result<UxOut, StoreError> {
    decode_unspent_with_id(row).map(|(_, ux)| ux)
}

/// [`decode_unspent`], with the output's id (checked: its fields hash to it). The row's
/// name for an error is only made on error: thousands of rows are decoded per block.
fn decode_unspent_with_id(row: UnspentRow) -> Result<(Hash, UxOut), StoreError> {
    let name = || match <[u8; 32]>::try_from(row.uxid.as_slice()) {
        Ok(uxid) => format!("unspent output {}", Hash(uxid)),
        Err(_) => "unspent output".to_owned(),
    };
    let uxid = hash_column(&row.uxid, "uxid", name)?;
    let address: Address = row
        .address
        .parse()
        .map_err(|e| corrupt(name(), format!("address {:?}: {e}", row.address)))?;
    let nonnegative = |column: &str, value: i64| {
        u64::try_from(value).map_err(|_| corrupt(name(), format!("{column}: {value}")))
    };
    let src_transaction = hash_column(&row.src_transaction, "src_transaction", name)?;
    let ux = UxOut {
        head: UxHead {
            time: nonnegative("time", row.time)?,
            bk_seq: nonnegative("block_seq", row.block_seq)?,
        },
        body: UxBody {
            src_transaction,
            address,
            coins: nonnegative("coins", row.coins)?,
            hours: row.hours.cast_unsigned(),
        },
    };
    let hash = ux.hash();
    if hash != uxid {
        return Err(corrupt(name(), format!("its fields hash to {hash}")));
    }
    Ok((uxid, ux))
}

/// The head read with the head block's header: `None` for the empty chain.
fn decode_head(row: Option<HeadRow>) -> Result<Option<Head>, StoreError> {
    let Some(row) = row else {
        return Err(head_row_missing());
    };
    let Some(locked) = decode_locked_head(&LockedHeadRow {
        seq: row.seq,
        hash: row.hash,
        ux_hash: row.ux_hash,
    })?
    else {
        return Ok(None);
    };
    let Some(header) = row.header else {
        return Err(corrupt(
            "head",
            format!("no block {} for the head", locked.seq),
        ));
    };
    let header = decode_header(&header, locked.seq, &locked.hash)?;
    let mut ux_hash = UxHash::new();
    ux_hash.xor(&locked.ux_hash);
    Ok(Some(Head { header, ux_hash }))
}

/// `ids` as bytes, sorted, without repeats: what the lookups bind.
fn sorted_ids(ids: &[Hash]) -> Vec<[u8; 32]> {
    let mut ids: Vec<[u8; 32]> = ids.iter().map(|id| id.0).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Unspent outputs read back, by uxid.
fn decode_unspent_by_id(rows: Vec<UnspentRow>) -> Result<HashMap<Hash, UxOut>, StoreError> {
    rows.into_iter().map(decode_unspent_with_id).collect()
}

/// The head row as locked: `None` for the empty chain.
fn decode_locked_head(row: &LockedHeadRow) -> Result<Option<LockedHead>, StoreError> {
    match (row.seq, &row.hash, &row.ux_hash) {
        (None, None, None) => Ok(None),
        (Some(seq), Some(hash), Some(ux_hash)) => Ok(Some(LockedHead {
            seq: decode_seq("head", seq)?,
            hash: decode_hash("head", "hash", hash)?,
            ux_hash: decode_hash("head", "ux_hash", ux_hash)?,
        })),
        _ => Err(corrupt(
            "head",
            "seq, hash and ux_hash not all set nor all NULL",
        )),
    }
}

/// Rows as read from the database.
mod rows {
    /// A `chain_blocks` row.
    #[derive(sqlx::FromRow)]
    pub(super) struct BlockRow {
        pub(super) seq: i64,
        pub(super) hash: Vec<u8>,
        pub(super) header: Vec<u8>,
        pub(super) body: Vec<u8>,
        pub(super) sig: Vec<u8>,
    }

    /// A `chain_blocks` row without body and signature.
    #[derive(sqlx::FromRow)]
    pub(super) struct HeaderRow {
        pub(super) seq: i64,
        pub(super) hash: Vec<u8>,
        pub(super) header: Vec<u8>,
        pub(super) sig: Vec<u8>,
    }

    /// A `chain_transactions` row.
    #[derive(sqlx::FromRow)]
    pub(super) struct TxRow {
        pub(super) txid: Vec<u8>,
        pub(super) block_seq: i64,
        pub(super) idx: i64,
        pub(super) tx: Vec<u8>,
    }

    /// A `chain_unspent` row.
    #[derive(sqlx::FromRow)]
    pub(super) struct UnspentRow {
        pub(super) uxid: Vec<u8>,
        pub(super) address: String,
        pub(super) coins: i64,
        pub(super) hours: i64,
        pub(super) time: i64,
        pub(super) block_seq: i64,
        pub(super) src_transaction: Vec<u8>,
    }

    /// The `chain_head` row.
    #[derive(sqlx::FromRow)]
    pub(super) struct LockedHeadRow {
        pub(super) seq: Option<i64>,
        pub(super) hash: Option<Vec<u8>>,
        pub(super) ux_hash: Option<Vec<u8>>,
    }

    /// The `chain_head` row with the head block's header.
    #[derive(sqlx::FromRow)]
    pub(super) struct HeadRow {
        pub(super) seq: Option<i64>,
        pub(super) hash: Option<Vec<u8>>,
        pub(super) ux_hash: Option<Vec<u8>>,
        pub(super) header: Option<Vec<u8>>,
    }
}

/// The columns of a `chain_unspent` row, in [`rows::UnspentRow`]'s order.
macro_rules! unspent_columns {
    () => {
        "uxid, address, coins, hours, time, block_seq, src_transaction"
    };
}

/// The queries, written once, compiled for each backend (`Conn` is the
/// backend's connection type, `Database` its sqlx database, `LOCK_HEAD` the
/// statement reading the head row for an apply). `$1`-style placeholders
/// work in both.
macro_rules! queries {
    () => {
        use sqlx::QueryBuilder;

        use super::rows::{BlockRow, HeadRow, HeaderRow, LockedHeadRow, TxRow, UnspentRow};
        use super::{NewBlock, NewTransaction, NewUnspent, StoreError, read_error};

        /// The head row with the head block's header.
        pub(super) async fn head(conn: &mut Conn) -> Result<Option<HeadRow>, StoreError> {
            sqlx::query_as(
                "SELECT h.seq, h.hash, h.ux_hash, b.header FROM chain_head AS h \
                 LEFT JOIN chain_blocks AS b ON b.seq = h.seq WHERE h.id = 1",
            )
            .fetch_optional(&mut *conn)
            .await
            .map_err(read_error)
        }

        /// The head row, locked until the transaction ends where the backend
        /// needs a lock.
        pub(super) async fn lock_head(
            conn: &mut Conn,
        ) -> Result<Option<LockedHeadRow>, StoreError> {
            sqlx::query_as(LOCK_HEAD)
                .fetch_optional(&mut *conn)
                .await
                .map_err(read_error)
        }

        /// Inserts the block's row.
        pub(super) async fn insert_block(
            conn: &mut Conn,
            block: &NewBlock,
        ) -> Result<(), sqlx::Error> {
            sqlx::query(
                "INSERT INTO chain_blocks (seq, hash, header, body, sig, time, fee, tx_count) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(block.seq)
            .bind(&block.hash.0[..])
            .bind(&block.header[..])
            .bind(&block.body[..])
            .bind(&block.sig[..])
            .bind(block.time)
            .bind(block.fee)
            .bind(block.tx_count)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        /// Inserts the block's transactions, [`super::MAX_BATCH`] a statement.
        pub(super) async fn insert_transactions(
            conn: &mut Conn,
            block_seq: i64,
            transactions: &[NewTransaction],
        ) -> Result<(), sqlx::Error> {
            for chunk in transactions.chunks(super::MAX_BATCH) {
                let mut insert = QueryBuilder::<Database>::new(
                    "INSERT INTO chain_transactions (txid, block_seq, idx, tx) ",
                );
                insert.push_values(chunk, |mut row, tx| {
                    row.push_bind(&tx.txid.0[..])
                        .push_bind(block_seq)
                        .push_bind(tx.idx)
                        .push_bind(&tx.bytes[..]);
                });
                insert.build().persistent(false).execute(&mut *conn).await?;
            }
            Ok(())
        }

        /// Deletes the unspent outputs `ids` (at most [`super::MAX_BATCH`]);
        /// the rows deleted.
        pub(super) async fn delete_unspent(
            conn: &mut Conn,
            ids: &[[u8; 32]],
        ) -> Result<Vec<UnspentRow>, StoreError> {
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let mut delete =
                QueryBuilder::<Database>::new("DELETE FROM chain_unspent WHERE uxid IN (");
            let mut list = delete.separated(", ");
            for id in ids {
                list.push_bind(&id[..]);
            }
            delete.push(concat!(") RETURNING ", unspent_columns!()));
            delete
                .build_query_as()
                .persistent(false)
                .fetch_all(&mut *conn)
                .await
                .map_err(read_error)
        }

        /// Inserts unspent outputs (at most [`super::MAX_BATCH`]).
        pub(super) async fn insert_unspent(
            conn: &mut Conn,
            outputs: &[&NewUnspent],
        ) -> Result<(), sqlx::Error> {
            if outputs.is_empty() {
                return Ok(());
            }
            let mut insert = QueryBuilder::<Database>::new(concat!(
                "INSERT INTO chain_unspent (",
                unspent_columns!(),
                ") "
            ));
            insert.push_values(outputs, |mut row, ux| {
                row.push_bind(&ux.uxid.0[..])
                    .push_bind(ux.address.as_str())
                    .push_bind(ux.coins)
                    .push_bind(ux.hours)
                    .push_bind(ux.time)
                    .push_bind(ux.block_seq)
                    .push_bind(&ux.src_transaction.0[..]);
            });
            insert.build().persistent(false).execute(&mut *conn).await?;
            Ok(())
        }

        /// Moves the head.
        pub(super) async fn set_head(
            conn: &mut Conn,
            seq: i64,
            hash: &skywire_coin::Hash,
            ux_hash: &skywire_coin::Hash,
        ) -> Result<(), sqlx::Error> {
            sqlx::query("UPDATE chain_head SET seq = $1, hash = $2, ux_hash = $3 WHERE id = 1")
                .bind(seq)
                .bind(&hash.0[..])
                .bind(&ux_hash.0[..])
                .execute(&mut *conn)
                .await?;
            Ok(())
        }

        /// The unspent outputs among `ids` (at most [`super::MAX_BATCH`]).
        pub(super) async fn unspent(
            conn: &mut Conn,
            ids: &[[u8; 32]],
        ) -> Result<Vec<UnspentRow>, StoreError> {
            let mut select = QueryBuilder::<Database>::new(concat!(
                "SELECT ",
                unspent_columns!(),
                " FROM chain_unspent WHERE uxid IN ("
            ));
            let mut list = select.separated(", ");
            for id in ids {
                list.push_bind(&id[..]);
            }
            select.push(")");
            select
                .build_query_as()
                .persistent(false)
                .fetch_all(&mut *conn)
                .await
                .map_err(read_error)
        }

        /// Up to `limit` unspent outputs of `address`, oldest first.
        pub(super) async fn unspent_by_address(
            conn: &mut Conn,
            address: &str,
            limit: i64,
        ) -> Result<Vec<UnspentRow>, StoreError> {
            sqlx::query_as(concat!(
                "SELECT ",
                unspent_columns!(),
                " FROM chain_unspent WHERE address = $1 ORDER BY block_seq, uxid LIMIT $2"
            ))
            .bind(address)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await
            .map_err(read_error)
        }

        /// The coins and count of `address`'s unspent outputs.
        pub(super) async fn balance(
            conn: &mut Conn,
            address: &str,
        ) -> Result<(i64, i64), StoreError> {
            sqlx::query_as(
                "SELECT CAST(COALESCE(SUM(coins), 0) AS BIGINT), COUNT(*) \
                 FROM chain_unspent WHERE address = $1",
            )
            .bind(address)
            .fetch_one(&mut *conn)
            .await
            .map_err(read_error)
        }

        /// The block `seq`'s row.
        pub(super) async fn block_by_seq(
            conn: &mut Conn,
            seq: i64,
        ) -> Result<Option<BlockRow>, StoreError> {
            sqlx::query_as("SELECT seq, hash, header, body, sig FROM chain_blocks WHERE seq = $1")
                .bind(seq)
                .fetch_optional(&mut *conn)
                .await
                .map_err(read_error)
        }

        /// The row of the block with hash `hash`.
        pub(super) async fn block_by_hash(
            conn: &mut Conn,
            hash: &[u8; 32],
        ) -> Result<Option<BlockRow>, StoreError> {
            sqlx::query_as("SELECT seq, hash, header, body, sig FROM chain_blocks WHERE hash = $1")
                .bind(&hash[..])
                .fetch_optional(&mut *conn)
                .await
                .map_err(read_error)
        }

        /// Up to `limit` block rows from `from`, in order.
        pub(super) async fn blocks(
            conn: &mut Conn,
            from: i64,
            limit: i64,
        ) -> Result<Vec<BlockRow>, StoreError> {
            sqlx::query_as(
                "SELECT seq, hash, header, body, sig FROM chain_blocks \
                 WHERE seq >= $1 ORDER BY seq LIMIT $2",
            )
            .bind(from)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await
            .map_err(read_error)
        }

        /// Up to `limit` header rows from `from`, in order.
        pub(super) async fn headers(
            conn: &mut Conn,
            from: i64,
            limit: i64,
        ) -> Result<Vec<HeaderRow>, StoreError> {
            sqlx::query_as(
                "SELECT seq, hash, header, sig FROM chain_blocks WHERE seq >= $1 ORDER BY seq LIMIT $2",
            )
            .bind(from)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await
            .map_err(read_error)
        }

        /// The row of transaction `txid`.
        pub(super) async fn transaction(
            conn: &mut Conn,
            txid: &[u8; 32],
        ) -> Result<Option<TxRow>, StoreError> {
            sqlx::query_as(
                "SELECT txid, block_seq, idx, tx FROM chain_transactions WHERE txid = $1",
            )
            .bind(&txid[..])
            .fetch_optional(&mut *conn)
            .await
            .map_err(read_error)
        }
    };
}

/// The queries on SQLite. The write transaction's `BEGIN IMMEDIATE` already
/// holds the database's write lock when the head is read.
mod sqlite_queries {
    type Conn = sqlx::SqliteConnection;
    type Database = sqlx::Sqlite;
    const LOCK_HEAD: &str = "SELECT seq, hash, ux_hash FROM chain_head WHERE id = 1";
    queries!();
}

/// The queries on PostgreSQL. The head row is locked until the apply's
/// transaction ends: a concurrent applier waits, then reads the new head.
mod postgres_queries {
    type Conn = sqlx::PgConnection;
    type Database = sqlx::Postgres;
    const LOCK_HEAD: &str = "SELECT seq, hash, ux_hash FROM chain_head WHERE id = 1 FOR UPDATE";
    queries!();
}
