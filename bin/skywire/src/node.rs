//! `skywire node` (every service in one process, nothing to install) and
//! `skywire serve <service>` (one service of a cluster on NATS, Redis and
//! PostgreSQL): the same services on different buses and stores.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use skywire_bus::Bus;
use skywire_chain::chain::Chain;
use skywire_chain::service::{self as chain_service, ChainService};
use skywire_chain::store::ChainStore;
use skywire_db::Db;
use skywire_dht::{Dht, DhtConfig};
use skywire_gateway::limits::IpLimitConfig;
use skywire_gateway::{Gateway, GatewayConfig, GatewayHandle};
use skywire_identity::{Keypair, PublicKey};
use skywire_kv::Kv;
use skywire_kv::presence::Presence;
use skywire_pex::Pex;
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
    /// The DHT: finds nodes by address and providers of services; its
    /// routing table in PostgreSQL, its Discovery API on `--admin`.
    Dht,
    /// The chain (`--chain`): sync, transaction relay, publishing with
    /// `--chain-publisher-key`; its store in PostgreSQL, its API on
    /// `--admin`.
    Chain,
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
            Self::Dht => "dht",
            Self::Chain => "chain",
        }
    }

    /// The service's own binary (and its telemetry service name), e.g.
    /// `skywire-gateway`.
    pub fn binary(self) -> &'static str {
        match self {
            Self::Gateway => "skywire-gateway",
            Self::Pool => "skywire-pool",
            Self::Dht => "skywire-dht",
            Self::Chain => "skywire-chain",
        }
    }
}

impl ServiceArgs {
    /// The service's settings: defaults, config file, environment, these
    /// flags.
    pub(crate) fn config(self) -> anyhow::Result<Config> {
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

    /// Serves /metrics, /healthz and /readyz on `addr`, and the chain's REST
    /// API when the chain runs in this process.
    async fn serve_http(
        &self,
        addr: SocketAddr,
        chain: Option<&ChainService>,
    ) -> anyhow::Result<()> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot serve HTTP on {addr}"))?;
        tracing::info!(addr = %listener.local_addr()?, "HTTP (/metrics, /healthz, /readyz) on {}", listener.local_addr()?);
        let api = chain
            .map(|chain| skywire_chain::rest::router(chain.clone()))
            .unwrap_or_default();
        let router =
            skywire_telemetry::http::router_with(self.metrics.clone(), self.ready.clone(), api);
        let stop = self.stop.clone();
        self.tasks.spawn(async move {
            if let Err(e) = skywire_telemetry::http::serve(listener, router, stop).await {
                tracing::error!(error = %e, "HTTP server failed");
            }
        });
        Ok(())
    }

    /// Serves the admin API on `addr`: the pool's, the DHT's Discovery API
    /// and the chain's API when they run in this process.
    async fn serve_admin(
        &self,
        addr: SocketAddr,
        pool: Pool,
        dht: Option<Dht>,
        chain: Option<ChainService>,
    ) -> anyhow::Result<()> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot serve the admin API on {addr}"))?;
        tracing::info!(addr = %listener.local_addr()?, "admin API on {}", listener.local_addr()?);
        let stop = self.stop.clone();
        let mut routes = skywire_pool::admin::routes(pool, stop.clone()).await;
        if let Some(dht) = dht {
            routes = routes.add_service(skywire_dht::api::server(dht));
        }
        if let Some(chain) = chain {
            routes = routes.add_service(skywire_chain::api::server(chain));
        }
        self.tasks.spawn(async move {
            if let Err(e) = skywire_pool::admin::serve_routes(listener, routes, stop).await {
                tracing::error!(error = %e, "admin API failed");
            }
        });
        Ok(())
    }
}

impl Running {
    /// Connects to the cluster's database at `url`, which `/readyz` then
    /// checks.
    async fn database(&self, url: &str) -> anyhow::Result<Db> {
        let db = Db::connect(url)
            .await
            .context("cannot reach the database")?;
        self.watch_database(&db);
        Ok(db)
    }

    /// Makes `/readyz` check `db`.
    fn watch_database(&self, db: &Db) {
        let db = db.clone();
        self.ready.add("database", move || {
            let db = db.clone();
            async move { db.ping().await.map_err(|e| e.to_string()) }
        });
    }

