//! What a node keeps for others: put records and provider entries, the
//! refusals (stale, equivocation, not listed), their lifetimes and the
//! per-service cap.
//!
//! Every key pair is derived from a counter and every time is given, so
//! every test is deterministic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use skywire_dht::Key;
use skywire_dht::values::{MAX_PROVIDERS_PER_SERVICE, Refusal, STORE_TTL_MS, Values};
use skywire_identity::Keypair;
use skywire_record::{NodeRecord, RECORD_TTL_MS};

/// A base time (Unix ms).
const T0: u64 = 1_700_000_000_000;

/// The `n`-th deterministic key pair.
fn keypair(n: u64) -> Keypair {
    common::keypair(0x33, n)
}

fn endpoint(last: u8) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(192, 0, 2, last), 7337))
}

/// A record of `key`'s node listing `services`.
fn record_full(
    key: &Keypair,
    services: &[&str],
    seq: u64,
    timestamp_ms: u64,
    host: u8,
) -> Arc<NodeRecord> {
    let services = services.iter().map(|s| (*s).to_owned()).collect();
    Arc::new(NodeRecord::sign(key, vec![endpoint(host)], services, seq, timestamp_ms).unwrap())
}

fn record(key: &Keypair, seq: u64, timestamp_ms: u64) -> Arc<NodeRecord> {
    record_full(key, &[], seq, timestamp_ms, 1)
}

fn key_of(record: &NodeRecord) -> Key {
    Key::of_address(&record.address())
}

/// Values holding `key`'s record with seq 5, put at `T0`; that record and
/// the key it is held under.
fn holding_seq_5(key: &Keypair) -> (Values, Arc<NodeRecord>, Key) {
    let mut values = Values::new();
    let held = record(key, 5, T0);
    values.put_record(held.clone(), T0).unwrap();
    let k = key_of(&held);
    (values, held, k)
}

/// A put record is kept for `STORE_TTL_MS` and returned under its node's
/// key only; putting the very same record again changes nothing.
#[test]
fn put_then_get() {
    let mut values = Values::new();
    let r = record(&keypair(1), 1, T0);
    let other = record(&keypair(2), 1, T0);
    assert_eq!(values.put_record(r.clone(), T0), Ok(STORE_TTL_MS));
    assert_eq!(values.record(&key_of(&r), T0).as_deref(), Some(&*r));
    assert!(values.record(&key_of(&other), T0).is_none());
    assert_eq!(values.records_len(), 1);

    assert_eq!(values.put_record(r.clone(), T0 + 1000), Ok(STORE_TTL_MS));
    assert_eq!(values.records_len(), 1);
    assert_eq!(values.put_record(other.clone(), T0), Ok(STORE_TTL_MS));
    assert_eq!(values.records_len(), 2);
    assert_eq!(values.record(&key_of(&other), T0).as_deref(), Some(&*other));
}

/// A record older than the one held (lower seq) is refused as stale, a
/// different record with the same seq as an equivocation; neither changes
/// what is held. A newer one replaces it.
#[test]
fn stale_and_equivocating_records_are_refused() {
    let key = keypair(1);
    let (mut values, held, k) = holding_seq_5(&key);

    assert_eq!(
        values.put_record(record(&key, 4, T0), T0),
        Err(Refusal::Stale)
    );
    let twin = record_full(&key, &[], 5, T0, 2);
    assert_ne!(twin.digest(), held.digest());
    assert_eq!(values.put_record(twin, T0), Err(Refusal::Equivocation));
    assert_eq!(values.record(&k, T0).as_deref(), Some(&*held));

    let newer = record(&key, 6, T0 + 10);
    assert_eq!(values.put_record(newer.clone(), T0 + 10), Ok(STORE_TTL_MS));
    assert_eq!(values.record(&k, T0 + 10).as_deref(), Some(&*newer));
    assert_eq!(values.records_len(), 1);
}

/// A put record lives exactly `STORE_TTL_MS` after it was put; `expire`
/// then drops it; an expired record no longer blocks an older one.
#[test]
fn records_expire_after_the_store_ttl() {
    let key = keypair(1);
    let (mut values, _, k) = holding_seq_5(&key);
    assert!(values.record(&k, T0 + STORE_TTL_MS - 1).is_some());
    assert!(values.record(&k, T0 + STORE_TTL_MS).is_none());

    values.expire(T0 + STORE_TTL_MS - 1);
    assert_eq!(values.records_len(), 1);
    values.expire(T0 + STORE_TTL_MS);
    assert_eq!(values.records_len(), 0);

    let later = T0 + STORE_TTL_MS;
    let older = record(&key, 3, later);
    assert_eq!(values.put_record(older.clone(), later), Ok(STORE_TTL_MS));
    assert_eq!(values.record(&k, later).as_deref(), Some(&*older));
}

