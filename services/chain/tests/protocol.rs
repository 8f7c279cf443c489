//! The `chain/1` and `txrelay/1` messages: round trips of real blocks, headers and
//! transactions from the model chain, every limit at its boundary and one past it,
//! elements of the wrong size or with trailing bytes, error answers, and garbage that
//! must be refused without a panic.

mod common;

use std::sync::OnceLock;

use bytes::Bytes;
use common::{INTERVAL, Model};
use proptest::prelude::*;
use prost::Message as _;
use skywire_chain::protocol::{
    ChainRequest, ChainResponse, Code, MAX_ANNOUNCE, MAX_BLOCK_BYTES, MAX_BLOCKS_PER_REQUEST,
    MAX_ERROR_MESSAGE_CHARS, MAX_GET_TRANSACTIONS, MAX_HEADERS_PER_REQUEST, MAX_MESSAGE_BYTES,
    MAX_TRANSACTION_BYTES, ProtocolError, RelayRequest, RelayResponse, Tip, check_asked,
    decode_chain_request, decode_chain_response, decode_relay_request, decode_relay_response,
    encode_chain_error, encode_relay_error,
};
use skywire_chain::sync::SignedHeader;
use skywire_coin::{DecodeError, Encode, Hash, SignedBlock, Transaction};
use skywire_proto::chain::v1 as pb;

/// Blocks after genesis in the shared model chain: enough for a full `GetBlocks` answer
/// and one more.
const LEN: usize = MAX_BLOCKS_PER_REQUEST as usize + 1;

/// The model chain's blocks, genesis first (built once: signing takes a while).
fn blocks() -> &'static [SignedBlock] {
    static BLOCKS: OnceLock<Vec<SignedBlock>> = OnceLock::new();
    BLOCKS.get_or_init(|| {
        let mut model = Model::new(2);
        model.extend_transfers(LEN, INTERVAL);
        model.blocks
    })
}

/// The model chain's transactions (one per block after genesis), all distinct.
fn transactions() -> Vec<Transaction> {
    blocks()[1..]
        .iter()
        .flat_map(|b| b.block.body.transactions.iter().cloned())
        .collect()
}

fn headers(n: usize) -> Vec<SignedHeader> {
    blocks()
        .iter()
        .cycle()
        .take(n)
        .map(SignedHeader::from)
        .collect()
}

/// `n` distinct ids.
fn ids(n: usize) -> Vec<Hash> {
    (0..n)
        .map(|i| {
            let mut id = [0; 32];
            id[..8].copy_from_slice(&(i as u64).to_le_bytes());
            Hash(id)
        })
        .collect()
}

fn raw_ids(n: usize) -> Vec<Bytes> {
    ids(n)
        .iter()
        .map(|id| Bytes::copy_from_slice(id.as_bytes()))
        .collect()
}

fn raw_chain_request(body: pb::chain_request::Body) -> Vec<u8> {
    pb::ChainRequest { body: Some(body) }.encode_to_vec()
}

fn raw_chain_response(body: pb::chain_response::Body) -> Vec<u8> {
    pb::ChainResponse { body: Some(body) }.encode_to_vec()
}

fn raw_relay_request(body: pb::relay_request::Body) -> Vec<u8> {
    pb::RelayRequest { body: Some(body) }.encode_to_vec()
}

fn raw_relay_response(body: pb::relay_response::Body) -> Vec<u8> {
    pb::RelayResponse { body: Some(body) }.encode_to_vec()
}

fn raw_header(h: &SignedHeader) -> pb::SignedHeader {
    pb::SignedHeader {
        header: Bytes::from(h.header.encode().expect("encodes")),
        sig: Bytes::copy_from_slice(&h.sig.0),
    }
}

fn raw_headers(headers: &[SignedHeader]) -> Vec<u8> {
    raw_chain_response(pb::chain_response::Body::Headers(pb::Headers {
        headers: headers.iter().map(raw_header).collect(),
    }))
}

fn raw_blocks(blocks: Vec<Bytes>) -> Vec<u8> {
    raw_chain_response(pb::chain_response::Body::Blocks(pb::Blocks { blocks }))
}

