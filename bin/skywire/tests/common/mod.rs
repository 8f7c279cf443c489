//! Running the real `skywire` binary in tests: a child process whose log
//! lines arrive on a channel, so tests wait for what it says.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_skywire");

/// The gateway's own binary (`skywire serve gateway` under its own name).
pub const GATEWAY_BIN: &str = env!("CARGO_BIN_EXE_skywire-gateway");

/// The pool's own binary (`skywire serve pool` under its own name).
pub const POOL_BIN: &str = env!("CARGO_BIN_EXE_skywire-pool");

/// The DHT's own binary (`skywire serve dht` under its own name).
pub const DHT_BIN: &str = env!("CARGO_BIN_EXE_skywire-dht");

/// The chain's own binary (`skywire serve chain` under its own name).
pub const CHAIN_BIN: &str = env!("CARGO_BIN_EXE_skywire-chain");

/// A running `skywire` child.
pub struct Process {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every line received so far (the last [`MAX_HISTORY`]), for
    /// [`Process::said`].
    history: std::sync::Mutex<std::collections::VecDeque<String>>,
}

/// Log lines a [`Process`] remembers for [`Process::said`].
const MAX_HISTORY: usize = 10_000;

impl Process {
    /// Starts `skywire ARGS` with `env` set, logging without color at info,
    /// or as `TEST_RUST_LOG` says (a `RUST_LOG` filter).
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_bin(BIN, args, env)
    }

    /// Starts `binary ARGS` (one of ours) like [`Process::start`].
    pub fn start_bin(binary: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(binary);
        command
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("TEST_RUST_LOG").unwrap_or_else(|_| "info".to_owned()),
            )
            .env("NO_COLOR", "1")
            .env_remove("SKYWIRE_ADMIN")
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap();
        let (tx, lines) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        // `TEST_LOG=1` shows every process's log, prefixed with its pid.
        let echo = std::env::var_os("TEST_LOG").map(|_| child.id());
        std::thread::spawn(move || {
            // Drains the log for the process's whole life, so it never
            // blocks on a full pipe.
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(pid) = echo {
                    eprintln!("[{pid}] {line}");
                }
                if tx.send(strip_ansi(&line)).is_err() {
                    return;
                }
            }
        });
        Self {
            child,
            lines,
            history: std::sync::Mutex::default(),
        }
    }

    /// Waits up to 10 s for a new log line containing `needle` (lines
    /// before it are passed over); returns it.
    pub fn wait_for(&self, needle: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("no log line with {needle:?}"));
            {
                let mut history = self.history.lock().unwrap();
                if history.len() >= MAX_HISTORY {
                    history.pop_front();
                }
                history.push_back(line.clone());
            }
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// Waits up to 10 s until the process has logged a line containing
    /// `needle` at any point, even one an earlier wait passed over: for
    /// states reached once whose line may come before others a test waits
    /// for first.
    pub fn said(&self, needle: &str) -> String {
        let earlier = self
            .history
            .lock()
            .unwrap()
            .iter()
            .find(|line| line.contains(needle))
            .cloned();
        earlier.unwrap_or_else(|| self.wait_for(needle))
    }

    /// Waits for a line containing `needle` and returns the word after it.
    pub fn word_after(&self, needle: &str) -> String {
        let line = self.wait_for(needle);
        line.split(needle)
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_default()
            .to_string()
    }

    /// Sends a signal (`-TERM`, `-KILL`, ...).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits up to 10 s for the process to exit; returns whether it succeeded.
    pub fn wait_exit(&mut self) -> bool {
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("process did not exit");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `skywire ARGS`, run to completion.
pub fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("SKYWIRE_ADMIN")
        .output()
        .unwrap()
}

/// A `skywire node` on loopback with every port chosen by the kernel.
pub struct NodeProcess {
    /// The process.
    pub process: Process,
    /// `PUBKEY@HOST:PORT` from the startup line.
    pub dial: String,
    /// The startup line itself.
    pub startup: String,
    /// `HOST:PORT` of its admin API.
    pub admin: String,
}

impl NodeProcess {
    /// `skywire node --data-dir DIR` plus `extra` flags; returns once it
    /// announced itself.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Self {
        let dir = data_dir.to_str().unwrap();
        let mut args = vec!["node", "--data-dir", dir, "--listen", "127.0.0.1:0"];
        args.extend(["--admin", "127.0.0.1:0", "--http", "127.0.0.1:0"]);
        args.extend(extra);
        let process = Process::start(&args, &[]);
        let admin = process.word_after("admin API on ");
        let startup = process.wait_for("dial it as");
        let dial = startup
            .split("dial it as ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap()
            .to_string();
        Self {
            process,
            dial,
            startup,
            admin,
        }
    }
}

impl std::ops::Deref for NodeProcess {
    type Target = Process;

    fn deref(&self) -> &Process {
        &self.process
    }
}

impl std::ops::DerefMut for NodeProcess {
    fn deref_mut(&mut self) -> &mut Process {
        &mut self.process
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
