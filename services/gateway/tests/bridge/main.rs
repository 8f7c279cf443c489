//! The gateway bridging SWP/1 channels to services over the bus, in both
//! modes: in-process bus (embedded) and real NATS + Redis (cluster), and
//! its metrics (`metrics`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;
mod metrics;

use std::time::Duration;

use bytes::Bytes;
use helpers::{Infra, MODES, serve_reverse, start, start_reverse, stop};
use skywire_wire::Reason;
use skywire_wire::driver::OpenChannelError;

fn reversed(data: &[u8]) -> Vec<u8> {
    let mut v = data.to_vec();
    v.reverse();
    v
}

#[tokio::test]
async fn peer_reaches_a_service_behind_the_bus() {
    for mode in MODES {
        let (_infra, gateway, host, service) = start_reverse(mode, "reverse").await;

        let client = gateway.client().await;
        let advertised: Vec<String> = client
            .peer_hello()
            .unwrap()
            .services
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert!(
            advertised.contains(&service),
            "{mode:?}: Hello lists {advertised:?}"
        );
        assert!(advertised.contains(&"echo/1".to_string()));

        let mut channel = client.open(&service, 0).await.unwrap();
        // Small, empty, and larger than one bus payload (fragmented).
        let big: Vec<u8> = (0..3 * 1024 * 1024 + 7).map(|i| (i % 251) as u8).collect();
        for message in [b"hello".to_vec(), Vec::new(), big] {
            channel.send(Bytes::from(message.clone())).await.unwrap();
            let reply = channel.recv().await.unwrap().unwrap();
            assert_eq!(reply.as_ref(), reversed(&message).as_slice(), "{mode:?}");
        }
        channel.finish().unwrap();
        assert_eq!(
            channel.recv().await.unwrap(),
            None,
            "{mode:?}: service finished too"
        );
        stop(gateway, host).await;
    }
}

