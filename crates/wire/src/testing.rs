//! Test support (feature `testing`): a raw SWP/1 client that completes the
//! handshake itself and then writes whatever frames a test wants, valid or
//! not, to check how a node treats misbehaving peers. Its methods panic on
//! anything unexpected, as tests should. Also the set-up every crate's tests
//! share: [`init_logging`], a test [`connection_config`] and
//! [`loopback_node`].
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use prost::Message as _;
use secp256k1::{PublicKey, SecretKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::frame::{Frame, put_header};
use crate::limits::Limits;
use crate::noise::{self, Decryptor, Encryptor, InitiatorHandshake, LENGTH_HEADER_LEN, TAG_LEN};
use crate::pb::{self, Reason, control::Msg};
use crate::session::LocalHello;
use crate::{ConnectionConfig, NodeConfig};

/// `TEST_LOG=1` turns logging on (a debug-level subscriber writing to the
/// test's output); otherwise tests are quiet. Safe to call more than once.
pub fn init_logging() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug")
            .with_test_writer()
            .try_init();
    }
}

/// A connection config for tests: the node key `secret_key`, user agent
/// `test`, default limits.
pub fn connection_config(secret_key: SecretKey) -> ConnectionConfig {
    ConnectionConfig {
        secret_key,
        hello: LocalHello {
            user_agent: "test".into(),
            ..LocalHello::default()
        },
        limits: Limits::default(),
    }
}

/// A node config for tests: `connection`, listening on 127.0.0.1:0 (the
/// system picks the port; read it back from the node), with at most
/// `max_connections` peers.
pub fn loopback_node(connection: ConnectionConfig, max_connections: usize) -> NodeConfig {
    NodeConfig {
        connection,
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        max_connections,
    }
}

/// A client that completes the handshake itself and then writes frames by
/// hand.
pub struct RawClient {
    /// The socket, for tests that write or read bytes themselves.
    pub stream: TcpStream,
    local_key: PublicKey,
    enc: Encryptor,
    dec: Decryptor,
}

impl RawClient {
    /// Connects to the node `remote` at `addr` with a fresh identity and
    /// completes the handshake. Panics if it fails.
    pub async fn connect(addr: SocketAddr, remote: &PublicKey) -> Self {
        Self::connect_as(addr, remote, SecretKey::new(&mut rand::rng())).await
    }

    /// Like [`RawClient::connect`] as the node whose key is `local`.
    pub async fn connect_as(addr: SocketAddr, remote: &PublicKey, local: SecretKey) -> Self {
        Self::handshake(addr, remote, local, noise::PROLOGUE)
            .await
            .expect("handshake")
    }

    /// Like [`RawClient::connect`] with the handshake's `prologue` given
    /// (a wrong one must fail).
    ///
    /// # Errors
    ///
    /// The socket failed or the handshake did not complete.
    pub async fn connect_with_prologue(
        addr: SocketAddr,
        remote: &PublicKey,
        prologue: &[u8],
    ) -> std::io::Result<Self> {
        Self::handshake(addr, remote, SecretKey::new(&mut rand::rng()), prologue).await
    }

    async fn handshake(
        addr: SocketAddr,
        remote: &PublicKey,
        local: SecretKey,
        prologue: &[u8],
    ) -> std::io::Result<Self> {
        let mut stream = TcpStream::connect(addr).await?;
        let local_key = PublicKey::from_secret_key(&local);
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
        Ok(Self {
            stream,
            local_key,
            enc,
            dec,
        })
    }

    /// This client's public key (its node id).
    pub fn public_key(&self) -> PublicKey {
        self.local_key
    }

    /// Handshake plus our Hello; reads the node's Hello.
    pub async fn hello(addr: SocketAddr, remote: &PublicKey) -> Self {
        Self::hello_as(addr, remote, SecretKey::new(&mut rand::rng())).await
    }

    /// Like [`RawClient::hello`] as the node whose key is `local`.
    pub async fn hello_as(addr: SocketAddr, remote: &PublicKey, local: SecretKey) -> Self {
        let mut client = Self::connect_as(addr, remote, local).await;
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

    /// Encrypts and writes one frame (header and body), ignoring a closed
    /// socket.
    pub async fn send_raw_frame(&mut self, frame: &[u8]) {
        let mut out = Vec::new();
        self.enc.seal_into(frame, &mut out).unwrap();
        // The node may already have closed the connection.
        let _ = self.stream.write_all(&out).await;
    }

    /// Writes all `frames` with one write, as fast as the socket takes them.
    pub async fn send_raw_frames(&mut self, frames: &[Vec<u8>]) {
        let mut out = Vec::new();
        for frame in frames {
            self.enc.seal_into(frame, &mut out).unwrap();
        }
        let _ = self.stream.write_all(&out).await;
    }

    /// Writes one control frame.
    pub async fn send_control(&mut self, msg: Msg) {
        self.send_raw_frame(&control_frame(msg)).await;
    }

    /// Writes one data frame.
    pub async fn send_data(&mut self, channel: u16, more: bool, body: &[u8]) {
        let mut frame = Vec::new();
        put_header(&mut frame, channel, more);
        frame.extend_from_slice(body);
        self.send_raw_frame(&frame).await;
    }

    /// The next frame, or `None` at EOF.
    pub async fn recv_frame(&mut self) -> Option<Vec<u8>> {
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
    pub async fn recv_control(&mut self) -> Option<Msg> {
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
    pub async fn expect_go_away(&mut self) -> Reason {
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

/// A control frame (channel 0) holding `msg`.
pub fn control_frame(msg: Msg) -> Vec<u8> {
    let mut out = Vec::new();
    put_header(&mut out, 0, false);
    pb::Control { msg: Some(msg) }.encode(&mut out).unwrap();
    out
}
