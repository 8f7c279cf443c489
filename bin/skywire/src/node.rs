//! `skywire node` (every service in one process, nothing to install) and
//! `skywire serve <service>` (one service of a cluster on NATS, Redis and
//! PostgreSQL): the same services on different buses and stores.

use std::net::SocketAddr;
use std::path::PathBuf;

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
use skywire_wire::node::DEFAULT_MAX_CONNECTIONS;
use skywire_wire::session::LocalHello;
use skywire_wire::{ConnectionConfig, NodeConfig};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::peer::PeerAddr;

/// Default SWP/1 listen address.
const DEFAULT_LISTEN: &str = "0.0.0.0:7337";

/// Default admin gRPC address: loopback only, it can ban and dial.
pub(crate) const DEFAULT_ADMIN: &str = "127.0.0.1:7338";

/// Default HTTP address for /metrics, /healthz and /readyz.
const DEFAULT_HTTP: &str = "127.0.0.1:7339";

/// The gateway id of `skywire node`: it is the only replica.
const EMBEDDED_ID: &str = "embedded";

/// The embedded database file in the data directory.
const EMBEDDED_DB: &str = "skywire.db";

/// Flags of every command that runs services.
#[derive(Debug, Args)]
pub(crate) struct CommonArgs {
    /// Data directory (holds node.key and, embedded, the database).
    #[arg(long, env = "SKYWIRE_DATA_DIR", default_value_os_t = crate::default_data_dir())]
    data_dir: PathBuf,
    /// Where to serve the admin gRPC API (pool); loopback by default.
    #[arg(long, env = "SKYWIRE_ADMIN", default_value = DEFAULT_ADMIN)]
    admin: SocketAddr,
    /// Where to serve /metrics, /healthz and /readyz.
    #[arg(long, env = "SKYWIRE_HTTP", default_value = DEFAULT_HTTP)]
    http: SocketAddr,
}

/// Flags of commands that hold SWP/1 connections.
#[derive(Debug, Args)]
pub(crate) struct SwpArgs {
    /// Where to accept SWP/1 connections.
    #[arg(long, env = "SKYWIRE_LISTEN", default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Concurrent connections, inbound and outbound.
    #[arg(long, default_value_t = DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Peers to connect to and keep connected, as PUBKEY@HOST:PORT
    /// (repeatable).
    #[arg(long)]
    connect: Vec<PeerAddr>,
}

/// `skywire node` flags.
#[derive(Debug, Args)]
pub(crate) struct NodeArgs {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    swp: SwpArgs,
}

/// The services `skywire serve` can run.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ServiceKind {
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
    service: ServiceKind,
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    swp: SwpArgs,
    /// NATS server.
    #[arg(
        long,
        env = "SKYWIRE_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    nats_url: String,
    /// Redis server (presence, limits shared by replicas).
    #[arg(
        long,
        env = "SKYWIRE_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    redis_url: String,
    /// PostgreSQL database (the pool's peer store).
    #[arg(
        long,
        env = "SKYWIRE_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/skywire"
    )]
    database_url: String,
    /// The node key shared by all gateway replicas (default:
    /// DATA_DIR/node.key, created if missing).
    #[arg(long, env = "SKYWIRE_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// This replica's id, unique in the cluster (default: host name and a
    /// random suffix).
    #[arg(long, env = "SKYWIRE_REPLICA")]
    replica: Option<String>,
    /// The cluster's name, when several share one NATS and Redis: its bus
    /// subjects live under it and its Redis keys under `sw:<name>:`.
    #[arg(long, env = "SKYWIRE_CLUSTER")]
    cluster: Option<String>,
}

impl ServeArgs {
    /// The service's name, e.g. `gateway`.
    pub(crate) fn service_name(&self) -> &'static str {
        match self.service {
            ServiceKind::Gateway => "gateway",
            ServiceKind::Pool => "pool",
        }
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
    let running = Running::new();
    stop_on_signals(&running.stop)?;
    let key = crate::keys::load_or_create(&args.common.data_dir)?;
    let kv = Kv::memory();
    let bus = Bus::local();
    let presence = Presence::new(kv.clone());
    let gateway = bind_gateway(
        &args.swp,
        &key,
        EMBEDDED_ID.into(),
        bus.clone(),
        presence.clone(),
        kv,
        IpLimitConfig::default(),
    )
    .await?;
    let db = Db::sqlite_file(&args.common.data_dir.join(EMBEDDED_DB))
        .await
        .context("cannot open the database")?;
    let pool = start_pool(&running, bus, presence, db, "pool").await?;
    running.serve_admin(args.common.admin, pool.clone()).await?;
    running.serve_http(args.common.http).await?;
    announce(&key, &gateway);
    for peer in args.swp.connect {
        let pool = pool.clone();
        tokio::spawn(async move { dial(&pool, &peer).await });
    }
    run_until_stopped(running, Some(gateway), Some(pool)).await
}

pub(crate) async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let running = Running::new();
    stop_on_signals(&running.stop)?;
    let id = args.replica.clone().unwrap_or_else(default_replica_id);
    let kind = args.service_name();
    let mut bus = Bus::connect_nats(&args.nats_url, &format!("{kind}-{id}"))
        .await
        .context("cannot reach NATS")?;
    let key_prefix = match &args.cluster {
        Some(cluster) => {
            bus = bus
                .with_namespace(cluster)
                .context("invalid --cluster name")?;
            format!("sw:{cluster}:")
        }
        None => "sw:".to_owned(),
    };
    let kv = Kv::connect_redis(&args.redis_url)
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
    match args.service {
        ServiceKind::Gateway => {
            let key = match &args.key_file {
                Some(path) => crate::keys::load_shared(path)?,
                None => crate::keys::load_or_create(&args.common.data_dir)?,
            };
            let gateway = bind_gateway(&args.swp, &key, id, bus, presence, kv, limits).await?;
            running.serve_http(args.common.http).await?;
            announce(&key, &gateway);
            for peer in args.swp.connect {
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
            let db = Db::connect(&args.database_url)
                .await
                .context("cannot reach the database")?;
            let pool = start_pool(&running, bus, presence, db, &format!("pool-{id}")).await?;
            running.serve_admin(args.common.admin, pool.clone()).await?;
            running.serve_http(args.common.http).await?;
            tracing::info!(replica = %id, "pool running");
            for peer in args.swp.connect {
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

async fn bind_gateway(
    args: &SwpArgs,
    key: &Keypair,
    id: String,
    bus: Bus,
    presence: Presence,
    kv: Kv,
    limits: IpLimitConfig,
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
            listen: args.listen,
            max_connections: args.max_connections,
        },
        limits,
    };
    let gateway = Gateway::bind(config, bus, presence, kv).await?;
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