#[tokio::test]
async fn many_channels_at_once_keep_their_messages_apart() {
    for mode in MODES {
        let (_infra, gateway, host, service) = start_reverse(mode, "reverse").await;
        let client = gateway.client().await;
        let mut tasks = Vec::new();
        for c in 0..20u8 {
            let mut channel = client.open(&service, 0).await.unwrap();
            tasks.push(tokio::spawn(async move {
                for i in 0..50u8 {
                    let message = vec![c, i, c ^ i];
                    channel.send(Bytes::from(message.clone())).await.unwrap();
                    let reply = channel.recv().await.unwrap().unwrap();
                    assert_eq!(reply.as_ref(), reversed(&message).as_slice());
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        stop(gateway, host).await;
    }
}

#[tokio::test]
async fn unknown_and_departed_services_are_rejected_with_the_right_reason() {
    for mode in MODES {
        let infra = Infra::new(mode).await;
        let gateway = infra.gateway().await;
        let client = gateway.client().await;
        match client.open("nosuch/1", 0).await {
            Err(OpenChannelError::Rejected { reason, .. }) => {
                assert_eq!(reason, Reason::UnknownService, "{mode:?}")
            }
            other => panic!("{mode:?}: {other:?}"),
        }

        let host = infra.host().await;
        let service = infra.service("reverse");
        serve_reverse(&host, &service).await;
        gateway.wait_service(&service, true).await;
        host.shutdown().await;
        gateway.wait_service(&service, false).await;
        match client.open(&service, 0).await {
            Err(OpenChannelError::Rejected { reason, .. }) => {
                assert_eq!(reason, Reason::ServiceUnavailable, "{mode:?}")
            }
            other => panic!("{mode:?}: {other:?}"),
        }
        // The live connection heard that the service went (Services update).
        let wait = async {
            while client
                .peer_hello()
                .unwrap()
                .services
                .iter()
                .any(|s| s.name == service)
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), wait)
            .await
            .unwrap();
        gateway.stop().await;
    }
}

#[tokio::test]
async fn a_service_that_never_answers_opens_gets_a_timeout_not_a_hang() {
    for mode in MODES {
        let (infra, gateway, host) = start(mode).await;
        let service = infra.service("mute");
        // Announce the service, but swallow every open request unanswered.
        let mut opens = infra
            .another_bus()
            .await
            .queue_subscribe(
                &skywire_bus::subjects::service_open(&service),
                &skywire_bus::subjects::service_group(&service),
            )
            .await
            .unwrap();
        let _incoming = host.serve(&service).await.unwrap();
        let swallow = tokio::spawn(async move { while opens.next().await.is_some() {} });
        gateway.wait_service(&service, true).await;
        let client = gateway.client().await;
        // Either the mute subscriber or the real host gets each open; keep
        // trying until the mute one is hit.
        let mut saw_timeout = false;
        for _ in 0..20 {
            match client.open(&service, 0).await {
                Err(OpenChannelError::Rejected { reason, .. }) => {
                    assert_eq!(reason, Reason::ServiceUnavailable, "{mode:?}");
                    saw_timeout = true;
                    break;
                }
                Ok(_) => continue,
                Err(e) => panic!("{mode:?}: {e:?}"),
            }
        }
        assert!(
            saw_timeout,
            "{mode:?}: the mute subscriber never got an open"
        );
        swallow.abort();
        stop(gateway, host).await;
    }
}

#[tokio::test]
async fn a_service_reaches_a_connected_peer_through_the_presence_map() {
    for mode in MODES {
        let (infra, gateway, host) = start(mode).await;
        let (client, node_id) = gateway.client_with_id().await;
        infra.wait_present(&node_id).await;

        let service = infra.service("notify");
        let peer_side = tokio::spawn({
            let client = client.clone();
            async move {
                let incoming = client.next_incoming().await.unwrap();
                let mut channel = incoming.accept().unwrap();
                let message = channel.recv().await.unwrap().unwrap();
                channel.send(Bytes::from_static(b"ack")).await.unwrap();
                (channel.service().to_owned(), message)
            }
        });
        let mut channel = host.open(&node_id, &service, 0).await.unwrap();
        channel
            .send(Bytes::from_static(b"invoice paid"))
            .await
            .unwrap();
        assert_eq!(channel.recv().await.unwrap().unwrap().as_ref(), b"ack");
        let (name, message) = peer_side.await.unwrap();
        assert_eq!(name, service);
        assert_eq!(message.as_ref(), b"invoice paid");

        // A peer nobody holds is reported as not connected.
        let stranger =
            secp256k1::PublicKey::from_secret_key(&secp256k1::SecretKey::new(&mut rand::rng()))
                .serialize();
        assert!(matches!(
            host.open(&stranger, &service, 0).await,
            Err(skywire_service::HostError::NotConnected(_))
        ));
        stop(gateway, host).await;
    }
}

#[tokio::test]
async fn a_slow_service_slows_the_peer_without_unbounded_buffering() {
    for mode in MODES {
        let (infra, gateway, host) = start(mode).await;
        let service = infra.service("sink");
        let mut incoming = host.serve(&service).await.unwrap();
        gateway.wait_service(&service, true).await;
        let client = gateway.client().await;
        let mut channel = client.open(&service, 0).await.unwrap();
        // The service takes the channel but never reads.
        let held = incoming.next().await.unwrap();
        let chunk = Bytes::from(vec![7u8; 64 * 1024]);
        let mut sent = 0usize;
        let limit = 256 * 1024 * 1024;
        while sent < limit {
            match tokio::time::timeout(Duration::from_millis(500), channel.send(chunk.clone()))
                .await
            {
                Ok(Ok(())) => sent += chunk.len(),
                Ok(Err(e)) => panic!("{mode:?}: {e}"),
                Err(_) => break,
            }
        }
        assert!(sent < limit, "{mode:?}: the peer was never slowed down");
        drop(held);
        stop(gateway, host).await;
    }
}

#[tokio::test]
async fn a_dead_instance_resets_its_channels_with_service_unavailable() {
    for mode in MODES {
        let (_infra, gateway, host, service) = start_reverse(mode, "reverse").await;
        let client = gateway.client().await;
        let mut channel = client.open(&service, 0).await.unwrap();
        channel.send(Bytes::from_static(b"ab")).await.unwrap();
        assert_eq!(channel.recv().await.unwrap().unwrap().as_ref(), b"ba");
        // Leaves the bus: the gateway resets its channels.
        host.shutdown().await;
        let error = tokio::time::timeout(Duration::from_secs(10), channel.recv())
            .await
            .expect("reset arrives")
            .expect_err("channel was reset");
        assert!(
            matches!(&error, skywire_wire::session::ChannelError::Reset { reason, .. } if *reason == Reason::ServiceUnavailable),
            "{mode:?}: {error:?}"
        );
        gateway.stop().await;
    }
}

/// A gateway that starts after an instance learns its services within a round trip,
/// not at the instance's next heartbeat: the instance greets every gateway that joins.
/// Before, a peer opening the service in that first second was refused with
/// `UNKNOWN_SERVICE`.
#[tokio::test]
async fn a_gateway_that_starts_after_an_instance_knows_its_services_at_once() {
    for mode in MODES {
        let infra = helpers::Infra::new(mode).await;
        let host = infra.host().await;
        let service = infra.service("early");
        serve_reverse(&host, &service).await;
        // Let the instance's first heartbeats go by: the next is a second away.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let gateway = infra.gateway().await;
        let started = std::time::Instant::now();
        gateway.wait_service(&service, true).await;
        // Without the greeting it takes until the instance's next heartbeat,
        // about 0.9 s here.
        assert!(
            started.elapsed() < skywire_service::registry::HEARTBEAT_INTERVAL / 2,
            "{mode:?}: the gateway learnt {service} after {:?}",
            started.elapsed()
        );
        stop(gateway, host).await;
    }
}
