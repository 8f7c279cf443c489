//! Blocks (Skycoin's `coin.Block`, `coin.SignedBlock`) and the unspent set's hash.
//!
//! A [`Block`] is a [`BlockHeader`] and a [`BlockBody`] (its transactions). The header
//! commits to the body by the Merkle root of the transaction ids ([`BlockBody::hash`], not a
//! hash of the body's bytes), to the previous block by its hash, and to the unspent set
//! *before* the block by [`UxHash`]. The block's hash is the hash of its 124-byte header,
//! and the chain's key signs that hash ([`SignedBlock`]).
//!
//! Header encoding, little-endian:
//!
//! ```text
//! u32 version | u64 time | u64 bk_seq | u64 fee | [32] prev_hash | [32] body_hash | [32] ux_hash
//! ```

use skywire_identity::{Address, Keypair, PublicKey};

use crate::encoding::{Decode, DecodeError, Decoder, Encode, EncodeError, Encoder};
use crate::hash::{Hash, merkle, sha256};
use crate::sig::{Sig, SigError};
use crate::transaction::{Output, Transaction};

/// Why a block could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BlockError {
    /// A block must carry at least one transaction ("Refusing to create block with no
    /// transactions").
    #[error("a block needs at least one transaction")]
    NoTransactions,

    /// Time must move forward ("Time can only move forward").
    #[error("block time {time} is not after the previous block's {prev}")]
    TimeNotAfterPrevious {
        /// The new block's time.
        time: u64,
        /// The previous block's time.
        prev: u64,
    },
}

/// A block's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BlockHeader {
    /// Version (0 on mainnet; copied from the previous block, never checked).
    pub version: u32,
    /// Time (Unix seconds); later than the previous block's.
    pub time: u64,
    /// Sequence number: 0 for genesis, then one more per block.
    pub bk_seq: u64,
    /// Total fee (coin hours burned) of the block's transactions, at the previous block's
    /// time (not checked when a block is received).
    pub fee: u64,
    /// Hash of the previous block's header (zero for genesis).
    pub prev_hash: Hash,
    /// [`BlockBody::hash`] of the body.
    pub body_hash: Hash,
    /// [`UxHash`] of the unspent set before this block (zero for genesis).
    pub ux_hash: Hash,
}

impl BlockHeader {
    /// Length of the encoding.
    pub const ENCODED_LEN: usize = 124;

    /// The block's hash: SHA-256 of the 124-byte header.
    pub fn hash(&self) -> Hash {
        let mut enc = Encoder::with_capacity(Self::ENCODED_LEN);
        self.write(&mut enc);
        sha256(enc.as_bytes())
    }

    /// The header of the block after `prev` (Skycoin's `NewBlockHeader`): `prev`'s version,
    /// the next sequence number, `prev`'s hash, and `body`'s hash.
    ///
    /// # Errors
    ///
    /// [`BlockError::TimeNotAfterPrevious`] unless `time` is after `prev.time`.
    pub fn next(
        prev: &Self,
        ux_hash: Hash,
        time: u64,
        fee: u64,
        body: &BlockBody,
    ) -> Result<Self, BlockError> {
        if time <= prev.time {
            return Err(BlockError::TimeNotAfterPrevious {
                time,
                prev: prev.time,
            });
        }
        Ok(Self {
            version: prev.version,
            time,
            bk_seq: prev.bk_seq.wrapping_add(1),
            fee,
            prev_hash: prev.hash(),
            body_hash: body.hash(),
            ux_hash,
        })
    }

    fn write(&self, enc: &mut Encoder) {
        enc.u32(self.version);
        enc.u64(self.time);
        enc.u64(self.bk_seq);
        enc.u64(self.fee);
        enc.bytes(&self.prev_hash.0);
        enc.bytes(&self.body_hash.0);
        enc.bytes(&self.ux_hash.0);
    }
}

/// A block's transactions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BlockBody {
    /// The transactions, in order (at most 65535).
    pub transactions: Vec<Transaction>,
}

impl BlockBody {
    /// The body hash: the Merkle root of the transaction ids ([`merkle`]); for one
    /// transaction, its id.
    pub fn hash(&self) -> Hash {
        let hashes: Vec<Hash> = self.transactions.iter().map(Transaction::hash).collect();
        merkle(&hashes)
    }

    /// The sum of the transactions' sizes, without the body's count prefix (Skycoin's
    /// `BlockBody.Size`, what the block size limit applies to).
    pub fn size(&self) -> usize {
        self.transactions.iter().map(Transaction::size).sum()
    }
}

/// A block.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// The transactions.
    pub body: BlockBody,
}

impl Block {
    /// The genesis block (Skycoin's `NewGenesisBlock`): one transaction with no inputs, no
    /// signatures, `length` 0 and a zero inner hash, whose one output gives `coins` droplets
    /// and as many hours to `address`; header version 0, sequence number 0, fee 0, zero
    /// previous and unspent-set hashes.
    pub fn genesis(address: Address, coins: u64, timestamp: u64) -> Self {
        let tx = Transaction {
            outputs: vec![Output {
                address,
                coins,
                hours: coins,
            }],
            ..Transaction::default()
        };
        let body = BlockBody {
            transactions: vec![tx],
        };
        let header = BlockHeader {
            version: 0,
            time: timestamp,
            bk_seq: 0,
            fee: 0,
            prev_hash: Hash::ZERO,
            body_hash: body.hash(),
            ux_hash: Hash::ZERO,
        };
        Self { header, body }
    }

