//! The peer store against real databases: every scenario runs on a fresh
//! SQLite file and on a fresh PostgreSQL database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use skywire_db::Db;
use skywire_identity::Keypair;
use skywire_pool::store::{
    MAX_BAN_REASON_LEN, MAX_ENDPOINT_LEN, MAX_ENDPOINTS_PER_PEER, MAX_FAILURES, MAX_SCORE,
    MAX_SERVICES, MAX_USER_AGENT_LEN, MIN_SCORE, PeerStore, StoreError, StoredPeer,
};

/// A fixed "now", unix ms.
const NOW: i64 = 1_700_000_000_000;
const HOUR: i64 = 3_600_000;

/// Test peer `n` (n ≥ 1): a real node id and its Skycoin address.
fn peer(n: u8) -> ([u8; 33], String) {
    let keys = Keypair::from_secret_bytes(&[n; 32]).unwrap();
    (keys.public_key().to_bytes(), keys.address().to_string())
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

async fn migrated(db: Db) -> Db {
    db.migrate(&PeerStore::migrations()).await.unwrap();
    db
}

/// Runs a statement directly (to set up states the API cannot reach).
async fn exec(db: &Db, sql: &'static str) {
    match db {
        Db::Sqlite(pool) => {
            sqlx::query(sql).execute(pool).await.unwrap();
        }
        Db::Postgres(pool) => {
            sqlx::query(sql).execute(pool).await.unwrap();
        }
    }
}

async fn scalar(db: &Db, sql: &'static str) -> i64 {
    match db {
        Db::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
    }
}

async fn get(store: &PeerStore, n: u8) -> StoredPeer {
    store.get(&peer(n).0).await.unwrap().expect("stored")
}

fn assert_invalid<T: std::fmt::Debug>(result: Result<T, StoreError>, field: &str) {
    match result {
        Err(StoreError::Invalid { field: f, .. }) if f == field => {}
        other => panic!("expected Invalid {{ field: {field} }}, got {other:?}"),
    }
}

/// Declares each scenario once per backend.
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let dir = tempfile::tempdir().unwrap();
                    let db = skywire_db::testing::fresh_sqlite(dir.path()).await.unwrap();
                    super::$scenario(super::migrated(db).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let (db, _url) = skywire_db::testing::fresh_postgres().await.unwrap();
                    super::$scenario(super::migrated(db).await).await;
                }
            )*
        }
    };
}

on_both_backends!(
    add_get_and_by_address,
    connected_records_a_connection,
    dial_outcomes,
    list_orders_best_first,
    bans_and_their_expiry,
    keep_and_dial_candidates,
    forget_stale_prunes_only_stale_peers,
    endpoints_are_capped_oldest_first,
    invalid_input_is_refused_and_nothing_written,
    the_peer_cap_evicts_the_worst,
    addresses_must_match_node_ids,
    corrupt_rows_are_errors_not_panics,
    concurrent_new_peers_respect_the_cap,
    migrations_are_idempotent,
);

