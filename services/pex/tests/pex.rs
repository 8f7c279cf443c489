//! Peer exchange between whole nodes over real SWP/1 on loopback: each
//! node is a gateway, the pool (SQLite peer store), peer exchange and a DHT
//! (whose record peer exchange gives out) on an in-process bus.
//!
//! - A node that knows only B learns C from B and connects to it.
//! - Only peers a node dialed itself are given out; one request per peer
//!   per minute each way.
//! - A peer answering with too many records, a forged record, or a repeated
//!   one is banned and nothing of its answer is stored.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use prost::Message as _;
use skywire_bus::Bus;
use skywire_db::Db;
use skywire_dht::{Dht, DhtConfig};
use skywire_gateway::GatewayHandle;
use skywire_gateway::testing::{connection_config, init_logging, start_gateway};
use skywire_identity::{Keypair, PublicKey};
use skywire_kv::Kv;
use skywire_kv::presence::Presence;
use skywire_pex::protocol::{self, Code, ProtocolError};
use skywire_pex::{MAX_RECORDS, Pex, PexError, SERVICE};
use skywire_pool::store::PeerStore;
use skywire_pool::{Pool, PoolConfig};
use skywire_proto::dht::v1 as record_pb;
use skywire_proto::pex::v1 as pb;
use skywire_record::{NodeRecord, VerifyCache, now_ms};
use skywire_service::ServiceHost;
use skywire_wire::{Channel, Node, NodeConfig, NodeHandle, Service};

/// A fresh 127.0.x.1 address for each node of the test process (its own
/// /24, as on a real network).
fn next_ip() -> Ipv4Addr {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let [_, _, hi, lo] = n.to_be_bytes();
    Ipv4Addr::new(127, hi.max(1), lo, 1)
}

/// Waits up to 30 s for `check`.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One node: gateway, pool, peer exchange, DHT.
struct TestNode {
    key: Keypair,
    addr: SocketAddr,
    bus: Bus,
    presence: Presence,
    pool: Pool,
    pex: Pex,
    dht: Dht,
    gateway: GatewayHandle,
    task: tokio::task::JoinHandle<()>,
}

impl TestNode {
    async fn start(dir: &Path) -> Self {
        init_logging();
        let key = Keypair::generate();
        let kv = Kv::memory();
        let bus = Bus::local();
        let presence = Presence::new(kv.clone());
        let secret = secp256k1::SecretKey::from_secret_bytes(*key.secret_bytes()).unwrap();
        let (handle, task) = start_gateway(
            "gw",
            secret,
            SocketAddr::from((next_ip(), 0)),
            64,
            &bus,
            &presence,
            &kv,
        )
        .await;
        let addr = handle.node().unwrap().local_addr();
        let db = Db::sqlite_file(&dir.join(format!("{}.db", key.address())))
            .await
            .unwrap();
        db.migrate(&PeerStore::migrations()).await.unwrap();
        let host = ServiceHost::start(bus.clone(), presence.clone(), "pool")
            .await
            .unwrap();
        let pool = Pool::start(
            bus.clone(),
            PeerStore::new(db.clone()),
            host,
            PoolConfig::default(),
        )
        .await
        .unwrap();
        let pex = Pex::launch(
            bus.clone(),
            presence.clone(),
            kv.clone(),
            pool.clone(),
            "pex",
        )
        .await
        .unwrap();
        let config = DhtConfig {
            endpoints: vec![addr],
            ..DhtConfig::default()
        };
        let dht = Dht::launch(
            bus.clone(),
            presence.clone(),
            kv,
            db,
            "dht",
            key.clone(),
            config,
        )
        .await
        .unwrap();
        Self {
            key,
            addr,
            bus,
            presence,
            pool,
            pex,
            dht,
            gateway: handle,
            task,
        }
    }

    fn id(&self) -> [u8; 33] {
        self.key.public_key().to_bytes()
    }

