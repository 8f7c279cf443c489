//! The pool's admin API over gRPC (`skywire.pool.v1.Pool`), with the
//! standard health service. Every error maps to a gRPC status in one place
//! ([`status`]); every request is bounded in size, time and concurrency.

use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use futures_util::Stream;
use skywire_identity::Address;
use skywire_proto::pool::v1::{self as api, pool_server};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic::{Request, Response, Status};

use crate::{BanReason, PeerView, Pool, PoolError};

/// Requests handled at once; more wait.
pub const MAX_CONCURRENT_REQUESTS: usize = 64;

/// Longest a unary request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest request accepted: a 4 MiB SWP/1 message plus room for the rest.
pub const MAX_REQUEST_SIZE: usize = 4 * 1024 * 1024 + 64 * 1024;

/// Inbound messages buffered per `Subscribe` stream before the service's
/// channels wait for the client to read (backpressure to the peers).
pub const SUBSCRIBE_BUFFER: usize = 256;

/// Peers returned by `ListPeers`.
pub const LIST_LIMIT: u32 = 10_000;

/// Longest ban an operator may set (a year); 0 means [`DEFAULT_BAN`].
pub const MAX_BAN: Duration = Duration::from_secs(365 * 24 * 3600);

/// Ban length when the request gives none.
pub const DEFAULT_BAN: Duration = Duration::from_secs(24 * 3600);

/// Maps a pool error to a gRPC status.
pub fn status(error: PoolError) -> Status {
    use skywire_bus::BusError;
    use skywire_service::HostError;
    match &error {
        PoolError::InvalidPeer { .. } => Status::invalid_argument(error.to_string()),
        PoolError::UnknownPeer(_) | PoolError::Discovery(skywire_dht::DhtError::NotFound(_)) => {
            Status::not_found(error.to_string())
        }
        PoolError::Discovery(_) => Status::unavailable(error.to_string()),
        PoolError::Store(crate::store::StoreError::Invalid { .. }) => {
            Status::invalid_argument(error.to_string())
        }
        PoolError::Store(crate::store::StoreError::NotFound { .. }) => {
            Status::not_found(error.to_string())
        }
        PoolError::Bus(BusError::NoResponders { .. })
        | PoolError::Host(HostError::Bus(BusError::NoResponders { .. })) => {
            Status::unavailable("no gateway is running")
        }
        PoolError::Bus(BusError::Timeout { .. })
        | PoolError::Host(HostError::Bus(BusError::Timeout { .. })) => {
            Status::deadline_exceeded(error.to_string())
        }
        PoolError::Host(HostError::NotConnected(_)) => {
            Status::failed_precondition(error.to_string())
        }
        PoolError::Host(HostError::InvalidService(_)) => {
            Status::invalid_argument(error.to_string())
        }
        PoolError::Host(HostError::AlreadyServed(_)) => Status::already_exists(error.to_string()),
        PoolError::Host(HostError::Refused { .. }) | PoolError::Gateway(_) | PoolError::Link(_) => {
            Status::aborted(error.to_string())
        }
        _ => {
            tracing::error!(error = %error, "admin request failed");
            Status::internal(error.to_string())
        }
    }
}

fn peer_to_api(view: PeerView) -> api::Peer {
    let stored = view.stored;
    api::Peer {
        address: stored.address,
        node_id: stored.node_id.to_vec().into(),
        endpoints: stored.endpoints,
        services: stored.services,
        last_seen_ms: stored.last_seen_ms,
        failures: stored.failures,
        score: stored.score,
        connected: view.connection.is_some(),
        banned_until_ms: stored.banned_until_ms.unwrap_or(0),
        ban_reason: stored.ban_reason.unwrap_or_default(),
        gateway: view.connection.map(|c| c.gateway).unwrap_or_default(),
    }
}

/// Parses `PUBKEY@HOST:PORT`.
fn parse_dial(peer: &str) -> Result<([u8; 33], SocketAddr), PoolError> {
    let invalid = |reason: &str| PoolError::InvalidPeer {
        input: peer.chars().take(128).collect(),
        reason: reason.to_owned(),
    };
    let (key, addr) = peer
        .split_once('@')
        .ok_or_else(|| invalid("expected PUBKEY@HOST:PORT"))?;
    let key: skywire_identity::PublicKey = key
        .parse()
        .map_err(|_| invalid("the public key is not 66 hex characters of a valid key"))?;
    let addr: SocketAddr = addr
        .parse()
        .map_err(|_| invalid("the address is not IP:PORT"))?;
    Ok((key.to_bytes(), addr))
}

/// The gRPC service over a [`Pool`].
#[derive(Debug, Clone)]
pub struct AdminService {
    pool: Pool,
    /// Ends `Subscribe` streams, so a graceful shutdown does not wait on
    /// them forever.
    shutdown: CancellationToken,
}

impl AdminService {
    /// Serves `pool` until `shutdown`.
    pub fn new(pool: Pool, shutdown: CancellationToken) -> Self {
        Self { pool, shutdown }
    }
}

type InboundStream = Pin<Box<dyn Stream<Item = Result<api::InboundMessage, Status>> + Send>>;

