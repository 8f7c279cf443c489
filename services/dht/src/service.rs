//! The `dht/1` service: answers other nodes' requests from this node's
//! routing table and store, and drives lookups for this node over SWP/1.
//!
//! One [`Dht`] per node. It serves `dht/1` channels through its
//! [`ServiceHost`] (so it runs unchanged embedded or as its own process),
//! and reaches other nodes by opening `dht/1` channels to them, asking a
//! gateway to dial first when they are not connected. Requests it answers
//! are limited per peer across replicas ([`RateLimiter`] in the shared
//! cache) and in number at once ([`MAX_SERVING`]).
//!
//! Life of a node: [`Dht::start`] pings the contacts saved by the last run
//! and the bootstrap peers from config, looks up its own key, opens its
//! table to nodes that reach it ([`RoutingTable::mark_stocked`]), refreshes
//! its buckets and puts its record and provider entries at the nodes
//! nearest their keys. From then on, every [`MAINTENANCE_INTERVAL`] it
//! refreshes stale buckets, republishes what is due and drops expired
//! values, and every [`SAVE_INTERVAL`] saves the table.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use skywire_bus::Bus;
use skywire_db::Db;
use skywire_identity::{Address, Keypair, PublicKey};
use skywire_kv::Kv;
use skywire_kv::limits::RateLimiter;
use skywire_kv::presence::Presence;
use skywire_proto::bus::v1::gateway_command::Command;
use skywire_proto::dht::v1::error::Code;
use skywire_proto::wire::v1::Reason;
use skywire_record::{NodeRecord, RecordError, VerifyCache, now_ms};
use skywire_service::{HostError, LinkError, ServiceChannel, ServiceHost};
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::key::Key;
use crate::lookup::{Goal, Lookup, LookupConfig};
use crate::protocol::{self, Envelope, ProtocolError, Request, Response, SERVICE};
use crate::store::{Saved, StoreError, TableStore};
use crate::table::{Contact, Insert, K, Origin, RoutingTable, TableConfig};
use crate::values::{REPUBLISH_INTERVAL_MS, Values};

/// How long one request may take: dialing if needed, opening the channel,
/// the answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long an answerer waits for the next request on a channel.
pub const IDLE_CHANNEL_TIMEOUT: Duration = Duration::from_secs(10);

/// Requests answered at once by one instance; channels beyond are refused
/// with `RATE_LIMITED`, so a flood costs a refusal, not a task.
pub const MAX_SERVING: usize = 64;

/// Requests one peer may make per [`RATE_WINDOW`], across replicas: a
/// lookup asks a node once or twice, a busy neighbour a few times a second.
pub const REQUESTS_PER_PEER: u64 = 100;

/// The window of [`REQUESTS_PER_PEER`].
pub const RATE_WINDOW: Duration = Duration::from_secs(10);

/// Liveness checks (pings of a full bucket's oldest contact) at once;
/// beyond it the oldest contact is kept unchecked.
pub const MAX_CHECKS: usize = 8;

/// Bootstrap pings at once.
pub const BOOTSTRAP_CONCURRENCY: usize = 8;

/// How often maintenance runs: refresh, republish, expiry.
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(60);

/// How often the routing table is saved.
pub const SAVE_INTERVAL: Duration = Duration::from_secs(60);

/// A node re-signs its record when it is older than this, well within the
/// records' 24-hour life.
pub const RESIGN_AFTER_MS: u64 = 6 * 3600 * 1000;

/// Channel priority of `dht/1` (SWP/1: 0 bulk to 7 interactive): small,
/// latency-bound messages, just below interactive.
pub const PRIORITY: u8 = 6;

/// Connections this DHT dialed itself (to ask nodes it was not connected
/// to) kept open at most, beyond the ones in use: the least recently used
/// idle ones are closed first.
pub const MAX_TRANSIENT: usize = 16;

/// A connection the DHT dialed is closed after this long unused, so that
/// lookups do not leave connections to every node they met.
pub const TRANSIENT_IDLE: Duration = Duration::from_secs(10);

/// How often idle transient connections are looked for.
const TRANSIENT_SWEEP: Duration = Duration::from_secs(2);

/// A transient connection used this recently (a request may still be on
/// it) is never closed for the cap.
const TRANSIENT_BUSY: Duration = REQUEST_TIMEOUT;

