//! Test support (feature `testing`): the set-up the gateway's tests and
//! benches and the services' tests share. Which transports a test runs on
//! ([`Mode`], [`MODES`]), where the test NATS and Redis servers are
//! ([`test_nats_url`], [`test_redis_url`]), ids no other test uses
//! ([`unique`]), and, from `skywire_wire::testing`, [`init_logging`]
//! (`TEST_LOG=1`), a test [`connection_config`] and [`loopback_node`].

pub use skywire_wire::testing::{connection_config, init_logging, loopback_node};

/// The NATS server tests use unless `SKYWIRE_TEST_NATS_URL` says otherwise.
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";

/// The Redis server tests use unless `SKYWIRE_TEST_REDIS_URL` says otherwise.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// Which transports a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// In-process bus, in-memory presence (embedded mode).
    Embedded,
    /// Real NATS and Redis (cluster mode).
    Cluster,
}

/// Both modes, for tests that run once in each.
pub const MODES: [Mode; 2] = [Mode::Embedded, Mode::Cluster];

/// The environment variable `name`, or `default` if it is unset.
pub fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.into())
}

/// The test NATS server: `SKYWIRE_TEST_NATS_URL`, or [`DEFAULT_NATS_URL`].
pub fn test_nats_url() -> String {
    env_or("SKYWIRE_TEST_NATS_URL", DEFAULT_NATS_URL)
}

/// The test Redis server: `SKYWIRE_TEST_REDIS_URL`, or
/// [`DEFAULT_REDIS_URL`].
pub fn test_redis_url() -> String {
    env_or("SKYWIRE_TEST_REDIS_URL", DEFAULT_REDIS_URL)
}

/// `prefix` and a random suffix: an id (of a gateway, an instance, a key
/// prefix) no other test sharing the servers uses, so tests never hear or
/// count each other.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::random::<u64>())
}

/// Starts a gateway for tests on its own task: replica `id`, node key
/// `secret`, listening on `listen` (port 0: any) for up to
/// `max_connections`, on `bus` with `presence` and `kv`. Per-IP limits are
/// off for loopback, where every test connects from (they have tests of
/// their own).
///
/// # Panics
///
/// If it cannot bind.
pub async fn start_gateway(
    id: &str,
    secret: secp256k1::SecretKey,
    listen: std::net::SocketAddr,
    max_connections: usize,
    bus: &skywire_bus::Bus,
    presence: &skywire_kv::presence::Presence,
    kv: &skywire_kv::Kv,
) -> (crate::GatewayHandle, tokio::task::JoinHandle<()>) {
    let config = crate::GatewayConfig {
        id: id.to_owned(),
        node: skywire_wire::NodeConfig {
            connection: connection_config(secret),
            listen,
            max_connections,
        },
        limits: crate::limits::IpLimitConfig {
            exempt_loopback: true,
            ..crate::limits::IpLimitConfig::default()
        },
    };
    let gateway = crate::Gateway::bind(
        config,
        bus.clone(),
        presence.clone(),
        kv.clone(),
        &crate::Metrics::new(),
    )
    .await
    .unwrap_or_else(|e| panic!("cannot bind the test gateway: {e}"));
    let handle = gateway.handle();
    (handle, tokio::spawn(gateway.run()))
}