fn raw_transactions(transactions: Vec<Bytes>) -> Vec<u8> {
    raw_relay_response(pb::relay_response::Body::Transactions(pb::Transactions {
        transactions,
    }))
}

fn encoded<T: Encode>(value: &T) -> Bytes {
    Bytes::from(value.encode().expect("encodes"))
}

fn assert_count(err: ProtocolError, field: &str, count: usize, max: usize) {
    match err {
        ProtocolError::Count {
            field: f,
            count: c,
            max: m,
            ..
        } => {
            assert_eq!((f, c, m), (field, count, max));
        }
        other => panic!("want a count error, got {other:?}"),
    }
}

fn assert_invalid(err: ProtocolError, field: &str) {
    assert!(err.is_violation());
    match err {
        ProtocolError::Invalid { field: f, .. } => assert_eq!(f, field),
        other => panic!("want an invalid {field}, got {other:?}"),
    }
}

fn assert_trailing(err: ProtocolError, field: &str) {
    assert!(err.is_violation());
    match err {
        ProtocolError::Element {
            field: f,
            index: 0,
            source: DecodeError::RemainingBytes { remaining: 1 },
        } => assert_eq!(f, field),
        other => panic!("want trailing bytes in {field}, got {other:?}"),
    }
}

// Round trips.

#[test]
fn chain_requests_round_trip() {
    let requests = [
        ChainRequest::GetTip,
        ChainRequest::GetHeaders {
            from_seq: 7,
            count: 1,
        },
        ChainRequest::GetHeaders {
            from_seq: u64::MAX,
            count: MAX_HEADERS_PER_REQUEST,
        },
        ChainRequest::GetBlocks {
            from_seq: 0,
            count: 1,
        },
        ChainRequest::GetBlocks {
            from_seq: 3,
            count: MAX_BLOCKS_PER_REQUEST,
        },
        ChainRequest::AnnounceTip(Tip {
            seq: 42,
            hash: blocks()[1].block.hash(),
        }),
    ];
    for request in requests {
        let bytes = request.encode().expect("encodes");
        assert_eq!(decode_chain_request(&bytes).expect("decodes"), request);
    }
}

#[test]
fn chain_responses_round_trip() {
    let head = blocks().last().expect("blocks");
    let cases = [
        (ChainRequest::GetTip, ChainResponse::Tip(None)),
        (
            ChainRequest::GetTip,
            ChainResponse::Tip(Some(Tip {
                seq: head.block.header.bk_seq,
                hash: head.block.hash(),
            })),
        ),
        (
            ChainRequest::GetHeaders {
                from_seq: 0,
                count: 10,
            },
            ChainResponse::Headers(Vec::new()),
        ),
        (
            ChainRequest::GetHeaders {
                from_seq: 0,
                count: MAX_HEADERS_PER_REQUEST,
            },
            ChainResponse::Headers(headers(MAX_HEADERS_PER_REQUEST as usize)),
        ),
        (
            ChainRequest::GetBlocks {
                from_seq: 0,
                count: MAX_BLOCKS_PER_REQUEST,
            },
            ChainResponse::Blocks(blocks()[..MAX_BLOCKS_PER_REQUEST as usize].to_vec()),
        ),
        (
            ChainRequest::AnnounceTip(Tip {
                seq: 1,
                hash: Hash([1; 32]),
            }),
            ChainResponse::Ack,
        ),
    ];
    for (request, response) in cases {
        let bytes = response.encode().expect("encodes");
        assert!(bytes.len() <= MAX_MESSAGE_BYTES);
        assert_eq!(
            decode_chain_response(&bytes, &request).expect("decodes"),
            response,
            "{}",
            response.kind()
        );
    }
}

