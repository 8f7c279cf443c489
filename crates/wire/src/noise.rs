//! The BOLT 8 handshake and transport encryption, sans-IO.
//!
//! This module implements `Noise_XK_secp256k1_ChaChaPoly_SHA256` exactly as
//! [BOLT 8] specifies it, with one deliberate change: the prologue is a
//! parameter. Skywire uses [`PROLOGUE`] (`skywire/1`); passing `b"lightning"`
//! reproduces Lightning's transport bit for bit (that is how the BOLT 8 test
//! vectors are checked). Peers with different prologues cannot complete a
//! handshake: the responder rejects act one with [`HandshakeError::BadTag`].
//!
//! Nothing here performs IO. The caller moves bytes between the socket and
//! these state machines:
//!
//! 1. The initiator, which must already know the responder's static public
//!    key, creates an [`InitiatorHandshake`] and sends act one
//!    ([`ACT_ONE_LEN`] bytes).
//! 2. The responder creates a [`ResponderHandshake`], reads exactly
//!    [`ACT_ONE_LEN`] bytes, and answers with act two ([`ACT_TWO_LEN`] bytes)
//!    from [`ResponderHandshake::read_act_one`].
//! 3. The initiator reads act two and gets act three ([`ACT_THREE_LEN`] bytes)
//!    and its [`Transport`] from [`InitiatorHandshake::read_act_two`].
//! 4. The responder reads act three and gets the initiator's static public
//!    key and its [`Transport`] from [`ResponderAwaitingActThree::read_act_three`].
//!
//! Each handshake state is its own type and each step consumes it, so the acts
//! cannot be processed out of order or twice. Every handshake error is final:
//! the connection must be closed.
//!
//! A [`Transport`] splits into an [`Encryptor`] and a [`Decryptor`] that can
//! live in different tasks. A message on the wire is an encrypted 2-byte
//! big-endian length with its own tag ([`LENGTH_HEADER_LEN`] bytes), then the
//! encrypted body and its tag ([`TAG_LEN`] bytes). Each direction rotates its
//! key every 1000 nonces (500 messages), as BOLT 8 requires.
//!
//! Chaining keys, cipher keys and secret keys held by these types are erased
//! when they are dropped, and their `Debug` output never includes key
//! material. (The short-lived cipher instances built for each encryption are
//! not wiped: `chacha20poly1305` is built without its `zeroize` feature.)
//!
//! # Example
//!
//! ```
//! use secp256k1::SecretKey;
//! use skywire_wire::noise::{
//!     InitiatorHandshake, LENGTH_HEADER_LEN, PROLOGUE, ResponderHandshake, TAG_LEN,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut rng = rand::rng();
//! let alice = SecretKey::new(&mut rng);
//! let bob = SecretKey::new(&mut rng);
//!
//! let (initiator, act_one) =
//!     InitiatorHandshake::new(PROLOGUE, &alice, &bob.public_key(), SecretKey::new(&mut rng));
//! let responder = ResponderHandshake::new(PROLOGUE, &bob, SecretKey::new(&mut rng));
//! let (responder, act_two) = responder.read_act_one(&act_one)?;
//! let (act_three, alice_transport) = initiator.read_act_two(&act_two)?;
//! let (alice_public, bob_transport) = responder.read_act_three(&act_three)?;
//! assert_eq!(alice_public, alice.public_key());
//!
//! let (mut alice_tx, _alice_rx) = alice_transport.into_split();
//! let (_bob_tx, mut bob_rx) = bob_transport.into_split();
//!
//! let mut wire = Vec::new();
//! alice_tx.seal_into(b"hello", &mut wire)?;
//! let (header, body) = wire.split_at_mut(LENGTH_HEADER_LEN);
//! let header: &[u8; LENGTH_HEADER_LEN] = (&*header).try_into()?;
//! let len = bob_rx.open_length(header)?;
//! assert_eq!(body.len(), len + TAG_LEN);
//! let len = bob_rx.open_body_in_place(body)?;
//! assert_eq!(&body[..len], b"hello");
//! # Ok(())
//! # }
//! ```
//!
//! [BOLT 8]: https://github.com/lightning/bolts/blob/master/08-transport.md

use std::fmt;

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{ChaCha20Poly1305, Key, KeyInit, Nonce, Tag};
use hkdf::Hkdf;
use secp256k1::ecdh::SharedSecret;
use secp256k1::{PublicKey, SecretKey};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

/// The prologue Skywire mixes into every handshake (`skywire/1`).
///
/// BOLT 8 uses `lightning`; a different prologue makes the two protocols
/// mutually unintelligible on purpose.
pub const PROLOGUE: &[u8] = b"skywire/1";

/// Length in bytes of act one: version, ephemeral public key, tag.
pub const ACT_ONE_LEN: usize = 1 + PUBLIC_KEY_LEN + TAG_LEN;

