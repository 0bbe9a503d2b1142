//! The messaging store's conformance suite, run on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap does

use astral_common::db;
use astral_common::testing::TestDatabase;
use astral_messaging::store::{NewMessage, Page, Store, User};

const CHAT: &str = "1_2";

async fn stores() -> Vec<(&'static str, Store, TestDatabase)> {
    let mut stores = Vec::new();
    for (backend, database) in TestDatabase::both().await {
        let pool = db::connect(&database.url).await.expect("connect");
        astral_messaging::MIGRATOR
            .run(&pool)
            .await
            .expect("migrate");
        let store = Store::new(pool);
        let users = [
            User {
                id: 1,
                username: "ann".into(),
            },
            User {
                id: 2,
                username: "ben".into(),
            },
            User {
                id: 3,
                username: "cat".into(),
            },
        ];
        store.remember_users(&users).await.unwrap();
        assert!(
            store
                .create_chat(CHAT, "direct", "", None, &[1, 2], 1)
                .await
                .unwrap()
        );
        stores.push((backend, store, database));
    }
    stores
}

fn new_message<'a>(
    id: i64,
    author_id: i64,
    content: &'a str,
    nonce: Option<&'a str>,
) -> NewMessage<'a> {
    NewMessage {
        id,
        chat_id: CHAT,
        author_id,
        content,
        nonce,
        now_ms: 10 + id,
    }
}

#[tokio::test]
async fn a_chat_is_created_once_and_seen_only_by_its_members() {
    for (backend, store, _db) in stores().await {
        assert!(
            !store
                .create_chat(CHAT, "direct", "", None, &[1, 2], 2)
                .await
                .unwrap(),
            "{backend}"
        );
        let chat = store
            .chat_for(CHAT, 1)
            .await
            .unwrap()
            .expect("member sees it");
        assert_eq!(
            chat.members.iter().map(|m| m.id).collect::<Vec<_>>(),
            vec![1, 2],
            "{backend}"
        );
        assert_eq!(
            store.chat_for(CHAT, 3).await.unwrap(),
            None,
            "{backend}: a non-member"
        );
        assert_eq!(store.chats_of(2).await.unwrap().len(), 1, "{backend}");
        assert!(store.chats_of(3).await.unwrap().is_empty(), "{backend}");
    }
}

#[tokio::test]
async fn every_change_takes_the_next_number_and_after_returns_them_all() {
    for (backend, store, _db) in stores().await {
        for id in 1..=3 {
            let message = store
                .insert_message(&new_message(id, 1, "hello", None))
                .await
                .unwrap()
                .unwrap();
            assert_eq!((message.seq, message.version), (id, id), "{backend}");
        }
        let edited = store
            .change_message(CHAT, 2, Some("edited"), 50)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (edited.seq, edited.version, edited.edited_at_ms),
            (2, 4, Some(50)),
            "{backend}"
        );
        let deleted = store
            .change_message(CHAT, 1, None, 60)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (deleted.version, deleted.deleted, deleted.content.as_str()),
            (5, true, ""),
            "{backend}"
        );
        assert_eq!(
            store.change_message(CHAT, 1, Some("x"), 70).await.unwrap(),
            None,
            "{backend}: a tombstone"
        );
        assert_eq!(
            store.chat_for(CHAT, 1).await.unwrap().unwrap().last_seq,
            5,
            "{backend}: no gap left by the refusal"
        );
        let changes = store.messages(CHAT, Page::After(3), 50).await.unwrap();
        assert_eq!(
            changes
                .iter()
                .map(|m| (m.id, m.version))
                .collect::<Vec<_>>(),
            vec![(2, 4), (1, 5)],
            "{backend}"
        );
        let latest = store.messages(CHAT, Page::Latest, 2).await.unwrap();
        assert_eq!(
            latest.iter().map(|m| m.seq).collect::<Vec<_>>(),
            vec![2, 3],
            "{backend}"
        );
        let before = store.messages(CHAT, Page::Before(2), 50).await.unwrap();
        assert_eq!(
            before.iter().map(|m| m.seq).collect::<Vec<_>>(),
            vec![1],
            "{backend}"
        );
    }
}

#[tokio::test]
async fn a_repeated_nonce_stores_nothing_new() {
    for (backend, store, _db) in stores().await {
        let first = store
            .insert_message(&new_message(1, 1, "once", Some("n-1")))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            store
                .insert_message(&new_message(2, 1, "once", Some("n-1")))
                .await
                .unwrap(),
            None,
            "{backend}"
        );
        assert_eq!(
            store.message_by_nonce(CHAT, 1, "n-1").await.unwrap(),
            Some(first),
            "{backend}"
        );
        let other_author = store
            .insert_message(&new_message(3, 2, "mine", Some("n-1")))
            .await
            .unwrap();
        assert!(other_author.is_some(), "{backend}: nonces are per author");
        assert_eq!(
            store.chat_for(CHAT, 1).await.unwrap().unwrap().last_seq,
            2,
            "{backend}: the duplicate took no number"
        );
    }
}

#[tokio::test]
async fn unread_counts_others_messages_after_the_read_marker() {
    for (backend, store, _db) in stores().await {
        for id in 1..=3 {
            store
                .insert_message(&new_message(id, 1, "hi", None))
                .await
                .unwrap();
        }
        assert_eq!(
            store.chat_for(CHAT, 2).await.unwrap().unwrap().unread,
            3,
            "{backend}"
        );
        assert_eq!(
            store.chat_for(CHAT, 1).await.unwrap().unwrap().unread,
            0,
            "{backend}: own messages"
        );
        store.mark_read(CHAT, 2, 2).await.unwrap();
        assert_eq!(
            store.chat_for(CHAT, 2).await.unwrap().unwrap().unread,
            1,
            "{backend}"
        );
        store.mark_read(CHAT, 2, 1).await.unwrap();
        assert_eq!(
            store.chat_for(CHAT, 2).await.unwrap().unwrap().unread,
            1,
            "{backend}: never moves back"
        );
        store.mark_read(CHAT, 2, 99).await.unwrap();
        assert_eq!(
            store.chat_for(CHAT, 2).await.unwrap().unwrap().unread,
            0,
            "{backend}"
        );
    }
}
