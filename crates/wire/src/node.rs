//! A node: listens for SWP/1 connections, dials peers, keeps one connection
//! per peer (SWP1.md section 4), and routes each incoming channel to the
//! service it names. `echo/1` is always served (section 9).
//!
//! Connections are capped by a semaphore acquired *before* `accept`, so a
//! flood of dialers waits in the kernel's backlog instead of costing
//! handshakes. Shutdown sends `GoAway(REASON_SHUTTING_DOWN)` to every peer
//! and waits (boundedly) for their queues to drain.
//!
//! An inbound connection is admitted in two steps after its handshake and
//! before any Hello: the node's own ban list, then [`Hooks::admit`] (async,
//! bounded by [`ADMISSION_TIMEOUT`], e.g. the gateway's per-IP limits in
//! Redis). A refusal from either sends `GoAway` with its reason instead of
//! our Hello. Dialed connections skip both.
//!
//! [`Hooks::connection_closed`] hears how every connection ended, refused
//! or served, announced or not: whoever counts the GoAways this node sends
//! (the gateway's metrics) needs the refusals no other hook sees.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use secp256k1::PublicKey;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::driver::{
    self, Channel, CloseReason, ConnectError, Connection, ConnectionConfig, IncomingChannel,
    Refusal,
};
use crate::limits::DRAIN_TIMEOUT;
use crate::session::Role;
use skywire_proto::wire::v1::{Reason, ServiceAd};

/// Default cap on concurrent connections (inbound and outbound) per node.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// Connections accepted beyond the cap only to be told
/// `GoAway(REASON_TOO_MANY_PEERS)`, at once. Past this, new dialers wait in
/// the kernel's backlog: a flood costs at most this many handshakes at a time.
pub const MAX_CONCURRENT_REFUSALS: usize = 32;

/// Peers remembered as banned; when full, expired bans are dropped and then
/// the ban closest to expiry makes room.
pub const MAX_BANS: usize = 65_536;

/// Longest [`Hooks::admit`] may take before the peer is admitted without
/// its answer (fail open). An admission check is one or two round trips to
/// shared state (Redis: sub-millisecond on a LAN, each bounded by the
/// store's own 2 s timeout); two seconds is far beyond a healthy answer,
/// well within the peer's 10 s Hello timeout, and short enough that a slow
/// store delays each new peer by at most this, never stalls the node.
pub const ADMISSION_TIMEOUT: Duration = Duration::from_secs(2);

/// Pause after an `accept` error (e.g. out of file descriptors) before trying
/// again, so the loop does not spin.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// A service: called with each accepted channel that names it.
pub type Service = Arc<dyn Fn(Channel) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// An inbound peer waiting to be admitted: its handshake is done (its key is
/// proven), nothing else has been said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// The [`Connection::id`] its connection will have if admitted; unique
    /// in this process, so it names the connection before it exists.
    pub connection_id: u64,
    /// Where it connects from.
    pub peer_addr: SocketAddr,
    /// Its node id (static key).
    pub node_id: PublicKey,
}

/// What [`Hooks::admit`] returns: admit, or refuse with a reason.
pub type AdmitFuture<'a> = Pin<Box<dyn Future<Output = Result<(), Refusal>> + Send + 'a>>;

