//! Presence: which gateway replica holds a node's connection.
//!
//! A replica that accepts a node's connection *claims* the node (writes its
//! replica id under the node's key with a TTL), *refreshes* the claim while
//! the connection lives, and *releases* it on disconnect. Another replica
//! routing a message to that node *looks up* the holder. A crashed replica's
//! claims simply expire.
//!
//! Key format: `<prefix><hex node id>`, by default
//! `sw:presence:` followed by the 66 lower-case hex characters of the 33-byte
//! node id; value: the replica id (UTF-8).
//!
//! Refresh and release compare the stored replica id first (atomically), so
//! a replica whose claim was taken over by a newer connection elsewhere can
//! neither extend nor delete the newer claim.

use std::time::Duration;

use crate::{Kv, KvError};

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

    /// Records that `replica` holds `node_id`'s connection, for `ttl`,
    /// replacing any other replica's claim (the newest connection wins).
    pub async fn claim(
        &self,
        node_id: &[u8; 33],
        replica: &str,
        ttl: Duration,
    ) -> Result<(), KvError> {
        self.kv
            .set(&self.key(node_id), replica.as_bytes(), ttl)
            .await
    }

    /// Extends `replica`'s claim on `node_id` to `ttl` from now. Returns
    /// `false` if the claim expired or another replica claimed the node
    /// since: the caller no longer holds it.
    pub async fn refresh(
        &self,
        node_id: &[u8; 33],
        replica: &str,
        ttl: Duration,
    ) -> Result<bool, KvError> {
        self.kv
            .expire_if_eq(&self.key(node_id), replica.as_bytes(), ttl)
            .await
    }

    /// Removes `replica`'s claim on `node_id`. Returns `false` (and removes
    /// nothing) if the node is unclaimed or claimed by another replica.
    pub async fn release(&self, node_id: &[u8; 33], replica: &str) -> Result<bool, KvError> {
        self.kv
            .del_if_eq(&self.key(node_id), replica.as_bytes())
            .await
    }

    /// The replica holding `node_id`'s connection, if any. A stored id that
    /// is not UTF-8 (never written by this module) is decoded lossily.
    pub async fn lookup(&self, node_id: &[u8; 33]) -> Result<Option<String>, KvError> {
        let value = self.kv.get(&self.key(node_id)).await?;
        Ok(value.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
    }

    fn key(&self, node_id: &[u8; 33]) -> String {
        let mut key = String::with_capacity(self.prefix.len() + 2 * node_id.len());
        key.push_str(&self.prefix);
        key.push_str(&hex::encode(node_id));
        key
    }
}
