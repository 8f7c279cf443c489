//! The headers-first sync planner driven against in-memory peers that answer from a model
//! chain of real publisher-signed blocks.

mod common;

use std::collections::BTreeMap;

use common::{INTERVAL, Model, key};
use skywire_chain::sync::{
    Misbehaviour, PublisherFault, SignedHeader, SyncConfig, SyncPlanner, TooManyPeers,
};
use skywire_coin::{Hash, Sig, SignedBlock, Transaction};

/// Blocks after genesis in the model chains.
const LEN: u64 = 100;
/// Simulated time per step of the driver loop (ms).
const STEP_MS: u64 = 100;

/// A small configuration, so that windows, per-peer limits and timeouts are all reached
/// while syncing [`LEN`] blocks.
fn config() -> SyncConfig {
    SyncConfig {
        window: 24,
        blocks_per_request: 4,
        max_in_flight_per_peer: 2,
        request_timeout_ms: 1_000,
        max_headers_per_request: 30,
        max_peers: 8,
        stall_limit: 3,
    }
}

/// The genesis block and [`LEN`] blocks after it.
fn chain() -> Model {
    let mut model = Model::new(1);
    model.extend_transfers(LEN as usize, INTERVAL);
    model
}

/// The header and hash of `model`'s block `seq`.
fn header(model: &Model, seq: u64) -> SignedHeader {
    SignedHeader::from(&model.blocks[seq as usize])
}

/// A planner whose applied head is `model`'s genesis.
fn planner(model: &Model, config: SyncConfig) -> SyncPlanner<u8> {
    let genesis = &model.blocks[0];
    SyncPlanner::new(
        config,
        model.publisher.public_key(),
        Some((0, genesis.block.hash())),
    )
}

/// How a fake peer answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    /// Answers every request from the chain.
    Honest,
    /// Never answers.
    Silent,
    /// Claims a tip far beyond the chain; answers from the chain what it can (nothing
    /// beyond it).
    Liar,
}

/// What a run of the driver loop saw.
#[derive(Debug, Default)]
struct Run {
    /// The blocks handed out by `ready`, in order.
    applied: Vec<SignedBlock>,
    /// Peers returned by `poll`.
    penalised: Vec<u8>,
    /// Every block request made: (peer, from, count, applied head when made).
    block_requests: Vec<(u8, u64, u32, u64)>,
    /// Every header request made: (peer, from, count).
    header_requests: Vec<(u8, u64, u32)>,
}

/// Drives `sync` against `peers`, which serve `model`'s chain, answering every request
/// at once, until block [`LEN`] is applied and no peer claims more, or `max_steps` pass. Panics on any
/// misbehaviour reported of these well-behaved (if slow) peers.
fn drive(
    sync: &mut SyncPlanner<u8>,
    model: &Model,
    peers: &BTreeMap<u8, Peer>,
    max_steps: u64,
) -> Run {
    let mut run = Run::default();
    for (&id, &peer) in peers {
        sync.add_peer(id).expect("room for the peer");
        let tip = if peer == Peer::Liar { 1_000_000 } else { LEN };
        sync.on_tip(id, tip, Hash([id; 32]));
    }
    let blocks = &model.blocks;
    let serve = |from: u64, count: u32| {
        let end = (from + u64::from(count)).min(blocks.len() as u64);
        blocks[from.min(end) as usize..end as usize].to_vec()
    };
    let mut applied = 0;
    for step in 1..=max_steps {
        let now = step * STEP_MS;
        if let Some((id, from, count)) = sync.next_header_request(now) {
            run.header_requests.push((id, from, count));
            if peers[&id] != Peer::Silent {
                let headers = serve(from, count).iter().map(SignedHeader::from).collect();
                sync.on_headers(id, headers, now).expect("good headers");
            }
        }
        for (id, from, count) in sync.next_block_requests(now) {
            run.block_requests.push((id, from, count, applied));
            if peers[&id] != Peer::Silent {
                sync.on_blocks(id, from, serve(from, count), now)
                    .expect("good blocks");
            }
        }
        for block in sync.ready() {
            let seq = block.block.header.bk_seq;
            assert_eq!(seq, applied + 1, "handed out in order");
            assert_eq!(block, blocks[seq as usize], "the chain's block");
            sync.on_applied(seq, block.block.hash());
            applied = seq;
            run.applied.push(block);
        }
        run.penalised.extend(sync.poll(now));
        // Done when nobody claims more: a liar's claim keeps the loop asking it.
        if applied == LEN && sync.status().best_claimed <= Some(LEN) {
            break;
        }
    }
    run
}

