//! Lookup hops and success rate against network size, with and without
//! churn, on the in-memory network (`skywire_dht::sim`) that drives the
//! service's own routing-table and lookup code.
//!
//! `cargo bench -p skywire-dht --bench lookup [-- SIZE...]`
//! (default sizes 100, 1000, 10000; 1000 lookups each). Results go in
//! docs/benchmarks.md.

use std::time::Instant;

use skywire_dht::Goal;
use skywire_dht::sim::{Network, SimConfig};

const LOOKUPS: usize = 1000;
const CHURN: f64 = 0.20;
const SEED: u64 = 0x5eed;

struct Row {
    success: f64,
    median: f64,
    p95: u32,
    asked: f64,
}

fn measure(network: &mut Network) -> Row {
    let mut hops = Vec::with_capacity(LOOKUPS);
    let mut asked = 0;
    for _ in 0..LOOKUPS {
        let (from, to) = network.random_pair();
        let target = network.key(to);
        let outcome = network.lookup(from, target, Goal::Node);
        asked += outcome.asked;
        if let Some(h) = outcome.hops.filter(|_| outcome.found) {
            hops.push(h);
        }
    }
    hops.sort_unstable();
    let median = match hops.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => f64::from(hops[n / 2]),
        n => f64::from(hops[n / 2 - 1] + hops[n / 2]) / 2.0,
    };
    let p95 = hops.get(hops.len() * 95 / 100).copied().unwrap_or(0);
    Row {
        success: hops.len() as f64 / LOOKUPS as f64 * 100.0,
        median,
        p95,
        asked: asked as f64 / LOOKUPS as f64,
    }
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![100, 1000, 10_000]
    } else {
        sizes
    };
    println!(
        "| nodes | churn | success % | median hops | p95 hops | target (log2(N)/3+1) | requests/lookup | mean table | build s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for n in sizes {
        let started = Instant::now();
        let mut network = Network::build(n, SimConfig::default(), SEED);
        let build = started.elapsed().as_secs_f64();
        let table = (0..n).map(|i| network.table_len(i)).sum::<usize>() as f64 / n as f64;
        let target = (n as f64).log2() / 3.0 + 1.0;
        let row = measure(&mut network);
        print_row(n, "none", &row, target, table, build);
        network.stop_fraction(CHURN);
        let row = measure(&mut network);
        print_row(n, "20% stopped", &row, target, table, build);
    }
}

fn print_row(n: usize, churn: &str, row: &Row, target: f64, table: f64, build: f64) {
    println!(
        "| {n} | {churn} | {:.1} | {} | {} | {target:.2} | {:.1} | {table:.0} | {build:.1} |",
        row.success, row.median, row.p95, row.asked
    );
}
