//! Channels between peers and service instances.
//!
//! Each bridged channel runs two pumps: peer → service reads the SWP/1
//! channel only while the link has credit (so a slow service slows the peer
//! through SWP/1 flow control), and service → peer writes to the SWP/1
//! channel, whose `send` waits for the peer's credit before the link grants
//! the instance more. A reset on either side resets the other.
//!
//! Tracing: a peer's open runs in a `gateway.open` span (the `OpenRequest`
//! carries it to the instance), each message from the peer is published in
//! its own `gateway.forward` span (the link's bus headers carry it to the
//! service, whose handler can follow it), and each message from the service
//! is written to the peer in a `gateway.deliver` span following the
//! service's. Without a subscriber interested in them these are disabled
//! `tracing` spans: nothing is allocated for them per message.
//!
//! Metrics: a bridged channel counts in `skywire_gateway_channels` while
//! either pump runs. Each message forwarded counts its payload bytes and its
//! data frames on the bus (pieces of at most [`FRAGMENT`] bytes) under its
//! service (or `"other"`) and direction (`in`: from the peer). A message a
//! pump holds until the other side takes it counts in its queue's depth
//! ([`QUEUE_TO_SERVICE`], [`QUEUE_TO_PEER`]); each pump holds at most one,
//! so these show how many channels wait on a slow service or a slow peer.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prost::Message as _;
use skywire_bus::{BusError, subjects};
use skywire_proto::bus::v1 as pb;
use skywire_proto::service_name;
use skywire_service::link::{FRAGMENT, LinkKey, LinkReceiver, LinkSender, WINDOW};
use skywire_telemetry::metrics::{Direction, Gauge, GaugeGuard, ServiceLabel, Traffic};
use skywire_wire::driver::{ChannelReceiver, ChannelSender};
use skywire_wire::{Channel, Connection, IncomingChannel, Reason};
use tracing::Instrument as _;

use crate::Inner;

/// How long a service instance may take to accept a channel.
pub const SERVICE_OPEN_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a peer may take to accept a channel a service opens.
pub const PEER_OPEN_TIMEOUT: Duration = Duration::from_secs(8);

/// `queue` label: messages read from peers that wait to reach their service
/// instance, for the link's credit (the service is slower than its peers),
/// then while they are published on the bus.
pub const QUEUE_TO_SERVICE: &str = "to_service";

/// `queue` label: messages from service instances that wait for room in the
/// peer's SWP/1 send buffers (the peer reads slower than its services send,
/// or withholds credit).
pub const QUEUE_TO_PEER: &str = "to_peer";

/// Offers a peer's channel to the service's instances and bridges it to the
/// one that accepts.
pub(crate) async fn inbound(inner: Arc<Inner>, conn: Connection, incoming: IncomingChannel) {
    let peer = inner.peer(&conn);
    let span = tracing::info_span!(
        "gateway.open",
        otel.kind = "client",
        service = incoming.service(),
        peer = peer.address.as_str(),
        connection = conn.id(),
        channel = incoming.key().get(),
    );
    let opened = open(&inner, &conn, incoming, peer).instrument(span).await;
    if let Some((channel, link_tx, link_rx)) = opened {
        run(inner, channel, link_tx, link_rx).await;
    }
}

