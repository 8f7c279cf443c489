-- The pool's peer store (SQLite). Same meaning as ../postgres/0001_peer_store.sql;
-- see services/pool/src/store.rs for the semantics of every column.

-- One row per known peer.
CREATE TABLE pool_peers (
    -- Compressed secp256k1 public key: 33 bytes.
    node_id         BLOB    NOT NULL PRIMARY KEY
                    CONSTRAINT pool_peers_node_id_len
                    CHECK (typeof(node_id) = 'blob' AND length(node_id) = 33),
    -- Skycoin address derived from node_id.
    address         TEXT    NOT NULL UNIQUE,
    -- Service names the peer advertised in its last Hello, comma-separated.
    services        TEXT    NOT NULL DEFAULT '',
    user_agent      TEXT    NOT NULL DEFAULT '',
    -- Unix milliseconds; 0 = never.
    first_seen_ms   INTEGER NOT NULL DEFAULT 0,
    last_seen_ms    INTEGER NOT NULL DEFAULT 0,
    last_attempt_ms INTEGER NOT NULL DEFAULT 0,
    -- Consecutive failed dials.
    failures        INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0),
    score           INTEGER NOT NULL DEFAULT 0,
    -- Unix milliseconds; NULL = not banned.
    banned_until_ms INTEGER NULL,
    ban_reason      TEXT    NULL,
    -- An operator asked to keep this peer connected (admin API or --connect).
    keep            BOOLEAN NOT NULL DEFAULT FALSE CHECK (keep IN (0, 1))
);

-- list(): best first.
CREATE INDEX pool_peers_by_score ON pool_peers (score DESC, last_seen_ms DESC, node_id);
-- dial_candidates(): kept first, then best, fewest failures, least recently tried.
CREATE INDEX pool_peers_dial ON pool_peers (keep DESC, score DESC, failures, last_attempt_ms, node_id);
-- active_bans(), and eviction, which spares banned peers.
CREATE INDEX pool_peers_banned ON pool_peers (banned_until_ms) WHERE banned_until_ms IS NOT NULL;
-- forget_stale(): peers not kept, by last contact.
CREATE INDEX pool_peers_stale ON pool_peers (last_seen_ms) WHERE keep = FALSE;

-- Where a peer can be dialed: at most MAX_ENDPOINTS_PER_PEER per peer.
CREATE TABLE pool_endpoints (
    node_id    BLOB    NOT NULL REFERENCES pool_peers (node_id) ON DELETE CASCADE,
    -- host:port (or any dialable string), as given.
    endpoint   TEXT    NOT NULL,
    -- Per-peer recency: higher = more recently added or confirmed. When a peer
    -- has too many endpoints, the lowest go first.
    seq        INTEGER NOT NULL,
    -- Unix milliseconds of the last connection with this endpoint known; NULL = never.
    last_ok_ms INTEGER NULL,
    PRIMARY KEY (node_id, endpoint)
);
