//! What the test files of this directory share: one model of a chain, built in memory
//! independently of the code under test, and the declaration of a scenario on both
//! database backends. Each test binary uses a part of it.
//!
//! The model holds deterministic keys (a publisher that signs every block, wallets that
//! own the coins), the genesis block (every coin to wallet 0), the blocks applied so far
//! and the unspent set after them. It builds transactions signed by the wallets that own
//! their inputs, and next blocks with their fee, time and unspent-set hash computed from
//! the set (not by the verifier).
#![allow(dead_code)]

use std::collections::HashMap;

use skywire_chain::store::{Balance, ChainStore, Head};
use skywire_chain::verify::{
    BlockRejection, ChainParams, TxRejection, TxVerified, Verified, verify_block, verify_genesis,
    verify_transaction,
};
use skywire_coin::ux::total_coin_hours;
use skywire_coin::{
    Block, BlockBody, BlockHeader, Hash, Output, SignedBlock, Transaction, UxHash, UxOut,
    create_unspents, transaction_fee,
};
use skywire_db::Db;
use skywire_identity::{Address, Keypair};

/// Skycoin's mainnet genesis time.
pub(crate) const GENESIS_TIME: u64 = 1_426_562_704;
/// Droplets per coin.
pub(crate) const COIN: u64 = 1_000_000;
/// The genesis output's coins (and hours): Skycoin's 100 million coins.
pub(crate) const GENESIS_COINS: u64 = 100_000_000 * COIN;
/// Time between the blocks [`Model::block`] makes: ten hours, so that coin hours visibly
/// accrue.
pub(crate) const INTERVAL: u64 = 10 * 3600;

/// [`key`] of the publisher; the wallets' follow.
const PUBLISHER_KEY: u8 = 1;

/// The deterministic key pair `n` (its secret is `n` 32 times; `n` must not be 0).
pub(crate) fn key(n: u8) -> Keypair {
    Keypair::from_secret_bytes(&[n; 32]).expect("a valid secret")
}

/// A transaction spending `inputs` to `outputs`, input `i` signed by `keys[i]`.
pub(crate) fn make_tx(inputs: Vec<Hash>, outputs: Vec<Output>, keys: &[Keypair]) -> Transaction {
    let mut tx = Transaction {
        inputs,
        outputs,
        ..Transaction::default()
    };
    tx.sign(keys).expect("sign");
    tx.update_header().expect("header");
    tx
}

/// An output of `coins` droplets and `hours` coin hours to `address`.
pub(crate) fn output(address: Address, coins: u64, hours: u64) -> Output {
    Output {
        address,
        coins,
        hours,
    }
}

/// The XOR of the snapshot hashes of the whole set, recomputed from scratch.
pub(crate) fn set_hash(unspent: &HashMap<Hash, UxOut>) -> Hash {
    let mut hash = UxHash::new();
    for ux in unspent.values() {
        hash.xor(&ux.snapshot_hash());
    }
    hash.hash()
}

/// A signed block with what applying it takes, computed by the model: every input of its
/// transactions, the outputs they create, the unspent set's hash after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Next {
    /// The block.
    pub(crate) block: SignedBlock,
    /// The ids it spends, transaction by transaction.
    pub(crate) spent: Vec<Hash>,
    /// The outputs it creates, transaction by transaction.
    pub(crate) created: Vec<UxOut>,
    /// The hash of the unspent set after it (ids it spends that are not unspent are left
    /// out).
    pub(crate) ux_after: UxHash,
}

/// The chain as the tests expect it: keys, rules, genesis, the blocks applied and the
/// unspent set after them.
#[derive(Clone)]
pub(crate) struct Model {
    /// The rules; tests change them to probe a limit.
    pub(crate) params: ChainParams,
    /// Signs every block.
    pub(crate) publisher: Keypair,
    /// Own the coins; wallet 0 receives the genesis output.
    pub(crate) wallets: Vec<Keypair>,
    /// The configured genesis block.
    pub(crate) genesis: Block,
    /// The blocks applied, genesis first.
    pub(crate) blocks: Vec<SignedBlock>,
    /// The hash of the unspent set after the last block.
    pub(crate) ux_hash: UxHash,
    /// The unspent set after the last block, by uxid.
    pub(crate) unspent: HashMap<Hash, UxOut>,
}

