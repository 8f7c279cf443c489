//! The SWP/1 session: a sans-IO state machine for one connection after the
//! BOLT 8 handshake (SWP1.md sections 3 to 8).
//!
//! It never touches a socket or a clock. The driver feeds it each decrypted
//! transport message ([`Session::handle_frame`]) and the time
//! ([`Session::handle_timeout`] at [`Session::poll_timeout`]), pulls frames
//! to encrypt and send ([`Session::poll_transmit`]), and drains
//! [`Event`]s. Services use channels through [`ChannelKey`]s: `open`,
//! `accept`, `send`, `recv`, `finish`, `reset`, `release`.
//!
//! Everything a peer can make it hold is bounded: incomplete messages by
//! `max_message_size` per channel and `max_incomplete` per connection, whole
//! messages by the channel's window (see [`crate::channel`]), control frames
//! by a token bucket, channels by `max_channels`. A peer that breaks the
//! protocol gets a GoAway with the reason and the session closes.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use prost::Message as _;
use skywire_proto::wire::v1::{self as pb, Reason, control::Msg};

use crate::channel::{Channel, ChannelKey, ChannelState, RateCap, SendFin};
use crate::frame::{self, CONTROL_CHANNEL, Frame, MAX_FRAME_BODY};
use crate::limits::{
    CONTROL_SEND_BUDGET_PER_SEC, DEFAULT_INITIAL_WINDOW, DEFAULT_MAX_CHANNELS,
    DEFAULT_MAX_MESSAGE_SIZE, DRAIN_TIMEOUT, GRANT_INTERVAL, HARD_MAX_MESSAGE_SIZE, Limits,
    MAX_CREDIT, MAX_OUTSTANDING_PINGS, MAX_PING_PADDING, RATE_PERIOD, SHARED_FRAME_CUT,
    STARVATION_GUARD,
};

/// The SWP/1 protocol version this crate speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// Highest channel priority (interactive).
pub const MAX_PRIORITY: u8 = 7;

/// How often the RTT is re-measured while windows are being tuned.
const RTT_PROBE_INTERVAL: Duration = Duration::from_secs(5);

/// Which side dialed the TCP connection; it decides channel id parity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Dialed the connection: allocates odd channel ids.
    Dialer,
    /// Accepted the connection: allocates even channel ids.
    Listener,
}

impl Role {
    /// Whether this side allocates channel `id`.
    pub fn allocates(self, id: u16) -> bool {
        id != CONTROL_CHANNEL && (id % 2 == 1) == (self == Role::Dialer)
    }
}

/// What this side says about itself in Hello.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LocalHello {
    /// E.g. `skywire/0.1.0`.
    pub user_agent: String,
    /// Services offered.
    pub services: Vec<pb::ServiceAd>,
    /// `host:port` where this node accepts SWP/1.
    pub listen_addrs: Vec<String>,
    /// Feature bits: even = required, odd = optional.
    pub features: Vec<u32>,
}

/// Everything a session needs to start.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Which side dialed.
    pub role: Role,
    /// Our node id (compressed public key).
    pub local_id: [u8; 33],
    /// The peer's node id, learned in the handshake.
    pub remote_id: [u8; 33],
    /// Our Hello.
    pub hello: LocalHello,
    /// What we enforce and advertise.
    pub limits: Limits,
    /// Feature bits we understand in the peer's Hello.
    pub known_features: Vec<u32>,
}

/// The peer's Hello, with zeros replaced by the defaults they stand for.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerHello {
    /// The peer's user agent.
    pub user_agent: String,
    /// Services the peer offers (updated by `Services`).
    pub services: Vec<pb::ServiceAd>,
    /// Where the peer accepts SWP/1.
    pub listen_addrs: Vec<String>,
    /// Channels the peer accepts from us at once.
    pub max_channels: u32,
    /// Largest message the peer accepts (capped at the hard limit).
    pub max_message_size: u32,
    /// Our initial send credit per channel.
    pub initial_window: u32,
    /// The peer's feature bits.
    pub features: Vec<u32>,
    /// The peer's clock at Hello, unix ms.
    pub timestamp_ms: u64,
}

/// Something the driver or a service should know about.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The peer's Hello arrived and was valid: channels may be used.
    Established(Box<PeerHello>),
    /// The peer opened a channel; answer with `accept` or `reject`.
    IncomingChannel {
        /// Handle for the new channel.
        key: ChannelKey,
        /// Requested service, e.g. `echo/1`.
        service: String,
        /// Requested priority.
        priority: u8,
    },
    /// Something changed on a channel: accepted, rejected, readable,
    /// writable, finished or reset.
    Channel(ChannelKey),
    /// A Pong answered one of our Pings.
    Pong {
        /// The Ping's nonce.
        nonce: u64,
        /// Time since the Ping was queued.
        rtt: Duration,
    },
    /// The peer replaced its list of services.
    PeerServices(Vec<pb::ServiceAd>),
    /// The peer sent GoAway; the session is closed.
    GoAway {
        /// Why.
        reason: Reason,
        /// The peer's words.
        message: String,
    },
}

/// A protocol violation by the peer: the session has queued GoAway with this
/// reason and is closing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", reason.as_str_name())]
pub struct ProtocolViolation {
    /// The GoAway reason sent.
    pub reason: Reason,
    /// What the peer did.
    pub message: String,
}

/// Why a channel operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// The key names no channel (released, or never existed).
    #[error("unknown channel")]
    UnknownChannel,
    /// The peer rejected the channel.
    #[error("channel rejected: {}: {message}", reason.as_str_name())]
    Rejected {
        /// Why.
        reason: Reason,
        /// The peer's words.
        message: String,
    },
    /// The channel was reset.
    #[error("channel reset: {}: {message}", reason.as_str_name())]
    Reset {
        /// Why.
        reason: Reason,
        /// Detail.
        message: String,
    },
    /// We already finished sending on this channel.
    #[error("channel already finished for sending")]
    Finished,
    /// The message is larger than the peer accepts.
    #[error("message of {size} bytes exceeds the peer's limit of {max}")]
    MessageTooLarge {
        /// Message size.
        size: usize,
        /// The peer's `max_message_size`.
        max: u32,
    },
    /// The session is closed or closing.
    #[error("connection closed: {}", reason.as_str_name())]
    ConnectionClosed {
        /// The GoAway reason.
        reason: Reason,
    },
}

