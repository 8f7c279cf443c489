//! `skywire ping` and `skywire bench`: a throwaway identity dials a peer and
//! measures it. `bench` follows libp2p's perf protocol in spirit: bulk
//! transfer through the peer's `echo/1`, then 1 KiB request/response round
//! trips, with a progress line each second.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use clap::Args;
use serde_json::json;
use skywire_wire::limits::Limits;
use skywire_wire::session::LocalHello;
use skywire_wire::{Connection, ConnectionConfig, driver};

use crate::peer::PeerAddr;

/// `skywire ping` flags.
#[derive(Debug, Args)]
pub(crate) struct PingArgs {
    /// The peer, as PUBKEY@HOST:PORT.
    peer: PeerAddr,
    /// Number of pings.
    #[arg(long, short = 'c', default_value_t = 5)]
    count: u32,
    /// Seconds between pings.
    #[arg(long, short = 'i', default_value_t = 1.0)]
    interval: f64,
    /// Print a JSON summary instead of text.
    #[arg(long)]
    json: bool,
}

/// `skywire bench` flags.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// The peer, as PUBKEY@HOST:PORT.
    peer: PeerAddr,
    /// Seconds for each phase (throughput, then latency).
    #[arg(long, default_value_t = 5)]
    duration: u64,
    /// Message size for the throughput phase, in bytes.
    #[arg(long, default_value_t = 64 << 10)]
    size: usize,
    /// Parallel echo channels for the throughput phase.
    #[arg(long, default_value_t = 1)]
    channels: usize,
    /// Message size for the latency phase, in bytes.
    #[arg(long, default_value_t = 1024)]
    latency_size: usize,
    /// Print a JSON summary instead of text.
    #[arg(long)]
    json: bool,
}

async fn dial(peer: &PeerAddr) -> anyhow::Result<Connection> {
    let config = ConnectionConfig {
        secret_key: secp256k1::SecretKey::new(&mut rand::rng()),
        hello: LocalHello {
            user_agent: format!("skywire-cli/{}", env!("CARGO_PKG_VERSION")),
            ..LocalHello::default()
        },
        limits: Limits::default(),
    };
    driver::dial(peer.addr, &peer.key, &config)
        .await
        .with_context(|| format!("cannot connect to {}", peer.addr))
}

/// The `q`-quantile of sorted `samples`.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub(crate) async fn ping(args: PingArgs) -> anyhow::Result<()> {
    let conn = dial(&args.peer).await?;
    let mut rtts = Vec::new();
    for seq in 0..args.count {
        if seq > 0 {
            tokio::time::sleep(Duration::from_secs_f64(args.interval)).await;
        }
        let rtt = conn.ping(0).await.context("connection lost")?;
        if !args.json {
            println!(
                "pong from {}: seq={seq} time={:.3} ms",
                args.peer.addr,
                ms(rtt)
            );
        }
        rtts.push(rtt);
    }
    conn.go_away(skywire_wire::Reason::Normal, "done");
    rtts.sort();
    let avg = rtts.iter().sum::<Duration>() / rtts.len().max(1) as u32;
    let (min, max) = (
        rtts.first().copied().unwrap_or_default(),
        rtts.last().copied().unwrap_or_default(),
    );
    if args.json {
        println!(
            "{}",
            json!({"peer": args.peer.addr.to_string(), "count": rtts.len(), "min_ms": ms(min), "avg_ms": ms(avg), "max_ms": ms(max)})
        );
    } else {
        println!(
            "{} pings: min/avg/max = {:.3}/{:.3}/{:.3} ms",
            rtts.len(),
            ms(min),
            ms(avg),
            ms(max)
        );
    }
    Ok(())
}

/// Prints a progress line each second while `phase` runs.
fn progress(
    label: &'static str,
    counter: Arc<AtomicU64>,
    unit: fn(u64, f64) -> String,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let start = Instant::now();
        let mut last = 0;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        loop {
            tick.tick().await;
            let now = counter.load(Ordering::Relaxed);
            eprint!(
                "\r{label} {:>3.0}s  {}   ",
                start.elapsed().as_secs_f64(),
                unit(now - last, 1.0)
            );
            let _ = std::io::stderr().flush();
            last = now;
        }
    })
}

