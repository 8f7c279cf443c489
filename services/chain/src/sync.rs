//! Headers-first sync, sans-IO: what to ask of which peer, what to make of the answers,
//! and which blocks are ready to apply. No sockets, no tasks, no clock: the driver passes
//! the time in (milliseconds, any monotonic origin), sends the requests this planner
//! returns, feeds it the answers, applies the blocks it hands out through
//! [`crate::chain::Chain::apply`], and reports back with [`SyncPlanner::on_applied`] or
//! [`SyncPlanner::on_apply_failed`].
//!
//! # Why headers first, and what a header proves
//!
//! One configured publisher key signs every block (Skycoin's model). A header signed by
//! the publisher is therefore authentic whoever relays it, and since a block's hash is the
//! hash of its header, a block whose header hashes to a known signed header (and whose
//! body hashes to the header's `body_hash`) is *the* block for that sequence number. So:
//!
//! 1. headers are fetched from one peer at a time (the one claiming the highest tip),
//!    each checked for the publisher's signature, consecutive sequence numbers, the link
//!    to the previous header and strictly increasing time;
//! 2. blocks whose headers are known are fetched in ranges from many peers in parallel,
//!    at most [`SyncConfig::window`] ahead of the applied head, each checked against its
//!    header as it arrives, so a peer cannot slip in a different block;
//! 3. blocks are handed out in order ([`SyncPlanner::ready`]).
//!
//! # Whose fault
//!
//! A peer that sends what we did not ask, or what does not match a signed header, is at
//! fault ([`Misbehaviour`], [`Misbehaviour::is_peer_fault`]). Two things are the
//! *publisher's* fault and are reported apart, because punishing the relaying peer for
//! them would be wrong:
//!
//! - [`Misbehaviour::Equivocation`]: a publisher-signed block (or header) for a sequence
//!   number whose publisher-signed header we already hold, with a different hash;
//! - [`PublisherFault::InvalidBlock`]: a block that matches its publisher-signed header
//!   failed verification ([`SyncPlanner::on_apply_failed`]). Sync stops there: no later
//!   block can be applied.
//!
//! # Bounds
//!
//! Peers ≤ [`SyncConfig::max_peers`]; block requests ≤ [`SyncConfig::max_in_flight_per_peer`]
//! per peer; buffered blocks ≤ [`SyncConfig::window`] (only blocks within the window are
//! requested, and only requested blocks are kept); headers held ≤ best header − applied
//! head + 1, which [`MAX_HEADERS_AHEAD`] caps.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use skywire_coin::{BlockHeader, Hash, Sig, SigError, SignedBlock};
use skywire_identity::PublicKey;

/// Default [`SyncConfig::window`]: 1024 blocks of at most a few hundred kilobytes each
/// keeps the buffer within a few hundred megabytes in the worst case, and far less with
/// Skycoin's small blocks.
pub const DEFAULT_WINDOW: u64 = 1024;
/// Default [`SyncConfig::blocks_per_request`].
pub const DEFAULT_BLOCKS_PER_REQUEST: u32 = 16;
/// Default [`SyncConfig::max_in_flight_per_peer`].
pub const DEFAULT_MAX_IN_FLIGHT_PER_PEER: usize = 4;
/// Default [`SyncConfig::request_timeout_ms`]: ten seconds, generous for 16 blocks.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 10_000;
/// Default [`SyncConfig::max_headers_per_request`]: 2000 headers of 189 bytes (124-byte
/// header and 65-byte signature) make a ~380 KB answer.
pub const DEFAULT_MAX_HEADERS_PER_REQUEST: u32 = 2000;
/// Default [`SyncConfig::max_peers`].
pub const DEFAULT_MAX_PEERS: usize = 64;
/// Default [`SyncConfig::stall_limit`].
pub const DEFAULT_STALL_LIMIT: u32 = 3;
/// How far the best known header may run ahead of the applied head. Headers beyond it are
/// not requested (and so never accepted): it bounds the headers held to about 100 000 ×
/// (189 + 32) bytes ≈ 22 MB. Headers are requested again as blocks are applied.
pub const MAX_HEADERS_AHEAD: u64 = 100_000;

