//! `serve` on loopback: answers real HTTP/1.1 and stops on cancel.

use std::time::Duration;

use skywire_telemetry::http::{router, serve};
use skywire_telemetry::{Metrics, Readiness};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Longer than anything here should take.
const HANG: Duration = Duration::from_secs(10);

/// Sends `GET path` and returns the whole response.
async fn raw_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write request");
    let mut response = Vec::new();
    tokio::time::timeout(HANG, stream.read_to_end(&mut response))
        .await
        .expect("response in time")
        .expect("read response");
    String::from_utf8(response).expect("utf-8 response")
}

#[tokio::test]
async fn serves_http_until_cancelled() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(serve(
        listener,
        router(Metrics::new(), Readiness::new()),
        shutdown.clone(),
    ));

    let response = raw_get(addr, "/healthz").await;
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.ends_with("\r\n\r\nok"), "{response}");

    let response = raw_get(addr, "/missing").await;
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");

    shutdown.cancel();
    tokio::time::timeout(HANG, server)
        .await
        .expect("stopped in time")
        .expect("task")
        .expect("served cleanly");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "listener closed after shutdown"
    );
}

#[tokio::test]
async fn idle_connection_does_not_block_shutdown() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(serve(
        listener,
        router(Metrics::new(), Readiness::new()),
        shutdown.clone(),
    ));
    // A keep-alive connection that made one request and stays open.
    let mut idle = TcpStream::connect(addr).await.expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0_u8; 256];
    let read = idle.read(&mut buf).await.expect("read");
    assert!(buf[..read].starts_with(b"HTTP/1.1 200"));

    shutdown.cancel();
    tokio::time::timeout(HANG, server)
        .await
        .expect("stopped in time")
        .expect("task")
        .expect("served cleanly");
}
