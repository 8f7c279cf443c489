//! The control channel and frame handling of the sans-IO SWP/1 session
//! (`skywire_wire::Session`), driven through its public API by a fuzzed
//! peer, plus `pb::Control` decoding of the raw input.
//!
//! The harness plays the remote peer (the dialer; the session under test is
//! the listener). It sends a valid Hello first, then runs ops taken from the
//! input: raw frames, raw control bodies, structured control messages and
//! data frames, time steps, and the service-side calls (`open`, `send`,
//! `recv`, `accept`, `reject`, `finish`, `reset`, `release`, `ping`,
//! `go_away`, ...). After every op it runs `handle_timeout`, takes what
//! `poll_transmit` gives and drains `poll_event`.
//!
//! Checks, besides "never panics":
//! - every frame the session sends is a valid frame of at most 65535 bytes,
//!   control frames decode as a non-empty `Control`, Hello comes first and
//!   nothing follows GoAway (ours or the peer's);
//! - data goes only to channels that were opened, never beyond the credit
//!   the harness granted (SWP1.md section 6), and reassembles to messages no
//!   larger than the harness's `max_message_size`;
//! - the credit the session grants the harness stays within the window
//!   ceiling and below 2^31 (else a correct peer would have to fail the
//!   connection with `REASON_FLOW_CONTROL`);
//! - `queued_send_bytes()` never exceeds what was queued minus what was
//!   sent, nor the connection and channel send buffers plus one message per
//!   channel;
//! - whole messages handed to the service are at most `max_message_size`;
//! - a violation returned by `handle_frame` is the session's close reason.
#![no_main]

use std::collections::{HashMap, HashSet};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use skywire_fuzz::Input;
use skywire_wire::frame::{CONTROL_CHANNEL, Frame, MAX_FRAME_BODY, put_header};
use skywire_wire::limits::{
    DEFAULT_INITIAL_WINDOW, DEFAULT_MAX_MESSAGE_SIZE, HARD_MAX_MESSAGE_SIZE, Limits, MAX_CREDIT,
    MAX_PING_PADDING,
};
use skywire_wire::noise::MAX_MESSAGE_LEN;
use skywire_wire::pb::{self, control::Msg};
use skywire_wire::session::{ChannelError, LocalHello, SendOutcome};
use skywire_wire::{ChannelKey, Event, Reason, Role, Session, SessionConfig};

/// Largest message the harness asks the session to send: a little over the
/// default 4 MiB limit, so `MessageTooLarge` is reachable.
const MAX_SEND: usize = 65535 * 65;
static ZEROS: [u8; MAX_SEND] = [0; MAX_SEND];

/// Ops per input, so that a long input cannot time out.
const MAX_OPS: usize = 4096;

/// Frames taken from `poll_transmit` after each op.
const TRANSMIT_PER_STEP: usize = 16;

fuzz_target!(|data: &[u8]| {
    control_round_trip(data);
    let mut input = Input::new(data);
    Peer::new(&mut input).run(&mut input);
});

/// `pb::Control` straight from the raw bytes: decoding never panics, and
/// what decodes re-encodes to something that decodes to the same message.
fn control_round_trip(data: &[u8]) {
    if let Ok(control) = pb::Control::decode(data) {
        let encoded = control.encode_to_vec();
        let again = pb::Control::decode(&encoded[..]).expect("re-encoded Control decodes");
        assert_eq!(control, again, "Control changed in a round trip");
    }
}

fn control(msg: Option<Msg>) -> Vec<u8> {
    let mut out = Vec::new();
    put_header(&mut out, CONTROL_CHANNEL, false);
    pb::Control { msg }.encode(&mut out).expect("Vec grows");
    out
}

fn or_default(value: u32, default: u32) -> u32 {
    if value == 0 { default } else { value }
}

