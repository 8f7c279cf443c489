//! `pex/1`: peer exchange. A node asks the peers it connects to which
//! peers they know and feeds the answers into the pool's peer store, so
//! that it finds more peers than its bootstrap list without a DHT lookup
//! per peer.
//!
//! The rules (`proto/skywire/pex/v1/pex.proto`):
//!
//! - an answer holds at most [`MAX_RECORDS`] signed node records, each
//!   verified on receipt; one bad record, a duplicate or one too many and
//!   the whole answer is refused (and the peer banned for serving invalid
//!   data);
//! - a node answers one request per peer per [`REQUEST_INTERVAL`] (across
//!   replicas, through the shared cache) and asks each peer at most as
//!   often;
//! - a node gives out only records of peers it dialed and connected to
//!   successfully itself (within [`GIVE_OUT_FOR_MS`]), chosen at random,
//!   so what it says is first-hand and an asker cannot steer it.
//!
//! # Modules
//!
//! - [`protocol`]: the messages, decoded with every limit and record
//!   checked.
//! - [`book`]: which records are known and which may be given out (no
//!   I/O).
//! - [`service`]: the [`Pex`] service: answers `pex/1`, asks new peers,
//!   feeds the pool.

pub mod book;
pub mod protocol;
pub mod service;

pub use book::{Book, GIVE_OUT_FOR_MS, MAX_GIVEN, MAX_HEARD};
pub use protocol::{MAX_RECORDS, SERVICE};
pub use service::{Pex, PexError, REQUEST_INTERVAL};
