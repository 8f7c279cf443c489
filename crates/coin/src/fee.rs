//! Fees, coin units and the soft limits on transactions.
//!
//! A transaction's fee is the coin hours it destroys: the hours of the outputs it spends
//! (at the time of the chain's head) minus the hours of the outputs it creates
//! ([`transaction_fee`]). The fee must be positive and at least `1 / burn_factor` of the
//! input hours, rounded up ([`verify_fee`]).
//!
//! These are *soft* rules, checked when a transaction enters the pool or a block is made,
//! not when a received block is applied; the burn factor is a node setting, not consensus.

use crate::transaction::Transaction;
use crate::ux::{HoursError, UxOut, total_coin_hours};

/// Droplets in one coin: coin amounts are integers in droplets (10⁻⁶ coin).
pub const DROPLETS_PER_COIN: u64 = 1_000_000;

/// Decimal places of a droplet (Skycoin's `droplet.Exponent`).
pub const DROPLET_EXPONENT: u8 = 6;

/// The decimal places an output's coins may have; Skycoin's node uses 3
/// (`MaxDropletPrecision`), so amounts are multiples of 1000 droplets.
pub const MAX_DROPLET_PRECISION: u8 = 3;

/// Our network's default burn factor: a transaction must burn at least half of its input
/// hours.
///
/// The rule is `fee >= ceil((output_hours + fee) / burn_factor)`, and `output_hours + fee`
/// is the input hours; with 2, at least half of the input hours (rounded up) are burned.
/// Skycoin's mainnet node uses 10 (at least a tenth; [`SKYCOIN_BURN_FACTOR`]); Skycoin
/// nodes up to v0.24 used 2.
pub const DEFAULT_BURN_FACTOR: u32 = 2;

/// The burn factor of Skycoin's mainnet node (v0.27: `CreateBlockBurnFactor`,
/// `UnconfirmedBurnFactor`).
pub const SKYCOIN_BURN_FACTOR: u32 = 10;

/// The smallest burn factor Skycoin's configuration accepts (`MinBurnFactor`).
pub const MIN_BURN_FACTOR: u32 = 2;

/// The largest transaction, in encoded bytes, a node accepts into its pool or a block
/// (Skycoin's `MaxTransactionSize`, 32 KiB; also its block size limit).
pub const MAX_TRANSACTION_SIZE: usize = 32768;

/// Why a fee or an amount was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FeeError {
    /// The transaction burns no hours ("Transaction has zero coinhour fee").
    #[error("transaction has zero coinhour fee")]
    NoFee,

    /// The transaction burns too few hours ("Transaction coinhour fee minimum not met").
    #[error("coinhour fee {fee} is below the required {required}")]
    InsufficientFee {
        /// The fee paid.
        fee: u64,
        /// The fee required.
        required: u64,
    },

    /// Output hours plus fee overflow `u64` ("Hours and fee overflow").
    #[error("hours {hours} and fee {fee} overflow")]
    HoursFeeOverflow {
        /// The output hours.
        hours: u64,
        /// The fee.
        fee: u64,
    },

    /// The outputs carry more hours than the inputs have ("Insufficient coinhours for
    /// transaction outputs").
    #[error("outputs have {output} hours, inputs only {input}")]
    InsufficientCoinHours {
        /// The input hours.
        input: u64,
        /// The output hours.
        output: u64,
    },

    /// The output hours add up past `u64::MAX` ("Transaction output hours overflow").
    #[error("transaction output hours overflow")]
    OutputHoursOverflow,

    /// The input hours could not be computed.
    #[error("input hours: {0}")]
    InputHours(#[from] HoursError),

    /// An amount has more decimal places than allowed ("invalid amount, too many decimal
    /// places").
    #[error("amount {coins} is not a multiple of {divisor} droplets")]
    TooManyDecimals {
        /// The amount, in droplets.
        coins: u64,
        /// What it must be a multiple of.
        divisor: u64,
    },
}

/// The fee required on `hours` input hours: `hours / burn_factor`, rounded up (Skycoin's
/// `RequiredFee`).
///
/// A `burn_factor` of 0 is treated as 1 (everything burns) rather than dividing by zero;
/// Skycoin refuses factors below [`MIN_BURN_FACTOR`] in its configuration.
pub fn required_fee(hours: u64, burn_factor: u32) -> u64 {
    hours.div_ceil(u64::from(burn_factor.max(1)))
}