/// The prefix of the per-peer rate-limit keys in the shared cache.
const RATE_PREFIX: &str = "sw:rate:dht:";

/// What the DHT fails at.
#[derive(Debug, thiserror::Error)]
pub enum DhtError {
    /// The service host failed.
    #[error(transparent)]
    Host(#[from] HostError),
    /// A channel failed.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// A peer's message was refused.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// A record could not be signed.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The routing-table store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The peer closed the channel without answering.
    #[error("closed without an answer")]
    NoAnswer,
    /// The peer answered with a record of another node.
    #[error("answer from the wrong node")]
    WrongNode,
    /// The request took longer than [`REQUEST_TIMEOUT`].
    #[error("timed out")]
    Timeout,
    /// No node knows the address.
    #[error("address {0} not found")]
    NotFound(String),
    /// A service name is not `name/major`.
    #[error("invalid service name {0:?}")]
    InvalidService(String),
    /// The node is stopping.
    #[error("shutting down")]
    ShuttingDown,
    /// The DHT could not be asked (over the bus), or failed otherwise.
    #[error("DHT unavailable: {0}")]
    Unavailable(String),
}

/// How the DHT runs.
#[derive(Debug, Clone, Default)]
pub struct DhtConfig {
    /// Nodes to join through: node id and endpoint.
    pub bootstrap: Vec<(PublicKey, SocketAddr)>,
    /// Where this node accepts SWP/1, as put in its record (none: it only
    /// asks, and never enters others' tables).
    pub endpoints: Vec<SocketAddr>,
    /// Services this node provides from the start (more with
    /// [`Dht::announce`]).
    pub services: Vec<String>,
    /// Routing table limits.
    pub table: TableConfig,
    /// Lookup parameters.
    pub lookup: LookupConfig,
}

/// This node's DHT. Cloning is cheap and shares it.
#[derive(Clone)]
pub struct Dht {
    inner: Arc<Inner>,
}

struct Inner {
    key: Keypair,
    local: Key,
    host: ServiceHost,
    limiter: RateLimiter,
    store: TableStore,
    config: DhtConfig,
    state: Mutex<State>,
    serving: Arc<Semaphore>,
    checks: Arc<Semaphore>,
    joined: watch::Sender<bool>,
    /// Records verified lately (answers repeat them).
    verified: VerifyCache,
    /// Connections this DHT dialed, and when each was last used.
    transient: Mutex<HashMap<[u8; 33], Instant>>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

struct State {
    table: RoutingTable,
    values: Values,
    own: Arc<NodeRecord>,
    services: BTreeSet<String>,
    /// When our record and provider entries were last put.
    published_ms: u64,
}

impl Dht {
    /// Starts the DHT of the node `key` on `host`: serves `dht/1`, then
    /// joins the network in the background ([`Dht::joined`] says when).
    ///
    /// # Errors
    ///
    /// If the service cannot be served or the record not signed (too many
    /// endpoints or services, or a bad service name).
    pub async fn start(
        host: ServiceHost,
        kv: Kv,
        store: TableStore,
        key: Keypair,
        config: DhtConfig,
    ) -> Result<Self, DhtError> {
        let services: BTreeSet<String> = config.services.iter().cloned().collect();
        let own = sign(&key, &config.endpoints, &services, 0)?;
        let local = Key::of_address(&key.address());
        let incoming = host.serve(SERVICE).await?;
        let dht = Self {
            inner: Arc::new(Inner {
                limiter: RateLimiter::new(kv, REQUESTS_PER_PEER, RATE_WINDOW)
                    .with_prefix(RATE_PREFIX),
                store,
                state: Mutex::new(State {
                    table: RoutingTable::new(local, config.table.clone()),
                    values: Values::new(),
                    own: Arc::new(own),
                    services,
                    published_ms: 0,
                }),
                config,
                key,
                local,
                host,
                serving: Arc::new(Semaphore::new(MAX_SERVING)),
                checks: Arc::new(Semaphore::new(MAX_CHECKS)),
                joined: watch::Sender::new(false),
                verified: VerifyCache::default(),
                transient: Mutex::new(HashMap::new()),
                shutdown: CancellationToken::new(),
                tasks: TaskTracker::new(),
            }),
        };
        dht.spawn_accept(incoming);
        let (answering, bus) = (dht.clone(), dht.inner.host.bus().clone());
        dht.spawn(async move {
            if let Err(e) = crate::api::serve_bus(answering, bus).await {
                tracing::error!(error = %e, "cannot answer Resolve on the bus");
            }
        });
        let (answering, bus) = (dht.clone(), dht.inner.host.bus().clone());
        dht.spawn(async move {
            if let Err(e) = crate::api::serve_own_record(answering, bus).await {
                tracing::error!(error = %e, "cannot answer for the own record on the bus");
            }
        });
        let joining = dht.clone();
        dht.spawn(async move {
            joining.join().await;
            joining.maintain().await;
        });
        let sweeping = dht.clone();
        dht.spawn(async move { sweeping.sweep_transient().await });
        Ok(dht)
    }

