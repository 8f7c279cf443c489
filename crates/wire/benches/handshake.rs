//! SWP/1 handshake rate, against the elliptic-curve work BOLT 8 cannot avoid.
//!
//! - `full`: one complete `skywire/1` handshake, both sides, in memory and
//!   on one core: fresh ephemeral keys from `SecretKey::new(&mut rand::rng())`
//!   as the real code generates them, [`InitiatorHandshake::new`],
//!   [`ResponderHandshake::new`], then acts one, two and three.
//! - `ecdh_only`: just the curve operations the handshake must do: the two
//!   ephemeral public keys (`PublicKey::from_secret_key`) and the six ECDHs
//!   (`es`, `ee`, `se` on each side, `secp256k1::ecdh::SharedSecret::new`).
//!
//! After the criterion group, a `ratio` summary (alternating `Instant`
//! loops, about 1 s per side) prints handshakes per second per core and
//! `ECDH-only time / full handshake time` (target ≥ 0.5), followed by a cost
//! breakdown: each primitive the handshake uses, timed on its own and
//! multiplied by how often one handshake (both sides) calls it.
//!
//! Run with `cargo bench -p skywire-wire --bench handshake`.

mod common;

use std::hint::black_box;
use std::time::Duration;

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{ChaCha20Poly1305, Key, KeyInit, Nonce};
use criterion::{Criterion, Throughput};
use hkdf::Hkdf;
use secp256k1::ecdh::SharedSecret;
use secp256k1::{PublicKey, SecretKey};
use sha2::{Digest, Sha256};
use skywire_wire::noise::{InitiatorHandshake, PROLOGUE, ResponderHandshake};

use common::{SummaryMode, compare, time_per_call};

/// The long-lived keys of the two nodes, and the responder's public key the
/// initiator knows in advance (as a dialler knows its peer's address).
struct Nodes {
    /// The initiator's static key.
    initiator: SecretKey,
    /// The responder's static key.
    responder: SecretKey,
    /// The responder's static public key.
    responder_public: PublicKey,
}

impl Nodes {
    /// Two random node keys.
    fn new() -> Self {
        let mut rng = rand::rng();
        let responder = SecretKey::new(&mut rng);
        Self {
            initiator: SecretKey::new(&mut rng),
            responder_public: responder.public_key(),
            responder,
        }
    }

    /// One full handshake, both sides, with fresh ephemeral keys.
    fn handshake(&self) {
        let mut rng = rand::rng();
        let (initiator, act_one) = InitiatorHandshake::new(
            PROLOGUE,
            &self.initiator,
            &self.responder_public,
            SecretKey::new(&mut rng),
        );
        let responder =
            ResponderHandshake::new(PROLOGUE, &self.responder, SecretKey::new(&mut rng));
        let (responder, act_two) = responder.read_act_one(&act_one).expect("act one");
        let (act_three, initiator) = initiator.read_act_two(&act_two).expect("act two");
        let (initiator_public, responder) =
            responder.read_act_three(&act_three).expect("act three");
        black_box((initiator_public, initiator, responder));
    }
}

/// Inputs of the ECDH-only baseline: the static keys of [`Nodes`] plus one
/// pair of ephemeral secret keys. The curve operations are constant-time,
/// so fixed ephemeral keys cost the same as fresh ones.
struct EcdhOnly {
    /// Initiator static secret key.
    initiator_static: SecretKey,
    /// Initiator static public key (the responder learns it in act three).
    initiator_public: PublicKey,
    /// Responder static secret key.
    responder_static: SecretKey,
    /// Responder static public key.
    responder_public: PublicKey,
    /// Initiator ephemeral secret key.
    initiator_ephemeral: SecretKey,
    /// Responder ephemeral secret key.
    responder_ephemeral: SecretKey,
}

impl EcdhOnly {
    /// The keys of `nodes` and two random ephemeral keys.
    fn new(nodes: &Nodes) -> Self {
        let mut rng = rand::rng();
        Self {
            initiator_static: nodes.initiator,
            initiator_public: nodes.initiator.public_key(),
            responder_static: nodes.responder,
            responder_public: nodes.responder_public,
            initiator_ephemeral: SecretKey::new(&mut rng),
            responder_ephemeral: SecretKey::new(&mut rng),
        }
    }

    /// The two ephemeral public keys and the six ECDHs of one handshake.
    fn run(&self) {
        let ie = black_box(&self.initiator_ephemeral);
        let re = black_box(&self.responder_ephemeral);
        let is = black_box(&self.initiator_static);
        let rs = black_box(&self.responder_static);
        let ie_pub = PublicKey::from_secret_key(ie);
        let re_pub = PublicKey::from_secret_key(re);
        // Initiator: es, ee, se.
        black_box(SharedSecret::new(&self.responder_public, ie));
        black_box(SharedSecret::new(&re_pub, ie));
        black_box(SharedSecret::new(&re_pub, is));
        // Responder: es, ee, se.
        black_box(SharedSecret::new(&ie_pub, rs));
        black_box(SharedSecret::new(&ie_pub, re));
        black_box(SharedSecret::new(&self.initiator_public, re));
    }
}

/// The criterion group: full handshakes and the ECDH-only baseline.
fn criterion_groups(c: &mut Criterion) {
    let nodes = Nodes::new();
    let ecdh = EcdhOnly::new(&nodes);
    let mut group = c.benchmark_group("handshake");
    group.throughput(Throughput::Elements(1));
    group.bench_function("full", |b| b.iter(|| nodes.handshake()));
    group.bench_function("ecdh_only", |b| b.iter(|| ecdh.run()));
    group.finish();
}

