//! Block verification and application rates against the raw secp256k1
//! verification rate measured in the same run (issue 5's target: verify + apply
//! at ≥ 0.7 of the raw rate on all cores). The verifier recovers each input's
//! signature once, spread over the cores for a block this size, and
//! `Chain::apply` runs it on tokio's blocking pool; docs/benchmarks.md §7 has
//! the numbers before and after.
//!
//! `cargo bench -p skywire-chain --bench apply`
//!
//! Each of the [`ROUNDS`] rounds measures, one after the other:
//! - raw: `Sig::verify_address` (recovery, then the address: how an input is
//!   checked) and the bare `secp256k1::ecdsa::verify`, over [`SIGS`] signatures
//!   of distinct 32-byte digests, on 1 thread and on
//!   `available_parallelism()` threads;
//! - verify only: `verify_block` over [`BLOCKS`] blocks of [`TXS_PER_BLOCK`]
//!   single-input transactions, each against a `HashMap` unspent set; then
//!   `verify_blocks` of the same blocks in runs of [`MAX_APPLY_BATCH`];
//! - verify + apply: `Chain::apply` of the same blocks one by one on a fresh
//!   SQLite file (tokio current-thread runtime), then `Chain::apply_many` of
//!   them in batches of [`MAX_APPLY_BATCH`] on another (how sync applies them).
//!
//! Every measured block spends outputs made [`SPEND_AFTER`] blocks before (no
//! fewer than a batch), so no output is created and spent within one batch:
//! each batch reads and deletes every output it spends from the store, as
//! with a real chain's old coins. (A batch writes no output its own blocks
//! create and spend, which would flatter it.)
//!
//! Rates and ratios are the medians over the rounds (ratios per round, then
//! the median). Results go in docs/benchmarks.md.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{Builder, key};
use skywire_chain::chain::Chain;
use skywire_chain::store::{ChainStore, MAX_APPLY_BATCH};
use skywire_chain::verify::{ChainParams, block_lookups, verify_block, verify_blocks};
use skywire_coin::{Block, BlockHeader, Hash, Sig, SignedBlock, UxHash, UxOut, sha256};
use skywire_db::Db;
use skywire_identity::Address;

/// Measured rounds.
const ROUNDS: usize = 5;
/// Measured blocks (after the genesis block and one fan-out block).
const BLOCKS: usize = 2 * MAX_APPLY_BATCH;
/// How many blocks after its creation each output is spent: a batch's worth, so
/// that no batch spends what it creates.
const SPEND_AFTER: usize = MAX_APPLY_BATCH;
/// Single-input, single-output transactions per measured block.
const TXS_PER_BLOCK: usize = 100;
/// Pre-made signatures for the raw rate.
const SIGS: usize = 256;
/// Time given to each raw measurement.
const RAW_TIME: Duration = Duration::from_millis(300);
/// Passes over the blocks per verify-only measurement.
const VERIFY_PASSES: usize = 2;

/// One measured block with the head before it and the outputs it looks up in
/// the unspent set before it.
struct Step {
    head: BlockHeader,
    ux_hash: UxHash,
    unspent: HashMap<Hash, UxOut>,
    block: SignedBlock,
}

/// The chain: the blocks applied untimed (genesis, fan-out), then the
/// measured ones.
struct Fixture {
    params: ChainParams,
    genesis: Block,
    setup: Vec<SignedBlock>,
    steps: Vec<Step>,
}

impl Fixture {
    fn build() -> Self {
        let (mut genesis, mut b) = Builder::new();
        // The fan-out's one transaction has an output for each input of the
        // first SPEND_AFTER blocks (~240 KB): the size limits are raised for it.
        // The measured blocks (~22 KB) are within Skycoin's defaults.
        genesis.params.max_block_size = 1 << 20;
        genesis.params.max_transaction_size = 1 << 20;
        let fan_out = b.fan_out(SPEND_AFTER * TXS_PER_BLOCK);
        b.commit(&fan_out);
        // Each measured block moves every output on, burning half of its hours.
        let mut steps = Vec::with_capacity(BLOCKS);
        for _ in 0..BLOCKS {
            let block = b.move_oldest(TXS_PER_BLOCK);
            let unspent = block_lookups(&block.block)
                .iter()
                .filter_map(|id| b.unspent.get(id).map(|ux| (*id, *ux)))
                .collect();
            steps.push(Step {
                head: b.head,
                ux_hash: b.ux_hash,
                unspent,
                block: block.clone(),
            });
            b.commit(&block);
        }
        Self {
            params: genesis.params,
            genesis: genesis.block,
            setup: vec![genesis.signed, fan_out],
            steps,
        }
    }
}

