//! SWP/1 frames (SWP1.md section 3).
//!
//! Every BOLT 8 transport message carries exactly one frame:
//!
//! ```text
//! frame := channel:u16 (big-endian) || flags:u8 || body
//! flags := bit 0 MORE, bits 1..7 reserved (MUST be 0)
//! ```

use crate::noise::MAX_MESSAGE_LEN;

/// Bytes of the frame header: channel (2) and flags (1).
pub const FRAME_HEADER_LEN: usize = 3;

/// The largest frame body: a transport message is at most 65535 bytes.
pub const MAX_FRAME_BODY: usize = MAX_MESSAGE_LEN - FRAME_HEADER_LEN;

/// The control channel's id.
pub const CONTROL_CHANNEL: u16 = 0;

/// Flag bit 0: the message continues in the channel's next frame.
pub const FLAG_MORE: u8 = 0x01;

/// Flag bits 1..7, which a sender MUST leave at 0.
const RESERVED_FLAGS: u8 = !FLAG_MORE;

/// Why a transport message is not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The message is shorter than the 3-byte header.
    #[error("frame of {len} bytes is shorter than the {FRAME_HEADER_LEN}-byte header")]
    TooShort {
        /// Length of the transport message.
        len: usize,
    },
    /// A reserved flag bit is set.
    #[error("reserved flag bits set: {flags:#04x}")]
    ReservedFlags {
        /// The whole flags byte.
        flags: u8,
    },
}

/// A decoded frame borrowing its body from the transport message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Channel id; 0 is control.
    pub channel: u16,
    /// The message continues in the next frame of this channel.
    pub more: bool,
    /// Frame body.
    pub body: &'a [u8],
}

impl<'a> Frame<'a> {
    /// Parses one transport message as a frame.
    pub fn decode(message: &'a [u8]) -> Result<Self, FrameError> {
        let [hi, lo, flags, ref body @ ..] = *message else {
            return Err(FrameError::TooShort { len: message.len() });
        };
        if flags & RESERVED_FLAGS != 0 {
            return Err(FrameError::ReservedFlags { flags });
        }
        Ok(Self {
            channel: u16::from_be_bytes([hi, lo]),
            more: flags & FLAG_MORE != 0,
            body,
        })
    }
}

/// Appends a frame header to `out`.
pub fn put_header(out: &mut Vec<u8>, channel: u16, more: bool) {
    out.extend_from_slice(&channel.to_be_bytes());
    out.push(if more { FLAG_MORE } else { 0 });
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_short_and_reserved() {
        assert_eq!(Frame::decode(&[0, 1]), Err(FrameError::TooShort { len: 2 }));
        for bit in 1..8 {
            let flags = 1u8 << bit;
            assert_eq!(
                Frame::decode(&[0, 1, flags]),
                Err(FrameError::ReservedFlags { flags })
            );
        }
    }

    #[test]
    fn empty_body_is_a_frame() {
        let frame = Frame::decode(&[0xab, 0xcd, 0]).expect("valid frame");
        assert_eq!(
            frame,
            Frame {
                channel: 0xabcd,
                more: false,
                body: &[]
            }
        );
    }

    proptest! {
        #[test]
        fn round_trip(channel: u16, more: bool, body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut out = Vec::new();
            put_header(&mut out, channel, more);
            out.extend_from_slice(&body);
            let frame = Frame::decode(&out).expect("valid frame");
            prop_assert_eq!(frame, Frame { channel, more, body: &body });
        }
    }
}
