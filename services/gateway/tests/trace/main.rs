//! One trace from a peer's message through the gateway, NATS and a service
//! down to the service's database query, recorded by an in-memory exporter.
//!
//! Needs NATS (`SKYWIRE_TEST_NATS_URL`, default `nats://127.0.0.1:4222`) and
//! PostgreSQL (`SKYWIRE_TEST_DATABASE_URL`), as `scripts/services.sh` starts
//! them. This binary installs the global `tracing` subscriber, so it holds
//! this one test only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::Bytes;
use opentelemetry::trace::SpanId;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use secp256k1::SecretKey;
use skywire_bus::Bus;
use skywire_db::Db;
use skywire_gateway::limits::IpLimitConfig;
use skywire_gateway::testing::{connection_config, loopback_node, test_nats_url, unique};
use skywire_gateway::{Gateway, GatewayConfig, GatewayHandle, Metrics};
use skywire_kv::Kv;
use skywire_kv::presence::Presence;
use skywire_service::{ServiceChannel, ServiceHost};
use skywire_wire::{ConnectionConfig, driver};
use tracing::Instrument as _;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;

/// How long the test waits for anything: a service to be advertised, a
/// reply, the spans of work still finishing.
const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_from_peer_frame_to_database_query() {
    let (provider, exporter) = trace_to_memory();

    let (db, _url) = skywire_db::testing::fresh_postgres()
        .await
        .expect("PostgreSQL for tests (scripts/services.sh)");
    let Db::Postgres(pool) = &db else {
        panic!("fresh_postgres gave {:?}", db.backend())
    };
    sqlx::query("CREATE TABLE messages (id BIGSERIAL PRIMARY KEY, body BYTEA NOT NULL)")
        .execute(pool)
        .await
        .unwrap();

    // Gateway and service instance each on their own NATS connection, as
    // separate processes would be.
    let kv = Kv::memory();
    let presence = Presence::new(kv.clone());
    let (gateway, gateway_task) = start_gateway(nats().await, presence.clone(), kv).await;
    let host = ServiceHost::start(nats().await, presence, &unique("svc"))
        .await
        .unwrap();
    let service = format!("{}/1", unique("trace"));
    let mut incoming = host.serve(&service).await.unwrap();
    let handlers = tokio::spawn({
        let pool = pool.clone();
        async move {
            while let Some(channel) = incoming.next().await {
                tokio::spawn(store_and_answer(channel, pool.clone()));
            }
        }
    });
    wait_advertised(&gateway, &service).await;

    // The peer: one message, one reply.
    let node = gateway.node().unwrap();
    let client = driver::dial(node.local_addr(), &node.public_key(), &client_config())
        .await
        .unwrap();
    let mut channel = client.open(&service, 0).await.unwrap();
    channel.send(Bytes::from_static(b"hello")).await.unwrap();
    let reply = tokio::time::timeout(WAIT, channel.recv())
        .await
        .expect("reply in time")
        .unwrap()
        .expect("a reply, not the end");
    assert_eq!(reply.as_ref(), b"stored 1");

    // Spans end as their work returns, which may be just after the reply.
    let spans = finished_spans(
        &provider,
        &exporter,
        &[
            "gateway.open",
            "service.open",
            "gateway.forward",
            "service.handle",
            "db.query",
            "gateway.deliver",
        ],
    )
    .await;
    let open = span(&spans, "gateway.open");
    let accept = span(&spans, "service.open");
    let forward = span(&spans, "gateway.forward");
    let handle = span(&spans, "service.handle");
    let query = span(&spans, "db.query");
    let deliver = span(&spans, "gateway.deliver");

    // Peer message → gateway → NATS → service → database: one trace, each
    // span under the one before (a no-op `follow` would leave the service's
    // span the root of a trace of its own).
    let trace = forward.span_context.trace_id();
    for later in [handle, query] {
        assert_eq!(later.span_context.trace_id(), trace, "{}", later.name);
    }
    assert_descends(&spans, handle, forward);
    assert_descends(&spans, query, handle);
    // The link carried the gateway's span itself, as a remote parent.
    assert_eq!(handle.parent_span_id, forward.span_context.span_id());
    assert!(handle.parent_span_is_remote);
    assert_eq!(query.parent_span_id, handle.span_context.span_id());
    // The reply goes back in the same trace.
    assert_descends(&spans, deliver, handle);
    // The open: the instance accepted under the gateway's request.
    assert_descends(&spans, accept, open);
    assert_eq!(
        attribute(accept, "accepted").as_deref(),
        Some("true"),
        "{accept:#?}"
    );
    assert_eq!(attribute(forward, "bytes").as_deref(), Some("5"));
    assert_eq!(
        attribute(forward, "service").as_deref(),
        Some(service.as_str())
    );

    channel.finish().unwrap();
    handlers.abort();
    gateway.shutdown();
    gateway_task.await.unwrap();
    host.shutdown().await;
    db.close().await;
}

