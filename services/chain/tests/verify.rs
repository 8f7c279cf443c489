//! Block and transaction verification against a small chain built in memory (the shared
//! [`Model`]): a publisher key signs every block, wallets whose keys the test holds spend
//! the genesis coins.

mod common;

use std::collections::HashMap;

use common::{GENESIS_COINS, GENESIS_TIME, INTERVAL, Model, make_tx, output, set_hash};
use skywire_chain::verify::{
    BlockRejection, DEFAULT_MAX_BLOCK_SIZE, MIN_SIGNATURES_PER_THREAD, TxRejection, UnspentSet,
    block_lookups, verify_block, verify_blocks, verify_genesis, verify_transaction,
};
use skywire_coin::{
    Block, Hash, HoursError, Output, Sig, SigError, SignedBlock, Transaction, TxError, UxOut,
    create_unspents, null_address,
};
use skywire_identity::{Address, Keypair};

/// A chain of genesis and block 1, which spreads the genesis coins over 4 wallets (6
/// outputs).
fn after_block_1() -> Model {
    let mut model = Model::new(4);
    let to: Vec<Address> = [0, 1, 2, 3, 0, 1]
        .into_iter()
        .map(|w| model.address(w))
        .collect();
    let tx = model.transfer(&model.owned(0), &to);
    let block = model.block(vec![tx]);
    model.apply(block);
    model
}

/// A valid block 2 for [`after_block_1`], with three transactions.
fn candidate(model: &Model) -> Block {
    let txs = vec![
        model.transfer(&model.owned(0), &[model.address(2)]),
        model.transfer(&model.owned(1), &[model.address(3), model.address(0)]),
        model.transfer(&model.owned(2), &[model.address(1)]),
    ];
    let block = model.block(txs);
    model
        .verify(&model.sign(block.clone()))
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
    let mut model = after_block_1();
    assert_eq!(model.header().bk_seq, 1);
    assert_eq!(model.unspent.len(), 6);
    for seq in 2..=5u64 {
        let txs: Vec<Transaction> = (0..4)
            .filter(|w| !model.owned(*w).is_empty())
            .map(|w| {
                let to = [model.address((w + 1) % 4), model.address((w + 2) % 4)];
                model.transfer(&model.owned(w), &to)
            })
            .collect();
        assert!(txs.len() >= 3, "block {seq} has {} transactions", txs.len());
        let before = model.unspent.clone();
        let block = model.block(txs.clone());
        let header = block.header;
        assert_eq!(header.ux_hash, set_hash(&before));

        // Only what block_lookups names is needed.
        let lookups: HashMap<Hash, UxOut> = block_lookups(&block)
            .into_iter()
            .filter_map(|id| before.get(&id).map(|ux| (id, *ux)))
            .collect();
        let signed = model.sign(block);
        let from_lookups = verify_block(
            &model.params,
            &model.header(),
            &model.ux_hash,
            &lookups,
            &signed,
        )
        .expect("verifies with the looked-up outputs only");

        let verified = model.apply(signed.block);
        assert_eq!(verified, from_lookups);
        assert_eq!(model.header().bk_seq, seq);
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
        assert_eq!(total_coins(&model.unspent), GENESIS_COINS);
    }
    // The next block's header commits to the set after the last one.
    let next = model.block(vec![model.transfer(&model.owned(0), &[model.address(1)])]);
    assert_eq!(next.header.ux_hash, model.ux_hash.hash());
}

