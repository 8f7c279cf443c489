//! [`Chain::apply`], verifier and store together, on a fresh SQLite file and on a fresh
//! PostgreSQL database: valid blocks built by the shared [`Model`] go in and the store ends
//! up holding the model's chain; invalid, stale and racing blocks are refused with the
//! right error, blame put where it belongs, and nothing written.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{GENESIS_COINS, GENESIS_TIME, Model, key, make_tx, on_both_backends};
use skywire_chain::chain::{BatchError, Chain, ChainError};
use skywire_chain::store::{
    ChainStore, MAX_APPLY_BATCH, MAX_BLOCKS_PER_CALL, MAX_UNSPENT_PER_CALL, StoreError,
};
use skywire_chain::verify::{BlockRejection, TxRejection, Verified};
use skywire_coin::{Block, Hash, SigError, SignedBlock, Transaction, UxOut};
use skywire_db::Db;
use skywire_identity::Keypair;

/// Wallets of the model: enough for blocks of several transactions.
const WALLETS: usize = 4;

/// A key that is not the publisher's.
fn intruder() -> Keypair {
    key(99)
}

/// The chain on `db` with the model's rules and genesis, and the model, both empty.
fn empty(db: Db) -> (Chain, Model) {
    let model = Model::empty(WALLETS);
    let chain = Chain::new(ChainStore::new(db), model.params, model.genesis.clone());
    (chain, model)
}

/// The chain on `db` and the model, both holding the genesis block.
async fn started(db: Db) -> (Chain, Model) {
    let (chain, mut model) = empty(db);
    let genesis = model.sign(model.genesis.clone());
    let verified = chain
        .apply(&genesis)
        .await
        .expect("the genesis is accepted");
    model.commit_verified(&genesis, &verified);
    (chain, model)
}

/// The chain on `db` and the model, both holding the genesis block and `blocks` blocks of
/// [`busy_block`].
async fn grown(db: Db, blocks: u64) -> (Chain, Model) {
    let (chain, mut model) = started(db).await;
    for _ in 0..blocks {
        let block = busy_block(&model);
        accept(&chain, &mut model, block).await;
    }
    (chain, model)
}

/// Wallet `wallet` sends all its coins to the next three wallets.
fn spread(model: &Model, wallet: usize) -> Transaction {
    let to: Vec<_> = (1..WALLETS)
        .map(|i| model.address((wallet + i) % WALLETS))
        .collect();
    model.transfer(&model.owned(wallet), &to)
}

/// The next block, valid: every wallet that holds coins spreads them ([`spread`]).
fn busy_block(model: &Model) -> Block {
    let txs = (0..WALLETS)
        .filter(|w| !model.owned(*w).is_empty())
        .map(|w| spread(model, w))
        .collect();
    model.block(txs)
}

/// Signs `block`, applies it through `chain` and to the model (which checks what the
/// verifier said of it), then checks that the store holds the model's chain.
async fn accept(chain: &Chain, model: &mut Model, block: Block) -> Verified {
    let signed = model.sign(block);
    let verified = chain.apply(&signed).await.expect("the block is accepted");
    model.commit_verified(&signed, &verified);
    assert_holds(chain, model).await;
    verified
}

/// Applies `block` through `chain`, expecting a refusal; checks that the store still holds
/// the model's chain and nothing of the block.
async fn refuse(chain: &Chain, model: &Model, block: &SignedBlock) -> ChainError {
    let err = chain
        .apply(block)
        .await
        .expect_err("the block must be refused");
    assert_holds(chain, model).await;
    let store = chain.store();
    if !model.blocks.contains(block) {
        assert!(
            store
                .block_by_hash(&block.block.hash())
                .await
                .unwrap()
                .is_none()
        );
    }
    let created: Vec<Hash> = model
        .complete(block.clone())
        .created
        .iter()
        .map(UxOut::hash)
        .collect();
    for id in store.unspent(&created).await.unwrap().keys() {
        assert!(model.unspent.contains_key(id), "{id} was created");
    }
    err
}