fn gbits(bytes: u64, secs: f64) -> String {
    format!("{:.3} Gbit/s", bytes as f64 * 8.0 / secs / 1e9)
}

fn per_sec(count: u64, secs: f64) -> String {
    format!("{:.0} round trips/s", count as f64 / secs)
}

pub(crate) async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let conn = dial(&args.peer).await?;
    let duration = Duration::from_secs(args.duration);

    // Phase 1: bulk through echo/1 on `channels` channels.
    let received = Arc::new(AtomicU64::new(0));
    let ticker = progress("throughput", received.clone(), gbits);
    let payload = Bytes::from(vec![0x5a; args.size]);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.channels.max(1) {
        let channel = conn
            .open(skywire_wire::echo::SERVICE, 0)
            .await
            .context("cannot open echo/1")?;
        let (mut tx, mut rx) = channel.split();
        let payload = payload.clone();
        let sender = tokio::spawn(async move {
            while start.elapsed() < duration {
                tx.send(payload.clone()).await?;
            }
            tx.finish()?;
            anyhow::Ok(())
        });
        let received = received.clone();
        let receiver = tokio::spawn(async move {
            while let Some(message) = rx.recv().await? {
                received.fetch_add(message.len() as u64, Ordering::Relaxed);
            }
            anyhow::Ok(())
        });
        tasks.push((sender, receiver));
    }
    for (sender, receiver) in tasks {
        sender.await??;
        receiver.await??;
    }
    let bulk_secs = start.elapsed().as_secs_f64();
    ticker.abort();
    let bulk_bytes = received.load(Ordering::Relaxed);

    // Phase 2: request/response latency.
    let round_trips = Arc::new(AtomicU64::new(0));
    let ticker = progress("latency   ", round_trips.clone(), per_sec);
    let mut channel = conn
        .open(skywire_wire::echo::SERVICE, 7)
        .await
        .context("cannot open echo/1")?;
    let request = Bytes::from(vec![0x17; args.latency_size]);
    let mut samples = Vec::new();
    let start = Instant::now();
    while start.elapsed() < duration {
        let sent = Instant::now();
        channel.send(request.clone()).await?;
        let reply = channel.recv().await?.context("echo channel closed")?;
        anyhow::ensure!(reply == request, "echo returned different bytes");
        samples.push(sent.elapsed());
        round_trips.fetch_add(1, Ordering::Relaxed);
    }
    let latency_secs = start.elapsed().as_secs_f64();
    ticker.abort();
    eprintln!();
    conn.go_away(skywire_wire::Reason::Normal, "done");
    samples.sort();
    let (p50, p99) = (quantile(&samples, 0.5), quantile(&samples, 0.99));
    let rate = samples.len() as f64 / latency_secs;
    let throughput = bulk_bytes as f64 / bulk_secs;
    if args.json {
        println!(
            "{}",
            json!({
                "peer": args.peer.addr.to_string(),
                "message_size": args.size,
                "channels": args.channels,
                "echoed_bytes": bulk_bytes,
                "throughput_bytes_per_sec": throughput,
                "latency_message_size": args.latency_size,
                "round_trips_per_sec": rate,
                "p50_ms": ms(p50),
                "p99_ms": ms(p99),
            })
        );
    } else {
        println!(
            "throughput: {} echoed in {bulk_secs:.1} s = {} ({} MiB/s each way)",
            bulk_bytes,
            gbits(bulk_bytes, bulk_secs),
            (throughput / (1 << 20) as f64).round()
        );
        println!(
            "latency:    {rate:.0} round trips/s of {} B; p50 {:.3} ms, p99 {:.3} ms",
            args.latency_size,
            ms(p50),
            ms(p99)
        );
    }
    Ok(())
}