    /// Starts the DHT as the service instance `instance` on `bus` (see
    /// [`Dht::start`]), its routing table in `db`, migrated first: how a node
    /// or a cluster process runs it.
    ///
    /// # Errors
    ///
    /// If the migrations fail, or as [`Dht::start`].
    pub async fn launch(
        bus: Bus,
        presence: Presence,
        kv: Kv,
        db: Db,
        instance: &str,
        key: Keypair,
        config: DhtConfig,
    ) -> Result<Self, DhtError> {
        db.migrate(&TableStore::migrations())
            .await
            .map_err(StoreError::from)?;
        let host = ServiceHost::start(bus, presence, instance).await?;
        Self::start(host, kv, TableStore::new(db), key, config).await
    }

    /// Runs `task` as one of the DHT's: cancelled and awaited by
    /// [`Dht::shutdown`].
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let stop = self.inner.shutdown.clone();
        self.inner.tasks.spawn(async move {
            tokio::select! {
                () = task => {}
                () = stop.cancelled() => {}
            }
        });
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// This node's current record.
    pub fn record(&self) -> Arc<NodeRecord> {
        self.state().own.clone()
    }

    /// This node's key.
    pub fn local(&self) -> Key {
        self.inner.local
    }

    /// Contacts in the routing table.
    pub fn table_len(&self) -> usize {
        self.state().table.len()
    }

    /// The `n` contacts of the table nearest `target`.
    pub fn closest(&self, target: &Key, n: usize) -> Vec<Contact> {
        self.state().table.closest(target, n)
    }

    /// Waits until the first join (bootstrap, own lookup, first publication)
    /// is over.
    pub async fn joined(&self) {
        let mut joined = self.inner.joined.subscribe();
        let _ = joined.wait_for(|j| *j).await;
    }

    // ---- Joining and maintenance. ----

    async fn join(&self) {
        let saved = match self.inner.store.load().await {
            Ok(saved) => saved,
            Err(e) => {
                tracing::warn!(error = %e, "cannot load the saved routing table");
                Vec::new()
            }
        };
        let mut seeds: Vec<(PublicKey, SocketAddr)> = saved
            .into_iter()
            .map(|Saved { node_id, endpoint }| (node_id, endpoint))
            .collect();
        for boot in &self.inner.config.bootstrap {
            if !seeds.iter().any(|(id, _)| *id == boot.0) {
                seeds.push(*boot);
            }
        }
        let answered = futures_util::stream::iter(seeds)
            .map(|(node_id, endpoint)| {
                let dht = self.clone();
                async move {
                    match dht.ask(&node_id, endpoint, Request::Ping).await {
                        Ok(Answer {
                            response: Response::Pong(record),
                            origin,
                        }) => {
                            if let Some(origin) = origin {
                                dht.admit(Contact::new(record, endpoint), origin);
                            }
                            true
                        }
                        Ok(_) => false,
                        Err(e) => {
                            tracing::debug!(%endpoint, error = %e, "bootstrap peer did not answer");
                            false
                        }
                    }
                }
            })
            .buffer_unordered(BOOTSTRAP_CONCURRENCY)
            .filter(|ok| std::future::ready(*ok))
            .count()
            .await;
        let own = self.inner.local;
        self.walk(own, Goal::Closest, Request::FindNode(own), |_, _| false)
            .await;
        self.state().table.mark_stocked();
        self.refresh().await;
        self.publish().await;
        self.save().await;
        tracing::info!(
            bootstrap_answered = answered,
            table = self.table_len(),
            "DHT joined"
        );
        self.inner.joined.send_replace(true);
    }

