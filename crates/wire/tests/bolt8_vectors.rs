//! BOLT 8 Appendix A test vectors (`testdata/bolt8/08-transport-appendix-a.md`,
//! prologue `lightning`), plus round-trip, tamper, limit and prologue tests for
//! `skywire_wire::noise`.
#![allow(clippy::unwrap_used)]

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{ChaCha20Poly1305, Key, KeyInit, Nonce};
use proptest::prelude::*;
use secp256k1::{PublicKey, SecretKey};
use skywire_wire::noise::{
    ACT_ONE_LEN, ACT_THREE_LEN, ACT_TWO_LEN, Decryptor, Encryptor, HandshakeError,
    InitiatorHandshake, LENGTH_HEADER_LEN, MAX_MESSAGE_LEN, PROLOGUE, ResponderAwaitingActThree,
    ResponderHandshake, TAG_LEN, Transport, TransportError, sealed_len,
};

const LIGHTNING: &[u8] = b"lightning";

// Initiator keys.
const INITIATOR_LS_PRIV: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const INITIATOR_LS_PUB: &str = "034f355bdcb7cc0af728ef3cceb9615d90684bb5b2ca5f859ab0f0b704075871aa";
const INITIATOR_E_PRIV: &str = "1212121212121212121212121212121212121212121212121212121212121212";

// Responder keys.
const RESPONDER_LS_PRIV: &str = "2121212121212121212121212121212121212121212121212121212121212121";
const RESPONDER_LS_PUB: &str = "028d7500dd4c12685d1f568b4c2b5048e8534b873319f3a8daa612b469132ec7f7";
const RESPONDER_E_PRIV: &str = "2222222222222222222222222222222222222222222222222222222222222222";

const ACT_ONE: &str = "00036360e856310ce5d294e8be33fc807077dc56ac80d95d9cd4ddbd21325eff73f70df6086551151f58b8afe6c195782c6a";
const ACT_TWO: &str = "0002466d7fcae563e5cb09a0d1870bb580344804617879a14949cf22285f1bae3f276e2470b93aac583c9ef6eafca3f730ae";
const ACT_THREE: &str = "00b9e3a702e93e3a9948c2ed6e5fd7590a6e1c3a0344cfc9d5b57357049aa22355361aa02e55a8fc28fef5bd6d71ad0c38228dc68b1c466263b47fdf31e560e139ba";

/// The initiator's sending key (the responder's receiving key).
const INITIATOR_SK: &str = "969ab31b4d288cedf6218839b27a3e2140827047f2c0f01bf5c04435d43511a9";
/// The initiator's receiving key (the responder's sending key).
const INITIATOR_RK: &str = "bb9020b8965f4df047e07f955f3c4b88418984aadc5cdb35096b9ea8fa5c3442";

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn secret(s: &str) -> SecretKey {
    SecretKey::from_secret_bytes(unhex(s).try_into().unwrap()).unwrap()
}

fn public(s: &str) -> PublicKey {
    PublicKey::from_slice(&unhex(s)).unwrap()
}

fn vector_initiator() -> (InitiatorHandshake, [u8; ACT_ONE_LEN]) {
    InitiatorHandshake::new(
        LIGHTNING,
        &secret(INITIATOR_LS_PRIV),
        &public(RESPONDER_LS_PUB),
        secret(INITIATOR_E_PRIV),
    )
}

fn vector_responder() -> ResponderHandshake {
    ResponderHandshake::new(
        LIGHTNING,
        &secret(RESPONDER_LS_PRIV),
        secret(RESPONDER_E_PRIV),
    )
}

/// The vector responder after reading the vector's act one.
fn vector_responder_after_act_one() -> ResponderAwaitingActThree {
    let (responder, act_two) = vector_responder().read_act_one(&unhex(ACT_ONE)).unwrap();
    assert_eq!(hex::encode(act_two), ACT_TWO);
    responder
}