#[test]
fn verify_transaction_reports_spent_created_and_fee() {
    let model = after_block_1();
    let spend = model.owned(1);
    assert_eq!(spend.len(), 2);
    let hours = model.hours(&spend);
    let tx = model.transfer(&spend, &[model.address(2), model.address(3)]);
    let verified = model.check_tx(&tx).expect("valid");
    assert_eq!(verified.txid, tx.hash());
    assert_eq!(verified.spent, spend);
    let txid = tx.hash();
    let created: Vec<Hash> = tx.outputs.iter().map(|o| o.uxid(&txid)).collect();
    assert_eq!(verified.created, created);
    assert_eq!(verified.fee, hours - tx.output_hours().expect("hours"));
    // The ids are those of the outputs the containing block creates.
    let block = model.block(vec![tx.clone()]);
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
    let model = Model::new(1);
    let signed = model.genesis.clone().sign_block(&model.publisher);
    let verified = verify_genesis(&model.params, &model.genesis, &signed).expect("valid");
    assert!(verified.spent.is_empty());
    assert_eq!(verified.fee, 0);
    let created = create_unspents(&model.genesis.header, &model.genesis.body.transactions[0]);
    assert_eq!(verified.created, created);
    assert_eq!(created[0].body.src_transaction, Hash::ZERO);
    assert_eq!(created[0].body.coins, GENESIS_COINS);
    assert_eq!(verified.ux_hash_after.hash(), created[0].snapshot_hash());
}

#[test]
fn genesis_differing_from_the_configured_one_is_refused() {
    let model = Model::new(2);
    let variants = [
        Block::genesis(model.address(0), GENESIS_COINS + 1000, GENESIS_TIME),
        Block::genesis(model.address(0), GENESIS_COINS, GENESIS_TIME + 1),
        Block::genesis(model.address(1), GENESIS_COINS, GENESIS_TIME),
    ];
    for other in variants {
        let signed = other.clone().sign_block(&model.publisher);
        let err = verify_genesis(&model.params, &model.genesis, &signed).expect_err("refused");
        assert_eq!(
            err,
            BlockRejection::GenesisMismatch {
                expected: model.genesis.hash(),
                found: other.hash(),
            }
        );
        assert!(err.proves_sender_misbehaved());
    }
}

#[test]
fn genesis_not_signed_by_the_publisher_is_refused() {
    let model = Model::new(1);
    let intruder = Keypair::generate();
    let signed = model.genesis.clone().sign_block(&intruder);
    assert_eq!(
        verify_genesis(&model.params, &model.genesis, &signed),
        Err(BlockRejection::Signature(SigError::PublicKeyMismatch {
            expected: model.publisher.public_key(),
            recovered: intruder.public_key(),
        }))
    );
    // The publisher's signature over another block does not carry over.
    let other = Block::genesis(model.address(0), GENESIS_COINS, GENESIS_TIME + 1);
    let stolen = SignedBlock {
        block: model.genesis.clone(),
        sig: other.sign_block(&model.publisher).sig,
    };
    assert!(matches!(
        verify_genesis(&model.params, &model.genesis, &stolen),
        Err(BlockRejection::Signature(_))
    ));
}

// ---------------------------------------------------------------------------------------
// Block rules, each broken once on an otherwise valid block 2.

#[test]
fn block_not_signed_by_the_publisher_is_refused() {
    let model = after_block_1();
    let block = candidate(&model);
    let intruder = Keypair::generate();
    let err = model
        .verify(&block.clone().sign_block(&intruder))
        .expect_err("refused");
    assert_eq!(
        err,
        BlockRejection::Signature(SigError::PublicKeyMismatch {
            expected: model.publisher.public_key(),
            recovered: intruder.public_key(),
        })
    );
    assert!(err.proves_sender_misbehaved());
    // Header changed after signing.
    let mut tampered = model.sign(block);
    tampered.block.header.fee += 1;
    assert!(matches!(
        model.verify(&tampered),
        Err(BlockRejection::Signature(_))
    ));
}

#[test]
fn signature_is_checked_before_the_header() {
    let model = after_block_1();
    let mut block = candidate(&model);
    block.header.bk_seq = 7;
    block.header.time = 0;
    let err = model
        .verify(&block.sign_block(&Keypair::generate()))
        .expect_err("refused");
    assert!(matches!(err, BlockRejection::Signature(_)), "{err}");
}

#[test]
fn wrong_sequence_number_is_refused() {
    let model = after_block_1();
    for found in [0, 1, 3, u64::MAX] {
        let mut block = candidate(&model);
        block.header.bk_seq = found;
        let err = model.reject(block);
        assert_eq!(err, BlockRejection::Sequence { head: 1, found });
        // A block the publisher signed for another height is stale or early, not a lie.
        assert!(!err.proves_sender_misbehaved());
    }
}

