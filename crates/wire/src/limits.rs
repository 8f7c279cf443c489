//! Limits and timers of SWP/1 (SWP1.md sections 2, 4, 6, 7 and 8), and the
//! [`Limits`] a node enforces, built from them.
//!
//! Every value that bounds memory, time or rate lives here as a named
//! constant with the reason for its value; [`Limits::default`] uses them.

use std::time::Duration;

/// The whole BOLT 8 handshake must finish within this (section 2).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The peer's Hello must arrive within this after the handshake (section 4).
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// A side that has sent nothing for this long sends a Ping (section 7).
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);

/// Nothing received for this long ends the connection with
/// `REASON_TIMEOUT` (section 7): three missed keepalives.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(45);

/// Concurrent channels a side accepts when Hello says 0 (section 8).
pub const DEFAULT_MAX_CHANNELS: u32 = 256;

/// Largest reassembled message when Hello says 0 (section 8).
pub const DEFAULT_MAX_MESSAGE_SIZE: u32 = 4 << 20;

/// No side accepts or sends a message larger than this, whatever Hello says
/// (section 8).
pub const HARD_MAX_MESSAGE_SIZE: u32 = 16 << 20;

/// Bytes of incomplete messages held per connection (section 6).
pub const DEFAULT_MAX_INCOMPLETE_PER_CONNECTION: usize = 32 << 20;

/// Per-channel window when Hello says 0 (section 6).
pub const DEFAULT_INITIAL_WINDOW: u32 = 256 << 10;

/// Receive windows are auto-tuned up to this per channel (section 8).
pub const MAX_AUTO_WINDOW: u32 = 16 << 20;

/// Sum of all channels' receive windows on one connection that auto-tuning
/// may reach: windows only grow while the sum stays below it, so a reader
/// that stops consuming cannot be made to hold more than this in complete
/// messages (plus one message per channel).
pub const DEFAULT_CONNECTION_WINDOW: u64 = 64 << 20;

/// Send credit above this is a flow-control error (section 6).
pub const MAX_CREDIT: u64 = (1 << 31) - 1;

/// Control frames a peer may send per second, as a token bucket of this
/// size refilled at this rate (section 8).
pub const DEFAULT_CONTROL_FRAMES_PER_SEC: u32 = 1000;

/// Control frames this side sends per second at most on its own account
/// (Window and probes), kept under the peer's 1000 so that Pongs and Opens
/// always have room.
pub const CONTROL_SEND_BUDGET_PER_SEC: u32 = 800;

/// Largest Ping padding (section 7).
pub const MAX_PING_PADDING: usize = 1024;

/// Data frames are cut at this size while other channels have data waiting,
/// so control and interactive channels never wait behind a 64 KiB frame
/// (section 6).
pub const SHARED_FRAME_CUT: usize = 16 << 10;

/// Bytes a channel may queue for sending before `send` waits; a single
/// message larger than this is still accepted when the queue is empty.
pub const DEFAULT_CHANNEL_SEND_BUFFER: usize = 1 << 20;

/// Bytes all channels of one connection may queue for sending before `send`
/// waits (plus at most one message in flight per channel).
pub const DEFAULT_CONNECTION_SEND_BUFFER: usize = 16 << 20;

/// Pings awaiting a Pong that a side remembers; older ones are forgotten.
pub const MAX_OUTSTANDING_PINGS: usize = 16;

/// Auto-tuning sizes a channel's window so that one grant (half a window)
/// covers this much of its measured rate, or two minimum RTTs if longer (the
/// bandwidth-delay product). Longer means fewer Window frames; shorter means
/// less data queued ahead of a Ping: at 1.25 ms a busy channel sends about
/// 800 Window frames a second and keeps about 2.5 ms of data in flight.
pub const GRANT_INTERVAL: Duration = Duration::from_micros(1250);

/// The period over which a channel's consumption rate is measured for
/// auto-tuning; long enough to smooth over bursts of large messages.
pub const RATE_PERIOD: Duration = Duration::from_millis(25);

/// Frames served to higher-priority channels in a row before the channel that
/// has waited longest is served once regardless of priority: no starvation.
pub const STARVATION_GUARD: u32 = 16;

/// Longest a graceful GoAway waits for queued data to drain before it is sent
/// anyway.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The limits one side enforces and advertises. Defaults are the constants
/// of this module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Channels the peer may have open to us at once (advertised in Hello).
    pub max_channels: u32,
    /// Largest reassembled message we accept (advertised in Hello).
    pub max_message_size: u32,
    /// Per-channel receive window we start with (advertised in Hello).
    pub initial_window: u32,
    /// Ceiling for auto-tuning one channel's receive window.
    pub max_window: u32,
    /// Ceiling for the sum of receive windows on one connection.
    pub connection_window: u64,
    /// Bytes of incomplete messages held per connection.
    pub max_incomplete: usize,
    /// Control frames the peer may send per second.
    pub control_frames_per_sec: u32,
    /// Bytes one channel may queue for sending.
    pub channel_send_buffer: usize,
    /// Bytes one connection may queue for sending.
    pub connection_send_buffer: usize,
    /// Time allowed for the whole BOLT 8 handshake.
    pub handshake_timeout: Duration,
    /// Time allowed for the peer's Hello.
    pub hello_timeout: Duration,
    /// Idle time after which we send a Ping.
    pub keepalive_interval: Duration,
    /// Silence after which the connection ends with `REASON_TIMEOUT`.
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_channels: DEFAULT_MAX_CHANNELS,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            initial_window: DEFAULT_INITIAL_WINDOW,
            max_window: MAX_AUTO_WINDOW,
            connection_window: DEFAULT_CONNECTION_WINDOW,
            max_incomplete: DEFAULT_MAX_INCOMPLETE_PER_CONNECTION,
            control_frames_per_sec: DEFAULT_CONTROL_FRAMES_PER_SEC,
            channel_send_buffer: DEFAULT_CHANNEL_SEND_BUFFER,
            connection_send_buffer: DEFAULT_CONNECTION_SEND_BUFFER,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            hello_timeout: HELLO_TIMEOUT,
            keepalive_interval: KEEPALIVE_INTERVAL,
            idle_timeout: IDLE_TIMEOUT,
        }
    }
}