/// Length in bytes of act two: version, ephemeral public key, tag.
pub const ACT_TWO_LEN: usize = 1 + PUBLIC_KEY_LEN + TAG_LEN;

/// Length in bytes of act three: version, encrypted static public key and its
/// tag, final tag.
pub const ACT_THREE_LEN: usize = 1 + PUBLIC_KEY_LEN + TAG_LEN + TAG_LEN;

/// Largest plaintext a single transport message can carry, in bytes.
pub const MAX_MESSAGE_LEN: usize = u16::MAX as usize;

/// Length in bytes of an encrypted length header: the 2-byte length and its tag.
pub const LENGTH_HEADER_LEN: usize = 2 + TAG_LEN;

/// Length in bytes of a ChaCha20-Poly1305 authentication tag.
pub const TAG_LEN: usize = 16;

/// The Noise protocol name, hashed to initialise the handshake.
const PROTOCOL_NAME: &[u8] = b"Noise_XK_secp256k1_ChaChaPoly_SHA256";

/// The only handshake version BOLT 8 defines.
const HANDSHAKE_VERSION: u8 = 0;

/// Length in bytes of a compressed secp256k1 public key.
const PUBLIC_KEY_LEN: usize = 33;

// Acts one and two share a layout and the code that reads and writes them.
const _: () = assert!(ACT_ONE_LEN == ACT_TWO_LEN);

/// Nonces a transport key encrypts or decrypts with before it is rotated.
const KEY_ROTATION_INTERVAL: u64 = 1000;

/// Number of bytes [`Encryptor::seal_into`] appends for a plaintext of
/// `plaintext_len` bytes: the length header, the body and the body's tag.
#[must_use]
pub const fn sealed_len(plaintext_len: usize) -> usize {
    LENGTH_HEADER_LEN + plaintext_len + TAG_LEN
}

/// Why a handshake failed. Every failure is final: close the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The act did not have the length BOLT 8 prescribes for it.
    #[error("handshake act {act}: got {got} bytes, expected {expected}")]
    ActReadFailed {
        /// The act (1, 2 or 3).
        act: u8,
        /// Number of bytes supplied.
        got: usize,
        /// Number of bytes the act must have.
        expected: usize,
    },
    /// The act's leading version byte was not 0.
    #[error("handshake act {act}: unsupported version {version}")]
    BadVersion {
        /// The act (1, 2 or 3).
        act: u8,
        /// The version byte received.
        version: u8,
    },
    /// The public key carried by the act (the remote ephemeral key in acts 1
    /// and 2, the remote static key in act 3) is not a valid compressed
    /// secp256k1 point.
    #[error("handshake act {act}: invalid public key")]
    BadPubkey {
        /// The act (1, 2 or 3).
        act: u8,
    },
    /// The act's final authentication tag did not verify. In act 1 this is
    /// also what a wrong responder static key or a different prologue looks
    /// like.
    #[error("handshake act {act}: authentication tag mismatch")]
    BadTag {
        /// The act (1, 2 or 3).
        act: u8,
    },
    /// The encrypted static public key in act 3 failed authentication.
    #[error("handshake act 3: encrypted static key failed authentication")]
    BadCiphertext,
}

/// Why sealing or opening a transport message failed.
///
/// After [`TransportError::BadTag`] the stream cannot be trusted any more and
/// the connection must be closed. The other variants report misuse and leave
/// the state unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The buffer given to [`Encryptor::seal_in_place`] has no room for the
    /// length header and the tag.
    #[error(
        "{len} bytes leave no room for the {LENGTH_HEADER_LEN}-byte header and {TAG_LEN}-byte tag"
    )]
    NoRoom {
        /// Length of the buffer.
        len: usize,
    },
    /// The plaintext is longer than [`MAX_MESSAGE_LEN`]; nothing was written.
    #[error("message of {len} bytes exceeds the maximum of {max}")]
    MessageTooLong {
        /// Length of the refused plaintext.
        len: usize,
        /// The maximum, [`MAX_MESSAGE_LEN`].
        max: usize,
    },
    /// A length header or body failed authentication: it was corrupted,
    /// forged, replayed or reordered.
    #[error("transport message failed authentication")]
    BadTag,
    /// [`Decryptor::open_length`] was called while the body of the previous
    /// header had not been opened yet.
    #[error("length header opened while a {len}-byte body is still pending")]
    BodyPending {
        /// Plaintext length announced by the pending header.
        len: usize,
    },
    /// [`Decryptor::open_body_in_place`] was called without a preceding
    /// successful [`Decryptor::open_length`].
    #[error("message body opened without a length header")]
    NoPendingBody,
    /// The buffer passed to [`Decryptor::open_body_in_place`] is not exactly
    /// the announced plaintext length plus [`TAG_LEN`].
    #[error("message body and tag are {got} bytes, expected {expected}")]
    BodyLengthMismatch {
        /// Length the header announced, plus [`TAG_LEN`].
        expected: usize,
        /// Length of the buffer supplied.
        got: usize,
    },
}

