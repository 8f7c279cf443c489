//! The `dht/1` messages: every request and answer survives encoding and
//! decoding, and decoding refuses what breaks a rule (size, list lengths,
//! bad or stale records, key lengths, service names, missing senders) or
//! is an `Error` answer.
//!
//! Every key pair is derived from a counter and every time is given, so
//! every test is deterministic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use prost::Message as _;
use skywire_dht::protocol::{
    self, Envelope, MAX_MESSAGE_BYTES, MAX_RECORDS_PER_LIST, ProtocolError, Request, Response,
};
use skywire_dht::{KEY_LEN, Key};
use skywire_identity::Keypair;
use skywire_proto::dht::v1 as pb;
use skywire_record::{MAX_CLOCK_SKEW_MS, NodeRecord, RECORD_TTL_MS, RecordError, VerifyCache};

/// Now (Unix ms), when records are signed and messages decoded.
const NOW: u64 = 1_700_000_000_000;

/// The `n`-th deterministic key pair.
fn keypair(n: u64) -> Keypair {
    common::keypair(0x44, n)
}

fn record_at(n: u64, timestamp_ms: u64) -> Arc<NodeRecord> {
    let endpoint = SocketAddr::from((Ipv4Addr::new(192, 0, 2, 1), 7337));
    Arc::new(
        NodeRecord::sign(
            &keypair(n),
            vec![endpoint],
            vec!["chain/1".into()],
            n,
            timestamp_ms,
        )
        .unwrap(),
    )
}

fn record(n: u64) -> Arc<NodeRecord> {
    record_at(n, NOW)
}

fn records(first: u64, n: usize) -> Vec<Arc<NodeRecord>> {
    (0..n as u64).map(|i| record(first + i)).collect()
}

fn same_records(a: &[Arc<NodeRecord>], b: &[Arc<NodeRecord>]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| **x == **y)
}

fn same_request(a: &Request, b: &Request) -> bool {
    match (a, b) {
        (Request::Ping, Request::Ping) | (Request::PutRecord, Request::PutRecord) => true,
        (Request::FindNode(x), Request::FindNode(y))
        | (Request::GetRecord(x), Request::GetRecord(y)) => x == y,
        (Request::GetProviders(x), Request::GetProviders(y))
        | (Request::AddProvider(x), Request::AddProvider(y)) => x == y,
        _ => false,
    }
}

fn same_response(a: &Response, b: &Response) -> bool {
    match (a, b) {
        (Response::Pong(x), Response::Pong(y)) => **x == **y,
        (Response::Nodes(x), Response::Nodes(y)) => same_records(x, y),
        (
            Response::Record {
                record: r1,
                closer: c1,
            },
            Response::Record {
                record: r2,
                closer: c2,
            },
        ) => r1.as_deref() == r2.as_deref() && same_records(c1, c2),
        (Response::Stored { ttl_ms: x }, Response::Stored { ttl_ms: y }) => x == y,
        (
            Response::Providers {
                providers: p1,
                closer: c1,
            },
            Response::Providers {
                providers: p2,
                closer: c2,
            },
        ) => same_records(p1, p2) && same_records(c1, c2),
        _ => false,
    }
}

fn request_bytes(sender: Option<pb::NodeRecord>, body: pb::request::Body) -> Vec<u8> {
    pb::Request {
        sender,
        body: Some(body),
    }
    .encode_to_vec()
}

fn response_bytes(body: pb::response::Body) -> Vec<u8> {
    pb::Response { body: Some(body) }.encode_to_vec()
}

fn ping() -> pb::request::Body {
    pb::request::Body::Ping(pb::Ping {})
}

fn nodes(list: Vec<pb::NodeRecord>) -> Vec<u8> {
    response_bytes(pb::response::Body::Nodes(pb::Nodes { nodes: list }))
}

fn protos(list: &[Arc<NodeRecord>]) -> Vec<pb::NodeRecord> {
    list.iter().map(|r| r.to_proto()).collect()
}