/// A service handler: stores each message in the database and answers with
/// its row id, in a `service.handle` span that follows the message and a
/// `db.query` span under it.
async fn store_and_answer(mut channel: ServiceChannel, pool: sqlx::PgPool) {
    while let Ok(Some(message)) = channel.recv().await {
        let span = tracing::info_span!("service.handle", bytes = message.len());
        channel.follow(&span);
        let answered = async {
            let id: i64 =
                sqlx::query_scalar("INSERT INTO messages (body) VALUES ($1) RETURNING id")
                    .bind(message.to_vec())
                    .fetch_one(&pool)
                    .instrument(tracing::info_span!(
                        "db.query",
                        otel.kind = "client",
                        db.system.name = "postgresql",
                        db.operation.name = "INSERT",
                    ))
                    .await
                    .unwrap();
            channel.send(Bytes::from(format!("stored {id}"))).await
        }
        .instrument(span)
        .await;
        if answered.is_err() {
            return;
        }
    }
    let _ = channel.finish().await;
}

/// Installs, for this test binary, a global subscriber exporting every span
/// at once into memory, and the W3C propagator. `TEST_LOG=1` also logs.
fn trace_to_memory() -> (SdkTracerProvider, InMemorySpanExporter) {
    skywire_telemetry::propagation::install_propagator();
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let log = std::env::var_os("TEST_LOG").is_some().then(|| {
        tracing_subscriber::fmt::layer()
            .with_test_writer()
            .with_filter(tracing_subscriber::EnvFilter::new("debug"))
    });
    let subscriber = tracing_subscriber::registry()
        .with(skywire_telemetry::layer_for(&provider))
        .with(log);
    tracing::subscriber::set_global_default(subscriber).expect("the only test of this binary");
    (provider, exporter)
}

/// The exported spans, once every span named in `names` is among them.
async fn finished_spans(
    provider: &SdkTracerProvider,
    exporter: &InMemorySpanExporter,
    names: &[&str],
) -> Vec<SpanData> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        provider.force_flush().unwrap();
        let spans = exporter.get_finished_spans().unwrap();
        if names.iter().all(|n| spans.iter().any(|s| s.name == *n)) {
            return spans;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "spans {names:?} not all exported: {:?}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The one span named `name`.
fn span<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    let mut named = spans.iter().filter(|s| s.name == name);
    let found = named
        .next()
        .unwrap_or_else(|| panic!("no span {name:?} in {spans:#?}"));
    assert!(named.next().is_none(), "more than one span {name:?}");
    found
}

/// Asserts that `ancestor` is on `span`'s parent chain (through the exported
/// spans), in the same trace.
fn assert_descends(spans: &[SpanData], span: &SpanData, ancestor: &SpanData) {
    let trace = span.span_context.trace_id();
    assert_eq!(
        trace,
        ancestor.span_context.trace_id(),
        "{} and {} are in different traces",
        span.name,
        ancestor.name
    );
    let mut parent = span.parent_span_id;
    while parent != SpanId::INVALID {
        if parent == ancestor.span_context.span_id() {
            return;
        }
        parent = spans
            .iter()
            .find(|s| s.span_context.trace_id() == trace && s.span_context.span_id() == parent)
            .map_or(SpanId::INVALID, |s| s.parent_span_id);
    }
    panic!(
        "{} does not descend from {}: {spans:#?}",
        span.name, ancestor.name
    );
}

/// A span attribute's value, as text.
fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

/// A new connection to the test NATS server.
async fn nats() -> Bus {
    Bus::connect_nats(&test_nats_url(), "skywire-test")
        .await
        .expect("NATS for tests (scripts/services.sh)")
}

/// A fresh identity's connection config.
fn client_config() -> ConnectionConfig {
    connection_config(SecretKey::new(&mut rand::rng()))
}

async fn start_gateway(
    bus: Bus,
    presence: Presence,
    kv: Kv,
) -> (GatewayHandle, tokio::task::JoinHandle<()>) {
    let config = GatewayConfig {
        id: unique("gw"),
        node: loopback_node(client_config(), 16),
        limits: IpLimitConfig::default(),
    };
    let gateway = Gateway::bind(config, bus, presence, kv, &Metrics::new())
        .await
        .unwrap();
    let handle = gateway.handle();
    (handle, tokio::spawn(gateway.run()))
}

async fn wait_advertised(gateway: &GatewayHandle, service: &str) {
    let wait = async {
        while !gateway.live_services().iter().any(|s| s == service) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(WAIT, wait)
        .await
        .unwrap_or_else(|_| panic!("{service} never advertised"));
}
