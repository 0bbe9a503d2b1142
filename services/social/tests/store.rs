//! The social store's conformance suite, run on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap does

use astral_common::EventBus;
use astral_common::outbox::Outbox;
use astral_common::testing::{MigratedDatabase, TestDatabase};
use astral_social::events;
use astral_social::model::User;
use astral_social::store::{Blocked, NewRequest, Sent, Store};

/// Request `id` from `from` to `to`, sent at `now_ms`.
fn new_request(id: i64, from: i64, to: i64, now_ms: i64) -> NewRequest {
    NewRequest {
        id,
        from,
        to,
        now_ms,
    }
}

async fn stores() -> Vec<(&'static str, Store, TestDatabase)> {
    let mut stores = Vec::new();
    for MigratedDatabase {
        backend,
        pool,
        database,
    } in MigratedDatabase::both(&astral_social::MIGRATOR).await
    {
        let store = Store::new(pool.clone(), Outbox::start(pool, EventBus::local()));
        let users: Vec<User> = [(1, "ann"), (2, "ben"), (3, "cat")]
            .into_iter()
            .map(|(id, name)| User {
                id,
                username: name.into(),
            })
            .collect();
        store
            .remember_users(&users.iter().collect::<Vec<_>>())
            .await
            .unwrap();
        stores.push((backend, store, database));
    }
    stores
}

#[tokio::test]
async fn a_request_is_pending_until_the_recipient_accepts_it() {
    for (backend, store, _db) in stores().await {
        let Sent::Requested(request) = store
            .send_request(new_request(100, 1, 2, 5), events::sent)
            .await
            .unwrap()
        else {
            panic!("{backend}: expected a new request");
        };
        assert_eq!(
            (request.from.username.as_str(), request.to.username.as_str()),
            ("ann", "ben"),
            "{backend}"
        );
        assert_eq!(
            store.pending_requests(2, true).await.unwrap(),
            vec![request.clone()],
            "{backend}"
        );
        assert_eq!(
            store.pending_requests(1, false).await.unwrap(),
            vec![request.clone()],
            "{backend}"
        );
        let again = store
            .send_request(new_request(101, 1, 2, 6), events::sent)
            .await
            .unwrap();
        assert_eq!(again, Sent::AlreadyRequested, "{backend}");
        assert_eq!(
            store
                .accept_request(100, 1, 7, |r| vec![events::accepted(r)])
                .await
                .unwrap(),
            None,
            "{backend}: the sender cannot accept"
        );
        assert_eq!(
            store
                .accept_request(100, 2, 7, |r| vec![events::accepted(r)])
                .await
                .unwrap(),
            Some(request),
            "{backend}"
        );
        assert!(
            store.friendships_among(&[(2, 1)]).await.unwrap()[0],
            "{backend}"
        );
        assert_eq!(
            store.friends(1, "", 100).await.unwrap(),
            vec![User {
                id: 2,
                username: "ben".into()
            }],
            "{backend}"
        );
        assert!(
            store.pending_requests(2, true).await.unwrap().is_empty(),
            "{backend}"
        );
        let to_friend = store
            .send_request(new_request(102, 2, 1, 8), events::sent)
            .await
            .unwrap();
        assert_eq!(to_friend, Sent::AlreadyFriends, "{backend}");
    }
}

