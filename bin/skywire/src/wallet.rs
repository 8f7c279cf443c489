//! `skywire wallet`: a deterministic wallet (Skycoin's: keys derived from a seed) and
//! payments through a node's chain API (`skywire.chain.v1.ChainApi`).
//!
//! - `skywire wallet create --seed TEXT [--file PATH] [--addresses N] [--json]`: writes
//!   the wallet file, `{"seed": TEXT, "addresses": N}`, mode 0600, refusing to overwrite
//!   one; prints the addresses. The seed can come from `$SKYWIRE_WALLET_SEED` instead,
//!   out of sight of `ps`.
//! - `skywire wallet addresses [--file PATH] [--json]`: the wallet's N addresses.
//! - `skywire wallet balance ADDRESS [--admin HOST:PORT] [--json]`: coins and coin hours.
//! - `skywire wallet send --to ADDRESS --coins AMOUNT [--file PATH] [--admin HOST:PORT]
//!   [--json]`: pays AMOUNT coins (`1.5`) from the wallet's outputs, change to its first
//!   address; prints the transaction id.
//!
//! The wallet file defaults to `wallet.json` in the data directory (`$SKYWIRE_DATA_DIR`,
//! else `~/.skywire`). Its seed spends every coin of its addresses: the file is refused
//! when others may read it, and the seed is never logged nor printed.
//!
//! `send` trusts the node for what exists, not for what it is: every unspent output the
//! node lists is rebuilt and checked against its id ([`unspent_from_proto`]), and the
//! transaction is built and signed here ([`build_spend`]); the node only relays it.
//! Output and errors follow `skywire peers`' contract (see the `chain` module).

use std::collections::HashMap;
use std::fmt;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use skywire_chain::api::unspent_from_proto;
use skywire_chain::wallet::{MAX_INPUTS, SpendRules, WalletError, build_spend};
use skywire_coin::ux::total_coin_hours;
use skywire_coin::{DROPLETS_PER_COIN, Encode as _, Transaction, UxOut};
use skywire_identity::{Address, Keypair, derive_keypairs};
use skywire_proto::chain::v1 as pb;
use tonic::Code;

use crate::chain::{ApiArgs, Report, chain_api, chain_call, finish, local_failure, write_new_file};
use crate::peers::Failure;

/// The wallet file's name inside the data directory.
const WALLET_FILE: &str = "wallet.json";

/// Most addresses a wallet has: `send` asks the node once per address, so a thousand
/// is about a second of requests on loopback.
pub(crate) const MAX_ADDRESSES: usize = 1000;

/// Decimal places of a droplet: one coin is 10^6 droplets.
const DROPLET_DECIMALS: usize = 6;

/// `skywire wallet` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum WalletCommand {
    /// Create a wallet file from a seed (mode 0600; an existing file is never
    /// overwritten) and print its addresses.
    Create {
        /// The seed text: whoever knows it spends the wallet's coins.
        #[arg(long, env = "SKYWIRE_WALLET_SEED", hide_env_values = true)]
        seed: Seed,
        /// The wallet file.
        #[command(flatten)]
        file: WalletFileArg,
        /// How many addresses (keys) the wallet has.
        #[arg(long, default_value_t = 1, value_parser = parse_address_count, value_name = "N")]
        addresses: usize,
        /// Print one JSON document on stdout instead of text, errors included.
        #[arg(long)]
        json: bool,
    },
    /// The wallet's addresses, in order (the first receives the change of payments).
    Addresses {
        /// The wallet file.
        #[command(flatten)]
        file: WalletFileArg,
        /// Print one JSON document on stdout instead of text, errors included.
        #[arg(long)]
        json: bool,
    },
    /// The coins and coin hours an address holds, at the node's head.
    Balance {
        /// The Skycoin address.
        address: Address,
        /// Endpoint and output format.
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Pay coins from the wallet to an address: the transaction is built and signed here,
    /// and submitted to the node.
    Send {
        /// Who receives the coins.
        #[arg(long, value_name = "ADDRESS")]
        to: Address,
        /// How many coins, in decimal (`12`, `1.5`); the chain may allow fewer decimals
        /// than a droplet's six.
        #[arg(long, value_name = "AMOUNT", value_parser = parse_coins)]
        coins: u64,
        /// The wallet file.
        #[command(flatten)]
        file: WalletFileArg,
        /// Endpoint and output format.
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// The `--file` flag.
#[derive(Debug, Clone, Args)]
pub(crate) struct WalletFileArg {
    /// The wallet file: `wallet.json` in the data directory by default.
    #[arg(long = "file", value_name = "PATH", default_value_os_t = default_wallet_file())]
    path: PathBuf,
}

/// `wallet.json` in the data directory (`$SKYWIRE_DATA_DIR`, else `~/.skywire`).
fn default_wallet_file() -> PathBuf {
    crate::default_data_dir().join(WALLET_FILE)
}

/// A wallet's seed: a secret. It does not show in `Debug`, and its bytes are overwritten
/// when it is dropped.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct Seed(String);

impl Seed {
    /// The seed's bytes, what keys are derived from.
    fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl FromStr for Seed {
    type Err = String;

    /// Any text but the empty one.
    fn from_str(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("the seed is empty".to_owned());
        }
        Ok(Self(text.to_owned()))
    }
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Seed(<secret>)")
    }
}

impl Drop for Seed {
    fn drop(&mut self) {
        wipe(std::mem::take(&mut self.0).into_bytes());
    }
}

/// Overwrites `bytes` (a secret) with zeros before freeing them.
fn wipe(mut bytes: Vec<u8>) {
    bytes.fill(0);
    // Keeps the writes: they would otherwise be dead stores.
    std::hint::black_box(&bytes);
}

/// The wallet file's contents.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WalletFile {
    /// The seed the keys are derived from.
    seed: Seed,
    /// How many keys.
    addresses: usize,
}

