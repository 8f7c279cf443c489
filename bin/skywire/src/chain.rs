//! The chain's files and commands: the chain spec file (what `--chain` names, written by
//! `skywire chain new`), and `skywire chain …` commands.
//!
//! A chain spec file is TOML:
//!
//! ```toml
//! publisher = "03…"            # the block publisher's public key, hex
//! genesis_address = "2…"       # who gets every coin in the genesis block
//! genesis_coins = 100000000000000   # droplets
//! genesis_time = 1700000000    # seconds since the Unix epoch
//! genesis_signature = "…"      # the publisher's signature over the genesis block, hex
//! ```
//!
//! Every node of a chain holds the same file; its signature is checked when it is read.
//!
//! The commands:
//!
//! - `skywire chain new --out FILE --publisher-key-out FILE [--genesis-address ADDR]
//!   [--coins N] [--time UNIX_SECS] [--json]`: a new chain: a fresh publisher key
//!   (written like the node key, mode 0600) and the spec, signed by it. Neither file is
//!   overwritten.
//! - `skywire chain status [--admin HOST:PORT] [--json] [--watch]`: a node's chain
//!   (`skywire.chain.v1.ChainApi.Status`): head, sync progress, peers, transaction pool.
//!
//! The clients of the chain API (`chain status` and `skywire wallet`) follow the
//! contract of `skywire peers`: one request at a time with the same time limits, text
//! for people or with `--json` one JSON document on stdout, errors included
//! (`{"error":{"code":"...","message":"..."}}`), and a failure exits 1 with its message
//! on stderr. [`ApiArgs`], [`chain_api`], [`chain_call`] and [`finish`] are that
//! contract, shared with `wallet`.

use std::fs::OpenOptions;
use std::io::{IsTerminal as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use figment::Figment;
use figment::providers::{Format as _, Toml};
use serde::Deserialize;
use skywire_chain::spec::ChainSpec;
use skywire_coin::{DROPLETS_PER_COIN, Sig};
use skywire_identity::{Address, Keypair, PublicKey};
use skywire_proto::chain::v1 as pb;
use skywire_proto::chain::v1::chain_api_client::ChainApiClient;
use tonic::Code;
use tonic::transport::Channel;

use crate::peers::{Failure, REQUEST_TIMEOUT, call, connect, emit, format_utc, printable};

/// The chain spec file's keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecFile {
    publisher: String,
    genesis_address: String,
    genesis_coins: u64,
    genesis_time: u64,
    genesis_signature: String,
}

/// Reads and checks the chain spec file at `path`.
///
/// # Errors
///
/// If the file cannot be read, a key is missing or malformed, or the publisher did not
/// sign the genesis block it describes.
pub(crate) fn load_spec(path: &Path) -> anyhow::Result<ChainSpec> {
    let file: SpecFile = Figment::new()
        .merge(Toml::file_exact(path))
        .extract()
        .with_context(|| format!("cannot read the chain spec {}", path.display()))?;
    let publisher = hex::decode(&file.publisher)
        .ok()
        .and_then(|bytes| PublicKey::from_bytes(&bytes).ok())
        .context("publisher: not a public key in hex")?;
    let sig = hex::decode(&file.genesis_signature)
        .ok()
        .and_then(|bytes| <[u8; Sig::LEN]>::try_from(bytes.as_slice()).ok())
        .map(Sig)
        .context("genesis_signature: not 65 bytes in hex")?;
    let spec = ChainSpec {
        publisher,
        genesis_address: file
            .genesis_address
            .parse()
            .context("genesis_address: not an address")?,
        genesis_coins: file.genesis_coins,
        genesis_time: file.genesis_time,
        genesis_sig: sig,
    };
    spec.verify().with_context(|| {
        format!(
            "{}: the publisher did not sign this genesis block",
            path.display()
        )
    })?;
    Ok(spec)
}