/// An independent encoding of the first transport message under `key`
/// (nonces 0 and 1, no rotation), straight from BOLT 8.
fn reference_first_message(key: &str, plaintext: &[u8]) -> Vec<u8> {
    let key: [u8; 32] = unhex(key).try_into().unwrap();
    let cipher = ChaCha20Poly1305::new(Key::from_slice(&key));
    let nonce = |n: u8| {
        let mut nonce = [0u8; 12];
        nonce[4] = n;
        Nonce::from(nonce)
    };
    let mut out = u16::try_from(plaintext.len())
        .unwrap()
        .to_be_bytes()
        .to_vec();
    let tag = cipher
        .encrypt_in_place_detached(&nonce(0), &[], &mut out)
        .unwrap();
    out.extend_from_slice(&tag);
    let mut body = plaintext.to_vec();
    let tag = cipher
        .encrypt_in_place_detached(&nonce(1), &[], &mut body)
        .unwrap();
    out.extend_from_slice(&body);
    out.extend_from_slice(&tag);
    out
}

fn seal(encryptor: &mut Encryptor, plaintext: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encryptor.seal_into(plaintext, &mut out).unwrap();
    assert_eq!(out.len(), sealed_len(plaintext.len()));
    out
}

/// Opens one complete wire message.
fn open(decryptor: &mut Decryptor, wire: &[u8]) -> Result<Vec<u8>, TransportError> {
    let (header, body) = wire.split_at(LENGTH_HEADER_LEN);
    let len = decryptor.open_length(header.try_into().unwrap())?;
    assert_eq!(body.len(), len + TAG_LEN);
    let mut body = body.to_vec();
    let len = decryptor.open_body_in_place(&mut body)?;
    body.truncate(len);
    Ok(body)
}

/// A complete handshake between fresh random keys.
fn random_handshake(prologue: &[u8]) -> (Transport, Transport) {
    let mut rng = rand::rng();
    let initiator_static = SecretKey::new(&mut rng);
    let responder_static = SecretKey::new(&mut rng);
    let (initiator, act_one) = InitiatorHandshake::new(
        prologue,
        &initiator_static,
        &responder_static.public_key(),
        SecretKey::new(&mut rng),
    );
    let responder = ResponderHandshake::new(prologue, &responder_static, SecretKey::new(&mut rng));
    let (responder, act_two) = responder.read_act_one(&act_one).unwrap();
    let (act_three, initiator) = initiator.read_act_two(&act_two).unwrap();
    let (remote_static, responder) = responder.read_act_three(&act_three).unwrap();
    assert_eq!(remote_static, initiator_static.public_key());
    (initiator, responder)
}

// ---------------------------------------------------------------------------
// Initiator tests.

#[test]
fn initiator_successful_handshake() {
    let (initiator, act_one) = vector_initiator();
    assert_eq!(hex::encode(act_one), ACT_ONE);
    let (act_three, transport) = initiator.read_act_two(&unhex(ACT_TWO)).unwrap();
    assert_eq!(hex::encode(act_three), ACT_THREE);

    // sk, rk: the first message each way matches an independent encoding
    // under the vector's keys.
    let (mut tx, mut rx) = transport.into_split();
    assert_eq!(
        seal(&mut tx, b"hello"),
        reference_first_message(INITIATOR_SK, b"hello")
    );
    let incoming = reference_first_message(INITIATOR_RK, b"from the responder");
    assert_eq!(open(&mut rx, &incoming).unwrap(), b"from the responder");
}

fn initiator_act_two_error(act_two: &str) -> HandshakeError {
    let (initiator, act_one) = vector_initiator();
    assert_eq!(hex::encode(act_one), ACT_ONE);
    initiator.read_act_two(&unhex(act_two)).unwrap_err()
}

#[test]
fn initiator_act2_short_read() {
    assert_eq!(
        initiator_act_two_error(
            "0002466d7fcae563e5cb09a0d1870bb580344804617879a14949cf22285f1bae3f276e2470b93aac583c9ef6eafca3f730"
        ),
        HandshakeError::ActReadFailed {
            act: 2,
            got: 49,
            expected: ACT_TWO_LEN
        }
    );
}

#[test]
fn initiator_act2_bad_version() {
    assert_eq!(
        initiator_act_two_error(
            "0102466d7fcae563e5cb09a0d1870bb580344804617879a14949cf22285f1bae3f276e2470b93aac583c9ef6eafca3f730ae"
        ),
        HandshakeError::BadVersion { act: 2, version: 1 }
    );
}

