//! The messaging store's conformance suite, run on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap does

use astral_common::EventBus;
use astral_common::outbox::{Outbox, Outgoing};
use astral_common::testing::{MigratedDatabase, TestDatabase};
use astral_messaging::events;
use astral_messaging::model::{
    ChatKind, Message, Page, Preview, Reaction, Settings, SystemChange, User,
};
use astral_messaging::search::Query;
use astral_messaging::store::{
    AddOutcome, Change, Changed, Inserted, Left, NewChat, NewMessage, Search, Store,
};

/// A new chat's description.
fn new_chat<'a>(
    id: &'a str,
    kind: ChatKind,
    name: &'a str,
    owner_id: Option<i64>,
    members: &'a [i64],
    now_ms: i64,
) -> NewChat<'a> {
    NewChat {
        id,
        kind,
        name,
        owner_id,
        members,
        now_ms,
    }
}

/// No events for a membership change (the tests that want them say so).
fn nothing<A: ?Sized, B: ?Sized>(_: &A, _: &B) -> Vec<Outgoing> {
    Vec::new()
}

/// The message a change left (the test fails if there is none).
fn changed(outcome: Changed) -> Message {
    match outcome {
        Changed::Message(message) => *message,
        other => panic!("no message changed: {other:?}"),
    }
}

const CHAT: &str = "1_2";

async fn stores() -> Vec<(&'static str, Store, TestDatabase)> {
    let mut stores = Vec::new();
    for MigratedDatabase {
        backend,
        pool,
        database,
    } in MigratedDatabase::both(&astral_messaging::MIGRATOR).await
    {
        let store = Store::new(pool.clone(), Outbox::start(pool, EventBus::local()));
        store.prepare_search().await.unwrap();
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
                .create_chat(
                    &new_chat(CHAT, ChatKind::Direct, "", None, &[1, 2], 1),
                    |_| Vec::new()
                )
                .await
                .unwrap()
        );
        stores.push((backend, store, database));
    }
    stores
}

fn stored(inserted: Inserted) -> Message {
    match inserted {
        Inserted::Stored { message, .. } => *message,
        other => panic!("not stored: {other:?}"),
    }
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
        reply_to: None,
        mentions: &[],
        attachment_ids: &[],
        now_ms: 10 + id,
        recipients: &[1, 2],
        recipients_version: 0,
    }
}

