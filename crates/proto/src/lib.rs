//! Generated protobuf types for every Skywire schema under `proto/`, and
//! the one rule the schemas share: what an SWP/1 service name is
//! ([`service_name`]).
//!
//! `build.rs` compiles the `.proto` files with `protox` (pure Rust, so no
//! `protoc` install is needed), `prost-build` and `tonic-prost-build`.
//! Modules mirror the protobuf packages: `skywire.wire.v1` is [`wire::v1`].
//! [`service_name`] is the only hand-written module.

pub mod service_name;

/// The `skywire.wire.*` packages: the SWP/1 control channel.
pub mod wire {
    /// `skywire.wire.v1`: the control channel schema of SWP/1 (`control.proto`).
    #[allow(missing_docs, unreachable_pub, clippy::all)]
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/skywire.wire.v1.rs"));
    }
}

/// The `skywire.bus.*` packages: what gateways and services say on the bus.
pub mod bus {
    /// `skywire.bus.v1` (`bus.proto`).
    #[allow(missing_docs, unreachable_pub, clippy::all)]
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/skywire.bus.v1.rs"));
    }
}

/// The `skywire.pool.*` packages: the pool's admin gRPC API.
pub mod pool {
    /// `skywire.pool.v1` (`pool.proto`): messages, client and server.
    #[allow(missing_docs, unreachable_pub, clippy::all)]
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/skywire.pool.v1.rs"));
    }
}

/// The `skywire.dht.*` packages: discovery (signed node records, the
/// `dht/1` messages, the Discovery gRPC API).
pub mod dht {
    /// `skywire.dht.v1` (`record.proto`, `dht.proto`, `api.proto`):
    /// messages, client and server.
    #[allow(missing_docs, unreachable_pub, clippy::all)]
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/skywire.dht.v1.rs"));
    }
}

/// The `skywire.pex.*` packages: peer exchange.
pub mod pex {
    /// `skywire.pex.v1` (`pex.proto`): the `pex/1` messages.
    #[allow(missing_docs, unreachable_pub, clippy::all)]
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/skywire.pex.v1.rs"));
    }
}

/// The `skywire.chain.*` packages: the blockchain's services.
pub mod chain {
    /// `skywire.chain.v1` (`chain.proto`, `api.proto`): the `chain/1` and
    /// `txrelay/1` messages, and the chain's gRPC API (client and server).
    #[allow(missing_docs, unreachable_pub, clippy::all)]
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/skywire.chain.v1.rs"));
    }
}
