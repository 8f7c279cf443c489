//! The connection pool: which peers the node is connected to, and why.
//!
//! - [`Pool`] keeps [`PoolConfig::outbound_peers`] outbound connections:
//!   it picks candidates from the [`store`] (peers the operator asked to keep
//!   first, then by score), asks a gateway replica to dial
//!   (`sw.gw.any.cmd`), and after a failure waits [`backoff::delay`] before
//!   trying that peer again. It learns every connection and disconnection
//!   from the gateways' `sw.peer.up` / `sw.peer.down` events and records them
//!   in the store. Bans go to every gateway replica (`sw.gw.all.cmd`) and are
//!   re-sent periodically so replicas that start later learn them.
//! - [`store`]: the peer store in SQLite or PostgreSQL.
//! - [`admin`]: the gRPC admin API (`skywire.pool.v1.Pool`, with
//!   `grpc.health.v1`): dial, disconnect, list, ban, unban, send a message to
//!   a peer's service, and subscribe to a service's inbound messages.
//!
//! The pool never holds a connection itself: gateways do. It is one process
//! (one replica) in cluster mode, or one task of `skywire node`.

pub mod admin;
pub mod backoff;
pub mod store;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use prost::Message as _;
use skywire_bus::{Bus, BusError, subjects};
use skywire_identity::{Address, PublicKey as NodeId};
use skywire_proto::bus::v1::{self as pb, gateway_command::Command};
use skywire_proto::wire::v1::Reason;
use skywire_service::registry::watch_departures;
use skywire_service::sync::lock;
use skywire_service::{HostError, Incoming, LinkError, ServiceHost};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::store::{PeerStore, StoreError, StoredPeer, now_ms};

/// Stored endpoints [`Pool::dial_address`] tries before asking the DHT: the
/// most recent ones; older ones are likelier stale, and each failure can
/// cost a dial timeout.
pub const STORED_ENDPOINTS_TRIED: usize = 2;

/// Default number of outbound peers to keep.
pub const DEFAULT_OUTBOUND_PEERS: usize = 8;

/// How often the pool looks for peers to dial.
pub const DIAL_TICK: Duration = Duration::from_secs(1);

/// Dials in flight at once.
pub const MAX_CONCURRENT_DIALS: usize = 8;

/// How long `send` waits for the peer's service to acknowledge (finish).
pub const SEND_ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// How often active bans are re-sent to every gateway replica.
pub const BAN_REBROADCAST: Duration = Duration::from_secs(30);

/// After an operator disconnects a peer, the pool does not dial it again
/// for this long (unless asked to).
pub const DISCONNECT_COOLDOWN: Duration = Duration::from_secs(600);

/// Connections remembered per peer (duplicates being resolved).
const MAX_CONNECTIONS_PER_PEER: usize = 4;

/// Candidates read from the store per dial round.
const CANDIDATES_PER_ROUND: u32 = 64;

/// Why a peer is banned; each reason carries its own duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanReason {
    /// It broke SWP/1 or a service protocol: an hour, long enough to stop a
    /// loop of reconnects, short enough for a fixed peer to come back.
    ProtocolViolation,
    /// It served data that failed verification (bad signatures, lies about
    /// chains): a day.
    InvalidData,
    /// It exceeded rate limits again and again: ten minutes.
    Abuse,
    /// An operator banned it for as long as they said.
    Operator(Duration),
    /// A service caught it misbehaving on one of its channels and asked for
    /// a ban on the bus ([`subjects::POOL_BAN`]): as long as the service
    /// asked, at most [`MAX_SERVICE_BAN`].
    Service(Duration),
}

/// The longest ban a service may ask for ([`BanReason::Service`]): a day,
/// as for [`BanReason::InvalidData`].
pub const MAX_SERVICE_BAN: Duration = Duration::from_secs(24 * 3600);

impl BanReason {
    /// How long this kind of ban lasts.
    pub fn duration(self) -> Duration {
        match self {
            Self::ProtocolViolation => Duration::from_secs(3600),
            Self::InvalidData => Duration::from_secs(24 * 3600),
            Self::Abuse => Duration::from_secs(600),
            Self::Operator(d) => d,
            Self::Service(d) => d.min(MAX_SERVICE_BAN),
        }
    }
}

