//! What the bus costs a round trip (issue 3), as a bench command
//! (`cargo bench -p skywire-gateway --bench bus`):
//!
//! peer → gateway → bus → a service that replies each message unchanged →
//! bus → gateway → peer, next to the same round trip through `echo/1`, which
//! the gateway's node serves itself. 1 KiB messages, with one request in
//! flight on one channel (latency) and on 16 channels at once (throughput),
//! on both buses: in-process (`Bus::local()`, presence in memory: embedded
//! mode) and NATS (presence on Redis: cluster mode). Target: the bus path
//! keeps at least 30% of the `echo/1` rate, with p99 under 10 ms.
//!
//! Two processes, as in `skywire-wire`'s `loopback` bench: this binary
//! re-executes itself as a child that runs the gateway and the service host
//! (one process, as embedded mode runs them; in NATS mode each has its own
//! NATS connection, so every bus message goes through the server). The
//! client, which seals and opens SWP/1 like a real peer, has its own runtime
//! in the parent. On one runtime tokio would run the client and the gateway
//! on the same worker in turn, which measures the scheduler, not the path.
//! `SKYWIRE_BENCH_SPLIT=1` puts the NATS service in a third process, as
//! cluster mode deploys it.
//!
//! Both paths run over the same connection, in 5 rounds that switch between
//! them, so load from other processes slows both about equally; the ratio is
//! the median of the per-round ratios. Each measurement also runs the bus
//! alone (two connections in this process ping-ponging 1 KiB, no SWP/1, no
//! links): the floor of the bus path's two bus hops; and, on NATS, the
//! links alone (this process plays a gateway without SWP/1, linked to the
//! child's service): the bus plus the link layer. CPU time per round trip
//! is read from `/proc/<pid>/task/*/schedstat` for the client, the
//! gateway and service, and the NATS server (which other clients of the same
//! server add to).
//!
//! - `SKYWIRE_BENCH_SECS`: seconds per path per measurement (default 5).
//! - `SKYWIRE_BENCH_NATS_URL`, `SKYWIRE_BENCH_REDIS_URL`: the servers
//!   (default `nats://127.0.0.1:4222`, `redis://127.0.0.1:6379`);
//!   `SKYWIRE_BENCH_NATS_PID` the NATS server whose CPU time is read
//!   (default: the first process named `nats-server`).
//! - `SKYWIRE_BENCH_SERVER_THREADS`: worker threads of the gateway's
//!   runtime (default 2, like every runtime here).
//! - Arguments: `local` or `nats` select a bus; `--json` prints the results
//!   as one JSON array instead of the table; `--profile=bus` or
//!   `--profile=echo` runs only that path (`SKYWIRE_BENCH_IN_FLIGHT`
//!   channels, default 1) after printing the pids to attach `perf` to.
//!
//! Under `cargo test --benches` (no `--bench` argument) it only runs a short
//! smoke test on the in-process bus.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use prost::Message as _;
use secp256k1::{PublicKey, SecretKey};
use skywire_bus::{Bus, subjects};
use skywire_gateway::limits::IpLimitConfig;
// `unique`: fresh ids, so runs sharing one NATS server (tests, other
// benches) never hear each other's channels.
use skywire_gateway::testing::{
    DEFAULT_NATS_URL, DEFAULT_REDIS_URL, connection_config, env_or, loopback_node, unique,
};
use skywire_gateway::{Gateway, GatewayConfig, Metrics};
use skywire_kv::Kv;
use skywire_kv::presence::Presence;
use skywire_proto::bus::v1 as pb;
use skywire_service::{LinkKey, Links, ServiceHost};
use skywire_wire::{Channel, Connection, ConnectionConfig, driver};

const CHILD_ENV: &str = "SKYWIRE_BENCH_CHILD";

/// Size of every message, both ways.
const MESSAGE_LEN: usize = 1024;

/// Rounds per measurement; each path runs once per round.
const ROUNDS: u32 = 5;

/// Channels with one request in flight each, for the throughput
/// measurement.
const CONCURRENT: usize = 16;

