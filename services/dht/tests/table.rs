//! The routing table on its own: k-buckets, least-recently-seen order,
//! liveness checks and replacements, the subnet limits, inbound admission,
//! stale records, `closest` and bucket refreshes.
//!
//! Every key pair is derived from a counter, so every test is
//! deterministic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::{contact_seq, key_list, subnet_addr};
use skywire_dht::table::{K, MAX_FAILURES, REFRESH_INTERVAL, REPLACEMENTS, Subnet};
use skywire_dht::{Contact, Insert, KEY_LEN, Key, Origin, Rejection, RoutingTable, TableConfig};
use skywire_identity::Keypair;

/// Deterministic key pairs, each new one different.
#[derive(Default)]
struct Keys {
    next: u64,
}

impl Keys {
    fn next(&mut self) -> Keypair {
        self.next += 1;
        common::keypair(0x11, self.next)
    }

    /// A key pair whose node key falls in bucket `bucket` of `local`.
    fn in_bucket(&mut self, local: &Key, bucket: usize) -> Keypair {
        loop {
            let key = self.next();
            if local.distance(&node_key(&key)).bucket() == Some(bucket) {
                return key;
            }
        }
    }

    /// A contact at `endpoint` for a new key pair in bucket `bucket` of
    /// `local`.
    fn contact_in(&mut self, local: &Key, bucket: usize, endpoint: SocketAddr) -> Contact {
        contact(&self.in_bucket(local, bucket), endpoint)
    }
}

fn node_key(key: &Keypair) -> Key {
    Key::of_node(&key.public_key())
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(a, b, c, d), 7337))
}

fn contact(key: &Keypair, endpoint: SocketAddr) -> Contact {
    contact_seq(key, endpoint, 1)
}

fn zero() -> Key {
    Key::from_bytes([0; KEY_LEN])
}

fn table(local: Key) -> RoutingTable {
    RoutingTable::new(local, TableConfig::default())
}

#[track_caller]
fn assert_added(table: &mut RoutingTable, contact: &Contact) {
    let insert = table.insert(contact.clone(), Origin::Outbound);
    assert!(
        matches!(insert, Insert::Added),
        "expected Added, got {insert:?}"
    );
}

#[track_caller]
fn assert_rejected(table: &mut RoutingTable, contact: &Contact, why: Rejection) {
    match table.insert(contact.clone(), Origin::Outbound) {
        Insert::Rejected(r) => assert_eq!(r, why),
        other => panic!("expected Rejected({why:?}), got {other:?}"),
    }
}

/// Inserts `contact` into a full bucket and returns the check it asks for.
#[track_caller]
fn assert_replacement(table: &mut RoutingTable, contact: &Contact) -> Option<Contact> {
    match table.insert(contact.clone(), Origin::Outbound) {
        Insert::Replacement { check } => check,
        other => panic!("expected Replacement, got {other:?}"),
    }
}

/// `K` contacts in bucket 0 of a table whose local key is zero, each on its
/// own /24 (numbered from `first_subnet`), all added.
fn full_bucket(keys: &mut Keys, table: &mut RoutingTable, first_subnet: usize) -> Vec<Contact> {
    full_bucket_with_pairs(keys, table, first_subnet).1
}

/// [`full_bucket`], with the key pair of each contact.
fn full_bucket_with_pairs(
    keys: &mut Keys,
    table: &mut RoutingTable,
    first_subnet: usize,
) -> (Vec<Keypair>, Vec<Contact>) {
    let local = *table.local();
    let pairs: Vec<Keypair> = (0..K).map(|_| keys.in_bucket(&local, 0)).collect();
    let contacts: Vec<Contact> = pairs
        .iter()
        .enumerate()
        .map(|(i, k)| contact(k, subnet_addr(first_subnet + i)))
        .collect();
    for c in &contacts {
        assert_added(table, c);
    }
    (pairs, contacts)
}

/// Ten contacts on 10.9.9/24 (hosts 1 to 10), two in each of buckets 0 to
/// 4 of `table`'s local key, all added: the table's limit for that /24.
fn fill_subnet_across_buckets(keys: &mut Keys, table: &mut RoutingTable) -> Vec<Contact> {
    let local = *table.local();
    let mut held = Vec::new();
    for bucket in 0..5 {
        for j in 0..2 {
            let host = u8::try_from(bucket * 2 + j + 1).unwrap();
            let c = keys.contact_in(&local, bucket, v4(10, 9, 9, host));
            assert_added(table, &c);
            held.push(c);
        }
    }
    held
}

