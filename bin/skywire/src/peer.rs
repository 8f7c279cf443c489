//! `PUBKEY@HOST:PORT` peer addresses.

use std::net::SocketAddr;
use std::str::FromStr;

use anyhow::Context as _;
use skywire_identity::PublicKey;

/// A peer to dial: its node id and where it listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PeerAddr {
    pub(crate) key: secp256k1::PublicKey,
    pub(crate) addr: SocketAddr,
}

impl FromStr for PeerAddr {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (key, host) = s.split_once('@').context("expected PUBKEY@HOST:PORT")?;
        let key: PublicKey = key.parse().context("bad node id (66 hex characters)")?;
        let key = secp256k1::PublicKey::from_slice(&key.to_bytes()).context("bad node id")?;
        let addr = std::net::ToSocketAddrs::to_socket_addrs(host)
            .with_context(|| format!("cannot resolve {host:?}"))?
            .next()
            .with_context(|| format!("no address for {host:?}"))?;
        Ok(Self { key, addr })
    }
}

/// From the same `PUBKEY@HOST:PORT` text, in a config file or variable.
impl<'de> serde::Deserialize<'de> for PeerAddr {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse()
            .map_err(|e: anyhow::Error| serde::de::Error::custom(format!("{text:?}: {e:#}")))
    }
}
