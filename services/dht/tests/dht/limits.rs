//! The DHT's limits, each seen from outside over real SWP/1 on loopback: an
//! idle `dht/1` channel is reset, requests served at once are capped,
//! connections the DHT dialed are capped and closed when idle, and Resolve
//! requests from the bus and liveness checks run at most so many at once.
//! Each test fails if its limit is lifted.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prost::Message as _;
use skywire_dht::api::resolve_on_bus;
use skywire_dht::service::REQUEST_TIMEOUT;
use skywire_dht::{DhtConfig, DhtError, Key, TableConfig};
use skywire_identity::Keypair;
use skywire_proto::dht::v1 as pb;
use skywire_record::NodeRecord;
use skywire_wire::driver::OpenChannelError;
use skywire_wire::session::ChannelError;
use skywire_wire::{Channel, Connection, Reason};
use tokio::time::Instant;

use crate::helpers::{Held, RawNode, Reply, Respond, TestNode, empty_answer, next_ip};

// The limits under test, as documented (`skywire_dht::service` and
// `skywire_dht::api`). Written out rather than imported, so that changing
// or lifting a limit fails its test.

/// `IDLE_CHANNEL_TIMEOUT`.
const IDLE_CHANNEL_TIMEOUT: Duration = Duration::from_secs(10);
/// `MAX_SERVING`.
const MAX_SERVING: usize = 64;
/// `MAX_TRANSIENT`.
const MAX_TRANSIENT: usize = 16;
/// `TRANSIENT_IDLE`.
const TRANSIENT_IDLE: Duration = Duration::from_secs(10);
/// `MAX_BUS_RESOLVES`.
const MAX_BUS_RESOLVES: usize = 16;
/// `MAX_CHECKS`.
const MAX_CHECKS: usize = 8;

/// How often the DHT looks for idle transient connections (its private
/// `TRANSIENT_SWEEP`).
const SWEEP: Duration = Duration::from_secs(2);

/// Slack for the node's tasks and the bus after a timer fires.
const MARGIN: Duration = Duration::from_millis(1500);

/// Which requests a raw node holds unanswered (until the asker gives up).
type Hang = fn(&pb::request::Body) -> bool;

/// A [`RawNode`] that answers requests honestly but empty (no nodes, no
/// records), except those `hang` picks, which it holds unanswered and
/// counts in `held`.
fn hanging(hang: Hang, held: Arc<Held>) -> Respond {
    Arc::new(move |body, record| {
        if hang(body) {
            Reply::Hold(held.clone())
        } else {
            Reply::Answer(empty_answer(body, record))
        }
    })
}

/// A Ping, from `sender` if given (which offers it to the table).
fn ping(sender: Option<&NodeRecord>) -> Bytes {
    let request = pb::Request {
        sender: sender.map(NodeRecord::to_proto),
        body: Some(pb::request::Body::Ping(pb::Ping {})),
    };
    Bytes::from(request.encode_to_vec())
}

/// Sends `request` on `channel` and decodes the answer.
async fn ask(channel: &mut Channel, request: Bytes) -> Result<pb::Response, ChannelError> {
    channel.send(request).await?;
    let answer = tokio::time::timeout(Duration::from_secs(5), channel.recv())
        .await
        .expect("an answer or a reset within 5 s")?
        .expect("an answer, not a finish");
    Ok(pb::Response::decode(answer).unwrap())
}

/// Opens a `dht/1` channel on `conn` and sends a Ping: the answer, or why
/// the channel was refused (reset, or rejected if the reset overtook the
/// accept).
async fn ping_on_new_channel(conn: &Connection) -> Result<pb::Response, Reason> {
    let mut channel = match conn.open("dht/1", 6).await {
        Ok(channel) => channel,
        Err(OpenChannelError::Rejected { reason, .. }) => return Err(reason),
        Err(e) => panic!("cannot open: {e}"),
    };
    match ask(&mut channel, ping(None)).await {
        Ok(answer) => Ok(answer),
        Err(ChannelError::Reset { reason, .. }) => Err(reason),
        Err(e) => panic!("channel failed: {e}"),
    }
}

/// Whether `response` is a Pong with `node`'s record.
fn is_pong_of(response: &pb::Response, node: &TestNode) -> bool {
    matches!(
        &response.body,
        Some(pb::response::Body::Pong(pb::Pong { record: Some(r) }))
            if r.node_id == node.key.public_key().to_bytes().as_slice()
    )
}

