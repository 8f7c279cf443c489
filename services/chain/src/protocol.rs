//! The `chain/1` and `txrelay/1` messages (`proto/skywire/chain/v1/chain.proto`), encoded
//! and decoded with every limit checked: the message's size first, then the protobuf, then
//! every count (against the protocol's limits and, in an answer, against what was asked),
//! and only then each element, decoded exactly into [`skywire_coin`]'s types. Nothing
//! here checks a signature or a sequence: the sync planner ([`crate::sync`]) and the
//! verifier ([`crate::verify`]) do, on values this module has already bounded.
//!
//! Both services use one channel discipline: the requester sends one request, reads one
//! answer, and may then send another on the same channel. An answer is decoded against
//! the request it answers ([`decode_chain_response`], [`decode_relay_response`]), so an
//! answer of the wrong kind, with more elements than were asked for, or (for
//! transactions) with one that was not asked for, is refused whole.
//!
//! [`ChainRequest::encode`] and the other encoders apply the same limits, so a node never
//! sends what its peers would refuse.

use std::collections::HashSet;

use bytes::Bytes;
use prost::Message as _;
use skywire_coin::{
    BlockHeader, Decode, DecodeError, Encode, EncodeError, Hash, MAX_TRANSACTION_SIZE, Sig,
    SignedBlock, Transaction,
};
use skywire_proto::chain::v1 as pb;

use crate::sync::SignedHeader;

pub use pb::error::Code;

/// The service name of chain sync on SWP/1.
pub const CHAIN_SERVICE: &str = "chain/1";

/// The service name of transaction relay on SWP/1.
pub const RELAY_SERVICE: &str = "txrelay/1";

/// Channel priority of `chain/1` (SWP/1: 0 bulk to 7 interactive): block downloads are
/// large and can wait behind lookups and relay, but not behind true bulk transfers.
pub const CHAIN_PRIORITY: u8 = 2;

/// Channel priority of `txrelay/1`: small messages that should spread fast, above sync,
/// below the DHT's lookups (6).
pub const RELAY_PRIORITY: u8 = 4;

/// Headers in one `GetHeaders`, at most: 2000 headers of 124 bytes with 65-byte
/// signatures make an answer of about 390 KB, and 2000 is what the sync planner asks for
/// by default ([`crate::sync::DEFAULT_MAX_HEADERS_PER_REQUEST`]).
pub const MAX_HEADERS_PER_REQUEST: u32 = 2000;

/// Blocks in one `GetBlocks`, at most: 64 full blocks are about 2 MiB, the largest answer
/// of either service (see [`MAX_MESSAGE_BYTES`]).
pub const MAX_BLOCKS_PER_REQUEST: u32 = 64;

/// Transaction ids in one `Announce`, at most: 1000 × 34 bytes is 34 KB, and a pool
/// accepts transactions far slower than that between two announcements.
pub const MAX_ANNOUNCE: usize = 1000;

/// Transaction ids in one `GetTransactions`, at most: 256 typical transactions (a few
/// hundred bytes each) fit one message with room to spare; an answerer leaves out those
/// that would take it over [`MAX_MESSAGE_BYTES`].
pub const MAX_GET_TRANSACTIONS: usize = 256;

/// The largest transaction encoding accepted: Skycoin's `MaxTransactionSize` (32 KiB).
pub const MAX_TRANSACTION_BYTES: usize = MAX_TRANSACTION_SIZE;

/// The largest block encoding accepted: the header, the body's transaction count, at most
/// 32 KiB of transactions (Skycoin's default block size limit,
/// [`crate::verify::DEFAULT_MAX_BLOCK_SIZE`]) and the signature: 32 961 bytes.
pub const MAX_BLOCK_BYTES: usize = BlockHeader::ENCODED_LEN + 4 + MAX_TRANSACTION_SIZE + Sig::LEN;

/// Protobuf framing of one element of a repeated field, at most: a one-byte tag and a
/// length of at most three bytes (every element is under 2 MiB).
const ELEMENT_FRAMING: usize = 4;

