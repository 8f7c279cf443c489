//! The BOLT 8 handshake acts and the transport `Decryptor`
//! (`skywire_wire::noise`) on arbitrary bytes.
//!
//! Keys are fixed (BOLT 8 Appendix A's, with the Skywire prologue), so every
//! run is deterministic and the valid acts are constants, computed once.
//!
//! Input layout: `mode` byte, then per act a length byte and the act bytes,
//! then transport ops (see [`transport_ops`]).
//!
//! - `mode & 3 == 0`: responder side. Act one is read by
//!   `ResponderHandshake::read_act_one`; if it is the valid act one, act three
//!   is read by `read_act_three`; if that is valid too, the transport ops run
//!   on initiator → responder.
//! - `mode & 3 == 1`: initiator side. Act two is read by
//!   `InitiatorHandshake::read_act_two`; if valid, its act three goes to a real
//!   responder (which must accept it) and the transport ops run on
//!   responder → initiator.
//! - otherwise: a real handshake, then the transport ops on a direction
//!   chosen by `mode & 4`.
//!
//! With `mode & 0x80` the act bytes are XORed onto the valid act, so all-zero
//! input is the valid act and the fuzzer explores near it; without, they are
//! taken as is. A length byte below 0x80 means "the act's own length"; from
//! 0x80 up it is `len & 0x7f`, so wrong lengths are explored too.
//!
//! Checks, besides "never panics": the valid acts are accepted and wrong
//! lengths rejected with `ActReadFailed`; the responder learns the
//! initiator's static key; in the transport, every message sealed and
//! delivered unaltered opens to its plaintext, every altered one fails with
//! `BadTag`, and misuse or foreign bytes give the documented error and leave
//! the state and the buffer intact.
#![no_main]

use std::collections::VecDeque;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use secp256k1::{PublicKey, SecretKey};
use skywire_fuzz::Input;
use skywire_wire::noise::{
    ACT_ONE_LEN, ACT_THREE_LEN, ACT_TWO_LEN, Decryptor, Encryptor, HandshakeError,
    InitiatorHandshake, LENGTH_HEADER_LEN, MAX_MESSAGE_LEN, PROLOGUE, ResponderHandshake, TAG_LEN,
    Transport, TransportError, sealed_len,
};

fn key(byte: u8) -> SecretKey {
    SecretKey::from_secret_bytes([byte; 32]).expect("valid secret key")
}

fn initiator_static() -> SecretKey {
    key(0x11)
}
fn initiator_ephemeral() -> SecretKey {
    key(0x12)
}
fn responder_static() -> SecretKey {
    key(0x21)
}
fn responder_ephemeral() -> SecretKey {
    key(0x22)
}

fn initiator() -> (InitiatorHandshake, [u8; ACT_ONE_LEN]) {
    InitiatorHandshake::new(
        PROLOGUE,
        &initiator_static(),
        &responder_static().public_key(),
        initiator_ephemeral(),
    )
}

fn responder() -> ResponderHandshake {
    ResponderHandshake::new(PROLOGUE, &responder_static(), responder_ephemeral())
}

/// The three acts of the handshake with the fixed keys.
struct ValidActs {
    one: [u8; ACT_ONE_LEN],
    two: [u8; ACT_TWO_LEN],
    three: [u8; ACT_THREE_LEN],
    initiator_public: PublicKey,
}

fn valid_acts() -> &'static ValidActs {
    static ACTS: OnceLock<ValidActs> = OnceLock::new();
    ACTS.get_or_init(|| {
        let (init, one) = initiator();
        let (resp, two) = responder().read_act_one(&one).expect("valid act one");
        let (three, _) = init.read_act_two(&two).expect("valid act two");
        resp.read_act_three(&three).expect("valid act three");
        ValidActs {
            one,
            two,
            three,
            initiator_public: initiator_static().public_key(),
        }
    })
}