/// Rate-limit GoAways that make a peer an abuser: the third within
/// [`ABUSE_WINDOW`] bans it for [`BanReason::Abuse`]'s duration. One can be
/// a burst; three in ten minutes is a peer that reconnects to flood again.
pub const ABUSE_STRIKES: u32 = 3;

/// The window in which [`ABUSE_STRIKES`] strikes ban a peer.
pub const ABUSE_WINDOW: Duration = Duration::from_secs(600);

/// Peers whose strikes are remembered at once; when full, strikes whose
/// window has passed are forgotten, and then new offenders are not tracked
/// (their next protocol violation still bans them).
const MAX_STRIKE_RECORDS: usize = 4096;

/// What the end of a connection says about the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing against it: it left, timed out, lost a duplicate race, …
    Innocent,
    /// One strike towards an [`BanReason::Abuse`] ban.
    Strike,
    /// Ban it now.
    Ban(BanReason),
}

impl Verdict {
    /// Judges a connection that ended with `go_away` (sent by the peer when
    /// `by_peer`). Only GoAways this node sent count: the node sends
    /// `PROTOCOL_ERROR` or `FLOW_CONTROL` when the peer broke SWP/1 (a ban),
    /// `RATE_LIMITED` when it flooded control frames (a strike). Whatever
    /// the peer says about itself is not evidence.
    pub fn of_go_away(go_away: Reason, by_peer: bool) -> Self {
        match go_away {
            _ if by_peer => Self::Innocent,
            Reason::ProtocolError | Reason::FlowControl => Self::Ban(BanReason::ProtocolViolation),
            Reason::RateLimited => Self::Strike,
            _ => Self::Innocent,
        }
    }
}

/// Why a pool operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The peer store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The bus failed (no gateway answering, timeouts).
    #[error(transparent)]
    Bus(#[from] BusError),
    /// Opening a channel or serving a service failed.
    #[error(transparent)]
    Host(#[from] HostError),
    /// Sending on a channel failed.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// A peer given as text is neither an address, a hex public key nor
    /// `PUBKEY@HOST:PORT` as required.
    #[error("invalid peer {input:?}: {reason}")]
    InvalidPeer {
        /// What was given.
        input: String,
        /// What is wrong.
        reason: String,
    },
    /// The peer is not in the store.
    #[error("unknown peer {0}")]
    UnknownPeer(String),
    /// A gateway refused the command.
    #[error("gateway: {0}")]
    Gateway(String),
    /// Finding a peer by address through the DHT failed.
    #[error(transparent)]
    Discovery(#[from] skywire_dht::DhtError),
}

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Outbound connections to keep (peers marked keep are dialed on top).
    pub outbound_peers: usize,
    /// How often to look for peers to dial.
    pub tick: Duration,
    /// Ban peers automatically for the GoAways the gateways send them (see
    /// [`Verdict::of_go_away`]).
    pub auto_ban: bool,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            outbound_peers: DEFAULT_OUTBOUND_PEERS,
            tick: DIAL_TICK,
            auto_ban: true,
        }
    }
}

/// A peer as the pool sees it: stored, and connected or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerView {
    /// What the store holds.
    pub stored: StoredPeer,
    /// The connection, if connected: which gateway replica and direction.
    pub connection: Option<pb::Peer>,
}

/// The running pool. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Pool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    bus: Bus,
    store: PeerStore,
    host: ServiceHost,
    config: PoolConfig,
    /// Live connections by node id, from peer events.
    /// Several while duplicates (possibly on different replicas) are being
    /// resolved; the last one announced first.
    connected: Mutex<HashMap<[u8; 33], Vec<pb::Peer>>>,
    /// Peers being dialed now.
    dialing: Mutex<HashSet<[u8; 33]>>,
    /// Earliest next attempt per peer after failures.
    retry_at: Mutex<HashMap<[u8; 33], Instant>>,
    /// Strikes per peer: how many, and when the first of the window was.
    strikes: Mutex<HashMap<[u8; 33], (u32, Instant)>>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

