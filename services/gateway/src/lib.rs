//! The gateway: the cluster's one SWP/1 front.
//!
//! A [`Gateway`] terminates SWP/1 connections (a `skywire-wire` node with
//! `echo/1` built in) and bridges every other channel to the service
//! instance that takes it, over the bus:
//!
//! - [`bridge`]: channels both ways. A peer's `Open` becomes an
//!   `OpenRequest` to the service's queue group; the instance that accepts
//!   owns the channel, and a link (`skywire_service::link`) carries its
//!   messages with credit flow control end to end. Services open channels to
//!   peers through `sw.gw.<id>.open`.
//! - [`Gateway::bind`] wires the rest: the registry of live services from
//!   heartbeats (advertised in Hello and `Services` updates; opens for a
//!   service that died get `REASON_SERVICE_UNAVAILABLE`), the presence map
//!   (peer → replica, with TTL) so any service can reach any peer, peer
//!   events, and commands from the pool (dial, disconnect, ban), and
//!   registers the gateway's Prometheus families
//!   ([`skywire_telemetry::metrics::GatewayMetrics`]) on the process's
//!   registry: connections (here, from the node's hooks), GoAways sent by
//!   reason (every connection's end, refusals included), and the bridged
//!   channels, traffic and queues ([`bridge`]).
//!
//! Several replicas may run at once with the same node key; each has its
//! own id, and the presence map says which one holds a peer.

pub mod bridge;
pub mod commands;
pub mod limits;
#[cfg(feature = "testing")]
pub mod testing;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use prost::Message as _;
use skywire_bus::{Bus, BusError, subjects};
use skywire_identity::Address;
use skywire_kv::Kv;
use skywire_kv::presence::Presence;
use skywire_proto::bus::v1 as pb;
use skywire_service::Links;
use skywire_service::registry::{self, Change, HEARTBEAT_INTERVAL, HEARTBEAT_TTL, Registry};
use skywire_service::sync::lock;
/// The process's metric registry, which [`Gateway::bind`] registers the
/// gateway's families on.
pub use skywire_telemetry::Metrics;
use skywire_telemetry::metrics::{GatewayMetrics, ServiceNames};
use skywire_wire::node::{Admission, AdmitFuture};
use skywire_wire::{
    CloseReason, Connection, Hooks, IncomingChannel, Node, NodeConfig, NodeHandle, Reason,
};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::limits::{IpLimitConfig, IpLimits};

/// How long a presence entry lives without a refresh: a replica that dies
/// stops claiming its peers within this.
pub const PRESENCE_TTL: Duration = Duration::from_secs(30);

/// How often live connections' presence entries are refreshed and their
/// `sw.peer.up` repeated.
pub const PRESENCE_REFRESH: Duration = Duration::from_secs(10);

/// Service names remembered as "was live once" (for
/// `REASON_SERVICE_UNAVAILABLE` instead of `REASON_UNKNOWN_SERVICE`). The
/// same set bounds the metrics' `service` label: names come only from the
/// cluster's own heartbeats, never from peers, and any other name is
/// labelled `"other"`.
pub const MAX_KNOWN_SERVICES: usize = 4096;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The replica id cannot appear in a subject.
    #[error("invalid gateway id {0:?}: use 1-64 letters, digits, '-' or '_'")]
    InvalidId(String),
    /// The SWP/1 listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// Listen address.
        addr: std::net::SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The bus failed.
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// Gateway settings.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// This replica's id (unique in the cluster).
    pub id: String,
    /// SWP/1 node settings (key, listen address, limits).
    pub node: NodeConfig,
    /// Per-IP limits on inbound connections, shared by every replica through
    /// the [`Kv`] given to [`Gateway::bind`].
    pub limits: IpLimitConfig,
}

/// A bound gateway; [`Gateway::run`] serves until shut down.
pub struct Gateway {
    node: Node,
    inner: Arc<Inner>,
}