/// A wallet: its keys, in order.
pub(crate) struct Wallet {
    /// The keys `derive_keypairs(seed, addresses)` gives.
    keys: Vec<Keypair>,
}

impl Wallet {
    /// The addresses, in order.
    fn addresses(&self) -> Vec<Address> {
        self.keys.iter().map(Keypair::address).collect()
    }
}

/// The first `count` keys of the wallet with `seed`.
fn derive(seed: &Seed, count: usize) -> anyhow::Result<Wallet> {
    let (_, keys) = derive_keypairs(seed.as_bytes(), count).context("cannot derive keys")?;
    Ok(Wallet { keys })
}

/// Parses `--addresses`: 1 to [`MAX_ADDRESSES`].
fn parse_address_count(text: &str) -> Result<usize, String> {
    let count = text
        .parse::<usize>()
        .map_err(|_| format!("expected 1 to {MAX_ADDRESSES} addresses, got {text:?}"))?;
    check_address_count(count)
}

/// `count`, if a wallet may have that many addresses (1 to [`MAX_ADDRESSES`]).
fn check_address_count(count: usize) -> Result<usize, String> {
    if (1..=MAX_ADDRESSES).contains(&count) {
        Ok(count)
    } else {
        Err(format!(
            "expected 1 to {MAX_ADDRESSES} addresses, got {count}"
        ))
    }
}

/// Writes the wallet file of `seed` with `addresses` keys at `path` (creating its
/// directory), mode 0600, and returns the addresses. An existing file is refused.
///
/// # Errors
///
/// If the file exists or cannot be written, or the seed is empty.
pub(crate) fn create_wallet(
    path: &Path,
    seed: &Seed,
    addresses: usize,
) -> anyhow::Result<Vec<Address>> {
    check_address_count(addresses).map_err(anyhow::Error::msg)?;
    let wallet = derive(seed, addresses)?;
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let file = WalletFile {
        seed: seed.clone(),
        addresses,
    };
    let mut doc = serde_json::to_vec(&file).context("cannot encode the wallet")?;
    doc.push(b'\n');
    let written = write_new_file(path, 0o600, &[&doc]);
    wipe(doc);
    written?;
    Ok(wallet.addresses())
}

/// Loads the wallet file at `path`. Refuses one that others may read.
///
/// # Errors
///
/// If the file is missing, readable by others, or not a wallet.
pub(crate) fn load_wallet(path: &Path) -> anyhow::Result<Wallet> {
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(anyhow::Error::new(e).context(format!(
                "no wallet at {} (create one with `skywire wallet create`)",
                path.display()
            )));
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mode = metadata.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(anyhow::Error::new(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "{} is readable by others (mode {:o}); run chmod 600 on it",
                path.display(),
                mode & 0o777
            ),
        )));
    }
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let parsed = serde_json::from_slice::<WalletFile>(&text);
    wipe(text);
    // The parser's message may quote the file: it is not shown.
    let Ok(file) = parsed else {
        bail!(
            "{} is not a wallet file ({{\"seed\": ..., \"addresses\": N}})",
            path.display()
        );
    };
    if file.seed.0.is_empty() {
        bail!("{}: the seed is empty", path.display());
    }
    let count = check_address_count(file.addresses)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    derive(&file.seed, count)
}

