//! Skycoin's binary encoding (`cipher/encoder` and the generated `skyencoder` code).
//!
//! The rules, all of which the chain's hashes depend on:
//!
//! - integers are little-endian (`u8`, `u32`, `u64`); a bool is one byte, 0 or 1;
//! - fixed-size arrays (hashes, signatures, address keys) are their raw bytes, no prefix;
//! - a slice is a `u32` element count, then its elements; every slice in the chain's types
//!   holds at most [`MAX_LEN`] elements, checked when encoding *and* when decoding;
//! - struct fields follow in declaration order, with no tags or padding.
//!
//! [`Decoder::len_prefix`] checks a slice's count exactly as Skycoin's generated decoders do:
//! first the count is compared with the number of *bytes* left (a count larger than that is
//! [`DecodeError::Underflow`], even though the elements are larger than a byte), and only
//! then with [`MAX_LEN`] ([`DecodeError::MaxLenExceeded`]). Running out of bytes inside an
//! element is also `Underflow`. [`Decode::decode_exact`] refuses trailing bytes
//! ([`DecodeError::RemainingBytes`]), like Skycoin's `decodeXxxExact` functions.
//!
//! Decoding never panics and never allocates more than the input can fill: elements are
//! pushed one by one as they decode.

/// The most elements any slice in the chain's types may hold (`enc:",maxlen=65535"` on
/// transactions' signatures, inputs and outputs and on a block's transactions).
pub const MAX_LEN: usize = 65535;

/// Why bytes could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended early: a value needed more bytes than were left, or a slice's
    /// element count is larger than the number of bytes left (Skycoin's
    /// `ErrBufferUnderflow`).
    #[error("not enough bytes: needed {needed}, {remaining} left")]
    Underflow {
        /// Bytes the value needed; for a slice count, the count itself (each element takes
        /// at least one byte).
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },

    /// A slice's element count is above [`MAX_LEN`] (Skycoin's `ErrMaxLenExceeded`).
    #[error("slice of {len} elements, at most {max} allowed")]
    MaxLenExceeded {
        /// The count found.
        len: usize,
        /// The limit, [`MAX_LEN`].
        max: usize,
    },

    /// The value decoded but bytes were left over (Skycoin's `ErrRemainingBytes`).
    #[error("{remaining} bytes left after the value")]
    RemainingBytes {
        /// How many bytes were left.
        remaining: usize,
    },

    /// A bool was neither 0 nor 1 (Skycoin's `ErrInvalidBool`).
    #[error("invalid bool byte {got}")]
    InvalidBool {
        /// The byte found.
        got: u8,
    },

    /// An address carries a version byte other than 0.
    ///
    /// Skycoin's decoder accepts any version byte; [`skywire_identity::Address`] can only
    /// hold version 0, which is the only version Skycoin's own address parsing accepts. See
    /// [`crate::address`].
    #[error("address version {got}, only version 0 is supported")]
    UnknownAddressVersion {
        /// The version byte found.
        got: u8,
    },
}

/// Why a value could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A slice holds more than [`MAX_LEN`] elements (Skycoin's generated encoders refuse
    /// it with `ErrMaxLenExceeded`).
    #[error("slice of {len} elements, at most {max} allowed")]
    MaxLenExceeded {
        /// The slice's length.
        len: usize,
        /// The limit, [`MAX_LEN`].
        max: usize,
    },
}

/// A value with a Skycoin binary encoding.
pub trait Encode {
    /// Appends the encoding to `enc`.
    ///
    /// # Errors
    ///
    /// [`EncodeError::MaxLenExceeded`] if a slice holds more than [`MAX_LEN`] elements.
    fn encode_to(&self, enc: &mut Encoder) -> Result<(), EncodeError>;

    /// The length of the encoding, in bytes (whether or not it would pass the limits).
    fn encoded_len(&self) -> usize;

    /// The encoding.
    ///
    /// # Errors
    ///
    /// [`EncodeError::MaxLenExceeded`] if a slice holds more than [`MAX_LEN`] elements.
    fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut enc = Encoder::with_capacity(self.encoded_len());
        self.encode_to(&mut enc)?;
        Ok(enc.finish())
    }
}

