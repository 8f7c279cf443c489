//! Skycoin's 65-byte recoverable signatures.

use std::fmt;
use std::str::FromStr;

use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};

use crate::{Error, PublicKey};

/// A recoverable ECDSA signature in Skycoin's layout: `r(32) || s(32) || recid(1)`.
///
/// Every value of this type is well formed: `r` and `s` are non-zero and below the curve
/// order, `s` is in the lower half (not malleable), and the recovery id is 0 to 3. It
/// displays and parses as 130 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(RecoverableSignature);

impl Signature {
    /// Length of the encoding, in bytes.
    pub const LEN: usize = 65;

    /// Parses `r(32) || s(32) || recid(1)`.
    ///
    /// # Errors
    ///
    /// [`Error::WrongLength`] unless `bytes` is 65 bytes long, [`Error::InvalidRecoveryId`]
    /// if the last byte is above 3, [`Error::MalformedSignature`] if `r` or `s` is zero or not
    /// below the curve order, [`Error::HighS`] if `s` is in the upper half of the order.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let bytes: &[u8; Self::LEN] = bytes.try_into().map_err(|_| Error::WrongLength {
            what: "signature",
            expected: Self::LEN,
            got: bytes.len(),
        })?;
        let (compact, recid) = bytes.split_at(64);
        let recid = recid[0];
        let recovery_id = RecoveryId::try_from(i32::from(recid))
            .map_err(|_| Error::InvalidRecoveryId { got: recid })?;
        let (r, s) = compact.split_at(32);
        if r.iter().all(|&b| b == 0) || s.iter().all(|&b| b == 0) {
            return Err(Error::MalformedSignature);
        }
        let signature = RecoverableSignature::from_compact(compact, recovery_id)
            .map_err(|_| Error::MalformedSignature)?;
        let standard = signature.to_standard();
        let mut normalized = standard;
        normalized.normalize_s();
        if normalized != standard {
            return Err(Error::HighS);
        }
        Ok(Self(signature))
    }

    /// The 65-byte encoding.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let (recovery_id, compact) = self.0.serialize_compact();
        let mut bytes = [0; Self::LEN];
        bytes[..64].copy_from_slice(&compact);
        bytes[64] = recovery_id.to_u8();
        bytes
    }

    /// The recovery id (0 to 3), the last byte of the encoding.
    pub fn recovery_id(&self) -> u8 {
        self.0.serialize_compact().0.to_u8()
    }

    /// Recovers the public key that made this signature over `digest`.
    ///
    /// Any valid signature recovers to *some* key; compare it with the expected one, or use
    /// [`PublicKey::verify`] or [`Address::verify`](crate::Address::verify).
    ///
    /// # Errors
    ///
    /// [`Error::RecoveryFailed`] if no key can be recovered, i.e. the signature is invalid.
    pub fn recover(&self, digest: &[u8; 32]) -> Result<PublicKey, Error> {
        self.0
            .recover_ecdsa(secp256k1::Message::from_digest(*digest))
            .map(PublicKey::from_secp)
            .map_err(|_| Error::RecoveryFailed)
    }

    pub(crate) fn from_secp(signature: RecoverableSignature) -> Self {
        Self(signature)
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.to_bytes()))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({self})")
    }
}

impl FromStr for Signature {
    type Err = Error;

