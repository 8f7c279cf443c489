//! Whole-stack benchmarks over real TCP on loopback, as a bench command
//! (`cargo bench -p skywire-wire --bench loopback`), printing each number
//! with what it is compared against:
//!
//! 1. one connection, one-way bulk (1 MiB messages into a service that
//!    discards them), as a ratio to raw ChaCha20-Poly1305 on one core;
//! 2. `echo/1` round trips per second with 1 KiB messages;
//! 3. Ping RTT percentiles while another channel saturates the connection;
//! 4. resident memory per idle connection with 10 000 connections.
//!
//! The two ends run in two processes, as they do in reality (this binary,
//! re-executed as a child): for 1 to 3 the node is the child, so sender and
//! receiver each have their own runtime and core; for 4 the clients are, so
//! the node's RSS is measured alone.
//!
//! `SKYWIRE_BENCH_SECS` sets the seconds per measurement (default 5),
//! `SKYWIRE_BENCH_CONNS` the connection count (default 10 000).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use secp256k1::{PublicKey, SecretKey};
use skywire_wire::limits::Limits;
use skywire_wire::session::LocalHello;
use skywire_wire::{Channel, ConnectionConfig, Node, NodeConfig, NodeHandle, Service, driver};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const CHILD_ENV: &str = "SKYWIRE_BENCH_CHILD";