/// Asserts that `run` applied the whole chain and kept every request within the window.
fn assert_complete(run: &Run, model: &Model, config: &SyncConfig) {
    assert_eq!(run.applied, model.blocks[1..], "every block, in order");
    for &(id, from, count, applied) in &run.block_requests {
        assert!(count >= 1 && count <= config.blocks_per_request);
        assert!(
            from > applied && from + u64::from(count) - 1 <= applied + config.window,
            "request {from}+{count} to {id} beyond the window after {applied}"
        );
    }
}

/// How many block requests went to each peer.
fn requests_per_peer(run: &Run) -> BTreeMap<u8, usize> {
    let mut per_peer = BTreeMap::new();
    for &(id, ..) in &run.block_requests {
        *per_peer.entry(id).or_default() += 1;
    }
    per_peer
}

#[test]
fn syncs_a_hundred_blocks_from_three_peers() {
    let model = chain();
    let mut sync = planner(&model, config());
    let peers = BTreeMap::from([(1, Peer::Honest), (2, Peer::Honest), (3, Peer::Honest)]);
    let run = drive(&mut sync, &model, &peers, 1_000);

    assert_complete(&run, &model, &config());
    assert!(run.penalised.is_empty());
    // Spread: every peer served a fair share of the 25 four-block ranges.
    let per_peer = requests_per_peer(&run);
    assert_eq!(per_peer.len(), 3, "{per_peer:?}");
    assert!(per_peer.values().all(|&n| n >= 5), "{per_peer:?}");
    // Headers were fetched in requests of at most 30, consecutively.
    let mut next = 1;
    for &(_, from, count) in &run.header_requests {
        assert_eq!(from, next);
        assert!(count <= 30);
        next = from + u64::from(count);
    }
    assert_eq!(next, LEN + 1);

    let status = sync.status();
    assert_eq!(status.applied, Some(LEN));
    assert_eq!(status.best_header, Some(LEN));
    assert_eq!(status.best_claimed, Some(LEN));
    assert_eq!(status.in_flight, 0);
    assert_eq!(status.ready_buffered, 0);
    assert_eq!(status.publisher_fault, None);
    assert!(sync.next_header_request(1_000_000).is_none());
    assert!(sync.next_block_requests(1_000_000).is_empty());
}

#[test]
fn in_flight_and_buffered_blocks_stay_within_the_window() {
    let model = chain();
    let config = config();
    let mut sync = planner(&model, config);
    for id in 1..=3 {
        sync.add_peer(id).expect("room");
        sync.on_tip(id, LEN, Hash::default());
    }
    while sync
        .next_header_request(0)
        .is_some_and(|(id, from, count)| {
            let headers = model.blocks[from as usize..(from + u64::from(count)) as usize]
                .iter()
                .map(SignedHeader::from)
                .collect();
            sync.on_headers(id, headers, 0).is_ok()
        })
    {}
    assert_eq!(sync.status().best_header, Some(LEN));

    // Nothing applied: the first call asks for 6 ranges (3 peers × 2), the window holds 6.
    let requests = sync.next_block_requests(0);
    assert_eq!(requests.len(), 6, "{requests:?}");
    assert_eq!(sync.status().in_flight, 24);
    let last = requests
        .iter()
        .map(|&(_, from, count)| from + u64::from(count) - 1)
        .max();
    assert_eq!(last, Some(config.window));
    // Answer all but the first range: nothing is ready, and nothing more is asked.
    for &(id, from, count) in &requests[1..] {
        let blocks = model.blocks[from as usize..(from + u64::from(count)) as usize].to_vec();
        sync.on_blocks(id, from, blocks, 0).expect("good blocks");
    }
    assert_eq!(sync.status().ready_buffered, 20);
    assert!(sync.ready().is_empty());
    assert!(sync.next_block_requests(0).is_empty(), "window full");
    let (id, from, count) = requests[0];
    sync.on_blocks(id, from, model.blocks[1..=4].to_vec(), 0)
        .expect("good blocks");
    assert_eq!(count, 4);
    let ready = sync.ready();
    assert_eq!(ready, model.blocks[1..=24]);
    // Handed out but not applied: still counts against the window.
    assert!(sync.next_block_requests(0).is_empty());
    sync.on_applied(24, model.blocks[24].block.hash());
    let more = sync.next_block_requests(0);
    assert_eq!(more.first().map(|r| r.1), Some(25));
    assert!(
        more.iter()
            .all(|&(_, from, count)| from + u64::from(count) - 1 <= 24 + config.window)
    );
}

