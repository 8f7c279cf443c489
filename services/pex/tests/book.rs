//! The peer-exchange [`Book`] (no I/O): a heard record is given out only
//! once this node connected to its peer (in either order), `sample` gives
//! out fresh first-hand records at random and never the asker's, the
//! give-out window and `expire`, the bounds (a flood of hearsay never
//! pushes out a first-hand peer; the least recently connected goes first)
//! and refreshing a first-hand peer's record by sequence number.
//!
//! Every key pair is derived from a counter and every time is given, so
//! every test is deterministic (but for the rng seeds chosen on purpose).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use rand::SeedableRng as _;
use rand::rngs::StdRng;
use skywire_identity::{Keypair, PublicKey};
use skywire_pex::{Book, GIVE_OUT_FOR_MS};
use skywire_record::{Insert, NodeRecord, RECORD_TTL_MS};

/// Now (Unix ms): when records are signed and peers connected, unless a
/// test says otherwise.
const NOW: u64 = 1_700_000_000_000;

/// The `n`-th deterministic key pair.
fn keypair(n: u64) -> Keypair {
    let mut secret = [0u8; 32];
    secret[0] = 0x9e;
    secret[24..].copy_from_slice(&n.to_be_bytes());
    Keypair::from_secret_bytes(&secret).unwrap()
}

/// The `n`-th node's id.
fn node(n: u64) -> PublicKey {
    keypair(n).public_key()
}

/// A record of the `n`-th node at `seq`, signed at `timestamp_ms`.
fn record_at(n: u64, seq: u64, timestamp_ms: u64) -> Arc<NodeRecord> {
    let endpoint = SocketAddr::from((Ipv4Addr::new(192, 0, 2, 1), 7337));
    Arc::new(
        NodeRecord::sign(
            &keypair(n),
            vec![endpoint],
            vec!["pex/1".into()],
            seq,
            timestamp_ms,
        )
        .unwrap(),
    )
}

/// A record of the `n`-th node at sequence number 1, signed at [`NOW`].
fn record(n: u64) -> Arc<NodeRecord> {
    record_at(n, 1, NOW)
}

/// A seeded rng.
fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// The node ids of `records`.
fn ids(records: &[Arc<NodeRecord>]) -> HashSet<PublicKey> {
    records.iter().map(|r| r.node_id()).collect()
}

/// A node id in no test's book.
fn asker() -> PublicKey {
    node(u64::MAX)
}

/// A book in which nodes `range` are first-hand peers: heard at [`NOW`]
/// (records signed then) and connected at `connected_ms`.
fn book_with(range: std::ops::Range<u64>, connected_ms: u64) -> Book {
    let mut book = Book::default();
    for n in range {
        assert_eq!(book.heard(record(n), NOW), Insert::New);
        book.connected(node(n), connected_ms);
    }
    book
}

#[test]
fn a_heard_record_is_given_out_only_after_connecting() {
    let mut book = Book::default();
    assert_eq!(book.heard(record(1), NOW), Insert::New);
    assert_eq!(book.heard_len(), 1);
    assert!(!book.is_given(&node(1), NOW));
    assert!(book.sample(&asker(), 30, NOW, &mut rng(1)).is_empty());
    assert_eq!(book.given_len(), 0);

    book.connected(node(1), NOW + 10);
    assert!(book.is_given(&node(1), NOW + 10));
    assert_eq!(book.given_len(), 1);
    let sample = book.sample(&asker(), 30, NOW + 10, &mut rng(1));
    assert_eq!(sample.len(), 1);
    assert_eq!(*sample[0], *record(1));
}

#[test]
fn a_record_heard_after_connecting_is_given_out_at_once() {
    let mut book = Book::default();
    book.connected(node(1), NOW);
    assert!(!book.is_given(&node(1), NOW));
    assert_eq!(book.given_len(), 0);

    assert_eq!(book.heard(record(1), NOW + 10), Insert::New);
    assert!(book.is_given(&node(1), NOW + 10));
    assert_eq!(book.given_len(), 1);
    let sample = book.sample(&asker(), 30, NOW + 10, &mut rng(1));
    assert_eq!(ids(&sample), HashSet::from([node(1)]));

    // The window counts from the connection, not from the record.
    assert!(book.is_given(&node(1), NOW + GIVE_OUT_FOR_MS - 1));
    assert!(!book.is_given(&node(1), NOW + GIVE_OUT_FOR_MS));
}

#[test]
fn a_record_heard_of_an_unconnected_peer_stays_hearsay() {
    let mut book = Book::default();
    book.connected(node(1), NOW);
    assert_eq!(book.heard(record(2), NOW), Insert::New);
    assert!(!book.is_given(&node(2), NOW));
    assert_eq!(book.given_len(), 0);
    assert_eq!(book.heard_len(), 1);
}

