//! The chain's REST API: JSON over HTTP, for merchants and tools that do not speak gRPC.
//! The same queries as the gRPC API ([`crate::api`], through [`crate::query`]), served on
//! the node's HTTP listener (`--http`, loopback by default) beside `/metrics`.
//!
//! | method and path | answer |
//! |---|---|
//! | `GET /api/v1/chain/status` | head, sync progress, pool, the chain's spend rules |
//! | `GET /api/v1/chain/blocks/{seq or hash}` | the block, decoded, and its encoding |
//! | `GET /api/v1/chain/transactions/{txid}` | the transaction, confirmed or pooled |
//! | `POST /api/v1/chain/transactions` | `{"transaction": HEX}` (Skycoin's encoding): `201 {"txid": HEX}` |
//! | `GET /api/v1/chain/addresses/{address}/balance` | coins (droplets), hours, outputs |
//! | `GET /api/v1/chain/addresses/{address}/unspent` | up to 1000 outputs, oldest first |
//!
//! Hashes and encodings are lowercase hex; coins are droplets. Every failure is a 4xx or
//! 5xx with `{"error": {"code": CODE, "message": TEXT}}`, `CODE` one of
//! [`Failure::code`]'s: `invalid_argument` (400), `too_large` (413), `not_found` (404), `already_exists`
//! (409), `rejected` (422: the rule the transaction breaks), `pool_full` (429),
//! `unavailable` (503), `internal` (500). Bodies are capped at [`REST_BODY_LIMIT`].

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use skywire_coin::{Decode as _, Hash, SignedBlock, Transaction};
use skywire_identity::Address;

use crate::api::MAX_UNSPENT_LISTED;
use crate::query::{BlockId, Failure, QueryError, Unspent};
use crate::service::{ChainService, ServiceError};
use crate::store::StoreError;

/// The largest request body: a transaction of at most 32 KiB is 64 KiB of hex.
pub const REST_BODY_LIMIT: usize = 96 * 1024;

/// The REST API over `service`, to merge into the node's HTTP router (which applies the
/// concurrency limit and the timeout).
pub fn router(service: ChainService) -> Router {
    Router::new()
        .route("/api/v1/chain/status", get(status))
        .route("/api/v1/chain/blocks/{id}", get(block))
        .route("/api/v1/chain/transactions", axum::routing::post(submit))
        .route("/api/v1/chain/transactions/{txid}", get(transaction))
        .route("/api/v1/chain/addresses/{address}/balance", get(balance))
        .route("/api/v1/chain/addresses/{address}/unspent", get(unspent))
        .layer(DefaultBodyLimit::max(REST_BODY_LIMIT))
        .with_state(service)
}

/// A failure, answered as `{"error": {"code", "message"}}`.
#[derive(Debug)]
pub struct ApiError {
    failure: Failure,
    message: String,
}

impl ApiError {
    fn new(failure: Failure, message: impl Into<String>) -> Self {
        Self {
            failure,
            message: message.into(),
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new(Failure::InvalidArgument, message)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        tracing::warn!(%error, "chain store failed");
        Self::new(Failure::Unavailable, "the chain store failed")
    }
}

impl From<QueryError> for ApiError {
    fn from(error: QueryError) -> Self {
        match error {
            QueryError::Store(error) => error.into(),
            other => Self::new(other.failure(), other.to_string()),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        Self::new(error.failure(), error.to_string())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::invalid(rejection.body_text())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return Self::new(
                Failure::TooLarge,
                format!("the body is over {REST_BODY_LIMIT} bytes"),
            );
        }
        Self::invalid(rejection.body_text())
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'static str,
    message: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self.failure {
            Failure::InvalidArgument => StatusCode::BAD_REQUEST,
            Failure::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Failure::NotFound => StatusCode::NOT_FOUND,
            Failure::AlreadyExists => StatusCode::CONFLICT,
            Failure::Rejected => StatusCode::UNPROCESSABLE_ENTITY,
            Failure::PoolFull => StatusCode::TOO_MANY_REQUESTS,
            Failure::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Failure::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.failure.code(),
                message: &self.message,
            },
        };
        (status, Json(body)).into_response()
    }
}