/// Why `open` failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// The peer's Hello has not arrived yet.
    #[error("session not established")]
    NotEstablished,
    /// We already have as many channels open as the peer accepts.
    #[error("peer accepts at most {max} channels")]
    TooManyChannels {
        /// The peer's `max_channels`.
        max: u32,
    },
    /// The session is closing.
    #[error("connection closing: {}", reason.as_str_name())]
    Closing {
        /// The GoAway reason.
        reason: Reason,
    },
}

/// Outcome of `send`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Queued.
    Queued,
    /// The send buffers are full: try again after an [`Event::Channel`] for
    /// this key. The message is handed back.
    Full(Bytes),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Waiting for the peer's Hello.
    AwaitingHello,
    /// Both Hellos exchanged.
    Established,
    /// We called `go_away`: no new channels; GoAway goes out when the queues
    /// are empty or at the deadline.
    Draining {
        reason: Reason,
        message: String,
        deadline: Instant,
    },
    /// GoAway is queued (sent by us) or received: nothing more is read.
    Closing { reason: Reason },
}

/// Control frames waiting to be sent. Once GoAway is queued, or the peer's
/// arrived, nothing more is queued: GoAway is the last frame a side sends
/// (SWP1.md section 7), whatever services still call.
#[derive(Debug)]
struct ControlQueue {
    frames: VecDeque<Msg>,
    closed: bool,
}

impl ControlQueue {
    fn push(&mut self, msg: Msg) {
        if !self.closed {
            self.frames.push_back(msg);
        }
    }

    /// Drops what is queued, queues `go_away` (if we are the side closing)
    /// as the last frame, and refuses everything after.
    fn close(&mut self, go_away: Option<Msg>) {
        self.frames.clear();
        self.frames.extend(go_away);
        self.closed = true;
    }

    fn pop(&mut self) -> Option<Msg> {
        self.frames.pop_front()
    }

    fn len(&self) -> usize {
        self.frames.len()
    }

    fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

/// A token bucket counting frames.
#[derive(Debug, Clone)]
struct FrameBucket {
    per_sec: u32,
    tokens: f64,
    refilled: Instant,
}

impl FrameBucket {
    fn new(per_sec: u32, now: Instant) -> Self {
        Self {
            per_sec,
            tokens: f64::from(per_sec),
            refilled: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens =
            (self.tokens + elapsed * f64::from(self.per_sec)).min(f64::from(self.per_sec));
        self.refilled = now;
    }

    fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn ready_at(&self) -> Instant {
        let missing = (1.0 - self.tokens).max(0.0);
        self.refilled + Duration::from_secs_f64(missing / f64::from(self.per_sec))
    }
}

/// Channel ids ever used on this connection, so that data for a channel that
/// was reset or finished (discarded silently) can be told from data for one
/// that never existed (a protocol error). Sparse: 8 bytes per 64 ids touched.
#[derive(Debug, Default)]
struct IdSet(BTreeMap<u16, u64>);

impl IdSet {
    fn insert(&mut self, id: u16) {
        *self.0.entry(id >> 6).or_default() |= 1 << (id & 63);
    }

    fn contains(&self, id: u16) -> bool {
        self.0
            .get(&(id >> 6))
            .is_some_and(|word| word & (1 << (id & 63)) != 0)
    }
}

/// One SWP/1 connection's protocol state. See the module docs.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    state: State,
    peer: Option<PeerHello>,
    started: Instant,
    last_recv: Instant,
    last_send: Instant,

    channels: HashMap<ChannelKey, Channel>,
    by_id: HashMap<u16, ChannelKey>,
    used_ids: IdSet,
    next_key: u64,
    next_local_id: u16,
    /// Channels we opened that are not finished: bounded by the peer's limit.
    local_open: u32,
    /// Channels the peer opened that are not finished: bounded by ours.
    remote_open: u32,

    control_out: ControlQueue,
    events: VecDeque<Event>,

    incomplete_total: usize,
    send_total: usize,
    window_total: u64,

    inbound_control: FrameBucket,
    outbound_control: FrameBucket,
    serve_seq: u64,
    preempted: u32,

    next_nonce: u64,
    pings: VecDeque<(u64, Instant)>,
    srtt: Option<Duration>,
    min_rtt: Option<Duration>,
    last_rtt_sample: Option<Instant>,
}

impl Session {
    /// Starts a session right after the handshake; our Hello is queued. A
    /// peer with our own node id gets `GoAway(REASON_SELF_CONNECTION)` at once.
    pub fn new(config: SessionConfig, now: Instant) -> Self {
        let hello = pb::Hello {
            protocol_version: PROTOCOL_VERSION,
            user_agent: config.hello.user_agent.clone(),
            services: config.hello.services.clone(),
            listen_addrs: config.hello.listen_addrs.clone(),
            max_channels: config.limits.max_channels,
            max_message_size: config.limits.max_message_size,
            initial_window: config.limits.initial_window,
            features: config.hello.features.clone(),
            timestamp_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        };
        let first_local_id = if config.role == Role::Dialer { 1 } else { 2 };
        let inbound_control = FrameBucket::new(config.limits.control_frames_per_sec, now);
        let self_connection = config.local_id == config.remote_id;
        let mut session = Self {
            config,
            state: State::AwaitingHello,
            peer: None,
            started: now,
            last_recv: now,
            last_send: now,
            channels: HashMap::new(),
            by_id: HashMap::new(),
            used_ids: IdSet::default(),
            next_key: 0,
            next_local_id: first_local_id,
            local_open: 0,
            remote_open: 0,
            control_out: ControlQueue {
                frames: VecDeque::from([Msg::Hello(hello)]),
                closed: false,
            },
            events: VecDeque::new(),
            incomplete_total: 0,
            send_total: 0,
            window_total: 0,
            inbound_control,
            outbound_control: FrameBucket::new(CONTROL_SEND_BUDGET_PER_SEC, now),
            serve_seq: 0,
            preempted: 0,
            next_nonce: rand::random(),
            pings: VecDeque::new(),
            srtt: None,
            min_rtt: None,
            last_rtt_sample: None,
        };
        if self_connection {
            session.close_with(Reason::SelfConnection, "peer has our node id".into());
        }
        session
    }

    /// The peer's Hello, once received.
    pub fn peer(&self) -> Option<&PeerHello> {
        self.peer.as_ref()
    }