impl Model {
    /// A chain of `wallets` wallets (at least 1) before its genesis block, which gives
    /// [`GENESIS_COINS`] to wallet 0 at [`GENESIS_TIME`].
    pub(crate) fn empty(wallets: usize) -> Self {
        assert!(wallets >= 1, "the genesis output needs a wallet");
        let publisher = key(PUBLISHER_KEY);
        let wallets: Vec<Keypair> = (0..wallets)
            .map(|i| key(PUBLISHER_KEY + 1 + u8::try_from(i).expect("few wallets")))
            .collect();
        let genesis = Block::genesis(wallets[0].address(), GENESIS_COINS, GENESIS_TIME);
        Self {
            params: ChainParams::new(publisher.public_key()),
            publisher,
            wallets,
            genesis,
            blocks: Vec::new(),
            ux_hash: UxHash::new(),
            unspent: HashMap::new(),
        }
    }

    /// A chain of `wallets` wallets holding its genesis block, checked by
    /// [`verify_genesis`].
    pub(crate) fn new(wallets: usize) -> Self {
        let mut model = Self::empty(wallets);
        let signed = model.sign(model.genesis.clone());
        let verified =
            verify_genesis(&model.params, &model.genesis, &signed).expect("genesis verifies");
        model.commit_verified(&signed, &verified);
        model
    }

    // Keys and outputs.

    /// Wallet `wallet`'s address.
    pub(crate) fn address(&self, wallet: usize) -> Address {
        self.wallets[wallet].address()
    }

    /// The key of the wallet whose address is `address`.
    pub(crate) fn owner(&self, address: &Address) -> &Keypair {
        self.wallets
            .iter()
            .find(|key| key.address() == *address)
            .expect("a wallet's address")
    }

    /// `address`'s unspent outputs, oldest first (by creating block, then uxid: as the
    /// store orders them).
    pub(crate) fn unspent_of(&self, address: &Address) -> Vec<UxOut> {
        let mut out: Vec<UxOut> = self
            .unspent
            .values()
            .filter(|ux| ux.body.address == *address)
            .copied()
            .collect();
        out.sort_by_key(|ux| (ux.head.bk_seq, ux.hash()));
        out
    }

    /// Wallet `wallet`'s unspent outputs, in [`Model::unspent_of`]'s order.
    pub(crate) fn owned(&self, wallet: usize) -> Vec<UxOut> {
        self.unspent_of(&self.address(wallet))
    }

    /// An unspent output of `address` created in block `seq`.
    pub(crate) fn output_of(&self, address: &Address, seq: u64) -> UxOut {
        *self
            .unspent_of(address)
            .iter()
            .find(|ux| ux.head.bk_seq == seq)
            .expect("an output")
    }

    /// `address`'s coins and number of unspent outputs.
    pub(crate) fn balance(&self, address: &Address) -> Balance {
        let mine = self.unspent_of(address);
        Balance {
            coins: mine.iter().map(|ux| ux.body.coins).sum(),
            outputs: mine.len() as u64,
        }
    }

    // The head.

    /// The head as the store reports it; `None` before the genesis block.
    pub(crate) fn head(&self) -> Option<Head> {
        self.blocks.last().map(|b| Head {
            header: b.block.header,
            ux_hash: self.ux_hash,
        })
    }

    /// The head block's header.
    pub(crate) fn header(&self) -> BlockHeader {
        self.blocks.last().expect("genesis first").block.header
    }

    /// The hours of `spend` at the head's time.
    pub(crate) fn hours(&self, spend: &[UxOut]) -> u64 {
        total_coin_hours(spend, self.header().time).expect("hours")
    }

    /// The fee of `tx`, spending `inputs`, at the head's time.
    pub(crate) fn fee(&self, tx: &Transaction, inputs: &[UxOut]) -> u64 {
        transaction_fee(tx, self.header().time, inputs).expect("fee")
    }

    // Transactions.

