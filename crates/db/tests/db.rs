//! `Db` against real databases: a SQLite file and (feature `testing`) a
//! fresh PostgreSQL database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::borrow::Cow;
use std::time::Duration;

use skywire_db::{Backend, Db, DbError, Migrations};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AssertSqlSafe, SqlSafeStr};

/// A one-migration history creating `table`.
fn migrator(table: &str) -> Migrator {
    let sql = format!("CREATE TABLE {table} (id BIGINT PRIMARY KEY, note TEXT NOT NULL)");
    Migrator::with_migrations(vec![Migration::new(
        1,
        Cow::Owned(format!("create {table}")),
        MigrationType::Simple,
        AssertSqlSafe(sql).into_sql_str(),
        false,
    )])
}

fn migrations(service: &'static str) -> Migrations {
    let table = format!("{service}_items");
    Migrations::new(service, migrator(&table), migrator(&table))
}

async fn count_rows(db: &Db, table: &str) -> i64 {
    let sql = AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}"));
    match db {
        Db::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
    }
}

/// Two services migrate the same database; each keeps its own bookkeeping
/// table, and running migrations again is a no-op.
async fn services_share_a_database(db: &Db) {
    db.ping().await.unwrap();
    let alpha = migrations("alpha");
    let beta = migrations("beta");
    db.migrate(&alpha).await.unwrap();
    db.migrate(&beta).await.unwrap();
    db.migrate(&alpha).await.unwrap();
    db.migrate(&beta).await.unwrap();
    assert_eq!(count_rows(db, "_sqlx_migrations_alpha").await, 1);
    assert_eq!(count_rows(db, "_sqlx_migrations_beta").await, 1);
    assert_eq!(count_rows(db, "alpha_items").await, 0);
    assert_eq!(count_rows(db, "beta_items").await, 0);

    let bad = Migrations::new("Bad-Name", migrator("x"), migrator("x"));
    assert!(matches!(
        db.migrate(&bad).await,
        Err(DbError::InvalidServiceName { .. })
    ));
}

#[tokio::test]
async fn sqlite_file_is_created_and_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.db");
    let db = Db::sqlite_file(&path).await.unwrap();
    assert_eq!(db.backend(), Backend::Sqlite);
    assert!(path.exists());
    services_share_a_database(&db).await;

    let Db::Sqlite(pool) = &db else {
        unreachable!()
    };
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(journal, "wal");
    let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(foreign_keys, 1);
    db.close().await;

    // Reopened through a URL: the data and the bookkeeping are still there.
    let url = format!("sqlite://{}", path.display());
    let db = Db::connect(&url).await.unwrap();
    assert_eq!(count_rows(&db, "_sqlx_migrations_alpha").await, 1);
    db.migrate(&migrations("alpha")).await.unwrap();
}

#[tokio::test]
async fn unsupported_urls_are_refused() {
    for url in [
        "mysql://root:hunter2@localhost/db",
        "sqlite::memory:",
        "pool.db",
    ] {
        match Db::connect(url).await {
            Err(DbError::UnsupportedUrl { url_redacted }) => {
                assert!(!url_redacted.contains("hunter2"));
            }
            other => panic!("{url}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn sqlite_in_a_missing_directory_is_a_connect_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = Db::sqlite_file(&dir.path().join("missing/dir/x.db"))
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::Connect { .. }), "{err:?}");
}

#[tokio::test]
async fn a_down_postgres_is_a_prompt_clear_error_without_the_password() {
    // Port 1 on loopback: nothing listens, the connection is refused.
    let started = std::time::Instant::now();
    let err = Db::connect("postgres://app:hunter2@127.0.0.1:1/skywire")
        .await
        .unwrap_err();
    assert!(started.elapsed() < skywire_db::CONNECT_TIMEOUT + Duration::from_secs(1));
    let text = err.to_string();
    assert!(matches!(
        err,
        DbError::Connect { .. } | DbError::ConnectTimeout { .. }
    ));
    assert!(text.contains("app:***@127.0.0.1:1"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(!format!("{err:?}").contains("hunter2"));
}

#[cfg(feature = "testing")]
mod postgres {
    use super::*;

    #[tokio::test]
    async fn fresh_databases_are_distinct_and_migrate() {
        let (db, url) = skywire_db::testing::fresh_postgres().await.unwrap();
        let (other, other_url) = skywire_db::testing::fresh_postgres().await.unwrap();
        assert_ne!(url, other_url);
        assert_eq!(db.backend(), Backend::Postgres);
        services_share_a_database(&db).await;
        // The other database is untouched.
        other.migrate(&migrations("alpha")).await.unwrap();
        assert_eq!(count_rows(&other, "_sqlx_migrations_alpha").await, 1);

        // Reconnecting by URL sees the same data.
        db.close().await;
        let db = Db::connect(&url).await.unwrap();
        assert_eq!(count_rows(&db, "_sqlx_migrations_beta").await, 1);
    }

    #[tokio::test]
    async fn fresh_sqlite_files_are_distinct() {
        let dir = tempfile::tempdir().unwrap();
        let a = skywire_db::testing::fresh_sqlite(dir.path()).await.unwrap();
        let b = skywire_db::testing::fresh_sqlite(dir.path()).await.unwrap();
        a.migrate(&migrations("alpha")).await.unwrap();
        b.ping().await.unwrap();
        let Db::Sqlite(pool) = &b else { unreachable!() };
        let tables: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(tables, 0);
    }

    #[tokio::test]
    async fn unknown_database_is_a_connect_error() {
        let (_db, url) = skywire_db::testing::fresh_postgres().await.unwrap();
        let missing = format!("{url}_missing");
        let err = Db::connect(&missing).await.unwrap_err();
        assert!(matches!(err, DbError::Connect { .. }), "{err:?}");
    }
}