/// Limits small enough that every bound is reached by short inputs.
fn small_limits() -> Limits {
    Limits {
        max_channels: 4,
        max_message_size: 4096,
        initial_window: 1024,
        max_window: 8192,
        connection_window: 16384,
        max_incomplete: 6000,
        control_frames_per_sec: 50,
        channel_send_buffer: 2048,
        connection_send_buffer: 8192,
        ..Limits::default()
    }
}

/// The fuzzed remote peer, with what it knows of the session under test.
struct Peer {
    s: Session,
    now: Instant,
    limits: Limits,
    auto_accept: bool,
    /// The session's send credit per channel starts here (our Hello).
    peer_initial: u64,
    /// Our `max_message_size` as the session sees it.
    peer_max_message: usize,
    keys: Vec<ChannelKey>,
    /// Channel ids opened by either side at some point.
    known: HashSet<u16>,
    /// Upper bound of the session's send credit per channel id.
    send_credit: HashMap<u16, u64>,
    /// Our send credit per channel id, as the session's Windows grant it.
    grant_credit: HashMap<u16, u64>,
    /// Bytes of the message the session is sending per channel id so far.
    partial_out: HashMap<u16, usize>,
    /// Nonces of the session's Pings, to answer them.
    pings: Vec<u64>,
    accepted_send: u64,
    transmitted_data: u64,
    largest_send: usize,
    frames_out: usize,
    go_away_sent: bool,
    go_away_received: bool,
}

impl Peer {
    fn new(input: &mut Input<'_>) -> Self {
        let config = input.u8();
        let limits = if config & 1 == 1 {
            small_limits()
        } else {
            Limits::default()
        };
        let hello = pb::Hello {
            protocol_version: 1,
            user_agent: "fuzz".into(),
            initial_window: [0, 1, 1024, MAX_CREDIT as u32][usize::from((config >> 1) & 3)],
            max_message_size: [0, 5000, 1, u32::MAX][usize::from((config >> 3) & 3)],
            max_channels: if config & 0x20 == 0 { 0 } else { 2 },
            features: if config & 0x80 == 0 {
                vec![]
            } else {
                vec![1, 3]
            },
            ..Default::default()
        };
        let now = Instant::now();
        let session = Session::new(
            SessionConfig {
                role: Role::Listener,
                local_id: [3; 33],
                remote_id: [2; 33],
                hello: LocalHello::default(),
                limits: limits.clone(),
                known_features: vec![],
            },
            now,
        );
        let mut peer = Self {
            s: session,
            now,
            peer_initial: u64::from(or_default(hello.initial_window, DEFAULT_INITIAL_WINDOW)),
            peer_max_message: or_default(hello.max_message_size, DEFAULT_MAX_MESSAGE_SIZE)
                .min(HARD_MAX_MESSAGE_SIZE) as usize,
            limits,
            auto_accept: config & 0x40 != 0,
            keys: Vec::new(),
            known: HashSet::new(),
            send_credit: HashMap::new(),
            grant_credit: HashMap::new(),
            partial_out: HashMap::new(),
            pings: Vec::new(),
            accepted_send: 0,
            transmitted_data: 0,
            largest_send: 0,
            frames_out: 0,
            go_away_sent: false,
            go_away_received: false,
        };
        peer.transmit(usize::MAX);
        assert_eq!(
            peer.frames_out, 1,
            "the session sends exactly its Hello first"
        );
        peer.feed(control(Some(Msg::Hello(hello))));
        assert!(
            peer.s.is_established(),
            "valid Hello did not establish the session"
        );
        assert!(matches!(peer.s.poll_event(), Some(Event::Established(_))));
        peer
    }