/// Whether `a` and `b` are the same connection: connection ids are unique
/// only within one gateway replica.
fn same_connection(a: &pb::Peer, b: &pb::Peer) -> bool {
    a.gateway == b.gateway && a.connection == b.connection
}

/// The Skycoin address of a node id.
fn address_of(node_id: &[u8; 33]) -> Result<String, PoolError> {
    Address::of_node_id(node_id)
        .map(|a| a.to_string())
        .map_err(|e| PoolError::InvalidPeer {
            input: hex::encode(node_id),
            reason: e.to_string(),
        })
}

/// A failed [`ServiceHost`] command as the pool reports it: a bus failure
/// (no gateway, timeout) stays [`PoolError::Bus`]; whatever the gateway
/// answered is [`PoolError::Gateway`].
fn host_error(error: HostError) -> PoolError {
    match error {
        HostError::Bus(e) => PoolError::Bus(e),
        HostError::Dial(message) => PoolError::Gateway(message),
        HostError::Malformed(message) => PoolError::Gateway(format!("malformed reply: {message}")),
        other => PoolError::Host(other),
    }
}

impl Pool {
    /// Starts the pool: follows peer events, dials, re-sends bans.
    pub async fn start(
        bus: Bus,
        store: PeerStore,
        host: ServiceHost,
        config: PoolConfig,
    ) -> Result<Self, PoolError> {
        let inner = Arc::new(Inner {
            bus: bus.clone(),
            store,
            host,
            config,
            connected: Mutex::new(HashMap::new()),
            dialing: Mutex::new(HashSet::new()),
            retry_at: Mutex::new(HashMap::new()),
            strikes: Mutex::new(HashMap::new()),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        });
        // One subscription for both, so one gateway's up and down for a
        // connection arrive in the order it sent them.
        let events = bus.subscribe(subjects::PEER_EVENTS).await?;
        let heartbeats = bus.subscribe(subjects::HEARTBEAT).await?;
        let bans = bus
            .queue_subscribe(subjects::POOL_BAN, subjects::POOL_GROUP)
            .await?;
        let pool = Self { inner };
        pool.spawn_events(events);
        pool.spawn_service_bans(bans);
        pool.spawn_gateway_watch(heartbeats);
        pool.spawn_dialer();
        pool.spawn_ban_rebroadcast();
        Ok(pool)
    }

    /// The peer store.
    pub fn store(&self) -> &PeerStore {
        &self.inner.store
    }

    fn spawn_events(&self, mut events: skywire_bus::Subscription) {
        let pool = self.clone();
        self.inner.tasks.spawn(async move {
            loop {
                let message = tokio::select! {
                    m = events.next() => m,
                    () = pool.inner.shutdown.cancelled() => None,
                };
                let Some(message) = message else { break };
                match pb::PeerEvent::decode(message.payload) {
                    Ok(event) => pool.peer_event(event).await,
                    Err(e) => tracing::warn!(error = %e, "malformed peer event"),
                }
            }
        });
    }

    /// Takes the bans services ask for on [`subjects::POOL_BAN`]: a `Ban`,
    /// answered with a `CommandReply` (its `error` set if the ban failed).
    fn spawn_service_bans(&self, mut requests: skywire_bus::Subscription) {
        let pool = self.clone();
        self.inner.tasks.spawn(async move {
            loop {
                let message = tokio::select! {
                    m = requests.next() => m,
                    () = pool.inner.shutdown.cancelled() => None,
                };
                let Some(message) = message else { break };
                let result = match pb::Ban::decode(message.payload.clone()) {
                    Ok(ban) => pool.service_ban(&ban).await,
                    Err(e) => Err(format!("malformed ban: {e}")),
                };
                if let Err(e) = &result {
                    tracing::warn!(error = %e, "service ban refused");
                }
                let reply = pb::CommandReply {
                    error: result.err().unwrap_or_default(),
                    peer: None,
                };
                let _ = pool
                    .inner
                    .bus
                    .respond(&message, Bytes::from(reply.encode_to_vec()))
                    .await;
            }
        });
    }