#[tokio::test]
async fn a_chat_is_created_once_and_seen_only_by_its_members() {
    for (backend, store, _db) in stores().await {
        assert!(
            !store
                .create_chat(
                    &new_chat(CHAT, ChatKind::Direct, "", None, &[1, 2], 2),
                    |_| Vec::new()
                )
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
            let message = stored(
                store
                    .insert_message(&new_message(id, 1, "hello", None), &events::message_created)
                    .await
                    .unwrap(),
            );
            assert_eq!((message.seq, message.version), (id, id), "{backend}");
        }
        let edited = changed(
            store
                .change_message(CHAT, 2, edit("edited"), 50, events::message_updated)
                .await
                .unwrap(),
        );
        assert_eq!(
            (edited.seq, edited.version, edited.edited_at_ms),
            (2, 4, Some(50)),
            "{backend}"
        );
        let deleted = changed(
            store
                .change_message(CHAT, 1, Change::Delete, 60, events::message_deleted)
                .await
                .unwrap(),
        );
        assert_eq!(
            (deleted.version, deleted.deleted, deleted.content.as_str()),
            (5, true, ""),
            "{backend}"
        );
        assert_eq!(
            store
                .change_message(CHAT, 1, edit("x"), 70, events::message_updated)
                .await
                .unwrap(),
            Changed::Gone,
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
        let first = stored(
            store
                .insert_message(
                    &new_message(1, 1, "once", Some("n-1")),
                    &events::message_created,
                )
                .await
                .unwrap(),
        );
        assert!(
            matches!(
                store
                    .insert_message(
                        &new_message(2, 1, "once", Some("n-1")),
                        &events::message_created
                    )
                    .await
                    .unwrap(),
                Inserted::NonceTaken
            ),
            "{backend}"
        );
        assert_eq!(
            store.message_by_nonce(CHAT, 1, "n-1").await.unwrap(),
            Some(first),
            "{backend}"
        );
        let other_author = store
            .insert_message(
                &new_message(3, 2, "mine", Some("n-1")),
                &events::message_created,
            )
            .await
            .unwrap();
        assert!(
            matches!(other_author, Inserted::Stored { .. }),
            "{backend}: nonces are per author"
        );
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
                .insert_message(&new_message(id, 1, "hi", None), &events::message_created)
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
        store.mark_read(CHAT, 2, 2, read_event).await.unwrap();
        assert_eq!(
            store.chat_for(CHAT, 2).await.unwrap().unwrap().unread,
            1,
            "{backend}"
        );
        store.mark_read(CHAT, 2, 1, read_event).await.unwrap();
        assert_eq!(
            store.chat_for(CHAT, 2).await.unwrap().unwrap().unread,
            1,
            "{backend}: never moves back"
        );
        store.mark_read(CHAT, 2, 99, read_event).await.unwrap();
        assert_eq!(
            store.chat_for(CHAT, 2).await.unwrap().unwrap().unread,
            0,
            "{backend}"
        );
    }
}

fn read_event(seq: i64) -> Outgoing {
    events::read_updated(CHAT, 2, seq)
}

/// The read markers a viewer is shown, by member.
async fn read_states(store: &Store, viewer: i64) -> Vec<(i64, i64)> {
    let chat = store.chat_for(CHAT, viewer).await.unwrap().unwrap();
    let viewed = chat.viewed.expect("a viewer's answer");
    viewed
        .read_states
        .iter()
        .map(|state| (state.user_id, state.seq))
        .collect()
}

#[tokio::test]
async fn read_markers_are_shown_only_between_members_who_share_them() {
    for (backend, store, _db) in stores().await {
        for id in 1..=3 {
            store
                .insert_message(&new_message(id, 1, "hi", None), &events::message_created)
                .await
                .unwrap();
        }
        store.mark_read(CHAT, 2, 2, read_event).await.unwrap();
        assert_eq!(read_states(&store, 1).await, [(1, 0), (2, 2)], "{backend}");
        assert_eq!(read_states(&store, 2).await, [(1, 0), (2, 2)], "{backend}");

        let off = events::settings_updated(
            2,
            &Settings {
                share_read_receipts: false,
            },
        );
        let settings = store.set_share_read_receipts(2, false, off).await.unwrap();
        assert!(!settings.share_read_receipts, "{backend}");
        assert!(
            !store.settings_of(2).await.unwrap().share_read_receipts,
            "{backend}"
        );
        assert!(
            store.settings_of(1).await.unwrap().share_read_receipts,
            "{backend}: the default"
        );
        assert_eq!(
            read_states(&store, 1).await,
            [(1, 0)],
            "{backend}: 2's marker hidden"
        );
        assert_eq!(read_states(&store, 2).await, [], "{backend}: 2 sees none");

        let on = events::settings_updated(
            2,
            &Settings {
                share_read_receipts: true,
            },
        );
        store.set_share_read_receipts(2, true, on).await.unwrap();
        assert_eq!(read_states(&store, 1).await, [(1, 0), (2, 2)], "{backend}");
    }
}

#[tokio::test]
async fn the_chat_list_gives_each_chat_its_own_members_unread_count_and_newest_message() {
    for (backend, store, _db) in stores().await {
        for chat in [
            new_chat("g", ChatKind::Group, "g", Some(3), &[3, 1, 2], 2),
            new_chat("e", ChatKind::Group, "e", Some(1), &[1, 3], 5),
        ] {
            assert!(store.create_chat(&chat, |_| Vec::new()).await.unwrap());
        }
        for id in 1..=3 {
            store
                .insert_message(&new_message(id, 2, "hi", None), &events::message_created)
                .await
                .unwrap();
        }
        let in_g = NewMessage {
            chat_id: "g",
            recipients: &[3, 1, 2],
            ..new_message(10, 3, "in g", None)
        };
        store
            .insert_message(&in_g, &events::message_created)
            .await
            .unwrap();
        // The direct chat's newest message, deleted: still its newest, no longer unread.
        store
            .change_message(CHAT, 3, Change::Delete, 30, events::message_deleted)
            .await
            .unwrap();
        let chats = store.chats_of(1).await.unwrap();
        let seen: Vec<_> = chats
            .iter()
            .map(|chat| {
                (
                    chat.id.as_str(),
                    chat.members.iter().map(|m| m.id).collect::<Vec<_>>(),
                    chat.unread,
                    chat.last_message.as_ref().map(|m| (m.id, m.deleted)),
                )
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                ("g", vec![3, 1, 2], 1, Some((10, false))),
                (CHAT, vec![1, 2], 2, Some((3, true))),
                ("e", vec![1, 3], 0, None),
            ],
            "{backend}: latest activity first"
        );
        for chat in &chats {
            assert_eq!(
                store.chat_for(&chat.id, 1).await.unwrap().as_ref(),
                Some(chat),
                "{backend}: one chat is seen as in the list"
            );
        }
    }
}

#[tokio::test]
async fn group_changes_are_recorded_in_the_history_under_the_next_numbers() {
    for (backend, store, _db) in stores().await {
        let recorded = std::sync::Mutex::new(Vec::new());
        let keep = |messages: &[Message]| {
            recorded.lock().unwrap().extend_from_slice(messages);
            Vec::new()
        };
        let chat = new_chat("g1", ChatKind::Group, "Trip", Some(1), &[1, 2], 100);
        store.create_chat(&chat, keep).await.unwrap();
        store
            .add_member("g1", 1, 3, 100, 200, |_, m| keep(m))
            .await
            .unwrap();
        store
            .rename("g1", 1, "Trip 2", 300, |_, m| keep(m))
            .await
            .unwrap();
        store
            .remove_member("g1", 1, 3, 400, |_, m| keep(m))
            .await
            .unwrap();
        store
            .remove_member("g1", 1, 1, 500, |_, m| keep(m))
            .await
            .unwrap();
        let expected = vec![
            (
                1,
                SystemChange::Created {
                    name: "Trip".into(),
                },
            ),
            (2, SystemChange::MemberAdded { user_id: 3 }),
            (
                3,
                SystemChange::Renamed {
                    name: "Trip 2".into(),
                },
            ),
            (4, SystemChange::MemberRemoved { user_id: 3 }),
            (5, SystemChange::MemberLeft { user_id: 1 }),
            (6, SystemChange::OwnerChanged { user_id: 2 }),
        ];
        let history = store.messages("g1", Page::Latest, 50).await.unwrap();
        let seen = |messages: &[Message]| -> Vec<(i64, SystemChange)> {
            messages
                .iter()
                .map(|m| {
                    assert_eq!((m.author_id, m.content.as_str()), (1, ""), "{backend}");
                    (m.seq, m.system.clone().expect("a system message"))
                })
                .collect()
        };
        assert_eq!(seen(&history), expected, "{backend}: the history");
        assert_eq!(
            seen(&recorded.lock().unwrap()),
            expected,
            "{backend}: given to the events"
        );
        let chat = store.chat_for("g1", 2).await.unwrap().unwrap();
        assert_eq!(
            (chat.last_seq, chat.unread, chat.last_message),
            (6, 0, None),
            "{backend}: a group change is neither unread nor the newest message"
        );
        let changed = store
            .change_message("g1", history[0].id, edit("x"), 600, events::message_updated)
            .await
            .unwrap();
        assert!(
            matches!(changed, Changed::Gone),
            "{backend}: a system message never changes"
        );
    }
}

fn edit(content: &str) -> Change<'_> {
    Change::Edit {
        content,
        mentions: &[],
    }
}