async fn add_get_and_by_address(db: Db) {
    let store = PeerStore::new(db);
    let (id, address) = peer(1);
    assert_eq!(store.get(&id).await.unwrap(), None);
    assert_eq!(store.count().await.unwrap(), 0);

    store
        .add(&id, &address, Some("10.0.0.1:6000"), false)
        .await
        .unwrap();
    let stored = store.get(&id).await.unwrap().unwrap();
    assert_eq!(
        stored,
        StoredPeer {
            node_id: id,
            address: address.clone(),
            endpoints: strings(&["10.0.0.1:6000"]),
            services: vec![],
            user_agent: String::new(),
            first_seen_ms: 0,
            last_seen_ms: 0,
            last_attempt_ms: 0,
            failures: 0,
            score: 0,
            banned_until_ms: None,
            ban_reason: None,
            keep: false,
        }
    );

    // A second endpoint comes first; keep is set, and never cleared by add.
    store
        .add(&id, &address, Some("[2001:db8::1]:6000"), true)
        .await
        .unwrap();
    store.add(&id, &address, None, false).await.unwrap();
    let stored = get(&store, 1).await;
    assert_eq!(
        stored.endpoints,
        strings(&["[2001:db8::1]:6000", "10.0.0.1:6000"])
    );
    assert!(stored.keep);
    // Re-adding an endpoint makes it the most recent.
    store
        .add(&id, &address, Some("10.0.0.1:6000"), false)
        .await
        .unwrap();
    assert_eq!(
        get(&store, 1).await.endpoints,
        strings(&["10.0.0.1:6000", "[2001:db8::1]:6000"])
    );

    let (other, other_address) = peer(2);
    store
        .add(&other, &other_address, None, false)
        .await
        .unwrap();
    assert_eq!(store.count().await.unwrap(), 2);
    assert_eq!(get(&store, 2).await.endpoints, Vec::<String>::new());

    let found = store.by_address(&address).await.unwrap().unwrap();
    assert_eq!(found.node_id, id);
    assert_eq!(found.endpoints.len(), 2);
    assert_eq!(
        store
            .by_address(&other_address)
            .await
            .unwrap()
            .unwrap()
            .node_id,
        other
    );
    assert_eq!(store.by_address(&peer(3).1).await.unwrap(), None);
    assert_eq!(store.by_address(&"x".repeat(1000)).await.unwrap(), None);
}

async fn connected_records_a_connection(db: Db) {
    let store = PeerStore::new(db.clone());
    let (id, address) = peer(1);
    // An unknown peer is stored by its first connection.
    store
        .connected(
            &id,
            &address,
            &strings(&["10.0.0.1:6000", "10.0.0.2:6000"]),
            &strings(&["echo/1", "pool/1"]),
            "skywire/0.1.0",
            NOW,
        )
        .await
        .unwrap();
    let stored = get(&store, 1).await;
    assert_eq!(
        stored.endpoints,
        strings(&["10.0.0.1:6000", "10.0.0.2:6000"])
    );
    assert_eq!(stored.services, strings(&["echo/1", "pool/1"]));
    assert_eq!(stored.user_agent, "skywire/0.1.0");
    assert_eq!((stored.first_seen_ms, stored.last_seen_ms), (NOW, NOW));
    assert_eq!((stored.failures, stored.score), (0, 1));

    store.dial_failed(&id, NOW + 1).await.unwrap();
    store.dial_failed(&id, NOW + 2).await.unwrap();
    assert_eq!(get(&store, 1).await.failures, 2);

    // A later connection: failures cleared, score up, services and user agent
    // replaced, endpoints merged (the new ones first), first contact kept.
    store
        .connected(
            &id,
            &address,
            &strings(&["10.0.0.3:6000", "10.0.0.1:6000"]),
            &[],
            "skywire/0.2.0",
            NOW + HOUR,
        )
        .await
        .unwrap();
    let stored = get(&store, 1).await;
    assert_eq!(
        stored.endpoints,
        strings(&["10.0.0.3:6000", "10.0.0.1:6000", "10.0.0.2:6000"])
    );
    assert_eq!(stored.services, Vec::<String>::new());
    assert_eq!(stored.user_agent, "skywire/0.2.0");
    assert_eq!(
        (stored.first_seen_ms, stored.last_seen_ms),
        (NOW, NOW + HOUR)
    );
    assert_eq!(stored.last_attempt_ms, NOW + 2);
    assert_eq!((stored.failures, stored.score), (0, 0));

    // The score stops at MAX_SCORE.
    exec(&db, "UPDATE pool_peers SET score = 1000").await;
    assert_eq!(MAX_SCORE, 1000);
    store
        .connected(&id, &address, &[], &[], "", NOW + 2 * HOUR)
        .await
        .unwrap();
    assert_eq!(get(&store, 1).await.score, MAX_SCORE);
}

