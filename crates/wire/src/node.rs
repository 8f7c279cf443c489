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
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use secp256k1::PublicKey;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::driver::{self, Channel, ConnectError, Connection, ConnectionConfig};
use crate::limits::DRAIN_TIMEOUT;
use crate::session::Role;
use skywire_proto::wire::v1::{Reason, ServiceAd};

/// Default cap on concurrent connections (inbound and outbound) per node.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// Pause after an `accept` error (e.g. out of file descriptors) before trying
/// again, so the loop does not spin.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// A service: called with each accepted channel that names it.
pub type Service = Arc<dyn Fn(Channel) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

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
}

struct NodeShared {
    config: ConnectionConfig,
    services: HashMap<String, Service>,
    peers: Mutex<HashMap<[u8; 33], Connection>>,
    permits: Arc<Semaphore>,
    max_connections: usize,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl NodeShared {
    fn peers(&self) -> MutexGuard<'_, HashMap<[u8; 33], Connection>> {
        self.peers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
        let mut services: HashMap<String, Service> = services.into_iter().collect();
        services.insert(crate::echo::SERVICE.into(), crate::echo::service());
        let mut connection = config.connection;
        let mut names: Vec<_> = services.keys().cloned().collect();
        names.sort();
        connection.hello.services = names
            .into_iter()
            .map(|name| ServiceAd {
                name,
                metadata: HashMap::new(),
            })
            .collect();
        let listener = TcpListener::bind(config.listen).await?;
        let local_addr = listener.local_addr()?;
        if connection.hello.listen_addrs.is_empty() {
            connection.hello.listen_addrs.push(local_addr.to_string());
        }
        let shared = Arc::new(NodeShared {
            config: connection,
            services,
            peers: Mutex::new(HashMap::new()),
            permits: Arc::new(Semaphore::new(config.max_connections)),
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
            let permit = tokio::select! {
                permit = shared.permits.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
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
                match driver::accept(stream, &node.shared.config).await {
                    Ok(conn) => node.serve(conn, permit).await,
                    Err(e) => {
                        tracing::debug!(peer = %addr, error = %e, "inbound connection failed")
                    }
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
        self.shared.config.public_key()
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

    /// Connects to `peer` at `addr`, or returns the live connection to it.
    pub async fn connect(
        &self,
        addr: SocketAddr,
        peer: &PublicKey,
    ) -> Result<Connection, NodeError> {
        if self.shared.shutdown.is_cancelled() {
            return Err(NodeError::ShuttingDown);
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
        let conn = driver::dial(addr, peer, &self.shared.config).await?;
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
    async fn serve(self, conn: Connection, permit: tokio::sync::OwnedSemaphorePermit) {
        let _permit = permit;
        if self.shared.shutdown.is_cancelled() {
            conn.go_away(Reason::ShuttingDown, "node shutting down");
        }
        let kept = self.register(conn.clone());
        if kept.same(&conn) {
            tracing::info!(peer = %conn.peer_addr(), node_id = %conn.remote_key(), "peer connected");
        }
        while let Some(incoming) = conn.next_incoming().await {
            match self.shared.services.get(incoming.service()) {
                Some(service) => match incoming.accept() {
                    Ok(channel) => {
                        self.shared.tasks.spawn(service(channel));
                    }
                    Err(e) => tracing::debug!(error = %e, "accept failed"),
                },
                None => {
                    let message = format!("no service {:?}", incoming.service());
                    incoming.reject(Reason::UnknownService, &message);
                }
            }
        }
        let reason = conn.closed().await;
        let mut peers = self.shared.peers();
        if peers
            .get(&conn.remote_key().serialize())
            .is_some_and(|c| c.same(&conn))
        {
            peers.remove(&conn.remote_key().serialize());
        }
        tracing::info!(peer = %conn.peer_addr(), %reason, "peer disconnected");
    }
}