/// A handle on a running gateway.
#[derive(Clone)]
pub struct GatewayHandle {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    id: String,
    bus: Bus,
    presence: Presence,
    links: Links,
    registry: Mutex<Registry>,
    /// Services that were live at some point: also the `service` label's
    /// values.
    known: ServiceNames,
    metrics: GatewayMetrics,
    /// Announced connections by id: for presence refreshes, and so that a
    /// connection's "down" follows its "up".
    connections: Mutex<HashMap<u64, Live>>,
    /// Peers whose connection is transient (`Dial.transient`): marked
    /// before the dial, so the connection's "up" says so; at most one per
    /// connection or dial in progress.
    transient: Mutex<HashSet<[u8; 33]>>,
    node: OnceLock<NodeHandle>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

/// A connection announced by [`Hooks::connected`].
#[derive(Debug)]
struct Live {
    conn: Connection,
    /// The task that claims presence and publishes `sw.peer.up`; the
    /// "down" waits for it.
    announced: tokio::task::JoinHandle<()>,
}

impl Inner {
    fn node(&self) -> Option<&NodeHandle> {
        self.node.get()
    }

    /// The bus view of a connected peer.
    fn peer(&self, conn: &Connection) -> pb::Peer {
        let node_id = conn.remote_key().serialize();
        let hello = conn.peer_hello();
        pb::Peer {
            node_id: Bytes::copy_from_slice(&node_id),
            address: Address::of_node_id(&node_id)
                .map(|a| a.to_string())
                .unwrap_or_default(),
            remote_addr: conn.peer_addr().to_string(),
            gateway: self.id.clone(),
            connection: conn.id(),
            services: hello
                .as_ref()
                .map(|h| h.services.iter().map(|s| s.name.clone()).collect())
                .unwrap_or_default(),
            listen_addrs: hello
                .as_ref()
                .map(|h| h.listen_addrs.clone())
                .unwrap_or_default(),
            user_agent: hello.map(|h| h.user_agent).unwrap_or_default(),
            inbound: conn.role() == skywire_wire::Role::Listener,
            transient: lock(&self.transient).contains(&node_id),
        }
    }

    /// Publishes the current view of `conn` as a refresh of its "up" (after
    /// something about it changed, such as being kept).
    async fn republish(&self, conn: &Connection) {
        let event = pb::PeerEvent {
            peer: Some(self.peer(conn)),
            up: true,
            refresh: true,
            ..pb::PeerEvent::default()
        };
        self.publish_peer(subjects::PEER_UP, event).await;
    }

    /// Applies a registry change: advertise the live services, reset links
    /// to instances that are gone.
    fn registry_changed(&self, change: Change) {
        let services = lock(&self.registry).services();
        for service in &services {
            self.known.insert(service);
        }
        if let Some(node) = self.node() {
            node.set_services(&services);
        }
        for gone in change.left {
            self.links
                .reset_peer(&gone, Reason::ServiceUnavailable, "service instance gone");
        }
    }

    async fn publish_peer(&self, subject: &str, event: pb::PeerEvent) {
        if let Err(e) = self
            .bus
            .publish(subject, Bytes::from(event.encode_to_vec()))
            .await
        {
            tracing::warn!(error = %e, subject, "cannot publish peer event");
        }
    }
}

/// The node's hooks: the gateway's state, and the per-IP limits that admit
/// inbound peers.
struct GatewayHooks(Arc<Inner>, Arc<IpLimits>);

impl Hooks for GatewayHooks {
    fn admit(&self, admission: &Admission) -> AdmitFuture<'_> {
        let admission = *admission;
        Box::pin(async move { self.1.admit(&admission).await })
    }

    fn admission_ended(&self, admission: &Admission) {
        let limits = self.1.clone();
        let id = admission.connection_id;
        self.0.tasks.spawn(async move { limits.release(id).await });
    }

    fn route(&self, conn: &Connection, incoming: IncomingChannel) {
        let inner = &self.0;
        let service = incoming.service().to_owned();
        if lock(&inner.registry).serves(&service) {
            let inner = inner.clone();
            let conn = conn.clone();
            self.0
                .tasks
                .spawn(async move { bridge::inbound(inner, conn, incoming).await });
        } else if inner.known.contains(&service) {
            incoming.reject(Reason::ServiceUnavailable, "service is down");
        } else {
            let message = format!("no service {service:?}");
            incoming.reject(Reason::UnknownService, &message);
        }
    }

    fn connected(&self, conn: &Connection) {
        let inner = self.0.clone();
        inner.metrics.connections.inc();
        let peer = inner.peer(conn);
        let node_id = conn.remote_key().serialize();
        // Holding the map's lock until the task is in it: `disconnected`
        // cannot take the entry before.
        let mut connections = lock(&self.0.connections);
        let announced = self.0.tasks.spawn(async move {
            if let Err(e) = inner
                .presence
                .claim(&node_id, &inner.id, PRESENCE_TTL)
                .await
            {
                tracing::warn!(error = %e, "cannot record presence");
            }
            let event = pb::PeerEvent {
                peer: Some(peer),
                up: true,
                refresh: false,
                ..pb::PeerEvent::default()
            };
            inner.publish_peer(subjects::PEER_UP, event).await;
        });
        let live = Live {
            conn: conn.clone(),
            announced,
        };
        connections.insert(conn.id(), live);
    }