async fn dial_outcomes(db: Db) {
    let store = PeerStore::new(db.clone());
    let (id, address) = peer(1);
    let unknown = peer(2).0;
    assert!(matches!(
        store.dial_failed(&unknown, NOW).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.dial_attempted(&unknown, NOW).await,
        Err(StoreError::NotFound { .. })
    ));

    store
        .add(&id, &address, Some("10.0.0.1:6000"), false)
        .await
        .unwrap();
    store.dial_attempted(&id, NOW).await.unwrap();
    let stored = get(&store, 1).await;
    assert_eq!(
        (stored.last_attempt_ms, stored.failures, stored.score),
        (NOW, 0, 0)
    );

    assert_eq!(store.dial_failed(&id, NOW + 1).await.unwrap(), 1);
    assert_eq!(store.dial_failed(&id, NOW + 2).await.unwrap(), 2);
    assert_eq!(store.dial_failed(&id, NOW + 3).await.unwrap(), 3);
    let stored = get(&store, 1).await;
    assert_eq!(
        (stored.last_attempt_ms, stored.failures, stored.score),
        (NOW + 3, 3, -3)
    );

    // Failures and score are bounded.
    exec(
        &db,
        "UPDATE pool_peers SET failures = 1000000, score = -1000",
    )
    .await;
    assert_eq!((MAX_FAILURES, MIN_SCORE), (1_000_000, -1000));
    assert_eq!(store.dial_failed(&id, NOW + 4).await.unwrap(), MAX_FAILURES);
    assert_eq!(get(&store, 1).await.score, MIN_SCORE);
}

async fn list_orders_best_first(db: Db) {
    let store = PeerStore::new(db);
    for n in 1..=4 {
        let (id, address) = peer(n);
        store
            .add(&id, &address, Some(&format!("10.0.0.{n}:6000")), false)
            .await
            .unwrap();
    }
    // Scores: 1 → 2, 2 → 1 (seen later than 3), 3 → 1, 4 → -1.
    let (id, address) = peer(1);
    store
        .connected(&id, &address, &[], &[], "", NOW)
        .await
        .unwrap();
    store
        .connected(&id, &address, &[], &[], "", NOW + 1)
        .await
        .unwrap();
    let (id, address) = peer(2);
    store
        .connected(&id, &address, &[], &[], "", NOW + 10)
        .await
        .unwrap();
    let (id, address) = peer(3);
    store
        .connected(&id, &address, &[], &[], "", NOW + 5)
        .await
        .unwrap();
    store.dial_failed(&peer(4).0, NOW).await.unwrap();

    let order: Vec<[u8; 33]> = store
        .list(10)
        .await
        .unwrap()
        .iter()
        .map(|p| p.node_id)
        .collect();
    assert_eq!(order, vec![peer(1).0, peer(2).0, peer(3).0, peer(4).0]);
    let top = store.list(2).await.unwrap();
    assert_eq!(top.len(), 2);
    assert_eq!(top[1].node_id, peer(2).0);
    assert_eq!(top[1].endpoints, strings(&["10.0.0.2:6000"]));
    assert!(store.list(0).await.unwrap().is_empty());
}

