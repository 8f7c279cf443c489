-- The chain's store (PostgreSQL). Same meaning as ../sqlite/0001_chain_store.sql;
-- see services/chain/src/store.rs for the semantics.
--
-- Integers: the u64 values SQL compares, orders or sums (sequence numbers,
-- times, coins) must fit a BIGINT; the store refuses larger ones. Coin hours
-- and fees are stored as the two's-complement bit pattern of the u64 (values
-- from 2^63 up read negative here): Skycoin's chain holds outputs with such
-- hours, and SQL never does arithmetic on them.
--
-- Every block is applied in one transaction (blocks, transactions, unspent
-- outputs and the head together), so the head and the unspent set are always
-- those of the last committed block.

-- One row per block, from the genesis (seq 0) to the head, without gaps.
CREATE TABLE chain_blocks (
    -- Sequence number: BlockHeader.bk_seq.
    seq      BIGINT NOT NULL PRIMARY KEY CHECK (seq >= 0),
    -- The block's hash: SHA-256 of the encoded header (32 bytes).
    hash     BYTEA  NOT NULL UNIQUE
             CONSTRAINT chain_blocks_hash_len CHECK (octet_length(hash) = 32),
    -- The header in Skycoin's encoding (124 bytes).
    header   BYTEA  NOT NULL
             CONSTRAINT chain_blocks_header_len CHECK (octet_length(header) = 124),
    -- The body in Skycoin's encoding: the transactions, count-prefixed.
    body     BYTEA  NOT NULL,
    -- The chain key's signature over hash (65 bytes, r || s || recid).
    sig      BYTEA  NOT NULL
             CONSTRAINT chain_blocks_sig_len CHECK (octet_length(sig) = 65),
    -- Copied from the header: time (unix seconds).
    time     BIGINT NOT NULL CHECK (time >= 0),
    -- Copied from the header: total fee in coin hours (u64 bit pattern).
    fee      BIGINT NOT NULL,
    -- Number of transactions in the body.
    tx_count BIGINT NOT NULL CHECK (tx_count >= 0)
);

-- One row per transaction of every stored block (also in its block's body).
CREATE TABLE chain_transactions (
    -- Transaction id: SHA-256 of the encoded transaction (32 bytes).
    txid      BYTEA  NOT NULL PRIMARY KEY
              CONSTRAINT chain_transactions_txid_len CHECK (octet_length(txid) = 32),
    -- The block holding it.
    block_seq BIGINT NOT NULL REFERENCES chain_blocks (seq),
    -- Its position in the block's body, from 0.
    idx       BIGINT NOT NULL CHECK (idx >= 0),
    -- The transaction in Skycoin's encoding.
    tx        BYTEA  NOT NULL,
    UNIQUE (block_seq, idx)
);

-- The unspent set after the head: one row per unspent output. Each column is
-- a field of Skycoin's UxOut, so the output is rebuilt exactly.
CREATE TABLE chain_unspent (
    -- The output's id (uxid): SHA-256 of its encoded UxBody (32 bytes).
    uxid            BYTEA  NOT NULL PRIMARY KEY
                    CONSTRAINT chain_unspent_uxid_len CHECK (octet_length(uxid) = 32),
    -- UxBody.address: who may spend it, base58 (at most 35 characters).
    address         TEXT   NOT NULL
                    CHECK (length(address) BETWEEN 1 AND 35),
    -- UxBody.coins, in droplets.
    coins           BIGINT NOT NULL CHECK (coins >= 0),
    -- UxBody.hours: the hours it was created with (u64 bit pattern).
    hours           BIGINT NOT NULL,
    -- UxHead.time: the creating block's time (unix seconds).
    time            BIGINT NOT NULL CHECK (time >= 0),
    -- UxHead.bk_seq: the creating block.
    block_seq       BIGINT NOT NULL REFERENCES chain_blocks (seq),
    -- UxBody.src_transaction: the creating transaction's id (zero for the
    -- genesis output), 32 bytes.
    src_transaction BYTEA  NOT NULL
                    CONSTRAINT chain_unspent_src_len CHECK (octet_length(src_transaction) = 32)
);

-- unspent_by_address() (oldest first) and balance().
CREATE INDEX chain_unspent_by_address ON chain_unspent (address, block_seq, uxid);

-- The head: exactly one row (id 1), all NULL for the empty chain. apply()
-- locks it (SELECT … FOR UPDATE) so that appliers take turns.
CREATE TABLE chain_head (
    id      BIGINT NOT NULL PRIMARY KEY CHECK (id = 1),
    -- The head block's sequence number.
    seq     BIGINT NULL REFERENCES chain_blocks (seq),
    -- The head block's hash (32 bytes).
    hash    BYTEA  NULL CHECK (octet_length(hash) = 32),
    -- The UxHash of the unspent set after the head block (32 bytes): what
    -- the next block's header must carry.
    ux_hash BYTEA  NULL CHECK (octet_length(ux_hash) = 32),
    CONSTRAINT chain_head_all_or_none
    CHECK ((seq IS NULL) = (hash IS NULL) AND (seq IS NULL) = (ux_hash IS NULL))
);

INSERT INTO chain_head (id, seq, hash, ux_hash) VALUES (1, NULL, NULL, NULL);
