//! Lookups over small synthetic networks built from routing tables, and
//! over the in-memory network of `skywire_dht::sim`: disjoint paths, the
//! node and closest goals, hop counts, failures, bogus answers, and the
//! bound on requests in flight.
//!
//! Every key pair is derived from a counter and every network from a seed,
//! so every test is deterministic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet, VecDeque};

use common::{contact_seq, key_list, subnet_addr};
use skywire_dht::lookup::MAX_CANDIDATES;
use skywire_dht::sim::{Network, SimConfig};
use skywire_dht::table::K;
use skywire_dht::{
    Contact, Goal, KEY_LEN, Key, Lookup, LookupConfig, Origin, RoutingTable, TableConfig,
};
use skywire_identity::Keypair;

/// The `n`-th deterministic key pair.
fn keypair(n: u64) -> Keypair {
    common::keypair(0x22, n)
}

/// A contact for `key` on the `i`-th /24 of 10.0.0.0/8.
fn contact(key: &Keypair, i: usize) -> Contact {
    contact_seq(key, subnet_addr(i), 1)
}

/// `n` contacts from key pairs `first..first + n`.
fn contacts(first: u64, n: usize) -> Vec<Contact> {
    (0..n)
        .map(|i| contact(&keypair(first + i as u64), i))
        .collect()
}

/// Contacts from key pairs counted up from `first` whose keys satisfy
/// `pred`, `n` of them.
fn contacts_where(first: u64, n: usize, pred: impl Fn(&Key) -> bool) -> Vec<Contact> {
    let mut out = Vec::new();
    let mut i = first;
    while out.len() < n {
        let c = contact(&keypair(i), out.len());
        if pred(c.key()) {
            out.push(c);
        }
        i += 1;
    }
    out
}

/// The `n` keys of `pool` nearest `target`, nearest first.
fn nearest(pool: impl IntoIterator<Item = Key>, target: &Key, n: usize) -> Vec<Key> {
    let mut all: Vec<Key> = pool.into_iter().collect();
    all.sort_by_key(|k| k.distance(target));
    all.truncate(n);
    all
}

/// A network of nodes that each know every other node their routing table
/// admits; `dead` nodes fail every request.
struct World {
    nodes: Vec<Contact>,
    index: HashMap<Key, usize>,
    tables: Vec<RoutingTable>,
    dead: HashSet<Key>,
}

impl World {
    fn new(first: u64, n: usize) -> Self {
        let nodes = contacts(first, n);
        let index = nodes
            .iter()
            .enumerate()
            .map(|(i, c)| (*c.key(), i))
            .collect();
        let tables = nodes
            .iter()
            .map(|me| {
                let mut table = RoutingTable::new(*me.key(), TableConfig::default());
                for other in &nodes {
                    let _ = table.insert(other.clone(), Origin::Outbound);
                }
                table
            })
            .collect();
        Self {
            nodes,
            index,
            tables,
            dead: HashSet::new(),
        }
    }

    fn key(&self, i: usize) -> Key {
        *self.nodes[i].key()
    }

    /// A lookup of `target` by node `from`, seeded from its table.
    fn lookup(&self, from: usize, target: Key, goal: Goal, config: LookupConfig) -> Lookup {
        let seeds = self.tables[from].closest(&target, config.k);
        Lookup::new(self.key(from), target, goal, seeds, config)
    }

    /// What `to` answers to a request for `target`: `None` if it is dead
    /// or not in the network.
    fn answer(&self, to: &Contact, target: &Key) -> Option<Vec<Contact>> {
        let &i = self.index.get(to.key())?;
        if self.dead.contains(to.key()) {
            return None;
        }
        Some(self.tables[i].closest(target, K))
    }

    fn alive(&self) -> impl Iterator<Item = Key> + '_ {
        self.nodes
            .iter()
            .map(|c| *c.key())
            .filter(|k| !self.dead.contains(k))
    }
}

/// Gives `lookup` the answer of `contact`, asked before: its contacts, or
/// a failure (`None`).
fn deliver(lookup: &mut Lookup, contact: &Contact, answer: Option<Vec<Contact>>) {
    match answer {
        Some(contacts) => lookup.on_response(contact.key(), contacts),
        None => lookup.on_failure(contact.key()),
    }
}