/// `bytes` with an unknown length-delimited field (number 15) appended,
/// padded so the whole is exactly `total` bytes.
fn padded(mut bytes: Vec<u8>, total: usize) -> Vec<u8> {
    let varint_len = |mut n: usize| {
        let mut len = 1;
        while n >= 0x80 {
            n >>= 7;
            len += 1;
        }
        len
    };
    let mut payload = total - bytes.len() - 1;
    while 1 + varint_len(payload) + payload + bytes.len() > total {
        payload -= 1;
    }
    assert_eq!(1 + varint_len(payload) + payload + bytes.len(), total);
    bytes.push((15 << 3) | 2);
    let mut n = payload;
    while n >= 0x80 {
        bytes.push(u8::try_from(n & 0x7f).unwrap() | 0x80);
        n >>= 7;
    }
    bytes.push(u8::try_from(n).unwrap());
    bytes.resize(total, 0);
    bytes
}

#[track_caller]
fn assert_invalid(result: Result<impl std::fmt::Debug, ProtocolError>, want: &str) {
    match result {
        Err(ProtocolError::Invalid { field, .. }) => assert_eq!(field, want),
        other => panic!("expected Invalid {{ field: {want:?} }}, got {other:?}"),
    }
}

#[track_caller]
fn assert_one_byte_too_large(result: Result<impl std::fmt::Debug, ProtocolError>) {
    match result {
        Err(ProtocolError::TooLarge { size, max }) => {
            assert_eq!((size, max), (MAX_MESSAGE_BYTES + 1, MAX_MESSAGE_BYTES));
        }
        other => panic!("{other:?}"),
    }
}

#[track_caller]
fn assert_malformed(result: Result<impl std::fmt::Debug, ProtocolError>) {
    assert!(
        matches!(result, Err(ProtocolError::Malformed(_))),
        "{result:?}"
    );
}

#[track_caller]
fn assert_bad_signature(result: Result<impl std::fmt::Debug, ProtocolError>) {
    assert!(
        matches!(
            result,
            Err(ProtocolError::Record(RecordError::BadSignature(_)))
        ),
        "{result:?}"
    );
}

/// Every request, with and without a sender record, decodes to what was
/// encoded (PutRecord and AddProvider always carry a sender).
#[test]
fn requests_round_trip() {
    let target = Key::from_bytes([0xab; KEY_LEN]);
    let key = Key::of_node(&keypair(9).public_key());
    let requests = [
        Request::Ping,
        Request::FindNode(target),
        Request::GetRecord(key),
        Request::PutRecord,
        Request::GetProviders("chain/1".into()),
        Request::AddProvider("chain/1".into()),
    ];
    let sender = record(1);
    for request in requests {
        let needs_sender = matches!(request, Request::PutRecord | Request::AddProvider(_));
        let senders = if needs_sender {
            vec![Some(sender.clone())]
        } else {
            vec![Some(sender.clone()), None]
        };
        for sender in senders {
            let envelope = Envelope {
                sender: sender.clone(),
                request: request.clone(),
            };
            let decoded = Envelope::decode(&envelope.encode(), NOW, None).unwrap();
            assert!(
                same_request(&decoded.request, &request),
                "{request:?} became {:?}",
                decoded.request
            );
            assert_eq!(decoded.sender.as_deref(), sender.as_deref());
        }
    }
}

/// Every answer decodes to what was encoded: empty, one and full (20)
/// lists, a record or none.
#[test]
fn responses_round_trip() {
    let full = records(100, MAX_RECORDS_PER_LIST);
    let responses = [
        Response::Pong(record(1)),
        Response::Nodes(Vec::new()),
        Response::Nodes(records(2, 1)),
        Response::Nodes(full.clone()),
        Response::Record {
            record: Some(record(3)),
            closer: Vec::new(),
        },
        Response::Record {
            record: None,
            closer: full.clone(),
        },
        Response::Stored { ttl_ms: 0 },
        Response::Stored { ttl_ms: 1_800_000 },
        Response::Providers {
            providers: records(4, 3),
            closer: full.clone(),
        },
        Response::Providers {
            providers: Vec::new(),
            closer: Vec::new(),
        },
    ];
    for response in responses {
        let decoded = Response::decode(&response.encode(), NOW, None).unwrap();
        assert!(
            same_response(&decoded, &response),
            "{response:?} became {decoded:?}"
        );
    }
}