#[tokio::test]
async fn replies_reactions_and_mentions_are_stored_and_versioned() {
    for (backend, store, _db) in stores().await {
        let original = stored(
            store
                .insert_message(
                    &new_message(1, 1, "the original", None),
                    &events::message_created,
                )
                .await
                .unwrap(),
        );
        let answered = Preview::of(&original);
        let reply = NewMessage {
            reply_to: Some(&answered),
            mentions: &[1],
            ..new_message(2, 2, "@ann yes", None)
        };
        let reply = stored(
            store
                .insert_message(&reply, &events::message_created)
                .await
                .unwrap(),
        );
        let preview = reply.reply_to.clone().unwrap();
        assert_eq!(
            (preview.id, preview.author_id, preview.content.as_str()),
            (1, 1, "the original"),
            "{backend}"
        );
        assert_eq!(reply.mentions, vec![1], "{backend}");

        let toggle = |user_id| Change::ToggleReaction {
            user_id,
            emoji: "👍",
            at_most: 20,
        };
        let liked = changed(
            store
                .change_message(CHAT, 1, toggle(2), 20, events::message_updated)
                .await
                .unwrap(),
        );
        assert_eq!(
            liked.version, 3,
            "{backend}: a reaction takes the next number"
        );
        let liked = changed(
            store
                .change_message(CHAT, 1, toggle(1), 21, events::message_updated)
                .await
                .unwrap(),
        );
        assert_eq!(
            liked.reactions,
            vec![Reaction {
                emoji: "👍".into(),
                user_ids: vec![2, 1]
            }],
            "{backend}"
        );
        let unliked = changed(
            store
                .change_message(CHAT, 1, toggle(2), 22, events::message_updated)
                .await
                .unwrap(),
        );
        assert_eq!(
            unliked.reactions,
            vec![Reaction {
                emoji: "👍".into(),
                user_ids: vec![1]
            }],
            "{backend}"
        );
        let page = store.messages(CHAT, Page::Latest, 10).await.unwrap();
        assert_eq!(
            page[0].reactions, unliked.reactions,
            "{backend}: pages carry reactions"
        );

        changed(
            store
                .change_message(CHAT, 1, Change::Delete, 23, events::message_deleted)
                .await
                .unwrap(),
        );
        let page = store.messages(CHAT, Page::Latest, 10).await.unwrap();
        assert!(
            page[0].reactions.is_empty() && page[0].content.is_empty(),
            "{backend}: a tombstone keeps nothing"
        );
        let reply_preview = page[1].reply_to.clone().unwrap();
        assert!(
            reply_preview.deleted && reply_preview.content.is_empty(),
            "{backend}: the reply shows the deletion"
        );
        assert_eq!(
            store
                .chat_for(CHAT, 1)
                .await
                .unwrap()
                .unwrap()
                .last_message
                .unwrap()
                .id,
            2,
            "{backend}"
        );
    }
}

