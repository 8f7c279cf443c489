//! The crate's error type.

use crate::{Address, PublicKey};

/// Everything that can go wrong when parsing, deriving or checking identities.
///
/// Variants carry the values involved (lengths, versions, checksums, keys) so that a
/// message is actionable without a debugger.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A binary value (key, signature, decoded address) had the wrong number of bytes.
    #[error("{what} must be {expected} bytes, got {got}")]
    WrongLength {
        /// What was being decoded, e.g. `"public key"`.
        what: &'static str,
        /// The required length in bytes.
        expected: usize,
        /// The length that was supplied.
        got: usize,
    },

    /// A hex string (key file, node id, signature) could not be decoded.
    #[error("{what} is not valid hex: {source}")]
    InvalidHex {
        /// What was being decoded, e.g. `"secret key"`.
        what: &'static str,
        /// The decoder's complaint.
        #[source]
        source: hex::FromHexError,
    },

    /// 32 bytes that are not a secp256k1 secret key: zero, or not below the curve order.
    #[error("secret key is zero or not below the secp256k1 curve order")]
    InvalidSecretKey,

    /// 33 bytes that are not a compressed secp256k1 point (bad prefix or not on the curve).
    #[error("public key is not a valid compressed secp256k1 point")]
    InvalidPublicKey,

    /// An address string contains characters outside the Bitcoin base58 alphabet.
    #[error("address is not valid base58: {source}")]
    InvalidBase58 {
        /// The decoder's complaint, with the offending character and its index.
        #[source]
        source: bs58::decode::Error,
    },

    /// An address string is longer than any base58-encoded 25-byte address can be.
    ///
    /// Checked before decoding, because base58 decoding is quadratic in the input length.
    #[error("address is {got} characters long, at most {max} are possible")]
    AddressTooLong {
        /// The longest possible address, in characters.
        max: usize,
        /// The length of the supplied string, in bytes.
        got: usize,
    },

    /// The 4-byte checksum at the end of an address does not match its body.
    #[error(
        "address checksum mismatch: computed {}, found {}",
        hex::encode(.computed),
        hex::encode(.found)
    )]
    BadChecksum {
        /// `SHA256(key || version)[0..4]`, computed from the decoded body.
        computed: [u8; 4],
        /// The checksum bytes carried by the address.
        found: [u8; 4],
    },

    /// The address has a valid checksum but a version byte this crate does not know.
    #[error("unknown address version {got}, expected {expected}")]
    UnknownAddressVersion {
        /// The only supported version, [`Address::VERSION`].
        expected: u8,
        /// The version byte found in the address.
        got: u8,
    },

    /// The last byte of a 65-byte signature is not a recovery id (0 to 3).
    #[error("signature recovery id must be 0 to 3, got {got}")]
    InvalidRecoveryId {
        /// The byte found at offset 64.
        got: u8,
    },

    /// The signature's `r` or `s` is zero or not below the curve order.
    #[error("signature r or s is zero or not below the secp256k1 curve order")]
    MalformedSignature,

    /// The signature's `s` is in the upper half of the curve order.
    ///
    /// Such a signature is the malleated twin of a low-s one; libsecp256k1 and Skycoin both
    /// refuse it, and this crate never produces one.
    #[error("signature s is in the upper half of the curve order (malleable high-s form)")]
    HighS,

    /// No public key can be recovered from the signature and digest: the signature is invalid.
    #[error("no public key can be recovered from the signature for this digest")]
    RecoveryFailed,

    /// The signature is valid, but for a different public key.
    #[error("signature was made by public key {recovered}, expected {expected}")]
    PublicKeyMismatch {
        /// The key the signature was checked against.
        expected: PublicKey,
        /// The key that actually made the signature.
        recovered: PublicKey,
    },

    /// The signature is valid, but made by a key with a different address.
    #[error("signature was made by address {recovered}, expected {expected}")]
    AddressMismatch {
        /// The address the signature was checked against.
        expected: Address,
        /// The address of the key that actually made the signature.
        recovered: Address,
    },

    /// Deterministic derivation was asked to start from an empty seed.
    #[error("seed is empty")]
    EmptySeed,
}
