//! Skycoin addresses.

use std::fmt;
use std::str::FromStr;

use ripemd::{Digest as _, Ripemd160};

use crate::{Error, PublicKey, Signature, sha256};

/// The Skycoin address of a public key: a 20-byte key hash and a version byte.
///
/// `key = RIPEMD160(SHA256(SHA256(pubkey33)))`; the binary form is
/// `key(20) || version(1) || SHA256(key || version)[0..4]`, and the text form is that in
/// base58 (Bitcoin alphabet): at most 35 characters, usually 34 or 35, occasionally fewer
/// when the key hash starts with small bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    key: [u8; 20],
    version: u8,
}

impl Address {
    /// The only address version in use (`0x00`).
    pub const VERSION: u8 = 0;

    /// Length of the binary form (key, version, checksum), in bytes.
    pub const LEN: usize = 25;

    /// The longest text form: 25 bytes never take more than 35 base58 digits.
    pub const MAX_TEXT_LEN: usize = 35;

    /// The address of `public_key`.
    pub fn from_public_key(public_key: &PublicKey) -> Self {
        let inner = sha256(&[sha256(&[&public_key.to_bytes()]).as_slice()]);
        Self {
            key: Ripemd160::digest(inner).into(),
            version: Self::VERSION,
        }
    }

    /// The address of the node whose id (its 33-byte compressed public key,
    /// as carried on the wire and the bus) is `node_id`.
    ///
    /// # Errors
    ///
    /// Whatever [`PublicKey::from_bytes`] finds wrong with `node_id`.
    pub fn of_node_id(node_id: &[u8]) -> Result<Self, Error> {
        PublicKey::from_bytes(node_id).map(|key| Self::from_public_key(&key))
    }

    /// Parses the 25-byte binary form, checking the checksum and then the version.
    ///
    /// # Errors
    ///
    /// [`Error::WrongLength`], [`Error::BadChecksum`] or [`Error::UnknownAddressVersion`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let bytes: &[u8; Self::LEN] = bytes.try_into().map_err(|_| Error::WrongLength {
            what: "address",
            expected: Self::LEN,
            got: bytes.len(),
        })?;
        let (body, found) = bytes.split_at(21);
        let computed = checksum(body);
        if computed != found {
            return Err(Error::BadChecksum {
                computed,
                found: [found[0], found[1], found[2], found[3]],
            });
        }
        let (key, version) = body.split_at(20);
        if version[0] != Self::VERSION {
            return Err(Error::UnknownAddressVersion {
                expected: Self::VERSION,
                got: version[0],
            });
        }
        let mut address = Self {
            key: [0; 20],
            version: version[0],
        };
        address.key.copy_from_slice(key);
        Ok(address)
    }

    /// The 25-byte binary form: `key || version || checksum`.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut bytes = [0; Self::LEN];
        bytes[..20].copy_from_slice(&self.key);
        bytes[20] = self.version;
        let checksum = checksum(&bytes[..21]);
        bytes[21..].copy_from_slice(&checksum);
        bytes
    }

    /// The 20-byte key hash.
    pub fn key(&self) -> &[u8; 20] {
        &self.key
    }

    /// The version byte (always [`Address::VERSION`] for now).
    pub fn version(&self) -> u8 {
        self.version
    }

    /// Checks that `signature` over `digest` was made by a key with this address.
    ///
    /// # Errors
    ///
    /// [`Error::RecoveryFailed`] if the signature is invalid for `digest`,
    /// [`Error::AddressMismatch`] if the signer has another address.
    pub fn verify(&self, digest: &[u8; 32], signature: &Signature) -> Result<(), Error> {
        let recovered = signature.recover(digest)?.address();
        if recovered == *self {
            Ok(())
        } else {
            Err(Error::AddressMismatch {
                expected: *self,
                recovered,
            })
        }
    }
}

/// `SHA256(body)[0..4]`, a single SHA-256 (unlike Bitcoin's double hash).
fn checksum(body: &[u8]) -> [u8; 4] {
    let hash = sha256(&[body]);
    [hash[0], hash[1], hash[2], hash[3]]
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(self.to_bytes()).into_string())
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}

