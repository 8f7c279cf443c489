//! The `skywire` command: run a node, manage keys, ping and benchmark peers.
//!
//! `main` parses flags, starts logging and hands off to one module per
//! command group: [`keys`] (derive and show), [`node`] (`node` runs every
//! service in one process, `serve` one service of a cluster, until
//! SIGINT/SIGTERM; their settings come from [`config`]: defaults, a TOML
//! file, `SKYWIRE_*` variables, flags) and [`client`] (`ping` and `bench`
//! against a peer).

mod client;
mod config;
mod keys;
mod node;
mod peer;
mod peers;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Skywire: a node of the Skywire network.
#[derive(Debug, Parser)]
#[command(name = "skywire", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Key management.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Run a node: every service in one process, until SIGINT or SIGTERM.
    Node(node::NodeArgs),
    /// Run one service of a cluster (NATS, Redis), until SIGINT or SIGTERM.
    Serve(node::ServeArgs),
    /// Measure the round-trip time to a peer with SWP/1 Pings.
    Ping(client::PingArgs),
    /// Measure echo/1 throughput and latency to a peer.
    Bench(client::BenchArgs),
    /// Manage the node's peers through its admin endpoint.
    #[command(subcommand)]
    Peers(peers::PeersCommand),
}

/// The data directory of commands that read no config file (`keys show`):
/// `$SKYWIRE_DATA_DIR`, else `~/.skywire`, else `./skywire-data`.
fn default_data_dir() -> PathBuf {
    std::env::var_os("SKYWIRE_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(config::default_data_dir)
}

/// Logs to stderr (`RUST_LOG`, default `info`), and traces to the OTLP
/// collector at `$SKYWIRE_OTLP_ENDPOINT` when it is set.
fn telemetry(command: &Command) -> anyhow::Result<skywire_telemetry::TelemetryGuard> {
    let service_name = match command {
        Command::Node(_) => "skywire-node".to_owned(),
        Command::Serve(args) => format!("skywire-{}", args.service_name()),
        _ => "skywire-cli".to_owned(),
    };
    let config = skywire_telemetry::TelemetryConfig {
        otlp_endpoint: std::env::var("SKYWIRE_OTLP_ENDPOINT")
            .ok()
            .filter(|e| !e.is_empty()),
        ..skywire_telemetry::TelemetryConfig::new(service_name)
    };
    Ok(skywire_telemetry::init(&config)?)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // Flushed and shut down when dropped, at the end of this block.
        let _telemetry = telemetry(&cli.command)?;
        match cli.command {
            Command::Keys(cmd) => keys::run(cmd),
            Command::Node(args) => node::node(args).await,
            Command::Serve(args) => node::serve(args).await,
            Command::Ping(args) => client::ping(args).await,
            Command::Bench(args) => client::bench(args).await,
            Command::Peers(cmd) => peers::run(cmd).await,
        }
    })
}