    /// Which side dialed.
    pub fn role(&self) -> Role {
        self.config.role
    }

    /// The peer's node id.
    pub fn remote_id(&self) -> &[u8; 33] {
        &self.config.remote_id
    }

    /// Whether both Hellos have been exchanged and the session is not closing.
    pub fn is_established(&self) -> bool {
        matches!(self.state, State::Established | State::Draining { .. })
    }

    /// Why the session is closing, once GoAway was queued or received.
    pub fn close_reason(&self) -> Option<Reason> {
        match self.state {
            State::Closing { reason } => Some(reason),
            _ => None,
        }
    }

    /// Closing and nothing left to send: the driver may close the socket.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closing { .. }) && self.control_out.is_empty()
    }

    /// Smoothed round-trip time from Pings, if measured.
    pub fn rtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// Control frames waiting to be sent.
    pub fn control_backlog(&self) -> usize {
        self.control_out.len()
    }

    /// Bytes queued for sending on all channels.
    pub fn queued_send_bytes(&self) -> usize {
        self.send_total
    }

    /// Next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ---------------------------------------------------------------------
    // Input from the peer.

    /// Handles one decrypted transport message from the peer.
    ///
    /// On a protocol violation the session queues GoAway with the reason,
    /// drops everything else queued, and returns the violation; the driver
    /// flushes what [`Session::poll_transmit`] still gives and closes.
    pub fn handle_frame(&mut self, now: Instant, message: Bytes) -> Result<(), ProtocolViolation> {
        if matches!(self.state, State::Closing { .. }) {
            return Ok(());
        }
        self.last_recv = now;
        let result = match Frame::decode(&message) {
            Err(e) => Err(violation(Reason::ProtocolError, e.to_string())),
            Ok(frame) if frame.channel == CONTROL_CHANNEL => {
                if frame.more {
                    Err(violation(
                        Reason::ProtocolError,
                        "MORE set on the control channel",
                    ))
                } else {
                    self.handle_control(now, frame.body)
                }
            }
            Ok(frame) => {
                let (channel, more, len) = (frame.channel, frame.more, frame.body.len());
                self.handle_data(now, channel, more, message.slice(message.len() - len..))
            }
        };
        if let Err(v) = &result {
            self.close_with(v.reason, v.message.clone());
        }
        result
    }

    fn handle_control(&mut self, now: Instant, body: &[u8]) -> Result<(), ProtocolViolation> {
        if !self.inbound_control.try_take(now) {
            return Err(violation(
                Reason::RateLimited,
                format!(
                    "more than {} control frames per second",
                    self.inbound_control.per_sec
                ),
            ));
        }
        let control = pb::Control::decode(body)
            .map_err(|e| violation(Reason::ProtocolError, format!("bad control frame: {e}")))?;
        // An empty Control (or an unknown message) is ignored (section 9).
        let Some(msg) = control.msg else {
            return Ok(());
        };
        if self.state == State::AwaitingHello {
            return match msg {
                Msg::Hello(hello) => self.handle_hello(now, hello),
                Msg::GoAway(go_away) => {
                    self.handle_go_away(go_away);
                    Ok(())
                }
                _ => Err(violation(Reason::ProtocolError, "first frame is not Hello")),
            };
        }
        match msg {
            Msg::Hello(_) => Err(violation(Reason::ProtocolError, "second Hello")),
            Msg::Open(open) => self.handle_open(open),
            Msg::Accept(accept) => self.handle_answer(accept.channel, None),
            Msg::Reject(reject) => {
                let reason = Reason::try_from(reject.reason).unwrap_or(Reason::Unspecified);
                self.handle_answer(reject.channel, Some((reason, reject.message)))
            }
            Msg::Close(close) => self.handle_close(close),
            Msg::Window(window) => self.handle_window(window),
            Msg::Ping(ping) => {
                if ping.padding.len() > MAX_PING_PADDING {
                    return Err(violation(
                        Reason::ProtocolError,
                        format!(
                            "Ping padding of {} bytes exceeds {MAX_PING_PADDING}",
                            ping.padding.len()
                        ),
                    ));
                }
                self.control_out
                    .push(Msg::Pong(pb::Pong { nonce: ping.nonce }));
                Ok(())
            }
            Msg::Pong(pong) => {
                self.handle_pong(now, pong.nonce);
                Ok(())
            }
            Msg::Qos(qos) => self.handle_qos(now, qos),
            Msg::Services(services) => {
                if let Some(peer) = &mut self.peer {
                    peer.services = services.services.clone();
                }
                self.events
                    .push_back(Event::PeerServices(services.services));
                Ok(())
            }
            Msg::GoAway(go_away) => {
                self.handle_go_away(go_away);
                Ok(())
            }
        }
    }

    fn handle_hello(&mut self, now: Instant, hello: pb::Hello) -> Result<(), ProtocolViolation> {
        if hello.protocol_version != PROTOCOL_VERSION {
            return Err(violation(
                Reason::IncompatibleVersion,
                format!(
                    "protocol version {} (we speak {PROTOCOL_VERSION})",
                    hello.protocol_version
                ),
            ));
        }
        if let Some(bit) = hello
            .features
            .iter()
            .find(|&&bit| bit % 2 == 0 && !self.config.known_features.contains(&bit))
        {
            return Err(violation(
                Reason::IncompatibleVersion,
                format!("unknown required feature bit {bit}"),
            ));
        }
        let initial_window = or_default(hello.initial_window, DEFAULT_INITIAL_WINDOW);
        if u64::from(initial_window) > MAX_CREDIT {
            return Err(violation(
                Reason::FlowControl,
                format!("initial window {initial_window} exceeds {MAX_CREDIT}"),
            ));
        }
        let peer = PeerHello {
            user_agent: hello.user_agent,
            services: hello.services,
            listen_addrs: hello.listen_addrs,
            max_channels: or_default(hello.max_channels, DEFAULT_MAX_CHANNELS),
            max_message_size: or_default(hello.max_message_size, DEFAULT_MAX_MESSAGE_SIZE)
                .min(HARD_MAX_MESSAGE_SIZE),
            initial_window,
            features: hello.features,
            timestamp_ms: hello.timestamp_ms,
        };
        self.peer = Some(peer.clone());
        self.state = State::Established;
        self.events.push_back(Event::Established(Box::new(peer)));
        // A first RTT sample, for window tuning.
        self.queue_ping(now, 0);
        Ok(())
    }

