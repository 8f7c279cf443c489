//! Shared test helpers.

use axum::body::Body;
use axum::http::{Request, Response};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing_subscriber::layer::SubscriberExt as _;

/// The most bytes a test reads from a response body.
const BODY_LIMIT: usize = 1024 * 1024;

/// A tracer provider exporting synchronously into memory.
pub(crate) fn in_memory_provider() -> (SdkTracerProvider, InMemorySpanExporter) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    (provider, exporter)
}

/// Runs `f` with a subscriber recording spans through `provider` (and, with
/// `TEST_LOG=1`, logging to the test output).
pub(crate) fn with_tracing<R>(provider: &SdkTracerProvider, f: impl FnOnce() -> R) -> R {
    let log = std::env::var_os("TEST_LOG")
        .is_some()
        .then(|| tracing_subscriber::fmt::layer().with_test_writer());
    let subscriber = tracing_subscriber::registry()
        .with(skywire_telemetry::layer_for(provider))
        .with(log);
    tracing::subscriber::with_default(subscriber, f)
}

/// The finished spans, after a flush.
pub(crate) fn finished_spans(
    provider: &SdkTracerProvider,
    exporter: &InMemorySpanExporter,
) -> Vec<SpanData> {
    provider.force_flush().expect("flush");
    exporter.get_finished_spans().expect("finished spans")
}

/// The span named `name`.
pub(crate) fn span<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans
        .iter()
        .find(|span| span.name == name)
        .unwrap_or_else(|| panic!("no span {name:?} in {spans:#?}"))
}

/// A `GET path` request.
pub(crate) fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).expect("request")
}

/// The body as text.
pub(crate) async fn text(response: Response<Body>) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), BODY_LIMIT)
        .await
        .expect("body");
    String::from_utf8(bytes.to_vec()).expect("utf-8 body")
}

/// The body as JSON.
pub(crate) async fn json(response: Response<Body>) -> serde_json::Value {
    serde_json::from_str(&text(response).await).expect("JSON body")
}
