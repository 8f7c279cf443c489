//! The connection pool: keeps outbound peers, the peer store, bans, and the admin gRPC API.
pub mod store;