/// Parses an amount of coins given in decimal (`12`, `1.5`, `0.000001`) to droplets,
/// exactly: at most 6 decimals, more than zero, no sign nor exponent.
pub(crate) fn parse_coins(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let invalid = || format!("invalid amount {text:?}: expected coins, e.g. 12 or 1.5");
    if text.starts_with('-') {
        return Err(format!("invalid amount {text:?}: it must be positive"));
    }
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || text.ends_with('.') {
        return Err(invalid());
    }
    if fraction.len() > DROPLET_DECIMALS {
        return Err(format!(
            "invalid amount {text:?}: at most {DROPLET_DECIMALS} decimals (a droplet is 0.000001 coin)"
        ));
    }
    let too_big = || format!("invalid amount {text:?}: too many coins");
    let whole: u64 = whole.parse().map_err(|_| too_big())?;
    let fraction: u64 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<DROPLET_DECIMALS$}")
            .parse()
            .map_err(|_| invalid())?
    };
    let droplets = whole
        .checked_mul(DROPLETS_PER_COIN)
        .and_then(|d| d.checked_add(fraction))
        .ok_or_else(too_big)?;
    if droplets == 0 {
        return Err(format!("invalid amount {text:?}: nothing to send"));
    }
    Ok(droplets)
}

/// `droplets` in decimal coins, without trailing zeros: `12`, `12.5`, `0.000001`.
pub(crate) fn format_coins(droplets: u64) -> String {
    let whole = droplets / DROPLETS_PER_COIN;
    let fraction = droplets % DROPLETS_PER_COIN;
    if fraction == 0 {
        return whole.to_string();
    }
    let fraction = format!("{fraction:0DROPLET_DECIMALS$}");
    format!("{whole}.{}", fraction.trim_end_matches('0'))
}

/// Refuses an amount with more decimals than the chain allows (`precision`).
fn check_precision(droplets: u64, precision: u8) -> Result<(), Failure> {
    skywire_coin::fee::check_droplet_precision(precision, droplets).map_err(|_| {
        Failure::local(
            Code::InvalidArgument,
            format!(
                "{} coins has too many decimals: this chain allows at most {precision}",
                format_coins(droplets)
            ),
        )
    })
}

/// Runs a `skywire wallet` subcommand and prints its result (see the module docs).
pub(crate) async fn run(cmd: WalletCommand) -> anyhow::Result<()> {
    match cmd {
        WalletCommand::Create {
            seed,
            file,
            addresses,
            json,
        } => {
            let result = create_wallet(&file.path, &seed, addresses)
                .map(|addresses| created_report(&file.path, &addresses))
                .map_err(|e| local_failure(&e, Code::InvalidArgument));
            finish(json, result)
        }
        WalletCommand::Addresses { file, json } => {
            let result = load_wallet(&file.path)
                .map(|wallet| addresses_report(&wallet.addresses()))
                .map_err(|e| local_failure(&e, Code::FailedPrecondition));
            finish(json, result)
        }
        WalletCommand::Balance { address, api } => finish(api.json, balance(address, &api).await),
        WalletCommand::Send {
            to,
            coins,
            file,
            api,
        } => finish(api.json, send(to, coins, &file.path, &api.admin).await),
    }
}

/// What `wallet create` prints.
fn created_report(path: &Path, addresses: &[Address]) -> Report {
    let mut human = format!(
        "created the wallet {} (its seed spends every coin of these addresses: keep it secret)",
        path.display()
    );
    for address in addresses {
        human.push_str(&format!("\n{address}"));
    }
    Report {
        human,
        json: serde_json::json!({
            "file": path.display().to_string(),
            "addresses": addresses.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }),
    }
}

/// What `wallet addresses` prints: one address a line.
fn addresses_report(addresses: &[Address]) -> Report {
    let list: Vec<String> = addresses.iter().map(ToString::to_string).collect();
    Report {
        human: list.join("\n"),
        json: serde_json::json!({ "addresses": list }),
    }
}

/// `wallet balance`.
async fn balance(address: Address, api: &ApiArgs) -> Result<Report, Failure> {
    let admin = &api.admin;
    let mut client = chain_api(admin).await?;
    let request = pb::AddressRequest {
        address: address.to_string(),
    };
    let balance = chain_call(admin, client.get_balance(request)).await?;
    Ok(balance_report(&address, &balance))
}

/// What `wallet balance` prints.
fn balance_report(address: &Address, balance: &pb::BalanceResponse) -> Report {
    Report {
        human: format!(
            "{} coins, {} coin hours ({} unspent outputs)",
            format_coins(balance.coins),
            balance.hours,
            balance.outputs
        ),
        json: serde_json::json!({
            "address": address.to_string(),
            "coins": format_coins(balance.coins),
            "droplets": balance.coins,
            "hours": balance.hours,
            "outputs": balance.outputs,
        }),
    }
}