    async fn maintain(&self) {
        let mut maintenance = tokio::time::interval(MAINTENANCE_INTERVAL);
        let mut save = tokio::time::interval(SAVE_INTERVAL);
        maintenance.tick().await;
        save.tick().await;
        loop {
            tokio::select! {
                _ = maintenance.tick() => {
                    self.state().values.expire(now_ms());
                    self.refresh().await;
                    let due = {
                        let state = self.state();
                        now_ms().saturating_sub(state.published_ms) >= REPUBLISH_INTERVAL_MS
                            || now_ms().saturating_sub(state.own.timestamp_ms()) >= RESIGN_AFTER_MS
                    };
                    if due {
                        self.publish().await;
                    }
                }
                _ = save.tick() => self.save().await,
            }
        }
    }

    /// Looks up a random key in every bucket no lookup went into lately.
    async fn refresh(&self) {
        let stale = self.state().table.stale_buckets(Instant::now());
        for bucket in stale {
            let target = self.inner.local.random_in_bucket(bucket, &mut rand::rng());
            self.walk(target, Goal::Closest, Request::FindNode(target), |_, _| {
                false
            })
            .await;
        }
    }

    async fn save(&self) {
        let contacts: Vec<Contact> = self.state().table.contacts().cloned().collect();
        if let Err(e) = self.inner.store.save(&contacts).await {
            tracing::warn!(error = %e, "cannot save the routing table");
        }
    }

    /// Re-signs our record if it is old, then puts it at the nodes nearest
    /// our key, and our provider entries at the nodes nearest each
    /// service's key.
    async fn publish(&self) {
        let services: Vec<String> = {
            let mut state = self.state();
            let now = now_ms();
            if now.saturating_sub(state.own.timestamp_ms()) >= RESIGN_AFTER_MS {
                let seq = state.own.seq();
                match sign(
                    &self.inner.key,
                    &self.inner.config.endpoints,
                    &state.services,
                    seq,
                ) {
                    Ok(record) => state.own = Arc::new(record),
                    Err(e) => tracing::warn!(error = %e, "cannot re-sign our record"),
                }
            }
            state.published_ms = now;
            state.services.iter().cloned().collect()
        };
        if self.inner.config.endpoints.is_empty() {
            return;
        }
        let own = self.inner.local;
        self.store_at(own, Request::PutRecord).await;
        for service in services {
            self.store_at(Key::of_service(&service), Request::AddProvider(service))
                .await;
        }
    }

    /// Sends `request` (a put) to the `k` nodes nearest `target`; returns
    /// how many accepted it.
    async fn store_at(&self, target: Key, request: Request) -> usize {
        let lookup = self
            .walk(target, Goal::Closest, Request::FindNode(target), |_, _| {
                false
            })
            .await;
        let mut puts: FuturesUnordered<_> = lookup
            .closest()
            .into_iter()
            .map(|contact| {
                let request = request.clone();
                async move {
                    self.ask_contact(&contact, request)
                        .await
                        .map(|answer| answer.response)
                }
            })
            .collect();
        let mut stored = 0;
        while let Some(result) = puts.next().await {
            match result {
                Ok(Response::Stored { .. }) => stored += 1,
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "put refused"),
            }
        }
        stored
    }

    // ---- Queries for this node. ----

    /// Finds the record of the node with `address`: from the table or the
    /// store if held here, else by a lookup. The newest record heard wins.
    ///
    /// # Errors
    ///
    /// [`DhtError::NotFound`] if no node answering the lookup knows it.
    pub async fn resolve(&self, address: &Address) -> Result<Arc<NodeRecord>, DhtError> {
        let target = Key::of_address(address);
        if target == self.inner.local {
            return Ok(self.record());
        }
        let known = {
            let state = self.state();
            state
                .table
                .get(&target)
                .map(|c| c.record().clone())
                .or_else(|| state.values.record(&target, now_ms()))
        };
        if let Some(record) = known {
            return Ok(record);
        }
        let mut best: Option<Arc<NodeRecord>> = None;
        let lookup = self
            .walk(
                target,
                Goal::Node,
                Request::GetRecord(target),
                |_, response| {
                    if let Response::Record {
                        record: Some(record),
                        ..
                    } = response
                        && Key::of_address(&record.address()) == target
                    {
                        newest(&mut best, record.clone());
                        return true;
                    }
                    false
                },
            )
            .await;
        if let Some(found) = lookup.found() {
            newest(&mut best, found.record().clone());
        }
        best.ok_or_else(|| DhtError::NotFound(address.to_string()))
    }