/// What a node does beyond its own services: route channels for services it
/// does not hold, and hear about connections coming and going. The gateway
/// implements it to bridge channels to services over the bus.
///
/// Every method is called from the connection's task and must not block:
/// spawn anything that waits.
pub trait Hooks: Send + Sync + 'static {
    /// Decides whether an inbound peer may stay: called after the handshake
    /// and before any Hello, for inbound connections only (dialed ones are
    /// never limited here), and only for peers not already refused by the
    /// node (banned, or the node at its connection cap). A [`Refusal`] sends
    /// the peer `GoAway` with its reason (e.g. `REASON_TOO_MANY_PEERS`,
    /// `REASON_RATE_LIMITED`) and ends the connection. The default admits.
    ///
    /// The node waits at most [`ADMISSION_TIMEOUT`]; then it drops the future
    /// and **admits** the peer (fail open), with a warning and a count in
    /// [`NodeHandle::admission_timeouts`]: a check backed by shared state
    /// must not turn that state's outage into refusing every peer. A hook
    /// that wants to fail closed must answer with a refusal in time.
    ///
    /// Whatever the hook holds for an admitted peer (say, a slot in a shared
    /// count) it gives back in [`Hooks::admission_ended`].
    fn admit(&self, admission: &Admission) -> AdmitFuture<'_> {
        let _ = admission;
        Box::pin(std::future::ready(Ok(())))
    }

    /// The inbound connection admitted as `admission` has ended, or never got
    /// going (no Hello, lost a duplicate race). Called exactly once for every
    /// admission the hook did not refuse (timed-out ones included), after
    /// [`Hooks::disconnected`] if the connection was announced.
    fn admission_ended(&self, admission: &Admission) {
        let _ = admission;
    }

    /// A channel for a service that is not one of the node's own. The default
    /// rejects it with `REASON_UNKNOWN_SERVICE`.
    fn route(&self, conn: &Connection, incoming: IncomingChannel) {
        let _ = conn;
        let message = format!("no service {:?}", incoming.service());
        incoming.reject(Reason::UnknownService, &message);
    }

    /// `conn` is now the connection to its peer (it won any duplicate race).
    fn connected(&self, conn: &Connection) {
        let _ = conn;
    }

    /// A connection that [`Hooks::connected`] announced has ended.
    fn disconnected(&self, conn: &Connection, reason: &CloseReason) {
        let _ = (conn, reason);
    }

    /// A connection has ended, however far it got: refused right after the
    /// handshake (banned, at the connection cap, by [`Hooks::admit`]),
    /// closed before Hello, the loser of a duplicate race, or announced and
    /// then closed (after [`Hooks::disconnected`]). Called once for every
    /// connection, inbound or dialed, whose session started (the handshake
    /// done); connections that failed earlier had no session to end.
    ///
    /// `reason.by_peer` is false when this node ended the connection: it
    /// queued `GoAway(reason.reason)` as its last frame.
    fn connection_closed(&self, reason: &CloseReason) {
        let _ = reason;
    }
}

/// The default [`Hooks`]: unknown services are rejected.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHooks;

impl Hooks for NoHooks {}

/// Node settings.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Key, Hello and limits for every connection. The Hello's service list
    /// is filled in from the registered services.
    pub connection: ConnectionConfig,
    /// Where to accept SWP/1.
    pub listen: SocketAddr,
    /// Concurrent connections, inbound and outbound.
    pub max_connections: usize,
}

/// Why `Node::connect` failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Connecting failed.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The node is at its connection limit.
    #[error("at the limit of {0} connections")]
    TooManyConnections(usize),
    /// The node is shutting down.
    #[error("node is shutting down")]
    ShuttingDown,
    /// The peer is banned.
    #[error("peer is banned")]
    Banned,
}