/// Nothing is kept past its record's own expiry (timestamp +
/// `RECORD_TTL_MS`), even when put just before it: the TTL returned says
/// so, for records and provider entries alike.
#[test]
fn never_kept_past_the_record_ttl() {
    let mut values = Values::new();
    let left = 5_000;
    let signed = T0 + left - RECORD_TTL_MS;
    let r = record_full(&keypair(1), &["chain/1"], 1, signed, 1);
    assert_eq!(values.put_record(r.clone(), T0), Ok(left));
    assert!(values.record(&key_of(&r), T0 + left - 1).is_some());
    assert!(values.record(&key_of(&r), T0 + left).is_none());

    let service = Key::of_service("chain/1");
    assert_eq!(values.add_provider("chain/1", r.clone(), T0), Ok(left));
    assert_eq!(values.providers(&service, 10, T0 + left - 1).len(), 1);
    assert!(values.providers(&service, 10, T0 + left).is_empty());
}

/// A record that has expired by the time it is put (the service verifies
/// it on receipt, then puts it a moment later at a new `now`) is not kept,
/// and no positive TTL is claimed for it: `put_record` must neither panic
/// nor wrap around.
#[test]
fn a_record_expired_when_put_is_not_kept() {
    let signed = T0;
    let now = signed + RECORD_TTL_MS + 1;
    let r = record(&keypair(1), 1, signed);
    let mut values = Values::new();
    let put = values.put_record(r.clone(), now);
    assert!(!matches!(put, Ok(ttl) if ttl > 0), "{put:?}");
    assert!(values.record(&key_of(&r), now).is_none());
}

/// The same for a provider entry: `add_provider` with a record expired by
/// then keeps nothing, claims no positive TTL, and does not panic.
#[test]
fn a_provider_expired_when_added_is_not_kept() {
    let signed = T0;
    let now = signed + RECORD_TTL_MS + 1;
    let r = record_full(&keypair(1), &["chain/1"], 1, signed, 1);
    let mut values = Values::new();
    let added = values.add_provider("chain/1", r, now);
    assert!(!matches!(added, Ok(ttl) if ttl > 0), "{added:?}");
    assert!(
        values
            .providers(&Key::of_service("chain/1"), 10, now)
            .is_empty()
    );
}

/// A node provides only services its record lists: `add_provider` refuses
/// others with `NotListed`; a listed one is returned under the service's
/// key and no other.
#[test]
fn provider_must_list_the_service() {
    let mut values = Values::new();
    let r = record_full(&keypair(1), &["chain/1", "echo/2"], 1, T0, 1);
    assert_eq!(
        values.add_provider("echo/1", r.clone(), T0),
        Err(Refusal::NotListed)
    );
    assert_eq!(
        values.add_provider("chain/2", r.clone(), T0),
        Err(Refusal::NotListed)
    );
    assert_eq!(values.provider_entries(), 0);
    assert!(
        values
            .providers(&Key::of_service("echo/1"), 10, T0)
            .is_empty()
    );

    assert_eq!(
        values.add_provider("chain/1", r.clone(), T0),
        Ok(STORE_TTL_MS)
    );
    let got = values.providers(&Key::of_service("chain/1"), 10, T0);
    assert_eq!(got.len(), 1);
    assert_eq!(*got[0], *r);
    assert!(
        values
            .providers(&Key::of_service("echo/2"), 10, T0)
            .is_empty()
    );
    assert_eq!(values.provider_entries(), 1);
}

/// A provider is kept once per node and service: a newer record replaces
/// its entry, an older one is stale, a different one with the same seq an
/// equivocation.
#[test]
fn one_provider_entry_per_node() {
    let mut values = Values::new();
    let key = keypair(1);
    let service = Key::of_service("chain/1");
    // `key`'s record listing chain/1, signed at T0.
    let listing = |seq, host| record_full(&key, &["chain/1"], seq, T0, host);
    values.add_provider("chain/1", listing(5, 1), T0).unwrap();
    assert_eq!(
        values.add_provider("chain/1", listing(4, 1), T0),
        Err(Refusal::Stale)
    );
    assert_eq!(
        values.add_provider("chain/1", listing(5, 9), T0),
        Err(Refusal::Equivocation)
    );
    let newer = listing(6, 2);
    values
        .add_provider("chain/1", newer.clone(), T0 + 1)
        .unwrap();
    assert_eq!(values.provider_entries(), 1);
    let got = values.providers(&service, 10, T0 + 1);
    assert_eq!(got.len(), 1);
    assert_eq!(*got[0], *newer);
}