/// A value that can be decoded from its Skycoin binary encoding.
pub trait Decode: Sized {
    /// Decodes one value from the front of `dec`.
    ///
    /// # Errors
    ///
    /// [`DecodeError::Underflow`], [`DecodeError::MaxLenExceeded`], or a value-specific
    /// error such as [`DecodeError::UnknownAddressVersion`].
    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError>;

    /// Decodes a value that must take exactly all of `bytes`.
    ///
    /// # Errors
    ///
    /// Those of [`Decode::decode_from`], and [`DecodeError::RemainingBytes`] if bytes are
    /// left over.
    fn decode_exact(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut dec = Decoder::new(bytes);
        let value = Self::decode_from(&mut dec)?;
        dec.finish()?;
        Ok(value)
    }
}

/// Appends values to a byte buffer in Skycoin's encoding.
#[derive(Debug, Default, Clone)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    /// An empty encoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty encoder with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: Vec::with_capacity(capacity),
        }
    }

    /// Appends one byte.
    pub fn u8(&mut self, value: u8) {
        self.buf.push(value);
    }

    /// Appends a bool as one byte, 0 or 1.
    pub fn bool(&mut self, value: bool) {
        self.buf.push(u8::from(value));
    }

    /// Appends a little-endian `u32`.
    pub fn u32(&mut self, value: u32) {
        self.buf.extend_from_slice(&value.to_le_bytes());
    }

    /// Appends a little-endian `u64`.
    pub fn u64(&mut self, value: u64) {
        self.buf.extend_from_slice(&value.to_le_bytes());
    }

    /// Appends raw bytes (a fixed-size array: no length prefix).
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Appends a slice's element count as a `u32`, after checking it against [`MAX_LEN`].
    ///
    /// # Errors
    ///
    /// [`EncodeError::MaxLenExceeded`] if `len` is above [`MAX_LEN`].
    pub fn len_prefix(&mut self, len: usize) -> Result<(), EncodeError> {
        let count = u32::try_from(len)
            .ok()
            .filter(|_| len <= MAX_LEN)
            .ok_or(EncodeError::MaxLenExceeded { len, max: MAX_LEN })?;
        self.u32(count);
        Ok(())
    }

    /// Appends a slice: its count (checked against [`MAX_LEN`]), then each element.
    ///
    /// # Errors
    ///
    /// [`EncodeError::MaxLenExceeded`] if the slice or one of its elements is too long.
    pub fn seq<T: Encode>(&mut self, items: &[T]) -> Result<(), EncodeError> {
        self.len_prefix(items.len())?;
        items.iter().try_for_each(|item| item.encode_to(self))
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The encoding.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads values from the front of a byte slice in Skycoin's encoding.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    buf: &'a [u8],
}