    /// Bans the peer of a service's `ban`.
    async fn service_ban(&self, ban: &pb::Ban) -> Result<(), String> {
        let node_id = <[u8; 33]>::try_from(ban.node_id.as_ref())
            .map_err(|_| "node_id: 33 bytes expected".to_owned())?;
        let duration = BanReason::Service(Duration::from_millis(ban.duration_ms));
        let why: String = ban.reason.chars().take(store::MAX_BAN_REASON_LEN).collect();
        self.ban(&node_id, duration, &why)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(node_id = %hex::encode(node_id), ?duration, %why, "peer banned at a service's request");
        Ok(())
    }

    async fn peer_event(&self, mut event: pb::PeerEvent) {
        let Some(peer) = event.peer.take() else {
            return;
        };
        let Ok(node_id) = <[u8; 33]>::try_from(peer.node_id.as_ref()) else {
            return;
        };
        tracing::debug!(
            address = %peer.address,
            gateway = %peer.gateway,
            connection = peer.connection,
            up = event.up,
            refresh = event.refresh,
            "peer event"
        );
        if !event.up {
            {
                let mut connected = lock(&self.inner.connected);
                // Only that connection: another (say, on another replica)
                // may still be up.
                if let Some(connections) = connected.get_mut(&node_id) {
                    connections.retain(|p| !same_connection(p, &peer));
                    if connections.is_empty() {
                        connected.remove(&node_id);
                    }
                }
            }
            tracing::debug!(address = %peer.address, reason = %event.reason, "peer down");
            if self.inner.config.auto_ban {
                self.judge(&node_id, &event).await;
            }
            return;
        }
        let endpoints: Vec<String> = peer
            .listen_addrs
            .iter()
            .filter(|a| a.parse::<SocketAddr>().is_ok())
            .take(store::MAX_ENDPOINTS_PER_PEER)
            .cloned()
            .collect();
        let services: Vec<String> = peer
            .services
            .iter()
            .filter(|s| skywire_proto::service_name::is_valid(s))
            .take(store::MAX_SERVICES)
            .cloned()
            .collect();
        let user_agent: String = peer
            .user_agent
            .chars()
            .take(store::MAX_USER_AGENT_LEN)
            .collect();
        let Ok(address) = address_of(&node_id) else {
            return;
        };
        if event.refresh && self.refreshed(&node_id, &peer) {
            return;
        }
        if let Err(e) = self
            .inner
            .store
            .connected(
                &node_id,
                &address,
                &endpoints,
                &services,
                &user_agent,
                now_ms(),
            )
            .await
        {
            // Not tracked either, so the gateway's next refresh of this
            // connection tries again (a refresh of a tracked one is skipped).
            tracing::warn!(%address, error = %e, "cannot record connection");
            return;
        }
        // After the store: whoever sees the peer connected finds it stored.
        lock(&self.inner.retry_at).remove(&node_id);
        let mut connected = lock(&self.inner.connected);
        let connections = connected.entry(node_id).or_default();
        connections.retain(|p| !same_connection(p, &peer));
        // Bounded: duplicates are resolved within a round trip.
        connections.truncate(MAX_CONNECTIONS_PER_PEER - 1);
        connections.insert(0, peer);
    }

    /// Bans the peer of a connection that ended as `event` says, if its
    /// GoAway calls for it.
    async fn judge(&self, node_id: &[u8; 33], event: &pb::PeerEvent) {
        let go_away = Reason::try_from(event.go_away).unwrap_or(Reason::Unspecified);
        let reason = match Verdict::of_go_away(go_away, event.by_peer) {
            Verdict::Innocent => return,
            Verdict::Ban(reason) => reason,
            Verdict::Strike if self.strike(node_id, Instant::now()) => BanReason::Abuse,
            Verdict::Strike => return,
        };
        let why = format!("automatic: {}", event.reason);
        let why: String = why.chars().take(store::MAX_BAN_REASON_LEN).collect();
        match self.ban(node_id, reason, &why).await {
            Ok(()) => tracing::info!(node_id = %hex::encode(node_id), ?reason, %why, "peer banned"),
            Err(e) => {
                tracing::warn!(node_id = %hex::encode(node_id), error = %e, "cannot ban peer")
            }
        }
    }