/// The store holds the model's chain: head, blocks, unspent set (by id and by address),
/// balances.
async fn assert_holds(chain: &Chain, model: &Model) {
    let store = chain.store();
    assert_eq!(chain.head().await.unwrap(), model.head());
    assert_eq!(
        store.blocks(0, MAX_BLOCKS_PER_CALL).await.unwrap(),
        model.blocks
    );
    let ids: Vec<Hash> = model.unspent.keys().copied().collect();
    assert_eq!(store.unspent(&ids).await.unwrap(), model.unspent);
    let mut by_address = 0;
    for wallet in &model.wallets {
        let address = wallet.address();
        let outputs = store
            .unspent_by_address(&address, MAX_UNSPENT_PER_CALL)
            .await
            .unwrap();
        assert_eq!(outputs, model.unspent_of(&address));
        by_address += outputs.len();
        assert_eq!(
            store.balance(&address).await.unwrap(),
            model.balance(&address)
        );
    }
    // Every output is a wallet's: the set by address is the whole set.
    assert_eq!(by_address, model.unspent.len());
}

/// The rejection inside `err`.
fn rejection(err: &ChainError) -> &BlockRejection {
    match err {
        ChainError::Rejected(rejection) => rejection,
        ChainError::Store(e) => panic!("expected a rejection, got the store's {e:?}"),
    }
}

on_both_backends!(
    ten_blocks_through_apply_leave_the_models_chain,
    block_with_one_badly_signed_transaction_is_refused,
    block_not_signed_by_the_publisher_is_refused,
    block_spending_an_output_spent_earlier_is_refused,
    block_built_on_a_stale_head_is_refused_without_blame,
    only_the_configured_genesis_starts_the_chain,
    concurrent_applies_of_two_next_blocks_exactly_one_wins,
    a_batch_applies_as_its_blocks_one_by_one,
    a_batch_stops_at_its_first_invalid_block,
);

async fn ten_blocks_through_apply_leave_the_models_chain(db: Db) {
    let (chain, mut model) = started(db).await;
    assert_holds(&chain, &model).await;
    assert_eq!(chain.head().await.unwrap().unwrap().seq(), 0);
    for seq in 1..=10u64 {
        let block = busy_block(&model);
        let txs = block.body.transactions.len();
        // Block 1 spends the genesis output; from block 2 on, several wallets pay.
        assert!(seq == 1 || txs >= 3, "block {seq} has {txs} transactions");
        let header = block.header;
        let verified = accept(&chain, &mut model, block).await;
        assert_eq!(verified.fee, header.fee);
        assert!(verified.fee > 0);
        let head = chain.head().await.unwrap().unwrap();
        assert_eq!(head.seq(), seq);
        assert_eq!(head.header, header);
        assert_eq!(head.ux_hash, verified.ux_hash_after);
    }
    assert_eq!(model.blocks.len(), 11);
    let coins: u64 = model.unspent.values().map(|ux| ux.body.coins).sum();
    assert_eq!(coins, GENESIS_COINS);

    // Everything spent is gone from the store's set; every transaction reads back.
    let store = chain.store();
    let spent: Vec<Hash> = model
        .blocks
        .iter()
        .flat_map(|b| b.block.body.transactions.iter())
        .flat_map(|tx| tx.inputs.iter().copied())
        .collect();
    assert!(spent.len() > 30);
    assert!(store.unspent(&spent).await.unwrap().is_empty());
    for (seq, block) in model.blocks.iter().enumerate() {
        for tx in &block.block.body.transactions {
            let (read, in_block) = store.transaction(&tx.hash()).await.unwrap().unwrap();
            assert_eq!(&read, tx);
            assert_eq!(in_block, seq as u64);
        }
    }
}

async fn block_with_one_badly_signed_transaction_is_refused(db: Db) {
    let (chain, mut model) = grown(db, 3).await;
    // Wallet 1's transaction, its first input signed by wallet 3, the others by wallet 1.
    let spend = model.owned(1);
    let good = spread(&model, 1);
    let mut keys = vec![model.wallets[1].clone(); spend.len()];
    keys[0] = model.wallets[3].clone();
    let bad = make_tx(good.inputs.clone(), good.outputs.clone(), &keys);
    let block = model.block(vec![spread(&model, 0), bad, spread(&model, 2)]);
    let err = refuse(&chain, &model, &model.sign(block)).await;
    assert_eq!(
        rejection(&err),
        &BlockRejection::Transaction {
            index: 1,
            source: TxRejection::InputSignature {
                index: 0,
                source: SigError::AddressMismatch {
                    expected: model.address(1),
                    recovered: model.address(3),
                },
            },
        }
    );
    assert!(err.proves_sender_misbehaved());

    // With the transaction signed right, the block goes in.
    let block = model.block(vec![spread(&model, 0), good, spread(&model, 2)]);
    accept(&chain, &mut model, block).await;
}