/// Waits until `done`, checking every 50 ms; panics with `what` after
/// `within`.
async fn wait_until(within: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A `dht/1` channel a client opens and then leaves silent is reset by the
/// answerer with `TIMEOUT` after `IDLE_CHANNEL_TIMEOUT` (10 s): not
/// answered, not closed sooner.
#[tokio::test]
async fn a_silent_channel_is_reset_after_the_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestNode::join(dir.path(), &[]).await;
    let client = RawNode::start(Keypair::generate(), hanging(|_| true, Arc::default())).await;
    let conn = client.connect(&b).await;

    let mut channel = conn.open("dht/1", 6).await.unwrap();
    let opened = Instant::now();
    let ended = tokio::time::timeout(
        IDLE_CHANNEL_TIMEOUT + Duration::from_secs(5),
        channel.recv(),
    )
    .await
    .expect("the silent channel is reset within 15 s");
    let waited = opened.elapsed();
    assert!(
        matches!(
            &ended,
            Err(ChannelError::Reset {
                reason: Reason::Timeout,
                ..
            })
        ),
        "{ended:?}"
    );
    assert!(
        waited >= IDLE_CHANNEL_TIMEOUT - Duration::from_secs(1),
        "reset after only {waited:?}"
    );
    // The connection itself is fine: the next channel is answered.
    let mut channel = conn.open("dht/1", 6).await.unwrap();
    assert!(is_pong_of(
        &ask(&mut channel, ping(None)).await.unwrap(),
        &b
    ));

    client.stop().await;
    b.stop().await;
}

/// With `MAX_SERVING` (64) channels being served (open and silent), the
/// next channel is reset with `RATE_LIMITED` instead of answered, while
/// each of the 64 is still answered; once the client closes them, a new
/// channel is answered again.
#[tokio::test]
async fn channels_beyond_max_serving_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestNode::join(dir.path(), &[]).await;
    let client = RawNode::start(Keypair::generate(), hanging(|_| true, Arc::default())).await;
    let conn = client.connect(&b).await;

    // Opened one after the other: the DHT takes them in order, so all of
    // these hold a serving slot before the next one arrives.
    let mut serving = Vec::new();
    for _ in 0..MAX_SERVING {
        serving.push(conn.open("dht/1", 6).await.unwrap());
    }
    let refused = ping_on_new_channel(&conn).await;
    assert!(matches!(refused, Err(Reason::RateLimited)), "{refused:?}");
    // All 64 were being served: each answers now (well within the idle
    // timeout, and the per-peer budget).
    for (i, channel) in serving.iter_mut().enumerate() {
        let answer = ask(channel, ping(None)).await;
        assert!(
            answer.as_ref().is_ok_and(|a| is_pong_of(a, &b)),
            "channel {i}: {answer:?}"
        );
    }
    for channel in &mut serving {
        channel.finish().unwrap();
    }
    // Their slots are given back as the DHT sees them end.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match ping_on_new_channel(&conn).await {
            Ok(answer) => {
                assert!(is_pong_of(&answer, &b), "{answer:?}");
                break;
            }
            Err(reason) => assert!(Instant::now() < deadline, "still refused: {reason:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    client.stop().await;
    b.stop().await;
}

