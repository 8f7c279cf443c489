//! A malicious node speaking `dht/1` by hand (a plain SWP/1 node with its
//! own `dht/1` service and client), against honest nodes: bad records in
//! answers, floods of bogus contacts, request floods, puts of records that
//! are not the sender's. None of it may reach a routing table or stop
//! honest lookups.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;
use prost::Message as _;
use skywire_dht::Key;
use skywire_identity::Keypair;
use skywire_proto::dht::v1 as pb;
use skywire_record::{NodeRecord, now_ms};
use skywire_wire::Channel;

use crate::helpers::{RawNode, Reply, Respond, TestNode, empty_answer, next_ip};

/// A record of a fresh key at an address where nothing listens.
fn bogus_record(i: u32) -> pb::NodeRecord {
    let [_, _, hi, lo] = i.to_be_bytes();
    let endpoint = SocketAddr::from((Ipv4Addr::new(127, 200 + (hi % 50), lo, 9), 9));
    NodeRecord::sign(&Keypair::generate(), vec![endpoint], vec![], 1, now_ms())
        .unwrap()
        .to_proto()
}

/// How the attacker answers each `dht/1` request (after Ping, which it
/// answers honestly so that it gets into tables), given how many it
/// answered before.
type Answer = Arc<dyn Fn(u32) -> pb::Response + Send + Sync>;

/// A malicious node answering as `answer` says, and the count of requests
/// it answered with `answer` (all but Ping).
async fn attacker(answer: Answer) -> (RawNode, Arc<AtomicU32>) {
    let answered = Arc::new(AtomicU32::new(0));
    let counter = answered.clone();
    let respond: Respond = Arc::new(move |body, record| {
        Reply::Answer(match body {
            pb::request::Body::Ping(_) => empty_answer(body, record),
            _ => answer(counter.fetch_add(1, Ordering::Relaxed)),
        })
    });
    (RawNode::start(Keypair::generate(), respond).await, answered)
}

fn nodes(list: Vec<pb::NodeRecord>) -> pb::Response {
    pb::Response {
        body: Some(pb::response::Body::Nodes(pb::Nodes { nodes: list })),
    }
}

/// Sends one request on `channel` and decodes the answer.
async fn ask(channel: &mut Channel, request: pb::Request) -> pb::Response {
    channel
        .send(Bytes::from(request.encode_to_vec()))
        .await
        .unwrap();
    let answer = channel.recv().await.unwrap().unwrap();
    pb::Response::decode(answer).unwrap()
}

fn error_code(response: &pb::Response) -> Option<pb::error::Code> {
    match &response.body {
        Some(pb::response::Body::Error(e)) => Some(e.code()),
        _ => None,
    }
}

