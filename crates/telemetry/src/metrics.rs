//! Prometheus metrics: a shared registry and the gateway's metric families.
//!
//! Each service defines its own families and registers them on the process's
//! [`Metrics`] at start-up; `/metrics` ([`crate::http`]) encodes the registry
//! as OpenMetrics text. Counters and gauges are cheap atomics, so hot paths
//! update them directly.
//!
//! Label values are bounded by construction: the `service` label is a
//! [`ServiceLabel`], which only a [`ServiceNames`] set can make (unknown names
//! become `"other"`; the set itself is capped), and the other labels take
//! `&'static str`, so no peer input can mint a new time series.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
/// The metric types of the families here, so their users need no
/// `prometheus-client` dependency of their own.
pub use prometheus_client::metrics::{counter::Counter, family::Family, gauge::Gauge};
use prometheus_client::registry::{Metric, Registry};

/// The `Content-Type` of [`Metrics::encode`]'s output.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The `service` label value for names outside the known set.
pub const OTHER_SERVICE: &str = "other";

/// The process's metric registry, shared by every service in it. Cloning is
/// cheap and clones share the registry.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `metric` as `name` with `help` text. Keep a clone of
    /// `metric` (metrics are `Arc`s inside) to update it. Counters get the
    /// `_total` suffix in the output.
    pub fn register(&self, name: impl Into<String>, help: impl Into<String>, metric: impl Metric) {
        self.lock().register(name, help, metric);
    }

    /// The registry as OpenMetrics text ([`OPENMETRICS_CONTENT_TYPE`]),
    /// ending with `# EOF`.
    ///
    /// Encoding into a `String` cannot fail unless a metric's own encoder
    /// does; then the error is logged and the text holds whatever was encoded
    /// before it (see [`Metrics::try_encode`] to tell).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if let Err(error) = self.encode_into(&mut text) {
            tracing::error!(%error, "encoding metrics failed");
        }
        text
    }

    /// Like [`Metrics::encode`], but failing when a metric's encoder does.
    ///
    /// # Errors
    ///
    /// A metric's encoder failed.
    pub fn try_encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        self.encode_into(&mut text)?;
        Ok(text)
    }

    fn encode_into(&self, text: &mut String) -> Result<(), std::fmt::Error> {
        prometheus_client::encoding::text::encode(text, &self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        // A panic while registering leaves the registry usable.
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The set of service names the `service` label may take, capped.
///
/// Services are named by the peer (the `Open` frame's service name), so
/// labelling by the raw name would let any peer create time series; this set
/// turns names outside it into [`OTHER_SERVICE`]. It is either fixed
/// ([`ServiceNames::new`]) or learns names from a trusted source (e.g. the
/// cluster's heartbeats) up to a cap ([`ServiceNames::bounded`]). Clones
/// share the set.
#[derive(Clone, Debug, Default)]
pub struct ServiceNames {
    known: Arc<RwLock<HashSet<Arc<str>>>>,
    /// Most names the set holds; [`ServiceNames::insert`] adds no more.
    limit: usize,
}

impl ServiceNames {
    /// The fixed set of `names` (typically the node's registered services):
    /// [`ServiceNames::insert`] adds no others.
    pub fn new<I>(names: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let known: HashSet<Arc<str>> = names
            .into_iter()
            .map(|name| Arc::from(name.as_ref()))
            .collect();
        Self {
            limit: known.len(),
            known: Arc::new(RwLock::new(known)),
        }
    }

    /// An empty set that learns up to `limit` names through
    /// [`ServiceNames::insert`]; names past the cap stay [`OTHER_SERVICE`].
    pub fn bounded(limit: usize) -> Self {
        Self {
            known: Arc::default(),
            limit,
        }
    }

    /// Adds `name` unless the set is full; returns whether `name` is in the
    /// set now.
    pub fn insert(&self, name: &str) -> bool {
        if self.contains(name) {
            return true;
        }
        let mut known = self.known.write().unwrap_or_else(PoisonError::into_inner);
        if known.len() >= self.limit {
            return known.contains(name);
        }
        known.insert(Arc::from(name));
        true
    }

    /// The label for `name`: itself when known, else [`OTHER_SERVICE`].
    pub fn label(&self, name: &str) -> ServiceLabel {
        ServiceLabel(self.read().get(name).cloned())
    }

    /// Whether `name` is in the set.
    pub fn contains(&self, name: &str) -> bool {
        self.read().contains(name)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashSet<Arc<str>>> {
        // Every write leaves the set consistent, so a poisoned lock is fine.
        self.known.read().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A `service` label value: a known service name or [`OTHER_SERVICE`]. Made
/// only by [`ServiceNames::label`] (or [`ServiceLabel::other`]).
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq)]
pub struct ServiceLabel(Option<Arc<str>>);

impl ServiceLabel {
    /// The [`OTHER_SERVICE`] label.
    pub fn other() -> Self {
        Self(None)
    }

    /// The label's value.
    pub fn as_str(&self) -> &str {
        self.0.as_deref().unwrap_or(OTHER_SERVICE)
    }
}

impl EncodeLabelValue for ServiceLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

/// Which way traffic flows, from this node's point of view.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Direction {
    /// Received from the peer (`"in"`).
    In,
    /// Sent to the peer (`"out"`).
    Out,
}

impl Direction {
    /// The label value: `"in"` or `"out"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::In => "in",
            Self::Out => "out",
        }
    }
}

