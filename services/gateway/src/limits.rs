//! Per-IP admission limits, held in the shared [`Kv`] so they hold across
//! replicas: a client that spreads its connections over every replica is
//! counted once.
//!
//! Two limits, checked in [`IpLimits::admit`] after an inbound peer's
//! handshake and before its Hello (through `Hooks::admit` of the wire node):
//!
//! - **New connections per IP per minute** ([`RateLimiter`], fixed window of
//!   [`NEW_CONNECTION_WINDOW`]); over it the peer gets
//!   `GoAway(REASON_RATE_LIMITED)`. Every admission attempt counts, also one
//!   then refused by the connection cap: a client retrying in a loop against
//!   a full cap is slowed to this rate.
//! - **Concurrent connections per IP** ([`ConnectionLimiter`]); over it the
//!   peer gets `GoAway(REASON_TOO_MANY_PEERS)`. Each admitted connection holds
//!   the member `"<gateway id>:<connection id>"` in its IP's set, with a TTL
//!   of [`CONNECTION_SLOT_TTL`] refreshed every [`CONNECTION_SLOT_REFRESH`]
//!   ([`IpLimits::keep_alive`]) and released when the connection ends
//!   ([`IpLimits::release`]); a crashed replica's slots expire within the TTL.
//!
//! IPv4-mapped IPv6 addresses count as their IPv4 address; other IPv6
//! addresses count per /64, since one host usually holds a whole /64.
//!
//! # When the store fails: fail open
//!
//! If the store errors or does not answer within [`ADMISSION_CHECK_TIMEOUT`]
//! (Redis down, black-holed, or the memory store full), the peer is
//! **admitted** unchecked, with a warning (at most one per
//! [`FAIL_OPEN_LOG_INTERVAL`]) and a count in [`IpLimits::fail_opens`]. These
//! limits protect against abuse; refusing every peer because Redis is down
//! would turn a cache outage into a network outage. A connection admitted
//! this way is still tracked, and the next refresh takes its slot once the
//! store answers again (the node's own connection cap still bounds the
//! total meanwhile).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use skywire_kv::{ConnectionLimiter, Kv, KvError, RateLimiter};
use skywire_service::sync::lock;
use skywire_wire::Reason;
use skywire_wire::driver::Refusal;
use skywire_wire::node::Admission;
use tokio_util::sync::CancellationToken;

/// Default cap on concurrent connections from one IP, across replicas. A
/// node normally needs one connection to a gateway; 16 leaves room for
/// several nodes behind one NAT and for reconnects racing the old
/// connection's close, while one address cannot hold more than a sliver of
/// a replica's 10 000 connections.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: u32 = 16;

/// Default cap on new connections from one IP per minute, across replicas:
/// one a second on average, ample for honest reconnects, and a handshake
/// flood from one address costs at most that many admissions.
pub const DEFAULT_NEW_CONNECTIONS_PER_IP_PER_MINUTE: u64 = 60;

/// The window of the new-connection rate.
pub const NEW_CONNECTION_WINDOW: Duration = Duration::from_secs(60);

/// How long a connection's slot counts without a refresh: a crashed
/// replica's connections stop counting within this.
pub const CONNECTION_SLOT_TTL: Duration = Duration::from_secs(60);

/// How often live connections refresh their slots: a third of
/// [`CONNECTION_SLOT_TTL`], so two refreshes may fail before a slot lapses.
pub const CONNECTION_SLOT_REFRESH: Duration = Duration::from_secs(20);