/// An act: its length from a length byte, its bytes raw or XORed onto
/// `valid`.
fn act(input: &mut Input<'_>, valid: &[u8], xor: bool) -> Vec<u8> {
    let len_byte = input.u8();
    let len = if len_byte < 0x80 {
        valid.len()
    } else {
        usize::from(len_byte & 0x7f)
    };
    let mut act = input.take(len).to_vec();
    act.resize(len, 0);
    if xor {
        for (a, v) in act.iter_mut().zip(valid) {
            *a ^= v;
        }
    }
    act
}

fn expect_wrong_length(
    result: Result<impl Sized, HandshakeError>,
    act_no: u8,
    got: usize,
    expected: usize,
) {
    match result {
        Err(HandshakeError::ActReadFailed {
            act,
            got: g,
            expected: e,
        }) => {
            assert_eq!((act, g, e), (act_no, got, expected));
        }
        Err(other) => panic!("act {act_no} of {got} bytes: {other:?}, expected ActReadFailed"),
        Ok(_) => panic!("act {act_no} of {got} bytes accepted"),
    }
}

fn check_act_error(err: HandshakeError, act_no: u8, act: &[u8]) {
    match err {
        HandshakeError::ActReadFailed { act: a, got, .. } => {
            assert_eq!(a, act_no);
            assert_eq!(got, act.len());
        }
        HandshakeError::BadVersion { act: a, version } => {
            assert_eq!(a, act_no);
            assert_eq!(version, act[0]);
            assert_ne!(version, 0);
        }
        HandshakeError::BadPubkey { act: a } | HandshakeError::BadTag { act: a } => {
            assert_eq!(a, act_no)
        }
        HandshakeError::BadCiphertext => assert_eq!(act_no, 3),
    }
}

fuzz_target!(|data: &[u8]| {
    let acts = valid_acts();
    let mut input = Input::new(data);
    let mode = input.u8();
    let xor = mode & 0x80 != 0;

    match mode & 3 {
        0 => {
            // Responder: act one, then act three.
            let act_one = act(&mut input, &acts.one, xor);
            let result = responder().read_act_one(&act_one);
            if act_one.len() != ACT_ONE_LEN {
                return expect_wrong_length(result, 1, act_one.len(), ACT_ONE_LEN);
            }
            let (awaiting, act_two) = match result {
                Ok(ok) => ok,
                Err(e) => {
                    assert_ne!(act_one, acts.one, "valid act one rejected: {e:?}");
                    return check_act_error(e, 1, &act_one);
                }
            };
            if act_one != acts.one {
                // Only an initiator knowing an ephemeral key can make an act
                // one that authenticates; the fuzzer is not expected to.
                return;
            }
            assert_eq!(act_two, acts.two, "act two is not deterministic");
            let act_three = act(&mut input, &acts.three, xor);
            let result = awaiting.read_act_three(&act_three);
            if act_three.len() != ACT_THREE_LEN {
                return expect_wrong_length(result, 3, act_three.len(), ACT_THREE_LEN);
            }
            match result {
                Ok((remote, transport)) => {
                    if act_three != acts.three {
                        // Another initiator's act three; not one the fuzzer
                        // can make without its key.
                        assert_ne!(remote, acts.initiator_public);
                        return;
                    }
                    assert_eq!(remote, acts.initiator_public);
                    let (init, _) = initiator();
                    let (_, init_transport) = init.read_act_two(&acts.two).expect("valid act two");
                    transport_ops(&mut input, init_transport, transport);
                }
                Err(e) => {
                    assert_ne!(act_three, acts.three, "valid act three rejected: {e:?}");
                    check_act_error(e, 3, &act_three);
                }
            }
        }
        1 => {
            // Initiator: act two.
            let (init, act_one) = initiator();
            assert_eq!(act_one, acts.one, "act one is not deterministic");
            let act_two = act(&mut input, &acts.two, xor);
            let result = init.read_act_two(&act_two);
            if act_two.len() != ACT_TWO_LEN {
                return expect_wrong_length(result, 2, act_two.len(), ACT_TWO_LEN);
            }
            match result {
                Ok((act_three, transport)) => {
                    if act_two != acts.two {
                        return;
                    }
                    assert_eq!(act_three, acts.three, "act three is not deterministic");
                    let (awaiting, _) = responder().read_act_one(&acts.one).expect("valid act one");
                    let (remote, resp_transport) = awaiting
                        .read_act_three(&act_three)
                        .expect("real act three rejected");
                    assert_eq!(remote, acts.initiator_public);
                    transport_ops(&mut input, resp_transport, transport);
                }
                Err(e) => {
                    assert_ne!(act_two, acts.two, "valid act two rejected: {e:?}");
                    check_act_error(e, 2, &act_two);
                }
            }
        }
        _ => {
            let (init, act_one) = initiator();
            let (awaiting, act_two) = responder().read_act_one(&act_one).expect("valid act one");
            let (act_three, init_transport) = init.read_act_two(&act_two).expect("valid act two");
            let (_, resp_transport) = awaiting
                .read_act_three(&act_three)
                .expect("valid act three");
            if mode & 4 == 0 {
                transport_ops(&mut input, init_transport, resp_transport);
            } else {
                transport_ops(&mut input, resp_transport, init_transport);
            }
        }
    }
});

