//! Conformance with Skycoin mainnet: the genesis block and block 1, rebuilt from their
//! parameters and checked against hashes, encodings and signatures from the live chain
//! (Skycoin's API golden files `genesis-transaction-encoded.golden`, `block-seq-0.golden`,
//! `block-seq-1.golden`, `block-seq-verbose-1.golden`, recomputed independently).

use skywire_coin::{
    Block, BlockBody, BlockHeader, Decode, Encode, Hash, Output, Sig, SigError, SignedBlock,
    Transaction, TxError, UxHash, create_unspents, transaction_fee,
};
use skywire_identity::{Address, Keypair, PublicKey};

const GENESIS_ADDRESS: &str = "2jBbGxZRGoQG1mqhPBnXnLTxK6oxsTf8os6";
const GENESIS_COINS: u64 = 100_000_000_000_000;
const GENESIS_TIMESTAMP: u64 = 1_426_562_704;
const BLOCKCHAIN_PUBKEY: &str =
    "0328c576d3f420e7682058a981173a4b374c7cc5ff55bf394d3cf57059bbe6456a";
const GENESIS_SIGNATURE: &str = "eb10468d10054d15f2b6f8946cd46797779aa20a7617ceb4be884189f219bc9a164e56a5b9f7bec392a804ff3740210348d73db77a37adb542a8e08d429ac92700";

const GENESIS_TX_HEX: &str = "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000100000000f8f9c644772dc5373d85e11094e438df707a42c900407a10f35a000000407a10f35a0000";
const GENESIS_TXID: &str = "d556c1c7abf1e86138316b8c17183665512dc67633c04cf236a8b7f332cb4add";
const GENESIS_UXID: &str = "043836eb6f29aaeb8b9bfce847e07c159c72b25ae17d291f32125e7f1912e2a0";
const GENESIS_HEADER_HEX: &str = "00000000909e075500000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000d556c1c7abf1e86138316b8c17183665512dc67633c04cf236a8b7f332cb4add0000000000000000000000000000000000000000000000000000000000000000";
const GENESIS_HASH: &str = "0551a1e5af999fe8fff529f6f2ab341e1e33db95135eef1b2be44fe6981349f3";

const BLOCK1_TIME: u64 = 1_427_926_392;
const BLOCK1_FEE: u64 = 99_999_999_999_900;
const BLOCK1_INNER_HASH: &str = "0f7019627886818d2501af189bbac18e21b8e959891c5b2726f89e29355aa10a";
const BLOCK1_SIG: &str = "be602113fe288f750001ab65f254ceedd8b05b1becc456a0a52a0bea10b8280e38d950933992ad3265e1f81d197036fa634b316f08b3b319ffce081aa43f3bb600";
const BLOCK1_SIGNING_HASH: &str =
    "e7e65353b4ced787b8eab69cb915697820861a32bd7af4fd74f2104fe1f4cba6";
const BLOCK1_TXID: &str = "86564b421cd3d4fe6f5f2d7a3e5db9d6fc340892bddd3a150533dff7036d0efe";
const BLOCK1_FIRST_UXID: &str = "e3e72ee077c8b0c3f87da7cf50cad8876bd3f489f373d9fe82fc2e971df56f76";
const BLOCK1_LAST_UXID: &str = "439cdfd03972fb4bb5da54208cf8098ee78228c487ce9e84623f5f83e17a7d68";
const BLOCK1_UX_HASH: &str = "ecc66d67289ecf8b5c5d2758a8f07ef08373a61a4d4e2736905ac2aaa427655f";
const BLOCK1_HASH: &str = "baf3b622f043bbe3ef480416251a6545d07f173e5969dde2b63c4a12956d38fd";

/// Head time of Skycoin's integration database (block 180) and the genesis output's
/// `calculated_hours` there (`block-seq-verbose-1.golden`).
const HEAD_180_TIME: u64 = 1_431_574_528;
const GENESIS_HOURS_AT_HEAD_180: u64 = 100_139_217_333_333;

fn hash(hex: &str) -> Hash {
    hex.parse().expect("hash hex")
}

fn genesis_address() -> Address {
    GENESIS_ADDRESS.parse().expect("genesis address")
}

fn genesis() -> Block {
    Block::genesis(genesis_address(), GENESIS_COINS, GENESIS_TIMESTAMP)
}

fn distribution() -> Vec<Address> {
    include_str!("data/distribution.txt")
        .lines()
        .filter(|line| !line.starts_with('#'))
        .flat_map(str::split_whitespace)
        .map(|text| text.parse().expect("distribution address"))
        .collect()
}

/// Block 1's transaction: spends the genesis output, 1,000,000 SKY and 1 hour to each
/// distribution address, with the signature from the chain.
fn block1_tx() -> Transaction {
    let genesis = genesis();
    let genesis_ux = create_unspents(&genesis.header, &genesis.body.transactions[0]);
    let mut tx = Transaction {
        sigs: vec![BLOCK1_SIG.parse().expect("sig hex")],
        inputs: vec![genesis_ux[0].hash()],
        outputs: distribution()
            .into_iter()
            .map(|address| Output {
                address,
                coins: 1_000_000 * 1_000_000,
                hours: 1,
            })
            .collect(),
        ..Transaction::default()
    };
    tx.update_header().expect("within limits");
    tx
}