    fn run(mut self, input: &mut Input<'_>) {
        let mut ops = 0;
        while !input.is_empty() && ops < MAX_OPS {
            ops += 1;
            self.op(input);
            if let Err(v) = self.s.handle_timeout(self.now) {
                assert_eq!(v.reason, Reason::Timeout, "{v}");
                assert_eq!(self.s.close_reason(), Some(Reason::Timeout));
            }
            self.transmit(TRANSMIT_PER_STEP);
            self.events();
            self.check_bounds();
        }
        // Let everything queued go out; it must still obey every rule.
        self.transmit(1 << 12);
        self.events();
        self.check_bounds();
    }

    /// A channel id: mostly one the session knows, sometimes any.
    fn channel_id(&mut self, input: &mut Input<'_>) -> u16 {
        let sel = input.u8();
        if sel < 0xc0 && !self.keys.is_empty() {
            let key = self.keys[usize::from(sel) % self.keys.len()];
            if let Some(id) = self.s.channel_id(key) {
                return id;
            }
        }
        if sel >= 0xf0 {
            input.u16()
        } else {
            u16::from(sel & 0x0f)
        }
    }

    fn key(&mut self, input: &mut Input<'_>) -> Option<ChannelKey> {
        let sel = usize::from(input.u8());
        (!self.keys.is_empty()).then(|| self.keys[sel % self.keys.len()])
    }

