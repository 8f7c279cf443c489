//! Time to sync a chain from one peer over loopback (issue 5's benchmark: 10 000 blocks
//! of 100 transactions).
//!
//! `cargo bench -p skywire-chain --bench sync` (`SYNC_BLOCKS` and `SYNC_TXS` change the
//! size; defaults 10000 and 100).
//!
//! The source chain is built once, without the verifier, into a SQLite file kept in
//! Cargo's target directory for later runs (`CARGO_TARGET_TMPDIR`). Then two whole nodes
//! run in this process, each a gateway on loopback and the chain service on its own
//! SQLite file: the source, holding the chain, and an empty follower, which dials it
//! and syncs through `chain/1` (headers first, then blocks from the window, each block
//! verified and applied). The time is from the dial to the follower's head matching the
//! source's; both nodes share the machine's cores.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Builder, Genesis};
use skywire_bus::Bus;
use skywire_chain::chain::Chain;
use skywire_chain::service::{ChainService, ServiceConfig};
use skywire_chain::spec::ChainSpec;
use skywire_chain::store::ChainStore;
use skywire_db::Db;
use skywire_gateway::GatewayHandle;
use skywire_gateway::testing::start_gateway;
use skywire_identity::Keypair;
use skywire_kv::Kv;
use skywire_kv::presence::Presence;
use skywire_service::ServiceHost;

/// The environment variable `name` as a number, or `default`.
fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The benchmark chain's spec, its genesis and a builder at the genesis.
fn spec() -> (ChainSpec, Genesis, Builder) {
    let (genesis, builder) = Builder::new();
    let spec = ChainSpec {
        publisher: builder.publisher.public_key(),
        genesis_address: builder.wallet.address(),
        genesis_coins: common::GENESIS_COINS,
        genesis_time: genesis.block.header.time,
        genesis_sig: genesis.signed.sig,
    };
    (spec, genesis, builder)
}

/// Builds the source chain of `blocks` blocks after the genesis (a fan-out to twice
/// `txs` outputs, then blocks of `txs` transactions) into the SQLite file `path`.
async fn build_source(path: &Path, blocks: usize, txs: usize) {
    let started = Instant::now();
    let partial = path.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let db = Db::sqlite_file(&partial).await.expect("source database");
    db.migrate(&ChainStore::migrations())
        .await
        .expect("migrate");
    let store = ChainStore::new(db);
    let (_, genesis, mut builder) = spec();
    let Genesis {
        signed, applied, ..
    } = genesis;
    store
        .apply(&signed, &[], &applied.created, &applied.ux_hash_after)
        .await
        .expect("genesis");
    for seq in 1..=blocks {
        let block = if seq == 1 {
            builder.fan_out(2 * txs)
        } else {
            builder.move_oldest(txs)
        };
        let applied = builder.commit(&block);
        store
            .apply(
                &block,
                &applied.spent,
                &applied.created,
                &applied.ux_hash_after,
            )
            .await
            .expect("apply");
        if seq % 1000 == 0 {
            println!(
                "built {seq}/{blocks} blocks ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
    }
    store.db().close().await;
    std::fs::rename(&partial, path).expect("keep the source chain");
    println!(
        "built the source chain in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// A node: gateway on loopback and the chain service on `db`.
struct BenchNode {
    key: Keypair,
    addr: SocketAddr,
    chain: ChainService,
    gateway: GatewayHandle,
    task: tokio::task::JoinHandle<()>,
}

impl BenchNode {
    async fn start(db: &Path, spec: &ChainSpec) -> Self {
        let key = Keypair::generate();
        let kv = Kv::memory();
        let bus = Bus::local();
        let presence = Presence::new(kv.clone());
        let secret = secp256k1::SecretKey::from_secret_bytes(*key.secret_bytes()).expect("key");
        let (gateway, task) = start_gateway(
            "gw",
            secret,
            SocketAddr::from(([127, 0, 0, 1], 0)),
            16,
            &bus,
            &presence,
            &kv,
        )
        .await;
        let addr = gateway.node().expect("listening").local_addr();
        let db = Db::sqlite_file(db).await.expect("database");
        db.migrate(&ChainStore::migrations())
            .await
            .expect("migrate");
        let chain = Chain::new(ChainStore::new(db), spec.params(), spec.genesis_block());
        let host = ServiceHost::start(bus, presence, "chain")
            .await
            .expect("host");
        let chain = ChainService::start(host, chain, spec, ServiceConfig::default())
            .await
            .expect("chain service");
        Self {
            key,
            addr,
            chain,
            gateway,
            task,
        }
    }

    async fn head(&self) -> u64 {
        self.chain
            .chain()
            .head()
            .await
            .expect("head")
            .map_or(0, |h| h.seq())
    }

    async fn stop(self) {
        self.chain.shutdown().await;
        self.gateway.shutdown();
        let _ = self.task.await;
    }
}

fn main() {
    // `TEST_LOG=1`: the nodes' logs.
    skywire_gateway::testing::init_logging();
    let blocks = env_or("SYNC_BLOCKS", 10_000);
    let txs = env_or("SYNC_TXS", 100);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let source_db = dir.join(format!("bench-sync-{blocks}x{txs}.db"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        if !source_db.exists() {
            build_source(&source_db, blocks, txs).await;
        }
        let (spec, _, _) = spec();
        let source = BenchNode::start(&source_db, &spec).await;
        assert_eq!(source.head().await, blocks as u64, "a complete source chain");
        let work = tempfile::tempdir().expect("temporary directory");
        let follower = BenchNode::start(&work.path().join("follower.db"), &spec).await;

        let started = Instant::now();
        let source_key = secp256k1::PublicKey::from_slice(&source.key.public_key().to_bytes())
            .expect("a public key");
        follower
            .gateway
            .node()
            .expect("listening")
            .connect(source.addr, &source_key)
            .await
            .expect("connect");
        let mut last_report = Instant::now();
        loop {
            let head = follower.head().await;
            if head == blocks as u64 {
                break;
            }
            if last_report.elapsed() > Duration::from_secs(10) {
                println!(
                    "{head}/{blocks} blocks after {:.0} s",
                    started.elapsed().as_secs_f64()
                );
                last_report = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let transactions = blocks * txs + 1;
        println!(
            "synced {blocks} blocks of {txs} transactions from one peer over loopback in {elapsed:.1} s: \
             {:.0} blocks/s, {:.0} transactions/s",
            blocks as f64 / elapsed,
            transactions as f64 / elapsed
        );
        follower.stop().await;
        source.stop().await;
    });
}
