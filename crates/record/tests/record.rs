//! Node records: what verifies, and every way a forged, unsigned, tampered,
//! expired or replayed record is refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use prost::Message as _;
use skywire_identity::Keypair;
use skywire_record::{
    Insert, MAX_CLOCK_SKEW_MS, MAX_ENDPOINTS, MAX_RECORD_BYTES, NodeRecord, RECORD_TTL_MS,
    RecordError, RecordSet,
};

const NOW: u64 = 1_800_000_000_000;

fn record(key: &Keypair, seq: u64, at: u64) -> NodeRecord {
    NodeRecord::sign(
        key,
        vec![
            "192.0.2.7:7337".parse().unwrap(),
            "[2001:db8::7]:7337".parse().unwrap(),
        ],
        vec!["dht/1".into(), "echo/1".into()],
        seq,
        at,
    )
    .unwrap()
}

#[test]
fn a_signed_record_round_trips_and_verifies() {
    let key = Keypair::generate();
    let signed = record(&key, 3, NOW);
    let bytes = signed.encode();
    let received = NodeRecord::decode(&bytes, NOW + 1000).unwrap();
    assert_eq!(received, signed);
    assert_eq!(received.node_id(), key.public_key());
    assert_eq!(received.address(), key.address());
    assert_eq!(received.seq(), 3);
    assert_eq!(received.services(), ["dht/1", "echo/1"]);
    assert_eq!(received.endpoints().len(), 2);
}

/// A change made to a received record.
type Tamper = Box<dyn Fn(&mut skywire_proto::dht::v1::NodeRecord)>;

#[test]
fn the_signature_covers_every_field() {
    let key = Keypair::generate();
    let good = record(&key, 3, NOW).to_proto();
    let tampered: Vec<(&str, Tamper)> = vec![
        (
            "endpoint",
            Box::new(|r| r.endpoints[0] = "192.0.2.8:7337".into()),
        ),
        (
            "endpoint dropped",
            Box::new(|r| {
                r.endpoints.pop();
            }),
        ),
        (
            "service added",
            Box::new(|r| r.services.push("chain/1".into())),
        ),
        ("services swapped", Box::new(|r| r.services.swap(0, 1))),
        ("seq", Box::new(|r| r.seq += 1)),
        ("timestamp", Box::new(|r| r.timestamp_ms += 1)),
    ];
    for (what, tamper) in tampered {
        let mut record = good.clone();
        tamper(&mut record);
        assert!(
            matches!(
                NodeRecord::verify(&record, NOW),
                Err(RecordError::BadSignature(_))
            ),
            "{what}"
        );
    }
}

#[test]
fn forged_and_unsigned_records_are_refused() {
    let (victim, forger) = (Keypair::generate(), Keypair::generate());
    // The forger signs a record naming the victim's node id.
    let mut forged = record(&forger, 9, NOW).to_proto();
    forged.node_id = Bytes::copy_from_slice(&victim.public_key().to_bytes());
    assert!(matches!(
        NodeRecord::verify(&forged, NOW),
        Err(RecordError::BadSignature(_))
    ));
    let mut unsigned = record(&victim, 1, NOW).to_proto();
    unsigned.signature = Bytes::new();
    assert_eq!(
        NodeRecord::verify(&unsigned, NOW),
        Err(RecordError::BadSignature("unsigned".into()))
    );
    let mut short = record(&victim, 1, NOW).to_proto();
    short.signature.truncate(64);
    assert!(matches!(
        NodeRecord::verify(&short, NOW),
        Err(RecordError::BadSignature(_))
    ));
    let mut no_key = record(&victim, 1, NOW).to_proto();
    no_key.node_id = Bytes::from_static(&[2; 20]);
    assert!(matches!(
        NodeRecord::verify(&no_key, NOW),
        Err(RecordError::Invalid {
            field: "node_id",
            ..
        })
    ));
}

#[test]
fn expired_and_future_records_are_refused() {
    let key = Keypair::generate();
    let old = record(&key, 1, NOW - RECORD_TTL_MS - 1).to_proto();
    assert!(matches!(
        NodeRecord::verify(&old, NOW),
        Err(RecordError::Expired { .. })
    ));
    let at_ttl = record(&key, 1, NOW - RECORD_TTL_MS).to_proto();
    assert!(NodeRecord::verify(&at_ttl, NOW).is_ok());
    let future = record(&key, 1, NOW + MAX_CLOCK_SKEW_MS + 1).to_proto();
    assert!(matches!(
        NodeRecord::verify(&future, NOW),
        Err(RecordError::FromTheFuture { .. })
    ));
    let skewed = record(&key, 1, NOW + MAX_CLOCK_SKEW_MS).to_proto();
    assert!(NodeRecord::verify(&skewed, NOW).is_ok());
}