/// Largest message either side sends or accepts: [`MAX_BLOCKS_PER_REQUEST`] blocks of at
/// most [`MAX_BLOCK_BYTES`] with their framing, plus 4 KiB for the envelope (2 113 856
/// bytes, about 2 MiB). Every other answer is smaller: 2000 headers take about 390 KB, and
/// a `Transactions` answer is filled up to this limit and no further. It stays below
/// SWP/1's default maximum message of 4 MiB.
pub const MAX_MESSAGE_BYTES: usize =
    MAX_BLOCKS_PER_REQUEST as usize * (MAX_BLOCK_BYTES + ELEMENT_FRAMING) + 4096;

const _: () = assert!(MAX_MESSAGE_BYTES <= 4 * 1024 * 1024);

/// Characters of an error answer's explanation kept (and sent), at most.
pub const MAX_ERROR_MESSAGE_CHARS: usize = 256;

/// Why a message was refused (or, for [`ProtocolError::Encode`], could not be built).
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// More bytes than [`MAX_MESSAGE_BYTES`].
    #[error("message of {size} bytes, at most {max}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not the protobuf it should be, or one without a body.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A count outside its bounds: a request's count or list length outside the
    /// protocol's limits, or an answer with more elements than were asked for.
    #[error("{count} {field}, want {min} to {max}")]
    Count {
        /// What was counted.
        field: &'static str,
        /// The count found.
        count: usize,
        /// The least allowed.
        min: usize,
        /// The most allowed.
        max: usize,
    },
    /// A field of the wrong length or shape.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// Which field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// An element larger than its limit.
    #[error("{field}[{index}] of {size} bytes, at most {max}")]
    ElementTooLarge {
        /// Which list.
        field: &'static str,
        /// Its position in the list.
        index: usize,
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// An element's Skycoin encoding did not decode exactly.
    #[error("{field}[{index}] does not decode: {source}")]
    Element {
        /// Which list (or field, with index 0).
        field: &'static str,
        /// Its position in the list.
        index: usize,
        /// Why.
        source: DecodeError,
    },
    /// An id or a transaction appears twice.
    #[error("{field}: {hash} is repeated")]
    Repeated {
        /// Which list.
        field: &'static str,
        /// The repeated id.
        hash: Hash,
    },
    /// An answer holds a transaction whose id was not asked for.
    #[error("transaction {0} was not asked for")]
    NotAsked(Hash),
    /// The answer is not the kind the request calls for.
    #[error("asked {asked}, answered {got}")]
    Unexpected {
        /// The request's kind.
        asked: &'static str,
        /// The answer's kind.
        got: &'static str,
    },
    /// A value of ours has no Skycoin encoding (a list over
    /// [`MAX_LEN`](skywire_coin::MAX_LEN)): our bug, not the peer's.
    #[error("cannot encode: {0}")]
    Encode(#[from] EncodeError),
    /// The peer answered with an error.
    #[error("peer refused: {code:?}: {message}")]
    Refused {
        /// Its code.
        code: Code,
        /// Its explanation (at most [`MAX_ERROR_MESSAGE_CHARS`] characters kept).
        message: String,
    },
}

impl ProtocolError {
    /// Whether the peer broke the protocol (as opposed to refusing politely, or our own
    /// encoding failing): an answer like this gets the peer dropped.
    pub fn is_violation(&self) -> bool {
        !matches!(self, Self::Refused { .. } | Self::Encode(_))
    }
}

/// A chain's head: its last block's sequence number and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tip {
    /// The head block's sequence number.
    pub seq: u64,
    /// The head block's hash.
    pub hash: Hash,
}

/// A checked `chain/1` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainRequest {
    /// The answerer's head.
    GetTip,
    /// Headers from `from_seq` on.
    GetHeaders {
        /// The first header's sequence number.
        from_seq: u64,
        /// How many, 1 to [`MAX_HEADERS_PER_REQUEST`].
        count: u32,
    },
    /// Blocks from `from_seq` on.
    GetBlocks {
        /// The first block's sequence number.
        from_seq: u64,
        /// How many, 1 to [`MAX_BLOCKS_PER_REQUEST`].
        count: u32,
    },
    /// The requester's new head.
    AnnounceTip(Tip),
}