async fn bans_and_their_expiry(db: Db) {
    let store = PeerStore::new(db);
    let (id, address) = peer(1);
    store
        .add(&id, &address, Some("10.0.0.1:6000"), false)
        .await
        .unwrap();
    // Banning an unknown peer stores it.
    let (unknown, unknown_address) = peer(2);
    store
        .ban(&unknown, &unknown_address, NOW + 2 * HOUR, "spam")
        .await
        .unwrap();
    assert_eq!(store.count().await.unwrap(), 2);
    let banned = get(&store, 2).await;
    assert_eq!(banned.address, unknown_address);
    assert_eq!(banned.banned_until_ms, Some(NOW + 2 * HOUR));
    assert_eq!(banned.ban_reason.as_deref(), Some("spam"));
    assert!(banned.is_banned(NOW));
    assert!(!banned.is_banned(NOW + 2 * HOUR));

    store
        .ban(&id, &address, NOW + HOUR, "protocol violation")
        .await
        .unwrap();
    assert_eq!(
        store.active_bans(NOW).await.unwrap(),
        vec![
            (unknown, NOW + 2 * HOUR, "spam".to_owned()),
            (id, NOW + HOUR, "protocol violation".to_owned()),
        ]
    );
    assert!(store.dial_candidates(NOW, 10).await.unwrap().is_empty());

    // A ban ends at banned_until_ms.
    assert_eq!(
        store.active_bans(NOW + HOUR).await.unwrap(),
        vec![(unknown, NOW + 2 * HOUR, "spam".to_owned())]
    );
    let candidates = store.dial_candidates(NOW + HOUR, 10).await.unwrap();
    assert_eq!(candidates.len(), 1);
    assert_eq!(candidates[0].node_id, id);
    assert!(store.active_bans(NOW + 2 * HOUR).await.unwrap().is_empty());

    // A new ban replaces the old, shorter or longer.
    store
        .ban(&unknown, &unknown_address, NOW + 30 * 60_000, "again")
        .await
        .unwrap();
    assert_eq!(
        store.active_bans(NOW).await.unwrap()[1],
        (unknown, NOW + 30 * 60_000, "again".to_owned())
    );

    assert!(store.unban(&id).await.unwrap());
    assert!(!store.unban(&id).await.unwrap());
    assert!(!store.unban(&peer(3).0).await.unwrap());
    let unbanned = get(&store, 1).await;
    assert_eq!(
        (unbanned.banned_until_ms, unbanned.ban_reason),
        (None, None)
    );
    assert_eq!(store.dial_candidates(NOW, 10).await.unwrap()[0].node_id, id);
    assert_eq!(store.active_bans(NOW).await.unwrap().len(), 1);
}

async fn keep_and_dial_candidates(db: Db) {
    let store = PeerStore::new(db);
    for n in 1..=5 {
        let (id, address) = peer(n);
        store
            .add(&id, &address, Some(&format!("10.0.0.{n}:6000")), false)
            .await
            .unwrap();
    }
    // 6 has no endpoint: never a candidate, kept or not.
    let (id6, address6) = peer(6);
    store.add(&id6, &address6, None, true).await.unwrap();
    // 1: score -1. 2: score 1. 3: kept, score 0. 4: score 0, no failures,
    // never tried. 5: score 0, one failure. 7: score 0, no failures, tried.
    store.dial_failed(&peer(1).0, NOW).await.unwrap();
    let (id2, address2) = peer(2);
    store
        .connected(&id2, &address2, &[], &[], "", NOW)
        .await
        .unwrap();
    assert!(store.set_keep(&peer(3).0, true).await.unwrap());
    assert!(!store.set_keep(&peer(9).0, true).await.unwrap());
    let (id5, address5) = peer(5);
    store
        .connected(&id5, &address5, &[], &[], "", NOW)
        .await
        .unwrap();
    store.dial_failed(&id5, NOW + 1).await.unwrap();
    let (id7, address7) = peer(7);
    store
        .add(&id7, &address7, Some("10.0.0.7:6000"), false)
        .await
        .unwrap();
    store.dial_attempted(&id7, NOW).await.unwrap();

    let order: Vec<[u8; 33]> = store
        .dial_candidates(NOW, 10)
        .await
        .unwrap()
        .iter()
        .map(|p| p.node_id)
        .collect();
    assert_eq!(order, vec![peer(3).0, id2, peer(4).0, id7, id5, peer(1).0]);
    let top = store.dial_candidates(NOW, 2).await.unwrap();
    assert_eq!(top.len(), 2);
    assert_eq!(top[0].endpoints, strings(&["10.0.0.3:6000"]));

    // Without keep, 3 is just one of the peers scoring 0.
    assert!(store.set_keep(&peer(3).0, false).await.unwrap());
    assert!(!get(&store, 3).await.keep);
    assert_eq!(store.dial_candidates(NOW, 1).await.unwrap()[0].node_id, id2);
}

