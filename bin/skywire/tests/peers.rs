//! `skywire peers` end to end: real `skywire node` processes, each serving
//! its admin API on a port of its own, driven through the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{BIN, NodeProcess, run};

use serde_json::Value;
use skywire_pool::store::now_ms;

/// How long a test waits for a node to log a line or for the pool to see a
/// change.
const WAIT: Duration = Duration::from_secs(15);

/// A `skywire node` child on loopback, every port chosen by the kernel.
struct Node {
    /// The process, killed when the test drops it.
    _process: NodeProcess,
    /// `PUBKEY@HOST:PORT` from the startup line.
    dial: String,
    /// The hex public key.
    public: String,
    /// The Skycoin address.
    address: String,
    /// `HOST:PORT` of the admin API, from its log line.
    admin: String,
}

impl Node {
    fn start(data_dir: &Path) -> Self {
        Self::start_with(data_dir, &[])
    }

    /// `skywire node` with `extra` flags.
    fn start_with(data_dir: &Path, extra: &[&str]) -> Self {
        let node = NodeProcess::start(data_dir, extra);
        let keys = run(&["keys", "show", "--data-dir", data_dir.to_str().unwrap()]);
        let keys: Value = serde_json::from_slice(&keys.stdout).unwrap();
        Self {
            public: keys["public"].as_str().unwrap().to_owned(),
            address: keys["address"].as_str().unwrap().to_owned(),
            dial: node.dial.clone(),
            admin: node.admin.clone(),
            _process: node,
        }
    }

    /// Waits until the node's DHT joined the network.
    fn joined(&self) {
        self._process.said("DHT joined");
    }

