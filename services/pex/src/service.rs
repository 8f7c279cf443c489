//! The `pex/1` service: answers other nodes from the [`Book`], asks each
//! new peer (and now and then a few connected ones) for the peers it
//! knows, and feeds what they say into the pool's peer store.
//!
//! It runs beside the pool (same process: it writes the pool's store and
//! bans through it) on its own [`ServiceHost`], so it runs unchanged
//! embedded or in the pool's process of a cluster. Its own record comes
//! from the node's DHT over the bus ([`skywire_dht::api::own_record_on_bus`]):
//! only the DHT signs it, so sequence numbers never clash; without a DHT it
//! answers without one.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prost::Message as _;
use rand::seq::IndexedRandom as _;
use skywire_bus::{Bus, BusError, subjects};
use skywire_identity::PublicKey;
use skywire_kv::Kv;
use skywire_kv::limits::RateLimiter;
use skywire_kv::presence::Presence;
use skywire_pool::{BanReason, Pool, PoolError};
use skywire_proto::bus::v1 as bus_pb;
use skywire_proto::wire::v1::Reason;
use skywire_record::{NodeRecord, VerifyCache, now_ms};
use skywire_service::sync::lock;
use skywire_service::{AskError, HostError, LinkError, ServiceChannel, ServiceHost};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::book::Book;
use crate::protocol::{self, Code, MAX_RECORDS, PRIORITY, ProtocolError, SERVICE};

/// One request per peer per this long, each way: a node answers a second
/// request within it with `RATE_LIMITED`, and never asks a peer sooner.
pub const REQUEST_INTERVAL: Duration = Duration::from_secs(60);

/// How long one exchange may take: opening the channel, the answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Requests answered at once by one instance; channels beyond are reset
/// with `RATE_LIMITED`.
pub const MAX_SERVING: usize = 16;

/// Exchanges this node runs at once; a new peer met while all are busy is
/// asked at the next round instead.
pub const MAX_EXCHANGES: usize = 8;

/// How often connected peers are asked again (a few of them, at random),
/// and stale entries dropped.
pub const ROUND_INTERVAL: Duration = Duration::from_secs(300);

/// Connected peers asked per round.
pub const PEERS_PER_ROUND: usize = 3;

/// How long the node's own record, fetched from its DHT, is reused.
pub const OWN_RECORD_FOR: Duration = Duration::from_secs(60);

/// Peers remembered as asked (for [`REQUEST_INTERVAL`]) at most; beyond
/// it nobody new is asked until entries age out.
pub const MAX_ASKED: usize = 4096;

/// The prefix of the per-peer rate-limit keys in the shared cache.
const RATE_PREFIX: &str = "sw:rate:pex:";

