//! `skywire peers`: the operator's view of the peer pool, through the pool's
//! admin gRPC API (`skywire.pool.v1.Pool`) that `skywire node` and
//! `skywire serve pool` serve on `--admin HOST:PORT`.
//!
//! Every subcommand connects to the endpoint (at most [`CONNECT_TIMEOUT`]),
//! makes one request (at most [`REQUEST_TIMEOUT`]) and prints the answer: a
//! table or one line for people, or with `--json` one JSON document on
//! stdout for scripts. A failure exits 1: the message goes to stderr, and in
//! `--json` mode stdout also gets `{"error":{"code":"...","message":"..."}}`
//! (the code is the gRPC status name in snake case, e.g. `invalid_argument`,
//! or `unavailable` when the endpoint cannot be reached). So stdout holds
//! exactly one JSON document in `--json` mode, success or not.
//! Malformed flags (`--duration 5x`) are usage errors, reported by clap
//! before any request (exit 2).
//!
//! The rendering ([`peers_table`], [`peer_json`], ...) and the parsing
//! ([`parse_duration`], [`admin_uri`]) are plain functions with no I/O.

use std::fmt;
use std::future::Future;
use std::io::Write as _;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde::Serialize;
use skywire_pool::store::now_ms;
use skywire_proto::dht::v1::{self as dht_api, discovery_client::DiscoveryClient};
use skywire_proto::pool::v1::{self as api, pool_client::PoolClient};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

/// Longest wait for the admin endpoint to accept a connection (TCP and the
/// HTTP/2 handshake). It is normally local, so anything slower means it is
/// not there or not a gRPC server; the CLI must not hang.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest wait for one request. Matches the server's own limit
/// (`skywire_pool::admin::REQUEST_TIMEOUT`); a dial takes at most 15 s.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Widest the SERVICES column gets before it is cut with `…`.
const SERVICES_WIDTH: usize = 40;

/// Flags every `peers` subcommand takes.
#[derive(Debug, Clone, Args)]
pub(crate) struct AdminArgs {
    /// The admin endpoint (gRPC) of `skywire node` or `skywire serve pool`.
    #[arg(
        long,
        env = "SKYWIRE_ADMIN",
        default_value_t = crate::config::DEFAULT_ADMIN.to_string(),
        value_name = "HOST:PORT"
    )]
    admin: String,
    /// Print one JSON document on stdout instead of text, errors included.
    #[arg(long)]
    json: bool,
}

/// `skywire peers` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum PeersCommand {
    /// Every known peer, connected or not: address, state, endpoints,
    /// services, when last seen, failed dials and score.
    List {
        /// Endpoint and output format.
        #[command(flatten)]
        args: AdminArgs,
    },
    /// Connect to a peer and keep it: the node dials PUBKEY@HOST:PORT, or
    /// finds a Skycoin address's endpoints through the DHT first.
    Connect {
        /// The peer, as PUBKEY@HOST:PORT (66 hex characters, then IP:PORT)
        /// or as a Skycoin address.
        #[arg(value_name = "PUBKEY@HOST:PORT|ADDRESS")]
        peer: String,
        /// Endpoint and output format.
        #[command(flatten)]
        args: AdminArgs,
    },
    /// Close the connection to a peer (GoAway) and stop keeping it.
    Disconnect {
        /// The peer: Skycoin address or hex public key.
        peer: String,
        /// Endpoint and output format.
        #[command(flatten)]
        args: AdminArgs,
    },
    /// Ban a peer: it is dropped and refused until the ban ends.
    Ban {
        /// The peer: Skycoin address or hex public key.
        peer: String,
        /// How long: seconds, or with units s, m, h, d (`90`, `30m`, `1h30m`,
        /// `7d`). Default: the node's (a day); at most a year.
        #[arg(long, value_parser = parse_duration)]
        duration: Option<Duration>,
        /// Why, kept with the ban.
        #[arg(long)]
        reason: Option<String>,
        /// Endpoint and output format.
        #[command(flatten)]
        args: AdminArgs,
    },
    /// Lift a peer's ban.
    Unban {
        /// The peer: Skycoin address or hex public key.
        peer: String,
        /// Endpoint and output format.
        #[command(flatten)]
        args: AdminArgs,
    },
    /// Find a node's current record (endpoints, services) by its Skycoin
    /// address, through the DHT.
    Resolve {
        /// The Skycoin address.
        address: String,
        /// Endpoint and output format.
        #[command(flatten)]
        args: AdminArgs,
    },
    /// Find nodes that provide a service, through the DHT.
    Providers {
        /// The SWP/1 service, e.g. `shop/1`.
        service: String,
        /// Endpoint and output format.
        #[command(flatten)]
        args: AdminArgs,
    },
    /// Send one message to a connected peer's service (opens a channel,
    /// sends, closes).
    Send {
        /// The peer: Skycoin address or hex public key.
        peer: String,
        /// The SWP/1 service, e.g. `echo/1`.
        service: String,
        /// The message, sent as its UTF-8 bytes.
        message: String,
        /// Endpoint and output format.
        #[command(flatten)]
        args: AdminArgs,
    },
}