/// Unmeasured round trips before each measurement, per path.
const WARM_UP: Duration = Duration::from_millis(300);

/// Target: the bus path keeps this share of the `echo/1` rate...
const TARGET_RATIO: f64 = 0.30;

/// ...with its p99 round trip under this.
const TARGET_P99: Duration = Duration::from_millis(10);

fn secs() -> Duration {
    let secs: f64 = std::env::var("SKYWIRE_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    Duration::from_secs_f64(secs)
}

fn nats_url() -> String {
    env_or("SKYWIRE_BENCH_NATS_URL", DEFAULT_NATS_URL)
}

fn redis_url() -> String {
    env_or("SKYWIRE_BENCH_REDIS_URL", DEFAULT_REDIS_URL)
}

/// A fresh identity's connection config, with the bench's user agent.
fn config() -> ConnectionConfig {
    let mut config = connection_config(SecretKey::new(&mut rand::rng()));
    config.hello.user_agent = "skywire-bench".into();
    config
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BusKind {
    /// In-process bus, presence in memory (embedded mode).
    Local,
    /// NATS, presence on Redis (cluster mode).
    Nats,
}

impl BusKind {
    fn name(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Nats => "nats",
        }
    }

    fn parse(name: &str) -> Self {
        match name {
            "local" => Self::Local,
            "nats" => Self::Nats,
            other => panic!("unknown bus {other:?}"),
        }
    }
}

/// What a child process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The gateway and the service host (the default).
    Both,
    /// The gateway alone (`SKYWIRE_BENCH_SPLIT=1`, NATS only).
    Gateway,
    /// The service host alone (`SKYWIRE_BENCH_SPLIT=1`, NATS only).
    Service,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Self::Both => "both",
            Self::Gateway => "gateway",
            Self::Service => "service",
        }
    }

    fn parse(name: &str) -> Self {
        match name {
            "both" => Self::Both,
            "gateway" => Self::Gateway,
            "service" => Self::Service,
            other => panic!("unknown role {other:?}"),
        }
    }
}

/// Child mode: a gateway and/or a service host serving `service` (each
/// message answered unchanged) on one bus of `kind`. The gateway prints
/// "ADDR KEY" once it advertises the service, a lone service host "ready"
/// once it serves; both serve until stdin closes.
async fn child_server(kind: BusKind, role: Role, service: String) {
    // Keys of this run's own (the service name is unique to the run): runs
    // and tests share one Redis.
    let tag = service.replace('/', "-");
    let local = Bus::local();
    let kv = match kind {
        BusKind::Local => Kv::memory(),
        BusKind::Nats => Kv::connect_redis(&redis_url())
            .await
            .expect("Redis (start it with scripts/services.sh)"),
    };
    let presence = Presence::new(kv.clone()).with_prefix(format!("bench:{tag}:presence:"));
    let host = match role {
        Role::Both | Role::Service => {
            let bus = connect(kind, &local, "skywire-bench-service").await;
            Some(serve_echo(bus, presence.clone(), &service).await)
        }
        Role::Gateway => None,
    };
    if role == Role::Service {
        println!("ready");
        wait_for_stdin_to_close().await;
        if let Some(host) = host {
            host.shutdown().await;
        }
        return;
    }
    let gateway = Gateway::bind(
        GatewayConfig {
            id: unique("bench-gw"),
            node: loopback_node(config(), 16),
            limits: IpLimitConfig {
                key_prefix: format!("bench:{tag}:"),
                ..IpLimitConfig::default()
            },
        },
        connect(kind, &local, "skywire-bench-gateway").await,
        presence.clone(),
        kv,
        &Metrics::new(),
    )
    .await
    .unwrap();
    let handle = gateway.handle();
    let gateway_task = tokio::spawn(gateway.run());
    let advertised = async {
        while !handle.live_services().contains(&service) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), advertised)
        .await
        .expect("the gateway never saw the service's heartbeat");

    let node = handle.node().unwrap();
    println!("{} {}", node.local_addr(), node.public_key());
    wait_for_stdin_to_close().await;
    if let Some(host) = host {
        host.shutdown().await;
    }
    handle.shutdown();
    let _ = tokio::time::timeout(Duration::from_secs(6), gateway_task).await;
}

