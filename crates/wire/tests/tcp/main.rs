//! Nodes over real TCP on loopback with real crypto: channels, big messages,
//! interleaving, ping under load, half-close, reset, and every bad input of
//! the spec answered with its GoAway while the node keeps serving others.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use helpers::{RawClient, TestNode, config, read_to_eof};
use skywire_wire::limits::Limits;
use skywire_wire::pb::{self, Reason, control::Msg};
use skywire_wire::session::ChannelError;
use skywire_wire::testing::loopback_node;
use skywire_wire::{Channel, Service, driver};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

fn pattern(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect::<Vec<_>>()
        .into()
}

#[tokio::test]
async fn many_channels_at_once() {
    let node = TestNode::spawn().await;
    let conn = node.client().await;
    let mut tasks = Vec::new();
    for c in 0..100u8 {
        let conn = conn.clone();
        tasks.push(tokio::spawn(async move {
            let mut ch = conn.open("echo/1", c % 8).await.unwrap();
            for i in 0..10 {
                let m = pattern(1 + usize::from(c) * 97 + i * 1000, c);
                ch.send(m.clone()).await.unwrap();
                assert!(ch.recv().await.unwrap().unwrap() == m, "echo differs");
            }
            ch.finish().unwrap();
            assert_eq!(
                ch.recv().await.unwrap(),
                None,
                "echo answers half-close with half-close"
            );
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn two_nodes_connect_by_key_and_share_one_connection() {
    let a = TestNode::spawn().await;
    let b = TestNode::spawn().await;
    let ab = a.handle.connect(b.addr(), &b.key()).await.unwrap();
    // Both directions see one connection; a second connect reuses it.
    assert!(ab.same(&a.handle.connect(b.addr(), &b.key()).await.unwrap()));
    let mut ch = ab.open("echo/1", 0).await.unwrap();
    ch.send(Bytes::from_static(b"hi")).await.unwrap();
    assert_eq!(ch.recv().await.unwrap().unwrap(), Bytes::from_static(b"hi"));
    assert_eq!(b.handle.connections().len(), 1);
    assert_eq!(b.handle.connections()[0].remote_key(), a.key());
    let hello = ab.peer_hello().unwrap();
    assert!(hello.services.iter().any(|s| s.name == "echo/1"));
    assert_eq!(hello.listen_addrs, vec![b.addr().to_string()]);
}

#[tokio::test]
async fn simultaneous_dials_keep_one_connection() {
    let a = TestNode::spawn().await;
    let b = TestNode::spawn().await;
    let (ka, kb) = (a.key(), b.key());
    let (ab, ba) = tokio::join!(
        a.handle.connect(b.addr(), &kb),
        b.handle.connect(a.addr(), &ka)
    );
    let (ab, ba) = (ab.unwrap(), ba.unwrap());
    // Within a moment both nodes agree on the same single connection: the one
    // dialed by the smaller node id.
    let smaller_dialer = if a.key().serialize() < b.key().serialize() {
        &a
    } else {
        &b
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ka = a.handle.connection(&b.key()).unwrap();
    let kb = b.handle.connection(&a.key()).unwrap();
    let kept_dialed_by_smaller = |c: &skywire_wire::Connection, node: &TestNode| {
        (c.role() == skywire_wire::Role::Dialer) == (node.key() == smaller_dialer.key())
    };
    assert!(kept_dialed_by_smaller(&ka, &a) && kept_dialed_by_smaller(&kb, &b));
    drop((ab, ba));
    let mut ch = ka.open("echo/1", 0).await.unwrap();
    ch.send(Bytes::from_static(b"one")).await.unwrap();
    assert_eq!(
        ch.recv().await.unwrap().unwrap(),
        Bytes::from_static(b"one")
    );
}

#[tokio::test]
async fn four_mib_messages_and_the_limit() {
    let node = TestNode::spawn().await;
    let conn = node.client().await;
    let mut ch = conn.open("echo/1", 0).await.unwrap();
    let big = pattern(4 << 20, 7);
    ch.send(big.clone()).await.unwrap();
    assert!(
        ch.recv().await.unwrap().unwrap() == big,
        "4 MiB echo differs"
    );
    let too_big = pattern((4 << 20) + 1, 1);
    assert!(
        matches!(ch.send(too_big).await, Err(ChannelError::MessageTooLarge { size, max: 4194304 }) if size == (4 << 20) + 1)
    );
}

#[tokio::test]
async fn big_messages_interleave() {
    let node = TestNode::spawn().await;
    let conn = node.client().await;
    let mut tasks = Vec::new();
    for seed in 0..4u8 {
        let conn = conn.clone();
        tasks.push(tokio::spawn(async move {
            let ch = conn.open("echo/1", 0).await.unwrap();
            let (mut tx, mut rx) = ch.split();
            let messages: Vec<Bytes> = (0..3)
                .map(|i| pattern((1 << 20) + i * 12345, seed))
                .collect();
            let expected = messages.clone();
            let sender = tokio::spawn(async move {
                for m in messages {
                    tx.send(m).await.unwrap();
                }
                tx.finish().unwrap();
            });
            let mut got = Vec::new();
            while let Some(m) = rx.recv().await.unwrap() {
                got.push(m);
            }
            sender.await.unwrap();
            assert!(got == expected, "channel {seed} got different messages");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn ping_answers_while_another_channel_saturates() {
    let node = TestNode::spawn().await;
    let conn = node.client().await;
    let ch = conn.open("echo/1", 0).await.unwrap();
    let (mut tx, mut rx) = ch.split();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_tx = stop.clone();
    let bulk = Bytes::from(vec![0u8; 256 << 10]);
    let sender = tokio::spawn(async move {
        while !stop_tx.load(std::sync::atomic::Ordering::Relaxed) {
            tx.send(bulk.clone()).await.unwrap();
        }
        tx.finish().unwrap();
    });
    let receiver = tokio::spawn(async move {
        let mut bytes = 0usize;
        while let Some(m) = rx.recv().await.unwrap() {
            bytes += m.len();
        }
        bytes
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..20 {
        conn.ping(0).await.unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    sender.await.unwrap();
    assert!(
        receiver.await.unwrap() > 0,
        "bulk made progress during the pings"
    );
}

/// A service that reports what its channel saw.
fn recording_service(tx: mpsc::Sender<Result<Option<Bytes>, ChannelError>>) -> Service {
    Arc::new(move |mut ch: Channel| {
        let tx = tx.clone();
        Box::pin(async move {
            loop {
                let r = ch.recv().await;
                let end = !matches!(r, Ok(Some(_)));
                let _ = tx.send(r).await;
                if end {
                    return;
                }
            }
        })
    })
}

#[tokio::test]
async fn half_close_and_reset_reach_the_service() {
    let (tx, mut rx) = mpsc::channel(16);
    let node = TestNode::with(
        Limits::default(),
        vec![("record/1".into(), recording_service(tx))],
    )
    .await;
    let conn = node.client().await;
    let mut ch = conn.open("record/1", 0).await.unwrap();
    ch.send(Bytes::from_static(b"a")).await.unwrap();
    ch.finish().unwrap();
    assert_eq!(rx.recv().await.unwrap(), Ok(Some(Bytes::from_static(b"a"))));
    assert_eq!(rx.recv().await.unwrap(), Ok(None));
    assert!(matches!(
        ch.send(Bytes::new()).await,
        Err(ChannelError::Finished)
    ));

    let mut ch = conn.open("record/1", 0).await.unwrap();
    ch.reset(Reason::Refused, "changed my mind").unwrap();
    let r = rx.recv().await.unwrap();
    assert!(
        matches!(r, Err(ChannelError::Reset { reason: Reason::Refused, ref message }) if message == "changed my mind"),
        "{r:?}"
    );
}

#[tokio::test]
async fn unknown_service_is_rejected() {
    let node = TestNode::spawn().await;
    let conn = node.client().await;
    let err = conn.open("nope/1", 0).await.unwrap_err();
    assert!(
        matches!(
            err,
            driver::OpenChannelError::Rejected {
                reason: Reason::UnknownService,
                ..
            }
        ),
        "{err}"
    );
    node.assert_serving().await;
}

#[tokio::test]
async fn garbage_and_truncated_handshakes_are_dropped_silently() {
    let node = TestNode::spawn().await;
    for junk in [
        vec![0xffu8; 50],
        vec![0u8; 50],
        b"GET / HTTP/1.1\r\n\r\n".repeat(3)[..50].to_vec(),
    ] {
        let mut s = tokio::net::TcpStream::connect(node.addr()).await.unwrap();
        s.write_all(&junk).await.unwrap();
        assert!(
            read_to_eof(&mut s, Duration::from_secs(5)).await.is_empty(),
            "a failed handshake gets no byte"
        );
    }
    let mut s = tokio::net::TcpStream::connect(node.addr()).await.unwrap();
    s.write_all(&[0u8; 20]).await.unwrap();
    drop(s);
    node.assert_serving().await;
}

#[tokio::test]
async fn wrong_prologue_fails_the_handshake() {
    let node = TestNode::spawn().await;
    assert!(
        RawClient::connect_with_prologue(node.addr(), &node.key(), b"lightning")
            .await
            .is_err()
    );
    // Dialing with the wrong node id fails too (XK: the dialer must know it).
    let wrong = secp256k1::PublicKey::from_secret_key(&secp256k1::SecretKey::new(&mut rand::rng()));
    assert!(
        driver::dial(node.addr(), &wrong, &config(Limits::default()))
            .await
            .is_err()
    );
    node.assert_serving().await;
}

#[tokio::test]
async fn silent_clients_are_dropped_within_the_handshake_timeout() {
    let limits = Limits {
        handshake_timeout: Duration::from_millis(300),
        hello_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let node = TestNode::with(limits, vec![]).await;
    let start = Instant::now();
    let mut silent = tokio::net::TcpStream::connect(node.addr()).await.unwrap();
    assert!(
        read_to_eof(&mut silent, Duration::from_secs(5))
            .await
            .is_empty()
    );
    assert!(start.elapsed() >= Duration::from_millis(300));
    // A client that completes the handshake but never says Hello gets
    // GoAway(TIMEOUT).
    let mut mute = RawClient::connect(node.addr(), &node.key()).await;
    assert_eq!(mute.expect_go_away().await, Reason::Timeout);
    node.assert_serving().await;
}

/// Runs `frames` on a fresh connection after Hello and returns the GoAway.
async fn violation(node: &TestNode, frames: Vec<Vec<u8>>) -> Reason {
    let mut c = RawClient::hello(node.addr(), &node.key()).await;
    c.send_raw_frames(&frames).await;
    c.expect_go_away().await
}

fn open(channel: u32) -> Vec<u8> {
    helpers::control_frame(Msg::Open(pb::Open {
        channel,
        service: "echo/1".into(),
        priority: 0,
    }))
}

fn data(channel: u16, more: bool, body: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    skywire_wire::frame::put_header(&mut f, channel, more);
    f.extend_from_slice(body);
    f
}

/// A service that holds its channel without reading until the connection ends.
fn hold_service() -> Service {
    Arc::new(|ch: Channel| {
        Box::pin(async move {
            ch.connection().closed().await;
        })
    })
}

#[tokio::test]
async fn protocol_violations_get_their_go_away() {
    let node = TestNode::with(Limits::default(), vec![("hold/1".into(), hold_service())]).await;
    // First frame not Hello.
    let mut c = RawClient::connect(node.addr(), &node.key()).await;
    c.send_raw_frame(&open(1)).await;
    assert_eq!(c.expect_go_away().await, Reason::ProtocolError);
    // Wrong version.
    let mut c = RawClient::connect(node.addr(), &node.key()).await;
    c.send_control(Msg::Hello(pb::Hello {
        protocol_version: 2,
        ..Default::default()
    }))
    .await;
    assert_eq!(c.expect_go_away().await, Reason::IncompatibleVersion);

    let window =
        |channel, increment| helpers::control_frame(Msg::Window(pb::Window { channel, increment }));
    let cases: Vec<(&str, Vec<Vec<u8>>, Reason)> = vec![
        ("wrong parity", vec![open(2)], Reason::ProtocolError),
        (
            "data on an unopened channel",
            vec![data(7, false, b"x")],
            Reason::ProtocolError,
        ),
        (
            "reserved flag bits",
            vec![vec![0, 1, 0x04]],
            Reason::ProtocolError,
        ),
        (
            "window overflow",
            vec![open(1), window(1, u32::MAX / 2)],
            Reason::FlowControl,
        ),
        (
            // Whole messages that nobody reads earn no credit back.
            "credit violation",
            std::iter::once(helpers::control_frame(Msg::Open(pb::Open {
                channel: 1,
                service: "hold/1".into(),
                priority: 0,
            })))
            .chain((0..5).map(|_| data(1, false, &[0; 60_000])))
            .collect(),
            Reason::FlowControl,
        ),
        (
            "control flood",
            (0..3000)
                .map(|_| helpers::control_frame(Msg::Ping(pb::Ping::default())))
                .collect(),
            Reason::RateLimited,
        ),
        (
            "oversized ping padding",
            vec![helpers::control_frame(Msg::Ping(pb::Ping {
                nonce: 1,
                padding: vec![0; 1025].into(),
            }))],
            Reason::ProtocolError,
        ),
    ];
    for (name, frames, expected) in cases {
        assert_eq!(violation(&node, frames).await, expected, "{name}");
    }
    node.assert_serving().await;
}

#[tokio::test]
async fn oversized_message_resets_only_its_channel() {
    let limits = Limits {
        max_message_size: 100_000,
        ..Limits::default()
    };
    let node = TestNode::with(limits, vec![]).await;
    let mut c = RawClient::hello(node.addr(), &node.key()).await;
    c.send_raw_frame(&open(1)).await;
    c.send_data(1, true, &[0; 60_000]).await;
    c.send_data(1, true, &[0; 60_000]).await;
    loop {
        match c.recv_control().await.unwrap() {
            Msg::Close(close) if close.channel == 1 => {
                assert_eq!(close.reason, Reason::MessageTooLarge as i32);
                break;
            }
            Msg::GoAway(g) => panic!("connection closed: {g:?}"),
            _ => {}
        }
    }
    // The connection still works: a new channel echoes.
    c.send_raw_frame(&open(3)).await;
    c.send_data(3, false, b"fine").await;
    loop {
        let f = c.recv_frame().await.unwrap();
        let f = skywire_wire::frame::Frame::decode(&f).unwrap();
        if f.channel == 3 {
            assert_eq!(f.body, b"fine");
            break;
        }
    }
}

#[tokio::test]
async fn a_thousand_concurrent_connections() {
    let node = TestNode::spawn().await;
    let addr = node.addr();
    let key = node.key();
    let mut tasks = Vec::new();
    for i in 0..1000u32 {
        tasks.push(tokio::spawn(async move {
            let conn = driver::dial(addr, &key, &config(Limits::default()))
                .await
                .unwrap();
            let mut ch = conn.open("echo/1", 0).await.unwrap();
            let m = Bytes::from(i.to_be_bytes().to_vec());
            ch.send(m.clone()).await.unwrap();
            assert_eq!(ch.recv().await.unwrap().unwrap(), m);
            conn
        }));
    }
    let mut conns = Vec::new();
    for t in tasks {
        conns.push(t.await.unwrap());
    }
    assert_eq!(node.handle.connections().len(), 1000);
    node.assert_serving().await;
    drop(conns);
}

#[tokio::test]
async fn shutdown_says_go_away_to_every_peer() {
    let node = TestNode::spawn().await;
    let conns = [node.client().await, node.client().await];
    node.handle.shutdown();
    for conn in &conns {
        let reason = tokio::time::timeout(Duration::from_secs(5), conn.closed())
            .await
            .unwrap();
        assert_eq!(reason.reason, Reason::ShuttingDown);
        assert!(reason.by_peer);
    }
    tokio::time::timeout(Duration::from_secs(10), node.task)
        .await
        .unwrap()
        .unwrap();
}

fn closed_reason(result: Result<skywire_wire::Connection, skywire_wire::ConnectError>) -> Reason {
    match result {
        Err(skywire_wire::ConnectError::Closed(close)) => close.reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn banned_peers_get_go_away_and_are_refused_until_unbanned() {
    let node = TestNode::spawn().await;
    let client = config(Limits::default());
    let client_key = client.public_key();
    let conn = driver::dial(node.addr(), &node.key(), &client)
        .await
        .unwrap();
    node.handle
        .ban(&client_key, Duration::from_secs(60), "misbehaved");
    let closed = tokio::time::timeout(Duration::from_secs(5), conn.closed())
        .await
        .unwrap();
    assert_eq!((closed.reason, closed.by_peer), (Reason::Banned, true));
    assert_eq!(
        closed_reason(driver::dial(node.addr(), &node.key(), &client).await),
        Reason::Banned
    );
    assert!(matches!(
        node.handle.connect(node.addr(), &client_key).await,
        Err(skywire_wire::NodeError::Banned)
    ));
    node.handle.unban(&client_key);
    driver::dial(node.addr(), &node.key(), &client)
        .await
        .unwrap();
    node.assert_serving().await;
}

#[tokio::test]
async fn peers_beyond_the_limit_get_too_many_peers() {
    helpers::init_logging();
    let node = skywire_wire::Node::bind(loopback_node(config(Limits::default()), 2), [])
        .await
        .unwrap();
    let handle = node.handle();
    tokio::spawn(node.run());
    let (addr, key) = (handle.local_addr(), handle.public_key());
    let dial = || async move { driver::dial(addr, &key, &config(Limits::default())).await };
    let first = dial().await.unwrap();
    let _second = dial().await.unwrap();
    assert_eq!(closed_reason(dial().await), Reason::TooManyPeers);
    // A freed place is taken by the next peer.
    first.go_away(Reason::Normal, "bye");
    first.closed().await;
    let mut admitted = None;
    for _ in 0..50 {
        match dial().await {
            Ok(conn) => {
                admitted = Some(conn);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    assert!(admitted.is_some(), "the freed place was never given out");
}

#[tokio::test]
async fn a_node_dialing_itself_gets_self_connection() {
    let node = TestNode::spawn().await;
    let err = node
        .handle
        .connect(node.addr(), &node.key())
        .await
        .unwrap_err();
    assert!(
        matches!(err, skywire_wire::NodeError::Connect(skywire_wire::ConnectError::Closed(ref c)) if c.reason == Reason::SelfConnection),
        "{err}"
    );
    node.assert_serving().await;
}

#[tokio::test]
async fn a_reader_that_does_not_read_blocks_its_sender_with_bounded_memory() {
    let node = TestNode::with(Limits::default(), vec![("hold/1".into(), hold_service())]).await;
    let conn = node.client().await;
    let mut ch = conn.open("hold/1", 0).await.unwrap();
    let chunk = Bytes::from(vec![9u8; 64 << 10]);
    let mut accepted = 0usize;
    // Sends complete until the peer's window (256 KiB) and our send buffer
    // (1 MiB) are full; then `send` waits for credit that never comes.
    while tokio::time::timeout(Duration::from_millis(300), ch.send(chunk.clone()))
        .await
        .is_ok()
    {
        accepted += chunk.len();
        assert!(
            accepted <= 4 << 20,
            "sender was never slowed: {accepted} bytes accepted"
        );
    }
    assert!(
        accepted >= 256 << 10,
        "blocked before the window was used: {accepted} bytes"
    );
    // The connection itself is healthy: other channels still work.
    let mut echo = conn.open("echo/1", 7).await.unwrap();
    echo.send(Bytes::from_static(b"unaffected")).await.unwrap();
    assert_eq!(
        echo.recv().await.unwrap().unwrap(),
        Bytes::from_static(b"unaffected")
    );
}

#[tokio::test]
async fn a_panicking_service_resets_its_channel_with_internal() {
    let panics: Service = Arc::new(|mut ch: Channel| {
        Box::pin(async move {
            let _ = ch.recv().await;
            panic!("service bug (expected by the test)");
        })
    });
    let node = TestNode::with(Limits::default(), vec![("panics/1".into(), panics)]).await;
    let conn = node.client().await;
    let mut ch = conn.open("panics/1", 0).await.unwrap();
    ch.send(Bytes::from_static(b"boom")).await.unwrap();
    let r = ch.recv().await;
    assert!(
        matches!(
            r,
            Err(ChannelError::Reset {
                reason: Reason::Internal,
                ..
            })
        ),
        "{r:?}"
    );
    node.assert_serving().await;
}

/// Hooks whose admission refuses peers from a set, never answers for
/// another, counts admissions ended and records how connections closed.
struct GateHooks {
    refused: std::sync::Mutex<Vec<secp256k1::PublicKey>>,
    stalled: std::sync::Mutex<Vec<secp256k1::PublicKey>>,
    admitted: std::sync::atomic::AtomicUsize,
    ended: std::sync::atomic::AtomicUsize,
    closed: std::sync::Mutex<Vec<(Reason, bool)>>,
}

impl GateHooks {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            refused: Default::default(),
            stalled: Default::default(),
            admitted: Default::default(),
            ended: Default::default(),
            closed: Default::default(),
        })
    }

    fn ended(&self) -> usize {
        self.ended.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until `n` connections have closed; returns how, as
    /// `(reason, by_peer)` in order.
    async fn closed(&self, n: usize) -> Vec<(Reason, bool)> {
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let closed = self.closed.lock().unwrap().clone();
                if closed.len() >= n {
                    return closed;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("connection_closed not called")
    }
}

impl skywire_wire::Hooks for GateHooks {
    fn admit(
        &self,
        admission: &skywire_wire::node::Admission,
    ) -> skywire_wire::node::AdmitFuture<'_> {
        let key = admission.node_id;
        Box::pin(async move {
            if self.stalled.lock().unwrap().contains(&key) {
                std::future::pending::<()>().await;
            }
            if self.refused.lock().unwrap().contains(&key) {
                return Err(driver::Refusal {
                    reason: Reason::RateLimited,
                    message: "slow down".into(),
                });
            }
            self.admitted
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        })
    }

    fn admission_ended(&self, _: &skywire_wire::node::Admission) {
        self.ended.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    fn connection_closed(&self, reason: &skywire_wire::CloseReason) {
        self.closed
            .lock()
            .unwrap()
            .push((reason.reason, reason.by_peer));
    }
}

async fn node_with_hooks(hooks: Arc<GateHooks>) -> skywire_wire::NodeHandle {
    helpers::init_logging();
    let node = skywire_wire::Node::bind_with_hooks(
        loopback_node(config(Limits::default()), 100),
        [],
        hooks,
    )
    .await
    .unwrap();
    let handle = node.handle();
    tokio::spawn(node.run());
    handle
}

#[tokio::test]
async fn the_admission_hook_refuses_with_its_reason_and_hears_the_end() {
    let hooks = GateHooks::new();
    let node = node_with_hooks(hooks.clone()).await;
    let (addr, key) = (node.local_addr(), node.public_key());
    let refused = config(Limits::default());
    hooks.refused.lock().unwrap().push(refused.public_key());
    let err = driver::dial(addr, &key, &refused).await;
    match err {
        Err(skywire_wire::ConnectError::Closed(close)) => {
            assert_eq!((close.reason, close.by_peer), (Reason::RateLimited, true));
            assert_eq!(close.message, "slow down");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // A refused peer holds nothing, so nothing ends.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(hooks.ended(), 0);

    let conn = driver::dial(addr, &key, &config(Limits::default()))
        .await
        .unwrap();
    let mut echo = conn.open("echo/1", 0).await.unwrap();
    echo.send(Bytes::from_static(b"in")).await.unwrap();
    assert_eq!(
        echo.recv().await.unwrap().unwrap(),
        Bytes::from_static(b"in")
    );
    assert_eq!(hooks.ended(), 0);
    conn.go_away(Reason::Normal, "bye");
    conn.closed().await;
    tokio::time::timeout(Duration::from_secs(5), async {
        while hooks.ended() != 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("admission_ended never called");
    assert_eq!(node.admission_timeouts(), 0);
}

#[tokio::test]
async fn a_stalled_admission_hook_fails_open_after_its_timeout() {
    let hooks = GateHooks::new();
    let node = node_with_hooks(hooks.clone()).await;
    let client = config(Limits::default());
    hooks.stalled.lock().unwrap().push(client.public_key());
    let started = Instant::now();
    let conn = driver::dial(node.local_addr(), &node.public_key(), &client)
        .await
        .unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= skywire_wire::node::ADMISSION_TIMEOUT && waited < Duration::from_secs(5),
        "admitted after {waited:?}"
    );
    assert_eq!(node.admission_timeouts(), 1);
    // Other peers were not held up meanwhile, and the stalled one is served.
    node_serves_echo(&conn).await;
    // Its admission still ends, so whatever the hook took can be given back.
    conn.go_away(Reason::Normal, "bye");
    conn.closed().await;
    tokio::time::timeout(Duration::from_secs(5), async {
        while hooks.ended() != 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("admission_ended never called");
}

async fn node_serves_echo(conn: &skywire_wire::Connection) {
    let mut echo = conn.open("echo/1", 0).await.unwrap();
    echo.send(Bytes::from_static(b"ok")).await.unwrap();
    assert_eq!(
        echo.recv().await.unwrap().unwrap(),
        Bytes::from_static(b"ok")
    );
}

#[tokio::test]
async fn a_slow_admission_does_not_hold_up_other_peers() {
    let hooks = GateHooks::new();
    let node = node_with_hooks(hooks.clone()).await;
    let (addr, key) = (node.local_addr(), node.public_key());
    let slow = config(Limits::default());
    hooks.stalled.lock().unwrap().push(slow.public_key());
    let slow_dial = tokio::spawn(async move { driver::dial(addr, &key, &slow).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let conn = driver::dial(addr, &key, &config(Limits::default()))
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    node_serves_echo(&conn).await;
    slow_dial.await.unwrap().unwrap();
}

#[tokio::test]
async fn dialed_connections_skip_the_admission_hook() {
    let hooks = GateHooks::new();
    let node = node_with_hooks(hooks.clone()).await;
    let other = TestNode::spawn().await;
    let conn = node.connect(other.addr(), &other.key()).await.unwrap();
    node_serves_echo(&conn).await;
    assert_eq!(hooks.admitted.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn bans_are_checked_before_the_admission_hook() {
    let hooks = GateHooks::new();
    let node = node_with_hooks(hooks.clone()).await;
    let client = config(Limits::default());
    node.ban(&client.public_key(), Duration::from_secs(60), "test");
    assert_eq!(
        closed_reason(driver::dial(node.local_addr(), &node.public_key(), &client).await),
        Reason::Banned
    );
    assert_eq!(hooks.admitted.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn every_connection_end_reaches_the_hook_with_who_ended_it() {
    let hooks = GateHooks::new();
    let node = node_with_hooks(hooks.clone()).await;
    let (addr, key) = (node.local_addr(), node.public_key());
    // Refused by the admission hook, then by a ban: GoAways this node sent.
    let refused = config(Limits::default());
    hooks.refused.lock().unwrap().push(refused.public_key());
    assert_eq!(
        closed_reason(driver::dial(addr, &key, &refused).await),
        Reason::RateLimited
    );
    assert_eq!(hooks.closed(1).await, [(Reason::RateLimited, false)]);
    let banned = config(Limits::default());
    node.ban(&banned.public_key(), Duration::from_secs(60), "test");
    assert_eq!(
        closed_reason(driver::dial(addr, &key, &banned).await),
        Reason::Banned
    );
    assert_eq!(hooks.closed(2).await[1], (Reason::Banned, false));
    // Served, then the peer says GoAway: ended by the peer.
    let conn = driver::dial(addr, &key, &config(Limits::default()))
        .await
        .unwrap();
    node_serves_echo(&conn).await;
    conn.go_away(Reason::Normal, "bye");
    conn.closed().await;
    assert_eq!(hooks.closed(3).await[2], (Reason::Normal, true));
}
