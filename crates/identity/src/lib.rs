//! Skywire node identities (SWP/1 section 1).
//!
//! A node is identified by a secp256k1 key pair:
//!
//! - [`Keypair`] holds the secret key (zeroized on drop, never printed) and signs.
//! - [`PublicKey`] (alias [`NodeId`]) is the 33-byte compressed public key, the node id;
//!   it displays and parses as hex.
//! - [`Address`] is the Skycoin address of a public key, displayed in base58.
//! - [`Signature`] is Skycoin's 65-byte recoverable signature `r || s || recid` over a 32-byte
//!   digest; [`PublicKey::verify`], [`Address::verify`] and [`Signature::recover`] check it.
//! - [`derive_keypairs`] and [`derive_keypair`] derive keys from a seed exactly like
//!   Skycoin's wallet (`GenerateDeterministicKeyPairs`), so a Skycoin seed gives the same
//!   addresses.
//!
//! ```
//! use skywire_identity::{Address, Keypair, derive_keypairs};
//!
//! let (_next_seed, keys) = derive_keypairs(b"my wallet seed", 2)?;
//! let digest = [7u8; 32]; // normally SHA256(message)
//! let signature = keys[0].sign(&digest);
//! keys[0].public_key().verify(&digest, &signature)?;
//!
//! let address: Address = keys[0].address().to_string().parse()?;
//! address.verify(&digest, &signature)?;
//! assert_eq!(signature.recover(&digest)?, keys[0].public_key());
//!
//! let restored = Keypair::from_secret_hex(&keys[1].secret_hex())?;
//! assert_eq!(restored.public_key(), keys[1].public_key());
//! # Ok::<(), skywire_identity::Error>(())
//! ```
//!
//! All fallible operations return the single [`Error`] type.

mod address;
mod derive;
mod error;
mod keys;
mod signature;

pub use address::Address;
pub use derive::{derive_keypair, derive_keypairs};
pub use error::Error;
pub use keys::{Keypair, NodeId, PublicKey};
pub use signature::Signature;

use sha2::{Digest as _, Sha256};

/// SHA-256 of the concatenation of `parts`.
fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}