/// Runs `lookup` to its end, answering every query of a round at once
/// (`None`: a failure); returns the keys queried, in order.
fn run(lookup: &mut Lookup, mut answer: impl FnMut(&Contact) -> Option<Vec<Contact>>) -> Vec<Key> {
    let mut queried = Vec::new();
    loop {
        let queries = lookup.poll();
        if queries.is_empty() {
            break;
        }
        for query in queries {
            queried.push(*query.contact.key());
            deliver(lookup, &query.contact, answer(&query.contact));
        }
    }
    queried
}

/// Runs `lookup` to its end answering one request at a time, oldest first,
/// polling after each answer as an event loop does; returns the keys
/// queried and the most requests ever in flight.
fn run_one_at_a_time(
    lookup: &mut Lookup,
    mut answer: impl FnMut(&Contact) -> Option<Vec<Contact>>,
) -> (Vec<Key>, usize) {
    let mut queried = Vec::new();
    let mut pending = VecDeque::new();
    let mut most = 0;
    loop {
        for query in lookup.poll() {
            queried.push(*query.contact.key());
            pending.push_back(query);
        }
        most = most.max(pending.len());
        let Some(query) = pending.pop_front() else {
            break;
        };
        deliver(lookup, &query.contact, answer(&query.contact));
    }
    assert!(lookup.is_finished());
    (queried, most)
}

/// Each node of `chain` pointing to the next: who a node's answer names.
fn links(chain: &[Contact]) -> HashMap<Key, Contact> {
    chain
        .windows(2)
        .map(|w| (*w[0].key(), w[1].clone()))
        .collect()
}

#[track_caller]
fn assert_unique(queried: &[Key]) {
    let set: HashSet<&Key> = queried.iter().collect();
    assert_eq!(set.len(), queried.len(), "a node was queried twice");
}

/// Across a whole lookup, whatever its goal and however answers
/// interleave, no node is queried twice (each belongs to one path and is
/// asked once), the local node is never queried, and `asked()` counts
/// exactly the queries `poll` returned.
#[test]
fn every_query_is_unique_across_paths() {
    let world = World::new(1_000, 120);
    for (from, to) in [(0, 1), (5, 77), (42, 3), (119, 60)] {
        let target = world.key(to);
        for goal in [Goal::Closest, Goal::Node] {
            let mut lookup = world.lookup(from, target, goal, LookupConfig::default());
            let queried = run(&mut lookup, |c| world.answer(c, &target));
            assert_unique(&queried);
            assert!(!queried.contains(&world.key(from)));
            assert_eq!(lookup.asked(), queried.len());

            let mut lookup = world.lookup(from, target, goal, LookupConfig::default());
            let (queried, _) = run_one_at_a_time(&mut lookup, |c| world.answer(c, &target));
            assert_unique(&queried);
            assert_eq!(lookup.asked(), queried.len());
        }
        // A random key, not a node's.
        let mut bytes = *target.as_bytes();
        bytes[KEY_LEN - 1] ^= 0x5a;
        let target = Key::from_bytes(bytes);
        let mut lookup = world.lookup(from, target, Goal::Closest, LookupConfig::default());
        let queried = run(&mut lookup, |c| world.answer(c, &target));
        assert_unique(&queried);
    }
}

/// A node belongs to the path that heard of it first: when two paths'
/// nodes both return X (nearer the target than anything else), only the
/// first path asks X, and the second goes on with its own candidates.
#[test]
fn a_node_belongs_to_the_first_path_that_heard_of_it() {
    let target = Key::from_bytes([0x3c; KEY_LEN]);
    let seeds = contacts(2_000, 3);
    let mut found = contacts(2_100, 3);
    found.sort_by_key(|c| c.key().distance(&target));
    let (x, y, z) = (found[0].clone(), found[1].clone(), found[2].clone());
    let local = Key::from_bytes([0; KEY_LEN]);
    let mut lookup = Lookup::new(local, target, Goal::Closest, seeds, LookupConfig::default());

    let first = lookup.poll();
    assert_eq!(first.len(), 3, "one request per path");
    let (a, b) = (first[0].contact.clone(), first[1].contact.clone());
    lookup.on_response(a.key(), vec![x.clone(), y.clone()]);
    lookup.on_response(b.key(), vec![x.clone(), z.clone()]);
    let second: HashSet<Key> = lookup.poll().iter().map(|q| *q.contact.key()).collect();
    assert_eq!(second, HashSet::from([*x.key(), *z.key()]));
}

