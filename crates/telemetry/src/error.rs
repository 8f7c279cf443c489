//! [`TelemetryError`]: what can go wrong while installing telemetry.

/// An error from [`init`](crate::init).
///
/// No variant carries a secret: endpoints appear only in their redacted form
/// ([`redact_endpoint`](crate::config::redact_endpoint)).
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The log filter (from `RUST_LOG` or the configuration) does not parse.
    #[error("invalid log filter {filter:?} (from {origin}): {source}")]
    LogFilter {
        /// The directive that failed to parse.
        filter: String,
        /// Where it came from: `"RUST_LOG"`, `"config"` or `"default"`.
        origin: &'static str,
        /// The parser's complaint.
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    /// The OTLP exporter needs a tokio runtime (tonic spawns its connection
    /// task on it), and `init` was called outside one.
    #[error("OTLP export to {endpoint} needs a tokio runtime; call init inside one")]
    NoRuntime {
        /// The collector, redacted.
        endpoint: String,
    },
    /// The OTLP exporter could not be built (bad endpoint, unsupported
    /// scheme, ...).
    #[error("cannot build the OTLP exporter for {endpoint}: {reason}")]
    Exporter {
        /// The collector, redacted.
        endpoint: String,
        /// The exporter's complaint, with the endpoint redacted.
        reason: String,
    },
    /// A global `tracing` subscriber is already installed (`init` ran twice,
    /// or something else installed one first).
    #[error("a global tracing subscriber is already installed: {0}")]
    AlreadyInitialized(#[source] tracing_subscriber::util::TryInitError),
}