#[test]
fn initiator_act2_bad_key_serialization() {
    assert_eq!(
        initiator_act_two_error(
            "0004466d7fcae563e5cb09a0d1870bb580344804617879a14949cf22285f1bae3f276e2470b93aac583c9ef6eafca3f730ae"
        ),
        HandshakeError::BadPubkey { act: 2 }
    );
}

#[test]
fn initiator_act2_bad_mac() {
    assert_eq!(
        initiator_act_two_error(
            "0002466d7fcae563e5cb09a0d1870bb580344804617879a14949cf22285f1bae3f276e2470b93aac583c9ef6eafca3f730af"
        ),
        HandshakeError::BadTag { act: 2 }
    );
}

#[test]
fn initiator_act2_too_long_is_a_read_failure() {
    let mut act_two = unhex(ACT_TWO);
    act_two.push(0);
    let (initiator, _) = vector_initiator();
    assert_eq!(
        initiator.read_act_two(&act_two).unwrap_err(),
        HandshakeError::ActReadFailed {
            act: 2,
            got: 51,
            expected: ACT_TWO_LEN
        }
    );
}

// ---------------------------------------------------------------------------
// Responder tests.

#[test]
fn responder_successful_handshake() {
    let responder = vector_responder_after_act_one();
    let (remote_static, transport) = responder.read_act_three(&unhex(ACT_THREE)).unwrap();
    assert_eq!(remote_static, public(INITIATOR_LS_PUB));
    assert_eq!(remote_static, secret(INITIATOR_LS_PRIV).public_key());

    // rk, sk = the initiator's sk, rk.
    let (mut tx, mut rx) = transport.into_split();
    let incoming = reference_first_message(INITIATOR_SK, b"hello");
    assert_eq!(open(&mut rx, &incoming).unwrap(), b"hello");
    assert_eq!(
        seal(&mut tx, b"from the responder"),
        reference_first_message(INITIATOR_RK, b"from the responder")
    );
}

fn responder_act_one_error(act_one: &str) -> HandshakeError {
    vector_responder()
        .read_act_one(&unhex(act_one))
        .unwrap_err()
}

#[test]
fn responder_act1_short_read() {
    assert_eq!(
        responder_act_one_error(
            "00036360e856310ce5d294e8be33fc807077dc56ac80d95d9cd4ddbd21325eff73f70df6086551151f58b8afe6c195782c"
        ),
        HandshakeError::ActReadFailed {
            act: 1,
            got: 49,
            expected: ACT_ONE_LEN
        }
    );
}

#[test]
fn responder_act1_bad_version() {
    assert_eq!(
        responder_act_one_error(
            "01036360e856310ce5d294e8be33fc807077dc56ac80d95d9cd4ddbd21325eff73f70df6086551151f58b8afe6c195782c6a"
        ),
        HandshakeError::BadVersion { act: 1, version: 1 }
    );
}

#[test]
fn responder_act1_bad_key_serialization() {
    assert_eq!(
        responder_act_one_error(
            "00046360e856310ce5d294e8be33fc807077dc56ac80d95d9cd4ddbd21325eff73f70df6086551151f58b8afe6c195782c6a"
        ),
        HandshakeError::BadPubkey { act: 1 }
    );
}

#[test]
fn responder_act1_bad_mac() {
    assert_eq!(
        responder_act_one_error(
            "00036360e856310ce5d294e8be33fc807077dc56ac80d95d9cd4ddbd21325eff73f70df6086551151f58b8afe6c195782c6b"
        ),
        HandshakeError::BadTag { act: 1 }
    );
}

fn responder_act_three_error(act_three: &str) -> HandshakeError {
    vector_responder_after_act_one()
        .read_act_three(&unhex(act_three))
        .unwrap_err()
}

#[test]
fn responder_act3_bad_version() {
    assert_eq!(
        responder_act_three_error(
            "01b9e3a702e93e3a9948c2ed6e5fd7590a6e1c3a0344cfc9d5b57357049aa22355361aa02e55a8fc28fef5bd6d71ad0c38228dc68b1c466263b47fdf31e560e139ba"
        ),
        HandshakeError::BadVersion { act: 3, version: 1 }
    );
}