/// A `Goal::Node` lookup stops as soon as the target's contact arrives, and
/// `hops()` counts the answers that led to it: the target in our own table
/// is 0 hops and no request; at the end of a chain of n nodes, n hops.
/// The target itself is never queried.
#[test]
fn node_goal_stops_at_the_target_and_counts_hops() {
    let chain = contacts(3_000, 6);
    let target = *chain[5].key();
    let local = Key::from_bytes([0; KEY_LEN]);
    let next_of = links(&chain);
    let lookup_from =
        |goal, seeds| Lookup::new(local, target, goal, seeds, LookupConfig::default());

    let mut lookup = lookup_from(Goal::Node, vec![chain[0].clone()]);
    let queried = run(&mut lookup, |c| Some(vec![next_of[c.key()].clone()]));
    assert_eq!(queried, key_list(&chain[..5]));
    assert_eq!(lookup.hops(), Some(5));
    assert_eq!(lookup.found().map(|c| *c.key()), Some(target));
    assert!(lookup.is_finished());
    assert!(lookup.poll().is_empty());

    // In our own table: found before any request.
    let mut lookup = lookup_from(Goal::Node, vec![chain[0].clone(), chain[5].clone()]);
    assert_eq!(lookup.hops(), Some(0));
    assert!(lookup.is_finished());
    assert!(lookup.poll().is_empty());
    assert_eq!(lookup.asked(), 0);

    // One answer away, among other nodes: 1 hop, and nothing asked after.
    let others = contacts(3_100, 10);
    let mut lookup = lookup_from(Goal::Node, others);
    let first = lookup.poll();
    assert_eq!(first.len(), 3);
    lookup.on_response(first[1].contact.key(), vec![chain[5].clone()]);
    assert_eq!(lookup.hops(), Some(1));
    assert!(lookup.poll().is_empty());
    assert_eq!(lookup.asked(), 3);

    // A `Goal::Closest` lookup does not stop there: it asks the target too.
    let mut lookup = lookup_from(Goal::Closest, vec![chain[0].clone()]);
    let queried = run(&mut lookup, |c| {
        Some(next_of.get(c.key()).cloned().into_iter().collect())
    });
    assert_eq!(queried, key_list(&chain));
    assert!(lookup.found().is_none());
    assert_eq!(lookup.closest()[0].key(), &target);
}

/// A `Goal::Closest` lookup ends with the k nodes nearest the target of
/// the whole network (not only of the local table), nearest first.
#[test]
fn closest_goal_returns_the_k_nearest() {
    let world = World::new(4_000, 150);
    for (from, target) in [
        (0, Key::from_bytes([0x77; KEY_LEN])),
        (10, world.key(99)),
        (149, Key::from_bytes([0x01; KEY_LEN])),
    ] {
        let mut lookup = world.lookup(from, target, Goal::Closest, LookupConfig::default());
        run(&mut lookup, |c| world.answer(c, &target));
        assert!(lookup.is_finished());
        let me = world.key(from);
        let expected = nearest(world.alive().filter(|k| *k != me), &target, K);
        assert_eq!(key_list(&lookup.closest()), expected);
        assert!(lookup.found().is_none());
    }
}

/// Dead nodes are asked once, counted in `failed()`, never asked again and
/// never returned by `closest()`; the lookup still ends with k live nodes,
/// nearest first, among them every live node of the k nearest.
#[test]
fn failures_are_not_retried() {
    let mut world = World::new(5_000, 150);
    for i in (1..150).step_by(5) {
        world.dead.insert(world.key(i));
    }
    let dead = world.dead.clone();
    for (from, target) in [(0, Key::from_bytes([0x42; KEY_LEN])), (3, world.key(50))] {
        let mut lookup = world.lookup(from, target, Goal::Closest, LookupConfig::default());
        let queried = run(&mut lookup, |c| world.answer(c, &target));
        assert_unique(&queried);
        let failed = queried.iter().filter(|k| dead.contains(k)).count();
        assert!(failed > 0, "the test should meet dead nodes");
        assert_eq!(lookup.failed(), failed);
        // Reporting again changes nothing.
        for k in queried.iter().filter(|k| dead.contains(k)) {
            lookup.on_failure(k);
            lookup.on_response(k, world.nodes.clone());
        }
        assert_eq!(lookup.failed(), failed);
        assert!(lookup.poll().is_empty());
        let closest = key_list(&lookup.closest());
        assert!(closest.iter().all(|k| !dead.contains(k)));
        assert_eq!(closest.len(), K);
        assert!(closest.is_sorted_by_key(|k| k.distance(&target)));
        // Answers hold the k nearest of their tables, dead or alive, so the
        // live nodes among the k nearest of the network are all heard of,
        // and must all be found.
        let me = world.key(from);
        let all = world.nodes.iter().map(|c| *c.key()).filter(|k| *k != me);
        for k in nearest(all, &target, K)
            .iter()
            .filter(|k| !dead.contains(k))
        {
            assert!(closest.contains(k), "{k} is live and among the k nearest");
        }
    }

    // Only dead seeds: each asked once, then the lookup is over.
    let seeds = contacts(5_500, 7);
    let mut lookup = Lookup::new(
        Key::from_bytes([0; KEY_LEN]),
        Key::from_bytes([9; KEY_LEN]),
        Goal::Closest,
        seeds.clone(),
        LookupConfig::default(),
    );
    let queried = run(&mut lookup, |_| None);
    assert_eq!(
        queried.iter().collect::<HashSet<_>>(),
        key_list(&seeds).iter().collect::<HashSet<_>>()
    );
    assert_eq!(queried.len(), seeds.len());
    assert_eq!(lookup.failed(), seeds.len());
    assert!(lookup.is_finished());
    assert!(lookup.closest().is_empty());
}

