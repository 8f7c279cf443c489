//! `skywire node` (every service in one process, nothing to install) and
//! `skywire serve <service>` (one service of a cluster on NATS, Redis and
//! PostgreSQL): the same services on different buses and stores.

use std::net::SocketAddr;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use skywire_bus::Bus;
use skywire_db::Db;
use skywire_gateway::limits::IpLimitConfig;
use skywire_gateway::{Gateway, GatewayConfig, GatewayHandle};
use skywire_identity::Keypair;
use skywire_kv::Kv;
use skywire_kv::presence::Presence;
use skywire_pool::store::PeerStore;
use skywire_pool::{Pool, PoolConfig};
use skywire_service::ServiceHost;
use skywire_telemetry::{Metrics, Readiness};
use skywire_wire::limits::Limits;
use skywire_wire::session::LocalHello;
use skywire_wire::{ConnectionConfig, NodeConfig};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{ClusterArgs, CommonArgs, Config, SwpArgs};
use crate::peer::PeerAddr;

/// The gateway id of `skywire node`: it is the only replica.
const EMBEDDED_ID: &str = "embedded";

/// The embedded database file in the data directory.
const EMBEDDED_DB: &str = "skywire.db";

/// `skywire node` flags.
#[derive(Debug, Args)]
pub(crate) struct NodeArgs {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    swp: SwpArgs,
}

impl NodeArgs {
    /// The settings: defaults, config file, environment, these flags.
    fn config(self) -> anyhow::Result<Config> {
        Config::load(self.common, self.swp, None)
    }
}

/// The services `skywire serve` can run.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ServiceKind {
    /// The SWP/1 front: terminates peers' connections, bridges channels to
    /// services over NATS.
    Gateway,
    /// The connection pool: peer store, dialing, bans, the admin API.
    Pool,
}

/// `skywire serve` flags.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Which service to run.
    pub(crate) service: ServiceKind,
    #[command(flatten)]
    pub(crate) settings: ServiceArgs,
}

/// The settings of one service of a cluster: the flags of `skywire serve
/// <service>` and of the service's own binary (`skywire-gateway`, …).
#[derive(Debug, Args)]
pub(crate) struct ServiceArgs {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    swp: SwpArgs,
    #[command(flatten)]
    cluster: ClusterArgs,
}

impl ServiceKind {
    /// The service's name, e.g. `gateway`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Gateway => "gateway",
            Self::Pool => "pool",
        }
    }

    /// The service's own binary (and its telemetry service name), e.g.
    /// `skywire-gateway`.
    pub fn binary(self) -> &'static str {
        match self {
            Self::Gateway => "skywire-gateway",
            Self::Pool => "skywire-pool",
        }
    }
}

impl ServiceArgs {
    /// The service's settings: defaults, config file, environment, these
    /// flags.
    fn config(self) -> anyhow::Result<Config> {
        Config::load(self.common, self.swp, Some(self.cluster))
    }
}

/// What a running process serves, and how to stop it.
struct Running {
    stop: CancellationToken,
    tasks: TaskTracker,
    ready: Readiness,
    metrics: Metrics,
}

impl Running {
    fn new() -> Self {
        Self {
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
            ready: Readiness::new(),
            metrics: Metrics::new(),
        }
    }

    /// Serves /metrics, /healthz and /readyz on `addr`.
    async fn serve_http(&self, addr: SocketAddr) -> anyhow::Result<()> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot serve HTTP on {addr}"))?;
        tracing::info!(addr = %listener.local_addr()?, "HTTP (/metrics, /healthz, /readyz) on {}", listener.local_addr()?);
        let router = skywire_telemetry::http::router(self.metrics.clone(), self.ready.clone());
        let stop = self.stop.clone();
        self.tasks.spawn(async move {
            if let Err(e) = skywire_telemetry::http::serve(listener, router, stop).await {
                tracing::error!(error = %e, "HTTP server failed");
            }
        });
        Ok(())
    }

    /// Serves the pool's admin API on `addr`.
    async fn serve_admin(&self, addr: SocketAddr, pool: Pool) -> anyhow::Result<()> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot serve the admin API on {addr}"))?;
        tracing::info!(addr = %listener.local_addr()?, "admin API on {}", listener.local_addr()?);
        let stop = self.stop.clone();
        self.tasks.spawn(async move {
            if let Err(e) = skywire_pool::admin::serve(listener, pool, stop).await {
                tracing::error!(error = %e, "admin API failed");
            }
        });
        Ok(())
    }
}

