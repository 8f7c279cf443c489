//! The pool end to end, in embedded mode (in-process bus, memory, SQLite)
//! and cluster mode (NATS, Redis, PostgreSQL): dialing through a gateway,
//! keeping peers connected, bans, sending to and receiving from peers'
//! services through the admin gRPC API, restarts, and bad requests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

use helpers::{Infra, MODES, Remote, eventually, until_some};
use secp256k1::SecretKey;
use skywire_pool::store::now_ms;
use skywire_proto::pool::v1 as api;
use skywire_wire::pb::{self, Reason, control::Msg};
use skywire_wire::testing::{RawClient, control_frame};
use tonic::Code;

/// The status code of a failed call (None if it succeeded).
fn code<T>(result: Result<tonic::Response<T>, tonic::Status>) -> Option<Code> {
    result.err().map(|s| s.code())
}

async fn peer_row(
    client: &mut api::pool_client::PoolClient<tonic::transport::Channel>,
    address: &str,
) -> Option<api::Peer> {
    client
        .list_peers(api::ListPeersRequest {})
        .await
        .unwrap()
        .into_inner()
        .peers
        .into_iter()
        .find(|p| p.address == address)
}

/// The peer's row once `holds` holds for it (polled; 10 s at most).
async fn row_when(
    client: &api::pool_client::PoolClient<tonic::transport::Channel>,
    address: &str,
    what: &str,
    holds: impl Fn(&api::Peer) -> bool,
) -> api::Peer {
    until_some(what, || {
        let mut client = client.clone();
        let holds = &holds;
        async move { peer_row(&mut client, address).await.filter(|p| holds(p)) }
    })
    .await
}

#[tokio::test]
async fn dial_list_send_disconnect_through_the_admin_api() {
    for mode in MODES {
        let infra = Infra::new(mode).await;
        let (gateway, gateway_task) = infra.gateway(SecretKey::new(&mut rand::rng())).await;
        let mut pool = infra.pool(0).await;
        let remote = Remote::start(SecretKey::new(&mut rand::rng()), "127.0.0.1:0").await;

        let dialed = pool
            .client
            .dial(api::DialRequest {
                peer: remote.dial_string(),
            })
            .await
            .unwrap()
            .into_inner()
            .peer
            .unwrap();
        assert_eq!(dialed.address, remote.address(), "{mode:?}");
        let address = remote.address();
        row_when(&pool.client, &address, "peer listed as connected", |p| {
            p.connected
        })
        .await;
        let row = peer_row(&mut pool.client, &address).await.unwrap();
        assert_eq!(
            row.endpoints,
            vec![remote.handle.local_addr().to_string()],
            "{mode:?}"
        );
        assert!(
            row.services.contains(&"inbox/1".to_string()),
            "{mode:?}: {row:?}"
        );
        assert_eq!(row.gateway, gateway.id(), "{mode:?}");

        // Send to the peer's service, by address.
        pool.client
            .send(api::SendRequest {
                peer: address.clone(),
                service: "inbox/1".into(),
                message: b"invoice 42".to_vec().into(),
            })
            .await
            .unwrap();
        let received = remote.received.clone();
        eventually("remote received the message", || {
            let received = received.clone();
            async move { !received.lock().unwrap().is_empty() }
        })
        .await;
        assert_eq!(
            received.lock().unwrap()[0],
            (
                "inbox/1".to_string(),
                bytes::Bytes::from_static(b"invoice 42")
            )
        );

        // Disconnect: the gateway drops it and the pool does not redial.
        pool.client
            .disconnect(api::DisconnectRequest {
                peer: address.clone(),
            })
            .await
            .unwrap();
        row_when(&pool.client, &address, "peer disconnected", |p| {
            !p.connected
        })
        .await;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert!(
            !peer_row(&mut pool.client, &address)
                .await
                .unwrap()
                .connected,
            "{mode:?}: redialed"
        );

        pool.stop().await;
        gateway.shutdown();
        gateway_task.await.unwrap();
        remote.stop().await;
    }
}

