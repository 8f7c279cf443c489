//! The chain's gRPC API, `skywire.chain.v1.ChainApi` (`proto/skywire/chain/v1/api.proto`):
//! status, blocks, transactions, balances and unspent outputs, and submitting a signed
//! transaction. Served on the node's admin endpoint, or on the chain service's own in a
//! cluster; `skywire chain status` and `skywire wallet` are its clients.

use skywire_coin::ux::total_coin_hours;
use skywire_coin::{Decode, Encode, Hash, SignedBlock, Transaction, UxBody, UxHead, UxOut};
use skywire_identity::Address;
use skywire_proto::chain::v1 as pb;
use skywire_proto::chain::v1::chain_api_server::{ChainApi, ChainApiServer};
use tonic::{Request, Response, Status};

use crate::service::{ChainService, ServiceError};
use crate::store::{MAX_UNSPENT_PER_CALL, StoreError};

/// Most outputs [`ChainApi::get_unspent`] returns.
pub const MAX_UNSPENT_LISTED: u32 = 1000;

/// The API over a running [`ChainService`].
#[derive(Clone)]
pub struct ChainApiService {
    service: ChainService,
}

impl ChainApiService {
    /// The API over `service`.
    pub fn new(service: ChainService) -> Self {
        Self { service }
    }
}

/// The gRPC server of `service`, to add to a tonic router.
pub fn server(service: ChainService) -> ChainApiServer<ChainApiService> {
    ChainApiServer::new(ChainApiService::new(service))
}

fn store_status(error: StoreError) -> Status {
    tracing::warn!(%error, "chain store failed");
    Status::unavailable("the chain store failed")
}

/// The gRPC status of a refused submission: the client's fault
/// (`FAILED_PRECONDITION`, `ALREADY_EXISTS`, `RESOURCE_EXHAUSTED`) or ours.
fn submit_status(error: ServiceError) -> Status {
    use crate::mempool::MempoolError;
    match &error {
        ServiceError::Store(_) | ServiceError::Host(_) | ServiceError::Bus(_) => {
            tracing::warn!(%error, "submission failed");
            Status::unavailable(error.to_string())
        }
        ServiceError::Mempool(MempoolError::Duplicate { .. }) | ServiceError::Confirmed(_) => {
            Status::already_exists(error.to_string())
        }
        ServiceError::Mempool(MempoolError::PoolFull { .. }) => {
            Status::resource_exhausted(error.to_string())
        }
        _ => Status::failed_precondition(error.to_string()),
    }
}

fn hash(bytes: &[u8], what: &str) -> Result<Hash, Status> {
    <[u8; 32]>::try_from(bytes)
        .map(Hash)
        .map_err(|_| Status::invalid_argument(format!("{what}: 32 bytes expected")))
}

fn address(text: &str) -> Result<Address, Status> {
    text.parse()
        .map_err(|e| Status::invalid_argument(format!("bad address {text:?}: {e}")))
}

/// An unspent output as the API lists it.
pub fn unspent_to_proto(ux: &UxOut) -> pb::UnspentOutput {
    pb::UnspentOutput {
        uxid: ux.hash().0.to_vec().into(),
        time: ux.head.time,
        block_seq: ux.head.bk_seq,
        src_transaction: ux.body.src_transaction.0.to_vec().into(),
        address: ux.body.address.to_string(),
        coins: ux.body.coins,
        hours: ux.body.hours,
    }
}

/// An unspent output rebuilt from the API's listing, checked against its id.
///
/// # Errors
///
/// A field that does not parse, or an id that is not the output's.
pub fn unspent_from_proto(output: &pb::UnspentOutput) -> Result<UxOut, String> {
    let src = <[u8; 32]>::try_from(output.src_transaction.as_ref())
        .map_err(|_| "src_transaction: 32 bytes expected".to_owned())?;
    let ux = UxOut {
        head: UxHead {
            time: output.time,
            bk_seq: output.block_seq,
        },
        body: UxBody {
            src_transaction: Hash(src),
            address: output
                .address
                .parse()
                .map_err(|e| format!("address {:?}: {e}", output.address))?,
            coins: output.coins,
            hours: output.hours,
        },
    };
    if ux.hash().0.as_slice() != output.uxid.as_ref() {
        return Err(format!("output {} does not hash to its id", ux.hash()));
    }
    Ok(ux)
}

