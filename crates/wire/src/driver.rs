//! The tokio driver: runs the BOLT 8 handshake on a `TcpStream`, then a
//! [`Session`] between two tasks, and hands out [`Connection`] and
//! [`Channel`] handles.
//!
//! ```text
//!  socket ──► reader task ──► Session::handle_frame ─┐
//!                                                    ├─ Mutex<Inner> ◄── Channel::send / recv
//!  socket ◄── writer task ◄── Session::poll_transmit ┘      (wakers)
//! ```
//!
//! The session sits in a mutex held only for short, non-blocking calls;
//! encryption and socket I/O happen outside it. A channel's `send` waits
//! while its buffers are full and `recv` while nothing has arrived, so a slow
//! reader slows its sender through SWP credit, and memory stays within the
//! session's limits. The reader stops reading while the control backlog is
//! over [`MAX_CONTROL_BACKLOG`], and a write that makes no progress for the
//! idle timeout ends the connection.

use std::collections::HashMap;
use std::future::poll_fn;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use secp256k1::{PublicKey, SecretKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Notify, oneshot};

use crate::channel::{ChannelKey, ChannelState};
use crate::limits::Limits;
use crate::noise::{
    self, ACT_ONE_LEN, ACT_THREE_LEN, ACT_TWO_LEN, Decryptor, Encryptor, HandshakeError,
    InitiatorHandshake, LENGTH_HEADER_LEN, ResponderHandshake, TAG_LEN, TransportError,
};
use crate::session::{
    ChannelError, Event, LocalHello, OpenError, PeerHello, Role, SendOutcome, Session,
    SessionConfig,
};
use skywire_proto::wire::v1::{Reason, ServiceAd};

/// Control frames a session may have waiting to be written before the reader
/// stops reading from the peer (a peer that sends Pings but does not read our
/// Pongs).
pub const MAX_CONTROL_BACKLOG: usize = 4096;

/// Plaintext bytes the writer takes from the session per batch: large enough
/// for few syscalls, small enough that a Pong queued meanwhile waits little.
const WRITE_BATCH: usize = 128 << 10;

/// Buffers above this are freed when the connection goes idle, so idle
/// connections stay small.
const IDLE_BUFFER_CAPACITY: usize = 16 << 10;

/// Why connecting or accepting failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Socket error.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The handshake did not finish in time.
    #[error("handshake not finished within {0:?}")]
    HandshakeTimeout(Duration),
    /// The handshake failed (bad act, wrong key, wrong prologue).
    #[error("handshake failed: {0}")]
    Handshake(#[from] HandshakeError),
    /// The session ended before both Hellos were exchanged.
    #[error("session ended before it was established: {0}")]
    Closed(CloseReason),
}

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} ({}): {message}", reason.as_str_name(), if *by_peer { "peer" } else { "us" })]
pub struct CloseReason {
    /// The GoAway reason, or `REASON_UNSPECIFIED` for a dropped socket.
    pub reason: Reason,
    /// Whether the peer ended it.
    pub by_peer: bool,
    /// Detail.
    pub message: String,
}

/// Everything needed to run connections as one node.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// The node's static key.
    pub secret_key: SecretKey,
    /// What the node says in Hello.
    pub hello: LocalHello,
    /// Limits enforced and advertised.
    pub limits: Limits,
}

impl ConnectionConfig {
    /// The node's public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::from_secret_key(&self.secret_key)
    }
}

/// Performs the initiator side of the handshake on `stream` and starts the
/// session; returns once the peer's Hello arrived.
pub async fn connect(
    stream: TcpStream,
    remote: &PublicKey,
    config: &ConnectionConfig,
) -> Result<Connection, ConnectError> {
    let mut stream = stream;
    let handshake = async {
        let ephemeral = SecretKey::new(&mut rand::rng());
        let (state, act_one) =
            InitiatorHandshake::new(noise::PROLOGUE, &config.secret_key, remote, ephemeral);
        stream.write_all(&act_one).await?;
        let mut act_two = [0u8; ACT_TWO_LEN];
        stream.read_exact(&mut act_two).await?;
        let (act_three, transport) = state.read_act_two(&act_two)?;
        stream.write_all(&act_three).await?;
        Ok::<_, ConnectError>(transport)
    };
    let limit = config.limits.handshake_timeout;
    let transport = tokio::time::timeout(limit, handshake)
        .await
        .map_err(|_| ConnectError::HandshakeTimeout(limit))??;
    start(stream, Role::Dialer, *remote, transport, config, None).await
}

