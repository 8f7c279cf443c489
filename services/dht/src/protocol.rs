//! The `dht/1` messages (`proto/skywire/dht/v1/dht.proto`): decoding with
//! every limit and every record checked, so nothing unverified reaches the
//! table or a lookup.

use std::sync::Arc;

use bytes::Bytes;
use prost::Message as _;
use skywire_proto::dht::v1 as pb;
use skywire_record::{NodeRecord, RecordError, VerifyCache};

use crate::key::{KEY_LEN, Key};
use crate::table::K;

/// The service name on SWP/1.
pub const SERVICE: &str = "dht/1";

/// Largest message either side sends or accepts: 2 × 20 records of at most
/// 8 KiB, plus framing.
pub const MAX_MESSAGE_BYTES: usize = 2 * K * skywire_record::MAX_RECORD_BYTES + 4096;

/// Records in one list of an answer, at most (Kademlia's k).
pub const MAX_RECORDS_PER_LIST: usize = K;

/// Why a message was refused.
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
    /// Not the protobuf it should be.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A field breaks a rule.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// Which field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A record in it failed verification.
    #[error("bad record: {0}")]
    Record(#[from] RecordError),
    /// The answer is not the kind the request asked for.
    #[error("unexpected answer: {0}")]
    Unexpected(&'static str),
    /// The peer answered with an error.
    #[error("peer refused: {code:?}: {message}")]
    Refused {
        /// Its code.
        code: pb::error::Code,
        /// Its explanation.
        message: String,
    },
}

/// A checked request.
#[derive(Debug, Clone)]
pub enum Request {
    /// Liveness, and the answerer's record.
    Ping,
    /// The nearest nodes to a key.
    FindNode(Key),
    /// A node's record by its key.
    GetRecord(Key),
    /// Store the sender's record.
    PutRecord,
    /// The providers of a service.
    GetProviders(String),
    /// The sender provides a service.
    AddProvider(String),
}

/// A checked request with its sender's record.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The requester's verified record, if it sent one.
    pub sender: Option<Arc<NodeRecord>>,
    /// What it asks.
    pub request: Request,
}

/// A checked answer.
#[derive(Debug, Clone)]
pub enum Response {
    /// The answerer's record.
    Pong(Arc<NodeRecord>),
    /// Nodes nearest a key.
    Nodes(Vec<Arc<NodeRecord>>),
    /// A record, or the nodes nearest its key.
    Record {
        /// The record asked for.
        record: Option<Arc<NodeRecord>>,
        /// Nearer nodes.
        closer: Vec<Arc<NodeRecord>>,
    },
    /// Stored for this long.
    Stored {
        /// Milliseconds.
        ttl_ms: u64,
    },
    /// Providers of a service, and nodes nearest its key.
    Providers {
        /// Providers' records, each listing the service.
        providers: Vec<Arc<NodeRecord>>,
        /// Nearer nodes.
        closer: Vec<Arc<NodeRecord>>,
    },
}

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

fn key(field: &'static str, bytes: &[u8]) -> Result<Key, ProtocolError> {
    let bytes: [u8; KEY_LEN] = bytes.try_into().map_err(|_| ProtocolError::Invalid {
        field,
        reason: format!("{} bytes, want {KEY_LEN}", bytes.len()),
    })?;
    Ok(Key::from_bytes(bytes))
}

fn service(name: String) -> Result<String, ProtocolError> {
    if skywire_proto::service_name::is_valid(&name) {
        Ok(name)
    } else {
        Err(ProtocolError::Invalid {
            field: "service",
            reason: "not name/major".into(),
        })
    }
}

/// Verifies a received record, through `cache` if given.
fn record(
    record: &pb::NodeRecord,
    now_ms: u64,
    cache: Option<&VerifyCache>,
) -> Result<Arc<NodeRecord>, ProtocolError> {
    Ok(match cache {
        Some(cache) => cache.verify(record, now_ms)?,
        None => Arc::new(NodeRecord::verify(record, now_ms)?),
    })
}

fn records(
    field: &'static str,
    list: &[pb::NodeRecord],
    now_ms: u64,
    cache: Option<&VerifyCache>,
) -> Result<Vec<Arc<NodeRecord>>, ProtocolError> {
    if list.len() > MAX_RECORDS_PER_LIST {
        return Err(ProtocolError::Invalid {
            field,
            reason: format!("{} records, at most {MAX_RECORDS_PER_LIST}", list.len()),
        });
    }
    list.iter().map(|r| record(r, now_ms, cache)).collect()
}

fn protos(list: &[Arc<NodeRecord>]) -> Vec<pb::NodeRecord> {
    list.iter()
        .take(MAX_RECORDS_PER_LIST)
        .map(|r| r.to_proto())
        .collect()
}