    /// Finds up to `k` nodes that provide `service`.
    ///
    /// # Errors
    ///
    /// [`DhtError::InvalidService`] for a name that is not `name/major`.
    pub async fn find_providers(&self, service: &str) -> Result<Vec<Arc<NodeRecord>>, DhtError> {
        if !skywire_proto::service_name::is_valid(service) {
            return Err(DhtError::InvalidService(service.to_owned()));
        }
        let target = Key::of_service(service);
        let k = self.inner.config.lookup.k;
        let mut found: HashMap<PublicKey, Arc<NodeRecord>> = HashMap::new();
        {
            let state = self.state();
            if state.services.contains(service) {
                found.insert(state.own.node_id(), state.own.clone());
            }
            for record in state.values.providers(&target, k, now_ms()) {
                found.insert(record.node_id(), record);
            }
        }
        if found.len() < k {
            self.walk(
                target,
                Goal::Closest,
                Request::GetProviders(service.to_owned()),
                |_, response| {
                    if let Response::Providers { providers, .. } = response {
                        for record in providers {
                            if record.services().iter().any(|s| s == service) {
                                let entry = found.entry(record.node_id()).or_insert(record.clone());
                                if record.seq() > entry.seq() {
                                    *entry = record.clone();
                                }
                            }
                        }
                    }
                    found.len() >= k
                },
            )
            .await;
        }
        let mut providers: Vec<Arc<NodeRecord>> = found.into_values().collect();
        providers.sort_by_key(|r| Key::of_address(&r.address()).distance(&target));
        providers.truncate(k);
        Ok(providers)
    }

    /// Announces that this node provides `service`: adds it to our record
    /// and puts a provider entry at the nodes nearest the service's key.
    /// Returns how many nodes accepted it.
    ///
    /// # Errors
    ///
    /// [`DhtError::InvalidService`]; [`DhtError::Record`] if our record
    /// cannot hold another service.
    pub async fn announce(&self, service: &str) -> Result<usize, DhtError> {
        if !skywire_proto::service_name::is_valid(service) {
            return Err(DhtError::InvalidService(service.to_owned()));
        }
        {
            let mut state = self.state();
            if !state.services.contains(service) {
                let mut services = state.services.clone();
                services.insert(service.to_owned());
                let record = sign(
                    &self.inner.key,
                    &self.inner.config.endpoints,
                    &services,
                    state.own.seq(),
                )?;
                state.services = services;
                state.own = Arc::new(record);
            }
        }
        if self.inner.config.endpoints.is_empty() {
            return Ok(0);
        }
        // Nodes holding our old record get the new one with the entry.
        let own = self.inner.local;
        self.store_at(own, Request::PutRecord).await;
        Ok(self
            .store_at(
                Key::of_service(service),
                Request::AddProvider(service.to_owned()),
            )
            .await)
    }

    /// An iterative lookup of `target` sending `request` to each node asked;
    /// `visit` sees every answer and returns true to end the lookup.
    async fn walk(
        &self,
        target: Key,
        goal: Goal,
        request: Request,
        mut visit: impl FnMut(&Key, &Response) -> bool,
    ) -> Lookup {
        let seeds = {
            let mut state = self.state();
            state.table.touch(&target, Instant::now());
            state.table.closest(&target, self.inner.config.lookup.k)
        };
        let mut lookup = Lookup::new(
            self.inner.local,
            target,
            goal,
            seeds,
            self.inner.config.lookup.clone(),
        );
        let mut pending = FuturesUnordered::new();
        loop {
            for query in lookup.poll() {
                let request = request.clone();
                pending.push(async move {
                    let result = self.ask_contact(&query.contact, request).await;
                    (query.contact, result)
                });
            }
            let Some((contact, result)) = pending.next().await else {
                break;
            };
            match result {
                Ok(Answer { response, origin }) => {
                    if let Some(origin) = origin {
                        self.admit(contact.clone(), origin);
                    }
                    let stop = visit(contact.key(), &response);
                    lookup.on_response(contact.key(), contacts_in(&response, &target));
                    if stop {
                        lookup.finish();
                    }
                }
                Err(e) => {
                    tracing::debug!(node = %contact.key(), error = %e, "lookup request failed");
                    lookup.on_failure(contact.key());
                    self.state().table.failed(contact.key());
                }
            }
            if lookup.is_finished() {
                break;
            }
        }
        lookup
    }

