//! The saved routing table against real databases: a fresh SQLite file and
//! a fresh PostgreSQL database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use skywire_db::Db;
use skywire_dht::Contact;
use skywire_dht::store::{MAX_SAVED_CONTACTS, Saved, TableStore};
use skywire_identity::Keypair;
use skywire_record::NodeRecord;

fn contact(n: u32) -> Contact {
    let key = Keypair::generate();
    let [_, _, hi, lo] = n.to_be_bytes();
    let endpoint = SocketAddr::from(([10, hi, lo, 1], 7337));
    let record = NodeRecord::sign(&key, vec![endpoint], vec![], 1, 1).unwrap();
    Contact::new(Arc::new(record), endpoint)
}

fn saved(contacts: &[Contact]) -> Vec<Saved> {
    contacts
        .iter()
        .map(|c| Saved {
            node_id: c.record().node_id(),
            endpoint: c.endpoint(),
        })
        .collect()
}

async fn databases(dir: &std::path::Path) -> Vec<Db> {
    let sqlite = skywire_db::testing::fresh_sqlite(dir).await.unwrap();
    let (postgres, _) = skywire_db::testing::fresh_postgres().await.unwrap();
    let mut dbs = vec![sqlite, postgres];
    for db in &mut dbs {
        db.migrate(&TableStore::migrations()).await.unwrap();
    }
    dbs
}

/// Saving replaces the whole table; loading gives it back in order, capped
/// at a full table.
#[tokio::test]
async fn saves_replace_and_load_in_order() {
    let dir = tempfile::tempdir().unwrap();
    for db in databases(dir.path()).await {
        let store = TableStore::new(db);
        assert!(store.load().await.unwrap().is_empty());

        let first: Vec<Contact> = (0..300).map(contact).collect();
        store.save(&first).await.unwrap();
        assert_eq!(store.load().await.unwrap(), saved(&first));

        let second: Vec<Contact> = (300..305).map(contact).collect();
        store.save(&second).await.unwrap();
        assert_eq!(store.load().await.unwrap(), saved(&second));

        store.save(&[]).await.unwrap();
        assert!(store.load().await.unwrap().is_empty());
    }
}

/// More contacts than a full table: only the first `MAX_SAVED_CONTACTS`
/// are saved.
#[tokio::test]
async fn at_most_a_full_table_is_saved() {
    let dir = tempfile::tempdir().unwrap();
    for db in databases(dir.path()).await {
        let store = TableStore::new(db);
        let distinct: Vec<Contact> = (0..u32::try_from(MAX_SAVED_CONTACTS).unwrap() + 5)
            .map(contact)
            .collect();
        store.save(&distinct).await.unwrap();
        let loaded = store.load().await.unwrap();
        assert_eq!(loaded.len(), MAX_SAVED_CONTACTS);
        assert_eq!(loaded, saved(&distinct[..MAX_SAVED_CONTACTS]));
    }
}
