//! The sans-IO session driven directly: two sessions pumped against each
//! other in memory, and a raw peer that sends hand-built frames, including
//! every bad input of SWP1.md sections 3 to 8.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use prost::Message as _;
use skywire_wire::channel::ChannelState;
use skywire_wire::frame::{Frame, put_header};
use skywire_wire::limits::{Limits, SHARED_FRAME_CUT};
use skywire_wire::pb::{self, control::Msg};
use skywire_wire::session::{LocalHello, SendOutcome};
use skywire_wire::{ChannelKey, Event, Reason, Role, Session, SessionConfig};

const A_ID: [u8; 33] = [2; 33];
const B_ID: [u8; 33] = [3; 33];

fn config(role: Role, limits: Limits) -> SessionConfig {
    let (local_id, remote_id) = if role == Role::Dialer {
        (A_ID, B_ID)
    } else {
        (B_ID, A_ID)
    };
    SessionConfig {
        role,
        local_id,
        remote_id,
        hello: LocalHello {
            user_agent: "test".into(),
            ..LocalHello::default()
        },
        limits,
        known_features: vec![],
    }
}

/// Every frame the session wants to send now.
fn drain(s: &mut Session, now: Instant) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    loop {
        let mut out = Vec::new();
        if !s.poll_transmit(now, &mut out) {
            return frames;
        }
        frames.push(out);
    }
}

fn control_of(frame: &[u8]) -> Option<Msg> {
    let f = Frame::decode(frame).unwrap();
    (f.channel == 0)
        .then(|| pb::Control::decode(f.body).unwrap().msg)
        .flatten()
}

fn go_away_of(frames: &[Vec<u8>]) -> Option<Reason> {
    frames.iter().find_map(|f| match control_of(f) {
        Some(Msg::GoAway(g)) => Some(Reason::try_from(g.reason).unwrap()),
        _ => None,
    })
}

fn control(msg: Msg) -> Bytes {
    let mut out = Vec::new();
    put_header(&mut out, 0, false);
    pb::Control { msg: Some(msg) }.encode(&mut out).unwrap();
    out.into()
}

fn data(channel: u16, more: bool, body: &[u8]) -> Bytes {
    let mut out = Vec::new();
    put_header(&mut out, channel, more);
    out.extend_from_slice(body);
    out.into()
}

fn hello() -> Msg {
    Msg::Hello(pb::Hello {
        protocol_version: 1,
        ..Default::default()
    })
}

