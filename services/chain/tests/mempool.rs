//! The `txrelay/1` transaction pool, fed with real signed transactions built by the shared
//! [`Model`] and checked by `verify_transaction` against its head: insertion and lookups,
//! duplicates and conflicts, eviction by fee rate when full, expiry, removal after a block,
//! selection for the next block, and orphans waiting for the block that creates their
//! inputs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::Model;
use skywire_chain::mempool::{
    DEFAULT_EXPIRY, DEFAULT_ORPHAN_EXPIRY, Inserted, Mempool, MempoolConfig, MempoolError,
    SMALLEST_TRANSACTION,
};
use skywire_chain::verify::{TxRejection, TxVerified};
use skywire_coin::{Block, Hash, Output, Transaction, UxOut};
use skywire_identity::Address;

/// Wallets of the model.
const WALLETS: usize = 4;
/// Outputs block 1 spreads the genesis coins over: one per transaction of a test.
const OUTPUTS: usize = 24;
/// The time of the first insertion, in milliseconds on the pool's clock.
const NOW: u64 = 1_000_000;
/// One second on the pool's clock.
const SECOND: u64 = 1000;
/// The size of a transaction of one input and `n` outputs.
const fn size_with_outputs(n: usize) -> usize {
    49 + 65 + 32 + 37 * n
}
/// One input, one output.
const ONE_OUTPUT: usize = size_with_outputs(1);
/// One input, two outputs.
const TWO_OUTPUTS: usize = size_with_outputs(2);

/// A chain after block 1, which spreads the genesis coins over [`OUTPUTS`] outputs.
struct Fixture {
    model: Model,
    /// Block 1's outputs, sorted by id.
    coins: Vec<UxOut>,
    /// The fewest hours any of them holds at the head.
    min_hours: u64,
}

impl Fixture {
    fn new() -> Self {
        let mut model = Model::new(WALLETS);
        let to: Vec<Address> = (0..OUTPUTS).map(|i| model.address(i % WALLETS)).collect();
        let split = model.transfer(&model.owned(0), &to);
        let block = model.block(vec![split]);
        model.apply(block);
        let mut coins: Vec<UxOut> = model.unspent.values().copied().collect();
        coins.sort_by_key(UxOut::hash);
        assert_eq!(coins.len(), OUTPUTS);
        let min_hours = coins
            .iter()
            .map(|ux| model.hours(&[*ux]))
            .min()
            .expect("outputs");
        Self {
            model,
            coins,
            min_hours,
        }
    }

    /// A fee of `percent` % of [`Fixture::min_hours`]: the same for every output, and valid
    /// for any of them from 55 % on (the burn factor asks for half of its hours, which
    /// barely differ).
    fn fee(&self, percent: u64) -> u64 {
        self.min_hours / 100 * percent
    }

    /// A valid transaction spending output `input` to `outputs` outputs and burning
    /// exactly [`Fixture::fee`]`(percent)`, with what the verifier says of it.
    fn spend(&self, input: usize, percent: u64, outputs: usize) -> (Transaction, TxVerified) {
        let (tx, verified) = spend_exact(
            &self.model,
            &[self.coins[input]],
            self.fee(percent),
            outputs,
        );
        assert_eq!(tx.size(), size_with_outputs(outputs));
        (tx, verified)
    }

    /// The ids of `spend`'s transaction.
    fn id(&self, input: usize, percent: u64, outputs: usize) -> Hash {
        self.spend(input, percent, outputs).0.hash()
    }
}

/// A transaction spending `spend` to `outputs` outputs (wallets in turn) that burns exactly
/// `fee` hours at `model`'s head, checked by the verifier.
fn spend_exact(
    model: &Model,
    spend: &[UxOut],
    fee: u64,
    outputs: usize,
) -> (Transaction, TxVerified) {
    let n = outputs as u64;
    let coins: u64 = spend.iter().map(|ux| ux.body.coins).sum();
    let keep = model.hours(spend) - fee;
    let per_coins = coins / n / 1000 * 1000;
    let per_hours = keep / n;
    // Hours differ by output so that no two outputs share an id.
    let mut outs: Vec<Output> = (1..outputs)
        .map(|i| common::output(model.address(i % WALLETS), per_coins, per_hours - i as u64))
        .collect();
    let rest_coins = coins - outs.iter().map(|o| o.coins).sum::<u64>();
    let rest_hours = keep - outs.iter().map(|o| o.hours).sum::<u64>();
    outs.insert(0, common::output(model.address(0), rest_coins, rest_hours));
    let tx = model.signed_tx(spend, outs);
    let verified = model.check_tx(&tx).expect("a valid transaction");
    assert_eq!(verified.fee, fee);
    (tx, verified)
}