/// A block's header and the publisher's signature over its hash: what a header request
/// returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedHeader {
    /// The header.
    pub header: BlockHeader,
    /// The publisher's signature over [`BlockHeader::hash`].
    pub sig: Sig,
}

impl SignedHeader {
    /// Checks that `publisher` signed this header's hash.
    ///
    /// # Errors
    ///
    /// The [`SigError`] found; [`SigError::PublicKeyMismatch`] if another key signed.
    pub fn verify(&self, publisher: &PublicKey) -> Result<(), SigError> {
        self.sig.verify_public_key(publisher, &self.header.hash())
    }

    /// The header's (and so the block's) hash.
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }
}

impl From<&SignedBlock> for SignedHeader {
    /// The header of a signed block, with the block's signature (which signs the same
    /// hash).
    fn from(block: &SignedBlock) -> Self {
        Self {
            header: block.block.header,
            sig: block.sig,
        }
    }
}

/// The planner's limits; [`Default`] gives the `DEFAULT_*` constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncConfig {
    /// How many blocks after the applied head may be requested (and so buffered).
    pub window: u64,
    /// Blocks per block request.
    pub blocks_per_request: u32,
    /// Block requests one peer may have outstanding.
    pub max_in_flight_per_peer: usize,
    /// Age (ms) at which a request counts as timed out and is given to another peer.
    pub request_timeout_ms: u64,
    /// Headers per header request.
    pub max_headers_per_request: u32,
    /// Peers tracked at once.
    pub max_peers: usize,
    /// Stalls (timeouts, or an empty answer to a header request the peer's claimed tip
    /// should cover) after which a peer is dropped and returned by
    /// [`SyncPlanner::poll`] for penalising. Counted over the peer's whole life, not
    /// reset by good answers: a peer that serves some blocks but lies about its tip must
    /// still go.
    pub stall_limit: u32,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            window: DEFAULT_WINDOW,
            blocks_per_request: DEFAULT_BLOCKS_PER_REQUEST,
            max_in_flight_per_peer: DEFAULT_MAX_IN_FLIGHT_PER_PEER,
            request_timeout_ms: DEFAULT_REQUEST_TIMEOUT_MS,
            max_headers_per_request: DEFAULT_MAX_HEADERS_PER_REQUEST,
            max_peers: DEFAULT_MAX_PEERS,
            stall_limit: DEFAULT_STALL_LIMIT,
        }
    }
}

/// What a peer's answer did wrong, or (for [`Misbehaviour::Equivocation`]) what it proved
/// the publisher did wrong. The request it answered is settled either way: what it
/// covered is asked again, of whichever peer fits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Misbehaviour {
    /// An answer to no request of ours to this peer (never asked, already answered, or
    /// timed out and given to another peer), or from a peer we do not track.
    #[error("unsolicited answer starting at block {from}")]
    Unsolicited {
        /// The first sequence number of the answer (the request's, for blocks).
        from: u64,
    },
    /// More headers or blocks than asked for.
    #[error("{got} items in an answer to a request for {max}")]
    TooMany {
        /// Items received.
        got: usize,
        /// Items asked for.
        max: u32,
    },
    /// A header the publisher did not sign.
    #[error("header {seq} is not signed by the publisher")]
    BadSignature {
        /// The header's position (its expected sequence number).
        seq: u64,
    },
    /// A header whose sequence number is not the next one.
    #[error("header with sequence number {got} where {expected} was expected")]
    WrongSeq {
        /// The sequence number expected.
        expected: u64,
        /// The one received.
        got: u64,
    },
    /// A header whose `prev_hash` is not the hash of the header before it (ours or the
    /// answer's).
    #[error("header {seq} links to {got}, not to the previous header {expected}")]
    BrokenLink {
        /// The header's sequence number.
        seq: u64,
        /// The hash of the previous header.
        expected: Hash,
        /// The header's `prev_hash`.
        got: Hash,
    },
    /// A header whose time is not after the previous header's.
    #[error("header {seq} has time {time}, not after the previous header's {prev}")]
    TimeNotIncreasing {
        /// The header's sequence number.
        seq: u64,
        /// Its time.
        time: u64,
        /// The previous header's time.
        prev: u64,
    },
    /// A block that is not the one our signed header for its position describes (another
    /// header, or a body that does not hash to the header's `body_hash`), and not a
    /// publisher-signed alternative either: the peer lied.
    #[error("block {seq} does not match its signed header")]
    WrongBlock {
        /// The block's position (its expected sequence number).
        seq: u64,
    },
    /// The publisher signed two different blocks for `seq`: `ours` (whose header we hold)
    /// and `theirs` (just received). This is the **publisher's** fault, not the relaying
    /// peer's; the driver should alert the operator, not ban the peer.
    #[error("the publisher signed two blocks for {seq}: {ours} and {theirs}")]
    Equivocation {
        /// The sequence number.
        seq: u64,
        /// The hash of the header we hold.
        ours: Hash,
        /// The hash of the other publisher-signed header.
        theirs: Hash,
    },
}

