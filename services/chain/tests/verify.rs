//! Block and transaction verification against a small chain built in memory: a publisher
//! key signs every block, wallets whose keys the test holds spend the genesis coins.

use std::collections::HashMap;

use skywire_chain::verify::{
    BlockRejection, ChainParams, DEFAULT_MAX_BLOCK_SIZE, TxRejection, TxVerified, UnspentSet,
    Verified, block_lookups, verify_block, verify_genesis, verify_transaction,
};
use skywire_coin::ux::total_coin_hours;
use skywire_coin::{
    Block, BlockBody, BlockHeader, Hash, HoursError, Output, Sig, SigError, SignedBlock,
    Transaction, TxError, UxHash, UxOut, create_unspents, null_address, transaction_fee,
};
use skywire_identity::{Address, Keypair};

/// Skycoin's mainnet genesis time and coin volume (100M coins).
const GENESIS_TIME: u64 = 1_426_562_704;
const GENESIS_COINS: u64 = 100_000_000_000_000;
/// Time between blocks: ten hours, so that coin hours visibly accrue.
const INTERVAL: u64 = 10 * 3600;

/// The XOR of the snapshot hashes of the whole set, recomputed from scratch.
fn set_hash(unspent: &HashMap<Hash, UxOut>) -> Hash {
    let mut hash = UxHash::new();
    for ux in unspent.values() {
        hash.xor(&ux.snapshot_hash());
    }
    hash.hash()
}

fn make_tx(inputs: Vec<Hash>, outputs: Vec<Output>, keys: &[Keypair]) -> Transaction {
    let mut tx = Transaction {
        inputs,
        outputs,
        ..Transaction::default()
    };
    tx.sign(keys).expect("sign");
    tx.update_header().expect("header");
    tx
}

fn output(address: Address, coins: u64, hours: u64) -> Output {
    Output {
        address,
        coins,
        hours,
    }
}

struct Chain {
    params: ChainParams,
    publisher: Keypair,
    wallets: Vec<Keypair>,
    genesis: Block,
    head: BlockHeader,
    ux_hash: UxHash,
    unspent: HashMap<Hash, UxOut>,
}

impl Chain {
    /// A chain holding only its genesis block, which gives every coin to wallet 0.
    fn new(wallets: usize) -> Self {
        let publisher = Keypair::generate();
        let wallets: Vec<Keypair> = (0..wallets).map(|_| Keypair::generate()).collect();
        let params = ChainParams::new(publisher.public_key());
        let genesis = Block::genesis(wallets[0].address(), GENESIS_COINS, GENESIS_TIME);
        let signed = genesis.clone().sign_block(&publisher);
        let verified = verify_genesis(&params, &genesis, &signed).expect("genesis verifies");
        let mut chain = Self {
            params,
            publisher,
            wallets,
            genesis,
            head: BlockHeader::default(),
            ux_hash: UxHash::new(),
            unspent: HashMap::new(),
        };
        chain.apply_verified(&signed.block.header, &verified);
        chain
    }

    fn address(&self, wallet: usize) -> Address {
        self.wallets[wallet].address()
    }

    fn key(&self, address: &Address) -> &Keypair {
        self.wallets
            .iter()
            .find(|key| key.address() == *address)
            .expect("a wallet's address")
    }

    /// Wallet `wallet`'s unspent outputs, in uxid order.
    fn owned(&self, wallet: usize) -> Vec<UxOut> {
        let address = self.address(wallet);
        let mut owned: Vec<UxOut> = self
            .unspent
            .values()
            .filter(|ux| ux.body.address == address)
            .copied()
            .collect();
        owned.sort_by_key(UxOut::hash);
        owned
    }

    /// The hours of `spend` at the head's time.
    fn hours(&self, spend: &[UxOut]) -> u64 {
        total_coin_hours(spend, self.head.time).expect("hours")
    }

    /// A transaction spending `spend`, signed by the wallets that own them.
    fn signed_tx(&self, spend: &[UxOut], outputs: Vec<Output>) -> Transaction {
        let keys: Vec<Keypair> = spend
            .iter()
            .map(|ux| self.key(&ux.body.address).clone())
            .collect();
        make_tx(spend.iter().map(UxOut::hash).collect(), outputs, &keys)
    }

