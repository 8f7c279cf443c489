//! Deterministic key derivation, compatible with Skycoin wallets.
//!
//! This is Skycoin's `GenerateDeterministicKeyPairs` (from `cipher/secp256k1-go`), so a
//! Skycoin wallet seed yields the same keys and addresses here:
//!
//! ```text
//! step(s32):              loop { s32 = SHA256(s32); if s32 is a valid secret key: return it }
//! secp256k1_hash(seed):   h = SHA256(seed)
//!                         a = step(h)                      (a secret key)
//!                         B = pub(step(SHA256(h)))         (a public key)
//!                         return SHA256(h || compressed(a·B))
//! iterate(seed):          next = secp256k1_hash(seed)
//!                         key  = step(SHA256(seed || next))
//!                         return (next, key)
//! ```
//!
//! Generating `n` keys iterates `n` times, feeding each `next` back in as the seed.

use zeroize::Zeroizing;

use crate::{Error, Keypair, sha256};

/// One step of Skycoin's `DeterministicKeyPairIterator`: derives a key pair from `seed` and
/// returns it with the seed for the next step.
///
/// `seed` is the raw bytes of the wallet seed (for a text seed, its UTF-8 bytes) on the first
/// call, then the 32-byte seed returned by the previous call.
///
/// # Errors
///
/// [`Error::EmptySeed`] if `seed` is empty.
pub fn derive_keypair(seed: &[u8]) -> Result<(Zeroizing<[u8; 32]>, Keypair), Error> {
    if seed.is_empty() {
        return Err(Error::EmptySeed);
    }
    let next = secp256k1_hash(seed);
    let key_seed = Zeroizing::new(sha256(&[seed, next.as_slice()]));
    Ok((next, step(&key_seed)))
}

/// Skycoin's `GenerateDeterministicKeyPairsSeed`: derives the first `count` key pairs of the
/// wallet with this seed.
///
/// Returns the seed that continues the sequence (pass it to [`derive_keypair`] or back to
/// this function for the following keys) and the key pairs in order. With `count == 0` the
/// returned seed is `seed` itself.
///
/// # Errors
///
/// [`Error::EmptySeed`] if `seed` is empty.
pub fn derive_keypairs(
    seed: &[u8],
    count: usize,
) -> Result<(Zeroizing<Vec<u8>>, Vec<Keypair>), Error> {
    if seed.is_empty() {
        return Err(Error::EmptySeed);
    }
    let mut seed = Zeroizing::new(seed.to_vec());
    let mut keypairs = Vec::new();
    for _ in 0..count {
        let (next, keypair) = derive_keypair(&seed)?;
        seed = Zeroizing::new(next.to_vec());
        keypairs.push(keypair);
    }
    Ok((seed, keypairs))
}

/// Skycoin's `deterministicKeyPairIteratorStep`: re-hash until the hash is a valid secret key.
///
/// A SHA-256 output is invalid with probability about 2⁻¹²⁸, so this loops once in practice.
fn step(seed: &[u8; 32]) -> Keypair {
    let mut candidate = Zeroizing::new(*seed);
    loop {
        *candidate = sha256(&[candidate.as_slice()]);
        if let Ok(keypair) = Keypair::from_secret_bytes(&candidate) {
            return keypair;
        }
    }
}

/// Skycoin's `Secp256k1Hash`: SHA-256 salted with an ECDH over keys derived from the seed.
fn secp256k1_hash(seed: &[u8]) -> Zeroizing<[u8; 32]> {
    let hash = Zeroizing::new(sha256(&[seed]));
    let secret = step(&hash);
    let public = step(&Zeroizing::new(sha256(&[hash.as_slice()]))).public_key();
    let shared = secret.shared_point(&public);
    Zeroizing::new(sha256(&[hash.as_slice(), shared.as_slice()]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_seed_is_rejected() {
        assert!(matches!(derive_keypair(b""), Err(Error::EmptySeed)));
        assert!(matches!(derive_keypairs(b"", 1), Err(Error::EmptySeed)));
        assert!(matches!(derive_keypairs(b"", 0), Err(Error::EmptySeed)));
    }

    #[test]
    fn zero_count_returns_the_seed() {
        let (next, keys) = derive_keypairs(b"seed", 0).expect("non-empty seed");
        assert_eq!(next.as_slice(), b"seed");
        assert!(keys.is_empty());
    }

    #[test]
    fn batches_continue_the_sequence() {
        let (next, all) = derive_keypairs(b"continuation", 3).expect("derive 3");
        let (mid, first) = derive_keypairs(b"continuation", 1).expect("derive 1");
        let (end, rest) = derive_keypairs(&mid, 2).expect("derive 2 more");
        assert_eq!(*next, *end);
        let public = |keys: &[Keypair]| keys.iter().map(Keypair::public_key).collect::<Vec<_>>();
        assert_eq!(public(&all[..1]), public(&first));
        assert_eq!(public(&all[1..]), public(&rest));

        let (step_next, step_key) = derive_keypair(b"continuation").expect("one step");
        assert_eq!(step_next.as_slice(), mid.as_slice());
        assert_eq!(step_key.public_key(), all[0].public_key());
    }
}