/// A config with the pool limits given and the defaults otherwise.
fn limits(max_transactions: usize, max_bytes: usize) -> MempoolConfig {
    MempoolConfig {
        max_transactions,
        max_bytes,
        ..MempoolConfig::default()
    }
}

/// Inserts `tx` at `now`, expecting it accepted; returns what it evicted.
fn admit(pool: &mut Mempool, (tx, verified): (Transaction, TxVerified), now: u64) -> Vec<Hash> {
    pool.insert(tx, verified, now)
        .expect("the transaction is accepted")
        .evicted
}

fn ids(txs: &[Transaction]) -> Vec<Hash> {
    txs.iter().map(Transaction::hash).collect()
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).expect("a short duration")
}

// ---------------------------------------------------------------------------------------
// The pool.

#[test]
fn defaults_are_the_documented_limits() {
    let config = MempoolConfig::default();
    assert_eq!(config.max_bytes, 8 * 1024 * 1024);
    assert_eq!(config.max_transactions, 10_000);
    assert_eq!(config.expiry, Duration::from_secs(3 * 3600));
    assert_eq!(config.max_orphans, 1_000);
    assert_eq!(config.max_orphan_bytes, 1024 * 1024);
    assert_eq!(config.orphan_expiry, Duration::from_secs(600));
    assert_eq!(SMALLEST_TRANSACTION, ONE_OUTPUT);
    assert_eq!(Mempool::default().config(), &config);
}

#[test]
fn insert_then_get_contains_missing() {
    let f = Fixture::new();
    let mut pool = Mempool::default();
    assert!(pool.is_empty());
    let (a, va) = f.spend(0, 60, 1);
    let (b, vb) = f.spend(1, 90, 2);
    let (c, _) = f.spend(2, 70, 1);

    assert_eq!(
        pool.insert(a.clone(), va, NOW),
        Ok(Inserted { evicted: vec![] })
    );
    assert_eq!(
        pool.insert(b.clone(), vb, NOW),
        Ok(Inserted { evicted: vec![] })
    );

    assert_eq!(pool.len(), 2);
    assert!(!pool.is_empty());
    assert_eq!(pool.bytes(), ONE_OUTPUT + TWO_OUTPUTS);
    assert_eq!(pool.get(&a.hash()), Some(&a));
    assert_eq!(pool.get(&b.hash()), Some(&b));
    assert_eq!(pool.get(&c.hash()), None);
    assert!(pool.contains(&a.hash()));
    assert!(pool.contains(&b.hash()));
    assert!(!pool.contains(&c.hash()));
    // Only c is missing, once, however often announced.
    assert_eq!(
        pool.missing(&[a.hash(), c.hash(), b.hash(), c.hash()]),
        vec![c.hash()]
    );
    assert_eq!(pool.missing(&[]), Vec::<Hash>::new());
    // b pays 0.9 of the hours over 220 bytes, a 0.6 over 183: b first.
    assert_eq!(pool.txids(), vec![b.hash(), a.hash()]);
}

#[test]
fn duplicate_is_refused() {
    let f = Fixture::new();
    let mut pool = Mempool::default();
    let (a, va) = f.spend(0, 60, 1);
    admit(&mut pool, (a.clone(), va.clone()), NOW);
    assert_eq!(
        pool.insert(a.clone(), va, NOW + SECOND),
        Err(MempoolError::Duplicate { txid: a.hash() })
    );
    assert_eq!(pool.len(), 1);
    assert_eq!(pool.bytes(), ONE_OUTPUT);
}

#[test]
fn verified_of_another_transaction_is_refused() {
    let f = Fixture::new();
    let mut pool = Mempool::default();
    let (a, _) = f.spend(0, 60, 1);
    let (_, vb) = f.spend(1, 60, 1);
    let verified = vb.txid;
    assert_eq!(
        pool.insert(a.clone(), vb, NOW),
        Err(MempoolError::VerifiedMismatch {
            txid: a.hash(),
            verified
        })
    );
    assert!(pool.is_empty());
}

