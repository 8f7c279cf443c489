//! Iterative lookups over disjoint paths (S/Kademlia, section 4.4).
//!
//! A [`Lookup`] starts from the contacts of our table nearest the target,
//! dealt round-robin to [`LookupConfig::paths`] paths. Each path asks its
//! nearest unasked candidates, [`LookupConfig::alpha`] at a time in all, and
//! adds the contacts they return to its own candidates; a node belongs to
//! the first path that heard of it and is never asked by another, so one
//! adversarial node can mislead at most the paths it sits on. A path ends
//! when its own `k` nearest live candidates have all answered (one that
//! fails drops out, letting the next in); the lookup ends when every path
//! has, or when the goal is met ([`Goal::Node`]: the
//! target's record arrived; or the caller calls [`Lookup::finish`]).
//!
//! The lookup does no I/O: [`Lookup::poll`] says whom to ask, and the caller
//! reports each answer ([`Lookup::on_response`]) or failure
//! ([`Lookup::on_failure`]). The same code runs over SWP/1 and in the
//! in-memory network of the benchmark.

use std::collections::{BTreeMap, HashMap};

use crate::key::{Distance, Key};
use crate::table::{Contact, K};

/// Requests in flight per lookup (Kademlia's α).
pub const ALPHA: usize = 3;

/// Disjoint paths per lookup: with α = 3, one request in flight on each.
pub const DISJOINT_PATHS: usize = 3;

/// Candidates a path remembers; the farthest unasked ones are forgotten
/// beyond this, so an answer full of bogus contacts costs bounded memory.
pub const MAX_CANDIDATES: usize = 4 * K;

/// A lookup's parameters.
#[derive(Debug, Clone)]
pub struct LookupConfig {
    /// Nearest live nodes a path must have asked before it ends, and the
    /// most contacts taken from one answer.
    pub k: usize,
    /// Requests in flight across all paths.
    pub alpha: usize,
    /// Disjoint paths.
    pub paths: usize,
}

impl Default for LookupConfig {
    fn default() -> Self {
        Self {
            k: K,
            alpha: ALPHA,
            paths: DISJOINT_PATHS,
        }
    }
}

/// When a lookup may stop early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// Find the node whose key is the target: stop when its record arrives.
    Node,
    /// Find the nodes nearest the target: run every path to its end.
    Closest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    InFlight,
    Answered,
    Failed,
}

#[derive(Debug)]
struct Candidate {
    contact: Contact,
    depth: u32,
    state: State,
}

#[derive(Debug, Default)]
struct Path {
    candidates: BTreeMap<Distance, Candidate>,
    in_flight: usize,
}

/// A request the caller should send now.
#[derive(Debug, Clone)]
pub struct Query {
    /// Whom to ask.
    pub contact: Contact,
    /// How many answers led to this contact (0: it came from our table).
    pub depth: u32,
}

/// One lookup in progress.
#[derive(Debug)]
pub struct Lookup {
    local: Key,
    target: Key,
    goal: Goal,
    config: LookupConfig,
    paths: Vec<Path>,
    /// The path each known node belongs to.
    owner: HashMap<Key, usize>,
    found: Option<(Contact, u32)>,
    asked: usize,
    failed: usize,
    stopped: bool,
}

impl Lookup {
    /// A lookup of `target` by the node `local`, starting from `seeds` (the
    /// nearest contacts of its table).
    pub fn new(
        local: Key,
        target: Key,
        goal: Goal,
        mut seeds: Vec<Contact>,
        config: LookupConfig,
    ) -> Self {
        // At least one request in flight per path: more paths than α would
        // exceed α.
        let paths = config.paths.clamp(1, config.alpha.max(1));
        let mut lookup = Self {
            local,
            target,
            goal,
            paths: (0..paths).map(|_| Path::default()).collect(),
            config,
            owner: HashMap::new(),
            found: None,
            asked: 0,
            failed: 0,
            stopped: false,
        };
        seeds.sort_by_key(|c| c.key().distance(&target));
        let mut next = 0;
        for seed in seeds {
            if lookup.learn(next, seed, 0) {
                next = (next + 1) % paths;
            }
        }
        lookup
    }

