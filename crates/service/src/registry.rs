//! Who is alive on the bus, from heartbeats: service instances (and the
//! services they serve) and gateway replicas.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use skywire_proto::bus::v1::Heartbeat;

/// How often instances and gateways announce themselves.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);

/// How long one heartbeat keeps its sender alive: three missed heartbeats.
pub const HEARTBEAT_TTL: Duration = Duration::from_secs(3);

/// Instances tracked at once; heartbeats from more are ignored (a flood of
/// fake instances cannot grow memory).
pub const MAX_INSTANCES: usize = 4096;

/// Services one heartbeat may list.
pub const MAX_SERVICES_PER_INSTANCE: usize = 64;

/// Live instances and gateways.
#[derive(Debug, Default)]
pub struct Registry {
    entries: HashMap<String, Entry>,
}

#[derive(Debug)]
struct Entry {
    services: Vec<String>,
    gateway: bool,
    expires: Instant,
}

/// What a heartbeat or an expiry changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Change {
    /// Instances or gateways that were not alive before.
    pub joined: Vec<String>,
    /// Instances or gateways that left or expired.
    pub left: Vec<String>,
    /// A live instance now serves a different set of services.
    pub services_changed: bool,
}

impl Change {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.joined.is_empty() && self.left.is_empty() && !self.services_changed
    }
}

impl Registry {
    /// Nobody alive.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies a heartbeat received at `now`. Invalid ids and service names
    /// are ignored.
    pub fn apply(&mut self, heartbeat: Heartbeat, now: Instant) -> Change {
        let mut change = Change::default();
        if !skywire_bus::subjects::valid_id(&heartbeat.instance) {
            return change;
        }
        if heartbeat.ttl_ms == 0 {
            if self.entries.remove(&heartbeat.instance).is_some() {
                change.left.push(heartbeat.instance);
            }
            return change;
        }
        let ttl = Duration::from_millis(u64::from(heartbeat.ttl_ms)).min(HEARTBEAT_TTL * 10);
        let mut services: Vec<String> = heartbeat
            .services
            .into_iter()
            .filter(|s| skywire_proto::service_name::is_valid(s))
            .take(MAX_SERVICES_PER_INSTANCE)
            .collect();
        services.sort();
        services.dedup();
        let full = self.entries.len() >= MAX_INSTANCES;
        match self.entries.get_mut(&heartbeat.instance) {
            Some(entry) => {
                change.services_changed = entry.services != services;
                entry.services = services;
                entry.expires = now + ttl;
            }
            None if !full => {
                change.joined.push(heartbeat.instance.clone());
                self.entries.insert(
                    heartbeat.instance,
                    Entry {
                        services,
                        gateway: heartbeat.gateway,
                        expires: now + ttl,
                    },
                );
            }
            None => {
                tracing::warn!(instance = %heartbeat.instance, "registry full; heartbeat ignored")
            }
        }
        change
    }

    /// Forgets everyone whose heartbeat ran out by `now`.
    pub fn expire(&mut self, now: Instant) -> Change {
        let mut change = Change::default();
        self.entries.retain(|id, entry| {
            let alive = entry.expires > now;
            if !alive {
                change.left.push(id.clone());
            }
            alive
        });
        change
    }

    /// Every service some live instance serves, sorted.
    pub fn services(&self) -> Vec<String> {
        let set: BTreeSet<&String> = self
            .entries
            .values()
            .filter(|e| !e.gateway)
            .flat_map(|e| &e.services)
            .collect();
        set.into_iter().cloned().collect()
    }

    /// Whether some live instance serves `service`.
    pub fn serves(&self, service: &str) -> bool {
        self.entries
            .values()
            .any(|e| !e.gateway && e.services.iter().any(|s| s == service))
    }

    /// Whether `id` is a live gateway replica.
    pub fn is_gateway(&self, id: &str) -> bool {
        self.entries.get(id).is_some_and(|e| e.gateway)
    }
}

