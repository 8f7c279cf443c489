//! Unspent outputs (Skycoin's `coin.UxOut`) and coin hours.
//!
//! When a block is applied, each output of each of its transactions becomes a [`UxOut`]:
//! a [`UxBody`] (the creating transaction's id, the address, coins and hours), whose hash
//! is the output's id (its *uxid*, what inputs name), and a [`UxHead`] (the time and sequence
//! number of the block that created it), which is not part of the id.
//!
//! Coin hours accrue on an output from its block's time: one hour per whole coin per hour
//! held, in Skycoin's exact integer arithmetic ([`UxOut::coin_hours`]).

use skywire_identity::Address;

use crate::block::BlockHeader;
use crate::encoding::{Decode, DecodeError, Decoder, Encode, EncodeError, Encoder};
use crate::fee::DROPLETS_PER_COIN;
use crate::hash::{Hash, sha256};
use crate::transaction::Transaction;

/// Seconds in an hour: coin seconds become coin hours by integer division.
const SECONDS_PER_HOUR: u64 = 3600;

/// Why coin hours could not be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HoursError {
    /// `seconds × whole coins` overflows `u64`.
    #[error(
        "calculating whole coin seconds overflows uint64 seconds={seconds} coins={coins} uxid={uxid}"
    )]
    WholeCoinSecondsOverflow {
        /// Seconds since the output was created.
        seconds: u64,
        /// Whole coins in the output.
        coins: u64,
        /// The output's uxid.
        uxid: Hash,
    },

    /// `seconds × leftover droplets` overflows `u64`.
    #[error(
        "calculating droplet seconds overflows uint64 seconds={seconds} droplets={droplets} uxid={uxid}"
    )]
    DropletSecondsOverflow {
        /// Seconds since the output was created.
        seconds: u64,
        /// Droplets beyond the whole coins.
        droplets: u64,
        /// The output's uxid.
        uxid: Hash,
    },

    /// The output's hours plus the hours earned overflow `u64` (Skycoin's
    /// `ErrAddEarnedCoinHoursAdditionOverflow`; Skycoin counts such an input as 0 hours when
    /// checking a block's hours, for the output spent in block 13277).
    #[error("addition of earned coin hours overflows uxid={uxid}")]
    EarnedHoursOverflow {
        /// The output's uxid.
        uxid: Hash,
    },

    /// The hours of several outputs add up past `u64::MAX` ("UxArray.CoinHours addition
    /// overflow").
    #[error("total coin hours of the outputs overflow")]
    TotalOverflow,
}

/// Where and when an output was created; not part of its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct UxHead {
    /// Time of the block that created it (Unix seconds).
    pub time: u64,
    /// Sequence number of that block.
    pub bk_seq: u64,
}

impl UxHead {
    /// Length of the encoding: time (8), sequence number (8).
    pub const ENCODED_LEN: usize = 16;
}

/// What an output is; its hash is the output's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UxBody {
    /// Id of the transaction that created it (the zero hash for the genesis output).
    /// Skycoin's comment says "inner hash"; it is the full transaction id.
    pub src_transaction: Hash,
    /// Who may spend it.
    pub address: Address,
    /// Coins, in droplets.
    pub coins: u64,
    /// Hours it was created with.
    pub hours: u64,
}

impl UxBody {
    /// Length of the encoding: transaction id (32), address (21), coins (8), hours (8).
    pub const ENCODED_LEN: usize = 69;

    /// The uxid: SHA-256 of the 69-byte encoding.
    pub fn hash(&self) -> Hash {
        let mut enc = Encoder::with_capacity(Self::ENCODED_LEN);
        self.write(&mut enc);
        sha256(enc.as_bytes())
    }

    fn write(&self, enc: &mut Encoder) {
        enc.bytes(&self.src_transaction.0);
        enc.u8(self.address.version());
        enc.bytes(self.address.key());
        enc.u64(self.coins);
        enc.u64(self.hours);
    }
}

/// An unspent output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UxOut {
    /// Where and when it was created.
    pub head: UxHead,
    /// What it is.
    pub body: UxBody,
}

impl UxOut {
    /// The uxid: [`UxBody::hash`].
    pub fn hash(&self) -> Hash {
        self.body.hash()
    }

    /// SHA-256 of the body then the head (85 bytes): what the unspent set's
    /// [`UxHash`](crate::block::UxHash) accumulates.
    pub fn snapshot_hash(&self) -> Hash {
        let mut enc = Encoder::with_capacity(UxBody::ENCODED_LEN + UxHead::ENCODED_LEN);
        self.body.write(&mut enc);
        enc.u64(self.head.time);
        enc.u64(self.head.bk_seq);
        sha256(enc.as_bytes())
    }