#[tonic::async_trait]
impl ChainApi for ChainApiService {
    async fn status(
        &self,
        _request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let status = self.service.status().await.map_err(store_status)?;
        let params = self.service.chain().params();
        let head = status
            .head
            .ok_or_else(|| Status::unavailable("no chain yet"))?;
        Ok(Response::new(pb::StatusResponse {
            head_seq: head.seq,
            head_hash: head.hash.0.to_vec().into(),
            head_time: status.head_time.unwrap_or_default(),
            best_header: status.sync.best_header.unwrap_or(head.seq).max(head.seq),
            best_claimed: status.sync.best_claimed.unwrap_or_default(),
            in_flight: status.sync.in_flight,
            peers: u32::try_from(status.peers).unwrap_or(u32::MAX),
            mempool_transactions: u32::try_from(status.mempool_transactions).unwrap_or(u32::MAX),
            orphans: u32::try_from(status.orphans).unwrap_or(u32::MAX),
            publisher: status.publisher,
            publisher_fault: status
                .sync
                .publisher_fault
                .map(|fault| format!("{fault:?}"))
                .unwrap_or_default(),
            burn_factor: params.burn_factor,
            max_droplet_precision: u32::from(params.max_droplet_precision),
        }))
    }

    async fn get_block(
        &self,
        request: Request<pb::GetBlockRequest>,
    ) -> Result<Response<pb::GetBlockResponse>, Status> {
        let store = self.service.chain().store();
        let block: Option<SignedBlock> = match &request.get_ref().by {
            Some(pb::get_block_request::By::Seq(seq)) => {
                store.block_by_seq(*seq).await.map_err(store_status)?
            }
            Some(pb::get_block_request::By::Hash(bytes)) => store
                .block_by_hash(&hash(bytes, "hash")?)
                .await
                .map_err(store_status)?,
            None => return Err(Status::invalid_argument("seq or hash required")),
        };
        let block = block.ok_or_else(|| Status::not_found("no such block"))?;
        Ok(Response::new(pb::GetBlockResponse {
            hash: block.block.hash().0.to_vec().into(),
            block: Encode::encode(&block)
                .map_err(|e| Status::internal(e.to_string()))?
                .into(),
        }))
    }

    async fn get_transaction(
        &self,
        request: Request<pb::GetTransactionRequest>,
    ) -> Result<Response<pb::GetTransactionResponse>, Status> {
        let txid = hash(&request.get_ref().txid, "txid")?;
        let stored = self
            .service
            .chain()
            .store()
            .transaction(&txid)
            .await
            .map_err(store_status)?;
        let (tx, confirmed, block_seq) = match stored {
            Some((tx, seq)) => (tx, true, seq),
            None => (
                self.service
                    .pooled(&txid)
                    .ok_or_else(|| Status::not_found("no such transaction"))?,
                false,
                0,
            ),
        };
        Ok(Response::new(pb::GetTransactionResponse {
            transaction: Encode::encode(&tx)
                .map_err(|e| Status::internal(e.to_string()))?
                .into(),
            confirmed,
            block_seq,
        }))
    }

    async fn get_balance(
        &self,
        request: Request<pb::AddressRequest>,
    ) -> Result<Response<pb::BalanceResponse>, Status> {
        let address = address(&request.get_ref().address)?;
        let store = self.service.chain().store();
        let head = store
            .head()
            .await
            .map_err(store_status)?
            .ok_or_else(|| Status::unavailable("no chain yet"))?;
        let balance = store.balance(&address).await.map_err(store_status)?;
        let outputs = store
            .unspent_by_address(&address, MAX_UNSPENT_PER_CALL)
            .await
            .map_err(store_status)?;
        let hours = total_coin_hours(&outputs, head.header.time)
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(pb::BalanceResponse {
            coins: balance.coins,
            hours,
            outputs: balance.outputs,
        }))
    }

    async fn get_unspent(
        &self,
        request: Request<pb::AddressRequest>,
    ) -> Result<Response<pb::UnspentResponse>, Status> {
        let address = address(&request.get_ref().address)?;
        let store = self.service.chain().store();
        let head = store
            .head()
            .await
            .map_err(store_status)?
            .ok_or_else(|| Status::unavailable("no chain yet"))?;
        let outputs = store
            .unspent_by_address(&address, MAX_UNSPENT_LISTED)
            .await
            .map_err(store_status)?;
        Ok(Response::new(pb::UnspentResponse {
            outputs: outputs.iter().map(unspent_to_proto).collect(),
            head_time: head.header.time,
        }))
    }

    async fn submit(
        &self,
        request: Request<pb::SubmitRequest>,
    ) -> Result<Response<pb::SubmitResponse>, Status> {
        let tx = Transaction::decode_exact(&request.get_ref().transaction)
            .map_err(|e| Status::invalid_argument(format!("transaction: {e}")))?;
        let txid = self.service.submit(tx).await.map_err(submit_status)?;
        Ok(Response::new(pb::SubmitResponse {
            txid: txid.0.to_vec().into(),
        }))
    }
}