/// A payment ready to submit.
#[derive(Debug)]
struct Spend {
    /// The signed transaction.
    tx: Transaction,
    /// Droplets back to the wallet's first address.
    change: u64,
    /// Coin hours the transaction burns (its fee).
    burned_hours: u64,
}

/// Builds the payment of `droplets` to `to` from `listed`: each wallet address with the
/// node's `GetUnspent` answer for it. Every output is rebuilt and checked (its id, its
/// owner); one that does not check refuses the whole answer.
fn plan_spend(
    keys: &[Keypair],
    listed: &[(Address, pb::UnspentResponse)],
    rules: SpendRules,
    to: Address,
    droplets: u64,
) -> Result<Spend, Failure> {
    let refused = |why: String| {
        Failure::local(
            Code::DataLoss,
            format!("the node's list of unspent outputs does not check, refusing it: {why}"),
        )
    };
    let change_address = keys
        .first()
        .map(Keypair::address)
        .ok_or_else(|| Failure::local(Code::FailedPrecondition, "the wallet has no keys".into()))?;
    check_precision(droplets, rules.max_droplet_precision)?;
    // Outputs created up to the latest head seen: their hours are counted at its time.
    let head_time = listed
        .iter()
        .map(|(_, answer)| answer.head_time)
        .max()
        .unwrap_or(0);
    let mut unspent = Vec::new();
    let mut pending = 0u64;
    for (address, answer) in listed {
        for output in &answer.outputs {
            let ux = unspent_from_proto(output).map_err(refused)?;
            if ux.body.address != *address {
                return Err(refused(format!(
                    "output {} belongs to {}, not to {address}",
                    ux.hash(),
                    ux.body.address
                )));
            }
            // Spent already by a transaction not yet in a block: spending it
            // again would be refused as a double spend.
            if output.spent_by.is_empty() {
                unspent.push(ux);
            } else {
                pending = pending.saturating_add(ux.body.coins);
            }
        }
    }
    let tx = build_spend(
        keys,
        unspent.clone(),
        head_time,
        rules,
        to,
        droplets,
        change_address,
    )
    .map_err(|e| spend_failure(e, &unspent, pending))?;
    let by_id: HashMap<_, UxOut> = unspent.iter().map(|ux| (ux.hash(), *ux)).collect();
    let spent: Vec<UxOut> = tx
        .inputs
        .iter()
        .filter_map(|id| by_id.get(id).copied())
        .collect();
    let in_coins: u64 = spent.iter().map(|ux| ux.body.coins).sum();
    let in_hours = total_coin_hours(&spent, head_time).unwrap_or(0);
    let out_hours: u64 = tx.outputs.iter().map(|o| o.hours).sum();
    Ok(Spend {
        change: in_coins.saturating_sub(droplets),
        burned_hours: in_hours.saturating_sub(out_hours),
        tx,
    })
}

/// Why a payment could not be built, for people: the wallet's `unspent` outputs explain
/// a shortfall.
fn spend_failure(error: WalletError, unspent: &[UxOut], pending: u64) -> Failure {
    match error {
        WalletError::InsufficientCoins { have, need } => {
            let total: u64 = unspent.iter().map(|ux| ux.body.coins).sum();
            let mut message = format!(
                "not enough coins: the wallet can spend {} coins, {} needed",
                format_coins(have),
                format_coins(need)
            );
            if pending > 0 {
                message.push_str(&format!(
                    " ({} more are being spent by transactions not yet in a block: \
                     their change can be spent once they are)",
                    format_coins(pending)
                ));
            }
            if total >= need {
                message.push_str(&format!(
                    " (it holds {} coins, but one transaction spends at most {MAX_INPUTS} \
                     outputs: send less, or gather them by sending to its own address first)",
                    format_coins(total)
                ));
            }
            Failure::local(Code::FailedPrecondition, message)
        }
        WalletError::NoHours => Failure::local(
            Code::FailedPrecondition,
            "the outputs to spend hold no coin hours to pay the fee with yet \
             (a coin earns one hour per hour): try again later"
                .to_owned(),
        ),
        WalletError::ZeroCoins | WalletError::Precision { .. } => {
            Failure::local(Code::InvalidArgument, error.to_string())
        }
        other => Failure::local(
            Code::Internal,
            format!("cannot build the transaction: {other}"),
        ),
    }
}