/// The chain spec file of `spec`.
pub(crate) fn spec_to_toml(spec: &ChainSpec) -> String {
    format!(
        "# A Skywire chain: every node of it holds this file (--chain).\n\
         publisher = \"{}\"\n\
         genesis_address = \"{}\"\n\
         genesis_coins = {}\n\
         genesis_time = {}\n\
         genesis_signature = \"{}\"\n",
        hex::encode(spec.publisher.to_bytes()),
        spec.genesis_address,
        spec.genesis_coins,
        spec.genesis_time,
        hex::encode(spec.genesis_sig.0),
    )
}

/// Whole coins a new chain's genesis block creates unless `--coins` says otherwise:
/// Skycoin's supply.
pub(crate) const DEFAULT_GENESIS_COINS: u64 = 100_000_000;

/// How many characters wide the sync progress bar is: fits an 80-column terminal with
/// the counts, the rate and the peers after it.
const BAR_WIDTH: usize = 30;

/// How often `chain status --watch` asks again: once a second is what a person follows,
/// and one cheap request a second is nothing to the node.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// `skywire chain` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ChainCommand {
    /// Create a new chain: a publisher key, and the spec file every node of the chain
    /// holds (`--chain FILE`). Overwrites nothing.
    New(NewArgs),
    /// A node's chain: head, sync progress, peers, transaction pool.
    Status(StatusArgs),
}

/// `skywire chain new` flags.
#[derive(Debug, Args)]
pub(crate) struct NewArgs {
    /// Where to write the chain spec (refused if it exists).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Where to write the publisher's secret key, mode 0600 (refused if it exists). The
    /// publishing node needs it; keep it secret.
    #[arg(long, value_name = "FILE")]
    publisher_key_out: PathBuf,
    /// The address that receives every coin in the genesis block. Default: the
    /// publisher key's address.
    #[arg(long, value_name = "ADDRESS")]
    genesis_address: Option<Address>,
    /// Whole coins the genesis block creates.
    #[arg(long, default_value_t = DEFAULT_GENESIS_COINS, value_name = "N")]
    coins: u64,
    /// The genesis block's time, seconds since the Unix epoch. Default: now.
    #[arg(long, value_name = "UNIX_SECS")]
    time: Option<u64>,
    /// Print one JSON document on stdout instead of text, errors included.
    #[arg(long)]
    json: bool,
}

/// `skywire chain status` flags.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Endpoint and output format.
    #[command(flatten)]
    api: ApiArgs,
    /// Redraw the sync progress every second, with the rate in blocks/s, until the node
    /// is synced or Ctrl-C; then print the status.
    #[arg(long, conflicts_with = "json")]
    watch: bool,
}

/// Flags of every command that asks a node's chain API.
#[derive(Debug, Clone, Args)]
pub(crate) struct ApiArgs {
    /// The admin endpoint (gRPC) of `skywire node` running a chain, or of `skywire serve
    /// chain`.
    #[arg(
        long,
        env = "SKYWIRE_ADMIN",
        default_value_t = crate::config::DEFAULT_ADMIN.to_string(),
        value_name = "HOST:PORT"
    )]
    pub(crate) admin: String,
    /// Print one JSON document on stdout instead of text, errors included.
    #[arg(long)]
    pub(crate) json: bool,
}

/// What a successful command has to show.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Report {
    /// The text for people.
    pub(crate) human: String,
    /// The JSON document for scripts (`--json`).
    pub(crate) json: serde_json::Value,
}

/// Prints `result` (the text, or with `json` the JSON document; a failure's JSON too)
/// and hands a failure to `main`, which prints it to stderr and exits 1.
pub(crate) fn finish(json: bool, result: Result<Report, Failure>) -> anyhow::Result<()> {
    match result {
        Ok(report) => {
            if json {
                emit(&report.json.to_string());
            } else {
                emit(&report.human);
            }
            Ok(())
        }
        Err(failure) => {
            if json {
                emit(&failure.json());
            }
            Err(anyhow::Error::new(failure))
        }
    }
}