/// A bucket holds exactly `K` contacts, least recently seen first: `seen`
/// and hearing from a known contact again each move it to the most recent
/// end, so the contact checked when the bucket overflows is the one heard
/// from longest ago, not the first inserted.
#[test]
fn bucket_holds_k_contacts_least_recently_seen_first() {
    let mut keys = Keys::default();
    let mut table = table(zero());
    let contacts = full_bucket(&mut keys, &mut table, 0);
    assert_eq!(table.len(), K);
    assert_eq!(keys_of(&table), key_list(&contacts));

    table.seen(contacts[0].key());
    let insert = table.insert(contacts[1].clone(), Origin::Outbound);
    assert!(matches!(insert, Insert::Updated), "{insert:?}");
    let mut expected = key_list(&contacts[2..]);
    expected.extend([*contacts[0].key(), *contacts[1].key()]);
    assert_eq!(keys_of(&table), expected);
    assert_eq!(table.len(), K);

    let newcomer = keys.contact_in(&zero(), 0, subnet_addr(100));
    let check = assert_replacement(&mut table, &newcomer).expect("a check of the oldest");
    assert_eq!(check.key(), contacts[2].key());
    assert_eq!(table.len(), K);
    assert!(table.get(newcomer.key()).is_none());
}

fn keys_of(table: &RoutingTable) -> Vec<Key> {
    key_list(table.contacts())
}

/// A full bucket asks for one liveness check at a time: the first newcomer
/// gets the least recently seen contact to check, later newcomers get
/// `None` while it is pending, and once the check is resolved (`seen`) the
/// next newcomer gets the new least recently seen contact.
#[test]
fn full_bucket_checks_one_contact_at_a_time() {
    let mut keys = Keys::default();
    let mut table = table(zero());
    let contacts = full_bucket(&mut keys, &mut table, 0);
    let newcomers: Vec<Contact> = (0..4)
        .map(|i| keys.contact_in(&zero(), 0, subnet_addr(100 + i)))
        .collect();

    let check = assert_replacement(&mut table, &newcomers[0]);
    assert_eq!(check.map(|c| *c.key()), Some(*contacts[0].key()));
    assert!(assert_replacement(&mut table, &newcomers[1]).is_none());
    assert!(assert_replacement(&mut table, &newcomers[2]).is_none());
    // Offering a waiting replacement again does not start a second check.
    assert!(assert_replacement(&mut table, &newcomers[0]).is_none());
    assert_eq!(table.len(), K);

    table.seen(contacts[0].key());
    assert!(table.get(contacts[0].key()).is_some());
    assert_eq!(keys_of(&table).last(), Some(contacts[0].key()));
    let check = assert_replacement(&mut table, &newcomers[3]);
    assert_eq!(check.map(|c| *c.key()), Some(*contacts[1].key()));
    for n in &newcomers {
        assert!(table.get(n.key()).is_none(), "replacements stay out");
    }
}

/// A failed check drops the checked contact at once (a replacement waits)
/// and the newest replacement takes its place, as the most recently seen;
/// the next failure promotes the next newest. The check is over, so the
/// next newcomer asks for a new one.
#[test]
fn failed_check_promotes_the_newest_replacement() {
    let mut keys = Keys::default();
    let mut table = table(zero());
    let contacts = full_bucket(&mut keys, &mut table, 0);
    let r: Vec<Contact> = (0..3)
        .map(|i| keys.contact_in(&zero(), 0, subnet_addr(100 + i)))
        .collect();
    let check = assert_replacement(&mut table, &r[0]).unwrap();
    assert_replacement(&mut table, &r[1]);
    assert_replacement(&mut table, &r[2]);

    assert!(table.failed(check.key()), "dropped at the first failure");
    assert!(table.get(contacts[0].key()).is_none());
    assert!(table.get(r[2].key()).is_some(), "the newest replacement");
    assert!(table.get(r[1].key()).is_none());
    assert!(table.get(r[0].key()).is_none());
    assert_eq!(table.len(), K);
    assert_eq!(keys_of(&table).last(), Some(r[2].key()));

    // The check is over: a newcomer asks to check the next oldest.
    let r3 = keys.contact_in(&zero(), 0, subnet_addr(103));
    let check = assert_replacement(&mut table, &r3).unwrap();
    assert_eq!(check.key(), contacts[1].key());
    assert!(table.failed(check.key()));
    assert!(table.get(r3.key()).is_some(), "newest first");
    assert!(table.failed(contacts[2].key()));
    assert!(table.get(r[1].key()).is_some(), "then the next newest");
    assert_eq!(table.len(), K);
}