/// `local` for the in-process bus, else a connection of its own to NATS
/// (so a message between gateway and service goes through the server).
async fn connect(kind: BusKind, local: &Bus, name: &str) -> Bus {
    match kind {
        BusKind::Local => local.clone(),
        BusKind::Nats => Bus::connect_nats(&nats_url(), name)
            .await
            .expect("NATS (start it with scripts/services.sh)"),
    }
}

/// A service host serving `service`: every channel answers each message
/// with the message itself.
async fn serve_echo(bus: Bus, presence: Presence, service: &str) -> ServiceHost {
    let host = ServiceHost::start(bus, presence, &unique("bench-svc"))
        .await
        .unwrap();
    let mut incoming = host.serve(service).await.unwrap();
    tokio::spawn(async move {
        while let Some(mut channel) = incoming.next().await {
            tokio::spawn(async move {
                while let Ok(Some(message)) = channel.recv().await {
                    if channel.send(message).await.is_err() {
                        return;
                    }
                }
                let _ = channel.finish().await;
            });
        }
    });
    host
}

/// Serves until the parent closes our stdin.
async fn wait_for_stdin_to_close() {
    let _ = tokio::task::spawn_blocking(|| std::io::stdin().read_line(&mut String::new())).await;
}

/// The gateway and its service, in one child process or (split) two.
struct Server {
    /// Dropped in order: the gateway's process first.
    children: Vec<ChildProcess>,
    addr: SocketAddr,
    key: PublicKey,
}

impl Server {
    fn spawn(kind: BusKind, service: &str, split: bool) -> Self {
        let mut children = Vec::new();
        let mut service_child = None;
        let role = if split {
            let (child, line) = ChildProcess::spawn(kind, Role::Service, service);
            assert_eq!(line, "ready", "the service did not start");
            service_child = Some(child);
            Role::Gateway
        } else {
            Role::Both
        };
        let (child, line) = ChildProcess::spawn(kind, role, service);
        let (addr, key) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("the gateway did not start (said {line:?})"));
        let (addr, key) = (addr.parse().unwrap(), key.parse().unwrap());
        children.push(child);
        children.extend(service_child);
        Self {
            children,
            addr,
            key,
        }
    }

    fn pids(&self) -> Vec<u32> {
        self.children.iter().map(|c| c.child.id()).collect()
    }
}

/// This binary re-executed in child mode.
struct ChildProcess {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl ChildProcess {
    /// Starts a child; returns it and its first line of output.
    fn spawn(kind: BusKind, role: Role, service: &str) -> (Self, String) {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(
                CHILD_ENV,
                format!("server {} {} {service}", kind.name(), role.name()),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        (Self { child, stdin }, line.trim().to_owned())
    }
}

impl Drop for ChildProcess {
    /// Closes the child's stdin so it leaves the bus cleanly; kills it if it
    /// takes too long.
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The processes whose CPU time a measurement reads: this one (the client),
/// the children (gateway and service) and, on NATS, the server.
#[derive(Clone)]
struct Procs {
    client: u32,
    /// The gateway's and the service's processes (one, or two when split).
    server: Vec<u32>,
    nats: Option<u32>,
}

/// CPU time used so far by the client, the child and NATS, in that order.
type Cpu = [Duration; 3];

impl Procs {
    fn new(server: Vec<u32>, bus: BusKind) -> Self {
        Self {
            client: std::process::id(),
            server,
            nats: (bus == BusKind::Nats).then(nats_server_pid).flatten(),
        }
    }