#[test]
fn responder_act3_short_read() {
    assert_eq!(
        responder_act_three_error(
            "00b9e3a702e93e3a9948c2ed6e5fd7590a6e1c3a0344cfc9d5b57357049aa22355361aa02e55a8fc28fef5bd6d71ad0c38228dc68b1c466263b47fdf31e560e139"
        ),
        HandshakeError::ActReadFailed {
            act: 3,
            got: 65,
            expected: ACT_THREE_LEN
        }
    );
}

#[test]
fn responder_act3_bad_mac_for_ciphertext() {
    assert_eq!(
        responder_act_three_error(
            "00c9e3a702e93e3a9948c2ed6e5fd7590a6e1c3a0344cfc9d5b57357049aa22355361aa02e55a8fc28fef5bd6d71ad0c38228dc68b1c466263b47fdf31e560e139ba"
        ),
        HandshakeError::BadCiphertext
    );
}

#[test]
fn responder_act3_bad_rs() {
    assert_eq!(
        responder_act_three_error(
            "00bfe3a702e93e3a9948c2ed6e5fd7590a6e1c3a0344cfc9d5b57357049aa2235536ad09a8ee351870c2bb7f78b754a26c6cef79a98d25139c856d7efd252c2ae73c"
        ),
        HandshakeError::BadPubkey { act: 3 }
    );
}

#[test]
fn responder_act3_bad_mac() {
    assert_eq!(
        responder_act_three_error(
            "00b9e3a702e93e3a9948c2ed6e5fd7590a6e1c3a0344cfc9d5b57357049aa22355361aa02e55a8fc28fef5bd6d71ad0c38228dc68b1c466263b47fdf31e560e139bb"
        ),
        HandshakeError::BadTag { act: 3 }
    );
}

// ---------------------------------------------------------------------------
// Message encryption test.

#[test]
fn transport_message_test() {
    let expected = [
        (
            0,
            "cf2b30ddf0cf3f80e7c35a6e6730b59fe802473180f396d88a8fb0db8cbcf25d2f214cf9ea1d95",
        ),
        (
            1,
            "72887022101f0b6753e0c7de21657d35a4cb2a1f5cde2650528bbc8f837d0f0d7ad833b1a256a1",
        ),
        (
            500,
            "178cb9d7387190fa34db9c2d50027d21793c9bc2d40b1e14dcf30ebeeeb220f48364f7a4c68bf8",
        ),
        (
            501,
            "1b186c57d44eb6de4c057c49940d79bb838a145cb528d6e8fd26dbe50a60ca2c104b56b60e45bd",
        ),
        (
            1000,
            "4a2f3cc3b5e78ddb83dcb426d9863d9d9a723b0337c89dd0b005d89f8d3c05c52b76b29b740f09",
        ),
        (
            1001,
            "2ecd8c8a5629d0d02ab457a0fdd0f7b90a192cd46be5ecb6ca570bfc5e268338b1a16cf4ef2d36",
        ),
    ];

    let (initiator, act_one) = vector_initiator();
    let (act_three, initiator) = initiator.read_act_two(&unhex(ACT_TWO)).unwrap();
    let (remote_static, responder) = vector_responder()
        .read_act_one(&act_one)
        .unwrap()
        .0
        .read_act_three(&act_three)
        .unwrap();
    assert_eq!(remote_static, public(INITIATOR_LS_PUB));
    let (mut tx, _) = initiator.into_split();
    let (_, mut rx) = responder.into_split();

    let mut checked = 0;
    for i in 0..=1001 {
        let wire = seal(&mut tx, b"hello");
        if let Some((_, output)) = expected.iter().find(|(index, _)| *index == i) {
            assert_eq!(hex::encode(&wire), *output, "output {i}");
            checked += 1;
        }
        assert_eq!(open(&mut rx, &wire).unwrap(), b"hello", "message {i}");
    }
    assert_eq!(checked, expected.len());
}