/// Dials `addr` and connects to the node with key `remote`.
pub async fn dial(
    addr: SocketAddr,
    remote: &PublicKey,
    config: &ConnectionConfig,
) -> Result<Connection, ConnectError> {
    dial_from(addr, remote, config, None).await
}

/// [`dial`]s from the local address `source` (any port) when it suits the
/// destination: same family, and loopback only to loopback. A node bound to
/// one address dials from it too, so peers see the address its record
/// advertises (the DHT admits a node only at the address it came from).
pub async fn dial_from(
    addr: SocketAddr,
    remote: &PublicKey,
    config: &ConnectionConfig,
    source: Option<IpAddr>,
) -> Result<Connection, ConnectError> {
    let limit = config.limits.handshake_timeout;
    let source = source.filter(|ip| {
        !ip.is_unspecified()
            && ip.is_ipv4() == addr.is_ipv4()
            && ip.is_loopback() == addr.ip().is_loopback()
    });
    let tcp = async {
        let Some(ip) = source else {
            return TcpStream::connect(addr).await;
        };
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.bind(SocketAddr::new(ip, 0))?;
        socket.connect(addr).await
    };
    let stream = tokio::time::timeout(limit, tcp)
        .await
        .map_err(|_| ConnectError::HandshakeTimeout(limit))??;
    connect(stream, remote, config).await
}

/// Why a node refuses a peer right after the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The GoAway reason, e.g. `REASON_BANNED` or `REASON_TOO_MANY_PEERS`.
    pub reason: Reason,
    /// Detail for the peer.
    pub message: String,
}

/// Performs the responder side of the handshake on an accepted `stream`.
/// `admit` sees the peer's key: a [`Refusal`] sends it GoAway before any
/// Hello and ends the connection; otherwise the session starts and this
/// returns once the peer's Hello arrived.
///
/// The same as [`handshake`] then [`Handshaken::start`], for callers whose
/// admission decision is synchronous.
pub async fn accept(
    stream: TcpStream,
    config: &ConnectionConfig,
    admit: impl FnOnce(&PublicKey) -> Result<(), Refusal>,
) -> Result<Connection, ConnectError> {
    let handshaken = handshake(stream, config).await?;
    let refusal = admit(&handshaken.remote_key()).err();
    handshaken.start(config, refusal).await
}

/// Performs the responder side of the handshake on an accepted `stream`,
/// within the handshake timeout, and stops there: the peer is authenticated
/// but nothing has been sent over the encrypted transport yet. The caller
/// decides (and may take its time) whether to admit the peer, then calls
/// [`Handshaken::start`].
pub async fn handshake(
    stream: TcpStream,
    config: &ConnectionConfig,
) -> Result<Handshaken, ConnectError> {
    let mut stream = stream;
    let handshake = async {
        let ephemeral = SecretKey::new(&mut rand::rng());
        let state = ResponderHandshake::new(noise::PROLOGUE, &config.secret_key, ephemeral);
        let mut act_one = [0u8; ACT_ONE_LEN];
        stream.read_exact(&mut act_one).await?;
        let (state, act_two) = state.read_act_one(&act_one)?;
        stream.write_all(&act_two).await?;
        let mut act_three = [0u8; ACT_THREE_LEN];
        stream.read_exact(&mut act_three).await?;
        Ok::<_, ConnectError>(state.read_act_three(&act_three)?)
    };
    let limit = config.limits.handshake_timeout;
    let (remote, transport) = tokio::time::timeout(limit, handshake)
        .await
        .map_err(|_| ConnectError::HandshakeTimeout(limit))??;
    let peer_addr = stream.peer_addr()?;
    Ok(Handshaken {
        stream,
        remote,
        transport,
        peer_addr,
        id: next_connection_id(),
    })
}

/// An inbound connection whose handshake is done: the peer's key is
/// authenticated, no session runs yet. [`Handshaken::start`] admits or
/// refuses it; dropping it closes the socket without a word.
pub struct Handshaken {
    stream: TcpStream,
    remote: PublicKey,
    transport: noise::Transport,
    peer_addr: SocketAddr,
    id: u64,
}