/// Initiator after sending act one, waiting for act two.
pub struct InitiatorHandshake {
    state: SymmetricState,
    local_static: ErasedSecretKey,
    ephemeral: ErasedSecretKey,
}

impl InitiatorHandshake {
    /// Starts a handshake with the peer whose static public key is
    /// `remote_static`, returning the state and act one to send.
    ///
    /// `ephemeral` must be freshly generated from a cryptographically secure
    /// random source for every handshake and never reused; it is a parameter
    /// only so that tests can be deterministic.
    #[must_use]
    pub fn new(
        prologue: &[u8],
        local_static: &SecretKey,
        remote_static: &PublicKey,
        ephemeral: SecretKey,
    ) -> (Self, [u8; ACT_ONE_LEN]) {
        let mut state = SymmetricState::new(prologue, remote_static);
        let ephemeral = ErasedSecretKey(ephemeral);
        // es = ECDH(e.priv, rs)
        let (act_one, _temp_k1) = write_ephemeral_act(&mut state, &ephemeral.0, remote_static);
        let handshake = Self {
            state,
            local_static: ErasedSecretKey(*local_static),
            ephemeral,
        };
        (handshake, act_one)
    }

    /// Processes act two and returns act three, to send, with the transport.
    ///
    /// # Errors
    ///
    /// [`HandshakeError::ActReadFailed`], [`HandshakeError::BadVersion`],
    /// [`HandshakeError::BadPubkey`] or [`HandshakeError::BadTag`], all with
    /// `act: 2`.
    pub fn read_act_two(
        self,
        act: &[u8],
    ) -> Result<([u8; ACT_THREE_LEN], Transport), HandshakeError> {
        let Self {
            mut state,
            local_static,
            ephemeral,
        } = self;
        // ee = ECDH(e.priv, re)
        let (remote_ephemeral, temp_k2) = read_ephemeral_act(&mut state, 2, act, &ephemeral.0)?;

        let mut act_three = [0u8; ACT_THREE_LEN];
        act_three[0] = HANDSHAKE_VERSION;
        let (encrypted_static, final_tag) = act_three[1..].split_at_mut(PUBLIC_KEY_LEN + TAG_LEN);
        let (static_key, static_tag) = encrypted_static.split_at_mut(PUBLIC_KEY_LEN);
        static_key.copy_from_slice(&local_static.0.public_key().serialize());
        let tag = encrypt_with_ad(&temp_k2, 1, &state.h, static_key);
        static_tag.copy_from_slice(&tag);
        state.mix_hash(encrypted_static);

        // se = ECDH(s.priv, re)
        let temp_k3 = state.mix_key(&ecdh(&remote_ephemeral, &local_static.0));
        let tag = encrypt_with_ad(&temp_k3, 0, &state.h, &mut []);
        final_tag.copy_from_slice(&tag);

        let (initiator_to_responder, responder_to_initiator) = state.split();
        let transport = Transport::new(initiator_to_responder, responder_to_initiator);
        Ok((act_three, transport))
    }
}

impl fmt::Debug for InitiatorHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InitiatorHandshake")
            .field("awaiting", &"act two")
            .finish_non_exhaustive()
    }
}

/// Responder waiting for act one.
pub struct ResponderHandshake {
    state: SymmetricState,
    local_static: ErasedSecretKey,
    ephemeral: ErasedSecretKey,
}

impl ResponderHandshake {
    /// Prepares to accept a handshake as the owner of `local_static`.
    ///
    /// `ephemeral` must be freshly generated from a cryptographically secure
    /// random source for every handshake and never reused; it is a parameter
    /// only so that tests can be deterministic.
    #[must_use]
    pub fn new(prologue: &[u8], local_static: &SecretKey, ephemeral: SecretKey) -> Self {
        Self {
            state: SymmetricState::new(prologue, &local_static.public_key()),
            local_static: ErasedSecretKey(*local_static),
            ephemeral: ErasedSecretKey(ephemeral),
        }
    }

    /// Processes act one and returns the next state with act two, to send.
    ///
    /// # Errors
    ///
    /// [`HandshakeError::ActReadFailed`], [`HandshakeError::BadVersion`],
    /// [`HandshakeError::BadPubkey`] or [`HandshakeError::BadTag`], all with
    /// `act: 1`.
    pub fn read_act_one(
        self,
        act: &[u8],
    ) -> Result<(ResponderAwaitingActThree, [u8; ACT_TWO_LEN]), HandshakeError> {
        let Self {
            mut state,
            local_static,
            ephemeral,
        } = self;
        // es = ECDH(s.priv, re)
        let (remote_ephemeral, _temp_k1) = read_ephemeral_act(&mut state, 1, act, &local_static.0)?;
        // ee = ECDH(e.priv, re)
        let (act_two, temp_k2) = write_ephemeral_act(&mut state, &ephemeral.0, &remote_ephemeral);
        let next = ResponderAwaitingActThree {
            state,
            ephemeral,
            temp_k2,
        };
        Ok((next, act_two))
    }
}

