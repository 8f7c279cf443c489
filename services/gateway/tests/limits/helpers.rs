//! Gateway replicas on 127.0.0.1:0 sharing one node key and one store, SWP/1
//! clients that dial them, and a TCP proxy to Redis that can be cut.
//! (The set-up all tests share is in `skywire_gateway::testing`.)

use std::net::SocketAddr;
use std::time::Duration;

use secp256k1::SecretKey;
use skywire_bus::Bus;
use skywire_gateway::limits::IpLimitConfig;
use skywire_gateway::testing::{connection_config, init_logging, loopback_node, unique};
use skywire_gateway::{Gateway, GatewayConfig, GatewayHandle, Metrics};
use skywire_kv::Kv;
use skywire_kv::presence::Presence;
use skywire_wire::{ConnectError, Connection, Reason, driver};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Per-IP limits under a key prefix of this test's own.
pub(crate) fn limits(max_connections: u32, new_per_minute: u64) -> IpLimitConfig {
    IpLimitConfig {
        max_connections_per_ip: max_connections,
        new_connections_per_ip_per_minute: new_per_minute,
        key_prefix: format!("{}:", unique("test-limits")),
        ..IpLimitConfig::default()
    }
}

/// `n` gateway replicas with one node key, each with its own id, sharing
/// `kv` for their limits (and an in-process bus: the bus plays no part).
pub(crate) async fn replicas(n: usize, kv: &Kv, limits: &IpLimitConfig) -> Vec<TestGateway> {
    init_logging();
    let key = SecretKey::new(&mut rand::rng());
    let bus = Bus::local();
    let mut gateways = Vec::new();
    for _ in 0..n {
        let config = GatewayConfig {
            id: unique("gw"),
            node: loopback_node(connection_config(key), 100),
            limits: limits.clone(),
        };
        let presence =
            Presence::new(kv.clone()).with_prefix(format!("{}presence:", limits.key_prefix));
        let gateway = Gateway::bind(config, bus.clone(), presence, kv.clone(), &Metrics::new())
            .await
            .unwrap();
        let handle = gateway.handle();
        let task = tokio::spawn(gateway.run());
        gateways.push(TestGateway { handle, task });
    }
    gateways
}

pub(crate) struct TestGateway {
    pub(crate) handle: GatewayHandle,
    pub(crate) task: tokio::task::JoinHandle<()>,
}

impl TestGateway {
    /// A fresh client dialing this gateway from 127.0.0.1.
    pub(crate) async fn dial(&self) -> Result<Connection, ConnectError> {
        let node = self.handle.node().unwrap();
        let client = connection_config(SecretKey::new(&mut rand::rng()));
        driver::dial(node.local_addr(), &node.public_key(), &client).await
    }

    /// A client that must be admitted; checks it is served.
    pub(crate) async fn admitted(&self) -> Connection {
        let conn = self.dial().await.expect("admitted");
        let mut echo = conn.open("echo/1", 0).await.unwrap();
        echo.send(bytes::Bytes::from_static(b"hi")).await.unwrap();
        assert_eq!(&echo.recv().await.unwrap().unwrap()[..], b"hi");
        conn
    }

    /// A client that must be refused; returns the GoAway reason.
    pub(crate) async fn refused(&self) -> Reason {
        match self.dial().await {
            Err(ConnectError::Closed(close)) => {
                assert!(close.by_peer, "{close}");
                close.reason
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    pub(crate) async fn stop(self) {
        self.handle.shutdown();
        self.task.await.unwrap();
    }
}

/// Closes `conn` and waits until it is gone on our side.
pub(crate) async fn hang_up(conn: Connection) {
    conn.go_away(Reason::Normal, "bye");
    tokio::time::timeout(Duration::from_secs(5), conn.closed())
        .await
        .expect("closed");
}

/// A TCP proxy to `target`, to make a server unreachable on demand.
pub(crate) struct Proxy {
    pub(crate) addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub(crate) async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            // Dropped with this task, which aborts every proxied connection.
            let mut conns = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                conns.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Self { addr, task }
    }

    /// Stops listening and drops every proxied connection.
    pub(crate) async fn cut(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}