#[test]
fn relay_messages_round_trip() {
    for request in [
        RelayRequest::Announce(ids(1)),
        RelayRequest::Announce(ids(MAX_ANNOUNCE)),
        RelayRequest::GetTransactions(ids(1)),
        RelayRequest::GetTransactions(ids(MAX_GET_TRANSACTIONS)),
    ] {
        let bytes = request.encode().expect("encodes");
        assert_eq!(decode_relay_request(&bytes).expect("decodes"), request);
    }

    let ack = RelayResponse::Ack.encode().expect("encodes");
    assert_eq!(
        decode_relay_response(&ack, &RelayRequest::Announce(ids(3))).expect("decodes"),
        RelayResponse::Ack
    );

    let txs = transactions();
    let mut asked: Vec<Hash> = txs.iter().map(Transaction::hash).collect();
    asked.extend(ids(5)); // Ids the answerer lacks.
    let request = RelayRequest::GetTransactions(asked);
    let response = RelayResponse::Transactions(txs);
    let bytes = response.encode().expect("encodes");
    assert_eq!(
        decode_relay_response(&bytes, &request).expect("decodes"),
        response
    );
    let none = RelayResponse::Transactions(Vec::new());
    let bytes = none.encode().expect("encodes");
    assert_eq!(
        decode_relay_response(&bytes, &request).expect("decodes"),
        none
    );
}

// Limits of requests.

#[test]
fn header_and_block_counts_are_bounded() {
    use pb::chain_request::Body;
    let headers = |count| Body::GetHeaders(pb::GetHeaders { from_seq: 0, count });
    let blocks = |count| Body::GetBlocks(pb::GetBlocks { from_seq: 0, count });
    let max_h = MAX_HEADERS_PER_REQUEST as usize;
    let max_b = MAX_BLOCKS_PER_REQUEST as usize;
    for (body, count, max, field) in [
        (headers(0), 0, max_h, "headers"),
        (headers(2001), 2001, max_h, "headers"),
        (headers(u32::MAX), u32::MAX as usize, max_h, "headers"),
        (blocks(0), 0, max_b, "blocks"),
        (blocks(65), 65, max_b, "blocks"),
    ] {
        let err = decode_chain_request(&raw_chain_request(body)).expect_err("refused");
        assert!(err.is_violation());
        assert_count(err, field, count, max);
    }
    decode_chain_request(&raw_chain_request(headers(2000))).expect("2000 headers");
    decode_chain_request(&raw_chain_request(blocks(64))).expect("64 blocks");

    // The encoder refuses what a peer would.
    for request in [
        ChainRequest::GetHeaders {
            from_seq: 0,
            count: 0,
        },
        ChainRequest::GetHeaders {
            from_seq: 0,
            count: MAX_HEADERS_PER_REQUEST + 1,
        },
        ChainRequest::GetBlocks {
            from_seq: 0,
            count: MAX_BLOCKS_PER_REQUEST + 1,
        },
    ] {
        assert!(matches!(request.encode(), Err(ProtocolError::Count { .. })));
    }
}

#[test]
fn relay_id_counts_are_bounded() {
    use pb::relay_request::Body;
    let announce = |n| Body::Announce(pb::Announce { txids: raw_ids(n) });
    let get = |n| Body::GetTransactions(pb::GetTransactions { txids: raw_ids(n) });
    for (body, count, max) in [
        (announce(0), 0, MAX_ANNOUNCE),
        (announce(1001), 1001, MAX_ANNOUNCE),
        (get(0), 0, MAX_GET_TRANSACTIONS),
        (get(257), 257, MAX_GET_TRANSACTIONS),
    ] {
        let err = decode_relay_request(&raw_relay_request(body)).expect_err("refused");
        assert_count(err, "txids", count, max);
    }
    decode_relay_request(&raw_relay_request(announce(1000))).expect("1000 ids");
    decode_relay_request(&raw_relay_request(get(256))).expect("256 ids");

    assert!(matches!(
        RelayRequest::Announce(ids(MAX_ANNOUNCE + 1)).encode(),
        Err(ProtocolError::Count { .. })
    ));
    assert!(matches!(
        RelayRequest::GetTransactions(Vec::new()).encode(),
        Err(ProtocolError::Count { .. })
    ));
}