#[test]
fn conflict_on_a_shared_input_is_refused_whatever_the_fee() {
    let f = Fixture::new();
    let mut pool = Mempool::default();
    let first = f.spend(0, 60, 1);
    let first_id = first.0.hash();
    admit(&mut pool, first, NOW);

    // The same output, paying more: no replacement.
    let (richer, v) = f.spend(0, 95, 1);
    assert_eq!(
        pool.insert(richer.clone(), v, NOW),
        Err(MempoolError::Conflict {
            txid: richer.hash(),
            uxid: f.coins[0].hash(),
            with: first_id,
        })
    );

    // Two inputs, the second shared.
    let spend = [f.coins[1], f.coins[0]];
    let (both, v) = spend_exact(&f.model, &spend, f.fee(60) * 2, 1);
    assert_eq!(
        pool.insert(both.clone(), v, NOW),
        Err(MempoolError::Conflict {
            txid: both.hash(),
            uxid: f.coins[0].hash(),
            with: first_id,
        })
    );
    assert_eq!(pool.txids(), vec![first_id]);

    // Another output is no conflict.
    admit(&mut pool, f.spend(1, 60, 1), NOW);
    assert_eq!(pool.len(), 2);
}

#[test]
fn full_by_count_evicts_the_lowest_fee_rate_for_a_higher_one_only() {
    let f = Fixture::new();
    let mut pool = Mempool::new(limits(3, usize::MAX));
    for (input, percent) in [(0, 70), (1, 60), (2, 80)] {
        assert_eq!(admit(&mut pool, f.spend(input, percent, 1), NOW), vec![]);
    }

    // Higher than the lowest (60 %): it goes.
    assert_eq!(
        admit(&mut pool, f.spend(3, 90, 1), NOW),
        vec![f.id(1, 60, 1)]
    );
    let kept = vec![f.id(3, 90, 1), f.id(2, 80, 1), f.id(0, 70, 1)];
    assert_eq!(pool.txids(), kept);
    assert_eq!(pool.len(), 3);
    assert_eq!(pool.bytes(), 3 * ONE_OUTPUT);

    // Lower than the lowest, then equal to it (same fee, same size): refused.
    for percent in [65, 70] {
        let (tx, v) = f.spend(4, percent, 1);
        assert_eq!(
            pool.insert(tx, v, NOW),
            Err(MempoolError::PoolFull {
                fee: f.fee(percent),
                size: ONE_OUTPUT,
                len: 3,
                bytes: 3 * ONE_OUTPUT,
            })
        );
        assert_eq!(pool.txids(), kept);
    }

    // The evicted one's input is free again: its index entry went with it.
    assert_eq!(
        admit(&mut pool, f.spend(1, 95, 1), NOW),
        vec![f.id(0, 70, 1)]
    );
}

#[test]
fn full_by_bytes_evicts_as_many_lowest_as_needed() {
    let f = Fixture::new();
    let mut pool = Mempool::new(limits(usize::MAX, 3 * ONE_OUTPUT));
    for (input, percent) in [(0, 60), (1, 90), (2, 55)] {
        assert_eq!(admit(&mut pool, f.spend(input, percent, 1), NOW), vec![]);
    }
    assert_eq!(pool.bytes(), 3 * ONE_OUTPUT);

    // 100 % over 220 bytes outbids 55 % and 60 % over 183, and needs both their room.
    assert_eq!(
        admit(&mut pool, f.spend(3, 100, 2), NOW),
        vec![f.id(2, 55, 1), f.id(0, 60, 1)]
    );
    // 0.90 / 183 is above 1.00 / 220.
    assert_eq!(pool.txids(), vec![f.id(1, 90, 1), f.id(3, 100, 2)]);
    assert_eq!(pool.bytes(), ONE_OUTPUT + TWO_OUTPUTS);

    // Larger than the whole pool.
    let (big, v) = f.spend(4, 90, 12);
    assert_eq!(
        pool.insert(big, v, NOW),
        Err(MempoolError::TooLarge {
            size: size_with_outputs(12),
            max: 3 * ONE_OUTPUT,
        })
    );
}