impl PeersCommand {
    /// The flags every subcommand shares.
    fn args(&self) -> &AdminArgs {
        match self {
            Self::List { args }
            | Self::Connect { args, .. }
            | Self::Disconnect { args, .. }
            | Self::Ban { args, .. }
            | Self::Unban { args, .. }
            | Self::Resolve { args, .. }
            | Self::Providers { args, .. }
            | Self::Send { args, .. } => args,
        }
    }
}

/// Runs one `peers` subcommand and prints its result (see the module docs
/// for the output and error contract).
pub(crate) async fn run(cmd: PeersCommand) -> anyhow::Result<()> {
    let json = cmd.args().json;
    match execute(cmd).await {
        Ok(outcome) => {
            let text = if json {
                outcome.json()
            } else {
                outcome.human(now_ms())
            };
            emit(&text);
            Ok(())
        }
        Err(failure) => {
            if json {
                emit(&failure.json());
            }
            // `main` prints it to stderr and exits 1.
            Err(anyhow::Error::new(failure))
        }
    }
}

/// What a successful subcommand has to show.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    /// `list`: every peer, as the server ordered them (best first).
    Peers(Vec<api::Peer>),
    /// `connect`: the dialed peer (the server may omit it), and what was
    /// asked for.
    Dialed {
        /// The peer as stored after the dial.
        peer: Option<api::Peer>,
        /// The `PUBKEY@HOST:PORT` given.
        input: String,
    },
    /// `resolve` and `providers`: node records, verified by the node.
    Records(Vec<dht_api::NodeRecord>),
    /// Any other command: a confirmation, without the `ok ` prefix.
    Done(String),
}

impl Outcome {
    /// The text for people.
    fn human(&self, now_ms: i64) -> String {
        match self {
            Self::Peers(peers) => peers_table(peers, now_ms),
            Self::Dialed {
                peer: Some(peer), ..
            } => dialed_line(peer),
            Self::Dialed { peer: None, input } => format!("ok dialed {}", printable(input)),
            Self::Records(records) => records_table(records),
            Self::Done(what) => format!("ok {what}"),
        }
    }

    /// The JSON document for scripts: `{"peers":[...]}`, `{"peer":{...}}`
    /// or `{"ok":true}`.
    fn json(&self) -> String {
        let value = match self {
            Self::Peers(peers) => serde_json::json!({
                "peers": peers.iter().map(peer_json).collect::<Vec<_>>()
            }),
            Self::Dialed { peer, .. } => serde_json::json!({
                "ok": true,
                "peer": peer.as_ref().map(peer_json),
            }),
            Self::Records(records) => serde_json::json!({
                "records": records.iter().map(record_json).collect::<Vec<_>>()
            }),
            Self::Done(_) => serde_json::json!({ "ok": true }),
        };
        value.to_string()
    }
}

