//! The operations router through `oneshot`, without a socket.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::{StatusCode, header};
use skywire_telemetry::http::{HTTP_CONCURRENCY_LIMIT, router};
use skywire_telemetry::metrics::{Direction, GatewayMetrics, ServiceNames};
use skywire_telemetry::{Metrics, Readiness};
use tokio::sync::Notify;
use tower::ServiceExt as _;

use crate::helpers::{get, json, text};

/// Longer than any request here should take; a test that hits it has hung.
const HANG: Duration = Duration::from_secs(10);

#[tokio::test]
async fn metrics_lists_the_gateway_families() {
    let metrics = Metrics::new();
    let gateway = GatewayMetrics::register(&metrics);
    let services = ServiceNames::new(["echo/1"]);
    gateway.connections.inc();
    gateway.channels.inc();
    gateway
        .traffic(&services.label("echo/1"), Direction::Out)
        .record(42, 1);
    gateway.goaway("REASON_SHUTTING_DOWN");
    gateway.queue("bus").set(2);

    let response = router(metrics, Readiness::new())
        .oneshot(get("/metrics"))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .expect("content type")
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let body = text(response).await;
    for name in [
        "skywire_gateway_connections 1",
        "skywire_gateway_channels 1",
        r#"skywire_gateway_bytes_total{service="echo/1",direction="out"} 42"#,
        r#"skywire_gateway_frames_total{service="echo/1",direction="out"} 1"#,
        r#"skywire_gateway_goaways_total{reason="REASON_SHUTTING_DOWN"} 1"#,
        r#"skywire_gateway_queue_depth{queue="bus"} 2"#,
    ] {
        assert!(body.contains(name), "missing {name:?} in\n{body}");
    }
}

#[tokio::test]
async fn healthz_is_ok() {
    let response = router(Metrics::new(), Readiness::new())
        .oneshot(get("/healthz"))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(text(response).await, "ok");
}

#[tokio::test]
async fn readyz_passes_when_every_check_does() {
    let ready = Readiness::new();
    ready.add("nats", || async { Ok(()) });
    ready.add("db", || async { Ok(()) });
    let response = router(Metrics::new(), ready)
        .oneshot(get("/readyz"))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        json(response).await,
        serde_json::json!({"ready": true, "failing": []})
    );
}

#[tokio::test]
async fn readyz_names_the_failing_check() {
    let ready = Readiness::new();
    ready.add("db", || async { Ok(()) });
    ready.add("nats", || async { Err("not connected".to_owned()) });
    let response = router(Metrics::new(), ready)
        .oneshot(get("/readyz"))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        json(response).await,
        serde_json::json!({
            "ready": false,
            "failing": [{"check": "nats", "error": "not connected"}],
        })
    );
}

#[tokio::test]
async fn readyz_does_not_hang_on_a_stuck_check() {
    let ready = Readiness::with_check_timeout(Duration::from_millis(100));
    ready.add("stuck", std::future::pending::<Result<(), String>>);
    ready.add("ok", || async { Ok(()) });
    let response =
        tokio::time::timeout(HANG, router(Metrics::new(), ready).oneshot(get("/readyz")))
            .await
            .expect("/readyz answered")
            .expect("infallible");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = json(response).await;
    assert_eq!(body["ready"], false);
    assert_eq!(body["failing"][0]["check"], "stuck");
    assert!(
        body["failing"][0]["error"]
            .as_str()
            .expect("error string")
            .contains("timed out"),
        "{body}"
    );
}

#[tokio::test]
async fn readyz_reports_a_panicking_check() {
    let ready = Readiness::new();
    ready.add("boom", || async { panic!("check exploded") });
    let response = router(Metrics::new(), ready)
        .oneshot(get("/readyz"))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = json(response).await;
    assert_eq!(body["failing"][0]["check"], "boom");
}

#[tokio::test]
async fn checks_added_after_the_router_count() {
    let ready = Readiness::new();
    let app = router(Metrics::new(), ready.clone());
    ready.add("late", || async { Err("starting".to_owned()) });
    let response = app.oneshot(get("/readyz")).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn unknown_path_is_a_json_404() {
    let response = router(Metrics::new(), Readiness::new())
        .oneshot(get("/nope"))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        json(response).await,
        serde_json::json!({"error": "not found"})
    );
}

#[tokio::test]
async fn requests_over_the_concurrency_limit_are_shed() {
    let started = Arc::new(AtomicUsize::new(0));
    let all_started = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let ready = Readiness::new();
    {
        let (started, all_started, release) =
            (started.clone(), all_started.clone(), release.clone());
        ready.add("gate", move || {
            let (started, all_started, release) =
                (started.clone(), all_started.clone(), release.clone());
            async move {
                let released = release.notified();
                if started.fetch_add(1, Ordering::SeqCst) + 1 == HTTP_CONCURRENCY_LIMIT {
                    all_started.notify_one();
                }
                released.await;
                Ok(())
            }
        });
    }
    let app = router(Metrics::new(), ready);

    // Fill every slot with a /readyz waiting on the gate.
    let mut in_flight = tokio::task::JoinSet::new();
    for _ in 0..HTTP_CONCURRENCY_LIMIT {
        in_flight.spawn(app.clone().oneshot(get("/readyz")));
    }
    tokio::time::timeout(HANG, all_started.notified())
        .await
        .expect("all slots taken");

    // One more is shed at once, on any route.
    let shed = tokio::time::timeout(HANG, app.clone().oneshot(get("/healthz")))
        .await
        .expect("shed at once")
        .expect("infallible");
    assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json(shed).await, serde_json::json!({"error": "overloaded"}));

    release.notify_waiters();
    while let Some(done) = in_flight.join_next().await {
        let response = done.expect("task").expect("infallible");
        assert_eq!(response.status(), StatusCode::OK);
    }

    // Slots free again.
    let response = app.oneshot(get("/healthz")).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
}
