//! `chain/1` and `txrelay/1`: a Skycoin-style blockchain replicated across
//! the network (issue 5). Built on [`skywire_coin`], which holds the data
//! model and the rules that need no state.
//!
//! # Modules
//!
//! - [`api`]: the gRPC API (status, blocks, transactions, balances, submit).
//! - [`chain`]: the one way blocks enter the store: [`chain::Chain::apply`]
//!   reads the head and what a block touches from the store, checks the
//!   block with the verifier, and has the store apply it.
//! - [`mempool`]: the `txrelay/1` transaction pool (sans-IO), by fee rate, with orphans.
//! - [`query`]: reading the chain for the APIs (blocks, transactions, balances).
//! - [`rest`]: the REST API (JSON over HTTP): the same queries, and submitting.
//! - [`protocol`]: the `chain/1` and `txrelay/1` messages, encoded and decoded
//!   with every limit checked.
//! - [`service`]: the running service: serves `chain/1` and `txrelay/1`, syncs, relays,
//!   publishes.
//! - [`spec`]: what defines a chain: its publisher and its signed genesis block.
//! - [`store`]: blocks, transactions and the unspent set (indexed by
//!   address) in the service's database, each block applied atomically.
//! - [`sync`]: the sans-IO planner of headers-first sync: whom to ask for which headers and blocks.
//! - [`verify`]: a signed block checked against the chain's head and its
//!   unspent set (no I/O): what it spends, what it creates, the new
//!   unspent-set hash.
//! - [`wallet`]: building and signing a spend from a wallet's outputs.

pub mod api;
pub mod chain;
pub mod mempool;
pub mod protocol;
pub mod query;
pub mod rest;
pub mod service;
pub mod spec;
pub mod store;
pub mod sync;
pub mod verify;
pub mod wallet;