/// Connects to the admin endpoint and makes the request `cmd` asks for.
async fn execute(cmd: PeersCommand) -> Result<Outcome, Failure> {
    let admin = cmd.args().admin.clone();
    let channel = connect(&admin).await?;
    let mut client = PoolClient::new(channel.clone());
    let mut discovery = DiscoveryClient::new(channel);
    match cmd {
        PeersCommand::List { .. } => {
            let reply = call(
                &admin,
                REQUEST_TIMEOUT,
                client.list_peers(api::ListPeersRequest {}),
            )
            .await?;
            Ok(Outcome::Peers(reply.peers))
        }
        PeersCommand::Connect { peer, .. } => {
            let request = api::DialRequest { peer: peer.clone() };
            let reply = call(&admin, REQUEST_TIMEOUT, client.dial(request)).await?;
            Ok(Outcome::Dialed {
                peer: reply.peer,
                input: peer,
            })
        }
        PeersCommand::Disconnect { peer, .. } => {
            let request = api::DisconnectRequest { peer: peer.clone() };
            call(&admin, REQUEST_TIMEOUT, client.disconnect(request)).await?;
            Ok(Outcome::Done(format!("disconnected {}", printable(&peer))))
        }
        PeersCommand::Ban {
            peer,
            duration,
            reason,
            ..
        } => {
            let request = api::BanRequest {
                peer: peer.clone(),
                duration_secs: duration.map_or(0, |d| d.as_secs()),
                reason: reason.clone().unwrap_or_default(),
            };
            call(&admin, REQUEST_TIMEOUT, client.ban(request)).await?;
            let mut done = format!("banned {}", printable(&peer));
            if let Some(duration) = duration {
                done.push_str(&format!(" for {}", format_duration(duration)));
            }
            if let Some(reason) = reason {
                done.push_str(&format!(" ({})", printable(&reason)));
            }
            Ok(Outcome::Done(done))
        }
        PeersCommand::Unban { peer, .. } => {
            let request = api::UnbanRequest { peer: peer.clone() };
            call(&admin, REQUEST_TIMEOUT, client.unban(request)).await?;
            Ok(Outcome::Done(format!("unbanned {}", printable(&peer))))
        }
        PeersCommand::Resolve { address, .. } => {
            let request = dht_api::ResolveRequest { address };
            let reply = call(&admin, REQUEST_TIMEOUT, discovery.resolve(request)).await?;
            Ok(Outcome::Records(reply.record.into_iter().collect()))
        }
        PeersCommand::Providers { service, .. } => {
            let request = dht_api::FindProvidersRequest { service };
            let reply = call(&admin, REQUEST_TIMEOUT, discovery.find_providers(request)).await?;
            Ok(Outcome::Records(reply.providers))
        }
        PeersCommand::Send {
            peer,
            service,
            message,
            ..
        } => {
            let size = message.len();
            let request = api::SendRequest {
                peer: peer.clone(),
                service: service.clone(),
                message: message.into_bytes().into(),
            };
            call(&admin, REQUEST_TIMEOUT, client.send(request)).await?;
            Ok(Outcome::Done(format!(
                "sent {size} bytes to {} on {}",
                printable(&service),
                printable(&peer)
            )))
        }
    }
}

/// Why a `peers` command failed: what the JSON error and the exit message
/// say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    /// The gRPC status code: the server's, or the closest one for a local
    /// failure (`Unavailable` when the endpoint cannot be reached).
    pub(crate) code: Code,
    /// What went wrong.
    pub(crate) message: String,
    /// Whether the server answered with this status (its message is then
    /// shown after the code's name) rather than the CLI failing to ask.
    remote: bool,
}

impl Failure {
    /// A failure on this side: the message says it all.
    pub(crate) fn local(code: Code, message: String) -> Self {
        Self {
            code,
            message,
            remote: false,
        }
    }

    /// The endpoint at `admin` cannot be reached, because of `why`.
    fn unreachable(admin: &str, why: &str) -> Self {
        Self::local(
            Code::Unavailable,
            format!("cannot reach the admin endpoint at {admin}: {why}"),
        )
    }

    /// The server at `admin` answered `status`. A status tonic made up from
    /// a transport error (it carries that error as its source), e.g. because
    /// the endpoint closed the connection or does not speak gRPC, counts as
    /// unreachable.
    pub(crate) fn from_status(admin: &str, status: &Status) -> Self {
        if std::error::Error::source(status).is_some() {
            return Self::unreachable(
                admin,
                &format!("{} (is it a gRPC admin endpoint?)", root_cause(status)),
            );
        }
        Self {
            code: status.code(),
            message: status.message().to_owned(),
            remote: true,
        }
    }

    /// `{"error":{"code":"invalid_argument","message":"..."}}`.
    pub(crate) fn json(&self) -> String {
        serde_json::json!({
            "error": { "code": code_name(self.code), "message": self.message }
        })
        .to_string()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.remote {
            let name = code_name(self.code).replace('_', " ");
            if self.message.is_empty() {
                f.write_str(&name)
            } else {
                write!(f, "{name}: {}", printable(&self.message))
            }
        } else {
            f.write_str(&printable(&self.message))
        }
    }
}

impl std::error::Error for Failure {}

/// The snake-case name of a gRPC status code (`invalid_argument`), as in
/// the gRPC spec's list of codes.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "cancelled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

