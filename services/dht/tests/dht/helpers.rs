//! Whole nodes for DHT tests: a gateway (real SWP/1 on loopback) and the
//! DHT on an in-process bus, with the routing table in a SQLite file. Each
//! node listens on its own 127.x.y.1 address, so every node is on its own
//! /24 as on a real network, and the subnet limits apply as they would.
//!
//! And [`RawNode`], a plain SWP/1 node speaking `dht/1` by hand, for the
//! tests that need a peer to misbehave or to be slow.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use prost::Message as _;
use skywire_bus::Bus;
use skywire_db::Db;
use skywire_dht::{Dht, DhtConfig};
use skywire_gateway::GatewayHandle;
use skywire_gateway::testing::{init_logging, start_gateway};
use skywire_identity::{Keypair, PublicKey};
use skywire_kv::Kv;
use skywire_kv::presence::Presence;
use skywire_proto::dht::v1 as pb;
use skywire_record::{NodeRecord, now_ms};
use skywire_wire::{Channel, Connection, Node, NodeConfig, NodeHandle, Service};

/// A fresh 127.x.y.1 address for each node of the test process.
pub(crate) fn next_ip() -> Ipv4Addr {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let [_, _, hi, lo] = n.to_be_bytes();
    Ipv4Addr::new(127, hi.max(1), lo, 1)
}

/// One node: gateway + DHT.
pub(crate) struct TestNode {
    pub(crate) dht: Dht,
    pub(crate) key: Keypair,
    pub(crate) addr: SocketAddr,
    pub(crate) db_path: PathBuf,
    /// The node's bus, as its own services see it.
    pub(crate) bus: Bus,
    gateway: GatewayHandle,
    task: tokio::task::JoinHandle<()>,
}

impl TestNode {
    /// Starts a node on a fresh address with a new key, its table in
    /// `dir`, joining through `bootstrap`.
    pub(crate) async fn start(dir: &Path, bootstrap: &[&TestNode]) -> Self {
        let bootstrap = bootstrap
            .iter()
            .map(|n| (n.key.public_key(), n.addr))
            .collect();
        let key = Keypair::generate();
        let db_path = dir.join(format!("{}.db", key.address()));
        Self::start_with(key, next_ip(), db_path, bootstrap).await
    }

    /// [`start`](Self::start)s a node and waits until it has joined.
    pub(crate) async fn join(dir: &Path, bootstrap: &[&TestNode]) -> Self {
        let node = Self::start(dir, bootstrap).await;
        node.joined().await;
        node
    }

    /// Starts a node with this key and address, table file and bootstrap.
    pub(crate) async fn start_with(
        key: Keypair,
        ip: Ipv4Addr,
        db_path: PathBuf,
        bootstrap: Vec<(PublicKey, SocketAddr)>,
    ) -> Self {
        let config = DhtConfig {
            bootstrap,
            ..DhtConfig::default()
        };
        Self::start_with_config(key, ip, db_path, config).await
    }

    /// [`start_with`](Self::start_with) this DHT config (its endpoints are
    /// set to the gateway's).
    pub(crate) async fn start_with_config(
        key: Keypair,
        ip: Ipv4Addr,
        db_path: PathBuf,
        dht_config: DhtConfig,
    ) -> Self {
        init_logging();
        let kv = Kv::memory();
        let bus = Bus::local();
        let presence = Presence::new(kv.clone());
        let secret = secp256k1::SecretKey::from_secret_bytes(*key.secret_bytes()).unwrap();
        let (handle, task) = start_gateway(
            "gw",
            secret,
            SocketAddr::from((ip, 0)),
            1024,
            &bus,
            &presence,
            &kv,
        )
        .await;
        let addr = handle.node().unwrap().local_addr();
        let db = Db::sqlite_file(&db_path).await.unwrap();
        let config = DhtConfig {
            endpoints: vec![addr],
            ..dht_config
        };
        let dht = Dht::launch(bus.clone(), presence, kv, db, "dht", key.clone(), config)
            .await
            .unwrap();
        Self {
            dht,
            key,
            addr,
            db_path,
            bus,
            gateway: handle,
            task,
        }
    }

    /// Waits until the node has joined (bootstrap, own lookup, publication).
    pub(crate) async fn joined(&self) {
        tokio::time::timeout(Duration::from_secs(60), self.dht.joined())
            .await
            .expect("joined within 60 s");
    }

    /// The live SWP/1 connections this node dialed (not the ones other
    /// nodes dialed to it).
    pub(crate) fn dialed_connections(&self) -> usize {
        self.gateway.node().map_or(0, |node| {
            node.connections()
                .iter()
                .filter(|c| c.role() == skywire_wire::Role::Dialer)
                .count()
        })
    }

    /// Stops the DHT (saving its table) and the gateway.
    pub(crate) async fn stop(self) {
        self.dht.shutdown().await;
        self.gateway.shutdown();
        self.task.await.unwrap();
    }
}