async fn forget_stale_prunes_only_stale_peers(db: Db) {
    let store = PeerStore::new(db.clone());
    let old = NOW - 48 * HOUR;
    // 1: old, failing: forgotten (with its endpoints).
    // 2: old, failing, kept: remembered.
    // 3: old, failing, banned beyond the cutoff: remembered.
    // 4: old, but not failing enough: remembered.
    // 5: recent, failing: remembered.
    // 6: never connected, failing: forgotten.
    // 7: old, failing, ban expired before the cutoff: forgotten.
    for n in 1..=7 {
        let (id, address) = peer(n);
        let seen = if n == 5 { NOW - HOUR } else { old };
        if n != 6 {
            store
                .connected(&id, &address, &strings(&["10.0.0.1:6000"]), &[], "", seen)
                .await
                .unwrap();
        } else {
            store
                .add(&id, &address, Some("10.0.0.6:6000"), false)
                .await
                .unwrap();
        }
        let failures = if n == 4 { 1 } else { 3 };
        for i in 0..failures {
            store.dial_failed(&id, seen + i + 1).await.unwrap();
        }
    }
    assert!(store.set_keep(&peer(2).0, true).await.unwrap());
    let (id3, address3) = peer(3);
    store.ban(&id3, &address3, NOW + HOUR, "bad").await.unwrap();
    let (id7, address7) = peer(7);
    store
        .ban(&id7, &address7, NOW - 30 * HOUR, "long ago")
        .await
        .unwrap();
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM pool_endpoints").await, 7);

    let cutoff = NOW - 24 * HOUR;
    assert_eq!(store.forget_stale(cutoff, 3).await.unwrap(), 3);
    let left: Vec<[u8; 33]> = store
        .list(100)
        .await
        .unwrap()
        .iter()
        .map(|p| p.node_id)
        .collect();
    assert_eq!(left.len(), 4);
    for n in [2, 3, 4, 5] {
        assert!(left.contains(&peer(n).0), "peer {n} forgotten");
    }
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM pool_endpoints").await, 4);
    assert_eq!(store.forget_stale(cutoff, 3).await.unwrap(), 0);
    assert_eq!(store.count().await.unwrap(), 4);
}

async fn endpoints_are_capped_oldest_first(db: Db) {
    let store = PeerStore::new(db);
    let (id, address) = peer(1);
    assert_eq!(MAX_ENDPOINTS_PER_PEER, 8);
    for i in 0..10 {
        store
            .add(&id, &address, Some(&format!("10.0.0.{i}:6000")), false)
            .await
            .unwrap();
    }
    let expected: Vec<String> = (2..10).rev().map(|i| format!("10.0.0.{i}:6000")).collect();
    assert_eq!(get(&store, 1).await.endpoints, expected);

    // Refreshing the oldest saves it; the next oldest goes.
    store
        .add(&id, &address, Some("10.0.0.2:6000"), false)
        .await
        .unwrap();
    store
        .add(&id, &address, Some("10.0.0.10:6000"), false)
        .await
        .unwrap();
    let endpoints = get(&store, 1).await.endpoints;
    assert_eq!(endpoints.len(), MAX_ENDPOINTS_PER_PEER);
    assert_eq!(
        &endpoints[..2],
        &strings(&["10.0.0.10:6000", "10.0.0.2:6000"])[..]
    );
    assert!(!endpoints.contains(&"10.0.0.3:6000".to_owned()));

    // A connection with a full set replaces all of them.
    let fresh: Vec<String> = (0..MAX_ENDPOINTS_PER_PEER)
        .map(|i| format!("192.168.1.{i}:6000"))
        .collect();
    store
        .connected(&id, &address, &fresh, &[], "", NOW)
        .await
        .unwrap();
    assert_eq!(get(&store, 1).await.endpoints, fresh);

    // More than the cap at once is refused.
    let too_many: Vec<String> = (0..=MAX_ENDPOINTS_PER_PEER)
        .map(|i| format!("172.16.0.{i}:6000"))
        .collect();
    assert_invalid(
        store
            .connected(&id, &address, &too_many, &[], "", NOW)
            .await,
        "endpoints",
    );
    assert_eq!(get(&store, 1).await.endpoints, fresh);
}