    fn cpu(&self) -> Cpu {
        [
            cpu_used(self.client),
            self.server.iter().copied().map(cpu_used).sum(),
            self.nats.map(cpu_used).unwrap_or_default(),
        ]
    }
}

/// CPU time process `pid` has used so far: the sum over its threads of
/// `/proc/<pid>/task/<tid>/schedstat` (nanoseconds on a CPU). Zero if it is
/// not readable.
fn cpu_used(pid: u32) -> Duration {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Duration::ZERO;
    };
    let ns: u64 = tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(ns)
}

/// The local NATS server's pid, to read its CPU time (other clients of the
/// same server add to it, so it is an upper bound): `SKYWIRE_BENCH_NATS_PID`,
/// else the first process named `nats-server`.
fn nats_server_pid() -> Option<u32> {
    if let Some(pid) = std::env::var("SKYWIRE_BENCH_NATS_PID")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return Some(pid);
    }
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid = entry.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
            (comm.trim() == "nats-server").then_some(pid)
        })
}

fn cpu_since(procs: &Procs, before: Cpu) -> Cpu {
    let now = procs.cpu();
    std::array::from_fn(|i| now[i].saturating_sub(before[i]))
}

/// One path's channels, each used with one request in flight.
struct Path {
    channels: Vec<Channel>,
}

/// What one run of a path measured.
#[derive(Default)]
struct Run {
    round_trips: u64,
    elapsed: Duration,
    samples: Vec<Duration>,
    cpu: Cpu,
}

impl Path {
    async fn open(conn: &Connection, service: &str, n: usize) -> Self {
        let mut channels = Vec::with_capacity(n);
        for _ in 0..n {
            channels.push(conn.open(service, 0).await.unwrap());
        }
        Self { channels }
    }

    /// Round trips on every channel at once for `duration`.
    async fn run(&mut self, duration: Duration, procs: &Procs) -> Run {
        let message = Bytes::from(vec![0x5a; MESSAGE_LEN]);
        let cpu = procs.cpu();
        let start = Instant::now();
        let deadline = start + duration;
        let tasks: Vec<_> = self
            .channels
            .drain(..)
            .map(|mut channel| {
                let message = message.clone();
                tokio::spawn(async move {
                    let mut samples = Vec::new();
                    while Instant::now() < deadline {
                        let t = Instant::now();
                        channel.send(message.clone()).await.unwrap();
                        let reply = channel.recv().await.unwrap().expect("reply");
                        samples.push(t.elapsed());
                        assert_eq!(reply.len(), MESSAGE_LEN);
                    }
                    (channel, samples)
                })
            })
            .collect();
        let mut run = Run::default();
        for task in tasks {
            let (channel, samples) = task.await.unwrap();
            self.channels.push(channel);
            run.samples.extend(samples);
        }
        run.elapsed = start.elapsed();
        run.cpu = cpu_since(procs, cpu);
        run.round_trips = run.samples.len() as u64;
        run
    }
}