/// A check that succeeds (`seen`) keeps the checked contact, now the most
/// recently seen, and leaves the newcomer out.
#[test]
fn seen_check_keeps_the_contact() {
    let mut keys = Keys::default();
    let mut table = table(zero());
    let contacts = full_bucket(&mut keys, &mut table, 0);
    let newcomer = keys.contact_in(&zero(), 0, subnet_addr(100));
    let check = assert_replacement(&mut table, &newcomer).unwrap();
    table.seen(check.key());
    assert!(table.get(contacts[0].key()).is_some());
    assert!(table.get(newcomer.key()).is_none());
    assert_eq!(keys_of(&table).last(), Some(contacts[0].key()));
    assert_eq!(table.len(), K);
}

/// The replacement cache keeps the newest `REPLACEMENTS` newcomers: after
/// more arrived, failures promote them newest first, and once the cache is
/// empty a failure no longer drops a contact at once.
#[test]
fn replacement_cache_keeps_the_newest() {
    let mut keys = Keys::default();
    let mut table = table(zero());
    let contacts = full_bucket(&mut keys, &mut table, 0);
    let extra = 2;
    let newcomers: Vec<Contact> = (0..REPLACEMENTS + extra)
        .map(|i| keys.contact_in(&zero(), 0, subnet_addr(100 + i)))
        .collect();
    for n in &newcomers {
        assert_replacement(&mut table, n);
    }
    for (i, c) in contacts.iter().take(REPLACEMENTS).enumerate() {
        assert!(table.failed(c.key()));
        let promoted = &newcomers[newcomers.len() - 1 - i];
        assert!(table.get(promoted.key()).is_some(), "promotion {i}");
    }
    for n in &newcomers[..extra] {
        assert!(table.get(n.key()).is_none(), "pushed out of the cache");
    }
    // No replacement left: one failure is forgiven.
    let next = &contacts[REPLACEMENTS];
    assert!(!table.failed(next.key()));
    assert!(table.get(next.key()).is_some());
    assert_eq!(table.len(), K);
}

/// Without a replacement waiting, a contact survives `MAX_FAILURES - 1`
/// failures in a row and is dropped at the `MAX_FAILURES`-th; answering in
/// between (`seen`) starts the count again.
#[test]
fn contact_dropped_after_max_failures_without_replacement() {
    let mut keys = Keys::default();
    let mut table = table(zero());
    let c = contact(&keys.next(), subnet_addr(1));
    assert_added(&mut table, &c);

    for _ in 1..MAX_FAILURES {
        assert!(!table.failed(c.key()));
    }
    table.seen(c.key());
    for _ in 1..MAX_FAILURES {
        assert!(!table.failed(c.key()));
        assert!(table.get(c.key()).is_some());
    }
    assert!(table.failed(c.key()));
    assert!(table.get(c.key()).is_none());
    assert_eq!(table.len(), 0);
    assert!(table.is_empty());
    // Failing an unknown contact is nothing.
    assert!(!table.failed(c.key()));
}

/// A bucket takes at most 2 contacts of one /24, among its contacts and
/// among its replacements; another bucket may still take that /24, and
/// another /24 is welcome in the same bucket.
#[test]
fn two_per_subnet_per_bucket() {
    let mut keys = Keys::default();
    let local = zero();
    let mut table = table(local);
    let a = keys.contact_in(&local, 0, v4(10, 1, 1, 1));
    let b = keys.contact_in(&local, 0, v4(10, 1, 1, 2));
    let c_key = keys.in_bucket(&local, 0);
    let d = keys.contact_in(&local, 1, v4(10, 1, 1, 4));
    assert_added(&mut table, &a);
    assert_added(&mut table, &b);
    assert_rejected(
        &mut table,
        &contact(&c_key, v4(10, 1, 1, 3)),
        Rejection::SubnetBucket,
    );
    assert!(table.get(&node_key(&c_key)).is_none());
    assert_added(&mut table, &contact(&c_key, v4(10, 1, 2, 3)));
    assert_added(&mut table, &d);
    assert_eq!(table.len(), 4);

    // Replacements of a full bucket: at most 2 of one /24 as well.
    let mut keys = Keys { next: 10_000 };
    let mut table = self::table(local);
    full_bucket(&mut keys, &mut table, 0);
    let r: Vec<Contact> = (1..=3)
        .map(|i| keys.contact_in(&local, 0, v4(10, 200, 0, i)))
        .collect();
    assert_replacement(&mut table, &r[0]);
    assert_replacement(&mut table, &r[1]);
    assert_rejected(&mut table, &r[2], Rejection::SubnetBucket);
}