    /// A transaction spending `spend` to `outputs`, signed by the wallets that own them.
    pub(crate) fn signed_tx(&self, spend: &[UxOut], outputs: Vec<Output>) -> Transaction {
        let keys: Vec<Keypair> = spend
            .iter()
            .map(|ux| self.owner(&ux.body.address).clone())
            .collect();
        make_tx(spend.iter().map(UxOut::hash).collect(), outputs, &keys)
    }

    /// A valid transaction sending all of `spend`'s coins to `to`, in multiples of 1000
    /// droplets, with half of the hours (burning the other half, the minimum with the
    /// default burn factor 2).
    pub(crate) fn transfer(&self, spend: &[UxOut], to: &[Address]) -> Transaction {
        let coins: u64 = spend.iter().map(|ux| ux.body.coins).sum();
        let n = to.len() as u64;
        let per_coins = coins / n / 1000 * 1000;
        let per_hours = self.hours(spend) / 2 / n;
        assert!(per_coins > 0 && per_hours >= n);
        let outputs = to
            .iter()
            .enumerate()
            .map(|(i, address)| {
                let i = i as u64;
                let coins = if i == 0 {
                    coins - per_coins * (n - 1)
                } else {
                    per_coins
                };
                // Distinct hours keep the outputs' ids distinct when an address repeats.
                output(*address, coins, per_hours - i)
            })
            .collect();
        self.signed_tx(spend, outputs)
    }

    // Blocks.

    /// The next block with `txs`, [`INTERVAL`] after the head, its header built
    /// independently of the verifier: fee by `transaction_fee` at the head's time (every
    /// input must be unspent), unspent-set hash recomputed from the set.
    pub(crate) fn block(&self, txs: Vec<Transaction>) -> Block {
        let fee = txs
            .iter()
            .map(|tx| {
                let inputs: Vec<UxOut> = tx.inputs.iter().map(|id| self.unspent[id]).collect();
                self.fee(tx, &inputs)
            })
            .sum();
        self.block_with_fee(txs, fee)
    }

    /// The next block with `txs` and a header fee of `fee`, [`INTERVAL`] after the head.
    pub(crate) fn block_with_fee(&self, txs: Vec<Transaction>, fee: u64) -> Block {
        self.block_at(txs, INTERVAL, fee)
    }

    /// The next block with `txs`, `dt` seconds after the head, with a header fee of `fee`.
    pub(crate) fn block_at(&self, txs: Vec<Transaction>, dt: u64, fee: u64) -> Block {
        let head = self.header();
        Block::next(
            &head,
            set_hash(&self.unspent),
            head.time + dt,
            fee,
            BlockBody { transactions: txs },
        )
        .expect("block")
    }

    /// `block` signed by the publisher.
    pub(crate) fn sign(&self, block: Block) -> SignedBlock {
        block.sign_block(&self.publisher)
    }

    /// The genesis block, signed, with what applying it takes.
    pub(crate) fn genesis_next(&self) -> Next {
        self.complete(self.sign(self.genesis.clone()))
    }

    /// The signed next block with `txs`, `dt` seconds after the head, with what applying
    /// it takes. Its header fee is 0: a block for the store alone, which checks no
    /// consensus rule.
    pub(crate) fn next(&self, txs: Vec<Transaction>, dt: u64) -> Next {
        self.complete(self.sign(self.block_at(txs, dt, 0)))
    }

    /// What applying `block` after the head spends and creates.
    pub(crate) fn complete(&self, block: SignedBlock) -> Next {
        let header = &block.block.header;
        let mut spent = Vec::new();
        let mut created = Vec::new();
        for tx in &block.block.body.transactions {
            spent.extend(tx.inputs.iter().copied());
            created.extend(create_unspents(header, tx));
        }
        let mut ux_after = self.ux_hash;
        for id in &spent {
            if let Some(ux) = self.unspent.get(id) {
                ux_after.xor(&ux.snapshot_hash());
            }
        }
        for ux in &created {
            ux_after.xor(&ux.snapshot_hash());
        }
        Next {
            block,
            spent,
            created,
            ux_after,
        }
    }

