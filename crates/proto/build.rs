//! Compiles every schema under `proto/` with `protox` (pure Rust, no `protoc`).

use std::path::PathBuf;

const PROTO_ROOT: &str = "../../proto";
const SCHEMAS: &[&str] = &["skywire/wire/v1/control.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(PROTO_ROOT);
    for schema in SCHEMAS {
        println!("cargo:rerun-if-changed={}", root.join(schema).display());
    }
    let descriptors = protox::compile(SCHEMAS, [&root])?;
    prost_build::Config::new()
        .bytes(["."])
        .compile_fds(descriptors)?;
    Ok(())
}