/// The bus alone, without SWP/1 or links: `n` requesters each publish a
/// 1 KiB message and wait for a responder (another bus connection, one task,
/// like the gateway's and the service's dispatch tasks) to publish it back.
/// Two bus hops per round trip, as on the bridged path: its floor.
async fn bus_alone(kind: BusKind, n: usize, duration: Duration) -> Summary {
    let (requesters, responder) = match kind {
        BusKind::Local => {
            let bus = Bus::local();
            (bus.clone(), bus)
        }
        BusKind::Nats => (
            Bus::connect_nats(&nats_url(), "skywire-bench-requester")
                .await
                .unwrap(),
            Bus::connect_nats(&nats_url(), "skywire-bench-responder")
                .await
                .unwrap(),
        ),
    };
    let subject = unique("bench.ping");
    let mut requests = responder.subscribe(&subject).await.unwrap();
    // Once flushed, the server knows the subscription: a request before
    // that would get NATS' empty "no responders" status as its reply.
    responder.flush().await.unwrap();
    let echo = tokio::spawn(async move {
        while let Some(message) = requests.next().await {
            let reply = message.reply.clone().expect("reply subject");
            responder.publish(&reply, message.payload).await.unwrap();
        }
    });
    let mut inboxes = Vec::with_capacity(n);
    for i in 0..n {
        let inbox = format!("{subject}.reply.{i}");
        let replies = requesters.subscribe(&inbox).await.unwrap();
        inboxes.push((inbox, replies));
    }
    requesters.flush().await.unwrap();
    let mut totals = Totals::default();
    let procs = Procs::new(Vec::new(), kind);
    for window in [WARM_UP, duration] {
        let message = Bytes::from(vec![0x5a; MESSAGE_LEN]);
        let cpu = procs.cpu();
        let start = Instant::now();
        let deadline = start + window;
        let tasks: Vec<_> = inboxes
            .drain(..)
            .map(|(inbox, mut replies)| {
                let (bus, subject, message) =
                    (requesters.clone(), subject.clone(), message.clone());
                tokio::spawn(async move {
                    let mut samples = Vec::new();
                    while Instant::now() < deadline {
                        let t = Instant::now();
                        bus.publish_with_reply(&subject, Some(&inbox), message.clone())
                            .await
                            .unwrap();
                        let reply = replies.next().await.expect("reply");
                        samples.push(t.elapsed());
                        assert_eq!(reply.payload.len(), MESSAGE_LEN);
                    }
                    (inbox, replies, samples)
                })
            })
            .collect();
        let mut run = Run::default();
        for task in tasks {
            let (inbox, replies, samples) = task.await.unwrap();
            inboxes.push((inbox, replies));
            run.samples.extend(samples);
        }
        run.elapsed = start.elapsed();
        run.cpu = cpu_since(&procs, cpu);
        run.round_trips = run.samples.len() as u64;
        if window == duration {
            totals.add(run);
        }
    }
    echo.abort();
    Summary::of(totals)
}

/// The links alone, without SWP/1 (NATS only): this process plays a
/// gateway (its own id, a dispatch task as `Gateway::bind` runs), opens `n`
/// links to the child's service as `bridge::inbound` does, and ping-pongs
/// 1 KiB on each. Same bus hops and process hops as [`bus_alone`], plus the
/// link layer on both ends.
async fn link_alone(service: &str, procs: &Procs, n: usize, duration: Duration) -> Summary {
    let bus = Bus::connect_nats(&nats_url(), "skywire-bench-links")
        .await
        .unwrap();
    let gateway = unique("bench-links");
    let links = Links::new();
    let mut events = bus
        .subscribe(&subjects::gateway_channels(&gateway))
        .await
        .unwrap();
    let dispatch = {
        let links = links.clone();
        tokio::spawn(async move {
            while let Some(message) = events.next().await {
                if let Ok(event) = pb::ChannelEvent::decode(message.payload.clone()) {
                    links.dispatch(event, &message.headers);
                }
            }
        })
    };
    bus.flush().await.unwrap();
    let mut ends = Vec::with_capacity(n);
    for channel in 0..n as u64 {
        let key = LinkKey {
            gateway: gateway.clone(),
            connection: 1,
            channel,
        };
        let request = pb::OpenRequest {
            channel: Some(key.to_ref()),
            peer: Some(pb::Peer {
                node_id: Bytes::from(config().public_key().serialize().to_vec()),
                gateway: gateway.clone(),
                connection: 1,
                ..Default::default()
            }),
            service: service.to_owned(),
            priority: 0,
        };
        let reply = bus
            .request(
                &subjects::service_open(service),
                Bytes::from(request.encode_to_vec()),
                Duration::from_secs(3),
            )
            .await
            .unwrap();
        let reply = pb::OpenReply::decode(reply.payload).unwrap();
        assert!(reply.accepted, "the service refused: {}", reply.message);
        let (sender, receiver) = links
            .insert(
                &bus,
                key,
                &reply.instance,
                subjects::instance_channels(&reply.instance),
                i64::from(reply.window),
            )
            .unwrap();
        receiver.open_window().await;
        ends.push((sender, receiver));
    }
    let mut totals = Totals::default();
    for window in [WARM_UP, duration] {
        let message = Bytes::from(vec![0x5a; MESSAGE_LEN]);
        let cpu = procs.cpu();
        let start = Instant::now();
        let deadline = start + window;
        let tasks: Vec<_> = ends
            .drain(..)
            .map(|(mut sender, mut receiver)| {
                let message = message.clone();
                tokio::spawn(async move {
                    let mut samples = Vec::new();
                    while Instant::now() < deadline {
                        let t = Instant::now();
                        sender.send(message.clone()).await.unwrap();
                        let reply = receiver.recv().await.unwrap().expect("reply");
                        samples.push(t.elapsed());
                        assert_eq!(reply.len(), MESSAGE_LEN);
                    }
                    ((sender, receiver), samples)
                })
            })
            .collect();
        let mut run = Run::default();
        for task in tasks {
            let (end, samples) = task.await.unwrap();
            ends.push(end);
            run.samples.extend(samples);
        }
        run.elapsed = start.elapsed();
        run.cpu = cpu_since(procs, cpu);
        run.round_trips = run.samples.len() as u64;
        if window == duration {
            totals.add(run);
        }
    }
    for (mut sender, _) in ends {
        let _ = sender.finish().await;
    }
    bus.flush().await.unwrap();
    dispatch.abort();
    Summary::of(totals)
}