    /// The output's coin hours at time `t` (Skycoin's `UxOut.CoinHours`):
    ///
    /// ```text
    /// hours + (s · (coins / 10⁶) + (s · (coins % 10⁶)) / 10⁶) / 3600,   s = t − head.time
    /// ```
    ///
    /// A `t` before the output's time gives its hours unchanged. Both products are checked
    /// for overflow; their sum is not (it wraps, as in Skycoin's Go); the final addition is.
    ///
    /// # Errors
    ///
    /// [`HoursError::WholeCoinSecondsOverflow`], [`HoursError::DropletSecondsOverflow`] or
    /// [`HoursError::EarnedHoursOverflow`].
    pub fn coin_hours(&self, t: u64) -> Result<u64, HoursError> {
        let Some(seconds) = t.checked_sub(self.head.time) else {
            return Ok(self.body.hours);
        };
        let coins = self.body.coins / DROPLETS_PER_COIN;
        let whole_coin_seconds =
            seconds
                .checked_mul(coins)
                .ok_or_else(|| HoursError::WholeCoinSecondsOverflow {
                    seconds,
                    coins,
                    uxid: self.hash(),
                })?;
        let droplets = self.body.coins % DROPLETS_PER_COIN;
        let droplet_seconds =
            seconds
                .checked_mul(droplets)
                .ok_or_else(|| HoursError::DropletSecondsOverflow {
                    seconds,
                    droplets,
                    uxid: self.hash(),
                })?;
        // Unchecked in Skycoin: Go's uint64 addition wraps.
        let coin_seconds = whole_coin_seconds.wrapping_add(droplet_seconds / DROPLETS_PER_COIN);
        self.body
            .hours
            .checked_add(coin_seconds / SECONDS_PER_HOUR)
            .ok_or_else(|| HoursError::EarnedHoursOverflow { uxid: self.hash() })
    }
}

/// The coin hours of `outputs` at time `t`, added up (Skycoin's `UxArray.CoinHours`).
///
/// # Errors
///
/// The first output's [`HoursError`], or [`HoursError::TotalOverflow`].
pub fn total_coin_hours(outputs: &[UxOut], t: u64) -> Result<u64, HoursError> {
    outputs.iter().try_fold(0u64, |sum, ux| {
        sum.checked_add(ux.coin_hours(t)?)
            .ok_or(HoursError::TotalOverflow)
    })
}

/// The unspent outputs `tx` creates in the block with header `header` (Skycoin's
/// `CreateUnspents`): one per output, in order, with the block's time and sequence number.
///
/// Their `src_transaction` is the transaction's id, except in the genesis block (sequence
/// number 0), where it is the zero hash.
pub fn create_unspents(header: &BlockHeader, tx: &Transaction) -> Vec<UxOut> {
    let src_transaction = if header.bk_seq == 0 {
        Hash::ZERO
    } else {
        tx.hash()
    };
    let head = UxHead {
        time: header.time,
        bk_seq: header.bk_seq,
    };
    tx.outputs
        .iter()
        .map(|output| UxOut {
            head,
            body: UxBody {
                src_transaction,
                address: output.address,
                coins: output.coins,
                hours: output.hours,
            },
        })
        .collect()
}

impl Encode for UxHead {
    fn encode_to(&self, enc: &mut Encoder) -> Result<(), EncodeError> {
        enc.u64(self.time);
        enc.u64(self.bk_seq);
        Ok(())
    }

    fn encoded_len(&self) -> usize {
        Self::ENCODED_LEN
    }
}

impl Decode for UxHead {
    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            time: dec.u64()?,
            bk_seq: dec.u64()?,
        })
    }
}

impl Encode for UxBody {
    fn encode_to(&self, enc: &mut Encoder) -> Result<(), EncodeError> {
        self.write(enc);
        Ok(())
    }

    fn encoded_len(&self) -> usize {
        Self::ENCODED_LEN
    }
}

impl Decode for UxBody {
    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            src_transaction: Hash::decode_from(dec)?,
            address: Address::decode_from(dec)?,
            coins: dec.u64()?,
            hours: dec.u64()?,
        })
    }
}

/// Encoded in field order, head then body (85 bytes); note that
/// [`UxOut::snapshot_hash`] hashes body then head.
impl Encode for UxOut {
    fn encode_to(&self, enc: &mut Encoder) -> Result<(), EncodeError> {
        self.head.encode_to(enc)?;
        self.body.encode_to(enc)
    }

    fn encoded_len(&self) -> usize {
        UxHead::ENCODED_LEN + UxBody::ENCODED_LEN
    }
}

impl Decode for UxOut {
    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            head: UxHead::decode_from(dec)?,
            body: UxBody::decode_from(dec)?,
        })
    }
}