    fn handle_go_away(&mut self, go_away: pb::GoAway) {
        let reason = Reason::try_from(go_away.reason).unwrap_or(Reason::Unspecified);
        self.events.push_back(Event::GoAway {
            reason,
            message: go_away.message,
        });
        self.control_out.close(None);
        self.state = State::Closing { reason };
        self.notify_all_channels();
    }

    fn handle_open(&mut self, open: pb::Open) -> Result<(), ProtocolViolation> {
        let id = channel_id(open.channel)?;
        if self.config.role.allocates(id) {
            return Err(violation(
                Reason::ProtocolError,
                format!("channel {id} has our parity; the peer may not open it"),
            ));
        }
        if self.by_id.contains_key(&id) {
            return Err(violation(
                Reason::ProtocolError,
                format!("channel {id} is already open"),
            ));
        }
        self.used_ids.insert(id);
        let reject = |reason: Reason, message: &str| {
            Msg::Reject(pb::Reject {
                channel: id.into(),
                reason: reason.into(),
                message: message.into(),
            })
        };
        if !matches!(self.state, State::Established) {
            self.control_out.push(reject(Reason::Refused, "going away"));
            return Ok(());
        }
        if self.remote_open >= self.config.limits.max_channels {
            self.control_out
                .push(reject(Reason::TooManyChannels, "channel limit reached"));
            return Ok(());
        }
        let priority = clamp_priority(open.priority);
        let peer_window = self
            .peer
            .as_ref()
            .map_or(DEFAULT_INITIAL_WINDOW, |p| p.initial_window);
        let key = self.insert_channel(Channel::new(
            id,
            open.service.clone(),
            ChannelState::Incoming,
            priority,
            peer_window,
            self.config.limits.initial_window,
        ));
        self.remote_open += 1;
        self.events.push_back(Event::IncomingChannel {
            key,
            service: open.service,
            priority,
        });
        Ok(())
    }

    /// Accept (`answer` None) or Reject of a channel we opened.
    fn handle_answer(
        &mut self,
        channel: u32,
        answer: Option<(Reason, String)>,
    ) -> Result<(), ProtocolViolation> {
        let Some((id, key)) = self.lookup(channel)? else {
            return Ok(());
        };
        let Some(ch) = self.channels.get_mut(&key) else {
            return Ok(());
        };
        if ch.state != ChannelState::Opening {
            return Err(violation(
                Reason::ProtocolError,
                format!("Accept or Reject for channel {id}, which is not awaiting one"),
            ));
        }
        match answer {
            None => ch.state = ChannelState::Open,
            Some((reason, message)) => {
                ch.state = ChannelState::Rejected { reason, message };
                self.detach(key);
            }
        }
        self.events.push_back(Event::Channel(key));
        Ok(())
    }

    fn handle_close(&mut self, close: pb::Close) -> Result<(), ProtocolViolation> {
        let Some((id, key)) = self.lookup(close.channel)? else {
            return Ok(());
        };
        let reason = Reason::try_from(close.reason).unwrap_or(Reason::Unspecified);
        let Some(ch) = self.channels.get_mut(&key) else {
            return Ok(());
        };
        if reason != Reason::Normal {
            ch.state = ChannelState::Reset {
                reason,
                message: close.message,
            };
            self.detach(key);
            self.events.push_back(Event::Channel(key));
            return Ok(());
        }
        if ch.recv_fin {
            return Err(violation(
                Reason::ProtocolError,
                format!("channel {id} closed twice"),
            ));
        }
        if !ch.incomplete.is_empty() {
            return Err(violation(
                Reason::ProtocolError,
                format!("channel {id} closed in the middle of a message"),
            ));
        }
        ch.recv_fin = true;
        if ch.is_finished() {
            self.detach(key);
        }
        self.events.push_back(Event::Channel(key));
        Ok(())
    }

    fn handle_window(&mut self, window: pb::Window) -> Result<(), ProtocolViolation> {
        let Some((id, key)) = self.lookup(window.channel)? else {
            return Ok(());
        };
        let Some(ch) = self.channels.get_mut(&key) else {
            return Ok(());
        };
        let credit = ch.send_credit + u64::from(window.increment);
        if credit > MAX_CREDIT {
            return Err(violation(
                Reason::FlowControl,
                format!("credit on channel {id} would reach {credit}, above {MAX_CREDIT}"),
            ));
        }
        let was_blocked = ch.send_credit == 0;
        ch.send_credit = credit;
        if was_blocked && window.increment > 0 {
            self.events.push_back(Event::Channel(key));
        }
        Ok(())
    }

    fn handle_pong(&mut self, now: Instant, nonce: u64) {
        let Some(at) = self.pings.iter().position(|&(n, _)| n == nonce) else {
            return;
        };
        let Some((_, sent)) = self.pings.remove(at) else {
            return;
        };
        let rtt = now.saturating_duration_since(sent);
        self.srtt = Some(match self.srtt {
            None => rtt,
            Some(srtt) => (srtt * 7 + rtt) / 8,
        });
        self.min_rtt = Some(self.min_rtt.map_or(rtt, |min| min.min(rtt)));
        self.last_rtt_sample = Some(now);
        self.events.push_back(Event::Pong { nonce, rtt });
    }

    fn handle_qos(&mut self, now: Instant, qos: pb::Qos) -> Result<(), ProtocolViolation> {
        let Some((_, key)) = self.lookup(qos.channel)? else {
            return Ok(());
        };
        if let Some(ch) = self.channels.get_mut(&key) {
            ch.priority = clamp_priority(qos.priority);
            ch.rate = (qos.max_bytes_per_sec > 0).then(|| RateCap::new(qos.max_bytes_per_sec, now));
        }
        Ok(())
    }

