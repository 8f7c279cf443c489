//! Signed node records: how a node says where it accepts SWP/1 and what it
//! serves, so that others can find it from its address (the DHT and peer
//! exchange carry them).
//!
//! - [`NodeRecord`] is a record whose signature was checked: the only way to
//!   get one is [`NodeRecord::sign`] (our own) or [`NodeRecord::verify`] /
//!   [`NodeRecord::decode`] (anyone else's), so holding one means it is
//!   well-formed, signed by its node and not expired.
//! - [`RecordSet`] keeps the newest record per node, bounded: a higher
//!   sequence number replaces a lower one, a replay (same or lower) changes
//!   nothing, two different records with one sequence number are an
//!   equivocation, and expired records are dropped.
//!
//! The signature covers a canonical encoding of the fields
//! ([`NodeRecord::digest`]), not the protobuf bytes, so re-encoding a record
//! (field order, unknown fields) never breaks it.

use std::collections::HashMap;
use std::net::SocketAddr;

use bytes::Bytes;
use prost::Message as _;
use sha2::{Digest as _, Sha256};
use skywire_identity::{Address, Keypair, PublicKey, Signature};
use skywire_proto::dht::v1 as pb;

/// Endpoints one record may list: enough for IPv4 + IPv6 on a few
/// interfaces; more is a record built to waste memory.
pub const MAX_ENDPOINTS: usize = 8;

/// Services one record may list (as many as a heartbeat may).
pub const MAX_SERVICES: usize = 64;

/// The largest encoded record accepted: 8 endpoints and 64 services of the
/// longest names fit with room to spare.
pub const MAX_RECORD_BYTES: usize = 8 * 1024;

/// How long a record lives after it was signed. Nodes re-sign well before
/// (every few hours), so a record this old belongs to a node that is gone.
pub const RECORD_TTL_MS: u64 = 24 * 3600 * 1000;

/// How far in the future a record's timestamp may be (clock skew); beyond
/// it the record would outlive its TTL.
pub const MAX_CLOCK_SKEW_MS: u64 = 5 * 60 * 1000;

/// Now, in Unix milliseconds: the clock records are signed and checked
/// against (0 before 1970, saturating far in the future).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Domain separation for the signed digest: a signature over a node record
/// can never be taken for a signature over anything else.
const DOMAIN: &[u8] = b"skywire/node-record/v1";

/// Why a record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The bytes are not a `NodeRecord` protobuf, or too many of them.
    #[error("malformed record: {0}")]
    Malformed(String),
    /// A field breaks a rule (length, syntax, count).
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// Which field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The signature is missing, malformed, or not by the record's node.
    #[error("bad signature: {0}")]
    BadSignature(String),
    /// The record is older than [`RECORD_TTL_MS`].
    #[error("expired: signed at {timestamp_ms}, now {now_ms}")]
    Expired {
        /// When it was signed (Unix ms).
        timestamp_ms: u64,
        /// Now (Unix ms).
        now_ms: u64,
    },
    /// The record claims to be signed more than [`MAX_CLOCK_SKEW_MS`] from
    /// now.
    #[error("signed in the future: at {timestamp_ms}, now {now_ms}")]
    FromTheFuture {
        /// When it says it was signed (Unix ms).
        timestamp_ms: u64,
        /// Now (Unix ms).
        now_ms: u64,
    },
}

/// A well-formed node record signed by its node and not expired when it
/// was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    node_id: PublicKey,
    endpoints: Vec<SocketAddr>,
    services: Vec<String>,
    seq: u64,
    timestamp_ms: u64,
    signature: Signature,
}

impl NodeRecord {
    /// Signs a record for `key`'s node.
    ///
    /// # Errors
    ///
    /// [`RecordError::Invalid`] if there are too many endpoints or services,
    /// or a service name is not `name/major`.
    pub fn sign(
        key: &Keypair,
        endpoints: Vec<SocketAddr>,
        services: Vec<String>,
        seq: u64,
        timestamp_ms: u64,
    ) -> Result<Self, RecordError> {
        check_counts(endpoints.len(), services.len())?;
        for service in &services {
            check_service(service)?;
        }
        let node_id = key.public_key();
        let digest = digest(&node_id, &endpoints, &services, seq, timestamp_ms);
        Ok(Self {
            node_id,
            endpoints,
            services,
            seq,
            timestamp_ms,
            signature: key.sign(&digest),
        })
    }