#[test]
fn time_not_after_the_head_is_refused() {
    let model = after_block_1();
    for time in [model.header().time, model.header().time - 1] {
        let mut block = candidate(&model);
        block.header.time = time;
        let err = model.reject(block);
        assert_eq!(
            err,
            BlockRejection::TimeNotAfterHead {
                time,
                head_time: model.header().time,
            }
        );
        assert!(err.proves_sender_misbehaved());
    }
}

#[test]
fn wrong_previous_hash_is_refused() {
    let model = after_block_1();
    let mut block = candidate(&model);
    block.header.prev_hash = model.genesis.hash();
    assert_eq!(
        model.reject(block),
        BlockRejection::PrevHash {
            expected: model.header().hash(),
            found: model.genesis.hash(),
        }
    );
}

#[test]
fn wrong_body_hash_is_refused() {
    let model = after_block_1();
    let mut block = candidate(&model);
    let found = block.header.body_hash;
    // Reordered transactions: the Merkle root changes, the header does not.
    block.body.transactions.swap(0, 1);
    let computed = block.body.hash();
    assert_ne!(computed, found);
    assert_eq!(
        model.reject(block),
        BlockRejection::BodyHash { computed, found }
    );
}

#[test]
fn empty_block_is_refused() {
    let model = after_block_1();
    let mut block = candidate(&model);
    block.body.transactions.clear();
    block.header.body_hash = block.body.hash();
    block.header.fee = 0;
    assert_eq!(model.reject(block), BlockRejection::Empty);
}

#[test]
fn block_over_the_size_limit_is_refused() {
    // 200 outputs, then a block of 200 one-in one-out transactions: 200 × 183 bytes.
    let mut model = Model::new(2);
    let to = vec![model.address(1); 200];
    let split = model.transfer(&model.owned(0), &to);
    let block = model.block(vec![split]);
    model.apply(block);
    let txs: Vec<Transaction> = model
        .owned(1)
        .iter()
        .map(|ux| model.transfer(&[*ux], &[model.address(0)]))
        .collect();
    assert!(txs.iter().all(|tx| tx.size() == 183));
    let block = model.block(txs);
    let size = block.body.size();
    assert_eq!(size, 36_600);
    assert_eq!(model.params.max_block_size, DEFAULT_MAX_BLOCK_SIZE);
    let err = model.reject(block.clone());
    assert_eq!(
        err,
        BlockRejection::TooLarge {
            size,
            max: DEFAULT_MAX_BLOCK_SIZE,
        }
    );
    assert!(err.proves_sender_misbehaved());

    // The limit is inclusive, and the block is otherwise valid.
    model.params.max_block_size = size;
    model
        .verify(&model.sign(block.clone()))
        .expect("at the limit");
    model.params.max_block_size = size - 1;
    assert_eq!(
        model.reject(block),
        BlockRejection::TooLarge {
            size,
            max: size - 1
        }
    );
}

#[test]
fn wrong_ux_hash_is_refused() {
    let model = after_block_1();
    let mut block = candidate(&model);
    // The hash of the set before block 1 (genesis output only).
    let stale = model.genesis.header.ux_hash;
    block.header.ux_hash = stale;
    assert_eq!(
        model.reject(block),
        BlockRejection::UxHash {
            expected: model.ux_hash.hash(),
            found: stale,
        }
    );
}

#[test]
fn wrong_header_fee_is_refused() {
    let model = after_block_1();
    let block = candidate(&model);
    let expected = block.header.fee;
    assert!(expected > 0);
    for found in [0, expected - 1, expected + 1] {
        let mut wrong = block.clone();
        wrong.header.fee = found;
        let err = model.reject(wrong);
        assert_eq!(err, BlockRejection::Fee { expected, found });
        assert!(err.proves_sender_misbehaved());
    }
}