#[test]
fn genesis_transaction_encoding() {
    let block = genesis();
    assert_eq!(block.body.transactions.len(), 1);
    let tx = &block.body.transactions[0];
    let bytes = tx.encode().expect("encodes");
    assert_eq!(hex::encode(&bytes), GENESIS_TX_HEX);
    assert_eq!(bytes.len(), 86);
    assert_eq!(tx.size(), 86);
    assert_eq!(tx.length, 0, "genesis never had UpdateHeader");
    assert!(tx.inner_hash.is_zero());
    assert_eq!(&Transaction::decode_exact(&bytes).expect("decodes"), tx);
    assert_eq!(tx.hash(), hash(GENESIS_TXID));
    assert_eq!(
        block.body.hash(),
        hash(GENESIS_TXID),
        "one tx: body hash = txid"
    );
}

#[test]
fn genesis_output_uxid_and_hours() {
    let block = genesis();
    let unspent = create_unspents(&block.header, &block.body.transactions[0]);
    assert_eq!(unspent.len(), 1);
    let ux = unspent[0];
    assert!(ux.body.src_transaction.is_zero(), "genesis: zero source");
    assert_eq!(ux.head.time, GENESIS_TIMESTAMP);
    assert_eq!(ux.head.bk_seq, 0);
    assert_eq!(ux.hash(), hash(GENESIS_UXID));
    assert_eq!(ux.snapshot_hash(), hash(BLOCK1_UX_HASH));
    assert_eq!(
        ux.coin_hours(HEAD_180_TIME),
        Ok(GENESIS_HOURS_AT_HEAD_180),
        "calculated_hours in block-seq-verbose-1.golden"
    );
    assert_eq!(ux.coin_hours(GENESIS_TIMESTAMP), Ok(GENESIS_COINS));
}

#[test]
fn genesis_header_and_hash() {
    let block = genesis();
    let bytes = block.header.encode().expect("encodes");
    assert_eq!(bytes.len(), BlockHeader::ENCODED_LEN);
    assert_eq!(hex::encode(&bytes), GENESIS_HEADER_HEX);
    assert_eq!(BlockHeader::decode_exact(&bytes), Ok(block.header));
    assert_eq!(block.hash(), hash(GENESIS_HASH));
}

#[test]
fn genesis_signature_verifies_under_the_mainnet_key_only() {
    let key: PublicKey = BLOCKCHAIN_PUBKEY.parse().expect("pubkey");
    let signed = SignedBlock {
        block: genesis(),
        sig: GENESIS_SIGNATURE.parse().expect("sig hex"),
    };
    assert_eq!(signed.verify_signature(&key), Ok(()));
    assert_eq!(signed.sig.recover(&signed.block.hash()), Ok(key));

    let other = Keypair::generate().public_key();
    assert_eq!(
        signed.verify_signature(&other),
        Err(SigError::PublicKeyMismatch {
            expected: other,
            recovered: key
        })
    );

    // Any change to the header changes the hash the signature is checked against.
    let mut altered = signed.clone();
    altered.block.header.time += 1;
    assert!(altered.verify_signature(&key).is_err());

    // The signed block round-trips through its (inferred) encoding.
    let bytes = signed.encode().expect("encodes");
    assert_eq!(bytes.len(), 124 + 4 + 86 + 65);
    assert_eq!(SignedBlock::decode_exact(&bytes), Ok(signed));
}

#[test]
fn block1_transaction() {
    let tx = block1_tx();
    assert_eq!(tx.outputs.len(), 100);
    assert_eq!(tx.inputs, vec![hash(GENESIS_UXID)]);
    assert_eq!(tx.inner_hash, hash(BLOCK1_INNER_HASH));
    assert_eq!(tx.length, 3846);
    assert_eq!(tx.size(), 3846);
    assert_eq!(tx.kind, 0);
    assert_eq!(tx.signing_hash(0), Some(hash(BLOCK1_SIGNING_HASH)));
    assert_eq!(tx.hash(), hash(BLOCK1_TXID));

    let bytes = tx.encode().expect("encodes");
    assert_eq!(bytes.len(), 3846);
    assert_eq!(Transaction::decode_exact(&bytes), Ok(tx.clone()));
    assert_eq!(tx.verify(true), Ok(()));
}