/// Answers from nodes that were not asked (strangers, candidates not yet
/// asked, nodes that already answered) are ignored: nothing they return is
/// ever queried, and they do not free a request slot.
#[test]
fn answers_from_nodes_not_asked_are_ignored() {
    let target = Key::from_bytes([0x99; KEY_LEN]);
    let mut seeds = contacts(6_000, 2);
    seeds.sort_by_key(|c| c.key().distance(&target));
    let (a, waiting) = (seeds[0].clone(), seeds[1].clone());
    let stranger = contact(&keypair(6_100), 50);
    let planted = contacts(6_200, 5);
    let honest = contacts(6_300, 3);
    let config = LookupConfig {
        k: K,
        alpha: 1,
        paths: 1,
    };
    let mut lookup = Lookup::new(
        Key::from_bytes([0; KEY_LEN]),
        target,
        Goal::Closest,
        seeds,
        config,
    );
    let first = lookup.poll();
    assert_eq!(key_list(first.iter().map(|q| &q.contact)), vec![*a.key()]);

    lookup.on_response(stranger.key(), planted.clone());
    lookup.on_response(waiting.key(), planted.clone());
    assert!(lookup.poll().is_empty(), "no slot was freed");
    lookup.on_response(a.key(), honest.clone());
    lookup.on_response(a.key(), planted.clone());

    let mut queried: Vec<Key> = Vec::new();
    queried.extend(run(&mut lookup, |_| Some(Vec::new())));
    let planted: HashSet<Key> = key_list(&planted).into_iter().collect();
    assert!(queried.iter().all(|k| !planted.contains(k)), "{queried:?}");
    let mut expected: HashSet<Key> = key_list(&honest).into_iter().collect();
    expected.insert(*waiting.key());
    assert_eq!(queried.into_iter().collect::<HashSet<_>>(), expected);
    assert_eq!(lookup.asked(), 1 + expected.len());
}

/// A `Goal::Node` lookup whose first path starts at a liar: seeds [liar,
/// honest[0], honest[4]], the liar and the 8 honest nodes far from the
/// target (their first bit differs from its), and two honest chains,
/// honest[0..4] and honest[4..8], each ending at the target (4 hops).
struct LiarFirst {
    honest: Vec<Contact>,
    liar: Contact,
    target: Key,
    /// Who each honest node's answer names: the next of its chain.
    next: HashMap<Key, Contact>,
}

impl LiarFirst {
    fn new() -> Self {
        let zero = Key::from_bytes([0; KEY_LEN]);
        let far = |k: &Key| zero.distance(k).bucket() == Some(0);
        let honest = contacts_where(9_000, 8, far);
        let liar = contacts_where(9_100, 1, far).remove(0);
        let target = contacts_where(9_200, 1, |k| zero.distance(k).bucket() >= Some(8)).remove(0);
        // Two honest chains: honest[0..4] and honest[4..8], each ending at
        // the target.
        let next = [&honest[0..4], &honest[4..8]]
            .iter()
            .flat_map(|chain| {
                let mut next = links(chain);
                next.insert(*chain[3].key(), target.clone());
                next
            })
            .collect();
        Self {
            honest,
            liar,
            target: *target.key(),
            next,
        }
    }