#[test]
fn sample_leaves_out_the_asker() {
    let book = book_with(0..5, NOW);
    for seed in 0..20 {
        let sample = book.sample(&node(3), 30, NOW, &mut rng(seed));
        assert_eq!(
            ids(&sample),
            HashSet::from([node(0), node(1), node(2), node(4)])
        );
    }
}

#[test]
fn sample_gives_at_most_n_distinct_records() {
    let book = book_with(0..50, NOW);
    for n in [0, 1, 7, 30, 50, 51, 100] {
        let sample = book.sample(&asker(), n, NOW, &mut rng(n as u64));
        assert_eq!(sample.len(), n.min(50), "n = {n}");
        assert_eq!(ids(&sample).len(), sample.len(), "repeated record");
    }
}

#[test]
fn sample_gives_only_fresh_records() {
    let mut book = Book::default();
    // Fresh: connected now, record signed now.
    for n in 0..3 {
        book.heard(record(n), NOW);
        book.connected(node(n), NOW);
    }
    // Connected too long ago (record still fresh).
    for n in 10..13 {
        book.heard(record_at(n, 1, NOW), NOW);
        book.connected(node(n), NOW - GIVE_OUT_FOR_MS - 1);
    }
    // Connected now, but the record is about to expire; it has by the time
    // of the sample.
    for n in 20..23 {
        book.connected(node(n), NOW);
        book.heard(record_at(n, 1, NOW - RECORD_TTL_MS + 500), NOW);
    }
    assert_eq!(book.given_len(), 9);
    let now = NOW + 1000;
    assert!(record_at(20, 1, NOW - RECORD_TTL_MS + 500).is_expired(now));

    let sample = book.sample(&asker(), 30, now, &mut rng(7));
    assert_eq!(ids(&sample), HashSet::from([node(0), node(1), node(2)]));
    for n in (10..13).chain(20..23) {
        assert!(!book.is_given(&node(n), now), "node {n} given out");
    }
}

#[test]
fn sample_is_random() {
    let book = book_with(0..100, NOW);
    let first = ids(&book.sample(&asker(), 30, NOW, &mut rng(1)));
    let second = ids(&book.sample(&asker(), 30, NOW, &mut rng(2)));
    assert_eq!(first.len(), 30);
    assert_eq!(second.len(), 30);
    assert_ne!(first, second);

    // Over many samples every peer turns up: none is favoured out.
    let mut seen = HashSet::new();
    for seed in 0..200 {
        seen.extend(ids(&book.sample(&asker(), 30, NOW, &mut rng(seed))));
    }
    assert_eq!(seen.len(), 100);
}

#[test]
fn a_peer_is_given_out_for_a_while_after_connecting() {
    let mut book = book_with(1..2, NOW);
    assert!(book.is_given(&node(1), NOW));
    assert!(book.is_given(&node(1), NOW + GIVE_OUT_FOR_MS - 1));
    let late = NOW + GIVE_OUT_FOR_MS;
    // The record itself still lives: only the connection is too old.
    assert!(!record(1).is_expired(late));
    assert!(!book.is_given(&node(1), late));
    assert!(book.sample(&asker(), 30, late, &mut rng(1)).is_empty());

    // Not yet dropped: `expire` does that.
    assert_eq!(book.given_len(), 1);
    book.expire(NOW + GIVE_OUT_FOR_MS - 1);
    assert_eq!(book.given_len(), 1);
    book.expire(late);
    assert_eq!(book.given_len(), 0);
    assert!(!book.is_given(&node(1), NOW));
}

#[test]
fn connecting_again_renews_the_window() {
    let mut book = book_with(1..3, NOW);
    let again = NOW + 3_600_000;
    book.connected(node(1), again);
    // Node 1's first record (signed at NOW) is past its TTL then: renew it
    // too.
    let later = NOW + GIVE_OUT_FOR_MS + 1;
    assert!(record(1).is_expired(later));
    assert_eq!(book.heard(record_at(1, 2, again), again), Insert::Replaced);

    assert!(book.is_given(&node(1), later));
    assert!(!book.is_given(&node(2), later));
    book.expire(later);
    assert_eq!(book.given_len(), 1);
    let sample = book.sample(&asker(), 30, later, &mut rng(1));
    assert_eq!(ids(&sample), HashSet::from([node(1)]));
}

#[test]
fn expire_drops_peers_whose_record_expired() {
    let mut book = Book::default();
    book.connected(node(1), NOW);
    book.heard(record_at(1, 1, NOW - RECORD_TTL_MS + 500), NOW);
    book.connected(node(2), NOW);
    book.heard(record(2), NOW);
    assert_eq!(book.given_len(), 2);
    book.expire(NOW + 1000);
    assert_eq!(book.given_len(), 1);
    assert!(book.is_given(&node(2), NOW + 1000));
}

