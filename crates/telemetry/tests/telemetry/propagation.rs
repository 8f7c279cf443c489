//! Trace context crosses a carrier: the receiver's span joins the sender's trace.

use std::collections::HashMap;

use opentelemetry::trace::TraceContextExt as _;
use skywire_telemetry::propagation::{
    MetadataExtractor, MetadataInjector, TRACEPARENT, context_from, grpc_parent, inject_current,
    inject_grpc, install_propagator, set_remote_parent,
};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::helpers::{finished_spans, in_memory_provider, span, with_tracing};

#[test]
fn hashmap_carrier_joins_the_senders_trace() {
    install_propagator();
    let (provider, exporter) = in_memory_provider();
    with_tracing(&provider, || {
        let parent = tracing::info_span!("parent");
        let mut carrier: HashMap<String, String> = HashMap::new();
        parent.in_scope(|| inject_current(&mut carrier));
        assert!(carrier.contains_key(TRACEPARENT), "{carrier:?}");

        // The other side: a span that is a root as far as `tracing` knows.
        let remote = context_from(&carrier);
        assert!(remote.span().span_context().is_remote());
        let child = tracing::info_span!(parent: None, "child");
        set_remote_parent(&child, &carrier);
        child.in_scope(|| tracing::info!("handling"));
    });

    let spans = finished_spans(&provider, &exporter);
    let parent = span(&spans, "parent");
    let child = span(&spans, "child");
    assert_eq!(
        child.span_context.trace_id(),
        parent.span_context.trace_id()
    );
    assert_eq!(child.parent_span_id, parent.span_context.span_id());
    assert!(child.parent_span_is_remote);
}

#[test]
fn grpc_metadata_joins_the_callers_trace() {
    install_propagator();
    let (provider, exporter) = in_memory_provider();
    with_tracing(&provider, || {
        let client = tracing::info_span!("client_call");
        let request = client
            .in_scope(|| inject_grpc(tonic::Request::new(())))
            .expect("interceptor");
        let traceparent = request
            .metadata()
            .get(TRACEPARENT)
            .expect("traceparent in metadata")
            .to_str()
            .expect("ascii");
        assert!(traceparent.starts_with("00-"), "{traceparent}");

        // The server: its span's parent is the caller's.
        let server = tracing::info_span!(parent: None, "server_handle");
        server
            .set_parent(grpc_parent(&request))
            .expect("parent set before the span starts");
        server.in_scope(|| tracing::info!("serving"));
    });

    let spans = finished_spans(&provider, &exporter);
    let client = span(&spans, "client_call");
    let server = span(&spans, "server_handle");
    assert_eq!(
        server.span_context.trace_id(),
        client.span_context.trace_id()
    );
    assert_eq!(server.parent_span_id, client.span_context.span_id());
}

#[test]
fn metadata_newtypes_round_trip() {
    install_propagator();
    let (provider, _exporter) = in_memory_provider();
    with_tracing(&provider, || {
        let span = tracing::info_span!("sender");
        let mut metadata = tonic::metadata::MetadataMap::new();
        span.in_scope(|| inject_current(&mut MetadataInjector(&mut metadata)));
        let extracted = context_from(&MetadataExtractor(&metadata));
        let sent = span.context();
        assert_eq!(
            extracted.span().span_context().trace_id(),
            sent.span().span_context().trace_id()
        );
        assert_eq!(
            extracted.span().span_context().span_id(),
            sent.span().span_context().span_id()
        );
        let extractor = MetadataExtractor(&metadata);
        let keys = opentelemetry::propagation::Extractor::keys(&extractor);
        assert!(keys.contains(&TRACEPARENT), "{keys:?}");
    });
}

#[test]
fn nothing_to_propagate_outside_a_span() {
    install_propagator();
    let (provider, _exporter) = in_memory_provider();
    with_tracing(&provider, || {
        let request = inject_grpc(tonic::Request::new(())).expect("interceptor");
        assert!(request.metadata().get(TRACEPARENT).is_none());
        assert!(!grpc_parent(&request).span().span_context().is_valid());

        // A carrier without context leaves the span a root.
        let empty: HashMap<String, String> = HashMap::new();
        let root = tracing::info_span!(parent: None, "root");
        set_remote_parent(&root, &empty);
        assert!(root.context().span().span_context().is_valid());
    });
}
