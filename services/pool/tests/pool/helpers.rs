//! A small cluster for pool tests: a gateway, the pool with its admin gRPC
//! endpoint on 127.0.0.1:0, and remote SWP/1 nodes to connect to, in
//! embedded mode (in-process bus, memory, SQLite) or cluster mode (NATS,
//! Redis, PostgreSQL).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use secp256k1::{PublicKey, SecretKey};
use skywire_bus::Bus;
use skywire_db::Db;
use skywire_gateway::GatewayHandle;
pub(crate) use skywire_gateway::testing::{MODES, Mode};
use skywire_gateway::testing::{
    connection_config, init_logging, start_gateway, test_nats_url, test_redis_url, unique,
};
use skywire_kv::Kv;
use skywire_kv::presence::Presence;
use skywire_pool::store::PeerStore;
use skywire_pool::{Pool, PoolConfig};
use skywire_proto::pool::v1::pool_client::PoolClient;
use skywire_service::ServiceHost;
use skywire_wire::{Channel, Node, NodeConfig, NodeHandle, Service};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel as GrpcChannel;

/// The cluster's shared pieces that outlive a pool restart.
pub(crate) struct Infra {
    pub(crate) bus: Bus,
    pub(crate) kv: Kv,
    pub(crate) presence: Presence,
    pub(crate) database_url: String,
    _dir: tempfile::TempDir,
}

impl Infra {
    pub(crate) async fn new(mode: Mode) -> Self {
        init_logging();
        let dir = tempfile::tempdir().unwrap();
        match mode {
            Mode::Embedded => {
                let kv = Kv::memory();
                Self {
                    bus: Bus::local(),
                    presence: Presence::new(kv.clone()),
                    kv,
                    database_url: format!("sqlite://{}", dir.path().join("pool.db").display()),
                    _dir: dir,
                }
            }
            Mode::Cluster => {
                let url = test_nats_url();
                let kv = Kv::connect_redis(&test_redis_url()).await.unwrap();
                let (_, database_url) = skywire_db::testing::fresh_postgres().await.unwrap();
                Self {
                    // A namespace of its own: other tests share the server,
                    // and a dial on `sw.gw.any.cmd` must reach our gateway.
                    bus: Bus::connect_nats(&url, "pool-test")
                        .await
                        .unwrap()
                        .with_namespace(&unique("test"))
                        .unwrap(),
                    presence: Presence::new(kv.clone())
                        .with_prefix(format!("{}:", unique("presence"))),
                    kv,
                    database_url,
                    _dir: dir,
                }
            }
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        self._dir.path()
    }

    /// A gateway replica with the shared node key.
    pub(crate) async fn gateway(
        &self,
        secret_key: SecretKey,
    ) -> (GatewayHandle, tokio::task::JoinHandle<()>) {
        start_gateway(
            &unique("gw"),
            secret_key,
            SocketAddr::from(([127, 0, 0, 1], 0)),
            100,
            &self.bus,
            &self.presence,
            &self.kv,
        )
        .await
    }

    /// The pool with its admin endpoint; `outbound_peers` to keep.
    pub(crate) async fn pool(&self, outbound_peers: usize) -> TestPool {
        let db = Db::connect(&self.database_url).await.unwrap();
        db.migrate(&PeerStore::migrations()).await.unwrap();
        let host = ServiceHost::start(self.bus.clone(), self.presence.clone(), &unique("pool"))
            .await
            .unwrap();
        let config = PoolConfig {
            outbound_peers,
            tick: Duration::from_millis(100),
            ..PoolConfig::default()
        };
        let pool = Pool::start(self.bus.clone(), PeerStore::new(db), host.clone(), config)
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let server = tokio::spawn(skywire_pool::admin::serve(
            listener,
            pool.clone(),
            stop.clone(),
        ));
        let client = PoolClient::connect(format!("http://{addr}")).await.unwrap();
        TestPool {
            pool,
            host,
            client,
            stop,
            server,
        }
    }
}

pub(crate) struct TestPool {
    pub(crate) pool: Pool,
    pub(crate) host: ServiceHost,
    pub(crate) client: PoolClient<GrpcChannel>,
    stop: CancellationToken,
    server: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
}

impl TestPool {
    pub(crate) async fn stop(self) {
        self.stop.cancel();
        self.server.await.unwrap().unwrap();
        self.pool.shutdown().await;
        self.host.shutdown().await;
    }
}

/// A remote node outside the cluster, serving `inbox/1`: every message any
/// channel brings is recorded.
pub(crate) struct Remote {
    pub(crate) key: SecretKey,
    pub(crate) handle: NodeHandle,
    pub(crate) received: Arc<Mutex<Vec<(String, Bytes)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Remote {
    pub(crate) async fn start(key: SecretKey, listen: &str) -> Self {
        let received: Arc<Mutex<Vec<(String, Bytes)>>> = Arc::default();
        let sink = received.clone();
        let service: Service = Arc::new(move |mut channel: Channel| {
            let sink = sink.clone();
            Box::pin(async move {
                while let Ok(Some(message)) = channel.recv().await {
                    sink.lock()
                        .unwrap()
                        .push((channel.service().to_owned(), message));
                }
            })
        });
        let config = NodeConfig {
            connection: connection_config(key),
            listen: listen.parse().unwrap(),
            max_connections: 100,
        };
        let node = Node::bind(config, [("inbox/1".to_string(), service)])
            .await
            .unwrap();
        let handle = node.handle();
        Self {
            key,
            handle,
            received,
            task: tokio::spawn(node.run()),
        }
    }

    pub(crate) fn public_key(&self) -> PublicKey {
        self.handle.public_key()
    }

    /// `PUBKEY@HOST:PORT`.
    pub(crate) fn dial_string(&self) -> String {
        format!(
            "{}@{}",
            hex::encode(self.public_key().serialize()),
            self.handle.local_addr()
        )
    }

    pub(crate) fn address(&self) -> String {
        skywire_identity::PublicKey::from_bytes(&self.public_key().serialize())
            .unwrap()
            .address()
            .to_string()
    }

    pub(crate) async fn stop(self) -> (SecretKey, String) {
        let addr = self.handle.local_addr().to_string();
        self.handle.shutdown();
        self.task.await.unwrap();
        (self.key, addr)
    }
}

/// Polls `check` until it holds (10 s at most).
pub(crate) async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    until_some(what, || {
        let holds = check();
        async move { holds.await.then_some(()) }
    })
    .await
}

/// Polls `poll` until it finds something (10 s at most), and returns it.
pub(crate) async fn until_some<T, F, Fut>(what: &str, mut poll: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let wait = async {
        loop {
            if let Some(found) = poll().await {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .unwrap_or_else(|_| panic!("never: {what}"))
}