#[test]
fn full_by_bytes_refuses_when_a_needed_victim_pays_as_much() {
    let f = Fixture::new();
    let mut pool = Mempool::new(limits(usize::MAX, 3 * ONE_OUTPUT));
    for (input, percent) in [(0, 55), (1, 95), (2, 90)] {
        admit(&mut pool, f.spend(input, percent, 1), NOW);
    }
    let before = pool.txids();

    // 100 % over 220 bytes outbids 55 % over 183 but not 90 %, and needs the room of two.
    let (tx, v) = f.spend(3, 100, 2);
    assert_eq!(
        pool.insert(tx, v, NOW),
        Err(MempoolError::PoolFull {
            fee: f.fee(100),
            size: TWO_OUTPUTS,
            len: 3,
            bytes: 3 * ONE_OUTPUT,
        })
    );
    assert_eq!(pool.txids(), before);
    assert_eq!(pool.bytes(), 3 * ONE_OUTPUT);
}

#[test]
fn transactions_expire() {
    let f = Fixture::new();
    let mut pool = Mempool::default();
    let expiry = millis(DEFAULT_EXPIRY);
    let a = f.id(0, 60, 1);
    let b = f.id(1, 60, 2);
    admit(&mut pool, f.spend(0, 60, 1), NOW);
    admit(&mut pool, f.spend(1, 60, 2), NOW + SECOND);

    assert_eq!(pool.expire(NOW + expiry - 1), vec![]);
    assert_eq!(pool.len(), 2);
    assert_eq!(pool.expire(NOW + expiry), vec![a]);
    assert!(!pool.contains(&a));
    assert!(pool.contains(&b));
    assert_eq!(pool.bytes(), TWO_OUTPUTS);

    // a's input is free again.
    admit(&mut pool, f.spend(0, 90, 1), NOW + expiry);
    assert_eq!(pool.expire(NOW + SECOND + expiry), vec![b]);
    assert_eq!(pool.txids(), vec![f.id(0, 90, 1)]);
    assert_eq!(pool.bytes(), ONE_OUTPUT);
}

#[test]
fn remove_confirmed_removes_the_blocks_transactions_and_their_conflicts() {
    let mut f = Fixture::new();
    let mut pool = Mempool::default();
    let (a, va) = f.spend(0, 60, 1);
    let b = f.id(1, 70, 1);
    let (c, vc) = f.spend(2, 80, 1);
    admit(&mut pool, (a.clone(), va), NOW);
    admit(&mut pool, f.spend(1, 70, 1), NOW);
    admit(&mut pool, (c.clone(), vc), NOW);

    // The block confirms a, and another spend of b's input.
    let (b_other, _) = f.spend(1, 90, 1);
    let block = f.model.block(vec![a.clone(), b_other.clone()]);
    let verified = f.model.apply(block);
    let spent: Vec<Hash> = verified.spent.iter().map(UxOut::hash).collect();

    assert_eq!(
        pool.remove_confirmed(&[a.hash(), b_other.hash()], &spent),
        vec![a.hash(), b]
    );
    assert_eq!(pool.txids(), vec![c.hash()]);
    assert_eq!(pool.bytes(), c.size());
    // Nothing left to remove.
    assert_eq!(
        pool.remove_confirmed(&[a.hash(), b_other.hash()], &spent),
        vec![]
    );

    // What is left still goes into the next block.
    let selected = pool.select(f.model.params.max_block_size);
    assert_eq!(ids(&selected), vec![c.hash()]);
    let block = f.model.block(selected);
    f.model.apply(block);
}

