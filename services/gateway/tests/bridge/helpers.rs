//! A gateway on 127.0.0.1:0 with a bus and presence map of either kind, and
//! SWP/1 clients that connect to it.

use std::time::Duration;

use secp256k1::SecretKey;
use skywire_bus::Bus;
use skywire_gateway::limits::IpLimitConfig;
pub(crate) use skywire_gateway::testing::{MODES, Mode};
use skywire_gateway::testing::{
    connection_config, init_logging, loopback_node, test_nats_url, test_redis_url, unique,
};
use skywire_gateway::{Gateway, GatewayConfig, GatewayHandle, Metrics};
use skywire_kv::Kv;
use skywire_kv::presence::Presence;
use skywire_service::ServiceHost;
use skywire_wire::{ConnectError, Connection, ConnectionConfig, driver};

/// One cluster's shared infrastructure: a bus and a presence map. In
/// cluster mode every test gets its own service names, so tests sharing a
/// NATS server stay apart.
#[derive(Clone)]
pub(crate) struct Infra {
    pub(crate) mode: Mode,
    pub(crate) bus: Bus,
    pub(crate) presence: Presence,
    /// Suffix making service names unique to this test.
    pub(crate) tag: String,
}

impl Infra {
    pub(crate) async fn new(mode: Mode) -> Self {
        init_logging();
        let tag = format!("{:08x}", rand::random::<u32>());
        match mode {
            Mode::Embedded => Self {
                mode,
                bus: Bus::local(),
                presence: Presence::new(Kv::memory()),
                tag,
            },
            Mode::Cluster => Self {
                mode,
                bus: self::bus(mode).await,
                presence: Presence::new(Kv::connect_redis(&test_redis_url()).await.unwrap())
                    .with_prefix(format!("test:{tag}:presence:")),
                tag,
            },
        }
    }

    /// A second connection to the same bus (another process, in cluster
    /// mode).
    pub(crate) async fn another_bus(&self) -> Bus {
        match self.mode {
            Mode::Embedded => self.bus.clone(),
            Mode::Cluster => bus(self.mode).await,
        }
    }

    /// Waits until the presence map places the peer `node_id` (written
    /// right after its connection is announced).
    pub(crate) async fn wait_present(&self, node_id: &[u8; 33]) {
        let wait = async {
            while self.presence.lookup(node_id).await.unwrap().is_none() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), wait)
            .await
            .expect("peer never present");
    }

    /// A service name unique to this test, e.g. `chat-1a2b3c4d/1`.
    pub(crate) fn service(&self, base: &str) -> String {
        format!("{base}-{}/1", self.tag)
    }

    pub(crate) async fn gateway(&self) -> TestGateway {
        self.gateway_with_limits(IpLimitConfig::default()).await
    }

    /// A gateway with per-IP `limits`, with metrics of its own.
    pub(crate) async fn gateway_with_limits(&self, limits: IpLimitConfig) -> TestGateway {
        let config = GatewayConfig {
            id: unique("gw"),
            node: loopback_node(config(), 1000),
            // Per-IP limits under keys of this test's own, so tests sharing
            // one Redis (all from 127.0.0.1) do not count each other.
            limits: IpLimitConfig {
                key_prefix: format!("test:{}:", self.tag),
                ..limits
            },
        };
        let kv = match self.mode {
            Mode::Embedded => Kv::memory(),
            Mode::Cluster => Kv::connect_redis(&test_redis_url()).await.unwrap(),
        };
        let bus = self.another_bus().await;
        let metrics = Metrics::new();
        let gateway = Gateway::bind(config, bus, self.presence.clone(), kv, &metrics)
            .await
            .unwrap();
        let handle = gateway.handle();
        let task = tokio::spawn(gateway.run());
        TestGateway {
            handle,
            task,
            metrics,
        }
    }

    pub(crate) async fn host(&self) -> ServiceHost {
        ServiceHost::start(
            self.another_bus().await,
            self.presence.clone(),
            &unique("svc"),
        )
        .await
        .unwrap()
    }
}

async fn bus(mode: Mode) -> Bus {
    match mode {
        Mode::Embedded => Bus::local(),
        Mode::Cluster => Bus::connect_nats(&test_nats_url(), "skywire-test")
            .await
            .unwrap(),
    }
}

/// A fresh identity's connection config.
pub(crate) fn config() -> ConnectionConfig {
    connection_config(SecretKey::new(&mut rand::rng()))
}

pub(crate) struct TestGateway {
    pub(crate) handle: GatewayHandle,
    pub(crate) task: tokio::task::JoinHandle<()>,
    /// The registry the gateway's families are on.
    pub(crate) metrics: Metrics,
}

impl TestGateway {
    /// A client connected to this gateway.
    pub(crate) async fn client(&self) -> Connection {
        self.client_with_id().await.0
    }

    /// A client connected to this gateway, and its node id.
    pub(crate) async fn client_with_id(&self) -> (Connection, [u8; 33]) {
        let (conn, id) = self.dial().await;
        (conn.unwrap(), id)
    }

    /// A new peer dialing this gateway: the connection or why it failed,
    /// and the peer's node id.
    pub(crate) async fn dial(&self) -> (Result<Connection, ConnectError>, [u8; 33]) {
        let node = self.handle.node().unwrap();
        let config = config();
        let id = config.public_key().serialize();
        let conn = driver::dial(node.local_addr(), &node.public_key(), &config).await;
        (conn, id)
    }

    /// Waits until the gateway advertises `service` (or stops advertising
    /// it, with `live = false`).
    pub(crate) async fn wait_service(&self, service: &str, live: bool) {
        let wait = async {
            while self.handle.live_services().iter().any(|s| s == service) != live {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .unwrap_or_else(|_| panic!("service {service} live={live} never seen"));
    }

    pub(crate) async fn stop(self) {
        self.handle.shutdown();
        self.task.await.unwrap();
    }
}

/// A test's set-up in `mode`: the infrastructure, a gateway and a service
/// host.
pub(crate) async fn start(mode: Mode) -> (Infra, TestGateway, ServiceHost) {
    let infra = Infra::new(mode).await;
    let gateway = infra.gateway().await;
    let host = infra.host().await;
    (infra, gateway, host)
}

/// Like [`start`], with the host serving a service of this test's own named
/// after `base` ([`serve_reverse`]), once the gateway advertises it; also
/// returns the service's name.
pub(crate) async fn start_reverse(
    mode: Mode,
    base: &str,
) -> (Infra, TestGateway, ServiceHost, String) {
    let (infra, gateway, host) = start(mode).await;
    let service = infra.service(base);
    serve_reverse(&host, &service).await;
    gateway.wait_service(&service, true).await;
    (infra, gateway, host, service)
}

/// A test's tear-down: stops the gateway, then the service host.
pub(crate) async fn stop(gateway: TestGateway, host: ServiceHost) {
    gateway.stop().await;
    host.shutdown().await;
}

/// Serves `service` on `host`: each channel answers every message with the
/// message reversed, and finishes when the peer does.
pub(crate) async fn serve_reverse(host: &ServiceHost, service: &str) {
    let mut incoming = host.serve(service).await.unwrap();
    tokio::spawn(async move {
        while let Some(mut channel) = incoming.next().await {
            tokio::spawn(async move {
                while let Ok(Some(message)) = channel.recv().await {
                    let mut reply = message.to_vec();
                    reply.reverse();
                    if channel.send(reply.into()).await.is_err() {
                        return;
                    }
                }
                let _ = channel.finish().await;
            });
        }
    });
}