/// How long a [`RawNode`] holds a request it does not answer: until the
/// asker gives up, or long after it should have.
const HOLD: Duration = Duration::from_secs(30);

/// Requests raw nodes hold unanswered: now, and the most at once.
#[derive(Default)]
pub(crate) struct Held {
    now: AtomicUsize,
    peak: AtomicUsize,
}

impl Held {
    fn enter(&self) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
    }

    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }

    pub(crate) fn now(&self) -> usize {
        self.now.load(Ordering::SeqCst)
    }

    pub(crate) fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

/// What a [`RawNode`] does with one `dht/1` request.
pub(crate) enum Reply {
    /// Sends this answer, then waits for the channel's next request.
    Answer(pb::Response),
    /// Sends nothing and holds the channel, counted in this [`Held`], until
    /// the asker gives up (or [`HOLD`] passes); then drops it.
    Hold(Arc<Held>),
}

/// How a [`RawNode`] replies to a request: given its body and the node's
/// own record (set once the node is bound, before anyone can reach it).
pub(crate) type Respond =
    Arc<dyn Fn(&pb::request::Body, Option<&NodeRecord>) -> Reply + Send + Sync>;

/// A plain SWP/1 node speaking `dht/1` by hand: as a client, it opens raw
/// channels to a [`TestNode`]; as a server, it replies to each request as
/// its [`Respond`] says. A request that does not decode, or has no body,
/// ends the channel.
pub(crate) struct RawNode {
    pub(crate) key: Keypair,
    pub(crate) handle: NodeHandle,
    /// Its signed record, at its listening address.
    pub(crate) record: NodeRecord,
    task: tokio::task::JoinHandle<()>,
}

impl RawNode {
    /// Starts a raw node with `key` on a fresh address.
    pub(crate) async fn start(key: Keypair, respond: Respond) -> Self {
        let secret = secp256k1::SecretKey::from_secret_bytes(*key.secret_bytes()).unwrap();
        let config = NodeConfig {
            connection: skywire_gateway::testing::connection_config(secret),
            listen: SocketAddr::from((next_ip(), 0)),
            max_connections: 100,
        };
        // The record needs the port: bind first, then sign.
        let record_cell: Arc<OnceLock<NodeRecord>> = Arc::default();
        let cell = record_cell.clone();
        let service: Service = Arc::new(move |channel: Channel| {
            Box::pin(serve(channel, cell.clone(), respond.clone()))
        });
        let node = Node::bind(config, [("dht/1".to_string(), service)])
            .await
            .unwrap();
        let handle = node.handle();
        let record =
            NodeRecord::sign(&key, vec![handle.local_addr()], vec![], 1, now_ms()).unwrap();
        record_cell.set(record.clone()).unwrap();
        Self {
            key,
            handle,
            record,
            task: tokio::spawn(node.run()),
        }
    }

    /// A connection to `node`, for raw `dht/1` channels.
    pub(crate) async fn connect(&self, node: &TestNode) -> Connection {
        let key = secp256k1::PublicKey::from_slice(&node.key.public_key().to_bytes()).unwrap();
        self.handle.connect(node.addr, &key).await.unwrap()
    }

    /// Shuts the node down and waits for it.
    pub(crate) async fn stop(self) {
        self.handle.shutdown();
        self.task.await.unwrap();
    }
}

/// Serves one inbound `dht/1` channel of a [`RawNode`].
async fn serve(mut channel: Channel, record: Arc<OnceLock<NodeRecord>>, respond: Respond) {
    while let Ok(Some(message)) = channel.recv().await {
        let Some(body) = pb::Request::decode(message).ok().and_then(|r| r.body) else {
            return;
        };
        match respond(&body, record.get()) {
            Reply::Answer(response) => {
                let sent = channel.send(Bytes::from(response.encode_to_vec())).await;
                if sent.is_err() {
                    return;
                }
            }
            Reply::Hold(held) => {
                held.enter();
                let _ = tokio::time::timeout(HOLD, channel.recv()).await;
                held.leave();
                return;
            }
        }
    }
}

/// The answer of a node that knows nothing: a Pong with `record`, no
/// nodes, no record, no providers, and every put taken.
pub(crate) fn empty_answer(body: &pb::request::Body, record: Option<&NodeRecord>) -> pb::Response {
    use pb::request::Body as Rq;
    use pb::response::Body as Rs;
    let body = match body {
        Rq::Ping(_) => Rs::Pong(pb::Pong {
            record: record.map(NodeRecord::to_proto),
        }),
        Rq::FindNode(_) => Rs::Nodes(pb::Nodes { nodes: Vec::new() }),
        Rq::GetRecord(_) => Rs::Record(pb::RecordReply::default()),
        Rq::PutRecord(_) | Rq::AddProvider(_) => Rs::Stored(pb::Stored { ttl_ms: 60_000 }),
        Rq::GetProviders(_) => Rs::Providers(pb::ProvidersReply::default()),
    };
    pb::Response { body: Some(body) }
}