    /// Checks a received record at `now_ms` (Unix ms): every field, the
    /// signature, and its age.
    ///
    /// # Errors
    ///
    /// Any [`RecordError`] but [`RecordError::Malformed`].
    pub fn verify(record: &pb::NodeRecord, now_ms: u64) -> Result<Self, RecordError> {
        let node_id = PublicKey::from_bytes(&record.node_id).map_err(|e| RecordError::Invalid {
            field: "node_id",
            reason: e.to_string(),
        })?;
        check_counts(record.endpoints.len(), record.services.len())?;
        let endpoints = record
            .endpoints
            .iter()
            .map(|e| {
                e.parse::<SocketAddr>().map_err(|_| RecordError::Invalid {
                    field: "endpoints",
                    reason: format!("{:?} is not IP:PORT", truncated(e)),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        for service in &record.services {
            check_service(service)?;
        }
        if record.signature.is_empty() {
            return Err(RecordError::BadSignature("unsigned".into()));
        }
        let signature = Signature::from_bytes(&record.signature)
            .map_err(|e| RecordError::BadSignature(e.to_string()))?;
        let digest = digest(
            &node_id,
            &endpoints,
            &record.services,
            record.seq,
            record.timestamp_ms,
        );
        node_id
            .verify(&digest, &signature)
            .map_err(|e| RecordError::BadSignature(e.to_string()))?;
        let verified = Self {
            node_id,
            endpoints,
            services: record.services.clone(),
            seq: record.seq,
            timestamp_ms: record.timestamp_ms,
            signature,
        };
        verified.check_age(now_ms)?;
        Ok(verified)
    }

    /// Decodes and [`verify`](Self::verify)s a record received as bytes.
    ///
    /// # Errors
    ///
    /// [`RecordError::Malformed`] for bytes that are not a record (or more
    /// than [`MAX_RECORD_BYTES`]), else as [`NodeRecord::verify`].
    pub fn decode(bytes: &[u8], now_ms: u64) -> Result<Self, RecordError> {
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(RecordError::Malformed(format!(
                "{} bytes, at most {MAX_RECORD_BYTES}",
                bytes.len()
            )));
        }
        let record =
            pb::NodeRecord::decode(bytes).map_err(|e| RecordError::Malformed(e.to_string()))?;
        Self::verify(&record, now_ms)
    }

    /// The record as protobuf.
    pub fn to_proto(&self) -> pb::NodeRecord {
        pb::NodeRecord {
            node_id: Bytes::copy_from_slice(&self.node_id.to_bytes()),
            endpoints: self.endpoints.iter().map(ToString::to_string).collect(),
            services: self.services.clone(),
            seq: self.seq,
            timestamp_ms: self.timestamp_ms,
            signature: Bytes::copy_from_slice(&self.signature.to_bytes()),
        }
    }

    /// The record's protobuf bytes.
    pub fn encode(&self) -> Vec<u8> {
        self.to_proto().encode_to_vec()
    }

    /// The SHA-256 digest the signature covers: the bytes of
    /// `skywire/node-record/v1`, the node id, the sequence number and the
    /// timestamp (u64 little-endian), then the endpoints and the services,
    /// each list as a u32 little-endian count followed by every item as a
    /// u16 little-endian length and its UTF-8 text.
    pub fn digest(&self) -> [u8; 32] {
        digest(
            &self.node_id,
            &self.endpoints,
            &self.services,
            self.seq,
            self.timestamp_ms,
        )
    }

    /// The node's id.
    pub fn node_id(&self) -> PublicKey {
        self.node_id
    }

    /// The node's Skycoin address.
    pub fn address(&self) -> Address {
        Address::from_public_key(&self.node_id)
    }

    /// Where the node accepts SWP/1.
    pub fn endpoints(&self) -> &[SocketAddr] {
        &self.endpoints
    }

    /// The services the node serves.
    pub fn services(&self) -> &[String] {
        &self.services
    }

    /// The sequence number.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// When the node signed it (Unix ms).
    pub fn timestamp_ms(&self) -> u64 {
        self.timestamp_ms
    }

    /// Whether the record is past its TTL at `now_ms`.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.timestamp_ms) > RECORD_TTL_MS
    }

    fn check_age(&self, now_ms: u64) -> Result<(), RecordError> {
        if self.is_expired(now_ms) {
            return Err(RecordError::Expired {
                timestamp_ms: self.timestamp_ms,
                now_ms,
            });
        }
        if self.timestamp_ms > now_ms.saturating_add(MAX_CLOCK_SKEW_MS) {
            return Err(RecordError::FromTheFuture {
                timestamp_ms: self.timestamp_ms,
                now_ms,
            });
        }
        Ok(())
    }
}

fn digest(
    node_id: &PublicKey,
    endpoints: &[SocketAddr],
    services: &[String],
    seq: u64,
    timestamp_ms: u64,
) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(DOMAIN);
    hash.update(node_id.to_bytes());
    hash.update(seq.to_le_bytes());
    hash.update(timestamp_ms.to_le_bytes());
    let endpoints: Vec<String> = endpoints.iter().map(ToString::to_string).collect();
    for list in [&endpoints[..], services] {
        // Counts and lengths are bounded by the checks before signing or
        // verifying (at most 64 items of at most 64 bytes).
        hash.update(u32::try_from(list.len()).unwrap_or(u32::MAX).to_le_bytes());
        for item in list {
            hash.update(u16::try_from(item.len()).unwrap_or(u16::MAX).to_le_bytes());
            hash.update(item.as_bytes());
        }
    }
    hash.finalize().into()
}

fn check_counts(endpoints: usize, services: usize) -> Result<(), RecordError> {
    if endpoints > MAX_ENDPOINTS {
        return Err(RecordError::Invalid {
            field: "endpoints",
            reason: format!("{endpoints} endpoints, at most {MAX_ENDPOINTS}"),
        });
    }
    if services > MAX_SERVICES {
        return Err(RecordError::Invalid {
            field: "services",
            reason: format!("{services} services, at most {MAX_SERVICES}"),
        });
    }
    Ok(())
}

fn check_service(service: &str) -> Result<(), RecordError> {
    if skywire_proto::service_name::is_valid(service) {
        Ok(())
    } else {
        Err(RecordError::Invalid {
            field: "services",
            reason: format!("{:?} is not name/major", truncated(service)),
        })
    }
}

/// At most 64 characters of peer-supplied text, for error messages.
fn truncated(text: &str) -> String {
    text.chars().take(64).collect()
}

/// What [`RecordSet::insert`] did with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert {
    /// The first record of this node.
    New,
    /// It replaced an older sequence number.
    Replaced,
    /// A replay: the same or a lower sequence number than the one held.
    Stale,
    /// A different record with the sequence number held: the node signed
    /// two versions of one record (a bug or an attack); the held one stays.
    Equivocation,
    /// The set is full of fresher records; this one was not kept.
    Full,
}