/// The table takes at most 10 contacts of one /24 in all, whatever their
/// buckets; removing one makes room for another.
#[test]
fn ten_per_subnet_per_table() {
    let mut keys = Keys::default();
    let local = zero();
    let mut table = table(local);
    let held = fill_subnet_across_buckets(&mut keys, &mut table);
    assert_eq!(table.len(), 10);
    let eleventh = keys.in_bucket(&local, 5);
    assert_rejected(
        &mut table,
        &contact(&eleventh, v4(10, 9, 9, 99)),
        Rejection::SubnetTable,
    );
    // The bucket itself has room for that /24: it is the table's limit.
    let other = keys.contact_in(&local, 5, v4(10, 9, 8, 1));
    assert_added(&mut table, &other);

    assert!(table.remove(held[0].key()).is_some());
    assert!(table.get(held[0].key()).is_none());
    assert_added(&mut table, &contact(&eleventh, v4(10, 9, 9, 99)));
    let twelfth = keys.contact_in(&local, 6, v4(10, 9, 9, 100));
    assert_rejected(&mut table, &twelfth, Rejection::SubnetTable);
}

/// IPv6 addresses count by /48: addresses that differ only past the first
/// 48 bits share the limit, another /48 does not; an IPv4-mapped IPv6
/// address counts as its IPv4 /24.
#[test]
fn ipv6_subnets_are_slash_48() {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert_eq!(
        Subnet::of(ip("2001:db8:aaaa:1::1")),
        Subnet::of(ip("2001:db8:aaaa:ffff:ffff::2"))
    );
    assert_ne!(
        Subnet::of(ip("2001:db8:aaaa::1")),
        Subnet::of(ip("2001:db8:aaab::1"))
    );
    assert_eq!(
        Subnet::of(ip("::ffff:10.1.1.1")),
        Subnet::of(ip("10.1.1.200"))
    );

    let mut keys = Keys::default();
    let local = zero();
    let mut table = table(local);
    let at = |s: &str| SocketAddr::new(ip(s), 7337);
    assert_added(
        &mut table,
        &keys.contact_in(&local, 0, at("2001:db8:aaaa:1::1")),
    );
    assert_added(
        &mut table,
        &keys.contact_in(&local, 0, at("2001:db8:aaaa:ffff::2")),
    );
    let third = keys.in_bucket(&local, 0);
    assert_rejected(
        &mut table,
        &contact(&third, at("2001:db8:aaaa:1234:5678::3")),
        Rejection::SubnetBucket,
    );
    assert_added(&mut table, &contact(&third, at("2001:db8:aaab::3")));

    assert_added(
        &mut table,
        &keys.contact_in(&local, 0, at("::ffff:10.7.7.1")),
    );
    assert_added(&mut table, &keys.contact_in(&local, 0, at("10.7.7.2")));
    let mapped = keys.contact_in(&local, 0, at("10.7.7.3"));
    assert_rejected(&mut table, &mapped, Rejection::SubnetBucket);
}

/// A node that reached us is refused until the table is stocked (its
/// outbound twin is not), and admitted after `mark_stocked`.
#[test]
fn inbound_waits_for_the_table_to_be_stocked() {
    let mut keys = Keys::default();
    let mut table = table(zero());
    assert!(!table.is_stocked());
    let inbound = contact(&keys.next(), subnet_addr(1));
    match table.insert(inbound.clone(), Origin::Inbound) {
        Insert::Rejected(r) => assert_eq!(r, Rejection::NotStocked),
        other => panic!("{other:?}"),
    }
    assert!(table.is_empty());
    assert_added(&mut table, &contact(&keys.next(), subnet_addr(2)));

    table.mark_stocked();
    assert!(table.is_stocked());
    let insert = table.insert(inbound.clone(), Origin::Inbound);
    assert!(matches!(insert, Insert::Added), "{insert:?}");
    assert!(table.get(inbound.key()).is_some());
    assert_eq!(table.len(), 2);
}