/// The open handshake of [`inbound`]: asks the service, registers the link,
/// accepts the peer's channel and grants the instance its window. `None`
/// when the channel was rejected or reset.
async fn open(
    inner: &Arc<Inner>,
    conn: &Connection,
    incoming: IncomingChannel,
    peer: pb::Peer,
) -> Option<(Channel, LinkSender, LinkReceiver)> {
    let service = incoming.service().to_owned();
    let key = LinkKey {
        gateway: inner.id.clone(),
        connection: conn.id(),
        channel: incoming.key().get(),
    };
    let request = pb::OpenRequest {
        channel: Some(key.to_ref()),
        peer: Some(peer),
        service: service.clone(),
        priority: u32::from(incoming.priority()),
    };
    let asked = inner
        .bus
        .request(
            &subjects::service_open(&service),
            Bytes::from(request.encode_to_vec()),
            SERVICE_OPEN_TIMEOUT,
        )
        .await;
    let reply = match asked.map(|m| pb::OpenReply::decode(m.payload)) {
        Ok(Ok(reply)) => reply,
        Ok(Err(e)) => {
            tracing::warn!(%service, error = %e, "malformed OpenReply");
            incoming.reject(Reason::ServiceUnavailable, "service answered nonsense");
            return None;
        }
        Err(BusError::NoResponders { .. }) => {
            incoming.reject(Reason::ServiceUnavailable, "service is down");
            return None;
        }
        Err(e) => {
            tracing::warn!(%service, error = %e, "service did not take the channel");
            incoming.reject(Reason::ServiceUnavailable, "service did not answer");
            return None;
        }
    };
    if !reply.accepted {
        incoming.reject(reject_reason(reply.reason), &reply.message);
        return None;
    }
    if !subjects::valid_id(&reply.instance) {
        incoming.reject(Reason::ServiceUnavailable, "service answered nonsense");
        return None;
    }
    let link = inner.links.insert(
        &inner.bus,
        key,
        &reply.instance,
        subjects::instance_channels(&reply.instance),
        i64::from(reply.window),
    );
    let (mut link_tx, link_rx) = match link {
        Ok(link) => link,
        Err(e) => {
            incoming.reject(Reason::TooManyChannels, &e.to_string());
            return None;
        }
    };
    let channel = match incoming.accept() {
        Ok(channel) => channel,
        Err(e) => {
            link_tx
                .reset(Reason::Normal, &format!("peer went: {e}"))
                .await;
            return None;
        }
    };
    link_rx.open_window().await;
    Some((channel, link_tx, link_rx))
}

/// Only these reasons are valid in a `Reject` (SWP1.md section 5).
fn reject_reason(reason: i32) -> Reason {
    match Reason::try_from(reason) {
        Ok(
            r @ (Reason::UnknownService
            | Reason::TooManyChannels
            | Reason::Refused
            | Reason::ServiceUnavailable),
        ) => r,
        _ => Reason::Refused,
    }
}

/// One direction of a bridged channel, as metered: the traffic counters of
/// its service and direction, and the depth of the queue its messages wait
/// in.
struct Meter {
    traffic: Traffic,
    queue: Gauge,
}

impl Meter {
    fn new(
        inner: &Inner,
        service: &ServiceLabel,
        direction: Direction,
        queue: &'static str,
    ) -> Self {
        Self {
            traffic: inner.metrics.traffic(service, direction),
            queue: inner.metrics.queue(queue),
        }
    }

    /// Counts one message in the queue until the guard drops.
    fn waiting(&self) -> GaugeGuard {
        GaugeGuard::new(&self.queue)
    }

    /// Counts a message of `len` bytes forwarded.
    fn forwarded(&self, len: usize) {
        self.traffic.record(len as u64, bus_frames(len));
    }
}

/// Data frames a message of `len` bytes takes on the bus: the link sends it
/// in pieces of at most [`FRAGMENT`] bytes, an empty message in one.
fn bus_frames(len: usize) -> u64 {
    len.div_ceil(FRAGMENT).max(1) as u64
}

/// Runs both pumps of a bridged channel until both directions are done.
async fn run(inner: Arc<Inner>, channel: Channel, link_tx: LinkSender, link_rx: LinkReceiver) {
    let service: Arc<str> = Arc::from(channel.service());
    let label = inner.known.label(&service);
    let inbound = Meter::new(&inner, &label, Direction::In, QUEUE_TO_SERVICE);
    let outbound = Meter::new(&inner, &label, Direction::Out, QUEUE_TO_PEER);
    // Open while either pump runs.
    let open = Arc::new(GaugeGuard::new(&inner.metrics.channels));
    let (wire_tx, wire_rx) = channel.split();
    let (held, name) = (open.clone(), service.clone());
    inner.tasks.spawn(async move {
        to_service(&name, wire_rx, link_tx, &inbound).await;
        drop(held);
    });
    to_peer(&service, link_rx, wire_tx, &outbound).await;
    drop(open);
}

async fn to_service(service: &str, mut wire: ChannelReceiver, mut link: LinkSender, meter: &Meter) {
    loop {
        match wire.recv().await {
            Ok(Some(message)) => {
                let len = message.len();
                // Current while the link publishes: the bus headers carry it.
                let span = tracing::info_span!(
                    "gateway.forward",
                    otel.kind = "producer",
                    service,
                    bytes = len,
                );
                let waiting = meter.waiting();
                let sent = link.send(message).instrument(span).await;
                drop(waiting);
                if sent.is_err() {
                    // The service side is gone; `to_peer` resets the channel.
                    return;
                }
                meter.forwarded(len);
            }
            Ok(None) => {
                let _ = link.finish().await;
                return;
            }
            Err(e) => {
                link.reset(Reason::Normal, &format!("peer side: {e}")).await;
                return;
            }
        }
    }
}

