//! Cluster mode with every service its own process, on real NATS, Redis and
//! PostgreSQL: two gateway replicas sharing one node key (one started as
//! `skywire serve gateway`, one as `skywire-gateway`), the pool (as
//! `skywire-pool`), and an outside peer (an embedded `skywire node`). The
//! pool reaches the peer through the presence map; killing the replica that
//! holds the peer makes it reconnect to the other, and no acknowledged
//! message is lost. And the DHT as its own process (`skywire-dht`) of a
//! cluster, found by address from outside and finding outside nodes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt as _;
use std::time::{Duration, Instant};

use common::{NodeProcess, Process};
use skywire_proto::dht::v1::{ResolveRequest, discovery_client::DiscoveryClient};
use skywire_proto::pool::v1::{self as api, pool_client::PoolClient};

const SERVICE: &str = "inbox/1";
const MESSAGES: u32 = 40;

/// A gateway replica: `skywire serve gateway`, or the gateway's own binary
/// when `own_binary` (the same service either way).
fn gateway(
    key_file: &str,
    data_dir: &str,
    replica: &str,
    cluster: &str,
    own_binary: bool,
) -> (Process, String) {
    let (binary, serve): (_, &[&str]) = if own_binary {
        (common::GATEWAY_BIN, &[])
    } else {
        (common::BIN, &["serve", "gateway"])
    };
    let args = [
        serve,
        &[
            "--key-file",
            key_file,
            "--data-dir",
            data_dir,
            "--replica",
            replica,
            "--listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
        ],
    ]
    .concat();
    let process = Process::start_bin(binary, &args, &[("SKYWIRE_CLUSTER", cluster)]);
    let dial = process.word_after("dial it as ");
    (process, dial)
}

