//! The binary encoding: round trips, and every malformed input refused with the right
//! error and without a panic.

use proptest::prelude::*;
use skywire_coin::address::address_from_parts;
use skywire_coin::{
    Block, BlockBody, BlockHeader, Decode, DecodeError, Encode, EncodeError, Hash, MAX_LEN, Output,
    Sig, SignedBlock, Transaction, UxBody, UxHead, UxOut,
};

/// The mainnet genesis transaction (86 bytes).
const GENESIS_TX_HEX: &str = "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000100000000f8f9c644772dc5373d85e11094e438df707a42c900407a10f35a000000407a10f35a0000";

fn sample_tx() -> Transaction {
    let mut tx = Transaction {
        sigs: vec![Sig([7; 65]), Sig::NULL],
        inputs: vec![Hash([1; 32]), Hash([2; 32])],
        outputs: vec![
            Output {
                address: address_from_parts(0, [3; 20]).expect("v0"),
                coins: 1_000_000,
                hours: 5,
            },
            Output {
                address: address_from_parts(0, [4; 20]).expect("v0"),
                coins: 2_000,
                hours: 0,
            },
        ],
        ..Transaction::default()
    };
    tx.update_header().expect("within limits");
    tx
}

fn sample_block() -> SignedBlock {
    let txs = vec![
        sample_tx(),
        Transaction::decode_exact(&hex::decode(GENESIS_TX_HEX).expect("hex")).expect("decodes"),
    ];
    SignedBlock {
        block: Block {
            header: BlockHeader {
                version: 1,
                time: 2,
                bk_seq: 3,
                fee: 4,
                prev_hash: Hash([5; 32]),
                body_hash: Hash([6; 32]),
                ux_hash: Hash([7; 32]),
            },
            body: BlockBody { transactions: txs },
        },
        sig: Sig([9; 65]),
    }
}

/// Every strict prefix of `bytes` fails with `Underflow`, and one extra byte with
/// `RemainingBytes`.
fn check_truncation_and_trailing<T: Decode + std::fmt::Debug + PartialEq>(bytes: &[u8]) {
    assert!(T::decode_exact(bytes).is_ok());
    for len in 0..bytes.len() {
        let result = T::decode_exact(&bytes[..len]);
        assert!(
            matches!(result, Err(DecodeError::Underflow { .. })),
            "prefix of {len} of {} bytes: {result:?}",
            bytes.len()
        );
    }
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert_eq!(
        T::decode_exact(&longer),
        Err(DecodeError::RemainingBytes { remaining: 1 })
    );
}

#[test]
fn truncated_transactions_underflow() {
    check_truncation_and_trailing::<Transaction>(&hex::decode(GENESIS_TX_HEX).expect("hex"));
    check_truncation_and_trailing::<Transaction>(&sample_tx().encode().expect("encodes"));
}

#[test]
fn truncated_blocks_underflow() {
    let signed = sample_block();
    check_truncation_and_trailing::<SignedBlock>(&signed.encode().expect("encodes"));
    check_truncation_and_trailing::<Block>(&signed.block.encode().expect("encodes"));
    check_truncation_and_trailing::<BlockHeader>(&signed.block.header.encode().expect("encodes"));
}

#[test]
fn sample_round_trips() {
    let tx = sample_tx();
    let bytes = tx.encode().expect("encodes");
    assert_eq!(bytes.len(), 49 + 2 * 65 + 2 * 32 + 2 * 37);
    assert_eq!(tx.length as usize, bytes.len());
    assert_eq!(Transaction::decode_exact(&bytes), Ok(tx));

    let signed = sample_block();
    let bytes = signed.encode().expect("encodes");
    assert_eq!(bytes.len(), signed.encoded_len());
    assert_eq!(SignedBlock::decode_exact(&bytes), Ok(signed));

    let ux = UxOut {
        head: UxHead { time: 1, bk_seq: 2 },
        body: UxBody {
            src_transaction: Hash([3; 32]),
            address: address_from_parts(0, [4; 20]).expect("v0"),
            coins: 5,
            hours: 6,
        },
    };
    let bytes = ux.encode().expect("encodes");
    assert_eq!(bytes.len(), 85);
    assert_eq!(UxOut::decode_exact(&bytes), Ok(ux));
    // Field order head, body; the snapshot hash is body, head.
    assert_eq!(&bytes[..16], &ux.head.encode().expect("encodes")[..]);
    assert_eq!(
        ux.snapshot_hash(),
        skywire_coin::sha256(
            &[
                ux.body.encode().expect("encodes"),
                ux.head.encode().expect("encodes")
            ]
            .concat()
        )
    );
    assert_eq!(ux.hash(), skywire_coin::sha256(&bytes[16..]));
}