impl FromStr for Address {
    type Err = Error;

    /// Parses the base58 text form.
    ///
    /// Errors are checked in this order: [`Error::AddressTooLong`], [`Error::InvalidBase58`],
    /// [`Error::WrongLength`] (decoded length), [`Error::BadChecksum`],
    /// [`Error::UnknownAddressVersion`].
    fn from_str(s: &str) -> Result<Self, Error> {
        if s.len() > Self::MAX_TEXT_LEN {
            return Err(Error::AddressTooLong {
                max: Self::MAX_TEXT_LEN,
                got: s.len(),
            });
        }
        let bytes = bs58::decode(s)
            .into_vec()
            .map_err(|source| Error::InvalidBase58 { source })?;
        Self::from_bytes(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// First key of `seed-0000.golden`.
    const PUBLIC: &str = "03b79123b2a3100420b19cccbfc688aa39f510b8491b67bdd296a92a021a3d0d8e";
    const ADDRESS: &str = "cfb24jWcms9pZtvEx3UjUuLPdT6rbx6r9M";

    fn address() -> Address {
        ADDRESS.parse().expect("golden address parses")
    }

    #[test]
    fn from_public_key_matches_golden() {
        let public: PublicKey = PUBLIC.parse().expect("golden key parses");
        assert_eq!(Address::from_public_key(&public), address());
        assert_eq!(public.address().to_string(), ADDRESS);
        assert_eq!(address().version(), Address::VERSION);
        assert_eq!(format!("{:?}", address()), format!("Address({ADDRESS})"));
    }

    #[test]
    fn bytes_round_trip() {
        let bytes = address().to_bytes();
        assert_eq!(&bytes[..20], address().key());
        assert_eq!(Address::from_bytes(&bytes), Ok(address()));
    }

    #[test]
    fn bad_base58_is_rejected() {
        // '0', 'O', 'I' and 'l' are not in the Bitcoin alphabet.
        for bad in ['0', 'O', 'I', 'l', '+', 'é'] {
            let text = format!("{bad}{}", &ADDRESS[1..]);
            assert!(
                matches!(text.parse::<Address>(), Err(Error::InvalidBase58 { .. })),
                "{text}"
            );
        }
    }

    #[test]
    fn wrong_length_is_rejected() {
        assert!(matches!(
            ADDRESS[..30].parse::<Address>(),
            Err(Error::WrongLength {
                expected: 25,
                got: 22,
                ..
            })
        ));
        assert!(matches!(
            "".parse::<Address>(),
            Err(Error::WrongLength { got: 0, .. })
        ));
        // 26 bytes: one extra leading zero byte is one extra leading '1'.
        assert!(matches!(
            format!("1{ADDRESS}").parse::<Address>(),
            Err(Error::WrongLength { got: 26, .. })
        ));
        assert_eq!(
            "1".repeat(36).parse::<Address>(),
            Err(Error::AddressTooLong { max: 35, got: 36 })
        );
    }

    #[test]
    fn bad_checksum_is_rejected() {
        let mut bytes = address().to_bytes();
        bytes[24] ^= 1;
        let text = bs58::encode(bytes).into_string();
        let Err(Error::BadChecksum { computed, found }) = text.parse::<Address>() else {
            panic!("expected a checksum error");
        };
        assert_eq!(computed, address().to_bytes()[21..]);
        assert_eq!(found, bytes[21..]);
    }

    #[test]
    fn unknown_version_is_rejected() {
        let mut body = [0u8; 21];
        body[..20].copy_from_slice(address().key());
        body[20] = 7;
        let mut bytes = [0u8; 25];
        bytes[..21].copy_from_slice(&body);
        bytes[21..].copy_from_slice(&checksum(&body));
        let text = bs58::encode(bytes).into_string();
        assert_eq!(
            text.parse::<Address>(),
            Err(Error::UnknownAddressVersion {
                expected: 0,
                got: 7
            })
        );
    }
}