/// An answer is encoded with at most 20 records per list (the first 20),
/// so what this node sends, others accept.
#[test]
fn encoding_caps_lists_at_twenty() {
    let many = records(200, MAX_RECORDS_PER_LIST + 5);
    match Response::decode(&Response::Nodes(many.clone()).encode(), NOW, None).unwrap() {
        Response::Nodes(got) => assert!(same_records(&got, &many[..MAX_RECORDS_PER_LIST])),
        other => panic!("{other:?}"),
    }
    let providers = Response::Providers {
        providers: many.clone(),
        closer: many.clone(),
    };
    match Response::decode(&providers.encode(), NOW, None).unwrap() {
        Response::Providers { providers, closer } => {
            assert_eq!(providers.len(), MAX_RECORDS_PER_LIST);
            assert_eq!(closer.len(), MAX_RECORDS_PER_LIST);
        }
        other => panic!("{other:?}"),
    }
}

/// A message of exactly `MAX_MESSAGE_BYTES` is read; one byte more is
/// refused as too large, requests and answers alike, before parsing.
#[test]
fn oversized_messages_refused() {
    let request = padded(request_bytes(None, ping()), MAX_MESSAGE_BYTES);
    assert!(matches!(
        Envelope::decode(&request, NOW, None).unwrap().request,
        Request::Ping
    ));
    let response = padded(
        Response::Stored { ttl_ms: 7 }.encode().to_vec(),
        MAX_MESSAGE_BYTES,
    );
    assert!(matches!(
        Response::decode(&response, NOW, None).unwrap(),
        Response::Stored { ttl_ms: 7 }
    ));

    for bytes in [
        padded(request_bytes(None, ping()), MAX_MESSAGE_BYTES + 1),
        vec![0; MAX_MESSAGE_BYTES + 1],
    ] {
        assert_one_byte_too_large(Envelope::decode(&bytes, NOW, None));
        assert_one_byte_too_large(Response::decode(&bytes, NOW, None));
    }
}

/// An answer with more than 20 records in any list is refused whole;
/// exactly 20 is fine.
#[test]
fn more_than_twenty_records_refused() {
    let twenty = protos(&records(300, MAX_RECORDS_PER_LIST));
    let mut twenty_one = twenty.clone();
    twenty_one.push(record(400).to_proto());

    assert!(Response::decode(&nodes(twenty.clone()), NOW, None).is_ok());
    assert_invalid(
        Response::decode(&nodes(twenty_one.clone()), NOW, None),
        "nodes",
    );

    let reply = |closer| {
        response_bytes(pb::response::Body::Record(pb::RecordReply {
            record: None,
            closer,
        }))
    };
    assert!(Response::decode(&reply(twenty.clone()), NOW, None).is_ok());
    assert_invalid(
        Response::decode(&reply(twenty_one.clone()), NOW, None),
        "closer",
    );

    let providers = |providers, closer| {
        response_bytes(pb::response::Body::Providers(pb::ProvidersReply {
            providers,
            closer,
        }))
    };
    assert!(Response::decode(&providers(twenty.clone(), twenty.clone()), NOW, None).is_ok());
    assert_invalid(
        Response::decode(&providers(twenty_one.clone(), Vec::new()), NOW, None),
        "providers",
    );
    assert_invalid(
        Response::decode(&providers(Vec::new(), twenty_one), NOW, None),
        "closer",
    );
}