#[test]
fn block1_signature_is_by_the_genesis_address() {
    let genesis = genesis();
    let genesis_ux = create_unspents(&genesis.header, &genesis.body.transactions[0]);
    let tx = block1_tx();
    assert_eq!(tx.verify_input_signatures(&genesis_ux), Ok(()));
    assert_eq!(
        tx.sigs[0]
            .recover(&hash(BLOCK1_SIGNING_HASH))
            .map(|key| key.address()),
        Ok(genesis_address())
    );

    // The same signature does not spend an output owned by anyone else.
    let mut stolen = genesis_ux.clone();
    let thief = Keypair::generate().address();
    stolen[0].body.address = thief;
    let mut tx2 = tx.clone();
    tx2.inputs = vec![stolen[0].hash()];
    tx2.update_header().expect("within limits");
    assert!(matches!(
        tx2.verify_input_signatures(&stolen),
        Err(TxError::SpendSignature { index: 0, .. })
    ));
}

#[test]
fn block1_outputs_and_block_hash() {
    let genesis = genesis();
    let genesis_ux = create_unspents(&genesis.header, &genesis.body.transactions[0]);

    // The unspent set after genesis is the genesis output alone.
    let mut ux_hash = UxHash::new();
    for ux in &genesis_ux {
        ux_hash.xor(&ux.snapshot_hash());
    }
    assert_eq!(ux_hash.hash(), hash(BLOCK1_UX_HASH));

    // Fee at the head's (genesis) time: 1e14 hours in, 100 out.
    let tx = block1_tx();
    let fee = transaction_fee(&tx, genesis.header.time, &genesis_ux).expect("fee");
    assert_eq!(fee, BLOCK1_FEE);

    let body = BlockBody {
        transactions: vec![tx.clone()],
    };
    assert_eq!(body.hash(), hash(BLOCK1_TXID), "one tx: body hash = txid");
    assert_eq!(body.size(), 3846);
    let block =
        Block::next(&genesis.header, ux_hash.hash(), BLOCK1_TIME, fee, body).expect("next block");
    assert_eq!(block.header.bk_seq, 1);
    assert_eq!(block.header.version, 0);
    assert_eq!(block.header.prev_hash, hash(GENESIS_HASH));
    assert_eq!(block.hash(), hash(BLOCK1_HASH));

    // With a zero UxHash the hash would differ: the unspent-set rule matters.
    let mut wrong = block.header;
    wrong.ux_hash = Hash::ZERO;
    assert_ne!(wrong.hash(), hash(BLOCK1_HASH));

    // Block 1's outputs.
    let unspent = create_unspents(&block.header, &tx);
    assert_eq!(unspent.len(), 100);
    assert_eq!(unspent[0].hash(), hash(BLOCK1_FIRST_UXID));
    assert_eq!(unspent[99].hash(), hash(BLOCK1_LAST_UXID));
    assert!(
        unspent
            .iter()
            .all(|ux| ux.body.src_transaction == hash(BLOCK1_TXID)
                && ux.head.bk_seq == 1
                && ux.head.time == BLOCK1_TIME)
    );
    assert_eq!(tx.outputs[0].uxid(&tx.hash()), hash(BLOCK1_FIRST_UXID));

    // The whole block round-trips.
    let bytes = block.encode().expect("encodes");
    assert_eq!(bytes.len(), 124 + 4 + 3846);
    assert_eq!(Block::decode_exact(&bytes), Ok(block.clone()));

    // Applying block 1: the genesis output leaves the set, the 100 new ones enter; the
    // result does not depend on the order.
    let mut forward = ux_hash;
    let mut backward = ux_hash;
    forward.xor(&genesis_ux[0].snapshot_hash());
    for ux in &unspent {
        forward.xor(&ux.snapshot_hash());
    }
    for ux in unspent.iter().rev() {
        backward.xor(&ux.snapshot_hash());
    }
    backward.xor(&genesis_ux[0].snapshot_hash());
    assert_eq!(forward, backward);
    assert_ne!(forward.hash(), Hash::ZERO);
}

#[test]
fn block_time_must_move_forward() {
    let genesis = genesis();
    let body = BlockBody {
        transactions: vec![block1_tx()],
    };
    assert_eq!(
        Block::next(&genesis.header, Hash::ZERO, GENESIS_TIMESTAMP, 0, body),
        Err(skywire_coin::BlockError::TimeNotAfterPrevious {
            time: GENESIS_TIMESTAMP,
            prev: GENESIS_TIMESTAMP
        })
    );
    assert_eq!(
        Block::next(
            &genesis.header,
            Hash::ZERO,
            BLOCK1_TIME,
            0,
            BlockBody::default()
        ),
        Err(skywire_coin::BlockError::NoTransactions)
    );
}

#[test]
fn signing_a_block() {
    let keypair = Keypair::generate();
    let signed = genesis().sign_block(&keypair);
    assert_eq!(signed.verify_signature(&keypair.public_key()), Ok(()));
    assert_eq!(
        signed.sig.recover(&signed.block.hash()),
        Ok(keypair.public_key())
    );
    let mainnet: PublicKey = BLOCKCHAIN_PUBKEY.parse().expect("pubkey");
    assert!(signed.verify_signature(&mainnet).is_err());
    assert_ne!(signed.sig, Sig::NULL);
}
