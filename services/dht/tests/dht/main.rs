//! The DHT over real SWP/1 between whole nodes on loopback: resolving an
//! address through a common bootstrap node, providers, a restart from the
//! saved table.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod attacks;
mod helpers;
mod limits;

use helpers::TestNode;

#[tokio::test]
async fn a_resolves_c_knowing_only_b() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestNode::join(dir.path(), &[]).await;
    let c = TestNode::join(dir.path(), &[&b]).await;
    let a = TestNode::join(dir.path(), &[&b]).await;

    let record = a.dht.resolve(&c.key.address()).await.unwrap();
    assert_eq!(record.node_id(), c.key.public_key());
    assert_eq!(record.endpoints(), &[c.addr]);
    // B learnt both from their requests once its table was open.
    assert_eq!(b.dht.table_len(), 2);

    for node in [a, b, c] {
        node.stop().await;
    }
}

#[tokio::test]
async fn providers_are_found_by_service_name() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestNode::join(dir.path(), &[]).await;
    let shop = TestNode::join(dir.path(), &[&b]).await;
    let buyer = TestNode::join(dir.path(), &[&b]).await;

    assert!(shop.dht.announce("shop/1").await.unwrap() >= 1);
    let providers = buyer.dht.find_providers("shop/1").await.unwrap();
    assert_eq!(providers.len(), 1);
    assert_eq!(providers[0].node_id(), shop.key.public_key());
    assert!(providers[0].services().contains(&"shop/1".to_string()));
    assert!(
        buyer
            .dht
            .find_providers("nothing/1")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(buyer.dht.find_providers("not a name").await.is_err());

    for node in [shop, buyer, b] {
        node.stop().await;
    }
}

#[tokio::test]
async fn a_restarted_node_rejoins_from_its_saved_table() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestNode::join(dir.path(), &[]).await;
    let c = TestNode::join(dir.path(), &[&b]).await;
    let a = TestNode::join(dir.path(), &[&b]).await;
    assert!(a.dht.table_len() >= 1);

    let (key, db_path) = (a.key.clone(), a.db_path.clone());
    let ip = match a.addr.ip() {
        std::net::IpAddr::V4(ip) => ip,
        std::net::IpAddr::V6(_) => unreachable!(),
    };
    a.stop().await;
    // No bootstrap this time: only the saved table.
    let a = TestNode::start_with(key, ip, db_path, Vec::new()).await;
    a.joined().await;
    assert!(
        a.dht.table_len() >= 1,
        "table refilled from the saved contacts"
    );
    let record = a.dht.resolve(&c.key.address()).await.unwrap();
    assert_eq!(record.endpoints(), &[c.addr]);

    for node in [a, b, c] {
        node.stop().await;
    }
}

/// How many nodes the network test runs, and how many lookups it makes in
/// each phase.
const NETWORK: usize = 200;
const LOOKUPS: usize = 200;

/// Resolves `LOOKUPS` random running targets from random running sources;
/// returns how many succeeded with the target's own endpoint.
async fn lookups(nodes: &[TestNode], running: &[usize]) -> usize {
    use rand::seq::IndexedRandom as _;
    let mut ok = 0;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..LOOKUPS {
        let mut rng = rand::rng();
        let from = *running.choose(&mut rng).unwrap();
        let to = loop {
            let to = *running.choose(&mut rng).unwrap();
            if to != from {
                break to;
            }
        };
        let dht = nodes[from].dht.clone();
        let (address, addr) = (nodes[to].key.address(), nodes[to].addr);
        tasks.spawn(async move {
            matches!(dht.resolve(&address).await, Ok(r) if r.endpoints() == [addr])
        });
        // A few lookups at a time, as a network sees them.
        while tasks.len() >= 8 {
            ok += usize::from(tasks.join_next().await.unwrap().unwrap());
        }
    }
    while let Some(done) = tasks.join_next().await {
        ok += usize::from(done.unwrap());
    }
    ok
}

/// 200 nodes over real SWP/1 on loopback, each on its own /24, all joined
/// through one bootstrap node: at least 99% of lookups find their target;
/// with 20% of the nodes stopped, at least 95% still do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_nodes_resolve_each_other_and_survive_churn() {
    let dir = tempfile::tempdir().unwrap();
    let bootstrap = TestNode::join(dir.path(), &[]).await;
    let mut nodes = vec![bootstrap];
    while nodes.len() < NETWORK {
        let batch = (NETWORK - nodes.len()).min(20);
        let mut starting = tokio::task::JoinSet::new();
        for _ in 0..batch {
            let (key, addr) = (nodes[0].key.public_key(), nodes[0].addr);
            let dir = dir.path().to_owned();
            starting.spawn(async move {
                let node = TestNode::start_with(
                    skywire_identity::Keypair::generate(),
                    helpers::next_ip(),
                    dir.join(format!("{}.db", rand::random::<u64>())),
                    vec![(key, addr)],
                )
                .await;
                node.joined().await;
                node
            });
        }
        while let Some(node) = starting.join_next().await {
            nodes.push(node.unwrap());
        }
    }
    let mean_table = nodes.iter().map(|n| n.dht.table_len()).sum::<usize>() / nodes.len();
    eprintln!("{NETWORK} nodes joined; mean table {mean_table}");

    let all: Vec<usize> = (0..nodes.len()).collect();
    let ok = lookups(&nodes, &all).await;
    eprintln!("no churn: {ok}/{LOOKUPS} lookups succeeded");
    assert!(ok * 100 >= LOOKUPS * 99, "{ok}/{LOOKUPS} lookups succeeded");

    // Stop 20% (never the bootstrap node).
    let stopped: Vec<TestNode> = nodes.drain(nodes.len() - NETWORK / 5..).collect();
    for node in stopped {
        node.stop().await;
    }
    let running: Vec<usize> = (0..nodes.len()).collect();
    let ok = lookups(&nodes, &running).await;
    eprintln!("20% stopped: {ok}/{LOOKUPS} lookups succeeded");
    assert!(
        ok * 100 >= LOOKUPS * 95,
        "{ok}/{LOOKUPS} lookups succeeded after churn"
    );

    for node in nodes {
        node.stop().await;
    }
}