#[test]
fn malformed_and_oversized_records_are_refused_before_any_crypto() {
    let key = Keypair::generate();
    assert!(matches!(
        NodeRecord::decode(&[0xff; 10], NOW),
        Err(RecordError::Malformed(_))
    ));
    assert!(matches!(
        NodeRecord::decode(&vec![0; MAX_RECORD_BYTES + 1], NOW),
        Err(RecordError::Malformed(_))
    ));
    let mut many = record(&key, 1, NOW).to_proto();
    many.endpoints = (0..=MAX_ENDPOINTS)
        .map(|i| format!("192.0.2.{i}:7337"))
        .collect();
    assert!(matches!(
        NodeRecord::decode(&many.encode_to_vec(), NOW),
        Err(RecordError::Invalid {
            field: "endpoints",
            ..
        })
    ));
    let mut bad_endpoint = record(&key, 1, NOW).to_proto();
    bad_endpoint.endpoints[0] = "example.com:7337".into();
    assert!(matches!(
        NodeRecord::verify(&bad_endpoint, NOW),
        Err(RecordError::Invalid {
            field: "endpoints",
            ..
        })
    ));
    let mut bad_service = record(&key, 1, NOW).to_proto();
    bad_service.services[0] = "Not A Service".into();
    assert!(matches!(
        NodeRecord::verify(&bad_service, NOW),
        Err(RecordError::Invalid {
            field: "services",
            ..
        })
    ));
    // Signing refuses what verifying would.
    assert!(NodeRecord::sign(&key, vec![], vec!["nope".into()], 1, NOW).is_err());
}

#[test]
fn higher_sequence_replaces_replays_change_nothing_and_equivocation_is_caught() {
    let key = Keypair::generate();
    let mut set = RecordSet::new(10);
    assert_eq!(set.insert(record(&key, 5, NOW), NOW), Insert::New);
    assert_eq!(set.insert(record(&key, 5, NOW), NOW), Insert::Stale);
    assert_eq!(set.insert(record(&key, 4, NOW + 10), NOW), Insert::Stale);
    assert_eq!(set.get(&key.public_key(), NOW).unwrap().seq(), 5);
    // Same seq, different content: signed twice.
    let twin = NodeRecord::sign(&key, vec![], vec![], 5, NOW).unwrap();
    assert_eq!(set.insert(twin, NOW), Insert::Equivocation);
    assert_eq!(set.get(&key.public_key(), NOW).unwrap().services().len(), 2);
    assert_eq!(set.insert(record(&key, 6, NOW + 20), NOW), Insert::Replaced);
    assert_eq!(set.get(&key.public_key(), NOW).unwrap().seq(), 6);
}

#[test]
fn the_set_is_bounded_and_forgets_expired_records() {
    let mut set = RecordSet::new(3);
    let keys: Vec<Keypair> = (0..5).map(|_| Keypair::generate()).collect();
    for (i, key) in keys.iter().take(3).enumerate() {
        assert_eq!(set.insert(record(key, 1, NOW + i as u64), NOW), Insert::New);
    }
    // Full: an older record than everything held is not kept; a newer one
    // evicts the oldest.
    assert_eq!(set.insert(record(&keys[3], 1, NOW - 1), NOW), Insert::Full);
    assert_eq!(set.insert(record(&keys[3], 1, NOW + 10), NOW), Insert::New);
    assert!(set.get(&keys[0].public_key(), NOW).is_none());
    assert_eq!(set.len(), 3);
    // Later, every record has expired: reads miss them, expire drops them.
    let later = NOW + RECORD_TTL_MS + 100;
    assert!(set.get(&keys[3].public_key(), later).is_none());
    assert_eq!(set.expire(later), 3);
    assert!(set.is_empty());
    // And a full set of expired records makes room for a fresh one.
    let mut set = RecordSet::new(1);
    set.insert(record(&keys[0], 1, NOW), NOW);
    assert_eq!(set.insert(record(&keys[4], 1, later), later), Insert::New);
}