/// The URI of an admin endpoint given as `HOST:PORT` (`http://HOST:PORT`
/// is accepted too; the endpoint speaks plaintext gRPC).
fn admin_uri(admin: &str) -> Result<String, Failure> {
    let invalid = |why: &str| {
        Failure::local(
            Code::InvalidArgument,
            format!("invalid --admin {admin:?}: {why}"),
        )
    };
    let rest = admin.strip_prefix("http://").unwrap_or(admin);
    if rest.contains("://") {
        return Err(invalid("expected HOST:PORT (plaintext gRPC; no TLS)"));
    }
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| invalid("expected HOST:PORT"))?;
    let port_ok = port.parse::<u16>().is_ok_and(|p| p != 0);
    let host_ok = !host.is_empty()
        && !host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '?' | '#' | '@'));
    if !port_ok || !host_ok {
        return Err(invalid("expected HOST:PORT"));
    }
    Ok(format!("http://{host}:{port}"))
}

/// A client of the admin endpoint at `admin`, connected within
/// [`CONNECT_TIMEOUT`].
pub(crate) async fn connect(admin: &str) -> Result<Channel, Failure> {
    connect_within(admin, CONNECT_TIMEOUT).await
}

/// A client of the admin endpoint at `admin`, connected within `timeout`.
async fn connect_within(admin: &str, timeout: Duration) -> Result<Channel, Failure> {
    let endpoint = Endpoint::from_shared(admin_uri(admin)?)
        .map_err(|e| {
            Failure::local(
                Code::InvalidArgument,
                format!("invalid --admin {admin:?}: {}", root_cause(&e)),
            )
        })?
        .connect_timeout(timeout)
        .tcp_nodelay(true);
    // The outer timeout also covers the HTTP/2 handshake, e.g. with a server
    // that accepts TCP but is not gRPC.
    match tokio::time::timeout(timeout, endpoint.connect()).await {
        Ok(Ok(channel)) => Ok(channel),
        Ok(Err(e)) => Err(Failure::unreachable(admin, &root_cause(&e))),
        Err(_) => Err(Failure::unreachable(
            admin,
            &format!("no answer within {}", format_duration(timeout)),
        )),
    }
}

/// Awaits one request to the endpoint at `admin`, at most `timeout`
/// ([`REQUEST_TIMEOUT`]): a server that took the connection but never
/// answers (not gRPC, or stuck) must not hang the CLI.
pub(crate) async fn call<T>(
    admin: &str,
    timeout: Duration,
    request: impl Future<Output = Result<tonic::Response<T>, Status>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(timeout, request).await {
        Ok(Ok(response)) => Ok(response.into_inner()),
        Ok(Err(status)) => Err(Failure::from_status(admin, &status)),
        Err(_) => Err(Failure::local(
            Code::DeadlineExceeded,
            format!(
                "the admin endpoint at {admin} did not answer within {}",
                format_duration(timeout)
            ),
        )),
    }
}

/// The innermost error of `error`'s chain: the one that says what happened
/// ("Connection refused (os error 111)"), not the layers it went through.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut error = error;
    while let Some(source) = error.source() {
        error = source;
    }
    error.to_string()
}

/// Writes `text` and a newline to stdout. A closed pipe (`| head`) is not an
/// error worth a panic.
pub(crate) fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
}

/// A peer as `--json` prints it: every field of `skywire.pool.v1.Peer`, the
/// node id in hex.
#[derive(Debug, Serialize)]
struct PeerJson<'a> {
    /// Skycoin address.
    address: &'a str,
    /// 33-byte compressed public key, hex.
    node_id: String,
    /// Whether it is connected now.
    connected: bool,
    /// Gateway replica holding the connection; empty when not connected.
    gateway: &'a str,
    /// `host:port`s where it accepts SWP/1.
    endpoints: &'a [String],
    /// Services it advertised.
    services: &'a [String],
    /// Last time it was connected, unix ms; 0 = never.
    last_seen_ms: i64,
    /// Consecutive failed dials.
    failures: u32,
    /// Higher is better.
    score: i64,
    /// Banned until (unix ms); 0 = not banned.
    banned_until_ms: i64,
    /// Why it is banned; empty when not.
    ban_reason: &'a str,
}

/// `peer` as a JSON value (see [`PeerJson`]).
fn peer_json(peer: &api::Peer) -> serde_json::Value {
    let json = PeerJson {
        address: &peer.address,
        node_id: hex::encode(&peer.node_id),
        connected: peer.connected,
        gateway: &peer.gateway,
        endpoints: &peer.endpoints,
        services: &peer.services,
        last_seen_ms: peer.last_seen_ms,
        failures: peer.failures,
        score: peer.score,
        banned_until_ms: peer.banned_until_ms,
        ban_reason: &peer.ban_reason,
    };
    serde_json::to_value(json).unwrap_or_default()
}