    /// The lookup of the target, from seeds [liar, honest[0], honest[4]].
    fn lookup(&self) -> Lookup {
        Lookup::new(
            Key::from_bytes([0xff; KEY_LEN]),
            self.target,
            Goal::Node,
            vec![
                self.liar.clone(),
                self.honest[0].clone(),
                self.honest[4].clone(),
            ],
            LookupConfig::default(),
        )
    }

    /// What `c` answers if it is honest: the next node of its chain;
    /// `None` (a failure) from any other node.
    fn honest_answer(&self, c: &Contact) -> Option<Vec<Contact>> {
        self.next.get(c.key()).map(|n| vec![n.clone()])
    }
}

/// Nodes that answer with many bogus contacts (validly signed records of
/// nodes that do not exist, chosen nearer the target than honest nodes)
/// cannot make `Goal::Node` lookups fail while honest paths exist: the
/// decoys fail, drop out, and honest candidates are asked.
#[test]
fn dead_decoys_cannot_hide_the_target() {
    let world = World::new(7_000, 100);
    let malicious: HashSet<Key> = (0..100).step_by(10).map(|i| world.key(i)).collect();
    let decoys = contacts(8_000, 400);
    let decoys_near = |target: &Key| -> Vec<Contact> {
        let mut d = decoys.clone();
        d.sort_by_key(|c| c.key().distance(target));
        d.truncate(K);
        d
    };
    let mut lookups = 0;
    for from in (1..100).step_by(7).filter(|i| i % 10 != 0) {
        for to in (3..100).step_by(11).filter(|i| i % 10 != 0 && *i != from) {
            let target = world.key(to);
            let near = decoys_near(&target);
            let mut lookup = world.lookup(from, target, Goal::Node, LookupConfig::default());
            let queried = run(&mut lookup, |c| {
                if malicious.contains(c.key()) {
                    Some(near.clone())
                } else {
                    world.answer(c, &target)
                }
            });
            assert_unique(&queried);
            assert!(lookup.found().is_some(), "{from} -> {to}");
            lookups += 1;
        }
    }
    assert!(lookups > 50);

    // The worst case, one path of three starting at a liar: seeds
    // [liar, honest, honest], honest nodes far from the target (a few hops
    // each), the liar's decoys all nearer than any honest node.
    let liar_first = LiarFirst::new();
    let target = liar_first.target;
    let decoys = contacts_where(9_300, 2 * K, |k| target.distance(k).bucket() >= Some(1));
    let mut lookup = liar_first.lookup();
    run(&mut lookup, |c| {
        if c.key() == liar_first.liar.key() {
            Some(decoys.clone())
        } else {
            liar_first.honest_answer(c)
        }
    });
    assert_eq!(lookup.found().map(|c| *c.key()), Some(target));
    assert_eq!(lookup.hops(), Some(4));
}

/// The same attack with decoys that answer (Sybils run by the attacker,
/// nearer the target than the honest nodes on the other paths): the paths
/// are disjoint, so the paths without the liar must still reach the
/// target ("one adversarial node can mislead at most the paths it sits
/// on", `lookup.rs`).
#[test]
fn live_sybils_on_one_path_cannot_stall_the_others() {
    let liar_first = LiarFirst::new();
    let target = liar_first.target;
    let sybils = contacts_where(9_300, K, |k| target.distance(k).bucket() >= Some(1));
    let sybil_keys: HashSet<Key> = key_list(&sybils).into_iter().collect();
    let mut lookup = liar_first.lookup();
    run(&mut lookup, |c| {
        if c.key() == liar_first.liar.key() || sybil_keys.contains(c.key()) {
            // Sybils answer, with one another.
            Some(sybils.clone())
        } else {
            liar_first.honest_answer(c)
        }
    });
    assert_eq!(
        lookup.found().map(|c| *c.key()),
        Some(target),
        "the honest paths were stalled after {} requests",
        lookup.asked()
    );
}