/// One sealed message on the simulated wire.
struct Sealed {
    header: [u8; LENGTH_HEADER_LEN],
    body: Vec<u8>,
    plaintext: Vec<u8>,
    /// XOR of all the flips applied to the header and the body; two flips
    /// can cancel out, so "tampered" means a nonzero byte here.
    header_flips: [u8; LENGTH_HEADER_LEN],
    body_flips: Vec<u8>,
}

impl Sealed {
    fn tampered_header(&self) -> bool {
        self.header_flips.iter().any(|&b| b != 0)
    }

    fn tampered_body(&self) -> bool {
        self.body_flips.iter().any(|&b| b != 0)
    }
}

/// What the harness knows about the decryptor.
///
/// `pending` mirrors the decryptor's own state exactly (it follows from the
/// results, which the API documents), so misuse errors are always checked.
/// `synced` says whether the decryptor's nonce matches the front of the
/// wire: only then must untouched messages open and touched ones fail. It is
/// lost when a tampered message is rejected (the nonces no longer line up),
/// and when raw input bytes authenticate: keys are fixed, so the fuzzer can
/// replay a genuine ciphertext learnt from an earlier run (libFuzzer picks
/// up byte strings from comparisons), which is not a forgery.
struct Model {
    wire: VecDeque<Sealed>,
    /// Length announced by the header opened last, whose body is not opened.
    pending: Option<usize>,
    synced: bool,
    sealed: usize,
}

/// Messages sealed per input at most: two key rotations (a key lasts 500
/// messages), while keeping runs short.
const MAX_SEALED: usize = 1100;

/// Plaintext bytes for a message of `len` bytes.
fn plaintext(input: &mut Input<'_>, len: usize) -> Vec<u8> {
    let mut p = input.take(len.min(64)).to_vec();
    p.extend((p.len()..len).map(|i| i as u8));
    p
}

fn seal(enc: &mut Encryptor, model: &mut Model, plaintext: Vec<u8>) {
    model.sealed += 1;
    let mut out = vec![0xee; 3]; // seal_into appends
    match enc.seal_into(&plaintext, &mut out) {
        Ok(()) => {
            assert!(plaintext.len() <= MAX_MESSAGE_LEN);
            assert_eq!(out.len(), 3 + sealed_len(plaintext.len()));
            assert_eq!(out[..3], [0xee; 3], "seal_into overwrote existing bytes");
            let header: [u8; LENGTH_HEADER_LEN] =
                out[3..3 + LENGTH_HEADER_LEN].try_into().expect("18 bytes");
            let body = out[3 + LENGTH_HEADER_LEN..].to_vec();
            let body_flips = vec![0; body.len()];
            model.wire.push_back(Sealed {
                header,
                body,
                plaintext,
                header_flips: [0; LENGTH_HEADER_LEN],
                body_flips,
            });
        }
        Err(TransportError::MessageTooLong { len, max }) => {
            assert_eq!((len, max), (plaintext.len(), MAX_MESSAGE_LEN));
            assert!(plaintext.len() > MAX_MESSAGE_LEN);
            assert_eq!(out, [0xee; 3], "failed seal_into wrote bytes");
        }
        Err(e) => panic!("seal_into: {e:?}"),
    }
}