    fn op(&mut self, input: &mut Input<'_>) {
        match input.u8() % 20 {
            // Frames from the peer.
            0 => {
                let len = usize::from(input.u16());
                let frame = input.take(len).to_vec();
                self.feed(frame);
            }
            1 => {
                let len = usize::from(input.u16());
                let mut frame = Vec::new();
                put_header(&mut frame, CONTROL_CHANNEL, false);
                frame.extend_from_slice(input.take(len));
                self.feed(frame);
            }
            2 => {
                let id = self.channel_id(input);
                let more = input.u8() & 1 == 1;
                let len = usize::from(input.u16()) % (MAX_FRAME_BODY + 1);
                let mut frame = Vec::with_capacity(3 + len);
                put_header(&mut frame, id, more);
                frame.extend_from_slice(&ZEROS[..len]);
                self.feed(frame);
            }
            3 => {
                let channel = u32::from(self.channel_id(input));
                let increment = match input.u8() % 4 {
                    0 => u32::from(input.u8()),
                    1 => u32::from(input.u16()),
                    _ => input.u32(),
                };
                self.feed(control(Some(Msg::Window(pb::Window {
                    channel,
                    increment,
                }))));
            }
            4 => {
                let channel = if input.u8() < 0xf0 {
                    u32::from(self.channel_id(input))
                } else {
                    input.u32()
                };
                let service = input.string();
                let priority = u32::from(input.u8());
                self.feed(control(Some(Msg::Open(pb::Open {
                    channel,
                    service,
                    priority,
                }))));
            }
            5 => {
                let channel = u32::from(self.channel_id(input));
                let reason = input.reason();
                let message = input.string();
                self.feed(control(Some(Msg::Close(pb::Close {
                    channel,
                    reason,
                    message,
                }))));
            }
            6 => {
                let channel = u32::from(self.channel_id(input));
                let msg = if input.u8() & 1 == 0 {
                    Msg::Accept(pb::Accept { channel })
                } else {
                    Msg::Reject(pb::Reject {
                        channel,
                        reason: input.reason(),
                        message: input.string(),
                    })
                };
                self.feed(control(Some(msg)));
            }
            7 => {
                let channel = u32::from(self.channel_id(input));
                let priority = u32::from(input.u8());
                let max_bytes_per_sec = match input.u8() % 4 {
                    0 => 0,
                    1 => u64::from(input.u16()),
                    2 => u64::from(input.u32()),
                    _ => input.u64(),
                };
                self.feed(control(Some(Msg::Qos(pb::Qos {
                    channel,
                    priority,
                    max_bytes_per_sec,
                }))));
            }
            8 => {
                let nonce = input.u64();
                let padding = usize::from(input.u16()) % (MAX_PING_PADDING + 64);
                self.feed(control(Some(Msg::Ping(pb::Ping {
                    nonce,
                    padding: Bytes::from_static(&ZEROS[..padding]),
                }))));
            }
            9 => {
                let sel = usize::from(input.u8());
                let nonce = if self.pings.is_empty() || sel == 0xff {
                    input.u64()
                } else {
                    self.pings[sel % self.pings.len()]
                };
                self.feed(control(Some(Msg::Pong(pb::Pong { nonce }))));
            }
            10 => {
                let msg = match input.u8() % 4 {
                    0 => None,
                    1 => Some(Msg::Services(pb::Services {
                        services: vec![pb::ServiceAd {
                            name: input.string(),
                            metadata: Default::default(),
                        }],
                    })),
                    2 => Some(Msg::GoAway(pb::GoAway {
                        reason: input.reason(),
                        message: input.string(),
                    })),
                    _ => Some(Msg::Hello(pb::Hello {
                        protocol_version: 1,
                        ..Default::default()
                    })),
                };
                self.feed(control(msg));
            }
            // Time.
            11 => {
                let ms = match input.u8() % 4 {
                    0 => u64::from(input.u8()),
                    1 => u64::from(input.u16()),
                    2 => u64::from(input.u16()) * 1000,
                    _ => 1,
                };
                self.now += Duration::from_millis(ms);
            }
            12 => {
                if let Some(at) = self.s.poll_timeout() {
                    self.now = self.now.max(at);
                }
            }
            // The service side.
            13 => {
                let service = input.string();
                let priority = input.u8();
                if let Ok(key) = self.s.open(&service, priority) {
                    let id = self.s.channel_id(key).expect("new channel has an id");
                    assert!(
                        id != 0 && id.is_multiple_of(2),
                        "listener opened channel {id}"
                    );
                    self.keys.push(key);
                    self.known.insert(id);
                    self.send_credit.insert(id, self.peer_initial);
                    self.grant_credit
                        .insert(id, u64::from(self.limits.initial_window));
                    self.partial_out.remove(&id);
                }
            }
            14 => {
                let Some(key) = self.key(input) else { return };
                let len = usize::from(input.u16())
                    * match input.u8() % 4 {
                        0 | 1 => 1,
                        2 => 64,
                        _ => 65,
                    };
                match self.s.send(key, Bytes::from_static(&ZEROS[..len])) {
                    Ok(SendOutcome::Queued) => {
                        assert!(
                            len <= self.peer_max_message,
                            "queued {len} bytes, over our limit"
                        );
                        self.accepted_send += len as u64;
                        self.largest_send = self.largest_send.max(len);
                    }
                    Ok(SendOutcome::Full(back)) => assert_eq!(back.len(), len),
                    Err(ChannelError::MessageTooLarge { size, max }) => {
                        assert_eq!(size, len);
                        assert!(size > max as usize);
                    }
                    Err(_) => {}
                }
            }
            15 => {
                let Some(key) = self.key(input) else { return };
                for _ in 0..=input.u8() % 8 {
                    match self.s.recv(key) {
                        Poll::Ready(Ok(Some(message))) => assert!(
                            message.len() <= self.limits.max_message_size as usize,
                            "received a {}-byte message",
                            message.len()
                        ),
                        _ => break,
                    }
                }
            }
            16 => {
                let Some(key) = self.key(input) else { return };
                if input.u8() & 1 == 0 {
                    let _ = self.s.accept(key);
                } else {
                    let reason = Reason::try_from(input.reason()).unwrap_or(Reason::Refused);
                    let _ = self.s.reject(key, reason, "fuzz");
                }
            }
            17 => {
                let Some(key) = self.key(input) else { return };
                match input.u8() % 3 {
                    0 => drop(self.s.finish(key)),
                    1 => {
                        let reason = Reason::try_from(input.reason()).unwrap_or(Reason::Refused);
                        drop(self.s.reset(key, reason, "fuzz"));
                    }
                    _ => self.s.release(key),
                }
            }
            18 => match input.u8() % 5 {
                0 => {
                    let padding = usize::from(input.u16()) % (MAX_PING_PADDING + 64);
                    self.s.ping(self.now, padding);
                }
                1 => self.s.set_services(vec![pb::ServiceAd {
                    name: input.string(),
                    metadata: Default::default(),
                }]),
                2 => {
                    let Some(key) = self.key(input) else { return };
                    let _ = self.s.request_qos(key, input.u8(), u64::from(input.u32()));
                }
                3 => self.s.go_away(self.now, Reason::Normal, "fuzz"),
                _ => {
                    let Some(key) = self.key(input) else { return };
                    let _ = self.s.poll_writable(key);
                }
            },
            _ => self.transmit(1 << 10),
        }
    }