impl EncodeLabelValue for Direction {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

/// Labels `service` and `direction` (`in`/`out`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceDirectionLabels {
    /// The service the traffic belongs to.
    pub service: ServiceLabel,
    /// Which way it flows.
    pub direction: Direction,
}

impl ServiceDirectionLabels {
    /// Labels for `service` traffic flowing `direction`.
    pub fn new(service: ServiceLabel, direction: Direction) -> Self {
        Self { service, direction }
    }
}

/// Label `reason`: a GoAway reason's name, e.g. `"REASON_BANNED"`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// The reason; `'static` so only names in the code can become labels.
    pub reason: &'static str,
}

/// Label `queue`: which queue, e.g. `"bus_outbound"`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    /// The queue; `'static` so only names in the code can become labels.
    pub queue: &'static str,
}

/// The gateway's metric families. Clone freely: clones update the same
/// series.
#[derive(Clone, Debug, Default)]
pub struct GatewayMetrics {
    /// Peer connections open now, once announced (past Hello, duplicates
    /// settled) (`skywire_gateway_connections`).
    pub connections: Gauge,
    /// Channels bridged between peers and service instances now
    /// (`skywire_gateway_channels`).
    pub channels: Gauge,
    /// Payload bytes of bridged messages by service and direction
    /// (`skywire_gateway_bytes_total`).
    pub bytes: Family<ServiceDirectionLabels, Counter>,
    /// Data frames of bridged messages on the bus by service and direction
    /// (`skywire_gateway_frames_total`).
    pub frames: Family<ServiceDirectionLabels, Counter>,
    /// GoAway frames this node sent, by reason
    /// (`skywire_gateway_goaways_total`).
    pub goaways: Family<ReasonLabels, Counter>,
    /// Messages waiting, by queue (`skywire_gateway_queue_depth`).
    pub queue_depth: Family<QueueLabels, Gauge>,
}

impl GatewayMetrics {
    /// Creates the families and registers them on `metrics`.
    pub fn register(metrics: &Metrics) -> Self {
        let families = Self::default();
        metrics.register(
            "skywire_gateway_connections",
            "Open peer connections",
            families.connections.clone(),
        );
        metrics.register(
            "skywire_gateway_channels",
            "Channels bridged between peers and service instances",
            families.channels.clone(),
        );
        metrics.register(
            "skywire_gateway_bytes",
            "Payload bytes of bridged messages, by service and direction",
            families.bytes.clone(),
        );
        metrics.register(
            "skywire_gateway_frames",
            "Data frames of bridged messages on the bus, by service and direction",
            families.frames.clone(),
        );
        metrics.register(
            "skywire_gateway_goaways",
            "GoAway frames sent, by reason",
            families.goaways.clone(),
        );
        metrics.register(
            "skywire_gateway_queue_depth",
            "Messages waiting in a queue, by queue",
            families.queue_depth.clone(),
        );
        families
    }