    /// Adds `contact`, learned at `depth`, to `path`; false if it was
    /// already known, is us, or is the target (then recorded as found).
    fn learn(&mut self, path: usize, contact: Contact, depth: u32) -> bool {
        let key = *contact.key();
        if key == self.local || self.owner.contains_key(&key) {
            return false;
        }
        if key == self.target && self.goal == Goal::Node {
            if self.found.is_none() {
                self.found = Some((contact, depth));
            }
            self.stopped = true;
            return false;
        }
        self.owner.insert(key, path);
        let p = &mut self.paths[path];
        p.candidates.insert(
            key.distance(&self.target),
            Candidate {
                contact,
                depth,
                state: State::Waiting,
            },
        );
        if p.candidates.len() > MAX_CANDIDATES {
            let farthest = p
                .candidates
                .iter()
                .rev()
                .find(|(_, c)| c.state == State::Waiting)
                .map(|(d, c)| (*d, *c.contact.key()));
            if let Some((distance, key)) = farthest {
                p.candidates.remove(&distance);
                self.owner.remove(&key);
            }
        }
        true
    }

    /// The nearest unasked candidate of `path` among its `k` nearest live
    /// ones, if any: each path runs to its own end, so nodes that answer
    /// with near decoys on one path cannot end the others early.
    fn next_of(&self, path: usize) -> Option<Distance> {
        self.paths[path]
            .candidates
            .iter()
            .filter(|(_, c)| c.state != State::Failed)
            .take(self.config.k)
            .find(|(_, c)| c.state == State::Waiting)
            .map(|(d, _)| *d)
    }

    fn per_path(&self) -> usize {
        (self.config.alpha / self.paths.len()).max(1)
    }

    /// The requests to send now (none once the lookup is finished).
    pub fn poll(&mut self) -> Vec<Query> {
        let mut queries = Vec::new();
        if self.stopped {
            return queries;
        }
        let per_path = self.per_path();
        for path in 0..self.paths.len() {
            while self.paths[path].in_flight < per_path {
                let Some(distance) = self.next_of(path) else {
                    break;
                };
                let p = &mut self.paths[path];
                p.in_flight += 1;
                let candidate = p
                    .candidates
                    .get_mut(&distance)
                    .expect("next_of returns a held candidate");
                candidate.state = State::InFlight;
                self.asked += 1;
                queries.push(Query {
                    contact: candidate.contact.clone(),
                    depth: candidate.depth,
                });
            }
        }
        queries
    }

    /// The in-flight candidate with `key`, and its path.
    fn in_flight(&mut self, key: &Key) -> Option<(usize, &mut Candidate)> {
        let path = *self.owner.get(key)?;
        let distance = key.distance(&self.target);
        let candidate = self.paths[path].candidates.get_mut(&distance)?;
        (candidate.state == State::InFlight).then_some((path, candidate))
    }

    /// `from` answered with `contacts` (records it verified): they join its
    /// path, at most `k` of them.
    pub fn on_response(&mut self, from: &Key, contacts: Vec<Contact>) {
        let Some((path, candidate)) = self.in_flight(from) else {
            return;
        };
        candidate.state = State::Answered;
        let depth = candidate.depth + 1;
        self.paths[path].in_flight -= 1;
        for contact in contacts.into_iter().take(self.config.k) {
            self.learn(path, contact, depth);
        }
    }

    /// `from` did not answer, or answered nonsense.
    pub fn on_failure(&mut self, from: &Key) {
        let Some((path, candidate)) = self.in_flight(from) else {
            return;
        };
        candidate.state = State::Failed;
        self.paths[path].in_flight -= 1;
        self.failed += 1;
    }

    /// Ends the lookup now (the caller found what it looked for).
    pub fn finish(&mut self) {
        self.stopped = true;
    }

    /// Whether nothing is left to ask, or nothing more is wanted.
    pub fn is_finished(&self) -> bool {
        self.stopped
            || (0..self.paths.len())
                .all(|p| self.paths[p].in_flight == 0 && self.next_of(p).is_none())
    }

    /// The key looked up.
    pub fn target(&self) -> &Key {
        &self.target
    }

    /// The target's contact, for a [`Goal::Node`] lookup that found it.
    pub fn found(&self) -> Option<&Contact> {
        self.found.as_ref().map(|(c, _)| c)
    }

    /// Sequential requests that led to the target (0: it was in our table).
    pub fn hops(&self) -> Option<u32> {
        self.found.as_ref().map(|(_, depth)| *depth)
    }

    /// Requests sent so far.
    pub fn asked(&self) -> usize {
        self.asked
    }

    /// Requests that failed so far.
    pub fn failed(&self) -> usize {
        self.failed
    }

    /// The `k` nearest nodes that answered, nearest first, across paths.
    pub fn closest(&self) -> Vec<Contact> {
        let mut answered: Vec<(&Distance, &Candidate)> = self
            .paths
            .iter()
            .flat_map(|p| p.candidates.iter())
            .filter(|(_, c)| c.state == State::Answered)
            .collect();
        answered.sort_unstable_by_key(|(d, _)| **d);
        answered
            .into_iter()
            .take(self.config.k)
            .map(|(_, c)| c.contact.clone())
            .collect()
    }
}
