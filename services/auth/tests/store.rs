//! The auth store's conformance suite, run on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap does

use astral_auth::store::{NewSession, Refreshed, Store, User};
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
async fn a_refresh_token_works_once_and_its_reuse_revokes_the_session() {
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
        assert_eq!(
            rotated,
            Refreshed::Rotated {
                session_id: 200,
                user: bob.clone()
            },
            "{backend}"
        );
        let reused = store.rotate_refresh("first", "third", 6).await.unwrap();
        assert_eq!(
            reused,
            Refreshed::Reused {
                session_id: 200,
                newly_revoked_user: Some(20)
            },
            "{backend}"
        );
        assert_eq!(
            store.rotate_refresh("second", "fourth", 7).await.unwrap(),
            Refreshed::Unknown,
            "{backend}: the whole session ended"
        );
        let again = store.rotate_refresh("first", "fifth", 8).await.unwrap();
        assert_eq!(
            again,
            Refreshed::Reused {
                session_id: 200,
                newly_revoked_user: None
            },
            "{backend}"
        );
        assert_eq!(
            store.rotate_refresh("never-issued", "x", 9).await.unwrap(),
            Refreshed::Unknown,
            "{backend}"
        );
        assert_eq!(
            store.revoked_since(0).await.unwrap(),
            vec![(200, 20, 6)],
            "{backend}"
        );
    }
}

#[tokio::test]
async fn sessions_end_one_at_a_time_or_all_but_one() {
    for (backend, store, _db) in stores().await {
        let carol = User {
            id: 30,
            username: "carol".into(),
        };
        store
            .insert_user_with_session(&carol, "hash", &session(300, 30, "a"))
            .await
            .unwrap();
        store.insert_session(&session(301, 30, "b")).await.unwrap();
        store.insert_session(&session(302, 30, "c")).await.unwrap();
        assert_eq!(store.live_sessions(30).await.unwrap().len(), 3, "{backend}");
        assert!(store.revoke_session(30, 300, 5).await.unwrap(), "{backend}");
        assert!(
            !store.revoke_session(30, 300, 6).await.unwrap(),
            "{backend}: already ended"
        );
        assert!(
            !store.revoke_session(31, 301, 6).await.unwrap(),
            "{backend}: not her session"
        );
        let mut ended = store.revoke_sessions(30, Some(302), 7).await.unwrap();
        ended.sort_unstable();
        assert_eq!(ended, vec![301], "{backend}");
        assert!(store.session_is_live(30, 302).await.unwrap(), "{backend}");
        assert!(!store.session_is_live(30, 301).await.unwrap(), "{backend}");
        assert_eq!(
            store
                .live_sessions(30)
                .await
                .unwrap()
                .iter()
                .map(|s| s.id)
                .collect::<Vec<_>>(),
            vec![302],
            "{backend}"
        );
    }
}

#[tokio::test]
async fn failed_logins_are_counted_per_key_within_the_window() {
    for (backend, store, _db) in stores().await {
        let keys = ["user:dan".to_owned(), "addr:1.2.3.4".to_owned()];
        for at in [100, 200, 300] {
            store.record_failure(&keys, at, 0).await.unwrap();
        }
        assert_eq!(
            store.recent_failures("user:dan", 150).await.unwrap(),
            (2, Some(200)),
            "{backend}"
        );
        assert_eq!(
            store.recent_failures("addr:1.2.3.4", 0).await.unwrap(),
            (3, Some(100)),
            "{backend}"
        );
        assert_eq!(
            store.recent_failures("user:eve", 0).await.unwrap(),
            (0, None),
            "{backend}"
        );
        store.clear_failures("user:dan").await.unwrap();
        assert_eq!(
            store.recent_failures("user:dan", 0).await.unwrap().0,
            0,
            "{backend}"
        );
        store.record_failure(&keys, 400, 250).await.unwrap();
        assert_eq!(
            store.recent_failures("addr:1.2.3.4", 0).await.unwrap(),
            (2, Some(300)),
            "{backend}: old ones forgotten"
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
                ("new".into(), "seed-new".into(), 2),
                ("old".into(), "seed-old".into(), 1)
            ],
            "{backend}"
        );
    }
}

#[tokio::test]
async fn a_signing_seed_is_replaced_only_while_it_is_still_the_one_read() {
    for (backend, store, _db) in stores().await {
        store.insert_signing_key("k", "clear", 1).await.unwrap();
        let replaced = store.replace_signing_seed("k", "clear", "v1:sealed").await;
        assert!(replaced.unwrap(), "{backend}");
        let again = store.replace_signing_seed("k", "clear", "v1:other").await;
        assert!(
            !again.unwrap(),
            "{backend}: another replica sealed it first"
        );
        assert_eq!(
            store.signing_keys().await.unwrap(),
            vec![("k".into(), "v1:sealed".into(), 1)],
            "{backend}"
        );
    }
}