/// Keeps `registry` current from `heartbeats` (a subscription to
/// `sw.registry.heartbeat`) until `stop` or the subscription ends, expiring
/// senders whose heartbeats stop, and calls `changed` after every change.
pub async fn follow(
    mut heartbeats: skywire_bus::Subscription,
    stop: tokio_util::sync::CancellationToken,
    registry: &Mutex<Registry>,
    mut changed: impl FnMut(Change),
) {
    use prost::Message as _;
    let lock = || registry.lock().unwrap_or_else(PoisonError::into_inner);
    // Twice per interval: a sender is forgotten at most half an interval
    // after its TTL.
    let mut sweep = tokio::time::interval(HEARTBEAT_INTERVAL / 2);
    loop {
        let change = tokio::select! {
            m = heartbeats.next() => match m.map(|m| Heartbeat::decode(m.payload)) {
                Some(Ok(beat)) => lock().apply(beat, Instant::now()),
                Some(Err(_)) => continue,
                None => break,
            },
            _ = sweep.tick() => lock().expire(Instant::now()),
            () = stop.cancelled() => break,
        };
        if !change.is_empty() {
            changed(change);
        }
    }
}

/// [`follow`]s `heartbeats` with a registry of its own, calling `left` with
/// the id of every instance or gateway that leaves or whose heartbeats stop.
pub async fn watch_departures(
    heartbeats: skywire_bus::Subscription,
    stop: tokio_util::sync::CancellationToken,
    mut left: impl FnMut(&str),
) {
    let registry = Mutex::new(Registry::new());
    follow(heartbeats, stop, &registry, |change| {
        change.left.iter().for_each(|gone| left(gone));
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(instance: &str, services: &[&str], ttl_ms: u32) -> Heartbeat {
        Heartbeat {
            instance: instance.into(),
            services: services.iter().map(|s| s.to_string()).collect(),
            ttl_ms,
            gateway: false,
        }
    }

    #[test]
    fn joins_refreshes_expires_and_leaves() {
        let mut registry = Registry::new();
        let t0 = Instant::now();
        let change = registry.apply(beat("a", &["chat/1", "bad name", "echo/1"], 3000), t0);
        assert_eq!(change.joined, vec!["a".to_string()]);
        assert_eq!(registry.services(), vec!["chat/1", "echo/1"]);
        assert!(registry.serves("chat/1"));
        assert!(!registry.serves("bad name"));
        // A refresh is not a join; one that changes the services says so.
        assert!(
            registry
                .apply(
                    beat("a", &["echo/1", "chat/1"], 3000),
                    t0 + Duration::from_secs(1)
                )
                .is_empty()
        );
        let change = registry.apply(beat("a", &["chat/1"], 3000), t0 + Duration::from_secs(2));
        assert_eq!(
            change,
            Change {
                services_changed: true,
                ..Change::default()
            }
        );
        assert_eq!(registry.services(), vec!["chat/1"]);
        assert!(registry.expire(t0 + Duration::from_secs(4)).is_empty());
        assert_eq!(
            registry.expire(t0 + Duration::from_secs(6)).left,
            vec!["a".to_string()]
        );
        assert!(!registry.serves("chat/1"));
        registry.apply(beat("b", &["x/1"], 3000), t0);
        assert_eq!(
            registry.apply(beat("b", &[], 0), t0).left,
            vec!["b".to_string()]
        );
        assert!(
            registry
                .apply(beat("no.dots", &["x/1"], 3000), t0)
                .is_empty()
        );
    }

    #[test]
    fn gateways_serve_nothing_and_the_table_is_bounded() {
        let mut registry = Registry::new();
        let now = Instant::now();
        let mut gw = beat("gw-1", &["x/1"], 3000);
        gw.gateway = true;
        registry.apply(gw, now);
        assert!(registry.is_gateway("gw-1"));
        assert!(!registry.serves("x/1"));
        for i in 0..MAX_INSTANCES + 10 {
            registry.apply(beat(&format!("i{i}"), &["y/1"], 3000), now);
        }
        assert_eq!(registry.entries.len(), MAX_INSTANCES);
    }
}