async fn invalid_input_is_refused_and_nothing_written(db: Db) {
    let store = PeerStore::new(db);
    let (id, address) = peer(1);
    for bad in ["", "has space", "0OIl", &"a".repeat(65)] {
        assert_invalid(store.add(&id, bad, None, false).await, "address");
        assert_invalid(store.ban(&id, bad, NOW, "x").await, "address");
        assert_invalid(
            store.connected(&id, bad, &[], &[], "", NOW).await,
            "address",
        );
    }
    let long_endpoint = format!("{}:6000", "h".repeat(MAX_ENDPOINT_LEN));
    for bad in [
        "",
        "10.0.0.1 :6000",
        "10.0.0.1:6000\n",
        &long_endpoint,
        "hôte:6000",
    ] {
        assert_invalid(store.add(&id, &address, Some(bad), false).await, "endpoint");
        assert_invalid(
            store
                .connected(&id, &address, &[bad.to_owned()], &[], "", NOW)
                .await,
            "endpoint",
        );
    }
    let too_many: Vec<String> = (0..=MAX_SERVICES).map(|i| format!("s{i}/1")).collect();
    for bad in [
        too_many,
        strings(&["echo/1,pool/1"]),
        strings(&[""]),
        strings(&["with space"]),
        vec!["s".repeat(65)],
    ] {
        assert_invalid(
            store.connected(&id, &address, &[], &bad, "", NOW).await,
            "services",
        );
    }
    for bad in ["a\u{0}b".to_owned(), "x".repeat(MAX_USER_AGENT_LEN + 1)] {
        assert_invalid(
            store.connected(&id, &address, &[], &[], &bad, NOW).await,
            "user_agent",
        );
    }
    for bad in ["line\nbreak".to_owned(), "r".repeat(MAX_BAN_REASON_LEN + 1)] {
        assert_invalid(store.ban(&id, &address, NOW, &bad).await, "ban_reason");
    }
    assert_eq!(store.count().await.unwrap(), 0);

    // At the caps exactly is fine.
    let services: Vec<String> = (0..MAX_SERVICES).map(|i| format!("s{i}/1")).collect();
    store
        .connected(
            &id,
            &address,
            &[],
            &services,
            &"u".repeat(MAX_USER_AGENT_LEN),
            NOW,
        )
        .await
        .unwrap();
    store
        .ban(&id, &address, NOW, &"r".repeat(MAX_BAN_REASON_LEN))
        .await
        .unwrap();
    let endpoint = format!("{}:6000", "h".repeat(MAX_ENDPOINT_LEN - 5));
    store
        .add(&id, &address, Some(&endpoint), false)
        .await
        .unwrap();
    let stored = get(&store, 1).await;
    assert_eq!(stored.services, services);
    assert_eq!(stored.endpoints, vec![endpoint]);
}

async fn the_peer_cap_evicts_the_worst(db: Db) {
    let store = PeerStore::with_max_peers(db, 3);
    // 1: kept, score -1. 2: score 1. 3: score -2.
    let (id1, a1) = peer(1);
    store.add(&id1, &a1, None, true).await.unwrap();
    store.dial_failed(&id1, NOW).await.unwrap();
    let (id2, a2) = peer(2);
    store
        .connected(&id2, &a2, &strings(&["10.0.0.2:6000"]), &[], "", NOW)
        .await
        .unwrap();
    let (id3, a3) = peer(3);
    store
        .add(&id3, &a3, Some("10.0.0.3:6000"), false)
        .await
        .unwrap();
    store.dial_failed(&id3, NOW).await.unwrap();
    store.dial_failed(&id3, NOW).await.unwrap();
    assert_eq!(store.count().await.unwrap(), 3);

    // Known peers are updated without evicting anyone.
    store
        .add(&id3, &a3, Some("10.0.0.33:6000"), false)
        .await
        .unwrap();
    assert_eq!(store.count().await.unwrap(), 3);

    // A new peer evicts the worst-scored peer that is not kept: 3.
    let (id4, a4) = peer(4);
    store.connected(&id4, &a4, &[], &[], "", NOW).await.unwrap();
    assert_eq!(store.count().await.unwrap(), 3);
    assert_eq!(store.get(&id3).await.unwrap(), None);
    assert!(store.get(&id1).await.unwrap().is_some());

    // Banned peers are spared while others can go: 2, banned and now scoring
    // below 4, stays; 4 goes.
    store.dial_failed(&id2, NOW).await.unwrap();
    store.dial_failed(&id2, NOW).await.unwrap();
    store.ban(&id2, &a2, NOW + HOUR, "bad").await.unwrap();
    let (id5, a5) = peer(5);
    store.add(&id5, &a5, None, false).await.unwrap();
    assert_eq!(store.get(&id4).await.unwrap(), None);
    assert!(store.get(&id2).await.unwrap().is_some());

    // With only kept and banned peers left, a banned one goes.
    assert!(store.set_keep(&id5, true).await.unwrap());
    let (id6, a6) = peer(6);
    store.ban(&id6, &a6, NOW + 2 * HOUR, "worse").await.unwrap();
    assert_eq!(store.get(&id2).await.unwrap(), None);
    assert_eq!(store.count().await.unwrap(), 3);

    // All kept: nothing can be evicted.
    assert!(store.set_keep(&id6, true).await.unwrap());
    let (id7, a7) = peer(7);
    assert!(matches!(
        store.add(&id7, &a7, None, false).await,
        Err(StoreError::Full { max: 3 })
    ));
    assert_eq!(store.get(&id7).await.unwrap(), None);
    assert_eq!(store.count().await.unwrap(), 3);
}