/// The newest record per node, for at most `capacity` nodes.
#[derive(Debug)]
pub struct RecordSet {
    records: HashMap<PublicKey, NodeRecord>,
    capacity: usize,
}

impl RecordSet {
    /// An empty set holding at most `capacity` nodes' records.
    pub fn new(capacity: usize) -> Self {
        Self {
            records: HashMap::new(),
            capacity,
        }
    }

    /// Keeps `record` if it is newer than what is held for its node. When
    /// the set is full, expired records go first, then the one signed
    /// longest ago if `record` is newer than it.
    pub fn insert(&mut self, record: NodeRecord, now_ms: u64) -> Insert {
        if let Some(held) = self.records.get_mut(&record.node_id) {
            return match record.seq.cmp(&held.seq) {
                std::cmp::Ordering::Greater => {
                    *held = record;
                    Insert::Replaced
                }
                std::cmp::Ordering::Equal if *held != record => Insert::Equivocation,
                _ => Insert::Stale,
            };
        }
        if self.records.len() >= self.capacity {
            self.expire(now_ms);
        }
        if self.records.len() >= self.capacity {
            let oldest = self
                .records
                .values()
                .min_by_key(|r| r.timestamp_ms)
                .map(|r| (r.node_id, r.timestamp_ms));
            match oldest {
                Some((id, at)) if at < record.timestamp_ms => {
                    self.records.remove(&id);
                }
                _ => return Insert::Full,
            }
        }
        self.records.insert(record.node_id, record);
        Insert::New
    }