    /// The counters of `service` traffic flowing `direction`: resolve them
    /// once (say, per channel), then [`Traffic::record`] each message.
    pub fn traffic(&self, service: &ServiceLabel, direction: Direction) -> Traffic {
        let labels = ServiceDirectionLabels::new(service.clone(), direction);
        Traffic {
            bytes: self.bytes.get_or_create(&labels).clone(),
            frames: self.frames.get_or_create(&labels).clone(),
        }
    }

    /// Counts one GoAway sent with `reason` (its name, e.g.
    /// `"REASON_BANNED"`).
    pub fn goaway(&self, reason: &'static str) {
        self.goaways.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// The depth gauge of `queue`.
    pub fn queue(&self, queue: &'static str) -> Gauge {
        self.queue_depth
            .get_or_create(&QueueLabels { queue })
            .clone()
    }
}

/// The byte and frame counters of one service and direction
/// ([`GatewayMetrics::traffic`]).
#[derive(Clone, Debug)]
pub struct Traffic {
    bytes: Counter,
    frames: Counter,
}

impl Traffic {
    /// Counts one message of `bytes` payload bytes in `frames` data frames.
    pub fn record(&self, bytes: u64, frames: u64) {
        self.bytes.inc_by(bytes);
        self.frames.inc_by(frames);
    }
}

/// One unit of a gauge, held for a scope: the gauge goes up when the guard
/// is made and down when it is dropped, so an early return or a cancelled
/// task cannot leave it off (an open channel, a message waiting in a queue).
#[derive(Debug)]
pub struct GaugeGuard(Gauge);

impl GaugeGuard {
    /// Raises `gauge` by one until the guard is dropped.
    pub fn new(gauge: &Gauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_services_are_other() {
        let names = ServiceNames::new(["echo/1", "pool/1"]);
        assert_eq!(names.label("echo/1").as_str(), "echo/1");
        assert_eq!(names.label("attacker-chosen-123").as_str(), OTHER_SERVICE);
        assert_eq!(names.label("nope"), ServiceLabel::other());
        assert!(names.contains("pool/1"));
        // A fixed set learns nothing.
        assert!(!names.insert("new/1"));
        assert_eq!(names.label("new/1"), ServiceLabel::other());
    }

    #[test]
    fn a_bounded_set_learns_up_to_its_cap() {
        let names = ServiceNames::bounded(2);
        let shared = names.clone();
        assert!(names.insert("a/1"));
        assert!(names.insert("a/1"), "already known");
        assert!(names.insert("b/1"));
        assert!(!names.insert("c/1"), "over the cap");
        assert_eq!(shared.label("b/1").as_str(), "b/1", "clones share the set");
        assert_eq!(shared.label("c/1").as_str(), OTHER_SERVICE);
    }

    #[test]
    fn a_gauge_guard_holds_one_unit() {
        let gauge = Gauge::default();
        let first = GaugeGuard::new(&gauge);
        let second = GaugeGuard::new(&gauge);
        assert_eq!(gauge.get(), 2);
        drop(first);
        drop(second);
        assert_eq!(gauge.get(), 0);
    }

    #[test]
    fn gateway_families_encode() {
        let metrics = Metrics::new();
        let gateway = GatewayMetrics::register(&metrics);
        let names = ServiceNames::new(["echo/1"]);
        gateway.connections.inc();
        gateway.channels.set(3);
        let echo_in = gateway.traffic(&names.label("echo/1"), Direction::In);
        echo_in.record(60, 1);
        echo_in.record(40, 1);
        gateway
            .traffic(&names.label("unknown"), Direction::Out)
            .record(7, 1);
        gateway.goaway("REASON_BANNED");
        gateway.queue("bus_outbound").set(5);

        let text = metrics.try_encode().expect("encodes");
        for line in [
            "skywire_gateway_connections 1",
            "skywire_gateway_channels 3",
            r#"skywire_gateway_bytes_total{service="echo/1",direction="in"} 100"#,
            r#"skywire_gateway_frames_total{service="echo/1",direction="in"} 2"#,
            r#"skywire_gateway_bytes_total{service="other",direction="out"} 7"#,
            r#"skywire_gateway_goaways_total{reason="REASON_BANNED"} 1"#,
            r#"skywire_gateway_queue_depth{queue="bus_outbound"} 5"#,
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(text.ends_with("# EOF\n"));
        assert_eq!(text, metrics.encode());
    }
}
