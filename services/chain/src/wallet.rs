//! Spending: choosing outputs, paying the fee in coin hours, signing (what
//! `skywire wallet send` runs).
//!
//! [`build_spend`] pays `coins` to an address from the unspent outputs a wallet owns,
//! oldest first, and sends the change back to the wallet. Coin hours: the inputs' hours
//! at the head's time, of which the chain's fee rule burns the required share
//! ([`required_fee`]); what remains goes half to the recipient and half to the change
//! (all to the recipient when there is no change). Checked against a later head, the
//! inputs hold more hours, so the fee only grows: a transaction built now stays valid
//! until one of its inputs is spent.

use std::collections::HashMap;

use skywire_coin::fee::check_droplet_precision;
use skywire_coin::ux::total_coin_hours;
use skywire_coin::{EncodeError, Hash, Output, SignError, Transaction, UxOut, required_fee};
use skywire_identity::{Address, Keypair};

use crate::verify::ChainParams;

/// The rules of a chain a spend must follow (from [`ChainParams`], or from a node's
/// status over the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpendRules {
    /// A transaction burns at least `1 / burn_factor` of its input hours.
    pub burn_factor: u32,
    /// The most decimal places an amount may have.
    pub max_droplet_precision: u8,
}

impl From<&ChainParams> for SpendRules {
    fn from(params: &ChainParams) -> Self {
        Self {
            burn_factor: params.burn_factor,
            max_droplet_precision: params.max_droplet_precision,
        }
    }
}

/// The most inputs a spend uses: 256 inputs and their signatures take about 25 KB, under
/// the 32 KB transaction limit with room for the outputs.
pub const MAX_INPUTS: usize = 256;

/// Why a spend could not be built.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WalletError {
    /// Nothing to send.
    #[error("cannot send zero coins")]
    ZeroCoins,
    /// The amount has more decimal places than the chain allows.
    #[error("{coins} droplets: {reason}")]
    Precision {
        /// The amount asked for.
        coins: u64,
        /// Why it is refused.
        reason: String,
    },
    /// The wallet's outputs hold fewer coins than asked for (within [`MAX_INPUTS`]
    /// outputs).
    #[error("not enough coins: {have} droplets spendable, {need} needed")]
    InsufficientCoins {
        /// Droplets in the outputs that could be used.
        have: u64,
        /// Droplets asked for.
        need: u64,
    },
    /// The chosen outputs hold no coin hours, so no fee can be paid.
    #[error("the outputs spent hold no coin hours to pay the fee with")]
    NoHours,
    /// An output's hours overflowed.
    #[error("coin hours overflow")]
    HoursOverflow,
    /// No key for an output's owner.
    #[error("no key for {0}")]
    NoKey(Address),
    /// Signing failed.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// The transaction could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// Builds and signs a transaction paying `coins` droplets to `to` from `unspent` (outputs
/// owned by `keys`; others are skipped), with change to `change`, at a head of time
/// `head_time` on a chain with `rules`.
///
/// # Errors
///
/// See [`WalletError`].
pub fn build_spend(
    keys: &[Keypair],
    mut unspent: Vec<UxOut>,
    head_time: u64,
    rules: SpendRules,
    to: Address,
    coins: u64,
    change: Address,
) -> Result<Transaction, WalletError> {
    if coins == 0 {
        return Err(WalletError::ZeroCoins);
    }
    check_droplet_precision(rules.max_droplet_precision, coins).map_err(|e| {
        WalletError::Precision {
            coins,
            reason: e.to_string(),
        }
    })?;
    let owners: HashMap<Address, &Keypair> = keys.iter().map(|k| (k.address(), k)).collect();
    unspent.retain(|ux| owners.contains_key(&ux.body.address));
    // Oldest first: spend what has aged, keep the set small.
    unspent.sort_by_key(|ux| (ux.head.bk_seq, ux.hash()));
    let mut chosen = Vec::new();
    let mut have = 0u64;
    for ux in unspent {
        if have >= coins || chosen.len() == MAX_INPUTS {
            break;
        }
        have = have.saturating_add(ux.body.coins);
        chosen.push(ux);
    }
    if have < coins {
        return Err(WalletError::InsufficientCoins { have, need: coins });
    }
    let hours = total_coin_hours(&chosen, head_time).map_err(|_| WalletError::HoursOverflow)?;
    let fee = required_fee(hours, rules.burn_factor);
    if fee == 0 {
        return Err(WalletError::NoHours);
    }
    let remaining = hours - fee;
    let change_coins = have - coins;
    let mut outputs = Vec::with_capacity(2);
    if change_coins == 0 {
        outputs.push(Output {
            address: to,
            coins,
            hours: remaining,
        });
    } else {
        let to_hours = remaining / 2;
        outputs.push(Output {
            address: to,
            coins,
            hours: to_hours,
        });
        outputs.push(Output {
            address: change,
            coins: change_coins,
            hours: remaining - to_hours,
        });
    }
    let signers = chosen
        .iter()
        .map(|ux| {
            owners
                .get(&ux.body.address)
                .map(|k| (*k).clone())
                .ok_or(WalletError::NoKey(ux.body.address))
        })
        .collect::<Result<Vec<Keypair>, _>>()?;
    let mut tx = Transaction {
        inputs: chosen.iter().map(UxOut::hash).collect::<Vec<Hash>>(),
        outputs,
        ..Transaction::default()
    };
    tx.sign(&signers)?;
    tx.update_header()?;
    Ok(tx)
}