/// A refused `Submit`, said for people: the server's `FAILED_PRECONDITION` carries the
/// rule the transaction breaks.
fn submit_failure(failure: Failure) -> Failure {
    let what = match failure.code {
        Code::FailedPrecondition => "the node refused the transaction",
        Code::AlreadyExists => "the node already has this transaction",
        Code::ResourceExhausted => "the node's transaction pool is full",
        Code::InvalidArgument => "the node could not read the transaction",
        _ => return failure,
    };
    Failure::local(failure.code, format!("{what}: {}", failure.message))
}

/// `wallet send`: the chain's rules from `Status`, the wallet's outputs from
/// `GetUnspent`, the transaction built and signed here, then `Submit`.
async fn send(to: Address, droplets: u64, file: &Path, admin: &str) -> Result<Report, Failure> {
    let wallet = load_wallet(file).map_err(|e| local_failure(&e, Code::FailedPrecondition))?;
    let mut client = chain_api(admin).await?;
    let status = chain_call(admin, client.status(pb::StatusRequest {})).await?;
    let rules = SpendRules {
        burn_factor: status.burn_factor,
        max_droplet_precision: u8::try_from(status.max_droplet_precision).map_err(|_| {
            Failure::local(
                Code::Internal,
                format!(
                    "the node says amounts have {} decimals",
                    status.max_droplet_precision
                ),
            )
        })?,
    };
    // Before the requests below: an amount the chain refuses needs none.
    check_precision(droplets, rules.max_droplet_precision)?;
    let mut listed = Vec::with_capacity(wallet.keys.len());
    for address in wallet.addresses() {
        let request = pb::AddressRequest {
            address: address.to_string(),
        };
        let answer = chain_call(admin, client.get_unspent(request)).await?;
        listed.push((address, answer));
    }
    let spend = plan_spend(&wallet.keys, &listed, rules, to, droplets)?;
    let encoded = spend.tx.encode().map_err(|e| {
        Failure::local(
            Code::Internal,
            format!("cannot encode the transaction: {e}"),
        )
    })?;
    let request = pb::SubmitRequest {
        transaction: encoded.into(),
    };
    let reply = chain_call(admin, client.submit(request))
        .await
        .map_err(submit_failure)?;
    let txid = spend.tx.hash();
    if reply.txid.as_ref() != txid.0.as_slice() {
        return Err(Failure::local(
            Code::Internal,
            format!(
                "the node took transaction {txid} as {}",
                hex::encode(&reply.txid)
            ),
        ));
    }
    Ok(sent_report(&spend, to, droplets))
}