impl Misbehaviour {
    /// Whether the peer that sent the answer is to blame (everything but
    /// [`Misbehaviour::Equivocation`], which is the publisher's doing).
    pub fn is_peer_fault(&self) -> bool {
        !matches!(self, Self::Equivocation { .. })
    }
}

/// [`SyncPlanner::add_peer`] refused a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("already tracking the maximum of {max} peers")]
pub struct TooManyPeers {
    /// [`SyncConfig::max_peers`].
    pub max: usize,
}

/// Wrongdoing of the publisher seen during sync (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublisherFault {
    /// The publisher signed two different blocks for `seq`; sync continues along the
    /// headers it fetched first.
    Equivocation {
        /// The sequence number.
        seq: u64,
    },
    /// Block `seq`, matching its publisher-signed header, failed verification: sync
    /// stops before it.
    InvalidBlock {
        /// The sequence number.
        seq: u64,
        /// The block's hash.
        hash: Hash,
    },
}

/// Progress, for `skywire chain status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncStatus {
    /// Sequence number of the applied head (`None` before genesis).
    pub applied: Option<u64>,
    /// Sequence number of the best signed header known (at least the applied head).
    pub best_header: Option<u64>,
    /// Highest tip any tracked peer claims (unverified).
    pub best_claimed: Option<u64>,
    /// Blocks requested and not yet answered.
    pub in_flight: u64,
    /// Blocks received and not yet handed out by [`SyncPlanner::ready`].
    pub ready_buffered: usize,
    /// Peers tracked.
    pub peers: usize,
    /// The last publisher fault seen, if any.
    pub publisher_fault: Option<PublisherFault>,
}

/// A request to a peer: for headers or blocks, from `from` on, `count` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Request<P> {
    peer: P,
    from: u64,
    count: u32,
    sent_at: u64,
}

impl<P> Request<P> {
    /// One past the last sequence number asked for.
    fn end(&self) -> u64 {
        self.from + u64::from(self.count)
    }
}

/// What we know of a peer.
#[derive(Debug, Clone, Copy, Default)]
struct PeerState {
    /// The tip it claims, unverified.
    tip: Option<(u64, Hash)>,
    /// Stalls so far (see [`SyncConfig::stall_limit`]).
    stalls: u32,
}

/// A header we hold, with its hash computed once.
#[derive(Debug, Clone, Copy)]
struct Known {
    header: SignedHeader,
    hash: Hash,
}

/// The headers-first sync planner.
///
/// Generic over the peer id `P`, anything small and ordered (a node's public key, a
/// connection number): the planner never looks inside it. Ordered maps keep its choices
/// deterministic for tests. (Not named `Sync`, which would shadow the standard marker
/// trait wherever it is imported.)
#[derive(Debug)]
pub struct SyncPlanner<P> {
    config: SyncConfig,
    publisher: PublicKey,
    /// The applied head.
    applied: Option<(u64, Hash)>,
    /// Signed headers from the applied head (when we learnt its header) to the best
    /// header, consecutive.
    headers: BTreeMap<u64, Known>,
    /// The next sequence number [`SyncPlanner::ready`] hands out.
    next_out: u64,
    /// Blocks received, checked against their headers, not yet handed out.
    received: BTreeMap<u64, SignedBlock>,
    peers: BTreeMap<P, PeerState>,
    /// The one header request in flight.
    header_request: Option<Request<P>>,
    /// Block requests in flight, by first sequence number; their ranges are disjoint.
    block_requests: BTreeMap<u64, Request<P>>,
    /// Peers dropped for stalling, to be returned by the next [`SyncPlanner::poll`].
    dropped: Vec<P>,
    /// Where the round-robin over peers resumes.
    cursor: Option<P>,
    fault: Option<PublisherFault>,
    /// Set by [`SyncPlanner::on_apply_failed`]: nothing more is requested or handed out.
    halted: bool,
}