async fn block_not_signed_by_the_publisher_is_refused(db: Db) {
    let (chain, mut model) = grown(db, 2).await;
    let block = busy_block(&model);
    let err = refuse(&chain, &model, &block.clone().sign_block(&intruder())).await;
    assert_eq!(
        rejection(&err),
        &BlockRejection::Signature(SigError::PublicKeyMismatch {
            expected: model.publisher.public_key(),
            recovered: intruder().public_key(),
        })
    );
    assert!(err.proves_sender_misbehaved());

    // The publisher's signature over another block does not carry over.
    let mut tampered = model.sign(block.clone());
    tampered.block.header.time += 1;
    let err = refuse(&chain, &model, &tampered).await;
    assert!(
        matches!(rejection(&err), BlockRejection::Signature(_)),
        "{err}"
    );
    assert!(err.proves_sender_misbehaved());

    accept(&chain, &mut model, block).await;
}

async fn block_spending_an_output_spent_earlier_is_refused(db: Db) {
    let (chain, mut model) = grown(db, 2).await;
    // An output of wallet 2 that the next block spends.
    let earlier = model.owned(2)[0];
    let block = busy_block(&model);
    accept(&chain, &mut model, block).await;
    assert!(!model.unspent.contains_key(&earlier.hash()));

    let valid = spread(&model, 0);
    let again = model.transfer(&[earlier], &[model.address(1)]);
    let fee = model.fee(&valid, &model.owned(0)) + model.fee(&again, &[earlier]);
    let block = model.block_with_fee(vec![valid.clone(), again], fee);
    let err = refuse(&chain, &model, &model.sign(block)).await;
    assert_eq!(
        rejection(&err),
        &BlockRejection::Transaction {
            index: 1,
            source: TxRejection::InputNotUnspent {
                index: 0,
                uxid: earlier.hash(),
            },
        }
    );
    // Alone it could be a race; inside a block that names its head, it is not.
    assert!(err.proves_sender_misbehaved());
    // Nothing of the valid transaction went in either.
    assert!(
        chain
            .store()
            .transaction(&valid.hash())
            .await
            .unwrap()
            .is_none()
    );

    let block = model.block(vec![valid]);
    accept(&chain, &mut model, block).await;
}

async fn block_built_on_a_stale_head_is_refused_without_blame(db: Db) {
    let (chain, mut model) = grown(db, 2).await;
    let stale_model = model.clone();
    let first = busy_block(&model);
    // Another block on the same head, spending some of the same outputs.
    let second = model.sign(model.block(vec![spread(&model, 1)]));
    let first = model.sign(first);
    let verified = chain.apply(&first).await.expect("the first block goes in");
    model.commit_verified(&first, &verified);
    assert_holds(&chain, &model).await;

    for stale in [&second, &first] {
        let err = refuse(&chain, &model, stale).await;
        assert_eq!(
            rejection(&err),
            &BlockRejection::Sequence { head: 3, found: 3 }
        );
        assert!(!err.proves_sender_misbehaved());
    }
    // Older still: a block the model had before the first.
    let err = refuse(&chain, &model, &stale_model.blocks[2]).await;
    assert_eq!(
        rejection(&err),
        &BlockRejection::Sequence { head: 3, found: 2 }
    );
    assert!(!err.proves_sender_misbehaved());

    // The chain goes on from the new head.
    let block = busy_block(&model);
    accept(&chain, &mut model, block).await;
}