type Answer<T> = Result<Json<T>, ApiError>;

fn parse_hash(text: &str, what: &str) -> Result<Hash, ApiError> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text, &mut bytes)
        .map_err(|_| ApiError::invalid(format!("{what}: 64 hex characters expected")))?;
    Ok(Hash(bytes))
}

fn parse_address(text: &str) -> Result<Address, ApiError> {
    text.parse()
        .map_err(|e| ApiError::invalid(format!("bad address {text:?}: {e}")))
}

fn encoded(value: &impl skywire_coin::Encode) -> Result<String, ApiError> {
    value
        .encode()
        .map(hex::encode)
        .map_err(|e| ApiError::new(Failure::Internal, e.to_string()))
}

/// The head, in a status.
#[derive(Serialize)]
struct HeadView {
    seq: u64,
    hash: String,
    time: u64,
}

/// `GET /api/v1/chain/status`.
#[derive(Serialize)]
struct StatusView {
    head: Option<HeadView>,
    best_header: Option<u64>,
    best_claimed: Option<u64>,
    in_flight: u64,
    peers: usize,
    mempool_transactions: usize,
    orphans: usize,
    publisher: bool,
    publisher_fault: Option<String>,
    burn_factor: u32,
    max_droplet_precision: u8,
}

async fn status(State(service): State<ChainService>) -> Answer<StatusView> {
    let status = service.status().await?;
    let params = service.chain().params();
    Ok(Json(StatusView {
        head: status.head.map(|tip| HeadView {
            seq: tip.seq,
            hash: tip.hash.to_string(),
            time: status.head_time.unwrap_or_default(),
        }),
        best_header: status.sync.best_header,
        best_claimed: status.sync.best_claimed,
        in_flight: status.sync.in_flight,
        peers: status.peers,
        mempool_transactions: status.mempool_transactions,
        orphans: status.orphans,
        publisher: status.publisher,
        publisher_fault: status.sync.publisher_fault.map(|f| format!("{f:?}")),
        burn_factor: params.burn_factor,
        max_droplet_precision: params.max_droplet_precision,
    }))
}

/// An output of a transaction.
#[derive(Serialize)]
struct OutputView {
    address: String,
    coins: u64,
    hours: u64,
}

/// A transaction, decoded, with its encoding.
#[derive(Serialize)]
struct TransactionView {
    txid: String,
    inner_hash: String,
    inputs: Vec<String>,
    outputs: Vec<OutputView>,
    raw: String,
}

impl TransactionView {
    fn of(tx: &Transaction) -> Result<Self, ApiError> {
        Ok(Self {
            txid: tx.hash().to_string(),
            inner_hash: tx.inner_hash.to_string(),
            inputs: tx.inputs.iter().map(Hash::to_string).collect(),
            outputs: tx
                .outputs
                .iter()
                .map(|o| OutputView {
                    address: o.address.to_string(),
                    coins: o.coins,
                    hours: o.hours,
                })
                .collect(),
            raw: encoded(tx)?,
        })
    }
}

/// `GET /api/v1/chain/blocks/{id}`.
#[derive(Serialize)]
struct BlockView {
    seq: u64,
    hash: String,
    prev_hash: String,
    time: u64,
    fee: u64,
    body_hash: String,
    ux_hash: String,
    transactions: Vec<TransactionView>,
    raw: String,
}

impl BlockView {
    fn of(block: &SignedBlock) -> Result<Self, ApiError> {
        let header = &block.block.header;
        Ok(Self {
            seq: header.bk_seq,
            hash: header.hash().to_string(),
            prev_hash: header.prev_hash.to_string(),
            time: header.time,
            fee: header.fee,
            body_hash: header.body_hash.to_string(),
            ux_hash: header.ux_hash.to_string(),
            transactions: block
                .block
                .body
                .transactions
                .iter()
                .map(TransactionView::of)
                .collect::<Result<_, _>>()?,
            raw: encoded(block)?,
        })
    }
}

