//! Logs, OpenTelemetry traces and Prometheus metrics for every Skywire
//! process, and the small HTTP server that exposes them (`/metrics`,
//! `/healthz`, `/readyz`).
//!
//! # Modules
//!
//! - [`config`]: [`TelemetryConfig`], the `serde` section every binary's
//!   config file carries (service name, OTLP endpoint, log filter).
//! - [`subscriber`]: [`init`] installs the global `tracing` subscriber (a
//!   `fmt` layer to stderr behind an `EnvFilter`, plus an OpenTelemetry layer
//!   exporting spans over OTLP/gRPC when an endpoint is configured) and the
//!   W3C TraceContext propagator; the returned [`TelemetryGuard`] flushes and
//!   shuts the exporter down when dropped. [`layer_for`] builds the same
//!   OpenTelemetry layer around any provider, so tests can export to memory.
//! - [`propagation`]: carries trace context across process boundaries: into
//!   and out of any `Injector`/`Extractor` carrier (NATS headers, a
//!   `HashMap`), and through gRPC metadata (a tonic client interceptor and a
//!   server-side helper).
//! - [`metrics`]: [`Metrics`], a shared Prometheus registry, and the metric
//!   families the gateway exports ([`metrics::GatewayMetrics`]), with label
//!   cardinality bounded by construction.
//! - [`http`]: the axum router serving the registry and the health and
//!   readiness probes ([`Readiness`]), with tower limits, and [`http::serve`]
//!   with graceful shutdown.
//!
//! # How data flows
//!
//! Code emits `tracing` spans and events. Events go to stderr through the
//! `fmt` layer. Spans also become OpenTelemetry spans (when OTLP is on),
//! batched and exported to the collector. When a span's work crosses a
//! process boundary (a NATS message, a gRPC call), the sender injects the
//! current span's context as a `traceparent` header and the receiver makes it
//! the parent of its own span, so one trace follows a request through the
//! cluster. Counters and gauges live in a [`Metrics`] registry, which the
//! `/metrics` endpoint encodes as OpenMetrics text when Prometheus scrapes.

pub mod config;
pub mod error;
pub mod http;
pub mod metrics;
pub mod propagation;
pub mod subscriber;

pub use config::TelemetryConfig;
pub use error::TelemetryError;
pub use http::Readiness;
pub use metrics::Metrics;
pub use subscriber::{TelemetryGuard, init, layer_for};