/// One path's totals over all rounds.
#[derive(Default)]
struct Totals {
    round_trips: u64,
    elapsed: Duration,
    samples: Vec<Duration>,
    cpu: Cpu,
}

impl Totals {
    fn add(&mut self, run: Run) {
        self.round_trips += run.round_trips;
        self.elapsed += run.elapsed;
        self.samples.extend(run.samples);
        for (total, used) in self.cpu.iter_mut().zip(run.cpu) {
            *total += used;
        }
    }

    fn rate(&self) -> f64 {
        self.round_trips as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&mut self, q: f64) -> Duration {
        self.samples.sort_unstable();
        let i = ((self.samples.len() - 1) as f64 * q).round() as usize;
        self.samples[i]
    }
}

/// The result of one (bus, concurrency) cell.
struct Cell {
    bus: BusKind,
    in_flight: usize,
    echo: Summary,
    bridged: Summary,
    /// The bus alone, measured after the rounds: the floor of `bridged`.
    alone: Summary,
    /// The links alone over NATS (no SWP/1), measured last.
    links: Option<Summary>,
    /// Median, smallest and largest per-round bus/echo rate ratio.
    ratio: (f64, f64, f64),
}

struct Summary {
    rate: f64,
    p50: Duration,
    p99: Duration,
    max: Duration,
    /// CPU time per round trip: client, gateway and service, NATS server.
    cpu_per_round_trip: Cpu,
}

impl Summary {
    fn of(mut totals: Totals) -> Self {
        Self {
            rate: totals.rate(),
            p50: totals.percentile(0.5),
            p99: totals.percentile(0.99),
            max: totals.percentile(1.0),
            cpu_per_round_trip: totals
                .cpu
                .map(|cpu| cpu / u32::try_from(totals.round_trips.max(1)).unwrap_or(u32::MAX)),
        }
    }
}

impl Cell {
    fn met(&self) -> bool {
        self.ratio.0 >= TARGET_RATIO && self.bridged.p99 < TARGET_P99
    }
}

/// Measures `echo/1` and the bridged service side by side with `n`
/// channels each, in alternating rounds.
async fn cell(
    conn: &Connection,
    procs: &Procs,
    bus: BusKind,
    service: &str,
    n: usize,
    duration: Duration,
    rounds: u32,
) -> Cell {
    let mut echo = Path::open(conn, "echo/1", n).await;
    let mut bridged = Path::open(conn, service, n).await;
    echo.run(WARM_UP, procs).await;
    bridged.run(WARM_UP, procs).await;
    let per_round = duration / rounds;
    let (mut echo_totals, mut bridged_totals) = (Totals::default(), Totals::default());
    let mut ratios = Vec::new();
    for round in 0..rounds {
        // Switch which path goes first, so neither always follows the other.
        let (e, b) = if round % 2 == 0 {
            let e = echo.run(per_round, procs).await;
            (e, bridged.run(per_round, procs).await)
        } else {
            let b = bridged.run(per_round, procs).await;
            (echo.run(per_round, procs).await, b)
        };
        let rate = |r: &Run| r.round_trips as f64 / r.elapsed.as_secs_f64();
        ratios.push(rate(&b) / rate(&e));
        echo_totals.add(e);
        bridged_totals.add(b);
    }
    ratios.sort_by(f64::total_cmp);
    Cell {
        bus,
        in_flight: n,
        echo: Summary::of(echo_totals),
        bridged: Summary::of(bridged_totals),
        alone: bus_alone(bus, n, duration / 2).await,
        links: match bus {
            BusKind::Local => None,
            BusKind::Nats => Some(link_alone(service, procs, n, duration / 2).await),
        },
        ratio: (
            ratios[ratios.len() / 2],
            ratios[0],
            ratios[ratios.len() - 1],
        ),
    }
}