/// A record signed by another key but claiming a victim's node id is
/// refused wherever it appears: as the sender, a pong, one of a list (the
/// whole answer goes), the record asked for, a provider.
#[test]
fn forged_records_refused() {
    let victim = record(1);
    let mut forged = record(2).to_proto();
    forged.node_id = victim.to_proto().node_id;
    assert_eq!(forged.node_id, victim.to_proto().node_id);

    assert_bad_signature(Envelope::decode(
        &request_bytes(Some(forged.clone()), ping()),
        NOW,
        None,
    ));
    assert_bad_signature(Response::decode(
        &response_bytes(pb::response::Body::Pong(pb::Pong {
            record: Some(forged.clone()),
        })),
        NOW,
        None,
    ));
    let mut list = protos(&records(10, 5));
    list.insert(2, forged.clone());
    assert_bad_signature(Response::decode(&nodes(list.clone()), NOW, None));
    assert_bad_signature(Response::decode(
        &response_bytes(pb::response::Body::Record(pb::RecordReply {
            record: Some(forged.clone()),
            closer: Vec::new(),
        })),
        NOW,
        None,
    ));
    assert_bad_signature(Response::decode(
        &response_bytes(pb::response::Body::Providers(pb::ProvidersReply {
            providers: vec![forged.clone()],
            closer: Vec::new(),
        })),
        NOW,
        None,
    ));
    // A cache of verified records does not let it through either, even
    // after it verified the victim's genuine record.
    let cache = VerifyCache::default();
    let genuine = request_bytes(Some(victim.to_proto()), ping());
    assert!(Envelope::decode(&genuine, NOW, Some(&cache)).is_ok());
    let forged_request = request_bytes(Some(forged), ping());
    assert_bad_signature(Envelope::decode(&forged_request, NOW, Some(&cache)));
}

/// A record without a signature is refused.
#[test]
fn unsigned_records_refused() {
    let mut unsigned = record(1).to_proto();
    unsigned.signature = Bytes::new();
    for result in [
        Envelope::decode(&request_bytes(Some(unsigned.clone()), ping()), NOW, None).map(|_| ()),
        Response::decode(&nodes(vec![unsigned.clone()]), NOW, None).map(|_| ()),
    ] {
        match result {
            Err(ProtocolError::Record(RecordError::BadSignature(reason))) => {
                assert_eq!(reason, "unsigned");
            }
            other => panic!("{other:?}"),
        }
    }
}

/// A record older than `RECORD_TTL_MS` is refused as expired, one signed
/// more than `MAX_CLOCK_SKEW_MS` ahead as from the future; through a cache
/// of verified records as well (its age is checked on every hit).
#[test]
fn expired_and_future_records_refused() {
    let r = record_at(1, NOW);
    let bytes = request_bytes(Some(r.to_proto()), ping());
    assert!(Envelope::decode(&bytes, NOW + RECORD_TTL_MS, None).is_ok());
    let late = NOW + RECORD_TTL_MS + 1;
    let expired = |result: Result<Envelope, ProtocolError>| {
        matches!(
            result,
            Err(ProtocolError::Record(RecordError::Expired { .. }))
        )
    };
    assert!(expired(Envelope::decode(&bytes, late, None)));
    assert!(matches!(
        Response::decode(&nodes(vec![r.to_proto()]), late, None),
        Err(ProtocolError::Record(RecordError::Expired { .. }))
    ));

    let cache = VerifyCache::default();
    assert!(Envelope::decode(&bytes, NOW, Some(&cache)).is_ok());
    assert!(expired(Envelope::decode(&bytes, late, Some(&cache))));

    let ahead = record_at(2, NOW + MAX_CLOCK_SKEW_MS + 1);
    assert!(matches!(
        Response::decode(&nodes(vec![ahead.to_proto()]), NOW, None),
        Err(ProtocolError::Record(RecordError::FromTheFuture { .. }))
    ));
}

