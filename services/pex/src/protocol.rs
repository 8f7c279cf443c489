//! The `pex/1` messages (`proto/skywire/pex/v1/pex.proto`), decoded with
//! every limit checked before any signature and every record verified, so
//! nothing unverified reaches the book or the pool.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use prost::Message as _;
use skywire_identity::PublicKey;
use skywire_proto::pex::v1 as pb;
use skywire_record::{MAX_RECORD_BYTES, NodeRecord, RecordError, VerifyCache};

pub use pb::error::Code;

/// The service name on SWP/1.
pub const SERVICE: &str = "pex/1";

/// Records of other peers in one answer, at most.
pub const MAX_RECORDS: usize = 30;

/// Largest message either side sends or accepts: the answerer's record and
/// [`MAX_RECORDS`] others of at most 8 KiB each, plus framing (< 256 KiB).
pub const MAX_MESSAGE_BYTES: usize = (MAX_RECORDS + 1) * MAX_RECORD_BYTES + 4096;

/// Channel priority of `pex/1` (SWP/1: 0 bulk to 7 interactive): a
/// background exchange, below the DHT's lookups.
pub const PRIORITY: u8 = 4;

/// Why a message was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// More bytes than [`MAX_MESSAGE_BYTES`].
    #[error("message of {size} bytes, at most {MAX_MESSAGE_BYTES}")]
    TooLarge {
        /// Its size.
        size: usize,
    },
    /// Not the protobuf it should be.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// More than [`MAX_RECORDS`] records.
    #[error("{0} records, at most {MAX_RECORDS}")]
    TooManyRecords(usize),
    /// One node's record twice, or the answerer's own among the others.
    #[error("the record of {0} is repeated")]
    Repeated(String),
    /// A record of the wrong node: a sender or `own` record that is not
    /// the peer's.
    #[error("a record of {0} where the peer's own was due")]
    NotThePeer(String),
    /// A record in it failed verification.
    #[error("bad record: {0}")]
    Record(#[from] RecordError),
    /// The peer answered with an error.
    #[error("peer refused: {code:?}: {message}")]
    Refused {
        /// Its code.
        code: Code,
        /// Its explanation (at most 256 characters kept).
        message: String,
    },
}

impl ProtocolError {
    /// Whether the peer broke the protocol (as opposed to refusing
    /// politely): an answer like this gets the peer banned.
    pub fn is_violation(&self) -> bool {
        !matches!(self, Self::Refused { .. })
    }
}

/// A checked answer: the answerer's record and the records it gave out.
#[derive(Debug, Clone, Default)]
pub struct Peers {
    /// The answerer's own record, if it sent one.
    pub own: Option<Arc<NodeRecord>>,
    /// Other peers' records: at most [`MAX_RECORDS`], one per node, none
    /// the answerer's.
    pub records: Vec<Arc<NodeRecord>>,
}

fn parse<M: prost::Message + Default>(bytes: &[u8]) -> Result<M, ProtocolError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(ProtocolError::TooLarge { size: bytes.len() });
    }
    M::decode(bytes).map_err(|e| ProtocolError::Malformed(e.to_string()))
}

fn verify(
    record: &skywire_proto::dht::v1::NodeRecord,
    now_ms: u64,
    cache: &VerifyCache,
) -> Result<Arc<NodeRecord>, ProtocolError> {
    Ok(cache.verify(record, now_ms)?)
}

/// Checks that `record` (if any) is `peer`'s.
fn of_peer(
    record: Option<Arc<NodeRecord>>,
    peer: &PublicKey,
) -> Result<Option<Arc<NodeRecord>>, ProtocolError> {
    match record {
        Some(record) if record.node_id() != *peer => {
            Err(ProtocolError::NotThePeer(record.address().to_string()))
        }
        other => Ok(other),
    }
}

/// A request carrying `sender` (our own record, if we have one).
pub fn encode_request(sender: Option<&NodeRecord>) -> Bytes {
    Bytes::from(
        pb::Request {
            sender: sender.map(NodeRecord::to_proto),
        }
        .encode_to_vec(),
    )
}

/// The sender record of a request from `peer`, verified.
///
/// # Errors
///
/// Oversized or malformed, a bad record, or another node's record.
pub fn decode_request(
    bytes: &[u8],
    peer: &PublicKey,
    now_ms: u64,
    cache: &VerifyCache,
) -> Result<Option<Arc<NodeRecord>>, ProtocolError> {
    let request: pb::Request = parse(bytes)?;
    let sender = request
        .sender
        .map(|r| verify(&r, now_ms, cache))
        .transpose()?;
    of_peer(sender, peer)
}

/// An answer giving out `records`, with our own record `own`.
///
/// # Panics
///
/// If given more than [`MAX_RECORDS`] records: a bug of the caller.
pub fn encode_peers(own: Option<&NodeRecord>, records: &[Arc<NodeRecord>]) -> Bytes {
    assert!(
        records.len() <= MAX_RECORDS,
        "at most {MAX_RECORDS} records"
    );
    Bytes::from(
        pb::Response {
            body: Some(pb::response::Body::Peers(pb::Peers {
                own: own.map(NodeRecord::to_proto),
                records: records.iter().map(|r| r.to_proto()).collect(),
            })),
        }
        .encode_to_vec(),
    )
}

/// An error answer.
pub fn encode_error(code: Code, message: &str) -> Bytes {
    Bytes::from(
        pb::Response {
            body: Some(pb::response::Body::Error(pb::Error {
                code: code.into(),
                message: message.to_owned(),
            })),
        }
        .encode_to_vec(),
    )
}

/// The answer of `peer`, checked: the count before any signature, then
/// every record, then that `own` is the peer's and no node appears twice.
///
/// # Errors
///
/// Any breach of the rules above (the whole answer is refused), or
/// [`ProtocolError::Refused`] for an error answer.
pub fn decode_response(
    bytes: &[u8],
    peer: &PublicKey,
    now_ms: u64,
    cache: &VerifyCache,
) -> Result<Peers, ProtocolError> {
    let response: pb::Response = parse(bytes)?;
    let peers = match response.body {
        Some(pb::response::Body::Peers(peers)) => peers,
        Some(pb::response::Body::Error(error)) => {
            return Err(ProtocolError::Refused {
                code: Code::try_from(error.code).unwrap_or(Code::Unspecified),
                message: error.message.chars().take(256).collect(),
            });
        }
        None => return Err(ProtocolError::Malformed("empty response".into())),
    };
    if peers.records.len() > MAX_RECORDS {
        return Err(ProtocolError::TooManyRecords(peers.records.len()));
    }
    let own = peers.own.map(|r| verify(&r, now_ms, cache)).transpose()?;
    let own = of_peer(own, peer)?;
    let records = peers
        .records
        .iter()
        .map(|r| verify(r, now_ms, cache))
        .collect::<Result<Vec<_>, _>>()?;
    let mut seen = HashSet::with_capacity(records.len() + 1);
    seen.insert(*peer);
    for record in &records {
        if !seen.insert(record.node_id()) {
            return Err(ProtocolError::Repeated(record.address().to_string()));
        }
    }
    Ok(Peers { own, records })
}