    /// Hands one frame to the session and updates what we know.
    fn feed(&mut self, frame: Vec<u8>) {
        let closing = self.s.close_reason().is_some();
        // What the frame means to a correct receiver, for the model.
        let effect = match Frame::decode(&frame) {
            Ok(f) if f.channel != CONTROL_CHANNEL => Some((f.channel, None, f.body.len())),
            Ok(f) if !f.more => pb::Control::decode(f.body)
                .ok()
                .and_then(|c| c.msg)
                .map(|m| (0, Some(m), 0)),
            _ => None,
        };
        match self.s.handle_frame(self.now, Bytes::from(frame)) {
            Ok(()) if !closing => match effect {
                Some((id, None, len)) => {
                    if let Some(credit) = self.grant_credit.get_mut(&id) {
                        *credit = credit.saturating_sub(len as u64);
                    }
                }
                Some((_, Some(Msg::Open(open)), _)) => {
                    if let Ok(id) = u16::try_from(open.channel) {
                        self.known.insert(id);
                        self.send_credit.insert(id, self.peer_initial);
                        self.grant_credit
                            .insert(id, u64::from(self.limits.initial_window));
                        self.partial_out.remove(&id);
                    }
                }
                Some((_, Some(Msg::GoAway(_)), _)) => self.go_away_received = true,
                Some((_, Some(Msg::Window(window)), _)) => {
                    if let Ok(id) = u16::try_from(window.channel) {
                        let credit = self.send_credit.entry(id).or_default();
                        *credit = credit.saturating_add(u64::from(window.increment));
                    }
                }
                _ => {}
            },
            Ok(()) => {}
            Err(v) => {
                assert!(!closing, "violation reported by a closing session: {v}");
                assert_eq!(self.s.close_reason(), Some(v.reason), "{v}");
                assert!(
                    matches!(
                        v.reason,
                        Reason::ProtocolError | Reason::FlowControl | Reason::RateLimited
                    ),
                    "unexpected violation reason: {v}"
                );
            }
        }
    }