#[test]
fn repeated_ids_are_refused() {
    let mut txids = raw_ids(3);
    txids.push(txids[1].clone());
    let bytes = raw_relay_request(pb::relay_request::Body::Announce(pb::Announce { txids }));
    let err = decode_relay_request(&bytes).expect_err("refused");
    assert!(
        matches!(err, ProtocolError::Repeated { hash, .. } if hash == ids(3)[1]),
        "{err:?}"
    );

    let mut twice = ids(2);
    twice.push(twice[0]);
    assert!(matches!(
        RelayRequest::GetTransactions(twice).encode(),
        Err(ProtocolError::Repeated { .. })
    ));
}

// Limits of answers: at most what was asked.

#[test]
fn answers_hold_at_most_what_was_asked() {
    let asked = |count| ChainRequest::GetHeaders { from_seq: 0, count };
    let err = decode_chain_response(&raw_headers(&headers(3)), &asked(2)).expect_err("3 of 2");
    assert_count(err, "headers", 3, 2);
    let err = decode_chain_response(&raw_headers(&headers(2001)), &asked(2000))
        .expect_err("2001 headers");
    assert_count(err, "headers", 2001, 2000);
    decode_chain_response(&raw_headers(&headers(2000)), &asked(2000)).expect("2000 headers");

    let all: Vec<Bytes> = blocks()[..65].iter().map(encoded).collect();
    let asked_blocks = ChainRequest::GetBlocks {
        from_seq: 0,
        count: MAX_BLOCKS_PER_REQUEST,
    };
    let err =
        decode_chain_response(&raw_blocks(all.clone()), &asked_blocks).expect_err("65 blocks");
    assert_count(err, "blocks", 65, 64);
    decode_chain_response(&raw_blocks(all[..64].to_vec()), &asked_blocks).expect("64 blocks");

    let txs = transactions();
    let asked: Vec<Hash> = txs[..2].iter().map(Transaction::hash).collect();
    let bytes = raw_transactions(txs[..3].iter().map(encoded).collect());
    let err =
        decode_relay_response(&bytes, &RelayRequest::GetTransactions(asked)).expect_err("3 of 2");
    assert_count(err, "transactions", 3, 2);

    // The encoder refuses answers no request allows.
    assert!(matches!(
        ChainResponse::Headers(headers(2001)).encode(),
        Err(ProtocolError::Count { .. })
    ));
    assert!(matches!(
        ChainResponse::Blocks(blocks()[..65].to_vec()).encode(),
        Err(ProtocolError::Count { .. })
    ));
}

#[test]
fn transactions_not_asked_for_or_repeated_are_refused() {
    let txs = transactions();
    let asked: Vec<Hash> = txs[..3].iter().map(Transaction::hash).collect();
    let request = RelayRequest::GetTransactions(asked.clone());

    let bytes = raw_transactions(vec![encoded(&txs[0]), encoded(&txs[5])]);
    let err = decode_relay_response(&bytes, &request).expect_err("not asked");
    assert!(
        matches!(err, ProtocolError::NotAsked(id) if id == txs[5].hash()),
        "{err:?}"
    );
    assert!(err.is_violation());

    let bytes = raw_transactions(vec![encoded(&txs[1]), encoded(&txs[1])]);
    let err = decode_relay_response(&bytes, &request).expect_err("twice");
    assert!(matches!(err, ProtocolError::Repeated { .. }), "{err:?}");

    check_asked(&asked, &txs[..3]).expect("all asked");
    assert!(check_asked(&asked, &txs[2..4]).is_err());
}

// Sizes.

#[test]
fn messages_over_the_byte_cap_are_refused_before_parsing() {
    let over = vec![0u8; MAX_MESSAGE_BYTES + 1];
    let asked_chain = ChainRequest::GetTip;
    let asked_relay = RelayRequest::Announce(ids(1));
    let errors = [
        decode_chain_request(&over).expect_err("too large"),
        decode_chain_response(&over, &asked_chain).expect_err("too large"),
        decode_relay_request(&over).expect_err("too large"),
        decode_relay_response(&over, &asked_relay).expect_err("too large"),
    ];
    for err in errors {
        assert!(err.is_violation());
        assert!(
            matches!(err, ProtocolError::TooLarge { size, max } if size == MAX_MESSAGE_BYTES + 1 && max == MAX_MESSAGE_BYTES),
            "{err:?}"
        );
    }
    // At the cap, the bytes are parsed (and these are not protobuf).
    let at = vec![0u8; MAX_MESSAGE_BYTES];
    assert!(matches!(
        decode_chain_request(&at),
        Err(ProtocolError::Malformed(_))
    ));
}