#[test]
fn select_orders_by_fee_rate_within_the_size_budget() {
    let mut f = Fixture::new();
    let mut pool = Mempool::default();
    // Fee rates: d 0.95/183 > b 0.90/183 > c 1.00/220 > a 0.60/183 (of min_hours per
    // byte); c burns the most hours, but per byte less than b and d.
    let a = f.id(0, 60, 1);
    let b = f.id(1, 90, 1);
    let c = f.id(2, 100, 2);
    let d = f.id(3, 95, 1);
    admit(&mut pool, f.spend(0, 60, 1), NOW);
    admit(&mut pool, f.spend(1, 90, 1), NOW);
    admit(&mut pool, f.spend(2, 100, 2), NOW);
    admit(&mut pool, f.spend(3, 95, 1), NOW);

    assert_eq!(ids(&pool.select(usize::MAX)), vec![d, b, c, a]);
    assert_eq!(pool.txids(), vec![d, b, c, a]);
    // After d and b, 200 bytes are left: c (220) does not fit, a (183) does.
    let budget = 2 * ONE_OUTPUT + 200;
    let selected = pool.select(budget);
    assert_eq!(ids(&selected), vec![d, b, a]);
    assert!(selected.iter().map(Transaction::size).sum::<usize>() <= budget);
    // Exactly the size of the best.
    assert_eq!(ids(&pool.select(ONE_OUTPUT)), vec![d]);
    assert_eq!(pool.select(ONE_OUTPUT - 1), vec![]);
    // Selecting removes nothing.
    assert_eq!(pool.len(), 4);

    // The selection makes a valid block.
    let block: Block = f.model.block(pool.select(f.model.params.max_block_size));
    f.model.apply(block);
}

#[test]
fn select_orders_equal_fee_rates_by_txid() {
    let f = Fixture::new();
    let mut pool = Mempool::default();
    let mut equal = Vec::new();
    for input in 0..4 {
        let (tx, v) = f.spend(input, 70, 1);
        equal.push(tx.hash());
        admit(&mut pool, (tx, v), NOW);
    }
    let best = f.id(4, 80, 1);
    admit(&mut pool, f.spend(4, 80, 1), NOW);
    equal.sort();
    let mut expected = vec![best];
    expected.extend(&equal);
    assert_eq!(ids(&pool.select(usize::MAX)), expected);
    assert_eq!(pool.txids(), expected);
}

// ---------------------------------------------------------------------------------------
// Orphans.

/// Our chain after block 1, and a chain one block ahead whose block 2 splits output 0 of
/// block 1 into [`AHEAD_OUTPUTS`] outputs.
struct Behind {
    ours: Model,
    ahead: Model,
    block: Block,
    /// The outputs block 2 creates, in order.
    created: Vec<UxOut>,
}

/// Outputs of block 2 in [`Behind`].
const AHEAD_OUTPUTS: usize = 8;

impl Behind {
    fn new() -> Self {
        let f = Fixture::new();
        let ours = f.model;
        let mut ahead = ours.clone();
        let to: Vec<Address> = (0..AHEAD_OUTPUTS)
            .map(|i| ours.address(i % WALLETS))
            .collect();
        let split = ours.transfer(&[f.coins[0]], &to);
        let block = ours.block(vec![split]);
        let created = ahead.apply(block.clone()).created;
        assert_eq!(created.len(), AHEAD_OUTPUTS);
        Self {
            ours,
            ahead,
            block,
            created,
        }
    }

    /// A transaction valid on the chain ahead spending block 2's outputs `inputs` to
    /// `outputs` outputs; on ours, refused for an input not unspent.
    fn orphan(&self, inputs: &[usize], outputs: usize) -> Transaction {
        let spend: Vec<UxOut> = inputs.iter().map(|i| self.created[*i]).collect();
        let to: Vec<Address> = (0..outputs)
            .map(|i| self.ahead.address(i % WALLETS))
            .collect();
        let tx = self.ahead.transfer(&spend, &to);
        self.ahead.check_tx(&tx).expect("valid ahead");
        assert!(matches!(
            self.ours.check_tx(&tx),
            Err(TxRejection::InputNotUnspent { uxid, .. }) if uxid == spend[0].hash()
        ));
        tx
    }

    /// The id of block 2's output `i`.
    fn uxid(&self, i: usize) -> Hash {
        self.created[i].hash()
    }

    /// Applies block 2 to our chain; returns the ids of the outputs it created.
    fn catch_up(&mut self) -> Vec<Hash> {
        let created = self.ours.apply(self.block.clone()).created;
        created.iter().map(UxOut::hash).collect()
    }
}

/// A config with the orphan limits given and the defaults otherwise.
fn orphan_limits(max_orphans: usize, max_orphan_bytes: usize) -> MempoolConfig {
    MempoolConfig {
        max_orphans,
        max_orphan_bytes,
        ..MempoolConfig::default()
    }
}