#[test]
fn a_silent_peer_times_out_and_is_penalised() {
    let model = chain();
    let mut sync = planner(&model, config());
    let peers = BTreeMap::from([(1, Peer::Honest), (2, Peer::Silent), (3, Peer::Honest)]);
    let run = drive(&mut sync, &model, &peers, 2_000);

    assert_complete(&run, &model, &config());
    assert_eq!(run.penalised, vec![2]);
    let per_peer = requests_per_peer(&run);
    assert!(per_peer.get(&2).is_some_and(|&n| n >= 2), "{per_peer:?}");
    assert_eq!(sync.status().peers, 2);
    // Dropped: an answer it sends late is unsolicited.
    let late = run
        .block_requests
        .iter()
        .find(|r| r.0 == 2)
        .expect("peer 2 was asked");
    assert_eq!(
        sync.on_blocks(2, late.1, Vec::new(), 0),
        Err(Misbehaviour::Unsolicited { from: late.1 })
    );
}

#[test]
fn a_peer_claiming_a_far_tip_it_cannot_serve_is_dropped() {
    let model = chain();
    let mut sync = planner(&model, config());
    let peers = BTreeMap::from([(1, Peer::Honest), (2, Peer::Honest), (3, Peer::Liar)]);
    let run = drive(&mut sync, &model, &peers, 2_000);

    assert_complete(&run, &model, &config());
    assert_eq!(run.penalised, vec![3]);
    // It was asked for headers beyond the chain, and answered none, three times.
    let beyond: Vec<_> = run.header_requests.iter().filter(|r| r.1 > LEN).collect();
    assert_eq!(beyond.len(), 3, "{beyond:?}");
    assert!(beyond.iter().all(|r| r.0 == 3));
    let status = sync.status();
    assert_eq!(status.best_claimed, Some(LEN));
    assert_eq!(status.best_header, Some(LEN));
}

/// A planner holding `model`'s headers 1..=`n`, with peers 1 and 2 claiming [`LEN`].
fn with_headers(model: &Model, config: SyncConfig, n: u64) -> SyncPlanner<u8> {
    let mut sync = planner(model, config);
    for id in [1, 2] {
        sync.add_peer(id).expect("room");
        sync.on_tip(id, LEN, Hash::default());
    }
    let (id, from, count) = sync.next_header_request(0).expect("a header request");
    assert_eq!((from, u64::from(count)), (1, n.min(30)));
    let headers = (1..=n.min(30)).map(|seq| header(model, seq)).collect();
    assert_eq!(sync.on_headers(id, headers, 0), Ok(n.min(30) as usize));
    sync
}

#[test]
fn a_block_that_does_not_match_its_header_is_wrong() {
    let model = chain();
    let mut sync = with_headers(&model, config(), 30);
    let requests = sync.next_block_requests(0);
    let (id, from, _) = requests[0];
    assert_eq!(from, 1);

    // Another block of the chain in its place.
    let shifted = model.blocks[2..=5].to_vec();
    assert_eq!(
        sync.on_blocks(id, from, shifted, 0),
        Err(Misbehaviour::WrongBlock { seq: 1 })
    );
    // The right header with another body.
    let (id, from, _) = sync
        .next_block_requests(0)
        .into_iter()
        .find(|r| r.1 == 1)
        .expect("asked again");
    let mut tampered = model.blocks[1..=4].to_vec();
    tampered[2]
        .block
        .body
        .transactions
        .push(Transaction::default());
    assert_eq!(
        sync.on_blocks(id, from, tampered, 0),
        Err(Misbehaviour::WrongBlock { seq: 3 })
    );
    // Another header signed by someone else.
    let (id, from, _) = sync
        .next_block_requests(0)
        .into_iter()
        .find(|r| r.1 == 1)
        .expect("asked again");
    let mut forged = model.blocks[1..=4].to_vec();
    forged[0].block.header.fee = 7;
    forged[0] = forged[0].block.clone().sign_block(&key(9));
    let err = sync.on_blocks(id, from, forged, 0).expect_err("forged");
    assert_eq!(err, Misbehaviour::WrongBlock { seq: 1 });
    assert!(err.is_peer_fault());
    // A block asked of another peer, or never asked.
    let other = if id == 1 { 2 } else { 1 };
    let (_, from, _) = sync
        .next_block_requests(0)
        .into_iter()
        .find(|r| r.1 == 1)
        .expect("asked again");
    assert_eq!(
        sync.on_blocks(other, from, model.blocks[1..=4].to_vec(), 0),
        Err(Misbehaviour::Unsolicited { from: 1 })
    );
    assert_eq!(
        sync.on_blocks(id, 2, model.blocks[2..=5].to_vec(), 0),
        Err(Misbehaviour::Unsolicited { from: 2 })
    );
    // Too many.
    assert_eq!(
        sync.on_blocks(id, 1, model.blocks[1..=5].to_vec(), 0),
        Err(Misbehaviour::TooMany { got: 5, max: 4 })
    );
    assert!(sync.ready().is_empty(), "nothing accepted");
    // The honest answer still goes through.
    let (id, from, _) = sync
        .next_block_requests(0)
        .into_iter()
        .find(|r| r.1 == 1)
        .expect("asked again");
    sync.on_blocks(id, from, model.blocks[1..=4].to_vec(), 0)
        .expect("good blocks");
    assert_eq!(sync.ready(), model.blocks[1..=4]);
}

