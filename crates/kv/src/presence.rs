//! Presence: which gateway replica holds a node's connection.
//!
//! A replica that accepts a node's connection *claims* the node (adds its
//! replica id to the node's set of holders, with a TTL), *refreshes* the
//! claim while the connection lives, and *releases* it on disconnect.
//! Another replica routing a message to that node *looks up* the holder: the
//! replica that claimed or refreshed last. A crashed replica's claims simply
//! expire.
//!
//! Each replica has its own entry, so one replica releasing its claim never
//! removes another's: when a node briefly connects to two replicas and the
//! duplicate rule closes one connection, the survivor's claim stays.
//!
//! Key format: `<prefix><hex node id>`, by default `sw:presence:` followed
//! by the 66 lower-case hex characters of the 33-byte node id; a set of
//! replica ids, each with its own expiry (a Redis sorted set scored by
//! expiry, on the server's clock).

use std::time::Duration;

use crate::{Kv, KvError};

/// Replicas that may hold claims on one node at once (more than one only
/// while duplicate connections are being resolved).
pub const MAX_HOLDERS: u32 = 16;

/// Default key prefix of [`Presence`].
pub const PRESENCE_PREFIX: &str = "sw:presence:";

/// Node presence over a [`Kv`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Presence {
    kv: Kv,
    prefix: String,
}

impl Presence {
    /// Presence records in `kv` under [`PRESENCE_PREFIX`].
    pub fn new(kv: Kv) -> Self {
        Presence {
            kv,
            prefix: PRESENCE_PREFIX.to_owned(),
        }
    }

    /// The same, under `prefix` instead (tests, several deployments sharing
    /// one Redis).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Records that `replica` holds `node_id`'s connection, for `ttl`. It
    /// becomes the holder [`Presence::lookup`] returns.
    pub async fn claim(
        &self,
        node_id: &[u8; 33],
        replica: &str,
        ttl: Duration,
    ) -> Result<(), KvError> {
        let held = self
            .kv
            .members_acquire(&self.key(node_id), replica, MAX_HOLDERS, ttl)
            .await?;
        if !held {
            tracing::warn!(replica, "presence: too many replicas claim one node");
        }
        Ok(())
    }

    /// Extends `replica`'s claim on `node_id` to `ttl` from now. Returns
    /// `false` if the claim had expired or was released.
    pub async fn refresh(
        &self,
        node_id: &[u8; 33],
        replica: &str,
        ttl: Duration,
    ) -> Result<bool, KvError> {
        self.kv
            .members_refresh(&self.key(node_id), replica, ttl)
            .await
    }

    /// Removes `replica`'s claim on `node_id`; other replicas' claims stay.
    pub async fn release(&self, node_id: &[u8; 33], replica: &str) -> Result<(), KvError> {
        self.kv.members_remove(&self.key(node_id), replica).await
    }

    /// The replica holding `node_id`'s connection (the latest claim), if
    /// any.
    pub async fn lookup(&self, node_id: &[u8; 33]) -> Result<Option<String>, KvError> {
        self.kv.members_newest(&self.key(node_id)).await
    }

    fn key(&self, node_id: &[u8; 33]) -> String {
        let mut key = String::with_capacity(self.prefix.len() + 2 * node_id.len());
        key.push_str(&self.prefix);
        key.push_str(&hex::encode(node_id));
        key
    }
}