/// Longest one admission check (rate, then slot) may take before the peer
/// is admitted unchecked. A healthy Redis answers both in about a
/// millisecond; one second is far beyond that and below the wire node's own
/// two-second bound on admission hooks, so the gateway decides (and counts
/// the fail-open) itself.
pub const ADMISSION_CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// At most one fail-open warning per this interval; the others are logged
/// at debug level (all are counted), so a Redis outage does not flood logs.
pub const FAIL_OPEN_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Default key prefix: keys are `sw:conn:<ip>` (the connection count, as
/// [`skywire_kv::limits::CONN_PREFIX`]) and `sw:rate:newconn:<ip>` (the
/// new-connection rate, under [`skywire_kv::limits::RATE_PREFIX`]).
pub const DEFAULT_KEY_PREFIX: &str = "sw:";

/// Per-IP limit settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpLimitConfig {
    /// Concurrent inbound connections per IP, across replicas. Zero refuses
    /// every inbound peer.
    pub max_connections_per_ip: u32,
    /// New inbound connections per IP per minute, across replicas. Zero
    /// refuses every inbound peer.
    pub new_connections_per_ip_per_minute: u64,
    /// Whether peers from a loopback address skip both limits. Off by
    /// default: a reverse proxy or tunnel on the same host would otherwise
    /// make every client exempt.
    pub exempt_loopback: bool,
    /// Prefix of every key: `<prefix>conn:<ip>` and
    /// `<prefix>rate:newconn:<ip>`. Replicas that share limits need the same
    /// prefix; tests and deployments sharing one Redis use their own.
    pub key_prefix: String,
}

impl Default for IpLimitConfig {
    fn default() -> Self {
        Self {
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            new_connections_per_ip_per_minute: DEFAULT_NEW_CONNECTIONS_PER_IP_PER_MINUTE,
            exempt_loopback: false,
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
        }
    }
}

/// A connection's slot in its IP's count.
#[derive(Debug, Clone)]
struct Held {
    /// The IP key (see [`ip_key`]).
    ip: String,
    /// `"<gateway id>:<connection id>"`.
    member: String,
}

/// The per-IP limits of one gateway replica. Shared by its admission hook,
/// its disconnect hook and its refresh task.
#[derive(Debug)]
pub struct IpLimits {
    config: IpLimitConfig,
    replica: String,
    connections: ConnectionLimiter,
    new_connections: RateLimiter,
    /// Slots of admitted connections, by connection id: for refreshes and
    /// release. At most one per connection the node holds, so bounded by
    /// its connection cap.
    held: Mutex<HashMap<u64, Held>>,
    fail_opens: AtomicU64,
    last_warning: Mutex<Option<Instant>>,
}

impl IpLimits {
    /// The limits of replica `replica` over `kv` (Redis in cluster mode, so
    /// every replica counts alike).
    pub fn new(kv: Kv, replica: &str, config: IpLimitConfig) -> Self {
        let connections = ConnectionLimiter::new(
            kv.clone(),
            config.max_connections_per_ip,
            CONNECTION_SLOT_TTL,
        )
        .with_prefix(format!("{}conn:", config.key_prefix));
        let new_connections = RateLimiter::new(
            kv,
            config.new_connections_per_ip_per_minute,
            NEW_CONNECTION_WINDOW,
        )
        .with_prefix(format!("{}rate:newconn:", config.key_prefix));
        Self {
            config,
            replica: replica.to_owned(),
            connections,
            new_connections,
            held: Mutex::new(HashMap::new()),
            fail_opens: AtomicU64::new(0),
            last_warning: Mutex::new(None),
        }
    }

    /// The settings.
    pub fn config(&self) -> &IpLimitConfig {
        &self.config
    }

    /// Admission checks that failed open (store error or timeout) since
    /// start.
    pub fn fail_opens(&self) -> u64 {
        self.fail_opens.load(Ordering::Relaxed)
    }

    /// Connections holding (or, after a fail-open, owed) a slot now.
    pub fn held(&self) -> usize {
        lock(&self.held).len()
    }

    /// Decides whether the inbound peer `admission` may stay: first the
    /// new-connection rate (`REASON_RATE_LIMITED` over it), then a slot in
    /// its IP's connection count (`REASON_TOO_MANY_PEERS` when full). An
    /// admitted connection holds its slot until [`IpLimits::release`]. Fails
    /// open (see the module docs).
    pub async fn admit(&self, admission: &Admission) -> Result<(), Refusal> {
        let ip = admission.peer_addr.ip().to_canonical();
        if self.config.exempt_loopback && ip.is_loopback() {
            return Ok(());
        }
        let held = Held {
            ip: ip_key(ip),
            member: format!("{}:{}", self.replica, admission.connection_id),
        };
        // Recorded before asking the store, so that whatever happens next
        // (a timeout here, the node dropping this future) the release that
        // follows an admission finds it.
        lock(&self.held).insert(admission.connection_id, held.clone());
        let decision =
            match tokio::time::timeout(ADMISSION_CHECK_TIMEOUT, self.check(ip, &held)).await {
                Ok(Ok(decision)) => decision,
                Ok(Err(e)) => {
                    self.failed_open(&ip, &e.to_string());
                    Ok(())
                }
                Err(_) => {
                    let message = format!("no answer within {ADMISSION_CHECK_TIMEOUT:?}");
                    self.failed_open(&ip, &message);
                    Ok(())
                }
            };
        if decision.is_err() {
            lock(&self.held).remove(&admission.connection_id);
        }
        decision
    }