async fn to_peer(service: &str, mut link: LinkReceiver, mut wire: ChannelSender, meter: &Meter) {
    loop {
        match link.recv().await {
            Ok(Some(message)) => {
                let len = message.len();
                let span = tracing::info_span!(
                    "gateway.deliver",
                    otel.kind = "consumer",
                    service,
                    bytes = len,
                );
                link.follow(&span);
                let waiting = meter.waiting();
                let sent = wire.send(message).instrument(span).await;
                drop(waiting);
                if sent.is_err() {
                    // The peer reset or left; `to_service` tells the service.
                    return;
                }
                meter.forwarded(len);
            }
            Ok(None) => {
                let _ = wire.finish();
                return;
            }
            Err(skywire_service::LinkError::Reset { reason, message }) => {
                let _ = wire.reset(reason, &message);
                return;
            }
            Err(e) => {
                let _ = wire.reset(Reason::Internal, &e.to_string());
                return;
            }
        }
    }
}

/// Serves `sw.gw.<id>.open`: services opening channels to peers connected
/// here.
pub(crate) async fn spawn_outbound(inner: &Arc<Inner>) -> Result<(), BusError> {
    let mut requests = inner
        .bus
        .subscribe(&subjects::gateway_open(&inner.id))
        .await?;
    let task = inner.clone();
    inner.tasks.spawn(async move {
        loop {
            let message = tokio::select! {
                m = requests.next() => m,
                () = task.shutdown.cancelled() => None,
            };
            let Some(message) = message else { break };
            let inner = task.clone();
            task.tasks.spawn(async move {
                let reply = outbound(&inner, &message.payload).await;
                let _ = inner
                    .bus
                    .respond(&message, Bytes::from(reply.encode_to_vec()))
                    .await;
            });
        }
    });
    Ok(())
}

/// Opens the channel a service asked for; the link starts without credit
/// until the instance registers its end and grants it.
async fn outbound(inner: &Arc<Inner>, payload: &[u8]) -> pb::OpenReply {
    let refuse = |reason: Reason, message: &str| pb::OpenReply {
        accepted: false,
        reason: reason as i32,
        message: message.to_owned(),
        ..Default::default()
    };
    let Ok(request) = pb::OpenOutbound::decode(payload) else {
        return refuse(Reason::ProtocolError, "malformed OpenOutbound");
    };
    if !subjects::valid_id(&request.instance) || !service_name::is_valid(&request.service) {
        return refuse(Reason::ProtocolError, "bad instance or service name");
    }
    let Ok(key) = secp256k1::PublicKey::from_slice(&request.node_id) else {
        return refuse(Reason::ProtocolError, "bad node id");
    };
    let Some(conn) = inner.node().and_then(|n| n.connection(&key)) else {
        return refuse(Reason::Refused, "peer not connected here");
    };
    let priority = u8::try_from(request.priority).unwrap_or(u8::MAX);
    let opened =
        tokio::time::timeout(PEER_OPEN_TIMEOUT, conn.open(&request.service, priority)).await;
    let channel = match opened {
        Ok(Ok(channel)) => channel,
        Ok(Err(e)) => return refuse(Reason::Refused, &e.to_string()),
        Err(_) => return refuse(Reason::Timeout, "peer did not answer"),
    };
    let link_key = LinkKey {
        gateway: inner.id.clone(),
        connection: conn.id(),
        channel: channel.key().get(),
    };
    let link = inner.links.insert(
        &inner.bus,
        link_key.clone(),
        &request.instance,
        subjects::instance_channels(&request.instance),
        0,
    );
    let (link_tx, link_rx) = match link {
        Ok(link) => link,
        Err(e) => return refuse(Reason::TooManyChannels, &e.to_string()),
    };
    let bridged = inner.clone();
    inner
        .tasks
        .spawn(async move { run(bridged, channel, link_tx, link_rx).await });
    pb::OpenReply {
        accepted: true,
        channel: Some(link_key.to_ref()),
        window: WINDOW,
        peer: Some(inner.peer(&conn)),
        ..Default::default()
    }
}