/// `open_length` on `header`, checking what the API promises whatever the
/// bytes; returns the result.
fn open_length(
    dec: &mut Decryptor,
    model: &mut Model,
    header: &[u8; LENGTH_HEADER_LEN],
) -> Result<usize, TransportError> {
    let result = dec.open_length(header);
    match (model.pending, result) {
        (Some(len), r) => assert_eq!(r, Err(TransportError::BodyPending { len })),
        (None, Ok(len)) => model.pending = Some(len),
        (None, Err(e)) => assert_eq!(e, TransportError::BadTag),
    }
    result
}

/// `open_body_in_place` on `body`, checking what the API promises whatever
/// the bytes; returns the result.
fn open_body(
    dec: &mut Decryptor,
    model: &mut Model,
    body: &mut [u8],
) -> Result<usize, TransportError> {
    let copy = body.to_vec();
    let result = dec.open_body_in_place(body);
    match (model.pending, result) {
        (None, r) => assert_eq!(r, Err(TransportError::NoPendingBody)),
        (Some(len), r) if copy.len() != len + TAG_LEN => assert_eq!(
            r,
            Err(TransportError::BodyLengthMismatch {
                expected: len + TAG_LEN,
                got: copy.len()
            })
        ),
        (Some(len), Ok(l)) => {
            assert_eq!(l, len);
            model.pending = None;
        }
        (Some(_), Err(e)) => assert_eq!(e, TransportError::BadTag),
    }
    if result.is_err() {
        assert_eq!(body, &copy[..], "failed open changed the buffer");
    }
    result
}

/// Opens the header of the next message on the wire.
fn deliver_header(dec: &mut Decryptor, model: &mut Model) {
    let Some(front) = model.wire.front() else {
        return;
    };
    let header = front.header;
    let (tampered, expected_len) = (front.tampered_header(), front.plaintext.len());
    let was_pending = model.pending.is_some();
    let result = open_length(dec, model, &header);
    if was_pending {
        return;
    }
    if model.synced {
        if tampered {
            assert_eq!(result, Err(TransportError::BadTag), "tampered header");
        } else {
            assert_eq!(result, Ok(expected_len), "valid header");
        }
    }
    if result.is_err() {
        // This message can never be opened now.
        model.synced = false;
        model.wire.pop_front();
    }
}

/// Opens the body of the next message on the wire, whose header was opened.
fn deliver_body(dec: &mut Decryptor, model: &mut Model) {
    let Some(len) = model.pending else {
        let mut buf = [0u8; TAG_LEN];
        let _ = open_body(dec, model, &mut buf);
        return;
    };
    let Some(front) = model.wire.pop_front() else {
        // Only after a replayed header: no message of ours is pending.
        assert!(!model.synced);
        let mut body = vec![0; len + TAG_LEN];
        let _ = open_body(dec, model, &mut body);
        return;
    };
    let mut body = front.body.clone();
    let result = open_body(dec, model, &mut body);
    if !model.synced {
        return;
    }
    if front.tampered_body() {
        assert_eq!(result, Err(TransportError::BadTag), "tampered body");
        model.synced = false;
    } else {
        assert_eq!(result, Ok(len), "valid body");
        assert_eq!(&body[..len], &front.plaintext[..], "plaintext differs");
    }
}

