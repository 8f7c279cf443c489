//! `skywire keys`: derive keys from a seed, show the node key.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Subcommand;
use serde_json::json;
use skywire_identity::{Keypair, derive_keypairs};

/// The node key's file name inside the data directory.
const KEY_FILE: &str = "node.key";

/// Key commands.
#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Derive keys from a seed exactly as Skycoin wallets do; prints JSON
    /// lines `{"secret","public","address"}`.
    Derive {
        /// The seed text.
        #[arg(long)]
        seed: String,
        /// How many keys.
        #[arg(long, default_value_t = 1)]
        count: usize,
    },
    /// Print the node key's public key and address as JSON.
    Show {
        /// The node's data directory.
        #[arg(long, default_value_os_t = crate::default_data_dir())]
        data_dir: PathBuf,
    },
}

pub(crate) fn run(cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Derive { seed, count } => {
            let (_, keys) =
                derive_keypairs(seed.as_bytes(), count).context("cannot derive keys")?;
            let mut out = std::io::stdout().lock();
            for key in keys {
                let line = json!({
                    "secret": key.secret_hex().as_str(),
                    "public": key.public_key().to_string(),
                    "address": key.address().to_string(),
                });
                writeln!(out, "{line}")?;
            }
            Ok(())
        }
        KeysCommand::Show { data_dir } => {
            let path = data_dir.join(KEY_FILE);
            let key = read_key(&path)?;
            println!(
                "{}",
                json!({"public": key.public_key().to_string(), "address": key.address().to_string()})
            );
            Ok(())
        }
    }
}

fn read_key(path: &Path) -> anyhow::Result<Keypair> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Keypair::from_secret_hex(&text)
        .with_context(|| format!("{} does not hold a valid key", path.display()))
}

/// Loads the key file `path`, which must exist (replicas share one key, made
/// once). Refuses a key file that others may read.
pub(crate) fn load_shared(path: &Path) -> anyhow::Result<Keypair> {
    check_private(path)?;
    read_key(path)
}

fn check_private(path: &Path) -> anyhow::Result<()> {
    let mode = fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "{} is readable by others (mode {:o}); run chmod 600 on it",
            path.display(),
            mode & 0o777
        );
    }
    Ok(())
}

/// Loads `DIR/node.key`, creating the directory and a fresh key (mode 0600)
/// if missing. Refuses a key file that others may read.
pub(crate) fn load_or_create(data_dir: &Path) -> anyhow::Result<Keypair> {
    fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let path = data_dir.join(KEY_FILE);
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(mut file) => {
            let key = Keypair::generate();
            file.write_all(format!("{}\n", key.secret_hex().as_str()).as_bytes())
                .and_then(|()| file.sync_all())
                .with_context(|| format!("cannot write {}", path.display()))?;
            tracing::info!(path = %path.display(), "created a new node key");
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_shared(&path),
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}