impl fmt::Debug for ResponderHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponderHandshake")
            .field("awaiting", &"act one")
            .finish_non_exhaustive()
    }
}

/// Responder after sending act two, waiting for act three.
pub struct ResponderAwaitingActThree {
    state: SymmetricState,
    ephemeral: ErasedSecretKey,
    temp_k2: Zeroizing<[u8; 32]>,
}

impl ResponderAwaitingActThree {
    /// Processes act three and returns the initiator's static public key (its
    /// authenticated identity) with the transport.
    ///
    /// # Errors
    ///
    /// [`HandshakeError::ActReadFailed`], [`HandshakeError::BadVersion`],
    /// [`HandshakeError::BadCiphertext`], [`HandshakeError::BadPubkey`] or
    /// [`HandshakeError::BadTag`]; those with an `act` field have `act: 3`.
    pub fn read_act_three(self, act: &[u8]) -> Result<(PublicKey, Transport), HandshakeError> {
        let Self {
            mut state,
            ephemeral,
            temp_k2,
        } = self;
        let act: &[u8; ACT_THREE_LEN] =
            act.try_into().map_err(|_| HandshakeError::ActReadFailed {
                act: 3,
                got: act.len(),
                expected: ACT_THREE_LEN,
            })?;
        if act[0] != HANDSHAKE_VERSION {
            return Err(HandshakeError::BadVersion {
                act: 3,
                version: act[0],
            });
        }
        let (encrypted_static, final_tag) = act[1..].split_at(PUBLIC_KEY_LEN + TAG_LEN);
        let (static_ciphertext, static_tag) = encrypted_static.split_at(PUBLIC_KEY_LEN);

        let mut static_key = [0u8; PUBLIC_KEY_LEN];
        static_key.copy_from_slice(static_ciphertext);
        decrypt_with_ad(&temp_k2, 1, &state.h, &mut static_key, static_tag)
            .map_err(|AuthenticationFailed| HandshakeError::BadCiphertext)?;
        let remote_static = PublicKey::from_byte_array_compressed(static_key)
            .map_err(|_| HandshakeError::BadPubkey { act: 3 })?;
        state.mix_hash(encrypted_static);

        // se = ECDH(e.priv, rs)
        let temp_k3 = state.mix_key(&ecdh(&remote_static, &ephemeral.0));
        decrypt_with_ad(&temp_k3, 0, &state.h, &mut [], final_tag)
            .map_err(|AuthenticationFailed| HandshakeError::BadTag { act: 3 })?;

        let (initiator_to_responder, responder_to_initiator) = state.split();
        let transport = Transport::new(responder_to_initiator, initiator_to_responder);
        Ok((remote_static, transport))
    }
}

impl fmt::Debug for ResponderAwaitingActThree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponderAwaitingActThree")
            .field("awaiting", &"act three")
            .finish_non_exhaustive()
    }
}

/// An established BOLT 8 session: both directions' keys.
///
/// Split it with [`Transport::into_split`] to send and receive.
#[derive(Debug)]
pub struct Transport {
    encryptor: Encryptor,
    decryptor: Decryptor,
}

impl Transport {
    /// A transport that sends with `send` and receives with `recv`.
    fn new(send: CipherState, recv: CipherState) -> Self {
        Self {
            encryptor: Encryptor { cipher: send },
            decryptor: Decryptor {
                cipher: recv,
                pending_body: None,
            },
        }
    }

    /// Splits the session into its sending and receiving halves, which can be
    /// moved to different tasks.
    #[must_use]
    pub fn into_split(self) -> (Encryptor, Decryptor) {
        (self.encryptor, self.decryptor)
    }
}

/// The sending half of a [`Transport`].
pub struct Encryptor {
    cipher: CipherState,
}

impl Encryptor {
    /// Encrypts `plaintext` as one transport message and appends it to `out`:
    /// the encrypted length header followed by the encrypted body and its
    /// tag, `sealed_len(plaintext.len())` bytes in all (see [`sealed_len`]).
    /// The plaintext is copied into `out` once and encrypted there.
    ///
    /// # Errors
    ///
    /// [`TransportError::MessageTooLong`] if `plaintext` is longer than
    /// [`MAX_MESSAGE_LEN`]; `out` and the encryptor are then left unchanged.
    pub fn seal_into(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), TransportError> {
        if plaintext.len() > MAX_MESSAGE_LEN {
            return Err(TransportError::MessageTooLong {
                len: plaintext.len(),
                max: MAX_MESSAGE_LEN,
            });
        }
        let start = out.len();
        out.reserve(sealed_len(plaintext.len()));
        out.resize(start + LENGTH_HEADER_LEN, 0);
        out.extend_from_slice(plaintext);
        out.resize(out.len() + TAG_LEN, 0);
        self.seal_in_place(&mut out[start..])
    }

