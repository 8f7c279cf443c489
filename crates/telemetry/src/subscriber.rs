//! The global `tracing` subscriber: logs to stderr, spans to OTLP.
//!
//! [`init`] is called once, early in `main`, inside the tokio runtime. It
//! keeps the returned [`TelemetryGuard`] alive until the process ends.

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetryLayer;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::{DEFAULT_LOG_FILTER, TelemetryConfig, redact_endpoint};
use crate::error::TelemetryError;
use crate::propagation;

/// The instrumentation scope name of the spans this crate's layer creates.
pub const TRACER_NAME: &str = "skywire";

/// How long [`TelemetryGuard`]'s drop waits for the last batch of spans to
/// reach the collector. Bounded so a dead collector cannot hold up process
/// exit; 5 s is the SDK's own default and well above a healthy export's
/// round trip.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one OTLP export may take before it is abandoned (and its spans
/// dropped). Shorter than [`SHUTDOWN_TIMEOUT`] so the final flush can finish
/// one attempt.
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(3);

/// Installs the process's telemetry.
///
/// - A global `tracing` subscriber: a `fmt` layer writing to stderr, behind an
///   `EnvFilter` from `RUST_LOG`, else `config.log_filter`, else
///   [`DEFAULT_LOG_FILTER`].
/// - An OpenTelemetry layer on the same subscriber, so every span has a trace
///   context to propagate. When `config.otlp_endpoint` is set, spans are
///   exported over OTLP/gRPC through a batch processor, with resource
///   `service.name = config.service_name`; otherwise they are recorded and
///   dropped, and trace context still crosses this process (a gateway without
///   a collector does not break its services' traces). The provider is also
///   made the `opentelemetry::global` one.
/// - The W3C TraceContext propagator as the global text-map propagator.
///
/// With OTLP on, `init` must run inside a tokio runtime (tonic's channel
/// lives on it), preferably a multi-threaded one.
///
/// # Errors
///
/// An unparsable log filter, OTLP without a runtime, an exporter that cannot
/// be built, or a global subscriber that is already installed.
pub fn init(config: &TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    propagation::install_propagator();
    let filter = env_filter(config)?;
    let resource = Resource::builder()
        .with_service_name(config.service_name.clone())
        .build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    if let Some(endpoint) = &config.otlp_endpoint {
        builder = builder.with_batch_exporter(otlp_exporter(endpoint)?);
    }
    let guard = TelemetryGuard {
        provider: Some(builder.build()),
        exporting: config.otlp_endpoint.is_some(),
    };
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let otel = guard.provider.as_ref().map(layer_for);
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init();
    if let Err(error) = installed {
        // The guard's drop shuts the unused provider down.
        drop(guard);
        return Err(TelemetryError::AlreadyInitialized(error));
    }
    if let Some(provider) = &guard.provider {
        opentelemetry::global::set_tracer_provider(provider.clone());
    }
    tracing::debug!(
        service = %config.service_name,
        otlp = guard.exporting,
        "telemetry installed"
    );
    Ok(guard)
}

/// The OpenTelemetry layer for a `tracing` subscriber, creating spans with
/// `provider`'s tracer (named [`TRACER_NAME`]).
///
/// [`init`] uses it with the OTLP provider; tests use it with a provider
/// around an in-memory exporter:
///
/// ```
/// use opentelemetry_sdk::trace::SdkTracerProvider;
/// use tracing_subscriber::layer::SubscriberExt as _;
///
/// let provider = SdkTracerProvider::builder().build();
/// let subscriber = tracing_subscriber::registry().with(skywire_telemetry::layer_for(&provider));
/// tracing::subscriber::with_default(subscriber, || {
///     let _span = tracing::info_span!("work").entered();
/// });
/// ```
pub fn layer_for<S>(provider: &SdkTracerProvider) -> OpenTelemetryLayer<S, SdkTracer>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    tracing_opentelemetry::layer().with_tracer(provider.tracer(TRACER_NAME))
}

/// Keeps the span exporter running; flushes it and shuts it down on drop.
///
/// Drop it last in `main` (after the servers stop), while the tokio runtime
/// still runs: the final export goes through tonic. Dropping blocks for at
/// most [`SHUTDOWN_TIMEOUT`].
#[derive(Debug)]
#[must_use = "dropping the guard shuts span export down"]
pub struct TelemetryGuard {
    /// `None` once shut down.
    provider: Option<SdkTracerProvider>,
    exporting: bool,
}