// ---------------------------------------------------------------------------
// Round trips.

fn message() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        prop::collection::vec(any::<u8>(), MAX_MESSAGE_LEN..=MAX_MESSAGE_LEN),
        prop::collection::vec(any::<u8>(), 0..64),
        prop::collection::vec(any::<u8>(), 0..=MAX_MESSAGE_LEN),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Random messages survive a round trip both ways, starting at a random
    /// point of the key schedule so that they straddle rotations.
    #[test]
    fn round_trip_across_rotations(
        skip_forward in 0usize..1600,
        skip_backward in 0usize..1600,
        forward in prop::collection::vec(message(), 1..6),
        backward in prop::collection::vec(message(), 1..6),
    ) {
        let (initiator, responder) = random_handshake(PROLOGUE);
        let (mut initiator_tx, mut initiator_rx) = initiator.into_split();
        let (mut responder_tx, mut responder_rx) = responder.into_split();

        for (skip, tx, rx, messages) in [
            (skip_forward, &mut initiator_tx, &mut responder_rx, &forward),
            (skip_backward, &mut responder_tx, &mut initiator_rx, &backward),
        ] {
            for i in 0..skip {
                let filler = i.to_le_bytes();
                prop_assert_eq!(open(rx, &seal(tx, &filler)).unwrap(), filler);
            }
            // Several messages in one buffer, as a writer would batch them.
            let mut wire = Vec::new();
            for message in messages {
                tx.seal_into(message, &mut wire).unwrap();
            }
            let mut rest = &wire[..];
            for message in messages {
                let (one, tail) = rest.split_at(sealed_len(message.len()));
                prop_assert_eq!(&open(rx, one).unwrap(), message);
                rest = tail;
            }
            prop_assert!(rest.is_empty());
        }
    }
}

#[test]
fn round_trip_many_rotations_both_ways() {
    let (initiator, responder) = random_handshake(PROLOGUE);
    let (mut initiator_tx, mut initiator_rx) = initiator.into_split();
    let (mut responder_tx, mut responder_rx) = responder.into_split();
    // 2600 messages each way: five key rotations per direction.
    for i in 0..2600usize {
        let message = vec![u8::try_from(i % 251).unwrap(); (i * 37) % 3000];
        let wire = seal(&mut initiator_tx, &message);
        assert_eq!(open(&mut responder_rx, &wire).unwrap(), message);
        let wire = seal(&mut responder_tx, &message);
        assert_eq!(open(&mut initiator_rx, &wire).unwrap(), message);
    }
}

// ---------------------------------------------------------------------------
// Tampering, limits and misuse.

#[test]
fn every_flipped_bit_fails_authentication() {
    let plaintext = b"attack at dawn";
    for bit in 0..sealed_len(plaintext.len()) * 8 {
        // Decryptors can't be cloned: replay the same fixed-key session for
        // every flip.
        let (mut tx, mut rx) = deterministic_pair();
        let wire = seal(&mut tx, plaintext);
        let mut tampered = wire.clone();
        tampered[bit / 8] ^= 1 << (bit % 8);

        let (header, body) = tampered.split_at_mut(LENGTH_HEADER_LEN);
        let header: &[u8; LENGTH_HEADER_LEN] = (&*header).try_into().unwrap();
        if bit < LENGTH_HEADER_LEN * 8 {
            assert_eq!(
                rx.open_length(header),
                Err(TransportError::BadTag),
                "bit {bit}"
            );
        } else {
            assert_eq!(rx.open_length(header), Ok(plaintext.len()));
            let before = body.to_vec();
            assert_eq!(
                rx.open_body_in_place(body),
                Err(TransportError::BadTag),
                "bit {bit}"
            );
            assert_eq!(body, &before[..], "a failed open leaves the buffer alone");
        }
        // The untampered message still opens: failures do not move the state.
        assert_eq!(open_resuming(&mut rx, &wire), plaintext);
    }
}