    /// The record held for `node_id`, if any and not expired at `now_ms`.
    pub fn get(&self, node_id: &PublicKey, now_ms: u64) -> Option<&NodeRecord> {
        self.records
            .get(node_id)
            .filter(|record| !record.is_expired(now_ms))
    }

    /// Drops every record expired at `now_ms`; returns how many.
    pub fn expire(&mut self, now_ms: u64) -> usize {
        let before = self.records.len();
        self.records.retain(|_, record| !record.is_expired(now_ms));
        before - self.records.len()
    }

    /// How many records are held.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// Records a [`VerifyCache`] holds by default: a routing table's worth and
/// more (a few hundred bytes each, 8 KiB at most).
pub const DEFAULT_VERIFY_CACHE: usize = 4096;

/// Records verified lately, so that a record heard again costs a comparison
/// instead of a signature check: the DHT hears the same few hundred records
/// in answer after answer.
///
/// A hit needs the very same signature bytes and every field equal to the
/// record verified then, so it is that same signed record; its age is
/// checked again on every hit. At most `capacity` records; the oldest
/// entry leaves first.
#[derive(Debug)]
pub struct VerifyCache {
    capacity: usize,
    inner: std::sync::Mutex<CacheInner>,
}

#[derive(Debug, Default)]
struct CacheInner {
    records: HashMap<Vec<u8>, std::sync::Arc<NodeRecord>>,
    order: std::collections::VecDeque<Vec<u8>>,
}

impl VerifyCache {
    /// A cache of at most `capacity` records.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: std::sync::Mutex::new(CacheInner::default()),
        }
    }

    /// [`NodeRecord::verify`], skipping the signature check for a record
    /// verified before.
    ///
    /// # Errors
    ///
    /// As [`NodeRecord::verify`].
    pub fn verify(
        &self,
        record: &pb::NodeRecord,
        now_ms: u64,
    ) -> Result<std::sync::Arc<NodeRecord>, RecordError> {
        let hit = self
            .lock()
            .records
            .get(record.signature.as_ref())
            .filter(|held| held.matches(record))
            .cloned();
        if let Some(held) = hit {
            held.check_age(now_ms)?;
            return Ok(held);
        }
        let verified = std::sync::Arc::new(NodeRecord::verify(record, now_ms)?);
        let mut inner = self.lock();
        let key = record.signature.to_vec();
        if inner
            .records
            .insert(key.clone(), verified.clone())
            .is_none()
        {
            inner.order.push_back(key);
            while inner.order.len() > self.capacity {
                if let Some(old) = inner.order.pop_front() {
                    inner.records.remove(&old);
                }
            }
        }
        Ok(verified)
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.lock().records.len()
    }

    /// Whether it holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Default for VerifyCache {
    fn default() -> Self {
        Self::new(DEFAULT_VERIFY_CACHE)
    }
}

impl NodeRecord {
    /// Whether `record` carries exactly this record's fields and signature.
    fn matches(&self, record: &pb::NodeRecord) -> bool {
        record.node_id.as_ref() == self.node_id.to_bytes().as_slice()
            && record.seq == self.seq
            && record.timestamp_ms == self.timestamp_ms
            && record.services == self.services
            && record.signature.as_ref() == self.signature.to_bytes().as_slice()
            && record.endpoints.len() == self.endpoints.len()
            && record
                .endpoints
                .iter()
                .zip(&self.endpoints)
                .all(|(text, endpoint)| text.parse::<SocketAddr>().ok() == Some(*endpoint))
    }
}