#[tokio::test]
async fn asking_someone_who_already_asked_accepts_their_request() {
    for (backend, store, _db) in stores().await {
        store
            .send_request(new_request(100, 1, 3, 5), events::sent)
            .await
            .unwrap();
        let answer = store
            .send_request(new_request(101, 3, 1, 6), events::sent)
            .await
            .unwrap();
        assert!(
            matches!(answer, Sent::AcceptedTheirs(ref r) if r.id == 100),
            "{backend}: {answer:?}"
        );
        assert!(
            store.friendships_among(&[(1, 3)]).await.unwrap()[0],
            "{backend}"
        );
        assert_eq!(
            store
                .friendships_among(&[(3, 1), (1, 2), (1, 3), (2, 3)])
                .await
                .unwrap(),
            vec![true, false, true, false],
            "{backend}: each pair answered in order, either way round"
        );
        assert!(store.friendships_among(&[]).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn only_the_recipient_declines_and_only_the_sender_cancels() {
    for (backend, store, _db) in stores().await {
        store
            .send_request(new_request(100, 1, 2, 5), events::sent)
            .await
            .unwrap();
        assert_eq!(
            store
                .delete_request(100, 1, true, |r| vec![events::declined(r)])
                .await
                .unwrap(),
            None,
            "{backend}: sender declining"
        );
        assert_eq!(
            store
                .delete_request(100, 2, false, |r| vec![events::declined(r)])
                .await
                .unwrap(),
            None,
            "{backend}: recipient cancelling"
        );
        assert_eq!(
            store
                .delete_request(100, 3, true, |r| vec![events::declined(r)])
                .await
                .unwrap(),
            None,
            "{backend}: a stranger"
        );
        assert!(
            store
                .delete_request(100, 1, false, |r| vec![events::declined(r)])
                .await
                .unwrap()
                .is_some(),
            "{backend}: sender cancels"
        );
        assert!(
            store.pending_requests(2, true).await.unwrap().is_empty(),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn unfriending_ends_the_friendship_once() {
    for (backend, store, _db) in stores().await {
        store
            .send_request(new_request(100, 1, 2, 5), events::sent)
            .await
            .unwrap();
        store
            .accept_request(100, 2, 6, |r| vec![events::accepted(r)])
            .await
            .unwrap();
        assert!(
            store
                .remove_friendship(2, 1, events::friend_removed(2, 1))
                .await
                .unwrap(),
            "{backend}"
        );
        assert!(
            !store
                .remove_friendship(1, 2, events::friend_removed(1, 2))
                .await
                .unwrap(),
            "{backend}"
        );
        assert!(
            !store.friendships_among(&[(1, 2)]).await.unwrap()[0],
            "{backend}"
        );
    }
}

#[tokio::test]
async fn blocking_ends_the_friendship_and_requests_and_refuses_new_ones_both_ways() {
    for (backend, store, _db) in stores().await {
        store
            .send_request(new_request(100, 1, 2, 5), events::sent)
            .await
            .unwrap();
        store
            .accept_request(100, 2, 6, |r| vec![events::accepted(r)])
            .await
            .unwrap();
        let Sent::Requested(pending) = store
            .send_request(new_request(101, 3, 1, 7), events::sent)
            .await
            .unwrap()
        else {
            panic!("{backend}")
        };
        assert_eq!(
            store
                .block(1, 2, 8, |undone| events::blocked(1, 2, undone))
                .await
                .unwrap(),
            Blocked {
                unfriended: true,
                requests: vec![]
            },
            "{backend}"
        );
        assert!(
            !store.friendships_among(&[(1, 2)]).await.unwrap()[0],
            "{backend}"
        );
        assert_eq!(
            store
                .block(1, 3, 9, |undone| events::blocked(1, 3, undone))
                .await
                .unwrap(),
            Blocked {
                unfriended: false,
                requests: vec![pending]
            },
            "{backend}"
        );
        assert!(
            store.pending_requests(1, true).await.unwrap().is_empty(),
            "{backend}"
        );
        assert_eq!(
            store
                .block(1, 3, 10, |undone| events::blocked(1, 3, undone))
                .await
                .unwrap(),
            Blocked::default(),
            "{backend}: blocking twice changes nothing"
        );
        let names: Vec<String> = store
            .blocked_users(1)
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.username)
            .collect();
        assert_eq!(names, ["ben", "cat"], "{backend}");
        assert_eq!(
            store
                .send_request(new_request(102, 2, 1, 11), events::sent)
                .await
                .unwrap(),
            Sent::RecipientBlocked,
            "{backend}"
        );
        assert_eq!(
            store
                .send_request(new_request(103, 1, 2, 12), events::sent)
                .await
                .unwrap(),
            Sent::SenderBlocked,
            "{backend}"
        );
        assert!(store.unblock(1, 2).await.unwrap(), "{backend}");
        assert!(
            !store.unblock(1, 2).await.unwrap(),
            "{backend}: already lifted"
        );
        assert!(
            matches!(
                store
                    .send_request(new_request(104, 2, 1, 13), events::sent)
                    .await
                    .unwrap(),
                Sent::Requested(_)
            ),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn friends_come_in_pages_by_username() {
    for (backend, store, _db) in stores().await {
        let many: Vec<User> = (10..40)
            .map(|id| User {
                id,
                username: format!("friend_{id:02}"),
            })
            .collect();
        store
            .remember_users(&many.iter().collect::<Vec<_>>())
            .await
            .unwrap();
        for friend in &many {
            let Sent::Requested(request) = store
                .send_request(new_request(1000 + friend.id, 1, friend.id, 1), events::sent)
                .await
                .unwrap()
            else {
                panic!()
            };
            store
                .accept_request(request.id, friend.id, 2, |r| vec![events::accepted(r)])
                .await
                .unwrap();
        }
        let first = store.friends(1, "", 12).await.unwrap();
        assert_eq!(first.len(), 12, "{backend}");
        assert_eq!(first[0].username, "friend_10", "{backend}");
        let rest = store.friends(1, &first[11].username, 100).await.unwrap();
        assert_eq!(rest.len(), 18, "{backend}");
        assert_eq!(rest[0].username, "friend_22", "{backend}");
        assert!(
            store.friends(1, "friend_39", 100).await.unwrap().is_empty(),
            "{backend}"
        );
    }
}