impl std::fmt::Debug for Handshaken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handshaken")
            .field("remote", &self.remote)
            .field("peer_addr", &self.peer_addr)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Handshaken {
    /// The peer's static key, proven by the handshake.
    pub fn remote_key(&self) -> PublicKey {
        self.remote
    }

    /// The peer's socket address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer_addr
    }

    /// The [`Connection::id`] the connection will have once started; unique
    /// in this process, so it can name the connection before it exists.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Starts the session. With a `refusal`, GoAway with its reason replaces
    /// our Hello and the connection ends (this then returns an error, or a
    /// connection already closing). Otherwise this returns once the peer's
    /// Hello arrived.
    pub async fn start(
        self,
        config: &ConnectionConfig,
        refusal: Option<Refusal>,
    ) -> Result<Connection, ConnectError> {
        let Self {
            stream,
            remote,
            transport,
            id,
            ..
        } = self;
        let role = Role::Listener;
        run_session(stream, role, remote, transport, config, refusal, id).await
    }
}

fn next_connection_id() -> u64 {
    NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed)
}

async fn start(
    stream: TcpStream,
    role: Role,
    remote: PublicKey,
    transport: noise::Transport,
    config: &ConnectionConfig,
    refusal: Option<Refusal>,
) -> Result<Connection, ConnectError> {
    let id = next_connection_id();
    run_session(stream, role, remote, transport, config, refusal, id).await
}

/// Starts the reader and writer tasks of connection `id` and waits for the
/// peer's Hello (or, with a `refusal`, sends GoAway instead of our Hello).
async fn run_session(
    stream: TcpStream,
    role: Role,
    remote: PublicKey,
    transport: noise::Transport,
    config: &ConnectionConfig,
    refusal: Option<Refusal>,
    id: u64,
) -> Result<Connection, ConnectError> {
    let mut session = Session::new(
        SessionConfig {
            role,
            local_id: config.public_key().serialize(),
            remote_id: remote.serialize(),
            hello: config.hello.clone(),
            limits: config.limits.clone(),
            known_features: vec![],
        },
        Instant::now(),
    );
    if let Some(refusal) = refusal {
        // GoAway replaces our Hello; the writer sends it and closes.
        session.go_away(Instant::now(), refusal.reason, &refusal.message);
    }
    let peer_addr = stream.peer_addr()?;
    tune_socket(&stream)?;
    let idle_timeout = config.limits.idle_timeout;
    let hello_timeout = config.limits.hello_timeout;
    let shared = Arc::new(Shared {
        inner: Mutex::new(Inner {
            session,
            wakers: HashMap::new(),
            incoming: std::collections::VecDeque::new(),
            incoming_waker: None,
            pongs: HashMap::new(),
            established: None,
            established_waiters: Vec::new(),
            closed: None,
            closed_waiters: Vec::new(),
        }),
        writer: Notify::new(),
        reader: Notify::new(),
        remote,
        peer_addr,
        id,
        role,
    });
    let (encryptor, decryptor) = transport.into_split();
    let (rd, wr) = stream.into_split();
    tokio::spawn(read_loop(shared.clone(), rd, decryptor));
    tokio::spawn(write_loop(shared.clone(), wr, encryptor, idle_timeout));
    shared.lock().process_events();
    let connection = Connection { shared };
    match tokio::time::timeout(
        hello_timeout + Duration::from_secs(1),
        connection.established(),
    )
    .await
    {
        Ok(Ok(())) => Ok(connection),
        Ok(Err(reason)) => Err(ConnectError::Closed(reason)),
        Err(_) => Err(ConnectError::Closed(CloseReason {
            reason: Reason::Timeout,
            by_peer: false,
            message: "no Hello".into(),
        })),
    }
}

/// Low latency for small frames: no Nagle delay.
fn tune_socket(stream: &TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)
}

#[derive(Debug, Default)]
struct Wakers {
    recv: Option<Waker>,
    send: Option<Waker>,
}

impl Wakers {
    fn wake(&mut self) {
        wake(&mut self.recv);
        wake(&mut self.send);
    }
}

fn wake(waker: &mut Option<Waker>) {
    if let Some(w) = waker.take() {
        w.wake();
    }
}

/// A channel the peer opened, waiting for `accept` or `reject`.
#[derive(Debug)]
pub struct IncomingChannel {
    conn: Connection,
    key: ChannelKey,
    service: String,
    priority: u8,
}