/// The STATE column: `connected`, `banned until <UTC time>` (a ban in the
/// past has ended), or `idle`.
fn peer_state(peer: &api::Peer, now_ms: i64) -> String {
    let banned = peer.banned_until_ms > now_ms;
    match (peer.connected, banned) {
        (true, false) => "connected".to_owned(),
        (true, true) => format!(
            "connected, banned until {}",
            format_utc(peer.banned_until_ms)
        ),
        (false, true) => format!("banned until {}", format_utc(peer.banned_until_ms)),
        (false, false) => "idle".to_owned(),
    }
}

/// The ENDPOINTS column: the first endpoint, then `+N` for the others.
fn endpoints_cell(endpoints: &[String]) -> String {
    match endpoints {
        [] => "-".to_owned(),
        [one] => printable(one),
        [first, rest @ ..] => format!("{} +{}", printable(first), rest.len()),
    }
}

/// The SERVICES column: comma-separated, cut to [`SERVICES_WIDTH`].
fn services_cell(services: &[String]) -> String {
    if services.is_empty() {
        return "-".to_owned();
    }
    truncate(&printable(&services.join(",")), SERVICES_WIDTH)
}

/// `text` cut to `width` characters, the last one `…` when cut.
fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// `text` with control characters (a peer's advertised strings could carry
/// terminal escapes) replaced by `?`.
pub(crate) fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The table `peers list` prints; `no peers` when there are none.
fn peers_table(peers: &[api::Peer], now_ms: i64) -> String {
    if peers.is_empty() {
        return "no peers".to_owned();
    }
    const HEADER: [&str; 8] = [
        "ADDRESS",
        "STATE",
        "GATEWAY",
        "ENDPOINTS",
        "SERVICES",
        "LAST SEEN",
        "FAILURES",
        "SCORE",
    ];
    /// Columns aligned right: the numbers.
    const RIGHT: [bool; 8] = [false, false, false, false, false, false, true, true];
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_owned()
        } else {
            printable(s)
        }
    };
    let rows: Vec<[String; 8]> = peers
        .iter()
        .map(|peer| {
            [
                dash(&peer.address),
                peer_state(peer, now_ms),
                dash(&peer.gateway),
                endpoints_cell(&peer.endpoints),
                services_cell(&peer.services),
                format_ago(peer.last_seen_ms, now_ms),
                peer.failures.to_string(),
                peer.score.to_string(),
            ]
        })
        .collect();
    let mut widths = HEADER.map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header = HEADER.map(str::to_owned);
    let lines: Vec<String> = std::iter::once(&header)
        .chain(&rows)
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(widths)
                .zip(RIGHT)
                .map(|((cell, width), right)| {
                    if right {
                        format!("{cell:>width$}")
                    } else {
                        format!("{cell:<width$}")
                    }
                })
                .collect();
            cells.join("  ").trim_end().to_owned()
        })
        .collect();
    lines.join("\n")
}