    fn disconnected(&self, conn: &Connection, reason: &CloseReason) {
        let inner = self.0.clone();
        inner.metrics.connections.dec();
        let announced = lock(&inner.connections)
            .remove(&conn.id())
            .map(|live| live.announced);
        inner
            .links
            .reset_connection(&inner.id, conn.id(), Reason::Normal, "peer disconnected");
        let peer = inner.peer(conn);
        let node_id = conn.remote_key().serialize();
        let (go_away, by_peer) = (reason.reason, reason.by_peer);
        let reason = reason.to_string();
        // A newer connection to the same peer (a duplicate that won) keeps
        // this replica's claim.
        let superseded = inner
            .node()
            .and_then(|n| n.connection(&conn.remote_key()))
            .is_some_and(|live| !live.same(conn));
        if !superseded {
            lock(&inner.transient).remove(&node_id);
        }
        self.0.tasks.spawn(async move {
            // After the "up" (its presence claim and event), never before:
            // listeners would see this connection come up after it went down.
            if let Some(announced) = announced {
                let _ = announced.await;
            }
            if !superseded && let Err(e) = inner.presence.release(&node_id, &inner.id).await {
                tracing::warn!(error = %e, "cannot clear presence");
            }
            let event = pb::PeerEvent {
                peer: Some(peer),
                up: false,
                reason,
                refresh: false,
                go_away: go_away.into(),
                by_peer,
            };
            inner.publish_peer(subjects::PEER_DOWN, event).await;
        });
    }

    /// Counts the GoAway this node sent, if it ended the connection: bans,
    /// limit refusals, protocol errors, timeouts, duplicates, shutdown.
    fn connection_closed(&self, reason: &CloseReason) {
        if !reason.by_peer {
            self.0.metrics.goaway(reason.reason.as_str_name());
        }
    }
}

impl Gateway {
    /// Binds the SWP/1 listener and joins the bus: subscribes to its
    /// subjects and starts heartbeats, presence refreshes and the registry.
    ///
    /// `kv` holds the per-IP limits ([`limits`]): pass the store `presence`
    /// wraps (Redis in cluster mode, so every replica counts alike; memory
    /// embedded). The gateway's metric families are registered on `metrics`
    /// (the process's registry, served at `/metrics`); bind one gateway per
    /// registry.
    pub async fn bind(
        config: GatewayConfig,
        bus: Bus,
        presence: Presence,
        kv: Kv,
        metrics: &Metrics,
    ) -> Result<Self, GatewayError> {
        if !subjects::valid_id(&config.id) {
            return Err(GatewayError::InvalidId(config.id));
        }
        let limits = Arc::new(IpLimits::new(kv, &config.id, config.limits));
        let inner = Arc::new(Inner {
            id: config.id.clone(),
            bus: bus.clone(),
            presence,
            links: Links::new(),
            registry: Mutex::new(Registry::new()),
            known: ServiceNames::bounded(MAX_KNOWN_SERVICES),
            metrics: GatewayMetrics::register(metrics),
            connections: Mutex::new(HashMap::new()),
            transient: Mutex::new(HashSet::new()),
            node: OnceLock::new(),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        });
        let listen = config.node.listen;
        let hooks = GatewayHooks(inner.clone(), limits.clone());
        let node = Node::bind_with_hooks(config.node, [], Arc::new(hooks))
            .await
            .map_err(|source| GatewayError::Listen {
                addr: listen,
                source,
            })?;
        let _ = inner.node.set(node.handle());
        spawn_channel_dispatch(&inner).await?;
        spawn_registry(&inner).await?;
        bridge::spawn_outbound(&inner).await?;
        commands::spawn(&inner).await?;
        spawn_heartbeat(&inner);
        spawn_presence_refresh(&inner);
        let stop = inner.shutdown.clone();
        inner
            .tasks
            .spawn(async move { limits.keep_alive(stop).await });
        Ok(Self { node, inner })
    }

