//! The chain service between whole nodes over real SWP/1 on loopback: each node is a
//! gateway, the pool (its peer store and bans) and the chain service on an in-process
//! bus, with its own SQLite database.
//!
//! - A publisher and two followers (one reaching the publisher only through the other)
//!   converge on the same head and balances; transactions sent to the far follower are
//!   relayed to the publisher and land in blocks.
//! - A follower that starts late, and one that was stopped, catch up.
//! - A peer serving another chain (headers the publisher did not sign), blocks that do
//!   not match their headers, garbage, or a transaction with a forged signature is
//!   banned through the pool, and nothing it sent is stored or kept.
//! - A double spend is refused by every node, before and after the first spend is
//!   confirmed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use skywire_bus::Bus;
use skywire_chain::chain::Chain;
use skywire_chain::protocol::{
    self, CHAIN_SERVICE, ChainRequest, ChainResponse, RELAY_SERVICE, RelayRequest, RelayResponse,
    Tip,
};
use skywire_chain::service::{ChainService, ServiceConfig};
use skywire_chain::spec::ChainSpec;
use skywire_chain::store::ChainStore;
use skywire_chain::wallet::build_spend;
use skywire_coin::{DROPLETS_PER_COIN, Hash, Output, Sig, SignedBlock, Transaction};
use skywire_db::Db;
use skywire_gateway::GatewayHandle;
use skywire_gateway::testing::{connection_config, init_logging, start_gateway};
use skywire_identity::{Address, Keypair, derive_keypairs};
use skywire_kv::Kv;
use skywire_kv::presence::Presence;
use skywire_pool::store::PeerStore;
use skywire_pool::{Pool, PoolConfig};
use skywire_record::now_ms;
use skywire_service::ServiceHost;
use skywire_wire::{Channel, Node, NodeConfig, NodeHandle, Service};

/// The genesis block's coins: 100 million.
const GENESIS_COINS: u64 = 100_000_000 * DROPLETS_PER_COIN;

/// Waits up to 60 s for `check`.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The wallet of the tests: key 0 owns the genesis output.
fn wallet() -> Vec<Keypair> {
    derive_keypairs(b"skywire chain network test", 3).unwrap().1
}

/// A chain whose genesis gives every coin to the wallet's first address, an hour ago.
fn spec(publisher: &Keypair) -> ChainSpec {
    ChainSpec::create(
        publisher,
        wallet()[0].address(),
        GENESIS_COINS,
        now_ms() / 1000 - 3600,
    )
}

/// One node: gateway, pool and chain service.
struct TestNode {
    key: Keypair,
    addr: SocketAddr,
    bus: Bus,
    presence: Presence,
    pool: Pool,
    chain: Option<ChainService>,
    db: PathBuf,
    spec: ChainSpec,
    gateway: GatewayHandle,
    task: tokio::task::JoinHandle<()>,
}

impl TestNode {
    /// A node of the chain `spec` with its database in `dir`, publishing with
    /// `publisher` if given (blocks only when [`ChainService::publish`] is called).
    async fn start(dir: &Path, spec: ChainSpec, publisher: Option<Keypair>) -> Self {
        let config = ServiceConfig {
            publisher,
            ..ServiceConfig::default()
        };
        Self::start_with(dir, spec, config).await
    }

    /// The publisher of a new chain ([`spec`]) with its database in `dir`, and the
    /// chain's spec.
    async fn publisher(dir: &Path) -> (Self, ChainSpec) {
        let key = Keypair::generate();
        let spec = spec(&key);
        (Self::start(dir, spec, Some(key)).await, spec)
    }

    /// A publisher whose chain holds two payments of one coin to the wallet's second
    /// address (blocks 2 and 3, after the fund block), for the API tests.
    async fn with_payments(dir: &Path) -> Self {
        let (node, _) = Self::publisher(dir).await;
        node.fund(4).await;
        node.publish_spends(2).await;
        node
    }

