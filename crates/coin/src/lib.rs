//! Skycoin's blockchain data model, byte for byte: the binary encoding, transactions,
//! unspent outputs, coin hours, fees and blocks.
//!
//! Sans-IO: plain data, encodings and checks; no sockets, no async, no storage. The chain
//! service builds on it; a test vector or a fuzzer can drive it directly.
//!
//! # Modules
//!
//! - [`encoding`]: Skycoin's binary encoding ([`Encoder`], [`Decoder`], the [`Encode`] and
//!   [`Decode`] traits): little-endian integers, raw arrays, count-prefixed slices of at
//!   most 65535 elements, exact decoding.
//! - [`hash`]: [`Hash`](struct@Hash) (SHA-256), [`add_sha256`], [`merkle`].
//! - [`address`]: addresses in the chain's 21-byte form (version, then key hash), the null
//!   address.
//! - [`sig`]: [`Sig`], a signature as carried on the chain, checked exactly as Skycoin
//!   checks it (including the high-`s` signatures Skycoin accepts).
//! - [`transaction`]: [`Transaction`] and [`Output`]; ids, inner hash, signing, and
//!   Skycoin's checks ([`Transaction::verify`], [`Transaction::verify_input_signatures`]).
//! - [`ux`]: unspent outputs ([`UxOut`]), their ids, coin hours, and
//!   [`create_unspents`].
//! - [`fee`]: fees and the burn factor, coin units, droplet precision, size limit.
//! - [`block`]: [`BlockHeader`], [`BlockBody`], [`Block`] (with [`Block::genesis`]),
//!   [`SignedBlock`], and the unspent set's [`UxHash`].
//!
//! # How a block is checked
//!
//! Against the chain's head (the previous block) and its unspent set: the header's
//! sequence number, time and previous hash follow the head's; its body hash is
//! [`BlockBody::hash`]; every transaction passes [`Transaction::verify`] and
//! [`Transaction::verify_input_signatures`] with the outputs it spends (each signature
//! recovered once, [`Transaction::recover_signer`], for both checks); coins are neither
//! created nor destroyed and hours do not grow (computed with [`UxOut::coin_hours`] at the
//! head's time); and the header's [`UxHash`] is that of the unspent set before the block.
//! Then the spent outputs leave the set and [`create_unspents`] enter it. Those steps that
//! need the unspent set belong to the chain service; this crate supplies every piece.
//!
//! ```
//! use skywire_coin::{Block, Decode, Encode, Transaction, create_unspents};
//! use skywire_identity::Address;
//!
//! let address: Address = "2jBbGxZRGoQG1mqhPBnXnLTxK6oxsTf8os6".parse()?;
//! let genesis = Block::genesis(address, 100_000_000_000_000, 1_426_562_704);
//! assert_eq!(
//!     genesis.hash().to_string(),
//!     "0551a1e5af999fe8fff529f6f2ab341e1e33db95135eef1b2be44fe6981349f3"
//! );
//! let tx = &genesis.body.transactions[0];
//! let bytes = tx.encode()?;
//! assert_eq!(bytes.len(), 86);
//! assert_eq!(&Transaction::decode_exact(&bytes)?, tx);
//! let unspent = create_unspents(&genesis.header, tx);
//! assert_eq!(unspent[0].coin_hours(1_426_562_704)?, 100_000_000_000_000);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod address;
pub mod block;
pub mod encoding;
pub mod fee;
pub mod hash;
pub mod sig;
pub mod transaction;
pub mod ux;

pub use address::{ADDRESS_LEN, is_null, null_address};
pub use block::{Block, BlockBody, BlockError, BlockHeader, SignedBlock, UxHash};
pub use encoding::{Decode, DecodeError, Decoder, Encode, EncodeError, Encoder, MAX_LEN};
pub use fee::{
    DEFAULT_BURN_FACTOR, DROPLETS_PER_COIN, FeeError, MAX_TRANSACTION_SIZE, required_fee,
    transaction_fee, verify_fee,
};
pub use hash::{Hash, add_sha256, merkle, sha256};
pub use sig::{Sig, SigError};
pub use transaction::{Output, SignError, Transaction, TxError};
pub use ux::{HoursError, UxBody, UxHead, UxOut, create_unspents};