/// A failure on this side for `error`: the code of the I/O error in its chain
/// (`not_found`, `already_exists`, `permission_denied`), else `code`; the message is the
/// whole chain.
pub(crate) fn local_failure(error: &anyhow::Error, code: Code) -> Failure {
    use std::io::ErrorKind;
    let io_code = error
        .chain()
        .find_map(|e| e.downcast_ref::<std::io::Error>())
        .and_then(|e| match e.kind() {
            ErrorKind::NotFound => Some(Code::NotFound),
            ErrorKind::AlreadyExists => Some(Code::AlreadyExists),
            ErrorKind::PermissionDenied => Some(Code::PermissionDenied),
            _ => None,
        });
    Failure::local(io_code.unwrap_or(code), format!("{error:#}"))
}

/// The chain API of the node whose admin endpoint is `admin`, connected within
/// [`crate::peers::CONNECT_TIMEOUT`].
pub(crate) async fn chain_api(admin: &str) -> Result<ChainApiClient<Channel>, Failure> {
    Ok(ChainApiClient::new(connect(admin).await?))
}

/// Awaits one chain API request to `admin` (at most [`REQUEST_TIMEOUT`]). A node that
/// runs no chain does not serve the API: its `UNIMPLEMENTED` says so.
pub(crate) async fn chain_call<T>(
    admin: &str,
    request: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, Failure> {
    call(admin, REQUEST_TIMEOUT, request)
        .await
        .map_err(|failure| {
            if failure.code == Code::Unimplemented {
                Failure::local(
                    Code::Unimplemented,
                    format!(
                        "the node at {admin} serves no chain API: does it run a chain (--chain FILE)?"
                    ),
                )
            } else {
                failure
            }
        })
}

/// Creates `path` with permissions `mode` and writes `parts` to it. An existing file is
/// refused (never overwritten), and a file that could not be written whole is removed.
///
/// # Errors
///
/// If the file exists, or cannot be created or written.
pub(crate) fn write_new_file(path: &Path, mode: u32, parts: &[&[u8]]) -> anyhow::Result<()> {
    let mut file = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(already_exists(path));
        }
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
    };
    let written = parts
        .iter()
        .try_for_each(|part| file.write_all(part))
        .and_then(|()| file.sync_all());
    if let Err(e) = written {
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

/// The error for a file that would be overwritten (an I/O error of kind
/// `AlreadyExists`, so that [`local_failure`] finds its code).
fn already_exists(path: &Path) -> anyhow::Error {
    anyhow::Error::new(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        format!(
            "{} already exists; refusing to overwrite it",
            path.display()
        ),
    ))
}

/// Runs a `skywire chain` subcommand and prints its result (see the module docs).
pub(crate) async fn run(cmd: ChainCommand) -> anyhow::Result<()> {
    match cmd {
        ChainCommand::New(args) => {
            let json = args.json;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            finish(
                json,
                new_chain(&args, now).map_err(|e| local_failure(&e, Code::InvalidArgument)),
            )
        }
        ChainCommand::Status(args) => {
            let json = args.api.json;
            let result = if args.watch {
                match watch(&args.api.admin).await {
                    Ok(None) => return Ok(()),
                    Ok(Some(status)) => Ok(status_report(&status)),
                    Err(failure) => Err(failure),
                }
            } else {
                status(&args.api.admin)
                    .await
                    .map(|status| status_report(&status))
            };
            finish(json, result)
        }
    }
}

