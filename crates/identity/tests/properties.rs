//! Property tests: encodings round-trip, corruption is detected, signatures round-trip.

use proptest::prelude::*;
use sha2::{Digest as _, Sha256};
use skywire_identity::{Address, Error, Keypair, PublicKey, Signature};

const BASE58_ALPHABET: &str = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// The binary address for a key hash and version, with a correct checksum.
fn address_bytes(key: [u8; 20], version: u8) -> [u8; 25] {
    let mut bytes = [0u8; 25];
    bytes[..20].copy_from_slice(&key);
    bytes[20] = version;
    let checksum = Sha256::digest(&bytes[..21]);
    bytes[21..].copy_from_slice(&checksum[..4]);
    bytes
}

/// Arbitrary valid addresses, including key hashes with leading zero bytes (leading '1's).
fn addresses() -> impl Strategy<Value = Address> {
    (any::<[u8; 20]>(), 0..4usize).prop_map(|(mut key, zeros)| {
        key[..zeros].fill(0);
        Address::from_bytes(&address_bytes(key, Address::VERSION)).expect("valid by construction")
    })
}

/// Arbitrary key pairs (rejection-sampled valid secrets; almost every 32 bytes are valid).
fn keypairs() -> impl Strategy<Value = Keypair> {
    any::<[u8; 32]>().prop_filter_map("secret out of range", |secret| {
        Keypair::from_secret_bytes(&secret).ok()
    })
}

proptest! {
    #[test]
    fn address_display_parse_round_trip(address in addresses()) {
        let text = address.to_string();
        prop_assert!(text.len() <= Address::MAX_TEXT_LEN);
        prop_assert_eq!(text.parse::<Address>(), Ok(address));
        prop_assert_eq!(Address::from_bytes(&address.to_bytes()), Ok(address));
        prop_assert_eq!(bs58::decode(&text).into_vec().expect("base58"), address.to_bytes());
    }

    #[test]
    fn address_of_public_key_round_trips(keypair in keypairs()) {
        let address = keypair.address();
        let text = address.to_string();
        // Usually 34 or 35 characters; about 1% are shorter (the golden files have 33s).
        prop_assert!(text.len() <= Address::MAX_TEXT_LEN, "{}", text);
        prop_assert_eq!(text.parse::<Address>(), Ok(address));
    }

    /// Replacing any one character with any other (base58 or not) is rejected. (A 4-byte
    /// checksum lets a corruption through with probability 2^-32; proptest will not see it.)
    #[test]
    fn address_single_character_corruption_is_rejected(
        address in addresses(),
        position in any::<prop::sample::Index>(),
        replacement in prop_oneof![
            4 => prop::sample::select(BASE58_ALPHABET.chars().collect::<Vec<_>>()),
            1 => any::<char>(),
        ],
    ) {
        let text = address.to_string();
        let position = position.index(text.len());
        let original = text.as_bytes()[position] as char;
        prop_assume!(replacement != original);
        let mut corrupted = text.clone();
        corrupted.replace_range(position..=position, replacement.encode_utf8(&mut [0; 4]));
        let result = corrupted.parse::<Address>();
        prop_assert!(result.is_err(), "{} -> {} accepted as {:?}", text, corrupted, result);
    }

    #[test]
    fn address_checksum_byte_flip_is_rejected(
        address in addresses(),
        byte in 21..25usize,
        mask in 1..=255u8,
    ) {
        let mut bytes = address.to_bytes();
        bytes[byte] ^= mask;
        let text = bs58::encode(bytes).into_string();
        let expected = Err(Error::BadChecksum {
            computed: address.to_bytes()[21..].try_into().expect("4 bytes"),
            found: bytes[21..].try_into().expect("4 bytes"),
        });
        prop_assert_eq!(text.parse::<Address>(), expected.clone());
        prop_assert_eq!(Address::from_bytes(&bytes), expected);
    }

    #[test]
    fn address_parse_never_panics(text in ".{0,40}") {
        if let Ok(address) = text.parse::<Address>() {
            prop_assert_eq!(address.to_string(), text);
        }
    }

    #[test]
    fn signature_round_trip(keypair in keypairs(), digest in any::<[u8; 32]>()) {
        let public = keypair.public_key();
        let signature = keypair.sign(&digest);

        prop_assert_eq!(signature.recover(&digest), Ok(public));
        prop_assert_eq!(public.verify(&digest, &signature), Ok(()));
        prop_assert_eq!(keypair.address().verify(&digest, &signature), Ok(()));
        prop_assert_eq!(Signature::from_bytes(&signature.to_bytes()), Ok(signature));
        prop_assert_eq!(signature.to_string().parse::<Signature>(), Ok(signature));
        prop_assert!(signature.recovery_id() <= 1);
    }

    #[test]
    fn signature_rejects_other_digest(
        keypair in keypairs(),
        digest in any::<[u8; 32]>(),
        bit in 0..256usize,
    ) {
        let signature = keypair.sign(&digest);
        let mut other = digest;
        other[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(keypair.public_key().verify(&other, &signature).is_err());
        prop_assert!(keypair.address().verify(&other, &signature).is_err());
    }

    #[test]
    fn signature_parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 65)) {
        match Signature::from_bytes(&bytes) {
            Ok(signature) => prop_assert_eq!(signature.to_bytes().to_vec(), bytes),
            Err(Error::InvalidRecoveryId { got }) => prop_assert!(got > 3),
            Err(error) => prop_assert!(
                matches!(error, Error::MalformedSignature | Error::HighS),
                "{:?}",
                error
            ),
        }
    }

    #[test]
    fn public_key_round_trip(keypair in keypairs()) {
        let public = keypair.public_key();
        prop_assert_eq!(public.to_string().parse::<PublicKey>(), Ok(public));
        prop_assert_eq!(PublicKey::from_bytes(&public.to_bytes()), Ok(public));
    }

    #[test]
    fn secret_hex_round_trip(keypair in keypairs()) {
        let restored = Keypair::from_secret_hex(&keypair.secret_hex()).expect("round trip");
        prop_assert_eq!(*restored.secret_bytes(), *keypair.secret_bytes());
        prop_assert_eq!(restored.public_key(), keypair.public_key());
    }
}
