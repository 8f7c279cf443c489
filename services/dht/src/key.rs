//! The DHT's key space: 20-byte keys (a node's key is the hash in its
//! Skycoin address) and the XOR distance between them.

use std::fmt;

use sha2::{Digest, Sha256};
use skywire_identity::{Address, PublicKey};

/// Bytes in a key: the RIPEMD-160 hash of a Skycoin address.
pub const KEY_LEN: usize = 20;

/// Bits in a key, and so the number of k-buckets in a routing table.
pub const KEY_BITS: usize = KEY_LEN * 8;

/// Domain separation for service keys, so a service's key can never be
/// chosen to equal a node's.
const SERVICE_KEY_DOMAIN: &[u8] = b"skywire/dht/service/v1\0";

/// A point of the key space.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key([u8; KEY_LEN]);

impl Key {
    /// The key of these bytes.
    pub const fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The key of the node with this address: its 20-byte hash.
    pub fn of_address(address: &Address) -> Self {
        Self(*address.key())
    }

    /// The key of the node with this public key.
    pub fn of_node(node_id: &PublicKey) -> Self {
        Self::of_address(&node_id.address())
    }

    /// The key under which providers of `service` (`name/major`) are stored:
    /// SHA-256 of a domain tag and the name, cut to 20 bytes.
    pub fn of_service(service: &str) -> Self {
        let hash = Sha256::new()
            .chain_update(SERVICE_KEY_DOMAIN)
            .chain_update(service.as_bytes())
            .finalize();
        let mut key = [0; KEY_LEN];
        key.copy_from_slice(&hash[..KEY_LEN]);
        Self(key)
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The XOR distance to `other`.
    pub fn distance(&self, other: &Key) -> Distance {
        let mut d = [0; KEY_LEN];
        for (i, byte) in d.iter_mut().enumerate() {
            *byte = self.0[i] ^ other.0[i];
        }
        Distance(d)
    }

    /// A random key whose distance to `self` falls in bucket `index` (its
    /// first `index` bits equal ours, bit `index` differs), for refreshing
    /// that bucket.
    ///
    /// # Panics
    ///
    /// If `index >= KEY_BITS`.
    pub fn random_in_bucket(&self, index: usize, rng: &mut impl rand::Rng) -> Key {
        assert!(index < KEY_BITS, "bucket index {index} out of range");
        let mut d = [0u8; KEY_LEN];
        rng.fill(&mut d[..]);
        let byte = index / 8;
        let bit = 7 - (index % 8);
        for b in &mut d[..byte] {
            *b = 0;
        }
        // Clear the bits above `bit` in its byte and set `bit` itself.
        let keep = (1u8 << bit) - 1;
        d[byte] = (d[byte] & keep) | (1 << bit);
        let mut key = self.0;
        for (k, x) in key.iter_mut().zip(d) {
            *k ^= x;
        }
        Key(key)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({self})")
    }
}

/// The XOR distance between two keys; compares as a 160-bit big-endian
/// number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Distance([u8; KEY_LEN]);

impl Distance {
    /// The bucket a key at this distance belongs in: the number of leading
    /// zero bits, 0 (the farthest half of the space) to 159 (the nearest
    /// two keys); `None` for distance zero (the key itself).
    pub fn bucket(&self) -> Option<usize> {
        let mut zeros = 0;
        for byte in self.0 {
            if byte == 0 {
                zeros += 8;
            } else {
                return Some(zeros + byte.leading_zeros() as usize);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_is_xor_and_buckets_count_leading_zeros() {
        let a = Key::from_bytes([0; KEY_LEN]);
        let mut far = [0; KEY_LEN];
        far[0] = 0x80;
        let mut near = [0; KEY_LEN];
        near[KEY_LEN - 1] = 1;
        assert_eq!(a.distance(&a).bucket(), None);
        assert_eq!(a.distance(&Key::from_bytes(far)).bucket(), Some(0));
        assert_eq!(
            a.distance(&Key::from_bytes(near)).bucket(),
            Some(KEY_BITS - 1)
        );
        assert!(a.distance(&Key::from_bytes(near)) < a.distance(&Key::from_bytes(far)));
        assert_eq!(
            Key::from_bytes(far).distance(&Key::from_bytes(near)),
            Key::from_bytes(near).distance(&Key::from_bytes(far))
        );
    }

    #[test]
    fn random_keys_land_in_the_asked_bucket() {
        let mut rng = rand::rng();
        for _ in 0..20 {
            let mut bytes = [0; KEY_LEN];
            rand::Rng::fill(&mut rng, &mut bytes[..]);
            let me = Key::from_bytes(bytes);
            for index in [0, 1, 7, 8, 9, 63, 100, KEY_BITS - 1] {
                let k = me.random_in_bucket(index, &mut rng);
                assert_eq!(me.distance(&k).bucket(), Some(index));
            }
        }
    }

    #[test]
    fn service_keys_are_stable_and_distinct() {
        assert_eq!(Key::of_service("chain/1"), Key::of_service("chain/1"));
        assert_ne!(Key::of_service("chain/1"), Key::of_service("chain/2"));
    }
}