#[test]
fn orphans_become_ready_when_a_block_creates_their_inputs() {
    let mut behind = Behind::new();
    let mut pool = Mempool::default();
    let one = behind.orphan(&[0], 1);
    let two = behind.orphan(&[1, 2], 1);

    assert_eq!(
        pool.insert_orphan(one.clone(), vec![behind.uxid(0)], NOW),
        Ok(Inserted { evicted: vec![] })
    );
    // Repeats and ids that are not inputs are dropped from what it waits for.
    let unrelated = behind.uxid(5);
    let missing = vec![behind.uxid(2), unrelated, behind.uxid(1), behind.uxid(2)];
    assert_eq!(
        pool.insert_orphan(two.clone(), missing, NOW + SECOND),
        Ok(Inserted { evicted: vec![] })
    );
    assert_eq!(pool.orphan_len(), 2);
    assert_eq!(pool.orphan_bytes(), one.size() + two.size());
    assert!(pool.contains_orphan(&one.hash()));
    assert!(!pool.contains(&one.hash()));
    assert!(pool.is_empty());
    // Held, so not asked for again.
    assert_eq!(pool.missing(&[one.hash(), two.hash()]), vec![]);

    assert_eq!(pool.orphans_spending(&[behind.uxid(1)]), vec![two.hash()]);
    assert_eq!(pool.orphans_spending(&[unrelated]), vec![]);
    let mut both = vec![one.hash(), two.hash()];
    both.sort();
    assert_eq!(
        pool.orphans_spending(&[behind.uxid(2), behind.uxid(0), behind.uxid(1)]),
        both
    );
    // One of two known: still waiting.
    assert_eq!(pool.take_ready(&[behind.uxid(1), unrelated]), vec![]);
    assert_eq!(pool.orphan_len(), 2);

    let created = behind.catch_up();
    assert_eq!(pool.take_ready(&created), vec![one.clone(), two.clone()]);
    assert_eq!(pool.orphan_len(), 0);
    assert_eq!(pool.orphan_bytes(), 0);
    assert_eq!(pool.take_ready(&created), vec![]);

    // Now they verify, and enter the pool.
    for tx in [one, two] {
        let verified = behind.ours.check_tx(&tx).expect("valid after the block");
        admit(&mut pool, (tx, verified), NOW + 2 * SECOND);
    }
    assert_eq!(pool.len(), 2);
}

#[test]
fn an_orphan_entering_the_pool_is_no_longer_an_orphan() {
    let mut behind = Behind::new();
    let mut pool = Mempool::default();
    let tx = behind.orphan(&[0], 1);
    let _ = pool
        .insert_orphan(tx.clone(), vec![behind.uxid(0)], NOW)
        .expect("held");
    assert_eq!(
        pool.insert_orphan(tx.clone(), vec![behind.uxid(0)], NOW),
        Err(MempoolError::Duplicate { txid: tx.hash() })
    );

    behind.catch_up();
    let verified = behind.ours.check_tx(&tx).expect("valid after the block");
    admit(&mut pool, (tx.clone(), verified), NOW);
    assert!(pool.contains(&tx.hash()));
    assert!(!pool.contains_orphan(&tx.hash()));
    assert_eq!(pool.orphan_bytes(), 0);
    assert_eq!(pool.orphans_spending(&[behind.uxid(0)]), vec![]);
    // In the pool: not an orphan again.
    assert_eq!(
        pool.insert_orphan(tx.clone(), vec![behind.uxid(0)], NOW),
        Err(MempoolError::Duplicate { txid: tx.hash() })
    );
}

