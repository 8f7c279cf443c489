//! An in-memory network of DHT nodes: the routing table and lookup code of
//! the service, driven without sockets, so tests and the lookup benchmark
//! can measure networks of up to tens of thousands of nodes.
//!
//! Each simulated node has a real key pair and a signed record; a request
//! from `a` to `b` is answered by `b`'s table, and both sides learn from it
//! as the service does: `a` admits `b` ([`Origin::Outbound`]), `b` admits
//! `a` once stocked ([`Origin::Inbound`]); a full bucket's liveness check
//! asks whether the node is still running. Stopped nodes fail every request.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use skywire_identity::Keypair;
use skywire_record::NodeRecord;

use crate::key::{KEY_BITS, Key};
use crate::lookup::{Goal, Lookup, LookupConfig};
use crate::table::{Contact, Insert, Origin, RoutingTable, TableConfig};

/// The network's parameters.
#[derive(Debug, Clone, Default)]
pub struct SimConfig {
    /// Each node's table limits.
    pub table: TableConfig,
    /// Each lookup's parameters.
    pub lookup: LookupConfig,
}

struct Node {
    contact: Contact,
    table: RoutingTable,
    running: bool,
}

/// What one lookup achieved.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// Whether the target's record was found.
    pub found: bool,
    /// Sequential requests that led to it.
    pub hops: Option<u32>,
    /// Requests sent.
    pub asked: usize,
    /// Requests that failed (stopped nodes).
    pub failed: usize,
}

/// The simulated network.
pub struct Network {
    nodes: Vec<Node>,
    by_key: HashMap<Key, usize>,
    config: SimConfig,
    rng: StdRng,
    now: Instant,
}

impl Network {
    /// `n` nodes, each on its own /24, joined one after the other through
    /// node 0 (a lookup of their own key, as the service does at start),
    /// then every table refreshed once. Deterministic for a given `seed`
    /// (apart from signatures).
    ///
    /// # Panics
    ///
    /// If `n` is 0 or above 65 536 (one /24 each in 10.0.0.0/8).
    pub fn build(n: usize, config: SimConfig, seed: u64) -> Self {
        assert!(n > 0 && n <= 1 << 16, "1 to 65536 nodes");
        let mut rng = StdRng::seed_from_u64(seed);
        let timestamp = skywire_record::now_ms();
        let mut nodes = Vec::with_capacity(n);
        let mut by_key = HashMap::with_capacity(n);
        for i in 0..n {
            let key = loop {
                let secret: [u8; 32] = rng.random();
                if let Ok(key) = Keypair::from_secret_bytes(&secret) {
                    break key;
                }
            };
            let [_, _, hi, lo] = u32::try_from(i).unwrap_or(0).to_be_bytes();
            let endpoint = SocketAddr::from((Ipv4Addr::new(10, hi, lo, 1), 7337));
            let record = NodeRecord::sign(&key, vec![endpoint], vec![], 1, timestamp)
                .expect("a record with one endpoint and no services is valid");
            let contact = Contact::new(Arc::new(record), endpoint);
            by_key.insert(*contact.key(), i);
            nodes.push(Node {
                table: RoutingTable::new(*contact.key(), config.table.clone()),
                contact,
                running: true,
            });
        }
        let mut network = Self {
            nodes,
            by_key,
            config,
            rng,
            now: Instant::now(),
        };
        network.nodes[0].table.mark_stocked();
        for i in 1..n {
            let bootstrap = network.nodes[0].contact.clone();
            network.admit(i, bootstrap, Origin::Outbound);
            let own = *network.nodes[i].contact.key();
            network.lookup(i, own, Goal::Closest);
            network.nodes[i].table.mark_stocked();
        }
        for i in 0..n {
            network.refresh(i);
        }
        network
    }