/// Signatures for the raw rate: ours (recoverable, as in a transaction) and
/// the bare crate's, over the same digests.
struct RawSigs {
    address: Address,
    sigs: Vec<(Hash, Sig)>,
    public: secp256k1::PublicKey,
    bare: Vec<(secp256k1::Message, secp256k1::ecdsa::Signature)>,
}

impl RawSigs {
    fn new() -> Self {
        let keypair = key(3);
        let secret = secp256k1::SecretKey::from_secret_bytes([3; 32]).expect("a valid secret");
        let digests: Vec<Hash> = (0..SIGS as u64).map(|i| sha256(&i.to_le_bytes())).collect();
        Self {
            address: keypair.address(),
            sigs: digests
                .iter()
                .map(|d| (*d, Sig::sign(&keypair, d)))
                .collect(),
            public: secp256k1::PublicKey::from_secret_key(&secret),
            bare: digests
                .iter()
                .map(|d| {
                    let msg = secp256k1::Message::from_digest(d.0);
                    (msg, secp256k1::ecdsa::sign(msg, &secret))
                })
                .collect(),
        }
    }

    /// One pass of `Sig::verify_address` over the signatures.
    fn pass_sig(&self) {
        for (digest, sig) in &self.sigs {
            sig.verify_address(&self.address, digest)
                .expect("a valid signature");
        }
    }

    /// One pass of `secp256k1::ecdsa::verify` over the signatures.
    fn pass_bare(&self) {
        for (msg, sig) in &self.bare {
            secp256k1::ecdsa::verify(sig, *msg, &self.public).expect("a valid signature");
        }
    }
}

/// Verifications per second of `pass` on one thread for about [`RAW_TIME`].
fn raw_single(pass: impl Fn()) -> f64 {
    let started = Instant::now();
    let mut passes = 0;
    while started.elapsed() < RAW_TIME {
        pass();
        passes += 1;
    }
    (passes * SIGS) as f64 / started.elapsed().as_secs_f64()
}

/// Verifications per second of `pass` on `threads` threads, each doing the
/// passes one thread does in about [`RAW_TIME`] at `single` per second.
fn raw_parallel(pass: impl Fn() + Sync, threads: usize, single: f64) -> f64 {
    let passes = ((single * RAW_TIME.as_secs_f64()) / SIGS as f64).ceil() as usize;
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..passes {
                    pass();
                }
            });
        }
    });
    (threads * passes * SIGS) as f64 / started.elapsed().as_secs_f64()
}

/// Transactions per second of `verify_block` over the fixture's blocks.
fn verify_only(fixture: &Fixture) -> f64 {
    let started = Instant::now();
    for _ in 0..VERIFY_PASSES {
        for step in &fixture.steps {
            verify_block(
                &fixture.params,
                &step.head,
                &step.ux_hash,
                &step.unspent,
                &step.block,
            )
            .expect("the block verifies");
        }
    }
    (VERIFY_PASSES * BLOCKS * TXS_PER_BLOCK) as f64 / started.elapsed().as_secs_f64()
}

/// Transactions per second of `verify_blocks` over the fixture's blocks, in
/// runs of [`MAX_APPLY_BATCH`] (as `Chain::apply_many` checks them), each
/// against the outputs its blocks look up. An output a block spends was made
/// a run before it ([`SPEND_AFTER`]), so it is unspent at the run's start.
fn verify_batched(fixture: &Fixture) -> f64 {
    let runs: Vec<(&Step, HashMap<Hash, UxOut>, Vec<SignedBlock>)> = fixture
        .steps
        .chunks(MAX_APPLY_BATCH)
        .map(|run| {
            let base = run.iter().flat_map(|step| step.unspent.clone()).collect();
            let blocks = run.iter().map(|step| step.block.clone()).collect();
            (&run[0], base, blocks)
        })
        .collect();
    let started = Instant::now();
    for _ in 0..VERIFY_PASSES {
        for (first, base, blocks) in &runs {
            let (verified, refused) =
                verify_blocks(&fixture.params, &first.head, &first.ux_hash, base, blocks);
            assert!(refused.is_none() && verified.len() == blocks.len());
        }
    }
    (VERIFY_PASSES * BLOCKS * TXS_PER_BLOCK) as f64 / started.elapsed().as_secs_f64()
}