    /// Records a strike against `node_id` at `now`; whether it was the
    /// [`ABUSE_STRIKES`]th within [`ABUSE_WINDOW`] (the count starts over).
    fn strike(&self, node_id: &[u8; 33], now: Instant) -> bool {
        let mut strikes = lock(&self.inner.strikes);
        let fresh = |first: Instant| now.duration_since(first) < ABUSE_WINDOW;
        if strikes.len() >= MAX_STRIKE_RECORDS && !strikes.contains_key(node_id) {
            strikes.retain(|_, (_, first)| fresh(*first));
            if strikes.len() >= MAX_STRIKE_RECORDS {
                return false;
            }
        }
        let entry = strikes.entry(*node_id).or_insert((0, now));
        if !fresh(entry.1) {
            *entry = (0, now);
        }
        entry.0 += 1;
        if entry.0 < ABUSE_STRIKES {
            return false;
        }
        strikes.remove(node_id);
        true
    }

    /// If this very connection is known, takes in what a refresh says of
    /// it now (whether it is still transient, say) and returns true.
    fn refreshed(&self, node_id: &[u8; 33], peer: &pb::Peer) -> bool {
        let mut connected = lock(&self.inner.connected);
        let known = connected
            .get_mut(node_id)
            .and_then(|connections| connections.iter_mut().find(|p| same_connection(p, peer)));
        match known {
            Some(known) => {
                known.clone_from(peer);
                true
            }
            None => false,
        }
    }

    /// Forgets the connections of a gateway replica that stopped sending
    /// heartbeats (it crashed: it will never say its peers went down).
    fn spawn_gateway_watch(&self, heartbeats: skywire_bus::Subscription) {
        let pool = self.clone();
        self.inner.tasks.spawn(watch_departures(
            heartbeats,
            self.inner.shutdown.clone(),
            move |gone| {
                tracing::debug!(gateway = gone, "gateway gone");
                lock(&pool.inner.connected).retain(|_, connections| {
                    connections.retain(|peer| peer.gateway != gone);
                    !connections.is_empty()
                })
            },
        ));
    }