impl IncomingChannel {
    /// The service requested, e.g. `echo/1`.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The requested priority.
    pub fn priority(&self) -> u8 {
        self.priority
    }

    /// The channel's key, which the accepted [`Channel`] keeps.
    pub fn key(&self) -> ChannelKey {
        self.key
    }

    /// Accepts the channel.
    pub fn accept(self) -> Result<Channel, ChannelError> {
        self.conn
            .shared
            .command(|inner| inner.session.accept(self.key))?;
        Ok(Channel::new(
            self.conn.clone(),
            self.key,
            self.service.clone(),
        ))
    }

    /// Rejects the channel with `reason`.
    pub fn reject(self, reason: Reason, message: &str) {
        let _ = self
            .conn
            .shared
            .command(|inner| inner.session.reject(self.key, reason, message));
    }
}

struct Inner {
    session: Session,
    wakers: HashMap<ChannelKey, Wakers>,
    incoming: std::collections::VecDeque<(ChannelKey, String, u8)>,
    incoming_waker: Option<Waker>,
    pongs: HashMap<u64, oneshot::Sender<Duration>>,
    established: Option<PeerHello>,
    established_waiters: Vec<Waker>,
    closed: Option<CloseReason>,
    closed_waiters: Vec<Waker>,
}

impl Inner {
    /// Applies the session's events: wakes whoever waits on them.
    fn process_events(&mut self) {
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Established(hello) => {
                    self.established = Some(*hello);
                    self.established_waiters.drain(..).for_each(Waker::wake);
                }
                Event::IncomingChannel {
                    key,
                    service,
                    priority,
                } => {
                    self.incoming.push_back((key, service, priority));
                    wake(&mut self.incoming_waker);
                }
                Event::Channel(key) => {
                    if let Some(w) = self.wakers.get_mut(&key) {
                        w.wake();
                    }
                }
                Event::Pong { nonce, rtt } => {
                    if let Some(tx) = self.pongs.remove(&nonce) {
                        let _ = tx.send(rtt);
                    }
                }
                Event::PeerServices(services) => {
                    if let Some(hello) = &mut self.established {
                        hello.services = services;
                    }
                }
                Event::GoAway { reason, message } => {
                    self.set_closed(CloseReason {
                        reason,
                        by_peer: true,
                        message,
                    });
                }
            }
        }
        if let Some(reason) = self.session.close_reason() {
            self.set_closed(CloseReason {
                reason,
                by_peer: false,
                message: String::new(),
            });
        }
    }

    /// Records how the connection ended (first cause wins) and wakes everyone.
    fn set_closed(&mut self, reason: CloseReason) {
        if self.closed.is_some() {
            return;
        }
        tracing::debug!(%reason, "connection closed");
        self.closed = Some(reason);
        self.closed_waiters.drain(..).for_each(Waker::wake);
        self.established_waiters.drain(..).for_each(Waker::wake);
        wake(&mut self.incoming_waker);
        self.wakers.values_mut().for_each(Wakers::wake);
        self.pongs.clear();
    }
}

struct Shared {
    inner: Mutex<Inner>,
    /// Wakes the writer: frames or timers may be due.
    writer: Notify,
    /// Wakes a paused reader: the control backlog shrank.
    reader: Notify,
    remote: PublicKey,
    peer_addr: SocketAddr,
    role: Role,
    id: u64,
}

/// Source of [`Connection::id`]s.
static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock is a bug; the state is still usable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs a command on the session, then wakes the writer, which may now
    /// have frames to send.
    fn command<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let result = f(&mut self.lock());
        self.writer.notify_one();
        result
    }
}

/// Reads frames from the socket into the session.
async fn read_loop(shared: Arc<Shared>, rd: OwnedReadHalf, dec: Decryptor) {
    let mut reader = FrameReader {
        rd,
        dec,
        buf: BytesMut::new(),
        body_len: None,
    };
    let mut frames = Vec::new();
    let end = loop {
        // Pause while the peer is not reading what we owe it.
        loop {
            let notified = shared.reader.notified();
            if shared.lock().session.control_backlog() < MAX_CONTROL_BACKLOG {
                break;
            }
            notified.await;
        }
        if let Err(e) = reader.read_frames(&mut frames).await {
            break e;
        }
        let mut inner = shared.lock();
        let now = Instant::now();
        for frame in frames.drain(..) {
            if let Err(violation) = inner.session.handle_frame(now, frame) {
                tracing::debug!(%violation, peer = %shared.peer_addr, "peer broke the protocol");
                break;
            }
        }
        inner.process_events();
        let stop = inner.closed.is_some();
        drop(inner);
        shared.writer.notify_one();
        if stop {
            return;
        }
    };
    let mut inner = shared.lock();
    inner.set_closed(CloseReason {
        reason: Reason::Unspecified,
        by_peer: true,
        message: end.to_string(),
    });
    drop(inner);
    shared.writer.notify_one();
}