#[test]
fn double_spend_within_a_block_is_refused() {
    let model = after_block_1();
    let ux = model.owned(0)[0];
    let first = model.transfer(&[ux], &[model.address(1)]);
    let second = model.transfer(&[ux], &[model.address(2)]);
    // Each is valid on its own.
    model.check_tx(&first).expect("valid alone");
    model.check_tx(&second).expect("valid alone");
    let other = model.transfer(&model.owned(2), &[model.address(3)]);
    let block = model.block_with_fee(vec![first, other, second], 0);
    let err = model.reject(block);
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
    let model = after_block_1();
    let first = model.transfer(&model.owned(0), &[model.address(1)]);
    let header = model.block(vec![first.clone()]).header;
    let made = create_unspents(&header, &first)[0];
    let keys = [model.wallets[1].clone()];
    let second = make_tx(
        vec![made.hash()],
        vec![output(model.address(2), made.body.coins, 0)],
        &keys,
    );
    let block = model.block_with_fee(vec![first, second], 0);
    let err = model.reject(block);
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
    let model = after_block_1();
    let block = candidate(&model);
    let created = create_unspents(&block.header, &block.body.transactions[1])[0];
    let mut unspent = model.unspent.clone();
    unspent.insert(created.hash(), created);
    let err = verify_block(
        &model.params,
        &model.header(),
        &model.ux_hash,
        &unspent,
        &model.sign(block),
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
    let model = after_block_1();
    let mut block = candidate(&model);
    let spend = model.owned(2);
    let hours = model.hours(&spend);
    // Burns nothing.
    block.body.transactions[2] = model.signed_tx(
        &spend,
        vec![output(model.address(1), spend[0].body.coins, hours)],
    );
    block.header.body_hash = block.body.hash();
    let err = model.reject(block);
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
// Blocks with enough inputs for their signatures to be recovered on several threads.

/// Single-input transactions in [`wide`]'s block 2: enough signatures for 8 threads.
const WIDE: usize = 8 * MIN_SIGNATURES_PER_THREAD;

/// A chain whose block 1 spreads the genesis coins over [`WIDE`] outputs of wallets 0 to 3,
/// and the [`WIDE`] transactions of a valid block 2, each moving one of them on.
fn wide() -> (Model, Vec<Transaction>) {
    let mut model = Model::new(4);
    let to: Vec<Address> = (0..WIDE).map(|i| model.address(i % 4)).collect();
    let fan_out = model.transfer(&model.owned(0), &to);
    let block = model.block(vec![fan_out]);
    model.apply(block);
    let mut spend: Vec<UxOut> = model.unspent.values().copied().collect();
    spend.sort_by_key(UxOut::hash);
    let txs = spend
        .iter()
        .map(|ux| model.transfer(&[*ux], &[model.address(0)]))
        .collect();
    (model, txs)
}

/// `tx` signed again by a wallet other than the owner of its (single) input, and that
/// wallet's address.
fn signed_by_another(model: &Model, tx: &Transaction) -> (Transaction, Address) {
    let owner = model.unspent[&tx.inputs[0]].body.address;
    let thief = model
        .wallets
        .iter()
        .find(|key| key.address() != owner)
        .expect("another wallet");
    let tx = make_tx(
        tx.inputs.clone(),
        tx.outputs.clone(),
        std::slice::from_ref(thief),
    );
    (tx, thief.address())
}

/// The first error of `txs` in the sequential order: each transaction checked alone with
/// [`verify_transaction`], one after the other (they spend distinct outputs).
fn first_in_order(model: &Model, txs: &[Transaction]) -> Option<BlockRejection> {
    txs.iter().enumerate().find_map(|(index, tx)| {
        model
            .check_tx(tx)
            .err()
            .map(|source| BlockRejection::Transaction { index, source })
    })
}

#[test]
fn a_block_wide_enough_for_several_threads_verifies() {
    let (mut model, txs) = wide();
    assert!(txs.len() >= 2 * MIN_SIGNATURES_PER_THREAD);
    let block = model.block(txs);
    let verified = model.apply(block);
    assert_eq!(verified.spent.len(), WIDE);
    assert_eq!(verified.created.len(), WIDE);
}

#[test]
fn with_several_threads_the_first_error_in_order_is_reported() {
    let (model, valid) = wide();
    let late = WIDE - 3;
    let early = 5;

    // A late transaction signed by a key that does not own its input: found only by
    // comparing the recovered signer with the spent output's owner.
    let mut txs = valid.clone();
    let (stolen, thief) = signed_by_another(&model, &txs[late]);
    txs[late] = stolen;
    let late_error = BlockRejection::Transaction {
        index: late,
        source: TxRejection::InputSignature {
            index: 0,
            source: SigError::AddressMismatch {
                expected: model.unspent[&txs[late].inputs[0]].body.address,
                recovered: thief,
            },
        },
    };
    assert_eq!(first_in_order(&model, &txs), Some(late_error.clone()));
    assert_eq!(
        model.reject(model.block_with_fee(txs.clone(), 0)),
        late_error
    );

    // And an earlier transaction that burns no hours: that one is reported.
    let ux = model.unspent[&txs[early].inputs[0]];
    let hours = model.hours(&[ux]);
    txs[early] = model.signed_tx(&[ux], vec![output(model.address(1), ux.body.coins, hours)]);
    let early_error = BlockRejection::Transaction {
        index: early,
        source: TxRejection::ZeroFee,
    };
    assert_eq!(first_in_order(&model, &txs), Some(early_error.clone()));
    assert_eq!(
        model.reject(model.block_with_fee(txs.clone(), 0)),
        early_error
    );

    // The late signature malformed (no key recovered) instead: still the early error,
    // though the late one is found before any rule about the outputs spent.
    txs[late] = valid[late].clone();
    txs[late].sigs[0].0[64] = 7;
    assert_eq!(first_in_order(&model, &txs), Some(early_error.clone()));
    assert_eq!(
        model.reject(model.block_with_fee(txs.clone(), 0)),
        early_error
    );

    // The early transaction's own signature is the first thing wrong in it: an
    // unrecoverable one there comes before the late error too.
    let mut txs = valid.clone();
    txs[late] = signed_by_another(&model, &txs[late]).0;
    txs[early].sigs[0].0[32] |= 0x80;
    let err = model.reject(model.block_with_fee(txs.clone(), 0));
    assert_eq!(Some(err.clone()), first_in_order(&model, &txs));
    assert_eq!(
        err,
        BlockRejection::Transaction {
            index: early,
            source: TxRejection::Invalid(TxError::InvalidSignature {
                index: 0,
                source: SigError::HighBitS,
            }),
        }
    );
}

// ---------------------------------------------------------------------------------------
// Transaction rules, each broken once.

/// Wallet 0's first output after block 1, and its hours at the head.
fn one_output(model: &Model) -> (UxOut, u64) {
    let ux = model.owned(0)[0];
    let hours = model.hours(&[ux]);
    assert!(hours > 1000);
    (ux, hours)
}

#[test]
fn unknown_or_spent_input_is_refused_but_proves_nothing() {
    let model = after_block_1();
    let keys = [model.wallets[0].clone()];
    let unknown = Hash([7; 32]);
    let tx = make_tx(
        vec![unknown],
        vec![output(model.address(1), 1_000_000, 0)],
        &keys,
    );
    let err = model.check_tx(&tx).expect_err("refused");
    assert_eq!(
        err,
        TxRejection::InputNotUnspent {
            index: 0,
            uxid: unknown,
        }
    );
    assert!(!err.proves_sender_misbehaved());

    // The genesis output, spent by block 1.
    let genesis_ux = create_unspents(&model.genesis.header, &model.genesis.body.transactions[0])[0];
    let (ux, _) = one_output(&model);
    let tx = make_tx(
        vec![ux.hash(), genesis_ux.hash()],
        vec![output(model.address(1), 1_000_000, 0)],
        &[model.wallets[0].clone(), model.wallets[0].clone()],
    );
    assert_eq!(
        model.check_tx(&tx),
        Err(TxRejection::InputNotUnspent {
            index: 1,
            uxid: genesis_ux.hash(),
        })
    );
}

#[test]
fn malformed_signature_is_refused() {
    let model = after_block_1();
    let (ux, hours) = one_output(&model);
    let mut tx = model.signed_tx(
        &[ux],
        vec![output(model.address(1), ux.body.coins, hours / 2)],
    );
    model.check_tx(&tx).expect("valid before the change");
    tx.sigs[0].0[64] = 9;
    let err = model.check_tx(&tx).expect_err("refused");
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
        model.check_tx(&tx),
        Err(TxRejection::Invalid(TxError::UnsignedInput { index: 0 }))
    );
}

#[test]
fn signature_by_a_key_not_owning_the_input_is_refused() {
    let model = after_block_1();
    let (ux, hours) = one_output(&model);
    let other = model.owned(2)[0];
    // Input 1 (wallet 0's output) signed by wallet 1.
    let tx = make_tx(
        vec![other.hash(), ux.hash()],
        vec![output(
            model.address(3),
            ux.body.coins + other.body.coins,
            hours / 4,
        )],
        &[model.wallets[2].clone(), model.wallets[1].clone()],
    );
    let err = model.check_tx(&tx).expect_err("refused");
    assert_eq!(
        err,
        TxRejection::InputSignature {
            index: 1,
            source: SigError::AddressMismatch {
                expected: model.address(0),
                recovered: model.address(1),
            },
        }
    );
    assert!(err.proves_sender_misbehaved());
}

#[test]
fn coins_created_or_destroyed_are_refused() {
    let model = after_block_1();
    let (ux, hours) = one_output(&model);
    let coins = ux.body.coins;
    let tx = model.signed_tx(
        &[ux],
        vec![
            output(model.address(1), coins, hours / 4),
            output(model.address(2), 1000, hours / 4),
        ],
    );
    let err = model.check_tx(&tx).expect_err("refused");
    assert_eq!(
        err,
        TxRejection::CoinsCreated {
            input: coins,
            output: coins + 1000,
        }
    );
    assert!(err.proves_sender_misbehaved());

    let tx = model.signed_tx(
        &[ux],
        vec![output(model.address(1), coins - 1000, hours / 2)],
    );
    let err = model.check_tx(&tx).expect_err("refused");
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
    let model = after_block_1();
    let (ux, hours) = one_output(&model);
    let tx = model.signed_tx(
        &[ux],
        vec![
            output(model.address(1), ux.body.coins - 1000, hours),
            output(model.address(2), 1000, 1),
        ],
    );
    let err = model.check_tx(&tx).expect_err("refused");
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
    let model = after_block_1();
    let (ux, hours) = one_output(&model);
    let tx = model.signed_tx(&[ux], vec![output(model.address(1), ux.body.coins, hours)]);
    assert_eq!(model.check_tx(&tx), Err(TxRejection::ZeroFee));
}

#[test]
fn fee_below_the_burn_factor_is_refused() {
    let mut model = after_block_1();
    let (ux, hours) = one_output(&model);
    let required = hours.div_ceil(2);
    // Exactly half burned (rounded up): accepted.
    let tx = model.signed_tx(
        &[ux],
        vec![output(model.address(1), ux.body.coins, hours / 2)],
    );
    assert_eq!(model.check_tx(&tx).expect("valid").fee, required);
    // One hour less burned: refused.
    let tx = model.signed_tx(
        &[ux],
        vec![output(model.address(1), ux.body.coins, hours / 2 + 1)],
    );
    let err = model.check_tx(&tx).expect_err("refused");
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
    model.params.burn_factor = 10;
    model.check_tx(&tx).expect("a tenth is enough");
}

#[test]
fn too_many_decimal_places_are_refused() {
    let mut model = after_block_1();
    let (ux, hours) = one_output(&model);
    let tx = model.signed_tx(
        &[ux],
        vec![
            output(model.address(1), ux.body.coins - 2000, hours / 6),
            output(model.address(2), 1500, hours / 6),
            output(model.address(3), 500, hours / 6),
        ],
    );
    let err = model.check_tx(&tx).expect_err("refused");
    assert_eq!(
        err,
        TxRejection::TooManyDecimals {
            index: 1,
            coins: 1500,
            divisor: 1000,
        }
    );
    assert!(err.proves_sender_misbehaved());
    model.params.max_droplet_precision = 6;
    model.check_tx(&tx).expect("whole droplets allowed");
}

#[test]
fn output_to_the_null_address_is_refused() {
    let model = after_block_1();
    let (ux, hours) = one_output(&model);
    let tx = model.signed_tx(
        &[ux],
        vec![
            output(model.address(1), ux.body.coins - 1000, hours / 4),
            output(null_address(), 1000, hours / 4),
        ],
    );
    let err = model.check_tx(&tx).expect_err("refused");
    assert_eq!(err, TxRejection::NullAddressOutput { index: 1 });
    assert!(err.proves_sender_misbehaved());
}

#[test]
fn transaction_over_the_size_limit_is_refused() {
    let mut model = after_block_1();
    let (ux, hours) = one_output(&model);
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
            output(model.address((i % 4) as usize), coins, hours)
        })
        .collect();
    let tx = model.signed_tx(&[ux], outputs);
    let size = tx.size();
    assert_eq!(size, 49 + 65 + 32 + 900 * 37);
    let err = model.check_tx(&tx).expect_err("refused");
    assert_eq!(err, TxRejection::TooLarge { size, max: 32768 });
    assert!(err.proves_sender_misbehaved());
    model.params.max_transaction_size = size;
    model.check_tx(&tx).expect("valid at the limit");
}