/// An attacker in a victim's bootstrap list answers every lookup request
/// with something bad, in turn: a record forged for an honest node's id,
/// 21 records, an expired record, an unsigned one, a list of 5000 bogus
/// records, and 20 validly signed records of nodes that do not exist (fresh
/// ones each time, thousands over the test). The victim's table holds no
/// bogus node, and it still resolves the honest node.
#[tokio::test]
async fn bad_answers_poison_no_table() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestNode::join(dir.path(), &[]).await;
    let c = TestNode::join(dir.path(), &[&b]).await;
    let c_record = c.dht.record().to_proto();
    let answer: Answer = Arc::new(move |n| match n % 6 {
        0 => {
            // C's id, signed by someone else.
            let mut forged = NodeRecord::sign(
                &Keypair::generate(),
                vec![SocketAddr::from(([127, 250, 0, 1], 1))],
                vec![],
                c_record.seq + 1,
                now_ms(),
            )
            .unwrap()
            .to_proto();
            forged.node_id = c_record.node_id.clone();
            nodes(vec![forged])
        }
        1 => nodes((0..21).map(|i| bogus_record(n * 100 + i)).collect()),
        2 => {
            let key = Keypair::generate();
            let old = now_ms() - skywire_record::RECORD_TTL_MS - 1;
            nodes(vec![
                NodeRecord::sign(
                    &key,
                    vec![SocketAddr::from(([127, 251, 0, 1], 1))],
                    vec![],
                    1,
                    old,
                )
                .unwrap()
                .to_proto(),
            ])
        }
        3 => {
            let mut unsigned = bogus_record(n);
            unsigned.signature = Bytes::new();
            nodes(vec![unsigned])
        }
        4 => {
            let one = bogus_record(n);
            nodes(vec![one; 5000])
        }
        _ => nodes((0..20).map(|i| bogus_record(n * 100 + i)).collect()),
    });
    let (m, answered) = attacker(answer).await;
    let victim = TestNode::start_with(
        Keypair::generate(),
        next_ip(),
        dir.path().join("victim.db"),
        vec![
            (m.key.public_key(), m.handle.local_addr()),
            (b.key.public_key(), b.addr),
        ],
    )
    .await;
    victim.joined().await;
    // Lookups of addresses nobody has ask every node in the table, the
    // attacker too, as long as it stays there.
    for _ in 0..6 {
        let nobody = Keypair::generate().address();
        assert!(victim.dht.resolve(&nobody).await.is_err());
    }
    let answered = answered.load(Ordering::Relaxed);
    assert!(answered >= 2, "the attacker was asked {answered} times");
    // Each bad answer counts as a failure: the attacker is dropped.
    assert!(
        victim
            .dht
            .closest(&Key::of_node(&m.key.public_key()), 1000)
            .iter()
            .all(|c| *c.key() != Key::of_node(&m.key.public_key())),
        "the attacker is still in the table"
    );
    let record = victim.dht.resolve(&c.key.address()).await.unwrap();
    assert_eq!(record.endpoints(), &[c.addr]);
    // Only real, reachable nodes; never a bogus one.
    let honest = [
        Key::of_node(&b.key.public_key()),
        Key::of_node(&c.key.public_key()),
        Key::of_node(&m.key.public_key()),
    ];
    let table = victim.dht.closest(&Key::of_node(&c.key.public_key()), 1000);
    assert!(!table.is_empty());
    for contact in &table {
        assert!(honest.contains(contact.key()), "bogus contact {contact:?}");
    }
    // And the forged record never replaced C's real one anywhere.
    let record = b.dht.resolve(&c.key.address()).await.unwrap();
    assert_eq!(record.endpoints(), &[c.addr]);

    victim.stop().await;
    m.stop().await;
    c.stop().await;
    b.stop().await;
}

/// A peer flooding FIND requests gets `RATE_LIMITED` after the per-peer
/// budget, and the node keeps answering others.
#[tokio::test]
async fn a_find_flood_is_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestNode::join(dir.path(), &[]).await;
    let (m, _) = attacker(Arc::new(|_| nodes(Vec::new()))).await;
    let conn = m.connect(&b).await;
    let mut channel = conn.open("dht/1", 6).await.unwrap();
    let find = pb::Request {
        sender: None,
        body: Some(pb::request::Body::FindNode(pb::FindNode {
            target: Bytes::from(vec![7u8; 20]),
        })),
    };
    let limit = usize::try_from(skywire_dht::service::REQUESTS_PER_PEER).unwrap();
    for i in 0..limit {
        let answer = ask(&mut channel, find.clone()).await;
        assert!(
            error_code(&answer).is_none(),
            "request {i} refused: {answer:?}"
        );
    }
    let answer = ask(&mut channel, find.clone()).await;
    assert_eq!(error_code(&answer), Some(pb::error::Code::RateLimited));
    // The channel is closed after the refusal.
    assert!(matches!(channel.recv().await, Ok(None) | Err(_)));

    // Honest nodes are served meanwhile.
    let c = TestNode::join(dir.path(), &[&b]).await;
    let a = TestNode::join(dir.path(), &[&b]).await;
    assert_eq!(
        a.dht.resolve(&c.key.address()).await.unwrap().endpoints(),
        &[c.addr]
    );

    for node in [a, b, c] {
        node.stop().await;
    }
    m.stop().await;
}