async fn addresses_must_match_node_ids(db: Db) {
    let store = PeerStore::new(db);
    let (id1, a1) = peer(1);
    let (id2, a2) = peer(2);
    store.add(&id1, &a1, None, false).await.unwrap();
    // Another node id with 1's address.
    assert_invalid(store.add(&id2, &a1, None, false).await, "address");
    // 1 under another address.
    assert_invalid(
        store.connected(&id1, &a2, &[], &[], "", NOW).await,
        "address",
    );
    assert_invalid(store.ban(&id1, &a2, NOW, "x").await, "address");
    assert_eq!(store.count().await.unwrap(), 1);
    assert_eq!(get(&store, 1).await.address, a1);
}

async fn corrupt_rows_are_errors_not_panics(db: Db) {
    let store = PeerStore::new(db.clone());
    let (id, address) = peer(1);
    store
        .add(&id, &address, Some("10.0.0.1:6000"), false)
        .await
        .unwrap();

    // Rows the store would never write: the schema's checks are lifted to
    // plant them.
    match &db {
        Db::Sqlite(pool) => {
            let mut conn = pool.acquire().await.unwrap();
            sqlx::query("PRAGMA ignore_check_constraints = ON")
                .execute(&mut *conn)
                .await
                .unwrap();
            sqlx::query(
                "INSERT INTO pool_peers (node_id, address, score) VALUES (x'0102', 'short', 5)",
            )
            .execute(&mut *conn)
            .await
            .unwrap();
            sqlx::query("PRAGMA ignore_check_constraints = OFF")
                .execute(&mut *conn)
                .await
                .unwrap();
        }
        Db::Postgres(pool) => {
            sqlx::query("ALTER TABLE pool_peers DROP CONSTRAINT pool_peers_node_id_len")
                .execute(pool)
                .await
                .unwrap();
            sqlx::query(
                "INSERT INTO pool_peers (node_id, address, score) VALUES ('\\x0102', 'short', 5)",
            )
            .execute(pool)
            .await
            .unwrap();
        }
    }
    assert!(matches!(
        store.list(10).await,
        Err(StoreError::Corrupt { ref field, .. }) if field == "node_id"
    ));
    assert!(matches!(
        store.by_address("short").await,
        Err(StoreError::Corrupt { ref field, .. }) if field == "node_id"
    ));
    exec(
        &db,
        "UPDATE pool_peers SET banned_until_ms = 1800000000000 WHERE address = 'short'",
    )
    .await;
    assert!(matches!(
        store.active_bans(NOW).await,
        Err(StoreError::Corrupt { .. })
    ));
    exec(&db, "DELETE FROM pool_peers WHERE address = 'short'").await;
    assert_eq!(store.list(10).await.unwrap().len(), 1);

    // A failure count out of range.
    match &db {
        Db::Sqlite(pool) => {
            let mut conn = pool.acquire().await.unwrap();
            sqlx::query("PRAGMA ignore_check_constraints = ON")
                .execute(&mut *conn)
                .await
                .unwrap();
            sqlx::query("UPDATE pool_peers SET failures = -1")
                .execute(&mut *conn)
                .await
                .unwrap();
            sqlx::query("PRAGMA ignore_check_constraints = OFF")
                .execute(&mut *conn)
                .await
                .unwrap();
        }
        Db::Postgres(pool) => {
            sqlx::query("ALTER TABLE pool_peers DROP CONSTRAINT pool_peers_failures_check")
                .execute(pool)
                .await
                .unwrap();
            sqlx::query("UPDATE pool_peers SET failures = -1")
                .execute(pool)
                .await
                .unwrap();
        }
    }
    assert!(matches!(
        store.get(&id).await,
        Err(StoreError::Corrupt { ref field, .. }) if field == "failures"
    ));
    assert!(matches!(
        store.dial_candidates(NOW, 10).await,
        Err(StoreError::Corrupt { .. })
    ));
}