/// The sequence number after `head` (0 before genesis).
fn after(head: Option<(u64, Hash)>) -> u64 {
    head.map_or(0, |(seq, _)| seq.saturating_add(1))
}

impl<P: Copy + Ord + Debug> SyncPlanner<P> {
    /// A planner for the chain signed by `publisher`, whose applied head is `head`
    /// (sequence number and hash; `None` before genesis, when sync starts at block 0).
    pub fn new(config: SyncConfig, publisher: PublicKey, head: Option<(u64, Hash)>) -> Self {
        Self {
            config,
            publisher,
            applied: head,
            headers: BTreeMap::new(),
            next_out: after(head),
            received: BTreeMap::new(),
            peers: BTreeMap::new(),
            header_request: None,
            block_requests: BTreeMap::new(),
            dropped: Vec::new(),
            cursor: None,
            fault: None,
            halted: false,
        }
    }

    /// The planner's limits.
    pub fn config(&self) -> &SyncConfig {
        &self.config
    }

    // Peers.

    /// Starts tracking `peer` (a no-op if it already is).
    ///
    /// # Errors
    ///
    /// [`TooManyPeers`] when [`SyncConfig::max_peers`] are tracked.
    pub fn add_peer(&mut self, peer: P) -> Result<(), TooManyPeers> {
        if self.peers.contains_key(&peer) {
            return Ok(());
        }
        if self.peers.len() >= self.config.max_peers {
            return Err(TooManyPeers {
                max: self.config.max_peers,
            });
        }
        self.peers.insert(peer, PeerState::default());
        Ok(())
    }

    /// Stops tracking `peer`; what it was asked is asked of others.
    pub fn remove_peer(&mut self, peer: P) {
        self.peers.remove(&peer);
        if self.header_request.is_some_and(|r| r.peer == peer) {
            self.header_request = None;
        }
        self.block_requests.retain(|_, r| r.peer != peer);
        if self.cursor == Some(peer) {
            self.cursor = None;
        }
    }

    /// Records the tip `peer` claims (unverified; it only decides whom to ask). Ignored
    /// for a peer not tracked.
    pub fn on_tip(&mut self, peer: P, seq: u64, hash: Hash) {
        if let Some(state) = self.peers.get_mut(&peer) {
            state.tip = Some((seq, hash));
        }
    }

    // Headers.

    /// The best signed header known, or the applied head: (sequence number, hash, time
    /// if the header is known).
    fn best(&self) -> Option<(u64, Hash, Option<u64>)> {
        match self.headers.last_key_value() {
            Some((&seq, known)) => Some((seq, known.hash, Some(known.header.header.time))),
            None => self.applied.map(|(seq, hash)| (seq, hash, None)),
        }
    }

    /// The next header request to send, `(peer, from_seq, count)`, if one is due: none is
    /// in flight, a peer claims a tip above our best header, and the best header is less
    /// than [`MAX_HEADERS_AHEAD`] ahead of the applied head. Asks the peer with the fewest
    /// stalls, then the highest tip.
    pub fn next_header_request(&mut self, now: u64) -> Option<(P, u64, u32)> {
        if self.halted || self.header_request.is_some() {
            return None;
        }
        let from = after(self.best().map(|(seq, hash, _)| (seq, hash)));
        let limit = after(self.applied).saturating_add(MAX_HEADERS_AHEAD);
        if from >= limit {
            return None;
        }
        let (peer, tip) = self
            .peers
            .iter()
            .filter_map(|(peer, state)| state.tip.map(|(tip, _)| (*peer, state.stalls, tip)))
            .filter(|&(_, _, tip)| tip >= from)
            .min_by_key(|&(_, stalls, tip)| (stalls, std::cmp::Reverse(tip)))
            .map(|(peer, _, tip)| (peer, tip))?;
        let wanted = tip.min(limit - 1) - from + 1;
        let count = u32::try_from(wanted)
            .unwrap_or(u32::MAX)
            .min(self.config.max_headers_per_request);
        if count == 0 {
            return None;
        }
        self.header_request = Some(Request {
            peer,
            from,
            count,
            sent_at: now,
        });
        Some((peer, from, count))
    }