async fn block(
    State(service): State<ChainService>,
    id: Result<Path<String>, PathRejection>,
) -> Answer<BlockView> {
    let Path(id) = id?;
    let id = if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
        BlockId::Seq(
            id.parse()
                .map_err(|_| ApiError::invalid("sequence number out of range"))?,
        )
    } else {
        BlockId::Hash(parse_hash(&id, "block")?)
    };
    let block = service
        .block(id)
        .await?
        .ok_or_else(|| ApiError::new(Failure::NotFound, "no such block"))?;
    Ok(Json(BlockView::of(&block)?))
}

/// `GET /api/v1/chain/transactions/{txid}`.
#[derive(Serialize)]
struct FoundView {
    transaction: TransactionView,
    confirmed: bool,
    block_seq: Option<u64>,
}

async fn transaction(
    State(service): State<ChainService>,
    txid: Result<Path<String>, PathRejection>,
) -> Answer<FoundView> {
    let Path(txid) = txid?;
    let found = service
        .find_transaction(&parse_hash(&txid, "txid")?)
        .await?
        .ok_or_else(|| ApiError::new(Failure::NotFound, "no such transaction"))?;
    Ok(Json(FoundView {
        transaction: TransactionView::of(&found.tx)?,
        confirmed: found.block_seq.is_some(),
        block_seq: found.block_seq,
    }))
}

/// `POST /api/v1/chain/transactions`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitBody {
    /// The signed transaction in Skycoin's encoding, hex.
    transaction: String,
}

/// The answer to a submission.
#[derive(Serialize)]
struct Submitted {
    txid: String,
}

async fn submit(
    State(service): State<ChainService>,
    body: Result<Json<SubmitBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Submitted>), ApiError> {
    let Json(body) = body?;
    let bytes =
        hex::decode(&body.transaction).map_err(|_| ApiError::invalid("transaction: not hex"))?;
    let tx = Transaction::decode_exact(&bytes)
        .map_err(|e| ApiError::invalid(format!("transaction: {e}")))?;
    let txid = service.submit(tx).await?;
    Ok((
        StatusCode::CREATED,
        Json(Submitted {
            txid: txid.to_string(),
        }),
    ))
}

/// `GET /api/v1/chain/addresses/{address}/balance`.
#[derive(Serialize)]
struct BalanceView {
    address: String,
    coins: u64,
    hours: u64,
    outputs: u64,
}

async fn balance(
    State(service): State<ChainService>,
    address: Result<Path<String>, PathRejection>,
) -> Answer<BalanceView> {
    let Path(text) = address?;
    let address = parse_address(&text)?;
    let balance = service.balance(&address).await?;
    Ok(Json(BalanceView {
        address: address.to_string(),
        coins: balance.coins,
        hours: balance.hours,
        outputs: balance.outputs,
    }))
}

/// An unspent output, with every field of Skycoin's `UxOut`, and the pool transaction
/// already spending it (`null` if none).
#[derive(Serialize)]
struct UnspentView {
    spent_by: Option<String>,
    uxid: String,
    time: u64,
    block_seq: u64,
    src_transaction: String,
    address: String,
    coins: u64,
    hours: u64,
}

impl From<&Unspent> for UnspentView {
    fn from(unspent: &Unspent) -> Self {
        let ux = &unspent.output;
        Self {
            spent_by: unspent.spent_by.map(|txid| txid.to_string()),
            uxid: ux.hash().to_string(),
            time: ux.head.time,
            block_seq: ux.head.bk_seq,
            src_transaction: ux.body.src_transaction.to_string(),
            address: ux.body.address.to_string(),
            coins: ux.body.coins,
            hours: ux.body.hours,
        }
    }
}

/// `GET /api/v1/chain/addresses/{address}/unspent`.
#[derive(Serialize)]
struct UnspentList {
    head_time: u64,
    outputs: Vec<UnspentView>,
}

async fn unspent(
    State(service): State<ChainService>,
    address: Result<Path<String>, PathRejection>,
) -> Answer<UnspentList> {
    let Path(text) = address?;
    let address = parse_address(&text)?;
    let (outputs, head_time) = service.unspent(&address, MAX_UNSPENT_LISTED).await?;
    Ok(Json(UnspentList {
        head_time,
        outputs: outputs.iter().map(UnspentView::from).collect(),
    }))
}