/// A checked `chain/1` answer (error answers are [`ProtocolError::Refused`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainResponse {
    /// The answerer's head; `None` if it has no chain yet.
    Tip(Option<Tip>),
    /// At most the count asked for, each decoded (the sequence is the planner's check).
    Headers(Vec<SignedHeader>),
    /// At most the count asked for, each decoded (signatures and sequence unchecked).
    Blocks(Vec<SignedBlock>),
    /// The announcement was taken.
    Ack,
}

/// A checked `txrelay/1` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayRequest {
    /// The requester has these transactions: 1 to [`MAX_ANNOUNCE`] distinct ids.
    Announce(Vec<Hash>),
    /// Send these transactions: 1 to [`MAX_GET_TRANSACTIONS`] distinct ids.
    GetTransactions(Vec<Hash>),
}

/// A checked `txrelay/1` answer (error answers are [`ProtocolError::Refused`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayResponse {
    /// The announcement was taken.
    Ack,
    /// Some of the transactions asked for, each asked for and none twice.
    Transactions(Vec<Transaction>),
}

// Shared helpers.

/// The protobuf message in `bytes`, at most [`MAX_MESSAGE_BYTES`] of them.
fn parse<M: prost::Message + Default>(bytes: &[u8]) -> Result<M, ProtocolError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(ProtocolError::TooLarge {
            size: bytes.len(),
            max: MAX_MESSAGE_BYTES,
        });
    }
    M::decode(bytes).map_err(|e| ProtocolError::Malformed(e.to_string()))
}

/// `message`'s encoding, refused if over [`MAX_MESSAGE_BYTES`].
fn finish<M: prost::Message>(message: &M) -> Result<Bytes, ProtocolError> {
    let size = message.encoded_len();
    if size > MAX_MESSAGE_BYTES {
        return Err(ProtocolError::TooLarge {
            size,
            max: MAX_MESSAGE_BYTES,
        });
    }
    Ok(Bytes::from(message.encode_to_vec()))
}

fn check_count(
    field: &'static str,
    count: usize,
    min: usize,
    max: usize,
) -> Result<(), ProtocolError> {
    if count < min || count > max {
        return Err(ProtocolError::Count {
            field,
            count,
            min,
            max,
        });
    }
    Ok(())
}

fn hash(field: &'static str, bytes: &[u8]) -> Result<Hash, ProtocolError> {
    let bytes: [u8; Hash::LEN] = bytes.try_into().map_err(|_| ProtocolError::Invalid {
        field,
        reason: format!("{} bytes, want {}", bytes.len(), Hash::LEN),
    })?;
    Ok(Hash(bytes))
}

fn sig(field: &'static str, bytes: &[u8]) -> Result<Sig, ProtocolError> {
    let bytes: [u8; Sig::LEN] = bytes.try_into().map_err(|_| ProtocolError::Invalid {
        field,
        reason: format!("{} bytes, want {}", bytes.len(), Sig::LEN),
    })?;
    Ok(Sig(bytes))
}

/// Decodes a Skycoin encoding of at most `max` bytes that must be taken whole.
fn element<T: Decode>(
    field: &'static str,
    index: usize,
    bytes: &[u8],
    max: usize,
) -> Result<T, ProtocolError> {
    if bytes.len() > max {
        return Err(ProtocolError::ElementTooLarge {
            field,
            index,
            size: bytes.len(),
            max,
        });
    }
    T::decode_exact(bytes).map_err(|source| ProtocolError::Element {
        field,
        index,
        source,
    })
}

/// A Skycoin encoding of at most `max` bytes, for sending.
fn encode_element<T: Encode>(
    field: &'static str,
    index: usize,
    value: &T,
    max: usize,
) -> Result<Bytes, ProtocolError> {
    let bytes = value.encode()?;
    if bytes.len() > max {
        return Err(ProtocolError::ElementTooLarge {
            field,
            index,
            size: bytes.len(),
            max,
        });
    }
    Ok(Bytes::from(bytes))
}

