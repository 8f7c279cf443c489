//! The `pex/1` messages: requests and answers survive encoding and
//! decoding, and decoding refuses what breaks a rule (size, malformed
//! bytes, too many records, a bad record anywhere, a node twice, another
//! node's record where the peer's was due) as a protocol violation, and an
//! `Error` answer as a polite refusal.
//!
//! Every key pair is derived from a counter and every time is given, so
//! every test is deterministic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use prost::Message as _;
use skywire_identity::{Keypair, PublicKey};
use skywire_pex::MAX_RECORDS;
use skywire_pex::protocol::{
    self, Code, MAX_MESSAGE_BYTES, Peers, ProtocolError, decode_request, decode_response,
    encode_error, encode_peers, encode_request,
};
use skywire_proto::dht::v1 as dht_pb;
use skywire_proto::pex::v1 as pb;
use skywire_record::{NodeRecord, RECORD_TTL_MS, RecordError, VerifyCache};

/// Now (Unix ms), when records are signed and messages decoded.
const NOW: u64 = 1_700_000_000_000;

/// The answering (or asking) peer's index among the key pairs.
const PEER: u64 = 0;

/// The `n`-th deterministic key pair.
fn keypair(n: u64) -> Keypair {
    let mut secret = [0u8; 32];
    secret[0] = 0x7e;
    secret[24..].copy_from_slice(&n.to_be_bytes());
    Keypair::from_secret_bytes(&secret).unwrap()
}

/// The `n`-th node's id.
fn node(n: u64) -> PublicKey {
    keypair(n).public_key()
}

/// The peer's node id.
fn peer() -> PublicKey {
    node(PEER)
}

/// A record of the `n`-th node signed at `timestamp_ms`.
fn record_at(n: u64, timestamp_ms: u64) -> Arc<NodeRecord> {
    let endpoint = SocketAddr::from((Ipv4Addr::new(192, 0, 2, 1), 7337));
    Arc::new(
        NodeRecord::sign(
            &keypair(n),
            vec![endpoint],
            vec!["pex/1".into(), "dht/1".into()],
            3,
            timestamp_ms,
        )
        .unwrap(),
    )
}

/// A record of the `n`-th node signed at [`NOW`].
fn record(n: u64) -> Arc<NodeRecord> {
    record_at(n, NOW)
}

/// Records of nodes `first..first + n`.
fn records(first: u64, n: usize) -> Vec<Arc<NodeRecord>> {
    (first..first + n as u64).map(record).collect()
}

/// An answer with `own` and `records` as protobuf, unchecked.
fn response(own: Option<dht_pb::NodeRecord>, records: Vec<dht_pb::NodeRecord>) -> Vec<u8> {
    pb::Response {
        body: Some(pb::response::Body::Peers(pb::Peers { own, records })),
    }
    .encode_to_vec()
}

/// The peer's record and 29 good ones, with `bad` in the `at`-th place
/// (so 30 in all).
fn with_bad(bad: &dht_pb::NodeRecord, at: usize) -> Vec<u8> {
    let mut list: Vec<dht_pb::NodeRecord> = records(1, 29).iter().map(|r| r.to_proto()).collect();
    list.insert(at, bad.clone());
    assert_eq!(list.len(), MAX_RECORDS);
    response(Some(record(PEER).to_proto()), list)
}

fn decode(bytes: &[u8]) -> Result<Peers, ProtocolError> {
    decode_response(bytes, &peer(), NOW, &VerifyCache::default())
}

/// Asserts that `bytes` are refused as a bad record (every other record
/// being fine).
fn assert_bad_record(bad: &dht_pb::NodeRecord, what: fn(&RecordError) -> bool) {
    for at in [0, 13, 29] {
        match decode(&with_bad(bad, at)) {
            Err(ProtocolError::Record(e)) => assert!(what(&e), "at {at}: {e:?}"),
            other => panic!("at {at}: {other:?}"),
        }
    }
    // Alone, it is refused too.
    match decode(&response(None, vec![bad.clone()])) {
        Err(ProtocolError::Record(e)) => assert!(what(&e), "alone: {e:?}"),
        other => panic!("alone: {other:?}"),
    }
}

/// A record of node 1 whose node id was replaced by node 2's.
fn forged() -> dht_pb::NodeRecord {
    let mut forged = record(1).to_proto();
    forged.node_id = Bytes::copy_from_slice(&node(2).to_bytes());
    forged
}