    /// A valid transaction sending all of `spend`'s coins to `to`, in multiples of 1000
    /// droplets, with half of the hours (burning the other half, the minimum with the
    /// default burn factor 2).
    fn transfer(&self, spend: &[UxOut], to: &[Address]) -> Transaction {
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

    /// The next block with `txs`, its header built independently of the verifier: fee by
    /// `transaction_fee` at the head's time, unspent-set hash recomputed from the set.
    fn block(&self, txs: Vec<Transaction>) -> Block {
        let fee = txs
            .iter()
            .map(|tx| {
                let inputs: Vec<UxOut> = tx.inputs.iter().map(|id| self.unspent[id]).collect();
                transaction_fee(tx, self.head.time, &inputs).expect("fee")
            })
            .sum();
        self.block_with_fee(txs, fee)
    }

    fn block_with_fee(&self, txs: Vec<Transaction>, fee: u64) -> Block {
        Block::next(
            &self.head,
            set_hash(&self.unspent),
            self.head.time + INTERVAL,
            fee,
            BlockBody { transactions: txs },
        )
        .expect("block")
    }

    fn sign(&self, block: Block) -> SignedBlock {
        block.sign_block(&self.publisher)
    }

    fn verify(&self, block: &SignedBlock) -> Result<Verified, BlockRejection> {
        verify_block(
            &self.params,
            &self.head,
            &self.ux_hash,
            &self.unspent,
            block,
        )
    }

    /// Signs and verifies `block`, expecting a rejection.
    fn reject(&self, block: Block) -> BlockRejection {
        self.verify(&self.sign(block))
            .expect_err("the block must be refused")
    }

    fn check_tx(&self, tx: &Transaction) -> Result<TxVerified, TxRejection> {
        verify_transaction(&self.params, &self.head, &self.unspent, tx)
    }

    /// Signs, verifies and applies `block`.
    fn apply(&mut self, block: Block) -> Verified {
        let signed = self.sign(block);
        assert_eq!(signed.block.header.ux_hash, set_hash(&self.unspent));
        let verified = self.verify(&signed).expect("block verifies");
        self.apply_verified(&signed.block.header, &verified);
        verified
    }

    fn apply_verified(&mut self, header: &BlockHeader, verified: &Verified) {
        for ux in &verified.spent {
            assert!(self.unspent.remove(&ux.hash()).is_some(), "spent twice");
        }
        for ux in &verified.created {
            assert!(
                self.unspent.insert(ux.hash(), *ux).is_none(),
                "created twice"
            );
        }
        assert_eq!(verified.ux_hash_after.hash(), set_hash(&self.unspent));
        self.head = *header;
        self.ux_hash = verified.ux_hash_after;
    }
}

/// A chain of genesis and block 1, which spreads the genesis coins over 4 wallets (6
/// outputs).
fn after_block_1() -> Chain {
    let mut chain = Chain::new(4);
    let to: Vec<Address> = [0, 1, 2, 3, 0, 1]
        .into_iter()
        .map(|w| chain.address(w))
        .collect();
    let tx = chain.transfer(&chain.owned(0), &to);
    let block = chain.block(vec![tx]);
    chain.apply(block);
    chain
}

/// A valid block 2 for [`after_block_1`], with three transactions.
fn candidate(chain: &Chain) -> Block {
    let txs = vec![
        chain.transfer(&chain.owned(0), &[chain.address(2)]),
        chain.transfer(&chain.owned(1), &[chain.address(3), chain.address(0)]),
        chain.transfer(&chain.owned(2), &[chain.address(1)]),
    ];
    let block = chain.block(txs);
    chain
        .verify(&chain.sign(block.clone()))
        .expect("the candidate is valid");
    block
}

fn total_coins(unspent: &HashMap<Hash, UxOut>) -> u64 {
    unspent.values().map(|ux| ux.body.coins).sum()
}

// ---------------------------------------------------------------------------------------
// A valid chain.

#[test]
fn valid_chain_verifies_and_ux_hash_chain_matches_the_set() {
    let mut chain = after_block_1();
    assert_eq!(chain.head.bk_seq, 1);
    assert_eq!(chain.unspent.len(), 6);
    for seq in 2..=5u64 {
        let txs: Vec<Transaction> = (0..4)
            .filter(|w| !chain.owned(*w).is_empty())
            .map(|w| {
                let to = [chain.address((w + 1) % 4), chain.address((w + 2) % 4)];
                chain.transfer(&chain.owned(w), &to)
            })
            .collect();
        assert!(txs.len() >= 3, "block {seq} has {} transactions", txs.len());
        let before = chain.unspent.clone();
        let block = chain.block(txs.clone());
        let header = block.header;
        assert_eq!(header.ux_hash, set_hash(&before));

        // Only what block_lookups names is needed.
        let lookups: HashMap<Hash, UxOut> = block_lookups(&block)
            .into_iter()
            .filter_map(|id| before.get(&id).map(|ux| (id, *ux)))
            .collect();
        let signed = chain.sign(block);
        let from_lookups = verify_block(
            &chain.params,
            &chain.head,
            &chain.ux_hash,
            &lookups,
            &signed,
        )
        .expect("verifies with the looked-up outputs only");

        let verified = chain.apply(signed.block);
        assert_eq!(verified, from_lookups);
        assert_eq!(chain.head.bk_seq, seq);
        assert_eq!(verified.fee, header.fee);
        let spent: Vec<UxOut> = txs
            .iter()
            .flat_map(|tx| tx.inputs.iter().map(|id| before[id]))
            .collect();
        assert_eq!(verified.spent, spent);
        let created: Vec<UxOut> = txs
            .iter()
            .flat_map(|tx| create_unspents(&header, tx))
            .collect();
        assert_eq!(verified.created, created);
        assert!(created.iter().all(|ux| ux.head.bk_seq == seq));
        assert_eq!(total_coins(&chain.unspent), GENESIS_COINS);
    }
    // The next block's header commits to the set after the last one.
    let next = chain.block(vec![chain.transfer(&chain.owned(0), &[chain.address(1)])]);
    assert_eq!(next.header.ux_hash, chain.ux_hash.hash());
}

#[test]
fn verify_transaction_reports_spent_created_and_fee() {
    let chain = after_block_1();
    let spend = chain.owned(1);
    assert_eq!(spend.len(), 2);
    let hours = chain.hours(&spend);
    let tx = chain.transfer(&spend, &[chain.address(2), chain.address(3)]);
    let verified = chain.check_tx(&tx).expect("valid");
    assert_eq!(verified.txid, tx.hash());
    assert_eq!(verified.spent, spend);
    let txid = tx.hash();
    let created: Vec<Hash> = tx.outputs.iter().map(|o| o.uxid(&txid)).collect();
    assert_eq!(verified.created, created);
    assert_eq!(verified.fee, hours - tx.output_hours().expect("hours"));
    // The ids are those of the outputs the containing block creates.
    let block = chain.block(vec![tx.clone()]);
    let outs: Vec<Hash> = create_unspents(&block.header, &tx)
        .iter()
        .map(UxOut::hash)
        .collect();
    assert_eq!(outs, created);
}

// ---------------------------------------------------------------------------------------
// Genesis.

#[test]
fn genesis_is_accepted_when_equal_and_signed_by_the_publisher() {
    let chain = Chain::new(1);
    let signed = chain.genesis.clone().sign_block(&chain.publisher);
    let verified = verify_genesis(&chain.params, &chain.genesis, &signed).expect("valid");
    assert!(verified.spent.is_empty());
    assert_eq!(verified.fee, 0);
    let created = create_unspents(&chain.genesis.header, &chain.genesis.body.transactions[0]);
    assert_eq!(verified.created, created);
    assert_eq!(created[0].body.src_transaction, Hash::ZERO);
    assert_eq!(created[0].body.coins, GENESIS_COINS);
    assert_eq!(verified.ux_hash_after.hash(), created[0].snapshot_hash());
}

#[test]
fn genesis_differing_from_the_configured_one_is_refused() {
    let chain = Chain::new(2);
    let variants = [
        Block::genesis(chain.address(0), GENESIS_COINS + 1000, GENESIS_TIME),
        Block::genesis(chain.address(0), GENESIS_COINS, GENESIS_TIME + 1),
        Block::genesis(chain.address(1), GENESIS_COINS, GENESIS_TIME),
    ];
    for other in variants {
        let signed = other.clone().sign_block(&chain.publisher);
        let err = verify_genesis(&chain.params, &chain.genesis, &signed).expect_err("refused");
        assert_eq!(
            err,
            BlockRejection::GenesisMismatch {
                expected: chain.genesis.hash(),
                found: other.hash(),
            }
        );
        assert!(err.proves_sender_misbehaved());
    }
}

#[test]
fn genesis_not_signed_by_the_publisher_is_refused() {
    let chain = Chain::new(1);
    let intruder = Keypair::generate();
    let signed = chain.genesis.clone().sign_block(&intruder);
    assert_eq!(
        verify_genesis(&chain.params, &chain.genesis, &signed),
        Err(BlockRejection::Signature(SigError::PublicKeyMismatch {
            expected: chain.publisher.public_key(),
            recovered: intruder.public_key(),
        }))
    );
    // The publisher's signature over another block does not carry over.
    let other = Block::genesis(chain.address(0), GENESIS_COINS, GENESIS_TIME + 1);
    let stolen = SignedBlock {
        block: chain.genesis.clone(),
        sig: other.sign_block(&chain.publisher).sig,
    };
    assert!(matches!(
        verify_genesis(&chain.params, &chain.genesis, &stolen),
        Err(BlockRejection::Signature(_))
    ));
}

// ---------------------------------------------------------------------------------------
// Block rules, each broken once on an otherwise valid block 2.

#[test]
fn block_not_signed_by_the_publisher_is_refused() {
    let chain = after_block_1();
    let block = candidate(&chain);
    let intruder = Keypair::generate();
    let err = chain
        .verify(&block.clone().sign_block(&intruder))
        .expect_err("refused");
    assert_eq!(
        err,
        BlockRejection::Signature(SigError::PublicKeyMismatch {
            expected: chain.publisher.public_key(),
            recovered: intruder.public_key(),
        })
    );
    assert!(err.proves_sender_misbehaved());
    // Header changed after signing.
    let mut tampered = chain.sign(block);
    tampered.block.header.fee += 1;
    assert!(matches!(
        chain.verify(&tampered),
        Err(BlockRejection::Signature(_))
    ));
}

#[test]
fn signature_is_checked_before_the_header() {
    let chain = after_block_1();
    let mut block = candidate(&chain);
    block.header.bk_seq = 7;
    block.header.time = 0;
    let err = chain
        .verify(&block.sign_block(&Keypair::generate()))
        .expect_err("refused");
    assert!(matches!(err, BlockRejection::Signature(_)), "{err}");
}

#[test]
fn wrong_sequence_number_is_refused() {
    let chain = after_block_1();
    for found in [0, 1, 3, u64::MAX] {
        let mut block = candidate(&chain);
        block.header.bk_seq = found;
        let err = chain.reject(block);
        assert_eq!(err, BlockRejection::Sequence { head: 1, found });
        // A block the publisher signed for another height is stale or early, not a lie.
        assert!(!err.proves_sender_misbehaved());
    }
}

#[test]
fn time_not_after_the_head_is_refused() {
    let chain = after_block_1();
    for time in [chain.head.time, chain.head.time - 1] {
        let mut block = candidate(&chain);
        block.header.time = time;
        let err = chain.reject(block);
        assert_eq!(
            err,
            BlockRejection::TimeNotAfterHead {
                time,
                head_time: chain.head.time,
            }
        );
        assert!(err.proves_sender_misbehaved());
    }
}

#[test]
fn wrong_previous_hash_is_refused() {
    let chain = after_block_1();
    let mut block = candidate(&chain);
    block.header.prev_hash = chain.genesis.hash();
    assert_eq!(
        chain.reject(block),
        BlockRejection::PrevHash {
            expected: chain.head.hash(),
            found: chain.genesis.hash(),
        }
    );
}

#[test]
fn wrong_body_hash_is_refused() {
    let chain = after_block_1();
    let mut block = candidate(&chain);
    let found = block.header.body_hash;
    // Reordered transactions: the Merkle root changes, the header does not.
    block.body.transactions.swap(0, 1);
    let computed = block.body.hash();
    assert_ne!(computed, found);
    assert_eq!(
        chain.reject(block),
        BlockRejection::BodyHash { computed, found }
    );
}

#[test]
fn empty_block_is_refused() {
    let chain = after_block_1();
    let mut block = candidate(&chain);
    block.body.transactions.clear();
    block.header.body_hash = block.body.hash();
    block.header.fee = 0;
    assert_eq!(chain.reject(block), BlockRejection::Empty);
}

#[test]
fn block_over_the_size_limit_is_refused() {
    // 200 outputs, then a block of 200 one-in one-out transactions: 200 × 183 bytes.
    let mut chain = Chain::new(2);
    let to = vec![chain.address(1); 200];
    let split = chain.transfer(&chain.owned(0), &to);
    let block = chain.block(vec![split]);
    chain.apply(block);
    let txs: Vec<Transaction> = chain
        .owned(1)
        .iter()
        .map(|ux| chain.transfer(&[*ux], &[chain.address(0)]))
        .collect();
    assert!(txs.iter().all(|tx| tx.size() == 183));
    let block = chain.block(txs);
    let size = block.body.size();
    assert_eq!(size, 36_600);
    assert_eq!(chain.params.max_block_size, DEFAULT_MAX_BLOCK_SIZE);
    let err = chain.reject(block.clone());
    assert_eq!(
        err,
        BlockRejection::TooLarge {
            size,
            max: DEFAULT_MAX_BLOCK_SIZE,
        }
    );
    assert!(err.proves_sender_misbehaved());

    // The limit is inclusive, and the block is otherwise valid.
    chain.params.max_block_size = size;
    chain
        .verify(&chain.sign(block.clone()))
        .expect("at the limit");
    chain.params.max_block_size = size - 1;
    assert_eq!(
        chain.reject(block),
        BlockRejection::TooLarge {
            size,
            max: size - 1
        }
    );
}

#[test]
fn wrong_ux_hash_is_refused() {
    let chain = after_block_1();
    let mut block = candidate(&chain);
    // The hash of the set before block 1 (genesis output only).
    let stale = chain.genesis.header.ux_hash;
    block.header.ux_hash = stale;
    assert_eq!(
        chain.reject(block),
        BlockRejection::UxHash {
            expected: chain.ux_hash.hash(),
            found: stale,
        }
    );
}

#[test]
fn wrong_header_fee_is_refused() {
    let chain = after_block_1();
    let block = candidate(&chain);
    let expected = block.header.fee;
    assert!(expected > 0);
    for found in [0, expected - 1, expected + 1] {
        let mut wrong = block.clone();
        wrong.header.fee = found;
        let err = chain.reject(wrong);
        assert_eq!(err, BlockRejection::Fee { expected, found });
        assert!(err.proves_sender_misbehaved());
    }
}

#[test]
fn double_spend_within_a_block_is_refused() {
    let chain = after_block_1();
    let ux = chain.owned(0)[0];
    let first = chain.transfer(&[ux], &[chain.address(1)]);
    let second = chain.transfer(&[ux], &[chain.address(2)]);
    // Each is valid on its own.
    chain.check_tx(&first).expect("valid alone");
    chain.check_tx(&second).expect("valid alone");
    let other = chain.transfer(&chain.owned(2), &[chain.address(3)]);
    let block = chain.block_with_fee(vec![first, other, second], 0);
    let err = chain.reject(block);
    assert_eq!(
        err,
        BlockRejection::DoubleSpend {
            index: 2,
            uxid: ux.hash(),
        }
    );
    assert!(err.proves_sender_misbehaved());
}

#[test]
fn spending_an_output_created_in_the_same_block_is_refused() {
    let chain = after_block_1();
    let first = chain.transfer(&chain.owned(0), &[chain.address(1)]);
    let header = chain.block(vec![first.clone()]).header;
    let made = create_unspents(&header, &first)[0];
    let keys = [chain.wallets[1].clone()];
    let second = make_tx(
        vec![made.hash()],
        vec![output(chain.address(2), made.body.coins, 0)],
        &keys,
    );
    let block = chain.block_with_fee(vec![first, second], 0);
    let err = chain.reject(block);
    assert_eq!(
        err,
        BlockRejection::Transaction {
            index: 1,
            source: TxRejection::InputNotUnspent {
                index: 0,
                uxid: made.hash(),
            },
        }
    );
    // Inside a block, even a missing input is proof.
    assert!(err.proves_sender_misbehaved());
}

#[test]
fn creating_an_output_that_is_already_unspent_is_refused() {
    // Unreachable without a hash collision: staged with an unspent set that already holds
    // the output the block would create.
    let chain = after_block_1();
    let block = candidate(&chain);
    let created = create_unspents(&block.header, &block.body.transactions[1])[0];
    let mut unspent = chain.unspent.clone();
    unspent.insert(created.hash(), created);
    let err = verify_block(
        &chain.params,
        &chain.head,
        &chain.ux_hash,
        &unspent,
        &chain.sign(block),
    )
    .expect_err("refused");
    assert_eq!(
        err,
        BlockRejection::OutputExists {
            index: 1,
            uxid: created.hash(),
        }
    );
}

#[test]
fn a_transaction_rule_broken_inside_a_block_names_the_transaction() {
    let chain = after_block_1();
    let mut block = candidate(&chain);
    let spend = chain.owned(2);
    let hours = chain.hours(&spend);
    // Burns nothing.
    block.body.transactions[2] = chain.signed_tx(
        &spend,
        vec![output(chain.address(1), spend[0].body.coins, hours)],
    );
    block.header.body_hash = block.body.hash();
    let err = chain.reject(block);
    assert_eq!(
        err,
        BlockRejection::Transaction {
            index: 2,
            source: TxRejection::ZeroFee,
        }
    );
    // Alone it could be a race (another head); in a block that names its head, it is not.
    assert!(!TxRejection::ZeroFee.proves_sender_misbehaved());
    assert!(err.proves_sender_misbehaved());
}

// ---------------------------------------------------------------------------------------
// Transaction rules, each broken once.

/// Wallet 0's first output after block 1, and its hours at the head.
fn one_output(chain: &Chain) -> (UxOut, u64) {
    let ux = chain.owned(0)[0];
    let hours = chain.hours(&[ux]);
    assert!(hours > 1000);
    (ux, hours)
}

#[test]
fn unknown_or_spent_input_is_refused_but_proves_nothing() {
    let chain = after_block_1();
    let keys = [chain.wallets[0].clone()];
    let unknown = Hash([7; 32]);
    let tx = make_tx(
        vec![unknown],
        vec![output(chain.address(1), 1_000_000, 0)],
        &keys,
    );
    let err = chain.check_tx(&tx).expect_err("refused");
    assert_eq!(
        err,
        TxRejection::InputNotUnspent {
            index: 0,
            uxid: unknown,
        }
    );
    assert!(!err.proves_sender_misbehaved());

    // The genesis output, spent by block 1.
    let genesis_ux = create_unspents(&chain.genesis.header, &chain.genesis.body.transactions[0])[0];
    let (ux, _) = one_output(&chain);
    let tx = make_tx(
        vec![ux.hash(), genesis_ux.hash()],
        vec![output(chain.address(1), 1_000_000, 0)],
        &[chain.wallets[0].clone(), chain.wallets[0].clone()],
    );
    assert_eq!(
        chain.check_tx(&tx),
        Err(TxRejection::InputNotUnspent {
            index: 1,
            uxid: genesis_ux.hash(),
        })
    );
}

#[test]
fn malformed_signature_is_refused() {
    let chain = after_block_1();
    let (ux, hours) = one_output(&chain);
    let mut tx = chain.signed_tx(
        &[ux],
        vec![output(chain.address(1), ux.body.coins, hours / 2)],
    );
    chain.check_tx(&tx).expect("valid before the change");
    tx.sigs[0].0[64] = 9;
    let err = chain.check_tx(&tx).expect_err("refused");
    assert_eq!(
        err,
        TxRejection::Invalid(TxError::InvalidSignature {
            index: 0,
            source: SigError::InvalidRecoveryId { got: 9 },
        })
    );
    assert!(err.proves_sender_misbehaved());

    tx.sigs[0] = Sig::NULL;
    assert_eq!(
        chain.check_tx(&tx),
        Err(TxRejection::Invalid(TxError::UnsignedInput { index: 0 }))
    );
}

#[test]
fn signature_by_a_key_not_owning_the_input_is_refused() {
    let chain = after_block_1();
    let (ux, hours) = one_output(&chain);
    let other = chain.owned(2)[0];
    // Input 1 (wallet 0's output) signed by wallet 1.
    let tx = make_tx(
        vec![other.hash(), ux.hash()],
        vec![output(
            chain.address(3),
            ux.body.coins + other.body.coins,
            hours / 4,
        )],
        &[chain.wallets[2].clone(), chain.wallets[1].clone()],
    );
    let err = chain.check_tx(&tx).expect_err("refused");
    assert_eq!(
        err,
        TxRejection::InputSignature {
            index: 1,
            source: SigError::AddressMismatch {
                expected: chain.address(0),
                recovered: chain.address(1),
            },
        }
    );
    assert!(err.proves_sender_misbehaved());
}

#[test]
fn coins_created_or_destroyed_are_refused() {
    let chain = after_block_1();
    let (ux, hours) = one_output(&chain);
    let coins = ux.body.coins;
    let tx = chain.signed_tx(
        &[ux],
        vec![
            output(chain.address(1), coins, hours / 4),
            output(chain.address(2), 1000, hours / 4),
        ],
    );
    let err = chain.check_tx(&tx).expect_err("refused");
    assert_eq!(
        err,
        TxRejection::CoinsCreated {
            input: coins,
            output: coins + 1000,
        }
    );
    assert!(err.proves_sender_misbehaved());

    let tx = chain.signed_tx(
        &[ux],
        vec![output(chain.address(1), coins - 1000, hours / 2)],
    );
    let err = chain.check_tx(&tx).expect_err("refused");
    assert_eq!(
        err,
        TxRejection::CoinsDestroyed {
            input: coins,
            output: coins - 1000,
        }
    );
    assert!(err.proves_sender_misbehaved());
}

#[test]
fn hours_increased_are_refused() {
    let chain = after_block_1();
    let (ux, hours) = one_output(&chain);
    let tx = chain.signed_tx(
        &[ux],
        vec![
            output(chain.address(1), ux.body.coins - 1000, hours),
            output(chain.address(2), 1000, 1),
        ],
    );
    let err = chain.check_tx(&tx).expect_err("refused");
    assert_eq!(
        err,
        TxRejection::HoursIncreased {
            input: hours,
            output: hours + 1,
        }
    );
    // Hours depend on the head's time: a sender further ahead may have more.
    assert!(!err.proves_sender_misbehaved());
}

#[test]
fn zero_fee_is_refused() {
    let chain = after_block_1();
    let (ux, hours) = one_output(&chain);
    let tx = chain.signed_tx(&[ux], vec![output(chain.address(1), ux.body.coins, hours)]);
    assert_eq!(chain.check_tx(&tx), Err(TxRejection::ZeroFee));
}

#[test]
fn fee_below_the_burn_factor_is_refused() {
    let mut chain = after_block_1();
    let (ux, hours) = one_output(&chain);
    let required = hours.div_ceil(2);
    // Exactly half burned (rounded up): accepted.
    let tx = chain.signed_tx(
        &[ux],
        vec![output(chain.address(1), ux.body.coins, hours / 2)],
    );
    assert_eq!(chain.check_tx(&tx).expect("valid").fee, required);
    // One hour less burned: refused.
    let tx = chain.signed_tx(
        &[ux],
        vec![output(chain.address(1), ux.body.coins, hours / 2 + 1)],
    );
    let err = chain.check_tx(&tx).expect_err("refused");
    assert_eq!(
        err,
        TxRejection::InsufficientFee {
            fee: required - 1,
            required,
            burn_factor: 2,
        }
    );
    assert!(!err.proves_sender_misbehaved());
    // The burn factor is the chain's setting: with Skycoin's 10 the same transaction is fine.
    chain.params.burn_factor = 10;
    chain.check_tx(&tx).expect("a tenth is enough");
}

#[test]
fn too_many_decimal_places_are_refused() {
    let mut chain = after_block_1();
    let (ux, hours) = one_output(&chain);
    let tx = chain.signed_tx(
        &[ux],
        vec![
            output(chain.address(1), ux.body.coins - 2000, hours / 6),
            output(chain.address(2), 1500, hours / 6),
            output(chain.address(3), 500, hours / 6),
        ],
    );
    let err = chain.check_tx(&tx).expect_err("refused");
    assert_eq!(
        err,
        TxRejection::TooManyDecimals {
            index: 1,
            coins: 1500,
            divisor: 1000,
        }
    );
    assert!(err.proves_sender_misbehaved());
    chain.params.max_droplet_precision = 6;
    chain.check_tx(&tx).expect("whole droplets allowed");
}

#[test]
fn output_to_the_null_address_is_refused() {
    let chain = after_block_1();
    let (ux, hours) = one_output(&chain);
    let tx = chain.signed_tx(
        &[ux],
        vec![
            output(chain.address(1), ux.body.coins - 1000, hours / 4),
            output(null_address(), 1000, hours / 4),
        ],
    );
    let err = chain.check_tx(&tx).expect_err("refused");
    assert_eq!(err, TxRejection::NullAddressOutput { index: 1 });
    assert!(err.proves_sender_misbehaved());
}

#[test]
fn transaction_over_the_size_limit_is_refused() {
    let mut chain = after_block_1();
    let (ux, hours) = one_output(&chain);
    let n = 900u64;
    let outputs: Vec<Output> = (0..n)
        .map(|i| {
            let coins = if i == 0 {
                ux.body.coins - 1_000_000 * (n - 1)
            } else {
                1_000_000
            };
            // Half of the hours in all, distinct per output.
            let hours = if i == 0 {
                hours / 2 - n * (n - 1) / 2
            } else {
                i
            };
            output(chain.address((i % 4) as usize), coins, hours)
        })
        .collect();
    let tx = chain.signed_tx(&[ux], outputs);
    let size = tx.size();
    assert_eq!(size, 49 + 65 + 32 + 900 * 37);
    let err = chain.check_tx(&tx).expect_err("refused");
    assert_eq!(err, TxRejection::TooLarge { size, max: 32768 });
    assert!(err.proves_sender_misbehaved());
    chain.params.max_transaction_size = size;
    chain.check_tx(&tx).expect("valid at the limit");
}

// ---------------------------------------------------------------------------------------
// Coin hours: at the head's time.

#[test]
fn block_1_fee_is_the_genesis_hours_at_the_genesis_time() {
    // Skycoin's block 1: 100 outputs of 1M coins and 1 hour each, fee 99999999999900.
    let chain = Chain::new(1);
    let genesis_ux = chain.owned(0)[0];
    let outputs = (0..100)
        .map(|_| output(Keypair::generate().address(), 1_000_000_000_000, 1))
        .collect();
    let tx = chain.signed_tx(&[genesis_ux], outputs);
    assert_eq!(tx.size(), 3846);
    let block = chain.block_with_fee(vec![tx], 99_999_999_999_900);
    let verified = chain
        .verify(&chain.sign(block.clone()))
        .expect("block 1 verifies");
    assert_eq!(verified.fee, 99_999_999_999_900);

    // At the block's own time the genesis output has ten hours' more coin hours.
    let at_block_time = genesis_ux.coin_hours(block.header.time).expect("hours") - 100;
    assert_eq!(at_block_time, 99_999_999_999_900 + 100_000_000 * 10);
    let mut wrong = block;
    wrong.header.fee = at_block_time;
    assert_eq!(
        chain.reject(wrong),
        BlockRejection::Fee {
            expected: 99_999_999_999_900,
            found: at_block_time,
        }
    );
}

#[test]
fn hours_accrue_until_the_head_not_the_new_block() {
    let mut chain = after_block_1();
    // Block 2 leaves wallet 3's output alone: it accrues from block 1 to block 2.
    let block = chain.block(vec![chain.transfer(&chain.owned(0), &[chain.address(1)])]);
    chain.apply(block);
    let ux = chain.owned(3)[0];
    let at_head = ux.coin_hours(chain.head.time).expect("hours");
    let at_block = ux.coin_hours(chain.head.time + INTERVAL).expect("hours");
    assert!(ux.body.hours < at_head && at_head < at_block);

    let tx = chain.signed_tx(
        &[ux],
        vec![output(chain.address(0), ux.body.coins, at_head / 2)],
    );
    assert_eq!(
        chain.check_tx(&tx).expect("valid").fee,
        at_head - at_head / 2
    );

    // Hours that exist only at the new block's time.
    let greedy = chain.signed_tx(
        &[ux],
        vec![output(chain.address(0), ux.body.coins, at_head + 1)],
    );
    let block = chain.block_with_fee(vec![greedy], 0);
    assert_eq!(
        chain.reject(block),
        BlockRejection::Transaction {
            index: 0,
            source: TxRejection::HoursIncreased {
                input: at_head,
                output: at_head + 1,
            },
        }
    );
}

#[test]
fn input_whose_earned_hours_overflow_counts_as_zero() {
    // Skycoin's rule for the output spent in its block 13277, staged with an unspent set
    // holding such an output.
    let chain = after_block_1();
    let (normal, hours) = one_output(&chain);
    let huge = UxOut {
        head: skywire_coin::UxHead {
            time: chain.head.time - 3600,
            bk_seq: 0,
        },
        body: skywire_coin::UxBody {
            src_transaction: Hash([1; 32]),
            address: chain.address(0),
            coins: 3_600_000_000,
            hours: u64::MAX - 1,
        },
    };
    assert!(matches!(
        huge.coin_hours(chain.head.time),
        Err(HoursError::EarnedHoursOverflow { .. })
    ));
    let mut unspent = chain.unspent.clone();
    unspent.insert(huge.hash(), huge);
    assert_eq!(UnspentSet::get(&unspent, &huge.hash()), Some(huge));

    let tx = chain.signed_tx(
        &[normal, huge],
        vec![output(
            chain.address(1),
            normal.body.coins + huge.body.coins,
            hours / 2,
        )],
    );
    let verified = verify_transaction(&chain.params, &chain.head, &unspent, &tx).expect("valid");
    assert_eq!(verified.fee, hours - hours / 2);
}
