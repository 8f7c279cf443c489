//! The service side of the bus: a [`ServiceHost`] announces the services of
//! one instance, takes the channels gateways offer it, and opens channels to
//! connected peers.
//!
//! Tracing: each offered channel is decided in a `service.open` span that
//! follows the gateway's `OpenRequest`, and each message a
//! [`ServiceChannel`] receives keeps the trace context it was sent in, so a
//! handler's span can join the peer's trace ([`ServiceChannel::follow`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use prost::Message as _;
use skywire_bus::trace::{self, Context};
use skywire_bus::{Bus, BusError, subjects};
use skywire_identity::Address;
use skywire_kv::presence::Presence;
use skywire_proto::bus::v1 as pb;
use skywire_proto::service_name;
use skywire_proto::wire::v1::Reason;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

use crate::link::{LinkError, LinkKey, LinkReceiver, LinkSender, Links, WINDOW};
use crate::registry::{HEARTBEAT_INTERVAL, HEARTBEAT_TTL, Registry, follow};
use crate::sync::lock;

/// Channels offered to a service and not yet taken by its handler; beyond
/// this, gateways are told `REASON_REFUSED` (the service is overloaded).
pub const INCOMING_BACKLOG: usize = 256;

/// How long an outbound open may take: the gateway must open an SWP/1
/// channel and the peer must accept it.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`ServiceHost::dial`] waits for the gateway: a handshake and
/// Hello on a slow path, with margin; an unreachable peer fails sooner.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(15);

/// Attempts [`ServiceHost::open_new`] makes while the gateway's presence entry
/// for a connection just announced (or just dialed) may still be on its way:
/// waits of 40, 80, 160 and 320 ms between them, 600 ms in all.
pub const OPEN_NEW_ATTEMPTS: u32 = 5;

/// Why a host operation failed.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The bus failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// A service name is not `name/major`.
    #[error("invalid service name {0:?}")]
    InvalidService(String),
    /// An instance id is not valid in a subject.
    #[error("invalid instance id {0:?}")]
    InvalidInstance(String),
    /// The service is served already by this host.
    #[error("service {0} is served already")]
    AlreadyServed(String),
    /// The peer is not connected to any gateway.
    #[error("peer {0} is not connected")]
    NotConnected(String),
    /// The presence map could not be read.
    #[error("presence lookup failed: {0}")]
    Presence(String),
    /// The gateway or the peer refused the channel.
    #[error("channel refused: {}: {message}", reason.as_str_name())]
    Refused {
        /// Why.
        reason: Reason,
        /// Detail.
        message: String,
    },
    /// A link could not be set up.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The gateway answered with something that is not an `OpenReply`.
    #[error("malformed reply from gateway: {0}")]
    Malformed(String),
    /// The gateway could not connect to the peer.
    #[error("dial failed: {0}")]
    Dial(String),
}

/// Why [`ServiceHost::ask`] got no answer.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    /// The channel could not be opened.
    #[error(transparent)]
    Host(#[from] HostError),
    /// The channel failed.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The peer closed the channel without answering.
    #[error("closed without an answer")]
    NoAnswer,
    /// No answer within the time given.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// The peer at the other end of a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// Its node id (33-byte compressed public key).
    pub node_id: [u8; 33],
    /// Its Skycoin address.
    pub address: String,
    /// Its TCP address as the gateway sees it.
    pub remote_addr: String,
    /// The gateway replica holding the connection.
    pub gateway: String,
    /// The peer dialed us: `remote_addr`'s port is its outgoing one, not
    /// one it listens on.
    pub inbound: bool,
}

/// One SWP/1 channel, as a service sees it: whole messages both ways, with
/// backpressure all the way to the peer.
#[derive(Debug)]
pub struct ServiceChannel {
    peer: PeerInfo,
    service: String,
    sender: LinkSender,
    receiver: LinkReceiver,
}

impl ServiceChannel {
    /// The peer.
    pub fn peer(&self) -> &PeerInfo {
        &self.peer
    }