fn micros(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 10_000.0 {
        format!("{us:.0} µs")
    } else {
        format!("{:.1} ms", us / 1000.0)
    }
}

fn print_table(cells: &[Cell]) {
    println!(
        "{:<6} {:>9}  {:<14} {:>9} {:>9} {:>9} {:>9}   CPU µs per round trip: {:>6} {:>6} {:>6}",
        "bus", "in flight", "path", "msgs/s", "p50", "p99", "max", "client", "gw+svc", "nats"
    );
    for c in cells {
        let rows = [
            ("echo/1", Some(&c.echo)),
            ("bus service", Some(&c.bridged)),
            ("(bus alone)", Some(&c.alone)),
            ("(links alone)", c.links.as_ref()),
        ];
        for (name, s) in rows {
            let Some(s) = s else { continue };
            let [client, server, nats] = s.cpu_per_round_trip.map(|cpu| {
                if cpu.is_zero() {
                    "-".to_owned()
                } else {
                    format!("{:.1}", cpu.as_secs_f64() * 1e6)
                }
            });
            println!(
                "{:<6} {:>9}  {:<14} {:>9.0} {:>9} {:>9} {:>9}                          {client:>6} {server:>6} {nats:>6}",
                c.bus.name(),
                c.in_flight,
                name,
                s.rate,
                micros(s.p50),
                micros(s.p99),
                micros(s.max),
            );
        }
        println!(
            "{:<6} {:>9}  bus/echo = {:.2} (rounds {:.2}-{:.2}); target >= {TARGET_RATIO:.2} with p99 < {TARGET_P99:?}: {}",
            c.bus.name(),
            c.in_flight,
            c.ratio.0,
            c.ratio.1,
            c.ratio.2,
            if c.met() { "met" } else { "MISSED" },
        );
    }
}

fn print_json(cells: &[Cell]) {
    let summary = |s: &Summary| {
        format!(
            r#"{{"msgs_per_s":{:.1},"p50_us":{:.1},"p99_us":{:.1},"max_us":{:.1},"cpu_us_per_round_trip":{{"client":{:.2},"gateway_and_service":{:.2},"nats_server":{:.2}}}}}"#,
            s.rate,
            s.p50.as_secs_f64() * 1e6,
            s.p99.as_secs_f64() * 1e6,
            s.max.as_secs_f64() * 1e6,
            s.cpu_per_round_trip[0].as_secs_f64() * 1e6,
            s.cpu_per_round_trip[1].as_secs_f64() * 1e6,
            s.cpu_per_round_trip[2].as_secs_f64() * 1e6,
        )
    };
    let rows: Vec<String> = cells
        .iter()
        .map(|c| {
            format!(
                r#"{{"bus":"{}","in_flight":{},"message_bytes":{MESSAGE_LEN},"echo":{},"bus_service":{},"bus_alone":{},"links_alone":{},"ratio":{:.4},"ratio_min":{:.4},"ratio_max":{:.4},"target_met":{}}}"#,
                c.bus.name(),
                c.in_flight,
                summary(&c.echo),
                summary(&c.bridged),
                summary(&c.alone),
                c.links.as_ref().map_or("null".to_owned(), summary),
                c.ratio.0,
                c.ratio.1,
                c.ratio.2,
                c.met(),
            )
        })
        .collect();
    println!("[{}]", rows.join(","));
}

