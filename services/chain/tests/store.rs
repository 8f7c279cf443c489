//! The chain store against real databases: every scenario runs on a fresh
//! SQLite file and on a fresh PostgreSQL database. Blocks come from the
//! shared [`Model`], which the store's content is checked against. The store
//! checks no consensus rule, so most blocks here would not verify (their
//! header fee is 0, their hours arbitrary).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{COIN, GENESIS_COINS, Model, Next, key, migrated, on_both_backends, output};
use skywire_chain::store::{
    Balance, BlockChanges, ChainStore, Head, MAX_APPLY_BATCH, MAX_BATCH, MAX_BLOCKS_PER_CALL,
    StoreError,
};
use skywire_chain::sync::SignedHeader;
use skywire_coin::{Encode, Hash, Output, SignedBlock, UxHash, UxOut, create_unspents, sha256};
use skywire_db::Db;

/// The model's wallets: Alice (who receives the genesis output), Bob and
/// Carol.
const WALLETS: usize = 3;
const ALICE: usize = 0;
const BOB: usize = 1;
const CAROL: usize = 2;

async fn apply(store: &ChainStore, next: &Next) -> Result<(), StoreError> {
    store
        .apply(&next.block, &next.spent, &next.created, &next.ux_after)
        .await
}

/// Applies `next` to the store and the model.
async fn apply_ok(store: &ChainStore, model: &mut Model, next: &Next) {
    apply(store, next).await.unwrap();
    model.commit(next);
}

/// Genesis, then block 1 (Alice pays Bob 1,000 coins, keeps the change),
/// then block 2 (Bob pays Carol and keeps change with hours beyond
/// `i64::MAX`; Alice pays Carol: two transactions).
async fn three_blocks(store: &ChainStore) -> Model {
    let mut model = Model::empty(WALLETS);
    let genesis = model.genesis_next();
    apply_ok(store, &mut model, &genesis).await;

    let a = model.address(ALICE);
    let b = model.address(BOB);
    let c = model.address(CAROL);
    let g = model.output_of(&a, 0);
    let tx1 = model.signed_tx(
        &[g],
        vec![
            output(b, 1_000 * COIN, 10),
            output(a, GENESIS_COINS - 1_000 * COIN, 100),
        ],
    );
    let b1 = model.next(vec![tx1], 10);
    apply_ok(store, &mut model, &b1).await;

    let bob_out = model.output_of(&b, 1);
    let alice_out = model.output_of(&a, 1);
    let tx2a = model.signed_tx(
        &[bob_out],
        vec![
            output(c, 400 * COIN, 1),
            output(b, 600 * COIN, u64::MAX - 1),
        ],
    );
    let tx2b = model.signed_tx(
        &[alice_out],
        vec![
            output(c, 5 * COIN, 3),
            output(a, GENESIS_COINS - 1_005 * COIN, 4),
        ],
    );
    let b2 = model.next(vec![tx2a, tx2b], 20);
    apply_ok(store, &mut model, &b2).await;
    model
}

fn encoded(block: &SignedBlock) -> Vec<u8> {
    block.encode().unwrap()
}

fn encoded_all(blocks: &[SignedBlock]) -> Vec<Vec<u8>> {
    blocks.iter().map(encoded).collect()
}

async fn scalar(db: &Db, sql: &'static str) -> i64 {
    match db {
        Db::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
    }
}

/// Runs a statement with blob parameters directly (to plant rows the store
/// would never write).
async fn exec(db: &Db, sql: &'static str, blobs: &[&[u8]]) {
    match db {
        Db::Sqlite(pool) => {
            let mut query = sqlx::query(sql);
            for blob in blobs {
                query = query.bind(blob.to_vec());
            }
            query.execute(pool).await.unwrap();
        }
        Db::Postgres(pool) => {
            let mut query = sqlx::query(sql);
            for blob in blobs {
                query = query.bind(blob.to_vec());
            }
            query.execute(pool).await.unwrap();
        }
    }
}

/// Everything the store holds, to check that a refused apply changed
/// nothing: head, every block's encoding, the unspent set, row counts.
#[derive(Debug, PartialEq)]
struct Snapshot {
    head: Option<Head>,
    blocks: Vec<Vec<u8>>,
    unspent: Vec<UxOut>,
    rows: (i64, i64, i64),
}

