//! A node: listens for SWP/1 connections, dials peers, keeps one connection
//! per peer (SWP1.md section 4), and routes each incoming channel to the
//! service it names. `echo/1` is always served (section 9).
//!
//! Connections are capped by a semaphore acquired *before* `accept`, so a
//! flood of dialers waits in the kernel's backlog instead of costing
//! handshakes. Shutdown sends `GoAway(REASON_SHUTTING_DOWN)` to every peer
//! and waits (boundedly) for their queues to drain.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use secp256k1::PublicKey;
use tokio::net::TcpListener;
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

/// Pause after an `accept` error (e.g. out of file descriptors) before trying
/// again, so the loop does not spin.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// A service: called with each accepted channel that names it.
pub type Service = Arc<dyn Fn(Channel) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// What a node does beyond its own services: route channels for services it
/// does not hold, and hear about connections coming and going. The gateway
/// implements it to bridge channels to services over the bus.
///
/// Every method is called from the connection's task and must not block:
/// spawn anything that waits.
pub trait Hooks: Send + Sync + 'static {
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

    /// Decides whether a peer that completed the handshake may stay.
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
                let shared = &node.shared;
                let config = shared.config();
                let result = match slot {
                    Slot::Serve(permit) => {
                        driver::accept(stream, &config, |peer| shared.admit(peer))
                            .await
                            .map(|conn| (conn, Some(permit)))
                    }
                    Slot::Refuse(_refusal) => {
                        let message = format!("at the limit of {} peers", shared.max_connections);
                        let refuse = |_: &PublicKey| {
                            Err(Refusal {
                                reason: Reason::TooManyPeers,
                                message,
                            })
                        };
                        driver::accept(stream, &config, refuse)
                            .await
                            .map(|conn| (conn, None))
                    }
                };
                match result {
                    Ok((conn, Some(permit))) => node.serve(conn, permit).await,
                    Ok((_, None)) => {}
                    Err(e) => tracing::debug!(peer = %addr, error = %e, "inbound connection ended"),
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
        let conn = driver::dial(addr, peer, &self.shared.config()).await?;
        let kept = self.register(conn.clone());
        if kept.same(&conn) {
            let node = self.clone();
            let served = conn.clone();
            self.shared
                .tasks
                .spawn(async move { node.serve(served, permit).await });
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