    /// Nodes in the network, running or not.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the network has no node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Whether node `i` runs.
    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i].running
    }

    /// The key of node `i`.
    pub fn key(&self, i: usize) -> Key {
        *self.nodes[i].contact.key()
    }

    /// Contacts in node `i`'s table.
    pub fn table_len(&self, i: usize) -> usize {
        self.nodes[i].table.len()
    }

    /// Stops a random `fraction` of the nodes (never node 0, the bootstrap).
    pub fn stop_fraction(&mut self, fraction: f64) {
        let n = self.nodes.len();
        let mut running: Vec<usize> = (1..n).filter(|&i| self.nodes[i].running).collect();
        let stop = ((n as f64) * fraction).round() as usize;
        for _ in 0..stop.min(running.len()) {
            let pick = self.rng.random_range(0..running.len());
            let i = running.swap_remove(pick);
            self.nodes[i].running = false;
        }
    }

    /// A random running node.
    pub fn random_running(&mut self) -> usize {
        loop {
            let i = self.rng.random_range(0..self.nodes.len());
            if self.nodes[i].running {
                return i;
            }
        }
    }

    /// Two different random running nodes (a lookup's source and target);
    /// loops forever if fewer than two run.
    pub fn random_pair(&mut self) -> (usize, usize) {
        let from = self.random_running();
        loop {
            let to = self.random_running();
            if to != from {
                return (from, to);
            }
        }
    }

    /// Node `i` refreshes every bucket: a lookup of a random key in each.
    pub fn refresh(&mut self, i: usize) {
        let stale = self.nodes[i].table.stale_buckets(self.now);
        let own = self.key(i);
        for bucket in stale.into_iter().filter(|&b| b < KEY_BITS) {
            let target = own.random_in_bucket(bucket, &mut self.rng);
            self.lookup(i, target, Goal::Closest);
        }
    }

    /// Node `from` looks up `target`.
    pub fn lookup(&mut self, from: usize, target: Key, goal: Goal) -> Outcome {
        let table = &mut self.nodes[from].table;
        table.touch(&target, self.now);
        let seeds = table.closest(&target, self.config.lookup.k);
        let local = *table.local();
        let mut lookup = Lookup::new(local, target, goal, seeds, self.config.lookup.clone());
        loop {
            let queries = lookup.poll();
            if queries.is_empty() {
                break;
            }
            for query in queries {
                let to = *query.contact.key();
                match self.request(from, &query.contact, &target) {
                    Some(contacts) => {
                        lookup.on_response(&to, contacts);
                        self.admit(from, query.contact, Origin::Outbound);
                    }
                    None => {
                        lookup.on_failure(&to);
                        self.nodes[from].table.failed(&to);
                    }
                }
            }
        }
        Outcome {
            found: lookup.found().is_some(),
            hops: lookup.hops(),
            asked: lookup.asked(),
            failed: lookup.failed(),
        }
    }

    /// `from` asks `to` for the contacts nearest `target`; `None` if `to`
    /// is stopped.
    fn request(&mut self, from: usize, to: &Contact, target: &Key) -> Option<Vec<Contact>> {
        let &j = self.by_key.get(to.key())?;
        if !self.nodes[j].running {
            return None;
        }
        let answer = self.nodes[j].table.closest(target, self.config.lookup.k);
        let requester = self.nodes[from].contact.clone();
        self.admit(j, requester, Origin::Inbound);
        Some(answer)
    }

    /// Node `i` offers `contact` to its table, running the liveness check a
    /// full bucket asks for.
    fn admit(&mut self, i: usize, contact: Contact, origin: Origin) {
        if let Insert::Replacement {
            check: Some(oldest),
        } = self.nodes[i].table.insert(contact, origin)
        {
            let alive = self
                .by_key
                .get(oldest.key())
                .is_some_and(|&j| self.nodes[j].running);
            let table = &mut self.nodes[i].table;
            if alive {
                table.seen(oldest.key());
            } else {
                table.failed(oldest.key());
            }
        }
    }
}
