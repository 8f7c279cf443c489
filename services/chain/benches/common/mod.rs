//! What the chain's benchmarks share: a builder of valid chains (blocks of
//! single-input transactions moving a wallet's outputs on), without the
//! verifier, so that the measured code is the only verifier at work.
// Each benchmark uses a part.
#![allow(dead_code)]

use std::collections::HashMap;

use skywire_chain::verify::ChainParams;
use skywire_coin::{
    Block, BlockBody, BlockHeader, Hash, Output, SignedBlock, Transaction, UxHash, UxOut,
    create_unspents, transaction_fee, ux::total_coin_hours,
};
use skywire_identity::Keypair;

/// The genesis block's time.
pub(crate) const GENESIS_TIME: u64 = 1_426_562_704;
/// The genesis block's coins: 100 million.
pub(crate) const GENESIS_COINS: u64 = 100_000_000 * 1_000_000;
/// Seconds between blocks: ten hours, so that outputs earn hours.
pub(crate) const INTERVAL: u64 = 10 * 3600;

/// The deterministic key pair number `n`.
pub(crate) fn key(n: u8) -> Keypair {
    Keypair::from_secret_bytes(&[n; 32]).expect("a valid secret")
}

/// A chain while it is built: head, unspent set and its hash.
pub(crate) struct Builder {
    /// Signs the blocks.
    pub(crate) publisher: Keypair,
    /// Owns every output.
    pub(crate) wallet: Keypair,
    /// The head.
    pub(crate) head: BlockHeader,
    /// The unspent set's hash after the head.
    pub(crate) ux_hash: UxHash,
    /// The unspent set after the head.
    pub(crate) unspent: HashMap<Hash, UxOut>,
}

/// What applying a block to a store takes besides the block (see
/// `ChainStore::apply`).
pub(crate) struct Applied {
    /// The ids of the outputs it spends.
    pub(crate) spent: Vec<Hash>,
    /// The outputs it creates.
    pub(crate) created: Vec<UxOut>,
    /// The unspent set's hash after it.
    pub(crate) ux_hash_after: UxHash,
}

/// A chain's start: its rules and its genesis block.
pub(crate) struct Genesis {
    /// The rules (the publisher's key).
    pub(crate) params: ChainParams,
    /// The genesis block, unsigned.
    pub(crate) block: Block,
    /// The genesis block, signed.
    pub(crate) signed: SignedBlock,
    /// What applying it to a store takes.
    pub(crate) applied: Applied,
}

impl Builder {
    /// The chain of publisher `key(1)` and wallet `key(2)`: its genesis, and the
    /// builder with the genesis block applied.
    pub(crate) fn new() -> (Genesis, Self) {
        let publisher = key(1);
        let wallet = key(2);
        let params = ChainParams::new(publisher.public_key());
        let genesis = Block::genesis(wallet.address(), GENESIS_COINS, GENESIS_TIME);
        let signed = genesis.clone().sign_block(&publisher);
        let mut builder = Self {
            publisher,
            wallet,
            head: genesis.header,
            ux_hash: UxHash::new(),
            unspent: HashMap::new(),
        };
        let applied = builder.commit(&signed);
        let genesis = Genesis {
            params,
            block: genesis,
            signed,
            applied,
        };
        (genesis, builder)
    }

    /// Makes `block` the head; returns what a store needs to apply it.
    pub(crate) fn commit(&mut self, block: &SignedBlock) -> Applied {
        let header = &block.block.header;
        let mut spent = Vec::new();
        let mut created = Vec::new();
        for tx in &block.block.body.transactions {
            for id in &tx.inputs {
                let ux = self.unspent.remove(id).expect("spends an unspent output");
                self.ux_hash.xor(&ux.snapshot_hash());
                spent.push(*id);
            }
            for ux in create_unspents(header, tx) {
                self.ux_hash.xor(&ux.snapshot_hash());
                assert!(self.unspent.insert(ux.hash(), ux).is_none());
                created.push(ux);
            }
        }
        self.head = *header;
        Applied {
            spent,
            created,
            ux_hash_after: self.ux_hash,
        }
    }

    /// A transaction spending `input` to `outputs` (coins, hours), to the wallet.
    pub(crate) fn tx(&self, input: &UxOut, outputs: &[(u64, u64)]) -> Transaction {
        let mut tx = Transaction {
            inputs: vec![input.hash()],
            outputs: outputs
                .iter()
                .map(|&(coins, hours)| Output {
                    address: self.wallet.address(),
                    coins,
                    hours,
                })
                .collect(),
            ..Transaction::default()
        };
        tx.sign(std::slice::from_ref(&self.wallet)).expect("sign");
        tx.update_header().expect("header");
        tx
    }

    /// The signed next block with `txs`, its fee computed at the head's time.
    pub(crate) fn block(&self, txs: Vec<Transaction>) -> SignedBlock {
        let fee = txs
            .iter()
            .map(|tx| {
                let inputs: Vec<UxOut> = tx.inputs.iter().map(|id| self.unspent[id]).collect();
                transaction_fee(tx, self.head.time, &inputs).expect("fee")
            })
            .sum();
        Block::next(
            &self.head,
            self.ux_hash.hash(),
            self.head.time + INTERVAL,
            fee,
            BlockBody { transactions: txs },
        )
        .expect("block")
        .sign_block(&self.publisher)
    }

    /// `ux`'s hours at the head's time.
    pub(crate) fn hours(&self, ux: &UxOut) -> u64 {
        total_coin_hours(std::slice::from_ref(ux), self.head.time).expect("hours")
    }

    /// The block fanning the genesis output out to `n` outputs.
    pub(crate) fn fan_out(&self, n: usize) -> SignedBlock {
        let input = *self.unspent.values().next().expect("the genesis output");
        let coins = GENESIS_COINS / n as u64;
        let hours = self.hours(&input) / 2 / n as u64;
        let outputs: Vec<(u64, u64)> = (0..n as u64)
            .map(|i| (coins, hours - i)) // distinct hours: distinct ids
            .collect();
        self.block(vec![self.tx(&input, &outputs)])
    }

    /// The block moving the `n` oldest unspent outputs on (one transaction each, half
    /// of its hours burned). An output earns hours only between its block and the head
    /// before the block spending it: with twice `n` outputs in turn, each earns a block
    /// interval's worth before it is spent, and the hours never run out.
    pub(crate) fn move_oldest(&self, n: usize) -> SignedBlock {
        let mut spend: Vec<UxOut> = self.unspent.values().copied().collect();
        spend.sort_by_cached_key(|ux| (ux.head.bk_seq, ux.hash()));
        spend.truncate(n);
        let txs = spend
            .iter()
            .map(|ux| self.tx(ux, &[(ux.body.coins, self.hours(ux) / 2)]))
            .collect();
        self.block(txs)
    }
}