#[test]
fn orphans_are_bounded_by_count_oldest_evicted_first() {
    let behind = Behind::new();
    let mut pool = Mempool::new(orphan_limits(3, usize::MAX));
    let orphans: Vec<Transaction> = (0..5).map(|i| behind.orphan(&[i], 1)).collect();
    for (i, tx) in orphans.iter().take(3).enumerate() {
        let inserted = pool
            .insert_orphan(tx.clone(), vec![behind.uxid(i)], NOW + i as u64)
            .expect("held");
        assert_eq!(inserted.evicted, vec![]);
    }
    for i in 3..5 {
        let inserted = pool
            .insert_orphan(orphans[i].clone(), vec![behind.uxid(i)], NOW + i as u64)
            .expect("held");
        assert_eq!(inserted.evicted, vec![orphans[i - 3].hash()]);
        assert_eq!(pool.orphan_len(), 3);
    }
    for (i, tx) in orphans.iter().enumerate() {
        assert_eq!(pool.contains_orphan(&tx.hash()), i >= 2, "orphan {i}");
    }
    // The evicted no longer wait.
    assert_eq!(
        pool.orphans_spending(&[behind.uxid(0), behind.uxid(1)]),
        vec![]
    );
    assert_eq!(pool.orphan_bytes(), 3 * ONE_OUTPUT);

    let mut none = Mempool::new(orphan_limits(0, usize::MAX));
    assert_eq!(
        none.insert_orphan(orphans[0].clone(), vec![behind.uxid(0)], NOW),
        Err(MempoolError::OrphansDisabled)
    );
    assert_eq!(none.orphan_len(), 0);
}

#[test]
fn orphans_are_bounded_by_bytes_oldest_evicted_first() {
    let behind = Behind::new();
    let max = 3 * ONE_OUTPUT;
    let mut pool = Mempool::new(orphan_limits(usize::MAX, max));
    let small: Vec<Transaction> = (0..3).map(|i| behind.orphan(&[i], 1)).collect();
    for (i, tx) in small.iter().enumerate() {
        let _ = pool
            .insert_orphan(tx.clone(), vec![behind.uxid(i)], NOW)
            .expect("held");
    }
    assert_eq!(pool.orphan_bytes(), max);

    // 220 bytes need the room of the two oldest.
    let larger = behind.orphan(&[3], 2);
    assert_eq!(larger.size(), TWO_OUTPUTS);
    assert_eq!(
        pool.insert_orphan(larger.clone(), vec![behind.uxid(3)], NOW),
        Ok(Inserted {
            evicted: vec![small[0].hash(), small[1].hash()]
        })
    );
    assert_eq!(pool.orphan_len(), 2);
    assert_eq!(pool.orphan_bytes(), ONE_OUTPUT + TWO_OUTPUTS);

    // Larger than all orphans may be.
    let to: Vec<Address> = (0..12).map(|i| behind.ahead.address(i % WALLETS)).collect();
    let huge = behind.ahead.transfer(&[behind.created[4]], &to);
    assert_eq!(
        pool.insert_orphan(huge, vec![behind.uxid(4)], NOW),
        Err(MempoolError::TooLarge {
            size: size_with_outputs(12),
            max,
        })
    );
    // Waiting for none of its inputs.
    let tx = behind.orphan(&[5], 1);
    assert_eq!(
        pool.insert_orphan(tx.clone(), vec![behind.uxid(6)], NOW),
        Err(MempoolError::NoMissingInputs { txid: tx.hash() })
    );
    assert_eq!(pool.orphan_len(), 2);
}

#[test]
fn orphans_expire() {
    let behind = Behind::new();
    let mut pool = Mempool::default();
    let expiry = millis(DEFAULT_ORPHAN_EXPIRY);
    let old = behind.orphan(&[0], 1);
    let young = behind.orphan(&[1], 1);
    let _ = pool
        .insert_orphan(old.clone(), vec![behind.uxid(0)], NOW)
        .expect("held");
    let _ = pool
        .insert_orphan(young.clone(), vec![behind.uxid(1)], NOW + SECOND)
        .expect("held");

    assert_eq!(pool.expire(NOW + expiry - 1), vec![]);
    assert_eq!(pool.orphan_len(), 2);
    // Orphans are not listed: they were never announced.
    assert_eq!(pool.expire(NOW + expiry), vec![]);
    assert!(!pool.contains_orphan(&old.hash()));
    assert!(pool.contains_orphan(&young.hash()));
    assert_eq!(pool.orphan_bytes(), young.size());
    // The expired one no longer waits for its input.
    assert_eq!(pool.take_ready(&[behind.uxid(0)]), vec![]);

    pool.expire(NOW + SECOND + expiry);
    assert_eq!(pool.orphan_len(), 0);
    assert_eq!(pool.take_ready(&[behind.uxid(1)]), vec![]);
}