/// One line of the cost breakdown.
struct Part {
    /// What is timed.
    name: &'static str,
    /// How many times one handshake (both sides) does it.
    count: u32,
    /// Mean time of one call.
    each: Duration,
}

/// Times each primitive the handshake uses, for `budget` each, and counts
/// how often `crates/wire/src/noise.rs` calls it per handshake (both sides).
fn breakdown(budget: Duration) -> Vec<Part> {
    let nodes = Nodes::new();
    let secret = nodes.initiator;
    let public = nodes.responder_public;
    let compressed = public.serialize();
    let mut rng = rand::rng();
    let key = [7u8; 32];
    let h = [9u8; 32];

    let mut parts = Vec::new();
    let mut part = |name, count, mut f: Box<dyn FnMut() + '_>| {
        parts.push(Part {
            name,
            count,
            each: time_per_call(budget, &mut f),
        });
    };
    part(
        "ECDH (SharedSecret::new): es, ee, se per side",
        6,
        Box::new(|| {
            black_box(SharedSecret::new(black_box(&public), black_box(&secret)));
        }),
    );
    part(
        "PublicKey::from_secret_key, ephemeral (required)",
        2,
        Box::new(|| {
            black_box(PublicKey::from_secret_key(black_box(&secret)));
        }),
    );
    part(
        "PublicKey::from_secret_key, static (re-derived)",
        2,
        Box::new(|| {
            black_box(PublicKey::from_secret_key(black_box(&secret)));
        }),
    );
    part(
        "PublicKey::from_slice (decompress re, re, rs)",
        3,
        Box::new(|| {
            black_box(PublicKey::from_slice(black_box(&compressed)).expect("valid key"));
        }),
    );
    part(
        "SecretKey::new(&mut rand::rng())",
        2,
        Box::new(|| {
            black_box(SecretKey::new(&mut rng));
        }),
    );
    part(
        "HKDF-SHA256, 64-byte output (6 mix_key, 2 split)",
        8,
        Box::new(|| {
            let mut okm = [0u8; 64];
            Hkdf::<Sha256>::new(Some(black_box(&key)), black_box(&h))
                .expand(&[], &mut okm)
                .expect("64 bytes");
            black_box(okm);
        }),
    );
    part(
        "SHA-256 of h || 33 bytes (mix_hash, init)",
        16,
        Box::new(|| {
            let digest = Sha256::new()
                .chain_update(black_box(h))
                .chain_update(black_box(compressed))
                .finalize();
            black_box(digest);
        }),
    );
    part(
        "ChaCha20-Poly1305, new + 33-byte seal, AD = h",
        8,
        Box::new(|| {
            let mut buf = compressed;
            let tag = ChaCha20Poly1305::new(Key::from_slice(black_box(&key)))
                .encrypt_in_place_detached(&Nonce::default(), &h, &mut buf)
                .expect("short");
            black_box((buf, tag));
        }),
    );
    parts
}

/// Prints the `ratio` summary and the cost breakdown.
fn ratio_summary(mode: SummaryMode) {
    let nodes = Nodes::new();
    let ecdh = EcdhOnly::new(&nodes);
    let result = compare(mode, || nodes.handshake(), || ecdh.run());
    let verdict = mode.verdict(result.ratio, 0.5);
    mode.print_heading("median of 5 alternating rounds of 200 ms per side, one core");
    println!(
        "  full handshake (3 acts, both sides): {:>9.2?}  = {:>7.0} handshakes/s/core",
        result.subject,
        1.0 / result.subject.as_secs_f64()
    );
    println!(
        "  ECDH only (6 ECDH + 2 keygen):       {:>9.2?}",
        result.baseline
    );
    println!(
        "  ECDH-only / full = {:.3} (rounds ranged {:.3}..{:.3}); target >= 0.5: {verdict}",
        result.ratio, result.ratio_range.0, result.ratio_range.1
    );

    let budget = match mode {
        SummaryMode::Full => Duration::from_millis(100),
        SummaryMode::Smoke | SummaryMode::Skip => Duration::from_millis(1),
    };
    let parts = breakdown(budget);
    let full = result.subject.as_secs_f64();
    println!();
    println!("breakdown (each primitive timed alone, times the calls in one handshake)");
    let mut total = 0.0;
    for part in &parts {
        let cost = part.each.as_secs_f64() * f64::from(part.count);
        total += cost;
        println!(
            "  {:<50} {:>2} x {:>9.2?} = {:>7.1} us  ({:>4.1}% of full)",
            part.name,
            part.count,
            part.each,
            cost * 1e6,
            100.0 * cost / full
        );
    }
    println!(
        "  {:<50}                  {:>7.1} us  ({:>4.1}% of full)",
        "sum of the above",
        total * 1e6,
        100.0 * total / full
    );
    println!(
        "  {:<50}                  {:>7.1} us",
        "full handshake, measured",
        full * 1e6
    );

    // `PublicKey::from_secret_key` (and `SecretKey::public_key`) uses the
    // global context and then rerandomizes it (side-channel blinding), which
    // is itself a generator multiplication. Show how much of it that is.
    let seed = [3u8; 32];
    let rerandomize = time_per_call(budget, &mut || {
        secp256k1::rerandomize_global_context(black_box(&seed));
    });
    println!(
        "  (each PublicKey::from_secret_key includes a rerandomize_global_context: {rerandomize:.2?})"
    );
}

fn main() {
    common::run(Duration::from_secs(4), criterion_groups, ratio_summary);
}
