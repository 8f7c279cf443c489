//! What the test files of this directory share: deterministic key pairs
//! and contacts whose records nothing verifies. Each test binary uses a
//! part of it.
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use skywire_dht::{Contact, Key};
use skywire_identity::Keypair;
use skywire_record::NodeRecord;

/// A fixed signing time for contacts' records: nothing verifies them.
pub(crate) const SIGNED_MS: u64 = 1_700_000_000_000;

/// The `n`-th deterministic key pair of `series` (the first byte of the
/// secret; each test file counts in a series of its own).
pub(crate) fn keypair(series: u8, n: u64) -> Keypair {
    let mut secret = [0u8; 32];
    secret[0] = series;
    secret[24..].copy_from_slice(&n.to_be_bytes());
    Keypair::from_secret_bytes(&secret).unwrap()
}

/// An address on the `i`-th /24 of 10.0.0.0/8.
pub(crate) fn subnet_addr(i: usize) -> SocketAddr {
    let [_, _, hi, lo] = u32::try_from(i).unwrap().to_be_bytes();
    SocketAddr::from((Ipv4Addr::new(10, hi, lo, 1), 7337))
}

/// A contact for `key` at `endpoint`, its record at `seq` signed at
/// [`SIGNED_MS`].
pub(crate) fn contact_seq(key: &Keypair, endpoint: SocketAddr, seq: u64) -> Contact {
    let record = NodeRecord::sign(key, vec![endpoint], vec![], seq, SIGNED_MS).unwrap();
    Contact::new(Arc::new(record), endpoint)
}

/// The keys of `contacts`, in order.
pub(crate) fn key_list<'a>(contacts: impl IntoIterator<Item = &'a Contact>) -> Vec<Key> {
    contacts.into_iter().map(|c| *c.key()).collect()
}