    fn handle_data(
        &mut self,
        now: Instant,
        id: u16,
        more: bool,
        body: Bytes,
    ) -> Result<(), ProtocolViolation> {
        if self.state == State::AwaitingHello {
            return Err(violation(Reason::ProtocolError, "first frame is not Hello"));
        }
        let Some((_, key)) = self.lookup(u32::from(id))? else {
            return Ok(());
        };
        let max_message = self.config.limits.max_message_size as usize;
        let max_incomplete = self.config.limits.max_incomplete;
        let Some(ch) = self.channels.get_mut(&key) else {
            return Ok(());
        };
        if ch.recv_fin {
            return Err(violation(
                Reason::ProtocolError,
                format!("data on channel {id} after the peer closed it"),
            ));
        }
        let len = body.len();
        if len as u64 > ch.recv_credit {
            return Err(violation(
                Reason::FlowControl,
                format!(
                    "{len} bytes on channel {id} with {} bytes of credit",
                    ch.recv_credit
                ),
            ));
        }
        let reassembled = ch.reassembled_len(len);
        if reassembled > max_message {
            let message = format!("message of at least {reassembled} bytes exceeds {max_message}");
            self.reset_channel(key, Reason::MessageTooLarge, message);
            return Ok(());
        }
        if more && self.incomplete_total + len > max_incomplete {
            let message = format!("incomplete messages would exceed {max_incomplete} bytes");
            self.reset_channel(key, Reason::MessageTooLarge, message);
            return Ok(());
        }
        let (incomplete_delta, complete) = ch.receive(body, more);
        self.incomplete_total = self
            .incomplete_total
            .saturating_add_signed(incomplete_delta);
        if complete {
            self.events.push_back(Event::Channel(key));
        }
        self.maybe_probe_rtt(now);
        Ok(())
    }

    /// Finds the live channel that a frame or control message names: its id
    /// and key, `Ok(None)` for one that was used and is gone (its frames are
    /// discarded silently), an error for an invalid id or one that was never
    /// opened.
    fn lookup(&self, channel: u32) -> Result<Option<(u16, ChannelKey)>, ProtocolViolation> {
        let id = channel_id(channel)?;
        match self.by_id.get(&id) {
            Some(&key) => Ok(Some((id, key))),
            None if self.used_ids.contains(id) => Ok(None),
            None => Err(violation(
                Reason::ProtocolError,
                format!("channel {id} was never opened"),
            )),
        }
    }

    // ---------------------------------------------------------------------
    // Commands from services.

    /// Opens a channel to `service`. Data may be sent at once, within the
    /// peer's initial window; the answer arrives as [`Event::Channel`].
    pub fn open(&mut self, service: &str, priority: u8) -> Result<ChannelKey, OpenError> {
        match &self.state {
            State::AwaitingHello => return Err(OpenError::NotEstablished),
            State::Draining { reason, .. } | State::Closing { reason } => {
                return Err(OpenError::Closing { reason: *reason });
            }
            State::Established => {}
        }
        let (max_channels, peer_window) = self
            .peer
            .as_ref()
            .map_or((0, 0), |p| (p.max_channels, p.initial_window));
        if self.local_open >= max_channels {
            return Err(OpenError::TooManyChannels { max: max_channels });
        }
        // Our ids: odd or even, cycling, skipping ids in use. local_open is
        // below the peer's limit, which is far below 32767, so one is free.
        let mut id = self.next_local_id;
        while self.by_id.contains_key(&id) {
            id = next_same_parity(id);
        }
        self.next_local_id = next_same_parity(id);
        let priority = priority.min(MAX_PRIORITY);
        self.used_ids.insert(id);
        let key = self.insert_channel(Channel::new(
            id,
            service.to_owned(),
            ChannelState::Opening,
            priority,
            peer_window,
            self.config.limits.initial_window,
        ));
        self.local_open += 1;
        self.control_out.push(Msg::Open(pb::Open {
            channel: id.into(),
            service: service.to_owned(),
            priority: priority.into(),
        }));
        Ok(key)
    }

    /// Accepts a channel the peer opened.
    pub fn accept(&mut self, key: ChannelKey) -> Result<(), ChannelError> {
        let ch = self
            .channels
            .get_mut(&key)
            .ok_or(ChannelError::UnknownChannel)?;
        if ch.state == ChannelState::Incoming {
            ch.state = ChannelState::Open;
            self.control_out.push(Msg::Accept(pb::Accept {
                channel: ch.id.into(),
            }));
        }
        Ok(())
    }

    /// Rejects a channel the peer opened; data it sent is dropped.
    pub fn reject(
        &mut self,
        key: ChannelKey,
        reason: Reason,
        message: &str,
    ) -> Result<(), ChannelError> {
        let ch = self
            .channels
            .get_mut(&key)
            .ok_or(ChannelError::UnknownChannel)?;
        if ch.state != ChannelState::Incoming {
            return Ok(());
        }
        self.control_out.push(Msg::Reject(pb::Reject {
            channel: ch.id.into(),
            reason: reason.into(),
            message: message.into(),
        }));
        ch.state = ChannelState::Rejected {
            reason,
            message: message.into(),
        };
        self.detach(key);
        self.channels.remove(&key);
        Ok(())
    }

    /// Queues a whole message on a channel.
    pub fn send(&mut self, key: ChannelKey, message: Bytes) -> Result<SendOutcome, ChannelError> {
        if let State::Draining { reason, .. } | State::Closing { reason } = self.state {
            return Err(ChannelError::ConnectionClosed { reason });
        }
        let max = self
            .peer
            .as_ref()
            .map_or(DEFAULT_MAX_MESSAGE_SIZE, |p| p.max_message_size);
        let channel_limit = self.config.limits.channel_send_buffer;
        let connection_full = self.send_total >= self.config.limits.connection_send_buffer;
        let ch = self
            .channels
            .get_mut(&key)
            .ok_or(ChannelError::UnknownChannel)?;
        check_usable(ch)?;
        if ch.send_fin != SendFin::Open {
            return Err(ChannelError::Finished);
        }
        if message.len() > max as usize {
            return Err(ChannelError::MessageTooLarge {
                size: message.len(),
                max,
            });
        }
        let room = ch.send_queue.is_empty()
            || (ch.send_queued + message.len() <= channel_limit && !connection_full);
        if !room {
            ch.send_blocked = true;
            return Ok(SendOutcome::Full(message));
        }
        ch.send_queued += message.len();
        self.send_total += message.len();
        ch.send_queue.push_back(message);
        Ok(SendOutcome::Queued)
    }