struct NodeShared {
    /// Read for every new connection; written when the advertised services
    /// change.
    config: RwLock<ConnectionConfig>,
    services: HashMap<String, Service>,
    hooks: Arc<dyn Hooks>,
    peers: Mutex<HashMap<[u8; 33], Connection>>,
    bans: Mutex<HashMap<[u8; 33], Instant>>,
    permits: Arc<Semaphore>,
    refusals: Arc<Semaphore>,
    max_connections: usize,
    /// The address the listener is bound to: outbound connections leave
    /// from it ([`driver::dial_from`]).
    source: IpAddr,
    /// [`Hooks::admit`] calls that timed out (and so admitted their peer).
    admission_timeouts: AtomicU64,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl NodeShared {
    fn config(&self) -> ConnectionConfig {
        self.config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn peers(&self) -> MutexGuard<'_, HashMap<[u8; 33], Connection>> {
        self.peers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn bans(&self) -> MutexGuard<'_, HashMap<[u8; 33], Instant>> {
        self.bans
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Until when `peer` is banned, if it is.
    fn banned_until(&self, peer: &PublicKey) -> Option<Instant> {
        let mut bans = self.bans();
        let id = peer.serialize();
        match bans.get(&id) {
            Some(&until) if until > Instant::now() => Some(until),
            Some(_) => {
                bans.remove(&id);
                None
            }
            None => None,
        }
    }

    /// Decides whether a peer that completed the handshake may stay, as far
    /// as the node itself is concerned (bans); [`Hooks::admit`] comes next.
    fn admit(&self, peer: &PublicKey) -> Result<(), Refusal> {
        match self.banned_until(peer) {
            Some(until) => Err(Refusal {
                reason: Reason::Banned,
                message: format!("banned for {:?} more", until - Instant::now()),
            }),
            None => Ok(()),
        }
    }
}

/// What an accepted socket is for.
enum Slot {
    /// Serve it: holds one of the `max_connections` permits.
    Serve(OwnedSemaphorePermit),
    /// Refuse it with `GoAway(REASON_TOO_MANY_PEERS)`; holds a refusal slot.
    Refuse(OwnedSemaphorePermit),
}

/// Waits for a connection permit, or, while none is free, for a refusal slot.
async fn next_slot(shared: &NodeShared) -> Option<Slot> {
    if let Ok(permit) = shared.permits.clone().try_acquire_owned() {
        return Some(Slot::Serve(permit));
    }
    if let Ok(permit) = shared.refusals.clone().try_acquire_owned() {
        return Some(Slot::Refuse(permit));
    }
    tokio::select! {
        permit = shared.permits.clone().acquire_owned() => permit.ok().map(Slot::Serve),
        permit = shared.refusals.clone().acquire_owned() => permit.ok().map(Slot::Refuse),
    }
}

/// A bound, not yet running node. [`Node::run`] serves until shut down;
/// [`Node::handle`] dials and inspects it meanwhile.
pub struct Node {
    listener: TcpListener,
    shared: Arc<NodeShared>,
}

/// A handle on a running node: dial peers, list connections, shut down.
#[derive(Clone)]
pub struct NodeHandle {
    shared: Arc<NodeShared>,
    local_addr: SocketAddr,
}

impl Node {
    /// Binds the listener (port 0 picks a free port; read it back with
    /// [`NodeHandle::local_addr`]) and registers `services` plus `echo/1`.
    pub async fn bind(
        config: NodeConfig,
        services: impl IntoIterator<Item = (String, Service)>,
    ) -> std::io::Result<Self> {
        Self::bind_with_hooks(config, services, Arc::new(NoHooks)).await
    }

    /// [`Node::bind`], with `hooks` routing channels for other services and
    /// hearing about connections.
    pub async fn bind_with_hooks(
        config: NodeConfig,
        services: impl IntoIterator<Item = (String, Service)>,
        hooks: Arc<dyn Hooks>,
    ) -> std::io::Result<Self> {
        let mut services: HashMap<String, Service> = services.into_iter().collect();
        services.insert(crate::echo::SERVICE.into(), crate::echo::service());
        let mut connection = config.connection;
        connection.hello.services = advertised(&services, &[]);
        let listener = TcpListener::bind(config.listen).await?;
        let local_addr = listener.local_addr()?;
        // Advertise the bound address unless told otherwise, but never a
        // wildcard such as 0.0.0.0: peers could not dial it.
        if connection.hello.listen_addrs.is_empty() && !local_addr.ip().is_unspecified() {
            connection.hello.listen_addrs.push(local_addr.to_string());
        }
        let shared = Arc::new(NodeShared {
            config: RwLock::new(connection),
            services,
            hooks,
            peers: Mutex::new(HashMap::new()),
            bans: Mutex::new(HashMap::new()),
            permits: Arc::new(Semaphore::new(config.max_connections)),
            refusals: Arc::new(Semaphore::new(MAX_CONCURRENT_REFUSALS)),
            max_connections: config.max_connections,
            source: local_addr.ip(),
            admission_timeouts: AtomicU64::new(0),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        });
        Ok(Self { listener, shared })
    }

    /// A handle for dialing and shutting down.
    pub fn handle(&self) -> NodeHandle {
        NodeHandle {
            shared: self.shared.clone(),
            local_addr: self
                .listener
                .local_addr()
                .unwrap_or_else(|_| ([0, 0, 0, 0], 0).into()),
        }
    }

    /// Accepts connections until [`NodeHandle::shutdown`], then says GoAway
    /// to every peer and waits for the connections to end.
    pub async fn run(self) {
        let Self { listener, shared } = self;
        let node = NodeHandle {
            local_addr: listener
                .local_addr()
                .unwrap_or_else(|_| ([0, 0, 0, 0], 0).into()),
            shared: shared.clone(),
        };
        loop {
            let slot = tokio::select! {
                slot = next_slot(&shared) => match slot {
                    Some(slot) => slot,
                    None => break,
                },
                () = shared.shutdown.cancelled() => break,
            };
            let (stream, addr) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                        continue;
                    }
                },
                () = shared.shutdown.cancelled() => break,
            };
            let node = node.clone();
            shared.tasks.spawn(async move {
                let result = match slot {
                    Slot::Serve(permit) => node.serve_inbound(stream, permit).await,
                    Slot::Refuse(_refusal) => {
                        let shared = &node.shared;
                        let message = format!("at the limit of {} peers", shared.max_connections);
                        let refuse = |_: &PublicKey| {
                            Err(Refusal {
                                reason: Reason::TooManyPeers,
                                message,
                            })
                        };
                        let refused = driver::accept(stream, &shared.config(), refuse).await;
                        node.refused(refused).await
                    }
                };
                if let Err(e) = result {
                    tracing::debug!(peer = %addr, error = %e, "inbound connection ended");
                }
            });
        }
        drop(listener);
        node.go_away_all();
        shared.tasks.close();
        if tokio::time::timeout(DRAIN_TIMEOUT + Duration::from_secs(1), shared.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("connections still open after the drain timeout");
        }
    }
}