#[test]
fn a_flood_of_hearsay_never_evicts_given_peers() {
    let mut book = Book::new(10, 5);
    for n in 0..5 {
        book.heard(record(n), NOW);
        book.connected(node(n), NOW);
    }
    assert_eq!(book.given_len(), 5);

    // 100 fresh records, each signed later than any given peer's.
    for n in 100..200 {
        let at = NOW + n;
        book.heard(record_at(n, 1, at), at);
    }
    let now = NOW + 200;
    assert!(book.heard_len() <= 10);
    assert_eq!(book.given_len(), 5);
    for n in 0..5 {
        assert!(book.is_given(&node(n), now), "given peer {n} lost");
    }
    let sample = book.sample(&asker(), 30, now, &mut rng(1));
    assert_eq!(ids(&sample), (0..5).map(node).collect());
    // None of the flood is given out.
    for n in 100..200 {
        assert!(!book.is_given(&node(n), now));
    }
}

#[test]
fn a_flood_of_hearsay_never_evicts_a_peer_whose_record_is_awaited() {
    let mut book = Book::new(10, 5);
    book.connected(node(1), NOW);
    for n in 100..200 {
        book.heard(record_at(n, 1, NOW + n), NOW + n);
    }
    assert_eq!(book.heard(record(1), NOW + 300), Insert::New);
    assert!(book.is_given(&node(1), NOW + 300));
}

#[test]
fn the_least_recently_connected_peer_goes_first() {
    let mut book = Book::new(10, 2);
    for n in 1..=3 {
        book.heard(record(n), NOW);
    }
    book.connected(node(1), NOW + 1);
    book.connected(node(2), NOW + 2);
    // Node 1 connected again: node 2 is now the least recent.
    book.connected(node(1), NOW + 3);
    book.connected(node(3), NOW + 4);
    assert_eq!(book.given_len(), 2);
    assert!(book.is_given(&node(1), NOW + 4));
    assert!(!book.is_given(&node(2), NOW + 4));
    assert!(book.is_given(&node(3), NOW + 4));

    book.connected(node(2), NOW + 5);
    assert_eq!(book.given_len(), 2);
    assert!(!book.is_given(&node(1), NOW + 5));
    assert!(book.is_given(&node(2), NOW + 5));
    assert!(book.is_given(&node(3), NOW + 5));
}

#[test]
fn a_third_connected_peer_evicts_the_first() {
    let mut book = Book::new(10, 2);
    for n in 1..=3 {
        book.heard(record(n), NOW);
        book.connected(node(n), NOW + n);
    }
    assert_eq!(book.given_len(), 2);
    assert!(!book.is_given(&node(1), NOW + 3));
    assert!(book.is_given(&node(2), NOW + 3));
    assert!(book.is_given(&node(3), NOW + 3));
}

#[test]
fn a_higher_seq_refreshes_a_given_peers_record() {
    let mut book = book_with(1..2, NOW);
    assert_eq!(
        book.heard(record_at(1, 5, NOW + 10), NOW + 10),
        Insert::Replaced
    );
    let sample = book.sample(&asker(), 30, NOW + 10, &mut rng(1));
    assert_eq!(sample.len(), 1);
    assert_eq!(sample[0].seq(), 5);
    assert_eq!(*sample[0], *record_at(1, 5, NOW + 10));
    assert_eq!(book.given_len(), 1);

    // The same or a lower sequence number changes nothing.
    assert_eq!(
        book.heard(record_at(1, 5, NOW + 20), NOW + 20),
        Insert::Stale
    );
    assert_eq!(
        book.heard(record_at(1, 4, NOW + 30), NOW + 30),
        Insert::Stale
    );
    assert_eq!(book.heard(record_at(1, 1, NOW), NOW + 30), Insert::Stale);
    let sample = book.sample(&asker(), 30, NOW + 30, &mut rng(1));
    assert_eq!(*sample[0], *record_at(1, 5, NOW + 10));
}

#[test]
fn books_are_at_least_one_big() {
    let mut book = Book::new(0, 0);
    book.heard(record(1), NOW);
    assert_eq!(book.heard_len(), 1);
    book.connected(node(1), NOW);
    assert!(book.is_given(&node(1), NOW));
}

/// A peer whose record is awaited stays awaited when another awaited peer
/// connects again, even with the awaited set full.
#[test]
fn connecting_again_to_an_awaited_peer_keeps_the_others() {
    let mut book = Book::new(10, 2);
    book.connected(node(1), NOW);
    book.connected(node(2), NOW + 1);
    // Node 2 is already awaited: nothing needs to make room.
    book.connected(node(2), NOW + 2);
    assert_eq!(book.heard(record(1), NOW + 3), Insert::New);
    assert!(book.is_given(&node(1), NOW + 3));
}