    fn spawn_dialer(&self) {
        let pool = self.clone();
        self.inner.tasks.spawn(async move {
            let mut tick = tokio::time::interval(pool.inner.config.tick);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = pool.inner.shutdown.cancelled() => break,
                }
                if let Err(e) = pool.dial_round().await {
                    tracing::warn!(error = %e, "dial round failed");
                }
            }
        });
    }

    /// One round: start dials until enough outbound peers are connected or
    /// being dialed (kept peers are always dialed).
    async fn dial_round(&self) -> Result<(), PoolError> {
        let now = Instant::now();
        let candidates = self
            .inner
            .store
            .dial_candidates(now_ms(), CANDIDATES_PER_ROUND)
            .await?;
        let mut outbound = lock(&self.inner.connected)
            .values()
            .filter(|connections| connections.iter().any(|p| !p.inbound && !p.transient))
            .count()
            + lock(&self.inner.dialing).len();
        for candidate in candidates {
            let node_id = candidate.node_id;
            // A transient connection (another service's short exchange)
            // is dialed all the same: the dial keeps it.
            let kept = lock(&self.inner.connected)
                .get(&node_id)
                .is_some_and(|connections| connections.iter().any(|p| !p.transient));
            if kept
                || lock(&self.inner.retry_at)
                    .get(&node_id)
                    .is_some_and(|at| *at > now)
            {
                continue;
            }
            if !candidate.keep && outbound >= self.inner.config.outbound_peers {
                continue;
            }
            {
                let mut dialing = lock(&self.inner.dialing);
                if dialing.len() >= MAX_CONCURRENT_DIALS {
                    break;
                }
                if !dialing.insert(node_id) {
                    continue;
                }
            }
            outbound += 1;
            let pool = self.clone();
            self.inner.tasks.spawn(async move {
                pool.dial_stored(&candidate).await;
                lock(&pool.inner.dialing).remove(&candidate.node_id);
            });
        }
        Ok(())
    }

    /// Dials a stored peer at each of its endpoints in turn; on failure,
    /// records it and schedules the next attempt.
    async fn dial_stored(&self, peer: &StoredPeer) {
        let store = &self.inner.store;
        if let Err(e) = store.dial_attempted(&peer.node_id, now_ms()).await {
            tracing::warn!(address = %peer.address, error = %e, "cannot record dial");
        }
        let mut last_error = String::from("no endpoint");
        for endpoint in &peer.endpoints {
            let Ok(addr) = endpoint.parse::<SocketAddr>() else {
                continue;
            };
            match self.inner.host.dial(&peer.node_id, addr).await {
                Ok(_) => return,
                Err(e) => last_error = host_error(e).to_string(),
            }
        }
        let failures = store
            .dial_failed(&peer.node_id, now_ms())
            .await
            .unwrap_or(1);
        let wait = backoff::delay(failures, rand::random::<f64>());
        lock(&self.inner.retry_at).insert(peer.node_id, Instant::now() + wait);
        tracing::info!(address = %peer.address, failures, ?wait, error = %last_error, "dial failed");
    }

    /// Sends a command to every gateway replica (no answer awaited).
    async fn broadcast(&self, command: Command) -> Result<(), PoolError> {
        self.inner.host.broadcast(command).await.map_err(host_error)
    }

    fn spawn_ban_rebroadcast(&self) {
        let pool = self.clone();
        self.inner.tasks.spawn(async move {
            let mut tick = tokio::time::interval(BAN_REBROADCAST);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = pool.inner.shutdown.cancelled() => break,
                }
                let now = now_ms();
                match pool.inner.store.active_bans(now).await {
                    Ok(bans) => {
                        for (node_id, until, reason) in bans {
                            let left = u64::try_from(until - now).unwrap_or(0);
                            let _ = pool
                                .broadcast(Command::Ban(pb::Ban {
                                    node_id: Bytes::copy_from_slice(&node_id),
                                    duration_ms: left,
                                    reason,
                                }))
                                .await;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot read bans"),
                }
            }
        });
    }

    /// Connects to `node_id` at `addr` now, and keeps it connected from then
    /// on (it is dialed again whenever it drops).
    pub async fn dial(&self, node_id: &[u8; 33], addr: SocketAddr) -> Result<pb::Peer, PoolError> {
        let address = address_of(node_id)?;
        self.inner
            .store
            .add(node_id, &address, Some(&addr.to_string()), true)
            .await?;
        lock(&self.inner.retry_at).remove(node_id);
        self.inner
            .host
            .dial(node_id, addr)
            .await
            .map_err(host_error)
    }

    /// Connects to the node with `address` and keeps it connected from then
    /// on, as [`Pool::dial`]: at the endpoints the store holds for it
    /// (earlier connections, peer exchange; the [`STORED_ENDPOINTS_TRIED`]
    /// most recent), else at those of its record, found through the DHT,
    /// in order.
    pub async fn dial_address(&self, address: &Address) -> Result<pb::Peer, PoolError> {
        if let Some(stored) = self.inner.store.by_address(&address.to_string()).await? {
            let endpoints = stored
                .endpoints
                .iter()
                .filter_map(|e| e.parse::<SocketAddr>().ok())
                .take(STORED_ENDPOINTS_TRIED);
            for endpoint in endpoints {
                match self.dial(&stored.node_id, endpoint).await {
                    Ok(peer) => return Ok(peer),
                    Err(e) => {
                        tracing::debug!(%address, %endpoint, error = %e, "stored endpoint failed")
                    }
                }
            }
        }
        let record = skywire_dht::api::resolve_on_bus(&self.inner.bus, address).await?;
        let node_id = record.node_id().to_bytes();
        let mut last = PoolError::InvalidPeer {
            input: address.to_string(),
            reason: "its record lists no endpoint".into(),
        };
        for endpoint in record.endpoints() {
            match self.dial(&node_id, *endpoint).await {
                Ok(peer) => return Ok(peer),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Closes the connection to `node_id` (GoAway on whichever replica holds
    /// it) and stops keeping it.
    pub async fn disconnect(&self, node_id: &[u8; 33]) -> Result<(), PoolError> {
        self.inner.store.set_keep(node_id, false).await?;
        lock(&self.inner.retry_at).insert(*node_id, Instant::now() + DISCONNECT_COOLDOWN);
        self.broadcast(Command::Disconnect(pb::Disconnect {
            node_id: Bytes::copy_from_slice(node_id),
            message: "disconnected by the operator".into(),
            if_transient: false,
        }))
        .await
    }

    /// Bans `node_id` for `reason`'s duration: stored, and every gateway
    /// replica drops and refuses it.
    pub async fn ban(
        &self,
        node_id: &[u8; 33],
        reason: BanReason,
        why: &str,
    ) -> Result<(), PoolError> {
        let address = address_of(node_id)?;
        let duration = reason.duration();
        let until =
            now_ms().saturating_add(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX));
        self.inner.store.ban(node_id, &address, until, why).await?;
        self.broadcast(Command::Ban(pb::Ban {
            node_id: Bytes::copy_from_slice(node_id),
            duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            reason: why.to_owned(),
        }))
        .await
    }

    /// Lifts a ban everywhere.
    pub async fn unban(&self, node_id: &[u8; 33]) -> Result<(), PoolError> {
        self.inner.store.unban(node_id).await?;
        self.broadcast(Command::Unban(pb::Unban {
            node_id: Bytes::copy_from_slice(node_id),
        }))
        .await
    }

    /// The peers connected now: one connection each (the latest announced).
    pub fn connected(&self) -> Vec<pb::Peer> {
        lock(&self.inner.connected)
            .values()
            .filter_map(|connections| connections.first().cloned())
            .collect()
    }

    /// Every stored peer (best first), with its connection if connected.
    pub async fn peers(&self, limit: u32) -> Result<Vec<PeerView>, PoolError> {
        let stored = self.inner.store.list(limit).await?;
        let connected = lock(&self.inner.connected);
        Ok(stored
            .into_iter()
            .map(|stored| PeerView {
                connection: connected
                    .get(&stored.node_id)
                    .and_then(|connections| connections.first().cloned()),
                stored,
            })
            .collect())
    }

    /// The node id of a peer named by Skycoin address (looked up in the
    /// store) or by hex public key.
    pub async fn resolve(&self, peer: &str) -> Result<[u8; 33], PoolError> {
        let invalid = |reason: &str| PoolError::InvalidPeer {
            input: peer.chars().take(128).collect(),
            reason: reason.to_owned(),
        };
        if let Ok(key) = peer.parse::<NodeId>() {
            return Ok(key.to_bytes());
        }
        let address: Address = peer
            .parse()
            .map_err(|_| invalid("neither a Skycoin address nor a hex public key"))?;
        let stored = self
            .inner
            .store
            .by_address(&address.to_string())
            .await?
            .ok_or_else(|| PoolError::UnknownPeer(address.to_string()))?;
        Ok(stored.node_id)
    }

    /// Opens a channel to `service` on the connected peer, sends `message`
    /// and finishes, then waits for the peer's service to finish its side:
    /// so `Ok` means the peer's service took the message (an
    /// acknowledgement), and an error means it may not have. Callers retry
    /// on error (at-least-once).
    pub async fn send(
        &self,
        node_id: &[u8; 33],
        service: &str,
        message: Bytes,
    ) -> Result<(), PoolError> {
        let mut channel = self.inner.host.open(node_id, service, 0).await?;
        channel.send(message).await?;
        channel.finish().await?;
        let acknowledged = async {
            // Whatever the peer's service answers before finishing is ignored.
            while channel.recv().await?.is_some() {}
            Ok::<_, LinkError>(())
        };
        tokio::time::timeout(SEND_ACK_TIMEOUT, acknowledged)
            .await
            .map_err(|_| PoolError::Gateway("the peer did not acknowledge in time".into()))??;
        Ok(())
    }

    /// Serves `service` for peers: each channel they open to it.
    pub async fn subscribe(&self, service: &str) -> Result<Incoming, PoolError> {
        Ok(self.inner.host.serve(service).await?)
    }

    /// Stops the pool's tasks.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }
}