    /// Encrypts one transport message in place. `message` is laid out as
    /// [`LENGTH_HEADER_LEN`] bytes of room for the length header, the
    /// plaintext, then [`TAG_LEN`] bytes of room for the body's tag; on return
    /// it holds the sealed message. This lets a caller build frames directly
    /// in its output buffer and encrypt them without another copy.
    ///
    /// # Errors
    ///
    /// [`TransportError::NoRoom`] if `message` is shorter than the header and
    /// tag; [`TransportError::MessageTooLong`] if the plaintext is longer than
    /// [`MAX_MESSAGE_LEN`]. The encryptor is then left unchanged.
    pub fn seal_in_place(&mut self, message: &mut [u8]) -> Result<(), TransportError> {
        let plaintext_len = message
            .len()
            .checked_sub(LENGTH_HEADER_LEN + TAG_LEN)
            .ok_or(TransportError::NoRoom { len: message.len() })?;
        let len = u16::try_from(plaintext_len).map_err(|_| TransportError::MessageTooLong {
            len: plaintext_len,
            max: MAX_MESSAGE_LEN,
        })?;
        let (header, rest) = message.split_at_mut(LENGTH_HEADER_LEN);
        let (length, header_tag) = header.split_at_mut(2);
        length.copy_from_slice(&len.to_be_bytes());
        header_tag.copy_from_slice(&self.cipher.seal_in_place(length));
        let (body, body_tag) = rest.split_at_mut(plaintext_len);
        body_tag.copy_from_slice(&self.cipher.seal_in_place(body));
        Ok(())
    }
}

impl fmt::Debug for Encryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encryptor")
            .field("nonce", &self.cipher.nonce)
            .finish_non_exhaustive()
    }
}

/// The receiving half of a [`Transport`].
///
/// Read [`LENGTH_HEADER_LEN`] bytes and pass them to
/// [`Decryptor::open_length`]; it returns the plaintext length `len`. Then
/// read `len` plus [`TAG_LEN`] bytes and pass them to
/// [`Decryptor::open_body_in_place`].
pub struct Decryptor {
    cipher: CipherState,
    /// Plaintext length announced by an opened header whose body is unread.
    pending_body: Option<usize>,
}

impl Decryptor {
    /// Authenticates and decrypts a length header, returning the length of
    /// the message body's plaintext. The body that follows on the wire is
    /// that many bytes plus [`TAG_LEN`].
    ///
    /// # Errors
    ///
    /// [`TransportError::BadTag`] if the header fails authentication;
    /// [`TransportError::BodyPending`] if the previous header's body has not
    /// been opened. The decryptor is unchanged on error.
    pub fn open_length(
        &mut self,
        header: &[u8; LENGTH_HEADER_LEN],
    ) -> Result<usize, TransportError> {
        if let Some(len) = self.pending_body {
            return Err(TransportError::BodyPending { len });
        }
        let (ciphertext, tag) = header.split_at(2);
        let mut len = [0u8; 2];
        len.copy_from_slice(ciphertext);
        self.cipher
            .open_in_place(&mut len, tag)
            .map_err(|AuthenticationFailed| TransportError::BadTag)?;
        let len = usize::from(u16::from_be_bytes(len));
        self.pending_body = Some(len);
        Ok(len)
    }

    /// Authenticates and decrypts, in place, the body announced by the last
    /// [`Decryptor::open_length`]. `body_and_tag` must be exactly the
    /// announced length plus [`TAG_LEN`] bytes; on success its first `len`
    /// bytes are the plaintext, and `len` is returned.
    ///
    /// # Errors
    ///
    /// [`TransportError::BadTag`] if the body fails authentication;
    /// [`TransportError::NoPendingBody`] without a preceding header;
    /// [`TransportError::BodyLengthMismatch`] if `body_and_tag` has the wrong
    /// length. The decryptor and `body_and_tag` are unchanged on error.
    pub fn open_body_in_place(&mut self, body_and_tag: &mut [u8]) -> Result<usize, TransportError> {
        let len = self.pending_body.ok_or(TransportError::NoPendingBody)?;
        let expected = len + TAG_LEN;
        if body_and_tag.len() != expected {
            return Err(TransportError::BodyLengthMismatch {
                expected,
                got: body_and_tag.len(),
            });
        }
        let (body, tag) = body_and_tag.split_at_mut(len);
        self.cipher
            .open_in_place(body, tag)
            .map_err(|AuthenticationFailed| TransportError::BadTag)?;
        self.pending_body = None;
        Ok(len)
    }
}

impl fmt::Debug for Decryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decryptor")
            .field("nonce", &self.cipher.nonce)
            .field("pending_body", &self.pending_body)
            .finish_non_exhaustive()
    }
}

/// A secret key that is erased when dropped.
struct ErasedSecretKey(SecretKey);