/// A service keeps at most `MAX_PROVIDERS_PER_SERVICE` providers: one more
/// evicts the entry that expires first (here one whose record expires
/// soon, though it was not the first put), then the next soonest; other
/// services are untouched.
#[test]
fn per_service_cap_evicts_the_soonest_expiring() {
    let mut values = Values::new();
    let service = Key::of_service("chain/1");
    let other = record_full(&keypair(10_000), &["echo/1"], 1, T0, 1);
    values.add_provider("echo/1", other.clone(), T0).unwrap();

    let short_lived = 10;
    let mut providers = Vec::new();
    for i in 0..MAX_PROVIDERS_PER_SERVICE as u64 {
        let signed = if i == short_lived {
            // Its record expires halfway through the store's TTL.
            T0 + i + STORE_TTL_MS / 2 - RECORD_TTL_MS
        } else {
            T0
        };
        let r = record_full(&keypair(i), &["chain/1"], 1, signed, 1);
        values.add_provider("chain/1", r.clone(), T0 + i).unwrap();
        providers.push(r);
    }
    assert_eq!(values.provider_entries(), MAX_PROVIDERS_PER_SERVICE + 1);
    let now = T0 + 100;
    let node_ids = |values: &Values| -> Vec<_> {
        values
            .providers(&service, usize::MAX, now)
            .iter()
            .map(|r| r.node_id())
            .collect()
    };
    assert_eq!(node_ids(&values).len(), MAX_PROVIDERS_PER_SERVICE);

    let late = record_full(&keypair(1_000), &["chain/1"], 1, T0, 1);
    values.add_provider("chain/1", late.clone(), now).unwrap();
    let held = node_ids(&values);
    assert_eq!(held.len(), MAX_PROVIDERS_PER_SERVICE);
    assert!(!held.contains(&providers[short_lived as usize].node_id()));
    assert!(held.contains(&providers[0].node_id()));
    assert!(held.contains(&late.node_id()));

    let later = record_full(&keypair(1_001), &["chain/1"], 1, T0, 1);
    values.add_provider("chain/1", later.clone(), now).unwrap();
    let held = node_ids(&values);
    assert_eq!(held.len(), MAX_PROVIDERS_PER_SERVICE);
    assert!(
        !held.contains(&providers[0].node_id()),
        "put first, expires next"
    );
    assert!(held.contains(&providers[1].node_id()));
    assert!(held.contains(&later.node_id()));

    assert_eq!(values.provider_entries(), MAX_PROVIDERS_PER_SERVICE + 1);
    assert_eq!(
        values.providers(&Key::of_service("echo/1"), 10, now).len(),
        1
    );
}

/// `providers` returns at most `n` live providers, most recently put first;
/// expired ones drop out (and out of the count once `expire` runs), and a
/// provider put again moves to the front.
#[test]
fn providers_most_recent_first_and_at_most_n() {
    let mut values = Values::new();
    let service = Key::of_service("chain/1");
    let rs: Vec<Arc<NodeRecord>> = (0..3)
        .map(|i| record_full(&keypair(i), &["chain/1"], 1, T0, 1))
        .collect();
    for (i, r) in rs.iter().enumerate() {
        values
            .add_provider("chain/1", r.clone(), T0 + 1000 * i as u64)
            .unwrap();
    }
    let ids = |got: Vec<Arc<NodeRecord>>| got.iter().map(|r| r.node_id()).collect::<Vec<_>>();
    let id = |i: usize| rs[i].node_id();
    let now = T0 + 2000;
    assert_eq!(
        ids(values.providers(&service, 3, now)),
        vec![id(2), id(1), id(0)]
    );
    assert_eq!(
        ids(values.providers(&service, 10, now)),
        vec![id(2), id(1), id(0)]
    );
    assert_eq!(ids(values.providers(&service, 2, now)), vec![id(2), id(1)]);
    assert!(values.providers(&service, 0, now).is_empty());

    let first_gone = T0 + STORE_TTL_MS;
    assert_eq!(
        ids(values.providers(&service, 3, first_gone)),
        vec![id(2), id(1)]
    );
    assert_eq!(values.provider_entries(), 3);
    values.expire(first_gone);
    assert_eq!(values.provider_entries(), 2);

    values
        .add_provider("chain/1", rs[0].clone(), first_gone)
        .unwrap();
    assert_eq!(values.provider_entries(), 3);
    assert_eq!(
        ids(values.providers(&service, 3, first_gone)),
        vec![id(0), id(2), id(1)]
    );
}