fn events(s: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

/// Two sessions joined in memory.
struct Pair {
    a: Session,
    b: Session,
    now: Instant,
}

impl Pair {
    fn new() -> Self {
        Self::with_limits(Limits::default(), Limits::default())
    }

    fn with_limits(a: Limits, b: Limits) -> Self {
        let now = Instant::now();
        let mut pair = Self {
            a: Session::new(config(Role::Dialer, a), now),
            b: Session::new(config(Role::Listener, b), now),
            now,
        };
        pair.pump();
        assert!(pair.a.is_established() && pair.b.is_established());
        pair
    }

    /// Moves frames both ways until neither side has anything to send.
    fn pump(&mut self) {
        loop {
            let to_b = drain(&mut self.a, self.now);
            let to_a = drain(&mut self.b, self.now);
            if to_b.is_empty() && to_a.is_empty() {
                return;
            }
            for f in to_b {
                self.b.handle_frame(self.now, f.into()).unwrap();
            }
            for f in to_a {
                self.a.handle_frame(self.now, f.into()).unwrap();
            }
        }
    }

    /// Opens a channel from A and accepts it on B.
    fn open(&mut self, service: &str, priority: u8) -> (ChannelKey, ChannelKey) {
        let ka = self.a.open(service, priority).unwrap();
        self.pump();
        let kb = events(&mut self.b)
            .into_iter()
            .find_map(|e| match e {
                Event::IncomingChannel {
                    key, service: s, ..
                } if s == service => Some(key),
                _ => None,
            })
            .expect("incoming channel");
        self.b.accept(kb).unwrap();
        self.pump();
        assert_eq!(self.a.channel_state(ka), Some(&ChannelState::Open));
        (ka, kb)
    }
}

fn recv_all(s: &mut Session, key: ChannelKey) -> Vec<Bytes> {
    let mut out = Vec::new();
    while let Poll::Ready(Ok(Some(m))) = s.recv(key) {
        out.push(m);
    }
    out
}

/// A session B (listener) and a raw peer that has sent its Hello.
fn raw_peer(limits: Limits) -> (Session, Instant) {
    let now = Instant::now();
    let mut b = Session::new(config(Role::Listener, limits), now);
    drain(&mut b, now);
    b.handle_frame(now, control(hello())).unwrap();
    drain(&mut b, now);
    events(&mut b);
    (b, now)
}

/// Feeds `frames` to a fresh session and returns the GoAway reason it sends.
fn violation_reason(frames: Vec<Bytes>) -> Option<Reason> {
    let (mut b, now) = raw_peer(Limits::default());
    for f in frames {
        if b.handle_frame(now, f).is_err() {
            break;
        }
    }
    go_away_of(&drain(&mut b, now))
}

fn open_msg(channel: u32) -> Bytes {
    control(Msg::Open(pb::Open {
        channel,
        service: "echo/1".into(),
        priority: 0,
    }))
}

#[test]
fn hello_exchange_establishes_and_measures_rtt() {
    let mut p = Pair::new();
    let ev = events(&mut p.a);
    assert!(
        matches!(&ev[0], Event::Established(h) if h.user_agent == "test" && h.max_channels == 256)
    );
    assert!(ev.iter().any(|e| matches!(e, Event::Pong { .. })));
    assert!(p.a.rtt().is_some());
    let nonce = p.b.ping(p.now, 1024);
    p.pump();
    assert!(
        events(&mut p.b)
            .iter()
            .any(|e| matches!(e, Event::Pong { nonce: n, .. } if *n == nonce))
    );
}

#[test]
fn messages_flow_both_ways_whole_and_in_order() {
    let mut p = Pair::new();
    let (ka, kb) = p.open("echo/1", 3);
    let big: Bytes = (0..3_000_000u32)
        .map(|i| i as u8)
        .collect::<Vec<_>>()
        .into();
    let sent = [Bytes::from_static(b"one"), Bytes::new(), big];
    let mut got = Vec::new();
    for m in &sent {
        // A message larger than the send buffer waits for an empty queue.
        while let SendOutcome::Full(_) = p.a.send(ka, m.clone()).unwrap() {
            p.pump();
            got.extend(recv_all(&mut p.b, kb));
        }
    }
    while got.len() < 3 {
        p.pump();
        got.extend(recv_all(&mut p.b, kb));
    }
    assert!(got == sent, "messages differ");
    p.b.send(kb, Bytes::from_static(b"back")).unwrap();
    p.pump();
    assert_eq!(recv_all(&mut p.a, ka), vec![Bytes::from_static(b"back")]);
}

#[test]
fn half_close_finishes_and_frees_the_id() {
    let mut p = Pair::new();
    let (ka, kb) = p.open("echo/1", 0);
    p.a.send(ka, Bytes::from_static(b"last")).unwrap();
    p.a.finish(ka).unwrap();
    p.pump();
    assert_eq!(
        p.b.recv(kb),
        Poll::Ready(Ok(Some(Bytes::from_static(b"last"))))
    );
    assert_eq!(p.b.recv(kb), Poll::Ready(Ok(None)));
    // B may still send after A's half-close.
    p.b.send(kb, Bytes::from_static(b"reply")).unwrap();
    p.b.finish(kb).unwrap();
    p.pump();
    assert_eq!(
        p.a.recv(ka),
        Poll::Ready(Ok(Some(Bytes::from_static(b"reply"))))
    );
    assert_eq!(p.a.recv(ka), Poll::Ready(Ok(None)));
    assert_eq!(
        p.a.send(ka, Bytes::new()),
        Err(skywire_wire::session::ChannelError::Finished)
    );
    assert!(p.a.is_established() && p.b.is_established());
}

#[test]
fn finished_ids_may_be_reopened_but_live_ones_may_not() {
    let close = control(Msg::Close(pb::Close {
        channel: 1,
        reason: Reason::Normal as i32,
        message: String::new(),
    }));
    let (mut b, now) = raw_peer(Limits::default());
    b.handle_frame(now, open_msg(1)).unwrap();
    let key = match b.poll_event() {
        Some(Event::IncomingChannel { key, .. }) => key,
        other => panic!("{other:?}"),
    };
    b.accept(key).unwrap();
    b.handle_frame(now, close.clone()).unwrap();
    // Half-closed by the peer only: the id is still in use.
    assert_eq!(
        b.handle_frame(now, open_msg(1)).unwrap_err().reason,
        Reason::ProtocolError
    );

    let (mut b, now) = raw_peer(Limits::default());
    b.handle_frame(now, open_msg(1)).unwrap();
    let Some(Event::IncomingChannel { key, .. }) = b.poll_event() else {
        panic!()
    };
    b.accept(key).unwrap();
    b.handle_frame(now, close).unwrap();
    b.finish(key).unwrap();
    assert_eq!(b.recv(key), Poll::Ready(Ok(None)));
    b.handle_frame(now, open_msg(1)).unwrap();
    assert!(b.is_established());
}

#[test]
fn reset_ends_both_directions_and_late_data_is_discarded() {
    let mut p = Pair::new();
    let (ka, kb) = p.open("echo/1", 0);
    let id = p.a.channel_id(ka).unwrap();
    p.a.reset(ka, Reason::Refused, "no thanks").unwrap();
    // B's in-flight data for the channel reaches A after the reset.
    p.b.send(kb, Bytes::from_static(b"late")).unwrap();
    let late = drain(&mut p.b, p.now);
    p.pump();
    for f in late {
        p.a.handle_frame(p.now, f.into()).unwrap();
    }
    p.a.handle_frame(p.now, data(id, false, b"more late"))
        .unwrap();
    assert!(matches!(
        p.b.recv(kb),
        Poll::Ready(Err(skywire_wire::session::ChannelError::Reset {
            reason: Reason::Refused,
            ..
        }))
    ));
    assert!(matches!(p.a.recv(ka), Poll::Ready(Err(_))));
    assert!(p.a.is_established() && p.b.is_established());
}

#[test]
fn rejected_open_reports_the_reason() {
    let mut p = Pair::new();
    let ka = p.a.open("nope/1", 0).unwrap();
    p.a.send(ka, Bytes::from_static(b"optimistic")).unwrap();
    p.pump();
    let kb = events(&mut p.b)
        .into_iter()
        .find_map(|e| match e {
            Event::IncomingChannel { key, .. } => Some(key),
            _ => None,
        })
        .unwrap();
    p.b.reject(kb, Reason::UnknownService, "no such service")
        .unwrap();
    p.pump();
    assert_eq!(
        p.a.channel_state(ka),
        Some(&ChannelState::Rejected {
            reason: Reason::UnknownService,
            message: "no such service".into()
        })
    );
}

#[test]
fn slow_reader_slows_the_sender_and_memory_stays_bounded() {
    let mut p = Pair::new();
    let (ka, kb) = p.open("bulk/1", 0);
    let chunk = Bytes::from(vec![7u8; 64 << 10]);
    let mut queued = 0usize;
    // B never reads: A's queue fills, then `send` reports Full.
    loop {
        match p.a.send(ka, chunk.clone()).unwrap() {
            SendOutcome::Queued => queued += chunk.len(),
            SendOutcome::Full(_) => break,
        }
        p.pump();
        assert!(queued < 64 << 20, "sender never blocked");
    }
    p.pump();
    // Bytes that reached B are bounded by the window (256 KiB).
    let mut held = 0;
    while let Poll::Ready(Ok(Some(m))) = p.b.recv(kb) {
        held += m.len();
        if held >= 256 << 10 {
            break;
        }
    }
    assert_eq!(held, 256 << 10, "B holds exactly one window");
    // Reading frees credit and A's sender wakes.
    p.pump();
    recv_all(&mut p.b, kb);
    p.pump();
    assert!(events(&mut p.a).contains(&Event::Channel(ka)));
    assert_eq!(p.a.send(ka, chunk).unwrap(), SendOutcome::Queued);
}

#[test]
fn messages_larger_than_the_window_complete() {
    let mut p = Pair::new();
    let (ka, kb) = p.open("bulk/1", 0);
    let big = Bytes::from(vec![1u8; 4 << 20]);
    p.a.send(ka, big.clone()).unwrap();
    p.pump();
    assert!(
        p.b.recv(kb) == Poll::Ready(Ok(Some(big))),
        "4 MiB message differs"
    );
}

/// Streams `chunks` of 32 KiB from A to B, advancing the clock by `step`
/// per chunk, with B reading at once; returns the largest Window increment.
fn stream_with_clock(
    p: &mut Pair,
    ka: ChannelKey,
    kb: ChannelKey,
    chunks: usize,
    step: Duration,
) -> u32 {
    let chunk = Bytes::from(vec![0u8; 32 << 10]);
    let mut largest = 0;
    for _ in 0..chunks {
        p.now += step;
        let _ = p.a.send(ka, chunk.clone()).unwrap();
        for f in drain(&mut p.a, p.now) {
            p.b.handle_frame(p.now, f.into()).unwrap();
        }
        recv_all(&mut p.b, kb);
        for f in drain(&mut p.b, p.now) {
            if let Some(Msg::Window(w)) = control_of(&f) {
                largest = largest.max(w.increment);
            }
            p.a.handle_frame(p.now, f.into()).unwrap();
        }
    }
    largest
}

#[test]
fn busy_channels_grow_their_window_to_their_rate() {
    let mut p = Pair::new();
    let (ka, kb) = p.open("bulk/1", 0);
    // 32 KiB per 50 us is 655 MB/s: a grant should cover 1.25 ms of it,
    // about 0.8 MB, so the window grows to about 1.6 MB and no further.
    let largest = stream_with_clock(&mut p, ka, kb, 2000, Duration::from_micros(50));
    assert!(
        largest > 1 << 20,
        "window never grew: largest grant {largest}"
    );
    assert!(
        largest < 3 << 20,
        "window outgrew the rate: largest grant {largest}"
    );
}

#[test]
fn slow_channels_keep_the_initial_window() {
    let mut p = Pair::new();
    let (ka, kb) = p.open("bulk/1", 0);
    let largest = stream_with_clock(&mut p, ka, kb, 200, Duration::from_millis(10));
    assert!(
        largest <= 256 << 10,
        "window grew for a slow channel: largest grant {largest}"
    );
}

#[test]
fn priority_goes_first_and_frames_are_cut_while_others_wait() {
    let mut p = Pair::new();
    let (bulk, _) = p.open("bulk/1", 0);
    let (chat, _) = p.open("chat/1", 7);
    p.a.send(bulk, Bytes::from(vec![0u8; 200 << 10])).unwrap();
    p.a.send(chat, Bytes::from(vec![1u8; 40 << 10])).unwrap();
    let chat_id = p.a.channel_id(chat).unwrap();
    let bulk_id = p.a.channel_id(bulk).unwrap();
    let frames = drain(&mut p.a, p.now);
    let data: Vec<Frame<'_>> = frames
        .iter()
        .map(|f| Frame::decode(f).unwrap())
        .filter(|f| f.channel != 0)
        .collect();
    // The interactive message goes first, in 16 KiB frames while bulk waits.
    let chat_frames: Vec<_> = data.iter().take_while(|f| f.channel == chat_id).collect();
    assert_eq!(chat_frames.len(), 3);
    assert!(chat_frames.iter().all(|f| f.body.len() <= SHARED_FRAME_CUT));
    // Alone, bulk uses full-size frames.
    let bulk_sizes: Vec<_> = data
        .iter()
        .filter(|f| f.channel == bulk_id)
        .map(|f| f.body.len())
        .collect();
    assert!(
        bulk_sizes.iter().any(|&n| n > SHARED_FRAME_CUT),
        "{bulk_sizes:?}"
    );
}

#[test]
fn equal_priorities_share_and_nothing_starves() {
    let mut p = Pair::new();
    let (low, _) = p.open("bulk/1", 0);
    let (high1, _) = p.open("chat/1", 7);
    let (high2, _) = p.open("chat/2", 7);
    for k in [low, high1, high2] {
        p.a.send(k, Bytes::from(vec![0u8; 200 << 10])).unwrap();
    }
    let ids: Vec<u16> = [low, high1, high2]
        .iter()
        .map(|&k| p.a.channel_id(k).unwrap())
        .collect();
    let frames = drain(&mut p.a, p.now);
    let order: Vec<u16> = frames
        .iter()
        .map(|f| Frame::decode(f).unwrap().channel)
        .filter(|&c| c != 0)
        .collect();
    // The two high channels alternate.
    let highs: Vec<u16> = order
        .iter()
        .copied()
        .filter(|&c| c != ids[0])
        .take(6)
        .collect();
    assert!(highs.windows(2).all(|w| w[0] != w[1]), "{highs:?}");
    // The low channel is served before the high ones have used up their window.
    let first_low = order.iter().position(|&c| c == ids[0]).unwrap();
    let highs_before = order[..first_low].len();
    assert!(
        highs_before <= 17,
        "low channel waited for {highs_before} frames"
    );
    assert!(
        order[first_low..].iter().any(|&c| c != ids[0]),
        "high channels must still be served"
    );
}

#[test]
fn qos_caps_the_peer_rate() {
    let mut p = Pair::new();
    let (ka, kb) = p.open("bulk/1", 0);
    p.b.request_qos(kb, 2, 100_000).unwrap();
    p.pump();
    p.a.send(ka, Bytes::from(vec![0u8; 200 << 10])).unwrap();
    let first = drain(&mut p.a, p.now);
    let sent: usize = first
        .iter()
        .map(|f| Frame::decode(f).unwrap())
        .filter(|f| f.channel != 0)
        .map(|f| f.body.len())
        .sum();
    assert!(sent <= 16 << 10, "sent {sent} bytes in the first burst");
    let next = p.a.poll_timeout().unwrap();
    assert!(
        next > p.now && next <= p.now + Duration::from_millis(200),
        "{:?}",
        next - p.now
    );
}

#[test]
fn graceful_go_away_sends_queued_data_first() {
    let mut p = Pair::new();
    let (ka, kb) = p.open("echo/1", 0);
    p.a.send(ka, Bytes::from_static(b"before going")).unwrap();
    p.a.go_away(p.now, Reason::ShuttingDown, "bye");
    assert!(p.a.open("echo/1", 0).is_err());
    let frames = drain(&mut p.a, p.now);
    let last = frames.last().unwrap();
    assert!(
        matches!(control_of(last), Some(Msg::GoAway(g)) if g.reason == Reason::ShuttingDown as i32)
    );
    for f in frames {
        p.b.handle_frame(p.now, f.into()).unwrap();
    }
    assert_eq!(
        p.b.recv(kb),
        Poll::Ready(Ok(Some(Bytes::from_static(b"before going"))))
    );
    assert!(events(&mut p.b).iter().any(|e| matches!(
        e,
        Event::GoAway {
            reason: Reason::ShuttingDown,
            ..
        }
    )));
    assert!(p.a.is_closed() && p.b.is_closed());
}

#[test]
fn timers_keepalive_idle_and_hello() {
    let mut p = Pair::new();
    let t = p.now + Duration::from_secs(15);
    assert!(p.a.poll_timeout().unwrap() <= t);
    p.a.handle_timeout(t).unwrap();
    let frames = drain(&mut p.a, t);
    assert!(
        frames
            .iter()
            .any(|f| matches!(control_of(f), Some(Msg::Ping(_))))
    );
    let t = p.now + Duration::from_secs(45);
    assert_eq!(p.a.handle_timeout(t).unwrap_err().reason, Reason::Timeout);
    assert_eq!(go_away_of(&drain(&mut p.a, t)), Some(Reason::Timeout));

    let now = Instant::now();
    let mut silent = Session::new(config(Role::Listener, Limits::default()), now);
    drain(&mut silent, now);
    assert_eq!(silent.poll_timeout(), Some(now + Duration::from_secs(10)));
    let t = now + Duration::from_secs(10);
    assert_eq!(
        silent.handle_timeout(t).unwrap_err().reason,
        Reason::Timeout
    );
    assert_eq!(go_away_of(&drain(&mut silent, t)), Some(Reason::Timeout));
}

#[test]
fn self_connection_gets_go_away() {
    let now = Instant::now();
    let mut cfg = config(Role::Dialer, Limits::default());
    cfg.remote_id = cfg.local_id;
    let mut s = Session::new(cfg, now);
    let frames = drain(&mut s, now);
    assert_eq!(frames.len(), 1);
    assert_eq!(go_away_of(&frames), Some(Reason::SelfConnection));
}

#[test]
fn bad_hellos() {
    let now = Instant::now();
    let hello_with = |h: pb::Hello| {
        let mut b = Session::new(config(Role::Listener, Limits::default()), now);
        drain(&mut b, now);
        let _ = b.handle_frame(now, control(Msg::Hello(h)));
        go_away_of(&drain(&mut b, now))
    };
    let v1 = pb::Hello {
        protocol_version: 1,
        ..Default::default()
    };
    assert_eq!(
        hello_with(pb::Hello {
            protocol_version: 2,
            ..v1.clone()
        }),
        Some(Reason::IncompatibleVersion)
    );
    assert_eq!(
        hello_with(pb::Hello {
            features: vec![4],
            ..v1.clone()
        }),
        Some(Reason::IncompatibleVersion)
    );
    assert_eq!(
        hello_with(pb::Hello {
            features: vec![5],
            ..v1.clone()
        }),
        None
    );
    assert_eq!(
        hello_with(pb::Hello {
            initial_window: u32::MAX,
            ..v1
        }),
        Some(Reason::FlowControl)
    );
}

#[test]
fn first_frame_must_be_hello() {
    let now = Instant::now();
    for first in [
        open_msg(1),
        data(1, false, b"x"),
        control(Msg::Ping(pb::Ping::default())),
    ] {
        let mut b = Session::new(config(Role::Listener, Limits::default()), now);
        drain(&mut b, now);
        assert_eq!(
            b.handle_frame(now, first).unwrap_err().reason,
            Reason::ProtocolError
        );
        assert_eq!(go_away_of(&drain(&mut b, now)), Some(Reason::ProtocolError));
    }
    // GoAway before Hello is allowed.
    let mut b = Session::new(config(Role::Listener, Limits::default()), now);
    drain(&mut b, now);
    b.handle_frame(
        now,
        control(Msg::GoAway(pb::GoAway {
            reason: Reason::Banned as i32,
            message: String::new(),
        })),
    )
    .unwrap();
    assert!(b.is_closed());
}

#[test]
fn framing_violations() {
    assert_eq!(
        violation_reason(vec![data(0, true, b"")]),
        Some(Reason::ProtocolError)
    );
    assert_eq!(
        violation_reason(vec![Bytes::from_static(&[0, 1])]),
        Some(Reason::ProtocolError)
    );
    assert_eq!(
        violation_reason(vec![Bytes::from_static(&[0, 1, 0x80])]),
        Some(Reason::ProtocolError)
    );
    assert_eq!(
        violation_reason(vec![data(0, false, &[0xff, 0xff, 0xff])]),
        Some(Reason::ProtocolError)
    );
    assert_eq!(
        violation_reason(vec![control(hello())]),
        Some(Reason::ProtocolError)
    );
    // An empty Control is ignored.
    assert_eq!(violation_reason(vec![data(0, false, b"")]), None);
}

#[test]
fn channel_violations() {
    // The listener's peer dials, so it must use odd ids.
    assert_eq!(
        violation_reason(vec![open_msg(2)]),
        Some(Reason::ProtocolError)
    );
    assert_eq!(
        violation_reason(vec![open_msg(0)]),
        Some(Reason::ProtocolError)
    );
    assert_eq!(
        violation_reason(vec![open_msg(70_000)]),
        Some(Reason::ProtocolError)
    );
    assert_eq!(
        violation_reason(vec![open_msg(1), open_msg(1)]),
        Some(Reason::ProtocolError)
    );
    assert_eq!(
        violation_reason(vec![data(5, false, b"x")]),
        Some(Reason::ProtocolError)
    );
    let window = |channel, increment| control(Msg::Window(pb::Window { channel, increment }));
    assert_eq!(
        violation_reason(vec![window(9, 1)]),
        Some(Reason::ProtocolError)
    );
    let accept = control(Msg::Accept(pb::Accept { channel: 1 }));
    assert_eq!(
        violation_reason(vec![open_msg(1), accept]),
        Some(Reason::ProtocolError)
    );
    let close = |reason: Reason| {
        control(Msg::Close(pb::Close {
            channel: 1,
            reason: reason as i32,
            message: String::new(),
        }))
    };
    assert_eq!(
        violation_reason(vec![
            open_msg(1),
            close(Reason::Normal),
            close(Reason::Normal)
        ]),
        Some(Reason::ProtocolError)
    );
    assert_eq!(
        violation_reason(vec![
            open_msg(1),
            close(Reason::Normal),
            data(1, false, b"x")
        ]),
        Some(Reason::ProtocolError)
    );
    assert_eq!(
        violation_reason(vec![
            open_msg(1),
            data(1, true, b"x"),
            close(Reason::Normal)
        ]),
        Some(Reason::ProtocolError)
    );
    // After a reset, late data and windows are discarded silently.
    assert_eq!(
        violation_reason(vec![
            open_msg(1),
            close(Reason::Refused),
            data(1, false, b"x"),
            window(1, 5)
        ]),
        None
    );
    // Window overflow.
    assert_eq!(
        violation_reason(vec![open_msg(1), window(1, i32::MAX as u32)]),
        Some(Reason::FlowControl)
    );
    // Ping padding.
    let ping = |n| {
        control(Msg::Ping(pb::Ping {
            nonce: 1,
            padding: vec![0; n].into(),
        }))
    };
    assert_eq!(violation_reason(vec![ping(1024)]), None);
    assert_eq!(
        violation_reason(vec![ping(1025)]),
        Some(Reason::ProtocolError)
    );
}

#[test]
fn credit_violation_is_flow_control() {
    let body = vec![0u8; 60_000];
    let mut frames = vec![open_msg(1)];
    frames.extend((0..4).map(|_| data(1, true, &body)));
    assert_eq!(
        violation_reason(frames.clone()),
        None,
        "within the 256 KiB window"
    );
    frames.push(data(1, true, &body));
    assert_eq!(violation_reason(frames), Some(Reason::FlowControl));
}

#[test]
fn oversized_messages_reset_the_channel_only() {
    let limits = Limits {
        max_message_size: 100_000,
        ..Limits::default()
    };
    let (mut b, now) = raw_peer(limits);
    b.handle_frame(now, open_msg(1)).unwrap();
    b.handle_frame(now, data(1, true, &[0; 60_000])).unwrap();
    b.handle_frame(now, data(1, true, &[0; 60_000])).unwrap();
    let frames = drain(&mut b, now);
    assert!(frames.iter().any(|f| matches!(control_of(f), Some(Msg::Close(c)) if c.reason == Reason::MessageTooLarge as i32)));
    // Late frames of that message are discarded; the connection lives on.
    b.handle_frame(now, data(1, false, &[0; 10])).unwrap();
    b.handle_frame(now, open_msg(3)).unwrap();
    assert!(b.is_established());
}

#[test]
fn incomplete_bytes_are_capped_per_connection() {
    let limits = Limits {
        max_incomplete: 150_000,
        ..Limits::default()
    };
    let (mut b, now) = raw_peer(limits);
    for ch in [1, 3, 5] {
        b.handle_frame(now, open_msg(ch)).unwrap();
        b.handle_frame(now, data(ch as u16, true, &[0; 60_000]))
            .unwrap();
    }
    let frames = drain(&mut b, now);
    let resets: Vec<u32> = frames
        .iter()
        .filter_map(|f| match control_of(f) {
            Some(Msg::Close(c)) if c.reason == Reason::MessageTooLarge as i32 => Some(c.channel),
            _ => None,
        })
        .collect();
    assert_eq!(resets, vec![5]);
}

#[test]
fn too_many_channels_are_rejected() {
    let limits = Limits {
        max_channels: 2,
        ..Limits::default()
    };
    let (mut b, now) = raw_peer(limits);
    for ch in [1, 3, 5] {
        b.handle_frame(now, open_msg(ch)).unwrap();
    }
    let frames = drain(&mut b, now);
    assert!(frames.iter().any(|f| matches!(control_of(f), Some(Msg::Reject(r)) if r.channel == 5 && r.reason == Reason::TooManyChannels as i32)));
}

#[test]
fn control_floods_are_rate_limited() {
    let (mut b, now) = raw_peer(Limits::default());
    let ping = control(Msg::Ping(pb::Ping::default()));
    let mut result = Ok(());
    let mut sent = 1; // the Hello
    while result.is_ok() && sent < 2000 {
        result = b.handle_frame(now, ping.clone());
        sent += 1;
    }
    assert_eq!(result.unwrap_err().reason, Reason::RateLimited);
    assert_eq!(sent, 1001);
    assert_eq!(go_away_of(&drain(&mut b, now)), Some(Reason::RateLimited));
    // A steady 900 per second is fine.
    let (mut b, now) = raw_peer(Limits::default());
    for i in 0..3000u32 {
        b.handle_frame(
            now + Duration::from_micros(u64::from(i) * 1111),
            ping.clone(),
        )
        .unwrap();
    }
}

/// Found by the `control_decode` fuzz target: service calls made after GoAway
/// must not put frames on the wire after it.
#[test]
fn nothing_is_sent_after_go_away() {
    for peer_sent_it in [false, true] {
        let (mut b, now) = raw_peer(Limits::default());
        b.handle_frame(now, open_msg(1)).unwrap();
        b.handle_frame(now, open_msg(3)).unwrap();
        let keys: Vec<ChannelKey> = events(&mut b)
            .into_iter()
            .filter_map(|e| match e {
                Event::IncomingChannel { key, .. } => Some(key),
                _ => None,
            })
            .collect();
        b.accept(keys[0]).unwrap();
        drain(&mut b, now);
        if peer_sent_it {
            b.handle_frame(
                now,
                control(Msg::GoAway(pb::GoAway {
                    reason: Reason::Normal as i32,
                    message: String::new(),
                })),
            )
            .unwrap();
        } else {
            // A second Hello is a protocol error: we send GoAway.
            assert!(b.handle_frame(now, control(hello())).is_err());
        }
        b.ping(now, 0);
        let _ = b.accept(keys[1]);
        let _ = b.request_qos(keys[0], 7, 0);
        let _ = b.finish(keys[0]);
        let _ = b.reset(keys[0], Reason::Refused, "late");
        b.release(keys[1]);
        b.set_services(vec![]);
        let frames = drain(&mut b, now);
        let expected = if peer_sent_it { 0 } else { 1 };
        assert_eq!(
            frames.len(),
            expected,
            "frames after GoAway: {:?}",
            frames.iter().map(|f| control_of(f)).collect::<Vec<_>>()
        );
        if !peer_sent_it {
            assert_eq!(go_away_of(&frames), Some(Reason::ProtocolError));
        }
        assert!(b.is_closed());
    }
}