    /// [`TestNode::start`] with the chain service's `config` (its block interval is
    /// set to an hour).
    async fn start_with(dir: &Path, spec: ChainSpec, config: ServiceConfig) -> Self {
        init_logging();
        let key = Keypair::generate();
        let kv = Kv::memory();
        let bus = Bus::local();
        let presence = Presence::new(kv.clone());
        let secret = secp256k1::SecretKey::from_secret_bytes(*key.secret_bytes()).unwrap();
        let (gateway, task) = start_gateway(
            "gw",
            secret,
            SocketAddr::from(([127, 0, 0, 1], 0)),
            64,
            &bus,
            &presence,
            &kv,
        )
        .await;
        let addr = gateway.node().unwrap().local_addr();
        let db = dir.join(format!("{}.db", key.address()));
        let pool_db = Db::sqlite_file(&db).await.unwrap();
        pool_db.migrate(&PeerStore::migrations()).await.unwrap();
        let host = ServiceHost::start(bus.clone(), presence.clone(), "pool")
            .await
            .unwrap();
        let pool = Pool::start(
            bus.clone(),
            PeerStore::new(pool_db),
            host,
            PoolConfig::default(),
        )
        .await
        .unwrap();
        let mut node = Self {
            key,
            addr,
            bus,
            presence,
            pool,
            chain: None,
            db,
            spec,
            gateway,
            task,
        };
        node.start_chain(config).await;
        node
    }

    /// Starts the chain service (again) on the node's database.
    async fn start_chain(&mut self, config: ServiceConfig) {
        let db = Db::sqlite_file(&self.db).await.unwrap();
        db.migrate(&ChainStore::migrations()).await.unwrap();
        let chain = Chain::new(
            ChainStore::new(db),
            self.spec.params(),
            self.spec.genesis_block(),
        );
        let host = ServiceHost::start(self.bus.clone(), self.presence.clone(), "chain")
            .await
            .unwrap();
        let config = ServiceConfig {
            block_interval: Duration::from_secs(3600),
            ..config
        };
        self.chain = Some(
            ChainService::start(host, chain, &self.spec, config)
                .await
                .unwrap(),
        );
    }

    async fn stop_chain(&mut self) {
        if let Some(chain) = self.chain.take() {
            chain.shutdown().await;
        }
    }

    fn chain(&self) -> &ChainService {
        self.chain.as_ref().expect("chain service running")
    }

    fn id(&self) -> [u8; 33] {
        self.key.public_key().to_bytes()
    }

    /// Connects to `other` and keeps it connected.
    async fn connect(&self, other: &TestNode) {
        self.pool.dial(&other.id(), other.addr).await.unwrap();
    }

    /// The head's sequence number and hash.
    async fn head(&self) -> (u64, Hash) {
        let head = self.chain().chain().head().await.unwrap().unwrap();
        (head.seq(), head.hash())
    }

    async fn balance(&self, address: &Address) -> u64 {
        self.chain()
            .chain()
            .store()
            .balance(address)
            .await
            .unwrap()
            .coins
    }

    /// A transaction paying `coins` whole coins from the wallet's first address to its
    /// second, built from this node's view of the chain.
    async fn spend(&self, coins: u64) -> Transaction {
        let keys = wallet();
        let store = self.chain().chain().store();
        let head = store.head().await.unwrap().unwrap();
        let unspent = store
            .unspent_by_address(&keys[0].address(), 1000)
            .await
            .unwrap();
        build_spend(
            &keys,
            unspent,
            head.header.time,
            self.chain().chain().params().into(),
            keys[1].address(),
            coins * DROPLETS_PER_COIN,
            keys[0].address(),
        )
        .unwrap()
    }

    /// Splits the genesis output into `n` outputs of the wallet's first address, each
    /// with an equal share of the coins and half of the hours, submits it and publishes
    /// it. Every later [`TestNode::spend`] then spends one of these (the oldest first),
    /// whose hours were not halved by the spends before: blocks published within the
    /// same second earn no hours.
    async fn fund(&self, n: u64) {
        let keys = wallet();
        let store = self.chain().chain().store();
        let genesis = store
            .unspent_by_address(&keys[0].address(), 1)
            .await
            .unwrap()
            .remove(0);
        let coins = genesis.body.coins / n / DROPLETS_PER_COIN * DROPLETS_PER_COIN;
        let hours = genesis.body.hours / 2 / n;
        let mut outputs: Vec<Output> = (0..n)
            .map(|_| Output {
                address: keys[0].address(),
                coins,
                hours,
            })
            .collect();
        // The first carries what the division left, so that no coin is lost; each has
        // one hour less than the one before, so that their ids differ.
        outputs[0].coins += genesis.body.coins - coins * n;
        for (i, output) in outputs.iter_mut().enumerate() {
            output.hours -= i as u64;
        }
        let mut tx = Transaction {
            inputs: vec![genesis.hash()],
            outputs,
            ..Transaction::default()
        };
        tx.sign(&keys[..1]).unwrap();
        tx.update_header().unwrap();
        self.chain().submit(tx).await.unwrap();
        assert!(self.chain().publish().await.unwrap().is_some());
    }