/// The line `peers connect` prints.
/// Node records, one per line: address, node id, endpoints, services.
fn records_table(records: &[dht_api::NodeRecord]) -> String {
    if records.is_empty() {
        return "no nodes found".to_owned();
    }
    records
        .iter()
        .map(|r| {
            let mut line = format!(
                "{} node id {} at {}",
                record_address(r),
                hex::encode(&r.node_id),
                endpoints_cell(&r.endpoints)
            );
            if !r.services.is_empty() {
                line.push_str(&format!("; services: {}", services_cell(&r.services)));
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The Skycoin address of a record's node id (empty if it is not a key).
fn record_address(record: &dht_api::NodeRecord) -> String {
    skywire_identity::Address::of_node_id(&record.node_id)
        .map(|a| a.to_string())
        .unwrap_or_default()
}

/// A node record as JSON.
fn record_json(record: &dht_api::NodeRecord) -> serde_json::Value {
    serde_json::json!({
        "address": record_address(record),
        "node_id": hex::encode(&record.node_id),
        "endpoints": record.endpoints.iter().map(|e| printable(e)).collect::<Vec<_>>(),
        "services": record.services.iter().map(|s| printable(s)).collect::<Vec<_>>(),
        "seq": record.seq,
        "timestamp_ms": record.timestamp_ms,
    })
}

fn dialed_line(peer: &api::Peer) -> String {
    let mut line = format!(
        "connected {} (node id {})",
        printable(&peer.address),
        hex::encode(&peer.node_id)
    );
    if !peer.endpoints.is_empty() {
        line.push_str(&format!(" at {}", endpoints_cell(&peer.endpoints)));
    }
    if !peer.services.is_empty() {
        line.push_str(&format!("; services: {}", services_cell(&peer.services)));
    }
    line
}

/// How long ago `then_ms` was, in its largest whole unit: `5s ago`,
/// `3m ago`, `2h ago`, `4d ago`; `never` for 0. A time in the future (clock
/// skew) reads `0s ago`.
fn format_ago(then_ms: i64, now_ms: i64) -> String {
    if then_ms <= 0 {
        return "never".to_owned();
    }
    let secs = now_ms.saturating_sub(then_ms).max(0) / 1000;
    match secs {
        0..60 => format!("{secs}s ago"),
        60..3600 => format!("{}m ago", secs / 60),
        3600..86_400 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86_400),
    }
}

/// `unix_ms` as an RFC 3339 UTC time to the second: `2026-03-05T14:22:10Z`.
pub(crate) fn format_utc(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let (days, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's `civil_from_days`: days since 1970-01-01 to a
    // proleptic Gregorian date.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// Parses a ban length: whole seconds (`3600`), or numbers with units `s`,
/// `m`, `h`, `d`, possibly several (`30m`, `1h30m`, `7d`). Zero is refused:
/// leave `--duration` out for the node's default.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let invalid = || format!("invalid duration {text:?}: expected e.g. 3600, 90s, 30m, 1h30m, 7d");
    if text.is_empty() {
        return Err(invalid());
    }
    if let Ok(secs) = text.parse::<u64>() {
        return positive(secs, text);
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(digits);
        let mut units = after.chars();
        let unit = match units.next() {
            Some('s') => 1,
            Some('m') => 60,
            Some('h') => 3600,
            Some('d') => 86_400,
            _ => return Err(invalid()),
        };
        let number: u64 = number.parse().map_err(|_| invalid())?;
        total = number
            .checked_mul(unit)
            .and_then(|secs| total.checked_add(secs))
            .ok_or_else(|| format!("duration {text:?} is too long"))?;
        rest = units.as_str();
    }
    positive(total, text)
}

/// `secs` as a duration, unless zero.
fn positive(secs: u64, text: &str) -> Result<Duration, String> {
    if secs == 0 {
        return Err(format!(
            "duration {text:?} is zero; leave --duration out for the default"
        ));
    }
    Ok(Duration::from_secs(secs))
}

/// `duration` in whole units, largest first: `1h30m`, `5s`, `7d`; `0s` for
/// zero.
fn format_duration(duration: Duration) -> String {
    let mut secs = duration.as_secs();
    if secs == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, name) in [(86_400, 'd'), (3600, 'h'), (60, 'm'), (1, 's')] {
        if secs >= unit {
            out.push_str(&format!("{}{name}", secs / unit));
            secs %= unit;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// 2024-03-01T12:00:00Z.
    const NOW: i64 = 1_709_294_400_000;

    fn peer(address: &str) -> api::Peer {
        api::Peer {
            address: address.to_owned(),
            node_id: vec![2; 33].into(),
            ..api::Peer::default()
        }
    }

    #[test]
    fn durations_parse_with_and_without_units() {
        let secs = |s| parse_duration(s).map(|d| d.as_secs());
        assert_eq!(secs("3600"), Ok(3600));
        assert_eq!(secs("45s"), Ok(45));
        assert_eq!(secs("30m"), Ok(1800));
        assert_eq!(secs("1h"), Ok(3600));
        assert_eq!(secs("2d"), Ok(172_800));
        assert_eq!(secs("1h30m"), Ok(5400));
        assert_eq!(secs("1d2h3m4s"), Ok(93_784));
        assert_eq!(secs(" 10m "), Ok(600));
        for bad in ["", "h", "1x", "1.5h", "-1h", "1h 30m", "m30", "1hh", "1H"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert!(parse_duration("0").unwrap_err().contains("zero"));
        assert!(parse_duration("0h0m").unwrap_err().contains("zero"));
        assert!(
            parse_duration("99999999999999999999d")
                .unwrap_err()
                .contains("invalid")
        );
        assert!(
            parse_duration("999999999999999999d")
                .unwrap_err()
                .contains("too long")
        );
    }

    #[test]
    fn durations_format_in_whole_units() {
        let f = |s| format_duration(Duration::from_secs(s));
        assert_eq!(f(0), "0s");
        assert_eq!(f(5), "5s");
        assert_eq!(f(3600), "1h");
        assert_eq!(f(5400), "1h30m");
        assert_eq!(f(93_784), "1d2h3m4s");
        for s in [1, 59, 61, 3599, 86_401, 31_536_000] {
            assert_eq!(parse_duration(&f(s)).unwrap().as_secs(), s);
        }
    }

    #[test]
    fn utc_times_match_known_dates() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(NOW), "2024-03-01T12:00:00Z");
        assert_eq!(format_utc(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(format_utc(4_102_444_799_999), "2099-12-31T23:59:59Z");
        assert_eq!(format_utc(-1000), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn last_seen_is_relative() {
        assert_eq!(format_ago(0, NOW), "never");
        assert_eq!(format_ago(NOW, NOW), "0s ago");
        assert_eq!(format_ago(NOW + 5000, NOW), "0s ago");
        assert_eq!(format_ago(NOW - 5_999, NOW), "5s ago");
        assert_eq!(format_ago(NOW - 180_000, NOW), "3m ago");
        assert_eq!(format_ago(NOW - 7_200_000, NOW), "2h ago");
        assert_eq!(format_ago(NOW - 4 * 86_400_000, NOW), "4d ago");
    }

    #[test]
    fn state_prefers_a_live_ban() {
        let mut p = peer("a");
        assert_eq!(peer_state(&p, NOW), "idle");
        p.connected = true;
        assert_eq!(peer_state(&p, NOW), "connected");
        p.connected = false;
        p.banned_until_ms = NOW + 3_600_000;
        assert_eq!(peer_state(&p, NOW), "banned until 2024-03-01T13:00:00Z");
        p.banned_until_ms = NOW - 1;
        assert_eq!(peer_state(&p, NOW), "idle", "an ended ban");
    }

    #[test]
    fn table_aligns_columns_and_summarises_lists() {
        let mut a = peer("2AddressOfA");
        a.connected = true;
        a.gateway = "embedded".into();
        a.endpoints = vec!["127.0.0.1:7337".into(), "10.0.0.1:7337".into()];
        a.services = vec!["echo/1".into(), "chat/1".into()];
        a.last_seen_ms = NOW - 5000;
        a.score = 120;
        let mut b = peer("2B");
        b.banned_until_ms = NOW + 60_000;
        b.failures = 3;
        b.score = -7;
        b.services = (0..20).map(|i| format!("svc{i}/1")).collect();
        let table = peers_table(&[a, b], NOW);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(lines[0].starts_with("ADDRESS      STATE"), "{table}");
        assert!(lines[0].ends_with("FAILURES  SCORE"), "{table}");
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>().join(" "),
            "ADDRESS STATE GATEWAY ENDPOINTS SERVICES LAST SEEN FAILURES SCORE",
            "every column, in order"
        );
        assert!(lines[1].contains("connected"), "{table}");
        assert!(lines[1].contains("127.0.0.1:7337 +1"), "{table}");
        assert!(lines[1].contains("echo/1,chat/1"), "{table}");
        assert!(lines[1].contains("5s ago"), "{table}");
        assert!(lines[1].ends_with("0    120"), "{table}");
        assert!(
            lines[2].contains("banned until 2024-03-01T12:01:00Z"),
            "{table}"
        );
        assert!(lines[2].contains("never"), "{table}");
        assert!(lines[2].ends_with("3     -7"), "{table}");
        assert!(lines[2].contains('…'), "{table}");
        // Every column starts at the same place on every line.
        let column = |line: &str, at: usize| line.chars().nth(at);
        let state_at = lines[0].find("STATE").unwrap();
        assert_eq!(column(lines[1], state_at), Some('c'));
        assert_eq!(column(lines[2], state_at), Some('b'));
        assert_eq!(peers_table(&[], NOW), "no peers");
    }

    #[test]
    fn cells_are_short_and_printable() {
        assert_eq!(endpoints_cell(&[]), "-");
        assert_eq!(endpoints_cell(&["h:1".into()]), "h:1");
        assert_eq!(
            endpoints_cell(&["h:1".into(), "h:2".into(), "h:3".into()]),
            "h:1 +2"
        );
        assert_eq!(services_cell(&[]), "-");
        let long = services_cell(&["x".repeat(100)]);
        assert_eq!(long.chars().count(), SERVICES_WIDTH);
        assert!(long.ends_with('…'));
        assert_eq!(printable("evil\u{1b}[2Jname\n"), "evil?[2Jname?");
    }

    #[test]
    fn json_has_every_field_and_hex_node_id() {
        let mut p = peer("2A");
        p.connected = true;
        p.last_seen_ms = NOW;
        p.banned_until_ms = 0;
        p.endpoints = vec!["127.0.0.1:7337".into()];
        let doc: serde_json::Value =
            serde_json::from_str(&Outcome::Peers(vec![p.clone()]).json()).unwrap();
        let json = &doc["peers"][0];
        assert_eq!(json["address"], "2A");
        assert_eq!(json["node_id"], "02".repeat(33));
        assert_eq!(json["connected"], true);
        assert_eq!(json["last_seen_ms"], NOW);
        assert_eq!(json["banned_until_ms"], 0);
        assert_eq!(json["endpoints"][0], "127.0.0.1:7337");
        for field in ["gateway", "services", "failures", "score", "ban_reason"] {
            assert!(json.get(field).is_some(), "{field}");
        }
        let dialed: serde_json::Value = serde_json::from_str(
            &Outcome::Dialed {
                peer: Some(p),
                input: String::new(),
            }
            .json(),
        )
        .unwrap();
        assert_eq!(dialed["ok"], true);
        assert_eq!(dialed["peer"]["address"], "2A");
        assert_eq!(Outcome::Done("x".into()).json(), r#"{"ok":true}"#);
        assert_eq!(Outcome::Done("banned x".into()).human(NOW), "ok banned x");
    }

    #[test]
    fn failures_name_their_code() {
        let status =
            Status::invalid_argument("invalid peer \"garbage\": expected PUBKEY@HOST:PORT");
        let failure = Failure::from_status("127.0.0.1:7338", &status);
        assert_eq!(
            failure.to_string(),
            "invalid argument: invalid peer \"garbage\": expected PUBKEY@HOST:PORT"
        );
        let json: serde_json::Value = serde_json::from_str(&failure.json()).unwrap();
        assert_eq!(json["error"]["code"], "invalid_argument");
        assert_eq!(
            json["error"]["message"],
            "invalid peer \"garbage\": expected PUBKEY@HOST:PORT"
        );
        let failure = Failure::unreachable("127.0.0.1:1", "Connection refused");
        assert_eq!(
            failure.to_string(),
            "cannot reach the admin endpoint at 127.0.0.1:1: Connection refused"
        );
        assert!(failure.json().contains(r#""code":"unavailable""#));
    }

    #[test]
    fn admin_addresses_are_host_and_port() {
        assert_eq!(
            admin_uri("127.0.0.1:7338").unwrap(),
            "http://127.0.0.1:7338"
        );
        assert_eq!(admin_uri("http://node:7338").unwrap(), "http://node:7338");
        assert_eq!(admin_uri("[::1]:7338").unwrap(), "http://[::1]:7338");
        for bad in [
            "",
            "127.0.0.1",
            "127.0.0.1:0",
            "127.0.0.1:99999",
            ":7338",
            "https://node:7338",
            "node:7338/path",
            "a b:7338",
        ] {
            let failure = admin_uri(bad).unwrap_err();
            assert_eq!(failure.code, Code::InvalidArgument, "{bad:?}");
            assert!(failure.message.contains("--admin"), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_is_named() {
        // Bind then drop: nothing listens on that port now.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let admin = format!("127.0.0.1:{port}");
        let started = std::time::Instant::now();
        let failure = connect(&admin).await.unwrap_err();
        assert!(started.elapsed() < CONNECT_TIMEOUT);
        assert_eq!(failure.code, Code::Unavailable);
        assert!(
            failure
                .to_string()
                .starts_with(&format!("cannot reach the admin endpoint at {admin}: ")),
            "{failure}"
        );
    }

    #[tokio::test]
    async fn a_server_that_never_answers_does_not_hang() {
        // Accepts TCP, never speaks HTTP/2.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin = listener.local_addr().unwrap().to_string();
        let _held = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let timeout = Duration::from_secs(1);
        // Either the connection or the request gives up, with its reason.
        let failure = match connect_within(&admin, timeout).await {
            Ok(channel) => {
                let mut client = PoolClient::new(channel);
                let request = client.list_peers(api::ListPeersRequest {});
                call(&admin, timeout, request).await.unwrap_err()
            }
            Err(failure) => failure,
        };
        assert!(
            matches!(failure.code, Code::DeadlineExceeded | Code::Unavailable),
            "{failure:?}"
        );
        assert!(failure.to_string().contains(&admin), "{failure}");
        assert!(failure.to_string().contains("within 1s"), "{failure}");
    }
}
