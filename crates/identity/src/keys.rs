//! Key pairs and public keys (node ids).

use std::fmt;
use std::str::FromStr;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::{Address, Error, Signature, sha256};

/// A node's public key: a secp256k1 point, always handled in its 33-byte compressed form.
///
/// Displays and parses as 66 lowercase hex characters. Equality, ordering and hashing are
/// those of the compressed bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(
    /// Invariant: the compressed encoding of a valid curve point.
    [u8; 33],
);

/// A node id is the node's compressed public key (SWP/1 section 1).
pub type NodeId = PublicKey;

impl PublicKey {
    /// Length of the compressed encoding, in bytes.
    pub const LEN: usize = 33;

    /// Parses a 33-byte compressed public key.
    ///
    /// # Errors
    ///
    /// [`Error::WrongLength`] unless `bytes` is 33 bytes long (uncompressed keys are refused),
    /// [`Error::InvalidPublicKey`] if it is not a point on the curve.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let array: [u8; Self::LEN] = bytes.try_into().map_err(|_| Error::WrongLength {
            what: "public key",
            expected: Self::LEN,
            got: bytes.len(),
        })?;
        secp256k1::PublicKey::from_byte_array_compressed(array)
            .map(Self::from_secp)
            .map_err(|_| Error::InvalidPublicKey)
    }

    /// The 33-byte compressed encoding.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        self.0
    }

    /// The Skycoin address of this key.
    pub fn address(&self) -> Address {
        Address::from_public_key(self)
    }

    /// Checks that `signature` is this key's signature over `digest`.
    ///
    /// Like Skycoin's `VerifySignature`, this recovers the signer's key and compares it, so the
    /// recovery id must be right as well as `r` and `s`.
    ///
    /// # Errors
    ///
    /// [`Error::RecoveryFailed`] if the signature is invalid for `digest`,
    /// [`Error::PublicKeyMismatch`] if it was made by another key.
    pub fn verify(&self, digest: &[u8; 32], signature: &Signature) -> Result<(), Error> {
        let recovered = signature.recover(digest)?;
        if recovered == *self {
            Ok(())
        } else {
            Err(Error::PublicKeyMismatch {
                expected: *self,
                recovered,
            })
        }
    }

    pub(crate) fn from_secp(key: secp256k1::PublicKey) -> Self {
        Self(key.serialize())
    }

    /// The libsecp256k1 point, for the few operations that need more than the bytes.
    fn to_secp(self) -> secp256k1::PublicKey {
        secp256k1::PublicKey::from_byte_array_compressed(self.0)
            .expect("PublicKey invariant: the bytes were validated on construction")
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.to_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = Error;

    /// Parses 66 hex characters (either case).
    fn from_str(s: &str) -> Result<Self, Error> {
        let bytes = hex::decode(s).map_err(|source| Error::InvalidHex {
            what: "public key",
            source,
        })?;
        Self::from_bytes(&bytes)
    }
}

/// A node's secp256k1 key pair: the secret key and its (cached) public key.
///
/// The secret bytes are zeroized when the value is dropped, and [`Debug`](fmt::Debug) shows only
/// the public key. Cloning copies the secret; each copy is zeroized on its own drop.
#[derive(Clone)]
pub struct Keypair {
    /// Invariant: a valid secp256k1 secret key (non-zero, below the curve order).
    secret: [u8; 32],
    public: PublicKey,
}

impl Keypair {
    /// Length of a secret key, in bytes.
    pub const SECRET_LEN: usize = 32;

    /// Generates a random key pair from the thread-local CSPRNG (seeded by the OS).
    pub fn generate() -> Self {
        let mut secret = secp256k1::SecretKey::new(&mut secp256k1::rand::rng());
        let keypair = Self::from_secp(&secret);
        secret.non_secure_erase();
        keypair
    }

    /// Builds a key pair from a 32-byte big-endian secret scalar.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSecretKey`] if the scalar is zero or not below the curve order.
    pub fn from_secret_bytes(secret: &[u8; Self::SECRET_LEN]) -> Result<Self, Error> {
        let mut secret = secp256k1::SecretKey::from_secret_bytes(*secret)
            .map_err(|_| Error::InvalidSecretKey)?;
        let keypair = Self::from_secp(&secret);
        secret.non_secure_erase();
        Ok(keypair)
    }