/// `n` nodes joined through `hub`, 12 at a time.
async fn network(dir: &Path, hub: &TestNode, n: usize) -> Vec<TestNode> {
    let mut nodes = Vec::new();
    while nodes.len() < n {
        let mut starting = tokio::task::JoinSet::new();
        for _ in 0..(n - nodes.len()).min(12) {
            let (key, addr) = (hub.key.public_key(), hub.addr);
            let dir = dir.to_owned();
            starting.spawn(async move {
                let node = TestNode::start_with(
                    Keypair::generate(),
                    next_ip(),
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
    nodes
}

/// A node joining a network of 25 through one of them dials most of them
/// (it knew none). Once those connections are idle past the busy time (the
/// request timeout) the least recently used beyond `MAX_TRANSIENT` (16)
/// are closed, and never more than that stay open; after
/// `TRANSIENT_IDLE` (10 s) unused, all are.
///
/// Seen from the node's gateway: the connections it dialed (the ones the
/// other nodes dialed to it are theirs to close).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dialed_connections_are_capped_then_closed_when_idle() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestNode::join(dir.path(), &[]).await;
    let nodes = network(dir.path(), &hub, 24).await;

    let x = TestNode::join(dir.path(), &[&hub]).await;
    let joined = Instant::now();
    let dialed = x.dialed_connections();
    assert!(
        dialed > MAX_TRANSIENT + 2,
        "the joining node dialed only {dialed} nodes"
    );

    // Nothing uses them after the join: by a sweep after the busy time all
    // beyond the cap are closed (the idle close would come seconds later).
    let capped = joined + REQUEST_TIMEOUT + SWEEP + MARGIN;
    let closed = joined + TRANSIENT_IDLE + SWEEP + MARGIN;
    let mut counts = Vec::new();
    loop {
        let now = Instant::now();
        let open = x.dialed_connections();
        counts.push((now - joined, open));
        if now >= capped {
            assert!(
                open <= MAX_TRANSIENT,
                "{open} dialed connections open past the cap: {counts:?}"
            );
        }
        if open == 0 {
            break;
        }
        assert!(
            now < closed,
            "{open} idle dialed connections still open: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        counts.iter().any(|&(_, open)| open == MAX_TRANSIENT),
        "never held the {MAX_TRANSIENT} most recent: {counts:?}"
    );

    x.stop().await;
    for node in nodes {
        node.stop().await;
    }
    hub.stop().await;
}

/// Resolve requests on the bus are answered `MAX_BUS_RESOLVES` (16) at a
/// time. The node's only contact holds every GetRecord unanswered, so each
/// lookup waits on it for the request timeout: of 40 asked at once, 16
/// reach it; the rest wait their turn and are answered all the same.
#[tokio::test]
async fn bus_resolves_run_at_most_max_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let held = Arc::new(Held::default());
    let slow = RawNode::start(
        Keypair::generate(),
        hanging(
            |body| matches!(body, pb::request::Body::GetRecord(_)),
            held.clone(),
        ),
    )
    .await;
    let node = TestNode::start_with(
        Keypair::generate(),
        next_ip(),
        dir.path().join("node.db"),
        vec![(slow.key.public_key(), slow.handle.local_addr())],
    )
    .await;
    node.joined().await;
    assert_eq!(node.dht.table_len(), 1);

    let asked = MAX_BUS_RESOLVES * 2 + 8;
    let mut resolving = tokio::task::JoinSet::new();
    for _ in 0..asked {
        let bus = node.bus.clone();
        resolving.spawn(async move { resolve_on_bus(&bus, &Keypair::generate().address()).await });
    }
    wait_until(Duration::from_secs(3), "lookups held", || {
        held.now() >= MAX_BUS_RESOLVES
    })
    .await;
    // Time for any more to arrive, well within the request timeout.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(held.peak(), MAX_BUS_RESOLVES);
    while let Some(resolved) = resolving.join_next().await {
        let resolved = resolved.unwrap();
        assert!(
            matches!(resolved, Err(DhtError::NotFound(_))),
            "{resolved:?}"
        );
    }

    node.stop().await;
    slow.stop().await;
}

/// A fresh key in bucket `bucket` of the table of `local`.
fn key_in_bucket(local: &Key, bucket: usize) -> Keypair {
    loop {
        let key = Keypair::generate();
        if local.distance(&Key::of_node(&key.public_key())).bucket() == Some(bucket) {
            return key;
        }
    }
}

/// Liveness checks run `MAX_CHECKS` (8) at once. A node with one contact
/// per bucket has 10 buckets full of mute contacts; a newcomer for each
/// bucket makes it check the bucket's contact: 8 checks reach the mute
/// contacts, the other 2 are skipped (those contacts are kept). The 8
/// checked fail, and their newcomers take their place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn liveness_checks_run_at_most_max_at_once() {
    let full = MAX_CHECKS + 2;
    let dir = tempfile::tempdir().unwrap();
    let key = Keypair::generate();
    let local = Key::of_node(&key.public_key());
    let config = DhtConfig {
        table: TableConfig {
            k: 1,
            ..TableConfig::default()
        },
        ..DhtConfig::default()
    };
    let node =
        TestNode::start_with_config(key, next_ip(), dir.path().join("node.db"), config).await;
    node.joined().await;

    let held = Arc::new(Held::default());
    let mut olds = Vec::new();
    let mut news = Vec::new();
    for bucket in 0..full {
        olds.push(
            RawNode::start(
                key_in_bucket(&local, bucket),
                hanging(|_| true, held.clone()),
            )
            .await,
        );
        news.push(
            RawNode::start(
                key_in_bucket(&local, bucket),
                hanging(|_| true, held.clone()),
            )
            .await,
        );
    }
    // Each old node asks, and so fills its bucket.
    let mut connections = Vec::new();
    for old in &olds {
        let conn = old.connect(&node).await;
        let mut channel = conn.open("dht/1", 6).await.unwrap();
        let answer = ask(&mut channel, ping(Some(&old.record))).await.unwrap();
        assert!(is_pong_of(&answer, &node));
        connections.push(conn);
    }
    assert_eq!(node.dht.table_len(), full);
    // Then each newcomer: every bucket's contact is due a check.
    for new in &news {
        let conn = new.connect(&node).await;
        let mut channel = conn.open("dht/1", 6).await.unwrap();
        let answer = ask(&mut channel, ping(Some(&new.record))).await.unwrap();
        assert!(is_pong_of(&answer, &node));
        connections.push(conn);
    }
    wait_until(Duration::from_secs(3), "checks held", || {
        held.now() >= MAX_CHECKS
    })
    .await;
    // Time for any more to arrive, well within the request timeout.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(held.peak(), MAX_CHECKS);

    // The checks time out: the 8 checked contacts are replaced by their
    // newcomers; the 2 unchecked ones stay.
    let in_table = |nodes: &[RawNode]| {
        let table = node.dht.closest(&local, 1000);
        nodes
            .iter()
            .filter(|n| {
                let key = Key::of_node(&n.key.public_key());
                table.iter().any(|c| *c.key() == key)
            })
            .count()
    };
    wait_until(
        REQUEST_TIMEOUT + MARGIN,
        "checked contacts replaced",
        || in_table(&news) == MAX_CHECKS,
    )
    .await;
    assert_eq!(in_table(&olds), full - MAX_CHECKS);
    assert_eq!(node.dht.table_len(), full);

    drop(connections);
    node.stop().await;
    for raw in olds.into_iter().chain(news) {
        raw.stop().await;
    }
}