/// Transport ops, `enc` sealing and `dec` opening:
///
/// - 0: seal a message (length: u16, plus 65536 if the next byte is odd);
/// - 1: seal and deliver `n` empty or short messages (key rotation);
/// - 2: open the next header on the wire;
/// - 3: open the next body on the wire;
/// - 4: flip bits in a message still on the wire;
/// - 5: `open_length` on 18 raw input bytes;
/// - 6: `open_body_in_place` on raw input bytes.
fn transport_ops(input: &mut Input<'_>, transport_a: Transport, transport_b: Transport) {
    let (mut enc, _) = transport_a.into_split();
    let (_, mut dec) = transport_b.into_split();
    let mut model = Model {
        wire: VecDeque::new(),
        pending: None,
        synced: true,
        sealed: 0,
    };
    let mut ops = 0;
    while !input.is_empty() && ops < 2048 {
        ops += 1;
        match input.u8() % 7 {
            0 => {
                let len = usize::from(input.u16()) + if input.u8() & 1 == 1 { 1 << 16 } else { 0 };
                let p = plaintext(input, len);
                seal(&mut enc, &mut model, p);
            }
            1 => {
                if model.pending.is_some() || !model.wire.is_empty() || !model.synced {
                    continue;
                }
                let n = usize::from(input.u8());
                let len = usize::from(input.u8() % 8);
                for _ in 0..n.min(MAX_SEALED.saturating_sub(model.sealed)) {
                    seal(&mut enc, &mut model, vec![0x5a; len]);
                    deliver_header(&mut dec, &mut model);
                    deliver_body(&mut dec, &mut model);
                }
            }
            2 => deliver_header(&mut dec, &mut model),
            3 => deliver_body(&mut dec, &mut model),
            4 => {
                let Some(i) =
                    (!model.wire.is_empty()).then(|| usize::from(input.u8()) % model.wire.len())
                else {
                    continue;
                };
                // The message whose header is already open cannot have its
                // header altered any more.
                let header_open = i == 0 && model.pending.is_some();
                let m = &mut model.wire[i];
                let pos = usize::from(input.u16());
                let mask = input.u8() | 1;
                let total = LENGTH_HEADER_LEN + m.body.len();
                let pos = if header_open {
                    LENGTH_HEADER_LEN + pos % m.body.len()
                } else {
                    pos % total
                };
                if pos < LENGTH_HEADER_LEN {
                    m.header[pos] ^= mask;
                    m.header_flips[pos] ^= mask;
                } else {
                    m.body[pos - LENGTH_HEADER_LEN] ^= mask;
                    m.body_flips[pos - LENGTH_HEADER_LEN] ^= mask;
                }
            }
            5 => {
                let mut header = [0u8; LENGTH_HEADER_LEN];
                let raw = input.take(LENGTH_HEADER_LEN);
                header[..raw.len()].copy_from_slice(raw);
                let was_pending = model.pending.is_some();
                let genuine = model
                    .wire
                    .front()
                    .is_some_and(|m| !m.tampered_header() && m.header == header);
                let result = open_length(&mut dec, &mut model, &header);
                if !was_pending && model.synced {
                    if genuine {
                        assert!(result.is_ok(), "the next genuine header was rejected");
                    } else if result.is_ok() {
                        // A replay, see `Model`.
                        model.synced = false;
                    }
                }
            }
            _ => {
                let len = usize::from(input.u16());
                let mut body = input.take(len).to_vec();
                if input.u8() & 1 == 1 {
                    // Exactly the expected length, to reach the tag check.
                    body.resize(model.pending.map_or(0, |l| l + TAG_LEN), 0);
                }
                let was_pending = model.pending.is_some();
                let genuine = was_pending
                    && model
                        .wire
                        .front()
                        .is_some_and(|m| !m.tampered_body() && m.body == body);
                let result = open_body(&mut dec, &mut model, &mut body);
                if genuine && model.synced {
                    assert!(result.is_ok(), "the next genuine body was rejected");
                }
                if result.is_ok() {
                    // The front message's body is consumed or superseded.
                    let front = model.wire.pop_front();
                    if !genuine {
                        model.synced = false;
                    } else if let Some(front) = front {
                        assert_eq!(&body[..front.plaintext.len()], &front.plaintext[..]);
                    }
                }
            }
        }
    }
    // A stream still in sync delivers everything left, in order.
    while model.synced && !model.wire.is_empty() {
        if model.pending.is_none() {
            deliver_header(&mut dec, &mut model);
        }
        if model.pending.is_some() {
            deliver_body(&mut dec, &mut model);
        }
    }
}
