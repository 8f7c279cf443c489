//! The `skywire` command: run a node, manage keys, ping and benchmark peers;
//! and each service's own binary (`skywire-gateway`, `skywire-pool`), which
//! is `skywire serve <service>` under its own name.
//!
//! The binaries are thin: [`main`] and [`service_main`] parse flags, start
//! logging and hand off to one module per command group: `keys` (derive and
//! show), `node` (`node` runs every service in one process, `serve` one
//! service of a cluster, until SIGINT/SIGTERM; their settings come from
//! `config`: defaults, a TOML file, `SKYWIRE_*` variables, flags) and
//! `client` (`ping` and `bench` against a peer), `peers`, `chain` and
//! `wallet` (clients of a node's admin endpoint).

mod chain;
mod client;
mod config;
mod keys;
mod node;
mod peer;
mod peers;
mod wallet;

use std::path::PathBuf;

use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

pub use node::ServiceKind;

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
    /// Create a chain, and follow a node's chain through its admin endpoint.
    #[command(subcommand)]
    Chain(chain::ChainCommand),
    /// A deterministic wallet: addresses from a seed, balances, payments.
    #[command(subcommand)]
    Wallet(wallet::WalletCommand),
}

/// The command `skywire ARGS` would run (`args` without the program name), for
/// the commands' tests.
#[cfg(test)]
fn parse_command(args: &[&str]) -> Result<Command, clap::Error> {
    Cli::try_parse_from(std::iter::once("skywire").chain(args.iter().copied()))
        .map(|cli| cli.command)
}

/// One service's own binary: `skywire serve <service>`'s flags.
#[derive(Debug, Parser)]
#[command(version)]
struct ServiceCli {
    #[command(flatten)]
    args: node::ServiceArgs,
}

/// The data directory of commands that read no config file (`keys show`):
/// `$SKYWIRE_DATA_DIR`, else `~/.skywire`, else `./skywire-data`.
fn default_data_dir() -> PathBuf {
    std::env::var_os("SKYWIRE_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(config::default_data_dir)
}

/// Logs to stderr (`RUST_LOG`, default `info`), and traces to the OTLP
/// collector at `$SKYWIRE_OTLP_ENDPOINT` when it is set, as `service_name`.
fn telemetry(service_name: String) -> anyhow::Result<skywire_telemetry::TelemetryGuard> {
    let config = skywire_telemetry::TelemetryConfig {
        otlp_endpoint: std::env::var("SKYWIRE_OTLP_ENDPOINT")
            .ok()
            .filter(|e| !e.is_empty()),
        ..skywire_telemetry::TelemetryConfig::new(service_name)
    };
    Ok(skywire_telemetry::init(&config)?)
}

/// Runs `future` on a multi-threaded runtime with telemetry as
/// `service_name`, flushed and shut down when it returns.
fn run<F>(service_name: String, future: F) -> anyhow::Result<()>
where
    F: Future<Output = anyhow::Result<()>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let _telemetry = telemetry(service_name)?;
        future.await
    })
}

/// The `skywire` command.
///
/// # Errors
///
/// Whatever the command failed with.
pub fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let service_name = match &cli.command {
        Command::Node(_) => "skywire-node".to_owned(),
        Command::Serve(args) => args.service.binary().to_owned(),
        _ => "skywire-cli".to_owned(),
    };
    run(service_name, async {
        match cli.command {
            Command::Keys(cmd) => keys::run(cmd),
            Command::Node(args) => node::node(args).await,
            Command::Serve(args) => node::serve(args.service, args.settings).await,
            Command::Ping(args) => client::ping(args).await,
            Command::Bench(args) => client::bench(args).await,
            Command::Peers(cmd) => peers::run(cmd).await,
            Command::Chain(cmd) => chain::run(cmd).await,
            Command::Wallet(cmd) => wallet::run(cmd).await,
        }
    })
}

/// The binary of one `service` (`skywire-gateway`, `skywire-pool`): the
/// same as `skywire serve <service>`, with the same flags, environment and
/// config file.
///
/// # Errors
///
/// Whatever the service failed with.
pub fn service_main(service: ServiceKind) -> anyhow::Result<()> {
    let name = service.binary();
    let command = ServiceCli::command()
        .name(name)
        .bin_name(name)
        .about(format!(
            "Runs the {} service of a Skywire cluster (the same as `skywire serve {}`), until SIGINT or SIGTERM.",
            service.name(),
            service.name()
        ));
    let cli = ServiceCli::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit());
    run(name.to_owned(), node::serve(service, cli.args))
}