    /// The rate, then the slot; `Err` only when the store fails.
    async fn check(&self, ip: IpAddr, held: &Held) -> Result<Result<(), Refusal>, KvError> {
        let rate = self.new_connections.check(&held.ip).await?;
        if !rate.allowed {
            let message = format!(
                "more than {} new connections per minute from {ip}; retry in {} s",
                self.config.new_connections_per_ip_per_minute,
                rate.retry_after.as_secs_f64().ceil(),
            );
            return Ok(Err(Refusal {
                reason: Reason::RateLimited,
                message,
            }));
        }
        if self.connections.acquire(&held.ip, &held.member).await? {
            Ok(Ok(()))
        } else {
            let message = format!(
                "at the limit of {} connections from {ip}",
                self.config.max_connections_per_ip
            );
            Ok(Err(Refusal {
                reason: Reason::TooManyPeers,
                message,
            }))
        }
    }

    /// Frees the slot of connection `connection_id` (admitted by
    /// [`IpLimits::admit`]); a connection without one is ignored. If the
    /// store fails, the slot lapses within [`CONNECTION_SLOT_TTL`].
    pub async fn release(&self, connection_id: u64) {
        let Some(held) = lock(&self.held).remove(&connection_id) else {
            return;
        };
        if let Err(e) = self.connections.release(&held.ip, &held.member).await {
            tracing::warn!(
                error = %e,
                ip = %held.ip,
                "cannot release a connection slot; it lapses within its TTL",
            );
        }
    }

    /// Refreshes every held slot once. A slot is taken again, not merely
    /// extended, since after a store outage it may be gone; one that no
    /// longer fits (others took the places meanwhile) stays owed and is
    /// retried next time: the connection is not dropped.
    pub async fn refresh(&self) {
        let held: Vec<(u64, Held)> = lock(&self.held)
            .iter()
            .map(|(id, held)| (*id, held.clone()))
            .collect();
        for (id, slot) in held {
            match self.connections.acquire(&slot.ip, &slot.member).await {
                Ok(true) => {}
                Ok(false) => tracing::debug!(
                    ip = %slot.ip,
                    member = %slot.member,
                    "connection slot lost and the IP is at its limit; retrying later",
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot refresh connection slots");
                    return;
                }
            }
            // Released while we refreshed it: the refresh may have put the
            // slot back after the release removed it.
            if !lock(&self.held).contains_key(&id) {
                let _ = self.connections.release(&slot.ip, &slot.member).await;
            }
        }
    }

    /// Refreshes held slots every [`CONNECTION_SLOT_REFRESH`] until `stop`.
    pub async fn keep_alive(&self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(CONNECTION_SLOT_REFRESH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is immediate; slots were just taken.
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = stop.cancelled() => return,
            }
            tokio::select! {
                () = self.refresh() => {}
                () = stop.cancelled() => return,
            }
        }
    }

    fn failed_open(&self, ip: &IpAddr, error: &str) {
        let total = self.fail_opens.fetch_add(1, Ordering::Relaxed) + 1;
        let now = Instant::now();
        let warn = {
            let mut last = lock(&self.last_warning);
            let due = last.is_none_or(|at| now.duration_since(at) >= FAIL_OPEN_LOG_INTERVAL);
            if due {
                *last = Some(now);
            }
            due
        };
        if warn {
            tracing::warn!(
                %ip,
                error,
                fail_opens = total,
                "per-IP limits unavailable; admitting the peer unchecked (fail open)",
            );
        } else {
            tracing::debug!(%ip, error, fail_opens = total, "per-IP limits unavailable; admitted");
        }
    }
}