    /// Takes up to `max` frames from `poll_transmit` and checks each.
    fn transmit(&mut self, max: usize) {
        for _ in 0..max {
            let mut out = Vec::new();
            if !self.s.poll_transmit(self.now, &mut out) {
                return;
            }
            assert!(out.len() <= MAX_MESSAGE_LEN, "{}-byte frame", out.len());
            let frame = Frame::decode(&out).expect("session sent an invalid frame");
            if self.go_away_sent || self.go_away_received {
                let what = if frame.channel == CONTROL_CHANNEL {
                    format!("{:?}", pb::Control::decode(frame.body).map(|c| c.msg))
                } else {
                    format!(
                        "{} bytes of data on channel {}",
                        frame.body.len(),
                        frame.channel
                    )
                };
                let whose = if self.go_away_sent {
                    "our"
                } else {
                    "the peer's"
                };
                panic!("frame sent after {whose} GoAway: {what}");
            }
            let first = self.frames_out == 0;
            self.frames_out += 1;
            if frame.channel == CONTROL_CHANNEL {
                assert!(!frame.more, "MORE on the control channel");
                let control = pb::Control::decode(frame.body).expect("session sent a bad Control");
                let msg = control.msg.expect("session sent an empty Control");
                assert_eq!(
                    first,
                    matches!(msg, Msg::Hello(_)),
                    "Hello is the first frame, and only it"
                );
                self.sent_control(msg);
                continue;
            }
            let id = frame.channel;
            let len = frame.body.len();
            assert!(
                self.known.contains(&id),
                "data on channel {id}, never opened"
            );
            let credit = self
                .send_credit
                .get_mut(&id)
                .expect("known channel has credit");
            assert!(
                len as u64 <= *credit,
                "{len} bytes on channel {id} with {credit} bytes of credit"
            );
            *credit -= len as u64;
            self.transmitted_data += len as u64;
            let partial = self.partial_out.entry(id).or_default();
            *partial += len;
            assert!(
                *partial <= self.peer_max_message,
                "message of {partial} bytes on channel {id}, over our limit {}",
                self.peer_max_message
            );
            if !frame.more {
                *partial = 0;
            }
        }
    }

    fn sent_control(&mut self, msg: Msg) {
        match msg {
            Msg::Hello(hello) => {
                assert_eq!(hello.protocol_version, 1);
                assert_eq!(hello.initial_window, self.limits.initial_window);
                assert_eq!(hello.max_message_size, self.limits.max_message_size);
                assert_eq!(hello.max_channels, self.limits.max_channels);
            }
            Msg::Ping(ping) => {
                assert!(
                    ping.padding.len() <= MAX_PING_PADDING,
                    "Ping padding {}",
                    ping.padding.len()
                );
                if self.pings.len() == 32 {
                    self.pings.remove(0);
                }
                self.pings.push(ping.nonce);
            }
            Msg::Window(window) => {
                let id = u16::try_from(window.channel).expect("Window channel fits u16");
                assert!(
                    self.known.contains(&id),
                    "Window for channel {id}, never opened"
                );
                let credit = self.grant_credit.entry(id).or_default();
                *credit += u64::from(window.increment);
                assert!(
                    *credit <= MAX_CREDIT,
                    "granted {credit} bytes of credit on channel {id}"
                );
                assert!(
                    *credit <= u64::from(self.limits.max_window),
                    "granted {credit} bytes of credit on channel {id}, over the window ceiling {}",
                    self.limits.max_window
                );
            }
            Msg::Open(open) => {
                let id = u16::try_from(open.channel).expect("Open channel fits u16");
                assert!(
                    id != 0 && id.is_multiple_of(2),
                    "listener sent Open for channel {id}"
                );
                assert!(open.priority <= 7);
            }
            Msg::GoAway(_) => self.go_away_sent = true,
            _ => {}
        }
    }

    fn events(&mut self) {
        while let Some(event) = self.s.poll_event() {
            match event {
                Event::IncomingChannel { key, priority, .. } => {
                    assert!(priority <= 7);
                    self.keys.push(key);
                    if self.auto_accept {
                        let _ = self.s.accept(key);
                    }
                }
                Event::Established(_) => panic!("second Established event"),
                _ => {}
            }
        }
    }

    fn check_bounds(&self) {
        let queued = self.s.queued_send_bytes() as u64;
        assert!(
            self.transmitted_data <= self.accepted_send,
            "{} bytes of data sent, but only {} accepted",
            self.transmitted_data,
            self.accepted_send
        );
        assert!(
            queued <= self.accepted_send - self.transmitted_data,
            "{queued} bytes queued, but only {} accepted and {} sent",
            self.accepted_send,
            self.transmitted_data
        );
        let bound = self.limits.connection_send_buffer
            + self.limits.channel_send_buffer
            + self.keys.len() * self.largest_send;
        assert!(
            queued as usize <= bound,
            "{queued} bytes queued, above {bound}"
        );
    }
}
