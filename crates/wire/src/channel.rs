//! Per-channel state of a [`Session`](crate::session::Session): the send
//! queue with its credit and rate cap, and the receive side with reassembly,
//! the queue of whole messages and the credit owed to the peer.
//!
//! Receive-side accounting (SWP1.md section 6). The peer may send
//! `recv_credit` more bytes. Bytes the service has consumed are owed back to
//! the peer as `pending_grant` and returned in Window frames. Bytes of an
//! incomplete message count as consumed at once (else a message larger than
//! the window could never complete), but only while no whole message waits in
//! the queue: otherwise they are deferred until the service has read the
//! queue. So a channel holds at most its window plus one message that is not
//! yet read, whatever the peer does.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use skywire_proto::wire::v1::Reason;

/// A handle on one channel of a session, stable for the channel's life even
/// after its wire id is reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelKey(pub(crate) u64);

impl ChannelKey {
    /// The key as a number, unique within its connection.
    pub fn get(self) -> u64 {
        self.0
    }
}

/// Where a channel stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelState {
    /// We opened it and the peer has not answered yet.
    Opening,
    /// The peer opened it and we have not answered yet.
    Incoming,
    /// Both sides may use it.
    Open,
    /// The peer rejected our Open.
    Rejected {
        /// Why.
        reason: Reason,
        /// The peer's words.
        message: String,
    },
    /// Reset by either side: both directions ended at once.
    Reset {
        /// Why.
        reason: Reason,
        /// Human-readable detail.
        message: String,
    },
}

/// Whether our half of the channel is still sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendFin {
    /// Data may still be queued.
    Open,
    /// The service finished; Close goes out once the queue is sent.
    Requested,
    /// Close{NORMAL} is queued or sent.
    Sent,
}

/// A token bucket capping the bytes per second sent on a channel, set by the
/// peer's Qos.
#[derive(Debug, Clone)]
pub(crate) struct RateCap {
    bytes_per_sec: u64,
    tokens: f64,
    refilled: Instant,
}

impl RateCap {
    /// Burst allowance: 50 ms of the rate, and at least one frame's worth so
    /// a tiny rate still makes progress.
    fn capacity(bytes_per_sec: u64) -> f64 {
        (bytes_per_sec as f64 / 20.0).max(crate::limits::SHARED_FRAME_CUT as f64)
    }

    pub(crate) fn new(bytes_per_sec: u64, now: Instant) -> Self {
        Self {
            bytes_per_sec,
            tokens: Self::capacity(bytes_per_sec),
            refilled: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.bytes_per_sec as f64)
            .min(Self::capacity(self.bytes_per_sec));
        self.refilled = now;
    }

    /// Bytes that may be sent now.
    pub(crate) fn available(&mut self, now: Instant) -> usize {
        self.refill(now);
        self.tokens.max(0.0) as usize
    }

    pub(crate) fn spend(&mut self, bytes: usize) {
        self.tokens -= bytes as f64;
    }

    /// When `bytes` will be available.
    pub(crate) fn ready_at(&self, bytes: usize) -> Instant {
        let missing = (bytes as f64 - self.tokens).max(0.0);
        self.refilled + Duration::from_secs_f64(missing / self.bytes_per_sec as f64)
    }
}

/// One channel.
#[derive(Debug)]
pub(crate) struct Channel {
    pub(crate) id: u16,
    pub(crate) service: String,
    pub(crate) state: ChannelState,
    /// Our send priority, 0 (bulk) ..= 7 (interactive).
    pub(crate) priority: u8,
    /// The wire id is no longer ours: finished, reset or rejected.
    pub(crate) detached: bool,
    /// The service dropped its handle.
    pub(crate) released: bool,

    // Send side.
    pub(crate) send_credit: u64,
    pub(crate) send_queue: VecDeque<Bytes>,
    pub(crate) send_offset: usize,
    pub(crate) send_queued: usize,
    pub(crate) send_fin: SendFin,
    pub(crate) send_blocked: bool,
    pub(crate) rate: Option<RateCap>,
    pub(crate) last_served: u64,

    // Receive side.
    pub(crate) recv_credit: u64,
    pub(crate) window: u32,
    pub(crate) pending_grant: u64,
    pub(crate) last_grant: Option<Instant>,
    /// Start of the current rate measurement and bytes granted in it.
    pub(crate) rate_period: Option<(Instant, u64)>,
    pub(crate) incomplete: BytesMut,
    pub(crate) incomplete_deferred: usize,
    pub(crate) recv_queue: VecDeque<(Bytes, usize)>,
    pub(crate) recv_fin: bool,
}

impl Channel {
    pub(crate) fn new(
        id: u16,
        service: String,
        state: ChannelState,
        priority: u8,
        send_credit: u32,
        window: u32,
    ) -> Self {
        Self {
            id,
            service,
            state,
            priority,
            detached: false,
            released: false,
            send_credit: u64::from(send_credit),
            send_queue: VecDeque::new(),
            send_offset: 0,
            send_queued: 0,
            send_fin: SendFin::Open,
            send_blocked: false,
            rate: None,
            last_served: 0,
            recv_credit: u64::from(window),
            window,
            pending_grant: 0,
            last_grant: None,
            rate_period: None,
            incomplete: BytesMut::new(),
            incomplete_deferred: 0,
            recv_queue: VecDeque::new(),
            recv_fin: false,
        }
    }