    /// Takes `peer`'s answer to our header request. Returns how many headers were
    /// accepted; all or none are. An empty answer counts as a stall of the peer (its
    /// claimed tip said it had them).
    ///
    /// # Errors
    ///
    /// The first [`Misbehaviour`] found; the request is settled either way.
    pub fn on_headers(
        &mut self,
        peer: P,
        headers: Vec<SignedHeader>,
        _now: u64,
    ) -> Result<usize, Misbehaviour> {
        let Some(request) = self.header_request.filter(|r| r.peer == peer) else {
            let from = headers.first().map_or(0, |h| h.header.bk_seq);
            return Err(Misbehaviour::Unsolicited { from });
        };
        self.header_request = None;
        if headers.len() > request.count as usize {
            return Err(Misbehaviour::TooMany {
                got: headers.len(),
                max: request.count,
            });
        }
        if headers.is_empty() {
            self.stall(peer);
            return Ok(0);
        }
        let mut prev = self.best();
        let mut accepted = Vec::with_capacity(headers.len());
        for (seq, header) in (request.from..).zip(headers) {
            if header.header.bk_seq != seq {
                return Err(Misbehaviour::WrongSeq {
                    expected: seq,
                    got: header.header.bk_seq,
                });
            }
            if header.verify(&self.publisher).is_err() {
                return Err(Misbehaviour::BadSignature { seq });
            }
            let expected = prev.map_or(Hash::default(), |(_, hash, _)| hash);
            if header.header.prev_hash != expected {
                return Err(Misbehaviour::BrokenLink {
                    seq,
                    expected,
                    got: header.header.prev_hash,
                });
            }
            if let Some((_, _, Some(prev_time))) = prev
                && header.header.time <= prev_time
            {
                return Err(Misbehaviour::TimeNotIncreasing {
                    seq,
                    time: header.header.time,
                    prev: prev_time,
                });
            }
            let hash = header.hash();
            prev = Some((seq, hash, Some(header.header.time)));
            accepted.push((seq, Known { header, hash }));
        }
        let n = accepted.len();
        self.headers.extend(accepted);
        Ok(n)
    }

    // Blocks.

    /// Whether `seq` is covered by a block request in flight.
    fn in_flight(&self, seq: u64) -> bool {
        self.block_requests
            .range(..=seq)
            .next_back()
            .is_some_and(|(_, r)| r.end() > seq)
    }

    /// Block requests in flight to `peer`.
    fn load(&self, peer: P) -> usize {
        self.block_requests
            .values()
            .filter(|r| r.peer == peer)
            .count()
    }

    /// The peer to ask for blocks up to `last`: one whose claimed tip covers it, with room
    /// for another request, the least loaded (then fewest stalls), ties broken
    /// round-robin from the last peer chosen.
    fn pick(&self, last: u64) -> Option<P> {
        let (after_cursor, up_to_cursor): (Vec<_>, Vec<_>) = self
            .peers
            .iter()
            .filter(|(_, s)| s.tip.is_some_and(|(tip, _)| tip >= last))
            .map(|(p, s)| (*p, s.stalls))
            .partition(|(p, _)| self.cursor.is_none_or(|c| *p > c));
        after_cursor
            .into_iter()
            .chain(up_to_cursor)
            .map(|(p, stalls)| (p, self.load(p), stalls))
            .filter(|&(_, load, _)| load < self.config.max_in_flight_per_peer)
            .min_by_key(|&(_, load, stalls)| (load, stalls))
            .map(|(p, _, _)| p)
    }