/// The replica the cluster's pool says holds `address`, waiting until one
/// other than `not` does (a crashed replica's connections are forgotten when
/// its heartbeats stop).
async fn holding_replica(
    cluster: &mut PoolClient<tonic::transport::Channel>,
    address: &str,
    not: Option<&str>,
) -> String {
    // Events may be missed; gateways repeat them every 10 s.
    let deadline = Instant::now() + Duration::from_secs(25);
    loop {
        let peers = cluster
            .list_peers(api::ListPeersRequest {})
            .await
            .unwrap()
            .into_inner()
            .peers;
        if let Some(peer) = peers
            .iter()
            .find(|p| p.address == address && p.connected && Some(p.gateway.as_str()) != not)
        {
            return peer.gateway.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the pool never saw {address} connected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn admin_client(addr: &str) -> PoolClient<tonic::transport::Channel> {
    PoolClient::connect(format!("http://{addr}")).await.unwrap()
}

/// The address in a node's startup line.
fn address_of(node: &NodeProcess) -> String {
    node.startup
        .split("address=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned()
}

/// The endpoints of the record `admin`'s Discovery API resolves `address`
/// to.
async fn resolved_endpoints(admin: &str, address: &str) -> Vec<String> {
    let mut discovery = DiscoveryClient::connect(format!("http://{admin}"))
        .await
        .unwrap();
    let request = ResolveRequest {
        address: address.to_owned(),
    };
    let record = discovery
        .resolve(request)
        .await
        .unwrap()
        .into_inner()
        .record;
    record.unwrap().endpoints
}

/// The DHT as its own process of a cluster (`skywire-dht`: routing table in
/// PostgreSQL, the node key shared with the gateway, the gateway's endpoint
/// advertised, reaching peers through the gateway over NATS). It joins
/// through an outside node B; an outside node A that knows only B resolves
/// the cluster node's address to the gateway's endpoint, the cluster's
/// Discovery API resolves A, and the routing table is in the database.
#[tokio::test(flavor = "multi_thread")]
async fn the_dht_runs_as_its_own_process_of_a_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let key = skywire_identity::Keypair::generate();
    std::fs::write(path("node.key"), key.secret_hex().as_str()).unwrap();
    std::fs::set_permissions(path("node.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let tag = format!("{:08x}", rand::random::<u32>());
    let cluster = format!("test-{tag}");

    let b = NodeProcess::start(&dir.path().join("b"), &[]);
    b.said("DHT joined");
    let (_gateway, gateway_dial) = gateway(
        &path("node.key"),
        &path("gw"),
        &format!("gw-{tag}"),
        &cluster,
        false,
    );
    let gateway_endpoint = gateway_dial.split_once('@').unwrap().1.to_owned();
    let (db, database_url) = skywire_db::testing::fresh_postgres().await.unwrap();
    let dht = Process::start_bin(
        common::DHT_BIN,
        &[
            "--key-file",
            &path("node.key"),
            "--data-dir",
            &path("dht"),
            "--replica",
            &format!("dht-{tag}"),
            "--admin",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--advertise",
            &gateway_endpoint,
            "--bootstrap",
            &b.dial,
        ],
        &[
            ("SKYWIRE_DATABASE_URL", &database_url),
            ("SKYWIRE_CLUSTER", &cluster),
        ],
    );
    let cluster_admin = dht.word_after("admin API on ");
    dht.said("DHT joined");
    let a = NodeProcess::start(&dir.path().join("a"), &["--bootstrap", &b.dial]);
    a.said("DHT joined");

    let cluster_address = key.address().to_string();
    assert_eq!(
        resolved_endpoints(&a.admin, &cluster_address).await,
        [gateway_endpoint]
    );
    let a_endpoint = a.dial.split_once('@').unwrap().1.to_owned();
    assert_eq!(
        resolved_endpoints(&cluster_admin, &address_of(&a)).await,
        [a_endpoint]
    );
    let skywire_db::Db::Postgres(pool) = db else {
        panic!("fresh_postgres gives PostgreSQL");
    };
    let saved: i64 = sqlx::query_scalar("SELECT count(*) FROM dht_contacts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(saved >= 1, "the joined table is saved in PostgreSQL");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_survives_the_loss_of_its_gateway_replica_without_losing_acknowledged_messages() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    // One node key for both replicas.
    let key = skywire_identity::Keypair::generate();
    std::fs::write(path("gw.key"), key.secret_hex().as_str()).unwrap();
    std::fs::set_permissions(path("gw.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let tag = format!("{:08x}", rand::random::<u32>());
    let replicas = [format!("gw-a-{tag}"), format!("gw-b-{tag}")];
    // Its own cluster name: other tests share the NATS server and Redis.
    let cluster = format!("test-{tag}");
    let (gateway_a, dial_a) = gateway(&path("gw.key"), &path("a"), &replicas[0], &cluster, false);
    let (gateway_b, dial_b) = gateway(&path("gw.key"), &path("b"), &replicas[1], &cluster, true);
    let mut gateways = [Some(gateway_a), Some(gateway_b)];

    let (_, database_url) = skywire_db::testing::fresh_postgres().await.unwrap();
    // The pool's own binary: `skywire serve pool` under its own name.
    let pool = Process::start_bin(
        common::POOL_BIN,
        &[
            "--data-dir",
            &path("pool"),
            "--replica",
            &format!("pool-{tag}"),
            "--admin",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
        ],
        &[
            ("SKYWIRE_DATABASE_URL", &database_url),
            ("SKYWIRE_CLUSTER", &cluster),
            // Its peer events, for TEST_LOG=1 runs.
            ("RUST_LOG", "info,skywire_pool=debug"),
        ],
    );
    let cluster_admin = pool.word_after("admin API on ");

    // The outside peer knows both replicas' endpoints (one node id).
    let peer = NodeProcess::start(
        &dir.path().join("peer"),
        &["--connect", &dial_a, "--connect", &dial_b],
    );
    let peer_admin = peer.admin.clone();
    let peer_address = address_of(&peer);
    let mut inbox = admin_client(&peer_admin)
        .await
        .subscribe(api::SubscribeRequest {
            service: SERVICE.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let received = tokio::spawn(async move {
        let mut seen = BTreeSet::new();
        while let Ok(Some(message)) = inbox.message().await {
            seen.insert(String::from_utf8(message.message.to_vec()).unwrap());
        }
        seen
    });

    let mut cluster = admin_client(&cluster_admin).await;
    let mut acknowledged = BTreeSet::new();
    let mut holder = None;
    for i in 0..MESSAGES {
        if i == MESSAGES / 2 {
            // Crash the replica holding the peer: no GoAway, no presence
            // cleanup.
            let held_by = holding_replica(&mut cluster, &peer_address, None).await;
            let index = replicas.iter().position(|r| *r == held_by).unwrap();
            let mut victim = gateways[index].take().unwrap();
            victim.signal("-KILL");
            victim.wait_exit();
            holder = Some(held_by);
        }
        let text = format!("message {i}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let sent = cluster
                .send(api::SendRequest {
                    peer: peer_address.clone(),
                    service: SERVICE.into(),
                    message: text.clone().into_bytes().into(),
                })
                .await;
            match sent {
                Ok(_) => {
                    acknowledged.insert(text.clone());
                    break;
                }
                // Not connected yet, no route, the replica gone: retry.
                Err(status) => {
                    assert!(
                        Instant::now() < deadline,
                        "{text} never acknowledged: {status}"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
    assert_eq!(acknowledged.len(), MESSAGES as usize);
    // The peer moved to the surviving replica.
    let holder = holder.unwrap();
    let now = holding_replica(&mut cluster, &peer_address, Some(&holder)).await;
    assert!(replicas.contains(&now) && now != holder, "{now}");
    // Every acknowledged message reached the peer's service (at least once).
    drop(peer);
    let seen = tokio::time::timeout(Duration::from_secs(10), received)
        .await
        .unwrap()
        .unwrap();
    let lost: Vec<_> = acknowledged.difference(&seen).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    drop(pool);
}