/// What peer exchange fails at.
#[derive(Debug, thiserror::Error)]
pub enum PexError {
    /// The service host failed.
    #[error(transparent)]
    Host(#[from] HostError),
    /// A channel failed.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The bus failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The peer's answer was refused.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The pool (its store, a ban) failed.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// The peer was asked less than [`REQUEST_INTERVAL`] ago.
    #[error("asked less than a minute ago")]
    TooSoon,
    /// The exchange failed: no channel, no answer, none within
    /// [`REQUEST_TIMEOUT`].
    #[error(transparent)]
    Ask(#[from] AskError),
    /// Not a valid node id.
    #[error("invalid node id")]
    InvalidNode,
    /// Shutting down.
    #[error("shutting down")]
    ShuttingDown,
}

/// The running peer exchange. Cheap to clone.
#[derive(Clone)]
pub struct Pex {
    inner: Arc<Inner>,
}

struct Inner {
    host: ServiceHost,
    pool: Pool,
    limiter: RateLimiter,
    book: Mutex<Book>,
    /// When each peer was last asked.
    asked: Mutex<HashMap<[u8; 33], Instant>>,
    /// The node's own record and when it was fetched (`None`: no DHT
    /// answered then).
    own: Mutex<Option<(Option<Arc<NodeRecord>>, Instant)>>,
    verified: VerifyCache,
    serving: Arc<Semaphore>,
    exchanges: Arc<Semaphore>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl Pex {
    /// Starts peer exchange on `host`, feeding `pool`: serves `pex/1`,
    /// follows peer events, runs rounds.
    ///
    /// # Errors
    ///
    /// If the service cannot be served or the bus subscribed.
    pub async fn start(host: ServiceHost, kv: Kv, pool: Pool) -> Result<Self, PexError> {
        let incoming = host.serve(SERVICE).await?;
        let events = host.bus().subscribe(subjects::PEER_UP).await?;
        let pex = Self {
            inner: Arc::new(Inner {
                host,
                pool,
                limiter: RateLimiter::new(kv, 1, REQUEST_INTERVAL).with_prefix(RATE_PREFIX),
                book: Mutex::new(Book::default()),
                asked: Mutex::new(HashMap::new()),
                own: Mutex::new(None),
                verified: VerifyCache::default(),
                serving: Arc::new(Semaphore::new(MAX_SERVING)),
                exchanges: Arc::new(Semaphore::new(MAX_EXCHANGES)),
                shutdown: CancellationToken::new(),
                tasks: TaskTracker::new(),
            }),
        };
        pex.spawn_accept(incoming);
        pex.spawn_events(events);
        let rounds = pex.clone();
        pex.spawn(async move { rounds.rounds().await });
        Ok(pex)
    }

    /// Starts peer exchange as the service instance `instance` on `bus`
    /// (see [`Pex::start`]): how a node or the pool's process runs it.
    ///
    /// # Errors
    ///
    /// As [`Pex::start`].
    pub async fn launch(
        bus: Bus,
        presence: Presence,
        kv: Kv,
        pool: Pool,
        instance: &str,
    ) -> Result<Self, PexError> {
        let host = ServiceHost::start(bus, presence, instance).await?;
        Self::start(host, kv, pool).await
    }

    /// Runs `task` as one of the service's: cancelled and awaited by
    /// [`Pex::shutdown`].
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let stop = self.inner.shutdown.clone();
        self.inner.tasks.spawn(async move {
            tokio::select! {
                () = task => {}
                () = stop.cancelled() => {}
            }
        });
    }

    /// How many peers may be given out now, and how many records are
    /// hearsay.
    pub fn book_len(&self) -> (usize, usize) {
        let book = lock(&self.inner.book);
        (book.given_len(), book.heard_len())
    }

    /// Whether the record of `node` may be given out now.
    pub fn gives_out(&self, node: &PublicKey) -> bool {
        lock(&self.inner.book).is_given(node, now_ms())
    }

    /// The node's own record, from its DHT (cached for
    /// [`OWN_RECORD_FOR`]); `None` if no DHT answers.
    async fn own_record(&self) -> Option<Arc<NodeRecord>> {
        if let Some((record, at)) = lock(&self.inner.own).as_ref()
            && at.elapsed() < OWN_RECORD_FOR
        {
            return record.clone();
        }
        let record = match skywire_dht::api::own_record_on_bus(self.inner.host.bus()).await {
            Ok(record) => Some(Arc::new(record)),
            Err(e) => {
                tracing::debug!(error = %e, "no own record to give out");
                None
            }
        };
        *lock(&self.inner.own) = Some((record.clone(), Instant::now()));
        record
    }

    // ---- Asking. ----

    /// Asks the connected peer `node_id` which peers it knows, and feeds
    /// its answer into the book and the pool's store. Returns how many
    /// records the peer gave out. `outbound`: this node dialed the peer, so
    /// the peer's own record becomes first-hand.
    ///
    /// A peer breaking the protocol is banned for a day
    /// ([`BanReason::InvalidData`]).
    ///
    /// # Errors
    ///
    /// [`PexError::TooSoon`] within [`REQUEST_INTERVAL`] of the last
    /// request to this peer; otherwise why the exchange failed.
    pub async fn exchange(&self, node_id: &[u8; 33], outbound: bool) -> Result<usize, PexError> {
        if self.inner.shutdown.is_cancelled() {
            return Err(PexError::ShuttingDown);
        }
        let peer = PublicKey::from_bytes(node_id).map_err(|_| PexError::InvalidNode)?;
        self.mark_asked(node_id)?;
        if outbound {
            lock(&self.inner.book).connected(peer, now_ms());
        }
        let own = self.own_record().await;
        let request = protocol::encode_request(own.as_deref());
        let answer = self
            .inner
            .host
            .ask(node_id, SERVICE, PRIORITY, request, REQUEST_TIMEOUT)
            .await?;
        let now = now_ms();
        let peers = match protocol::decode_response(&answer, &peer, now, &self.inner.verified) {
            Ok(peers) => peers,
            Err(e) => {
                if e.is_violation() {
                    let why = format!("pex/1: {e}");
                    tracing::info!(peer = %hex::encode(node_id), %why, "banning peer");
                    self.inner
                        .pool
                        .ban(node_id, BanReason::InvalidData, &why)
                        .await?;
                }
                return Err(e.into());
            }
        };
        let local = own.as_ref().map(|r| r.node_id());
        let given = peers.records.len();
        {
            let mut book = lock(&self.inner.book);
            if let Some(record) = peers.own {
                book.heard(record, now);
            }
            for record in &peers.records {
                if Some(record.node_id()) != local {
                    book.heard(record.clone(), now);
                }
            }
        }
        for record in peers.records.iter().filter(|r| Some(r.node_id()) != local) {
            self.feed(record).await?;
        }
        tracing::debug!(peer = %hex::encode(node_id), given, "peer exchange");
        Ok(given)
    }

    /// Remembers that `node_id` is asked now; refuses if it was asked
    /// within [`REQUEST_INTERVAL`] or too many peers were asked lately.
    fn mark_asked(&self, node_id: &[u8; 33]) -> Result<(), PexError> {
        let now = Instant::now();
        let mut asked = lock(&self.inner.asked);
        if asked
            .get(node_id)
            .is_some_and(|at| now.duration_since(*at) < REQUEST_INTERVAL)
        {
            return Err(PexError::TooSoon);
        }
        if asked.len() >= MAX_ASKED {
            asked.retain(|_, at| now.duration_since(*at) < REQUEST_INTERVAL);
            if asked.len() >= MAX_ASKED {
                return Err(PexError::TooSoon);
            }
        }
        asked.insert(*node_id, now);
        Ok(())
    }

    /// Stores `record`'s peer and endpoints in the pool's store (its first
    /// endpoint ends up the most recent).
    async fn feed(&self, record: &NodeRecord) -> Result<(), PexError> {
        let node_id = record.node_id().to_bytes();
        let address = record.address().to_string();
        let store = self.inner.pool.store();
        for endpoint in record.endpoints().iter().rev() {
            store
                .add(&node_id, &address, Some(&endpoint.to_string()), false)
                .await
                .map_err(PoolError::from)?;
        }
        Ok(())
    }

    /// Asks `node_id` in the background if an exchange slot is free.
    fn exchange_later(&self, node_id: [u8; 33], outbound: bool) {
        let Ok(slot) = self.inner.exchanges.clone().try_acquire_owned() else {
            return;
        };
        let pex = self.clone();
        self.spawn(async move {
            match pex.exchange(&node_id, outbound).await {
                Ok(_) | Err(PexError::TooSoon | PexError::ShuttingDown) => {}
                Err(e) => tracing::debug!(peer = %hex::encode(node_id), error = %e, "peer exchange failed"),
            }
            drop(slot);
        });
    }

    /// Follows new connections: the ones this node dialed become
    /// first-hand, and every new peer is asked.
    fn spawn_events(&self, mut events: skywire_bus::Subscription) {
        let pex = self.clone();
        self.spawn(async move {
            while let Some(message) = events.next().await {
                let Ok(event) = bus_pb::PeerEvent::decode(message.payload) else {
                    continue;
                };
                let Some(peer) = event.peer.filter(|_| event.up && !event.refresh) else {
                    continue;
                };
                let Ok(node_id) = <[u8; 33]>::try_from(peer.node_id.as_ref()) else {
                    continue;
                };
                if !peer.inbound
                    && let Ok(key) = PublicKey::from_bytes(&node_id)
                {
                    lock(&pex.inner.book).connected(key, now_ms());
                }
                pex.exchange_later(node_id, !peer.inbound);
            }
        });
    }

    /// Every [`ROUND_INTERVAL`]: drops what is stale and asks a few
    /// connected peers again.
    async fn rounds(&self) {
        let mut tick = tokio::time::interval(ROUND_INTERVAL);
        tick.tick().await;
        loop {
            tick.tick().await;
            lock(&self.inner.book).expire(now_ms());
            let connected = self.inner.pool.connected();
            let chosen: Vec<_> = connected
                .choose_multiple(&mut rand::rng(), PEERS_PER_ROUND)
                .cloned()
                .collect();
            for peer in chosen {
                if let Ok(node_id) = <[u8; 33]>::try_from(peer.node_id.as_ref()) {
                    self.exchange_later(node_id, !peer.inbound);
                }
            }
        }
    }

    // ---- Answering. ----

    fn spawn_accept(&self, mut incoming: skywire_service::Incoming) {
        let pex = self.clone();
        self.spawn(async move {
            while let Some(mut channel) = incoming.next().await {
                let Ok(permit) = pex.inner.serving.clone().try_acquire_owned() else {
                    channel
                        .reset(Reason::RateLimited, "too many pex/1 requests at once")
                        .await;
                    continue;
                };
                let serving = pex.clone();
                pex.spawn(async move {
                    serving.serve(channel).await;
                    drop(permit);
                });
            }
        });
    }

    /// Answers the one request of a channel.
    async fn serve(&self, mut channel: ServiceChannel) {
        let peer = channel.peer().clone();
        let Ok(key) = PublicKey::from_bytes(&peer.node_id) else {
            channel.reset(Reason::ProtocolError, "bad node id").await;
            return;
        };
        let message = match tokio::time::timeout(REQUEST_TIMEOUT, channel.recv()).await {
            Ok(Ok(Some(message))) => message,
            Ok(Ok(None) | Err(_)) => return,
            Err(_) => {
                channel.reset(Reason::Timeout, "no request").await;
                return;
            }
        };
        let answer = match self.inner.limiter.check(&peer.address).await {
            Ok(decision) if !decision.allowed => {
                Err((Code::RateLimited, "one request per minute".to_owned()))
            }
            // The cache failing must not stop the exchange: fail open.
            Ok(_) | Err(_) => {
                protocol::decode_request(&message, &key, now_ms(), &self.inner.verified)
                    .map_err(|e| (Code::BadRequest, e.to_string()))
            }
        };
        let answer = match answer {
            Ok(sender) => {
                let now = now_ms();
                let own = self.own_record().await;
                let records = {
                    let mut book = lock(&self.inner.book);
                    if let Some(sender) = sender {
                        book.heard(sender, now);
                    }
                    book.sample(&key, MAX_RECORDS, now, &mut rand::rng())
                };
                protocol::encode_peers(own.as_deref(), &records)
            }
            Err((code, why)) => {
                tracing::debug!(peer = %peer.address, %why, "pex/1 request refused");
                protocol::encode_error(code, &why)
            }
        };
        if channel.send(answer).await.is_ok() {
            let _ = channel.finish().await;
        }
    }

    /// Stops: ends every task, leaves the bus.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
        self.inner.host.shutdown().await;
    }
}