/// 1 to `max` distinct ids of 32 bytes, the count checked before any id.
fn txids(field: &'static str, raw: &[Bytes], max: usize) -> Result<Vec<Hash>, ProtocolError> {
    check_count(field, raw.len(), 1, max)?;
    let mut seen = HashSet::with_capacity(raw.len());
    raw.iter()
        .map(|bytes| {
            let id = hash(field, bytes)?;
            if !seen.insert(id) {
                return Err(ProtocolError::Repeated { field, hash: id });
            }
            Ok(id)
        })
        .collect()
}

fn encode_txids(
    field: &'static str,
    ids: &[Hash],
    max: usize,
) -> Result<Vec<Bytes>, ProtocolError> {
    check_count(field, ids.len(), 1, max)?;
    let mut seen = HashSet::with_capacity(ids.len());
    ids.iter()
        .map(|id| {
            if !seen.insert(*id) {
                return Err(ProtocolError::Repeated { field, hash: *id });
            }
            Ok(Bytes::copy_from_slice(id.as_bytes()))
        })
        .collect()
}

fn error_body(code: Code, message: &str) -> pb::Error {
    pb::Error {
        code: code.into(),
        message: message.chars().take(MAX_ERROR_MESSAGE_CHARS).collect(),
    }
}

fn refused(error: pb::Error) -> ProtocolError {
    ProtocolError::Refused {
        code: Code::try_from(error.code).unwrap_or(Code::Unspecified),
        message: error
            .message
            .chars()
            .take(MAX_ERROR_MESSAGE_CHARS)
            .collect(),
    }
}

fn request_count(field: &'static str, count: u32, max: u32) -> Result<(), ProtocolError> {
    check_count(field, count as usize, 1, max as usize)
}

// chain/1.

impl ChainRequest {
    /// The request's kind, as named in errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::GetTip => "GetTip",
            Self::GetHeaders { .. } => "GetHeaders",
            Self::GetBlocks { .. } => "GetBlocks",
            Self::AnnounceTip(_) => "AnnounceTip",
        }
    }

    /// The request's encoding.
    ///
    /// # Errors
    ///
    /// [`ProtocolError::Count`] for a count outside the protocol's limits.
    pub fn encode(&self) -> Result<Bytes, ProtocolError> {
        use pb::chain_request::Body;
        let body = match *self {
            Self::GetTip => Body::GetTip(pb::GetTip {}),
            Self::GetHeaders { from_seq, count } => {
                request_count("headers", count, MAX_HEADERS_PER_REQUEST)?;
                Body::GetHeaders(pb::GetHeaders { from_seq, count })
            }
            Self::GetBlocks { from_seq, count } => {
                request_count("blocks", count, MAX_BLOCKS_PER_REQUEST)?;
                Body::GetBlocks(pb::GetBlocks { from_seq, count })
            }
            Self::AnnounceTip(tip) => Body::AnnounceTip(pb::AnnounceTip {
                seq: tip.seq,
                hash: Bytes::copy_from_slice(tip.hash.as_bytes()),
            }),
        };
        finish(&pb::ChainRequest { body: Some(body) })
    }
}

/// A `chain/1` request, checked.
///
/// # Errors
///
/// Oversized or malformed, a count outside the limits, or a hash not of 32 bytes.
pub fn decode_chain_request(bytes: &[u8]) -> Result<ChainRequest, ProtocolError> {
    use pb::chain_request::Body;
    let request: pb::ChainRequest = parse(bytes)?;
    match request.body {
        Some(Body::GetTip(pb::GetTip {})) => Ok(ChainRequest::GetTip),
        Some(Body::GetHeaders(pb::GetHeaders { from_seq, count })) => {
            request_count("headers", count, MAX_HEADERS_PER_REQUEST)?;
            Ok(ChainRequest::GetHeaders { from_seq, count })
        }
        Some(Body::GetBlocks(pb::GetBlocks { from_seq, count })) => {
            request_count("blocks", count, MAX_BLOCKS_PER_REQUEST)?;
            Ok(ChainRequest::GetBlocks { from_seq, count })
        }
        Some(Body::AnnounceTip(announce)) => Ok(ChainRequest::AnnounceTip(Tip {
            seq: announce.seq,
            hash: hash("hash", &announce.hash)?,
        })),
        None => Err(ProtocolError::Malformed("empty request".into())),
    }
}

