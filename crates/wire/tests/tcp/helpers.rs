//! Shared set-up for the TCP tests: nodes on 127.0.0.1:0 and a raw BOLT 8
//! client that speaks frames by hand, for the bad-input tests.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use prost::Message as _;
use secp256k1::{PublicKey, SecretKey};
use skywire_wire::frame::{Frame, put_header};
use skywire_wire::limits::Limits;
use skywire_wire::noise::{
    self, Decryptor, Encryptor, InitiatorHandshake, LENGTH_HEADER_LEN, TAG_LEN,
};
use skywire_wire::pb::{self, Reason, control::Msg};
use skywire_wire::session::LocalHello;
use skywire_wire::{Connection, ConnectionConfig, Node, NodeConfig, NodeHandle, Service, driver};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `TEST_LOG=1` turns logging on.
pub(crate) fn init_logging() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug")
            .with_test_writer()
            .try_init();
    }
}

pub(crate) fn config(limits: Limits) -> ConnectionConfig {
    ConnectionConfig {
        secret_key: SecretKey::new(&mut rand::rng()),
        hello: LocalHello {
            user_agent: "test".into(),
            ..LocalHello::default()
        },
        limits,
    }
}

/// A running node on 127.0.0.1:0.
pub(crate) struct TestNode {
    pub(crate) handle: NodeHandle,
    pub(crate) task: tokio::task::JoinHandle<()>,
}

impl TestNode {
    pub(crate) async fn spawn() -> Self {
        Self::with(Limits::default(), Vec::new()).await
    }

    pub(crate) async fn with(limits: Limits, services: Vec<(String, Service)>) -> Self {
        init_logging();
        let config = NodeConfig {
            connection: config(limits),
            listen: "127.0.0.1:0".parse().unwrap(),
            max_connections: 5000,
        };
        let node = Node::bind(config, services).await.unwrap();
        let handle = node.handle();
        let task = tokio::spawn(node.run());
        Self { handle, task }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    pub(crate) fn key(&self) -> PublicKey {
        self.handle.public_key()
    }

    /// Connects a fresh client identity.
    pub(crate) async fn client(&self) -> Connection {
        driver::dial(self.addr(), &self.key(), &config(Limits::default()))
            .await
            .unwrap()
    }

    /// Checks the node still serves echo/1 to a new client.
    pub(crate) async fn assert_serving(&self) {
        let conn = self.client().await;
        let mut ch = conn.open("echo/1", 0).await.unwrap();
        ch.send(Bytes::from_static(b"still there?")).await.unwrap();
        assert_eq!(
            ch.recv().await.unwrap().unwrap(),
            Bytes::from_static(b"still there?")
        );
    }
}

/// A client that completes the handshake itself and then writes frames by
/// hand.
pub(crate) struct RawClient {
    pub(crate) stream: TcpStream,
    enc: Encryptor,
    dec: Decryptor,
}

impl RawClient {
    pub(crate) async fn connect(addr: SocketAddr, remote: &PublicKey) -> Self {
        Self::connect_with_prologue(addr, remote, noise::PROLOGUE)
            .await
            .expect("handshake")
    }

    pub(crate) async fn connect_with_prologue(
        addr: SocketAddr,
        remote: &PublicKey,
        prologue: &[u8],
    ) -> std::io::Result<Self> {
        let mut stream = TcpStream::connect(addr).await?;
        let local = SecretKey::new(&mut rand::rng());
        let (state, act_one) =
            InitiatorHandshake::new(prologue, &local, remote, SecretKey::new(&mut rand::rng()));
        stream.write_all(&act_one).await?;
        let mut act_two = [0u8; noise::ACT_TWO_LEN];
        stream.read_exact(&mut act_two).await?;
        let (act_three, transport) = state
            .read_act_two(&act_two)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        stream.write_all(&act_three).await?;
        let (enc, dec) = transport.into_split();
        Ok(Self { stream, enc, dec })
    }

    /// Handshake plus our Hello; reads the node's Hello.
    pub(crate) async fn hello(addr: SocketAddr, remote: &PublicKey) -> Self {
        let mut client = Self::connect(addr, remote).await;
        client
            .send_control(Msg::Hello(pb::Hello {
                protocol_version: 1,
                ..Default::default()
            }))
            .await;
        match client.recv_control().await {
            Some(Msg::Hello(_)) => client,
            other => panic!("expected Hello, got {other:?}"),
        }
    }

    pub(crate) async fn send_raw_frame(&mut self, frame: &[u8]) {
        let mut out = Vec::new();
        self.enc.seal_into(frame, &mut out).unwrap();
        // The node may already have closed the connection.
        let _ = self.stream.write_all(&out).await;
    }

    /// Writes all `frames` with one write, as fast as the socket takes them.
    pub(crate) async fn send_raw_frames(&mut self, frames: &[Vec<u8>]) {
        let mut out = Vec::new();
        for frame in frames {
            self.enc.seal_into(frame, &mut out).unwrap();
        }
        let _ = self.stream.write_all(&out).await;
    }

    pub(crate) async fn send_control(&mut self, msg: Msg) {
        self.send_raw_frame(&control_frame(msg)).await;
    }

    pub(crate) async fn send_data(&mut self, channel: u16, more: bool, body: &[u8]) {
        let mut frame = Vec::new();
        put_header(&mut frame, channel, more);
        frame.extend_from_slice(body);
        self.send_raw_frame(&frame).await;
    }

    /// The next frame, or `None` at EOF.
    pub(crate) async fn recv_frame(&mut self) -> Option<Vec<u8>> {
        let mut header = [0u8; LENGTH_HEADER_LEN];
        self.stream.read_exact(&mut header).await.ok()?;
        let len = self.dec.open_length(&header).expect("valid length");
        let mut body = vec![0u8; len + TAG_LEN];
        self.stream.read_exact(&mut body).await.ok()?;
        self.dec.open_body_in_place(&mut body).expect("valid body");
        body.truncate(len);
        Some(body)
    }

    /// The next control message, skipping data frames.
    pub(crate) async fn recv_control(&mut self) -> Option<Msg> {
        loop {
            let frame = self.recv_frame().await?;
            let f = Frame::decode(&frame).unwrap();
            if f.channel == 0
                && let Some(msg) = pb::Control::decode(f.body).unwrap().msg
            {
                return Some(msg);
            }
        }
    }

    /// Reads until GoAway and then EOF; returns the GoAway reason. Fails if the
    /// node does not close within 5 s.
    pub(crate) async fn expect_go_away(&mut self) -> Reason {
        let read = async {
            let mut reason = None;
            while let Some(msg) = self.recv_control().await {
                if let Msg::GoAway(g) = msg {
                    reason = Some(Reason::try_from(g.reason).unwrap());
                }
            }
            reason.expect("connection closed without GoAway")
        };
        tokio::time::timeout(Duration::from_secs(5), read)
            .await
            .expect("node did not close")
    }
}

pub(crate) fn control_frame(msg: Msg) -> Vec<u8> {
    let mut out = Vec::new();
    put_header(&mut out, 0, false);
    pb::Control { msg: Some(msg) }.encode(&mut out).unwrap();
    out
}

/// Reads until EOF, failing after `within`; returns the bytes read.
pub(crate) async fn read_to_eof(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut buf = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut buf))
        .await
        .expect("not closed in time")
        .ok();
    buf
}