    /// Publishes `n` blocks, each with one [`TestNode::spend`] of one coin.
    async fn publish_spends(&self, n: usize) {
        for _ in 0..n {
            let tx = self.spend(1).await;
            self.chain().submit(tx).await.unwrap();
            self.chain().publish().await.unwrap().unwrap();
        }
    }

    /// Waits until this node's head is `other`'s.
    async fn converges_with(&self, other: &TestNode) {
        let target = other.head().await;
        eventually(&format!("head {target:?}"), || async {
            self.head().await == target
        })
        .await;
    }

    async fn stop(mut self) {
        self.stop_chain().await;
        self.pool.shutdown().await;
        self.gateway.shutdown();
        self.task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_converge_and_transactions_sent_to_a_follower_land_in_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let (publisher, spec) = TestNode::publisher(dir.path()).await;
    let near = TestNode::start(dir.path(), spec, None).await;
    let far = TestNode::start(dir.path(), spec, None).await;
    near.connect(&publisher).await;
    far.connect(&near).await;
    publisher.fund(32).await;
    far.converges_with(&publisher).await;

    let keys = wallet();
    for round in 2..=21u64 {
        // Sent to the far follower, relayed through the near one to the publisher.
        let tx = far.spend(1).await;
        let txid = far.chain().submit(tx).await.unwrap();
        eventually(
            &format!("round {round}: the publisher has {txid}"),
            || async { publisher.chain().pooled(&txid).is_some() },
        )
        .await;
        assert_eq!(publisher.chain().publish().await.unwrap(), Some(round));
        near.converges_with(&publisher).await;
        far.converges_with(&publisher).await;
        // The pool is cleared just after the block is stored.
        eventually("confirmed: out of the pool", || async {
            far.chain().pooled(&txid).is_none()
        })
        .await;
    }

    for node in [&publisher, &near, &far] {
        assert_eq!(node.head().await.0, 21);
        assert_eq!(
            node.balance(&keys[1].address()).await,
            20 * DROPLETS_PER_COIN
        );
        assert_eq!(
            node.balance(&keys[0].address()).await,
            GENESIS_COINS - 20 * DROPLETS_PER_COIN
        );
    }
    let status = far.chain().status().await.unwrap();
    assert_eq!(status.head.map(|t| t.seq), Some(21));
    assert_eq!(status.mempool_transactions, 0);
    for node in [publisher, near, far] {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_that_starts_late_or_was_stopped_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let (publisher, spec) = TestNode::publisher(dir.path()).await;
    publisher.fund(64).await;
    // More blocks than one header request and several block requests cover.
    publisher.publish_spends(39).await;
    let mut follower = TestNode::start(dir.path(), spec, None).await;
    follower.connect(&publisher).await;
    follower.converges_with(&publisher).await;
    assert_eq!(follower.head().await.0, 40);

    follower.stop_chain().await;
    publisher.publish_spends(10).await;
    follower.start_chain(ServiceConfig::default()).await;
    follower.converges_with(&publisher).await;
    assert_eq!(follower.head().await.0, 50);
    let to = wallet()[1].address();
    assert_eq!(follower.balance(&to).await, 49 * DROPLETS_PER_COIN);
    publisher.stop().await;
    follower.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_serving_another_chain_is_banned_and_nothing_of_it_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let publisher_key = Keypair::generate();
    let spec = spec(&publisher_key);
    // The liar's chain has the same genesis block, signed by another key: every block
    // after it is signed by that key too.
    let forger = Keypair::generate();
    let forged = ChainSpec {
        publisher: forger.public_key(),
        genesis_sig: spec.genesis_block().sign_block(&forger).sig,
        ..spec
    };
    let liar = TestNode::start(dir.path(), forged, Some(forger)).await;
    liar.fund(8).await;
    liar.publish_spends(4).await;
    let honest = TestNode::start(dir.path(), spec, None).await;
    honest.connect(&liar).await;
    eventually("the liar is banned", || async {
        honest
            .pool
            .store()
            .get(&liar.id())
            .await
            .unwrap()
            .is_some_and(|peer| {
                peer.is_banned(i64::try_from(now_ms()).unwrap())
                    && peer
                        .ban_reason
                        .is_some_and(|why| why.contains("not signed by the publisher"))
            })
    })
    .await;
    eventually("the liar is disconnected", || async {
        !honest
            .pool
            .connected()
            .iter()
            .any(|p| p.node_id.as_ref() == liar.id())
    })
    .await;
    assert_eq!(
        honest.head().await.0,
        0,
        "nothing of the other chain stored"
    );
    honest.stop().await;
    liar.stop().await;
}

/// What a liar answers a `chain/1` request with; `None`: it never answers (it holds
/// the channel open).
type ChainAnswer = Arc<dyn Fn(ChainRequest) -> Option<Bytes> + Send + Sync>;

/// A bare SWP/1 node serving `chain/1` (and `txrelay/1`) with made-up answers.
struct Liar {
    key: Keypair,
    handle: NodeHandle,
    task: tokio::task::JoinHandle<()>,
}

impl Liar {
    /// Answers `chain/1` with `chain`, and `txrelay/1` requests for transactions with
    /// `txs`.
    async fn start(chain: ChainAnswer, txs: Vec<Transaction>) -> Self {
        let key = Keypair::generate();
        let secret = secp256k1::SecretKey::from_secret_bytes(*key.secret_bytes()).unwrap();
        let config = NodeConfig {
            connection: connection_config(secret),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_connections: 16,
        };
        let chain_service: Service = Arc::new(move |mut channel: Channel| {
            let chain = chain.clone();
            Box::pin(async move {
                if let Ok(Some(message)) = channel.recv().await {
                    let request = protocol::decode_chain_request(&message).unwrap();
                    match chain(request) {
                        Some(answer) => {
                            let _ = channel.send(answer).await;
                            let _ = channel.finish();
                        }
                        None => tokio::time::sleep(Duration::from_secs(3600)).await,
                    }
                }
            })
        });
        let relay_service: Service = Arc::new(move |mut channel: Channel| {
            let txs = txs.clone();
            Box::pin(async move {
                if let Ok(Some(message)) = channel.recv().await {
                    let answer = match protocol::decode_relay_request(&message).unwrap() {
                        RelayRequest::Announce(_) => RelayResponse::Ack,
                        RelayRequest::GetTransactions(_) => RelayResponse::Transactions(txs),
                    };
                    let _ = channel.send(answer.encode().unwrap()).await;
                    let _ = channel.finish();
                }
            })
        });
        let node = Node::bind(
            config,
            [
                (CHAIN_SERVICE.to_string(), chain_service),
                (RELAY_SERVICE.to_string(), relay_service),
            ],
        )
        .await
        .unwrap();
        let handle = node.handle();
        Self {
            key,
            handle,
            task: tokio::spawn(node.run()),
        }
    }

    fn id(&self) -> [u8; 33] {
        self.key.public_key().to_bytes()
    }

    /// Announces `txids` to the connected `node` on `txrelay/1`.
    async fn announce(&self, node: &TestNode, txids: Vec<Hash>) {
        let peer = secp256k1::PublicKey::from_slice(&node.id()).unwrap();
        let mut connection = None;
        eventually("the liar sees the connection", || {
            connection = self.handle.connection(&peer);
            std::future::ready(connection.is_some())
        })
        .await;
        let connection = connection.unwrap();
        let mut channel = connection.open(RELAY_SERVICE, 4).await.unwrap();
        channel
            .send(RelayRequest::Announce(txids).encode().unwrap())
            .await
            .unwrap();
        let _ = channel.recv().await;
    }

    async fn stop(self) {
        self.handle.shutdown();
        self.task.await.unwrap();
    }
}

impl TestNode {
    /// Connects to `liar` and waits until the pool bans it with a reason containing
    /// `why`.
    async fn bans(&self, liar: &Liar, why: &str) {
        self.pool
            .dial(&liar.id(), liar.handle.local_addr())
            .await
            .unwrap();
        self.banned(liar, why).await;
    }

    /// Waits until the pool bans `liar` with a reason containing `why`, and the liar is
    /// disconnected.
    async fn banned(&self, liar: &Liar, why: &str) {
        eventually(&format!("the liar is banned for {why:?}"), || async {
            self.pool
                .store()
                .get(&liar.id())
                .await
                .unwrap()
                .is_some_and(|peer| {
                    peer.is_banned(i64::try_from(now_ms()).unwrap())
                        && peer.ban_reason.is_some_and(|reason| reason.contains(why))
                })
        })
        .await;
        eventually("the liar is disconnected", || async {
            !self
                .pool
                .connected()
                .iter()
                .any(|p| p.node_id.as_ref() == liar.id())
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_answering_garbage_is_banned() {
    let dir = tempfile::tempdir().unwrap();
    let publisher_key = Keypair::generate();
    let spec = spec(&publisher_key);
    let honest = TestNode::start(dir.path(), spec, None).await;
    let liar = Liar::start(
        Arc::new(|_| Some(Bytes::from_static(&[0xff; 16]))),
        Vec::new(),
    )
    .await;
    honest.bans(&liar, "chain/1").await;
    assert_eq!(honest.head().await.0, 0);
    honest.stop().await;
    liar.stop().await;
}

/// A liar's `chain/1` answers from `publisher`'s chain: its real tip and headers, and
/// for blocks whatever `blocks` makes of the real ones (`None`: no answer).
async fn serving(
    publisher: &TestNode,
    blocks: impl Fn(&[SignedBlock], u64, u32) -> Option<Vec<SignedBlock>> + Send + Sync + 'static,
) -> ChainAnswer {
    let store = publisher.chain().chain().store().clone();
    let head = store.head().await.unwrap().unwrap();
    let headers = store.headers(0, 100).await.unwrap();
    let real = store.blocks(0, 100).await.unwrap();
    let tip = Tip {
        seq: head.seq(),
        hash: head.hash(),
    };
    Arc::new(move |request| {
        let response = match request {
            ChainRequest::GetTip => ChainResponse::Tip(Some(tip)),
            ChainRequest::GetHeaders { from_seq, count } => ChainResponse::Headers(
                headers
                    .iter()
                    .skip(from_seq as usize)
                    .take(count as usize)
                    .copied()
                    .collect(),
            ),
            ChainRequest::GetBlocks { from_seq, count } => {
                ChainResponse::Blocks(blocks(&real, from_seq, count)?)
            }
            ChainRequest::AnnounceTip(_) => ChainResponse::Ack,
        };
        Some(response.encode().unwrap())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_sends_the_blocks_it_claims_is_banned_for_stalling() {
    let dir = tempfile::tempdir().unwrap();
    let (publisher, spec) = TestNode::publisher(dir.path()).await;
    publisher.fund(8).await;
    publisher.publish_spends(4).await;
    let liar = Liar::start(serving(&publisher, |_, _, _| None).await, Vec::new()).await;
    let mut config = ServiceConfig::default();
    config.sync.request_timeout_ms = 200;
    let honest = TestNode::start_with(dir.path(), spec, config).await;
    honest.bans(&liar, "stalled").await;
    assert_eq!(honest.head().await.0, 0);
    for node in [publisher, honest] {
        node.stop().await;
    }
    liar.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_serving_blocks_that_do_not_match_their_headers_is_banned() {
    let dir = tempfile::tempdir().unwrap();
    let (publisher, spec) = TestNode::publisher(dir.path()).await;
    publisher.fund(8).await;
    publisher.publish_spends(4).await;
    // The liar serves the publisher's real tip and headers, and its blocks with the
    // transactions of the block before: bodies that do not hash to the headers.
    let answer = serving(&publisher, |blocks, from_seq, count| {
        Some(
            blocks
                .iter()
                .skip(from_seq as usize)
                .take(count as usize)
                .map(|block| {
                    let mut block = block.clone();
                    let seq = block.block.header.bk_seq as usize;
                    block.block.body = blocks[seq - 1].block.body.clone();
                    block
                })
                .collect(),
        )
    })
    .await;
    let liar = Liar::start(answer, Vec::new()).await;
    let honest = TestNode::start(dir.path(), spec, None).await;
    honest.bans(&liar, "does not match its signed header").await;
    assert_eq!(honest.head().await.0, 0, "nothing stored");
    for node in [publisher, honest] {
        node.stop().await;
    }
    liar.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_relaying_a_forged_transaction_is_banned_and_it_is_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (honest, _) = TestNode::publisher(dir.path()).await;
    // A valid spend, then signed by a key that does not own the output.
    let mut forged = honest.spend(1).await;
    let thief = Keypair::generate();
    let signing_hash = forged.signing_hash(0).unwrap();
    forged.sigs[0] = Sig::sign(&thief, &signing_hash);
    let txid = forged.hash();
    let tip = ChainResponse::Tip(None).encode().unwrap();
    let liar = Liar::start(Arc::new(move |_| Some(tip.clone())), vec![forged]).await;
    honest
        .pool
        .dial(&liar.id(), liar.handle.local_addr())
        .await
        .unwrap();
    liar.announce(&honest, vec![txid]).await;
    honest.banned(&liar, "txrelay/1").await;
    assert!(honest.chain().pooled(&txid).is_none());
    assert_eq!(
        honest.chain().publish().await.unwrap(),
        None,
        "nothing to publish"
    );
    honest.stop().await;
    liar.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_spend_is_refused_by_every_node() {
    let dir = tempfile::tempdir().unwrap();
    let (publisher, spec) = TestNode::publisher(dir.path()).await;
    let follower = TestNode::start(dir.path(), spec, None).await;
    follower.connect(&publisher).await;
    let keys = wallet();
    let first = follower.spend(1).await;
    // The same output to another address.
    let mut second = first.clone();
    second.outputs[0].address = keys[2].address();
    second.sigs.clear();
    second.sign(&keys[..1]).unwrap();
    second.update_header().unwrap();
    let txid = follower.chain().submit(first).await.unwrap();
    let refused = follower.chain().submit(second.clone()).await.unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("already spent by pool transaction"),
        "{refused}"
    );
    eventually("the publisher has the first", || async {
        publisher.chain().pooled(&txid).is_some()
    })
    .await;
    let refused = publisher.chain().submit(second.clone()).await.unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("already spent by pool transaction"),
        "{refused}"
    );
    publisher.chain().publish().await.unwrap().unwrap();
    follower.converges_with(&publisher).await;
    // Once the first is confirmed the second spends nothing that is unspent.
    let refused = follower.chain().submit(second).await.unwrap_err();
    assert!(
        refused.to_string().contains("not an unspent output"),
        "{refused}"
    );
    for node in [publisher, follower] {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_what_the_chain_holds_and_refuses_bad_requests() {
    use skywire_chain::api::{ChainApiService, unspent_from_proto};
    use skywire_coin::{Decode as _, Encode as _};
    use skywire_proto::chain::v1 as pb;
    use skywire_proto::chain::v1::chain_api_server::ChainApi as _;
    use tonic::{Code, Request};

    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::with_payments(dir.path()).await;
    let api = ChainApiService::new(node.chain().clone());
    let keys = wallet();

    let status = api
        .status(Request::new(pb::StatusRequest {}))
        .await
        .unwrap()
        .into_inner();
    let (seq, hash) = node.head().await;
    assert_eq!(
        (status.head_seq, status.head_hash.as_ref()),
        (seq, &hash.0[..])
    );
    assert!(status.publisher);
    assert_eq!(status.burn_factor, 2);

    // Blocks by sequence number and by hash; none past the head.
    let by_seq = api
        .get_block(Request::new(pb::GetBlockRequest {
            by: Some(pb::get_block_request::By::Seq(2)),
        }))
        .await
        .unwrap()
        .into_inner();
    let block = SignedBlock::decode_exact(&by_seq.block).unwrap();
    assert_eq!(block.block.header.bk_seq, 2);
    assert_eq!(by_seq.hash.as_ref(), &block.block.hash().0[..]);
    let by_hash = api
        .get_block(Request::new(pb::GetBlockRequest {
            by: Some(pb::get_block_request::By::Hash(by_seq.hash.clone())),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_hash.block, by_seq.block);
    let missing = api
        .get_block(Request::new(pb::GetBlockRequest {
            by: Some(pb::get_block_request::By::Seq(seq + 1)),
        }))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    for bad in [
        pb::GetBlockRequest { by: None },
        pb::GetBlockRequest {
            by: Some(pb::get_block_request::By::Hash(vec![1; 31].into())),
        },
    ] {
        let error = api.get_block(Request::new(bad)).await.unwrap_err();
        assert_eq!(error.code(), Code::InvalidArgument);
    }

    // A confirmed transaction, a pooled one, an unknown one.
    let confirmed = &block.block.body.transactions[0];
    let answer = api
        .get_transaction(Request::new(pb::GetTransactionRequest {
            txid: confirmed.hash().0.to_vec().into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(answer.confirmed);
    assert_eq!(answer.block_seq, 2);
    assert_eq!(
        Transaction::decode_exact(&answer.transaction).unwrap(),
        *confirmed
    );
    let pooled = node.spend(1).await;
    let submitted = api
        .submit(Request::new(pb::SubmitRequest {
            transaction: pooled.encode().unwrap().into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(submitted.txid.as_ref(), &pooled.hash().0[..]);
    let answer = api
        .get_transaction(Request::new(pb::GetTransactionRequest {
            txid: submitted.txid.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(!answer.confirmed);
    let unknown = api
        .get_transaction(Request::new(pb::GetTransactionRequest {
            txid: vec![7; 32].into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    // Submitting: the same again, garbage, a forged signature.
    let again = api
        .submit(Request::new(pb::SubmitRequest {
            transaction: pooled.encode().unwrap().into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists);
    let garbage = api
        .submit(Request::new(pb::SubmitRequest {
            transaction: vec![1, 2, 3].into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(garbage.code(), Code::InvalidArgument);
    let mut forged = node.spend(1).await;
    forged.sigs[0] = Sig::sign(&Keypair::generate(), &forged.signing_hash(0).unwrap());
    let refused = api
        .submit(Request::new(pb::SubmitRequest {
            transaction: forged.encode().unwrap().into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");

    // Balances and outputs, rebuilt and checked by their ids.
    let to = keys[1].address().to_string();
    let balance = api
        .get_balance(Request::new(pb::AddressRequest {
            address: to.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((balance.coins, balance.outputs), (2 * DROPLETS_PER_COIN, 2));
    assert!(balance.hours > 0);
    let unspent = api
        .get_unspent(Request::new(pb::AddressRequest { address: to }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unspent.outputs.len(), 2);
    for output in &unspent.outputs {
        let ux = unspent_from_proto(output).unwrap();
        assert_eq!(ux.body.address, keys[1].address());
        let mut lying = output.clone();
        lying.coins += 1;
        assert!(
            unspent_from_proto(&lying).is_err(),
            "an output that is not its id"
        );
    }
    let bad = api
        .get_balance(Request::new(pb::AddressRequest {
            address: "not an address".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    node.stop().await;
}

/// A REST request to `router`: its status and JSON body.
async fn rest(
    router: &axum::Router,
    method: &str,
    path: &str,
    body: Option<String>,
) -> (u16, serde_json::Value) {
    use tower::ServiceExt as _;
    let request = axum::http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.unwrap_or_default()))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 22)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_api_answers_in_json_and_refuses_with_machine_readable_errors() {
    use skywire_coin::Encode as _;

    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::with_payments(dir.path()).await;
    let router = skywire_chain::rest::router(node.chain().clone());
    let keys = wallet();
    let (seq, hash) = node.head().await;

    let (code, status) = rest(&router, "GET", "/api/v1/chain/status", None).await;
    assert_eq!(code, 200);
    assert_eq!(status["head"]["seq"], seq);
    assert_eq!(status["head"]["hash"], hash.to_string());
    assert_eq!(status["publisher"], true);
    assert_eq!(status["burn_factor"], 2);

    let (code, block) = rest(&router, "GET", "/api/v1/chain/blocks/2", None).await;
    assert_eq!(code, 200);
    assert_eq!(block["seq"], 2);
    let by_hash = format!("/api/v1/chain/blocks/{}", block["hash"].as_str().unwrap());
    assert_eq!(
        rest(&router, "GET", &by_hash, None).await,
        (200, block.clone())
    );
    let txid = block["transactions"][0]["txid"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, found) = rest(
        &router,
        "GET",
        &format!("/api/v1/chain/transactions/{txid}"),
        None,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        (&found["confirmed"], &found["block_seq"]),
        (&true.into(), &2.into())
    );
    assert_eq!(
        found["transaction"]["outputs"][0]["address"],
        keys[1].address().to_string()
    );

    let to = keys[1].address();
    let (code, balance) = rest(
        &router,
        "GET",
        &format!("/api/v1/chain/addresses/{to}/balance"),
        None,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        (&balance["coins"], &balance["outputs"]),
        (&(2 * DROPLETS_PER_COIN).into(), &2.into())
    );
    let (code, unspent) = rest(
        &router,
        "GET",
        &format!("/api/v1/chain/addresses/{to}/unspent"),
        None,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(unspent["outputs"].as_array().unwrap().len(), 2);

    // Submitting: accepted, then the same again, then a forged one.
    let tx = node.spend(1).await;
    let body = |tx: &Transaction| {
        format!(
            r#"{{"transaction":"{}"}}"#,
            hex::encode(tx.encode().unwrap())
        )
    };
    let (code, submitted) = rest(
        &router,
        "POST",
        "/api/v1/chain/transactions",
        Some(body(&tx)),
    )
    .await;
    assert_eq!(code, 201);
    assert_eq!(submitted["txid"], tx.hash().to_string());
    let pooled = format!("/api/v1/chain/transactions/{}", tx.hash());
    let (_, found) = rest(&router, "GET", &pooled, None).await;
    assert_eq!(
        (&found["confirmed"], &found["block_seq"]),
        (&false.into(), &serde_json::Value::Null)
    );
    // The output it spends is listed as spent by it until it is in a block.
    let from = keys[0].address();
    let (_, listed) = rest(
        &router,
        "GET",
        &format!("/api/v1/chain/addresses/{from}/unspent"),
        None,
    )
    .await;
    let outputs = listed["outputs"].as_array().unwrap();
    let input = tx.inputs[0].to_string();
    for output in outputs {
        let expected = if output["uxid"] == input.as_str() {
            serde_json::Value::from(tx.hash().to_string())
        } else {
            serde_json::Value::Null
        };
        assert_eq!(output["spent_by"], expected, "{output}");
    }
    assert!(outputs.iter().any(|o| o["uxid"] == input.as_str()));
    let again = rest(
        &router,
        "POST",
        "/api/v1/chain/transactions",
        Some(body(&tx)),
    )
    .await;
    assert_eq!(
        (again.0, &again.1["error"]["code"]),
        (409, &"already_exists".into())
    );
    let mut forged = node.spend(1).await;
    forged.sigs[0] = Sig::sign(&Keypair::generate(), &forged.signing_hash(0).unwrap());
    let refused = rest(
        &router,
        "POST",
        "/api/v1/chain/transactions",
        Some(body(&forged)),
    )
    .await;
    assert_eq!(
        (refused.0, &refused.1["error"]["code"]),
        (422, &"rejected".into())
    );

    // Bad requests: each a 4xx with a code and a message.
    let oversized = format!(r#"{{"transaction":"{}"}}"#, "00".repeat(64 * 1024));
    for (method, path, body, expected) in [
        ("GET", "/api/v1/chain/blocks/99", None, (404, "not_found")),
        (
            "GET",
            "/api/v1/chain/blocks/xyz",
            None,
            (400, "invalid_argument"),
        ),
        (
            "GET",
            "/api/v1/chain/blocks/99999999999999999999",
            None,
            (400, "invalid_argument"),
        ),
        (
            "GET",
            "/api/v1/chain/transactions/00",
            None,
            (400, "invalid_argument"),
        ),
        (
            "GET",
            &format!("/api/v1/chain/transactions/{}", "ab".repeat(32)),
            None,
            (404, "not_found"),
        ),
        (
            "GET",
            "/api/v1/chain/addresses/nope/balance",
            None,
            (400, "invalid_argument"),
        ),
        (
            "POST",
            "/api/v1/chain/transactions",
            Some("{".to_owned()),
            (400, "invalid_argument"),
        ),
        (
            "POST",
            "/api/v1/chain/transactions",
            Some(r#"{"transaction":"zz"}"#.to_owned()),
            (400, "invalid_argument"),
        ),
        (
            "POST",
            "/api/v1/chain/transactions",
            Some(r#"{"transaction":"0102"}"#.to_owned()),
            (400, "invalid_argument"),
        ),
        (
            "POST",
            "/api/v1/chain/transactions",
            Some(r#"{"tx":"00"}"#.to_owned()),
            (400, "invalid_argument"),
        ),
        (
            "POST",
            "/api/v1/chain/transactions",
            Some(oversized),
            (413, "too_large"),
        ),
    ] {
        let (code, answer) = rest(&router, method, path, body).await;
        assert_eq!(
            (code, answer["error"]["code"].as_str().unwrap()),
            expected,
            "{method} {path}: {answer}"
        );
        assert!(!answer["error"]["message"].as_str().unwrap().is_empty());
    }
    node.stop().await;
}
