//! The same behaviour from both transports: the in-process bus and a real
//! NATS server (`SKYWIRE_TEST_NATS_URL`, default `nats://127.0.0.1:4222`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::Bytes;
use skywire_bus::{Bus, BusError};

async fn buses() -> Vec<(&'static str, Bus)> {
    let url =
        std::env::var("SKYWIRE_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    vec![
        ("local", Bus::local()),
        (
            "nats",
            Bus::connect_nats(&url, "skywire-bus-test").await.unwrap(),
        ),
    ]
}

/// A subject prefix unique to one test run, so tests sharing a NATS server
/// never see each other's messages.
fn prefix() -> String {
    format!("test.{:016x}", rand::random::<u64>())
}

async fn recv(sub: &mut skywire_bus::Subscription) -> skywire_bus::Message {
    tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("message in time")
        .expect("subscription open")
}

#[tokio::test]
async fn wildcards_and_plain_subscribers_all_receive() {
    for (name, bus) in buses().await {
        let p = prefix();
        let mut exact = bus.subscribe(&format!("{p}.a.b")).await.unwrap();
        let mut star = bus.subscribe(&format!("{p}.*.b")).await.unwrap();
        let mut rest = bus.subscribe(&format!("{p}.>")).await.unwrap();
        bus.flush().await.unwrap();
        bus.publish(&format!("{p}.a.b"), Bytes::from_static(b"x"))
            .await
            .unwrap();
        for sub in [&mut exact, &mut star, &mut rest] {
            let m = recv(sub).await;
            assert_eq!(m.payload.as_ref(), b"x", "{name}");
            assert_eq!(m.subject, format!("{p}.a.b"), "{name}");
        }
        bus.publish(&format!("{p}.a.c"), Bytes::from_static(b"y"))
            .await
            .unwrap();
        assert_eq!(recv(&mut rest).await.payload.as_ref(), b"y", "{name}");
        assert!(
            tokio::time::timeout(Duration::from_millis(100), star.next())
                .await
                .is_err(),
            "{name}: *.b must not match a.c"
        );
    }
}

#[tokio::test]
async fn a_queue_group_delivers_each_message_once() {
    for (name, bus) in buses().await {
        let p = prefix();
        let subject = format!("{p}.work");
        let mut a = bus.queue_subscribe(&subject, "workers").await.unwrap();
        let mut b = bus.queue_subscribe(&subject, "workers").await.unwrap();
        bus.flush().await.unwrap();
        for i in 0..100u8 {
            bus.publish(&subject, Bytes::from(vec![i])).await.unwrap();
        }
        let mut seen = Vec::new();
        while seen.len() < 100 {
            tokio::select! {
                Some(m) = a.next() => seen.push(m.payload[0]),
                Some(m) = b.next() => seen.push(m.payload[0]),
                () = tokio::time::sleep(Duration::from_secs(5)) => panic!("{name}: only {} arrived", seen.len()),
            }
        }
        seen.sort_unstable();
        assert_eq!(
            seen,
            (0..100).collect::<Vec<u8>>(),
            "{name}: each message exactly once"
        );
    }
}

#[tokio::test]
async fn requests_get_replies_no_responders_or_a_timeout() {
    for (name, bus) in buses().await {
        let p = prefix();
        let subject = format!("{p}.svc");
        match bus
            .request(&subject, Bytes::new(), Duration::from_secs(2))
            .await
        {
            Err(BusError::NoResponders { .. }) => {}
            other => panic!("{name}: {other:?}"),
        }
        let mut server = bus.subscribe(&subject).await.unwrap();
        bus.flush().await.unwrap();
        let responder = bus.clone();
        let task = tokio::spawn(async move {
            let m = server.next().await.unwrap();
            let mut reply = m.payload.to_vec();
            reply.reverse();
            responder.respond(&m, reply.into()).await.unwrap();
            // Swallow the second request: the requester must time out.
            let _second = server.next().await;
            std::future::pending::<()>().await;
        });
        let reply = bus
            .request(&subject, Bytes::from_static(b"abc"), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(reply.payload.as_ref(), b"cba", "{name}");
        match bus
            .request(&subject, Bytes::new(), Duration::from_millis(200))
            .await
        {
            Err(BusError::Timeout { .. }) => {}
            other => panic!("{name}: {other:?}"),
        }
        task.abort();
    }
}

#[tokio::test]
async fn bad_subjects_and_oversized_payloads_are_refused() {
    for (name, bus) in buses().await {
        for bad in ["", "a..b", "a b", "a.*", "a.>"] {
            assert!(
                matches!(
                    bus.publish(bad, Bytes::new()).await,
                    Err(BusError::InvalidSubject(_))
                ),
                "{name}: {bad:?}"
            );
        }
        assert!(matches!(
            bus.subscribe("a.>.b").await,
            Err(BusError::InvalidSubject(_))
        ));
        let big = Bytes::from(vec![0u8; skywire_bus::MAX_PAYLOAD + 1]);
        assert!(matches!(
            bus.publish("a.b", big).await,
            Err(BusError::TooLarge { .. })
        ));
    }
}

#[tokio::test]
async fn dropping_a_subscription_unsubscribes() {
    let bus = Bus::local();
    let sub = bus.subscribe("x.y").await.unwrap();
    drop(sub);
    match bus
        .request("x.y", Bytes::new(), Duration::from_secs(1))
        .await
    {
        Err(BusError::NoResponders { .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error() {
    match Bus::connect_nats("nats://127.0.0.1:1", "t").await {
        Err(BusError::Connect { url, .. }) => assert_eq!(url, "nats://127.0.0.1:1"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn namespaces_keep_clusters_on_one_server_apart() {
    for (name, bus) in buses().await {
        let p = prefix();
        let blue = bus.clone().with_namespace(&format!("{p}.blue")).unwrap();
        let also_blue = bus.clone().with_namespace(&format!("{p}.blue")).unwrap();
        let green = bus.clone().with_namespace(&format!("{p}.green")).unwrap();
        let mut blue_sub = blue.subscribe("sw.peer.up").await.unwrap();
        let mut green_sub = green.subscribe("sw.peer.up").await.unwrap();
        // Requests and replies work inside a namespace.
        let mut server = blue.subscribe("sw.svc").await.unwrap();
        bus.flush().await.unwrap();
        also_blue
            .publish("sw.peer.up", Bytes::from_static(b"b"))
            .await
            .unwrap();
        let m = recv(&mut blue_sub).await;
        assert_eq!(
            (m.subject.as_str(), m.payload.as_ref()),
            ("sw.peer.up", &b"b"[..]),
            "{name}"
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(100), green_sub.next())
                .await
                .is_err(),
            "{name}: green heard blue"
        );
        let responder = blue.clone();
        tokio::spawn(async move {
            let m = server.next().await.unwrap();
            responder
                .respond(&m, Bytes::from_static(b"pong"))
                .await
                .unwrap();
        });
        let reply = also_blue
            .request("sw.svc", Bytes::new(), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(reply.payload.as_ref(), b"pong", "{name}");
        assert!(matches!(
            green
                .request("sw.svc", Bytes::new(), Duration::from_secs(1))
                .await,
            Err(BusError::NoResponders { .. })
        ));
        assert!(bus.clone().with_namespace("bad space").is_err());
    }
}
