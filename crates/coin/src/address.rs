//! Addresses in the chain's binary encoding.
//!
//! On the chain an address is 21 bytes: the version byte, then the 20-byte key hash
//! (Skycoin's generated encoders write `Address.Version` then `Address.Key`). This is a
//! different order from the 25-byte base58 form, `key || version || checksum`, which
//! [`skywire_identity::Address`] handles.
//!
//! Decoding refuses any version other than 0 with [`DecodeError::UnknownAddressVersion`].
//! Skycoin's decoder would accept it (it reads the byte unchecked), but
//! [`skywire_identity::Address`] holds only version 0, and version 0 is all Skycoin's own
//! address parsing (`AddressFromBytes`, base58) accepts, so only a hand-crafted raw
//! transaction could carry another version.

use sha2::{Digest as _, Sha256};
use skywire_identity::Address;

use crate::encoding::{Decode, DecodeError, Decoder, Encode, EncodeError, Encoder};

/// Length of an address in the chain's encoding: version (1) and key hash (20).
pub const ADDRESS_LEN: usize = 21;

/// The address with version `version` and key hash `key`.
///
/// # Errors
///
/// [`DecodeError::UnknownAddressVersion`] unless `version` is 0.
pub fn address_from_parts(version: u8, key: [u8; 20]) -> Result<Address, DecodeError> {
    let mut bytes = [0u8; Address::LEN];
    bytes[..20].copy_from_slice(&key);
    bytes[20] = version;
    let checksum = Sha256::digest(&bytes[..21]);
    bytes[21..].copy_from_slice(&checksum[..4]);
    // The checksum is right by construction, so only the version can be refused.
    Address::from_bytes(&bytes).map_err(|_| DecodeError::UnknownAddressVersion { got: version })
}

/// The null address: version 0, all-zero key hash (Skycoin's `Address{}`).
///
/// Nobody holds its key; Skycoin refuses user transactions that send to it ("Transaction
/// output is sent to the null address").
pub fn null_address() -> Address {
    // Version 0 is always accepted.
    address_from_parts(Address::VERSION, [0; 20]).unwrap_or_else(|_| unreachable!())
}

/// Whether `address` is the [`null_address`].
pub fn is_null(address: &Address) -> bool {
    address.version() == 0 && address.key().iter().all(|&b| b == 0)
}

impl Encode for Address {
    fn encode_to(&self, enc: &mut Encoder) -> Result<(), EncodeError> {
        enc.u8(self.version());
        enc.bytes(self.key());
        Ok(())
    }

    fn encoded_len(&self) -> usize {
        ADDRESS_LEN
    }
}

impl Decode for Address {
    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let version = dec.u8()?;
        let key = dec.array()?;
        address_from_parts(version, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mainnet_genesis_address_encoding() {
        let address: Address = "2jBbGxZRGoQG1mqhPBnXnLTxK6oxsTf8os6"
            .parse()
            .expect("address");
        let bytes = address.encode().expect("encodes");
        assert_eq!(
            hex::encode(&bytes),
            "00f8f9c644772dc5373d85e11094e438df707a42c9"
        );
        assert_eq!(Address::decode_exact(&bytes), Ok(address));
    }

    #[test]
    fn other_versions_are_refused() {
        let mut bytes = [0u8; ADDRESS_LEN];
        bytes[0] = 1;
        assert_eq!(
            Address::decode_exact(&bytes),
            Err(DecodeError::UnknownAddressVersion { got: 1 })
        );
    }

    #[test]
    fn null_address() {
        let null = super::null_address();
        assert!(is_null(&null));
        assert_eq!(null.encode().expect("encodes"), [0u8; ADDRESS_LEN]);
        let mut key = [0u8; 20];
        key[19] = 1;
        assert!(!is_null(&address_from_parts(0, key).expect("version 0")));
    }
}
