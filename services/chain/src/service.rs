//! The running chain service: `chain/1` and `txrelay/1` on a [`ServiceHost`].
//!
//! One [`ChainService`] per node (embedded) or per `skywire serve chain` process
//! (cluster); it owns the chain's store, its sync planner and its transaction pool.
//!
//! # What runs
//!
//! - **Peers.** Connected peers advertising `chain/1` (from the gateway's peer events,
//!   including the periodic refreshes, so a restarted service finds them again) are
//!   tracked for sync and relay; each new one is asked for its tip.
//! - **Sync** (one loop, every [`SYNC_TICK`] or when woken): the
//!   [`SyncPlanner`] decides which headers and blocks to ask
//!   of whom; each request runs as its own task on its own channel; blocks it hands out
//!   are applied in order through [`Chain::apply`]. A peer whose answer breaks the
//!   protocol or lies about the chain is banned through the pool ([`Penalty`]); one
//!   that stalls [`SyncConfig::stall_limit`] times is banned briefly.
//! - **Tips.** Every new head (applied by sync or published) is announced to every
//!   tracked peer, at most once per [`ANNOUNCE_INTERVAL`]; every [`TIP_REFRESH`] each
//!   peer is asked for its tip again, in case an announcement was lost.
//! - **Relay.** A peer's announced transaction ids are fetched if the pool lacks them,
//!   each transaction checked against the head and the unspent set (or kept as an
//!   orphan if its inputs are unknown), and announced on to the other peers in batches
//!   every [`RELAY_INTERVAL`]; those submitted on this node are announced again while
//!   they stay in the pool (after [`REANNOUNCE_FIRST`], doubling up to
//!   [`REANNOUNCE_MAX`]), since a peer that failed to fetch one has no other source.
//!   Each applied block removes its transactions (and those conflicting with it) from
//!   the pool and re-checks the orphans it completes.
//! - **Publisher mode** (with the publisher's key): every
//!   [`ServiceConfig::block_interval`], if the pool holds transactions, a block of the
//!   best of them is made, signed, applied and announced.
//!
//! # Bounds
//!
//! Channels served at once per service: [`MAX_SERVING`] (more are reset with
//! `RATE_LIMITED`). Requests in flight: the planner's (one header request and
//! [`SyncConfig::max_in_flight_per_peer`] block requests per peer) plus at most
//! [`MAX_FETCHES`] transaction fetches and [`MAX_ANNOUNCES`] announcements at once.
//! Peers tracked: those connected (the gateway's connection limit), of which
//! [`SyncConfig::max_peers`] sync. Transactions waiting to be announced:
//! [`MAX_PENDING_ANNOUNCE`]. Ids refused lately, not fetched again:
//! [`MAX_RECENTLY_REFUSED`]. The pool: [`MempoolConfig`].

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use prost::Message as _;
use skywire_bus::subjects;
use skywire_coin::{Block, BlockBody, BlockError, Hash, SignedBlock, Transaction, UxOut};
use skywire_identity::Keypair;
use skywire_proto::bus::v1 as bus_pb;
use skywire_proto::wire::v1::Reason;
use skywire_record::now_ms;
use skywire_service::sync::lock;
use skywire_service::{AskError, HostError, ServiceChannel, ServiceHost};
use tokio::sync::{Notify, Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::chain::{BatchError, Chain, ChainError};
use crate::mempool::{Mempool, MempoolConfig, MempoolError};
use crate::protocol::{
    self, CHAIN_PRIORITY, CHAIN_SERVICE, ChainRequest, ChainResponse, Code, MAX_ANNOUNCE,
    MAX_GET_TRANSACTIONS, ProtocolError, RELAY_PRIORITY, RELAY_SERVICE, RelayRequest,
    RelayResponse, Tip,
};
use crate::query::Failure;
use crate::spec::ChainSpec;
use crate::store::{Head, MAX_APPLY_BATCH, StoreError};
use crate::sync::{Misbehaviour, SyncConfig, SyncPlanner, SyncStatus};
use crate::verify::{TxRejection, verify_transaction};

/// Most blocks applied in one [`Chain::apply_many`] call: 8 store batches, so that each
/// batch is checked while the one before is written, and the tip, the pool and the
/// planner hear of applied blocks at least every ~1 s while syncing.
pub const APPLY_RUN: usize = 8 * MAX_APPLY_BATCH;

/// Most characters of the reason sent with a ban: the pool's own limit
/// (`skywire_pool::store::MAX_BAN_REASON_LEN`), so that the pool keeps the whole of it and
/// the bus message stays small.
pub const MAX_BAN_REASON: usize = 256;

/// How often the sync loop runs when nothing wakes it (timeouts, new requests).
pub const SYNC_TICK: Duration = Duration::from_millis(100);

/// The shortest time between two rounds of tip announcements: a publisher making many
/// blocks announces the latest, not each.
pub const ANNOUNCE_INTERVAL: Duration = Duration::from_millis(200);

/// How often every tracked peer is asked for its tip.
pub const TIP_REFRESH: Duration = Duration::from_secs(30);

/// How often new transactions are announced to peers, in batches.
pub const RELAY_INTERVAL: Duration = Duration::from_millis(100);

/// How long one exchange on a channel may take (opening it, the answer) outside sync,
/// whose requests time out after [`SyncConfig::request_timeout_ms`].
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Channels served at once, per service (`chain/1`, `txrelay/1`).
pub const MAX_SERVING: usize = 64;

/// Transaction fetches running at once; an announcement arriving while all are busy is
/// dropped (its transactions come again from the next peer announcing them).
pub const MAX_FETCHES: usize = 16;

/// Announcements (tips or transactions) being sent at once.
pub const MAX_ANNOUNCES: usize = 32;

/// New transactions waiting for the next announcement round; beyond it they are not
/// announced (peers get them from the block).
pub const MAX_PENDING_ANNOUNCE: usize = 10_000;

/// When a transaction submitted on this node is first announced again (see
/// `Reannounce`).
pub const REANNOUNCE_FIRST: Duration = Duration::from_secs(2);

/// The longest wait between two announcements of a transaction submitted here.
pub const REANNOUNCE_MAX: Duration = Duration::from_secs(300);

/// Transaction ids refused lately, not fetched again when announced.
pub const MAX_RECENTLY_REFUSED: usize = 10_000;

/// How long a peer is banned for serving data that fails verification (lies about the
/// chain, forged signatures).
pub const LIE_BAN: Duration = Duration::from_secs(24 * 3600);

/// How long a peer is banned for breaking the protocol (malformed or unasked answers).
pub const VIOLATION_BAN: Duration = Duration::from_secs(3600);

/// How long a peer is banned for stalling sync [`SyncConfig::stall_limit`] times.
pub const STALL_BAN: Duration = Duration::from_secs(600);

/// A peer's node id.
type PeerId = [u8; 33];

/// Where a transaction offered to the pool comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// Submitted on this node: refused if an input is unknown.
    Local,
    /// Relayed by a peer: kept as an orphan if an input is unknown, the peer penalised
    /// if it breaks a rule that proves it lied.
    Peer(PeerId),
    /// An orphan whose inputs a block just created: orphaned again if an input is
    /// still unknown.
    Orphan,
}

