//! The auth store's conformance suite, run on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap does

use astral_auth::store::{NewSession, Store, User};
use astral_common::testing::TestDatabase;
use astral_common::{Error, db};

async fn stores() -> Vec<(&'static str, Store, TestDatabase)> {
    let mut stores = Vec::new();
    for (backend, database) in TestDatabase::both().await {
        let pool = db::connect(&database.url).await.expect("connect");
        astral_auth::MIGRATOR.run(&pool).await.expect("migrate");
        stores.push((backend, Store::new(pool), database));
    }
    stores
}

fn session(id: i64, user_id: i64, refresh_hash: &str) -> NewSession<'_> {
    NewSession {
        id,
        user_id,
        refresh_hash,
        user_agent: "test",
        now_ms: 1,
    }
}

#[tokio::test]
async fn a_taken_username_is_a_conflict_and_lookups_find_users() {
    for (backend, store, _db) in stores().await {
        let alice = User {
            id: 10,
            username: "alice".into(),
        };
        store
            .insert_user_with_session(&alice, "hash", &session(100, 10, "r1"))
            .await
            .unwrap();
        let again = User {
            id: 11,
            username: "alice".into(),
        };
        let taken = store
            .insert_user_with_session(&again, "hash", &session(101, 11, "r2"))
            .await;
        assert!(
            matches!(taken, Err(Error::AlreadyExists(_))),
            "{backend}: {taken:?}"
        );
        assert_eq!(
            store.user(10).await.unwrap(),
            Some(alice.clone()),
            "{backend}"
        );
        assert_eq!(
            store.user(11).await.unwrap(),
            None,
            "{backend}: the failed insert left no user"
        );
        assert_eq!(
            store.user_by_username("alice").await.unwrap(),
            Some(alice.clone()),
            "{backend}"
        );
        assert_eq!(
            store
                .credentials("alice")
                .await
                .unwrap()
                .unwrap()
                .password_hash,
            "hash",
            "{backend}"
        );
        assert_eq!(
            store.users(&[10, 11, 12]).await.unwrap(),
            vec![alice],
            "{backend}"
        );
    }
}

#[tokio::test]
async fn a_refresh_token_works_once_and_not_after_the_session_ends() {
    for (backend, store, _db) in stores().await {
        let bob = User {
            id: 20,
            username: "bob".into(),
        };
        store
            .insert_user_with_session(&bob, "hash", &session(200, 20, "first"))
            .await
            .unwrap();
        let rotated = store.rotate_refresh("first", "second", 5).await.unwrap();
        assert_eq!(rotated, Some((200, bob.clone())), "{backend}");
        assert_eq!(
            store.rotate_refresh("first", "third", 6).await.unwrap(),
            None,
            "{backend}: reused"
        );
        assert!(store.revoke_session(20, 200, 7).await.unwrap(), "{backend}");
        assert!(
            !store.revoke_session(20, 200, 8).await.unwrap(),
            "{backend}: already revoked"
        );
        assert_eq!(
            store.rotate_refresh("second", "fourth", 9).await.unwrap(),
            None,
            "{backend}: revoked"
        );
    }
}

#[tokio::test]
async fn signing_keys_come_newest_first_and_are_not_replaced() {
    for (backend, store, _db) in stores().await {
        store
            .insert_signing_key("old", "seed-old", 1)
            .await
            .unwrap();
        store
            .insert_signing_key("new", "seed-new", 2)
            .await
            .unwrap();
        store.insert_signing_key("old", "other", 3).await.unwrap();
        let keys = store.signing_keys().await.unwrap();
        assert_eq!(
            keys,
            vec![
                ("new".into(), "seed-new".into()),
                ("old".into(), "seed-old".into())
            ],
            "{backend}"
        );
    }
}