/// Requests with bad records are refused with `BAD_REQUEST`: a put of
/// another node's record, an unsigned or expired sender record, a bad key;
/// a replayed older record of the sender's own is refused once a newer one
/// is held.
#[tokio::test]
async fn bad_requests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestNode::join(dir.path(), &[]).await;
    let c = TestNode::join(dir.path(), &[&b]).await;
    let (m, _) = attacker(Arc::new(|_| nodes(Vec::new()))).await;
    let conn = m.connect(&b).await;
    let put = |sender: pb::NodeRecord| pb::Request {
        sender: Some(sender),
        body: Some(pb::request::Body::PutRecord(pb::PutRecord {})),
    };
    let mut channel = conn.open("dht/1", 6).await.unwrap();

    // C's genuine record, put by M.
    let answer = ask(&mut channel, put(c.dht.record().to_proto())).await;
    assert_eq!(error_code(&answer), Some(pb::error::Code::BadRequest));
    // Unsigned and expired sender records.
    let mut unsigned = m.record.to_proto();
    unsigned.signature = Bytes::new();
    let mut channel = conn.open("dht/1", 6).await.unwrap();
    assert_eq!(
        error_code(&ask(&mut channel, put(unsigned)).await),
        Some(pb::error::Code::BadRequest)
    );
    let old = now_ms() - skywire_record::RECORD_TTL_MS - 1;
    let expired = NodeRecord::sign(&m.key, vec![m.handle.local_addr()], vec![], 9, old)
        .unwrap()
        .to_proto();
    let mut channel = conn.open("dht/1", 6).await.unwrap();
    assert_eq!(
        error_code(&ask(&mut channel, put(expired)).await),
        Some(pb::error::Code::BadRequest)
    );
    // A 19-byte key.
    let mut channel = conn.open("dht/1", 6).await.unwrap();
    let short = pb::Request {
        sender: None,
        body: Some(pb::request::Body::GetRecord(pb::GetRecord {
            key: Bytes::from(vec![1u8; 19]),
        })),
    };
    assert_eq!(
        error_code(&ask(&mut channel, short).await),
        Some(pb::error::Code::BadRequest)
    );
    // M's own records: seq 5 stored, then seq 4 replayed.
    let sign = |seq| {
        NodeRecord::sign(&m.key, vec![m.handle.local_addr()], vec![], seq, now_ms())
            .unwrap()
            .to_proto()
    };
    let mut channel = conn.open("dht/1", 6).await.unwrap();
    assert!(matches!(
        ask(&mut channel, put(sign(5))).await.body,
        Some(pb::response::Body::Stored(_))
    ));
    let mut channel = conn.open("dht/1", 6).await.unwrap();
    assert_eq!(
        error_code(&ask(&mut channel, put(sign(4))).await),
        Some(pb::error::Code::BadRequest)
    );
    // B still holds seq 5 for M.
    let record = b.dht.resolve(&m.key.address()).await.unwrap();
    assert_eq!(record.seq(), 5);

    m.stop().await;
    for node in [b, c] {
        node.stop().await;
    }
}

/// A node that dialed the victim and advertises an endpoint on another IP
/// is asked over its own connection when a lookup meets it, and is not
/// admitted: nothing proved it listens where its record says.
#[tokio::test]
async fn a_node_that_dialed_in_is_not_admitted_at_an_endpoint_it_never_proved() {
    let dir = tempfile::tempdir().unwrap();
    let (m, m_answered) = attacker(Arc::new(|_| nodes(Vec::new()))).await;
    let elsewhere = SocketAddr::from(([127, 252, 0, 1], 9));
    let m_record = NodeRecord::sign(&m.key, vec![elsewhere], vec![], 2, now_ms())
        .unwrap()
        .to_proto();
    // The guide answers every lookup request with M's record.
    let (guide, _) = attacker(Arc::new(move |_| nodes(vec![m_record.clone()]))).await;
    let victim = TestNode::start_with(
        Keypair::generate(),
        next_ip(),
        dir.path().join("victim.db"),
        vec![(guide.key.public_key(), guide.handle.local_addr())],
    )
    .await;
    victim.joined().await;
    // M dials the victim and keeps the connection; lookups then meet M
    // through the guide and ask it over that connection.
    let _held = m.connect(&victim).await;
    let before = m_answered.load(Ordering::Relaxed);
    for _ in 0..3 {
        let nobody = Keypair::generate().address();
        assert!(victim.dht.resolve(&nobody).await.is_err());
    }
    assert!(
        m_answered.load(Ordering::Relaxed) > before,
        "the lookups never asked M"
    );
    let m_key = Key::of_node(&m.key.public_key());
    assert!(
        victim
            .dht
            .closest(&m_key, 1000)
            .iter()
            .all(|c| *c.key() != m_key),
        "M was admitted at an endpoint it never proved"
    );

    victim.stop().await;
    guide.stop().await;
    m.stop().await;
}
