//! The chain end to end: a publisher and two followers, each a real `skywire node`
//! process on loopback, the chain created with `skywire chain new`, the test acting as a
//! wallet through the nodes' gRPC API.
//!
//! - 1000 blocks with transactions; the followers converge on the publisher's head and
//!   balances;
//! - transactions sent to a follower reach the publisher, land in blocks, and the
//!   balances change everywhere;
//! - a follower killed with SIGKILL in the middle of catching up restarts on its
//!   database, consistent, and catches up;
//! - in a cluster (NATS, Redis, PostgreSQL), the chain service as its own process
//!   follows an outside publisher through a gateway, and relays payments to it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{NodeProcess, run};
use skywire_chain::api::unspent_from_proto;
use skywire_chain::wallet::{SpendRules, build_spend};
use skywire_coin::{DROPLETS_PER_COIN, Decode as _, Encode as _, Output, Transaction, UxOut};
use skywire_identity::{Address, Keypair, derive_keypairs};
use skywire_proto::chain::v1 as pb;
use skywire_proto::chain::v1::chain_api_client::ChainApiClient;
use tonic::transport::Channel;

/// Blocks the test publishes.
const BLOCKS: u64 = 1000;

/// How long the test waits for the followers to catch up.
const SYNC_WAIT: Duration = Duration::from_secs(120);

/// The test's wallet: key 0 owns every coin at first, key 1 receives.
fn wallet() -> Vec<Keypair> {
    derive_keypairs(b"skywire chain end to end", 2).unwrap().1
}

/// A node's chain API.
async fn api(node: &NodeProcess) -> ChainApiClient<Channel> {
    ChainApiClient::connect(format!("http://{}", node.admin))
        .await
        .unwrap()
}

async fn head(api: &mut ChainApiClient<Channel>) -> (u64, Vec<u8>) {
    let status = api.status(pb::StatusRequest {}).await.unwrap().into_inner();
    (status.head_seq, status.head_hash.to_vec())
}

async fn balance(api: &mut ChainApiClient<Channel>, address: &Address) -> (u64, u64) {
    let balance = api
        .get_balance(pb::AddressRequest {
            address: address.to_string(),
        })
        .await
        .unwrap()
        .into_inner();
    (balance.coins, balance.outputs)
}

/// The outputs of `address`, checked, and the head's time.
async fn unspent(api: &mut ChainApiClient<Channel>, address: &Address) -> (Vec<UxOut>, u64) {
    let answer = api
        .get_unspent(pb::AddressRequest {
            address: address.to_string(),
        })
        .await
        .unwrap()
        .into_inner();
    let outputs = answer
        .outputs
        .iter()
        .map(|o| unspent_from_proto(o).unwrap())
        .collect();
    (outputs, answer.head_time)
}

async fn submit(api: &mut ChainApiClient<Channel>, tx: &Transaction) -> Vec<u8> {
    api.submit(pb::SubmitRequest {
        transaction: tx.encode().unwrap().into(),
    })
    .await
    .unwrap()
    .into_inner()
    .txid
    .to_vec()
}