impl Envelope {
    /// Decodes and checks a request received at `now_ms`, verifying its
    /// records through `cache` if given.
    ///
    /// # Errors
    ///
    /// Any [`ProtocolError`] but `Unexpected` and `Refused`.
    pub fn decode(
        bytes: &[u8],
        now_ms: u64,
        cache: Option<&VerifyCache>,
    ) -> Result<Self, ProtocolError> {
        let message: pb::Request = parse(bytes)?;
        let sender = message
            .sender
            .as_ref()
            .map(|r| record(r, now_ms, cache))
            .transpose()?;
        use pb::request::Body;
        let request = match message.body {
            None => return Err(ProtocolError::Malformed("empty request".into())),
            Some(Body::Ping(_)) => Request::Ping,
            Some(Body::FindNode(f)) => Request::FindNode(key("target", &f.target)?),
            Some(Body::GetRecord(g)) => Request::GetRecord(key("key", &g.key)?),
            Some(Body::PutRecord(_)) => Request::PutRecord,
            Some(Body::GetProviders(g)) => Request::GetProviders(service(g.service)?),
            Some(Body::AddProvider(a)) => Request::AddProvider(service(a.service)?),
        };
        if matches!(request, Request::PutRecord | Request::AddProvider(_)) && sender.is_none() {
            return Err(ProtocolError::Invalid {
                field: "sender",
                reason: "required to store a record".into(),
            });
        }
        Ok(Self { sender, request })
    }

    /// The request as bytes.
    pub fn encode(&self) -> Bytes {
        use pb::request::Body;
        let body = match &self.request {
            Request::Ping => Body::Ping(pb::Ping {}),
            Request::FindNode(k) => Body::FindNode(pb::FindNode {
                target: Bytes::copy_from_slice(k.as_bytes()),
            }),
            Request::GetRecord(k) => Body::GetRecord(pb::GetRecord {
                key: Bytes::copy_from_slice(k.as_bytes()),
            }),
            Request::PutRecord => Body::PutRecord(pb::PutRecord {}),
            Request::GetProviders(s) => Body::GetProviders(pb::GetProviders { service: s.clone() }),
            Request::AddProvider(s) => Body::AddProvider(pb::AddProvider { service: s.clone() }),
        };
        let message = pb::Request {
            sender: self.sender.as_ref().map(|r| r.to_proto()),
            body: Some(body),
        };
        Bytes::from(message.encode_to_vec())
    }
}

impl Response {
    /// Decodes and checks an answer received at `now_ms`, verifying its
    /// records through `cache` if given; an `Error` answer is
    /// [`ProtocolError::Refused`].
    ///
    /// # Errors
    ///
    /// Any [`ProtocolError`] but `Unexpected`.
    pub fn decode(
        bytes: &[u8],
        now_ms: u64,
        cache: Option<&VerifyCache>,
    ) -> Result<Self, ProtocolError> {
        let message: pb::Response = parse(bytes)?;
        use pb::response::Body;
        Ok(match message.body {
            None => return Err(ProtocolError::Malformed("empty response".into())),
            Some(Body::Pong(p)) => {
                let r = p.record.ok_or_else(|| ProtocolError::Invalid {
                    field: "record",
                    reason: "missing".into(),
                })?;
                Self::Pong(record(&r, now_ms, cache)?)
            }
            Some(Body::Nodes(n)) => Self::Nodes(records("nodes", &n.nodes, now_ms, cache)?),
            Some(Body::Record(r)) => Self::Record {
                record: r
                    .record
                    .as_ref()
                    .map(|r| record(r, now_ms, cache))
                    .transpose()?,
                closer: records("closer", &r.closer, now_ms, cache)?,
            },
            Some(Body::Stored(s)) => Self::Stored { ttl_ms: s.ttl_ms },
            Some(Body::Providers(p)) => Self::Providers {
                providers: records("providers", &p.providers, now_ms, cache)?,
                closer: records("closer", &p.closer, now_ms, cache)?,
            },
            Some(Body::Error(e)) => {
                return Err(ProtocolError::Refused {
                    code: e.code(),
                    message: e.message.chars().take(256).collect(),
                });
            }
        })
    }

    /// The answer as bytes.
    pub fn encode(&self) -> Bytes {
        use pb::response::Body;
        let body = match self {
            Self::Pong(r) => Body::Pong(pb::Pong {
                record: Some(r.to_proto()),
            }),
            Self::Nodes(n) => Body::Nodes(pb::Nodes { nodes: protos(n) }),
            Self::Record { record, closer } => Body::Record(pb::RecordReply {
                record: record.as_ref().map(|r| r.to_proto()),
                closer: protos(closer),
            }),
            Self::Stored { ttl_ms } => Body::Stored(pb::Stored { ttl_ms: *ttl_ms }),
            Self::Providers { providers, closer } => Body::Providers(pb::ProvidersReply {
                providers: protos(providers),
                closer: protos(closer),
            }),
        };
        Bytes::from(pb::Response { body: Some(body) }.encode_to_vec())
    }
}

/// An `Error` answer.
pub fn error(code: pb::error::Code, message: &str) -> Bytes {
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