/// Keys must be exactly 20 bytes: a FindNode target or GetRecord key of any
/// other length is refused.
#[test]
fn wrong_key_lengths_refused() {
    for len in [0, 1, KEY_LEN - 1, KEY_LEN + 1, 32] {
        let key = Bytes::from(vec![7; len]);
        let find = pb::request::Body::FindNode(pb::FindNode {
            target: key.clone(),
        });
        assert_invalid(
            Envelope::decode(&request_bytes(None, find), NOW, None),
            "target",
        );
        let get = pb::request::Body::GetRecord(pb::GetRecord { key });
        assert_invalid(
            Envelope::decode(&request_bytes(None, get), NOW, None),
            "key",
        );
    }
    let find = pb::request::Body::FindNode(pb::FindNode {
        target: Bytes::from(vec![7; KEY_LEN]),
    });
    match Envelope::decode(&request_bytes(None, find), NOW, None)
        .unwrap()
        .request
    {
        Request::FindNode(k) => assert_eq!(k, Key::from_bytes([7; KEY_LEN])),
        other => panic!("{other:?}"),
    }
}

/// Service names must be `name/major`: GetProviders and AddProvider with
/// anything else are refused.
#[test]
fn bad_service_names_refused() {
    let sender = Some(record(1).to_proto());
    for bad in [
        "",
        "chain",
        "chain/",
        "/1",
        "Chain/1",
        "chain/1x",
        "a b/1",
        "chain/1/2",
    ] {
        let get = pb::request::Body::GetProviders(pb::GetProviders {
            service: bad.into(),
        });
        assert_invalid(
            Envelope::decode(&request_bytes(None, get), NOW, None),
            "service",
        );
        let add = pb::request::Body::AddProvider(pb::AddProvider {
            service: bad.into(),
        });
        assert_invalid(
            Envelope::decode(&request_bytes(sender.clone(), add), NOW, None),
            "service",
        );
    }
}

/// PutRecord and AddProvider store the sender's record, so they are
/// refused without one.
#[test]
fn stores_need_a_sender() {
    let bodies = [
        pb::request::Body::PutRecord(pb::PutRecord {}),
        pb::request::Body::AddProvider(pb::AddProvider {
            service: "chain/1".into(),
        }),
    ];
    for body in bodies {
        assert_invalid(
            Envelope::decode(&request_bytes(None, body.clone()), NOW, None),
            "sender",
        );
        let sent = Envelope::decode(&request_bytes(Some(record(1).to_proto()), body), NOW, None);
        assert!(sent.unwrap().sender.is_some());
    }
}

/// An `Error` answer decodes as `Refused` with its code and message (cut
/// to 256 characters); an unknown code reads as unspecified.
#[test]
fn error_answers_are_refusals() {
    use pb::error::Code;
    for code in [
        Code::Unspecified,
        Code::BadRequest,
        Code::RateLimited,
        Code::Unavailable,
    ] {
        match Response::decode(&protocol::error(code, "go away"), NOW, None) {
            Err(ProtocolError::Refused { code: got, message }) => {
                assert_eq!(got, code);
                assert_eq!(message, "go away");
            }
            other => panic!("{other:?}"),
        }
    }
    let long = "é".repeat(1000);
    match Response::decode(&protocol::error(Code::BadRequest, &long), NOW, None) {
        Err(ProtocolError::Refused { message, .. }) => {
            assert_eq!(message.chars().count(), 256);
        }
        other => panic!("{other:?}"),
    }
    let unknown = response_bytes(pb::response::Body::Error(pb::Error {
        code: 99,
        message: String::new(),
    }));
    assert!(matches!(
        Response::decode(&unknown, NOW, None),
        Err(ProtocolError::Refused {
            code: Code::Unspecified,
            ..
        })
    ));
}

/// Bytes that are not the message, or a message without a body, are
/// malformed; a Pong without a record is invalid.
#[test]
fn malformed_messages_refused() {
    let garbage = [0xff; 16];
    assert_malformed(Envelope::decode(&garbage, NOW, None));
    assert_malformed(Response::decode(&garbage, NOW, None));
    let empty_request = pb::Request {
        sender: Some(record(1).to_proto()),
        body: None,
    }
    .encode_to_vec();
    assert_malformed(Envelope::decode(&empty_request, NOW, None));
    assert_malformed(Response::decode(&[], NOW, None));
    let pong = response_bytes(pb::response::Body::Pong(pb::Pong { record: None }));
    assert_invalid(Response::decode(&pong, NOW, None), "record");
}