    // ---- Talking to other nodes. ----

    /// Offers `contact` to the table, checking a full bucket's oldest
    /// contact in the background.
    fn admit(&self, contact: Contact, origin: Origin) {
        let insert = self.state().table.insert(contact, origin);
        let Insert::Replacement {
            check: Some(oldest),
        } = insert
        else {
            return;
        };
        let Ok(permit) = self.inner.checks.clone().try_acquire_owned() else {
            // Too many checks at once: keep the old contact.
            self.state().table.seen(oldest.key());
            return;
        };
        let dht = self.clone();
        self.spawn(async move {
            let alive = dht.ask_contact(&oldest, Request::Ping).await.is_ok();
            let mut state = dht.state();
            if alive {
                state.table.seen(oldest.key());
            } else {
                state.table.failed(oldest.key());
            }
            drop(permit);
        });
    }

    async fn ask_contact(&self, contact: &Contact, request: Request) -> Result<Answer, DhtError> {
        self.ask(&contact.record().node_id(), contact.endpoint(), request)
            .await
    }

    /// Sends `request` to `node_id` (dialing `endpoint` if it is not
    /// connected) and reads the answer, within [`REQUEST_TIMEOUT`].
    async fn ask(
        &self,
        node_id: &PublicKey,
        endpoint: SocketAddr,
        request: Request,
    ) -> Result<Answer, DhtError> {
        if self.inner.shutdown.is_cancelled() {
            return Err(DhtError::ShuttingDown);
        }
        let is_ping = matches!(request, Request::Ping);
        let envelope = Envelope {
            sender: Some(self.record()).filter(|r| !r.endpoints().is_empty()),
            request,
        };
        let exchange = async {
            let (mut channel, dialed) = self.open(node_id, endpoint).await?;
            let origin = if dialed {
                Some(Origin::Outbound)
            } else {
                reached_at(channel.peer(), endpoint)
            };
            channel.send(envelope.encode()).await?;
            let answer = channel.recv().await?.ok_or(DhtError::NoAnswer)?;
            let _ = channel.finish().await;
            let response = Response::decode(&answer, now_ms(), Some(&self.inner.verified))?;
            Ok::<_, DhtError>((response, origin))
        };
        let (response, origin) = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| DhtError::Timeout)??;
        if is_ping {
            match &response {
                Response::Pong(record) if record.node_id() == *node_id => {}
                _ => return Err(DhtError::WrongNode),
            }
        }
        Ok(Answer { response, origin })
    }

    fn transient(&self) -> MutexGuard<'_, HashMap<[u8; 33], Instant>> {
        self.inner
            .transient
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Closes the connections this DHT dialed that are idle: every one
    /// unused for [`TRANSIENT_IDLE`], and beyond [`MAX_TRANSIENT`] the least
    /// recently used.
    async fn sweep_transient(&self) {
        let mut tick = tokio::time::interval(TRANSIENT_SWEEP);
        loop {
            tick.tick().await;
            let now = Instant::now();
            let close: Vec<[u8; 33]> = {
                let mut transient = self.transient();
                let mut by_age: Vec<([u8; 33], Instant)> =
                    transient.iter().map(|(k, t)| (*k, *t)).collect();
                by_age.sort_by_key(|(_, t)| *t);
                let over = by_age.len().saturating_sub(MAX_TRANSIENT);
                let close: Vec<[u8; 33]> = by_age
                    .iter()
                    .enumerate()
                    .filter(|(i, (_, used))| {
                        let idle = now.saturating_duration_since(*used);
                        idle >= TRANSIENT_IDLE || (*i < over && idle >= TRANSIENT_BUSY)
                    })
                    .map(|(_, (k, _))| *k)
                    .collect();
                for k in &close {
                    transient.remove(k);
                }
                close
            };
            for node_id in close {
                // Only if nobody kept it since (the pool, say).
                let disconnect = Command::Disconnect(skywire_proto::bus::v1::Disconnect {
                    node_id: bytes::Bytes::copy_from_slice(&node_id),
                    message: "dht: idle".into(),
                    if_transient: true,
                });
                let _ = self.inner.host.broadcast(disconnect).await;
            }
        }
    }

