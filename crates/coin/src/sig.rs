//! Signatures as they appear on the chain, checked exactly as Skycoin checks them.
//!
//! A [`Sig`] is the 65 raw bytes `r(32) || s(32) || recid(1)` (Skycoin's `cipher.Sig`),
//! kept as they were received: a transaction's hash covers its signatures, so they must be
//! re-encoded byte for byte, and a null (all-zero) signature stands for an unsigned input.
//!
//! # Which signatures are valid
//!
//! Skycoin's verifier (`secp256k1.VerifySignature` in `cipher/secp256k1-go`) refuses a
//! recovery id of 4 or more and an `s` whose top bit is set (`sig[32] & 0x80`), then recovers
//! the public key. It does **not** apply the usual low-S rule (`s <= n/2`): an `s` between
//! `n/2` and `2^255` is accepted. [`skywire_identity::Signature`] refuses every high `s`,
//! so [`Sig::normalize`] first applies Skycoin's two checks, then replaces a high `s` by
//! `n - s` and flips the recovery id's parity; the result recovers the same public key
//! (the signature's point `R` becomes `-R`), so it is the same signature to Skycoin.
//!
//! Skycoin's signer always produces a low `s` (`forceLowS` in `secp256k1-go2`), and a high
//! `s` below `2^255` is a window of about `2^127` values out of `2^256`, so such a signature
//! is only ever hand-made; accepting it keeps us from refusing a block Skycoin accepted.
//!
//! Not reproduced: Skycoin's pure-Go recovery reads `r` and `s` without range checks, where
//! libsecp256k1 refuses `r` or `s` that is zero or not below the curve order (our
//! [`SigError::Malformed`]). A signature with such values recovers to a key nobody chose, so
//! it can never match the address of an output being spent; the difference is only in
//! [`Transaction::verify`](crate::Transaction::verify)'s "some key is recoverable" check.

use std::fmt;
use std::str::FromStr;

use skywire_identity::{Address, Keypair, PublicKey, Signature};

use crate::encoding::{Decode, DecodeError, Decoder, Encode, EncodeError, Encoder};
use crate::hash::Hash;

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SigError {
    /// The recovery id (last byte) is 4 or more.
    #[error("signature recovery id must be 0 to 3, got {got}")]
    InvalidRecoveryId {
        /// The byte found.
        got: u8,
    },

    /// The top bit of `s` is set: Skycoin's malleability check.
    #[error("signature s has its top bit set")]
    HighBitS,

    /// `r` or `s` is zero or not below the curve order.
    #[error("signature r or s is zero or not below the curve order")]
    Malformed,

    /// No public key can be recovered for this digest.
    #[error("no public key can be recovered from the signature")]
    RecoveryFailed,

    /// The signature was made by another key.
    #[error("signature was made by public key {recovered}, expected {expected}")]
    PublicKeyMismatch {
        /// The key expected.
        expected: PublicKey,
        /// The key that made the signature.
        recovered: PublicKey,
    },

    /// The signature was made by a key with another address.
    #[error("signature was made by address {recovered}, expected {expected}")]
    AddressMismatch {
        /// The address expected.
        expected: Address,
        /// The address of the key that made the signature.
        recovered: Address,
    },
}

/// A signature as carried on the chain: 65 raw bytes, `r || s || recid`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sig(pub [u8; 65]);

impl Sig {
    /// Length in bytes.
    pub const LEN: usize = 65;

    /// The null signature (65 zero bytes): an input not signed yet.
    pub const NULL: Self = Self([0; 65]);

    /// Whether this is the null signature.
    pub fn is_null(&self) -> bool {
        *self == Self::NULL
    }

    /// `keypair`'s signature over `digest` (deterministic, RFC 6979, low `s`).
    pub fn sign(keypair: &Keypair, digest: &Hash) -> Self {
        Self::from(keypair.sign(&digest.0))
    }

    /// The equivalent low-`s` signature, if Skycoin accepts this one (see the
    /// [module docs](self)).
    ///
    /// # Errors
    ///
    /// [`SigError::InvalidRecoveryId`], [`SigError::HighBitS`] or [`SigError::Malformed`].
    pub fn normalize(&self) -> Result<Signature, SigError> {
        let recid = self.0[64];
        if recid >= 4 {
            return Err(SigError::InvalidRecoveryId { got: recid });
        }
        if self.0[32] & 0x80 != 0 {
            return Err(SigError::HighBitS);
        }
        let original = secp256k1::ecdsa::Signature::from_compact(&self.0[..64])
            .map_err(|_| SigError::Malformed)?;
        let mut low = original;
        low.normalize_s();
        let mut bytes = [0u8; 65];
        bytes[..64].copy_from_slice(&low.serialize_compact());
        // s -> n - s negates the point R: the other y parity, the same public key.
        bytes[64] = if low == original { recid } else { recid ^ 1 };
        Signature::from_bytes(&bytes).map_err(|_| SigError::Malformed)
    }