/// A fixed-key session (the vector's), as (initiator sender, responder receiver).
fn deterministic_pair() -> (Encryptor, Decryptor) {
    let (initiator, act_one) = vector_initiator();
    let (responder, act_two) = vector_responder().read_act_one(&act_one).unwrap();
    let (act_three, initiator) = initiator.read_act_two(&act_two).unwrap();
    let (_, responder) = responder.read_act_three(&act_three).unwrap();
    (initiator.into_split().0, responder.into_split().1)
}

/// Opens `wire` with a decryptor that may already have opened its header.
fn open_resuming(rx: &mut Decryptor, wire: &[u8]) -> Vec<u8> {
    let (header, body) = wire.split_at(LENGTH_HEADER_LEN);
    match rx.open_length(header.try_into().unwrap()) {
        Ok(_) | Err(TransportError::BodyPending { .. }) => {}
        Err(error) => panic!("{error}"),
    }
    let mut body = body.to_vec();
    let len = rx.open_body_in_place(&mut body).unwrap();
    body.truncate(len);
    body
}

#[test]
fn replayed_or_reordered_messages_fail() {
    let (mut tx, mut rx) = deterministic_pair();
    let first = seal(&mut tx, b"first");
    let second = seal(&mut tx, b"second");
    assert_eq!(open(&mut rx, &second), Err(TransportError::BadTag));
    assert_eq!(open(&mut rx, &first).unwrap(), b"first");
    assert_eq!(open(&mut rx, &first), Err(TransportError::BadTag));
    assert_eq!(open(&mut rx, &second).unwrap(), b"second");
}

#[test]
fn too_long_message_is_refused() {
    let (initiator, responder) = random_handshake(PROLOGUE);
    let (mut tx, _) = initiator.into_split();
    let (_, mut rx) = responder.into_split();

    let mut out = b"already queued".to_vec();
    assert_eq!(
        tx.seal_into(&vec![0u8; MAX_MESSAGE_LEN + 1], &mut out),
        Err(TransportError::MessageTooLong {
            len: MAX_MESSAGE_LEN + 1,
            max: MAX_MESSAGE_LEN
        })
    );
    assert_eq!(out, b"already queued", "nothing is written on refusal");

    // The refusal consumed no nonce: the maximum still goes through.
    let largest = vec![0xa5; MAX_MESSAGE_LEN];
    let wire = seal(&mut tx, &largest);
    assert_eq!(wire.len(), LENGTH_HEADER_LEN + MAX_MESSAGE_LEN + TAG_LEN);
    assert_eq!(open(&mut rx, &wire).unwrap(), largest);
}

#[test]
fn seal_into_appends() {
    let (mut tx, mut rx) = deterministic_pair();
    let mut out = vec![1, 2, 3];
    tx.seal_into(b"hello", &mut out).unwrap();
    assert_eq!(&out[..3], &[1, 2, 3]);
    assert_eq!(
        hex::encode(&out[3..]),
        "cf2b30ddf0cf3f80e7c35a6e6730b59fe802473180f396d88a8fb0db8cbcf25d2f214cf9ea1d95"
    );
    assert_eq!(open(&mut rx, &out[3..]).unwrap(), b"hello");
}

#[test]
fn decryptor_rejects_calls_out_of_order() {
    let (mut tx, mut rx) = deterministic_pair();
    let wire = seal(&mut tx, b"hello");
    let (header, body) = wire.split_at(LENGTH_HEADER_LEN);
    let header: &[u8; LENGTH_HEADER_LEN] = header.try_into().unwrap();

    let mut body = body.to_vec();
    assert_eq!(
        rx.open_body_in_place(&mut body),
        Err(TransportError::NoPendingBody)
    );
    assert_eq!(rx.open_length(header), Ok(5));
    assert_eq!(
        rx.open_length(header),
        Err(TransportError::BodyPending { len: 5 })
    );
    assert_eq!(
        rx.open_body_in_place(&mut body[..20]),
        Err(TransportError::BodyLengthMismatch {
            expected: 21,
            got: 20
        })
    );
    assert_eq!(rx.open_body_in_place(&mut body), Ok(5));
    assert_eq!(&body[..5], b"hello");
}

#[test]
fn empty_message_round_trips() {
    let (mut tx, mut rx) = deterministic_pair();
    let wire = seal(&mut tx, b"");
    assert_eq!(wire.len(), LENGTH_HEADER_LEN + TAG_LEN);
    assert_eq!(open(&mut rx, &wire).unwrap(), b"");
}