/// A path remembers at most `MAX_CANDIDATES` candidates: an answer with
/// hundreds of bogus contacts (with `k` raised so one answer may carry
/// them) leaves only the nearest ones to ask, so the lookup sends at most
/// `MAX_CANDIDATES` requests; with the default `k`, one answer adds at
/// most `k` contacts.
#[test]
fn bogus_floods_are_bounded() {
    let target = Key::from_bytes([0x10; KEY_LEN]);
    let liar = contact(&keypair(10_000), 0);
    let flood = contacts(10_001, 200);
    // A lookup seeded with the liar alone, which answers with the flood;
    // every other node fails.
    let flooded = |config| {
        let local = Key::from_bytes([0; KEY_LEN]);
        let mut lookup = Lookup::new(local, target, Goal::Closest, vec![liar.clone()], config);
        let queried = run(&mut lookup, |c| {
            (c.key() == liar.key()).then(|| flood.clone())
        });
        (lookup, queried)
    };
    let (lookup, queried) = flooded(LookupConfig {
        k: 500,
        alpha: 1,
        paths: 1,
    });
    assert_eq!(lookup.asked(), MAX_CANDIDATES);
    assert_eq!(queried.len(), MAX_CANDIDATES);
    let asked_decoys: HashSet<Key> = queried[1..].iter().copied().collect();
    let expected: HashSet<Key> = nearest(key_list(&flood), &target, MAX_CANDIDATES - 1)
        .into_iter()
        .collect();
    assert_eq!(asked_decoys, expected, "the nearest are kept");

    // Default k: the first k contacts of an answer, no more.
    let (lookup, queried) = flooded(LookupConfig::default());
    assert_eq!(lookup.asked(), 1 + K);
    let asked: HashSet<Key> = queried[1..].iter().copied().collect();
    assert_eq!(asked, key_list(&flood[..K]).into_iter().collect());
}

/// Runs a `Goal::Closest` lookup by node 7 of `world` with these settings,
/// answering one request at a time; returns the keys queried and the most
/// requests ever in flight.
fn in_flight(world: &World, alpha: usize, paths: usize) -> (Vec<Key>, usize) {
    let target = Key::from_bytes([0x6b; KEY_LEN]);
    let config = LookupConfig { k: K, alpha, paths };
    let mut lookup = world.lookup(7, target, Goal::Closest, config);
    run_one_at_a_time(&mut lookup, |c| world.answer(c, &target))
}

/// However answers interleave, at most `alpha` requests are in flight, and
/// a lookup with enough candidates uses them all.
#[test]
fn at_most_alpha_in_flight() {
    let world = World::new(11_000, 120);
    for (alpha, paths) in [(3, 3), (1, 1), (6, 3), (4, 2), (5, 1)] {
        let (queried, most) = in_flight(&world, alpha, paths);
        assert_unique(&queried);
        assert_eq!(most, alpha, "alpha {alpha}, paths {paths}");
    }
}

/// With fewer requests allowed in flight than paths (`alpha < paths`, both
/// public settings of `LookupConfig`), `alpha` still bounds the requests in
/// flight across all paths, as its documentation says.
#[test]
fn alpha_below_paths_still_bounds_requests_in_flight() {
    let world = World::new(11_000, 120);
    for (alpha, paths) in [(1, 3), (2, 3), (3, 4)] {
        let (_, most) = in_flight(&world, alpha, paths);
        assert!(
            most <= alpha,
            "alpha {alpha}, paths {paths}: {most} in flight"
        );
    }
}

/// Runs `lookups` `Goal::Node` lookups between random distinct running
/// nodes of `network`; returns how many found their target.
fn successes(network: &mut Network, lookups: usize) -> usize {
    let mut found = 0;
    for _ in 0..lookups {
        let (from, to) = network.random_pair();
        let outcome = network.lookup(from, network.key(to), Goal::Node);
        if outcome.found {
            assert!(outcome.hops.is_some());
            found += 1;
        }
    }
    found
}

/// In the in-memory network of 200 nodes, at least 99% of 200 lookups
/// find their target; after a fifth of the nodes stop without notice, at
/// least 95% of 200 lookups between running nodes still do. (One network
/// for both: building it is most of the cost.)
#[test]
fn sim_lookups_find_their_target_even_after_a_fifth_stop() {
    let mut network = Network::build(200, SimConfig::default(), 7);
    assert_eq!(network.len(), 200);
    assert!((0..200).all(|i| network.table_len(i) > 0));
    let found = successes(&mut network, 200);
    assert!(found >= 198, "{found}/200 found");

    network.stop_fraction(0.2);
    let stopped = (0..200).filter(|&i| !network.is_running(i)).count();
    assert_eq!(stopped, 40);
    let found = successes(&mut network, 200);
    assert!(found >= 190, "{found}/200 found after stopping {stopped}");
}