#[tokio::test]
async fn only_a_member_can_store_a_message_and_each_member_change_is_counted() {
    for (backend, store, _db) in stores().await {
        store
            .create_chat(
                &new_chat("g1", ChatKind::Group, "Trip", Some(1), &[1, 2], 100),
                |_| Vec::new(),
            )
            .await
            .unwrap();
        let members = store.members_of("g1").await.unwrap().unwrap();
        let ids: Vec<i64> = members.users.iter().map(|u| u.id).collect();
        assert_eq!(
            (members.kind, ids),
            (ChatKind::Group, vec![1, 2]),
            "{backend}"
        );
        let send = |id: i64, author: i64| NewMessage {
            chat_id: "g1",
            ..new_message(id, author, "hi", None)
        };
        let Inserted::Stored {
            members_version, ..
        } = store
            .insert_message(&send(1, 1), &events::message_created)
            .await
            .unwrap()
        else {
            panic!("{backend}: a member's message is stored");
        };
        assert_eq!(members_version, members.version, "{backend}");

        store
            .add_member("g1", 1, 3, 100, 200, nothing)
            .await
            .unwrap();
        store
            .add_member("g1", 1, 3, 100, 201, nothing)
            .await
            .unwrap(); // already a member: no change
        let added = store.members_of("g1").await.unwrap().unwrap();
        assert_eq!(added.version, members.version + 1, "{backend}");
        let Inserted::Stored {
            members_version, ..
        } = store
            .insert_message(&send(2, 3), &events::message_created)
            .await
            .unwrap()
        else {
            panic!("{backend}: the new member's message is stored");
        };
        assert_eq!(members_version, added.version, "{backend}");

        store
            .remove_member("g1", 3, 3, 300, |_, _| Vec::new())
            .await
            .unwrap();
        assert!(
            matches!(
                store
                    .insert_message(&send(3, 3), &events::message_created)
                    .await
                    .unwrap(),
                Inserted::NotAMember
            ),
            "{backend}: a former member's message is refused"
        );
        assert!(
            matches!(
                store
                    .insert_message(&send(4, 9), &events::message_created)
                    .await
                    .unwrap(),
                Inserted::NotAMember
            ),
            "{backend}: so is a stranger's"
        );
        assert!(
            matches!(
                store
                    .insert_message(
                        &NewMessage {
                            chat_id: "nope",
                            ..new_message(5, 1, "hi", None)
                        },
                        &events::message_created
                    )
                    .await
                    .unwrap(),
                Inserted::NotAMember
            ),
            "{backend}: and one to no chat"
        );
        // Created (1), a message (2), 3 added (3), its message (4), 3 left (5).
        assert_eq!(
            store.chat_for("g1", 1).await.unwrap().unwrap().last_seq,
            5,
            "{backend}: refused messages take no number"
        );
        assert_eq!(
            store.members_of("g1").await.unwrap().unwrap().version,
            added.version + 1,
            "{backend}"
        );
    }
}