#[tonic::async_trait]
impl pool_server::Pool for AdminService {
    async fn dial(
        &self,
        request: Request<api::DialRequest>,
    ) -> Result<Response<api::DialResponse>, Status> {
        let peer = &request.get_ref().peer;
        let connection = match peer.parse::<Address>() {
            Ok(address) if !peer.contains('@') => {
                self.pool.dial_address(&address).await.map_err(status)?
            }
            _ => {
                let (node_id, addr) = parse_dial(peer).map_err(status)?;
                self.pool.dial(&node_id, addr).await.map_err(status)?
            }
        };
        let node_id: [u8; 33] = connection
            .node_id
            .as_ref()
            .try_into()
            .map_err(|_| Status::internal("the gateway answered a bad node id"))?;
        // The store learns of the connection from the gateway's event, maybe
        // not yet: the connection itself is what the gateway answered.
        let peer = self
            .pool
            .store()
            .get(&node_id)
            .await
            .map_err(|e| status(e.into()))?
            .map(|stored| {
                peer_to_api(PeerView {
                    stored,
                    connection: Some(connection),
                })
            });
        Ok(Response::new(api::DialResponse { peer }))
    }

    async fn disconnect(
        &self,
        request: Request<api::DisconnectRequest>,
    ) -> Result<Response<api::DisconnectResponse>, Status> {
        let node_id = self
            .pool
            .resolve(&request.get_ref().peer)
            .await
            .map_err(status)?;
        self.pool.disconnect(&node_id).await.map_err(status)?;
        Ok(Response::new(api::DisconnectResponse {}))
    }

    async fn list_peers(
        &self,
        _request: Request<api::ListPeersRequest>,
    ) -> Result<Response<api::ListPeersResponse>, Status> {
        let peers = self.pool.peers(LIST_LIMIT).await.map_err(status)?;
        Ok(Response::new(api::ListPeersResponse {
            peers: peers.into_iter().map(peer_to_api).collect(),
        }))
    }

    async fn ban(
        &self,
        request: Request<api::BanRequest>,
    ) -> Result<Response<api::BanResponse>, Status> {
        let request = request.into_inner();
        let node_id = self.pool.resolve(&request.peer).await.map_err(status)?;
        let duration = match request.duration_secs {
            0 => DEFAULT_BAN,
            secs => Duration::from_secs(secs).min(MAX_BAN),
        };
        let reason = if request.reason.is_empty() {
            "banned by the operator".to_owned()
        } else {
            request.reason
        };
        self.pool
            .ban(&node_id, BanReason::Operator(duration), &reason)
            .await
            .map_err(status)?;
        Ok(Response::new(api::BanResponse {}))
    }

    async fn unban(
        &self,
        request: Request<api::UnbanRequest>,
    ) -> Result<Response<api::UnbanResponse>, Status> {
        let node_id = self
            .pool
            .resolve(&request.get_ref().peer)
            .await
            .map_err(status)?;
        self.pool.unban(&node_id).await.map_err(status)?;
        Ok(Response::new(api::UnbanResponse {}))
    }

    async fn send(
        &self,
        request: Request<api::SendRequest>,
    ) -> Result<Response<api::SendResponse>, Status> {
        let request = request.into_inner();
        let node_id = self.pool.resolve(&request.peer).await.map_err(status)?;
        self.pool
            .send(&node_id, &request.service, request.message)
            .await
            .map_err(status)?;
        Ok(Response::new(api::SendResponse {}))
    }

    type SubscribeStream = InboundStream;

    async fn subscribe(
        &self,
        request: Request<api::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let service = request.into_inner().service;
        let mut incoming = self.pool.subscribe(&service).await.map_err(status)?;
        let (tx, rx) = mpsc::channel(SUBSCRIBE_BUFFER);
        let stop = self.shutdown.clone();
        tokio::spawn(async move {
            loop {
                let channel = tokio::select! {
                    c = incoming.next() => c,
                    () = tx.closed() => None,
                    () = stop.cancelled() => None,
                };
                let Some(mut channel) = channel else { break };
                let tx = tx.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    let peer = channel.peer().clone();
                    let service = channel.service().to_owned();
                    loop {
                        // `recv` is cancel-safe.
                        let message = tokio::select! {
                            m = channel.recv() => m,
                            () = stop.cancelled() => break,
                            () = tx.closed() => break,
                        };
                        let Ok(Some(message)) = message else { break };
                        let inbound = api::InboundMessage {
                            address: peer.address.clone(),
                            node_id: peer.node_id.to_vec().into(),
                            service: service.clone(),
                            message,
                        };
                        // Waits while the client is slow: the peer's channel
                        // gets no credit meanwhile.
                        if tx.send(Ok(inbound)).await.is_err() {
                            break;
                        }
                    }
                });
            }
            // Dropping `incoming` here stops serving the service.
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Serves the admin API (and `grpc.health.v1`) on `listener` until
/// `shutdown`.
pub async fn serve(
    listener: TcpListener,
    pool: Pool,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let routes = routes(pool, shutdown.clone()).await;
    serve_routes(listener, routes, shutdown).await
}

/// The pool's routes (its API and gRPC health), to serve alone
/// ([`serve`]) or beside other services' ([`serve_routes`]).
pub async fn routes(pool: Pool, shutdown: CancellationToken) -> Routes {
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<pool_server::PoolServer<AdminService>>()
        .await;
    let admin = pool_server::PoolServer::new(AdminService::new(pool, shutdown))
        .max_decoding_message_size(MAX_REQUEST_SIZE);
    Routes::new(health_service).add_service(admin)
}

/// Serves `routes` on `listener` with the admin endpoint's limits
/// ([`MAX_CONCURRENT_REQUESTS`] per connection, [`REQUEST_TIMEOUT`]) until
/// `shutdown`.
pub async fn serve_routes(
    listener: TcpListener,
    routes: Routes,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .concurrency_limit_per_connection(MAX_CONCURRENT_REQUESTS)
        .timeout(REQUEST_TIMEOUT)
        .add_routes(routes)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown.cancelled_owned())
        .await
}
