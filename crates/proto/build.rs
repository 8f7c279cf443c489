//! Compiles every schema under `proto/` with `protox` (pure Rust, no `protoc`)
//! and generates gRPC clients and servers with `tonic-prost-build`.

use std::path::PathBuf;

const PROTO_ROOT: &str = "../../proto";
const SCHEMAS: &[&str] = &[
    "skywire/wire/v1/control.proto",
    "skywire/bus/v1/bus.proto",
    "skywire/pool/v1/pool.proto",
    "skywire/dht/v1/record.proto",
    "skywire/dht/v1/dht.proto",
    "skywire/dht/v1/api.proto",
    "skywire/pex/v1/pex.proto",
    "skywire/chain/v1/chain.proto",
    "skywire/chain/v1/api.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(PROTO_ROOT);
    for schema in SCHEMAS {
        println!("cargo:rerun-if-changed={}", root.join(schema).display());
    }
    let descriptors = protox::compile(SCHEMAS, [&root])?;
    let mut config = prost_build::Config::new();
    config.bytes(["."]);
    tonic_prost_build::configure().compile_fds_with_config(descriptors, config)?;
    Ok(())
}