/// Bytes read per syscall while data flows.
const READ_CHUNK: usize = 64 << 10;

/// Decrypts transport messages out of one read buffer: each frame is split
/// off the buffer without a copy, and the buffer is only allocated once the
/// socket is readable, so an idle connection holds none.
struct FrameReader {
    rd: OwnedReadHalf,
    dec: Decryptor,
    buf: BytesMut,
    /// Length of the body whose header was opened, if any.
    body_len: Option<usize>,
}

impl FrameReader {
    /// Reads at least one whole frame and appends every whole frame read.
    async fn read_frames(&mut self, frames: &mut Vec<Bytes>) -> Result<(), ReadError> {
        loop {
            self.parse(frames)?;
            if !frames.is_empty() {
                return Ok(());
            }
            if self.buf.is_empty() && self.buf.capacity() > IDLE_BUFFER_CAPACITY {
                self.buf = BytesMut::new();
            }
            self.rd.readable().await?;
            let needed = match self.body_len {
                Some(len) => len + TAG_LEN,
                None => LENGTH_HEADER_LEN,
            };
            self.buf
                .reserve(READ_CHUNK.max(needed.saturating_sub(self.buf.len())));
            match self.rd.try_read_buf(&mut self.buf) {
                Ok(0) => return Err(ReadError::Io(std::io::ErrorKind::UnexpectedEof.into())),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn parse(&mut self, frames: &mut Vec<Bytes>) -> Result<(), ReadError> {
        loop {
            let len = match self.body_len {
                Some(len) => len,
                None => {
                    let Some(header) = self.buf.get(..LENGTH_HEADER_LEN) else {
                        return Ok(());
                    };
                    let header: &[u8; LENGTH_HEADER_LEN] = header
                        .try_into()
                        .unwrap_or_else(|_| unreachable!("sliced to length"));
                    let len = self.dec.open_length(header)?;
                    let _ = self.buf.split_to(LENGTH_HEADER_LEN);
                    self.body_len = Some(len);
                    len
                }
            };
            if self.buf.len() < len + TAG_LEN {
                return Ok(());
            }
            let mut body = self.buf.split_to(len + TAG_LEN);
            self.body_len = None;
            let len = self.dec.open_body_in_place(&mut body)?;
            body.truncate(len);
            frames.push(body.freeze());
        }
    }
}

/// Why reading stopped.
#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error("connection lost: {0}")]
    Io(#[from] std::io::Error),
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
}

/// Takes frames and timers from the session and writes to the socket.
async fn write_loop(
    shared: Arc<Shared>,
    mut wr: OwnedWriteHalf,
    mut enc: Encryptor,
    stall: Duration,
) {
    // Frames are built in `out` with room around each for the length header
    // and tag, then sealed in place outside the lock: one copy per frame.
    let mut bounds: Vec<(usize, usize)> = Vec::new();
    let mut out: Vec<u8> = Vec::new();
    loop {
        let notified = shared.writer.notified();
        let (closing, deadline) = {
            let mut inner = shared.lock();
            let now = Instant::now();
            if inner.session.poll_timeout().is_some_and(|at| at <= now)
                && let Err(violation) = inner.session.handle_timeout(now)
            {
                tracing::debug!(%violation, peer = %shared.peer_addr, "connection timed out");
            }
            out.clear();
            bounds.clear();
            while out.len() < WRITE_BATCH {
                let start = out.len();
                out.resize(start + LENGTH_HEADER_LEN, 0);
                if !inner.session.poll_transmit(now, &mut out) {
                    out.truncate(start);
                    break;
                }
                out.resize(out.len() + TAG_LEN, 0);
                bounds.push((start, out.len()));
            }
            inner.process_events();
            let socket_lost = inner
                .closed
                .as_ref()
                .is_some_and(|c| c.by_peer && c.reason == Reason::Unspecified);
            (
                inner.session.is_closed() || socket_lost,
                inner.session.poll_timeout(),
            )
        };
        shared.reader.notify_one();
        if !bounds.is_empty() {
            for &(start, end) in &bounds {
                if enc.seal_in_place(&mut out[start..end]).is_err() {
                    unreachable!("frames are at most 65535 bytes, with room reserved");
                }
            }
            match tokio::time::timeout(stall, wr.write_all(&out)).await {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => {
                    close_socket_lost(&shared, format!("write failed: {e}"));
                    return;
                }
                Err(_) => {
                    close_socket_lost(&shared, format!("no write progress for {stall:?}"));
                    return;
                }
            }
        }
        if closing {
            let _ = wr.shutdown().await;
            return;
        }
        if out.capacity() > IDLE_BUFFER_CAPACITY {
            out = Vec::new();
        }
        match deadline {
            Some(at) => {
                let _ = tokio::time::timeout_at(at.into(), notified).await;
            }
            None => notified.await,
        }
    }
}

fn close_socket_lost(shared: &Shared, message: String) {
    shared.lock().set_closed(CloseReason {
        reason: Reason::Unspecified,
        by_peer: true,
        message,
    });
}

/// A live SWP/1 connection. Cheap to clone; the connection lives while its
/// tasks run, and ends with GoAway on [`Connection::go_away`], on a protocol
/// error, or when the peer goes.
#[derive(Clone)]
pub struct Connection {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.shared.peer_addr)
            .field("role", &self.shared.role)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// The peer's static key (its node id).
    pub fn remote_key(&self) -> PublicKey {
        self.shared.remote
    }

    /// A number no other connection in this process has had.
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// Whether both handles are the same connection.
    pub fn same(&self, other: &Connection) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// The peer's socket address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.shared.peer_addr
    }

    /// Which side dialed.
    pub fn role(&self) -> Role {
        self.shared.role
    }

    /// The peer's Hello (with later `Services` updates applied).
    pub fn peer_hello(&self) -> Option<PeerHello> {
        self.shared.lock().established.clone()
    }

    /// Smoothed RTT measured with Pings.
    pub fn rtt(&self) -> Option<Duration> {
        self.shared.lock().session.rtt()
    }

    /// How the connection ended, if it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.shared.lock().closed.clone()
    }