/// Re-signs `header` with the publisher after a change.
fn resign(model: &Model, mut header: SignedHeader) -> SignedHeader {
    header.sig = Sig::sign(&model.publisher, &header.hash());
    header
}

#[test]
fn bad_headers_are_misbehaviour() {
    let model = chain();
    let mut sync = planner(&model, config());
    for id in [1, 2] {
        sync.add_peer(id).expect("room");
        sync.on_tip(id, LEN, Hash::default());
    }
    let good = |range: std::ops::RangeInclusive<u64>| -> Vec<SignedHeader> {
        range.map(|seq| header(&model, seq)).collect()
    };
    let ask = |sync: &mut SyncPlanner<u8>, headers: Vec<SignedHeader>| {
        let (id, from, count) = sync.next_header_request(0).expect("a header request");
        assert_eq!((id, from, count), (1, 1, 30));
        let result = sync.on_headers(id, headers, 0);
        assert_eq!(sync.status().best_header, Some(0), "nothing accepted");
        result
    };

    // Not signed by the publisher.
    let mut bad_sig = good(1..=3);
    bad_sig[1].sig = Sig::sign(&key(9), &bad_sig[1].hash());
    assert_eq!(
        ask(&mut sync, bad_sig),
        Err(Misbehaviour::BadSignature { seq: 2 })
    );
    // A broken link, even though the publisher signed it.
    let mut broken = good(1..=3);
    broken[2].header.prev_hash = Hash([7; 32]);
    broken[2] = resign(&model, broken[2]);
    assert_eq!(
        ask(&mut sync, broken),
        Err(Misbehaviour::BrokenLink {
            seq: 3,
            expected: model.blocks[2].block.hash(),
            got: Hash([7; 32]),
        })
    );
    // Not linked to our head.
    assert!(matches!(
        ask(&mut sync, good(2..=3)),
        Err(Misbehaviour::WrongSeq {
            expected: 1,
            got: 2
        })
    ));
    // A gap.
    let mut gap = good(1..=2);
    gap.push(header(&model, 4));
    assert_eq!(
        ask(&mut sync, gap),
        Err(Misbehaviour::WrongSeq {
            expected: 3,
            got: 4
        })
    );
    // Time not after the previous header's.
    let mut stuck = good(1..=2);
    stuck[1].header.time = stuck[0].header.time;
    stuck[1] = resign(&model, stuck[1]);
    assert!(matches!(
        ask(&mut sync, stuck),
        Err(Misbehaviour::TimeNotIncreasing { seq: 2, .. })
    ));
    // More than asked.
    assert_eq!(
        ask(&mut sync, good(1..=31)),
        Err(Misbehaviour::TooMany { got: 31, max: 30 })
    );
    // Unsolicited: from a peer not asked, and a second answer to one request.
    let (id, _, _) = sync.next_header_request(0).expect("a header request");
    assert_eq!(
        sync.on_headers(2, good(1..=3), 0),
        Err(Misbehaviour::Unsolicited { from: 1 })
    );
    assert_eq!(sync.on_headers(id, good(1..=3), 0), Ok(3));
    assert_eq!(
        sync.on_headers(id, good(4..=6), 0),
        Err(Misbehaviour::Unsolicited { from: 4 })
    );
    assert_eq!(sync.status().best_header, Some(3));
    // The next request continues after the accepted headers.
    assert_eq!(sync.next_header_request(0), Some((1, 4, 30)));
}