    /// Reset or rejected: nothing more flows either way.
    pub(crate) fn is_dead(&self) -> bool {
        matches!(
            self.state,
            ChannelState::Reset { .. } | ChannelState::Rejected { .. }
        )
    }

    /// Both sides have sent Close{NORMAL}.
    pub(crate) fn is_finished(&self) -> bool {
        self.send_fin == SendFin::Sent && self.recv_fin
    }

    /// Bytes of the front message not yet framed, if any message is queued.
    fn front_remaining(&self) -> Option<usize> {
        self.send_queue.front().map(|m| m.len() - self.send_offset)
    }

    /// The largest body this channel could put in a frame now (0 for an empty
    /// message), or `None` if it has nothing it may send.
    pub(crate) fn sendable(&mut self, now: Instant) -> Option<usize> {
        let remaining = self.front_remaining()?;
        if remaining == 0 {
            return Some(0);
        }
        let credit = usize::try_from(self.send_credit).unwrap_or(usize::MAX);
        let mut allowed = remaining.min(credit);
        if let Some(rate) = &mut self.rate {
            let available = rate.available(now);
            // Wait for a useful amount rather than trickling tiny frames.
            if available < allowed.min(crate::limits::SHARED_FRAME_CUT) {
                return None;
            }
            allowed = allowed.min(available);
        }
        (allowed > 0).then_some(allowed)
    }

    /// When a rate-capped channel with data and credit may send again.
    pub(crate) fn rate_ready_at(&self) -> Option<Instant> {
        let rate = self.rate.as_ref()?;
        let remaining = self.front_remaining().filter(|&r| r > 0)?;
        if self.send_credit == 0 {
            return None;
        }
        let want = remaining.min(crate::limits::SHARED_FRAME_CUT);
        Some(rate.ready_at(want))
    }

    /// Takes the next `len` bytes of the front message; returns them and
    /// whether the message continues.
    pub(crate) fn take_frame(&mut self, len: usize) -> (Bytes, bool) {
        let Some(front) = self.send_queue.front() else {
            return (Bytes::new(), false);
        };
        let body = front.slice(self.send_offset..self.send_offset + len);
        self.send_offset += len;
        let more = self.send_offset < front.len();
        if !more {
            self.send_queue.pop_front();
            self.send_offset = 0;
        }
        self.send_queued -= len;
        self.send_credit -= len as u64;
        if let Some(rate) = &mut self.rate {
            rate.spend(len);
        }
        (body, more)
    }

    /// Drops everything queued in both directions; returns the incomplete
    /// bytes released from the connection-wide count.
    pub(crate) fn clear(&mut self) -> (usize, usize) {
        let incomplete = self.incomplete.len();
        let queued = self.send_queued;
        self.incomplete = BytesMut::new();
        self.incomplete_deferred = 0;
        self.recv_queue.clear();
        self.send_queue.clear();
        self.send_offset = 0;
        self.send_queued = 0;
        (incomplete, queued)
    }

    /// Accepts `body` (credit already checked). Returns the bytes added to the
    /// incomplete count (positive) or released from it (negative) and whether
    /// a message completed.
    pub(crate) fn receive(&mut self, body: Bytes, more: bool) -> (isize, bool) {
        let len = body.len();
        self.recv_credit -= len as u64;
        if self.released {
            // Nobody will read: count it as consumed at once.
            self.pending_grant += len as u64;
            return (0, false);
        }
        if more {
            if self.recv_queue.is_empty() {
                self.pending_grant += len as u64;
            } else {
                self.incomplete_deferred += len;
            }
            self.incomplete.extend_from_slice(&body);
            return (len as isize, false);
        }
        if self.incomplete.is_empty() {
            self.recv_queue.push_back((body, len));
            return (0, true);
        }
        let held = self.incomplete.len();
        // Frames granted early are already paid for; the rest is granted when
        // the service reads the message.
        let owed = self.incomplete_deferred + len;
        self.incomplete_deferred = 0;
        self.incomplete.extend_from_slice(&body);
        let message = std::mem::take(&mut self.incomplete).freeze();
        self.recv_queue.push_back((message, owed));
        (-(held as isize), true)
    }

    /// Bytes of the message being reassembled plus `more`.
    pub(crate) fn reassembled_len(&self, more: usize) -> usize {
        self.incomplete.len() + more
    }

    /// Pops a whole message for the service and owes its credit to the peer.
    pub(crate) fn pop_message(&mut self) -> Option<Bytes> {
        let (message, owed) = self.recv_queue.pop_front()?;
        self.pending_grant += owed as u64;
        if self.recv_queue.is_empty() {
            self.pending_grant += std::mem::take(&mut self.incomplete_deferred) as u64;
        }
        Some(message)
    }
}