    /// Applies `next` to the model: every output it spends must be unspent, every one it
    /// creates new, and its hash after must be that of the resulting set.
    pub(crate) fn commit(&mut self, next: &Next) {
        for id in &next.spent {
            assert!(self.unspent.remove(id).is_some(), "spent twice");
        }
        for ux in &next.created {
            assert!(
                self.unspent.insert(ux.hash(), *ux).is_none(),
                "created twice"
            );
        }
        assert_eq!(next.ux_after.hash(), set_hash(&self.unspent));
        self.ux_hash = next.ux_after;
        self.blocks.push(next.block.clone());
    }

    /// Applies `block` to the model, after checking that `verified` (what the verifier
    /// said of it) is what the model computes.
    pub(crate) fn commit_verified(&mut self, block: &SignedBlock, verified: &Verified) {
        let next = self.complete(block.clone());
        for ux in &verified.spent {
            assert_eq!(
                self.unspent.get(&ux.hash()),
                Some(ux),
                "spends an unspent output"
            );
        }
        let spent: Vec<Hash> = verified.spent.iter().map(UxOut::hash).collect();
        assert_eq!(spent, next.spent);
        assert_eq!(verified.created, next.created);
        assert_eq!(verified.ux_hash_after, next.ux_after);
        assert_eq!(verified.fee, block.block.header.fee);
        self.commit(&next);
    }

    // The verifier, against the model's head and set.

    /// [`verify_block`] of `block` after the head.
    pub(crate) fn verify(&self, block: &SignedBlock) -> Result<Verified, BlockRejection> {
        verify_block(
            &self.params,
            &self.header(),
            &self.ux_hash,
            &self.unspent,
            block,
        )
    }

    /// Appends `n` blocks, each `dt` seconds after the one before, each with one
    /// transaction moving all of wallet 0's coins and hours back to it, burning nothing
    /// (header fee 0, as in [`Model::next`]): a long chain for sync, which does not
    /// verify the blocks.
    pub(crate) fn extend_transfers(&mut self, n: usize, dt: u64) {
        for _ in 0..n {
            let spend = self.owned(0);
            let coins = spend.iter().map(|ux| ux.body.coins).sum();
            let hours = self.hours(&spend);
            let tx = self.signed_tx(&spend, vec![output(self.address(0), coins, hours)]);
            let next = self.next(vec![tx], dt);
            self.commit(&next);
        }
    }

    /// Signs and verifies `block`, expecting a rejection.
    pub(crate) fn reject(&self, block: Block) -> BlockRejection {
        self.verify(&self.sign(block))
            .expect_err("the block must be refused")
    }

    /// [`verify_transaction`] of `tx` at the head.
    pub(crate) fn check_tx(&self, tx: &Transaction) -> Result<TxVerified, TxRejection> {
        verify_transaction(&self.params, &self.header(), &self.unspent, tx)
    }

    /// Signs, verifies and applies `block`.
    pub(crate) fn apply(&mut self, block: Block) -> Verified {
        let signed = self.sign(block);
        assert_eq!(signed.block.header.ux_hash, set_hash(&self.unspent));
        let verified = self.verify(&signed).expect("block verifies");
        self.commit_verified(&signed, &verified);
        verified
    }
}

/// `db`, migrated for the chain store.
pub(crate) async fn migrated(db: Db) -> Db {
    db.migrate(&ChainStore::migrations())
        .await
        .expect("migrations run");
    db
}

/// Declares each scenario (an `async fn(Db)` of the test file) once per backend: on a
/// fresh SQLite file and on a fresh PostgreSQL database, both migrated. (Unused by the
/// sans-IO tests.)
#[allow(unused_macros)]
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let dir = tempfile::tempdir().expect("a temporary directory");
                    let db = skywire_db::testing::fresh_sqlite(dir.path())
                        .await
                        .expect("a SQLite database");
                    super::$scenario($crate::common::migrated(db).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let (db, _url) = skywire_db::testing::fresh_postgres()
                        .await
                        .expect("a PostgreSQL database");
                    super::$scenario($crate::common::migrated(db).await).await;
                }
            )*
        }
    };
}
#[allow(unused_imports)]
pub(crate) use on_both_backends;