    /// The service this channel carries.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// Sends one message; waits while the peer is slow.
    pub async fn send(&mut self, message: Bytes) -> Result<(), LinkError> {
        self.sender.send(message).await
    }

    /// The next message; `Ok(None)` once the peer finished.
    pub async fn recv(&mut self) -> Result<Option<Bytes>, LinkError> {
        self.receiver.recv().await
    }

    /// The trace context the last message [`recv`](Self::recv) returned was
    /// sent in (at the gateway, the span that forwarded it from the peer).
    pub fn trace_context(&self) -> &Context {
        self.receiver.trace_context()
    }

    /// Makes `span` a child of the span that sent the last message
    /// [`recv`](Self::recv) returned, so the handler's work (and the spans
    /// under it, e.g. database queries) joins the peer's trace. Call it
    /// before `span` is first entered:
    ///
    /// ```no_run
    /// # async fn handle(mut channel: skywire_service::ServiceChannel) {
    /// use tracing::Instrument as _;
    ///
    /// while let Ok(Some(message)) = channel.recv().await {
    ///     let span = tracing::info_span!("handle", bytes = message.len());
    ///     channel.follow(&span);
    ///     let reply = async { message }.instrument(span).await;
    ///     let _ = channel.send(reply).await;
    /// }
    /// # }
    /// ```
    pub fn follow(&self, span: &tracing::Span) {
        self.receiver.follow(span);
    }

    /// Says we will send no more.
    pub async fn finish(&mut self) -> Result<(), LinkError> {
        self.sender.finish().await
    }

    /// Aborts the channel.
    pub async fn reset(&mut self, reason: Reason, message: &str) {
        self.sender.reset(reason, message).await;
    }

    /// Splits into halves for separate tasks.
    pub fn split(self) -> (LinkSender, LinkReceiver) {
        (self.sender, self.receiver)
    }
}

/// Channels peers open to one service, from [`ServiceHost::serve`].
#[derive(Debug)]
pub struct Incoming {
    rx: mpsc::Receiver<ServiceChannel>,
}

impl Incoming {
    /// The next channel; `None` once the host stops.
    pub async fn next(&mut self) -> Option<ServiceChannel> {
        self.rx.recv().await
    }
}