impl Drop for ErasedSecretKey {
    fn drop(&mut self) {
        self.0.non_secure_erase();
    }
}

/// The handshake's chaining key and transcript hash.
struct SymmetricState {
    ck: [u8; 32],
    h: [u8; 32],
}

impl SymmetricState {
    /// `h = SHA256(protocolName)`, `ck = h`, `h = SHA256(h || prologue)`,
    /// `h = SHA256(h || rs)` where `rs` is the responder's static key.
    fn new(prologue: &[u8], responder_static: &PublicKey) -> Self {
        let h: [u8; 32] = Sha256::digest(PROTOCOL_NAME).into();
        let mut state = Self { ck: h, h };
        state.mix_hash(prologue);
        state.mix_hash(&responder_static.serialize());
        state
    }

    /// `h = SHA256(h || data)`.
    fn mix_hash(&mut self, data: &[u8]) {
        self.h = Sha256::new()
            .chain_update(self.h)
            .chain_update(data)
            .finalize()
            .into();
    }

    /// `ck, temp_k = HKDF(ck, ss)` for an ECDH output `ss`; returns `temp_k`.
    fn mix_key(&mut self, ss: &[u8; 32]) -> Zeroizing<[u8; 32]> {
        let (ck, temp_k) = hkdf(&self.ck, ss);
        self.ck = *ck;
        temp_k
    }

    /// `k1, k2 = HKDF(ck, zero)`: the initiator-to-responder and
    /// responder-to-initiator transport keys, each with its own copy of `ck`.
    fn split(&self) -> (CipherState, CipherState) {
        let (k1, k2) = hkdf(&self.ck, &[]);
        (
            CipherState::new(self.ck, *k1),
            CipherState::new(self.ck, *k2),
        )
    }
}

impl Drop for SymmetricState {
    fn drop(&mut self) {
        self.ck.zeroize();
        self.h.zeroize();
    }
}

/// One direction of the transport: key, chaining key for rotation, nonce.
struct CipherState {
    ck: [u8; 32],
    k: [u8; 32],
    nonce: u64,
}

impl CipherState {
    const fn new(ck: [u8; 32], k: [u8; 32]) -> Self {
        Self { ck, k, nonce: 0 }
    }

    /// Encrypts `buf` in place with no associated data and the next nonce,
    /// returning the tag.
    fn seal_in_place(&mut self, buf: &mut [u8]) -> Tag {
        let tag = encrypt_with_ad(&self.k, self.nonce, &[], buf);
        self.advance();
        tag
    }

    /// Authenticates and decrypts `buf` in place with no associated data and
    /// the next nonce. On failure neither `buf` nor the state changes.
    fn open_in_place(&mut self, buf: &mut [u8], tag: &[u8]) -> Result<(), AuthenticationFailed> {
        decrypt_with_ad(&self.k, self.nonce, &[], buf, tag)?;
        self.advance();
        Ok(())
    }

    /// Consumes a nonce; after [`KEY_ROTATION_INTERVAL`] of them,
    /// `ck, k = HKDF(ck, k)` and the nonce restarts at 0.
    fn advance(&mut self) {
        self.nonce += 1;
        if self.nonce == KEY_ROTATION_INTERVAL {
            let (ck, k) = hkdf(&self.ck, &self.k);
            self.ck = *ck;
            self.k = *k;
            self.nonce = 0;
        }
    }
}

impl Drop for CipherState {
    fn drop(&mut self) {
        self.ck.zeroize();
        self.k.zeroize();
    }
}

/// A ChaCha20-Poly1305 tag did not verify.
#[derive(Debug, Clone, Copy)]
struct AuthenticationFailed;

/// BOLT 8's `HKDF(salt, ikm)`: HKDF-SHA256 with empty info, 64 bytes of
/// output split in two.
fn hkdf(salt: &[u8; 32], ikm: &[u8]) -> (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>) {
    let mut okm = Zeroizing::new([0u8; 64]);
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(&[], &mut okm[..])
        .expect("64 bytes is a valid HKDF-SHA256 output length");
    let mut first = Zeroizing::new([0u8; 32]);
    let mut second = Zeroizing::new([0u8; 32]);
    first.copy_from_slice(&okm[..32]);
    second.copy_from_slice(&okm[32..]);
    (first, second)
}

/// BOLT 8's `ECDH(k, rk)`: SHA256 of the compressed shared point.
fn ecdh(point: &PublicKey, scalar: &SecretKey) -> Zeroizing<[u8; 32]> {
    let mut shared = SharedSecret::new(point, scalar);
    let bytes = Zeroizing::new(shared.to_secret_bytes());
    shared.non_secure_erase();
    bytes
}

/// The 96-bit ChaCha20-Poly1305 nonce: 32 zero bits, then `n` little-endian.
fn nonce(n: u64) -> Nonce {
    let mut nonce = Nonce::default();
    nonce[4..].copy_from_slice(&n.to_le_bytes());
    nonce
}

