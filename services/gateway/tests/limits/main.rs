//! Per-IP limits at the gateway: the connection cap and the new-connection
//! rate hold across replicas sharing Redis, behave the same on one embedded
//! gateway (memory store), and fail open when Redis is unreachable.
//!
//! Every client dials from 127.0.0.1, so every test uses keys of its own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

use std::net::SocketAddr;
use std::time::Duration;

use helpers::{Proxy, TestGateway, hang_up, limits, replicas};
use skywire_gateway::testing::test_redis_url;
use skywire_kv::Kv;
use skywire_wire::Reason;

async fn redis() -> Kv {
    Kv::connect_redis(&test_redis_url())
        .await
        .expect("Redis (start it with scripts/services.sh)")
}

/// With a cap of two per IP over `gateways` (one or more replicas): two
/// clients are admitted, a third is refused on every replica, and once one
/// leaves a new client is admitted again.
async fn connection_cap(gateways: &[TestGateway]) {
    let first = &gateways[0];
    let second = gateways.last().unwrap();
    let a = first.admitted().await;
    let _b = second.admitted().await;
    for gateway in gateways {
        assert_eq!(gateway.refused().await, Reason::TooManyPeers);
    }
    hang_up(a).await;
    // The slot is released when the gateway sees the connection end.
    let mut admitted = None;
    for _ in 0..100 {
        match second.dial().await {
            Ok(conn) => {
                admitted = Some(conn);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    assert!(admitted.is_some(), "the freed slot was never given out");
    // And the count is back at its cap.
    assert_eq!(first.refused().await, Reason::TooManyPeers);
}

/// With three new connections per IP per minute over `gateways`: three are
/// admitted (even once they have left), the fourth is refused on every
/// replica.
async fn new_connection_rate(gateways: &[TestGateway]) {
    for i in 0..3 {
        let conn = gateways[i % gateways.len()].admitted().await;
        if i == 0 {
            // Leaving does not give a new connection back.
            hang_up(conn).await;
        }
    }
    for gateway in gateways {
        assert_eq!(gateway.refused().await, Reason::RateLimited);
    }
}

async fn stop(gateways: Vec<TestGateway>) {
    for gateway in gateways {
        gateway.stop().await;
    }
}

#[tokio::test]
async fn the_connection_cap_holds_across_replicas_sharing_redis() {
    let gateways = replicas(2, &redis().await, &limits(2, 60)).await;
    connection_cap(&gateways).await;
    stop(gateways).await;
}

#[tokio::test]
async fn the_new_connection_rate_holds_across_replicas_sharing_redis() {
    let gateways = replicas(2, &redis().await, &limits(16, 3)).await;
    new_connection_rate(&gateways).await;
    stop(gateways).await;
}

#[tokio::test]
async fn the_connection_cap_holds_on_an_embedded_gateway() {
    let gateways = replicas(1, &Kv::memory(), &limits(2, 60)).await;
    connection_cap(&gateways).await;
    stop(gateways).await;
}

#[tokio::test]
async fn the_new_connection_rate_holds_on_an_embedded_gateway() {
    let gateways = replicas(1, &Kv::memory(), &limits(16, 3)).await;
    new_connection_rate(&gateways).await;
    stop(gateways).await;
}

#[tokio::test]
async fn a_slot_held_by_one_replica_is_freed_when_that_replica_shuts_down() {
    let gateways = replicas(2, &redis().await, &limits(1, 60)).await;
    let mut gateways = gateways.into_iter();
    let (first, second) = (gateways.next().unwrap(), gateways.next().unwrap());
    let _a = first.admitted().await;
    assert_eq!(second.refused().await, Reason::TooManyPeers);
    // Shutting down says GoAway to every peer, so their slots are released.
    first.stop().await;
    second.admitted().await;
    second.stop().await;
}

#[tokio::test]
async fn an_unreachable_redis_fails_open() {
    let url = test_redis_url();
    let host = url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let target: SocketAddr = tokio::net::lookup_host(host).await.unwrap().next().unwrap();
    let proxy = Proxy::start(target).await;
    let kv = Kv::connect_redis(&format!("redis://{}", proxy.addr))
        .await
        .unwrap();
    let gateways = replicas(1, &kv, &limits(1, 60)).await;
    let gateway = &gateways[0];
    // Through the proxy, the limits hold.
    let _a = gateway.admitted().await;
    assert_eq!(gateway.refused().await, Reason::TooManyPeers);
    // Redis goes away: peers are admitted unchecked rather than all refused.
    proxy.cut().await;
    let _b = gateway.admitted().await;
    let _c = gateway.admitted().await;
    // Never held up beyond the admission bound by a dead Redis.
    let started = std::time::Instant::now();
    let _d = gateway.admitted().await;
    assert!(
        started.elapsed() < skywire_wire::node::ADMISSION_TIMEOUT + Duration::from_secs(1),
        "admission took {:?}",
        started.elapsed()
    );
    stop(gateways).await;
}