fn secs() -> Duration {
    let secs = std::env::var("SKYWIRE_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    Duration::from_secs(secs)
}

fn config() -> ConnectionConfig {
    ConnectionConfig {
        secret_key: SecretKey::new(&mut rand::rng()),
        hello: LocalHello::default(),
        limits: Limits::default(),
    }
}

/// A service that reads and discards everything.
fn sink() -> Service {
    Arc::new(|mut ch: Channel| Box::pin(async move { while let Ok(Some(_)) = ch.recv().await {} }))
}

async fn start_node(max_connections: usize) -> NodeHandle {
    let node = Node::bind(
        NodeConfig {
            connection: config(),
            listen: "127.0.0.1:0".parse().unwrap(),
            max_connections,
        },
        [("sink/1".to_string(), sink())],
    )
    .await
    .unwrap();
    let handle = node.handle();
    tokio::spawn(node.run());
    handle
}

/// Raw ChaCha20-Poly1305 seal+open throughput of 64 KiB on one core, in
/// bytes per second: the bound for one direction of one connection, where
/// the sender seals on one core and the receiver opens on the other.
fn aead_bound(duration: Duration) -> f64 {
    let cipher = ChaCha20Poly1305::new(&[7u8; 32].into());
    let mut buf = vec![0u8; 65535];
    let nonce = Nonce::default();
    let start = Instant::now();
    let mut bytes = 0u64;
    while start.elapsed() < duration {
        let tag = cipher
            .encrypt_in_place_detached(&nonce, &[], &mut buf)
            .unwrap();
        cipher
            .decrypt_in_place_detached(&nonce, &[], &mut buf, &tag)
            .unwrap();
        bytes += buf.len() as u64;
    }
    // Seal and open each ran once per byte on this core: the one-direction
    // bound with one core each is the rate of the slower of the two, about
    // twice this combined rate.
    2.0 * bytes as f64 / start.elapsed().as_secs_f64()
}

async fn bulk(node: &RemoteNode, duration: Duration) -> f64 {
    let conn = driver::dial(node.addr, &node.key, &config()).await.unwrap();
    let mut ch = conn.open("sink/1", 0).await.unwrap();
    let message = Bytes::from(vec![0u8; 1 << 20]);
    // Warm up, so window auto-tuning has settled.
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(500) {
        ch.send(message.clone()).await.unwrap();
    }
    let start = Instant::now();
    let mut bytes = 0u64;
    while start.elapsed() < duration {
        ch.send(message.clone()).await.unwrap();
        bytes += message.len() as u64;
    }
    bytes as f64 / start.elapsed().as_secs_f64()
}

async fn echo_rate(node: &RemoteNode, duration: Duration) -> (f64, Duration, Duration) {
    let conn = driver::dial(node.addr, &node.key, &config()).await.unwrap();
    let mut ch = conn.open("echo/1", 7).await.unwrap();
    let message = Bytes::from(vec![1u8; 1024]);
    let mut samples = Vec::new();
    let start = Instant::now();
    while start.elapsed() < duration {
        let t = Instant::now();
        ch.send(message.clone()).await.unwrap();
        ch.recv().await.unwrap().unwrap();
        samples.push(t.elapsed());
    }
    samples.sort();
    let rate = samples.len() as f64 / start.elapsed().as_secs_f64();
    (rate, percentile(&samples, 0.5), percentile(&samples, 0.99))
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

async fn ping_under_load(
    node: &RemoteNode,
    duration: Duration,
) -> (Duration, Duration, Duration, f64) {
    let conn = driver::dial(node.addr, &node.key, &config()).await.unwrap();
    let mut bulk = conn.open("sink/1", 0).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let (stop2, sent2) = (stop.clone(), sent.clone());
    let sender = tokio::spawn(async move {
        let message = Bytes::from(vec![0u8; 1 << 20]);
        while !stop2.load(Ordering::Relaxed) {
            bulk.send(message.clone()).await.unwrap();
            sent2.fetch_add(message.len() as u64, Ordering::Relaxed);
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start = Instant::now();
    let before = sent.load(Ordering::Relaxed);
    let mut rtts = Vec::new();
    while start.elapsed() < duration {
        rtts.push(conn.ping(0).await.unwrap());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rate = (sent.load(Ordering::Relaxed) - before) as f64 / start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    sender.await.unwrap();
    rtts.sort();
    (
        percentile(&rtts, 0.5),
        percentile(&rtts, 0.99),
        percentile(&rtts, 1.0),
        rate,
    )
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Child mode: opens `n` connections to the node, reports "ready", and holds
/// them until stdin closes.
async fn child(addr: SocketAddr, key: PublicKey, n: usize) {
    let mut conns = Vec::with_capacity(n);
    for chunk in 0..n.div_ceil(100) {
        let mut batch = Vec::new();
        for _ in 0..100.min(n - chunk * 100) {
            // One identity per connection: the node keeps one per peer.
            let config = config();
            batch.push(tokio::spawn(async move {
                driver::dial(addr, &key, &config).await.unwrap()
            }));
        }
        for t in batch {
            conns.push(t.await.unwrap());
        }
    }
    println!("ready {}", conns.len());
    let mut line = String::new();
    let _ = BufReader::new(tokio::io::stdin())
        .read_line(&mut line)
        .await;
}

/// Child mode "node": runs a node, prints "ADDR KEY", serves until stdin
/// closes.
async fn child_node() {
    let node = start_node(1000).await;
    println!("{} {}", node.local_addr(), node.public_key());
    let mut line = String::new();
    let _ = BufReader::new(tokio::io::stdin())
        .read_line(&mut line)
        .await;
}

/// Re-executes this binary in child mode `spec`; returns the child and its
/// first line of output.
async fn spawn_child(spec: String) -> (tokio::process::Child, String) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .env(CHILD_ENV, spec)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = tokio::process::Command::from(command)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).await.unwrap();
    (child, line.trim().to_string())
}

/// A node in a child process: its address and key.
struct RemoteNode {
    _child: tokio::process::Child,
    addr: SocketAddr,
    key: PublicKey,
}

impl RemoteNode {
    async fn spawn() -> Self {
        let (child, line) = spawn_child("node".into()).await;
        let (addr, key) = line.split_once(' ').expect("node child prints ADDR KEY");
        Self {
            _child: child,
            addr: addr.parse().unwrap(),
            key: key.parse().unwrap(),
        }
    }
}

async fn idle_memory(n: usize) -> (u64, u64) {
    let node = start_node(n + 10).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = rss_kib();
    let spec = format!("clients {} {} {n}", node.local_addr(), node.public_key());
    let (mut child, line) = spawn_child(spec).await;
    assert!(line.starts_with("ready"), "child said {line:?}");
    // Let both sides settle (Hello, first Ping) and go idle.
    while node.connections().len() < n {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_kib();
    let mut stdin = child.stdin.take().unwrap();
    stdin.shutdown().await.unwrap();
    drop(stdin);
    child.wait().await.unwrap();
    (before, after)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        let mut parts = spec.split(' ');
        match parts.next() {
            Some("node") => runtime.block_on(child_node()),
            Some("clients") => {
                let addr: SocketAddr = parts.next().unwrap().parse().unwrap();
                let key: PublicKey = parts.next().unwrap().parse().unwrap();
                let n: usize = parts.next().unwrap().parse().unwrap();
                runtime.block_on(child(addr, key, n));
            }
            other => panic!("unknown child mode {other:?}"),
        }
        return;
    }
    // `cargo bench` passes `--bench`; a filter argument selects sections.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wants = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    let duration = secs();
    let conns: usize = std::env::var("SKYWIRE_BENCH_CONNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    runtime.block_on(async {
        let node = RemoteNode::spawn().await;
        if wants("bulk") {
            let bound = aead_bound(Duration::from_secs(2));
            let rate = bulk(&node, duration).await;
            println!(
                "bulk: one-way {:.0} MiB/s; single-core AEAD bound {:.0} MiB/s; ratio {:.2} (target >= 0.6)",
                rate / 1048576.0,
                bound / 1048576.0,
                rate / bound
            );
        }
        if wants("echo") {
            let (rate, p50, p99) = echo_rate(&node, duration).await;
            println!("echo: {rate:.0} round trips/s of 1 KiB; p50 {p50:?}, p99 {p99:?}");
        }
        if wants("ping") {
            let (p50, p99, max, rate) = ping_under_load(&node, duration).await;
            println!(
                "ping under load: p50 {p50:?}, p99 {p99:?}, max {max:?} while bulk ran at {:.0} MiB/s (target p99 <= 5 ms)",
                rate / 1048576.0
            );
        }
        if wants("memory") {
            let (before, after) = idle_memory(conns).await;
            let per = (after - before) as f64 * 1024.0 / conns as f64;
            println!(
                "memory: node RSS {before} KiB -> {after} KiB with {conns} idle connections: {:.1} KiB per connection (target <= 32 KiB)",
                per / 1024.0
            );
        }
    });
}