    async fn established(&self) -> Result<(), CloseReason> {
        poll_fn(|cx| {
            let mut inner = self.shared.lock();
            if inner.established.is_some() {
                return Poll::Ready(Ok(()));
            }
            if let Some(reason) = &inner.closed {
                return Poll::Ready(Err(reason.clone()));
            }
            inner.established_waiters.push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Waits until the connection has ended and says how.
    pub async fn closed(&self) -> CloseReason {
        poll_fn(|cx| {
            let mut inner = self.shared.lock();
            match &inner.closed {
                Some(reason) => Poll::Ready(reason.clone()),
                None => {
                    inner.closed_waiters.push(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// Opens a channel to `service` and waits for the peer's answer.
    pub async fn open(&self, service: &str, priority: u8) -> Result<Channel, OpenChannelError> {
        let key = self.shared.command(|inner| {
            let key = inner.session.open(service, priority)?;
            inner.wakers.insert(key, Wakers::default());
            Ok::<_, OpenError>(key)
        })?;
        // Dropping this future before the answer releases the channel.
        let channel = Channel::new(self.clone(), key, service.to_owned());
        poll_fn(|cx| {
            let mut inner = self.shared.lock();
            if let Some(reason) = &inner.closed {
                return Poll::Ready(Err(OpenChannelError::Closed(reason.clone())));
            }
            match inner.session.channel_state(key) {
                Some(ChannelState::Opening) => {
                    inner.wakers.entry(key).or_default().send = Some(cx.waker().clone());
                    Poll::Pending
                }
                Some(ChannelState::Open | ChannelState::Incoming) => Poll::Ready(Ok(())),
                Some(ChannelState::Rejected { reason, message }) => {
                    Poll::Ready(Err(OpenChannelError::Rejected {
                        reason: *reason,
                        message: message.clone(),
                    }))
                }
                Some(ChannelState::Reset { reason, message }) => {
                    Poll::Ready(Err(OpenChannelError::Rejected {
                        reason: *reason,
                        message: message.clone(),
                    }))
                }
                None => Poll::Ready(Err(OpenChannelError::Channel(ChannelError::UnknownChannel))),
            }
        })
        .await?;
        Ok(channel)
    }

    /// Waits for the next channel the peer opens; `None` once the connection
    /// has ended.
    pub async fn next_incoming(&self) -> Option<IncomingChannel> {
        poll_fn(|cx| {
            let mut inner = self.shared.lock();
            if let Some((key, service, priority)) = inner.incoming.pop_front() {
                inner.wakers.insert(key, Wakers::default());
                return Poll::Ready(Some(IncomingChannel {
                    conn: self.clone(),
                    key,
                    service,
                    priority,
                }));
            }
            if inner.closed.is_some() {
                return Poll::Ready(None);
            }
            inner.incoming_waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Sends a Ping with `padding` bytes and waits for its Pong; returns the
    /// round-trip time.
    pub async fn ping(&self, padding: usize) -> Result<Duration, CloseReason> {
        let rx = self.shared.command(|inner| {
            if let Some(reason) = &inner.closed {
                return Err(reason.clone());
            }
            let nonce = inner.session.ping(Instant::now(), padding);
            let (tx, rx) = oneshot::channel();
            inner.pongs.insert(nonce, tx);
            Ok(rx)
        })?;
        match rx.await {
            Ok(rtt) => Ok(rtt),
            Err(_) => Err(self.close_reason().unwrap_or(CloseReason {
                reason: Reason::Unspecified,
                by_peer: false,
                message: "pong lost".into(),
            })),
        }
    }

    /// Replaces the services advertised to the peer.
    pub fn set_services(&self, services: Vec<ServiceAd>) {
        self.shared
            .command(|inner| inner.session.set_services(services));
    }

    /// Starts a graceful shutdown: queued data is sent, then GoAway.
    pub fn go_away(&self, reason: Reason, message: &str) {
        self.shared
            .command(|inner| inner.session.go_away(Instant::now(), reason, message));
    }
}

/// Why `Connection::open` failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenChannelError {
    /// The session refused to open (limits, closing).
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The peer rejected or reset the channel.
    #[error("rejected by peer: {}: {message}", reason.as_str_name())]
    Rejected {
        /// Why.
        reason: Reason,
        /// The peer's words.
        message: String,
    },
    /// A channel error.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// The connection ended.
    #[error("connection closed: {0}")]
    Closed(CloseReason),
}

/// One channel of a connection: whole messages both ways. Use `send` from
/// one task and `recv` from one task (or [`Channel::split`]). Dropping it
/// finishes our side gracefully; data still arriving is discarded.
#[derive(Debug)]
pub struct Channel {
    send: ChannelSender,
    recv: ChannelReceiver,
}

/// Resets a channel by key; see [`Channel::resetter`].
#[derive(Debug)]
pub(crate) struct ChannelResetter {
    conn: Connection,
    key: ChannelKey,
}

impl ChannelResetter {
    /// Resets the channel if it is still live.
    pub(crate) fn reset(&self, reason: Reason, message: &str) -> Result<(), ChannelError> {
        self.conn
            .shared
            .command(|inner| inner.session.reset(self.key, reason, message))
    }
}

#[derive(Debug)]
struct ChannelRef {
    conn: Connection,
    key: ChannelKey,
    service: String,
}

impl Drop for ChannelRef {
    fn drop(&mut self) {
        self.conn.shared.command(|inner| {
            inner.wakers.remove(&self.key);
            inner.session.release(self.key);
        });
    }
}

/// The sending half of a [`Channel`].
#[derive(Debug)]
pub struct ChannelSender {
    inner: Arc<ChannelRef>,
}

/// The receiving half of a [`Channel`].
#[derive(Debug)]
pub struct ChannelReceiver {
    inner: Arc<ChannelRef>,
}

impl Channel {
    fn new(conn: Connection, key: ChannelKey, service: String) -> Self {
        let inner = Arc::new(ChannelRef { conn, key, service });
        Self {
            send: ChannelSender {
                inner: inner.clone(),
            },
            recv: ChannelReceiver { inner },
        }
    }

    /// The service this channel carries.
    pub fn service(&self) -> &str {
        &self.send.inner.service
    }

    /// The channel's key, unique within its connection.
    pub fn key(&self) -> ChannelKey {
        self.send.inner.key
    }

    /// The connection it belongs to.
    pub fn connection(&self) -> &Connection {
        &self.send.inner.conn
    }

    /// Sends a whole message, waiting while the send buffers are full.
    pub async fn send(&mut self, message: Bytes) -> Result<(), ChannelError> {
        self.send.send(message).await
    }

    /// Receives the next whole message; `None` once the peer has finished.
    pub async fn recv(&mut self) -> Result<Option<Bytes>, ChannelError> {
        self.recv.recv().await
    }

    /// Half-closes our side after the queued data.
    pub fn finish(&mut self) -> Result<(), ChannelError> {
        self.send.finish()
    }

    /// Resets the channel: both directions end now.
    pub fn reset(&mut self, reason: Reason, message: &str) -> Result<(), ChannelError> {
        self.resetter().reset(reason, message)
    }

    /// Asks the peer to send at `priority`, capped at `max_bytes_per_sec`.
    pub fn request_qos(
        &mut self,
        priority: u8,
        max_bytes_per_sec: u64,
    ) -> Result<(), ChannelError> {
        let key = self.send.inner.key;
        self.send
            .inner
            .conn
            .shared
            .command(|inner| inner.session.request_qos(key, priority, max_bytes_per_sec))
    }

    /// A handle that can reset this channel after the `Channel` itself is
    /// gone (e.g. when the service holding it panicked).
    pub(crate) fn resetter(&self) -> ChannelResetter {
        ChannelResetter {
            conn: self.send.inner.conn.clone(),
            key: self.send.inner.key,
        }
    }

    /// Splits into halves usable from two tasks.
    pub fn split(self) -> (ChannelSender, ChannelReceiver) {
        (self.send, self.recv)
    }
}

impl ChannelSender {
    /// Sends a whole message, waiting while the send buffers are full.
    ///
    /// Cancel-safe: if the future is dropped before it completes, the
    /// message was not queued.
    pub async fn send(&mut self, message: Bytes) -> Result<(), ChannelError> {
        let shared = &self.inner.conn.shared;
        let key = self.inner.key;
        let mut message = Some(message);
        poll_fn(|cx| {
            let mut inner = shared.lock();
            if let Some(reason) = closed_error(&inner) {
                return Poll::Ready(Err(reason));
            }
            let Some(m) = message.take() else {
                return Poll::Ready(Ok(()));
            };
            match inner.session.send(key, m) {
                Ok(SendOutcome::Queued) => Poll::Ready(Ok(())),
                Ok(SendOutcome::Full(m)) => {
                    message = Some(m);
                    inner.wakers.entry(key).or_default().send = Some(cx.waker().clone());
                    Poll::Pending
                }
                Err(e) => Poll::Ready(Err(e)),
            }
        })
        .await?;
        shared.writer.notify_one();
        Ok(())
    }

    /// Half-closes our side after the queued data.
    pub fn finish(&mut self) -> Result<(), ChannelError> {
        let key = self.inner.key;
        self.inner
            .conn
            .shared
            .command(|inner| inner.session.finish(key))
    }

    /// Resets the channel (both directions) with `reason`.
    pub fn reset(&mut self, reason: Reason, message: &str) -> Result<(), ChannelError> {
        let key = self.inner.key;
        self.inner
            .conn
            .shared
            .command(|inner| inner.session.reset(key, reason, message))
    }
}

impl ChannelReceiver {
    /// Receives the next whole message; `None` once the peer has finished.
    pub async fn recv(&mut self) -> Result<Option<Bytes>, ChannelError> {
        let shared = &self.inner.conn.shared;
        let key = self.inner.key;
        let result = poll_fn(|cx| {
            let mut inner = shared.lock();
            match inner.session.recv(key) {
                Poll::Ready(result) => Poll::Ready(result),
                Poll::Pending => {
                    if let Some(reason) = closed_error(&inner) {
                        return Poll::Ready(Err(reason));
                    }
                    inner.wakers.entry(key).or_default().recv = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await;
        // Reading may have made a Window due.
        shared.writer.notify_one();
        result
    }
}

fn closed_error(inner: &Inner) -> Option<ChannelError> {
    inner
        .closed
        .as_ref()
        .map(|c| ChannelError::ConnectionClosed { reason: c.reason })
}