    /// Takes the next whole message: `Ready(Ok(Some))`, `Ready(Ok(None))`
    /// once the peer has finished and everything was read, or `Pending`.
    pub fn recv(&mut self, key: ChannelKey) -> Poll<Result<Option<Bytes>, ChannelError>> {
        let closed = match self.state {
            State::Closing { reason } => Some(reason),
            _ => None,
        };
        let Some(ch) = self.channels.get_mut(&key) else {
            return Poll::Ready(Err(ChannelError::UnknownChannel));
        };
        if let Some(message) = ch.pop_message() {
            return Poll::Ready(Ok(Some(message)));
        }
        if let Err(e) = check_usable(ch) {
            return Poll::Ready(Err(e));
        }
        if ch.recv_fin {
            return Poll::Ready(Ok(None));
        }
        match closed {
            Some(reason) => Poll::Ready(Err(ChannelError::ConnectionClosed { reason })),
            None => Poll::Pending,
        }
    }

    /// Whether `send` would queue a message now (the channel has buffer
    /// room), or the error it would give.
    pub fn poll_writable(&self, key: ChannelKey) -> Poll<Result<(), ChannelError>> {
        if let State::Draining { reason, .. } | State::Closing { reason } = self.state {
            return Poll::Ready(Err(ChannelError::ConnectionClosed { reason }));
        }
        let Some(ch) = self.channels.get(&key) else {
            return Poll::Ready(Err(ChannelError::UnknownChannel));
        };
        if let Err(e) = check_usable(ch) {
            return Poll::Ready(Err(e));
        }
        if ch.send_fin != SendFin::Open {
            return Poll::Ready(Err(ChannelError::Finished));
        }
        let connection_full = self.send_total >= self.config.limits.connection_send_buffer;
        if ch.send_queue.is_empty()
            || (ch.send_queued < self.config.limits.channel_send_buffer && !connection_full)
        {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }

    /// Where a channel stands.
    pub fn channel_state(&self, key: ChannelKey) -> Option<&ChannelState> {
        self.channels.get(&key).map(|ch| &ch.state)
    }

    /// The service a channel was opened for.
    pub fn channel_service(&self, key: ChannelKey) -> Option<&str> {
        self.channels.get(&key).map(|ch| ch.service.as_str())
    }

    /// The wire id of a channel.
    pub fn channel_id(&self, key: ChannelKey) -> Option<u16> {
        self.channels.get(&key).map(|ch| ch.id)
    }

    /// Half-closes our direction: Close{NORMAL} goes out after the queued data.
    pub fn finish(&mut self, key: ChannelKey) -> Result<(), ChannelError> {
        let ch = self
            .channels
            .get_mut(&key)
            .ok_or(ChannelError::UnknownChannel)?;
        check_usable(ch)?;
        if ch.send_fin == SendFin::Open {
            ch.send_fin = SendFin::Requested;
            self.flush_fin(key);
        }
        Ok(())
    }

    /// Resets a channel: both directions end at once.
    pub fn reset(
        &mut self,
        key: ChannelKey,
        reason: Reason,
        message: &str,
    ) -> Result<(), ChannelError> {
        let ch = self
            .channels
            .get(&key)
            .ok_or(ChannelError::UnknownChannel)?;
        if !ch.is_dead() && !ch.detached {
            self.reset_channel(key, reason, message.into());
        }
        Ok(())
    }

    /// The service dropped its handle: our side finishes gracefully, data
    /// still arriving is discarded (and credited) until the peer finishes, and
    /// the channel is forgotten once it is finished or dead.
    pub fn release(&mut self, key: ChannelKey) {
        let Some(ch) = self.channels.get_mut(&key) else {
            return;
        };
        ch.released = true;
        if ch.state == ChannelState::Incoming {
            let _ = self.reject(key, Reason::Refused, "channel dropped");
            return;
        }
        // Unread messages count as consumed.
        while ch.pop_message().is_some() {}
        if !ch.is_dead() && ch.send_fin == SendFin::Open {
            ch.send_fin = SendFin::Requested;
            self.flush_fin(key);
        }
        self.forget_if_done(key);
    }

    /// Replaces the services we advertise (sends `Services`).
    pub fn set_services(&mut self, services: Vec<pb::ServiceAd>) {
        if self.is_established() {
            self.control_out
                .push(Msg::Services(pb::Services { services }));
        }
    }

    /// Asks the peer to send on `key` at `priority`, at most
    /// `max_bytes_per_sec` (0 = no cap).
    pub fn request_qos(
        &mut self,
        key: ChannelKey,
        priority: u8,
        max_bytes_per_sec: u64,
    ) -> Result<(), ChannelError> {
        let ch = self
            .channels
            .get(&key)
            .ok_or(ChannelError::UnknownChannel)?;
        check_usable(ch)?;
        self.control_out.push(Msg::Qos(pb::Qos {
            channel: ch.id.into(),
            priority: priority.min(MAX_PRIORITY).into(),
            max_bytes_per_sec,
        }));
        Ok(())
    }

    /// Sends a Ping with `padding` bytes of padding (at most 1024); its Pong
    /// arrives as [`Event::Pong`] with the same nonce.
    pub fn ping(&mut self, now: Instant, padding: usize) -> u64 {
        self.queue_ping(now, padding.min(MAX_PING_PADDING))
    }

    /// Starts a graceful GoAway: no new channels; queued data is sent (for up
    /// to [`DRAIN_TIMEOUT`]), then GoAway, then the driver closes.
    pub fn go_away(&mut self, now: Instant, reason: Reason, message: &str) {
        match self.state {
            State::Closing { .. } | State::Draining { .. } => {}
            State::AwaitingHello => self.close_with(reason, message.into()),
            State::Established => {
                self.state = State::Draining {
                    reason,
                    message: message.into(),
                    deadline: now + DRAIN_TIMEOUT,
                };
                self.notify_all_channels();
                self.maybe_finish_draining(now);
            }
        }
    }

    // ---------------------------------------------------------------------
    // Output and timers.

    /// Appends the next frame to send to `out` (header and body, ready to
    /// encrypt) and returns true, or returns false if nothing may be sent now.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut Vec<u8>) -> bool {
        if let Some(msg) = self.control_out.pop() {
            self.put_control(out, msg);
            self.last_send = now;
            return true;
        }
        if !self.is_established() {
            return false;
        }
        if self.poll_grant(now, out) || self.poll_data(now, out) {
            self.last_send = now;
            return true;
        }
        // A draining session whose queues just emptied sends its GoAway.
        self.maybe_finish_draining(now);
        if let Some(msg) = self.control_out.pop() {
            self.put_control(out, msg);
            self.last_send = now;
            return true;
        }
        false
    }