/// The key an address is counted under: IPv4 as is, IPv6 by its /64.
fn ip_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            format!("{}/64", Ipv6Addr::from(prefix))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::net::SocketAddr;

    use super::*;

    fn admission(id: u64, addr: &str) -> Admission {
        let secret = secp256k1::SecretKey::new(&mut rand::rng());
        Admission {
            connection_id: id,
            peer_addr: addr.parse::<SocketAddr>().unwrap(),
            node_id: secp256k1::PublicKey::from_secret_key(&secret),
        }
    }

    fn limits(kv: Kv, max: u32, rate: u64) -> IpLimits {
        let config = IpLimitConfig {
            max_connections_per_ip: max,
            new_connections_per_ip_per_minute: rate,
            ..IpLimitConfig::default()
        };
        IpLimits::new(kv, "gw-test", config)
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(ip_key(a), "2001:db8:1:2::/64");
        assert_eq!(ip_key(a), ip_key(b));
        let mapped: IpAddr = "::ffff:203.0.113.7".parse().unwrap();
        assert_eq!(ip_key(mapped.to_canonical()), "203.0.113.7");
    }

    #[tokio::test]
    async fn cap_and_release() {
        let limits = limits(Kv::memory(), 2, 100);
        assert!(
            limits
                .admit(&admission(1, "198.51.100.1:1000"))
                .await
                .is_ok()
        );
        assert!(
            limits
                .admit(&admission(2, "198.51.100.1:1001"))
                .await
                .is_ok()
        );
        let refused = limits
            .admit(&admission(3, "198.51.100.1:1002"))
            .await
            .unwrap_err();
        assert_eq!(refused.reason, Reason::TooManyPeers);
        // Another IP has its own count.
        assert!(
            limits
                .admit(&admission(4, "198.51.100.2:1000"))
                .await
                .is_ok()
        );
        assert_eq!(limits.held(), 3);
        limits.release(1).await;
        limits.release(1).await;
        assert!(
            limits
                .admit(&admission(5, "198.51.100.1:1003"))
                .await
                .is_ok()
        );
        limits.refresh().await;
        assert_eq!(limits.held(), 3);
    }

    #[tokio::test]
    async fn new_connections_are_rate_limited() {
        let limits = limits(Kv::memory(), 100, 3);
        for id in 0..3 {
            let addr = format!("198.51.100.1:{}", 1000 + id);
            assert!(limits.admit(&admission(id, &addr)).await.is_ok());
            limits.release(id).await;
        }
        let refused = limits
            .admit(&admission(9, "198.51.100.1:2000"))
            .await
            .unwrap_err();
        assert_eq!(refused.reason, Reason::RateLimited);
        assert_eq!(limits.held(), 0);
    }

    #[tokio::test]
    async fn loopback_is_exempt_only_when_configured() {
        let mut config = IpLimitConfig {
            max_connections_per_ip: 0,
            ..IpLimitConfig::default()
        };
        let strict = IpLimits::new(Kv::memory(), "gw", config.clone());
        assert!(strict.admit(&admission(1, "127.0.0.1:1")).await.is_err());
        config.exempt_loopback = true;
        let lax = IpLimits::new(Kv::memory(), "gw", config);
        assert!(lax.admit(&admission(1, "127.0.0.1:1")).await.is_ok());
        assert!(lax.admit(&admission(2, "[::1]:1")).await.is_ok());
        assert_eq!(lax.held(), 0);
    }

    #[tokio::test]
    async fn a_failing_store_fails_open_and_counts() {
        // A memory store with no room fails every write with `Full`.
        let limits = limits(Kv::memory_with_capacity(0), 1, 1);
        for id in 0..3 {
            let addr = format!("198.51.100.1:{}", 1000 + id);
            assert!(limits.admit(&admission(id, &addr)).await.is_ok());
        }
        assert_eq!(limits.fail_opens(), 3);
        // Still tracked, so the slots are taken once the store is back.
        assert_eq!(limits.held(), 3);
    }
}