/// Registers SIGINT and SIGTERM handlers (before anything is announced, so a
/// signal sent as soon as the node says it runs is never lost) and cancels
/// `stop` on either.
fn stop_on_signals(stop: &CancellationToken) -> anyhow::Result<()> {
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let stop = stop.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("shutting down");
        stop.cancel();
    });
    Ok(())
}

pub(crate) async fn node(args: NodeArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let running = Running::new();
    stop_on_signals(&running.stop)?;
    let key = crate::keys::load_or_create(&config.data_dir)?;
    let kv = Kv::memory();
    let bus = Bus::local();
    let presence = Presence::new(kv.clone());
    let shared = Shared {
        bus: bus.clone(),
        presence: presence.clone(),
        kv,
    };
    let gateway = bind_gateway(
        &config,
        &key,
        EMBEDDED_ID.into(),
        shared,
        IpLimitConfig::default(),
        &running.metrics,
    )
    .await?;
    let db = Db::sqlite_file(&config.data_dir.join(EMBEDDED_DB))
        .await
        .context("cannot open the database")?;
    let pool = start_pool(&running, bus, presence, db, "pool").await?;
    running.serve_admin(config.admin, pool.clone()).await?;
    running.serve_http(config.http).await?;
    announce(&key, &gateway);
    for peer in config.connect {
        let pool = pool.clone();
        tokio::spawn(async move { dial(&pool, &peer).await });
    }
    run_until_stopped(running, Some(gateway), Some(pool)).await
}

pub(crate) async fn serve(service: ServiceKind, args: ServiceArgs) -> anyhow::Result<()> {
    let kind = service.name();
    let config = args.config()?;
    let running = Running::new();
    stop_on_signals(&running.stop)?;
    let id = config.replica.clone().unwrap_or_else(default_replica_id);
    let mut bus = Bus::connect_nats(&config.nats_url, &format!("{kind}-{id}"))
        .await
        .context("cannot reach NATS")?;
    let key_prefix = match &config.cluster {
        Some(cluster) => {
            bus = bus
                .with_namespace(cluster)
                .context("invalid --cluster name")?;
            format!("sw:{cluster}:")
        }
        None => "sw:".to_owned(),
    };
    let kv = Kv::connect_redis(&config.redis_url)
        .await
        .context("cannot reach Redis")?;
    let ready_bus = bus.clone();
    running.ready.add("nats", move || {
        let connected = ready_bus.is_connected();
        async move {
            if connected {
                Ok(())
            } else {
                Err("not connected".into())
            }
        }
    });
    let ready_kv = kv.clone();
    running.ready.add("redis", move || {
        let kv = ready_kv.clone();
        async move { kv.ping().await.map_err(|e| e.to_string()) }
    });
    let presence = Presence::new(kv.clone()).with_prefix(format!("{key_prefix}presence:"));
    let limits = IpLimitConfig {
        key_prefix,
        ..IpLimitConfig::default()
    };
    match service {
        ServiceKind::Gateway => {
            let key = match &config.key_file {
                Some(path) => crate::keys::load_shared(path)?,
                None => crate::keys::load_or_create(&config.data_dir)?,
            };
            let shared = Shared { bus, presence, kv };
            let gateway = bind_gateway(&config, &key, id, shared, limits, &running.metrics).await?;
            running.serve_http(config.http).await?;
            announce(&key, &gateway);
            for peer in config.connect {
                let node = gateway.1.node().cloned();
                tokio::spawn(async move {
                    if let Some(node) = node {
                        match node.connect(peer.addr, &peer.key).await {
                            Ok(_) => tracing::info!(peer = %peer.addr, "connected"),
                            Err(e) => {
                                tracing::warn!(peer = %peer.addr, error = %e, "cannot connect")
                            }
                        }
                    }
                });
            }
            run_until_stopped(running, Some(gateway), None).await
        }
        ServiceKind::Pool => {
            let db = Db::connect(&config.database_url)
                .await
                .context("cannot reach the database")?;
            let pool = start_pool(&running, bus, presence, db, &format!("pool-{id}")).await?;
            running.serve_admin(config.admin, pool.clone()).await?;
            running.serve_http(config.http).await?;
            tracing::info!(replica = %id, "pool running");
            for peer in config.connect {
                let pool = pool.clone();
                tokio::spawn(async move { dial(&pool, &peer).await });
            }
            run_until_stopped(running, None, Some(pool)).await
        }
    }
}

