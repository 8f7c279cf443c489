//! The DHT's API: gRPC `skywire.dht.v1.Discovery` (`proto/skywire/dht/v1/
//! api.proto`) on the node's admin endpoint, and the same Resolve on the bus
//! ([`RESOLVE_SUBJECT`]) for the node's own services, such as the pool
//! dialing a peer by address.

use std::time::Duration;

use bytes::Bytes;
use prost::Message as _;
use skywire_bus::{Bus, BusError};
use skywire_identity::Address;
use skywire_proto::dht::v1 as pb;
use skywire_proto::dht::v1::discovery_server::{Discovery, DiscoveryServer};
use tonic::{Request, Response, Status};

use crate::service::{Dht, DhtError};

/// The bus subject of Resolve: a `ResolveRequest`, answered with a
/// `BusResolveReply`.
pub const RESOLVE_SUBJECT: &str = "sw.dht.resolve";

/// The bus subject of the node's own record, as its DHT signed it: an
/// empty request, answered with a `BusResolveReply`. Other services (peer
/// exchange) give it out; only the DHT signs it, so sequence numbers never
/// clash.
pub const RECORD_SUBJECT: &str = "sw.dht.record";

/// How long a caller of [`own_record_on_bus`] waits: the answer needs no
/// network.
pub const RECORD_TIMEOUT: Duration = Duration::from_secs(5);

/// The queue group of the DHT instances answering [`RESOLVE_SUBJECT`] and
/// [`RECORD_SUBJECT`].
pub const RESOLVE_GROUP: &str = "dht";

/// How long a caller of [`resolve_on_bus`] waits: a lookup asks a handful
/// of nodes in turn, each within the DHT's request timeout.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(30);

/// The gRPC status of a DHT error.
pub fn status(error: DhtError) -> Status {
    match &error {
        DhtError::NotFound(_) => Status::not_found(error.to_string()),
        DhtError::InvalidService(_) => Status::invalid_argument(error.to_string()),
        DhtError::Record(_) => Status::failed_precondition(error.to_string()),
        _ => Status::unavailable(error.to_string()),
    }
}

fn address(text: &str) -> Result<Address, Status> {
    text.parse()
        .map_err(|e| Status::invalid_argument(format!("bad address {text:?}: {e}")))
}

/// The Discovery service over a [`Dht`].
#[derive(Clone)]
pub struct DiscoveryService {
    dht: Dht,
}

/// The gRPC server of `dht`, to add to a tonic router.
pub fn server(dht: Dht) -> DiscoveryServer<DiscoveryService> {
    DiscoveryServer::new(DiscoveryService { dht })
}

#[tonic::async_trait]
impl Discovery for DiscoveryService {
    async fn resolve(
        &self,
        request: Request<pb::ResolveRequest>,
    ) -> Result<Response<pb::ResolveResponse>, Status> {
        let address = address(&request.get_ref().address)?;
        let record = self.dht.resolve(&address).await.map_err(status)?;
        Ok(Response::new(pb::ResolveResponse {
            record: Some(record.to_proto()),
        }))
    }

    async fn find_providers(
        &self,
        request: Request<pb::FindProvidersRequest>,
    ) -> Result<Response<pb::FindProvidersResponse>, Status> {
        let providers = self
            .dht
            .find_providers(&request.get_ref().service)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::FindProvidersResponse {
            providers: providers.iter().map(|r| r.to_proto()).collect(),
        }))
    }

    async fn announce(
        &self,
        request: Request<pb::AnnounceRequest>,
    ) -> Result<Response<pb::AnnounceResponse>, Status> {
        let stored = self
            .dht
            .announce(&request.get_ref().service)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::AnnounceResponse {
            stored: u32::try_from(stored).unwrap_or(u32::MAX),
        }))
    }
}

/// Resolve requests from the bus answered at once; the next waits (in the
/// subscription's bounded backlog) for one to finish. Each is a lookup of a
/// handful of requests; the node's own services rarely need more.
pub const MAX_BUS_RESOLVES: usize = 16;