/// `--profile=echo` or `--profile=bus`: runs only that path (with
/// `SKYWIRE_BENCH_IN_FLIGHT` channels, default 1) for the measurement's
/// duration, after printing the pids to attach a profiler to.
async fn profile_path(
    conn: &Connection,
    procs: &Procs,
    path: &str,
    service: &str,
    duration: Duration,
) {
    let n = std::env::var("SKYWIRE_BENCH_IN_FLIGHT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let service = match path {
        "echo" => "echo/1",
        "bus" => service,
        other => panic!("--profile={other}: use echo or bus"),
    };
    let mut path = Path::open(conn, service, n).await;
    path.run(WARM_UP, procs).await;
    eprintln!(
        "profile: client pid {}, gateway+service pids {:?}, nats-server pid {:?}; {service} with {n} in flight for {duration:?}",
        procs.client, procs.server, procs.nats
    );
    let mut totals = Totals::default();
    totals.add(path.run(duration, procs).await);
    let s = Summary::of(totals);
    let [client, server, nats] = s.cpu_per_round_trip.map(|c| c.as_secs_f64() * 1e6);
    println!(
        "{service}: {:.0} round trips/s, p50 {}, p99 {}; CPU µs per round trip: client {client:.1}, gateway+service {server:.1}, nats {nats:.1}",
        s.rate,
        micros(s.p50),
        micros(s.p99),
    );
}

fn main() {
    let child = std::env::var(CHILD_ENV).ok();
    // Worker threads of each runtime: 2 (one per core) unless
    // `SKYWIRE_BENCH_SERVER_THREADS` sets the child's (gateway and service).
    let threads = child
        .as_ref()
        .and_then(|_| std::env::var("SKYWIRE_BENCH_SERVER_THREADS").ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .unwrap();
    if let Some(spec) = child {
        let mut parts = spec.split(' ');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("server"), Some(kind), Some(role), Some(service)) => {
                let (kind, role) = (BusKind::parse(kind), Role::parse(role));
                runtime.block_on(child_server(kind, role, service.to_owned()));
            }
            _ => panic!("unknown child mode {spec:?}"),
        }
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; `cargo test --benches` does not.
    let smoke = !args.iter().any(|a| a == "--bench");
    let json = args.iter().any(|a| a == "--json");
    let profile = args
        .iter()
        .find_map(|a| a.strip_prefix("--profile="))
        .map(str::to_owned);
    let mut buses: Vec<BusKind> = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .map(|a| BusKind::parse(a))
        .collect();
    if buses.is_empty() {
        buses = if smoke {
            vec![BusKind::Local]
        } else {
            vec![BusKind::Local, BusKind::Nats]
        };
    }
    let (duration, rounds) = if smoke {
        (Duration::from_millis(200), 1)
    } else {
        (secs(), ROUNDS)
    };
    let service = format!("bench-echo-{:08x}/1", rand::random::<u32>());
    // The service in its own process, as in cluster mode (NATS only).
    let split = std::env::var("SKYWIRE_BENCH_SPLIT").is_ok_and(|v| v == "1");
    let cells = runtime.block_on(async {
        let mut cells = Vec::new();
        for bus in buses {
            let split = split && bus == BusKind::Nats;
            let server = Server::spawn(bus, &service, split);
            let procs = Procs::new(server.pids(), bus);
            let conn = driver::dial(server.addr, &server.key, &config())
                .await
                .unwrap();
            if let Some(path) = &profile {
                profile_path(&conn, &procs, path, &service, duration).await;
                continue;
            }
            for n in [1, CONCURRENT] {
                let c = cell(&conn, &procs, bus, &service, n, duration, rounds).await;
                if !json {
                    print_table(std::slice::from_ref(&c));
                }
                cells.push(c);
            }
            drop(conn);
            drop(server);
        }
        cells
    });
    if profile.is_some() {
        return;
    }
    if json {
        print_json(&cells);
    } else {
        println!();
        print_table(&cells);
    }
}