    /// Parses a secret key written as 64 hex characters, as stored in a key file.
    ///
    /// Leading and trailing ASCII whitespace (such as a final newline) is ignored.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidHex`], [`Error::WrongLength`] unless the hex encodes 32 bytes, or
    /// [`Error::InvalidSecretKey`].
    pub fn from_secret_hex(hex_secret: &str) -> Result<Self, Error> {
        let bytes = Zeroizing::new(hex::decode(hex_secret.trim_ascii()).map_err(|source| {
            Error::InvalidHex {
                what: "secret key",
                source,
            }
        })?);
        let secret: Zeroizing<[u8; Self::SECRET_LEN]> = Zeroizing::new(
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| Error::WrongLength {
                    what: "secret key",
                    expected: Self::SECRET_LEN,
                    got: bytes.len(),
                })?,
        );
        Self::from_secret_bytes(&secret)
    }

    /// The secret key's 32 bytes, in a buffer that is zeroized when dropped.
    pub fn secret_bytes(&self) -> Zeroizing<[u8; Self::SECRET_LEN]> {
        Zeroizing::new(self.secret)
    }

    /// The secret key as 64 lowercase hex characters, for key files; zeroized when dropped.
    pub fn secret_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.secret))
    }

    /// The public key, which is also the node id.
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// The Skycoin address of the public key.
    pub fn address(&self) -> Address {
        self.public.address()
    }

    /// Signs a 32-byte digest (normally a SHA-256 hash) in Skycoin's 65-byte recoverable form.
    ///
    /// The nonce is deterministic (RFC 6979), so signing the same digest twice gives the same
    /// signature, and `s` is always low. Skycoin itself signs with a random nonce, so its
    /// signatures differ from these, but each side verifies the other's.
    pub fn sign(&self, digest: &[u8; 32]) -> Signature {
        let mut secret = self.secp_secret();
        let signature = secp256k1::ecdsa::RecoverableSignature::sign_ecdsa_recoverable(
            secp256k1::Message::from_digest(*digest),
            &secret,
        );
        secret.non_secure_erase();
        Signature::from_secp(signature)
    }

    /// Elliptic-curve Diffie–Hellman with a peer's public key: `SHA256(compressed(secret · peer))`.
    ///
    /// This is the `ECDH` of BOLT 8 (and libsecp256k1's default), as used by the SWP/1 handshake.
    pub fn ecdh(&self, peer: &PublicKey) -> Zeroizing<[u8; 32]> {
        let point = self.shared_point(peer);
        Zeroizing::new(sha256(&[point.as_slice()]))
    }

    /// `compressed(secret · peer)`: the un-hashed shared point, as Skycoin's `ECDH` returns it.
    pub(crate) fn shared_point(&self, peer: &PublicKey) -> Zeroizing<[u8; 33]> {
        let mut secret = self.secp_secret();
        let xy = Zeroizing::new(secp256k1::ecdh::shared_secret_point(
            &peer.to_secp(),
            &secret,
        ));
        secret.non_secure_erase();
        let mut compressed = Zeroizing::new([0u8; 33]);
        compressed[0] = 0x02 | (xy[63] & 1);
        compressed[1..].copy_from_slice(&xy[..32]);
        compressed
    }

    fn from_secp(secret: &secp256k1::SecretKey) -> Self {
        Self {
            secret: secret.to_secret_bytes(),
            public: PublicKey::from_secp(secret.public_key()),
        }
    }

    /// A short-lived libsecp256k1 copy of the secret; callers erase it after use.
    fn secp_secret(&self) -> secp256k1::SecretKey {
        secp256k1::SecretKey::from_secret_bytes(self.secret)
            .expect("Keypair invariant: the secret was validated on construction")
    }
}