    /// `skywire peers ARGS --admin <this node>`.
    fn peers(&self, args: &[&str]) -> Output {
        let out = Command::new(BIN)
            .arg("peers")
            .args(args)
            .args(["--admin", &self.admin])
            .env_remove("SKYWIRE_ADMIN")
            .output()
            .unwrap();
        eprintln!(
            "$ skywire peers {} --admin {}\n{}{}",
            args.join(" "),
            self.admin,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// `skywire peers ARGS --json`, which must succeed, as JSON.
    fn peers_json(&self, args: &[&str]) -> Value {
        let out = self.peers(&[args, &["--json"][..]].concat());
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// This node's record of the peer with `address`, once `check` holds for
    /// it (polling `peers list --json`).
    fn wait_peer(&self, address: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let list = self.peers_json(&["list"]);
            let peer = list["peers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["address"] == address)
                .cloned();
            if let Some(peer) = peer.filter(|p| check(p)) {
                return peer;
            }
            assert!(Instant::now() < deadline, "{address} never {what}: {list}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn connect_list_send_ban_unban_disconnect() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Node::start(a_dir.path());
    let b = Node::start(b_dir.path());

    // Connect: the peer comes back as JSON.
    let dialed = a.peers_json(&["connect", &b.dial]);
    assert_eq!(dialed["ok"], true, "{dialed}");
    assert_eq!(dialed["peer"]["address"], b.address.as_str(), "{dialed}");
    assert_eq!(dialed["peer"]["node_id"], b.public.as_str(), "{dialed}");

    // List: B connected, with every field.
    let peer = a.wait_peer(&b.address, "connected", |p| p["connected"] == true);
    assert_eq!(peer["node_id"], b.public.as_str());
    assert_eq!(peer["banned_until_ms"], 0);
    assert!(peer["last_seen_ms"].as_i64().unwrap() > 0, "{peer}");
    let b_port = b.dial.rsplit(':').next().unwrap();
    assert!(
        peer["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().ends_with(&format!(":{b_port}"))),
        "{peer}"
    );
    for field in ["gateway", "services", "failures", "score", "ban_reason"] {
        assert!(peer.get(field).is_some(), "{field} in {peer}");
    }

    // The human table, with the endpoint from the environment.
    let out = Command::new(BIN)
        .args(["peers", "list"])
        .env("SKYWIRE_ADMIN", &a.admin)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let table = stdout(&out);
    // `peers_table`'s unit test checks every column; here, that the table
    // is what `peers list` prints.
    let header = table.lines().next().unwrap();
    assert!(header.starts_with("ADDRESS"), "{table}");
    assert!(header.ends_with("SCORE"), "{table}");
    let row = table
        .lines()
        .find(|l| l.starts_with(&b.address))
        .unwrap_or_else(|| panic!("no row for {}: {table}", b.address));
    assert!(row.contains("connected"), "{row}");
    assert!(row.contains(" ago"), "{row}");

    // Send a message to B's echo/1.
    let out = a.peers(&["send", &b.address, "echo/1", "hello"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("ok sent 5 bytes to echo/1"));

    // Ban by address: stored with its length and reason, connection dropped.
    let before = now_ms();
    let out = a.peers(&["ban", &b.address, "--duration", "1h", "--reason", "testing"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with(&format!("ok banned {} for 1h", b.address)),
        "{}",
        stdout(&out)
    );
    let peer = a.wait_peer(&b.address, "banned and dropped", |p| {
        p["connected"] == false && p["banned_until_ms"].as_i64().unwrap() > 0
    });
    let until = peer["banned_until_ms"].as_i64().unwrap();
    assert!(
        until >= before + 3_600_000 && until <= now_ms() + 3_600_000,
        "{peer}"
    );
    assert_eq!(peer["ban_reason"], "testing");
    let table = stdout(&a.peers(&["list"]));
    let row = table.lines().find(|l| l.starts_with(&b.address)).unwrap();
    assert!(row.contains("banned until "), "{row}");

    // Unban by public key.
    assert_eq!(
        a.peers_json(&["unban", &b.public]),
        serde_json::json!({"ok": true})
    );
    a.wait_peer(&b.address, "unbanned", |p| p["banned_until_ms"] == 0);

    // Connect again, then disconnect.
    a.peers_json(&["connect", &b.dial]);
    a.wait_peer(&b.address, "reconnected", |p| p["connected"] == true);
    let out = a.peers(&["disconnect", &b.address]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        format!("ok disconnected {}", b.address)
    );
    a.wait_peer(&b.address, "disconnected", |p| p["connected"] == false);
}

#[test]
fn malformed_input_exits_1_with_the_status() {
    let dir = tempfile::tempdir().unwrap();
    let a = Node::start(dir.path());

    let out = a.peers(&["connect", "garbage"]);
    assert_eq!(out.status.code(), Some(1));
    let message = stderr(&out);
    assert!(message.contains("invalid argument: "), "{message}");
    assert!(message.contains("garbage"), "{message}");
    assert!(message.contains("PUBKEY@HOST:PORT"), "{message}");
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));

    // --json: the error as one JSON document on stdout.
    let out = a.peers(&["connect", "garbage", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let error: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(error["error"]["code"], "invalid_argument", "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("garbage"),
        "{error}"
    );

    let out = a.peers(&["ban", "nonsense"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("invalid argument: "),
        "{}",
        stderr(&out)
    );

    // A valid address the node has never seen.
    let unknown = run(&["keys", "derive", "--seed", "unknown", "--count", "1"]);
    let unknown: Value = serde_json::from_slice(&unknown.stdout).unwrap();
    let out = a.peers(&["unban", unknown["address"].as_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let error: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(error["error"]["code"], "not_found", "{error}");

    // Bad flags are usage errors, before any request.
    let out = a.peers(&["ban", &a.address, "--duration", "5x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid duration"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_unreachable_endpoint_fails_fast_and_names_it() {
    for json in [false, true] {
        let started = Instant::now();
        let mut args = vec!["peers", "list", "--admin", "127.0.0.1:1"];
        if json {
            args.push("--json");
        }
        let out = run(&args);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains("cannot reach the admin endpoint at 127.0.0.1:1"),
            "{}",
            stderr(&out)
        );
        if json {
            let error: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(error["error"]["code"], "unavailable");
            assert!(
                error["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("127.0.0.1:1"),
                "{error}"
            );
        } else {
            assert!(stdout(&out).is_empty());
        }
    }
    // The default endpoint comes from the environment too.
    let out = Command::new(BIN)
        .args(["peers", "unban", "x"])
        .env("SKYWIRE_ADMIN", "127.0.0.1:1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("127.0.0.1:1"), "{}", stderr(&out));
    // A malformed endpoint.
    let out = run(&["peers", "list", "--admin", "nowhere"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("invalid --admin"), "{}", stderr(&out));
}

/// The promise: A and C know only B; A finds C by address alone
/// (`peers resolve`), connects to it by address (`peers connect ADDRESS`),
/// and finds it as the provider of a service it announced.
#[test]
fn a_connects_to_c_by_address_knowing_only_b() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let b = Node::start(dirs[0].path());
    b.joined();
    let c = Node::start_with(dirs[1].path(), &["--bootstrap", &b.dial]);
    c.joined();
    let a = Node::start_with(dirs[2].path(), &["--bootstrap", &b.dial]);
    a.joined();
    let c_endpoint = c.dial.split_once('@').unwrap().1.to_owned();

    let resolved = a.peers_json(&["resolve", &c.address]);
    let record = &resolved["records"][0];
    assert_eq!(record["address"], c.address.as_str(), "{resolved}");
    assert_eq!(record["node_id"], c.public.as_str(), "{resolved}");
    assert_eq!(record["endpoints"][0], c_endpoint.as_str(), "{resolved}");
    let text = stdout(&a.peers(&["resolve", &c.address]));
    assert!(text.contains(&c_endpoint), "{text}");

    let dialed = a.peers_json(&["connect", &c.address]);
    assert_eq!(dialed["peer"]["address"], c.address.as_str(), "{dialed}");
    a.wait_peer(&c.address, "connected", |p| p["connected"] == true);

    // An address nobody knows: NotFound, exit 1.
    let nobody = run(&["keys", "derive", "--seed", "a node that never ran"]);
    let nobody: Value = serde_json::from_slice(&nobody.stdout).unwrap();
    let out = a.peers(&["resolve", nobody["address"].as_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let error: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(error["error"]["code"], "not_found", "{error}");
    let out = a.peers(&["resolve", "not-an-address", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let error: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(error["error"]["code"], "invalid_argument", "{error}");
}

/// Peer exchange between three `skywire node` processes: B keeps C
/// (`--connect`), A keeps only B; A learns C from B and its pool connects
/// to C on its own.
#[test]
fn a_learns_c_from_b_by_peer_exchange_and_connects_to_it() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let c = Node::start(dirs[0].path());
    let b = Node::start_with(dirs[1].path(), &["--connect", &c.dial]);
    b.wait_peer(&c.address, "connected", |p| p["connected"] == true);
    let a = Node::start_with(dirs[2].path(), &["--connect", &b.dial]);
    let c_endpoint = c.dial.split_once('@').unwrap().1.to_owned();
    let peer = a.wait_peer(&c.address, "connected", |p| p["connected"] == true);
    assert_eq!(peer["endpoints"][0], c_endpoint.as_str(), "{peer}");
}