    /// A `dht/1` channel to `node_id`, dialing `endpoint` first if needed
    /// (the connection is then transient: closed when idle), and whether
    /// this call dialed it.
    async fn open(
        &self,
        node_id: &PublicKey,
        endpoint: SocketAddr,
    ) -> Result<(ServiceChannel, bool), DhtError> {
        let id = node_id.to_bytes();
        if let Some(used) = self.transient().get_mut(&id) {
            *used = Instant::now();
        }
        match self.inner.host.open(&id, SERVICE, PRIORITY).await {
            Err(HostError::NotConnected(_)) => {}
            other => return Ok((other?, false)),
        }
        self.inner.host.dial_transient(&id, endpoint).await?;
        self.transient().insert(id, Instant::now());
        Ok((
            self.inner.host.open_new(&id, SERVICE, PRIORITY).await?,
            true,
        ))
    }

    // ---- Answering other nodes. ----

    fn spawn_accept(&self, mut incoming: skywire_service::Incoming) {
        let dht = self.clone();
        self.spawn(async move {
            while let Some(mut channel) = incoming.next().await {
                let Ok(permit) = dht.inner.serving.clone().try_acquire_owned() else {
                    channel
                        .reset(Reason::RateLimited, "too many dht/1 requests at once")
                        .await;
                    continue;
                };
                let serving = dht.clone();
                dht.spawn(async move {
                    serving.serve(channel).await;
                    drop(permit);
                });
            }
        });
    }

    /// Answers the requests on one channel, one at a time.
    async fn serve(&self, mut channel: ServiceChannel) {
        let peer = channel.peer().clone();
        loop {
            let message = match tokio::time::timeout(IDLE_CHANNEL_TIMEOUT, channel.recv()).await {
                Ok(Ok(Some(message))) => message,
                Ok(Ok(None)) | Ok(Err(_)) => return,
                Err(_) => {
                    channel.reset(Reason::Timeout, "no request").await;
                    return;
                }
            };
            match self.inner.limiter.check(&peer.address).await {
                Ok(decision) if !decision.allowed => {
                    let _ = channel
                        .send(protocol::error(Code::RateLimited, "too many requests"))
                        .await;
                    let _ = channel.finish().await;
                    return;
                }
                // The cache failing must not stop the DHT: fail open.
                Ok(_) | Err(_) => {}
            }
            let answer = match Envelope::decode(&message, now_ms(), Some(&self.inner.verified)) {
                Ok(envelope) => self.answer(&peer, envelope),
                Err(e) => {
                    tracing::debug!(peer = %peer.address, error = %e, "bad dht/1 request");
                    protocol::error(Code::BadRequest, &e.to_string())
                }
            };
            if channel.send(answer).await.is_err() {
                return;
            }
        }
    }