    /// The block after the block with header `prev` (Skycoin's `NewBlock`), with the unspent
    /// set's hash `ux_hash` and the transactions' total fee `fee`.
    ///
    /// # Errors
    ///
    /// [`BlockError::NoTransactions`] or [`BlockError::TimeNotAfterPrevious`].
    pub fn next(
        prev: &BlockHeader,
        ux_hash: Hash,
        time: u64,
        fee: u64,
        body: BlockBody,
    ) -> Result<Self, BlockError> {
        if body.transactions.is_empty() {
            return Err(BlockError::NoTransactions);
        }
        let header = BlockHeader::next(prev, ux_hash, time, fee, &body)?;
        Ok(Self { header, body })
    }

    /// The block's hash, [`BlockHeader::hash`].
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    /// Signs the block's hash with the chain's key (Skycoin's `signBlock`).
    pub fn sign_block(self, keypair: &Keypair) -> SignedBlock {
        let sig = Sig::sign(keypair, &self.hash());
        SignedBlock { block: self, sig }
    }
}

/// A block and the chain key's signature over its hash.
///
/// Encoded as header, body, then the 65-byte signature. That layout is inferred from
/// Skycoin's encoder rules for `SignedBlock { Block; Sig }` (an embedded struct's fields in
/// order), not read from a byte-level test vector: Skycoin stores the signatures apart
/// from the blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedBlock {
    /// The block.
    pub block: Block,
    /// The signature over [`Block::hash`].
    pub sig: Sig,
}

impl SignedBlock {
    /// Checks that the chain's key `key` signed this block's hash (Skycoin's
    /// `VerifyPubKeySignedHash`).
    ///
    /// # Errors
    ///
    /// The [`SigError`] found, [`SigError::PublicKeyMismatch`] if another key signed.
    pub fn verify_signature(&self, key: &PublicKey) -> Result<(), SigError> {
        self.sig.verify_public_key(key, &self.block.hash())
    }
}

/// The hash of the unspent set: the XOR of [`UxOut::snapshot_hash`](crate::UxOut::snapshot_hash)
/// of every unspent output (Skycoin's unspent pool `xorhash`).
///
/// Adding and removing an output are the same operation, and order does not matter. A
/// block's header carries the value *before* the block is applied: apply a block by
/// toggling out the outputs it spends and toggling in the ones it creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct UxHash(Hash);

impl UxHash {
    /// The hash of the empty set (zero).
    pub fn new() -> Self {
        Self::default()
    }

    /// Toggles an output in or out by its snapshot hash.
    pub fn xor(&mut self, snapshot_hash: &Hash) {
        self.0 = self.0.xor(snapshot_hash);
    }

    /// The current value, for [`BlockHeader::ux_hash`].
    pub fn hash(&self) -> Hash {
        self.0
    }
}

impl Encode for BlockHeader {
    fn encode_to(&self, enc: &mut Encoder) -> Result<(), EncodeError> {
        self.write(enc);
        Ok(())
    }

    fn encoded_len(&self) -> usize {
        Self::ENCODED_LEN
    }
}

impl Decode for BlockHeader {
    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            version: dec.u32()?,
            time: dec.u64()?,
            bk_seq: dec.u64()?,
            fee: dec.u64()?,
            prev_hash: Hash::decode_from(dec)?,
            body_hash: Hash::decode_from(dec)?,
            ux_hash: Hash::decode_from(dec)?,
        })
    }
}

impl Encode for BlockBody {
    fn encode_to(&self, enc: &mut Encoder) -> Result<(), EncodeError> {
        enc.seq(&self.transactions)
    }

    fn encoded_len(&self) -> usize {
        4 + self.size()
    }
}

impl Decode for BlockBody {
    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            transactions: dec.seq()?,
        })
    }
}

impl Encode for Block {
    fn encode_to(&self, enc: &mut Encoder) -> Result<(), EncodeError> {
        self.header.encode_to(enc)?;
        self.body.encode_to(enc)
    }

    fn encoded_len(&self) -> usize {
        BlockHeader::ENCODED_LEN + self.body.encoded_len()
    }
}

impl Decode for Block {
    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            header: BlockHeader::decode_from(dec)?,
            body: BlockBody::decode_from(dec)?,
        })
    }
}

impl Encode for SignedBlock {
    fn encode_to(&self, enc: &mut Encoder) -> Result<(), EncodeError> {
        self.block.encode_to(enc)?;
        self.sig.encode_to(enc)
    }

    fn encoded_len(&self) -> usize {
        self.block.encoded_len() + Sig::LEN
    }
}

impl Decode for SignedBlock {
    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            block: Block::decode_from(dec)?,
            sig: Sig::decode_from(dec)?,
        })
    }
}