/// Waits until `api`'s head is past `seq`.
async fn wait_past(api: &mut ChainApiClient<Channel>, seq: u64, within: Duration) -> u64 {
    let deadline = Instant::now() + within;
    loop {
        let (head, _) = head(api).await;
        if head > seq {
            return head;
        }
        assert!(
            Instant::now() < deadline,
            "head stuck at {head}, waiting for {seq}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Splits `from` (owned by `key`) into `n` outputs of `key`'s address, each with an equal
/// share of coins (whole coins) and of half the hours.
fn split(key: &Keypair, from: &UxOut, n: u64) -> Transaction {
    let coins = from.body.coins / n / DROPLETS_PER_COIN * DROPLETS_PER_COIN;
    let hours = from.body.hours / 2 / n;
    let mut outputs: Vec<Output> = (0..n)
        .map(|i| Output {
            address: key.address(),
            coins,
            hours: hours - i,
        })
        .collect();
    outputs[0].coins += from.body.coins - coins * n;
    let mut tx = Transaction {
        inputs: vec![from.hash()],
        outputs,
        ..Transaction::default()
    };
    tx.sign(std::slice::from_ref(key)).unwrap();
    tx.update_header().unwrap();
    tx
}

/// `GET path` on the HTTP listener `addr` (HTTP/1.1, one request): the status code
/// and the JSON body.
async fn http_get(addr: &str, path: &str) -> (u16, serde_json::Value) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (code, serde_json::from_str(body).unwrap())
}

/// `skywire node` on the chain `spec`, with `extra` flags.
fn node(dir: &Path, spec: &Path, extra: &[&str]) -> NodeProcess {
    let mut args = vec!["--chain", spec.to_str().unwrap()];
    args.extend(extra);
    let node = NodeProcess::start(dir, &args);
    node.said("chain service started");
    node
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_and_two_followers_replicate_a_thousand_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let keys = wallet();
    let spec = dir.path().join("chain.toml");
    let publisher_key = dir.path().join("publisher.key");
    let genesis = keys[0].address().to_string();
    let out = run(&[
        "chain",
        "new",
        "--out",
        spec.to_str().unwrap(),
        "--publisher-key-out",
        publisher_key.to_str().unwrap(),
        "--genesis-address",
        &genesis,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let publisher = node(
        &dir.path().join("publisher"),
        &spec,
        &[
            "--chain-publisher-key",
            publisher_key.to_str().unwrap(),
            "--block-interval-ms",
            "5",
        ],
    );
    let near = node(
        &dir.path().join("near"),
        &spec,
        &["--connect", &publisher.dial],
    );
    let far_dir = dir.path().join("far");
    let far = node(&far_dir, &spec, &["--connect", &near.dial]);
    let far_http = far.said("HTTP (/metrics, /healthz, /readyz) on ");
    let far_http = far_http
        .split("/readyz) on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    let mut p = api(&publisher).await;
    let mut n = api(&near).await;
    let mut f = api(&far).await;
    let status = p.status(pb::StatusRequest {}).await.unwrap().into_inner();
    let rules = SpendRules {
        burn_factor: status.burn_factor,
        max_droplet_precision: u8::try_from(status.max_droplet_precision).unwrap(),
    };

    // Funding: the genesis output split into 600, one of those into 500 more, so that
    // every later block spends an output of its own (spending one's own change within
    // the same second halves its hours every time).
    let (outputs, _) = unspent(&mut p, &keys[0].address()).await;
    submit(&mut p, &split(&keys[0], &outputs[0], 600)).await;
    let seq = wait_past(&mut p, 0, Duration::from_secs(10)).await;
    let (outputs, _) = unspent(&mut p, &keys[0].address()).await;
    submit(&mut p, &split(&keys[0], &outputs[0], 500)).await;
    let mut seq = wait_past(&mut p, seq, Duration::from_secs(10)).await;

    let to = keys[1].address();
    let mut sent = 0u64;
    let started = Instant::now();
    let (mut outputs, mut head_time) = unspent(&mut p, &keys[0].address()).await;
    while seq < BLOCKS {
        // Every 100th transaction goes to the far follower and is relayed to the
        // publisher through the near one.
        let through_follower = seq % 100 == 50;
        let spend = outputs.remove(0);
        let tx = build_spend(
            &keys,
            vec![spend],
            head_time,
            rules,
            to,
            DROPLETS_PER_COIN,
            keys[0].address(),
        )
        .unwrap();
        if through_follower {
            submit(&mut f, &tx).await;
            seq = wait_past(&mut p, seq, Duration::from_secs(30)).await;
        } else {
            submit(&mut p, &tx).await;
            seq = wait_past(&mut p, seq, Duration::from_secs(10)).await;
        }
        sent += 1;
        // The head's time only grows, and with it the inputs' hours: a spend built
        // at an older head's time burns a little more than it must, and stays valid.
        if outputs.is_empty() {
            (outputs, head_time) = unspent(&mut p, &keys[0].address()).await;
        }
    }
    eprintln!(
        "{seq} blocks ({sent} payments) published in {:.1?}",
        started.elapsed()
    );

    // The followers converge on the publisher's head and balances.
    let target = head(&mut p).await;
    for api in [&mut n, &mut f] {
        let deadline = Instant::now() + SYNC_WAIT;
        while head(api).await != target {
            assert!(Instant::now() < deadline, "follower did not converge");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let expected = balance(&mut p, &to).await;
    assert_eq!(expected.0, sent * DROPLETS_PER_COIN);
    for api in [&mut n, &mut f] {
        assert_eq!(balance(api, &to).await, expected);
        assert_eq!(
            balance(api, &keys[0].address()).await,
            balance(&mut p, &keys[0].address()).await
        );
    }
    // A transaction sent to the far follower is in a block the followers have, by id.
    let block = f
        .get_block(pb::GetBlockRequest {
            by: Some(pb::get_block_request::By::Seq(target.0)),
        })
        .await
        .unwrap()
        .into_inner();
    let block = skywire_coin::SignedBlock::decode_exact(&block.block).unwrap();
    assert_eq!(block.block.hash().0.to_vec(), target.1);
    // The same through the REST API on the node's HTTP listener.
    let (code, status) = http_get(&far_http, "/api/v1/chain/status").await;
    assert_eq!(code, 200);
    assert_eq!(status["head"]["seq"], target.0);
    assert_eq!(status["head"]["hash"], hex::encode(&target.1));
    let (code, rest_balance) =
        http_get(&far_http, &format!("/api/v1/chain/addresses/{to}/balance")).await;
    assert_eq!(code, 200);
    assert_eq!(rest_balance["coins"], expected.0);

    // A new follower syncing the whole chain is killed half way, restarts on its
    // database and catches up.
    let late_dir = dir.path().join("late");
    let late = node(&late_dir, &spec, &["--connect", &publisher.dial]);
    let mut l = api(&late).await;
    wait_past(&mut l, BLOCKS / 3, SYNC_WAIT).await;
    late.signal("-KILL");
    drop(l);
    drop(late);
    let late = node(&late_dir, &spec, &["--connect", &publisher.dial]);
    let mut l = api(&late).await;
    let (restarted_at, _) = head(&mut l).await;
    assert!(restarted_at >= BLOCKS / 3, "restarted at {restarted_at}");
    let deadline = Instant::now() + SYNC_WAIT;
    while head(&mut l).await != target {
        assert!(
            Instant::now() < deadline,
            "the restarted follower did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(balance(&mut l, &to).await, expected);
    drop((publisher, near, far, late));
}

/// The chain service as its own process of a cluster (`skywire-chain`: store in
/// PostgreSQL, reaching peers through a gateway over NATS) follows an outside
/// publisher, and a payment submitted to the cluster's API is relayed to the
/// publisher, lands in a block and reaches the cluster's store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chain_runs_as_its_own_process_of_a_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let keys = wallet();
    let out = run(&[
        "chain",
        "new",
        "--out",
        &path("chain.toml"),
        "--publisher-key-out",
        &path("publisher.key"),
        "--genesis-address",
        &keys[0].address().to_string(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let spec = dir.path().join("chain.toml");
    let publisher = node(
        &dir.path().join("publisher"),
        &spec,
        &[
            "--chain-publisher-key",
            &path("publisher.key"),
            "--block-interval-ms",
            "20",
        ],
    );
    let mut p = api(&publisher).await;
    let (outputs, _) = unspent(&mut p, &keys[0].address()).await;
    submit(&mut p, &split(&keys[0], &outputs[0], 50)).await;
    wait_past(&mut p, 0, Duration::from_secs(10)).await;

    let tag = format!("{:08x}", rand::random::<u32>());
    let cluster = format!("test-{tag}");
    let (db, database_url) = skywire_db::testing::fresh_postgres().await.unwrap();
    let env = [
        ("SKYWIRE_DATABASE_URL", database_url.as_str()),
        ("SKYWIRE_CLUSTER", cluster.as_str()),
    ];
    let cluster_args = |replica: &str| {
        vec![
            "--data-dir".to_owned(),
            path(replica),
            "--replica".to_owned(),
            format!("{replica}-{tag}"),
            "--admin".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--http".to_owned(),
            "127.0.0.1:0".to_owned(),
        ]
    };
    let mut chain_args = cluster_args("chain");
    chain_args.extend(["--chain".to_owned(), path("chain.toml")]);
    let chain_args: Vec<&str> = chain_args.iter().map(String::as_str).collect();
    let chain = common::Process::start_bin(common::CHAIN_BIN, &chain_args, &env);
    let chain_admin = chain.word_after("admin API on ");
    chain.said("chain service started");
    // The gateway connects to the publisher once the chain service listens for peers.
    let mut gateway_args = cluster_args("gw");
    gateway_args.extend([
        "--listen".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--connect".to_owned(),
        publisher.dial.clone(),
    ]);
    let gateway_args: Vec<&str> = gateway_args.iter().map(String::as_str).collect();
    let _gateway = common::Process::start_bin(common::GATEWAY_BIN, &gateway_args, &env);

    let mut c = ChainApiClient::connect(format!("http://{chain_admin}"))
        .await
        .unwrap();
    let target = head(&mut p).await;
    let deadline = Instant::now() + SYNC_WAIT;
    while head(&mut c).await != target {
        assert!(Instant::now() < deadline, "the cluster did not sync");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A payment through the cluster's API reaches the publisher and comes back in a
    // block.
    let status = c.status(pb::StatusRequest {}).await.unwrap().into_inner();
    let rules = SpendRules {
        burn_factor: status.burn_factor,
        max_droplet_precision: u8::try_from(status.max_droplet_precision).unwrap(),
    };
    let (outputs, head_time) = unspent(&mut c, &keys[0].address()).await;
    let tx = build_spend(
        &keys,
        vec![outputs[0]],
        head_time,
        rules,
        keys[1].address(),
        5 * DROPLETS_PER_COIN,
        keys[0].address(),
    )
    .unwrap();
    submit(&mut c, &tx).await;
    let deadline = Instant::now() + SYNC_WAIT;
    while balance(&mut c, &keys[1].address()).await.0 != 5 * DROPLETS_PER_COIN {
        assert!(Instant::now() < deadline, "the payment never landed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        balance(&mut p, &keys[1].address()).await.0,
        5 * DROPLETS_PER_COIN
    );

    let skywire_db::Db::Postgres(pool) = db else {
        panic!("fresh_postgres gives PostgreSQL");
    };
    let (seq, _) = head(&mut c).await;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM chain_blocks")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        u64::try_from(stored).unwrap(),
        seq + 1,
        "every block in PostgreSQL"
    );
}
