//! SHA-256 hashes and the hash helpers of Skycoin's `cipher` package.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

use crate::encoding::{Decode, DecodeError, Decoder, Encode, EncodeError, Encoder};

/// A SHA-256 hash (Skycoin's `cipher.SHA256`): transaction ids, output ids (uxids), block
/// hashes, inner hashes.
///
/// Encoded as its 32 raw bytes; displays and parses as 64 hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// Length in bytes.
    pub const LEN: usize = 32;

    /// The all-zero hash (Skycoin's "null" hash).
    pub const ZERO: Self = Self([0; 32]);

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether all 32 bytes are zero.
    pub fn is_zero(&self) -> bool {
        *self == Self::ZERO
    }

    /// Byte-wise XOR (Skycoin's `SHA256.Xor`).
    #[must_use]
    pub fn xor(&self, other: &Self) -> Self {
        let mut out = self.0;
        for (a, b) in out.iter_mut().zip(other.0) {
            *a ^= b;
        }
        Self(out)
    }
}

impl From<[u8; 32]> for Hash {
    fn from(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({self})")
    }
}

impl FromStr for Hash {
    type Err = hex::FromHexError;

    /// Parses 64 hex characters (either case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0; 32];
        hex::decode_to_slice(s, &mut out)?;
        Ok(Self(out))
    }
}

impl Encode for Hash {
    fn encode_to(&self, enc: &mut Encoder) -> Result<(), EncodeError> {
        enc.bytes(&self.0);
        Ok(())
    }

    fn encoded_len(&self) -> usize {
        Self::LEN
    }
}

impl Decode for Hash {
    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        dec.array().map(Self)
    }
}

/// SHA-256 of `data` (Skycoin's `SumSHA256`).
pub fn sha256(data: &[u8]) -> Hash {
    Hash(Sha256::digest(data).into())
}

/// SHA-256 of the concatenation of `parts`.
pub(crate) fn sha256_parts(parts: &[&[u8]]) -> Hash {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    Hash(hasher.finalize().into())
}

/// `SHA256(a || b)` (Skycoin's `AddSHA256`): what an input's signature signs, and each step
/// of [`merkle`].
pub fn add_sha256(a: &Hash, b: &Hash) -> Hash {
    sha256_parts(&[&a.0, &b.0])
}

/// The Merkle root of `hashes` (Skycoin's `cipher.Merkle`), a block's body hash.
///
/// The list is padded with zero hashes up to the next power of two, then pairs are
/// combined with [`add_sha256`] until one hash is left. One hash is its own root; an empty
/// list gives the zero hash.
pub fn merkle(hashes: &[Hash]) -> Hash {
    let mut level: Vec<Hash> = hashes.to_vec();
    level.resize(hashes.len().max(1).next_power_of_two(), Hash::ZERO);
    while level.len() > 1 {
        level = level
            .chunks_exact(2)
            .map(|pair| add_sha256(&pair[0], &pair[1]))
            .collect();
    }
    level[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Hash {
        s.parse().expect("hex")
    }

    #[test]
    fn sha256_known_value() {
        // src/cipher/hash_test.go: SumSHA256("skycoin").
        assert_eq!(
            sha256(b"skycoin"),
            h("5a42c0643bdb465d90bf673b99c14f5fa02db71513249d904573d2b8b63d353d")
        );
    }

    #[test]
    fn display_parse_round_trip() {
        let hash = sha256(b"x");
        assert_eq!(hash.to_string().parse::<Hash>(), Ok(hash));
        assert_eq!(hash.to_string().to_uppercase().parse::<Hash>(), Ok(hash));
        assert_eq!(format!("{hash:?}"), format!("Hash({hash})"));
        assert!("abcd".parse::<Hash>().is_err());
        assert!("zz".repeat(32).parse::<Hash>().is_err());
    }

    #[test]
    fn merkle_structure() {
        let a = sha256(b"a");
        let b = sha256(b"b");
        let c = sha256(b"c");
        let z = Hash::ZERO;
        assert_eq!(merkle(&[]), Hash::ZERO);
        assert_eq!(merkle(&[a]), a);
        assert_eq!(merkle(&[a, b]), add_sha256(&a, &b));
        // Three leaves are padded with one zero hash.
        assert_eq!(
            merkle(&[a, b, c]),
            add_sha256(&add_sha256(&a, &b), &add_sha256(&c, &z))
        );
        // Five leaves are padded to eight.
        let ab = add_sha256(&a, &b);
        let cz = add_sha256(&c, &z);
        let zz = add_sha256(&z, &z);
        assert_eq!(
            merkle(&[a, b, c, z, a]),
            add_sha256(&add_sha256(&ab, &cz), &add_sha256(&add_sha256(&a, &z), &zz))
        );
    }

    #[test]
    fn xor_is_its_own_inverse() {
        let a = sha256(b"a");
        let b = sha256(b"b");
        assert_eq!(a.xor(&b).xor(&b), a);
        assert_eq!(a.xor(&a), Hash::ZERO);
        assert!(Hash::ZERO.is_zero());
        assert!(!a.is_zero());
    }
}