// ---------------------------------------------------------------------------------------
// Coin hours: at the head's time.

#[test]
fn block_1_fee_is_the_genesis_hours_at_the_genesis_time() {
    // Skycoin's block 1: 100 outputs of 1M coins and 1 hour each, fee 99999999999900.
    let model = Model::new(1);
    let genesis_ux = model.owned(0)[0];
    let outputs = (0..100)
        .map(|_| output(Keypair::generate().address(), 1_000_000_000_000, 1))
        .collect();
    let tx = model.signed_tx(&[genesis_ux], outputs);
    assert_eq!(tx.size(), 3846);
    let block = model.block_with_fee(vec![tx], 99_999_999_999_900);
    let verified = model
        .verify(&model.sign(block.clone()))
        .expect("block 1 verifies");
    assert_eq!(verified.fee, 99_999_999_999_900);

    // At the block's own time the genesis output has ten hours' more coin hours.
    let at_block_time = genesis_ux.coin_hours(block.header.time).expect("hours") - 100;
    assert_eq!(at_block_time, 99_999_999_999_900 + 100_000_000 * 10);
    let mut wrong = block;
    wrong.header.fee = at_block_time;
    assert_eq!(
        model.reject(wrong),
        BlockRejection::Fee {
            expected: 99_999_999_999_900,
            found: at_block_time,
        }
    );
}