impl ChainResponse {
    /// The answer's kind, as named in errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Tip(_) => "Tip",
            Self::Headers(_) => "Headers",
            Self::Blocks(_) => "Blocks",
            Self::Ack => "Ack",
        }
    }

    /// The answer's encoding.
    ///
    /// # Errors
    ///
    /// More than [`MAX_HEADERS_PER_REQUEST`] headers or [`MAX_BLOCKS_PER_REQUEST`]
    /// blocks, a block over [`MAX_BLOCK_BYTES`] or without an encoding, or a message over
    /// [`MAX_MESSAGE_BYTES`].
    pub fn encode(&self) -> Result<Bytes, ProtocolError> {
        use pb::chain_response::Body;
        let body = match self {
            Self::Tip(None) => Body::Tip(pb::Tip {
                seq: 0,
                hash: Bytes::new(),
                empty: true,
            }),
            Self::Tip(Some(tip)) => Body::Tip(pb::Tip {
                seq: tip.seq,
                hash: Bytes::copy_from_slice(tip.hash.as_bytes()),
                empty: false,
            }),
            Self::Headers(headers) => {
                check_count(
                    "headers",
                    headers.len(),
                    0,
                    MAX_HEADERS_PER_REQUEST as usize,
                )?;
                let headers = headers
                    .iter()
                    .map(|h| {
                        Ok(pb::SignedHeader {
                            header: Bytes::from(h.header.encode()?),
                            sig: Bytes::copy_from_slice(&h.sig.0),
                        })
                    })
                    .collect::<Result<_, ProtocolError>>()?;
                Body::Headers(pb::Headers { headers })
            }
            Self::Blocks(blocks) => {
                check_count("blocks", blocks.len(), 0, MAX_BLOCKS_PER_REQUEST as usize)?;
                let blocks = blocks
                    .iter()
                    .enumerate()
                    .map(|(i, b)| encode_element("blocks", i, b, MAX_BLOCK_BYTES))
                    .collect::<Result<_, _>>()?;
                Body::Blocks(pb::Blocks { blocks })
            }
            Self::Ack => Body::Ack(pb::Ack {}),
        };
        finish(&pb::ChainResponse { body: Some(body) })
    }
}

/// A `chain/1` error answer (the explanation cut to [`MAX_ERROR_MESSAGE_CHARS`]).
pub fn encode_chain_error(code: Code, message: &str) -> Bytes {
    Bytes::from(
        pb::ChainResponse {
            body: Some(pb::chain_response::Body::Error(error_body(code, message))),
        }
        .encode_to_vec(),
    )
}

fn chain_kind(body: &pb::chain_response::Body) -> &'static str {
    use pb::chain_response::Body;
    match body {
        Body::Tip(_) => "Tip",
        Body::Headers(_) => "Headers",
        Body::Blocks(_) => "Blocks",
        Body::Ack(_) => "Ack",
        Body::Error(_) => "Error",
    }
}

fn decode_tip(tip: &pb::Tip) -> Result<Option<Tip>, ProtocolError> {
    if tip.empty {
        if tip.seq != 0 || !tip.hash.is_empty() {
            return Err(ProtocolError::Invalid {
                field: "tip",
                reason: "an empty chain with a sequence number or hash".into(),
            });
        }
        return Ok(None);
    }
    Ok(Some(Tip {
        seq: tip.seq,
        hash: hash("hash", &tip.hash)?,
    }))
}

fn decode_header(index: usize, header: &pb::SignedHeader) -> Result<SignedHeader, ProtocolError> {
    if header.header.len() != BlockHeader::ENCODED_LEN {
        return Err(ProtocolError::Invalid {
            field: "header",
            reason: format!(
                "{} bytes, want {}",
                header.header.len(),
                BlockHeader::ENCODED_LEN
            ),
        });
    }
    Ok(SignedHeader {
        header: element("headers", index, &header.header, BlockHeader::ENCODED_LEN)?,
        sig: sig("sig", &header.sig)?,
    })
}