    /// Parses 130 hex characters (either case).
    fn from_str(s: &str) -> Result<Self, Error> {
        let bytes = hex::decode(s).map_err(|source| Error::InvalidHex {
            what: "signature",
            source,
        })?;
        Self::from_bytes(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Keypair;

    /// Curve order n, and n/2 rounded down (the largest low `s`).
    const ORDER: [u8; 32] = secp256k1::constants::CURVE_ORDER;
    const HALF_ORDER: &str = "7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0";

    fn sample() -> (Keypair, [u8; 32], Signature) {
        let keypair = Keypair::generate();
        let digest = [0x5a; 32];
        let signature = keypair.sign(&digest);
        (keypair, digest, signature)
    }

    /// `n - s`, big-endian.
    fn negate(s: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        let mut borrow = 0i16;
        for i in (0..32).rev() {
            let mut diff = i16::from(ORDER[i]) - i16::from(s[i]) - borrow;
            borrow = i16::from(diff < 0);
            if diff < 0 {
                diff += 256;
            }
            out[i] = u8::try_from(diff).expect("byte");
        }
        out
    }

    #[test]
    fn sign_verify_recover() {
        let (keypair, digest, signature) = sample();
        assert_eq!(signature.recover(&digest), Ok(keypair.public_key()));
        assert_eq!(keypair.public_key().verify(&digest, &signature), Ok(()));
        assert_eq!(keypair.address().verify(&digest, &signature), Ok(()));
        assert_eq!(
            keypair.sign(&digest),
            signature,
            "RFC 6979 is deterministic"
        );
    }

    #[test]
    fn wrong_key_or_digest_is_rejected() {
        let (keypair, digest, signature) = sample();
        let other = Keypair::generate();
        assert_eq!(
            other.public_key().verify(&digest, &signature),
            Err(Error::PublicKeyMismatch {
                expected: other.public_key(),
                recovered: keypair.public_key(),
            })
        );
        assert_eq!(
            other.address().verify(&digest, &signature),
            Err(Error::AddressMismatch {
                expected: other.address(),
                recovered: keypair.address(),
            })
        );
        let mut digest2 = digest;
        digest2[0] ^= 1;
        assert!(keypair.public_key().verify(&digest2, &signature).is_err());
    }

    #[test]
    fn wrong_recovery_id_does_not_verify() {
        let (keypair, digest, signature) = sample();
        let mut bytes = signature.to_bytes();
        bytes[64] ^= 1;
        let flipped = Signature::from_bytes(&bytes).expect("still well formed");
        assert!(keypair.public_key().verify(&digest, &flipped).is_err());
    }

    #[test]
    fn recovery_id_above_three_is_rejected() {
        let (_, _, signature) = sample();
        let mut bytes = signature.to_bytes();
        for recid in [4u8, 27, 31, 0xff] {
            bytes[64] = recid;
            assert_eq!(
                Signature::from_bytes(&bytes),
                Err(Error::InvalidRecoveryId { got: recid })
            );
        }
    }

    #[test]
    fn high_s_is_rejected_low_s_boundary_accepted() {
        let (_, _, signature) = sample();
        let mut bytes = signature.to_bytes();
        let s = negate(&bytes[32..64]);
        bytes[32..64].copy_from_slice(&s);
        bytes[64] ^= 1;
        assert_eq!(Signature::from_bytes(&bytes), Err(Error::HighS));

        // s = n/2 is the largest low s; n/2 + 1 is high.
        let half: [u8; 32] = hex::decode(HALF_ORDER)
            .expect("hex")
            .try_into()
            .expect("32 bytes");
        bytes[32..64].copy_from_slice(&half);
        assert!(Signature::from_bytes(&bytes).is_ok());
        bytes[63] += 1;
        assert_eq!(Signature::from_bytes(&bytes), Err(Error::HighS));
    }

    #[test]
    fn out_of_range_r_or_s_is_rejected() {
        let (_, _, signature) = sample();
        for range in [0..32, 32..64] {
            let mut bytes = signature.to_bytes();
            bytes[range.clone()].fill(0);
            assert_eq!(
                Signature::from_bytes(&bytes),
                Err(Error::MalformedSignature)
            );
            bytes[range.clone()].copy_from_slice(&ORDER);
            assert_eq!(
                Signature::from_bytes(&bytes),
                Err(Error::MalformedSignature)
            );
        }
    }

    #[test]
    fn wrong_length_and_hex() {
        assert!(matches!(
            Signature::from_bytes(&[1; 64]),
            Err(Error::WrongLength {
                expected: 65,
                got: 64,
                ..
            })
        ));
        assert!(matches!(
            "abc".parse::<Signature>(),
            Err(Error::InvalidHex { .. })
        ));
    }

    #[test]
    fn display_parse_round_trip() {
        let (_, _, signature) = sample();
        let text = signature.to_string();
        assert_eq!(text.len(), 130);
        assert_eq!(text.parse::<Signature>(), Ok(signature));
        assert_eq!(text.to_uppercase().parse::<Signature>(), Ok(signature));
        assert_eq!(format!("{signature:?}"), format!("Signature({text})"));
        assert_eq!(signature.recovery_id(), signature.to_bytes()[64]);
    }
}
