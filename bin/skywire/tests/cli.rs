//! The `skywire` binary end to end: keys, a node's lifecycle and signals,
//! ping and bench against it, two nodes joined with `--connect`, and a node
//! configured by a file, the environment and flags.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt as _;

use base64::Engine as _;
use common::{NodeProcess, Process, run};

fn golden(name: &str) -> serde_json::Value {
    let path = format!(
        "{}/../../testdata/skycoin-cipher/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn keys_derive_reproduces_skycoin_wallets() {
    let golden = golden("seed-0000.golden");
    let seed = base64::engine::general_purpose::STANDARD
        .decode(golden["seed"].as_str().unwrap())
        .unwrap();
    let seed = String::from_utf8(seed).unwrap();
    let out = run(&["keys", "derive", "--seed", &seed, "--count", "5"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    for (line, key) in lines.iter().zip(golden["keys"].as_array().unwrap()) {
        for field in ["secret", "public", "address"] {
            assert_eq!(line[field], key[field], "{field}");
        }
    }
}

#[test]
fn node_lifecycle_ping_bench_and_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = NodeProcess::start(dir.path(), &[]);
    let key_file = dir.path().join("node.key");
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let shown: serde_json::Value = serde_json::from_slice(
        &run(&["keys", "show", "--data-dir", dir.path().to_str().unwrap()]).stdout,
    )
    .unwrap();
    assert!(node.dial.starts_with(shown["public"].as_str().unwrap()));
    // The node logs its node id and address at start.
    assert!(
        node.startup
            .contains(&format!("node_id={}", shown["public"].as_str().unwrap())),
        "{}",
        node.startup
    );
    assert!(
        node.startup
            .contains(&format!("address={}", shown["address"].as_str().unwrap())),
        "{}",
        node.startup
    );

    let out = run(&["ping", &node.dial, "-c", "3", "-i", "0.05", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ping: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ping["count"], 3);

    let out = run(&["bench", &node.dial, "--duration", "1", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bench: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(bench["echoed_bytes"].as_u64().unwrap() > 0);
    assert!(bench["round_trips_per_sec"].as_f64().unwrap() > 0.0);

    node.signal("-TERM");
    assert!(node.wait_exit(), "node exits 0 on SIGTERM");

    // Restart: same key.
    let mut again = NodeProcess::start(dir.path(), &[]);
    assert_eq!(again.dial.split('@').next(), node.dial.split('@').next());
    again.signal("-INT");
    assert!(again.wait_exit(), "node exits 0 on SIGINT");
}

#[test]
fn a_readable_key_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["keys", "derive", "--seed", "x", "--count", "1"]);
    let key: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let path = dir.path().join("node.key");
    std::fs::write(&path, key["secret"].as_str().unwrap()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run(&[
        "node",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"));
}

#[test]
fn a_second_node_connects_with_connect() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = NodeProcess::start(a_dir.path(), &[]);
    let b = NodeProcess::start(b_dir.path(), &["--connect", &a.dial]);
    b.wait_for("connected");
    a.wait_for("peer connected");
}

#[test]
fn a_restarted_node_keeps_its_peers_and_redials_them() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let b = NodeProcess::start(b_dir.path(), &[]);
    let b_key = b.dial.split('@').next().unwrap().to_owned();
    let mut a = NodeProcess::start(a_dir.path(), &["--connect", &b.dial]);
    a.wait_for("peer connected");
    a.signal("-TERM");
    assert!(a.wait_exit());
    // No --connect this time: the peer store (SQLite in the data dir)
    // remembers B, and the pool dials it again.
    let a = NodeProcess::start(a_dir.path(), &[]);
    let line = a.wait_for("peer connected");
    assert!(line.contains(&b_key), "{line}");
}

#[test]
fn bad_arguments_fail_clearly() {
    let out = run(&["ping", "not-a-peer"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("PUBKEY@HOST:PORT"));
    let out = run(&["ping", "02aa@127.0.0.1:1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("node id"));
}

#[test]
fn each_service_has_its_own_binary_with_the_serve_flags() {
    for (binary, service) in [(common::GATEWAY_BIN, "gateway"), (common::POOL_BIN, "pool")] {
        let help = std::process::Command::new(binary)
            .arg("--help")
            .output()
            .unwrap();
        assert!(help.status.success(), "{binary}");
        let text = String::from_utf8_lossy(&help.stdout);
        assert!(
            text.contains(&format!("Usage: skywire-{service} [OPTIONS]")),
            "{text}"
        );
        assert!(text.contains(&format!("skywire serve {service}")), "{text}");
        for flag in [
            "--data-dir",
            "--listen",
            "--admin",
            "--nats-url",
            "--cluster",
        ] {
            assert!(text.contains(flag), "{binary} has no {flag}:\n{text}");
        }
        // Bad settings fail as `skywire serve` does, before touching NATS.
        let bad = std::process::Command::new(binary)
            .args(["--listen", "nowhere"])
            .output()
            .unwrap();
        assert!(!bad.status.success(), "{binary}");
        assert!(
            String::from_utf8_lossy(&bad.stderr).contains("--listen"),
            "{}",
            String::from_utf8_lossy(&bad.stderr)
        );
    }
}

/// An address no interface of this machine has (TEST-NET-1): binding it
/// fails, so a node starts only if a higher layer replaced it.
const UNBINDABLE: &str = "192.0.2.1:9";

#[test]
fn a_config_file_sets_the_node_up_under_the_environment_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    // A port that was free a moment ago, to see the file's `listen` used.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let file = dir.path().join("skywire.toml");
    std::fs::write(
        &file,
        format!(
            "data_dir = {:?}\nlisten = \"127.0.0.1:{port}\"\nadmin = {UNBINDABLE:?}\nhttp = {UNBINDABLE:?}\n",
            data_dir.to_str().unwrap()
        ),
    )
    .unwrap();
    let mut node = Process::start(
        &["node", "--http", "127.0.0.1:0"],
        &[
            ("SKYWIRE_CONFIG", file.to_str().unwrap()),
            ("SKYWIRE_ADMIN", "127.0.0.1:0"),
        ],
    );
    // The environment's admin address and the flag's HTTP address won over
    // the file's; the file's listen address and data directory are used.
    let admin = node.word_after("admin API on ");
    assert!(admin.starts_with("127.0.0.1:"), "{admin}");
    let dial = node.word_after("dial it as ");
    assert!(dial.ends_with(&format!("@127.0.0.1:{port}")), "{dial}");
    assert!(data_dir.join("node.key").is_file());
    node.signal("-TERM");
    assert!(node.wait_exit(), "node exits 0 on SIGTERM");
}

#[test]
fn a_bad_config_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("skywire.toml");
    let file_arg = file.to_str().unwrap();
    let fails_with = |needles: &[&str]| {
        let out = run(&["node", "--config", file_arg]);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        for needle in needles {
            assert!(stderr.contains(needle), "{needle}: {stderr}");
        }
    };
    fails_with(&["cannot read the config file", file_arg]);
    std::fs::write(&file, "lisen = \"127.0.0.1:0\"\n").unwrap();
    fails_with(&["unknown field: found `lisen`", "skywire.toml"]);
    std::fs::write(&file, "max_connections = \"lots\"\n").unwrap();
    fails_with(&["for key \"max_connections\" in", "skywire.toml"]);
}
