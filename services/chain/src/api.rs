//! The chain's gRPC API, `skywire.chain.v1.ChainApi` (`proto/skywire/chain/v1/api.proto`):
//! status, blocks, transactions, balances and unspent outputs, and submitting a signed
//! transaction. Served on the node's admin endpoint, or on the chain service's own in a
//! cluster; `skywire chain status` and `skywire wallet` are its clients.

use skywire_coin::{Decode, Encode, Hash, Transaction, UxBody, UxHead, UxOut};
use skywire_identity::Address;
use skywire_proto::chain::v1 as pb;
use skywire_proto::chain::v1::chain_api_server::{ChainApi, ChainApiServer};
use tonic::{Request, Response, Status};

use crate::query::{BlockId, Failure, QueryError, Unspent};
use crate::service::{ChainService, ServiceError};
use crate::store::StoreError;

/// Most outputs [`ChainApi::get_unspent`] (and the REST API) list.
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

fn query_status(error: QueryError) -> Status {
    match error {
        QueryError::Store(error) => store_status(error),
        other => status(other.failure(), other.to_string()),
    }
}

/// The gRPC status of a failure.
fn status(failure: Failure, message: String) -> Status {
    let code = match failure {
        Failure::InvalidArgument | Failure::TooLarge => tonic::Code::InvalidArgument,
        Failure::NotFound => tonic::Code::NotFound,
        Failure::AlreadyExists => tonic::Code::AlreadyExists,
        Failure::Rejected => tonic::Code::FailedPrecondition,
        Failure::PoolFull => tonic::Code::ResourceExhausted,
        Failure::Unavailable => tonic::Code::Unavailable,
        Failure::Internal => tonic::Code::Internal,
    };
    Status::new(code, message)
}

/// The gRPC status of a refused submission.
fn submit_status(error: ServiceError) -> Status {
    status(error.failure(), error.to_string())
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
pub fn unspent_to_proto(unspent: &Unspent) -> pb::UnspentOutput {
    let ux = &unspent.output;
    pb::UnspentOutput {
        spent_by: unspent
            .spent_by
            .map(|txid| txid.0.to_vec().into())
            .unwrap_or_default(),
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
        let id = match &request.get_ref().by {
            Some(pb::get_block_request::By::Seq(seq)) => BlockId::Seq(*seq),
            Some(pb::get_block_request::By::Hash(bytes)) => BlockId::Hash(hash(bytes, "hash")?),
            None => return Err(Status::invalid_argument("seq or hash required")),
        };
        let block = self
            .service
            .block(id)
            .await
            .map_err(store_status)?
            .ok_or_else(|| Status::not_found("no such block"))?;
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
        let found = self
            .service
            .find_transaction(&txid)
            .await
            .map_err(store_status)?
            .ok_or_else(|| Status::not_found("no such transaction"))?;
        Ok(Response::new(pb::GetTransactionResponse {
            transaction: Encode::encode(&found.tx)
                .map_err(|e| Status::internal(e.to_string()))?
                .into(),
            confirmed: found.block_seq.is_some(),
            block_seq: found.block_seq.unwrap_or_default(),
        }))
    }

    async fn get_balance(
        &self,
        request: Request<pb::AddressRequest>,
    ) -> Result<Response<pb::BalanceResponse>, Status> {
        let address = address(&request.get_ref().address)?;
        let balance = self.service.balance(&address).await.map_err(query_status)?;
        Ok(Response::new(pb::BalanceResponse {
            coins: balance.coins,
            hours: balance.hours,
            outputs: balance.outputs,
        }))
    }

    async fn get_unspent(
        &self,
        request: Request<pb::AddressRequest>,
    ) -> Result<Response<pb::UnspentResponse>, Status> {
        let address = address(&request.get_ref().address)?;
        let (outputs, head_time) = self
            .service
            .unspent(&address, MAX_UNSPENT_LISTED)
            .await
            .map_err(query_status)?;
        Ok(Response::new(pb::UnspentResponse {
            outputs: outputs.iter().map(unspent_to_proto).collect(),
            head_time,
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