#[test]
fn the_cap_fits_a_full_blocks_answer() {
    // 64 blocks of the largest size, each a valid protobuf element (the contents are not
    // decoded: the count is over what was asked, which is checked first).
    let full: Vec<Bytes> = (0..MAX_BLOCKS_PER_REQUEST)
        .map(|_| Bytes::from(vec![0u8; MAX_BLOCK_BYTES]))
        .collect();
    let bytes = raw_blocks(full);
    assert!(bytes.len() <= MAX_MESSAGE_BYTES, "{} bytes", bytes.len());
    const { assert!(MAX_MESSAGE_BYTES <= 4 * 1024 * 1024) };
    let asked = ChainRequest::GetBlocks {
        from_seq: 0,
        count: MAX_BLOCKS_PER_REQUEST - 1,
    };
    assert_count(
        decode_chain_response(&bytes, &asked).expect_err("64 of 63"),
        "blocks",
        64,
        63,
    );
}

#[test]
fn oversized_elements_are_refused_before_decoding() {
    let asked = ChainRequest::GetBlocks {
        from_seq: 0,
        count: 2,
    };
    let bytes = raw_blocks(vec![
        encoded(&blocks()[1]),
        Bytes::from(vec![0u8; MAX_BLOCK_BYTES + 1]),
    ]);
    let err = decode_chain_response(&bytes, &asked).expect_err("too large");
    assert!(
        matches!(err, ProtocolError::ElementTooLarge { field: "blocks", index: 1, size, max } if size == MAX_BLOCK_BYTES + 1 && max == MAX_BLOCK_BYTES),
        "{err:?}"
    );
    // At the limit the block is decoded (and zeros are not a block).
    let bytes = raw_blocks(vec![Bytes::from(vec![0u8; MAX_BLOCK_BYTES])]);
    assert!(matches!(
        decode_chain_response(&bytes, &asked),
        Err(ProtocolError::Element { .. })
    ));

    let request = RelayRequest::GetTransactions(ids(1));
    let bytes = raw_transactions(vec![Bytes::from(vec![0u8; MAX_TRANSACTION_BYTES + 1])]);
    let err = decode_relay_response(&bytes, &request).expect_err("too large");
    assert!(
        matches!(
            err,
            ProtocolError::ElementTooLarge {
                field: "transactions",
                ..
            }
        ),
        "{err:?}"
    );
    let bytes = raw_transactions(vec![Bytes::from(vec![0u8; MAX_TRANSACTION_BYTES])]);
    assert!(matches!(
        decode_relay_response(&bytes, &request),
        Err(ProtocolError::Element { .. })
    ));
}

// Malformed messages and elements.

#[test]
fn malformed_protobuf_is_refused() {
    let garbage: &[&[u8]] = &[&[0xff, 0xff, 0xff], &[0x0a, 0x05, 0x01], &[0x12, 0x80]];
    for bytes in garbage {
        for err in [
            decode_chain_request(bytes).expect_err("garbage"),
            decode_chain_response(bytes, &ChainRequest::GetTip).expect_err("garbage"),
            decode_relay_request(bytes).expect_err("garbage"),
            decode_relay_response(bytes, &RelayRequest::Announce(ids(1))).expect_err("garbage"),
        ] {
            assert!(err.is_violation());
            assert!(matches!(err, ProtocolError::Malformed(_)), "{err:?}");
        }
    }
    // An empty message has no body.
    assert!(matches!(
        decode_chain_request(&[]),
        Err(ProtocolError::Malformed(_))
    ));
    assert!(matches!(
        decode_relay_response(&[], &RelayRequest::Announce(ids(1))),
        Err(ProtocolError::Malformed(_))
    ));
}