#[tokio::test]
async fn group_members_come_and_go_and_the_last_one_out_deletes_the_chat() {
    for (backend, store, _db) in stores().await {
        assert!(
            store
                .create_chat(
                    &new_chat("g1", ChatKind::Group, "Trip", Some(1), &[1, 2], 100),
                    |_| Vec::new()
                )
                .await
                .unwrap()
        );
        assert_eq!(
            store.add_member("g1", 1, 3, 3, 200, nothing).await.unwrap(),
            AddOutcome::Added,
            "{backend}"
        );
        assert_eq!(
            store.add_member("g1", 1, 3, 3, 201, nothing).await.unwrap(),
            AddOutcome::AlreadyMember,
            "{backend}"
        );
        assert_eq!(
            store.add_member("g1", 1, 4, 3, 202, nothing).await.unwrap(),
            AddOutcome::Full,
            "{backend}"
        );
        store.rename("g1", 1, "Trip 2", 300, nothing).await.unwrap();
        store
            .insert_message(
                &NewMessage {
                    chat_id: "g1",
                    ..new_message(1, 1, "hi", None)
                },
                &events::message_created,
            )
            .await
            .unwrap();
        assert_eq!(
            store
                .remove_member("g1", 1, 1, 300, |_, _| Vec::new())
                .await
                .unwrap(),
            Left::Remains { new_owner: Some(2) },
            "{backend}: the longest-standing member inherits"
        );
        let chat = store.chat_for("g1", 3).await.unwrap().unwrap();
        assert_eq!(
            (chat.name.as_str(), chat.owner_id),
            ("Trip 2", Some(2)),
            "{backend}"
        );
        assert_eq!(
            store.chat_for("g1", 1).await.unwrap(),
            None,
            "{backend}: gone for the one who left"
        );
        assert_eq!(
            store
                .remove_member("g1", 1, 1, 300, |_, _| Vec::new())
                .await
                .unwrap(),
            Left::NotMember,
            "{backend}"
        );
        assert_eq!(
            store
                .remove_member("g1", 3, 3, 300, |_, _| Vec::new())
                .await
                .unwrap(),
            Left::Remains { new_owner: None },
            "{backend}"
        );
        assert_eq!(
            store
                .remove_member("g1", 2, 2, 300, |_, _| Vec::new())
                .await
                .unwrap(),
            Left::Deleted,
            "{backend}"
        );
        assert!(
            store
                .messages("g1", Page::Latest, 10)
                .await
                .unwrap()
                .is_empty(),
            "{backend}: its messages are gone"
        );
    }
}

/// Waits for the next event on a subscription and names its kind's chat and, for a message,
/// its id.
async fn next_event(
    subscription: &mut astral_common::bus::Subscription,
) -> astral_proto::events::Event {
    use futures::StreamExt as _;
    use prost::Message as _;
    let delivery = tokio::time::timeout(std::time::Duration::from_secs(10), subscription.next())
        .await
        .expect("an event within 10 s")
        .expect("the subscription goes on");
    astral_proto::events::Event::decode(delivery.payload).unwrap()
}