async fn snapshot(store: &ChainStore, model: &Model) -> Snapshot {
    let mut unspent = Vec::new();
    for key in &model.wallets {
        unspent.extend(
            store
                .unspent_by_address(&key.address(), 1_000)
                .await
                .unwrap(),
        );
    }
    let db = store.db();
    Snapshot {
        head: store.head().await.unwrap(),
        blocks: encoded_all(&store.blocks(0, 1_000).await.unwrap()),
        unspent,
        rows: (
            scalar(db, "SELECT COUNT(*) FROM chain_blocks").await,
            scalar(db, "SELECT COUNT(*) FROM chain_transactions").await,
            scalar(db, "SELECT COUNT(*) FROM chain_unspent").await,
        ),
    }
    .checked_against(model)
}

impl Snapshot {
    /// Also checks the snapshot against the model.
    fn checked_against(self, model: &Model) -> Self {
        assert_eq!(self.head, model.head());
        assert_eq!(self.blocks, encoded_all(&model.blocks));
        assert_eq!(self.unspent.len(), model.unspent.len());
        for ux in &self.unspent {
            assert_eq!(model.unspent.get(&ux.hash()), Some(ux));
        }
        self
    }
}

on_both_backends!(
    empty_chain,
    apply_moves_the_head,
    blocks_and_transactions_read_back_equal,
    unspent_set_and_balances,
    head_and_unspent_in_one_snapshot,
    large_blocks_are_split_into_batches,
    non_next_blocks_are_refused_and_nothing_changes,
    missing_outputs_are_refused_and_nothing_changes,
    a_batch_applies_whole_and_writes_no_output_it_spends,
    a_batch_with_one_bad_block_changes_nothing,
    inconsistent_arguments_are_refused_and_nothing_changes,
    concurrent_appliers_exactly_one_wins,
    corrupt_rows_are_errors_not_panics,
    migrations_are_idempotent,
);

async fn empty_chain(db: Db) {
    let store = ChainStore::new(db);
    assert_eq!(store.head().await.unwrap(), None);
    assert!(store.block_by_seq(0).await.unwrap().is_none());
    assert!(store.block_by_seq(u64::MAX).await.unwrap().is_none());
    assert!(store.block_by_hash(&Hash::ZERO).await.unwrap().is_none());
    assert!(store.blocks(0, 10).await.unwrap().is_empty());
    assert!(store.headers(0, 10).await.unwrap().is_empty());
    assert!(store.transaction(&Hash::ZERO).await.unwrap().is_none());
    assert!(store.unspent(&[Hash::ZERO]).await.unwrap().is_empty());
    assert!(store.unspent(&[]).await.unwrap().is_empty());
    let a = Model::empty(WALLETS).address(ALICE);
    assert!(store.unspent_by_address(&a, 10).await.unwrap().is_empty());
    assert_eq!(store.balance(&a).await.unwrap(), Balance::default());
}

async fn apply_moves_the_head(db: Db) {
    let store = ChainStore::new(db);
    let mut model = Model::empty(WALLETS);

    let genesis = model.genesis_next();
    apply_ok(&store, &mut model, &genesis).await;
    let head = store.head().await.unwrap().unwrap();
    assert_eq!(head.header, genesis.block.block.header);
    assert_eq!(head.seq(), 0);
    assert_eq!(head.hash(), genesis.block.block.hash());
    assert_eq!(head.ux_hash, genesis.ux_after);
    assert_ne!(head.ux_hash, UxHash::new());

    let g = model.output_of(&model.address(ALICE), 0);
    let tx = model.signed_tx(&[g], vec![output(model.address(BOB), GENESIS_COINS, 1)]);
    let b1 = model.next(vec![tx], 10);
    apply_ok(&store, &mut model, &b1).await;
    let head = store.head().await.unwrap().unwrap();
    assert_eq!(head.header, b1.block.block.header);
    assert_eq!(head.seq(), 1);
    assert_eq!(head.ux_hash, b1.ux_after);
    assert_eq!(Some(head), model.head());
    snapshot(&store, &model).await;
}