#[tokio::test]
async fn a_kept_peer_is_redialed_after_it_restarts_and_the_store_survives_a_pool_restart() {
    for mode in MODES {
        let infra = Infra::new(mode).await;
        let (gateway, gateway_task) = infra.gateway(SecretKey::new(&mut rand::rng())).await;
        let mut pool = infra.pool(0).await;
        let remote = Remote::start(SecretKey::new(&mut rand::rng()), "127.0.0.1:0").await;
        let address = remote.address();
        pool.client
            .dial(api::DialRequest {
                peer: remote.dial_string(),
            })
            .await
            .unwrap();
        // The remote goes away and comes back on the same port with the same key.
        let (key, listen) = remote.stop().await;
        row_when(&pool.client, &address, "peer seen down", |p| !p.connected).await;
        let remote = Remote::start(key, &listen).await;
        row_when(&pool.client, &address, "peer redialed", |p| p.connected).await;

        // A new pool on the same database still knows the peer.
        pool.stop().await;
        let mut pool = infra.pool(0).await;
        let row = peer_row(&mut pool.client, &address)
            .await
            .expect("peer survives a restart");
        assert_eq!(row.endpoints, vec![listen.clone()], "{mode:?}");
        pool.stop().await;
        gateway.shutdown();
        gateway_task.await.unwrap();
        remote.stop().await;
        let _ = infra.dir();
    }
}

#[tokio::test]
async fn banned_peers_are_dropped_refused_and_let_back_in_after_unban() {
    for mode in MODES {
        let infra = Infra::new(mode).await;
        let gateway_key = SecretKey::new(&mut rand::rng());
        let (gateway, gateway_task) = infra.gateway(gateway_key).await;
        let mut pool = infra.pool(0).await;
        let remote = Remote::start(SecretKey::new(&mut rand::rng()), "127.0.0.1:0").await;
        let address = remote.address();
        pool.client
            .dial(api::DialRequest {
                peer: remote.dial_string(),
            })
            .await
            .unwrap();
        pool.client
            .ban(api::BanRequest {
                peer: address.clone(),
                duration_secs: 3600,
                reason: "test ban".into(),
            })
            .await
            .unwrap();
        row_when(&pool.client, &address, "banned peer dropped", |p| {
            !p.connected && p.banned_until_ms > 0 && p.ban_reason == "test ban"
        })
        .await;
        // The peer dialing in is refused with BANNED.
        let node = gateway.node().unwrap().clone();
        let refused = remote
            .handle
            .connect(node.local_addr(), &node.public_key())
            .await;
        match refused {
            Ok(conn) => {
                let reason = conn.closed().await;
                assert_eq!(reason.reason, skywire_wire::Reason::Banned, "{mode:?}");
            }
            Err(e) => assert!(
                e.to_string().contains("BANNED") || e.to_string().contains("anned"),
                "{mode:?}: {e}"
            ),
        }
        pool.client
            .unban(api::UnbanRequest {
                peer: address.clone(),
            })
            .await
            .unwrap();
        eventually("unbanned peer can connect", || {
            let remote = &remote;
            let node = node.clone();
            async move {
                match remote
                    .handle
                    .connect(node.local_addr(), &node.public_key())
                    .await
                {
                    Ok(conn) => {
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        conn.close_reason().is_none()
                    }
                    Err(_) => false,
                }
            }
        })
        .await;
        pool.stop().await;
        gateway.shutdown();
        gateway_task.await.unwrap();
        remote.stop().await;
    }
}