#[tokio::test]
async fn a_stored_message_is_announced_to_the_members_it_was_stored_among() {
    for MigratedDatabase {
        backend,
        pool,
        database: _database,
    } in MigratedDatabase::both(&astral_messaging::MIGRATOR).await
    {
        let bus = EventBus::local();
        let store = Store::new(pool.clone(), Outbox::start(pool, bus.clone()));
        let users: Vec<User> = (1..=3)
            .map(|id| User {
                id,
                username: format!("u{id}"),
            })
            .collect();
        store.remember_users(&users).await.unwrap();
        let chat = new_chat("g", ChatKind::Group, "G", Some(1), &[1, 2], 1);
        store.create_chat(&chat, |_| Vec::new()).await.unwrap();
        let read = store.members_of("g").await.unwrap().unwrap();
        // Cat joins after the sender read the members, before the message is stored.
        store.add_member("g", 1, 3, 100, 2, nothing).await.unwrap();
        let mut cat = bus.subscribe("user.3".into()).await.unwrap();
        let recipients: Vec<i64> = read.users.iter().map(|user| user.id).collect();
        let send = NewMessage {
            chat_id: "g",
            recipients: &recipients,
            recipients_version: read.version,
            ..new_message(1, 1, "welcome", None)
        };
        let message = stored(
            store
                .insert_message(&send, &events::message_created)
                .await
                .unwrap(),
        );
        let event = next_event(&mut cat).await;
        let Some(astral_proto::events::event::Kind::MessageCreated(created)) = event.kind else {
            panic!("{backend}: not a new message: {event:?}");
        };
        assert_eq!(
            created.message.unwrap().id,
            message.id.to_string(),
            "{backend}: the member who joined first hears of it"
        );
    }
}

/// The ids of what `user_id` finds with `q` (newest first), in `chat_id` if given.
async fn found(store: &Store, user_id: i64, q: &str, chat_id: Option<&str>) -> Vec<i64> {
    let query = Query::parse(q).unwrap();
    let search = Search {
        user_id,
        query: &query,
        chat_id,
        author_id: None,
        before: None,
        limit: 50,
    };
    let messages = store.search(&search).await.unwrap();
    messages.iter().map(|message| message.id).collect()
}

#[tokio::test]
async fn search_finds_every_word_in_any_case_the_last_as_a_prefix_newest_first() {
    for (backend, store, _db) in stores().await {
        let texts = [
            "Hello World",
            "hello there, WORLDLY one",
            "world without greeting",
            "HELLO again; the world!",
            "héllo wörld",
        ];
        // One batch (PostgreSQL's one-statement insert); the next test stores one at a time.
        let batch: Vec<NewMessage> = (1..)
            .zip(texts)
            .map(|(id, text)| new_message(id, 1, text, None))
            .collect();
        for outcome in store
            .insert_messages(&batch, &events::message_created)
            .await
        {
            stored(outcome.unwrap());
        }
        assert_eq!(
            found(&store, 2, "hello world", None).await,
            [4, 2, 1],
            "{backend}"
        );
        assert_eq!(
            found(&store, 2, "world", None).await,
            [4, 3, 2, 1],
            "{backend}"
        );
        assert_eq!(
            found(&store, 2, "wor", None).await,
            [4, 3, 2, 1],
            "{backend}"
        );
        assert_eq!(
            found(&store, 2, "wor hello", None).await,
            Vec::<i64>::new(),
            "{backend}: only the last word is a prefix"
        );
        assert_eq!(
            found(&store, 2, "WÖRLD", None).await,
            [5],
            "{backend}: accents are kept"
        );
        assert_eq!(
            found(&store, 2, "greeting WITHOUT", None).await,
            [3],
            "{backend}"
        );
        let query = Query::parse("hello").unwrap();
        let page = |before, author_id| Search {
            user_id: 1,
            query: &query,
            chat_id: Some(CHAT),
            author_id,
            before,
            limit: 2,
        };
        let first = store.search(&page(None, None)).await.unwrap();
        let ids: Vec<i64> = first.iter().map(|m| m.id).collect();
        assert_eq!(ids, [4, 2], "{backend}");
        let second = store.search(&page(Some(2), None)).await.unwrap();
        let ids: Vec<i64> = second.iter().map(|m| m.id).collect();
        assert_eq!(
            ids,
            [1],
            "{backend}: the next page starts below the last id"
        );
        assert!(
            store.search(&page(None, Some(2))).await.unwrap().is_empty(),
            "{backend}: by author"
        );
        assert_eq!(
            found(&store, 3, "hello", None).await,
            Vec::<i64>::new(),
            "{backend}: not a member"
        );
    }
}