    fn put_control(&mut self, out: &mut Vec<u8>, msg: Msg) {
        frame::put_header(out, CONTROL_CHANNEL, false);
        pb::Control { msg: Some(msg) }
            .encode(out)
            .unwrap_or_else(|_| unreachable!("Vec grows"));
    }

    /// Sends one Window frame for a channel that owes enough credit, if the
    /// control budget allows, growing the window toward what the channel's
    /// measured rate needs.
    fn poll_grant(&mut self, now: Instant, out: &mut Vec<u8>) -> bool {
        let Some((&key, _)) = self.channels.iter().find(|(_, ch)| grant_due(ch)) else {
            return false;
        };
        if !self.outbound_control.try_take(now) {
            return false;
        }
        // One grant should cover the grant interval, the path's BDP, and this
        // channel's share of the control budget, whichever is longest.
        let busy = self
            .channels
            .values()
            .filter(|ch| {
                ch.last_grant
                    .is_some_and(|at| now.saturating_duration_since(at) < RATE_PERIOD)
            })
            .count()
            .max(1) as u32;
        let interval = self
            .min_rtt
            .map_or(GRANT_INTERVAL, |rtt| (rtt * 2).max(GRANT_INTERVAL))
            .max(Duration::from_secs(1) * busy / CONTROL_SEND_BUDGET_PER_SEC);
        let limits = &self.config.limits;
        let Some(ch) = self.channels.get_mut(&key) else {
            return false;
        };
        let mut increment = ch.pending_grant;
        let (start, bytes) = ch.rate_period.get_or_insert((now, 0));
        *bytes += increment;
        let elapsed = now.saturating_duration_since(*start);
        if elapsed >= RATE_PERIOD {
            let rate = *bytes as f64 / elapsed.as_secs_f64();
            let wanted =
                (2.0 * rate * interval.as_secs_f64()).min(f64::from(limits.max_window)) as u32;
            if wanted > ch.window {
                let extra = u64::from(wanted - ch.window);
                if self.window_total + extra <= limits.connection_window {
                    self.window_total += extra;
                    ch.window = wanted;
                    increment += extra;
                }
            }
            ch.rate_period = Some((now, 0));
        }
        ch.last_grant = Some(now);
        ch.pending_grant = 0;
        ch.recv_credit += increment;
        let id = ch.id;
        // Credit never exceeds the window, which is at most 16 MiB.
        let increment = u32::try_from(increment).unwrap_or(u32::MAX);
        self.put_control(
            out,
            Msg::Window(pb::Window {
                channel: id.into(),
                increment,
            }),
        );
        true
    }

    /// Sends one data frame, choosing the channel by priority with
    /// round-robin among equals and a starvation guard.
    fn poll_data(&mut self, now: Instant, out: &mut Vec<u8>) -> bool {
        let mut best: Option<(ChannelKey, u8, u64)> = None;
        let mut oldest: Option<(ChannelKey, u64)> = None;
        let mut lowest_priority = u8::MAX;
        let mut ready = 0usize;
        for (&key, ch) in &mut self.channels {
            if ch.detached || ch.is_dead() || ch.sendable(now).is_none() {
                continue;
            }
            ready += 1;
            lowest_priority = lowest_priority.min(ch.priority);
            let better = best.is_none_or(|(_, p, seq)| {
                (ch.priority, std::cmp::Reverse(ch.last_served)) > (p, std::cmp::Reverse(seq))
            });
            if better {
                best = Some((key, ch.priority, ch.last_served));
            }
            if oldest.is_none_or(|(_, seq)| ch.last_served < seq) {
                oldest = Some((key, ch.last_served));
            }
        }
        let (Some((best_key, best_priority, _)), Some((oldest_key, _))) = (best, oldest) else {
            return false;
        };
        let key = if self.preempted >= STARVATION_GUARD {
            self.preempted = 0;
            oldest_key
        } else {
            if lowest_priority < best_priority {
                self.preempted += 1;
            } else {
                self.preempted = 0;
            }
            best_key
        };
        let cut = if ready > 1 {
            SHARED_FRAME_CUT
        } else {
            MAX_FRAME_BODY
        };
        self.serve_seq += 1;
        let Some(ch) = self.channels.get_mut(&key) else {
            return false;
        };
        let len = ch.sendable(now).unwrap_or(0).min(cut);
        ch.last_served = self.serve_seq;
        let (body, more) = ch.take_frame(len);
        self.send_total -= len;
        frame::put_header(out, ch.id, more);
        out.extend_from_slice(&body);
        self.flush_fin(key);
        self.notify_writable();
        true
    }