/// The answer to `asked`, checked: its kind, then its count against what was asked, then
/// every element.
///
/// # Errors
///
/// Oversized or malformed, the wrong kind, more elements than asked for, an element of
/// the wrong size or that does not decode exactly; [`ProtocolError::Refused`] for an error
/// answer.
pub fn decode_chain_response(
    bytes: &[u8],
    asked: &ChainRequest,
) -> Result<ChainResponse, ProtocolError> {
    use pb::chain_response::Body;
    let response: pb::ChainResponse = parse(bytes)?;
    let body = match response.body {
        Some(Body::Error(error)) => return Err(refused(error)),
        Some(body) => body,
        None => return Err(ProtocolError::Malformed("empty response".into())),
    };
    match (asked, body) {
        (ChainRequest::GetTip, Body::Tip(tip)) => Ok(ChainResponse::Tip(decode_tip(&tip)?)),
        (ChainRequest::GetHeaders { count, .. }, Body::Headers(headers)) => {
            check_count("headers", headers.headers.len(), 0, *count as usize)?;
            let headers = headers
                .headers
                .iter()
                .enumerate()
                .map(|(i, h)| decode_header(i, h))
                .collect::<Result<_, _>>()?;
            Ok(ChainResponse::Headers(headers))
        }
        (ChainRequest::GetBlocks { count, .. }, Body::Blocks(blocks)) => {
            check_count("blocks", blocks.blocks.len(), 0, *count as usize)?;
            let blocks = blocks
                .blocks
                .iter()
                .enumerate()
                .map(|(i, b)| element("blocks", i, b, MAX_BLOCK_BYTES))
                .collect::<Result<_, _>>()?;
            Ok(ChainResponse::Blocks(blocks))
        }
        (ChainRequest::AnnounceTip(_), Body::Ack(pb::Ack {})) => Ok(ChainResponse::Ack),
        (asked, body) => Err(ProtocolError::Unexpected {
            asked: asked.kind(),
            got: chain_kind(&body),
        }),
    }
}

// txrelay/1.

impl RelayRequest {
    /// The request's kind, as named in errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Announce(_) => "Announce",
            Self::GetTransactions(_) => "GetTransactions",
        }
    }

    /// The request's encoding.
    ///
    /// # Errors
    ///
    /// No ids, more than the limit ([`MAX_ANNOUNCE`], [`MAX_GET_TRANSACTIONS`]), or an id
    /// twice.
    pub fn encode(&self) -> Result<Bytes, ProtocolError> {
        use pb::relay_request::Body;
        let body = match self {
            Self::Announce(ids) => Body::Announce(pb::Announce {
                txids: encode_txids("txids", ids, MAX_ANNOUNCE)?,
            }),
            Self::GetTransactions(ids) => Body::GetTransactions(pb::GetTransactions {
                txids: encode_txids("txids", ids, MAX_GET_TRANSACTIONS)?,
            }),
        };
        finish(&pb::RelayRequest { body: Some(body) })
    }
}

/// A `txrelay/1` request, checked: the number of ids before any id.
///
/// # Errors
///
/// Oversized or malformed, no ids or too many, an id not of 32 bytes, or an id twice.
pub fn decode_relay_request(bytes: &[u8]) -> Result<RelayRequest, ProtocolError> {
    use pb::relay_request::Body;
    let request: pb::RelayRequest = parse(bytes)?;
    match request.body {
        Some(Body::Announce(announce)) => Ok(RelayRequest::Announce(txids(
            "txids",
            &announce.txids,
            MAX_ANNOUNCE,
        )?)),
        Some(Body::GetTransactions(get)) => Ok(RelayRequest::GetTransactions(txids(
            "txids",
            &get.txids,
            MAX_GET_TRANSACTIONS,
        )?)),
        None => Err(ProtocolError::Malformed("empty request".into())),
    }
}