impl NodeHandle {
    /// The address the node listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The node's public key.
    pub fn public_key(&self) -> PublicKey {
        self.shared.config().public_key()
    }

    /// The live connection to `peer`, if any.
    pub fn connection(&self, peer: &PublicKey) -> Option<Connection> {
        self.shared
            .peers()
            .get(&peer.serialize())
            .filter(|c| c.close_reason().is_none())
            .cloned()
    }

    /// Every live connection.
    pub fn connections(&self) -> Vec<Connection> {
        self.shared
            .peers()
            .values()
            .filter(|c| c.close_reason().is_none())
            .cloned()
            .collect()
    }

    /// Bans `peer` for `duration`: a live connection gets
    /// `GoAway(REASON_BANNED)`, and until the ban ends its connections are
    /// refused the same way and it is not dialed.
    pub fn ban(&self, peer: &PublicKey, duration: Duration, why: &str) {
        let now = Instant::now();
        {
            let mut bans = self.shared.bans();
            if bans.len() >= MAX_BANS {
                bans.retain(|_, until| *until > now);
            }
            if bans.len() >= MAX_BANS
                && let Some(soonest) = bans
                    .iter()
                    .min_by_key(|(_, until)| **until)
                    .map(|(id, _)| *id)
            {
                bans.remove(&soonest);
            }
            bans.insert(peer.serialize(), now + duration);
        }
        tracing::info!(node_id = %peer, ?duration, why, "peer banned");
        if let Some(conn) = self.connection(peer) {
            conn.go_away(Reason::Banned, why);
        }
    }

    /// Lifts a ban.
    pub fn unban(&self, peer: &PublicKey) {
        self.shared.bans().remove(&peer.serialize());
    }

    /// Whether `peer` is banned now.
    pub fn is_banned(&self, peer: &PublicKey) -> bool {
        self.shared.banned_until(peer).is_some()
    }

    /// How many [`Hooks::admit`] calls have timed out (each admitting its
    /// peer unchecked) since the node started.
    pub fn admission_timeouts(&self) -> u64 {
        self.shared.admission_timeouts.load(Ordering::Relaxed)
    }

