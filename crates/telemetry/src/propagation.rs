//! Trace context across process boundaries (W3C TraceContext).
//!
//! The sender injects the current span's context into the message's headers
//! ([`inject_current`]); the receiver extracts it ([`context_from`]) and makes
//! it the parent of the span that handles the message ([`set_remote_parent`]),
//! so both sides' spans share one trace.
//!
//! Any carrier implementing OpenTelemetry's [`Injector`]/[`Extractor`] works
//! (NATS headers, a `HashMap<String, String>`). For gRPC, [`inject_grpc`] is a
//! tonic client interceptor and [`grpc_parent`] reads the remote parent on the
//! server; [`MetadataInjector`] and [`MetadataExtractor`] adapt tonic's
//! [`MetadataMap`].
//!
//! All functions use the global propagator, which [`init`](crate::init) (or
//! [`install_propagator`]) sets to W3C TraceContext.

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tonic::metadata::{KeyRef, MetadataKey, MetadataMap, MetadataValue};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The header W3C TraceContext carries a span's identity in.
pub const TRACEPARENT: &str = "traceparent";

/// Sets the global text-map propagator to W3C TraceContext. [`init`](crate::init)
/// calls it; tests that skip `init` call it themselves. Idempotent.
pub fn install_propagator() {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
}

/// The OpenTelemetry context of the current `tracing` span, or, when that span
/// is not recorded by an OpenTelemetry layer, the current OpenTelemetry
/// context.
pub fn current_context() -> Context {
    let cx = tracing::Span::current().context();
    if cx.span().span_context().is_valid() {
        cx
    } else {
        Context::current()
    }
}

/// Writes `cx`'s trace context (`traceparent`, `tracestate`) into `carrier`.
pub fn inject(cx: &Context, carrier: &mut impl Injector) {
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(cx, carrier);
    });
}

/// Writes the current span's trace context into `carrier`. Writes nothing when
/// there is no sampled-in span to continue (no OpenTelemetry layer, no span).
pub fn inject_current(carrier: &mut impl Injector) {
    inject(&current_context(), carrier);
}

/// The remote context carried by `extractor`: a context whose span is the
/// sender's (remote) span, or an empty context when the carrier holds no
/// valid trace context.
pub fn context_from(extractor: &impl Extractor) -> Context {
    opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(extractor))
}

/// Makes the span carried by `extractor` the parent of `span`, which must not
/// have been entered yet. Does nothing when the carrier holds no trace
/// context, or when no OpenTelemetry layer records `span` (export off).
///
/// ```
/// use std::collections::HashMap;
///
/// let headers: HashMap<String, String> = HashMap::new(); // from the message
/// let span = tracing::info_span!("handle");
/// skywire_telemetry::propagation::set_remote_parent(&span, &headers);
/// let _entered = span.entered();
/// ```
pub fn set_remote_parent(span: &tracing::Span, extractor: &impl Extractor) {
    let cx = context_from(extractor);
    if cx.span().span_context().is_valid() {
        // Fails only without an OpenTelemetry layer (nothing to link) or
        // once the span has started, which callers avoid; neither is worth
        // more than a debug line.
        if let Err(error) = span.set_parent(cx) {
            tracing::trace!(%error, "remote parent not set");
        }
    }
}

/// A tonic client interceptor adding the current span's `traceparent` to the
/// request's metadata: `MyClient::with_interceptor(channel, inject_grpc)`.
///
/// ```
/// fn interceptor(_: impl tonic::service::Interceptor) {}
/// interceptor(skywire_telemetry::propagation::inject_grpc);
/// ```
///
/// # Errors
///
/// Never: the `Result` is the interceptor signature.
pub fn inject_grpc(mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
    inject_current(&mut MetadataInjector(request.metadata_mut()));
    Ok(request)
}

/// The remote parent a gRPC request carries (empty when none), for the
/// server's span:
///
/// ```
/// use tracing_opentelemetry::OpenTelemetrySpanExt as _;
///
/// fn handle(request: &tonic::Request<()>) {
///     let span = tracing::info_span!("rpc", otel.kind = "server");
///     let _ = span.set_parent(skywire_telemetry::propagation::grpc_parent(request));
///     let _entered = span.entered();
/// }
/// ```
pub fn grpc_parent<T>(request: &tonic::Request<T>) -> Context {
    context_from(&MetadataExtractor(request.metadata()))
}

/// Writes trace context into tonic [`MetadataMap`] (ASCII entries).
#[derive(Debug)]
pub struct MetadataInjector<'a>(pub &'a mut MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        // Propagator keys and values are valid ASCII metadata; skip anything
        // that is not rather than fail the call.
        let Ok(key) = MetadataKey::from_bytes(key.as_bytes()) else {
            return;
        };
        let Ok(value) = MetadataValue::try_from(value) else {
            return;
        };
        self.0.insert(key, value);
    }
}

/// Reads trace context from tonic [`MetadataMap`] (ASCII entries).
#[derive(Debug)]
pub struct MetadataExtractor<'a>(pub &'a MetadataMap);

impl Extractor for MetadataExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .filter_map(|key| match key {
                KeyRef::Ascii(key) => Some(key.as_str()),
                KeyRef::Binary(_) => None,
            })
            .collect()
    }
}