async fn concurrent_new_peers_respect_the_cap(db: Db) {
    let store = PeerStore::with_max_peers(db, 5);
    let mut tasks = Vec::new();
    for n in 1..=20u8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let (id, address) = peer(n);
            store.add(&id, &address, Some("10.0.0.1:6000"), false).await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(store.count().await.unwrap(), 5);
}

async fn migrations_are_idempotent(db: Db) {
    let store = PeerStore::new(db.clone());
    let (id, address) = peer(1);
    store
        .add(&id, &address, Some("10.0.0.1:6000"), true)
        .await
        .unwrap();
    db.migrate(&PeerStore::migrations()).await.unwrap();
    db.migrate(&PeerStore::migrations()).await.unwrap();
    assert_eq!(
        scalar(&db, "SELECT COUNT(*) FROM _sqlx_migrations_pool").await,
        1
    );
    assert!(get(&store, 1).await.keep);
}

/// Closing the pool and reopening the same SQLite file: everything is still
/// there, and migrating again changes nothing.
#[tokio::test]
async fn sqlite_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pool.db");
    let (id1, a1) = peer(1);
    let (id2, a2) = peer(2);
    let before = {
        let db = migrated(Db::sqlite_file(&path).await.unwrap()).await;
        let store = PeerStore::new(db.clone());
        store
            .connected(
                &id1,
                &a1,
                &strings(&["10.0.0.1:6000"]),
                &strings(&["echo/1"]),
                "ua",
                NOW,
            )
            .await
            .unwrap();
        store
            .add(&id2, &a2, Some("10.0.0.2:6000"), true)
            .await
            .unwrap();
        store.ban(&id2, &a2, NOW + HOUR, "why").await.unwrap();
        let before = store.list(10).await.unwrap();
        db.close().await;
        before
    };
    let db = migrated(
        Db::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap(),
    )
    .await;
    let store = PeerStore::new(db);
    assert_eq!(store.list(10).await.unwrap(), before);
    assert_eq!(before.len(), 2);
    assert_eq!(store.active_bans(NOW).await.unwrap().len(), 1);
}

/// The same across a PostgreSQL reconnection.
#[tokio::test]
async fn postgres_survives_a_reconnection() {
    let (db, url) = skywire_db::testing::fresh_postgres().await.unwrap();
    let db = migrated(db).await;
    let (id, address) = peer(1);
    let store = PeerStore::new(db.clone());
    store
        .connected(&id, &address, &strings(&["10.0.0.1:6000"]), &[], "ua", NOW)
        .await
        .unwrap();
    let before = store.list(10).await.unwrap();
    db.close().await;
    assert!(store.count().await.is_err());

    let store = PeerStore::new(migrated(Db::connect(&url).await.unwrap()).await);
    assert_eq!(store.list(10).await.unwrap(), before);
}