#[test]
fn a_request_survives_encoding() {
    let cache = VerifyCache::default();
    let own = record(PEER);
    let bytes = encode_request(Some(&own));
    let sender = decode_request(&bytes, &peer(), NOW, &cache).unwrap();
    assert_eq!(*sender.unwrap(), *own);

    let bytes = encode_request(None);
    assert!(
        decode_request(&bytes, &peer(), NOW, &cache)
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_request_with_another_nodes_record_is_refused() {
    let bytes = encode_request(Some(&record(1)));
    let err = decode_request(&bytes, &peer(), NOW, &VerifyCache::default()).unwrap_err();
    match &err {
        ProtocolError::NotThePeer(address) => {
            assert_eq!(*address, record(1).address().to_string());
        }
        other => panic!("{other:?}"),
    }
    assert!(err.is_violation());
}

#[test]
fn a_request_with_a_bad_record_is_refused() {
    let cache = VerifyCache::default();
    let mut forged = record(PEER).to_proto();
    forged.seq += 1;
    let bytes = pb::Request {
        sender: Some(forged),
    }
    .encode_to_vec();
    assert!(matches!(
        decode_request(&bytes, &peer(), NOW, &cache),
        Err(ProtocolError::Record(RecordError::BadSignature(_)))
    ));

    let expired = encode_request(Some(&record_at(PEER, NOW - RECORD_TTL_MS - 1000)));
    assert!(matches!(
        decode_request(&expired, &peer(), NOW, &cache),
        Err(ProtocolError::Record(RecordError::Expired { .. }))
    ));
}

#[test]
fn a_request_refuses_oversized_and_malformed_bytes() {
    let cache = VerifyCache::default();
    let big = vec![0u8; MAX_MESSAGE_BYTES + 1];
    assert!(matches!(
        decode_request(&big, &peer(), NOW, &cache),
        Err(ProtocolError::TooLarge { size }) if size == MAX_MESSAGE_BYTES + 1
    ));
    assert!(matches!(
        decode_request(&[0xff, 0xff, 0xff], &peer(), NOW, &cache),
        Err(ProtocolError::Malformed(_))
    ));
}

#[test]
fn an_answer_survives_encoding() {
    let own = record(PEER);
    let others = records(1, MAX_RECORDS);
    let bytes = encode_peers(Some(&own), &others);
    assert!(bytes.len() <= MAX_MESSAGE_BYTES);
    let peers = decode(&bytes).unwrap();
    assert_eq!(*peers.own.unwrap(), *own);
    assert_eq!(peers.records.len(), MAX_RECORDS);
    for (got, sent) in peers.records.iter().zip(&others) {
        assert_eq!(**got, **sent);
    }

    // Without an own record, and empty.
    let peers = decode(&encode_peers(None, &others[..3])).unwrap();
    assert!(peers.own.is_none());
    assert_eq!(peers.records.len(), 3);
    let peers = decode(&encode_peers(None, &[])).unwrap();
    assert!(peers.own.is_none());
    assert!(peers.records.is_empty());
}

#[test]
fn an_answer_decodes_alike_with_a_warm_cache() {
    let cache = VerifyCache::default();
    let bytes = encode_peers(Some(&record(PEER)), &records(1, 5));
    let cold = decode_response(&bytes, &peer(), NOW, &cache).unwrap();
    assert_eq!(cache.len(), 6);
    let warm = decode_response(&bytes, &peer(), NOW + 1, &cache).unwrap();
    assert_eq!(cold.records.len(), warm.records.len());
    for (a, b) in cold.records.iter().zip(&warm.records) {
        assert_eq!(**a, **b);
    }
    // A record cached while fresh is still refused once expired.
    let late = NOW + RECORD_TTL_MS + 1;
    assert!(matches!(
        decode_response(&bytes, &peer(), late, &cache),
        Err(ProtocolError::Record(RecordError::Expired { .. }))
    ));
}

#[test]
fn thirty_one_records_are_too_many() {
    let list = records(1, MAX_RECORDS + 1)
        .iter()
        .map(|r| r.to_proto())
        .collect();
    let err = decode(&response(Some(record(PEER).to_proto()), list)).unwrap_err();
    assert!(matches!(err, ProtocolError::TooManyRecords(31)), "{err:?}");
    assert!(err.is_violation());
}

#[test]
fn too_many_records_are_refused_before_any_signature() {
    // 31 unsigned records: the count is what is refused.
    let list = records(1, MAX_RECORDS + 1)
        .iter()
        .map(|r| {
            let mut r = r.to_proto();
            r.signature = Bytes::new();
            r
        })
        .collect();
    assert!(matches!(
        decode(&response(None, list)),
        Err(ProtocolError::TooManyRecords(31))
    ));
}

#[test]
#[should_panic(expected = "at most 30 records")]
fn encoding_too_many_records_is_a_bug() {
    let _ = encode_peers(None, &records(1, MAX_RECORDS + 1));
}

#[test]
fn a_forged_record_refuses_the_whole_answer() {
    assert_bad_record(&forged(), |e| matches!(e, RecordError::BadSignature(_)));
}

#[test]
fn an_unsigned_record_refuses_the_whole_answer() {
    let mut unsigned = record(40).to_proto();
    unsigned.signature = Bytes::new();
    assert_bad_record(&unsigned, |e| matches!(e, RecordError::BadSignature(_)));
}

#[test]
fn an_expired_record_refuses_the_whole_answer() {
    let expired = record_at(40, NOW - RECORD_TTL_MS - 1000).to_proto();
    assert_bad_record(&expired, |e| matches!(e, RecordError::Expired { .. }));
}

#[test]
fn a_bad_own_record_refuses_the_whole_answer() {
    let mut forged = record(PEER).to_proto();
    forged.timestamp_ms += 1;
    let list = records(1, 5).iter().map(|r| r.to_proto()).collect();
    let err = decode(&response(Some(forged), list)).unwrap_err();
    assert!(
        matches!(err, ProtocolError::Record(RecordError::BadSignature(_))),
        "{err:?}"
    );
    assert!(err.is_violation());
}

#[test]
fn a_node_twice_is_repeated() {
    let mut list: Vec<_> = records(1, 5).iter().map(|r| r.to_proto()).collect();
    list.push(record(3).to_proto());
    let err = decode(&response(Some(record(PEER).to_proto()), list)).unwrap_err();
    match &err {
        ProtocolError::Repeated(address) => {
            assert_eq!(*address, record(3).address().to_string());
        }
        other => panic!("{other:?}"),
    }
    assert!(err.is_violation());

    // Two records of one node with different sequence numbers, too.
    let newer = NodeRecord::sign(&keypair(3), vec![], vec![], 9, NOW).unwrap();
    let mut list: Vec<_> = records(1, 5).iter().map(|r| r.to_proto()).collect();
    list.push(newer.to_proto());
    assert!(matches!(
        decode(&response(None, list)),
        Err(ProtocolError::Repeated(_))
    ));
}

#[test]
fn the_answerers_own_record_among_the_others_is_repeated() {
    for own in [Some(record(PEER).to_proto()), None] {
        let mut list: Vec<_> = records(1, 5).iter().map(|r| r.to_proto()).collect();
        list.insert(2, record(PEER).to_proto());
        let err = decode(&response(own, list)).unwrap_err();
        assert!(matches!(err, ProtocolError::Repeated(_)), "{err:?}");
    }
}

#[test]
fn another_nodes_own_record_is_not_the_peers() {
    let list = records(1, 5).iter().map(|r| r.to_proto()).collect();
    let err = decode(&response(Some(record(40).to_proto()), list)).unwrap_err();
    match &err {
        ProtocolError::NotThePeer(address) => {
            assert_eq!(*address, record(40).address().to_string());
        }
        other => panic!("{other:?}"),
    }
    assert!(err.is_violation());
}

#[test]
fn an_oversized_answer_is_too_large() {
    let big = vec![0u8; MAX_MESSAGE_BYTES + 1];
    let err = decode(&big).unwrap_err();
    assert!(
        matches!(err, ProtocolError::TooLarge { size } if size == MAX_MESSAGE_BYTES + 1),
        "{err:?}"
    );
    assert!(err.is_violation());

    // A well-formed answer that big (a long error message) is refused too.
    let long = encode_error(Code::RateLimited, &"x".repeat(MAX_MESSAGE_BYTES));
    assert!(matches!(decode(&long), Err(ProtocolError::TooLarge { .. })));
}

#[test]
fn garbage_is_malformed() {
    for garbage in [&[0xff, 0xff, 0xff][..], &[0x0a, 0x05, 0x01], &[0x08]] {
        let err = decode(garbage).unwrap_err();
        assert!(matches!(err, ProtocolError::Malformed(_)), "{err:?}");
        assert!(err.is_violation());
    }
}

#[test]
fn an_empty_answer_is_malformed() {
    let empty = pb::Response { body: None }.encode_to_vec();
    assert!(matches!(decode(&empty), Err(ProtocolError::Malformed(_))));
    assert!(matches!(decode(&[]), Err(ProtocolError::Malformed(_))));
}

#[test]
fn an_error_answer_is_a_refusal_not_a_violation() {
    let err = decode(&encode_error(Code::RateLimited, "x")).unwrap_err();
    match &err {
        ProtocolError::Refused { code, message } => {
            assert_eq!(*code, Code::RateLimited);
            assert_eq!(message, "x");
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.is_violation());
    assert!(ProtocolError::TooManyRecords(31).is_violation());

    let err = decode(&encode_error(Code::BadRequest, "")).unwrap_err();
    assert!(matches!(
        err,
        ProtocolError::Refused {
            code: Code::BadRequest,
            ..
        }
    ));
}

#[test]
fn an_error_answer_keeps_256_characters_and_unknown_codes_are_unspecified() {
    let bytes = pb::Response {
        body: Some(pb::response::Body::Error(pb::Error {
            code: 77,
            message: "é".repeat(1000),
        })),
    }
    .encode_to_vec();
    match decode(&bytes).unwrap_err() {
        ProtocolError::Refused { code, message } => {
            assert_eq!(code, Code::Unspecified);
            assert_eq!(message.chars().count(), 256);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn records_given_out_are_distinct_and_not_the_answerers() {
    let peers = decode(&encode_peers(Some(&record(PEER)), &records(1, 10))).unwrap();
    let ids: HashSet<_> = peers.records.iter().map(|r| r.node_id()).collect();
    assert_eq!(ids.len(), 10);
    assert!(!ids.contains(&peer()));
    assert_eq!(protocol::SERVICE, "pex/1");
}
