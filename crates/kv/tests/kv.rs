//! Behaviour of `skywire-kv` against both backends: the in-memory store and
//! a real Redis (`redis://127.0.0.1:6379`, or `SKYWIRE_TEST_REDIS_URL`).
//!
//! Every test uses its own random key prefix, so tests run in parallel
//! against one Redis; every key has a short TTL, so nothing is left behind.
//! `TEST_LOG=1` turns logging on.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use skywire_kv::{
    CONNECT_TIMEOUT, ConnectionLimiter, Kv, KvError, MAX_KEY_LEN, MAX_TTL, OP_TIMEOUT, Presence,
    RateLimiter,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, sleep, timeout};

/// A short TTL: long enough to read a key back on a loaded machine, short
/// enough to wait out.
const SHORT: Duration = Duration::from_millis(400);
/// Waiting this long lets a [`SHORT`] TTL lapse.
const PAST_SHORT: Duration = Duration::from_millis(600);
/// A TTL that does not lapse during a test.
const LONG: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------- helpers

fn init_logging() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

fn redis_url() -> String {
    std::env::var("SKYWIRE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A key prefix no other test (or test run) uses.
fn prefix(test: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("sw:test:{test}:{}:{nanos}:{n}:", std::process::id())
}

async fn redis() -> Kv {
    init_logging();
    let url = redis_url();
    Kv::connect_redis(&url)
        .await
        .unwrap_or_else(|e| panic!("tests need Redis at {url} (SKYWIRE_TEST_REDIS_URL): {e}"))
}

/// One handle per backend.
async fn backends() -> [Kv; 2] {
    init_logging();
    [Kv::memory(), redis().await]
}

/// Per backend, two handles as two replicas see the store: clones of one
/// memory store, and two separate Redis connections.
async fn replica_pairs() -> [(Kv, Kv); 2] {
    init_logging();
    let memory = Kv::memory();
    [(memory.clone(), memory), (redis().await, redis().await)]
}

fn node(n: u8) -> [u8; 33] {
    let mut id = [n; 33];
    id[0] = 0x02;
    id
}

// ---------------------------------------------------------------- Kv ops

#[tokio::test]
async fn set_get_overwrite_and_expiry() {
    for kv in backends().await {
        let b = kv.backend_name();
        let p = prefix("set_get");
        let k = format!("{p}k");
        assert_eq!(kv.get(&k).await.unwrap(), None, "{b}");
        kv.set(&k, b"one", SHORT).await.unwrap();
        assert_eq!(
            kv.get(&k).await.unwrap().as_deref(),
            Some(&b"one"[..]),
            "{b}"
        );
        kv.set(&k, b"two", SHORT).await.unwrap();
        assert_eq!(
            kv.get(&k).await.unwrap().as_deref(),
            Some(&b"two"[..]),
            "{b}"
        );
        // Binary values round-trip.
        let bin = format!("{p}bin");
        kv.set(&bin, &[0, 255, 10, 13], LONG).await.unwrap();
        assert_eq!(
            kv.get(&bin).await.unwrap(),
            Some(vec![0, 255, 10, 13]),
            "{b}"
        );
        sleep(PAST_SHORT).await;
        assert_eq!(kv.get(&k).await.unwrap(), None, "{b}: TTL lapsed");
        kv.del(&bin).await.unwrap();
        assert_eq!(kv.get(&bin).await.unwrap(), None, "{b}: deleted");
        kv.del(&bin).await.unwrap();
    }
}

#[tokio::test]
async fn set_nx_sets_only_absent_keys() {
    for kv in backends().await {
        let b = kv.backend_name();
        let k = format!("{}idem", prefix("set_nx"));
        assert!(kv.set_nx(&k, b"first", SHORT).await.unwrap(), "{b}");
        assert!(!kv.set_nx(&k, b"second", SHORT).await.unwrap(), "{b}");
        assert_eq!(
            kv.get(&k).await.unwrap().as_deref(),
            Some(&b"first"[..]),
            "{b}"
        );
        sleep(PAST_SHORT).await;
        assert!(
            kv.set_nx(&k, b"third", SHORT).await.unwrap(),
            "{b}: after expiry"
        );
        assert_eq!(
            kv.get(&k).await.unwrap().as_deref(),
            Some(&b"third"[..]),
            "{b}"
        );
    }
}

#[tokio::test]
async fn del_if_eq_deletes_only_own_value() {
    for kv in backends().await {
        let b = kv.backend_name();
        let k = format!("{}lock", prefix("del_if_eq"));
        assert!(!kv.del_if_eq(&k, b"mine").await.unwrap(), "{b}: absent");
        kv.set(&k, b"theirs", LONG).await.unwrap();
        assert!(!kv.del_if_eq(&k, b"mine").await.unwrap(), "{b}");
        assert_eq!(
            kv.get(&k).await.unwrap().as_deref(),
            Some(&b"theirs"[..]),
            "{b}"
        );
        assert!(kv.del_if_eq(&k, b"theirs").await.unwrap(), "{b}");
        assert_eq!(kv.get(&k).await.unwrap(), None, "{b}");
    }
}

#[tokio::test]
async fn expire_if_eq_refreshes_only_own_value() {
    for kv in backends().await {
        let b = kv.backend_name();
        let p = prefix("expire_if_eq");
        let (mine, theirs) = (format!("{p}mine"), format!("{p}theirs"));
        kv.set(&mine, b"me", SHORT).await.unwrap();
        kv.set(&theirs, b"them", SHORT).await.unwrap();
        assert!(kv.expire_if_eq(&mine, b"me", LONG).await.unwrap(), "{b}");
        assert!(!kv.expire_if_eq(&theirs, b"me", LONG).await.unwrap(), "{b}");
        assert!(
            !kv.expire_if_eq(&format!("{p}absent"), b"me", LONG)
                .await
                .unwrap(),
            "{b}"
        );
        sleep(PAST_SHORT).await;
        assert_eq!(
            kv.get(&mine).await.unwrap().as_deref(),
            Some(&b"me"[..]),
            "{b}: refreshed"
        );
        assert_eq!(kv.get(&theirs).await.unwrap(), None, "{b}: not refreshed");
    }
}

#[tokio::test]
async fn ping_answers() {
    for kv in backends().await {
        kv.ping().await.unwrap();
    }
}

#[tokio::test]
async fn invalid_input_is_rejected_alike() {
    for kv in backends().await {
        let b = kv.backend_name();
        let k = format!("{}k", prefix("invalid"));
        let long_key = "k".repeat(MAX_KEY_LEN + 1);
        assert!(
            matches!(kv.get(&long_key).await, Err(KvError::KeyTooLong { .. })),
            "{b}"
        );
        assert!(
            matches!(
                kv.set(&k, b"v", Duration::ZERO).await,
                Err(KvError::InvalidTtl { .. })
            ),
            "{b}"
        );
        assert!(
            matches!(
                kv.set(&k, b"v", Duration::from_micros(999)).await,
                Err(KvError::InvalidTtl { .. })
            ),
            "{b}"
        );
        assert!(
            matches!(
                kv.set_nx(&k, b"v", MAX_TTL + Duration::from_secs(1)).await,
                Err(KvError::InvalidTtl { .. })
            ),
            "{b}"
        );
        assert!(
            matches!(
                kv.expire_if_eq(&k, b"v", Duration::MAX).await,
                Err(KvError::InvalidTtl { .. })
            ),
            "{b}"
        );
        let huge = vec![0u8; skywire_kv::MAX_VALUE_LEN + 1];
        assert!(
            matches!(
                kv.set(&k, &huge, SHORT).await,
                Err(KvError::ValueTooLarge { .. })
            ),
            "{b}"
        );
        // Empty keys and values are fine.
        kv.set("", b"", SHORT).await.unwrap();
        assert!(kv.del_if_eq("", b"").await.unwrap(), "{b}");
    }
}

#[tokio::test]
async fn wrong_kind_of_value_is_reported_alike() {
    for kv in backends().await {
        let b = kv.backend_name();
        let p = prefix("wrong_type");
        // A counter over a non-number.
        kv.set(&format!("{p}hits"), b"not a number", LONG)
            .await
            .unwrap();
        let rate = RateLimiter::new(kv.clone(), 10, LONG).with_prefix(&p);
        assert!(
            matches!(rate.check("hits").await, Err(KvError::WrongType { .. })),
            "{b}"
        );
        // A member set over bytes.
        kv.set(&format!("{p}10.0.0.1"), b"bytes", LONG)
            .await
            .unwrap();
        let conns = ConnectionLimiter::new(kv.clone(), 2, LONG).with_prefix(&p);
        assert!(
            matches!(
                conns.acquire("10.0.0.1", "r:1").await,
                Err(KvError::WrongType { .. })
            ),
            "{b}"
        );
        // Bytes read from a member set.
        assert!(conns.acquire("10.0.0.2", "r:1").await.unwrap(), "{b}");
        let set_key = format!("{p}10.0.0.2");
        assert!(
            matches!(kv.get(&set_key).await, Err(KvError::WrongType { .. })),
            "{b}"
        );
        assert!(
            matches!(
                kv.del_if_eq(&set_key, b"x").await,
                Err(KvError::WrongType { .. })
            ),
            "{b}"
        );
        // `set` and `del` replace and remove whatever is there.
        kv.set(&set_key, b"now bytes", SHORT).await.unwrap();
        assert_eq!(
            kv.get(&set_key).await.unwrap().as_deref(),
            Some(&b"now bytes"[..]),
            "{b}"
        );
        kv.del(&set_key).await.unwrap();
    }
}

#[tokio::test]
async fn memory_store_is_bounded() {
    let kv = Kv::memory_with_capacity(2);
    kv.set("a", b"1", SHORT).await.unwrap();
    kv.set("b", b"2", LONG).await.unwrap();
    assert!(matches!(
        kv.set("c", b"3", LONG).await,
        Err(KvError::Full { max_keys: 2 })
    ));
    assert!(matches!(
        kv.set_nx("c", b"3", LONG).await,
        Err(KvError::Full { max_keys: 2 })
    ));
    let rate = RateLimiter::new(kv.clone(), 1, LONG);
    assert!(matches!(rate.check("x").await, Err(KvError::Full { .. })));
    // Existing keys can still be rewritten.
    kv.set("a", b"1 again", SHORT).await.unwrap();
    assert!(!kv.set_nx("b", b"x", LONG).await.unwrap());
    // Once a key expires, its room is reused.
    sleep(PAST_SHORT).await;
    kv.set("c", b"3", LONG).await.unwrap();
    assert_eq!(kv.get("c").await.unwrap().as_deref(), Some(&b"3"[..]));
    assert_eq!(kv.get("a").await.unwrap(), None);
    // Deleting frees room too.
    kv.del("b").await.unwrap();
    assert!(kv.set_nx("d", b"4", LONG).await.unwrap());
}

// ---------------------------------------------------------------- presence

#[tokio::test]
async fn presence_claim_refresh_release_lookup() {
    for (r1_kv, r2_kv) in replica_pairs().await {
        let b = r1_kv.backend_name();
        let p = prefix("presence");
        let r1 = Presence::new(r1_kv).with_prefix(&p);
        let r2 = Presence::new(r2_kv).with_prefix(&p);
        let n = node(7);

        assert_eq!(r2.lookup(&n).await.unwrap(), None, "{b}");
        r1.claim(&n, "replica-1", LONG).await.unwrap();
        assert_eq!(
            r2.lookup(&n).await.unwrap().as_deref(),
            Some("replica-1"),
            "{b}"
        );
        assert!(r1.refresh(&n, "replica-1", LONG).await.unwrap(), "{b}");
        assert!(
            !r2.refresh(&n, "replica-2", LONG).await.unwrap(),
            "{b}: r2 holds no claim to refresh"
        );

        // The node reconnects through replica 2; replica 1 then sees its old
        // connection close and releases: that must not remove r2's claim.
        r2.claim(&n, "replica-2", LONG).await.unwrap();
        assert_eq!(
            r1.lookup(&n).await.unwrap().as_deref(),
            Some("replica-2"),
            "{b}: newest claim wins"
        );
        r1.release(&n, "replica-1").await.unwrap();
        assert!(!r1.refresh(&n, "replica-1", LONG).await.unwrap(), "{b}");
        assert_eq!(
            r1.lookup(&n).await.unwrap().as_deref(),
            Some("replica-2"),
            "{b}"
        );

        // The other way round: a duplicate on replica 1 claimed last, then
        // lost the duplicate race and released; replica 2's claim stays.
        r1.claim(&n, "replica-1", LONG).await.unwrap();
        assert_eq!(
            r2.lookup(&n).await.unwrap().as_deref(),
            Some("replica-1"),
            "{b}"
        );
        r1.release(&n, "replica-1").await.unwrap();
        assert_eq!(
            r2.lookup(&n).await.unwrap().as_deref(),
            Some("replica-2"),
            "{b}"
        );

        r2.release(&n, "replica-2").await.unwrap();
        assert_eq!(r1.lookup(&n).await.unwrap(), None, "{b}");
        // Releasing twice is harmless.
        r2.release(&n, "replica-2").await.unwrap();

        // Another node is independent.
        r1.claim(&node(8), "replica-1", LONG).await.unwrap();
        assert_eq!(r1.lookup(&n).await.unwrap(), None, "{b}");
    }
}

#[tokio::test]
async fn presence_of_a_crashed_replica_expires() {
    for kv in backends().await {
        let b = kv.backend_name();
        let presence = Presence::new(kv.clone()).with_prefix(prefix("presence_ttl"));
        let n = node(9);
        presence.claim(&n, "replica-1", SHORT).await.unwrap();
        sleep(PAST_SHORT).await;
        assert_eq!(presence.lookup(&n).await.unwrap(), None, "{b}");
        assert!(
            !presence.refresh(&n, "replica-1", SHORT).await.unwrap(),
            "{b}"
        );
    }
}

// ---------------------------------------------------------------- rate limits

#[tokio::test]
async fn rate_limiter_allows_limit_then_denies_then_resets() {
    for kv in backends().await {
        let b = kv.backend_name();
        let window = Duration::from_millis(500);
        let rate = RateLimiter::new(kv, 3, window).with_prefix(prefix("rate"));
        for remaining in [2, 1, 0] {
            let d = rate.check("client").await.unwrap();
            assert!(d.allowed, "{b}");
            assert_eq!(d.remaining, remaining, "{b}");
            assert_eq!(d.retry_after, Duration::ZERO, "{b}");
        }
        let denied = rate.check("client").await.unwrap();
        assert!(!denied.allowed, "{b}");
        assert_eq!(denied.remaining, 0, "{b}");
        assert!(denied.retry_after > Duration::ZERO, "{b}");
        assert!(
            denied.retry_after <= window,
            "{b}: {:?}",
            denied.retry_after
        );
        // Other keys have their own window.
        assert!(rate.check("other").await.unwrap().allowed, "{b}");

        sleep(denied.retry_after + Duration::from_millis(50)).await;
        let d = rate.check("client").await.unwrap();
        assert!(d.allowed, "{b}: window reset");
        assert_eq!(d.remaining, 2, "{b}");
    }
}

#[tokio::test]
async fn rate_limiter_is_shared_between_replicas() {
    for (a, b_kv) in replica_pairs().await {
        let b = a.backend_name();
        let p = prefix("rate_shared");
        let on_a = RateLimiter::new(a, 4, LONG).with_prefix(&p);
        let on_b = RateLimiter::new(b_kv, 4, LONG).with_prefix(&p);
        assert!(on_a.check("ip").await.unwrap().allowed, "{b}");
        assert!(on_b.check("ip").await.unwrap().allowed, "{b}");
        assert!(on_a.check("ip").await.unwrap().allowed, "{b}");
        let last = on_b.check("ip").await.unwrap();
        assert!(last.allowed && last.remaining == 0, "{b}: {last:?}");
        assert!(!on_a.check("ip").await.unwrap().allowed, "{b}");
        assert!(!on_b.check("ip").await.unwrap().allowed, "{b}");
    }
}

#[tokio::test]
async fn rate_limiter_with_zero_limit_denies() {
    for kv in backends().await {
        let rate = RateLimiter::new(kv, 0, LONG).with_prefix(prefix("rate_zero"));
        let d = rate.check("k").await.unwrap();
        assert!(!d.allowed);
        assert!(d.retry_after > Duration::ZERO);
    }
}

// ---------------------------------------------------------------- connection limits

#[tokio::test]
async fn connection_limiter_limits_and_releases() {
    for (a, b_kv) in replica_pairs().await {
        let b = a.backend_name();
        let p = prefix("conns");
        let on_a = ConnectionLimiter::new(a, 2, LONG).with_prefix(&p);
        let on_b = ConnectionLimiter::new(b_kv, 2, LONG).with_prefix(&p);
        assert!(on_a.acquire("10.0.0.1", "a:1").await.unwrap(), "{b}");
        assert!(on_b.acquire("10.0.0.1", "b:1").await.unwrap(), "{b}");
        assert!(
            !on_a.acquire("10.0.0.1", "a:2").await.unwrap(),
            "{b}: at limit"
        );
        assert!(
            !on_b.acquire("10.0.0.1", "b:2").await.unwrap(),
            "{b}: at limit"
        );
        // Re-acquiring a held slot keeps it.
        assert!(on_a.acquire("10.0.0.1", "a:1").await.unwrap(), "{b}");
        // Another IP is independent.
        assert!(on_b.acquire("10.0.0.2", "b:3").await.unwrap(), "{b}");

        on_a.release("10.0.0.1", "a:1").await.unwrap();
        assert!(
            !on_a.refresh("10.0.0.1", "a:1").await.unwrap(),
            "{b}: released"
        );
        assert!(
            on_b.acquire("10.0.0.1", "b:2").await.unwrap(),
            "{b}: slot freed"
        );
        // Releasing what is not held is harmless.
        on_a.release("10.0.0.1", "a:1").await.unwrap();
        on_a.release("10.9.9.9", "a:1").await.unwrap();
    }
}

#[tokio::test]
async fn connection_limiter_frees_a_crashed_replicas_slots() {
    for (a, b_kv) in replica_pairs().await {
        let b = a.backend_name();
        let p = prefix("conns_crash");
        let on_a = ConnectionLimiter::new(a, 2, SHORT).with_prefix(&p);
        let on_b = ConnectionLimiter::new(b_kv, 2, SHORT).with_prefix(&p);
        assert!(on_a.acquire("10.0.0.1", "a:1").await.unwrap(), "{b}");
        assert!(on_a.acquire("10.0.0.1", "a:2").await.unwrap(), "{b}");
        assert!(!on_b.acquire("10.0.0.1", "b:1").await.unwrap(), "{b}");
        // Replica A dies: nobody refreshes its members.
        sleep(PAST_SHORT).await;
        assert!(on_b.acquire("10.0.0.1", "b:1").await.unwrap(), "{b}");
        assert!(on_b.acquire("10.0.0.1", "b:2").await.unwrap(), "{b}");
        assert!(
            !on_a.refresh("10.0.0.1", "a:1").await.unwrap(),
            "{b}: expired"
        );
    }
}

#[tokio::test]
async fn connection_limiter_refresh_keeps_a_slot() {
    for (a, b_kv) in replica_pairs().await {
        let b = a.backend_name();
        let p = prefix("conns_refresh");
        let on_a = ConnectionLimiter::new(a, 1, SHORT).with_prefix(&p);
        let on_b = ConnectionLimiter::new(b_kv, 1, SHORT).with_prefix(&p);
        assert!(on_a.acquire("10.0.0.1", "a:1").await.unwrap(), "{b}");
        // Refresh at a quarter of the TTL for well over one TTL.
        for _ in 0..6 {
            sleep(SHORT / 4).await;
            assert!(on_a.refresh("10.0.0.1", "a:1").await.unwrap(), "{b}");
        }
        assert!(
            !on_b.acquire("10.0.0.1", "b:1").await.unwrap(),
            "{b}: still held"
        );
    }
}

#[tokio::test]
async fn connection_limiter_with_zero_limit_denies() {
    for kv in backends().await {
        let p = prefix("conns_zero");
        let conns = ConnectionLimiter::new(kv.clone(), 0, LONG).with_prefix(&p);
        assert!(!conns.acquire("10.0.0.1", "a:1").await.unwrap());
        // A denied acquire leaves no key behind.
        assert_eq!(kv.get(&format!("{p}10.0.0.1")).await.unwrap(), None);
    }
}

// ---------------------------------------------------------------- Redis failures

/// The slack allowed on top of a documented bound before calling it a hang.
const SLACK: Duration = Duration::from_secs(3);

#[tokio::test]
async fn unreachable_redis_fails_fast() {
    init_logging();
    let result = timeout(
        CONNECT_TIMEOUT + SLACK,
        Kv::connect_redis("redis://127.0.0.1:1"),
    )
    .await
    .expect("connect_redis must fail within CONNECT_TIMEOUT, not hang");
    assert!(
        matches!(
            result,
            Err(KvError::Unavailable { op: "connect", .. } | KvError::Timeout { op: "connect", .. })
        ),
        "{result:?}"
    );
}

#[tokio::test]
async fn invalid_url_is_rejected() {
    let result = Kv::connect_redis("http://user:secret@127.0.0.1:6379").await;
    let Err(KvError::InvalidUrl { url, .. }) = result else {
        panic!("expected InvalidUrl, got {result:?}");
    };
    assert!(!url.contains("secret"), "password leaked: {url}");
}

#[tokio::test]
async fn silent_server_gives_errors_not_hangs() {
    init_logging();
    // Accepts connections and never answers (a black-holed host).
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _hole = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let result = timeout(CONNECT_TIMEOUT + OP_TIMEOUT + SLACK, async {
        let kv = Kv::connect_redis(&format!("redis://{addr}")).await?;
        kv.ping().await
    })
    .await
    .expect("must fail within the documented timeouts, not hang");
    assert!(result.is_err(), "{result:?}");
}

#[tokio::test]
async fn stalled_redis_times_out_then_recovers() {
    let proxy = Proxy::start(None).await;
    let kv = Kv::connect_redis(&proxy.url()).await.unwrap();
    let k = format!("{}k", prefix("stall"));
    kv.set(&k, b"v", LONG).await.unwrap();

    proxy.freeze(true);
    let result = timeout(OP_TIMEOUT + SLACK, kv.get(&k))
        .await
        .expect("a stalled Redis must give an error within OP_TIMEOUT");
    assert!(
        matches!(result, Err(KvError::Timeout { op: "get", .. })),
        "{result:?}"
    );

    proxy.freeze(false);
    assert_eq!(eventually(&kv, &k).await.as_deref(), Some(&b"v"[..]));
}

#[tokio::test]
async fn redis_outage_gives_errors_then_reconnects() {
    let proxy = Proxy::start(None).await;
    let addr = proxy.addr;
    let kv = Kv::connect_redis(&proxy.url()).await.unwrap();
    let k = format!("{}k", prefix("outage"));
    kv.set(&k, b"v", LONG).await.unwrap();

    proxy.kill().await;
    for _ in 0..3 {
        let result = timeout(OP_TIMEOUT + SLACK, kv.get(&k))
            .await
            .expect("a dead Redis must give an error within OP_TIMEOUT");
        assert!(
            matches!(
                result,
                Err(KvError::Unavailable { .. } | KvError::Timeout { .. })
            ),
            "{result:?}"
        );
    }
    let ping = timeout(OP_TIMEOUT + SLACK, kv.ping())
        .await
        .expect("no hang");
    assert!(ping.is_err());

    // Redis comes back at the same address: the same handle recovers.
    let _proxy = Proxy::start(Some(addr)).await;
    assert_eq!(eventually(&kv, &k).await.as_deref(), Some(&b"v"[..]));
    kv.ping().await.unwrap();
}

/// Retries `get` until it succeeds (the handle has reconnected), for up to
/// 20 seconds.
async fn eventually(kv: &Kv, key: &str) -> Option<Vec<u8>> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match timeout(OP_TIMEOUT + SLACK, kv.get(key)).await {
            Ok(Ok(value)) => return value,
            Ok(Err(e)) if Instant::now() < deadline => {
                tracing::debug!(error = %e, "not yet");
                sleep(Duration::from_millis(100)).await;
            }
            Ok(Err(e)) => panic!("did not recover: {e}"),
            Err(_) => panic!("operation hung"),
        }
    }
}