#[test]
fn count_above_remaining_bytes_is_underflow() {
    // Genesis tx with its sig count set to 1: 65 bytes needed, 45 left, but the count (1)
    // is not above the bytes left, so the element itself underflows.
    let mut bytes = hex::decode(GENESIS_TX_HEX).expect("hex");
    bytes[37] = 1;
    assert!(matches!(
        Transaction::decode_exact(&bytes),
        Err(DecodeError::Underflow {
            needed: 65,
            remaining: 45
        })
    ));
    // Sig count 46 with 45 bytes left: the count itself is refused.
    bytes[37] = 46;
    assert_eq!(
        Transaction::decode_exact(&bytes),
        Err(DecodeError::Underflow {
            needed: 46,
            remaining: 45
        })
    );
    // Count u32::MAX: refused the same way, nothing allocated.
    bytes[37..41].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        Transaction::decode_exact(&bytes),
        Err(DecodeError::Underflow { remaining: 45, .. })
    ));
}

#[test]
fn count_above_max_len_with_enough_bytes() {
    // Header, then a sig count of 65536 followed by enough bytes for the count check.
    let mut bytes = vec![0u8; 37];
    bytes.extend_from_slice(&65536u32.to_le_bytes());
    bytes.resize(bytes.len() + 65536, 0);
    assert_eq!(
        Transaction::decode_exact(&bytes),
        Err(DecodeError::MaxLenExceeded {
            len: 65536,
            max: MAX_LEN
        })
    );
    // A block body with 65536 transactions: the same.
    let mut body = 65536u32.to_le_bytes().to_vec();
    body.resize(4 + 65536, 0);
    assert_eq!(
        BlockBody::decode_exact(&body),
        Err(DecodeError::MaxLenExceeded {
            len: 65536,
            max: MAX_LEN
        })
    );
}

#[test]
fn too_long_lists_do_not_encode() {
    let mut tx = sample_tx();
    tx.inputs = vec![Hash::ZERO; MAX_LEN + 1];
    assert_eq!(
        tx.encode(),
        Err(EncodeError::MaxLenExceeded {
            len: MAX_LEN + 1,
            max: MAX_LEN
        })
    );
    assert_eq!(
        tx.update_header(),
        Err(EncodeError::MaxLenExceeded {
            len: MAX_LEN + 1,
            max: MAX_LEN
        })
    );
    tx.inputs = vec![Hash::ZERO; MAX_LEN];
    tx.sigs = vec![Sig::NULL; MAX_LEN];
    assert_eq!(tx.update_header(), Ok(()));
    assert_eq!(tx.encode().map(|bytes| bytes.len()), Ok(tx.size()));
}

#[test]
fn non_zero_address_version_is_refused() {
    let mut bytes = hex::decode(GENESIS_TX_HEX).expect("hex");
    // The output's address version byte follows 49 bytes of header and counts.
    assert_eq!(bytes[49], 0);
    bytes[49] = 1;
    assert_eq!(
        Transaction::decode_exact(&bytes),
        Err(DecodeError::UnknownAddressVersion { got: 1 })
    );
}

fn hashes() -> impl Strategy<Value = Hash> {
    any::<[u8; 32]>().prop_map(Hash)
}

