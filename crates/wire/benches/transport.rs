//! SWP/1 transport throughput on maximum-size messages, against raw
//! ChaCha20-Poly1305 on the same bytes.
//!
//! One iteration of either side processes one 65535-byte message
//! ([`MAX_MESSAGE_LEN`]) in both directions of the cipher:
//!
//! - `skywire`: [`Encryptor::seal_into`] into a reused buffer, then
//!   [`Decryptor::open_length`] and [`Decryptor::open_body_in_place`] on the
//!   result, with the keys of a real `skywire/1` handshake. This includes
//!   everything the transport does per message: the encrypted length header
//!   (two more AEAD operations on 2 bytes), the copy of the plaintext into the
//!   output buffer, a fresh cipher instance per operation and the key
//!   rotation every 500 messages.
//! - `raw_chacha20poly1305`: `encrypt_in_place_detached` then
//!   `decrypt_in_place_detached` of the same 65535 bytes with one
//!   `ChaCha20Poly1305` instance and no associated data.
//!
//! Throughput counts the 65535 plaintext bytes once per iteration. After the
//! criterion groups, a `ratio` summary (measured with alternating `Instant`
//! loops, about 1 s per side) prints both throughputs in GiB/s and
//! `transport / raw` (target ≥ 0.8), then what the transport does per message
//! beyond the raw AEAD (plaintext copy, length header, key rotation), each
//! part timed on its own, next to the measured difference.
//!
//! Run with `cargo bench -p skywire-wire --bench transport`.

mod common;

use std::hint::black_box;
use std::time::Duration;

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{ChaCha20Poly1305, Key, KeyInit, Nonce};
use criterion::{Criterion, Throughput};
use hkdf::Hkdf;
use secp256k1::SecretKey;
use sha2::Sha256;
use skywire_wire::noise::{
    Decryptor, Encryptor, InitiatorHandshake, LENGTH_HEADER_LEN, MAX_MESSAGE_LEN, PROLOGUE,
    ResponderHandshake, sealed_len,
};

use common::{SummaryMode, compare, time_per_call};

/// Plaintext bytes per message: the largest SWP/1 allows.
const MESSAGE_LEN: usize = MAX_MESSAGE_LEN;

/// Bytes in a GiB, for the summary.
const GIB: f64 = (1u64 << 30) as f64;

/// One direction of an established SWP/1 session: the initiator's sending
/// half and the responder's receiving half, with the buffers they reuse.
struct SkywireLink {
    /// Seals messages from the initiator.
    tx: Encryptor,
    /// Opens them at the responder.
    rx: Decryptor,
    /// The message sent every time.
    plaintext: Vec<u8>,
    /// The sealed message, reused (cleared) for every message.
    wire: Vec<u8>,
}

impl SkywireLink {
    /// Runs a real `skywire/1` handshake between random keys.
    fn new() -> Self {
        let mut rng = rand::rng();
        let initiator_static = SecretKey::new(&mut rng);
        let responder_static = SecretKey::new(&mut rng);
        let (initiator, act_one) = InitiatorHandshake::new(
            PROLOGUE,
            &initiator_static,
            &responder_static.public_key(),
            SecretKey::new(&mut rng),
        );
        let responder =
            ResponderHandshake::new(PROLOGUE, &responder_static, SecretKey::new(&mut rng));
        let (responder, act_two) = responder.read_act_one(&act_one).expect("act one");
        let (act_three, initiator) = initiator.read_act_two(&act_two).expect("act two");
        let (_, responder) = responder.read_act_three(&act_three).expect("act three");
        let (tx, _) = initiator.into_split();
        let (_, rx) = responder.into_split();
        Self {
            tx,
            rx,
            plaintext: (0..MESSAGE_LEN).map(|i| i as u8).collect(),
            wire: Vec::with_capacity(sealed_len(MESSAGE_LEN)),
        }
    }

    /// Seals the message into the reused buffer.
    fn seal(&mut self) {
        self.wire.clear();
        self.tx
            .seal_into(&self.plaintext, &mut self.wire)
            .expect("the message is at most MAX_MESSAGE_LEN");
    }

    /// Seals the message, then opens it as a receiver reading the socket
    /// would: header first, then body and tag in place.
    fn seal_and_open(&mut self) {
        self.seal();
        let (header, body) = self.wire.split_at_mut(LENGTH_HEADER_LEN);
        let header = (&*header).try_into().expect("split at LENGTH_HEADER_LEN");
        let len = self.rx.open_length(header).expect("header opens");
        debug_assert_eq!(len, MESSAGE_LEN);
        let len = self.rx.open_body_in_place(body).expect("body opens");
        black_box(&body[..len]);
    }
}

/// The baseline: one ChaCha20-Poly1305 key encrypting and decrypting the
/// message in place, with a counter nonce as BOLT 8 uses.
struct RawAead {
    /// The cipher, built once.
    cipher: ChaCha20Poly1305,
    /// Next nonce counter.
    counter: u64,
    /// Plaintext, encrypted and decrypted back in place every iteration.
    buf: Vec<u8>,
}

impl RawAead {
    /// A random key and the same message as [`SkywireLink`].
    fn new() -> Self {
        Self {
            cipher: ChaCha20Poly1305::new(&Key::from(rand::random::<[u8; 32]>())),
            counter: 0,
            buf: (0..MESSAGE_LEN).map(|i| i as u8).collect(),
        }
    }

    /// The next nonce, laid out as BOLT 8 lays it out.
    fn next_nonce(&mut self) -> Nonce {
        let mut nonce = Nonce::default();
        nonce[4..].copy_from_slice(&self.counter.to_le_bytes());
        self.counter += 1;
        nonce
    }