    fn answer(&self, peer: &skywire_service::PeerInfo, envelope: Envelope) -> bytes::Bytes {
        let Envelope { sender, request } = envelope;
        if let Some(sender) = &sender {
            if sender.node_id().to_bytes() != peer.node_id {
                return protocol::error(Code::BadRequest, "sender record is not the peer's");
            }
            // Admit it only at the address its connection came from.
            let from = peer.remote_addr.parse::<SocketAddr>().ok().map(|a| a.ip());
            if let Some(endpoint) = sender
                .endpoints()
                .iter()
                .find(|e| Some(e.ip().to_canonical()) == from.map(|ip| ip.to_canonical()))
            {
                self.admit(Contact::new(sender.clone(), *endpoint), Origin::Inbound);
            }
        }
        let now = now_ms();
        let k = self.inner.config.lookup.k.min(K);
        let mut state = self.state();
        let closest = |state: &State, key: &Key| -> Vec<Arc<NodeRecord>> {
            state
                .table
                .closest(key, k)
                .into_iter()
                .map(|c| c.record().clone())
                .collect()
        };
        let response = match request {
            Request::Ping => Response::Pong(state.own.clone()),
            Request::FindNode(target) => Response::Nodes(closest(&state, &target)),
            Request::GetRecord(key) => {
                let record = if key == self.inner.local {
                    Some(state.own.clone())
                } else {
                    state
                        .table
                        .get(&key)
                        .map(|c| c.record().clone())
                        .or_else(|| state.values.record(&key, now))
                };
                let closer = if record.is_some() {
                    Vec::new()
                } else {
                    closest(&state, &key)
                };
                Response::Record { record, closer }
            }
            Request::PutRecord => {
                let sender = sender.expect("decode requires a sender for puts");
                match state.values.put_record(sender, now) {
                    Ok(ttl_ms) => Response::Stored { ttl_ms },
                    Err(e) => return protocol::error(refusal_code(e), &e.to_string()),
                }
            }
            Request::GetProviders(service) => {
                let key = Key::of_service(&service);
                let mut providers = state.values.providers(&key, k, now);
                if state.services.contains(&service) && providers.len() < k {
                    providers.push(state.own.clone());
                }
                Response::Providers {
                    providers,
                    closer: closest(&state, &key),
                }
            }
            Request::AddProvider(service) => {
                let sender = sender.expect("decode requires a sender for puts");
                match state.values.add_provider(&service, sender, now) {
                    Ok(ttl_ms) => Response::Stored { ttl_ms },
                    Err(e) => return protocol::error(refusal_code(e), &e.to_string()),
                }
            }
        };
        drop(state);
        response.encode()
    }

    /// Stops: saves the table, ends every task, leaves the bus.
    pub async fn shutdown(&self) {
        self.save().await;
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
        self.inner.host.shutdown().await;
    }
}

fn refusal_code(refusal: crate::values::Refusal) -> Code {
    match refusal {
        crate::values::Refusal::Full => Code::Unavailable,
        _ => Code::BadRequest,
    }
}

/// An answer, and what it proves of the endpoint asked: how the node may
/// enter the table (`None`: not at all).
struct Answer {
    response: Response,
    origin: Option<Origin>,
}

/// What a connection that was there already proves of `peer` listening at
/// `endpoint`: we dialed that very endpoint ([`Origin::Outbound`]), or the
/// peer dialed us from its IP ([`Origin::Inbound`]: the port is unproven,
/// as for a node that asks us); otherwise nothing.
fn reached_at(peer: &skywire_service::PeerInfo, endpoint: SocketAddr) -> Option<Origin> {
    let remote = peer.remote_addr.parse::<SocketAddr>().ok()?;
    if peer.inbound {
        (remote.ip().to_canonical() == endpoint.ip().to_canonical()).then_some(Origin::Inbound)
    } else {
        (remote == endpoint).then_some(Origin::Outbound)
    }
}

/// Keeps the record with the higher sequence number.
fn newest(best: &mut Option<Arc<NodeRecord>>, record: Arc<NodeRecord>) {
    if best.as_ref().is_none_or(|b| record.seq() > b.seq()) {
        *best = Some(record);
    }
}

/// The contacts an answer offers a lookup of `target`: its nearer nodes,
/// and a record asked for (so a `Goal::Node` lookup sees the target).
fn contacts_in(response: &Response, target: &Key) -> Vec<Contact> {
    let records: Vec<&Arc<NodeRecord>> = match response {
        Response::Nodes(nodes) => nodes.iter().collect(),
        Response::Record { record, closer } => record
            .iter()
            .filter(|r| Key::of_address(&r.address()) == *target)
            .chain(closer.iter())
            .collect(),
        Response::Providers { closer, .. } => closer.iter().collect(),
        Response::Pong(_) | Response::Stored { .. } => Vec::new(),
    };
    records
        .into_iter()
        .filter_map(|r| Contact::from_record(r.clone()))
        .collect()
}

/// Signs this node's record with a sequence number above `previous` (the
/// time in ms, so a restart that forgot the last one still goes up).
fn sign(
    key: &Keypair,
    endpoints: &[SocketAddr],
    services: &BTreeSet<String>,
    previous: u64,
) -> Result<NodeRecord, RecordError> {
    let now = now_ms();
    NodeRecord::sign(
        key,
        endpoints.to_vec(),
        services.iter().cloned().collect(),
        now.max(previous + 1),
        now,
    )
}