#[tokio::test]
async fn search_follows_edits_deletes_and_who_is_a_member_now() {
    for (backend, store, _db) in stores().await {
        store
            .insert_message(
                &new_message(1, 1, "the old plan", None),
                &events::message_created,
            )
            .await
            .unwrap();
        store
            .insert_message(
                &new_message(2, 2, "another plan", None),
                &events::message_created,
            )
            .await
            .unwrap();
        store
            .change_message(CHAT, 1, edit("the new idea"), 50, events::message_updated)
            .await
            .unwrap();
        assert_eq!(
            found(&store, 2, "old", None).await,
            Vec::<i64>::new(),
            "{backend}"
        );
        assert_eq!(found(&store, 2, "plan", None).await, [2], "{backend}");
        assert_eq!(found(&store, 2, "new idea", None).await, [1], "{backend}");
        store
            .change_message(CHAT, 2, Change::Delete, 60, events::message_deleted)
            .await
            .unwrap();
        assert_eq!(
            found(&store, 1, "plan", None).await,
            Vec::<i64>::new(),
            "{backend}: deleted"
        );

        store
            .create_chat(
                &new_chat("g1", ChatKind::Group, "Trip", Some(1), &[1, 2, 3], 100),
                |_| Vec::new(),
            )
            .await
            .unwrap();
        store
            .insert_message(
                &NewMessage {
                    chat_id: "g1",
                    ..new_message(3, 1, "new tickets", None)
                },
                &events::message_created,
            )
            .await
            .unwrap();
        assert_eq!(
            found(&store, 3, "new", None).await,
            [3],
            "{backend}: only the group"
        );
        assert_eq!(found(&store, 2, "new", None).await, [3, 1], "{backend}");
        assert_eq!(
            found(&store, 2, "new", Some(CHAT)).await,
            [1],
            "{backend}: in one chat"
        );
        store
            .remove_member("g1", 1, 3, 300, |_, _| Vec::new())
            .await
            .unwrap();
        assert_eq!(
            found(&store, 3, "new", None).await,
            Vec::<i64>::new(),
            "{backend}: removed"
        );
    }
}

#[tokio::test]
async fn messages_written_before_search_existed_are_indexed_at_start() {
    for MigratedDatabase {
        backend,
        pool,
        database: _db,
    } in MigratedDatabase::both(&astral_messaging::MIGRATOR).await
    {
        let store = Store::new(pool.clone(), Outbox::start(pool.clone(), EventBus::local()));
        store.prepare_search().await.unwrap();
        store
            .remember_users(&[
                User {
                    id: 1,
                    username: "ann".into(),
                },
                User {
                    id: 2,
                    username: "ben".into(),
                },
            ])
            .await
            .unwrap();
        store
            .create_chat(
                &new_chat(CHAT, ChatKind::Direct, "", None, &[1, 2], 1),
                |_| Vec::new(),
            )
            .await
            .unwrap();
        for id in 1..=3 {
            store
                .insert_message(
                    &new_message(id, 1, "from before", None),
                    &events::message_created,
                )
                .await
                .unwrap();
        }
        // As a database migrated from before search: words not cut yet.
        sqlx::query("UPDATE messages SET search_words = NULL")
            .execute(&pool)
            .await
            .unwrap();
        assert_eq!(
            found(&store, 2, "before", None).await,
            Vec::<i64>::new(),
            "{backend}"
        );
        store.prepare_search().await.unwrap();
        assert_eq!(
            found(&store, 2, "before", None).await,
            [3, 2, 1],
            "{backend}"
        );
    }
}

/// Replicas of the service start at once on one database: each makes the search index if it
/// is missing, and none fails because another is making it. (PostgreSQL only: a SQLite file
/// belongs to the one all-in-one process.)
#[tokio::test]
async fn replicas_preparing_search_at_once_all_succeed() {
    for MigratedDatabase {
        backend,
        pool,
        database,
    } in MigratedDatabase::both(&astral_messaging::MIGRATOR).await
    {
        if backend == "sqlite" {
            continue;
        }
        let mut replicas = Vec::new();
        for _ in 0..4 {
            let pool = astral_common::db::connect(&database.url).await.unwrap();
            let store = Store::new(pool.clone(), Outbox::start(pool, EventBus::local()));
            replicas.push(tokio::spawn(async move { store.prepare_search().await }));
        }
        for replica in replicas {
            replica
                .await
                .unwrap()
                .unwrap_or_else(|error| panic!("{backend}: {error:#}"));
        }
        drop(pool);
    }
}