/// Blocks per second of `Chain::apply` of the fixture's blocks on a fresh
/// SQLite file: one by one, or with `Chain::apply_many` in batches of
/// [`MAX_APPLY_BATCH`] if `batched`.
fn verify_apply(fixture: &Fixture, rt: &tokio::runtime::Runtime, batched: bool) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    rt.block_on(async {
        let db = Db::sqlite_file(&dir.path().join("chain.db"))
            .await
            .expect("open");
        db.migrate(&ChainStore::migrations())
            .await
            .expect("migrate");
        let chain = Chain::new(ChainStore::new(db), fixture.params, fixture.genesis.clone());
        for block in &fixture.setup {
            chain.apply(block).await.expect("setup block applies");
        }
        let blocks: Vec<SignedBlock> = fixture.steps.iter().map(|s| s.block.clone()).collect();
        let started = Instant::now();
        if batched {
            chain.apply_many(&blocks).await.expect("the blocks apply");
        } else {
            for block in &blocks {
                chain.apply(block).await.expect("the block applies");
            }
        }
        BLOCKS as f64 / started.elapsed().as_secs_f64()
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let started = Instant::now();
    let fixture = Fixture::build();
    let raw = RawSigs::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "built {BLOCKS} blocks of {TXS_PER_BLOCK} single-input transactions in {:.1} s; {threads} threads",
        started.elapsed().as_secs_f64()
    );

    // Per round: [sig 1, sig N, bare 1, bare N, verify tx/s, apply blocks/s,
    // apply_many blocks/s, verify_blocks tx/s].
    let mut rounds: Vec<[f64; 8]> = Vec::with_capacity(ROUNDS);
    for round in 1..=ROUNDS {
        let sig1 = raw_single(|| raw.pass_sig());
        let sig_n = raw_parallel(|| raw.pass_sig(), threads, sig1);
        let bare1 = raw_single(|| raw.pass_bare());
        let bare_n = raw_parallel(|| raw.pass_bare(), threads, bare1);
        let verify = verify_only(&fixture);
        let batched = verify_batched(&fixture);
        let apply = verify_apply(&fixture, &rt, false);
        let apply_many = verify_apply(&fixture, &rt, true);
        println!(
            "round {round}: Sig::verify_address {sig1:.0}/s (1) {sig_n:.0}/s ({threads}); \
             ecdsa::verify {bare1:.0}/s (1) {bare_n:.0}/s ({threads}); \
             verify_block {verify:.0} tx/s; verify_blocks {batched:.0} tx/s; \
             Chain::apply {apply:.1} blocks/s; \
             Chain::apply_many {apply_many:.1} blocks/s"
        );
        rounds.push([
            sig1, sig_n, bare1, bare_n, verify, apply, apply_many, batched,
        ]);
    }
    let col = |i: usize| median(rounds.iter().map(|r| r[i]).collect());
    let ratio = |num: usize, den: usize, scale: f64| {
        let values: Vec<f64> = rounds.iter().map(|r| r[num] * scale / r[den]).collect();
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (median(values), lo, hi)
    };
    let tpb = TXS_PER_BLOCK as f64;

    println!();
    println!("| rate (median of {ROUNDS} rounds) | per second |");
    println!("|---|---|");
    println!(
        "| raw `Sig::verify_address`, 1 thread | {:.0} verifications |",
        col(0)
    );
    println!(
        "| raw `Sig::verify_address`, {threads} threads | {:.0} verifications |",
        col(1)
    );
    println!(
        "| raw `secp256k1::ecdsa::verify`, 1 thread | {:.0} verifications |",
        col(2)
    );
    println!(
        "| raw `secp256k1::ecdsa::verify`, {threads} threads | {:.0} verifications |",
        col(3)
    );
    println!(
        "| `verify_block` (HashMap set) | {:.0} transactions ({:.1} blocks) |",
        col(4),
        col(4) / tpb
    );
    println!(
        "| `verify_blocks`, runs of {MAX_APPLY_BATCH} (HashMap set) | {:.0} transactions ({:.1} blocks) |",
        col(7),
        col(7) / tpb
    );
    println!(
        "| `Chain::apply` (SQLite file) | {:.0} transactions ({:.1} blocks) |",
        col(5) * tpb,
        col(5)
    );
    println!(
        "| `Chain::apply_many`, batches of {MAX_APPLY_BATCH} (SQLite file) | {:.0} transactions ({:.1} blocks) |",
        col(6) * tpb,
        col(6)
    );

    println!();
    println!(
        "| ratio (median [min–max]) | vs `Sig::verify_address` {threads} threads | vs 1 thread | vs `ecdsa::verify` {threads} threads | vs 1 thread |"
    );
    println!("|---|---|---|---|---|");
    for (name, num, scale) in [
        ("verify only, tx/s", 4, 1.0),
        ("verify only, batched, tx/s", 7, 1.0),
        ("verify + apply, tx/s", 5, tpb),
        ("verify + apply_many, tx/s", 6, tpb),
    ] {
        let cells: Vec<String> = [1, 0, 3, 2]
            .iter()
            .map(|&den| {
                let (m, lo, hi) = ratio(num, den, scale);
                format!("{m:.3} [{lo:.3}–{hi:.3}]")
            })
            .collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
    println!();
    println!("target (issue 5): verify + apply ≥ 0.7 of the raw rate on all cores");
    println!("total {:.1} s", started.elapsed().as_secs_f64());
}