    /// The block requests to send now, `(peer, from_seq, count)`: ranges of blocks whose
    /// headers are known, within [`SyncConfig::window`] after the applied head, neither
    /// received nor in flight, each given to a peer whose claimed tip covers it (see
    /// `pick`), at most [`SyncConfig::max_in_flight_per_peer`] per peer.
    pub fn next_block_requests(&mut self, now: u64) -> Vec<(P, u64, u32)> {
        let mut out = Vec::new();
        let Some((best, _, _)) = self.best() else {
            return out;
        };
        if self.halted || self.config.window == 0 || self.config.blocks_per_request == 0 {
            return out;
        }
        let last = best.min(
            after(self.applied)
                .saturating_add(self.config.window)
                .saturating_sub(1),
        );
        let mut seq = self.next_out;
        while seq <= last {
            if self.received.contains_key(&seq) || self.in_flight(seq) {
                seq += 1;
                continue;
            }
            let from = seq;
            let mut count = 0u32;
            while seq <= last
                && count < self.config.blocks_per_request
                && !self.received.contains_key(&seq)
                && !self.in_flight(seq)
            {
                seq += 1;
                count += 1;
            }
            let Some(peer) = self.pick(from + u64::from(count) - 1) else {
                continue;
            };
            self.cursor = Some(peer);
            self.block_requests.insert(
                from,
                Request {
                    peer,
                    from,
                    count,
                    sent_at: now,
                },
            );
            out.push((peer, from, count));
        }
        out
    }

    /// Takes `peer`'s answer to our request for blocks from `from_seq` on. Blocks are
    /// checked against our signed headers (header hash and body hash) and kept; their
    /// signature is replaced by the header's, which signs the same hash. All or none are
    /// kept; blocks asked for and not sent are asked again.
    ///
    /// # Errors
    ///
    /// The first [`Misbehaviour`] found: [`Misbehaviour::Unsolicited`] unless that exact
    /// request was made of `peer`, [`Misbehaviour::TooMany`],
    /// [`Misbehaviour::WrongBlock`], or [`Misbehaviour::Equivocation`] for a
    /// publisher-signed block that differs from our header (the publisher's fault,
    /// recorded in [`SyncStatus::publisher_fault`]).
    pub fn on_blocks(
        &mut self,
        peer: P,
        from_seq: u64,
        blocks: Vec<SignedBlock>,
        _now: u64,
    ) -> Result<(), Misbehaviour> {
        let Some(request) = self
            .block_requests
            .get(&from_seq)
            .copied()
            .filter(|r| r.peer == peer)
        else {
            return Err(Misbehaviour::Unsolicited { from: from_seq });
        };
        self.block_requests.remove(&from_seq);
        if blocks.len() > request.count as usize {
            return Err(Misbehaviour::TooMany {
                got: blocks.len(),
                max: request.count,
            });
        }
        let mut accepted = Vec::with_capacity(blocks.len());
        for (seq, mut block) in (from_seq..).zip(blocks) {
            // Applied meanwhile (through another path): nothing to check it against.
            let Some(known) = self.headers.get(&seq) else {
                continue;
            };
            let hash = block.block.header.hash();
            if hash != known.hash {
                if block.block.header.bk_seq == seq
                    && block.verify_signature(&self.publisher).is_ok()
                {
                    self.fault = Some(PublisherFault::Equivocation { seq });
                    return Err(Misbehaviour::Equivocation {
                        seq,
                        ours: known.hash,
                        theirs: hash,
                    });
                }
                return Err(Misbehaviour::WrongBlock { seq });
            }
            if block.block.body.hash() != known.header.header.body_hash {
                return Err(Misbehaviour::WrongBlock { seq });
            }
            block.sig = known.header.sig;
            accepted.push((seq, block));
        }
        let next_out = self.next_out;
        self.received
            .extend(accepted.into_iter().filter(|(seq, _)| *seq >= next_out));
        Ok(())
    }

    /// Hands out the received blocks that follow the applied head (and those handed out
    /// before), in order, each once. Apply them in this order and report each with
    /// [`SyncPlanner::on_applied`] or [`SyncPlanner::on_apply_failed`].
    pub fn ready(&mut self) -> Vec<SignedBlock> {
        let mut out = Vec::new();
        if self.halted {
            return out;
        }
        while let Some(block) = self.received.remove(&self.next_out) {
            out.push(block);
            self.next_out += 1;
        }
        out
    }

