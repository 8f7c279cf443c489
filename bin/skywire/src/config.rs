//! Every setting of `skywire node` and `skywire serve`: one typed [`Config`],
//! layered from lowest to highest precedence:
//!
//! 1. built-in defaults (the `DEFAULT_*` constants);
//! 2. a TOML file, `--config FILE` or `$SKYWIRE_CONFIG` (none by default; a
//!    file named but missing is an error);
//! 3. `SKYWIRE_<KEY>` environment variables (`SKYWIRE_LISTEN`,
//!    `SKYWIRE_NATS_URL`, ...); an empty one counts as unset;
//! 4. command-line flags, only those given.
//!
//! Keys are flat and named like the long flags with `_` for `-`:
//! `max_connections` in the file is `SKYWIRE_MAX_CONNECTIONS` and
//! `--max-connections`. Both commands read the same file, and each ignores
//! the keys it has no use for (`skywire node` runs no cluster, so the URLs,
//! `key_file`, `replica` and `cluster` are for `skywire serve`).
//! `docs/skywire.example.toml` shows every key. An unknown key, or a value of
//! the wrong type, is an error naming the key and the layer it came from.
//!
//! The flags are declared here too, next to the keys they override:
//! [`CommonArgs`], [`SwpArgs`] and [`ClusterArgs`], flattened into the
//! commands by [`crate::node`], which hands them to [`Config::load`].

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use figment::providers::{Format as _, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::Deserialize;
use skywire_wire::node::DEFAULT_MAX_CONNECTIONS;

use crate::peer::PeerAddr;

/// Default SWP/1 listen address: every interface, the port peers expect.
pub(crate) const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7337));

/// Default admin gRPC address: loopback only, it can ban and dial.
pub(crate) const DEFAULT_ADMIN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 7338));

/// Default HTTP address for /metrics, /healthz and /readyz: loopback only.
pub(crate) const DEFAULT_HTTP: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 7339));

/// Default NATS server: a local one on its standard port.
pub(crate) const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";

/// Default Redis server: a local one on its standard port.
pub(crate) const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// Default PostgreSQL database: a local one on its standard port.
pub(crate) const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/skywire";

/// Default block interval of a publisher: Skycoin's ten seconds.
pub(crate) const DEFAULT_BLOCK_INTERVAL_MS: u64 = 10_000;

/// Every key of [`Config`]. The environment layer reads `SKYWIRE_<KEY>` for
/// these only, so that unrelated variables (`SKYWIRE_OTLP_ENDPOINT`,
/// `SKYWIRE_CONFIG`) are not unknown keys.
const KEYS: [&str; 17] = [
    "data_dir",
    "admin",
    "http",
    "listen",
    "max_connections",
    "connect",
    "bootstrap",
    "advertise",
    "nats_url",
    "redis_url",
    "database_url",
    "key_file",
    "replica",
    "cluster",
    "chain",
    "chain_publisher_key",
    "block_interval_ms",
];

/// Keys whose environment value is parsed: a number, or a list written
/// `[a, b]`. Every other value is taken verbatim as a string, so that
/// `SKYWIRE_REPLICA=1` is the replica "1", not a number.
const PARSED_FROM_ENV: [&str; 5] = [
    "max_connections",
    "connect",
    "bootstrap",
    "advertise",
    "block_interval_ms",
];

