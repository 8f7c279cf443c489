//! Conformance with Skycoin's `cipher` golden files (`testdata/skycoin-cipher/`).
//!
//! Each `seed-*.golden` / `many-addresses.golden` file holds a base64 seed and the keys
//! Skycoin derives from it, in order; `seed-*` keys also carry one signature per hash in
//! `input-hashes.golden`.
//!
//! Skycoin signs with a random nonce (`secp256k1.Sign` draws 32 random bytes), so the golden
//! signatures cannot be reproduced: this crate signs with RFC 6979. The tests therefore check
//! that every golden signature parses (so it is low-s, with recovery id 0 or 1), verifies and
//! recovers to its key, and that our own signatures over the same hashes round-trip and
//! differ from Skycoin's only by nonce.

use base64::Engine as _;
use serde::Deserialize;
use skywire_identity::{Address, PublicKey, Signature, derive_keypairs};

macro_rules! golden_path {
    ($name:literal) => {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/skycoin-cipher/",
            $name
        )
    };
}

#[derive(Deserialize)]
struct SeedFile {
    seed: String,
    keys: Vec<GoldenKey>,
}

#[derive(Deserialize)]
struct GoldenKey {
    address: String,
    secret: String,
    public: String,
    #[serde(default)]
    signatures: Vec<String>,
}

#[derive(Deserialize)]
struct HashesFile {
    hashes: Vec<String>,
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &str) -> T {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {path}: {e}"))
}

fn input_hashes() -> Vec<[u8; 32]> {
    read_json::<HashesFile>(golden_path!("input-hashes.golden"))
        .hashes
        .iter()
        .map(|h| {
            hex::decode(h)
                .expect("hash is hex")
                .try_into()
                .expect("hash is 32 bytes")
        })
        .collect()
}

/// Checks every key of a golden file; returns the number of golden signatures checked.
fn check_file(path: &str) -> usize {
    let file: SeedFile = read_json(path);
    let seed = base64::engine::general_purpose::STANDARD
        .decode(&file.seed)
        .expect("seed is base64");
    let hashes = input_hashes();

    let (_, keypairs) = derive_keypairs(&seed, file.keys.len()).expect("seed is not empty");
    assert_eq!(keypairs.len(), file.keys.len());

    let mut signatures_checked = 0;
    for (index, (keypair, golden)) in keypairs.iter().zip(&file.keys).enumerate() {
        let context = format!("{path}, key {index}");
        assert_eq!(
            keypair.secret_hex().as_str(),
            golden.secret,
            "{context}: secret"
        );
        assert_eq!(
            keypair.public_key().to_string(),
            golden.public,
            "{context}: public"
        );
        assert_eq!(
            keypair.address().to_string(),
            golden.address,
            "{context}: address"
        );

        let public: PublicKey = golden.public.parse().expect("golden public key parses");
        let address: Address = golden.address.parse().expect("golden address parses");
        assert_eq!(
            public.address(),
            address,
            "{context}: address of public key"
        );

        assert!(
            golden.signatures.len() <= hashes.len(),
            "{context}: more signatures than hashes"
        );
        for (i, (text, digest)) in golden.signatures.iter().zip(&hashes).enumerate() {
            let context = format!("{context}, signature {i}");
            let golden_sig: Signature = text
                .parse()
                .unwrap_or_else(|e| panic!("{context}: golden signature rejected: {e}"));
            assert_eq!(&golden_sig.to_string(), text, "{context}: re-encoding");
            assert!(golden_sig.recovery_id() <= 1, "{context}: recovery id");
            assert_eq!(golden_sig.recover(digest), Ok(public), "{context}: recover");
            assert_eq!(
                public.verify(digest, &golden_sig),
                Ok(()),
                "{context}: verify"
            );
            assert_eq!(
                address.verify(digest, &golden_sig),
                Ok(()),
                "{context}: verify address"
            );

            // Our RFC 6979 signature: same key, different nonce, so a different r.
            let ours = keypair.sign(digest);
            assert_eq!(
                ours.recover(digest),
                Ok(public),
                "{context}: our signature recovers"
            );
            assert_eq!(
                public.verify(digest, &ours),
                Ok(()),
                "{context}: our signature verifies"
            );
            assert_ne!(
                ours.to_bytes()[..32],
                golden_sig.to_bytes()[..32],
                "{context}: Skycoin's nonce is random, RFC 6979 should not reproduce it"
            );
            signatures_checked += 1;
        }
    }
    signatures_checked
}

#[test]
fn input_hashes_file_has_ten_hashes() {
    assert_eq!(input_hashes().len(), 10);
}

#[test]
fn seed_0000() {
    assert_eq!(check_file(golden_path!("seed-0000.golden")), 100);
}

#[test]
fn seed_0001() {
    assert_eq!(check_file(golden_path!("seed-0001.golden")), 100);
}

#[test]
fn seed_0002() {
    assert_eq!(check_file(golden_path!("seed-0002.golden")), 100);
}

#[test]
fn seed_0003() {
    assert_eq!(check_file(golden_path!("seed-0003.golden")), 100);
}

#[test]
fn seed_0004() {
    assert_eq!(check_file(golden_path!("seed-0004.golden")), 100);
}

#[test]
fn seed_0005() {
    assert_eq!(check_file(golden_path!("seed-0005.golden")), 100);
}

#[test]
fn many_addresses() {
    assert_eq!(check_file(golden_path!("many-addresses.golden")), 0);
}

/// A golden signature with any other key, or over another hash, is rejected.
#[test]
fn golden_signature_rejects_other_key_and_hash() {
    let file: SeedFile = read_json(golden_path!("seed-0000.golden"));
    let hashes = input_hashes();
    let signature: Signature = file.keys[0].signatures[0].parse().expect("parses");
    let signer: PublicKey = file.keys[0].public.parse().expect("parses");
    let other: PublicKey = file.keys[1].public.parse().expect("parses");
    let other_address: Address = file.keys[1].address.parse().expect("parses");

    assert!(other.verify(&hashes[0], &signature).is_err());
    assert!(other_address.verify(&hashes[0], &signature).is_err());
    if let Ok(key) = signature.recover(&hashes[1]) {
        assert_ne!(key, signer);
    }
    assert!(signer.verify(&hashes[1], &signature).is_err());
}