async fn blocks_and_transactions_read_back_equal(db: Db) {
    let store = ChainStore::new(db);
    let model = three_blocks(&store).await;
    let all = encoded_all(&model.blocks);

    for (seq, block) in model.blocks.iter().enumerate() {
        let seq = seq as u64;
        let by_seq = store.block_by_seq(seq).await.unwrap().unwrap();
        assert_eq!(encoded(&by_seq), encoded(block));
        assert_eq!(&by_seq, block);
        let by_hash = store
            .block_by_hash(&block.block.hash())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(encoded(&by_hash), encoded(block));
        for tx in &block.block.body.transactions {
            let (read, in_block) = store.transaction(&tx.hash()).await.unwrap().unwrap();
            assert_eq!(read.encode().unwrap(), tx.encode().unwrap());
            assert_eq!(in_block, seq);
        }
    }
    assert!(store.block_by_seq(3).await.unwrap().is_none());
    assert!(store.block_by_hash(&sha256(b"x")).await.unwrap().is_none());
    assert!(store.transaction(&sha256(b"x")).await.unwrap().is_none());

    // Ranges, for sync.
    assert_eq!(encoded_all(&store.blocks(0, 10).await.unwrap()), all);
    assert_eq!(encoded_all(&store.blocks(1, 1).await.unwrap()), all[1..2]);
    assert_eq!(encoded_all(&store.blocks(2, 10).await.unwrap()), all[2..]);
    assert!(store.blocks(3, 10).await.unwrap().is_empty());
    assert!(store.blocks(u64::MAX, 10).await.unwrap().is_empty());
    assert!(store.blocks(0, 0).await.unwrap().is_empty());
    assert_eq!(store.blocks(0, u32::MAX).await.unwrap().len(), 3);
    let headers: Vec<SignedHeader> = model.blocks.iter().map(SignedHeader::from).collect();
    assert_eq!(store.headers(0, 10).await.unwrap(), headers);
    assert_eq!(store.headers(1, 1).await.unwrap(), headers[1..2]);
    assert!(store.headers(3, 10).await.unwrap().is_empty());
}

async fn head_and_unspent_in_one_snapshot(db: Db) {
    let store = ChainStore::new(db);
    let ids = [sha256(b"unknown")];
    // The empty chain: a genesis would extend it, nothing is unspent.
    assert_eq!(
        store.head_and_unspent(0, &ids).await.unwrap(),
        (None, Default::default())
    );
    assert_eq!(
        store.head_and_unspent(1, &ids).await.unwrap(),
        (None, Default::default())
    );

    let model = three_blocks(&store).await;
    let head = model.head();
    assert_eq!(head.map(|h| h.seq()), Some(2));
    // The next block's lookups: unspent, spent, unknown and repeated ids, more
    // than one query takes.
    let mut many: Vec<Hash> = (0..(2 * MAX_BATCH + 100) as u32)
        .map(|i| sha256(&i.to_le_bytes()))
        .collect();
    many.splice(MAX_BATCH..MAX_BATCH, model.unspent.keys().copied());
    many.extend(model.blocks[1].block.body.transactions[0].inputs.iter());
    many.push(many[0]);
    assert_eq!(
        store.head_and_unspent(3, &many).await.unwrap(),
        (head, model.unspent.clone())
    );
    // A block that would not extend the head: the head alone.
    for seq in [0, 2, 4, u64::MAX] {
        assert_eq!(
            store.head_and_unspent(seq, &many).await.unwrap(),
            (head, Default::default()),
            "block {seq}"
        );
    }
}