/// Every setting of `skywire node` and `skywire serve`, after layering.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Config {
    /// Data directory: holds `node.key` and, embedded, the database.
    pub(crate) data_dir: PathBuf,
    /// Where to serve the admin gRPC API (pool).
    pub(crate) admin: SocketAddr,
    /// Where to serve /metrics, /healthz and /readyz.
    pub(crate) http: SocketAddr,
    /// Where to accept SWP/1 connections.
    pub(crate) listen: SocketAddr,
    /// Concurrent SWP/1 connections, inbound and outbound.
    pub(crate) max_connections: usize,
    /// Peers to connect to and keep connected.
    pub(crate) connect: Vec<PeerAddr>,
    /// DHT nodes to join the network through.
    pub(crate) bootstrap: Vec<PeerAddr>,
    /// Endpoints to advertise in this node's record; empty: the listen
    /// address if it is a specific one, else the local address that routes
    /// to the first bootstrap node.
    pub(crate) advertise: Vec<SocketAddr>,
    /// NATS server (`serve`).
    pub(crate) nats_url: String,
    /// Redis server: presence, limits shared by replicas (`serve`).
    pub(crate) redis_url: String,
    /// PostgreSQL database: the pool's peer store (`serve pool`), the DHT's
    /// routing table (`serve dht`).
    pub(crate) database_url: String,
    /// The node key shared by all gateway replicas and the DHT (`serve
    /// gateway`, `serve dht`); `None`:
    /// `data_dir/node.key`, created if missing.
    pub(crate) key_file: Option<PathBuf>,
    /// This replica's id, unique in the cluster (`serve`); `None`: host name
    /// and a random suffix.
    pub(crate) replica: Option<String>,
    /// The cluster's name, when several share one NATS and Redis (`serve`).
    pub(crate) cluster: Option<String>,
    /// The chain spec file (`skywire chain new` writes one); `None`: no
    /// chain service runs.
    pub(crate) chain: Option<PathBuf>,
    /// The block publisher's key file: this node publishes the chain's
    /// blocks.
    pub(crate) chain_publisher_key: Option<PathBuf>,
    /// How often a publisher makes a block (if it has transactions), in
    /// milliseconds.
    pub(crate) block_interval_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: default_data_dir(),
            admin: DEFAULT_ADMIN,
            http: DEFAULT_HTTP,
            listen: DEFAULT_LISTEN,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            connect: Vec::new(),
            bootstrap: Vec::new(),
            advertise: Vec::new(),
            nats_url: DEFAULT_NATS_URL.to_owned(),
            redis_url: DEFAULT_REDIS_URL.to_owned(),
            database_url: DEFAULT_DATABASE_URL.to_owned(),
            key_file: None,
            replica: None,
            cluster: None,
            chain: None,
            chain_publisher_key: None,
            block_interval_ms: DEFAULT_BLOCK_INTERVAL_MS,
        }
    }
}

impl Config {
    /// Every layer: defaults, the file `common.config` names, the
    /// environment, then the flags given (`cluster`: for `skywire serve`).
    pub(crate) fn load(
        common: CommonArgs,
        swp: SwpArgs,
        cluster: Option<ClusterArgs>,
    ) -> anyhow::Result<Self> {
        let mut config = Self::below_flags(common.config.as_deref())?;
        common.apply(&mut config);
        swp.apply(&mut config);
        if let Some(cluster) = cluster {
            cluster.apply(&mut config);
        }
        Ok(config)
    }

    /// Defaults, then `file` if given, then the environment.
    fn below_flags(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut figment = Figment::new();
        if let Some(path) = file {
            // Checked here so that the error names the file plainly.
            std::fs::metadata(path)
                .with_context(|| format!("cannot read the config file {}", path.display()))?;
            figment = figment.merge(ConfigFile(path.to_owned()));
        }
        let config = figment
            .merge(Environment)
            .extract()
            .context("invalid configuration")?;
        Ok(config)
    }
}

/// `~/.skywire`, else `./skywire-data`.
pub(crate) fn default_data_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".skywire"))
        .unwrap_or_else(|| PathBuf::from("skywire-data"))
}

/// The config file: TOML, with errors naming keys as they are written there.
struct ConfigFile(PathBuf);

impl Provider for ConfigFile {
    fn metadata(&self) -> Metadata {
        Metadata::from("(config file)", self.0.as_path())
            .interpolater(|_: &Profile, path: &[&str]| path.join("."))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Toml::file_exact(&self.0).data()
    }
}

/// The `SKYWIRE_<KEY>` environment variables, with errors naming the
/// variable.
struct Environment;