/// A TCP proxy in front of the test Redis that can be stalled (bytes held,
/// sockets open) or killed (listener and every connection closed).
struct Proxy {
    addr: SocketAddr,
    task: JoinHandle<()>,
    frozen: watch::Sender<bool>,
}

impl Proxy {
    async fn start(addr: Option<SocketAddr>) -> Proxy {
        init_logging();
        let url = redis_url();
        let upstream = split_url(&url).1.to_owned();
        let listener = TcpListener::bind(addr.unwrap_or_else(|| "127.0.0.1:0".parse().unwrap()))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (frozen, frozen_rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            // Dropping the set (when this task is aborted) aborts every pump
            // and closes every socket.
            let mut pumps = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (client_rx, client_tx) = client.into_split();
                let (server_rx, server_tx) = server.into_split();
                pumps.spawn(pump(client_rx, server_tx, frozen_rx.clone()));
                pumps.spawn(pump(server_rx, client_tx, frozen_rx.clone()));
            }
        });
        Proxy { addr, task, frozen }
    }

    fn url(&self) -> String {
        let url = redis_url();
        let (head, _, tail) = split_url(&url);
        format!("{head}{}{tail}", self.addr)
    }

    fn freeze(&self, frozen: bool) {
        self.frozen.send_replace(frozen);
    }

    async fn kill(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if frozen.wait_for(|frozen| !*frozen).await.is_err() {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Splits `redis://[user:pass@]host:port[/db][?query]` into the part before
/// the host, the host and port, and the rest.
fn split_url(url: &str) -> (&str, &str, &str) {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[scheme_end..]
        .find(['/', '?'])
        .map_or(url.len(), |i| scheme_end + i);
    let host_start = url[scheme_end..authority_end]
        .rfind('@')
        .map_or(scheme_end, |i| scheme_end + i + 1);
    (
        &url[..host_start],
        &url[host_start..authority_end],
        &url[authority_end..],
    )
}