impl Drop for Keypair {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

impl ZeroizeOnDrop for Keypair {}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keypair")
            .field("public_key", &self.public)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BOLT 8 appendix A, initiator: `ls.priv`, and `re.pub` from act two.
    const LS_PRIV: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const LS_PUB: &str = "034f355bdcb7cc0af728ef3cceb9615d90684bb5b2ca5f859ab0f0b704075871aa";
    const RE_PUB: &str = "02466d7fcae563e5cb09a0d1870bb580344804617879a14949cf22285f1bae3f27";
    /// The act-three `ss = ECDH(s.priv, re.pub)`.
    const ACT3_SS: &str = "b36b6d195982c5be874d6d542dc268234379e1ae4ff1709402135b7de5cf0766";

    fn bolt8_keypair() -> Keypair {
        Keypair::from_secret_hex(LS_PRIV).expect("valid secret")
    }

    #[test]
    fn public_key_of_known_secret() {
        assert_eq!(bolt8_keypair().public_key().to_string(), LS_PUB);
    }

    #[test]
    fn ecdh_matches_bolt8_vector() {
        let peer: PublicKey = RE_PUB.parse().expect("valid key");
        assert_eq!(hex::encode(*bolt8_keypair().ecdh(&peer)), ACT3_SS);
    }

    #[test]
    fn ecdh_is_symmetric() {
        let (a, b) = (Keypair::generate(), Keypair::generate());
        assert_eq!(*a.ecdh(&b.public_key()), *b.ecdh(&a.public_key()));
    }

    #[test]
    fn debug_does_not_leak_the_secret() {
        let keypair = bolt8_keypair();
        let debug = format!("{keypair:?}");
        assert!(debug.contains(LS_PUB), "{debug}");
        assert!(!debug.contains("1111111111"), "{debug}");
        assert!(!debug.contains("17, 17"), "{debug}");
    }

    #[test]
    fn secret_hex_round_trip_and_whitespace() {
        let keypair = Keypair::generate();
        let text = format!("{}\n", keypair.secret_hex().as_str());
        let parsed = Keypair::from_secret_hex(&text).expect("round trip");
        assert_eq!(*parsed.secret_bytes(), *keypair.secret_bytes());
        assert_eq!(parsed.public_key(), keypair.public_key());
    }

    #[test]
    fn invalid_secrets_are_rejected() {
        assert_eq!(
            Keypair::from_secret_bytes(&[0; 32]).map(|_| ()),
            Err(Error::InvalidSecretKey)
        );
        // The curve order n itself is out of range.
        let order = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141";
        assert_eq!(
            Keypair::from_secret_hex(order).map(|_| ()),
            Err(Error::InvalidSecretKey)
        );
        assert!(matches!(
            Keypair::from_secret_hex("11"),
            Err(Error::WrongLength {
                expected: 32,
                got: 1,
                ..
            })
        ));
        assert!(matches!(
            Keypair::from_secret_hex("zz"),
            Err(Error::InvalidHex { .. })
        ));
    }

    #[test]
    fn public_key_parsing_errors() {
        assert!(matches!(
            PublicKey::from_bytes(&[2; 32]),
            Err(Error::WrongLength {
                expected: 33,
                got: 32,
                ..
            })
        ));
        // Uncompressed keys are not node ids.
        let uncompressed = bolt8_keypair()
            .public_key()
            .to_secp()
            .serialize_uncompressed();
        assert!(matches!(
            PublicKey::from_bytes(&uncompressed),
            Err(Error::WrongLength { got: 65, .. })
        ));
        let mut bad_prefix = bolt8_keypair().public_key().to_bytes();
        bad_prefix[0] = 0x04;
        assert_eq!(
            PublicKey::from_bytes(&bad_prefix),
            Err(Error::InvalidPublicKey)
        );
        assert!(matches!(
            "03xx".parse::<PublicKey>(),
            Err(Error::InvalidHex { .. })
        ));
    }

    #[test]
    fn public_key_display_parse_round_trip() {
        let key = Keypair::generate().public_key();
        assert_eq!(key.to_string().parse::<PublicKey>(), Ok(key));
        assert_eq!(key.to_string().to_uppercase().parse::<PublicKey>(), Ok(key));
        assert_eq!(format!("{key:?}"), format!("PublicKey({key})"));
    }
}