/// `encryptWithAD(k, n, ad, buf)`, in place, returning the tag.
fn encrypt_with_ad(key: &[u8; 32], n: u64, ad: &[u8], buf: &mut [u8]) -> Tag {
    ChaCha20Poly1305::new(Key::from_slice(key))
        .encrypt_in_place_detached(&nonce(n), ad, buf)
        .expect("ChaCha20-Poly1305 only refuses plaintexts of 256 GiB or more")
}

/// `decryptWithAD(k, n, ad, buf || tag)`, in place. `tag` must be
/// [`TAG_LEN`] bytes. On failure `buf` is unchanged.
fn decrypt_with_ad(
    key: &[u8; 32],
    n: u64,
    ad: &[u8],
    buf: &mut [u8],
    tag: &[u8],
) -> Result<(), AuthenticationFailed> {
    ChaCha20Poly1305::new(Key::from_slice(key))
        .decrypt_in_place_detached(&nonce(n), ad, buf, Tag::from_slice(tag))
        .map_err(|_| AuthenticationFailed)
}

/// Writes act one or act two: `e.pub` is mixed into `h`,
/// `ck, temp_k = HKDF(ck, ECDH(e.priv, remote))`, and the act ends with the
/// tag of an empty plaintext under `temp_k`. Returns the act and `temp_k`.
fn write_ephemeral_act(
    state: &mut SymmetricState,
    ephemeral: &SecretKey,
    remote: &PublicKey,
) -> ([u8; ACT_ONE_LEN], Zeroizing<[u8; 32]>) {
    let mut act = [0u8; ACT_ONE_LEN];
    act[0] = HANDSHAKE_VERSION;
    let (ephemeral_public, tag) = act[1..].split_at_mut(PUBLIC_KEY_LEN);
    ephemeral_public.copy_from_slice(&ephemeral.public_key().serialize());
    state.mix_hash(ephemeral_public);
    let temp_k = state.mix_key(&ecdh(remote, ephemeral));
    tag.copy_from_slice(&encrypt_with_ad(&temp_k, 0, &state.h, &mut []));
    state.mix_hash(tag);
    (act, temp_k)
}