async fn unspent_set_and_balances(db: Db) {
    let store = ChainStore::new(db);
    let model = three_blocks(&store).await;

    // By id: spent and unknown ids are left out.
    let mut ids: Vec<Hash> = model.unspent.keys().copied().collect();
    let spent: Vec<Hash> = model
        .blocks
        .iter()
        .flat_map(|b| b.block.body.transactions.iter())
        .flat_map(|tx| tx.inputs.iter().copied())
        .collect();
    assert_eq!(spent.len(), 3);
    ids.extend(&spent);
    ids.push(sha256(b"unknown"));
    ids.push(ids[0]); // Duplicates are fine.
    assert_eq!(store.unspent(&ids).await.unwrap(), model.unspent);
    assert!(store.unspent(&spent).await.unwrap().is_empty());

    // More ids than one query takes.
    let mut many: Vec<Hash> = (0..(2 * MAX_BATCH + 100) as u32)
        .map(|i| sha256(&i.to_le_bytes()))
        .collect();
    many.splice(MAX_BATCH..MAX_BATCH, model.unspent.keys().copied());
    assert_eq!(store.unspent(&many).await.unwrap(), model.unspent);

    // By address, oldest first, and balances.
    for key in &model.wallets {
        let address = key.address();
        let expected = model.unspent_of(&address);
        assert_eq!(
            store.unspent_by_address(&address, 100).await.unwrap(),
            expected
        );
        assert_eq!(
            store.unspent_by_address(&address, 1).await.unwrap(),
            expected[..1]
        );
        assert!(
            store
                .unspent_by_address(&address, 0)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            store.balance(&address).await.unwrap(),
            model.balance(&address)
        );
    }
    assert_eq!(
        store.balance(&model.address(CAROL)).await.unwrap(),
        Balance {
            coins: 405 * COIN,
            outputs: 2
        }
    );
    assert_eq!(
        store.balance(&model.address(BOB)).await.unwrap(),
        Balance {
            coins: 600 * COIN,
            outputs: 1
        }
    );
    let nobody = key(9).address();
    assert!(
        store
            .unspent_by_address(&nobody, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.balance(&nobody).await.unwrap(), Balance::default());

    // Hours beyond i64::MAX round-trip exactly.
    let bob_out = store
        .unspent_by_address(&model.address(BOB), 10)
        .await
        .unwrap();
    assert_eq!(bob_out[0].body.hours, u64::MAX - 1);
}

/// A block creating more outputs than one statement inserts, then one
/// spending more than one statement deletes.
async fn large_blocks_are_split_into_batches(db: Db) {
    let store = ChainStore::new(db);
    let mut model = Model::empty(WALLETS);
    let genesis = model.genesis_next();
    apply_ok(&store, &mut model, &genesis).await;

    let a = model.address(ALICE);
    let b = model.address(BOB);
    let count = 2 * MAX_BATCH + 100;
    let g = model.output_of(&a, 0);
    let mut outputs: Vec<Output> = (0..count as u64)
        .map(|i| output(b, COIN + i, u64::MAX - i))
        .collect();
    outputs.push(output(
        a,
        GENESIS_COINS - (count as u64) * COIN - (0..count as u64).sum::<u64>(),
        0,
    ));
    let fan_out = model.next(vec![model.signed_tx(&[g], outputs)], 10);
    apply_ok(&store, &mut model, &fan_out).await;
    assert_eq!(model.unspent.len(), count + 1);
    assert_eq!(store.balance(&b).await.unwrap(), model.balance(&b));
    let ids: Vec<Hash> = model.unspent.keys().copied().collect();
    assert_eq!(store.unspent(&ids).await.unwrap(), model.unspent);

    // Spend MAX_BATCH + 100 of Bob's outputs in one transaction.
    let inputs: Vec<UxOut> = model
        .unspent_of(&b)
        .into_iter()
        .take(MAX_BATCH + 100)
        .collect();
    let coins: u64 = inputs.iter().map(|ux| ux.body.coins).sum();
    let fan_in = model.next(
        vec![model.signed_tx(&inputs, vec![output(a, coins, 1)])],
        10,
    );
    apply_ok(&store, &mut model, &fan_in).await;
    assert_eq!(store.balance(&b).await.unwrap(), model.balance(&b));
    assert_eq!(store.balance(&a).await.unwrap(), model.balance(&a));
    assert_eq!(
        store.unspent_by_address(&b, u32::MAX).await.unwrap().len(),
        count - MAX_BATCH - 100
    );
    assert_eq!(store.head().await.unwrap(), model.head());
}

async fn non_next_blocks_are_refused_and_nothing_changes(db: Db) {
    let store = ChainStore::new(db);
    let mut model = Model::empty(WALLETS);
    let genesis = model.genesis_next();

    // On the empty chain, only a genesis (seq 0, zero previous hash) fits.
    let mut after_genesis = model.clone();
    after_genesis.commit(&genesis);
    let g = after_genesis.output_of(&model.address(ALICE), 0);
    let b1 = after_genesis.next(
        vec![model.signed_tx(&[g], vec![output(model.address(BOB), GENESIS_COINS, 1)])],
        10,
    );
    assert_not_next(apply(&store, &b1).await);
    let mut odd_genesis = genesis.block.block.clone();
    odd_genesis.header.prev_hash = sha256(b"not zero");
    let odd_genesis = model.complete(model.sign(odd_genesis));
    assert_not_next(apply(&store, &odd_genesis).await);
    snapshot(&store, &model).await;

    apply_ok(&store, &mut model, &genesis).await;
    let before = snapshot(&store, &model).await;
    // The genesis again.
    assert_not_next(apply(&store, &genesis).await);
    assert_eq!(snapshot(&store, &model).await, before);

    // A block that skips one: block 2 without block 1.
    let b1 = model.next(
        vec![model.signed_tx(&[g], vec![output(model.address(BOB), GENESIS_COINS, 1)])],
        10,
    );
    let mut ahead = model.clone();
    ahead.commit(&b1);
    let bob_out = ahead.output_of(&model.address(BOB), 1);
    let b2 = ahead.next(
        vec![model.signed_tx(
            &[bob_out],
            vec![output(model.address(CAROL), GENESIS_COINS, 1)],
        )],
        10,
    );
    assert_not_next(apply(&store, &b2).await);

    // The right sequence number on the wrong parent.
    let mut wrong_parent = b1.block.block.clone();
    wrong_parent.header.prev_hash = sha256(b"another chain");
    let wrong_parent = model.complete(model.sign(wrong_parent));
    assert_not_next(apply(&store, &wrong_parent).await);

    // The right parent, but a header committing to another unspent set.
    let mut wrong_set = b1.block.block.clone();
    wrong_set.header.ux_hash = sha256(b"another set");
    let wrong_set = model.complete(model.sign(wrong_set));
    match apply(&store, &wrong_set).await {
        Err(StoreError::HeaderUxHash { seq: 1, .. }) => {}
        other => panic!("expected HeaderUxHash, got {other:?}"),
    }
    assert_eq!(snapshot(&store, &model).await, before);

    // Then block 1 goes in, and block 1 again is refused.
    apply_ok(&store, &mut model, &b1).await;
    let before = snapshot(&store, &model).await;
    assert_not_next(apply(&store, &b1).await);
    assert_eq!(snapshot(&store, &model).await, before);
}

fn assert_not_next(result: Result<(), StoreError>) {
    match result {
        Err(StoreError::NotNext { .. }) => {}
        other => panic!("expected NotNext, got {other:?}"),
    }
}

async fn missing_outputs_are_refused_and_nothing_changes(db: Db) {
    let store = ChainStore::new(db);
    let model = three_blocks(&store).await;
    let before = snapshot(&store, &model).await;
    let c = model.address(CAROL);
    let carol_out = model.output_of(&c, 2);

    // One existing output and one that never was: the existing one must
    // still be unspent afterwards.
    let ghost = sha256(b"never created");
    let mut tx = model.signed_tx(&[carol_out], vec![output(c, carol_out.body.coins, 0)]);
    tx.inputs.push(ghost);
    tx.sigs.push(tx.sigs[0]);
    tx.update_header().unwrap();
    let next = model.next(vec![tx.clone()], 10);
    match apply(&store, &next).await {
        Err(StoreError::MissingOutputs {
            seq: 3,
            spent: 2,
            found: 1,
            missing,
        }) => assert_eq!(missing, ghost),
        other => panic!("expected MissingOutputs, got {other:?}"),
    }
    assert_eq!(snapshot(&store, &model).await, before);
    assert!(store.block_by_seq(3).await.unwrap().is_none());
    assert!(store.transaction(&tx.hash()).await.unwrap().is_none());
    let created: Vec<Hash> = next.created.iter().map(UxOut::hash).collect();
    assert!(store.unspent(&created).await.unwrap().is_empty());
    assert_eq!(
        store.unspent(&[carol_out.hash()]).await.unwrap()[&carol_out.hash()],
        carol_out
    );

    // An output already spent (the genesis output).
    let genesis_out = create_unspents(
        &model.blocks[0].block.header,
        &model.blocks[0].block.body.transactions[0],
    )[0];
    let tx = model.signed_tx(&[genesis_out], vec![output(c, GENESIS_COINS, 0)]);
    let next = model.next(vec![tx], 10);
    match apply(&store, &next).await {
        Err(StoreError::MissingOutputs { missing, .. }) => {
            assert_eq!(missing, genesis_out.hash())
        }
        other => panic!("expected MissingOutputs, got {other:?}"),
    }
    assert_eq!(snapshot(&store, &model).await, before);

    // One output spent by two transactions of the block.
    let tx1 = model.signed_tx(&[carol_out], vec![output(c, carol_out.body.coins, 0)]);
    let tx2 = model.signed_tx(&[carol_out], vec![output(c, carol_out.body.coins, 1)]);
    let next = model.next(vec![tx1, tx2], 10);
    match apply(&store, &next).await {
        Err(StoreError::MissingOutputs {
            spent: 2,
            found: 1,
            missing,
            ..
        }) => assert_eq!(missing, carol_out.hash()),
        other => panic!("expected MissingOutputs, got {other:?}"),
    }
    assert_eq!(snapshot(&store, &model).await, before);
}

/// Applies `nexts` to the store as one batch.
async fn apply_batch(store: &ChainStore, nexts: &[Next]) -> Result<(), StoreError> {
    let changes: Vec<BlockChanges<'_>> = nexts
        .iter()
        .map(|next| BlockChanges {
            block: &next.block,
            spent: &next.spent,
            created: &next.created,
            ux_hash_after: &next.ux_after,
        })
        .collect();
    store.apply_many(&changes).await
}

/// Three blocks after `model`'s head, committed to `model`: Carol moves her
/// output of block 2 to herself, then moves that new output on (spending, in
/// the batch, what the batch created), then Bob moves his change.
fn batch_of_three(model: &mut Model) -> Vec<Next> {
    let carol = model.output_of(&model.address(CAROL), 2);
    let bob = model.output_of(&model.address(BOB), 2);
    let mut nexts: Vec<Next> = Vec::new();
    for block in 0..3 {
        let spend = match block {
            0 => carol,
            1 => nexts[0].created[0],
            _ => bob,
        };
        let to = spend.body.address;
        let tx = model.signed_tx(&[spend], vec![output(to, spend.body.coins, 7)]);
        let next = model.next(vec![tx], 10);
        model.commit(&next);
        nexts.push(next);
    }
    nexts
}

async fn a_batch_applies_whole_and_writes_no_output_it_spends(db: Db) {
    let store = ChainStore::new(db);
    let mut model = three_blocks(&store).await;
    let nexts = batch_of_three(&mut model);
    apply_batch(&store, &nexts).await.unwrap();
    // The store holds exactly the model's chain: blocks 3 to 5, and of the
    // outputs they created, those not spent (block 3's was, by block 4).
    let after = snapshot(&store, &model).await;
    assert_eq!(after.head.unwrap().seq(), 5);
    let moved = nexts[0].created[0].hash();
    assert!(store.unspent(&[moved]).await.unwrap().is_empty());
    for next in &nexts {
        for tx in &next.block.block.body.transactions {
            let (stored, seq) = store.transaction(&tx.hash()).await.unwrap().unwrap();
            assert_eq!((&stored, seq), (tx, next.block.block.header.bk_seq));
        }
    }
    // An empty batch changes nothing.
    apply_batch(&store, &[]).await.unwrap();
    assert_eq!(snapshot(&store, &model).await, after);
}

async fn a_batch_with_one_bad_block_changes_nothing(db: Db) {
    let store = ChainStore::new(db);
    let model = three_blocks(&store).await;
    let before = snapshot(&store, &model).await;

    // Block 5 spends again the output block 4 spent, which block 3 created.
    let mut after = model.clone();
    let mut nexts = batch_of_three(&mut after);
    let twice = nexts[0].created[0];
    let mut shadow = model.clone();
    for next in &nexts[..2] {
        shadow.commit(next);
    }
    let tx = shadow.signed_tx(
        &[twice],
        vec![output(twice.body.address, twice.body.coins, 8)],
    );
    nexts[2] = shadow.next(vec![tx], 10);
    match apply_batch(&store, &nexts).await {
        Err(StoreError::MissingOutputs {
            seq: 5,
            spent: 1,
            found: 0,
            missing,
        }) => assert_eq!(missing, twice.hash()),
        other => panic!("expected MissingOutputs for block 5, got {other:?}"),
    }
    assert_eq!(snapshot(&store, &model).await, before);

    // Block 4 does not follow block 3.
    let mut after = model.clone();
    let mut nexts = batch_of_three(&mut after);
    nexts.swap(1, 2);
    match apply_batch(&store, &nexts).await {
        Err(StoreError::NotNext { seq: 5, head, .. }) => {
            assert_eq!(head, Some((3, nexts[0].block.block.header.hash())));
        }
        other => panic!("expected NotNext for block 5 after 3, got {other:?}"),
    }
    assert_eq!(snapshot(&store, &model).await, before);

    // Block 4's unspent-set hash after it is wrong.
    let mut after = model.clone();
    let mut nexts = batch_of_three(&mut after);
    nexts[1].ux_after = UxHash::new();
    match apply_batch(&store, &nexts).await {
        Err(StoreError::UxHashAfter { seq: 4, .. }) => {}
        other => panic!("expected UxHashAfter for block 4, got {other:?}"),
    }
    assert_eq!(snapshot(&store, &model).await, before);

    // More blocks than a batch may hold.
    let too_many = vec![nexts[0].clone(); MAX_APPLY_BATCH + 1];
    match apply_batch(&store, &too_many).await {
        Err(StoreError::Invalid {
            field: "blocks", ..
        }) => {}
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert_eq!(snapshot(&store, &model).await, before);
}

async fn inconsistent_arguments_are_refused_and_nothing_changes(db: Db) {
    let store = ChainStore::new(db);
    let model = three_blocks(&store).await;
    let before = snapshot(&store, &model).await;
    let c = model.address(CAROL);
    let carol_out = model.output_of(&c, 2);
    let next = model.next(
        vec![model.signed_tx(
            &[carol_out],
            vec![
                output(c, carol_out.body.coins - COIN, 0),
                output(model.address(BOB), COIN, 0),
            ],
        )],
        10,
    );

    // A wrong hash of the set after the block.
    let wrong = UxHash::new();
    match store
        .apply(&next.block, &next.spent, &next.created, &wrong)
        .await
    {
        Err(StoreError::UxHashAfter {
            seq: 3,
            given,
            computed,
        }) => {
            assert_eq!(given, wrong.hash());
            assert_eq!(computed, next.ux_after.hash());
        }
        other => panic!("expected UxHashAfter, got {other:?}"),
    }
    // Created outputs that are not the block's.
    let result = store
        .apply(&next.block, &next.spent, &next.created[..1], &next.ux_after)
        .await;
    assert!(
        matches!(
            result,
            Err(StoreError::Invalid {
                field: "created",
                ..
            })
        ),
        "{result:?}"
    );
    // Spent outputs that are not the block's.
    let result = store
        .apply(&next.block, &[], &next.created, &next.ux_after)
        .await;
    assert!(
        matches!(result, Err(StoreError::Invalid { field: "spent", .. })),
        "{result:?}"
    );
    // Coins beyond what SQL sums.
    let huge = model.next(
        vec![model.signed_tx(&[carol_out], vec![output(c, u64::MAX, 0)])],
        10,
    );
    let result = apply(&store, &huge).await;
    assert!(
        matches!(
            result,
            Err(StoreError::Invalid {
                field: "created coins",
                ..
            })
        ),
        "{result:?}"
    );
    // A transaction already stored: the genesis transaction again (it spends
    // nothing, so nothing else stops it).
    let again = model.next(vec![model.blocks[0].block.body.transactions[0].clone()], 10);
    match apply(&store, &again).await {
        Err(StoreError::Duplicate {
            seq: 3,
            what: "transaction",
            ..
        }) => {}
        other => panic!("expected Duplicate, got {other:?}"),
    }
    assert_eq!(snapshot(&store, &model).await, before);

    // The same block, right, goes in.
    let mut model = model;
    apply_ok(&store, &mut model, &next).await;
    snapshot(&store, &model).await;
}

async fn concurrent_appliers_exactly_one_wins(db: Db) {
    let store = ChainStore::new(db);
    let mut model = Model::empty(WALLETS);
    let genesis = model.genesis_next();
    apply_ok(&store, &mut model, &genesis).await;
    let a = model.address(ALICE);

    for round in 1..=5u64 {
        // Two different children of the head, spending the same output.
        let out = *model.unspent_of(&a).last().unwrap();
        let coins = out.body.coins;
        let to_bob = model.next(
            vec![model.signed_tx(
                &[out],
                vec![
                    output(model.address(BOB), COIN, 0),
                    output(a, coins - COIN, 0),
                ],
            )],
            10,
        );
        let to_carol = model.next(
            vec![model.signed_tx(
                &[out],
                vec![
                    output(model.address(CAROL), COIN, 0),
                    output(a, coins - COIN, 0),
                ],
            )],
            20,
        );
        let tasks: Vec<_> = [to_bob.clone(), to_carol.clone()]
            .into_iter()
            .map(|next| {
                let store = store.clone();
                tokio::spawn(async move { apply(&store, &next).await })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        let winner = match (&results[0], &results[1]) {
            (Ok(()), Err(StoreError::NotNext { .. })) => &to_bob,
            (Err(StoreError::NotNext { .. }), Ok(())) => &to_carol,
            other => panic!("round {round}: expected one winner, got {other:?}"),
        };
        model.commit(winner);
        let head = store.head().await.unwrap().unwrap();
        assert_eq!(head.seq(), round);
        assert_eq!(head.header, winner.block.block.header);
        snapshot(&store, &model).await;
    }
}

async fn corrupt_rows_are_errors_not_panics(db: Db) {
    let store = ChainStore::new(db.clone());
    let model = three_blocks(&store).await;
    let b1 = &model.blocks[1];
    let tx1 = &b1.block.body.transactions[0];

    // A transaction's bytes.
    exec(
        &db,
        "UPDATE chain_transactions SET tx = $1 WHERE txid = $2",
        &[&[1, 2, 3], &tx1.hash().0],
    )
    .await;
    assert_corrupt(store.transaction(&tx1.hash()).await);
    // Another transaction's (valid) bytes under this id.
    let other = model.blocks[2].block.body.transactions[0].encode().unwrap();
    exec(
        &db,
        "UPDATE chain_transactions SET tx = $1 WHERE txid = $2",
        &[&other, &tx1.hash().0],
    )
    .await;
    assert_corrupt(store.transaction(&tx1.hash()).await);

    // A body that is not the header's.
    let other_body = model.blocks[2].block.body.encode().unwrap();
    exec(
        &db,
        "UPDATE chain_blocks SET body = $1 WHERE seq = 1",
        &[&other_body],
    )
    .await;
    assert_corrupt(store.block_by_seq(1).await);
    assert_corrupt(store.blocks(0, 10).await);
    assert!(store.block_by_seq(2).await.unwrap().is_some());

    // A header that is not the row's (its hash, and then its seq).
    exec(
        &db,
        "UPDATE chain_blocks SET header = $1 WHERE seq = 2",
        &[&[7; 124]],
    )
    .await;
    assert_corrupt(store.block_by_seq(2).await);
    assert_corrupt(store.block_by_hash(&model.blocks[2].block.hash()).await);
    assert_corrupt(store.headers(0, 10).await);
    assert_corrupt(store.head().await);
    let b0_header = model.blocks[0].block.header.encode().unwrap();
    exec(
        &db,
        "UPDATE chain_blocks SET header = $1 WHERE seq = 2",
        &[&b0_header],
    )
    .await;
    assert_corrupt(store.headers(2, 10).await);
    assert_corrupt(store.head().await);

    // Unspent outputs whose fields no longer hash to their uxid, or whose
    // address is not one.
    let c = model.address(CAROL);
    let carol_outs = model.unspent_of(&c);
    exec(
        &db,
        "UPDATE chain_unspent SET coins = coins + 1 WHERE uxid = $1",
        &[&carol_outs[0].hash().0],
    )
    .await;
    assert_corrupt(store.unspent(&[carol_outs[0].hash()]).await);
    assert_corrupt(store.unspent_by_address(&c, 10).await);
    let b = model.address(BOB);
    let bob_out = model.unspent_of(&b)[0];
    exec(
        &db,
        "UPDATE chain_unspent SET address = '1111' WHERE uxid = $1",
        &[&bob_out.hash().0],
    )
    .await;
    assert_corrupt(store.unspent(&[bob_out.hash()]).await);
    // The head row's ux_hash cut short (SQLite: with its checks lifted).
    match &db {
        Db::Sqlite(pool) => {
            let mut conn = pool.acquire().await.unwrap();
            for sql in [
                "PRAGMA ignore_check_constraints = ON",
                "UPDATE chain_head SET ux_hash = x'0102'",
                "PRAGMA ignore_check_constraints = OFF",
            ] {
                sqlx::query(sql).execute(&mut *conn).await.unwrap();
            }
        }
        Db::Postgres(pool) => {
            for sql in [
                "ALTER TABLE chain_head DROP CONSTRAINT chain_head_ux_hash_check",
                "UPDATE chain_head SET ux_hash = '\\x0102'",
            ] {
                sqlx::query(sql).execute(pool).await.unwrap();
            }
        }
    }
    assert_corrupt(store.head().await);
    // Applying on a corrupt head is refused too.
    let a = model.address(ALICE);
    let out = model.unspent_of(&a)[0];
    let next = model.next(
        vec![model.signed_tx(&[out], vec![output(a, out.body.coins, 0)])],
        10,
    );
    assert_corrupt(apply(&store, &next).await);
}

fn assert_corrupt<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    match result {
        Err(StoreError::Corrupt { .. }) => {}
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

async fn migrations_are_idempotent(db: Db) {
    let store = ChainStore::new(db.clone());
    let model = three_blocks(&store).await;
    db.migrate(&ChainStore::migrations()).await.unwrap();
    db.migrate(&ChainStore::migrations()).await.unwrap();
    assert_eq!(
        scalar(&db, "SELECT COUNT(*) FROM _sqlx_migrations_chain").await,
        1
    );
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM chain_head").await, 1);
    snapshot(&store, &model).await;
}

/// Closing the pool and reopening the same SQLite file: the head and the
/// unspent set are those of the last committed block.
#[tokio::test]
async fn sqlite_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.db");
    let model = {
        let db = migrated(Db::sqlite_file(&path).await.unwrap()).await;
        let store = ChainStore::new(db.clone());
        let model = three_blocks(&store).await;
        db.close().await;
        model
    };
    let db = migrated(Db::sqlite_file(&path).await.unwrap()).await;
    let store = ChainStore::new(db);
    snapshot(&store, &model).await;
    assert_eq!(
        store.blocks(0, MAX_BLOCKS_PER_CALL).await.unwrap().len(),
        model.blocks.len()
    );
}