#[test]
fn headers_and_signatures_of_the_wrong_size_are_refused() {
    let good = raw_header(&headers(1)[0]);
    let asked = ChainRequest::GetHeaders {
        from_seq: 0,
        count: 1,
    };
    let with = |header: pb::SignedHeader| {
        raw_chain_response(pb::chain_response::Body::Headers(pb::Headers {
            headers: vec![header],
        }))
    };
    for len in [123, 125] {
        let mut header = good.clone();
        let mut bytes = header.header.to_vec();
        bytes.resize(len, 0);
        header.header = Bytes::from(bytes);
        assert_invalid(
            decode_chain_response(&with(header), &asked).expect_err("header size"),
            "header",
        );
    }
    for len in [64, 66, 0] {
        let mut header = good.clone();
        header.sig = Bytes::from(vec![1u8; len]);
        assert_invalid(
            decode_chain_response(&with(header), &asked).expect_err("sig size"),
            "sig",
        );
    }
    decode_chain_response(&with(good), &asked).expect("the good one");
}

#[test]
fn hashes_must_be_32_bytes() {
    let short = Bytes::from(vec![1u8; 31]);
    let bytes = raw_chain_request(pb::chain_request::Body::AnnounceTip(pb::AnnounceTip {
        seq: 1,
        hash: short.clone(),
    }));
    assert_invalid(decode_chain_request(&bytes).expect_err("31 bytes"), "hash");

    let bytes = raw_chain_response(pb::chain_response::Body::Tip(pb::Tip {
        seq: 1,
        hash: short.clone(),
        empty: false,
    }));
    assert_invalid(
        decode_chain_response(&bytes, &ChainRequest::GetTip).expect_err("31 bytes"),
        "hash",
    );

    let mut txids = raw_ids(2);
    txids[1] = short;
    let bytes = raw_relay_request(pb::relay_request::Body::GetTransactions(
        pb::GetTransactions { txids },
    ));
    assert_invalid(decode_relay_request(&bytes).expect_err("31 bytes"), "txids");

    // An empty chain carries no hash.
    let bytes = raw_chain_response(pb::chain_response::Body::Tip(pb::Tip {
        seq: 0,
        hash: Bytes::from(vec![0u8; 32]),
        empty: true,
    }));
    assert_invalid(
        decode_chain_response(&bytes, &ChainRequest::GetTip).expect_err("empty with a hash"),
        "tip",
    );
}

#[test]
fn blocks_and_transactions_with_trailing_bytes_are_refused() {
    let mut block = encoded(&blocks()[1]).to_vec();
    block.push(0);
    let asked = ChainRequest::GetBlocks {
        from_seq: 1,
        count: 1,
    };
    assert_trailing(
        decode_chain_response(&raw_blocks(vec![Bytes::from(block)]), &asked).expect_err("trailing"),
        "blocks",
    );

    let tx = &transactions()[0];
    let mut bytes = encoded(tx).to_vec();
    bytes.push(0);
    let request = RelayRequest::GetTransactions(vec![tx.hash()]);
    assert_trailing(
        decode_relay_response(&raw_transactions(vec![Bytes::from(bytes)]), &request)
            .expect_err("trailing"),
        "transactions",
    );

    // And a truncated block.
    let block = encoded(&blocks()[1]);
    let bytes = raw_blocks(vec![block.slice(..block.len() - 1)]);
    assert!(matches!(
        decode_chain_response(&bytes, &asked),
        Err(ProtocolError::Element {
            source: DecodeError::Underflow { .. },
            ..
        })
    ));
}

// Answers of the wrong kind and error answers.