#[tokio::test]
async fn peers_that_break_the_protocol_or_keep_flooding_are_banned_automatically() {
    for mode in MODES {
        let infra = Infra::new(mode).await;
        let (gateway, gateway_task) = infra.gateway(SecretKey::new(&mut rand::rng())).await;
        let pool = infra.pool(0).await;
        let node = gateway.node().unwrap().clone();
        let (addr, key) = (node.local_addr(), node.public_key());
        // An Open with the wrong parity breaks SWP/1: banned at once, for
        // an hour, on every replica.
        let mut rogue = RawClient::hello(addr, &key).await;
        let rogue_key = rogue.public_key();
        rogue
            .send_control(Msg::Open(pb::Open {
                channel: 2,
                service: "inbox/1".into(),
                priority: 0,
            }))
            .await;
        assert_eq!(rogue.expect_go_away().await, Reason::ProtocolError);
        let row = row_when(&pool.client, &address_of(&rogue_key), "banned", |p| {
            p.banned_until_ms > 0
        })
        .await;
        assert!(
            row.ban_reason.starts_with("automatic: "),
            "{mode:?}: {row:?}"
        );
        let hour_ms = skywire_pool::BanReason::ProtocolViolation
            .duration()
            .as_millis() as i64;
        let left = row.banned_until_ms - now_ms();
        assert!(
            left > hour_ms - 60_000 && left <= hour_ms,
            "{mode:?}: {left}"
        );
        eventually("the gateway refuses it", || {
            let node = node.clone();
            async move { node.is_banned(&rogue_key) }
        })
        .await;

        // Control-frame floods: each one a strike; the third within the
        // window bans it (for the abuse duration).
        let flooder = SecretKey::new(&mut rand::rng());
        let flooder_key = secp256k1::PublicKey::from_secret_key(&flooder);
        let flood: Vec<Vec<u8>> = (0..3000)
            .map(|_| control_frame(Msg::Ping(pb::Ping::default())))
            .collect();
        let mut client = pool.client.clone();
        for strike in 1..=skywire_pool::ABUSE_STRIKES {
            let mut raw = RawClient::hello_as(addr, &key, flooder).await;
            raw.send_raw_frames(&flood).await;
            assert_eq!(raw.expect_go_away().await, Reason::RateLimited);
            if strike < skywire_pool::ABUSE_STRIKES {
                // Give the pool time to judge, then check it did not ban.
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                let row = peer_row(&mut client, &address_of(&flooder_key)).await;
                assert!(
                    row.is_none_or(|p| p.banned_until_ms == 0),
                    "{mode:?}: banned after {strike} strikes"
                );
            }
        }
        let row = row_when(&pool.client, &address_of(&flooder_key), "banned", |p| {
            p.banned_until_ms > 0
        })
        .await;
        let abuse_ms = skywire_pool::BanReason::Abuse.duration().as_millis() as i64;
        assert!(
            row.banned_until_ms - now_ms() <= abuse_ms,
            "{mode:?}: {row:?}"
        );

        // A peer that leaves politely is not judged.
        let mut polite = RawClient::hello(addr, &key).await;
        let polite_key = polite.public_key();
        polite
            .send_control(Msg::GoAway(pb::GoAway {
                reason: Reason::Normal.into(),
                ..Default::default()
            }))
            .await;
        let eof = async { while polite.recv_frame().await.is_some() {} };
        tokio::time::timeout(std::time::Duration::from_secs(5), eof)
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let row = peer_row(&mut client, &address_of(&polite_key)).await;
        assert!(row.is_none_or(|p| p.banned_until_ms == 0), "{mode:?}");

        pool.stop().await;
        gateway.shutdown();
        gateway_task.await.unwrap();
    }
}