/// One service instance on the bus.
#[derive(Clone, Debug)]
pub struct ServiceHost {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    bus: Bus,
    instance: String,
    presence: Presence,
    links: Links,
    services: Mutex<HashMap<String, mpsc::Sender<ServiceChannel>>>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl Inner {
    fn services(&self) -> MutexGuard<'_, HashMap<String, mpsc::Sender<ServiceChannel>>> {
        self.services
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn heartbeat(&self, ttl: Duration) -> Bytes {
        let mut services: Vec<String> = self.services().keys().cloned().collect();
        services.sort();
        let beat = pb::Heartbeat {
            instance: self.instance.clone(),
            services,
            ttl_ms: u32::try_from(ttl.as_millis()).unwrap_or(u32::MAX),
            gateway: false,
        };
        Bytes::from(beat.encode_to_vec())
    }
}

impl ServiceHost {
    /// Starts instance `instance` on `bus`: listens for its channel traffic
    /// and heartbeats, and watches gateways so links through one that dies
    /// are reset.
    pub async fn start(bus: Bus, presence: Presence, instance: &str) -> Result<Self, HostError> {
        if !subjects::valid_id(instance) {
            return Err(HostError::InvalidInstance(instance.to_owned()));
        }
        let inner = Arc::new(Inner {
            bus: bus.clone(),
            instance: instance.to_owned(),
            presence,
            links: Links::new(),
            services: Mutex::new(HashMap::new()),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        });
        let mut channels = bus
            .subscribe(&subjects::instance_channels(instance))
            .await?;
        let heartbeats = bus.subscribe(subjects::HEARTBEAT).await?;
        let links = inner.links.clone();
        let stop = inner.shutdown.clone();
        inner.tasks.spawn(async move {
            loop {
                let message = tokio::select! {
                    m = channels.next() => m,
                    () = stop.cancelled() => None,
                };
                let Some(message) = message else { break };
                match pb::ChannelEvent::decode(message.payload) {
                    Ok(event) => links.dispatch(event, &message.headers),
                    Err(e) => tracing::warn!(error = %e, "malformed channel event"),
                }
            }
        });
        // A gateway that just started knows no instance until it hears from
        // each: one that joins is greeted with a heartbeat at once, not at the
        // next tick, so it does not refuse this instance's services meanwhile.
        let greet = Arc::new(Notify::new());
        let links = inner.links.clone();
        let (stop, greeted) = (inner.shutdown.clone(), greet.clone());
        inner.tasks.spawn(async move {
            let registry = Mutex::new(Registry::new());
            follow(heartbeats, stop, &registry, |change| {
                for gone in &change.left {
                    links.reset_peer(gone, Reason::ServiceUnavailable, "gateway gone");
                }
                let registry = lock(&registry);
                if change.joined.iter().any(|id| registry.is_gateway(id)) {
                    greeted.notify_one();
                }
            })
            .await;
        });
        let host = Self { inner };
        let beat = host.clone();
        host.inner.tasks.spawn(async move {
            let mut tick = tokio::time::interval(HEARTBEAT_INTERVAL);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = greet.notified() => {}
                    () = beat.inner.shutdown.cancelled() => break,
                }
                beat.announce(HEARTBEAT_TTL).await;
            }
        });
        Ok(host)
    }

    /// This instance's id.
    pub fn instance(&self) -> &str {
        &self.inner.instance
    }

    /// The bus it runs on.
    pub fn bus(&self) -> &Bus {
        &self.inner.bus
    }

    async fn announce(&self, ttl: Duration) {
        let beat = self.inner.heartbeat(ttl);
        if let Err(e) = self.inner.bus.publish(subjects::HEARTBEAT, beat).await {
            tracing::warn!(error = %e, "heartbeat failed");
        }
    }

    /// Serves `service`: gateways offer this instance channels peers open to
    /// it (one instance of the queue group takes each). Announced at once.
    pub async fn serve(&self, service: &str) -> Result<Incoming, HostError> {
        if !service_name::is_valid(service) {
            return Err(HostError::InvalidService(service.to_owned()));
        }
        let (tx, rx) = mpsc::channel(INCOMING_BACKLOG);
        {
            let mut services = self.inner.services();
            if services.contains_key(service) {
                return Err(HostError::AlreadyServed(service.to_owned()));
            }
            services.insert(service.to_owned(), tx.clone());
        }
        let subscribed = self
            .inner
            .bus
            .queue_subscribe(
                &subjects::service_open(service),
                &subjects::service_group(service),
            )
            .await;
        let mut opens = match subscribed {
            Ok(opens) => opens,
            Err(e) => {
                self.inner.services().remove(service);
                return Err(e.into());
            }
        };
        let host = self.clone();
        let name = service.to_owned();
        self.inner.tasks.spawn(async move {
            loop {
                let message = tokio::select! {
                    m = opens.next() => m,
                    () = host.inner.shutdown.cancelled() => None,
                    () = tx.closed() => None,
                };
                let Some(message) = message else { break };
                let span = tracing::info_span!(
                    "service.open",
                    otel.kind = "server",
                    service = name.as_str(),
                    accepted = tracing::field::Empty,
                );
                trace::follow(&span, &message);
                let reply = span.in_scope(|| host.offered(&tx, &message.payload));
                span.record("accepted", reply.accepted);
                let _ = host
                    .inner
                    .bus
                    .respond(&message, Bytes::from(reply.encode_to_vec()))
                    .instrument(span)
                    .await;
            }
            host.inner.services().remove(&name);
        });
        self.announce(HEARTBEAT_TTL).await;
        Ok(Incoming { rx })
    }

    /// Decides on a channel a gateway offers; registers it when accepted.
    fn offered(&self, tx: &mpsc::Sender<ServiceChannel>, payload: &[u8]) -> pb::OpenReply {
        let refuse = |reason: Reason, message: &str| pb::OpenReply {
            accepted: false,
            reason: reason as i32,
            message: message.to_owned(),
            ..Default::default()
        };
        let Ok(request) = pb::OpenRequest::decode(payload) else {
            return refuse(Reason::ProtocolError, "malformed OpenRequest");
        };
        let (Some(reference), Some(peer)) = (&request.channel, &request.peer) else {
            return refuse(Reason::ProtocolError, "OpenRequest without channel or peer");
        };
        let Ok(node_id) = <[u8; 33]>::try_from(peer.node_id.as_ref()) else {
            return refuse(Reason::ProtocolError, "bad node id");
        };
        if !subjects::valid_id(&reference.gateway) {
            return refuse(Reason::ProtocolError, "bad gateway id");
        }
        let Ok(permit) = tx.try_reserve() else {
            return refuse(Reason::Refused, "service overloaded");
        };
        let key = LinkKey::from_ref(reference);
        let subject = subjects::gateway_channels(&reference.gateway);
        // No credit until the gateway has registered its end and grants it.
        let (sender, receiver) =
            match self
                .inner
                .links
                .insert(&self.inner.bus, key, &reference.gateway, subject, 0)
            {
                Ok(link) => link,
                Err(e) => return refuse(Reason::Refused, &e.to_string()),
            };
        permit.send(ServiceChannel {
            peer: PeerInfo {
                node_id,
                address: peer.address.clone(),
                remote_addr: peer.remote_addr.clone(),
                gateway: reference.gateway.clone(),
                inbound: peer.inbound,
            },
            service: request.service,
            sender,
            receiver,
        });
        pb::OpenReply {
            accepted: true,
            instance: self.inner.instance.clone(),
            window: WINDOW,
            ..Default::default()
        }
    }

    /// [`ServiceHost::open`] for a peer whose connection was just announced or
    /// dialed: while the presence map does not list it yet
    /// ([`HostError::NotConnected`]), tries again, [`OPEN_NEW_ATTEMPTS`] times
    /// in all.
    pub async fn open_new(
        &self,
        node_id: &[u8; 33],
        service: &str,
        priority: u8,
    ) -> Result<ServiceChannel, HostError> {
        let mut attempt = 1;
        loop {
            match self.open(node_id, service, priority).await {
                Err(HostError::NotConnected(_)) if attempt < OPEN_NEW_ATTEMPTS => {
                    tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// One request and its answer on a new channel to `service` on the peer
    /// `node_id` (opened with [`ServiceHost::open_new`]), all within
    /// `timeout`: the request-answer exchange of most services.
    ///
    /// # Errors
    ///
    /// [`AskError`].
    pub async fn ask(
        &self,
        node_id: &[u8; 33],
        service: &str,
        priority: u8,
        request: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, AskError> {
        let exchange = async {
            let mut channel = self.open_new(node_id, service, priority).await?;
            channel.send(request).await?;
            let answer = channel.recv().await?.ok_or(AskError::NoAnswer)?;
            let _ = channel.finish().await;
            Ok(answer)
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| AskError::Timeout(timeout))?
    }

    /// Opens a channel to `service` on the connected peer `node_id`, through
    /// the gateway replica that holds its connection (from the presence
    /// map).
    pub async fn open(
        &self,
        node_id: &[u8; 33],
        service: &str,
        priority: u8,
    ) -> Result<ServiceChannel, HostError> {
        if !service_name::is_valid(service) {
            return Err(HostError::InvalidService(service.to_owned()));
        }
        let address = Address::of_node_id(node_id)
            .map(|a| a.to_string())
            .unwrap_or_default();
        let gateway = self
            .inner
            .presence
            .lookup(node_id)
            .await
            .map_err(|e| HostError::Presence(e.to_string()))?
            .ok_or_else(|| HostError::NotConnected(address.clone()))?;
        if !subjects::valid_id(&gateway) {
            return Err(HostError::Presence(format!("bad gateway id {gateway:?}")));
        }
        let request = pb::OpenOutbound {
            node_id: Bytes::copy_from_slice(node_id),
            service: service.to_owned(),
            priority: u32::from(priority),
            instance: self.inner.instance.clone(),
        };
        let reply = self
            .inner
            .bus
            .request(
                &subjects::gateway_open(&gateway),
                Bytes::from(request.encode_to_vec()),
                OPEN_TIMEOUT,
            )
            .await?;
        let reply = pb::OpenReply::decode(reply.payload)
            .map_err(|e| HostError::Malformed(e.to_string()))?;
        if !reply.accepted {
            return Err(HostError::Refused {
                reason: Reason::try_from(reply.reason).unwrap_or(Reason::Unspecified),
                message: reply.message,
            });
        }
        let reference = reply
            .channel
            .ok_or_else(|| HostError::Malformed("accepted without a channel".into()))?;
        let key = LinkKey::from_ref(&reference);
        let (sender, receiver) = self.inner.links.insert(
            &self.inner.bus,
            key,
            &gateway,
            subjects::gateway_channels(&gateway),
            i64::from(reply.window),
        )?;
        receiver.open_window().await;
        let seen = reply.peer.unwrap_or_default();
        Ok(ServiceChannel {
            peer: PeerInfo {
                node_id: *node_id,
                address,
                remote_addr: seen.remote_addr,
                gateway,
                inbound: seen.inbound,
            },
            service: service.to_owned(),
            sender,
            receiver,
        })
    }

    /// Asks one gateway replica to connect to `node_id` at `addr` and keep
    /// the connection (it answers at once if it holds a connection to the
    /// peer already, which it then keeps even if it was transient), within
    /// [`DIAL_TIMEOUT`]; returns the peer as that gateway sees it.
    pub async fn dial(&self, node_id: &[u8; 33], addr: SocketAddr) -> Result<pb::Peer, HostError> {
        self.dial_with(node_id, addr, false).await
    }

    /// [`dial`](Self::dial) for a short exchange: a connection this dial
    /// opens is transient (not one of the pool's peers) until someone
    /// dials it to keep it; let it go with a `Disconnect` whose
    /// `if_transient` is set.
    pub async fn dial_transient(
        &self,
        node_id: &[u8; 33],
        addr: SocketAddr,
    ) -> Result<pb::Peer, HostError> {
        self.dial_with(node_id, addr, true).await
    }

    async fn dial_with(
        &self,
        node_id: &[u8; 33],
        addr: SocketAddr,
        transient: bool,
    ) -> Result<pb::Peer, HostError> {
        let command = pb::GatewayCommand {
            command: Some(pb::gateway_command::Command::Dial(pb::Dial {
                node_id: Bytes::copy_from_slice(node_id),
                addr: addr.to_string(),
                transient,
            })),
        };
        let reply = self
            .inner
            .bus
            .request(
                subjects::GATEWAY_ANY_CMD,
                Bytes::from(command.encode_to_vec()),
                DIAL_TIMEOUT,
            )
            .await?;
        let reply = pb::CommandReply::decode(reply.payload)
            .map_err(|e| HostError::Malformed(e.to_string()))?;
        if !reply.error.is_empty() {
            return Err(HostError::Dial(reply.error));
        }
        reply
            .peer
            .ok_or_else(|| HostError::Malformed("dial answered without a peer".into()))
    }

    /// Sends `command` to every gateway replica (dial aside: [`dial`](Self::dial)
    /// asks one and waits): disconnect, ban, unban. Nothing is awaited.
    pub async fn broadcast(&self, command: pb::gateway_command::Command) -> Result<(), HostError> {
        let command = pb::GatewayCommand {
            command: Some(command),
        };
        self.inner
            .bus
            .publish(
                subjects::GATEWAY_ALL_CMD,
                Bytes::from(command.encode_to_vec()),
            )
            .await?;
        Ok(())
    }

    /// Leaves the bus: tells gateways at once (a heartbeat with TTL 0) and
    /// stops every task.
    pub async fn shutdown(&self) {
        self.announce(Duration::ZERO).await;
        let _ = self.inner.bus.flush().await;
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }
}