async fn only_the_configured_genesis_starts_the_chain(db: Db) {
    let (chain, mut model) = empty(db);
    assert_eq!(chain.genesis(), &model.genesis);
    assert_eq!(chain.params(), &model.params);
    assert_eq!(chain.head().await.unwrap(), None);

    // Another genesis, signed by the publisher: another chain.
    let variants = [
        Block::genesis(model.address(1), GENESIS_COINS, GENESIS_TIME),
        Block::genesis(model.address(0), GENESIS_COINS + 1000, GENESIS_TIME),
        Block::genesis(model.address(0), GENESIS_COINS, GENESIS_TIME + 1),
    ];
    for other in variants {
        let err = refuse(&chain, &model, &model.sign(other.clone())).await;
        assert_eq!(
            rejection(&err),
            &BlockRejection::GenesisMismatch {
                expected: model.genesis.hash(),
                found: other.hash(),
            }
        );
        assert!(err.proves_sender_misbehaved());
    }

    // The configured genesis, not signed by the publisher.
    let forged = model.genesis.clone().sign_block(&intruder());
    let err = refuse(&chain, &model, &forged).await;
    assert!(
        matches!(rejection(&err), BlockRejection::Signature(_)),
        "{err}"
    );
    assert!(err.proves_sender_misbehaved());

    // Block 1 before the genesis: early, not a lie (unless forged).
    let mut ahead = model.clone();
    ahead.commit(&ahead.genesis_next());
    let block_1 = busy_block(&ahead);
    let err = refuse(&chain, &model, &ahead.sign(block_1.clone())).await;
    match &err {
        ChainError::Store(StoreError::NotNext {
            seq: 1,
            head: None,
            prev_hash,
        }) => assert_eq!(*prev_hash, model.genesis.hash()),
        other => panic!("expected NotNext, got {other:?}"),
    }
    assert!(!err.proves_sender_misbehaved());
    let err = refuse(&chain, &model, &block_1.clone().sign_block(&intruder())).await;
    assert!(
        matches!(rejection(&err), BlockRejection::Signature(_)),
        "{err}"
    );
    assert!(err.proves_sender_misbehaved());

    // The configured genesis goes in, once.
    let genesis = model.sign(model.genesis.clone());
    let verified = chain
        .apply(&genesis)
        .await
        .expect("the genesis is accepted");
    assert!(verified.spent.is_empty());
    assert_eq!(verified.fee, 0);
    model.commit_verified(&genesis, &verified);
    assert_holds(&chain, &model).await;
    let err = refuse(&chain, &model, &genesis).await;
    assert_eq!(
        rejection(&err),
        &BlockRejection::Sequence { head: 0, found: 0 }
    );
    assert!(!err.proves_sender_misbehaved());

    // Then block 1.
    accept(&chain, &mut model, block_1).await;
}

