//! Trace context in bus headers (W3C `traceparent`/`tracestate`, through
//! whatever propagator `skywire-telemetry` installed globally).
//!
//! Publishing injects the current span's context ([`current_headers`]); a
//! receiver makes its span a child of the sender's with [`follow`] (or, for a
//! context kept from an earlier message, [`follow_context`]), so one trace
//! covers peer frame → gateway → bus → service → database.
//!
//! Without an OpenTelemetry layer nothing is injected, headers stay empty,
//! and reading them back costs nothing: [`context`] returns an empty
//! [`Context`] without consulting the propagator.

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::{Headers, Message};

/// An OpenTelemetry context: what a message's headers carry, kept by
/// receivers (e.g. a link's) so a handler can follow the message later.
pub use opentelemetry::Context;

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

/// The trace context a message carries: the sender's span as a remote
/// parent, or an empty context when the headers carry none. Independent of
/// the receiving thread's current context.
pub fn context(headers: &Headers) -> Context {
    if headers.is_empty() {
        return Context::new();
    }
    opentelemetry::global::get_text_map_propagator(|p| {
        p.extract_with_context(&Context::new(), headers)
    })
}

/// Makes `span` a child of the span that published `message`. Call it
/// before `span` is first entered; does nothing when the message carries no
/// trace context.
pub fn follow(span: &tracing::Span, message: &Message) {
    follow_context(span, &context(&message.headers));
}

/// Makes `span` a child of `context`'s span (from [`context`], or kept by a
/// receiver). Call it before `span` is first entered; does nothing when
/// `context` holds no valid span.
pub fn follow_context(span: &tracing::Span, context: &Context) {
    if !context.span().span_context().is_valid() {
        return;
    }
    // Fails only when the span is already started or disabled: nothing to do.
    let _ = span.set_parent(context.clone());
}
