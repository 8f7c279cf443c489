//! `skywire node`: serve SWP/1 with the built-in services until SIGINT or
//! SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use skywire_wire::limits::Limits;
use skywire_wire::node::DEFAULT_MAX_CONNECTIONS;
use skywire_wire::session::LocalHello;
use skywire_wire::{ConnectionConfig, Node, NodeConfig};
use tokio::signal::unix::{SignalKind, signal};

use crate::peer::PeerAddr;

/// Default SWP/1 listen address.
const DEFAULT_LISTEN: &str = "0.0.0.0:7337";

/// `skywire node` flags.
#[derive(Debug, Args)]
pub(crate) struct NodeArgs {
    /// Data directory (holds node.key).
    #[arg(long, default_value_os_t = crate::default_data_dir())]
    data_dir: PathBuf,
    /// Where to accept SWP/1 connections.
    #[arg(long, default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Peers to connect to at start, as PUBKEY@HOST:PORT (repeatable).
    #[arg(long)]
    connect: Vec<PeerAddr>,
    /// Concurrent connections, inbound and outbound.
    #[arg(long, default_value_t = DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
}

pub(crate) async fn run(args: NodeArgs) -> anyhow::Result<()> {
    // Registered before anything is announced, so a signal sent as soon as the
    // node says it runs is never lost to the default action.
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let key = crate::keys::load_or_create(&args.data_dir)?;
    let secret_key =
        secp256k1::SecretKey::from_secret_bytes(*key.secret_bytes()).context("invalid node key")?;
    let config = NodeConfig {
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
    };
    let node = Node::bind(config, [])
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let handle = node.handle();
    tracing::info!(
        node_id = %key.public_key(),
        address = %key.address(),
        listen = %handle.local_addr(),
        "node running; dial it as {}@{}",
        key.public_key(),
        handle.local_addr(),
    );
    for peer in args.connect {
        let handle = handle.clone();
        tokio::spawn(async move {
            match handle.connect(peer.addr, &peer.key).await {
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
    node.run().await;
    tracing::info!("stopped");
    Ok(())
}