    async fn knows(&self, node_id: &[u8; 33]) -> Option<Vec<String>> {
        self.pool
            .store()
            .get(node_id)
            .await
            .unwrap()
            .map(|p| p.endpoints)
    }

    fn is_connected(&self, node_id: &[u8; 33]) -> bool {
        self.pool
            .connected()
            .iter()
            .any(|p| p.node_id.as_ref() == node_id)
    }

    async fn stop(self) {
        self.pex.shutdown().await;
        self.pool.shutdown().await;
        self.dht.shutdown().await;
        self.gateway.shutdown();
        self.task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_knows_only_b_learns_c_from_b_and_connects_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        TestNode::start(dir.path()).await,
        TestNode::start(dir.path()).await,
        TestNode::start(dir.path()).await,
    );
    // B dials C: C becomes first-hand for B once C's answer brings its
    // record.
    b.pool.dial(&c.id(), c.addr).await.unwrap();
    eventually("B gives out C", || async {
        b.pex.gives_out(&c.key.public_key())
    })
    .await;
    // C was dialed by B, not the other way: C does not vouch for B.
    assert!(!c.pex.gives_out(&b.key.public_key()));

    // A knows only B.
    a.pool.dial(&b.id(), b.addr).await.unwrap();
    eventually("A learned C's endpoint from B", || async {
        a.knows(&c.id()).await == Some(vec![c.addr.to_string()])
    })
    .await;
    // The pool dials what peer exchange fed it.
    eventually("A connected to C", || async { a.is_connected(&c.id()) }).await;
    eventually("A gives out B and C", || async {
        a.pex.gives_out(&b.key.public_key()) && a.pex.gives_out(&c.key.public_key())
    })
    .await;
    // A dialed B: B does not give A out.
    assert!(!b.pex.gives_out(&a.key.public_key()));

    // One request per peer per minute: A does not ask B again...
    assert!(matches!(
        a.pex.exchange(&b.id(), true).await,
        Err(PexError::TooSoon)
    ));
    // ...and B refuses a second request from A all the same.
    let rogue = ServiceHost::start(a.bus.clone(), a.presence.clone(), "rogue")
        .await
        .unwrap();
    let mut channel = rogue.open(&b.id(), SERVICE, 4).await.unwrap();
    channel.send(protocol::encode_request(None)).await.unwrap();
    let answer = channel.recv().await.unwrap().unwrap();
    let refused = protocol::decode_response(
        &answer,
        &b.key.public_key(),
        now_ms(),
        &VerifyCache::default(),
    );
    assert!(
        matches!(
            refused,
            Err(ProtocolError::Refused {
                code: Code::RateLimited,
                ..
            })
        ),
        "{refused:?}"
    );
    rogue.shutdown().await;

    for node in [a, b, c] {
        node.stop().await;
    }
}

/// How a malicious node answers `pex/1`, given its own record.
type Answer = Arc<dyn Fn(&NodeRecord) -> pb::Response + Send + Sync>;

/// A node serving a `pex/1` that lies.
struct Liar {
    key: Keypair,
    handle: NodeHandle,
    task: tokio::task::JoinHandle<()>,
}

impl Liar {
    async fn start(answer: Answer) -> Self {
        let key = Keypair::generate();
        let secret = secp256k1::SecretKey::from_secret_bytes(*key.secret_bytes()).unwrap();
        let config = NodeConfig {
            connection: connection_config(secret),
            listen: SocketAddr::from((next_ip(), 0)),
            max_connections: 16,
        };
        // The record needs the port: bind first, then sign.
        let cell: Arc<std::sync::OnceLock<NodeRecord>> = Arc::default();
        let record = cell.clone();
        let service: Service = Arc::new(move |mut channel: Channel| {
            let (record, answer) = (record.clone(), answer.clone());
            Box::pin(async move {
                if let Ok(Some(_)) = channel.recv().await {
                    let response = answer(record.get().unwrap());
                    let _ = channel.send(Bytes::from(response.encode_to_vec())).await;
                    let _ = channel.finish();
                }
            })
        });
        let node = Node::bind(config, [(SERVICE.to_string(), service)])
            .await
            .unwrap();
        let handle = node.handle();
        let own = NodeRecord::sign(&key, vec![handle.local_addr()], vec![], 1, now_ms()).unwrap();
        cell.set(own).unwrap();
        Self {
            key,
            handle,
            task: tokio::spawn(node.run()),
        }
    }

