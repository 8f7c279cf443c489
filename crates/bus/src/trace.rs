//! Trace context in bus headers (W3C `traceparent`/`tracestate`, through
//! whatever propagator `skywire-telemetry` installed globally).
//!
//! Publishing injects the current span's context ([`current_headers`]); a
//! receiver makes its span a child of the sender's with [`follow`], so one
//! trace covers peer frame → gateway → bus → service → database.

use opentelemetry::propagation::{Extractor, Injector};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::{Headers, Message};

impl Injector for Headers {
    fn set(&mut self, key: &str, value: String) {
        self.insert(key, &value);
    }
}

impl Extractor for Headers {
    fn get(&self, key: &str) -> Option<&str> {
        Headers::get(self, key)
    }

    fn keys(&self) -> Vec<&str> {
        self.iter().map(|(k, _)| k).collect()
    }
}

/// Headers carrying the current span's trace context (empty when there is
/// no sampled trace or no propagator).
pub fn current_headers() -> Headers {
    let mut headers = Headers::new();
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&context, &mut headers));
    headers
}

/// The trace context a message carries.
pub fn context(headers: &Headers) -> opentelemetry::Context {
    opentelemetry::global::get_text_map_propagator(|p| p.extract(headers))
}

/// Makes `span` a child of the span that published `message`.
pub fn follow(span: &tracing::Span, message: &Message) {
    if message.headers.is_empty() {
        return;
    }
    // Fails only when the span is already started or disabled: nothing to do.
    let _ = span.set_parent(context(&message.headers));
}