/// Answers Resolve requests on the bus until the subscription ends (the
/// bus closes) or the DHT stops; each request is answered by its own task
/// of the DHT's, at most [`MAX_BUS_RESOLVES`] at once.
pub async fn serve_bus(dht: Dht, bus: Bus) -> Result<(), BusError> {
    let mut requests = bus.queue_subscribe(RESOLVE_SUBJECT, RESOLVE_GROUP).await?;
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_BUS_RESOLVES));
    while let Some(message) = requests.next().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let (answering, bus) = (dht.clone(), bus.clone());
        dht.spawn(async move {
            let _slot = slot;
            let dht = answering;
            let resolved = match pb::ResolveRequest::decode(message.payload.clone()) {
                Ok(request) => match request.address.parse::<Address>() {
                    Ok(address) => dht.resolve(&address).await,
                    Err(e) => Err(DhtError::Unavailable(format!("bad address: {e}"))),
                },
                Err(e) => Err(DhtError::Unavailable(format!("malformed request: {e}"))),
            };
            let reply = match resolved {
                Ok(record) => pb::BusResolveReply {
                    record: Some(record.to_proto()),
                    ..Default::default()
                },
                Err(e) => pb::BusResolveReply {
                    record: None,
                    not_found: matches!(e, DhtError::NotFound(_)),
                    error: e.to_string(),
                },
            };
            let _ = bus
                .respond(&message, Bytes::from(reply.encode_to_vec()))
                .await;
        });
    }
    Ok(())
}

/// Answers [`RECORD_SUBJECT`] with the DHT's current record until the
/// subscription ends (the bus closes).
pub async fn serve_own_record(dht: Dht, bus: Bus) -> Result<(), BusError> {
    let mut requests = bus.queue_subscribe(RECORD_SUBJECT, RESOLVE_GROUP).await?;
    while let Some(message) = requests.next().await {
        let reply = pb::BusResolveReply {
            record: Some(dht.record().to_proto()),
            ..Default::default()
        };
        let _ = bus
            .respond(&message, Bytes::from(reply.encode_to_vec()))
            .await;
    }
    Ok(())
}

/// Asks the node's DHT, over the bus, for the node's own record (verified
/// again here).
///
/// # Errors
///
/// [`DhtError::Unavailable`] if no DHT answers;
/// [`DhtError::Record`] for a record that fails verification.
pub async fn own_record_on_bus(bus: &Bus) -> Result<skywire_record::NodeRecord, DhtError> {
    let reply = bus
        .request(RECORD_SUBJECT, Bytes::new(), RECORD_TIMEOUT)
        .await
        .map_err(|e| DhtError::Unavailable(e.to_string()))?;
    bus_record(reply.payload, "own record")
}

/// The verified record of a `BusResolveReply`.
fn bus_record(payload: Bytes, asked: &str) -> Result<skywire_record::NodeRecord, DhtError> {
    let reply = pb::BusResolveReply::decode(payload)
        .map_err(|e| DhtError::Unavailable(format!("malformed reply: {e}")))?;
    let Some(record) = reply.record else {
        return Err(if reply.not_found {
            DhtError::NotFound(asked.to_owned())
        } else {
            DhtError::Unavailable(reply.error)
        });
    };
    Ok(skywire_record::NodeRecord::verify(
        &record,
        skywire_record::now_ms(),
    )?)
}

/// Asks the node's DHT, over the bus, for the record of `address`; the
/// record is verified again here (the bus is trusted, records never are).
///
/// # Errors
///
/// [`DhtError::NotFound`] if no node knows the address;
/// [`DhtError::Unavailable`] if no DHT answers or it failed;
/// [`DhtError::Record`] for a record that fails verification.
pub async fn resolve_on_bus(
    bus: &Bus,
    address: &Address,
) -> Result<skywire_record::NodeRecord, DhtError> {
    let request = pb::ResolveRequest {
        address: address.to_string(),
    };
    let reply = bus
        .request(
            RESOLVE_SUBJECT,
            Bytes::from(request.encode_to_vec()),
            RESOLVE_TIMEOUT,
        )
        .await
        .map_err(|e| DhtError::Unavailable(e.to_string()))?;
    let record = bus_record(reply.payload, &address.to_string())?;
    if record.address() != *address {
        return Err(DhtError::Unavailable(
            "the DHT answered with another node's record".into(),
        ));
    }
    Ok(record)
}
