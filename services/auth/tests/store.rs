//! The auth store's conformance suite, run on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap does

use astral_auth::store::{
    Fresh, NewSession, Pruning, Refreshed, Reservation, RevokedSession, Store, StoredKey, User,
};
use astral_auth::throttle::{self, Limit};
use astral_common::Error;
use astral_common::testing::{MigratedDatabase, TestDatabase};

async fn stores() -> Vec<(&'static str, Store, TestDatabase)> {
    let mut stores = Vec::new();
    for MigratedDatabase {
        backend,
        pool,
        database,
    } in MigratedDatabase::both(&astral_auth::MIGRATOR).await
    {
        stores.push((
            backend,
            Store::new(
                pool.clone(),
                astral_common::outbox::Outbox::start(pool, astral_common::EventBus::local()),
            ),
            database,
        ));
    }
    stores
}

/// Every session is fresh enough.
const ANY_AGE: Fresh = Fresh {
    used_after_ms: i64::MIN,
    created_after_ms: i64::MIN,
};

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
        let rotated = store
            .rotate_refresh("first", "second", 5, ANY_AGE)
            .await
            .unwrap();
        assert_eq!(
            rotated,
            Refreshed::Rotated {
                session_id: 200,
                user: bob.clone()
            },
            "{backend}"
        );
        let reused = store
            .rotate_refresh("first", "third", 6, ANY_AGE)
            .await
            .unwrap();
        assert_eq!(
            reused,
            Refreshed::Reused {
                session_id: 200,
                newly_revoked_user: Some(20)
            },
            "{backend}"
        );
        assert_eq!(
            store
                .rotate_refresh("second", "fourth", 7, ANY_AGE)
                .await
                .unwrap(),
            Refreshed::Unknown,
            "{backend}: the whole session ended"
        );
        let again = store
            .rotate_refresh("first", "fifth", 8, ANY_AGE)
            .await
            .unwrap();
        assert_eq!(
            again,
            Refreshed::Reused {
                session_id: 200,
                newly_revoked_user: None
            },
            "{backend}"
        );
        assert_eq!(
            store
                .rotate_refresh("never-issued", "x", 9, ANY_AGE)
                .await
                .unwrap(),
            Refreshed::Unknown,
            "{backend}"
        );
        assert_eq!(
            store.revoked_since(0).await.unwrap(),
            vec![RevokedSession {
                session_id: 200,
                user_id: 20,
                revoked_at_ms: 6
            }],
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
        assert_eq!(
            store.live_sessions(30, ANY_AGE).await.unwrap().len(),
            3,
            "{backend}"
        );
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
                .live_sessions(30, ANY_AGE)
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

const FIVE_A_MINUTE: Limit = throttle::PER_NAME_AND_ADDRESS;

fn granted(reservation: &Reservation) -> bool {
    matches!(reservation, Reservation::Granted(_))
}

#[tokio::test]
async fn parallel_attempts_get_no_more_than_the_budget() {
    for (backend, store, _db) in stores().await {
        let keys = [
            ("login:dan@1.2.3.4".to_owned(), FIVE_A_MINUTE),
            ("login-address:1.2.3.4".to_owned(), throttle::PER_ADDRESS),
        ];
        let attempts: Vec<_> = (0..100)
            .map(|_| {
                let (store, keys) = (store.clone(), keys.clone());
                tokio::spawn(async move { store.reserve_attempt(&keys, 1_000).await.unwrap() })
            })
            .collect();
        let mut outcomes = Vec::new();
        for attempt in attempts {
            outcomes.push(attempt.await.unwrap());
        }
        assert_eq!(
            outcomes.iter().filter(|r| granted(r)).count(),
            5,
            "{backend}"
        );
        assert!(
            outcomes.contains(&Reservation::Refused { wait_ms: 60_000 }),
            "{backend}: the sixth blocks the key for a minute"
        );
    }
}

#[tokio::test]
async fn a_spent_budget_blocks_longer_each_time_and_a_success_restarts_the_back_off() {
    for (backend, store, _db) in stores().await {
        let key = [("login:eve@5.6.7.8".to_owned(), FIVE_A_MINUTE)];
        let mut now = 0;
        for lockout in [60_000, 120_000, 240_000] {
            for _ in 0..5 {
                now += 10;
                assert!(granted(&store.reserve_attempt(&key, now).await.unwrap()));
            }
            assert_eq!(
                store.reserve_attempt(&key, now).await.unwrap(),
                Reservation::Refused { wait_ms: lockout },
                "{backend}"
            );
            assert_eq!(
                store.reserve_attempt(&key, now + 1_000).await.unwrap(),
                Reservation::Refused {
                    wait_ms: lockout - 1_000
                },
                "{backend}: blocked until then"
            );
            now += lockout;
        }
        let Reservation::Granted(attempt) = store.reserve_attempt(&key, now).await.unwrap() else {
            panic!("{backend}: the block is over");
        };
        store.release_attempts(&attempt).await.unwrap();
        store.reset_backoff(&key[0].0).await.unwrap();
        for _ in 0..5 {
            assert!(granted(&store.reserve_attempt(&key, now).await.unwrap()));
        }
        assert_eq!(
            store.reserve_attempt(&key, now).await.unwrap(),
            Reservation::Refused { wait_ms: 60_000 },
            "{backend}: the back-off starts again"
        );
    }
}

/// A right password racing wrong ones gives back only its own attempt: the wrong ones that
/// were reserved alongside still count, so the budget does not reopen under the guesser.
#[tokio::test]
async fn a_success_does_not_reopen_the_budget() {
    for (backend, store, _db) in stores().await {
        let key = [("login:gus@5.6.7.9".to_owned(), FIVE_A_MINUTE)];
        let mut reserved = Vec::new();
        for _ in 0..5 {
            let Reservation::Granted(attempt) = store.reserve_attempt(&key, 100).await.unwrap()
            else {
                panic!("{backend}");
            };
            reserved.push(attempt);
        }
        store.release_attempts(&reserved[2]).await.unwrap();
        store.reset_backoff(&key[0].0).await.unwrap();
        assert!(granted(&store.reserve_attempt(&key, 200).await.unwrap()));
        assert!(
            !granted(&store.reserve_attempt(&key, 300).await.unwrap()),
            "{backend}: four wrong guesses and the one given back: the budget is spent"
        );
    }
}

#[tokio::test]
async fn released_attempts_do_not_count_and_registrations_wait_for_the_oldest() {
    for (backend, store, _db) in stores().await {
        let key = [("register:9.9.9.9".to_owned(), throttle::registrations(2))];
        let Reservation::Granted(first) = store.reserve_attempt(&key, 100).await.unwrap() else {
            panic!("{backend}");
        };
        store.release_attempts(&first).await.unwrap();
        assert!(granted(&store.reserve_attempt(&key, 200).await.unwrap()));
        assert!(granted(&store.reserve_attempt(&key, 300).await.unwrap()));
        assert_eq!(
            store.reserve_attempt(&key, 1_300).await.unwrap(),
            Reservation::Refused {
                wait_ms: 600_000 - 1_100
            },
            "{backend}: until the oldest leaves the window"
        );
    }
}

#[tokio::test]
async fn expired_sessions_are_not_refreshed_and_old_rows_are_pruned() {
    for (backend, store, _db) in stores().await {
        let fay = User {
            id: 40,
            username: "fay".into(),
        };
        store
            .insert_user_with_session(&fay, "hash", &session(400, 40, "idle"))
            .await
            .unwrap();
        let idle_since_1 = Fresh {
            used_after_ms: 1,
            created_after_ms: 0,
        };
        assert_eq!(
            store
                .rotate_refresh("idle", "x", 50, idle_since_1)
                .await
                .unwrap(),
            Refreshed::Unknown,
            "{backend}: unused too long"
        );
        let too_old = Fresh {
            used_after_ms: 0,
            created_after_ms: 1,
        };
        assert_eq!(
            store
                .rotate_refresh("idle", "x", 50, too_old)
                .await
                .unwrap(),
            Refreshed::Unknown,
            "{backend}: past its lifetime"
        );
        assert!(store.live_sessions(40, too_old).await.unwrap().is_empty());
        store
            .insert_session(&session(401, 40, "live"))
            .await
            .unwrap();
        store
            .rotate_refresh("live", "live-2", 60, ANY_AGE)
            .await
            .unwrap();
        store
            .reserve_attempt(&[("login:fay@1.1.1.1".into(), FIVE_A_MINUTE)], 10)
            .await
            .unwrap();
        let pruned = store
            .prune(&Pruning {
                attempts_before_ms: 20,
                sessions: Fresh {
                    used_after_ms: 2,
                    created_after_ms: 0,
                },
                revoked_before_ms: 0,
                spent_before_ms: 0,
            })
            .await
            .unwrap();
        // The attempt, its key, the idle session; the live one and its spent token stay.
        assert_eq!(pruned, 3, "{backend}");
        assert_eq!(
            store
                .rotate_refresh("live", "live-3", 70, ANY_AGE)
                .await
                .unwrap(),
            Refreshed::Reused {
                session_id: 401,
                newly_revoked_user: Some(40)
            },
            "{backend}: the spent token is still remembered"
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
            vec![key("new", "seed-new", 2), key("old", "seed-old", 1)],
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
            vec![key("k", "v1:sealed", 1)],
            "{backend}"
        );
    }
}

/// A stored signing key.
fn key(kid: &str, seed: &str, created_at_ms: i64) -> StoredKey {
    StoredKey {
        kid: kid.into(),
        seed: seed.into(),
        created_at_ms,
    }
}