fn address_of(key: &secp256k1::PublicKey) -> String {
    skywire_identity::Address::of_node_id(&key.serialize())
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn subscribe_streams_what_peers_send_to_a_service() {
    for mode in MODES {
        let infra = Infra::new(mode).await;
        let (gateway, gateway_task) = infra.gateway(SecretKey::new(&mut rand::rng())).await;
        let mut pool = infra.pool(0).await;
        let service = format!("chat-{:08x}/1", rand::random::<u32>());
        let mut stream = pool
            .client
            .subscribe(api::SubscribeRequest {
                service: service.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        // Serving the same service twice is refused.
        let twice = pool
            .client
            .subscribe(api::SubscribeRequest {
                service: service.clone(),
            })
            .await;
        assert_eq!(
            twice.err().map(|s| s.code()),
            Some(Code::AlreadyExists),
            "{mode:?}"
        );

        let remote = Remote::start(SecretKey::new(&mut rand::rng()), "127.0.0.1:0").await;
        let node = gateway.node().unwrap().clone();
        let handle = gateway.clone();
        let svc = service.clone();
        eventually("service advertised", || {
            let live = handle.live_services().contains(&svc);
            async move { live }
        })
        .await;
        let conn = remote
            .handle
            .connect(node.local_addr(), &node.public_key())
            .await
            .unwrap();
        let mut channel = conn.open(&service, 0).await.unwrap();
        for text in ["hello", "world"] {
            channel.send(bytes::Bytes::from(text)).await.unwrap();
        }
        for text in ["hello", "world"] {
            let message = tokio::time::timeout(std::time::Duration::from_secs(5), stream.message())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            assert_eq!(message.message.as_ref(), text.as_bytes(), "{mode:?}");
            assert_eq!(message.address, remote.address());
            assert_eq!(message.service, service);
        }
        pool.stop().await;
        gateway.shutdown();
        gateway_task.await.unwrap();
        remote.stop().await;
    }
}

#[tokio::test]
async fn malformed_admin_requests_get_clear_errors() {
    let infra = Infra::new(helpers::Mode::Embedded).await;
    let mut pool = infra.pool(0).await;
    let stranger = skywire_identity::Keypair::generate().address().to_string();
    assert_eq!(
        code(
            pool.client
                .dial(api::DialRequest {
                    peer: "garbage".into()
                })
                .await
        ),
        Some(Code::InvalidArgument)
    );
    assert_eq!(
        code(
            pool.client
                .dial(api::DialRequest {
                    peer: format!("{}@nowhere", "02".repeat(33))
                })
                .await
        ),
        Some(Code::InvalidArgument)
    );
    assert_eq!(
        code(
            pool.client
                .ban(api::BanRequest {
                    peer: stranger.clone(),
                    duration_secs: 1,
                    reason: String::new()
                })
                .await
        ),
        Some(Code::NotFound)
    );
    assert_eq!(
        code(
            pool.client
                .unban(api::UnbanRequest {
                    peer: "not an address".into()
                })
                .await
        ),
        Some(Code::InvalidArgument)
    );
    let key = hex::encode(
        skywire_identity::Keypair::generate()
            .public_key()
            .to_bytes(),
    );
    assert_eq!(
        code(
            pool.client
                .send(api::SendRequest {
                    peer: key,
                    service: "inbox/1".into(),
                    message: Default::default()
                })
                .await
        ),
        Some(Code::FailedPrecondition)
    );
    assert_eq!(
        pool.client
            .subscribe(api::SubscribeRequest {
                service: "Not A Service".into()
            })
            .await
            .err()
            .map(|s| s.code()),
        Some(Code::InvalidArgument)
    );
    // Dialing with no gateway running is an error, not a hang.
    let remote = Remote::start(SecretKey::new(&mut rand::rng()), "127.0.0.1:0").await;
    assert_eq!(
        code(
            pool.client
                .dial(api::DialRequest {
                    peer: remote.dial_string()
                })
                .await
        ),
        Some(Code::Unavailable)
    );
    pool.stop().await;
    remote.stop().await;
}

/// Whether the pool sees a connection to `node_id`, and if so whether it
/// is transient.
fn transient_state(pool: &skywire_pool::Pool, node_id: &[u8; 33]) -> Option<bool> {
    pool.connected()
        .into_iter()
        .find(|p| p.node_id.as_ref() == node_id)
        .map(|p| p.transient)
}

#[tokio::test]
async fn a_transient_connection_is_no_pool_peer_until_kept_and_closes_only_while_transient() {
    use skywire_proto::bus::v1::{Disconnect, gateway_command::Command};
    for mode in MODES {
        let infra = Infra::new(mode).await;
        let (gateway, gateway_task) = infra.gateway(SecretKey::new(&mut rand::rng())).await;
        // Dials nothing of its own accord.
        let pool = infra.pool(0).await;
        let remote = Remote::start(SecretKey::new(&mut rand::rng()), "127.0.0.1:0").await;
        let node_id = remote.public_key().serialize();
        let addr = remote.handle.local_addr();
        let let_go = |if_transient: bool| {
            Command::Disconnect(Disconnect {
                node_id: bytes::Bytes::copy_from_slice(&node_id),
                message: "done".into(),
                if_transient,
            })
        };
        let state = &pool.pool;

        // A transient dial: the pool sees the connection, marked transient;
        // letting it go closes it.
        let peer = pool.host.dial_transient(&node_id, addr).await.unwrap();
        assert!(peer.transient, "{mode:?}");
        eventually("transient connection seen", || async move {
            transient_state(state, &node_id) == Some(true)
        })
        .await;
        pool.host.broadcast(let_go(true)).await.unwrap();
        eventually("transient connection closed", || async move {
            transient_state(state, &node_id).is_none()
        })
        .await;

        // Transient again, then kept by a plain dial: letting go of it as
        // transient leaves it open; a plain disconnect closes it.
        pool.host.dial_transient(&node_id, addr).await.unwrap();
        eventually("transient again", || async move {
            transient_state(state, &node_id) == Some(true)
        })
        .await;
        let kept = pool.host.dial(&node_id, addr).await.unwrap();
        assert!(!kept.transient, "{mode:?}");
        eventually("the pool sees it kept", || async move {
            transient_state(state, &node_id) == Some(false)
        })
        .await;
        pool.host.broadcast(let_go(true)).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert_eq!(
            transient_state(state, &node_id),
            Some(false),
            "{mode:?}: kept, yet closed"
        );
        pool.host.broadcast(let_go(false)).await.unwrap();
        eventually("closed by a plain disconnect", || async move {
            transient_state(state, &node_id).is_none()
        })
        .await;

        pool.stop().await;
        gateway.shutdown();
        gateway_task.await.unwrap();
        remote.stop().await;
    }
}

#[tokio::test]
async fn dialing_by_address_uses_the_endpoints_the_store_holds_before_the_dht() {
    for mode in MODES {
        let infra = Infra::new(mode).await;
        let (gateway, gateway_task) = infra.gateway(SecretKey::new(&mut rand::rng())).await;
        let pool = infra.pool(0).await;
        let remote = Remote::start(SecretKey::new(&mut rand::rng()), "127.0.0.1:0").await;
        let address: skywire_identity::Address = remote.address().parse().unwrap();
        let node_id = remote.public_key().serialize();
        // No DHT runs here: an address nothing stored is not found.
        assert!(pool.pool.dial_address(&address).await.is_err(), "{mode:?}");
        // Learned (say, by peer exchange): a stale endpoint, then the live one.
        let store = pool.pool.store();
        let live = remote.handle.local_addr().to_string();
        store
            .add(&node_id, &remote.address(), Some("127.0.0.1:9"), false)
            .await
            .unwrap();
        store
            .add(&node_id, &remote.address(), Some(&live), false)
            .await
            .unwrap();
        let peer = pool.pool.dial_address(&address).await.unwrap();
        assert_eq!(peer.address, remote.address(), "{mode:?}");
        assert_eq!(peer.remote_addr, live, "{mode:?}");

        pool.stop().await;
        gateway.shutdown();
        gateway_task.await.unwrap();
        remote.stop().await;
    }
}

#[tokio::test]
async fn a_service_asking_on_the_bus_bans_a_peer_for_as_long_as_it_asked_at_most_a_day() {
    use prost::Message as _;
    use skywire_proto::bus::v1 as bus_pb;

    for mode in MODES {
        let infra = Infra::new(mode).await;
        let (gateway, gateway_task) = infra.gateway(SecretKey::new(&mut rand::rng())).await;
        let mut pool = infra.pool(0).await;
        let remote = Remote::start(SecretKey::new(&mut rand::rng()), "127.0.0.1:0").await;
        let address = remote.address();
        pool.client
            .dial(api::DialRequest {
                peer: remote.dial_string(),
            })
            .await
            .unwrap();
        let ask = |ban: bus_pb::Ban| {
            let bus = infra.bus.clone();
            async move {
                let reply = bus
                    .request(
                        skywire_bus::subjects::POOL_BAN,
                        bytes::Bytes::from(ban.encode_to_vec()),
                        std::time::Duration::from_secs(5),
                    )
                    .await
                    .unwrap();
                bus_pb::CommandReply::decode(reply.payload).unwrap().error
            }
        };
        // Malformed: refused with a reason, nobody banned.
        let error = ask(bus_pb::Ban {
            node_id: vec![2; 5].into(),
            duration_ms: 1000,
            reason: "bad".into(),
        })
        .await;
        assert!(error.contains("33 bytes"), "{mode:?}: {error}");
        // A week asked: a day given; the peer dropped.
        let before = now_ms();
        let error = ask(bus_pb::Ban {
            node_id: remote.public_key().serialize().to_vec().into(),
            duration_ms: 7 * 24 * 3600 * 1000,
            reason: "chain/1: lied".into(),
        })
        .await;
        assert_eq!(error, "", "{mode:?}");
        let peer = row_when(
            &pool.client,
            &address,
            "banned at the service's request",
            |p| !p.connected && p.ban_reason == "chain/1: lied",
        )
        .await;
        let day = i64::try_from(skywire_pool::MAX_SERVICE_BAN.as_millis()).unwrap();
        let after = now_ms();
        assert!(
            (before + day..=after + day).contains(&peer.banned_until_ms),
            "{mode:?}: banned until {}",
            peer.banned_until_ms
        );
        pool.stop().await;
        gateway.shutdown();
        gateway_task.await.unwrap();
        remote.stop().await;
    }
}