    /// The public key that made this signature over `digest`, if Skycoin accepts it.
    ///
    /// Any valid signature recovers to *some* key: this alone is Skycoin's
    /// `VerifySignatureRecoverPubKey`. Compare the key, or use [`Sig::verify_address`] or
    /// [`Sig::verify_public_key`].
    ///
    /// # Errors
    ///
    /// Those of [`Sig::normalize`], and [`SigError::RecoveryFailed`].
    pub fn recover(&self, digest: &Hash) -> Result<PublicKey, SigError> {
        self.normalize()?
            .recover(&digest.0)
            .map_err(|_| SigError::RecoveryFailed)
    }

    /// Checks that this signature over `digest` was made by a key with address `address`
    /// (Skycoin's `VerifyAddressSignedHash`: how an input's signature is checked against the
    /// output it spends).
    ///
    /// # Errors
    ///
    /// Those of [`Sig::recover`], and [`SigError::AddressMismatch`].
    pub fn verify_address(&self, address: &Address, digest: &Hash) -> Result<(), SigError> {
        check_address(self.recover(digest)?.address(), address)
    }

    /// Checks that this signature over `digest` was made by `key` (Skycoin's
    /// `VerifyPubKeySignedHash`: how a block's signature is checked).
    ///
    /// # Errors
    ///
    /// Those of [`Sig::recover`], and [`SigError::PublicKeyMismatch`].
    pub fn verify_public_key(&self, key: &PublicKey, digest: &Hash) -> Result<(), SigError> {
        let recovered = self.recover(digest)?;
        if recovered == *key {
            Ok(())
        } else {
            Err(SigError::PublicKeyMismatch {
                expected: *key,
                recovered,
            })
        }
    }
}

/// [`SigError::AddressMismatch`] unless `recovered`, the address of the key that made a
/// signature, is `expected`.
pub(crate) fn check_address(recovered: Address, expected: &Address) -> Result<(), SigError> {
    if recovered == *expected {
        Ok(())
    } else {
        Err(SigError::AddressMismatch {
            expected: *expected,
            recovered,
        })
    }
}

impl Default for Sig {
    fn default() -> Self {
        Self::NULL
    }
}

impl From<Signature> for Sig {
    fn from(signature: Signature) -> Self {
        Self(signature.to_bytes())
    }
}

impl fmt::Display for Sig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Sig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sig({self})")
    }
}

impl FromStr for Sig {
    type Err = hex::FromHexError;

    /// Parses 130 hex characters (either case). Any 65 bytes are a `Sig`; validity is
    /// checked when it is verified.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0; 65];
        hex::decode_to_slice(s, &mut out)?;
        Ok(Self(out))
    }
}

impl Encode for Sig {
    fn encode_to(&self, enc: &mut Encoder) -> Result<(), EncodeError> {
        enc.bytes(&self.0);
        Ok(())
    }

    fn encoded_len(&self) -> usize {
        Self::LEN
    }
}

impl Decode for Sig {
    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        dec.array().map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::sha256;

    #[test]
    fn sign_recover_verify() {
        let keypair = Keypair::generate();
        let digest = sha256(b"message");
        let sig = Sig::sign(&keypair, &digest);
        assert!(!sig.is_null());
        assert_eq!(sig.recover(&digest), Ok(keypair.public_key()));
        assert_eq!(sig.verify_address(&keypair.address(), &digest), Ok(()));
        assert_eq!(
            sig.verify_public_key(&keypair.public_key(), &digest),
            Ok(())
        );
        let other = Keypair::generate();
        assert_eq!(
            sig.verify_address(&other.address(), &digest),
            Err(SigError::AddressMismatch {
                expected: other.address(),
                recovered: keypair.address()
            })
        );
        assert_eq!(
            sig.verify_public_key(&other.public_key(), &digest),
            Err(SigError::PublicKeyMismatch {
                expected: other.public_key(),
                recovered: keypair.public_key()
            })
        );
    }

    #[test]
    fn structural_checks() {
        let keypair = Keypair::generate();
        let digest = sha256(b"message");
        let sig = Sig::sign(&keypair, &digest);
        for recid in [4u8, 5, 27, 255] {
            let mut bad = sig;
            bad.0[64] = recid;
            assert_eq!(
                bad.recover(&digest),
                Err(SigError::InvalidRecoveryId { got: recid })
            );
        }
        let mut bad = sig;
        bad.0[32] |= 0x80;
        assert_eq!(bad.recover(&digest), Err(SigError::HighBitS));
        let mut zero_r = sig;
        zero_r.0[..32].fill(0);
        assert_eq!(zero_r.recover(&digest), Err(SigError::Malformed));
        assert_eq!(Sig::NULL.recover(&digest), Err(SigError::Malformed));
    }

    #[test]
    fn display_parse_round_trip() {
        let sig = Sig::sign(&Keypair::generate(), &sha256(b"x"));
        let text = sig.to_string();
        assert_eq!(text.len(), 130);
        assert_eq!(text.parse::<Sig>(), Ok(sig));
        assert_eq!(format!("{sig:?}"), format!("Sig({text})"));
        assert!("00".parse::<Sig>().is_err());
    }
}
