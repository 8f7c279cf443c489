//! `skywire_wire::frame::Frame::decode` on arbitrary transport messages.
//!
//! Checks, besides "never panics":
//! - the error cases are exactly those of SWP1.md section 3 (shorter than the
//!   3-byte header, or a reserved flag bit set);
//! - a frame that decodes re-encodes (`frame::put_header` + body) to the very
//!   same bytes, and those decode to the same frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skywire_wire::frame::{FLAG_MORE, FRAME_HEADER_LEN, Frame, FrameError, put_header};

fuzz_target!(|data: &[u8]| {
    match Frame::decode(data) {
        Ok(frame) => {
            assert!(data.len() >= FRAME_HEADER_LEN);
            assert_eq!(data[2] & !FLAG_MORE, 0, "reserved flags accepted");
            assert_eq!(frame.channel, u16::from_be_bytes([data[0], data[1]]));
            assert_eq!(frame.more, data[2] & FLAG_MORE != 0);
            assert_eq!(frame.body.len(), data.len() - FRAME_HEADER_LEN);

            let mut out = Vec::with_capacity(data.len());
            put_header(&mut out, frame.channel, frame.more);
            assert_eq!(out.len(), FRAME_HEADER_LEN);
            out.extend_from_slice(frame.body);
            assert_eq!(out, data, "round trip changed the bytes");
            assert_eq!(
                Frame::decode(&out),
                Ok(frame),
                "round trip changed the frame"
            );
        }
        Err(FrameError::TooShort { len }) => {
            assert_eq!(len, data.len());
            assert!(
                data.len() < FRAME_HEADER_LEN,
                "{len}-byte frame called too short"
            );
        }
        Err(FrameError::ReservedFlags { flags }) => {
            assert!(data.len() >= FRAME_HEADER_LEN);
            assert_eq!(flags, data[2]);
            assert_ne!(flags & !FLAG_MORE, 0, "flags {flags:#04x} called reserved");
        }
    }
});