impl<'a> Decoder<'a> {
    /// A decoder over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// How many bytes are left.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Takes the next `n` bytes.
    ///
    /// # Errors
    ///
    /// [`DecodeError::Underflow`] if fewer are left.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.buf.len() {
            return Err(DecodeError::Underflow {
                needed: n,
                remaining: self.buf.len(),
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Reads a fixed-size array (raw bytes).
    ///
    /// # Errors
    ///
    /// [`DecodeError::Underflow`] if fewer than `N` bytes are left.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// Reads one byte.
    ///
    /// # Errors
    ///
    /// [`DecodeError::Underflow`] at the end of the input.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        self.array::<1>().map(|[b]| b)
    }

    /// Reads a bool: one byte, 0 or 1.
    ///
    /// # Errors
    ///
    /// [`DecodeError::Underflow`] at the end of the input, [`DecodeError::InvalidBool`] for
    /// any other byte.
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            got => Err(DecodeError::InvalidBool { got }),
        }
    }

    /// Reads a little-endian `u32`.
    ///
    /// # Errors
    ///
    /// [`DecodeError::Underflow`] if fewer than 4 bytes are left.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        self.array().map(u32::from_le_bytes)
    }

    /// Reads a little-endian `u64`.
    ///
    /// # Errors
    ///
    /// [`DecodeError::Underflow`] if fewer than 8 bytes are left.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        self.array().map(u64::from_le_bytes)
    }

    /// Reads a slice's element count, checked like Skycoin's generated decoders: a count
    /// above the number of bytes left is [`DecodeError::Underflow`], then a count above
    /// [`MAX_LEN`] is [`DecodeError::MaxLenExceeded`].
    ///
    /// # Errors
    ///
    /// As above, and [`DecodeError::Underflow`] if the 4 count bytes are missing.
    pub fn len_prefix(&mut self) -> Result<usize, DecodeError> {
        let count = self.u32()?;
        // A u32 always fits in usize on the platforms we build for; saturate otherwise.
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        if count > self.buf.len() {
            return Err(DecodeError::Underflow {
                needed: count,
                remaining: self.buf.len(),
            });
        }
        if count > MAX_LEN {
            return Err(DecodeError::MaxLenExceeded {
                len: count,
                max: MAX_LEN,
            });
        }
        Ok(count)
    }

    /// Reads a slice: its count (see [`Decoder::len_prefix`]), then each element.
    ///
    /// # Errors
    ///
    /// Those of [`Decoder::len_prefix`] and of the elements' decoding.
    pub fn seq<T: Decode>(&mut self) -> Result<Vec<T>, DecodeError> {
        let count = self.len_prefix()?;
        // No up-front allocation from the count: memory grows only with decoded elements.
        let mut items = Vec::new();
        for _ in 0..count {
            items.push(T::decode_from(self)?);
        }
        Ok(items)
    }

    /// Ends decoding.
    ///
    /// # Errors
    ///
    /// [`DecodeError::RemainingBytes`] if bytes are left.
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::RemainingBytes {
                remaining: self.buf.len(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_little_endian() {
        let mut enc = Encoder::new();
        enc.u8(0xab);
        enc.u32(0x0102_0304);
        enc.u64(0x0102_0304_0506_0708);
        enc.bool(true);
        let bytes = enc.finish();
        assert_eq!(
            hex::encode(&bytes),
            "ab04030201080706050403020101",
            "u8, u32 LE, u64 LE, bool"
        );
        let mut dec = Decoder::new(&bytes);
        assert_eq!(dec.u8(), Ok(0xab));
        assert_eq!(dec.u32(), Ok(0x0102_0304));
        assert_eq!(dec.u64(), Ok(0x0102_0304_0506_0708));
        assert_eq!(dec.bool(), Ok(true));
        assert_eq!(dec.finish(), Ok(()));
    }

    #[test]
    fn bool_other_than_zero_or_one_is_invalid() {
        assert_eq!(Decoder::new(&[0]).bool(), Ok(false));
        assert_eq!(
            Decoder::new(&[2]).bool(),
            Err(DecodeError::InvalidBool { got: 2 })
        );
    }

    #[test]
    fn len_prefix_checks_remaining_bytes_before_max_len() {
        // Count 65536 with only 10 bytes left: Underflow, not MaxLenExceeded.
        let mut bytes = 65536u32.to_le_bytes().to_vec();
        bytes.extend_from_slice(&[0; 10]);
        assert_eq!(
            Decoder::new(&bytes).len_prefix(),
            Err(DecodeError::Underflow {
                needed: 65536,
                remaining: 10
            })
        );
        // With enough bytes it is MaxLenExceeded.
        bytes.resize(4 + 65536, 0);
        assert_eq!(
            Decoder::new(&bytes).len_prefix(),
            Err(DecodeError::MaxLenExceeded {
                len: 65536,
                max: MAX_LEN
            })
        );
        // 65535 is allowed.
        let mut ok = 65535u32.to_le_bytes().to_vec();
        ok.resize(4 + 65535, 0);
        assert_eq!(Decoder::new(&ok).len_prefix(), Ok(65535));
        // u32::MAX never allocates or panics.
        assert!(matches!(
            Decoder::new(&u32::MAX.to_le_bytes()).len_prefix(),
            Err(DecodeError::Underflow { remaining: 0, .. })
        ));
    }

    #[test]
    fn encoder_refuses_too_long_slices() {
        let mut enc = Encoder::new();
        assert_eq!(enc.len_prefix(MAX_LEN), Ok(()));
        assert_eq!(
            enc.len_prefix(MAX_LEN + 1),
            Err(EncodeError::MaxLenExceeded {
                len: MAX_LEN + 1,
                max: MAX_LEN
            })
        );
        assert_eq!(enc.as_bytes(), &65535u32.to_le_bytes());
    }

    #[test]
    fn finish_rejects_trailing_bytes() {
        let mut dec = Decoder::new(&[1, 2, 3]);
        assert_eq!(dec.u8(), Ok(1));
        assert_eq!(
            dec.finish(),
            Err(DecodeError::RemainingBytes { remaining: 2 })
        );
    }
}