/// A table never holds its own node, whatever the origin.
#[test]
fn own_key_rejected() {
    let me = Keys::default().next();
    let mut table = table(node_key(&me));
    table.mark_stocked();
    let own = contact(&me, subnet_addr(1));
    assert_rejected(&mut table, &own, Rejection::Own);
    match table.insert(own, Origin::Inbound) {
        Insert::Rejected(r) => assert_eq!(r, Rejection::Own),
        other => panic!("{other:?}"),
    }
    assert!(table.is_empty());
}

/// A known contact's older record (lower seq) is refused and changes
/// nothing; a newer one replaces the record and the endpoint.
#[test]
fn stale_record_rejected_newer_replaces() {
    let mut keys = Keys::default();
    let mut table = table(zero());
    let key = keys.in_bucket(&zero(), 0);
    assert_added(&mut table, &contact_seq(&key, subnet_addr(1), 5));
    assert_rejected(
        &mut table,
        &contact_seq(&key, subnet_addr(2), 4),
        Rejection::Stale,
    );
    let held = table.get(&node_key(&key)).unwrap();
    assert_eq!(held.record().seq(), 5);
    assert_eq!(held.endpoint(), subnet_addr(1));

    let insert = table.insert(contact_seq(&key, subnet_addr(3), 6), Origin::Outbound);
    assert!(matches!(insert, Insert::Updated), "{insert:?}");
    let held = table.get(&node_key(&key)).unwrap();
    assert_eq!(held.record().seq(), 6);
    assert_eq!(held.endpoint(), subnet_addr(3));
    assert_eq!(table.len(), 1);
    // The old /24 is free again in bucket 0 (two more fit), the new one
    // counted once (one more fits).
    for i in 0..2 {
        assert_added(
            &mut table,
            &keys.contact_in(&zero(), 0, v4(10, 0, 1, 10 + i)),
        );
    }
    assert_added(&mut table, &keys.contact_in(&zero(), 0, v4(10, 0, 3, 10)));
    let third = keys.contact_in(&zero(), 0, v4(10, 0, 3, 11));
    assert_rejected(&mut table, &third, Rejection::SubnetBucket);
}

/// `closest` returns exactly `min(n, len)` contacts, nearest the target
/// first, the same as sorting every contact by distance.
#[test]
fn closest_is_nearest_first_and_exactly_n() {
    let mut keys = Keys::default();
    let local = node_key(&keys.next());
    let mut table = table(local);
    for i in 0..60 {
        let _ = table.insert(contact(&keys.next(), subnet_addr(i)), Origin::Outbound);
    }
    let all: Vec<Contact> = table.contacts().cloned().collect();
    assert!(all.len() >= 30, "{} contacts", all.len());
    let mut targets: Vec<Key> = all.iter().take(3).map(|c| *c.key()).collect();
    targets.push(local);
    targets.push(Key::from_bytes([0xa5; KEY_LEN]));
    for target in targets {
        let mut sorted = key_list(&all);
        sorted.sort_by_key(|k| k.distance(&target));
        for n in [0, 1, 5, K, all.len(), all.len() + 10] {
            let got = key_list(&table.closest(&target, n));
            assert_eq!(got.len(), n.min(all.len()));
            assert_eq!(got, sorted[..got.len()], "target {target}, n {n}");
        }
    }
}

/// `stale_buckets` lists every bucket up to one past the deepest non-empty
/// one that no lookup touched within `REFRESH_INTERVAL`; a touched bucket
/// is left out for exactly that long.
#[test]
fn stale_buckets_and_touch() {
    let start = Instant::now();
    let local = zero();
    let mut table = table(local);
    assert_eq!(table.stale_buckets(start), vec![0]);

    let mut keys = Keys::default();
    assert_added(&mut table, &keys.contact_in(&local, 3, subnet_addr(1)));
    assert_eq!(table.stale_buckets(start), vec![0, 1, 2, 3, 4]);

    let mut in_bucket_2 = [0; KEY_LEN];
    in_bucket_2[0] = 0b0010_0000;
    in_bucket_2[KEY_LEN - 1] = 7;
    let target = Key::from_bytes(in_bucket_2);
    assert_eq!(local.distance(&target).bucket(), Some(2));
    table.touch(&target, start);
    table.touch(&local, start);
    assert_eq!(table.stale_buckets(start), vec![0, 1, 3, 4]);
    let almost = start + REFRESH_INTERVAL - Duration::from_millis(1);
    assert_eq!(table.stale_buckets(almost), vec![0, 1, 3, 4]);
    assert_eq!(
        table.stale_buckets(start + REFRESH_INTERVAL),
        vec![0, 1, 2, 3, 4]
    );
}

