-- The DHT's routing table (SQLite), saved so a restart does not need the
-- bootstrap peers again: on start the node pings these contacts for their
-- current records. Same meaning as ../postgres/0001_routing_table.sql;
-- see services/dht/src/store.rs.
CREATE TABLE dht_contacts (
    -- The node's compressed secp256k1 public key: 33 bytes.
    node_id  BLOB    NOT NULL PRIMARY KEY
             CONSTRAINT dht_contacts_node_id_len
             CHECK (typeof(node_id) = 'blob' AND length(node_id) = 33),
    -- The endpoint it answered at, IP:PORT.
    endpoint TEXT    NOT NULL CHECK (length(endpoint) <= 64),
    -- Its bucket position when saved: least recently seen first.
    position INTEGER NOT NULL
);