/// `$HOSTNAME` (the pod name in Kubernetes) plus a random suffix.
fn default_replica_id() -> String {
    let host: String = std::env::var("HOSTNAME")
        .unwrap_or_else(|_| "replica".into())
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(40)
        .collect();
    format!("{host}-{:08x}", rand::random::<u32>())
}

/// What the services of one process share: the bus, the cache, and the
/// presence map kept in it.
struct Shared {
    bus: Bus,
    presence: Presence,
    kv: Kv,
}

/// Binds the gateway, its families registered on `metrics` (the process's,
/// served at `/metrics`).
async fn bind_gateway(
    cfg: &Config,
    key: &Keypair,
    id: String,
    shared: Shared,
    limits: IpLimitConfig,
    metrics: &Metrics,
) -> anyhow::Result<(Gateway, GatewayHandle)> {
    let secret_key =
        secp256k1::SecretKey::from_secret_bytes(*key.secret_bytes()).context("invalid node key")?;
    let config = GatewayConfig {
        id,
        node: NodeConfig {
            connection: ConnectionConfig {
                secret_key,
                hello: LocalHello {
                    user_agent: format!("skywire/{}", env!("CARGO_PKG_VERSION")),
                    ..LocalHello::default()
                },
                limits: Limits::default(),
            },
            listen: cfg.listen,
            max_connections: cfg.max_connections,
        },
        limits,
    };
    let Shared { bus, presence, kv } = shared;
    let gateway = Gateway::bind(config, bus, presence, kv, metrics).await?;
    let handle = gateway.handle();
    Ok((gateway, handle))
}

/// Migrates the peer store and starts the pool with its service host.
async fn start_pool(
    running: &Running,
    bus: Bus,
    presence: Presence,
    db: Db,
    instance: &str,
) -> anyhow::Result<Pool> {
    db.migrate(&PeerStore::migrations())
        .await
        .context("cannot migrate the peer store")?;
    let ready_db = db.clone();
    running.ready.add("database", move || {
        let db = ready_db.clone();
        async move { db.ping().await.map_err(|e| e.to_string()) }
    });
    let host = ServiceHost::start(bus.clone(), presence, instance).await?;
    let pool = Pool::start(bus, PeerStore::new(db), host, PoolConfig::default()).await?;
    Ok(pool)
}

fn announce(key: &Keypair, (_, gateway): &(Gateway, GatewayHandle)) {
    let Some(node) = gateway.node() else { return };
    tracing::info!(
        node_id = %key.public_key(),
        address = %key.address(),
        listen = %node.local_addr(),
        replica = gateway.id(),
        "node running; dial it as {}@{}",
        key.public_key(),
        node.local_addr(),
    );
}

async fn dial(pool: &Pool, peer: &PeerAddr) {
    match pool.dial(&peer.key.serialize(), peer.addr).await {
        Ok(_) => tracing::info!(peer = %peer.addr, "connected"),
        Err(e) => {
            tracing::warn!(peer = %peer.addr, error = %e, "cannot connect yet; the pool keeps trying")
        }
    }
}

/// Runs until SIGINT/SIGTERM, then stops everything in order: the gateway
/// (GoAway to every peer), the pool, the servers.
async fn run_until_stopped(
    running: Running,
    gateway: Option<(Gateway, GatewayHandle)>,
    pool: Option<Pool>,
) -> anyhow::Result<()> {
    let Running { stop, tasks, .. } = running;
    if let Some((gateway, handle)) = gateway {
        let run = tokio::spawn(gateway.run());
        stop.cancelled().await;
        handle.shutdown();
        run.await.context("gateway task failed")?;
    } else {
        stop.cancelled().await;
    }
    if let Some(pool) = pool {
        pool.shutdown().await;
    }
    tasks.close();
    tasks.wait().await;
    tracing::info!("stopped");
    Ok(())
}