impl TelemetryGuard {
    /// Whether spans are being exported over OTLP.
    pub fn exporting(&self) -> bool {
        self.exporting
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let Some(provider) = self.provider.take() else {
            return;
        };
        // Shutting the batch processor down exports what it still holds.
        let shutdown = move || {
            if let Err(error) = provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
                tracing::warn!(%error, "shutting the span exporter down failed");
            }
        };
        // The export runs on the batch processor's thread but needs tonic's
        // tasks on the runtime: on a multi-threaded worker, hand this worker's
        // other tasks off while blocking.
        match tokio::runtime::Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(shutdown);
            }
            _ => shutdown(),
        }
    }
}

/// The log filter: `RUST_LOG` (when set and not empty), else the
/// configuration's, else [`DEFAULT_LOG_FILTER`].
fn env_filter(config: &TelemetryConfig) -> Result<EnvFilter, TelemetryError> {
    let from_env = std::env::var(EnvFilter::DEFAULT_ENV)
        .ok()
        .filter(|value| !value.trim().is_empty());
    let (filter, origin) = match (from_env, &config.log_filter) {
        (Some(filter), _) => (filter, "RUST_LOG"),
        (None, Some(filter)) => (filter.clone(), "config"),
        (None, None) => (DEFAULT_LOG_FILTER.to_owned(), "default"),
    };
    EnvFilter::try_new(&filter).map_err(|source| TelemetryError::LogFilter {
        filter,
        origin,
        source,
    })
}

/// The OTLP/gRPC span exporter for the collector at `endpoint`.
fn otlp_exporter(endpoint: &str) -> Result<opentelemetry_otlp::SpanExporter, TelemetryError> {
    let redacted = redact_endpoint(endpoint);
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(TelemetryError::NoRuntime { endpoint: redacted });
    }
    opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|error| TelemetryError::Exporter {
            reason: error.to_string().replace(endpoint, &redacted),
            endpoint: redacted,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The only test in this binary that installs the global subscriber.
    #[test]
    fn init_installs_once() {
        let guard = init(&TelemetryConfig::new("test")).expect("first init");
        assert!(!guard.exporting());
        tracing::info!("logged through the installed subscriber");
        // Export off, yet spans carry trace context to propagate.
        let span = tracing::info_span!("work");
        if !span.is_disabled() {
            use opentelemetry::trace::TraceContextExt as _;
            use tracing_opentelemetry::OpenTelemetrySpanExt as _;
            assert!(span.context().span().span_context().is_valid());
            let mut carrier = std::collections::HashMap::new();
            span.in_scope(|| propagation::inject_current(&mut carrier));
            assert!(carrier.contains_key(propagation::TRACEPARENT));
        }
        let again = init(&TelemetryConfig::new("test")).expect_err("second init");
        assert!(
            matches!(again, TelemetryError::AlreadyInitialized(_)),
            "{again}"
        );
    }

    #[test]
    fn bad_log_filter_is_reported() {
        if std::env::var_os(EnvFilter::DEFAULT_ENV).is_some() {
            return; // RUST_LOG takes precedence over the config's filter.
        }
        let config = TelemetryConfig {
            log_filter: Some("info,[[[".to_owned()),
            ..TelemetryConfig::new("test")
        };
        let error = env_filter(&config).expect_err("unparsable");
        assert!(
            matches!(
                error,
                TelemetryError::LogFilter {
                    origin: "config",
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn otlp_needs_a_runtime() {
        let error = otlp_exporter("http://127.0.0.1:4317").expect_err("no runtime");
        assert!(matches!(error, TelemetryError::NoRuntime { .. }), "{error}");
    }

    #[tokio::test]
    async fn bad_endpoint_is_reported_redacted() {
        let error = otlp_exporter("http://user:hunter2@[::1").expect_err("unparsable endpoint");
        let message = error.to_string();
        assert!(
            matches!(error, TelemetryError::Exporter { .. }),
            "{message}"
        );
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn otlp_export_shuts_down_without_a_collector() {
        // Nothing listens on port 9: the guard's drop must still return.
        let exporter = otlp_exporter("http://127.0.0.1:9").expect("builds");
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .build();
        let tracer = provider.tracer("test");
        drop(opentelemetry::trace::Tracer::start(&tracer, "span"));
        let started = std::time::Instant::now();
        drop(TelemetryGuard {
            provider: Some(provider),
            exporting: true,
        });
        assert!(started.elapsed() < SHUTDOWN_TIMEOUT * 3);
    }
}
