//! `skywire node` (every service in one process, nothing to install) and
//! `skywire serve gateway` (one replica of a cluster on NATS and Redis): the
//! same gateway code on different buses.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use skywire_bus::Bus;
use skywire_gateway::{Gateway, GatewayConfig};
use skywire_identity::Keypair;
use skywire_kv::Kv;
use skywire_kv::presence::Presence;
use skywire_wire::limits::Limits;
use skywire_wire::node::DEFAULT_MAX_CONNECTIONS;
use skywire_wire::session::LocalHello;
use skywire_wire::{ConnectionConfig, NodeConfig};
use tokio::signal::unix::{SignalKind, signal};

use crate::peer::PeerAddr;

/// Default SWP/1 listen address.
const DEFAULT_LISTEN: &str = "0.0.0.0:7337";

/// The gateway id of `skywire node`: it is the only replica.
const EMBEDDED_ID: &str = "embedded";

/// Flags every command that serves SWP/1 shares.
#[derive(Debug, Args)]
pub(crate) struct SwpArgs {
    /// Data directory (holds node.key).
    #[arg(long, env = "SKYWIRE_DATA_DIR", default_value_os_t = crate::default_data_dir())]
    data_dir: PathBuf,
    /// Where to accept SWP/1 connections.
    #[arg(long, env = "SKYWIRE_LISTEN", default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Concurrent connections, inbound and outbound.
    #[arg(long, default_value_t = DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Peers to connect to at start, as PUBKEY@HOST:PORT (repeatable).
    #[arg(long)]
    connect: Vec<PeerAddr>,
}

/// `skywire node` flags.
#[derive(Debug, Args)]
pub(crate) struct NodeArgs {
    #[command(flatten)]
    swp: SwpArgs,
}

/// The services `skywire serve` can run.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ServiceKind {
    /// The SWP/1 front: terminates peers' connections, bridges channels to
    /// services over NATS.
    Gateway,
}

/// `skywire serve` flags.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Which service to run.
    service: ServiceKind,
    #[command(flatten)]
    swp: SwpArgs,
    /// NATS server.
    #[arg(
        long,
        env = "SKYWIRE_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    nats_url: String,
    /// Redis server (presence map shared by gateway replicas).
    #[arg(
        long,
        env = "SKYWIRE_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    redis_url: String,
    /// The node key shared by all gateway replicas (default: DATA_DIR/node.key,
    /// created if missing).
    #[arg(long, env = "SKYWIRE_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// This replica's id, unique in the cluster (default: host name and a
    /// random suffix).
    #[arg(long, env = "SKYWIRE_REPLICA")]
    replica: Option<String>,
}

pub(crate) async fn node(args: NodeArgs) -> anyhow::Result<()> {
    let key = crate::keys::load_or_create(&args.swp.data_dir)?;
    let (kv, id) = (Kv::memory(), EMBEDDED_ID.into());
    run_gateway(
        &args.swp,
        key,
        id,
        Bus::local(),
        Presence::new(kv.clone()),
        kv,
    )
    .await
}

pub(crate) async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    match args.service {
        ServiceKind::Gateway => {
            let key = match &args.key_file {
                Some(path) => crate::keys::load_shared(path)?,
                None => crate::keys::load_or_create(&args.swp.data_dir)?,
            };
            let id = args.replica.clone().unwrap_or_else(default_replica_id);
            let bus = Bus::connect_nats(&args.nats_url, &format!("gateway-{id}"))
                .await
                .context("cannot reach NATS")?;
            let kv = Kv::connect_redis(&args.redis_url)
                .await
                .context("cannot reach Redis")?;
            run_gateway(&args.swp, key, id, bus, Presence::new(kv.clone()), kv).await
        }
    }
}

/// `$HOSTNAME` (the pod name in Kubernetes) plus a random suffix.
fn default_replica_id() -> String {
    let host: String = std::env::var("HOSTNAME")
        .unwrap_or_else(|_| "gateway".into())
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(40)
        .collect();
    format!("{host}-{:08x}", rand::random::<u32>())
}

async fn run_gateway(
    args: &SwpArgs,
    key: Keypair,
    id: String,
    bus: Bus,
    presence: Presence,
    kv: Kv,
) -> anyhow::Result<()> {
    // Registered before anything is announced, so a signal sent as soon as the
    // node says it runs is never lost to the default action.
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
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
        limits: skywire_gateway::limits::IpLimitConfig::default(),
    };
    let gateway = Gateway::bind(config, bus, presence, kv).await?;
    let handle = gateway.handle();
    let node = handle.node().context("gateway has no node")?.clone();
    tracing::info!(
        node_id = %key.public_key(),
        address = %key.address(),
        listen = %node.local_addr(),
        replica = handle.id(),
        "node running; dial it as {}@{}",
        key.public_key(),
        node.local_addr(),
    );
    for peer in args.connect.clone() {
        let node = node.clone();
        tokio::spawn(async move {
            match node.connect(peer.addr, &peer.key).await {
                Ok(_) => tracing::info!(peer = %peer.addr, "connected"),
                Err(e) => tracing::warn!(peer = %peer.addr, error = %e, "cannot connect"),
            }
        });
    }
    let stopper = handle.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("shutting down");
        stopper.shutdown();
    });
    gateway.run().await;
    tracing::info!("stopped");
    Ok(())
}
