//! The gateway's Prometheus metrics, read from the encoded registry (and
//! once over HTTP) while real peers and services talk through a gateway
//! over TCP.

use std::time::Duration;

use bytes::Bytes;
use skywire_gateway::Metrics;
use skywire_gateway::bridge::{QUEUE_TO_PEER, QUEUE_TO_SERVICE};
use skywire_gateway::limits::IpLimitConfig;
use skywire_wire::driver::OpenChannelError;
use skywire_wire::pb::{self, control::Msg};
use skywire_wire::testing::RawClient;
use skywire_wire::{ConnectError, Reason};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::{Infra, MODES, Mode, start, start_reverse, stop};

const CONNECTIONS: &str = "skywire_gateway_connections";
const CHANNELS: &str = "skywire_gateway_channels";

/// The series of `family` (`bytes` or `frames`) for `service` traffic
/// flowing `direction`.
fn traffic(family: &str, service: &str, direction: &str) -> String {
    format!(r#"skywire_gateway_{family}_total{{service="{service}",direction="{direction}"}}"#)
}

fn queue(name: &str) -> String {
    format!(r#"skywire_gateway_queue_depth{{queue="{name}"}}"#)
}

fn go_aways(reason: &str) -> String {
    format!(r#"skywire_gateway_goaways_total{{reason="{reason}"}}"#)
}

/// The value of `series` (its name and labels, as encoded) in `metrics`.
fn sample(metrics: &Metrics, series: &str) -> Option<i64> {
    metrics
        .encode()
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Waits until `series` reads `value` (metrics are updated by the
/// gateway's tasks, a moment after what a peer sees).
async fn expect(metrics: &Metrics, series: &str, value: i64) {
    let reached = tokio::time::timeout(Duration::from_secs(10), async {
        while sample(metrics, series) != Some(value) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        reached.is_ok(),
        "{series} never read {value}:\n{}",
        metrics.encode()
    );
}

#[tokio::test]
async fn connections_channels_and_bridged_traffic_are_counted() {
    for mode in MODES {
        let (_infra, gateway, host, service) = start_reverse(mode, "reverse").await;
        let metrics = &gateway.metrics;
        expect(metrics, CONNECTIONS, 0).await;

        let client = gateway.client().await;
        expect(metrics, CONNECTIONS, 1).await;
        let mut channel = client.open(&service, 0).await.unwrap();
        expect(metrics, CHANNELS, 1).await;
        // Small, empty, and over one bus piece (256 KiB): 1 + 1 + 2 frames.
        for size in [5, 0, 300_000] {
            channel.send(Bytes::from(vec![7u8; size])).await.unwrap();
            let reply = channel.recv().await.unwrap().unwrap();
            assert_eq!(reply.len(), size, "{mode:?}");
        }
        for direction in ["in", "out"] {
            expect(metrics, &traffic("bytes", &service, direction), 300_005).await;
            expect(metrics, &traffic("frames", &service, direction), 4).await;
        }
        channel.finish().unwrap();
        assert_eq!(channel.recv().await.unwrap(), None, "{mode:?}");
        expect(metrics, CHANNELS, 0).await;
        expect(metrics, &queue(QUEUE_TO_SERVICE), 0).await;
        expect(metrics, &queue(QUEUE_TO_PEER), 0).await;

        client.go_away(Reason::Normal, "bye");
        client.closed().await;
        expect(metrics, CONNECTIONS, 0).await;
        // The peer said GoAway, not us.
        let text = metrics.encode();
        assert!(
            !text.contains("skywire_gateway_goaways_total{"),
            "{mode:?}:\n{text}"
        );
        stop(gateway, host).await;
    }
}

#[tokio::test]
async fn queue_depths_show_a_slow_service_and_a_slow_peer() {
    for mode in MODES {
        let (infra, gateway, host) = start(mode).await;
        let metrics = &gateway.metrics;
        let service = infra.service("sink");
        let mut incoming = host.serve(&service).await.unwrap();
        gateway.wait_service(&service, true).await;
        let client = gateway.client().await;
        let mut channel = client.open(&service, 0).await.unwrap();
        let mut held = incoming.next().await.unwrap();
        let piece = Bytes::from(vec![1u8; 200 * 1024]);

        // The service does not read: the link's 256 KiB window takes two
        // messages, the third waits at the gateway for credit.
        for _ in 0..3 {
            channel.send(piece.clone()).await.unwrap();
        }
        expect(metrics, &queue(QUEUE_TO_SERVICE), 1).await;
        for _ in 0..3 {
            held.recv().await.unwrap().unwrap();
        }
        expect(metrics, &queue(QUEUE_TO_SERVICE), 0).await;

        // The peer does not read: past its window and its channel's send
        // buffer (1 MiB), the service's messages wait at the gateway.
        const SENT: usize = 16;
        let sender = tokio::spawn({
            let piece = piece.clone();
            async move {
                for _ in 0..SENT {
                    held.send(piece.clone()).await.unwrap();
                }
                held
            }
        });
        expect(metrics, &queue(QUEUE_TO_PEER), 1).await;
        for _ in 0..SENT {
            channel.recv().await.unwrap().unwrap();
        }
        let _held = sender.await.unwrap();
        expect(metrics, &queue(QUEUE_TO_PEER), 0).await;
        let bytes = |messages: usize| i64::try_from(messages * piece.len()).unwrap();
        expect(metrics, &traffic("bytes", &service, "in"), bytes(3)).await;
        expect(metrics, &traffic("bytes", &service, "out"), bytes(SENT)).await;
        stop(gateway, host).await;
    }
}

#[tokio::test]
async fn service_names_outside_the_registry_mint_no_series() {
    for mode in MODES {
        let (infra, gateway, host) = start(mode).await;
        let metrics = &gateway.metrics;
        let (client, node_id) = gateway.client_with_id().await;

        // A peer naming a service nobody serves is turned away uncounted.
        let unknown = infra.service("nosuch");
        match client.open(&unknown, 0).await {
            Err(OpenChannelError::Rejected { reason, .. }) => {
                assert_eq!(reason, Reason::UnknownService, "{mode:?}")
            }
            other => panic!("{mode:?}: {other:?}"),
        }

        // A service opening a channel under a name no heartbeat announced:
        // its traffic counts, as "other".
        infra.wait_present(&node_id).await;
        let unheard = infra.service("unheard");
        let peer_side = tokio::spawn({
            let client = client.clone();
            async move {
                let mut channel = client.next_incoming().await.unwrap().accept().unwrap();
                let message = channel.recv().await.unwrap().unwrap();
                channel.send(Bytes::from_static(b"ack!")).await.unwrap();
                message
            }
        });
        let mut channel = host.open(&node_id, &unheard, 0).await.unwrap();
        channel
            .send(Bytes::from_static(b"invoice paid"))
            .await
            .unwrap();
        assert_eq!(channel.recv().await.unwrap().unwrap().as_ref(), b"ack!");
        assert_eq!(peer_side.await.unwrap().as_ref(), b"invoice paid");
        expect(metrics, &traffic("bytes", "other", "out"), 12).await;
        expect(metrics, &traffic("bytes", "other", "in"), 4).await;
        expect(metrics, &traffic("frames", "other", "out"), 1).await;
        expect(metrics, &traffic("frames", "other", "in"), 1).await;
        let text = metrics.encode();
        assert!(
            !text.contains("nosuch") && !text.contains("unheard"),
            "{mode:?}: a name became a label:\n{text}"
        );
        stop(gateway, host).await;
    }
}

#[tokio::test]
async fn go_aways_are_counted_by_reason() {
    for mode in MODES {
        let infra = Infra::new(mode).await;
        let gateway = infra
            .gateway_with_limits(IpLimitConfig {
                max_connections_per_ip: 1,
                ..IpLimitConfig::default()
            })
            .await;
        let metrics = &gateway.metrics;
        let (client, node_id) = gateway.client_with_id().await;
        expect(metrics, CONNECTIONS, 1).await;

        // A second peer from the same IP is refused before Hello.
        match gateway.dial().await.0 {
            Err(ConnectError::Closed(close)) => {
                assert_eq!(close.reason, Reason::TooManyPeers, "{mode:?}")
            }
            other => panic!("{mode:?}: expected a refusal, got {other:?}"),
        }
        expect(metrics, &go_aways("REASON_TOO_MANY_PEERS"), 1).await;
        expect(metrics, CONNECTIONS, 1).await;

        // A ban ends the live connection.
        let peer = secp256k1::PublicKey::from_slice(&node_id).unwrap();
        let node = gateway.handle.node().unwrap();
        node.ban(&peer, Duration::from_secs(60), "test");
        let closed = client.closed().await;
        assert_eq!(closed.reason, Reason::Banned, "{mode:?}");
        expect(metrics, &go_aways("REASON_BANNED"), 1).await;
        expect(metrics, CONNECTIONS, 0).await;
        gateway.stop().await;
    }
}

#[tokio::test]
async fn a_protocol_error_found_by_the_wire_layer_is_counted() {
    for mode in MODES {
        let infra = Infra::new(mode).await;
        let gateway = infra.gateway().await;
        let node = gateway.handle.node().unwrap();
        // A dialer may only open odd channel ids.
        let mut rogue = RawClient::hello(node.local_addr(), &node.public_key()).await;
        rogue
            .send_control(Msg::Open(pb::Open {
                channel: 2,
                service: "echo/1".into(),
                priority: 0,
            }))
            .await;
        assert_eq!(rogue.expect_go_away().await, Reason::ProtocolError);
        expect(&gateway.metrics, &go_aways("REASON_PROTOCOL_ERROR"), 1).await;
        expect(&gateway.metrics, CONNECTIONS, 0).await;
        gateway.stop().await;
    }
}

#[tokio::test]
async fn metrics_are_scraped_over_http() {
    let infra = Infra::new(Mode::Embedded).await;
    let gateway = infra.gateway().await;
    let _client = gateway.client().await;
    expect(&gateway.metrics, CONNECTIONS, 1).await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = skywire_telemetry::http::router(
        gateway.metrics.clone(),
        skywire_telemetry::Readiness::new(),
    );
    let stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(skywire_telemetry::http::serve(
        listener,
        router,
        stop.clone(),
    ));
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        stream.read_to_string(&mut response),
    )
    .await
    .expect("answered in time")
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text"),
        "{response}"
    );
    assert!(
        response
            .lines()
            .any(|l| l == "skywire_gateway_connections 1"),
        "{response}"
    );

    stop.cancel();
    server.await.unwrap().unwrap();
    gateway.stop().await;
}