#[test]
fn answers_of_the_wrong_kind_are_violations() {
    let ack = ChainResponse::Ack.encode().expect("encodes");
    let err = decode_chain_response(&ack, &ChainRequest::GetTip).expect_err("wrong kind");
    assert!(err.is_violation());
    assert!(
        matches!(
            err,
            ProtocolError::Unexpected {
                asked: "GetTip",
                got: "Ack"
            }
        ),
        "{err:?}"
    );

    let txs = RelayResponse::Transactions(Vec::new())
        .encode()
        .expect("encodes");
    let err = decode_relay_response(&txs, &RelayRequest::Announce(ids(1))).expect_err("kind");
    assert!(matches!(err, ProtocolError::Unexpected { .. }), "{err:?}");
}

#[test]
fn error_answers_are_refusals_not_violations() {
    let long = "x".repeat(1000);
    let bytes = encode_chain_error(Code::RateLimited, &long);
    let err = decode_chain_response(&bytes, &ChainRequest::GetTip).expect_err("refused");
    assert!(!err.is_violation());
    match err {
        ProtocolError::Refused { code, message } => {
            assert_eq!(code, Code::RateLimited);
            assert_eq!(message.chars().count(), MAX_ERROR_MESSAGE_CHARS);
        }
        other => panic!("want a refusal, got {other:?}"),
    }

    let bytes = encode_relay_error(Code::NotFound, "none of those");
    let err =
        decode_relay_response(&bytes, &RelayRequest::GetTransactions(ids(2))).expect_err("refused");
    assert!(!err.is_violation());
    assert!(
        matches!(&err, ProtocolError::Refused { code: Code::NotFound, message } if message == "none of those"),
        "{err:?}"
    );

    // A peer's long message is cut on receipt too; an unknown code is kept as
    // unspecified.
    let bytes = raw_relay_response(pb::relay_response::Body::Error(pb::Error {
        code: 99,
        message: "é".repeat(300),
    }));
    match decode_relay_response(&bytes, &RelayRequest::Announce(ids(1))) {
        Err(ProtocolError::Refused { code, message }) => {
            assert_eq!(code, Code::Unspecified);
            assert_eq!(message.chars().count(), MAX_ERROR_MESSAGE_CHARS);
        }
        other => panic!("want a refusal, got {other:?}"),
    }
}

// Garbage.

fn decode_all(bytes: &[u8]) {
    let tx_ids: Vec<Hash> = transactions().iter().map(Transaction::hash).collect();
    let _ = decode_chain_request(bytes);
    let _ = decode_relay_request(bytes);
    for asked in [
        ChainRequest::GetTip,
        ChainRequest::GetHeaders {
            from_seq: 0,
            count: MAX_HEADERS_PER_REQUEST,
        },
        ChainRequest::GetBlocks {
            from_seq: 0,
            count: MAX_BLOCKS_PER_REQUEST,
        },
        ChainRequest::AnnounceTip(Tip {
            seq: 0,
            hash: Hash::ZERO,
        }),
    ] {
        let _ = decode_chain_response(bytes, &asked);
    }
    for asked in [
        RelayRequest::Announce(ids(1)),
        RelayRequest::GetTransactions(tx_ids),
    ] {
        let _ = decode_relay_response(bytes, &asked);
    }
}

/// Valid messages of every kind, for mutation.
fn samples() -> Vec<Vec<u8>> {
    let mut out = vec![
        ChainResponse::Blocks(blocks()[..3].to_vec())
            .encode()
            .expect("encodes")
            .to_vec(),
        ChainResponse::Headers(headers(3))
            .encode()
            .expect("encodes")
            .to_vec(),
        RelayResponse::Transactions(transactions()[..3].to_vec())
            .encode()
            .expect("encodes")
            .to_vec(),
        RelayRequest::Announce(ids(3))
            .encode()
            .expect("encodes")
            .to_vec(),
    ];
    out.push(
        ChainRequest::AnnounceTip(Tip {
            seq: 1,
            hash: Hash([2; 32]),
        })
        .encode()
        .expect("encodes")
        .to_vec(),
    );
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        decode_all(&bytes);
    }

    #[test]
    fn mutated_messages_never_panic(
        which in 0usize..5,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = samples().swap_remove(which);
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= value;
        }
        decode_all(&bytes);
        bytes.truncate(cut.index(bytes.len() + 1));
        decode_all(&bytes);
    }
}