#[test]
fn hours_accrue_until_the_head_not_the_new_block() {
    let mut model = after_block_1();
    // Block 2 leaves wallet 3's output alone: it accrues from block 1 to block 2.
    let block = model.block(vec![model.transfer(&model.owned(0), &[model.address(1)])]);
    model.apply(block);
    let ux = model.owned(3)[0];
    let at_head = ux.coin_hours(model.header().time).expect("hours");
    let at_block = ux
        .coin_hours(model.header().time + INTERVAL)
        .expect("hours");
    assert!(ux.body.hours < at_head && at_head < at_block);

    let tx = model.signed_tx(
        &[ux],
        vec![output(model.address(0), ux.body.coins, at_head / 2)],
    );
    assert_eq!(
        model.check_tx(&tx).expect("valid").fee,
        at_head - at_head / 2
    );

    // Hours that exist only at the new block's time.
    let greedy = model.signed_tx(
        &[ux],
        vec![output(model.address(0), ux.body.coins, at_head + 1)],
    );
    let block = model.block_with_fee(vec![greedy], 0);
    assert_eq!(
        model.reject(block),
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
    let model = after_block_1();
    let (normal, hours) = one_output(&model);
    let huge = UxOut {
        head: skywire_coin::UxHead {
            time: model.header().time - 3600,
            bk_seq: 0,
        },
        body: skywire_coin::UxBody {
            src_transaction: Hash([1; 32]),
            address: model.address(0),
            coins: 3_600_000_000,
            hours: u64::MAX - 1,
        },
    };
    assert!(matches!(
        huge.coin_hours(model.header().time),
        Err(HoursError::EarnedHoursOverflow { .. })
    ));
    let mut unspent = model.unspent.clone();
    unspent.insert(huge.hash(), huge);
    assert_eq!(UnspentSet::get(&unspent, &huge.hash()), Some(huge));

    let tx = model.signed_tx(
        &[normal, huge],
        vec![output(
            model.address(1),
            normal.body.coins + huge.body.coins,
            hours / 2,
        )],
    );
    let verified =
        verify_transaction(&model.params, &model.header(), &unspent, &tx).expect("valid");
    assert_eq!(verified.fee, hours - hours / 2);
}

/// The next block after `model`'s head: every wallet holding coins sends them on to the
/// next two wallets.
fn onward(model: &Model) -> Block {
    let txs = (0..4)
        .filter(|w| !model.owned(*w).is_empty())
        .map(|w| {
            let to = [model.address((w + 1) % 4), model.address((w + 2) % 4)];
            model.transfer(&model.owned(w), &to)
        })
        .collect();
    model.block(txs)
}

/// `verify_blocks` of `blocks` after `start`'s head, against `start`'s whole set.
fn verify_after(
    start: &Model,
    blocks: &[SignedBlock],
) -> (Vec<skywire_chain::verify::Verified>, Option<BlockRejection>) {
    verify_blocks(
        &start.params,
        &start.header(),
        &start.ux_hash,
        &start.unspent,
        blocks,
    )
}

#[test]
fn verify_blocks_agrees_with_verify_block_in_turn() {
    let start = after_block_1();
    let mut model = start.clone();
    let mut blocks = Vec::new();
    let mut expected = Vec::new();
    for _ in 0..6 {
        let block = model.sign(onward(&model));
        let verified = model.verify(&block).expect("an onward block verifies");
        model.commit_verified(&block, &verified);
        blocks.push(block);
        expected.push(verified);
    }
    // Enough signatures for helper threads to recover ahead.
    let inputs: usize = blocks
        .iter()
        .flat_map(|b| &b.block.body.transactions)
        .map(|tx| tx.inputs.len())
        .sum();
    assert!(inputs >= 2 * MIN_SIGNATURES_PER_THREAD, "{inputs} inputs");
    assert_eq!(verify_after(&start, &blocks), (expected.clone(), None));

    // Block 3 of the run has a transaction whose input another key signed: the three
    // before it pass, and it is refused as `verify_block` refuses it.
    let mut after_three = start.clone();
    for (block, verified) in blocks.iter().zip(&expected).take(3) {
        after_three.commit_verified(block, verified);
    }
    let mut txs = onward(&after_three).body.transactions;
    let forged = Sig::sign(&Keypair::generate(), &txs[1].inner_hash);
    txs[1].sigs[0] = forged;
    let bad = after_three.sign(after_three.block(txs));
    let refusal = after_three
        .verify(&bad)
        .expect_err("a forged input signature");
    assert!(
        matches!(refusal, BlockRejection::Transaction { index: 1, .. }),
        "{refusal:?}"
    );
    let mut run = blocks[..3].to_vec();
    run.push(bad);
    run.extend_from_slice(&blocks[4..]);
    assert_eq!(
        verify_after(&start, &run),
        (expected[..3].to_vec(), Some(refusal))
    );

    // Block 2 is not the publisher's: nothing after it is recovered, and it is refused
    // as `verify_block` refuses it.
    let mut after_two = start.clone();
    for (block, verified) in blocks.iter().zip(&expected).take(2) {
        after_two.commit_verified(block, verified);
    }
    let forged = blocks[2].block.clone().sign_block(&Keypair::generate());
    let refusal = after_two.verify(&forged).expect_err("not the publisher's");
    let mut run = blocks.clone();
    run[2] = forged;
    assert_eq!(
        verify_after(&start, &run),
        (expected[..2].to_vec(), Some(refusal))
    );
    assert_eq!(verify_after(&start, &[]), (Vec::new(), None));
}