/// The hours left once the required fee on `hours` is paid (Skycoin's `RemainingHours`).
pub fn remaining_hours(hours: u64, burn_factor: u32) -> u64 {
    hours - required_fee(hours, burn_factor)
}

/// The fee of `tx`: the hours of `inputs` (the outputs it spends) at `head_time` minus its
/// output hours (Skycoin's `TransactionFee`). `head_time` is the time of the chain's head,
/// the block *before* the one the transaction goes into.
///
/// # Errors
///
/// [`FeeError::InputHours`], [`FeeError::OutputHoursOverflow`] or
/// [`FeeError::InsufficientCoinHours`].
pub fn transaction_fee(
    tx: &Transaction,
    head_time: u64,
    inputs: &[UxOut],
) -> Result<u64, FeeError> {
    let input = total_coin_hours(inputs, head_time)?;
    let output = tx.output_hours().ok_or(FeeError::OutputHoursOverflow)?;
    input
        .checked_sub(output)
        .ok_or(FeeError::InsufficientCoinHours { input, output })
}

/// Checks a fee of `fee` hours on a transaction whose outputs carry `hours_out` hours
/// (Skycoin's `VerifyTransactionFeeForHours`): the fee must be positive and at least
/// [`required_fee`] of `hours_out + fee`.
///
/// # Errors
///
/// [`FeeError::NoFee`], [`FeeError::HoursFeeOverflow`] or [`FeeError::InsufficientFee`].
pub fn verify_fee(hours_out: u64, fee: u64, burn_factor: u32) -> Result<(), FeeError> {
    if fee == 0 {
        return Err(FeeError::NoFee);
    }
    let total = hours_out
        .checked_add(fee)
        .ok_or(FeeError::HoursFeeOverflow {
            hours: hours_out,
            fee,
        })?;
    let required = required_fee(total, burn_factor);
    if fee < required {
        return Err(FeeError::InsufficientFee { fee, required });
    }
    Ok(())
}

/// [`verify_fee`] with the output hours of `tx` (Skycoin's `VerifyTransactionFee`).
///
/// # Errors
///
/// [`FeeError::OutputHoursOverflow`], or those of [`verify_fee`].
pub fn verify_transaction_fee(
    tx: &Transaction,
    fee: u64,
    burn_factor: u32,
) -> Result<(), FeeError> {
    let hours = tx.output_hours().ok_or(FeeError::OutputHoursOverflow)?;
    verify_fee(hours, fee, burn_factor)
}

/// What amounts with `precision` decimal places are multiples of, in droplets:
/// `10^(6 − precision)` (Skycoin's `DropletPrecisionToDivisor`); 1 for a precision of 6 or
/// more.
pub fn droplet_precision_divisor(precision: u8) -> u64 {
    10u64.pow(u32::from(DROPLET_EXPONENT.saturating_sub(precision)))
}

/// Checks that `coins` has at most `precision` decimal places (Skycoin's
/// `DropletPrecisionCheck`); with [`MAX_DROPLET_PRECISION`], a multiple of 1000 droplets.
///
/// # Errors
///
/// [`FeeError::TooManyDecimals`].
pub fn check_droplet_precision(precision: u8, coins: u64) -> Result<(), FeeError> {
    let divisor = droplet_precision_divisor(precision);
    if coins.is_multiple_of(divisor) {
        Ok(())
    } else {
        Err(FeeError::TooManyDecimals { coins, divisor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn droplet_precision() {
        assert_eq!(droplet_precision_divisor(0), 1_000_000);
        assert_eq!(droplet_precision_divisor(3), 1000);
        assert_eq!(droplet_precision_divisor(6), 1);
        assert_eq!(droplet_precision_divisor(200), 1);
        assert_eq!(check_droplet_precision(3, 1_234_000), Ok(()));
        assert_eq!(check_droplet_precision(3, 0), Ok(()));
        assert_eq!(
            check_droplet_precision(3, 1_234_500),
            Err(FeeError::TooManyDecimals {
                coins: 1_234_500,
                divisor: 1000
            })
        );
        assert_eq!(check_droplet_precision(6, 1), Ok(()));
    }

    #[test]
    fn zero_burn_factor_does_not_panic() {
        assert_eq!(required_fee(7, 0), 7);
        assert_eq!(remaining_hours(7, 0), 0);
        assert_eq!(required_fee(u64::MAX, 2), u64::MAX / 2 + 1);
    }
}
