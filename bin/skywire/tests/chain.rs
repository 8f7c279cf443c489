//! The chain end to end: a publisher and two followers, each a real `skywire node`
//! process on loopback, the chain created with `skywire chain new`, the test acting as a
//! wallet through the nodes' gRPC API.
//!
//! - 1000 blocks with transactions; the followers converge on the publisher's head and
//!   balances;
//! - transactions sent to a follower reach the publisher, land in blocks, and the
//!   balances change everywhere;
//! - a follower killed with SIGKILL in the middle of catching up restarts on its
//!   database, consistent, and catches up.
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