async fn concurrent_applies_of_two_next_blocks_exactly_one_wins(db: Db) {
    let (chain, mut model) = grown(db, 1).await;
    for round in 0..12usize {
        // Two different valid next blocks: in even rounds they spend the same outputs, in
        // odd rounds different ones.
        let payers: Vec<usize> = (0..WALLETS)
            .map(|i| (round + i) % WALLETS)
            .filter(|w| !model.owned(*w).is_empty())
            .collect();
        let (w1, w2) = if round % 2 == 0 {
            (payers[0], payers[0])
        } else {
            (payers[0], payers[1])
        };
        // Each pays two other wallets, so that at least two always hold coins.
        let pay = |w: usize, skip: usize| {
            let to = [1, 2].map(|i| model.address((w + skip + i) % WALLETS));
            model.transfer(&model.owned(w), &to)
        };
        let first = model.block(vec![pay(w1, 0)]);
        let second = model.block(vec![pay(w2, 1)]);
        let blocks = [model.sign(first), model.sign(second)];
        assert_ne!(blocks[0], blocks[1]);

        let tasks: Vec<_> = blocks
            .iter()
            .cloned()
            .map(|block| {
                let chain = chain.clone();
                tokio::spawn(async move { chain.apply(&block).await })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        let (winner, verified, err) = match results.as_slice() {
            [Ok(verified), Err(err)] => (&blocks[0], verified, err),
            [Err(err), Ok(verified)] => (&blocks[1], verified, err),
            other => panic!("round {round}: expected exactly one winner, got {other:?}"),
        };
        assert!(
            !err.proves_sender_misbehaved(),
            "round {round}: the loser is blamed: {err}"
        );
        // Refused by the store (checked before the winner's write) or by the verifier
        // (after it): either way for not extending the head.
        assert!(
            matches!(
                err,
                ChainError::Store(StoreError::NotNext { .. })
                    | ChainError::Rejected(BlockRejection::Sequence { .. })
            ),
            "round {round}: {err:?}"
        );
        model.commit_verified(winner, verified);
        assert_holds(&chain, &model).await;
    }
    assert_eq!(chain.head().await.unwrap().unwrap().seq(), 13);
}

#[test]
fn only_rejections_can_blame_the_sender() {
    assert!(ChainError::Rejected(BlockRejection::Empty).proves_sender_misbehaved());
    assert!(
        !ChainError::Rejected(BlockRejection::Sequence { head: 4, found: 4 })
            .proves_sender_misbehaved()
    );
    let store_errors = [
        StoreError::NotNext {
            seq: 5,
            prev_hash: Hash::ZERO,
            head: Some((5, Hash::ZERO)),
        },
        StoreError::MissingOutputs {
            seq: 5,
            spent: 1,
            found: 0,
            missing: Hash::ZERO,
        },
        StoreError::Corrupt {
            row: "head".to_owned(),
            reason: "test".to_owned(),
        },
        StoreError::Db(sqlx::Error::PoolTimedOut),
    ];
    for error in store_errors {
        let err = ChainError::from(error);
        assert!(!err.proves_sender_misbehaved(), "{err}");
    }
}

/// `n` valid [`busy_block`]s after `model`'s head, signed and committed to `model`, with
/// what the verifier says of each. Each spends what the one before created.
fn busy_blocks(model: &mut Model, n: usize) -> (Vec<SignedBlock>, Vec<Verified>) {
    let mut blocks = Vec::new();
    let mut verified = Vec::new();
    for _ in 0..n {
        let block = model.sign(busy_block(model));
        let v = model.verify(&block).expect("a busy block verifies");
        model.commit_verified(&block, &v);
        blocks.push(block);
        verified.push(v);
    }
    (blocks, verified)
}

async fn a_batch_applies_as_its_blocks_one_by_one(db: Db) {
    let (chain, mut model) = grown(db, 1).await;
    let (blocks, expected) = busy_blocks(&mut model, 3);
    let verified = chain.apply_many(&blocks).await.expect("the batch applies");
    assert_eq!(verified, expected);
    assert_holds(&chain, &model).await;
    // Across the batches of a longer run too (busy blocks halve the hours: ~40 at most).
    let (blocks, expected) = busy_blocks(&mut model, MAX_APPLY_BATCH + 2);
    let verified = chain.apply_many(&blocks).await.expect("the batches apply");
    assert_eq!(verified, expected);
    assert_holds(&chain, &model).await;
}

async fn a_batch_stops_at_its_first_invalid_block(db: Db) {
    let (chain, model) = grown(db, 1).await;
    let mut valid = model.clone();
    // An output of wallet 2 that the batch's first block spends.
    let earlier = valid.owned(2)[0];
    let (mut blocks, expected) = busy_blocks(&mut valid, 2);
    // The third block spends it again: unspent before the batch, not after its first block.
    let again = valid.transfer(&[earlier], &[valid.address(1)]);
    let fee = valid.fee(&again, &[earlier]);
    blocks.push(valid.sign(valid.block_with_fee(vec![again], fee)));
    let BatchError { applied, error } = chain
        .apply_many(&blocks)
        .await
        .expect_err("the third block is refused");
    assert_eq!(applied, expected);
    assert_eq!(
        rejection(&error),
        &BlockRejection::Transaction {
            index: 0,
            source: TxRejection::InputNotUnspent {
                index: 0,
                uxid: earlier.hash(),
            },
        }
    );
    assert!(error.proves_sender_misbehaved());
    // The two blocks before it are applied, nothing of it.
    assert_holds(&chain, &valid).await;
    assert!(
        chain
            .store()
            .block_by_hash(&blocks[2].block.hash())
            .await
            .unwrap()
            .is_none()
    );

    // A batch that does not extend the head: refused whole, without blame.
    let BatchError { applied, error } = chain
        .apply_many(&blocks[..2])
        .await
        .expect_err("the head is past them");
    assert!(applied.is_empty());
    assert!(!error.proves_sender_misbehaved(), "{error}");
    assert_holds(&chain, &valid).await;
}