    /// When [`Session::handle_timeout`] should next run, if anything is timed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut at = match &self.state {
            State::Closing { .. } => return None,
            State::AwaitingHello => self.started + self.config.limits.hello_timeout,
            State::Draining { deadline, .. } => *deadline,
            State::Established => self.last_recv + self.config.limits.idle_timeout,
        };
        at = at
            .min(self.last_recv + self.config.limits.idle_timeout)
            .min(self.last_send + self.config.limits.keepalive_interval);
        if self.channels.values().any(grant_due) {
            at = at.min(self.outbound_control.ready_at());
        }
        for ch in self.channels.values() {
            if let Some(ready) = ch.rate_ready_at() {
                at = at.min(ready);
            }
        }
        Some(at)
    }

    /// Runs the timers due at `now`: Hello and idle timeouts, keepalive, the
    /// drain deadline. A timeout is returned as the violation it caused.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), ProtocolViolation> {
        let timeout = match &self.state {
            State::Closing { .. } => return Ok(()),
            State::AwaitingHello if now >= self.started + self.config.limits.hello_timeout => Some(
                format!("no Hello within {:?}", self.config.limits.hello_timeout),
            ),
            _ if now >= self.last_recv + self.config.limits.idle_timeout => Some(format!(
                "nothing received for {:?}",
                self.config.limits.idle_timeout
            )),
            _ => None,
        };
        if let Some(message) = timeout {
            let v = violation(Reason::Timeout, message);
            self.close_with(v.reason, v.message.clone());
            return Err(v);
        }
        if now >= self.last_send + self.config.limits.keepalive_interval && self.is_established() {
            self.queue_ping(now, 0);
        }
        self.maybe_finish_draining(now);
        Ok(())
    }

    // ---------------------------------------------------------------------
    // Internals.

    fn insert_channel(&mut self, ch: Channel) -> ChannelKey {
        let key = ChannelKey(self.next_key);
        self.next_key += 1;
        self.window_total += u64::from(ch.window);
        self.by_id.insert(ch.id, key);
        self.channels.insert(key, ch);
        key
    }

    /// The channel's wire id is free again (finished, reset or rejected);
    /// its state stays for the service until it releases the handle.
    fn detach(&mut self, key: ChannelKey) {
        let Some(ch) = self.channels.get_mut(&key) else {
            return;
        };
        if ch.detached {
            return;
        }
        ch.detached = true;
        self.by_id.remove(&ch.id);
        self.window_total -= u64::from(ch.window);
        if self.config.role.allocates(ch.id) {
            self.local_open -= 1;
        } else {
            self.remote_open -= 1;
        }
        if ch.is_dead() {
            let (incomplete, queued) = ch.clear();
            self.incomplete_total -= incomplete;
            self.send_total -= queued;
        }
        self.forget_if_done(key);
    }

    fn forget_if_done(&mut self, key: ChannelKey) {
        if self
            .channels
            .get(&key)
            .is_some_and(|ch| ch.released && ch.detached)
        {
            self.channels.remove(&key);
        }
    }

    fn reset_channel(&mut self, key: ChannelKey, reason: Reason, message: String) {
        let Some(ch) = self.channels.get_mut(&key) else {
            return;
        };
        self.control_out.push(Msg::Close(pb::Close {
            channel: ch.id.into(),
            reason: reason.into(),
            message: message.clone(),
        }));
        ch.state = ChannelState::Reset { reason, message };
        self.detach(key);
        self.events.push_back(Event::Channel(key));
    }

    /// Sends Close{NORMAL} once a finishing channel's queue is empty.
    fn flush_fin(&mut self, key: ChannelKey) {
        let Some(ch) = self.channels.get_mut(&key) else {
            return;
        };
        if ch.send_fin != SendFin::Requested || !ch.send_queue.is_empty() {
            return;
        }
        ch.send_fin = SendFin::Sent;
        self.control_out.push(Msg::Close(pb::Close {
            channel: ch.id.into(),
            reason: Reason::Normal.into(),
            message: String::new(),
        }));
        if ch.is_finished() {
            self.detach(key);
        }
    }

    /// Wakes senders that were refused for lack of buffer space and now have it.
    fn notify_writable(&mut self) {
        let connection_full = self.send_total >= self.config.limits.connection_send_buffer;
        if connection_full {
            return;
        }
        let limit = self.config.limits.channel_send_buffer;
        for (&key, ch) in &mut self.channels {
            if ch.send_blocked && (ch.send_queue.is_empty() || ch.send_queued < limit) {
                ch.send_blocked = false;
                self.events.push_back(Event::Channel(key));
            }
        }
    }

    fn notify_all_channels(&mut self) {
        let keys: Vec<_> = self.channels.keys().copied().collect();
        self.events.extend(keys.into_iter().map(Event::Channel));
    }

    fn maybe_finish_draining(&mut self, now: Instant) {
        let State::Draining {
            reason,
            message,
            deadline,
        } = &self.state
        else {
            return;
        };
        if self.send_total == 0 || now >= *deadline {
            let (reason, message) = (*reason, message.clone());
            self.close_with(reason, message);
        }
    }

    /// Queues GoAway(reason) as the last frame and stops everything else.
    fn close_with(&mut self, reason: Reason, message: String) {
        if matches!(self.state, State::Closing { .. }) {
            return;
        }
        self.control_out.close(Some(Msg::GoAway(pb::GoAway {
            reason: reason.into(),
            message,
        })));
        self.state = State::Closing { reason };
        self.notify_all_channels();
    }

    fn queue_ping(&mut self, now: Instant, padding: usize) -> u64 {
        let nonce = self.next_nonce;
        self.next_nonce = self.next_nonce.wrapping_add(1);
        if self.pings.len() == MAX_OUTSTANDING_PINGS {
            self.pings.pop_front();
        }
        self.pings.push_back((nonce, now));
        self.control_out.push(Msg::Ping(pb::Ping {
            nonce,
            padding: vec![0; padding].into(),
        }));
        nonce
    }

    /// Re-measures the RTT now and then while data flows, for window tuning.
    fn maybe_probe_rtt(&mut self, now: Instant) {
        let stale = self
            .last_rtt_sample
            .is_none_or(|at| now.saturating_duration_since(at) >= RTT_PROBE_INTERVAL);
        if stale && self.pings.is_empty() && self.outbound_control.try_take(now) {
            self.queue_ping(now, 0);
        }
    }
}

/// A Window is due when half the window is owed, or anything is owed while
/// the peer has no credit left.
fn grant_due(ch: &Channel) -> bool {
    !ch.detached
        && ch.pending_grant > 0
        && (ch.pending_grant >= u64::from(ch.window / 2) || ch.recv_credit == 0)
}

fn check_usable(ch: &Channel) -> Result<(), ChannelError> {
    match &ch.state {
        ChannelState::Rejected { reason, message } => Err(ChannelError::Rejected {
            reason: *reason,
            message: message.clone(),
        }),
        ChannelState::Reset { reason, message } => Err(ChannelError::Reset {
            reason: *reason,
            message: message.clone(),
        }),
        _ => Ok(()),
    }
}

fn violation(reason: Reason, message: impl Into<String>) -> ProtocolViolation {
    ProtocolViolation {
        reason,
        message: message.into(),
    }
}

fn channel_id(channel: u32) -> Result<u16, ProtocolViolation> {
    match u16::try_from(channel) {
        Ok(id) if id != CONTROL_CHANNEL => Ok(id),
        _ => Err(violation(
            Reason::ProtocolError,
            format!("invalid channel id {channel}"),
        )),
    }
}

fn or_default(value: u32, default: u32) -> u32 {
    if value == 0 { default } else { value }
}

fn clamp_priority(priority: u32) -> u8 {
    u8::try_from(priority)
        .unwrap_or(MAX_PRIORITY)
        .min(MAX_PRIORITY)
}

fn next_same_parity(id: u16) -> u16 {
    match id.checked_add(2) {
        Some(next) => next,
        None => 2 - (id % 2),
    }
}
