//! Whole nodes for DHT tests: a gateway (real SWP/1 on loopback) and the
//! DHT on an in-process bus, with the routing table in a SQLite file. Each
//! node listens on its own 127.x.y.1 address, so every node is on its own
//! /24 as on a real network, and the subnet limits apply as they would.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use skywire_bus::Bus;
use skywire_db::Db;
use skywire_dht::{Dht, DhtConfig};
use skywire_gateway::GatewayHandle;
use skywire_gateway::testing::{init_logging, start_gateway};
use skywire_identity::{Keypair, PublicKey};
use skywire_kv::Kv;
use skywire_kv::presence::Presence;

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