impl Provider for Environment {
    fn metadata(&self) -> Metadata {
        Metadata::named("the environment").interpolater(|_: &Profile, path: &[&str]| {
            env_var(path.first().copied().unwrap_or_default())
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for key in KEYS {
            let name = env_var(key);
            let Some(value) = std::env::var_os(&name).filter(|v| !v.is_empty()) else {
                continue;
            };
            let value = value
                .into_string()
                .map_err(|_| figment::Error::from(format!("{name} is not valid UTF-8")))?;
            let value = if PARSED_FROM_ENV.contains(&key) {
                let Ok(parsed) = value.parse::<Value>();
                parsed
            } else {
                Value::from(value)
            };
            dict.insert(key.to_owned(), value);
        }
        Ok(Profile::Default.collect(dict))
    }
}

/// `max_connections` → `SKYWIRE_MAX_CONNECTIONS`.
fn env_var(key: &str) -> String {
    format!("SKYWIRE_{}", key.to_ascii_uppercase())
}

/// Flags of every command that runs services. Each overrides its key in the
/// file and the environment, and only when given; so clap knows no defaults,
/// and the help states them.
#[derive(Debug, Args)]
pub(crate) struct CommonArgs {
    /// TOML config file (keys: docs/skywire.example.toml); SKYWIRE_*
    /// variables and flags override it.
    #[arg(long, env = "SKYWIRE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (holds node.key and, embedded, the database)
    /// [env: SKYWIRE_DATA_DIR] [default: ~/.skywire]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Where to serve the admin gRPC API (pool); loopback by default
    /// [env: SKYWIRE_ADMIN] [default: 127.0.0.1:7338]
    #[arg(long, value_name = "HOST:PORT")]
    admin: Option<SocketAddr>,
    /// Where to serve /metrics, /healthz and /readyz
    /// [env: SKYWIRE_HTTP] [default: 127.0.0.1:7339]
    #[arg(long, value_name = "HOST:PORT")]
    http: Option<SocketAddr>,
    /// The chain to follow: a chain spec file (`skywire chain new`)
    /// [env: SKYWIRE_CHAIN] [default: none, no chain service]
    #[arg(long, value_name = "FILE")]
    chain: Option<PathBuf>,
    /// Publish the chain's blocks with this block publisher key file
    /// [env: SKYWIRE_CHAIN_PUBLISHER_KEY] [default: none, follow only]
    #[arg(long, value_name = "FILE")]
    chain_publisher_key: Option<PathBuf>,
    /// How often a publisher makes a block, if it has transactions
    /// [env: SKYWIRE_BLOCK_INTERVAL_MS] [default: 10000]
    #[arg(long, value_name = "MS")]
    block_interval_ms: Option<u64>,
}

impl CommonArgs {
    /// Sets the keys whose flags were given.
    fn apply(self, config: &mut Config) {
        let Self {
            config: _,
            data_dir,
            admin,
            http,
            chain,
            chain_publisher_key,
            block_interval_ms,
        } = self;
        set(&mut config.data_dir, data_dir);
        set(&mut config.admin, admin);
        set(&mut config.http, http);
        set(&mut config.chain, chain.map(Some));
        set(
            &mut config.chain_publisher_key,
            chain_publisher_key.map(Some),
        );
        set(&mut config.block_interval_ms, block_interval_ms);
    }
}

/// Flags of commands that hold SWP/1 connections.
#[derive(Debug, Args)]
pub(crate) struct SwpArgs {
    /// Where to accept SWP/1 connections
    /// [env: SKYWIRE_LISTEN] [default: 0.0.0.0:7337]
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<SocketAddr>,
    /// Concurrent connections, inbound and outbound
    /// [env: SKYWIRE_MAX_CONNECTIONS] [default: 10000]
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// Peers to connect to and keep connected, as PUBKEY@HOST:PORT
    /// (repeatable; replaces the list of the file or the environment)
    /// [env: SKYWIRE_CONNECT, as "[PEER, PEER]"]
    #[arg(long, value_name = "PEER")]
    connect: Vec<PeerAddr>,
    /// DHT nodes to join through, as PUBKEY@HOST:PORT (repeatable;
    /// replaces the list of the file or the environment)
    /// [env: SKYWIRE_BOOTSTRAP, as "[PEER, PEER]"]
    #[arg(long, value_name = "PEER")]
    bootstrap: Vec<PeerAddr>,
    /// Endpoints to advertise in this node's DHT record, IP:PORT
    /// (repeatable) [env: SKYWIRE_ADVERTISE, as "[IP:PORT]"]
    /// [default: the listen address, if not a wildcard]
    #[arg(long, value_name = "IP:PORT")]
    advertise: Vec<SocketAddr>,
}

impl SwpArgs {
    /// Sets the keys whose flags were given.
    fn apply(self, config: &mut Config) {
        let Self {
            listen,
            max_connections,
            connect,
            bootstrap,
            advertise,
        } = self;
        set(&mut config.listen, listen);
        set(&mut config.max_connections, max_connections);
        if !connect.is_empty() {
            config.connect = connect;
        }
        if !bootstrap.is_empty() {
            config.bootstrap = bootstrap;
        }
        if !advertise.is_empty() {
            config.advertise = advertise;
        }
    }
}

/// Flags of `skywire serve`: where the cluster's NATS, Redis and PostgreSQL
/// are, and who this replica is.
#[derive(Debug, Args)]
pub(crate) struct ClusterArgs {
    /// NATS server
    /// [env: SKYWIRE_NATS_URL] [default: nats://127.0.0.1:4222]
    #[arg(long, value_name = "URL")]
    nats_url: Option<String>,
    /// Redis server (presence, limits shared by replicas)
    /// [env: SKYWIRE_REDIS_URL] [default: redis://127.0.0.1:6379]
    #[arg(long, value_name = "URL")]
    redis_url: Option<String>,
    /// PostgreSQL database (the pool's peer store, the DHT's routing table).
    // The help is spelled out here: rustdoc takes `[default: …@…]` in a doc
    // comment for a broken link.
    #[arg(
        long,
        value_name = "URL",
        help = "PostgreSQL database (the pool's peer store, the DHT's routing table) \
                [env: SKYWIRE_DATABASE_URL] [default: postgres://postgres@127.0.0.1:5432/skywire]"
    )]
    database_url: Option<String>,
    /// The node key shared by all gateway replicas and the DHT
    /// [env: SKYWIRE_KEY_FILE] [default: DATA_DIR/node.key, created if missing]
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// This replica's id, unique in the cluster
    /// [env: SKYWIRE_REPLICA] [default: host name and a random suffix]
    #[arg(long, value_name = "ID")]
    replica: Option<String>,
    /// The cluster's name, when several share one NATS and Redis: its bus
    /// subjects live under it and its Redis keys under `sw:<name>:`
    /// [env: SKYWIRE_CLUSTER] [default: none]
    #[arg(long, value_name = "NAME")]
    cluster: Option<String>,
}

