//! `chain/1` and `txrelay/1`: a Skycoin-style blockchain replicated across
//! the network (issue 5). Built on [`skywire_coin`], which holds the data
//! model and the rules that need no state.
//!
//! # Modules
//!
//! - [`verify`]: a signed block checked against the chain's head and its
//!   unspent set (no I/O): what it spends, what it creates, the new
//!   unspent-set hash.
//! - [`store`]: blocks, transactions and the unspent set (indexed by
//!   address) in the service's database, each block applied atomically.

pub mod store;
pub mod verify;