    /// The block `seq` with hash `hash` was applied: it becomes the head. Headers and
    /// blocks at or below it are forgotten (the head's header is kept to check the next
    /// header's time). If `hash` is not the header we hold for `seq`, the chain was
    /// extended some other way: every header and block above is forgotten and fetched
    /// anew.
    pub fn on_applied(&mut self, seq: u64, hash: Hash) {
        let next = seq.saturating_add(1);
        if self.headers.get(&seq).is_some_and(|k| k.hash != hash) {
            self.headers.clear();
            self.received.clear();
            self.block_requests.clear();
            self.header_request = None;
            self.next_out = next;
        }
        self.applied = Some((seq, hash));
        self.headers = self.headers.split_off(&seq);
        self.received = self.received.split_off(&next);
        self.block_requests.retain(|_, r| r.end() > next);
        self.next_out = self.next_out.max(next);
    }

    /// Takes back `blocks`, handed out by [`SyncPlanner::ready`] and not applied for a
    /// reason that is not theirs (the store failed, or the head moved): the next
    /// [`SyncPlanner::ready`] hands them out again from the block after the applied head.
    /// Blocks handed out and not given back are fetched again.
    pub fn give_back(&mut self, blocks: Vec<SignedBlock>) {
        let first = after(self.applied);
        for block in blocks {
            let seq = block.block.header.bk_seq;
            if (first..self.next_out).contains(&seq) {
                self.received.insert(seq, block);
            }
        }
        self.next_out = first;
    }

    /// Block `seq`, handed out by [`SyncPlanner::ready`], failed verification. It matches
    /// a publisher-signed header, so the publisher signed an invalid block: recorded as
    /// [`PublisherFault::InvalidBlock`], and sync stops (nothing more is requested or
    /// handed out). Returns the fault.
    pub fn on_apply_failed(&mut self, seq: u64) -> PublisherFault {
        let hash = self.headers.get(&seq).map_or(Hash::default(), |k| k.hash);
        let fault = PublisherFault::InvalidBlock { seq, hash };
        self.fault = Some(fault);
        self.halted = true;
        self.header_request = None;
        self.block_requests.clear();
        self.received.clear();
        fault
    }

    // Timeouts.

    /// Counts a stall of `peer`, dropping it at [`SyncConfig::stall_limit`].
    fn stall(&mut self, peer: P) {
        let Some(state) = self.peers.get_mut(&peer) else {
            return;
        };
        state.stalls += 1;
        if state.stalls >= self.config.stall_limit {
            self.remove_peer(peer);
            self.dropped.push(peer);
        }
    }

    /// Expires requests older than [`SyncConfig::request_timeout_ms`] at `now` (what they
    /// covered is asked of others) and counts a stall for each peer concerned. Returns the
    /// peers dropped for reaching [`SyncConfig::stall_limit`] since the last call, to
    /// penalise.
    pub fn poll(&mut self, now: u64) -> Vec<P> {
        let timeout = self.config.request_timeout_ms;
        let expired = |r: &Request<P>| now.saturating_sub(r.sent_at) >= timeout;
        let mut stalled = Vec::new();
        if let Some(r) = self.header_request.filter(|r| expired(r)) {
            self.header_request = None;
            stalled.push(r.peer);
        }
        let late: BTreeSet<u64> = self
            .block_requests
            .iter()
            .filter(|(_, r)| expired(r))
            .map(|(from, _)| *from)
            .collect();
        for from in late {
            if let Some(r) = self.block_requests.remove(&from) {
                stalled.push(r.peer);
            }
        }
        for peer in stalled {
            self.stall(peer);
        }
        std::mem::take(&mut self.dropped)
    }

    // Progress.

    /// Where sync stands.
    pub fn status(&self) -> SyncStatus {
        SyncStatus {
            applied: self.applied.map(|(seq, _)| seq),
            best_header: self.best().map(|(seq, _, _)| seq),
            best_claimed: self
                .peers
                .values()
                .filter_map(|s| s.tip.map(|(seq, _)| seq))
                .max(),
            in_flight: self
                .block_requests
                .values()
                .map(|r| u64::from(r.count))
                .sum(),
            ready_buffered: self.received.len(),
            peers: self.peers.len(),
            publisher_fault: self.fault,
        }
    }
}