    /// Connects to `peer` at `addr`, or returns the live connection to it.
    pub async fn connect(
        &self,
        addr: SocketAddr,
        peer: &PublicKey,
    ) -> Result<Connection, NodeError> {
        if self.shared.shutdown.is_cancelled() {
            return Err(NodeError::ShuttingDown);
        }
        if self.is_banned(peer) {
            return Err(NodeError::Banned);
        }
        if let Some(conn) = self.connection(peer) {
            return Ok(conn);
        }
        let permit = self
            .shared
            .permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| NodeError::TooManyConnections(self.shared.max_connections))?;
        let conn = driver::dial_from(addr, peer, &self.shared.config(), Some(self.shared.source))
            .await
            .inspect_err(|e| self.start_failed(e))?;
        let kept = self.register(conn.clone());
        let node = self.clone();
        let served = conn.clone();
        if kept.same(&conn) {
            self.shared
                .tasks
                .spawn(async move { node.serve(served, permit).await });
        } else {
            // Lost the duplicate race: told GoAway, never served.
            self.shared.tasks.spawn(async move {
                let reason = served.closed().await;
                node.shared.hooks.connection_closed(&reason);
            });
        }
        Ok(kept)
    }

    /// Advertises `extra` services besides the node's own: in the Hello of
    /// every new connection and, through a `Services` update, to every
    /// connected peer.
    pub fn set_services(&self, extra: &[String]) {
        let services = advertised(&self.shared.services, extra);
        {
            let mut config = self
                .shared
                .config
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if config.hello.services == services {
                return;
            }
            config.hello.services = services.clone();
        }
        for conn in self.connections() {
            conn.set_services(services.clone());
        }
    }

    /// Starts shutting the node down; [`Node::run`] returns once done.
    pub fn shutdown(&self) {
        self.shared.shutdown.cancel();
    }

    fn go_away_all(&self) {
        for conn in self.shared.peers().values() {
            conn.go_away(Reason::ShuttingDown, "node shutting down");
        }
    }

    /// Records `conn` as the connection to its peer, applying the duplicate
    /// rule; returns the connection kept. The loser gets
    /// `GoAway(REASON_DUPLICATE_CONNECTION)`.
    fn register(&self, conn: Connection) -> Connection {
        let local = self.public_key().serialize();
        let remote = conn.remote_key().serialize();
        let dialer = |c: &Connection| {
            if c.role() == Role::Dialer {
                local
            } else {
                remote
            }
        };
        let mut peers = self.shared.peers();
        let existing = peers
            .get(&remote)
            .filter(|c| c.close_reason().is_none())
            .cloned();
        let kept = match existing {
            None => conn.clone(),
            Some(old) if old.same(&conn) => old,
            Some(old) => {
                // Keep the connection whose dialer has the smaller node id; if
                // the same side dialed both, keep the older one. Both nodes
                // decide alike, so they keep the same TCP connection.
                let (keep, lose) = if dialer(&conn) < dialer(&old) {
                    (conn.clone(), old)
                } else {
                    (old, conn.clone())
                };
                lose.go_away(Reason::DuplicateConnection, "already connected");
                keep
            }
        };
        peers.insert(remote, kept.clone());
        kept
    }

    /// Handshakes, admits (bans, then [`Hooks::admit`]) and serves one
    /// inbound connection, holding `permit` throughout.
    async fn serve_inbound(
        self,
        stream: TcpStream,
        permit: OwnedSemaphorePermit,
    ) -> Result<(), ConnectError> {
        let handshaken = driver::handshake(stream, &self.shared.config()).await?;
        let admission = Admission {
            connection_id: handshaken.id(),
            peer_addr: handshaken.peer_addr(),
            node_id: handshaken.remote_key(),
        };
        let refusal = match self.shared.admit(&admission.node_id) {
            Err(refusal) => Some(refusal),
            Ok(()) => self.admit(&admission).await.err(),
        };
        // Read again: the advertised services may have changed meanwhile.
        let config = self.shared.config();
        if let Some(refusal) = refusal {
            tracing::debug!(
                peer = %admission.peer_addr,
                node_id = %admission.node_id,
                reason = refusal.reason.as_str_name(),
                message = %refusal.message,
                "inbound peer refused",
            );
            let refused = handshaken.start(&config, Some(refusal)).await;
            return self.refused(refused).await;
        }
        let result = match handshaken.start(&config, None).await {
            Ok(conn) => {
                self.clone().serve(conn, permit).await;
                Ok(())
            }
            Err(e) => {
                self.start_failed(&e);
                Err(e)
            }
        };
        self.shared.hooks.admission_ended(&admission);
        result
    }

    /// Waits until a connection started with a refusal has ended (its
    /// GoAway sent), telling [`Hooks::connection_closed`].
    async fn refused(&self, started: Result<Connection, ConnectError>) -> Result<(), ConnectError> {
        match started {
            Ok(conn) => {
                let reason = conn.closed().await;
                self.shared.hooks.connection_closed(&reason);
                Ok(())
            }
            Err(e) => {
                self.start_failed(&e);
                Err(e)
            }
        }
    }

    /// Tells [`Hooks::connection_closed`] how a connection whose session
    /// started ended before it was established. Errors before a session
    /// (socket, handshake) end no connection.
    fn start_failed(&self, error: &ConnectError) {
        if let ConnectError::Closed(reason) = error {
            self.shared.hooks.connection_closed(reason);
        }
    }

    /// [`Hooks::admit`], bounded by [`ADMISSION_TIMEOUT`]; admits on timeout.
    async fn admit(&self, admission: &Admission) -> Result<(), Refusal> {
        match tokio::time::timeout(ADMISSION_TIMEOUT, self.shared.hooks.admit(admission)).await {
            Ok(decision) => decision,
            Err(_) => {
                self.shared
                    .admission_timeouts
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    peer = %admission.peer_addr,
                    node_id = %admission.node_id,
                    timeout = ?ADMISSION_TIMEOUT,
                    "admission check timed out; admitting the peer (fail open)",
                );
                Ok(())
            }
        }
    }

    /// Serves one established connection: routes its incoming channels until
    /// it ends. Holds `permit` for the connection's life.
    async fn serve(self, conn: Connection, permit: OwnedSemaphorePermit) {
        let _permit = permit;
        if self.shared.shutdown.is_cancelled() {
            conn.go_away(Reason::ShuttingDown, "node shutting down");
        }
        let kept = self.register(conn.clone());
        let announced = kept.same(&conn);
        if announced {
            tracing::info!(peer = %conn.peer_addr(), node_id = %conn.remote_key(), "peer connected");
            self.shared.hooks.connected(&conn);
        }
        while let Some(incoming) = conn.next_incoming().await {
            match self.shared.services.get(incoming.service()) {
                Some(service) => match incoming.accept() {
                    Ok(channel) => {
                        let resetter = channel.resetter();
                        let name = channel.service().to_owned();
                        let run = AssertUnwindSafe(service(channel)).catch_unwind();
                        self.shared.tasks.spawn(async move {
                            if run.await.is_err() {
                                tracing::error!(service = %name, "service panicked; channel reset");
                                let _ = resetter.reset(Reason::Internal, "service failed");
                            }
                        });
                    }
                    Err(e) => tracing::debug!(error = %e, "accept failed"),
                },
                None => self.shared.hooks.route(&conn, incoming),
            }
        }
        let reason = conn.closed().await;
        {
            let mut peers = self.shared.peers();
            if peers
                .get(&conn.remote_key().serialize())
                .is_some_and(|c| c.same(&conn))
            {
                peers.remove(&conn.remote_key().serialize());
            }
        }
        if announced {
            self.shared.hooks.disconnected(&conn, &reason);
        }
        self.shared.hooks.connection_closed(&reason);
        tracing::info!(peer = %conn.peer_addr(), %reason, "peer disconnected");
    }
}

/// The services a node advertises: its own plus `extra`, sorted, once each.
fn advertised(own: &HashMap<String, Service>, extra: &[String]) -> Vec<ServiceAd> {
    let mut names: Vec<&String> = own.keys().chain(extra).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|name| ServiceAd {
            name: name.clone(),
            metadata: HashMap::new(),
        })
        .collect()
}