#[test]
fn equivocation_is_the_publishers_fault() {
    // Two chains signed by the same publisher, equal up to block 5.
    let mut ours = Model::new(1);
    ours.extend_transfers(5, INTERVAL);
    let mut theirs = ours.clone();
    ours.extend_transfers(10, INTERVAL);
    theirs.extend_transfers(10, INTERVAL + 1);
    assert_ne!(ours.blocks[6].block.hash(), theirs.blocks[6].block.hash());

    let config = SyncConfig {
        blocks_per_request: 8,
        ..config()
    };
    let mut sync = planner(&ours, config);
    sync.add_peer(1).expect("room");
    sync.on_tip(1, 15, Hash::default());
    let (id, from, count) = sync.next_header_request(0).expect("a header request");
    assert_eq!((from, count), (1, 15));
    let headers = ours.blocks[1..=15].iter().map(SignedHeader::from).collect();
    assert_eq!(sync.on_headers(id, headers, 0), Ok(15));

    let requests = sync.next_block_requests(0);
    assert_eq!(requests[0], (1, 1, 8));
    let err = sync
        .on_blocks(1, 1, theirs.blocks[1..=8].to_vec(), 0)
        .expect_err("equivocation");
    assert_eq!(
        err,
        Misbehaviour::Equivocation {
            seq: 6,
            ours: ours.blocks[6].block.hash(),
            theirs: theirs.blocks[6].block.hash(),
        }
    );
    assert!(!err.is_peer_fault());
    assert_eq!(
        sync.status().publisher_fault,
        Some(PublisherFault::Equivocation { seq: 6 })
    );
    // Sync goes on along the headers it holds.
    let (id, from, count) = sync
        .next_block_requests(0)
        .into_iter()
        .find(|r| r.1 == 1)
        .expect("asked again");
    sync.on_blocks(id, from, ours.blocks[1..=count as usize].to_vec(), 0)
        .expect("good blocks");
    assert_eq!(sync.ready(), ours.blocks[1..=8]);
}

#[test]
fn an_invalid_block_from_the_publisher_halts_sync() {
    let model = chain();
    let mut sync = with_headers(&model, config(), 30);
    let requests = sync.next_block_requests(0);
    for (id, from, count) in requests {
        let blocks = model.blocks[from as usize..(from + u64::from(count)) as usize].to_vec();
        sync.on_blocks(id, from, blocks, 0).expect("good blocks");
    }
    let ready = sync.ready();
    assert_eq!(ready.len(), 16);
    sync.on_applied(1, ready[0].block.hash());
    let fault = sync.on_apply_failed(2);
    assert_eq!(
        fault,
        PublisherFault::InvalidBlock {
            seq: 2,
            hash: model.blocks[2].block.hash(),
        }
    );
    assert_eq!(sync.status().publisher_fault, Some(fault));
    assert_eq!(sync.status().applied, Some(1));
    assert!(sync.next_block_requests(0).is_empty());
    assert!(sync.next_header_request(0).is_none());
    assert!(sync.ready().is_empty());
}

#[test]
fn blocks_given_back_after_a_store_failure_are_handed_out_again_or_fetched_again() {
    let model = chain();
    let mut sync = with_headers(&model, config(), 30);
    for (id, from, count) in sync.next_block_requests(0) {
        let blocks = model.blocks[from as usize..(from + u64::from(count)) as usize].to_vec();
        sync.on_blocks(id, from, blocks, 0).expect("good blocks");
    }
    let ready = sync.ready();
    assert_eq!(ready.len(), 16);
    sync.on_applied(1, ready[0].block.hash());
    // Block 2 failed for the store's reason: 2.. are given back and handed out again.
    sync.give_back(ready[1..].to_vec());
    let again = sync.ready();
    assert_eq!(again, ready[1..]);
    // Given back without block 2: nothing is handed out until it is fetched again.
    sync.give_back(again[1..].to_vec());
    assert!(sync.ready().is_empty());
    let requests = sync.next_block_requests(0);
    assert!(
        requests.iter().any(|(_, from, _)| *from == 2),
        "block 2 asked again: {requests:?}"
    );
    // Blocks at or below the applied head are not taken back.
    sync.give_back(vec![ready[0].clone()]);
    assert!(sync.ready().is_empty());
}

#[test]
fn peers_are_bounded() {
    let model = chain();
    let mut sync = planner(
        &model,
        SyncConfig {
            max_peers: 2,
            ..config()
        },
    );
    assert_eq!(sync.add_peer(1), Ok(()));
    assert_eq!(sync.add_peer(2), Ok(()));
    assert_eq!(sync.add_peer(2), Ok(()), "already tracked");
    assert_eq!(sync.add_peer(3), Err(TooManyPeers { max: 2 }));
    sync.remove_peer(1);
    assert_eq!(sync.add_peer(3), Ok(()));
    assert_eq!(sync.status().peers, 2);
}