// ---------------------------------------------------------------------------
// Skywire prologue.

#[test]
fn skywire_prologue_handshake() {
    assert_eq!(PROLOGUE, b"skywire/1");
    let (initiator, responder) = random_handshake(PROLOGUE);
    let (mut initiator_tx, mut initiator_rx) = initiator.into_split();
    let (mut responder_tx, mut responder_rx) = responder.into_split();
    let wire = seal(&mut initiator_tx, b"ping");
    assert_eq!(open(&mut responder_rx, &wire).unwrap(), b"ping");
    let wire = seal(&mut responder_tx, b"pong");
    assert_eq!(open(&mut initiator_rx, &wire).unwrap(), b"pong");
}

#[test]
fn skywire_prologue_changes_the_handshake() {
    let (_, act_one) = InitiatorHandshake::new(
        PROLOGUE,
        &secret(INITIATOR_LS_PRIV),
        &public(RESPONDER_LS_PUB),
        secret(INITIATOR_E_PRIV),
    );
    assert_ne!(hex::encode(act_one), ACT_ONE);
}

#[test]
fn mismatched_prologues_fail_at_act_one() {
    let mut rng = rand::rng();
    let responder_static = SecretKey::new(&mut rng);
    for (initiator_prologue, responder_prologue) in [
        (PROLOGUE, LIGHTNING),
        (LIGHTNING, PROLOGUE),
        (PROLOGUE, b"skywire/2".as_slice()),
        (PROLOGUE, b"".as_slice()),
    ] {
        let (_, act_one) = InitiatorHandshake::new(
            initiator_prologue,
            &SecretKey::new(&mut rng),
            &responder_static.public_key(),
            SecretKey::new(&mut rng),
        );
        let responder = ResponderHandshake::new(
            responder_prologue,
            &responder_static,
            SecretKey::new(&mut rng),
        );
        assert_eq!(
            responder.read_act_one(&act_one).unwrap_err(),
            HandshakeError::BadTag { act: 1 }
        );
    }
}

#[test]
fn wrong_responder_key_fails_at_act_one() {
    let mut rng = rand::rng();
    let (_, act_one) = InitiatorHandshake::new(
        PROLOGUE,
        &SecretKey::new(&mut rng),
        &SecretKey::new(&mut rng).public_key(),
        SecretKey::new(&mut rng),
    );
    let responder = ResponderHandshake::new(
        PROLOGUE,
        &SecretKey::new(&mut rng),
        SecretKey::new(&mut rng),
    );
    assert_eq!(
        responder.read_act_one(&act_one).unwrap_err(),
        HandshakeError::BadTag { act: 1 }
    );
}

#[test]
fn halves_can_move_between_tasks() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Encryptor>();
    assert_send_sync::<Decryptor>();
    assert_send_sync::<Transport>();
    assert_send_sync::<InitiatorHandshake>();
    assert_send_sync::<ResponderHandshake>();
    assert_send_sync::<ResponderAwaitingActThree>();
    assert_send_sync::<HandshakeError>();
    assert_send_sync::<TransportError>();
}

#[test]
fn seal_in_place_needs_room_and_matches_seal_into() {
    let (initiator, responder) = random_handshake(PROLOGUE);
    let (mut enc, _) = initiator.into_split();
    let (_, mut dec) = responder.into_split();
    let mut short = vec![0u8; LENGTH_HEADER_LEN + TAG_LEN - 1];
    assert_eq!(
        enc.seal_in_place(&mut short),
        Err(TransportError::NoRoom { len: short.len() })
    );
    // Built in place around the plaintext, a message opens like any other.
    for plaintext in [&b""[..], b"in place"] {
        let mut message = vec![0u8; LENGTH_HEADER_LEN];
        message.extend_from_slice(plaintext);
        message.extend_from_slice(&[0u8; TAG_LEN]);
        enc.seal_in_place(&mut message).unwrap();
        assert_eq!(open(&mut dec, &message).unwrap(), plaintext);
    }
}