/// `chain new`: makes the chain, writes the key then the spec (removing the key if the
/// spec cannot be written), and reports them. `now` is the default genesis time.
fn new_chain(args: &NewArgs, now: u64) -> anyhow::Result<Report> {
    let droplets = args
        .coins
        .checked_mul(DROPLETS_PER_COIN)
        .filter(|&d| d > 0)
        .with_context(|| {
            format!(
                "--coins {}: expected 1 to {} whole coins",
                args.coins,
                u64::MAX / DROPLETS_PER_COIN
            )
        })?;
    if args.out == args.publisher_key_out {
        bail!("--out and --publisher-key-out name the same file");
    }
    // Checked first so that a refused spec leaves no key behind; `write_new_file`
    // checks again, atomically.
    if args.out.symlink_metadata().is_ok() {
        return Err(already_exists(&args.out));
    }
    let publisher = Keypair::generate();
    let genesis_address = args.genesis_address.unwrap_or_else(|| publisher.address());
    let time = args.time.unwrap_or(now);
    let spec = ChainSpec::create(&publisher, genesis_address, droplets, time);
    write_new_file(
        &args.publisher_key_out,
        0o600,
        &[publisher.secret_hex().as_bytes(), b"\n"],
    )?;
    if let Err(e) = write_new_file(&args.out, 0o644, &[spec_to_toml(&spec).as_bytes()]) {
        let _ = std::fs::remove_file(&args.publisher_key_out);
        return Err(e);
    }
    let block = spec.genesis_block().hash();
    let human = format!(
        "publisher        {}\n\
         genesis address  {genesis_address}\n\
         genesis coins    {}\n\
         genesis time     {}\n\
         genesis block    {block}\n\
         wrote the chain spec to {} (every node of the chain needs it: --chain)\n\
         wrote the publisher's secret key to {} (the publishing node needs it; keep it secret)",
        spec.publisher,
        crate::wallet::format_coins(droplets),
        format_utc(i64::try_from(time.saturating_mul(1000)).unwrap_or(i64::MAX)),
        args.out.display(),
        args.publisher_key_out.display(),
    );
    let json = serde_json::json!({
        "publisher": spec.publisher.to_string(),
        "genesis_address": genesis_address.to_string(),
        "genesis_coins": droplets,
        "genesis_time": time,
        "genesis_block": block.to_string(),
        "spec": args.out.display().to_string(),
        "publisher_key": args.publisher_key_out.display().to_string(),
    });
    Ok(Report { human, json })
}

/// One `Status` request.
async fn status(admin: &str) -> Result<pb::StatusResponse, Failure> {
    let mut api = chain_api(admin).await?;
    chain_call(admin, api.status(pb::StatusRequest {})).await
}

/// `chain status --watch`: asks every [`WATCH_INTERVAL`] and redraws one line (a new
/// line each time when stdout is not a terminal), until the node is synced (its last
/// status returned) or Ctrl-C (`None`).
async fn watch(admin: &str) -> Result<Option<pb::StatusResponse>, Failure> {
    let terminal = std::io::stdout().is_terminal();
    let mut interrupt =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .map_err(|e| Failure::local(Code::Internal, format!("cannot handle Ctrl-C: {e}")))?;
    let polls = async {
        let mut api = chain_api(admin).await?;
        let mut previous: Option<(u64, Instant)> = None;
        loop {
            let status = chain_call(admin, api.status(pb::StatusRequest {})).await?;
            let now = Instant::now();
            let rate = previous.map(|(head, at)| {
                status.head_seq.saturating_sub(head) as f64
                    / now.duration_since(at).as_secs_f64().max(1e-3)
            });
            previous = Some((status.head_seq, now));
            draw(terminal, &watch_line(&status, rate));
            if is_synced(&status) {
                return Ok(status);
            }
            tokio::time::sleep(WATCH_INTERVAL).await;
        }
    };
    let result = tokio::select! {
        result = polls => result.map(Some),
        _ = interrupt.recv() => Ok(None),
    };
    if terminal {
        // End the redrawn line.
        draw(false, "");
    }
    result
}

/// Writes `line` to stdout: over the current line on a terminal (`\r`, then erase what
/// is left of a longer line), else as a line of its own.
fn draw(terminal: bool, line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = if terminal {
        write!(out, "\r{line}\x1b[K")
    } else {
        writeln!(out, "{line}")
    }
    .and_then(|()| out.flush());
}

/// The height sync works towards: the best publisher-signed header known, or the
/// highest tip a peer claims.
fn sync_target(status: &pb::StatusResponse) -> u64 {
    status.best_header.max(status.best_claimed)
}

/// Whether the node holds every block it knows of (and knows of some), or makes the
/// blocks: a publisher is synced by definition, even at the genesis block.
fn is_synced(status: &pb::StatusResponse) -> bool {
    let target = sync_target(status);
    status.publisher || (target > 0 && status.head_seq >= target)
}