fn sigs() -> impl Strategy<Value = Sig> {
    prop::collection::vec(any::<u8>(), 65).prop_map(|bytes| {
        let mut sig = [0u8; 65];
        sig.copy_from_slice(&bytes);
        Sig(sig)
    })
}

fn outputs() -> impl Strategy<Value = Output> {
    (any::<[u8; 20]>(), any::<u64>(), any::<u64>()).prop_map(|(key, coins, hours)| Output {
        address: address_from_parts(0, key).expect("v0"),
        coins,
        hours,
    })
}

fn transactions() -> impl Strategy<Value = Transaction> {
    (
        any::<u32>(),
        any::<u8>(),
        hashes(),
        prop::collection::vec(sigs(), 0..4),
        prop::collection::vec(hashes(), 0..4),
        prop::collection::vec(outputs(), 0..4),
    )
        .prop_map(
            |(length, kind, inner_hash, sigs, inputs, outputs)| Transaction {
                length,
                kind,
                inner_hash,
                sigs,
                inputs,
                outputs,
            },
        )
}

proptest! {
    #[test]
    fn transaction_round_trip(tx in transactions()) {
        let bytes = tx.encode().expect("small lists encode");
        prop_assert_eq!(bytes.len(), tx.size());
        prop_assert_eq!(skywire_coin::sha256(&bytes), tx.hash());
        prop_assert_eq!(Transaction::decode_exact(&bytes), Ok(tx));
    }

    #[test]
    fn block_round_trip(
        txs in prop::collection::vec(transactions(), 0..4),
        header in (any::<u32>(), any::<u64>(), any::<u64>(), any::<u64>(), hashes(), hashes(), hashes()),
        sig in sigs(),
    ) {
        let (version, time, bk_seq, fee, prev_hash, body_hash, ux_hash) = header;
        let signed = SignedBlock {
            block: Block {
                header: BlockHeader { version, time, bk_seq, fee, prev_hash, body_hash, ux_hash },
                body: BlockBody { transactions: txs },
            },
            sig,
        };
        let bytes = signed.encode().expect("small lists encode");
        prop_assert_eq!(bytes.len(), signed.encoded_len());
        prop_assert_eq!(SignedBlock::decode_exact(&bytes), Ok(signed));
    }

    /// Arbitrary bytes never panic any decoder, and whatever decodes re-encodes to the
    /// same bytes (the encoding is canonical).
    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(tx) = Transaction::decode_exact(&bytes) {
            prop_assert_eq!(tx.encode().expect("decoded lists encode"), bytes.clone());
        }
        if let Ok(block) = SignedBlock::decode_exact(&bytes) {
            prop_assert_eq!(block.encode().expect("decoded lists encode"), bytes.clone());
        }
        let _ = BlockBody::decode_exact(&bytes);
        let _ = BlockHeader::decode_exact(&bytes);
        let _ = UxOut::decode_exact(&bytes);
    }

    /// Small counts followed by arbitrary bytes reach deeper into the decoders than
    /// uniformly random bytes do.
    #[test]
    fn decoding_plausible_transactions_never_panics(
        header in prop::collection::vec(any::<u8>(), 37),
        counts in (0u32..3, 0u32..3, 0u32..3),
        tail in prop::collection::vec(any::<u8>(), 0..400),
        version in prop_oneof![9 => Just(0u8), 1 => any::<u8>()],
    ) {
        let mut bytes = header;
        bytes.extend_from_slice(&counts.0.to_le_bytes());
        bytes.extend(std::iter::repeat_n(1u8, 65 * counts.0 as usize));
        bytes.extend_from_slice(&counts.1.to_le_bytes());
        bytes.extend(std::iter::repeat_n(2u8, 32 * counts.1 as usize));
        bytes.extend_from_slice(&counts.2.to_le_bytes());
        bytes.push(version);
        bytes.extend_from_slice(&tail);
        match Transaction::decode_exact(&bytes) {
            Ok(tx) => prop_assert_eq!(tx.encode().expect("encodes"), bytes),
            Err(DecodeError::UnknownAddressVersion { got }) => prop_assert_ne!(got, 0),
            Err(_) => {}
        }
    }
}
