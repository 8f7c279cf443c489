//! `dht/1`: a Kademlia DHT over SWP/1, keyed by the 20-byte hash in a
//! Skycoin address, so a node can be found from its address alone and the
//! providers of a service from the service's name.
//!
//! # Modules
//!
//! - [`api`]: the Discovery gRPC API and Resolve on the bus.
//! - [`key`]: the key space and the XOR metric.
//! - [`table`]: the routing table (k-buckets with liveness checks,
//!   replacement caches and subnet limits).
//! - [`lookup`]: iterative lookups over disjoint paths.
//! - [`protocol`]: the `dht/1` messages, decoded with every record
//!   verified.
//! - [`values`]: records and provider entries kept for other nodes.
//! - [`store`]: the routing table saved in the service's database.
//! - [`service`]: the [`Dht`] itself: answers requests, runs lookups,
//!   joins, refreshes and republishes.
//!
//! The table and lookups do no I/O (a sans-IO core): the service drives
//! them over SWP/1 channels, and the benchmark's in-memory network
//! ([`sim`], feature `testing`) drives the very same code for networks of
//! thousands of nodes.

pub mod api;
pub mod key;
pub mod lookup;
pub mod protocol;
pub mod service;
#[cfg(feature = "testing")]
pub mod sim;
pub mod store;
pub mod table;
pub mod values;

pub use key::{Distance, KEY_BITS, KEY_LEN, Key};
pub use lookup::{Goal, Lookup, LookupConfig, Query};
pub use service::{Dht, DhtConfig, DhtError};
pub use store::TableStore;
pub use table::{Contact, Insert, Origin, Rejection, RoutingTable, TableConfig};
