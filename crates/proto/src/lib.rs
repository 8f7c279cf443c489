//! Generated protobuf types for every Skywire schema under `proto/`.
//!
//! `build.rs` compiles the `.proto` files with `protox` (pure Rust, so no
//! `protoc` install is needed) and `prost-build`. Modules mirror the protobuf
//! packages: `skywire.wire.v1` is [`wire::v1`].

/// The `skywire.wire.*` packages: the SWP/1 control channel.
pub mod wire {
    /// `skywire.wire.v1`: the control channel schema of SWP/1 (`control.proto`).
    #[allow(missing_docs, unreachable_pub, clippy::all)]
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/skywire.wire.v1.rs"));
    }
}