    /// A handle for inspecting and stopping the gateway.
    pub fn handle(&self) -> GatewayHandle {
        GatewayHandle {
            inner: self.inner.clone(),
        }
    }

    /// Serves until [`GatewayHandle::shutdown`]: then says GoAway to every
    /// peer, leaves the bus and waits for its tasks.
    pub async fn run(self) {
        self.node.run().await;
        let inner = self.inner;
        inner.shutdown.cancel();
        let beat = heartbeat(&inner.id, Duration::ZERO);
        let _ = inner.bus.publish(subjects::HEARTBEAT, beat).await;
        let _ = inner.bus.flush().await;
        inner.tasks.close();
        inner.tasks.wait().await;
    }
}

impl GatewayHandle {
    /// This replica's id.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// The SWP/1 node.
    pub fn node(&self) -> Option<&NodeHandle> {
        self.inner.node()
    }

    /// Services live in the cluster now, as advertised to peers.
    pub fn live_services(&self) -> Vec<String> {
        lock(&self.inner.registry).services()
    }

    /// Channels bridged to services now.
    pub fn bridged_channels(&self) -> usize {
        self.inner.links.len()
    }

    /// Starts shutting down; [`Gateway::run`] returns once done.
    pub fn shutdown(&self) {
        if let Some(node) = self.inner.node() {
            node.shutdown();
        }
    }
}

fn heartbeat(id: &str, ttl: Duration) -> Bytes {
    let beat = pb::Heartbeat {
        instance: id.to_owned(),
        services: Vec::new(),
        ttl_ms: u32::try_from(ttl.as_millis()).unwrap_or(u32::MAX),
        gateway: true,
    };
    Bytes::from(beat.encode_to_vec())
}

/// Channel traffic from instances → links.
async fn spawn_channel_dispatch(inner: &Arc<Inner>) -> Result<(), BusError> {
    let mut events = inner
        .bus
        .subscribe(&subjects::gateway_channels(&inner.id))
        .await?;
    let links = inner.links.clone();
    let stop = inner.shutdown.clone();
    inner.tasks.spawn(async move {
        loop {
            let message = tokio::select! {
                m = events.next() => m,
                () = stop.cancelled() => None,
            };
            let Some(message) = message else { break };
            match pb::ChannelEvent::decode(message.payload) {
                Ok(event) => links.dispatch(event, &message.headers),
                Err(e) => tracing::warn!(error = %e, "malformed channel event"),
            }
        }
    });
    Ok(())
}

/// Heartbeats → registry → advertised services.
async fn spawn_registry(inner: &Arc<Inner>) -> Result<(), BusError> {
    let beats = inner.bus.subscribe(subjects::HEARTBEAT).await?;
    let task = inner.clone();
    inner.tasks.spawn(async move {
        registry::follow(beats, task.shutdown.clone(), &task.registry, |change| {
            task.registry_changed(change);
        })
        .await;
    });
    Ok(())
}

fn spawn_heartbeat(inner: &Arc<Inner>) {
    let task = inner.clone();
    inner.tasks.spawn(async move {
        let mut tick = tokio::time::interval(HEARTBEAT_INTERVAL);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let beat = heartbeat(&task.id, HEARTBEAT_TTL);
                    if let Err(e) = task.bus.publish(subjects::HEARTBEAT, beat).await {
                        tracing::warn!(error = %e, "heartbeat failed");
                    }
                }
                () = task.shutdown.cancelled() => break,
            }
        }
    });
}

/// Every [`PRESENCE_REFRESH`]: re-claims presence for every live connection
/// and repeats its `sw.peer.up` (marked `refresh`), so a pool that started
/// later or missed an event catches up.
fn spawn_presence_refresh(inner: &Arc<Inner>) {
    let task = inner.clone();
    inner.tasks.spawn(async move {
        let mut tick = tokio::time::interval(PRESENCE_REFRESH);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = task.shutdown.cancelled() => break,
            }
            let live: Vec<Connection> = lock(&task.connections)
                .values()
                .map(|live| live.conn.clone())
                .collect();
            for conn in live {
                let node_id = conn.remote_key().serialize();
                // Claim, not refresh: after a Redis outage the entry may be gone.
                if let Err(e) = task.presence.claim(&node_id, &task.id, PRESENCE_TTL).await {
                    tracing::warn!(error = %e, "cannot refresh presence");
                }
                task.republish(&conn).await;
            }
        }
    });
}