    async fn stop(self) {
        self.handle.shutdown();
        self.task.await.unwrap();
    }
}

/// A valid record of a fresh key at an address where nothing listens.
fn stranger(i: u8) -> record_pb::NodeRecord {
    let endpoint = SocketAddr::from((Ipv4Addr::new(127, 250, i, 9), 9));
    NodeRecord::sign(&Keypair::generate(), vec![endpoint], vec![], 1, now_ms())
        .unwrap()
        .to_proto()
}

fn peers(own: &NodeRecord, records: Vec<record_pb::NodeRecord>) -> pb::Response {
    pb::Response {
        body: Some(pb::response::Body::Peers(pb::Peers {
            own: Some(own.to_proto()),
            records,
        })),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_giving_out_bad_answers_is_banned_and_nothing_of_them_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let victim = TestNode::start(dir.path()).await;
    let too_many: Answer =
        Arc::new(|own| peers(own, (0..=MAX_RECORDS as u8).map(stranger).collect()));
    let forged: Answer = Arc::new(|own| {
        let mut records: Vec<_> = (0..29).map(stranger).collect();
        // A record of one key claiming another node's id.
        let mut lie = stranger(100);
        lie.node_id = Keypair::generate().public_key().to_bytes().to_vec().into();
        records.push(lie);
        peers(own, records)
    });
    let repeated: Answer = Arc::new(|own| {
        let record = stranger(200);
        peers(own, vec![record.clone(), stranger(201), record])
    });
    for (what, answer) in [
        ("too many", too_many),
        ("forged", forged),
        ("repeated", repeated),
    ] {
        let liar = Liar::start(answer).await;
        let liar_id = liar.key.public_key().to_bytes();
        let before = victim.pool.store().count().await.unwrap();
        victim
            .pool
            .dial(&liar_id, liar.handle.local_addr())
            .await
            .unwrap();
        eventually(&format!("{what}: the liar is banned"), || async {
            victim
                .pool
                .store()
                .get(&liar_id)
                .await
                .unwrap()
                .is_some_and(|p| p.is_banned(i64::try_from(now_ms()).unwrap()))
        })
        .await;
        // Only the liar itself was stored: none of the records it gave.
        assert_eq!(
            victim.pool.store().count().await.unwrap(),
            before + 1,
            "{what}"
        );
        assert!(!victim.pex.gives_out(&liar.key.public_key()), "{what}");
        liar.stop().await;
    }
    victim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_of_unknown_nodes_are_fed_to_the_pool_but_not_given_out() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path()).await;
    let given: Vec<record_pb::NodeRecord> = (0..3).map(|i| stranger(50 + i)).collect();
    let expected: Vec<PublicKey> = given
        .iter()
        .map(|r| PublicKey::from_bytes(&r.node_id).unwrap())
        .collect();
    let honest: Answer = Arc::new(move |own| peers(own, given.clone()));
    let peer = Liar::start(honest).await;
    node.pool
        .dial(&peer.key.public_key().to_bytes(), peer.handle.local_addr())
        .await
        .unwrap();
    for key in &expected {
        let id = key.to_bytes();
        eventually("the record is in the pool's store", || async {
            node.knows(&id).await.is_some_and(|e| e.len() == 1)
        })
        .await;
        // Heard of, not connected to: not given out.
        assert!(!node.pex.gives_out(key));
    }
    // The peer we dialed is: its own record came with the answer.
    assert!(node.pex.gives_out(&peer.key.public_key()));
    peer.stop().await;
    node.stop().await;
}