/// `[#####.....] 1234/5000 (24.7%)`: `head` of `target` blocks in a bar `width` wide.
/// The bar is full and the percentage (to 0.1, rounded) 100.0 only when `head` reached
/// `target`; with no target yet, it is empty.
pub(crate) fn progress_bar(head: u64, target: u64, width: usize) -> String {
    let done = u128::from(head.min(target));
    let (filled, permille) = if target == 0 {
        (0, 0)
    } else {
        let target = u128::from(target);
        let filled = usize::try_from(done * width as u128 / target).unwrap_or(width);
        let rounded = (done * 2000 + target) / (2 * target);
        let permille = if done < target {
            rounded.min(999)
        } else {
            rounded
        };
        (filled, permille)
    };
    format!(
        "[{}{}] {head}/{target} ({}.{}%)",
        "#".repeat(filled),
        ".".repeat(width.saturating_sub(filled)),
        permille / 10,
        permille % 10
    )
}

/// The line `chain status --watch` redraws: head, progress, the rate measured between
/// the last two polls (none at first), peers.
fn watch_line(status: &pb::StatusResponse, rate: Option<f64>) -> String {
    let mut line = progress_bar(status.head_seq, sync_target(status), BAR_WIDTH);
    if let Some(rate) = rate {
        line.push_str(&format!("  {rate:.1} blocks/s"));
    }
    line.push_str(&format!("  {} peers", status.peers));
    if is_synced(status) {
        line.push_str("  synced");
    }
    line
}