    /// Encrypts the buffer in place and returns the tag.
    fn encrypt(&mut self) -> chacha20poly1305::Tag {
        let nonce = self.next_nonce();
        self.cipher
            .encrypt_in_place_detached(&nonce, &[], &mut self.buf)
            .expect("far below the AEAD length limit")
    }

    /// Encrypts the buffer in place, then authenticates and decrypts it back.
    fn encrypt_and_decrypt(&mut self) {
        let nonce = self.next_nonce();
        let tag = self
            .cipher
            .encrypt_in_place_detached(&nonce, &[], &mut self.buf)
            .expect("far below the AEAD length limit");
        self.cipher
            .decrypt_in_place_detached(&nonce, &[], &mut self.buf, &tag)
            .expect("tag verifies");
        black_box(&self.buf);
    }
}

/// Criterion groups: seal plus open, and seal alone, for both sides.
fn criterion_groups(c: &mut Criterion) {
    let mut link = SkywireLink::new();
    let mut raw = RawAead::new();

    let mut group = c.benchmark_group("transport_65535B_seal_open");
    group.throughput(Throughput::Bytes(MESSAGE_LEN as u64));
    group.bench_function("skywire", |b| b.iter(|| link.seal_and_open()));
    group.bench_function("raw_chacha20poly1305", |b| {
        b.iter(|| raw.encrypt_and_decrypt());
    });
    group.finish();

    let mut group = c.benchmark_group("transport_65535B_seal");
    group.throughput(Throughput::Bytes(MESSAGE_LEN as u64));
    group.bench_function("skywire", |b| b.iter(|| link.seal()));
    group.bench_function("raw_chacha20poly1305", |b| {
        b.iter(|| black_box(raw.encrypt()))
    });
    group.finish();
}

/// GiB/s for one message per `per_message`.
fn gib_per_s(per_message: Duration) -> f64 {
    MESSAGE_LEN as f64 / per_message.as_secs_f64() / GIB
}

/// Prints the `ratio` summary: both throughputs and `transport / raw`.
fn ratio_summary(mode: SummaryMode) {
    let mut link = SkywireLink::new();
    let mut raw = RawAead::new();
    let result = compare(mode, || link.seal_and_open(), || raw.encrypt_and_decrypt());
    let verdict = mode.verdict(result.ratio, 0.8);
    mode.print_heading(
        "65535-byte messages, seal + open, median of 5 alternating rounds of 200 ms per side",
    );
    println!(
        "  skywire transport:     {:>8.3} GiB/s  ({:>9.2?} per message)",
        gib_per_s(result.subject),
        result.subject
    );
    println!(
        "  raw ChaCha20-Poly1305: {:>8.3} GiB/s  ({:>9.2?} per message)",
        gib_per_s(result.baseline),
        result.baseline
    );
    println!(
        "  transport / raw = {:.3} (rounds ranged {:.3}..{:.3}); target >= 0.8: {verdict}",
        result.ratio, result.ratio_range.0, result.ratio_range.1
    );
    overhead_breakdown(mode, result.subject.saturating_sub(result.baseline));
}

/// Times, per message, what the transport does beyond the two bulk AEAD
/// operations the raw baseline does, and prints it next to the measured
/// difference between the two.
fn overhead_breakdown(mode: SummaryMode, measured: Duration) {
    let budget = match mode {
        SummaryMode::Full => Duration::from_millis(100),
        SummaryMode::Smoke | SummaryMode::Skip => Duration::from_millis(1),
    };
    let plaintext: Vec<u8> = (0..MESSAGE_LEN).map(|i| i as u8).collect();
    let mut out = Vec::with_capacity(sealed_len(MESSAGE_LEN));
    let copy = time_per_call(budget, &mut || {
        out.clear();
        out.extend_from_slice(black_box(&plaintext));
        black_box(&out);
    });
    let key = Key::from(rand::random::<[u8; 32]>());
    let header = time_per_call(budget, &mut || {
        // As noise.rs does it: a fresh cipher per operation, seal then open.
        let mut len = black_box(MESSAGE_LEN as u16).to_be_bytes();
        let tag = ChaCha20Poly1305::new(black_box(&key))
            .encrypt_in_place_detached(&Nonce::default(), &[], &mut len)
            .expect("2 bytes");
        ChaCha20Poly1305::new(black_box(&key))
            .decrypt_in_place_detached(&Nonce::default(), &[], &mut len, &tag)
            .expect("tag verifies");
        black_box(len);
    });
    let salt = [5u8; 32];
    let rotation = time_per_call(budget, &mut || {
        let mut okm = [0u8; 64];
        Hkdf::<Sha256>::new(Some(black_box(&salt)), black_box(&key))
            .expand(&[], &mut okm)
            .expect("64 bytes");
        black_box(okm);
    });
    // Each direction's key rotates every 1000 nonces, i.e. every 500
    // messages; sealing and opening each rotate once in that time.
    let rotation_per_message = rotation * 2 / 500;
    println!();
    println!("per-message overhead of the transport over the raw AEAD (each timed alone)");
    println!("  copy 65535 B plaintext into the output Vec:        {copy:>9.2?}");
    println!("  length header: seal + open 2 B (2 more AEAD ops): {header:>9.2?}");
    println!(
        "  key rotation: 2 HKDF-SHA256 per 500 messages:      {rotation_per_message:>9.2?}  ({rotation:.2?} each)"
    );
    println!(
        "  sum:                                               {:>9.2?}",
        copy + header + rotation_per_message
    );
    println!("  measured transport - raw:                          {measured:>9.2?}");
}

fn main() {
    common::run(Duration::from_secs(3), criterion_groups, ratio_summary);
}