/// What `wallet send` prints.
fn sent_report(spend: &Spend, to: Address, droplets: u64) -> Report {
    let txid = spend.tx.hash();
    Report {
        human: format!(
            "sent {} coins to {to} (change {} coins, {} coin hours burned)\ntxid {txid}",
            format_coins(droplets),
            format_coins(spend.change),
            spend.burned_hours
        ),
        json: serde_json::json!({
            "txid": txid.to_string(),
            "to": to.to_string(),
            "coins": format_coins(droplets),
            "droplets": droplets,
            "change": spend.change,
            "burned_hours": spend.burned_hours,
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use skywire_chain::api::unspent_to_proto;
    use skywire_chain::query::Unspent;
    use skywire_coin::{Hash, UxBody, UxHead};

    use super::*;

    /// Skycoin's rules: a tenth of the hours burned, three decimals.
    const RULES: SpendRules = SpendRules {
        burn_factor: 10,
        max_droplet_precision: 3,
    };

    fn parse(args: &[&str]) -> Result<WalletCommand, clap::Error> {
        match crate::parse_command(args)? {
            crate::Command::Wallet(cmd) => Ok(cmd),
            other => panic!("not a wallet command: {other:?}"),
        }
    }

    fn seed(text: &str) -> Seed {
        text.parse().unwrap()
    }

    #[test]
    fn amounts_parse_to_exact_droplets() {
        assert_eq!(parse_coins("1.5"), Ok(1_500_000));
        assert_eq!(parse_coins("12"), Ok(12_000_000));
        assert_eq!(parse_coins("0.000001"), Ok(1));
        assert_eq!(parse_coins("0.1"), Ok(100_000));
        assert_eq!(parse_coins("1.000000"), Ok(1_000_000));
        assert_eq!(parse_coins("007.250"), Ok(7_250_000));
        assert_eq!(parse_coins(" 3 "), Ok(3_000_000));
        assert_eq!(parse_coins("100000000"), Ok(100_000_000_000_000));
        // 0.1 + 0.2 is exact here, unlike in floating point.
        assert_eq!(
            parse_coins("0.3"),
            Ok(parse_coins("0.1").unwrap() + 200_000)
        );
        assert_eq!(parse_coins("18446744073709.551615"), Ok(u64::MAX));
        for bad in [
            "", ".", ".5", "1.", "1,5", "1e3", "abc", "+1", "1 000", "1_000", "0x10", "1.2.3", "١",
        ] {
            assert!(
                parse_coins(bad).unwrap_err().contains("expected coins"),
                "{bad:?}"
            );
        }
        assert!(parse_coins("-1").unwrap_err().contains("positive"));
        assert!(parse_coins("-0.5").unwrap_err().contains("positive"));
        assert!(parse_coins("0").unwrap_err().contains("nothing"));
        assert!(parse_coins("0.000").unwrap_err().contains("nothing"));
        assert!(
            parse_coins("1.0000001")
                .unwrap_err()
                .contains("at most 6 decimals")
        );
        assert!(
            parse_coins("1.0000000")
                .unwrap_err()
                .contains("at most 6 decimals")
        );
        assert!(
            parse_coins("18446744073709.551616")
                .unwrap_err()
                .contains("too many")
        );
        assert!(
            parse_coins("99999999999999999999")
                .unwrap_err()
                .contains("too many")
        );
    }

    #[test]
    fn amounts_format_without_trailing_zeros() {
        assert_eq!(format_coins(0), "0");
        assert_eq!(format_coins(12_000_000), "12");
        assert_eq!(format_coins(12_500_000), "12.5");
        assert_eq!(format_coins(1), "0.000001");
        assert_eq!(format_coins(1_010_000), "1.01");
        for droplets in [1, 999_999, 1_000_001, 123_456_789, u64::MAX] {
            assert_eq!(parse_coins(&format_coins(droplets)), Ok(droplets));
        }
    }

    #[test]
    fn the_chain_decides_how_many_decimals() {
        assert!(check_precision(1_500_000, 3).is_ok());
        assert!(check_precision(1_001_000, 3).is_ok());
        let failure = check_precision(1_000_100, 3).unwrap_err();
        assert_eq!(failure.code, Code::InvalidArgument);
        assert_eq!(
            failure.message,
            "1.0001 coins has too many decimals: this chain allows at most 3"
        );
        assert!(check_precision(1, 6).is_ok());
    }

    #[test]
    fn a_wallet_file_is_private_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("wallet.json");
        let addresses = create_wallet(&path, &seed("correct horse"), 3).unwrap();
        let (_, keys) = derive_keypairs(b"correct horse", 3).unwrap();
        let expected: Vec<Address> = keys.iter().map(Keypair::address).collect();
        assert_eq!(addresses, expected);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            doc,
            serde_json::json!({"seed": "correct horse", "addresses": 3})
        );
        assert_eq!(load_wallet(&path).unwrap().addresses(), expected);

        let error = create_wallet(&path, &seed("another"), 1).unwrap_err();
        assert!(
            format!("{error:#}").contains("refusing to overwrite"),
            "{error:#}"
        );
        assert_eq!(
            local_failure(&error, Code::InvalidArgument).code,
            Code::AlreadyExists
        );
        assert_eq!(load_wallet(&path).unwrap().addresses(), expected);

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = format!("{:#}", load_wallet(&path).err().unwrap());
        assert!(error.contains("readable by others"), "{error}");

        let missing = load_wallet(&dir.path().join("none.json")).err().unwrap();
        assert!(format!("{missing:#}").contains("skywire wallet create"));
        assert_eq!(
            local_failure(&missing, Code::FailedPrecondition).code,
            Code::NotFound
        );

        for count in [0, MAX_ADDRESSES + 1] {
            let other = dir.path().join(format!("{count}.json"));
            assert!(create_wallet(&other, &seed("s"), count).is_err());
            assert!(!other.exists());
        }
    }

    #[test]
    fn a_malformed_wallet_file_is_refused_without_showing_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wallet.json");
        for bad in [
            r#"{"seed": "hunter2", "addresses": 0}"#,
            r#"{"seed": "", "addresses": 1}"#,
            r#"{"seed": "hunter2"}"#,
            r#"{"seed": "hunter2", "addresses": 1, "extra": 1}"#,
            r#"hunter2"#,
        ] {
            let _ = std::fs::remove_file(&path);
            write_new_file(&path, 0o600, &[bad.as_bytes()]).unwrap();
            let error = format!("{:#}", load_wallet(&path).err().unwrap());
            assert!(!error.contains("hunter2"), "{error}");
        }
    }

    #[test]
    fn the_seed_stays_secret() {
        assert_eq!(format!("{:?}", seed("hunter2")), "Seed(<secret>)");
        assert!("".parse::<Seed>().is_err());
        let cmd = parse(&["wallet", "create", "--seed", "hunter2"]).unwrap();
        assert!(!format!("{cmd:?}").contains("hunter2"));
        let report = created_report(Path::new("w.json"), &[]);
        assert!(!report.human.contains("hunter2"));
    }

    #[test]
    fn commands_parse() {
        let WalletCommand::Create {
            seed,
            file,
            addresses,
            json,
        } = parse(&[
            "wallet",
            "create",
            "--seed",
            "s e e d",
            "--file",
            "w.json",
            "--addresses",
            "5",
        ])
        .unwrap()
        else {
            panic!("not create");
        };
        assert_eq!(seed.as_bytes(), b"s e e d");
        assert_eq!(file.path, Path::new("w.json"));
        assert_eq!((addresses, json), (5, false));
        let WalletCommand::Create {
            file, addresses, ..
        } = parse(&["wallet", "create", "--seed", "x"]).unwrap()
        else {
            panic!("not create");
        };
        assert_eq!(addresses, 1);
        assert!(
            file.path.ends_with("wallet.json"),
            "{}",
            file.path.display()
        );
        for bad in ["0", "1001", "-1", "x"] {
            assert!(
                parse(&["wallet", "create", "--seed", "x", "--addresses", bad]).is_err(),
                "{bad}"
            );
        }

        let WalletCommand::Addresses { file, json } =
            parse(&["wallet", "addresses", "--file", "w.json", "--json"]).unwrap()
        else {
            panic!("not addresses");
        };
        assert_eq!((file.path.as_path(), json), (Path::new("w.json"), true));

        let address = Keypair::generate().address();
        let WalletCommand::Balance { address: a, api } = parse(&[
            "wallet",
            "balance",
            &address.to_string(),
            "--admin",
            "127.0.0.1:9",
        ])
        .unwrap() else {
            panic!("not balance");
        };
        assert_eq!(
            (a, api.admin.as_str(), api.json),
            (address, "127.0.0.1:9", false)
        );
        assert!(parse(&["wallet", "balance", "not-an-address"]).is_err());
        assert!(parse(&["wallet", "balance"]).is_err());

        let to = address.to_string();
        let WalletCommand::Send {
            to: t,
            coins,
            file,
            api,
        } = parse(&[
            "wallet", "send", "--to", &to, "--coins", "1.5", "--file", "w.json", "--json",
        ])
        .unwrap()
        else {
            panic!("not send");
        };
        assert_eq!(
            (t, coins, file.path.as_path()),
            (address, 1_500_000, Path::new("w.json"))
        );
        assert!(api.json);
        for bad in [
            vec!["--to", &to, "--coins", "-1"],
            vec!["--to", &to, "--coins", "0"],
            vec!["--to", &to, "--coins", "1.0000001"],
            vec!["--to", "2bad", "--coins", "1"],
            vec!["--coins", "1"],
            vec!["--to", &to],
        ] {
            let mut args = vec!["wallet", "send"];
            args.extend(bad.iter().copied());
            assert!(parse(&args).is_err(), "{bad:?}");
        }
    }

    /// An output of `owner` created at block `seq` (time `seq * 1000`).
    fn output(owner: Address, seq: u64, coins: u64, hours: u64) -> UxOut {
        UxOut {
            head: UxHead {
                time: seq * 1000,
                bk_seq: seq,
            },
            body: UxBody {
                src_transaction: Hash([u8::try_from(seq).unwrap(); 32]),
                address: owner,
                coins,
                hours,
            },
        }
    }

    fn answer(outputs: &[UxOut], head_time: u64) -> pb::UnspentResponse {
        pb::UnspentResponse {
            outputs: outputs
                .iter()
                .map(|output| {
                    unspent_to_proto(&Unspent {
                        output: *output,
                        spent_by: None,
                    })
                })
                .collect(),
            head_time,
        }
    }

    #[test]
    fn a_spend_is_built_from_checked_outputs() {
        let (_, keys) = derive_keypairs(b"spender", 2).unwrap();
        let (a, b) = (keys[0].address(), keys[1].address());
        let to = Keypair::generate().address();
        let listed = vec![
            (a, answer(&[output(a, 1, 2_000_000, 100)], 5000)),
            (b, answer(&[output(b, 2, 3_000_000, 50)], 6000)),
        ];
        let spend = plan_spend(&keys, &listed, RULES, to, 4_500_000).unwrap();
        assert_eq!(spend.tx.inputs.len(), 2);
        assert_eq!(spend.tx.outputs[0].address, to);
        assert_eq!(spend.tx.outputs[0].coins, 4_500_000);
        assert_eq!(
            spend.tx.outputs[1].address, a,
            "change to the first address"
        );
        assert_eq!(spend.change, 500_000);
        assert!(spend.burned_hours > 0);
        let report = sent_report(&spend, to, 4_500_000);
        assert!(
            report.human.starts_with("sent 4.5 coins to "),
            "{}",
            report.human
        );
        assert!(report.human.ends_with(&format!("txid {}", spend.tx.hash())));
        assert_eq!(report.json["txid"], spend.tx.hash().to_string());
        assert_eq!(report.json["droplets"], 4_500_000);

        let failure = plan_spend(&keys, &listed, RULES, to, 6_000_000).unwrap_err();
        assert_eq!(failure.code, Code::FailedPrecondition);
        assert_eq!(
            failure.message,
            "not enough coins: the wallet can spend 5 coins, 6 needed"
        );
        // An output a pooled transaction spends already is not spent again.
        let mut pending = listed.clone();
        pending[1].1.outputs[0].spent_by = vec![7; 32].into();
        let failure = plan_spend(&keys, &pending, RULES, to, 4_500_000).unwrap_err();
        assert_eq!(
            failure.message,
            "not enough coins: the wallet can spend 2 coins, 4.5 needed (3 more are being \
             spent by transactions not yet in a block: their change can be spent once they are)"
        );
        let spend = plan_spend(&keys, &pending, RULES, to, 1_000_000).unwrap();
        assert_eq!(
            spend.tx.inputs,
            [listed[0].1.outputs[0].uxid.as_ref()]
                .map(|id| { skywire_coin::Hash(<[u8; 32]>::try_from(id).unwrap()) })
        );
        let failure = plan_spend(&keys, &listed, RULES, to, 1_000_100).unwrap_err();
        assert_eq!(failure.code, Code::InvalidArgument);
        assert!(
            failure.message.contains("too many decimals"),
            "{}",
            failure.message
        );
        let hourless = vec![(a, answer(&[output(a, 1, 2_000_000, 0)], 1000))];
        let failure = plan_spend(&keys, &hourless, RULES, to, 1_000_000).unwrap_err();
        assert!(
            failure.message.contains("no coin hours"),
            "{}",
            failure.message
        );
    }

    #[test]
    fn the_nodes_answer_is_refused_if_an_output_does_not_check() {
        let (_, keys) = derive_keypairs(b"spender", 1).unwrap();
        let a = keys[0].address();
        let to = Keypair::generate().address();
        let mut forged = answer(&[output(a, 1, 2_000_000, 100)], 5000);
        forged.outputs[0].coins = 200_000_000;
        let failure = plan_spend(&keys, &[(a, forged)], RULES, to, 1_000_000).unwrap_err();
        assert_eq!(failure.code, Code::DataLoss);
        assert!(
            failure.message.contains("does not hash to its id"),
            "{}",
            failure.message
        );

        let other = Keypair::generate().address();
        let foreign = answer(&[output(other, 1, 2_000_000, 100)], 5000);
        let failure = plan_spend(&keys, &[(a, foreign)], RULES, to, 1_000_000).unwrap_err();
        assert!(failure.message.contains("not to"), "{}", failure.message);
    }

    #[test]
    fn refusals_say_the_rule_broken() {
        let refused = Failure::from_status(
            "127.0.0.1:7338",
            &tonic::Status::failed_precondition("input 3f2a… is already spent"),
        );
        let failure = submit_failure(refused);
        assert_eq!(failure.code, Code::FailedPrecondition);
        assert_eq!(
            failure.to_string(),
            "the node refused the transaction: input 3f2a… is already spent"
        );
        let unreachable = Failure::local(Code::Unavailable, "cannot reach".into());
        assert_eq!(submit_failure(unreachable.clone()), unreachable);
    }

    #[test]
    fn balances_are_in_coins_and_hours() {
        let address = Keypair::generate().address();
        let report = balance_report(
            &address,
            &pb::BalanceResponse {
                coins: 12_500_000,
                hours: 340,
                outputs: 3,
            },
        );
        assert_eq!(
            report.human,
            "12.5 coins, 340 coin hours (3 unspent outputs)"
        );
        assert_eq!(report.json["coins"], "12.5");
        assert_eq!(report.json["droplets"], 12_500_000);
        assert_eq!(report.json["hours"], 340);
        assert_eq!(report.json["address"], address.to_string());
        let list = addresses_report(&[address, address]);
        assert_eq!(list.human, format!("{address}\n{address}"));
    }
}