/// `chain status`'s text and JSON.
fn status_report(status: &pb::StatusResponse) -> Report {
    let target = sync_target(status);
    let synced = is_synced(status);
    let head_time_ms = i64::try_from(status.head_time.saturating_mul(1000)).unwrap_or(i64::MAX);
    let mut lines = vec![
        format!(
            "head     {} {} at {}",
            status.head_seq,
            hex::encode(&status.head_hash),
            format_utc(head_time_ms)
        ),
        format!(
            "sync     {}{}",
            progress_bar(status.head_seq, target, BAR_WIDTH),
            if synced {
                " synced".to_owned()
            } else {
                format!(", {} blocks in flight", status.in_flight)
            }
        ),
        format!("peers    {} serving chain/1", status.peers),
        format!(
            "mempool  {} transactions, {} orphans",
            status.mempool_transactions, status.orphans
        ),
        format!(
            "rules    burn factor {}, amounts to {} decimals",
            status.burn_factor, status.max_droplet_precision
        ),
    ];
    if status.publisher {
        lines.push("this node publishes the chain's blocks".to_owned());
    }
    if !status.publisher_fault.is_empty() {
        lines.push(format!(
            "PUBLISHER FAULT: {} (sync stops at an invalid block)",
            printable(&status.publisher_fault)
        ));
    }
    let json = serde_json::json!({
        "head_seq": status.head_seq,
        "head_hash": hex::encode(&status.head_hash),
        "head_time": status.head_time,
        "best_header": status.best_header,
        "best_claimed": status.best_claimed,
        "sync_target": target,
        "synced": synced,
        "in_flight": status.in_flight,
        "peers": status.peers,
        "mempool_transactions": status.mempool_transactions,
        "orphans": status.orphans,
        "publisher": status.publisher,
        "publisher_fault": status.publisher_fault,
        "burn_factor": status.burn_factor,
        "max_droplet_precision": status.max_droplet_precision,
    });
    Report {
        human: lines.join("\n"),
        json,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn a_spec_round_trips_and_a_tampered_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let publisher = Keypair::generate();
        let spec = ChainSpec::create(
            &publisher,
            Keypair::generate().address(),
            1_000_000,
            1_700_000_000,
        );
        let path = dir.path().join("chain.toml");
        std::fs::write(&path, spec_to_toml(&spec)).unwrap();
        assert_eq!(load_spec(&path).unwrap(), spec);

        let tampered =
            spec_to_toml(&spec).replace("genesis_coins = 1000000", "genesis_coins = 2000000");
        std::fs::write(&path, tampered).unwrap();
        let error = format!("{:#}", load_spec(&path).unwrap_err());
        assert!(error.contains("did not sign"), "{error}");

        std::fs::write(&path, "publisher = \"zz\"").unwrap();
        assert!(load_spec(&path).is_err());
    }

    fn parse(args: &[&str]) -> Result<ChainCommand, clap::Error> {
        match crate::parse_command(args)? {
            crate::Command::Chain(cmd) => Ok(cmd),
            other => panic!("not a chain command: {other:?}"),
        }
    }

    fn new_args(dir: &Path) -> NewArgs {
        NewArgs {
            out: dir.join("chain.toml"),
            publisher_key_out: dir.join("publisher.key"),
            genesis_address: None,
            coins: 1000,
            time: None,
            json: false,
        }
    }

    #[test]
    fn commands_parse() {
        let ChainCommand::New(args) = parse(&[
            "chain",
            "new",
            "--out",
            "c.toml",
            "--publisher-key-out",
            "p.key",
        ])
        .unwrap() else {
            panic!("not new");
        };
        assert_eq!(args.out, Path::new("c.toml"));
        assert_eq!(args.publisher_key_out, Path::new("p.key"));
        assert_eq!(args.coins, DEFAULT_GENESIS_COINS);
        assert_eq!(
            (args.genesis_address, args.time, args.json),
            (None, None, false)
        );

        let address = Keypair::generate().address();
        let ChainCommand::New(args) = parse(&[
            "chain",
            "new",
            "--out",
            "c",
            "--publisher-key-out",
            "p",
            "--genesis-address",
            &address.to_string(),
            "--coins",
            "5",
            "--time",
            "1700000000",
            "--json",
        ])
        .unwrap() else {
            panic!("not new");
        };
        assert_eq!(args.genesis_address, Some(address));
        assert_eq!(
            (args.coins, args.time, args.json),
            (5, Some(1_700_000_000), true)
        );

        assert!(
            parse(&["chain", "new", "--out", "c"]).is_err(),
            "the key file is required"
        );
        for bad in [
            ["--coins", "-1"],
            ["--coins", "1.5"],
            ["--genesis-address", "nope"],
            ["--time", "x"],
        ] {
            let mut args = vec!["chain", "new", "--out", "c", "--publisher-key-out", "p"];
            args.extend(bad);
            assert!(parse(&args).is_err(), "{bad:?}");
        }

        let ChainCommand::Status(args) =
            parse(&["chain", "status", "--admin", "10.0.0.1:7338", "--watch"]).unwrap()
        else {
            panic!("not status");
        };
        assert_eq!(args.api.admin, "10.0.0.1:7338");
        assert!(args.watch && !args.api.json);
        let ChainCommand::Status(args) = parse(&["chain", "status", "--json"]).unwrap() else {
            panic!("not status");
        };
        assert!(args.api.json && !args.watch);
        assert!(
            parse(&["chain", "status", "--json", "--watch"]).is_err(),
            "one JSON document, not a stream"
        );
    }

    #[test]
    fn new_writes_a_private_key_and_a_spec_and_overwrites_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let args = new_args(dir.path());
        let report = new_chain(&args, 1_700_000_000).unwrap();

        let publisher = crate::keys::load_shared(&args.publisher_key_out).unwrap();
        let mode = std::fs::metadata(&args.publisher_key_out)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let spec = load_spec(&args.out).unwrap();
        assert_eq!(spec.publisher, publisher.public_key());
        assert_eq!(
            spec.genesis_address,
            publisher.address(),
            "the default genesis address"
        );
        assert_eq!(spec.genesis_coins, 1000 * DROPLETS_PER_COIN);
        assert_eq!(spec.genesis_time, 1_700_000_000, "now by default");
        let block = spec.genesis_block().hash().to_string();
        assert_eq!(report.json["genesis_block"], block.as_str());
        assert_eq!(report.json["publisher"], publisher.public_key().to_string());
        assert!(report.human.contains(&block), "{}", report.human);
        assert!(report.human.contains(&publisher.public_key().to_string()));
        assert!(
            report.human.contains("2023-11-14T22:13:20Z"),
            "{}",
            report.human
        );
        assert!(
            !report.human.contains(publisher.secret_hex().as_str()),
            "the secret is not shown"
        );

        // Neither file is overwritten, and a refused spec leaves no new key behind.
        let key_before = std::fs::read(&args.publisher_key_out).unwrap();
        let error = new_chain(&args, 0).unwrap_err();
        assert!(
            format!("{error:#}").contains("refusing to overwrite"),
            "{error:#}"
        );
        assert_eq!(
            local_failure(&error, Code::InvalidArgument).code,
            Code::AlreadyExists
        );
        assert_eq!(std::fs::read(&args.publisher_key_out).unwrap(), key_before);
        let other_key = NewArgs {
            publisher_key_out: dir.path().join("other.key"),
            ..new_args(dir.path())
        };
        assert!(new_chain(&other_key, 0).is_err());
        assert!(!other_key.publisher_key_out.exists());
        let other_spec = NewArgs {
            out: dir.path().join("other.toml"),
            ..new_args(dir.path())
        };
        assert!(new_chain(&other_spec, 0).is_err());
        assert_eq!(std::fs::read(&args.publisher_key_out).unwrap(), key_before);
        assert!(!other_spec.out.exists());

        // A chosen genesis address and time.
        let owner = Keypair::generate().address();
        let chosen = NewArgs {
            out: dir.path().join("b.toml"),
            publisher_key_out: dir.path().join("b.key"),
            genesis_address: Some(owner),
            time: Some(42),
            ..new_args(dir.path())
        };
        new_chain(&chosen, 0).unwrap();
        let spec = load_spec(&chosen.out).unwrap();
        assert_eq!((spec.genesis_address, spec.genesis_time), (owner, 42));

        for coins in [0, u64::MAX / DROPLETS_PER_COIN + 1] {
            let bad = NewArgs {
                out: dir.path().join("c.toml"),
                publisher_key_out: dir.path().join("c.key"),
                coins,
                ..new_args(dir.path())
            };
            assert!(format!("{:#}", new_chain(&bad, 0).unwrap_err()).contains("--coins"));
            assert!(!bad.publisher_key_out.exists());
        }
        let same = NewArgs {
            out: dir.path().join("d"),
            publisher_key_out: dir.path().join("d"),
            ..new_args(dir.path())
        };
        assert!(new_chain(&same, 0).is_err());
        assert!(!same.out.exists());
    }

    #[test]
    fn the_progress_bar_fills_only_when_done() {
        assert_eq!(
            progress_bar(1234, 5000, 10),
            "[##........] 1234/5000 (24.7%)"
        );
        assert_eq!(progress_bar(0, 5000, 10), "[..........] 0/5000 (0.0%)");
        assert_eq!(progress_bar(2500, 5000, 4), "[##..] 2500/5000 (50.0%)");
        assert_eq!(
            progress_bar(4999, 5000, 10),
            "[#########.] 4999/5000 (99.9%)",
            "not 100.0 before done"
        );
        assert_eq!(progress_bar(1, 20_000, 10), "[..........] 1/20000 (0.0%)");
        assert_eq!(
            progress_bar(5000, 5000, 10),
            "[##########] 5000/5000 (100.0%)"
        );
        assert_eq!(
            progress_bar(0, 0, 5),
            "[.....] 0/0 (0.0%)",
            "nothing known yet"
        );
        assert_eq!(progress_bar(7, 5, 5), "[#####] 7/5 (100.0%)");
        assert_eq!(
            progress_bar(u64::MAX - 1, u64::MAX, 10),
            format!("[#########.] {}/{} (99.9%)", u64::MAX - 1, u64::MAX)
        );
        assert_eq!(
            progress_bar(1234, 5000, BAR_WIDTH)
                .chars()
                .filter(|&c| c == '#' || c == '.')
                .count(),
            BAR_WIDTH + 1
        );
    }

    fn status_at(head: u64, best_header: u64, best_claimed: u64) -> pb::StatusResponse {
        pb::StatusResponse {
            head_seq: head,
            head_hash: vec![0xab; 32].into(),
            head_time: 1_709_294_400,
            best_header,
            best_claimed,
            in_flight: 16,
            peers: 3,
            mempool_transactions: 5,
            orphans: 1,
            burn_factor: 10,
            max_droplet_precision: 3,
            ..pb::StatusResponse::default()
        }
    }

    #[test]
    fn sync_aims_at_the_best_header_or_claim() {
        assert_eq!(sync_target(&status_at(10, 20, 0)), 20);
        assert_eq!(sync_target(&status_at(10, 10, 30)), 30);
        assert!(!is_synced(&status_at(10, 20, 0)));
        assert!(is_synced(&status_at(20, 20, 5)));
        assert!(!is_synced(&status_at(0, 0, 0)), "no target yet");
        let publisher = pb::StatusResponse {
            publisher: true,
            ..status_at(0, 0, 0)
        };
        assert!(is_synced(&publisher), "the publisher makes the chain");
    }

    #[test]
    fn status_shows_head_progress_peers_and_pool() {
        let report = status_report(&status_at(1234, 5000, 4000));
        let lines: Vec<&str> = report.human.lines().collect();
        assert_eq!(
            lines[0],
            format!("head     1234 {} at 2024-03-01T12:00:00Z", "ab".repeat(32))
        );
        assert!(
            lines[1].starts_with("sync     [#######"),
            "{}",
            report.human
        );
        assert!(
            lines[1].ends_with("] 1234/5000 (24.7%), 16 blocks in flight"),
            "{}",
            report.human
        );
        assert_eq!(lines[2], "peers    3 serving chain/1");
        assert_eq!(lines[3], "mempool  5 transactions, 1 orphans");
        assert_eq!(lines.len(), 5, "{}", report.human);
        assert_eq!(report.json["head_seq"], 1234);
        assert_eq!(report.json["head_hash"], "ab".repeat(32));
        assert_eq!(report.json["sync_target"], 5000);
        assert_eq!(report.json["synced"], false);
        for field in [
            "head_time",
            "best_header",
            "best_claimed",
            "in_flight",
            "peers",
            "mempool_transactions",
            "orphans",
            "publisher",
            "publisher_fault",
            "burn_factor",
            "max_droplet_precision",
        ] {
            assert!(report.json.get(field).is_some(), "{field}");
        }

        let mut synced = status_at(5000, 5000, 0);
        synced.publisher = true;
        synced.publisher_fault = "DoubleSign\u{1b}[2J".to_owned();
        let report = status_report(&synced);
        assert!(report.human.contains("(100.0%) synced"), "{}", report.human);
        assert!(
            report.human.contains("this node publishes"),
            "{}",
            report.human
        );
        assert!(
            report.human.contains("PUBLISHER FAULT: DoubleSign?[2J"),
            "{}",
            report.human
        );
        assert_eq!(report.json["synced"], true);
    }

    #[test]
    fn the_watched_line_has_the_rate_once_measured() {
        let line = watch_line(&status_at(1234, 5000, 0), None);
        assert!(line.ends_with("(24.7%)  3 peers"), "{line}");
        let line = watch_line(&status_at(1234, 5000, 0), Some(120.46));
        assert!(line.ends_with("(24.7%)  120.5 blocks/s  3 peers"), "{line}");
        let line = watch_line(&status_at(5000, 5000, 0), Some(0.0));
        assert!(line.ends_with("0.0 blocks/s  3 peers  synced"), "{line}");
    }

    #[test]
    fn failures_keep_the_io_code() {
        let missing = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::NotFound))
            .context("cannot read x");
        let failure = local_failure(&missing, Code::InvalidArgument);
        assert_eq!(failure.code, Code::NotFound);
        assert!(
            failure.message.starts_with("cannot read x: "),
            "{}",
            failure.message
        );
        assert_eq!(
            local_failure(&anyhow::anyhow!("bad"), Code::InvalidArgument).code,
            Code::InvalidArgument
        );
    }
}