impl Source {
    fn peer(self) -> Option<PeerId> {
        match self {
            Self::Peer(peer) => Some(peer),
            Self::Local | Self::Orphan => None,
        }
    }
}

/// The service's settings.
#[derive(Debug, Clone, Default)]
pub struct ServiceConfig {
    /// The sync planner's limits.
    pub sync: SyncConfig,
    /// The transaction pool's limits.
    pub mempool: MempoolConfig,
    /// Publisher mode: the key that signs blocks (it must be the chain's publisher).
    pub publisher: Option<Keypair>,
    /// How often a publisher makes a block (if it has transactions). Zero means
    /// [`DEFAULT_BLOCK_INTERVAL`].
    pub block_interval: Duration,
}

/// Default [`ServiceConfig::block_interval`]: Skycoin's ten seconds.
pub const DEFAULT_BLOCK_INTERVAL: Duration = Duration::from_secs(10);

/// What starting the service or submitting a transaction fails at.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The service host failed.
    #[error(transparent)]
    Host(#[from] HostError),
    /// The bus failed.
    #[error(transparent)]
    Bus(#[from] skywire_bus::BusError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The chain refused a block (at start: the configured genesis).
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The configured publisher key is not the chain's publisher.
    #[error("the configured block publisher key is not this chain's publisher")]
    NotPublisher,
    /// The chain has no genesis block yet.
    #[error("the chain has no blocks")]
    NoChain,
    /// The transaction breaks a rule.
    #[error("transaction refused: {0}")]
    Rejected(#[from] TxRejection),
    /// The pool refused the transaction (a duplicate, a conflict, full).
    #[error("transaction pool: {0}")]
    Mempool(#[from] MempoolError),
    /// An input is neither unspent nor known: spent already, or never created.
    #[error("input {index} ({uxid}) is not an unspent output")]
    UnknownInput {
        /// Its position.
        index: usize,
        /// The output id.
        uxid: Hash,
    },
    /// The transaction is in a block already.
    #[error("transaction {0} is confirmed already")]
    Confirmed(Hash),
    /// The next block could not be made.
    #[error(transparent)]
    Block(#[from] BlockError),
}

/// A request to a peer failed.
#[derive(Debug, thiserror::Error)]
enum RequestError {
    #[error(transparent)]
    Ask(#[from] AskError),
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
}

/// How hard a peer is punished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Penalty {
    /// It served data that fails verification: [`LIE_BAN`].
    Lied,
    /// It broke the protocol: [`VIOLATION_BAN`].
    Violation,
    /// It stalled sync again and again: [`STALL_BAN`].
    Stalled,
}

impl Penalty {
    /// How long the ban lasts.
    pub fn duration(self) -> Duration {
        match self {
            Self::Lied => LIE_BAN,
            Self::Violation => VIOLATION_BAN,
            Self::Stalled => STALL_BAN,
        }
    }
}

/// Where the service stands, for `skywire chain status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// The head, if the chain has a block.
    pub head: Option<Tip>,
    /// The head block's time (seconds since the Unix epoch).
    pub head_time: Option<u64>,
    /// Sync's progress.
    pub sync: SyncStatus,
    /// Transactions in the pool.
    pub mempool_transactions: usize,
    /// Orphans held.
    pub orphans: usize,
    /// Peers serving `chain/1` connected.
    pub peers: usize,
    /// Whether this node publishes blocks.
    pub publisher: bool,
}

/// The transactions submitted on this node and when each is announced again: after
/// [`REANNOUNCE_FIRST`], then twice as long each time up to [`REANNOUNCE_MAX`], while
/// it is in the pool. A peer that could not fetch one (its channel refused, a timeout)
/// is offered it again; nothing else would, since only this node had it.
#[derive(Default)]
struct Reannounce {
    due: HashMap<Hash, (Instant, Duration)>,
}

impl Reannounce {
    /// Tracks `txid` (bounded by the pool: entries leave with their transactions).
    fn add(&mut self, txid: Hash, now: Instant) {
        self.due
            .insert(txid, (now + REANNOUNCE_FIRST, REANNOUNCE_FIRST));
    }

    /// The ids due at `now` that `in_pool` still holds (others are forgotten); each
    /// is rescheduled.
    fn due(&mut self, now: Instant, in_pool: impl Fn(&Hash) -> bool) -> Vec<Hash> {
        self.due.retain(|txid, _| in_pool(txid));
        let mut due = Vec::new();
        for (txid, (at, wait)) in &mut self.due {
            if *at <= now {
                *wait = (*wait * 2).min(REANNOUNCE_MAX);
                *at = now + *wait;
                due.push(*txid);
            }
        }
        due
    }
}

/// Ids refused lately (bounded, oldest forgotten first).
#[derive(Default)]
struct Recent {
    set: HashSet<Hash>,
    order: VecDeque<Hash>,
}

impl Recent {
    fn insert(&mut self, txid: Hash) {
        if self.set.insert(txid) {
            self.order.push_back(txid);
            if self.order.len() > MAX_RECENTLY_REFUSED
                && let Some(old) = self.order.pop_front()
            {
                self.set.remove(&old);
            }
        }
    }
}

/// The running chain service. Cheap to clone.
#[derive(Clone)]
pub struct ChainService {
    inner: Arc<Inner>,
}

struct Inner {
    host: ServiceHost,
    chain: Chain,
    publisher: Option<Keypair>,
    block_interval: Duration,
    planner: Mutex<SyncPlanner<PeerId>>,
    mempool: Mutex<Mempool>,
    /// Connected peers serving `chain/1`.
    peers: Mutex<BTreeSet<PeerId>>,
    /// Transaction ids to announce, with the peer each came from.
    pending: Mutex<Vec<(Hash, Option<PeerId>)>>,
    /// Transactions submitted here, announced again until they leave the pool.
    local: Mutex<Reannounce>,
    refused: Mutex<Recent>,
    /// Held while the head may change or while a transaction is checked against it:
    /// applying, publishing, admitting to the pool.
    writer: tokio::sync::Mutex<()>,
    tip: watch::Sender<Option<Tip>>,
    wake: Notify,
    serving: Arc<Semaphore>,
    fetches: Arc<Semaphore>,
    announces: Arc<Semaphore>,
    started: Instant,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

fn tip_of(head: &Head) -> Tip {
    Tip {
        seq: head.seq(),
        hash: head.hash(),
    }
}

impl ChainService {
    /// Starts the chain of `spec` on `host` and `chain` (whose store is migrated): applies
    /// the genesis block if the store is empty, serves `chain/1` and `txrelay/1`, follows
    /// peers, syncs, relays, and publishes if `config.publisher` is set.
    ///
    /// # Errors
    ///
    /// [`ServiceError::NotPublisher`] for a publisher key that is not the chain's; the
    /// genesis refused; the store, the host or the bus failing.
    pub async fn start(
        host: ServiceHost,
        chain: Chain,
        spec: &ChainSpec,
        config: ServiceConfig,
    ) -> Result<Self, ServiceError> {
        if config
            .publisher
            .as_ref()
            .is_some_and(|key| key.public_key() != spec.publisher)
        {
            return Err(ServiceError::NotPublisher);
        }
        let head = match chain.head().await? {
            Some(head) => head,
            None => {
                chain.apply(&spec.genesis()).await?;
                chain.head().await?.ok_or(ServiceError::NoChain)?
            }
        };
        let chain_incoming = host.serve(CHAIN_SERVICE).await?;
        let relay_incoming = host.serve(RELAY_SERVICE).await?;
        let events = host.bus().subscribe(subjects::PEER_EVENTS).await?;
        let planner =
            SyncPlanner::new(config.sync, spec.publisher, Some((head.seq(), head.hash())));
        let block_interval = if config.block_interval.is_zero() {
            DEFAULT_BLOCK_INTERVAL
        } else {
            config.block_interval
        };
        let (tip, _) = watch::channel(Some(tip_of(&head)));
        let service = Self {
            inner: Arc::new(Inner {
                host,
                chain,
                publisher: config.publisher,
                block_interval,
                planner: Mutex::new(planner),
                mempool: Mutex::new(Mempool::new(config.mempool)),
                peers: Mutex::new(BTreeSet::new()),
                pending: Mutex::new(Vec::new()),
                local: Mutex::new(Reannounce::default()),
                refused: Mutex::new(Recent::default()),
                writer: tokio::sync::Mutex::new(()),
                tip,
                wake: Notify::new(),
                serving: Arc::new(Semaphore::new(MAX_SERVING)),
                fetches: Arc::new(Semaphore::new(MAX_FETCHES)),
                announces: Arc::new(Semaphore::new(MAX_ANNOUNCES)),
                started: Instant::now(),
                shutdown: CancellationToken::new(),
                tasks: TaskTracker::new(),
            }),
        };
        tracing::info!(
            seq = head.seq(),
            hash = %head.hash(),
            publisher = service.inner.publisher.is_some(),
            "chain service started"
        );
        service.spawn_accept(chain_incoming, Self::serve_chain);
        service.spawn_accept(relay_incoming, Self::serve_relay);
        service.spawn_events(events);
        service.spawn_loop(Self::sync_loop);
        service.spawn_loop(Self::announce_tips);
        service.spawn_loop(Self::announce_transactions);
        service.spawn_loop(Self::refresh_tips);
        if service.inner.publisher.is_some() {
            service.spawn_loop(Self::publish_loop);
        }
        Ok(service)
    }

    /// The chain (its store, rules and genesis).
    pub fn chain(&self) -> &Chain {
        &self.inner.chain
    }

    /// Where the service stands.
    ///
    /// # Errors
    ///
    /// The store's.
    pub async fn status(&self) -> Result<Status, StoreError> {
        let head = self.inner.chain.head().await?;
        let (mempool_transactions, orphans) = {
            let pool = lock(&self.inner.mempool);
            (pool.len(), pool.orphan_len())
        };
        Ok(Status {
            head: head.as_ref().map(tip_of),
            head_time: head.map(|h| h.header.time),
            sync: lock(&self.inner.planner).status(),
            mempool_transactions,
            orphans,
            peers: lock(&self.inner.peers).len(),
            publisher: self.inner.publisher.is_some(),
        })
    }

    /// For each of `uxids`, the pool transaction spending it, if any.
    pub fn pool_spenders(&self, uxids: impl IntoIterator<Item = Hash>) -> Vec<Option<Hash>> {
        let pool = lock(&self.inner.mempool);
        uxids.into_iter().map(|uxid| pool.spender(&uxid)).collect()
    }

    /// The transaction `txid` if the pool holds it.
    pub fn pooled(&self, txid: &Hash) -> Option<Transaction> {
        lock(&self.inner.mempool).get(txid).cloned()
    }

    /// Checks a signed transaction against the head and, if valid, adds it to the pool
    /// and announces it to peers. Returns its id.
    ///
    /// # Errors
    ///
    /// Why it was refused: a rule ([`ServiceError::Rejected`]), an input not unspent
    /// ([`ServiceError::UnknownInput`], [`ServiceError::Confirmed`]), the pool
    /// ([`ServiceError::Mempool`]); or the store failing.
    /// A failure of ours (not a refusal of the transaction) is logged here, once for
    /// every API.
    pub async fn submit(&self, tx: Transaction) -> Result<Hash, ServiceError> {
        let _writer = self.inner.writer.lock().await;
        let txid = match self.admit(tx, Source::Local).await {
            Ok(txid) => txid,
            Err(error) => {
                if matches!(error.failure(), Failure::Unavailable | Failure::Internal) {
                    tracing::warn!(%error, "submission failed");
                }
                return Err(error);
            }
        };
        lock(&self.inner.local).add(txid, Instant::now());
        Ok(txid)
    }

    /// Runs `task` as one of the service's: cancelled and awaited by
    /// [`ChainService::shutdown`].
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let stop = self.inner.shutdown.clone();
        self.inner.tasks.spawn(async move {
            tokio::select! {
                () = task => {}
                () = stop.cancelled() => {}
            }
        });
    }

    fn spawn_loop<F, Fut>(&self, body: F)
    where
        F: FnOnce(Self) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.spawn(body(self.clone()));
    }

    /// Milliseconds since the service started: the planner's clock.
    fn mono_ms(&self) -> u64 {
        u64::try_from(self.inner.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    // ---- Peers. ----

    /// Follows connections: peers advertising `chain/1` are tracked and asked for their
    /// tip; departed ones forgotten.
    fn spawn_events(&self, mut events: skywire_bus::Subscription) {
        let service = self.clone();
        self.spawn(async move {
            while let Some(message) = events.next().await {
                let Ok(event) = bus_pb::PeerEvent::decode(message.payload) else {
                    continue;
                };
                let Some(peer) = event.peer else { continue };
                let Ok(node_id) = PeerId::try_from(peer.node_id.as_ref()) else {
                    continue;
                };
                if !event.up {
                    service.forget(&node_id);
                } else if !peer.transient && peer.services.iter().any(|s| s == CHAIN_SERVICE) {
                    service.track(node_id);
                }
            }
        });
    }

    /// Tracks `peer` (if new, asks its tip).
    fn track(&self, peer: PeerId) {
        if !lock(&self.inner.peers).insert(peer) {
            return;
        }
        if let Err(e) = lock(&self.inner.planner).add_peer(peer) {
            tracing::debug!(peer = %hex::encode(peer), error = %e, "not syncing from peer");
        }
        let service = self.clone();
        self.spawn(async move { service.ask_tip(peer).await });
    }

    fn forget(&self, peer: &PeerId) {
        lock(&self.inner.peers).remove(peer);
        lock(&self.inner.planner).remove_peer(*peer);
    }

    /// Bans `peer` through the pool (which stores the ban and tells every gateway); if no
    /// pool answers, tells the gateways directly.
    async fn penalise(&self, peer: PeerId, penalty: Penalty, why: &str) {
        tracing::info!(peer = %hex::encode(peer), ?penalty, %why, "penalising peer");
        self.forget(&peer);
        let ban = bus_pb::Ban {
            node_id: Bytes::copy_from_slice(&peer),
            duration_ms: u64::try_from(penalty.duration().as_millis()).unwrap_or(u64::MAX),
            reason: why.chars().take(MAX_BAN_REASON).collect(),
        };
        let asked = self
            .inner
            .host
            .bus()
            .request(
                subjects::POOL_BAN,
                Bytes::from(ban.encode_to_vec()),
                REQUEST_TIMEOUT,
            )
            .await;
        if let Err(e) = asked {
            tracing::debug!(error = %e, "no pool took the ban; telling the gateways");
            let command = bus_pb::gateway_command::Command::Ban(ban);
            if let Err(e) = self.inner.host.broadcast(command).await {
                tracing::warn!(error = %e, "cannot ban peer");
            }
        }
    }

    /// Penalises `peer` for a failed request if the failure proves it misbehaved;
    /// otherwise stops syncing from it (until it announces a tip again).
    async fn failed(&self, peer: PeerId, error: RequestError) {
        match error {
            RequestError::Protocol(e) if e.is_violation() => {
                self.penalise(peer, Penalty::Violation, &format!("chain/1: {e}"))
                    .await;
            }
            RequestError::Ask(AskError::Timeout(_)) => {} // The planner counts it as a stall.
            other => {
                tracing::debug!(peer = %hex::encode(peer), error = %other, "chain/1 request failed");
                lock(&self.inner.planner).remove_peer(peer);
            }
        }
    }

    // ---- Asking. ----

    async fn ask_chain(
        &self,
        peer: &PeerId,
        request: &ChainRequest,
    ) -> Result<ChainResponse, RequestError> {
        let timeout = Duration::from_millis(self.inner.planner_timeout_ms());
        let answer = self
            .inner
            .host
            .ask(
                peer,
                CHAIN_SERVICE,
                CHAIN_PRIORITY,
                request.encode()?,
                timeout,
            )
            .await?;
        Ok(protocol::decode_chain_response(&answer, request)?)
    }

    async fn ask_relay(
        &self,
        peer: &PeerId,
        request: &RelayRequest,
    ) -> Result<RelayResponse, RequestError> {
        let answer = self
            .inner
            .host
            .ask(
                peer,
                RELAY_SERVICE,
                RELAY_PRIORITY,
                request.encode()?,
                REQUEST_TIMEOUT,
            )
            .await?;
        Ok(protocol::decode_relay_response(&answer, request)?)
    }

    /// Asks `peer` for its tip and tells the planner.
    async fn ask_tip(&self, peer: PeerId) {
        match self.ask_chain(&peer, &ChainRequest::GetTip).await {
            Ok(ChainResponse::Tip(Some(tip))) => self.on_tip(peer, tip),
            Ok(_) => {}
            Err(e) => self.failed(peer, e).await,
        }
    }

    fn on_tip(&self, peer: PeerId, tip: Tip) {
        {
            let mut planner = lock(&self.inner.planner);
            // Re-tracks a peer dropped after a failed request: its announcement says it
            // is back. (Stalled peers were banned and are gone.)
            let _ = planner.add_peer(peer);
            planner.on_tip(peer, tip.seq, tip.hash);
        }
        self.inner.wake.notify_one();
    }

    // ---- Sync. ----

    async fn sync_loop(self) {
        let mut tick = tokio::time::interval(SYNC_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = self.inner.wake.notified() => {}
            }
            self.sync_step().await;
        }
    }

    /// One round: penalise stalled peers, send the requests due, apply what is ready.
    async fn sync_step(&self) {
        let now = self.mono_ms();
        let (stalled, headers, blocks) = {
            let mut planner = lock(&self.inner.planner);
            let stalled = planner.poll(now);
            (
                stalled,
                planner.next_header_request(now),
                planner.next_block_requests(now),
            )
        };
        for peer in stalled {
            self.penalise(peer, Penalty::Stalled, "chain/1: stalled sync")
                .await;
        }
        if let Some((peer, from_seq, count)) = headers {
            let service = self.clone();
            self.spawn(async move {
                service
                    .fetch(peer, ChainRequest::GetHeaders { from_seq, count })
                    .await;
            });
        }
        for (peer, from_seq, count) in blocks {
            let service = self.clone();
            self.spawn(async move {
                service
                    .fetch(peer, ChainRequest::GetBlocks { from_seq, count })
                    .await;
            });
        }
        self.apply_ready().await;
    }

    /// Sends one sync request and hands the answer to the planner.
    async fn fetch(&self, peer: PeerId, request: ChainRequest) {
        let answer = match self.ask_chain(&peer, &request).await {
            Ok(answer) => answer,
            Err(e) => return self.failed(peer, e).await,
        };
        let now = self.mono_ms();
        let taken = {
            let mut planner = lock(&self.inner.planner);
            match (request, answer) {
                (ChainRequest::GetHeaders { .. }, ChainResponse::Headers(headers)) => {
                    planner.on_headers(peer, headers, now).map(drop)
                }
                (ChainRequest::GetBlocks { from_seq, .. }, ChainResponse::Blocks(blocks)) => {
                    planner.on_blocks(peer, from_seq, blocks, now)
                }
                // The decoder checked the kind against the request.
                _ => Ok(()),
            }
        };
        match taken {
            Ok(()) => {}
            Err(Misbehaviour::Equivocation { seq, ours, theirs }) => {
                tracing::error!(seq, %ours, %theirs, "the block publisher signed two blocks for one height");
            }
            Err(Misbehaviour::Unsolicited { .. }) => {
                // Most likely an answer that came after its request timed out.
                tracing::debug!(peer = %hex::encode(peer), "late chain/1 answer dropped");
            }
            Err(e) => {
                self.penalise(peer, Penalty::Lied, &format!("chain/1: {e}"))
                    .await
            }
        }
        self.inner.wake.notify_one();
    }

    /// Applies the blocks the planner hands out, in order, in runs of up to
    /// [`APPLY_RUN`] ([`Chain::apply_many`]).
    async fn apply_ready(&self) {
        let _writer = self.inner.writer.lock().await;
        loop {
            let mut blocks = lock(&self.inner.planner).ready();
            if blocks.is_empty() {
                return;
            }
            while !blocks.is_empty() {
                let rest = blocks.split_off(blocks.len().min(APPLY_RUN));
                let batch = std::mem::replace(&mut blocks, rest);
                let (applied, refused) = match self.inner.chain.apply_many(&batch).await {
                    Ok(applied) => (applied, None),
                    Err(BatchError { applied, error }) => (applied, Some(error)),
                };
                for (block, verified) in batch.iter().zip(&applied) {
                    self.applied(block, &verified.created).await;
                }
                let Some(error) = refused else {
                    continue;
                };
                let mut unapplied: Vec<SignedBlock> =
                    batch.into_iter().skip(applied.len()).collect();
                let seq = unapplied
                    .first()
                    .map_or(0, |block| block.block.header.bk_seq);
                if error.proves_sender_misbehaved() {
                    let fault = lock(&self.inner.planner).on_apply_failed(seq);
                    tracing::error!(?fault, %error, "the block publisher signed an invalid block; sync stopped");
                } else {
                    // Not the block's fault (the store failed, or the head moved): give
                    // back what was not applied and try again next round.
                    tracing::warn!(seq, %error, "block not applied");
                    unapplied.append(&mut blocks);
                    lock(&self.inner.planner).give_back(unapplied);
                }
                return;
            }
        }
    }

    /// After `block` is applied (with the writer held): the planner, the pool, the tip.
    async fn applied(&self, block: &SignedBlock, created: &[UxOut]) {
        let header = &block.block.header;
        let hash = header.hash();
        lock(&self.inner.planner).on_applied(header.bk_seq, hash);
        let txids: Vec<Hash> = block
            .block
            .body
            .transactions
            .iter()
            .map(Transaction::hash)
            .collect();
        let spent: Vec<Hash> = block
            .block
            .body
            .transactions
            .iter()
            .flat_map(|tx| tx.inputs.iter().copied())
            .collect();
        let created: Vec<Hash> = created.iter().map(UxOut::hash).collect();
        let released = {
            let mut pool = lock(&self.inner.mempool);
            pool.remove_confirmed(&txids, &spent);
            pool.expire(now_ms());
            pool.take_ready(&created)
        };
        for tx in released {
            let txid = tx.hash();
            if let Err(e) = self.admit(tx, Source::Orphan).await {
                tracing::debug!(%txid, error = %e, "orphan refused");
            }
        }
        self.inner.tip.send_replace(Some(Tip {
            seq: header.bk_seq,
            hash,
        }));
    }

    // ---- Tips. ----

    /// Announces each new head to every tracked peer, at most once per
    /// [`ANNOUNCE_INTERVAL`].
    async fn announce_tips(self) {
        let mut tips = self.inner.tip.subscribe();
        while tips.changed().await.is_ok() {
            let Some(tip) = *tips.borrow_and_update() else {
                continue;
            };
            let peers: Vec<PeerId> = lock(&self.inner.peers).iter().copied().collect();
            for peer in peers {
                let Ok(permit) = self.inner.announces.clone().try_acquire_owned() else {
                    break;
                };
                let service = self.clone();
                self.spawn(async move {
                    if let Err(e) = service
                        .ask_chain(&peer, &ChainRequest::AnnounceTip(tip))
                        .await
                    {
                        service.failed(peer, e).await;
                    }
                    drop(permit);
                });
            }
            tokio::time::sleep(ANNOUNCE_INTERVAL).await;
        }
    }

    /// Every [`TIP_REFRESH`], asks every tracked peer for its tip.
    async fn refresh_tips(self) {
        let mut tick = tokio::time::interval(TIP_REFRESH);
        tick.tick().await;
        loop {
            tick.tick().await;
            let peers: Vec<PeerId> = lock(&self.inner.peers).iter().copied().collect();
            for peer in peers {
                let Ok(permit) = self.inner.announces.clone().acquire_owned().await else {
                    return;
                };
                let service = self.clone();
                self.spawn(async move {
                    service.ask_tip(peer).await;
                    drop(permit);
                });
            }
        }
    }

    // ---- Relay. ----

    /// Checks `tx` against the head (the writer held) and adds it to the pool, to be
    /// announced to every peer but the one it came from. See [`Source`] for what an
    /// unknown input means.
    async fn admit(&self, tx: Transaction, source: Source) -> Result<Hash, ServiceError> {
        let from = source.peer();
        let txid = tx.hash();
        let head = self
            .inner
            .chain
            .head()
            .await?
            .ok_or(ServiceError::NoChain)?;
        let unspent = self.inner.chain.store().unspent(&tx.inputs).await?;
        let missing: Vec<Hash> = tx
            .inputs
            .iter()
            .filter(|id| !unspent.contains_key(*id))
            .copied()
            .collect();
        if let Some(first) = missing.first() {
            if self.inner.chain.store().transaction(&txid).await?.is_some() {
                // Announced again by peers that have not seen the block yet: not fetched
                // again.
                lock(&self.inner.refused).insert(txid);
                return Err(ServiceError::Confirmed(txid));
            }
            if source != Source::Local {
                // Orphans evicted to make room were never announced: nothing to undo.
                let _evicted = lock(&self.inner.mempool).insert_orphan(tx, missing, now_ms())?;
                return Ok(txid);
            }
            let index = tx.inputs.iter().position(|id| id == first).unwrap_or(0);
            return Err(ServiceError::UnknownInput {
                index,
                uxid: *first,
            });
        }
        let verified =
            match verify_transaction(self.inner.chain.params(), &head.header, &unspent, &tx) {
                Ok(verified) => verified,
                Err(rejection) => {
                    lock(&self.inner.refused).insert(txid);
                    if let Some(peer) = from
                        && rejection.proves_sender_misbehaved()
                    {
                        self.penalise(peer, Penalty::Lied, &format!("txrelay/1: {rejection}"))
                            .await;
                    }
                    return Err(rejection.into());
                }
            };
        // Evicted transactions may still be announced from the pending list; a peer
        // asking for one gets an answer without it.
        let _evicted = lock(&self.inner.mempool).insert(tx, verified, now_ms())?;
        let mut pending = lock(&self.inner.pending);
        if pending.len() < MAX_PENDING_ANNOUNCE {
            pending.push((txid, from));
        }
        Ok(txid)
    }

    /// Fetches the transactions `peer` announced that the pool lacks, and admits them.
    async fn fetch_transactions(&self, peer: PeerId, ids: Vec<Hash>) {
        let wanted: Vec<Hash> = {
            let pool = lock(&self.inner.mempool);
            let refused = lock(&self.inner.refused);
            pool.missing(&ids)
                .into_iter()
                .filter(|id| !refused.set.contains(id) && !pool.contains_orphan(id))
                .collect()
        };
        for chunk in wanted.chunks(MAX_GET_TRANSACTIONS) {
            let request = RelayRequest::GetTransactions(chunk.to_vec());
            let txs = match self.ask_relay(&peer, &request).await {
                Ok(RelayResponse::Transactions(txs)) => txs,
                Ok(RelayResponse::Ack) => return,
                Err(RequestError::Protocol(e)) if e.is_violation() => {
                    return self
                        .penalise(peer, Penalty::Violation, &format!("txrelay/1: {e}"))
                        .await;
                }
                Err(e) => {
                    tracing::debug!(peer = %hex::encode(peer), error = %e, "transaction fetch failed");
                    return;
                }
            };
            let _writer = self.inner.writer.lock().await;
            for tx in txs {
                let txid = tx.hash();
                if let Err(e) = self.admit(tx, Source::Peer(peer)).await {
                    tracing::debug!(%txid, error = %e, "relayed transaction refused");
                }
            }
        }
    }

    /// Every [`RELAY_INTERVAL`], announces the new transactions (and the local ones due
    /// again) to every peer but the one
    /// each came from.
    async fn announce_transactions(self) {
        let mut tick = tokio::time::interval(RELAY_INTERVAL);
        loop {
            tick.tick().await;
            let mut pending = std::mem::take(&mut *lock(&self.inner.pending));
            let again = {
                let pool = lock(&self.inner.mempool);
                lock(&self.inner.local).due(Instant::now(), |txid| pool.contains(txid))
            };
            pending.extend(again.into_iter().map(|txid| (txid, None)));
            if pending.is_empty() {
                continue;
            }
            let peers: Vec<PeerId> = lock(&self.inner.peers).iter().copied().collect();
            for peer in peers {
                let ids: Vec<Hash> = pending
                    .iter()
                    .filter(|(_, from)| *from != Some(peer))
                    .map(|(id, _)| *id)
                    .collect();
                for chunk in ids.chunks(MAX_ANNOUNCE) {
                    let Ok(permit) = self.inner.announces.clone().acquire_owned().await else {
                        return;
                    };
                    let request = RelayRequest::Announce(chunk.to_vec());
                    let service = self.clone();
                    self.spawn(async move {
                        if let Err(e) = service.ask_relay(&peer, &request).await {
                            tracing::debug!(peer = %hex::encode(peer), error = %e, "announcement failed");
                        }
                        drop(permit);
                    });
                }
            }
        }
    }

    // ---- Publishing. ----

    async fn publish_loop(self) {
        let mut tick = tokio::time::interval(self.inner.block_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            match self.publish().await {
                Ok(Some(seq)) => tracing::debug!(seq, "block published"),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cannot publish a block"),
            }
        }
    }

    /// Makes, signs and applies the next block from the pool's best transactions, if it
    /// holds any. Returns the new block's sequence number.
    ///
    /// # Errors
    ///
    /// The store failing, or the block refused (a bug: each transaction is checked first).
    pub async fn publish(&self) -> Result<Option<u64>, ServiceError> {
        let Some(key) = &self.inner.publisher else {
            return Err(ServiceError::NotPublisher);
        };
        let _writer = self.inner.writer.lock().await;
        let head = self
            .inner
            .chain
            .head()
            .await?
            .ok_or(ServiceError::NoChain)?;
        let params = self.inner.chain.params();
        let candidates = lock(&self.inner.mempool).select(params.max_block_size);
        if candidates.is_empty() {
            return Ok(None);
        }
        let inputs: Vec<Hash> = candidates
            .iter()
            .flat_map(|tx| tx.inputs.iter().copied())
            .collect();
        let unspent = self.inner.chain.store().unspent(&inputs).await?;
        let mut fee = 0u64;
        let mut txs = Vec::with_capacity(candidates.len());
        let mut stale = Vec::new();
        for tx in candidates {
            match verify_transaction(params, &head.header, &unspent, &tx) {
                Ok(verified) => match fee.checked_add(verified.fee) {
                    Some(total) => {
                        fee = total;
                        txs.push(tx);
                    }
                    None => break,
                },
                Err(_) => stale.push(tx.hash()),
            }
        }
        if !stale.is_empty() {
            let mut pool = lock(&self.inner.mempool);
            pool.remove_confirmed(&stale, &[]);
        }
        if txs.is_empty() {
            return Ok(None);
        }
        let time = (now_ms() / 1000).max(head.header.time + 1);
        let block = Block::next(
            &head.header,
            head.ux_hash.hash(),
            time,
            fee,
            BlockBody { transactions: txs },
        )?
        .sign_block(key);
        let verified = self.inner.chain.apply(&block).await?;
        let seq = block.block.header.bk_seq;
        self.applied(&block, &verified.created).await;
        Ok(Some(seq))
    }

    // ---- Serving. ----

    fn spawn_accept(
        &self,
        mut incoming: skywire_service::Incoming,
        serve: impl Fn(Self, ServiceChannel) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>
        + Send
        + 'static,
    ) {
        let service = self.clone();
        self.spawn(async move {
            while let Some(mut channel) = incoming.next().await {
                let Ok(permit) = service.inner.serving.clone().try_acquire_owned() else {
                    channel
                        .reset(Reason::RateLimited, "too many requests at once")
                        .await;
                    continue;
                };
                let task = serve(service.clone(), channel);
                service.spawn(async move {
                    task.await;
                    drop(permit);
                });
            }
        });
    }

    /// The one request of a channel, or `None` if none came in time.
    async fn request(channel: &mut ServiceChannel) -> Option<Bytes> {
        match tokio::time::timeout(REQUEST_TIMEOUT, channel.recv()).await {
            Ok(Ok(Some(message))) => Some(message),
            Ok(Ok(None) | Err(_)) => None,
            Err(_) => {
                channel.reset(Reason::Timeout, "no request").await;
                None
            }
        }
    }

    async fn reply(channel: &mut ServiceChannel, answer: Bytes) {
        if channel.send(answer).await.is_ok() {
            let _ = channel.finish().await;
        }
    }

    fn serve_chain(
        self,
        mut channel: ServiceChannel,
    ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            let Some(message) = Self::request(&mut channel).await else {
                return;
            };
            let peer = channel.peer().node_id;
            let answer = match protocol::decode_chain_request(&message) {
                Ok(request) => self.answer_chain(peer, request).await,
                Err(e) => Err((Code::BadRequest, e.to_string())),
            };
            let answer = answer.and_then(|response| {
                response
                    .encode()
                    .map_err(|e| (Code::Unavailable, e.to_string()))
            });
            let bytes = match answer {
                Ok(bytes) => bytes,
                Err((code, why)) => protocol::encode_chain_error(code, &why),
            };
            Self::reply(&mut channel, bytes).await;
        })
    }

    async fn answer_chain(
        &self,
        peer: PeerId,
        request: ChainRequest,
    ) -> Result<ChainResponse, (Code, String)> {
        let store = self.inner.chain.store();
        let internal = |e: StoreError| {
            tracing::warn!(error = %e, "chain store failed");
            (Code::Unavailable, "store failure".to_owned())
        };
        match request {
            ChainRequest::GetTip => {
                let head = store.head().await.map_err(internal)?;
                Ok(ChainResponse::Tip(head.as_ref().map(tip_of)))
            }
            ChainRequest::GetHeaders { from_seq, count } => Ok(ChainResponse::Headers(
                store.headers(from_seq, count).await.map_err(internal)?,
            )),
            ChainRequest::GetBlocks { from_seq, count } => Ok(ChainResponse::Blocks(
                store.blocks(from_seq, count).await.map_err(internal)?,
            )),
            ChainRequest::AnnounceTip(tip) => {
                if lock(&self.inner.peers).contains(&peer) {
                    self.on_tip(peer, tip);
                } else {
                    self.track(peer);
                }
                Ok(ChainResponse::Ack)
            }
        }
    }

    fn serve_relay(
        self,
        mut channel: ServiceChannel,
    ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            let Some(message) = Self::request(&mut channel).await else {
                return;
            };
            let peer = channel.peer().node_id;
            let answer = match protocol::decode_relay_request(&message) {
                Ok(RelayRequest::Announce(ids)) => {
                    if let Ok(permit) = self.inner.fetches.clone().try_acquire_owned() {
                        let service = self.clone();
                        self.spawn(async move {
                            service.fetch_transactions(peer, ids).await;
                            drop(permit);
                        });
                    }
                    RelayResponse::Ack.encode()
                }
                Ok(RelayRequest::GetTransactions(ids)) => {
                    let txs: Vec<Transaction> = {
                        let pool = lock(&self.inner.mempool);
                        ids.iter().filter_map(|id| pool.get(id).cloned()).collect()
                    };
                    RelayResponse::Transactions(txs).encode()
                }
                Err(e) => Err(e),
            };
            let bytes = answer
                .unwrap_or_else(|e| protocol::encode_relay_error(Code::BadRequest, &e.to_string()));
            Self::reply(&mut channel, bytes).await;
        })
    }

    /// Stops: ends every task, leaves the bus.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
        self.inner.host.shutdown().await;
    }
}

impl Inner {
    fn planner_timeout_ms(&self) -> u64 {
        lock(&self.planner).config().request_timeout_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_transactions_are_announced_again_less_and_less_often_while_pooled() {
        let mut local = Reannounce::default();
        let start = Instant::now();
        let (a, b) = (Hash([1; 32]), Hash([2; 32]));
        local.add(a, start);
        local.add(b, start);
        let pooled = |_: &Hash| true;
        assert!(local.due(start, pooled).is_empty());
        let mut due = local.due(start + REANNOUNCE_FIRST, pooled);
        due.sort_by_key(|h| h.0);
        assert_eq!(due, [a, b]);
        // Next after twice the wait, then capped.
        let second = start + REANNOUNCE_FIRST * 3;
        assert!(
            local
                .due(second - Duration::from_millis(1), pooled)
                .is_empty()
        );
        assert_eq!(
            local.due(second, |t| *t == a),
            [a],
            "b left the pool: forgotten"
        );
        assert_eq!(local.due.len(), 1);
        let mut at = second;
        for _ in 0..20 {
            at += REANNOUNCE_MAX;
            assert_eq!(local.due(at, pooled), [a]);
        }
        assert_eq!(local.due[&a].1, REANNOUNCE_MAX);
    }
}