impl ClusterArgs {
    /// Sets the keys whose flags were given.
    fn apply(self, config: &mut Config) {
        let Self {
            nats_url,
            redis_url,
            database_url,
            key_file,
            replica,
            cluster,
        } = self;
        set(&mut config.nats_url, nats_url);
        set(&mut config.redis_url, redis_url);
        set(&mut config.database_url, database_url);
        set(&mut config.key_file, key_file.map(Some));
        set(&mut config.replica, replica.map(Some));
        set(&mut config.cluster, cluster.map(Some));
    }
}

/// Overrides `key` with a flag's value, if the flag was given.
fn set<T>(key: &mut T, flag: Option<T>) {
    if let Some(value) = flag {
        *key = value;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use clap::{CommandFactory as _, Parser};
    use figment::Jail;

    use super::*;

    /// A valid node id (the secp256k1 generator point).
    const PEER_KEY: &str = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";

    /// Every flag that overrides a key: `skywire serve`'s own.
    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        service: crate::node::ServiceArgs,
    }

    /// Runs `test` in a fresh working directory with no environment
    /// variables (figment's `Jail`: one at a time, everything restored
    /// after).
    #[allow(clippy::result_large_err)] // `Jail` takes figment's `Result`.
    fn jailed(test: impl FnOnce(&mut Jail)) {
        Jail::expect_with(|jail| {
            jail.clear_env();
            test(jail);
            Ok(())
        });
    }

    /// Every layer, with `flags` on the command line.
    fn load(flags: &[&str]) -> anyhow::Result<Config> {
        let flags = Flags::try_parse_from(std::iter::once("skywire").chain(flags.iter().copied()))?;
        flags.service.config()
    }

    /// The error of a `load` that must fail, with its causes.
    fn load_error(flags: &[&str]) -> String {
        format!("{:#}", load(flags).unwrap_err())
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn peer(port: u16) -> PeerAddr {
        format!("{PEER_KEY}@127.0.0.1:{port}").parse().unwrap()
    }

    #[test]
    fn defaults_without_file_environment_or_flags() {
        jailed(|jail| {
            let config = load(&[]).unwrap();
            assert_eq!(config.data_dir, PathBuf::from("skywire-data"));
            assert_eq!(config.admin, DEFAULT_ADMIN);
            assert_eq!(config.http, DEFAULT_HTTP);
            assert_eq!(config.listen, DEFAULT_LISTEN);
            assert_eq!(config.max_connections, DEFAULT_MAX_CONNECTIONS);
            assert!(config.connect.is_empty());
            assert_eq!(config.nats_url, DEFAULT_NATS_URL);
            assert_eq!(config.redis_url, DEFAULT_REDIS_URL);
            assert_eq!(config.database_url, DEFAULT_DATABASE_URL);
            assert_eq!(config.key_file, None);
            assert_eq!(config.replica, None);
            assert_eq!(config.cluster, None);

            jail.set_env("HOME", "/home/me");
            assert_eq!(
                load(&[]).unwrap().data_dir,
                PathBuf::from("/home/me/.skywire")
            );
        });
    }

    #[test]
    fn the_file_overrides_defaults() {
        jailed(|jail| {
            jail.create_file(
                "skywire.toml",
                &format!(
                    r#"
                    listen = "127.0.0.1:1000"
                    max_connections = 5
                    connect = ["{PEER_KEY}@127.0.0.1:1001"]
                    nats_url = "nats://file:4222"
                    replica = "from-file"
                    "#
                ),
            )
            .unwrap();
            let config = load(&["--config", "skywire.toml"]).unwrap();
            assert_eq!(config.listen, addr("127.0.0.1:1000"));
            assert_eq!(config.max_connections, 5);
            assert_eq!(config.connect, [peer(1001)]);
            assert_eq!(config.nats_url, "nats://file:4222");
            assert_eq!(config.replica.as_deref(), Some("from-file"));
            // Keys the file leaves out keep their defaults.
            assert_eq!(config.admin, DEFAULT_ADMIN);
            assert_eq!(config.redis_url, DEFAULT_REDIS_URL);
        });
    }

    #[test]
    fn the_environment_overrides_the_file() {
        jailed(|jail| {
            jail.create_file(
                "skywire.toml",
                r#"
                listen = "127.0.0.1:1000"
                nats_url = "nats://file:4222"
                redis_url = "redis://file:6379"
                "#,
            )
            .unwrap();
            jail.set_env("SKYWIRE_CONFIG", "skywire.toml");
            jail.set_env("SKYWIRE_LISTEN", "127.0.0.1:2000");
            jail.set_env("SKYWIRE_NATS_URL", "nats://env:4222");
            jail.set_env("SKYWIRE_CONNECT", format!("[{PEER_KEY}@127.0.0.1:2001]"));
            let config = load(&[]).unwrap();
            assert_eq!(config.listen, addr("127.0.0.1:2000"));
            assert_eq!(config.nats_url, "nats://env:4222");
            assert_eq!(config.connect, [peer(2001)]);
            // Not in the environment: the file's.
            assert_eq!(config.redis_url, "redis://file:6379");
        });
    }

    #[test]
    fn flags_override_the_environment_and_only_when_given() {
        jailed(|jail| {
            jail.create_file("skywire.toml", r#"http = "127.0.0.1:1003""#)
                .unwrap();
            jail.set_env("SKYWIRE_CONFIG", "skywire.toml");
            jail.set_env("SKYWIRE_LISTEN", "127.0.0.1:2000");
            jail.set_env("SKYWIRE_ADMIN", "127.0.0.1:2002");
            jail.set_env("SKYWIRE_MAX_CONNECTIONS", "7");
            jail.set_env("SKYWIRE_REPLICA", "from-env");
            jail.set_env("SKYWIRE_CONNECT", format!("[{PEER_KEY}@127.0.0.1:2001]"));
            let config = load(&[
                "--listen",
                "127.0.0.1:3000",
                "--replica",
                "from-flag",
                "--connect",
                &format!("{PEER_KEY}@127.0.0.1:3001"),
            ])
            .unwrap();
            assert_eq!(config.listen, addr("127.0.0.1:3000"));
            assert_eq!(config.replica.as_deref(), Some("from-flag"));
            assert_eq!(config.connect, [peer(3001)]);
            // Flags not given: the environment's, then the file's.
            assert_eq!(config.admin, addr("127.0.0.1:2002"));
            assert_eq!(config.max_connections, 7);
            assert_eq!(config.http, addr("127.0.0.1:1003"));
        });
    }

    #[test]
    fn the_config_flag_overrides_skywire_config() {
        jailed(|jail| {
            jail.create_file("a.toml", r#"replica = "a""#).unwrap();
            jail.create_file("b.toml", r#"replica = "b""#).unwrap();
            jail.set_env("SKYWIRE_CONFIG", "a.toml");
            let config = load(&["--config", "b.toml"]).unwrap();
            assert_eq!(config.replica.as_deref(), Some("b"));
        });
    }

    #[test]
    fn every_key_reads_its_variable() {
        jailed(|jail| {
            for (key, value) in [
                ("DATA_DIR", "/data"),
                ("ADMIN", "127.0.0.1:1"),
                ("HTTP", "127.0.0.1:2"),
                ("LISTEN", "127.0.0.1:3"),
                ("MAX_CONNECTIONS", "4"),
                (
                    "CONNECT",
                    &format!("[{PEER_KEY}@127.0.0.1:5, {PEER_KEY}@127.0.0.1:6]"),
                ),
                ("BOOTSTRAP", &format!("[{PEER_KEY}@127.0.0.1:7]")),
                ("ADVERTISE", "[192.0.2.1:8, 192.0.2.2:9]"),
                ("NATS_URL", "nats://n"),
                ("REDIS_URL", "redis://r"),
                ("DATABASE_URL", "postgres://d"),
                ("KEY_FILE", "/key"),
                // Verbatim: strings, though they look like a number and a bool.
                ("REPLICA", "1"),
                ("CLUSTER", "true"),
                ("CHAIN", "/chain.toml"),
                ("CHAIN_PUBLISHER_KEY", "/publisher.key"),
                ("BLOCK_INTERVAL_MS", "250"),
            ] {
                jail.set_env(format!("SKYWIRE_{key}"), value);
            }
            // Every field named, so that a new key breaks this test until
            // it is in `KEYS` and here.
            let Config {
                data_dir,
                admin,
                http,
                listen,
                max_connections,
                connect,
                bootstrap,
                advertise,
                nats_url,
                redis_url,
                database_url,
                key_file,
                replica,
                cluster,
                chain,
                chain_publisher_key,
                block_interval_ms,
            } = load(&[]).unwrap();
            assert_eq!(bootstrap, [peer(7)]);
            assert_eq!(advertise, [addr("192.0.2.1:8"), addr("192.0.2.2:9")]);
            assert_eq!(data_dir, PathBuf::from("/data"));
            assert_eq!(admin, addr("127.0.0.1:1"));
            assert_eq!(http, addr("127.0.0.1:2"));
            assert_eq!(listen, addr("127.0.0.1:3"));
            assert_eq!(max_connections, 4);
            assert_eq!(connect, [peer(5), peer(6)]);
            assert_eq!(nats_url, "nats://n");
            assert_eq!(redis_url, "redis://r");
            assert_eq!(database_url, "postgres://d");
            assert_eq!(key_file, Some(PathBuf::from("/key")));
            assert_eq!(replica.as_deref(), Some("1"));
            assert_eq!(cluster.as_deref(), Some("true"));
            assert_eq!(chain, Some(PathBuf::from("/chain.toml")));
            assert_eq!(chain_publisher_key, Some(PathBuf::from("/publisher.key")));
            assert_eq!(block_interval_ms, 250);
        });
    }

    #[test]
    fn unrelated_and_empty_variables_are_ignored() {
        jailed(|jail| {
            jail.set_env("SKYWIRE_OTLP_ENDPOINT", "http://collector:4317");
            jail.set_env("SKYWIRE_SOMETHING_ELSE", "1");
            jail.set_env("SKYWIRE_LISTEN", "");
            assert_eq!(load(&[]).unwrap().listen, DEFAULT_LISTEN);
        });
    }

    #[test]
    fn a_missing_config_file_is_an_error() {
        jailed(|jail| {
            let error = load_error(&["--config", "nowhere.toml"]);
            assert!(error.contains("config file nowhere.toml"), "{error}");
            jail.set_env("SKYWIRE_CONFIG", "elsewhere.toml");
            let error = load_error(&[]);
            assert!(error.contains("config file elsewhere.toml"), "{error}");
        });
    }

    #[test]
    fn an_unknown_key_in_the_file_is_named() {
        jailed(|jail| {
            jail.create_file("skywire.toml", r#"lisen = "127.0.0.1:1""#)
                .unwrap();
            let error = load_error(&["--config", "skywire.toml"]);
            assert!(error.contains("unknown field: found `lisen`"), "{error}");
            assert!(error.contains("skywire.toml"), "{error}");
        });
    }

    #[test]
    fn a_bad_value_in_the_file_names_the_key_and_the_file() {
        jailed(|jail| {
            jail.create_file("skywire.toml", r#"max_connections = "many""#)
                .unwrap();
            let error = load_error(&["--config", "skywire.toml"]);
            assert!(
                error.contains(r#"for key "max_connections" in skywire.toml"#),
                "{error}"
            );
            jail.create_file("skywire.toml", r#"listen = "nowhere""#)
                .unwrap();
            let error = load_error(&["--config", "skywire.toml"]);
            assert!(
                error.contains(r#"for key "listen" in skywire.toml"#),
                "{error}"
            );
            jail.create_file("skywire.toml", r#"connect = ["02aa@127.0.0.1:1"]"#)
                .unwrap();
            let error = load_error(&["--config", "skywire.toml"]);
            assert!(error.contains("bad node id"), "{error}");
            assert!(
                error.contains(r#"for key "connect.0" in skywire.toml"#),
                "{error}"
            );
            jail.create_file("skywire.toml", "listen = ").unwrap();
            let error = load_error(&["--config", "skywire.toml"]);
            assert!(error.contains("TOML parse error"), "{error}");
        });
    }

    #[test]
    fn a_bad_value_in_the_environment_names_the_variable() {
        jailed(|jail| {
            jail.set_env("SKYWIRE_MAX_CONNECTIONS", "many");
            let error = load_error(&[]);
            assert!(
                error.contains(r#"for key "SKYWIRE_MAX_CONNECTIONS" in the environment"#),
                "{error}"
            );
            jail.set_env("SKYWIRE_MAX_CONNECTIONS", "1");
            jail.set_env("SKYWIRE_CONNECT", format!("{PEER_KEY}@127.0.0.1:1"));
            let error = load_error(&[]);
            assert!(
                error.contains(r#"for key "SKYWIRE_CONNECT" in the environment"#),
                "{error}"
            );
        });
    }

    #[test]
    fn the_example_file_shows_every_key_with_its_default() {
        let example = include_str!("../../../docs/skywire.example.toml");
        for key in KEYS {
            assert!(
                example.contains(&format!("\n{key} = "))
                    || example.contains(&format!("\n# {key} = ")),
                "{key}"
            );
        }
        jailed(|jail| {
            jail.create_file("skywire.toml", example).unwrap();
            let config = load(&["--config", "skywire.toml"]).unwrap();
            assert_eq!(config.admin, DEFAULT_ADMIN);
            assert_eq!(config.http, DEFAULT_HTTP);
            assert_eq!(config.listen, DEFAULT_LISTEN);
            assert_eq!(config.max_connections, DEFAULT_MAX_CONNECTIONS);
            assert!(config.connect.is_empty());
            assert_eq!(config.nats_url, DEFAULT_NATS_URL);
            assert_eq!(config.redis_url, DEFAULT_REDIS_URL);
            assert_eq!(config.database_url, DEFAULT_DATABASE_URL);
            assert_eq!(config.block_interval_ms, DEFAULT_BLOCK_INTERVAL_MS);
            assert_eq!(config.chain, None);
        });
    }

    #[test]
    fn the_help_states_each_default() {
        let mut cli = crate::Cli::command();
        let serve = cli.find_subcommand_mut("serve").unwrap();
        let help = serve.render_help().to_string();
        for default in [
            DEFAULT_LISTEN.to_string(),
            DEFAULT_ADMIN.to_string(),
            DEFAULT_HTTP.to_string(),
            DEFAULT_MAX_CONNECTIONS.to_string(),
            DEFAULT_NATS_URL.to_owned(),
            DEFAULT_REDIS_URL.to_owned(),
            DEFAULT_DATABASE_URL.to_owned(),
        ] {
            assert!(
                help.contains(&format!("[default: {default}]")),
                "{default}: {help}"
            );
        }
        for key in KEYS {
            assert!(
                help.contains(&format!("[env: {}", env_var(key))),
                "{key}: {help}"
            );
        }
    }
}