impl RelayResponse {
    /// The answer's kind, as named in errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Ack => "Ack",
            Self::Transactions(_) => "Transactions",
        }
    }

    /// The answer's encoding. An answerer sends the transactions asked for that fit
    /// [`MAX_MESSAGE_BYTES`] and leaves out the rest.
    ///
    /// # Errors
    ///
    /// More than [`MAX_GET_TRANSACTIONS`] transactions, one over
    /// [`MAX_TRANSACTION_BYTES`] or without an encoding, or a message over
    /// [`MAX_MESSAGE_BYTES`].
    pub fn encode(&self) -> Result<Bytes, ProtocolError> {
        use pb::relay_response::Body;
        let body = match self {
            Self::Ack => Body::Ack(pb::Ack {}),
            Self::Transactions(txs) => {
                check_count("transactions", txs.len(), 0, MAX_GET_TRANSACTIONS)?;
                let transactions = txs
                    .iter()
                    .enumerate()
                    .map(|(i, tx)| encode_element("transactions", i, tx, MAX_TRANSACTION_BYTES))
                    .collect::<Result<_, _>>()?;
                Body::Transactions(pb::Transactions { transactions })
            }
        };
        finish(&pb::RelayResponse { body: Some(body) })
    }
}

/// A `txrelay/1` error answer (the explanation cut to [`MAX_ERROR_MESSAGE_CHARS`]).
pub fn encode_relay_error(code: Code, message: &str) -> Bytes {
    Bytes::from(
        pb::RelayResponse {
            body: Some(pb::relay_response::Body::Error(error_body(code, message))),
        }
        .encode_to_vec(),
    )
}

fn relay_kind(body: &pb::relay_response::Body) -> &'static str {
    use pb::relay_response::Body;
    match body {
        Body::Ack(_) => "Ack",
        Body::Transactions(_) => "Transactions",
        Body::Error(_) => "Error",
    }
}

/// Checks that each of `txs` is one of `asked`, and none appears twice.
///
/// # Errors
///
/// [`ProtocolError::NotAsked`] or [`ProtocolError::Repeated`] for the first offender.
pub fn check_asked(asked: &[Hash], txs: &[Transaction]) -> Result<(), ProtocolError> {
    let asked: HashSet<&Hash> = asked.iter().collect();
    let mut seen = HashSet::with_capacity(txs.len());
    for tx in txs {
        let id = tx.hash();
        if !asked.contains(&id) {
            return Err(ProtocolError::NotAsked(id));
        }
        if !seen.insert(id) {
            return Err(ProtocolError::Repeated {
                field: "transactions",
                hash: id,
            });
        }
    }
    Ok(())
}

/// The answer to `asked`, checked: its kind, then its count against the ids asked for,
/// then every transaction decoded exactly, then that each was asked for
/// ([`check_asked`]).
///
/// # Errors
///
/// Oversized or malformed, the wrong kind, more transactions than asked for, one over
/// [`MAX_TRANSACTION_BYTES`], one that does not decode exactly, one not asked for or one
/// twice; [`ProtocolError::Refused`] for an error answer.
pub fn decode_relay_response(
    bytes: &[u8],
    asked: &RelayRequest,
) -> Result<RelayResponse, ProtocolError> {
    use pb::relay_response::Body;
    let response: pb::RelayResponse = parse(bytes)?;
    let body = match response.body {
        Some(Body::Error(error)) => return Err(refused(error)),
        Some(body) => body,
        None => return Err(ProtocolError::Malformed("empty response".into())),
    };
    match (asked, body) {
        (RelayRequest::Announce(_), Body::Ack(pb::Ack {})) => Ok(RelayResponse::Ack),
        (RelayRequest::GetTransactions(ids), Body::Transactions(txs)) => {
            check_count("transactions", txs.transactions.len(), 0, ids.len())?;
            let txs: Vec<Transaction> = txs
                .transactions
                .iter()
                .enumerate()
                .map(|(i, tx)| element("transactions", i, tx, MAX_TRANSACTION_BYTES))
                .collect::<Result<_, _>>()?;
            check_asked(ids, &txs)?;
            Ok(RelayResponse::Transactions(txs))
        }
        (asked, body) => Err(ProtocolError::Unexpected {
            asked: asked.kind(),
            got: relay_kind(&body),
        }),
    }
}