    /// Serves one service's gRPC API alone on `addr`, with gRPC health
    /// reporting `name` serving: a cluster's DHT or chain. `add` adds the
    /// service to the routes.
    async fn serve_api(
        &self,
        addr: SocketAddr,
        name: &str,
        add: impl FnOnce(tonic::service::Routes) -> tonic::service::Routes,
    ) -> anyhow::Result<()> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot serve the API on {addr}"))?;
        tracing::info!(addr = %listener.local_addr()?, "admin API on {}", listener.local_addr()?);
        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_service_status(name, tonic_health::ServingStatus::Serving)
            .await;
        let routes = add(tonic::service::Routes::new(health_service));
        let stop = self.stop.clone();
        self.tasks.spawn(async move {
            if let Err(e) = skywire_pool::admin::serve_routes(listener, routes, stop).await {
                tracing::error!(error = %e, "API server failed");
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
    let shared_kv = kv.clone();
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
    let shared = Shared {
        bus: bus.clone(),
        presence: presence.clone(),
        kv: shared_kv.clone(),
    };
    let (pool, pex) = start_pool(&running, shared, db.clone(), "").await?;
    let (chain_bus, chain_presence, chain_kv, chain_db) =
        (bus.clone(), presence.clone(), shared_kv.clone(), db.clone());
    let listen = gateway.1.node().map(|n| n.local_addr());
    let dht = start_dht(
        &config,
        &key,
        listen,
        Shared {
            bus,
            presence,
            kv: shared_kv,
        },
        db,
        "dht",
    )
    .await?;
    let chain = start_chain(
        &config,
        Shared {
            bus: chain_bus,
            presence: chain_presence,
            kv: chain_kv,
        },
        chain_db,
        "chain",
    )
    .await?;
    running
        .serve_admin(config.admin, pool.clone(), Some(dht.clone()), chain.clone())
        .await?;
    running.serve_http(config.http, chain.as_ref()).await?;
    announce(&key, &gateway);
    for peer in config.connect {
        let pool = pool.clone();
        tokio::spawn(async move { dial(&pool, &peer).await });
    }
    let services = Services {
        gateway: Some(gateway),
        pool: Some((pool, pex)),
        dht: Some(dht),
        chain,
    };
    run_until_stopped(running, services).await
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
            running.serve_http(config.http, None).await?;
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
            let services = Services {
                gateway: Some(gateway),
                ..Services::default()
            };
            run_until_stopped(running, services).await
        }
        ServiceKind::Pool => {
            let db = Db::connect(&config.database_url)
                .await
                .context("cannot reach the database")?;
            let shared = Shared { bus, presence, kv };
            let (pool, pex) = start_pool(&running, shared, db, &format!("-{id}")).await?;
            running
                .serve_admin(config.admin, pool.clone(), None, None)
                .await?;
            running.serve_http(config.http, None).await?;
            tracing::info!(replica = %id, "pool running");
            for peer in config.connect {
                let pool = pool.clone();
                tokio::spawn(async move { dial(&pool, &peer).await });
            }
            let services = Services {
                pool: Some((pool, pex)),
                ..Services::default()
            };
            run_until_stopped(running, services).await
        }
        ServiceKind::Dht => {
            let key = match &config.key_file {
                Some(path) => crate::keys::load_shared(path)?,
                None => crate::keys::load_or_create(&config.data_dir)?,
            };
            let db = running.database(&config.database_url).await?;
            // The gateways listen, not this process: the record advertises
            // what --advertise says.
            let shared = Shared { bus, presence, kv };
            let instance = format!("dht-{id}");
            let dht = start_dht(&config, &key, None, shared, db, &instance).await?;
            let api = dht.clone();
            running
                .serve_api(
                    config.admin,
                    skywire_proto::dht::v1::discovery_server::SERVICE_NAME,
                    |routes| routes.add_service(skywire_dht::api::server(api)),
                )
                .await?;
            running.serve_http(config.http, None).await?;
            tracing::info!(replica = %id, "dht running");
            let services = Services {
                dht: Some(dht),
                ..Services::default()
            };
            run_until_stopped(running, services).await
        }
        ServiceKind::Chain => {
            let db = running.database(&config.database_url).await?;
            let shared = Shared { bus, presence, kv };
            let chain = start_chain(&config, shared, db, &format!("chain-{id}"))
                .await?
                .context("no chain to serve: set --chain (a chain spec file)")?;
            let api = chain.clone();
            running
                .serve_api(
                    config.admin,
                    skywire_proto::chain::v1::chain_api_server::SERVICE_NAME,
                    |routes| routes.add_service(skywire_chain::api::server(api)),
                )
                .await?;
            running.serve_http(config.http, Some(&chain)).await?;
            tracing::info!(replica = %id, "chain running");
            let services = Services {
                chain: Some(chain),
                ..Services::default()
            };
            run_until_stopped(running, services).await
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

/// Migrates the peer store and starts the pool and its peer exchange, each
/// with its service host (instances `pool{suffix}` and `pex{suffix}`).
async fn start_pool(
    running: &Running,
    shared: Shared,
    db: Db,
    suffix: &str,
) -> anyhow::Result<(Pool, Pex)> {
    let Shared { bus, presence, kv } = shared;
    db.migrate(&PeerStore::migrations())
        .await
        .context("cannot migrate the peer store")?;
    running.watch_database(&db);
    let host = ServiceHost::start(bus.clone(), presence.clone(), &format!("pool{suffix}")).await?;
    let pool = Pool::start(bus.clone(), PeerStore::new(db), host, PoolConfig::default()).await?;
    let pex = Pex::launch(bus, presence, kv, pool.clone(), &format!("pex{suffix}"))
        .await
        .context("cannot start peer exchange")?;
    Ok((pool, pex))
}

/// Starts the chain service of `config.chain` (none if unset) as service
/// instance `instance`, its store in `db` (migrated here), publishing if
/// `config.chain_publisher_key` is set.
async fn start_chain(
    config: &Config,
    shared: Shared,
    db: Db,
    instance: &str,
) -> anyhow::Result<Option<ChainService>> {
    let Some(path) = &config.chain else {
        tracing::info!("no chain configured (--chain): the chain service does not run");
        return Ok(None);
    };
    let spec = crate::chain::load_spec(path)?;
    let publisher = config
        .chain_publisher_key
        .as_deref()
        .map(crate::keys::load_shared)
        .transpose()
        .context("cannot read the block publisher key")?;
    db.migrate(&ChainStore::migrations())
        .await
        .context("cannot migrate the chain store")?;
    let chain = Chain::new(ChainStore::new(db), spec.params(), spec.genesis_block());
    let Shared { bus, presence, .. } = shared;
    let host = ServiceHost::start(bus, presence, instance).await?;
    let service_config = chain_service::ServiceConfig {
        publisher,
        block_interval: Duration::from_millis(config.block_interval_ms),
        ..chain_service::ServiceConfig::default()
    };
    let service = ChainService::start(host, chain, &spec, service_config)
        .await
        .context("cannot start the chain service")?;
    Ok(Some(service))
}

/// Migrates the routing table's store and starts the DHT, its record
/// advertising [`advertised`] endpoints.
async fn start_dht(
    config: &Config,
    key: &Keypair,
    listen: Option<SocketAddr>,
    shared: Shared,
    db: Db,
    instance: &str,
) -> anyhow::Result<Dht> {
    let bootstrap: Vec<(PublicKey, SocketAddr)> = config
        .bootstrap
        .iter()
        .map(|p| PublicKey::from_bytes(&p.key.serialize()).map(|k| (k, p.addr)))
        .collect::<Result<_, _>>()
        .context("bad bootstrap node id")?;
    let endpoints = advertised(&config.advertise, listen, bootstrap.first().map(|b| b.1));
    if endpoints.is_empty() {
        tracing::warn!(
            "no endpoint to advertise (listening on a wildcard, no bootstrap node): other nodes cannot find this one by address; set --advertise"
        );
    }
    let Shared { bus, presence, kv } = shared;
    let config = DhtConfig {
        bootstrap,
        endpoints,
        ..DhtConfig::default()
    };
    let dht = Dht::launch(bus, presence, kv, db, instance, key.clone(), config)
        .await
        .context("cannot start the DHT")?;
    Ok(dht)
}

/// The endpoints a node's record advertises: those configured; else the
/// listen address if it is a specific IP; else the local address the system
/// would use to reach `towards` (a bootstrap node), with the listen port.
fn advertised(
    configured: &[SocketAddr],
    listen: Option<SocketAddr>,
    towards: Option<SocketAddr>,
) -> Vec<SocketAddr> {
    if !configured.is_empty() {
        return configured.to_vec();
    }
    let Some(listen) = listen else {
        return Vec::new();
    };
    if !listen.ip().is_unspecified() {
        return vec![listen];
    }
    // A UDP "connection" sends nothing; it only asks the routing table
    // which local address leads to the destination.
    let local = towards.and_then(|to| {
        let any = if to.is_ipv4() {
            SocketAddr::from(([0, 0, 0, 0], 0))
        } else {
            SocketAddr::from(([0u16; 8], 0))
        };
        let socket = std::net::UdpSocket::bind(any).ok()?;
        socket.connect(to).ok()?;
        socket.local_addr().ok()
    });
    local
        .map(|l| vec![SocketAddr::new(l.ip(), listen.port())])
        .unwrap_or_default()
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

/// What one process runs, stopped in this order by [`run_until_stopped`].
#[derive(Default)]
struct Services {
    gateway: Option<(Gateway, GatewayHandle)>,
    pool: Option<(Pool, Pex)>,
    dht: Option<Dht>,
    chain: Option<ChainService>,
}

/// Runs until SIGINT/SIGTERM, then stops everything in order: the gateway
/// (GoAway to every peer), peer exchange, the pool, the DHT, the chain, the
/// servers.
async fn run_until_stopped(running: Running, services: Services) -> anyhow::Result<()> {
    let Running { stop, tasks, .. } = running;
    let Services {
        gateway,
        pool,
        dht,
        chain,
    } = services;
    if let Some((gateway, handle)) = gateway {
        let run = tokio::spawn(gateway.run());
        stop.cancelled().await;
        handle.shutdown();
        run.await.context("gateway task failed")?;
    } else {
        stop.cancelled().await;
    }
    if let Some((pool, pex)) = pool {
        pex.shutdown().await;
        pool.shutdown().await;
    }
    if let Some(dht) = dht {
        dht.shutdown().await;
    }
    if let Some(chain) = chain {
        chain.shutdown().await;
    }
    tasks.close();
    tasks.wait().await;
    tracing::info!("stopped");
    Ok(())
}