/// A known contact whose newer record moves it to another /24 moves only
/// if that /24 has room: into a full /24 it keeps its old endpoint and
/// still counts against its old /24; into a /24 with room it moves, and the
/// counts follow it.
#[test]
fn endpoint_moving_subnet_obeys_the_limits() {
    let mut keys = Keys::default();
    let local = zero();
    let mut table = table(local);
    assert_added(&mut table, &keys.contact_in(&local, 0, v4(10, 1, 1, 1)));
    assert_added(&mut table, &keys.contact_in(&local, 0, v4(10, 1, 1, 2)));
    let mover = keys.in_bucket(&local, 0);
    assert_added(&mut table, &contact(&mover, v4(10, 2, 2, 1)));

    let _ = table.insert(contact_seq(&mover, v4(10, 1, 1, 3), 2), Origin::Outbound);
    let held = table.get(&node_key(&mover)).unwrap();
    assert_eq!(held.endpoint(), v4(10, 2, 2, 1), "10.1.1/24 is full here");
    assert_eq!(table.len(), 3);
    // It still counts against 10.2.2/24: one more fits, not two.
    assert_added(&mut table, &keys.contact_in(&local, 0, v4(10, 2, 2, 2)));
    let late = keys.in_bucket(&local, 0);
    assert_rejected(
        &mut table,
        &contact(&late, v4(10, 2, 2, 3)),
        Rejection::SubnetBucket,
    );

    let _ = table.insert(contact_seq(&mover, v4(10, 3, 3, 1), 3), Origin::Outbound);
    let held = table.get(&node_key(&mover)).unwrap();
    assert_eq!(held.endpoint(), v4(10, 3, 3, 1));
    assert_eq!(held.record().seq(), 3);
    // 10.2.2/24 lost it, 10.3.3/24 gained it.
    assert_added(&mut table, &contact(&late, v4(10, 2, 2, 3)));
    assert_added(&mut table, &keys.contact_in(&local, 0, v4(10, 3, 3, 2)));
    let over = keys.contact_in(&local, 0, v4(10, 3, 3, 3));
    assert_rejected(&mut table, &over, Rejection::SubnetBucket);
}

/// Moving into a /24 that already has 10 contacts in the table is refused
/// as well, even when the bucket itself has room for it.
#[test]
fn endpoint_moving_subnet_obeys_the_table_limit() {
    let mut keys = Keys::default();
    let local = zero();
    let mut table = table(local);
    fill_subnet_across_buckets(&mut keys, &mut table);
    let mover = keys.in_bucket(&local, 6);
    assert_added(&mut table, &contact(&mover, v4(10, 5, 5, 1)));
    let _ = table.insert(contact_seq(&mover, v4(10, 9, 9, 50), 2), Origin::Outbound);
    assert_eq!(
        table.get(&node_key(&mover)).unwrap().endpoint(),
        v4(10, 5, 5, 1)
    );
    let newcomer = keys.contact_in(&local, 7, v4(10, 9, 9, 51));
    assert_rejected(&mut table, &newcomer, Rejection::SubnetTable);
}

/// Promotion skips a replacement whose /24 the bucket already holds twice
/// (it filled up while the replacement waited) and takes the next newest.
#[test]
fn promotion_respects_the_subnet_limit() {
    let mut keys = Keys::default();
    let local = zero();
    let mut table = table(local);
    let (pairs, contacts) = full_bucket_with_pairs(&mut keys, &mut table, 0);
    // contacts[0] is on 10.0.0/24 (subnet_addr(0)); one more fits there.
    let fits = keys.contact_in(&local, 0, subnet_addr(500));
    let same = keys.contact_in(&local, 0, v4(10, 0, 0, 77));
    let check = assert_replacement(&mut table, &fits).unwrap();
    assert_replacement(&mut table, &same);
    table.seen(check.key());
    // contacts[1] moves onto 10.0.0/24: now two there.
    let moved = table.insert(contact_seq(&pairs[1], v4(10, 0, 0, 9), 2), Origin::Outbound);
    assert!(matches!(moved, Insert::Updated), "{moved:?}");
    assert_eq!(
        table.get(contacts[1].key()).unwrap().endpoint(),
        v4(10, 0, 0, 9)
    );

    assert!(table.failed(contacts[5].key()));
    assert!(
        table.get(same.key()).is_none(),
        "would be a third of 10.0.0/24"
    );
    assert!(table.get(fits.key()).is_some());
    assert_eq!(table.len(), K);
}