/// Reads act one or act two (numbered `act_number`), the mirror of
/// [`write_ephemeral_act`]: `local` is the key the sender's ephemeral key is
/// combined with. Returns the remote ephemeral key and `temp_k`.
fn read_ephemeral_act(
    state: &mut SymmetricState,
    act_number: u8,
    act: &[u8],
    local: &SecretKey,
) -> Result<(PublicKey, Zeroizing<[u8; 32]>), HandshakeError> {
    let act: &[u8; ACT_ONE_LEN] = act.try_into().map_err(|_| HandshakeError::ActReadFailed {
        act: act_number,
        got: act.len(),
        expected: ACT_ONE_LEN,
    })?;
    if act[0] != HANDSHAKE_VERSION {
        return Err(HandshakeError::BadVersion {
            act: act_number,
            version: act[0],
        });
    }
    let (ephemeral_public, tag) = act[1..].split_at(PUBLIC_KEY_LEN);
    let remote_ephemeral = PublicKey::from_slice(ephemeral_public)
        .map_err(|_| HandshakeError::BadPubkey { act: act_number })?;
    state.mix_hash(ephemeral_public);
    let temp_k = state.mix_key(&ecdh(&remote_ephemeral, local));
    decrypt_with_ad(&temp_k, 0, &state.h, &mut [], tag)
        .map_err(|AuthenticationFailed| HandshakeError::BadTag { act: act_number })?;
    state.mix_hash(tag);
    Ok((remote_ephemeral, temp_k))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn bytes32(s: &str) -> [u8; 32] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    fn secret(s: &str) -> SecretKey {
        SecretKey::from_secret_bytes(bytes32(s)).unwrap()
    }

    const LS_I: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const E_I: &str = "1212121212121212121212121212121212121212121212121212121212121212";
    const LS_R: &str = "2121212121212121212121212121212121212121212121212121212121212121";
    const E_R: &str = "2222222222222222222222222222222222222222222222222222222222222222";
    const CK_FINAL: &str = "919219dbb2920afa8db80f9a51787a840bcf111ed8d588caf9ab4be716e42b01";
    const SK_I: &str = "969ab31b4d288cedf6218839b27a3e2140827047f2c0f01bf5c04435d43511a9";
    const RK_I: &str = "bb9020b8965f4df047e07f955f3c4b88418984aadc5cdb35096b9ea8fa5c3442";

    /// Runs the Appendix A handshake; returns both sides' transports.
    fn vector_handshake() -> (Transport, Transport) {
        let responder_static = secret(LS_R);
        let (initiator, act_one) = InitiatorHandshake::new(
            b"lightning",
            &secret(LS_I),
            &responder_static.public_key(),
            secret(E_I),
        );
        let responder = ResponderHandshake::new(b"lightning", &responder_static, secret(E_R));
        let (responder, act_two) = responder.read_act_one(&act_one).unwrap();
        let (act_three, initiator) = initiator.read_act_two(&act_two).unwrap();
        let (_, responder) = responder.read_act_three(&act_three).unwrap();
        (initiator, responder)
    }

    #[test]
    fn noise_initial_state_matches_vector() {
        let rs = secret(LS_R).public_key();
        let mut state = SymmetricState::new(b"lightning", &rs);
        assert_eq!(
            state.ck,
            bytes32("2640f52eebcd9e882958951c794250eedb28002c05d7dc2ea0f195406042caf1")
        );
        state.mix_hash(&secret(E_I).public_key().serialize());
        assert_eq!(
            state.h,
            bytes32("9e0e7de8bb75554f21db034633de04be41a2b8a18da7a319a03c803bf02b396c")
        );
    }

    #[test]
    fn noise_ecdh_and_hkdf_match_vector() {
        let ss = ecdh(&secret(LS_R).public_key(), &secret(E_I));
        assert_eq!(
            *ss,
            bytes32("1e2fb3c8fe8fb9f262f649f64d26ecf0f2c0a805a767cf02dc2d77a6ef1fdcc3")
        );
        let (ck, temp_k1) = hkdf(
            &bytes32("2640f52eebcd9e882958951c794250eedb28002c05d7dc2ea0f195406042caf1"),
            &*ss,
        );
        assert_eq!(
            *ck,
            bytes32("b61ec1191326fa240decc9564369dbb3ae2b34341d1e11ad64ed89f89180582f")
        );
        assert_eq!(
            *temp_k1,
            bytes32("e68f69b7f096d7917245f5e5cf8ae1595febe4d4644333c99f9c4a1282031c9f")
        );
    }

    #[test]
    fn noise_final_keys_match_vector() {
        let (initiator, responder) = vector_handshake();
        for (cipher, ck, k) in [
            (&initiator.encryptor.cipher, CK_FINAL, SK_I),
            (&initiator.decryptor.cipher, CK_FINAL, RK_I),
            (&responder.encryptor.cipher, CK_FINAL, RK_I),
            (&responder.decryptor.cipher, CK_FINAL, SK_I),
        ] {
            assert_eq!(cipher.ck, bytes32(ck));
            assert_eq!(cipher.k, bytes32(k));
            assert_eq!(cipher.nonce, 0);
        }
    }

    #[test]
    fn noise_key_rotation_matches_vector() {
        let mut cipher = CipherState::new(bytes32(CK_FINAL), bytes32(SK_I));
        for _ in 0..KEY_ROTATION_INTERVAL - 1 {
            cipher.advance();
        }
        assert_eq!(cipher.nonce, 999);
        assert_eq!(cipher.k, bytes32(SK_I));
        cipher.advance();
        assert_eq!(cipher.nonce, 0);
        assert_eq!(
            cipher.ck,
            bytes32("cc2c6e467efc8067720c2d09c139d1f77731893aad1defa14f9bf3c48d3f1d31")
        );
        assert_eq!(
            cipher.k,
            bytes32("3fbdc101abd1132ca3a0ae34a669d8d9ba69a587e0bb4ddd59524541cf4813d8")
        );
        for _ in 0..KEY_ROTATION_INTERVAL {
            cipher.advance();
        }
        assert_eq!(
            cipher.ck,
            bytes32("728366ed68565dc17cf6dd97330a859a6a56e87e2beef3bd828a4c4a54d8df06")
        );
        assert_eq!(
            cipher.k,
            bytes32("9e0477f9850dca41e42db0e4d154e3a098e5a000d995e421849fcd5df27882bd")
        );
    }

    #[test]
    fn noise_nonce_layout() {
        assert_eq!(nonce(0).as_slice(), &[0u8; 12]);
        assert_eq!(
            nonce(1).as_slice(),
            &[0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0][..]
        );
        assert_eq!(
            nonce(0x0102_0304_0506_0708).as_slice(),
            &[0, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1][..]
        );
    }

    #[test]
    fn noise_debug_never_prints_keys() {
        let (initiator, responder) = vector_handshake();
        let (tx, rx) = responder.into_split();
        let output = format!("{initiator:?} {tx:?} {rx:?}");
        for key in [CK_FINAL, SK_I, RK_I] {
            assert!(!output.contains(key), "{output}");
            assert!(!output.contains(&key[..8]), "{output}");
        }
        let (handshake, _) = InitiatorHandshake::new(
            PROLOGUE,
            &secret(LS_I),
            &secret(LS_R).public_key(),
            secret(E_I),
        );
        let output = format!(
            "{handshake:?} {:?}",
            ResponderHandshake::new(PROLOGUE, &secret(LS_R), secret(E_R))
        );
        for key in [LS_I, LS_R, E_I, E_R] {
            assert!(!output.contains(&key[..8]), "{output}");
        }
    }
}
