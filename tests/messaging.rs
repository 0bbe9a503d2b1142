//! Chats and messages (issue 5) through the public API in both run modes, with their events
//! on live WebSockets; and many senders on two messaging replicas on PostgreSQL.

#![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap does

mod support;

use astral_common::guard::{Role, for_user};
use support::{assert_error, id};

use astral_proto::messaging::messaging_service_client::MessagingServiceClient;
use astral_proto::messaging::{ListMessagesRequest, SendMessageRequest};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::system::Distributed;
use support::{System, User};

in_both_modes!(
    group_chats_are_created_renamed_joined_left_and_deleted,
    messages_are_edited_deleted_replied_to_and_reacted_to_live,
    history_pages_at_the_edges,
    chats_are_ordered_by_activity_with_unread_counts_and_read_markers,
    typing_reaches_subscribers_at_most_every_three_seconds,
    a_non_member_gets_404_for_everything_about_a_chat,
    a_change_whose_event_never_came_is_fetched_before_the_next,
);

fn user_ids(chat: &Value) -> Vec<String> {
    chat["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn group_chats_are_created_renamed_joined_left_and_deleted(system: &System) {
    let mut alice = User::register(&system.base, "alice").await;
    let mut bob = User::register(&system.base, "bob").await;
    let mut carol = User::register(&system.base, "carol").await;
    let mut dave = User::register(&system.base, "dave").await;
    let stranger = User::register(&system.base, "stranger").await;
    for friend in [&bob, &carol, &dave] {
        alice.befriend(friend).await;
    }
    for user in [&mut alice, &mut bob, &mut carol, &mut dave] {
        user.connect().await;
    }
    // Only friends, and a name that is not blank.
    let (status, body) = alice.try_create_group("Trip", &[&bob, &stranger]).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = alice.try_create_group("  ", &[&bob]).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);

    let group = alice.create_group("Trip", &[&bob, &carol]).await;
    let group_id = id(&group);
    assert!(!group_id.contains('_'));
    assert_eq!(
        (
            group["kind"].as_str(),
            group["name"].as_str(),
            group["owner_id"].as_str()
        ),
        (Some("group"), Some("Trip"), Some(alice.id.as_str()))
    );
    assert_eq!(
        user_ids(&group),
        vec![alice.id.clone(), bob.id.clone(), carol.id.clone()]
    );
    let owner = alice.id.clone();
    for user in [&mut alice, &mut bob, &mut carol] {
        assert_eq!(
            user.expect_event("chat.created").await["id"],
            group_id.as_str()
        );
        let created = user.expect_group_change("created").await;
        assert_eq!(
            (created["seq"].as_i64(), created["author_id"].as_str()),
            (Some(1), Some(owner.as_str())),
            "the first entry of the group's history"
        );
    }

    // Only the owner renames and adds; the others hear of it.
    let path = format!("/api/chats/{group_id}");
    let (status, body) = bob.patch(&path, json!({ "name": "Mine now" })).await;
    assert_error(status, &body, StatusCode::FORBIDDEN);
    let (status, renamed) = alice.patch(&path, json!({ "name": "Trip 2026" })).await;
    assert_eq!(
        (status, renamed["name"].as_str()),
        (StatusCode::OK, Some("Trip 2026"))
    );
    for user in [&mut alice, &mut bob, &mut carol] {
        assert_eq!(user.expect_event("chat.updated").await["name"], "Trip 2026");
        let renamed = user.expect_group_change("renamed").await;
        assert_eq!(renamed["system"]["name"], "Trip 2026");
    }
    let (status, body) = bob.add_member(&group_id, &dave).await;
    assert_error(status, &body, StatusCode::FORBIDDEN);
    let (status, body) = alice.add_member(&group_id, &stranger).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    let (status, added) = alice.add_member(&group_id, &dave).await;
    assert_eq!(status, StatusCode::OK, "{added}");
    assert_eq!(user_ids(&added).len(), 4);
    assert_eq!(
        dave.expect_event("chat.created").await["id"],
        group_id.as_str()
    );
    let added = dave.expect_group_change("member_added").await;
    assert_eq!(added["system"]["user_id"], dave.id.as_str());
    for user in [&mut alice, &mut bob, &mut carol] {
        assert_eq!(user_ids(&user.expect_event("chat.updated").await).len(), 4);
        user.expect_group_change("member_added").await;
    }
    let (status, body) = alice.add_member(&group_id, &dave).await;
    assert_error(status, &body, StatusCode::CONFLICT);

    // Removing: only the owner removes others; the removed one loses the chat and its events.
    carol.subscribe(&group_id).await;
    let (status, body) = bob.remove_member(&group_id, &carol).await;
    assert_error(status, &body, StatusCode::FORBIDDEN);
    let (status, _) = alice.remove_member(&group_id, &carol).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        carol.expect_event("chat.deleted").await["chat_id"],
        group_id.as_str()
    );
    for user in [&mut alice, &mut bob, &mut dave] {
        assert_eq!(user_ids(&user.expect_event("chat.updated").await).len(), 3);
        let removed = user.expect_group_change("member_removed").await;
        assert_eq!(removed["system"]["user_id"], carol.id.as_str());
    }
    let messages = format!("/api/chats/{group_id}/messages");
    assert_eq!(carol.get(&messages).await.0, StatusCode::NOT_FOUND);
    bob.send_message(&group_id, "carol is gone").await;
    // Carol's next event is this friend request, not bob's message in the group.
    alice.unfriend(&carol).await;
    carol.expect_event("friend.removed").await;
    let (_, sentinel) = dave
        .post("/api/friends/requests", json!({ "username": carol.name }))
        .await;
    assert_eq!(
        carol.expect_event("friend_request.created").await["id"],
        sentinel["id"]
    );

    // The owner leaves: the longest-standing member (bob) owns it; the last one out deletes it.
    let (status, _) = alice.remove_member(&group_id, &alice).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, chat) = bob.get(&path).await;
    assert_eq!(chat["owner_id"], bob.id.as_str());
    // The history tells it all, in order, beside the one message.
    let (_, history) = bob.get(&messages).await;
    let told: Vec<(&str, &str)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let said = m["system"]["type"].as_str();
            (
                m["kind"].as_str().unwrap(),
                said.or(m["content"].as_str()).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        told,
        [
            ("system", "created"),
            ("system", "renamed"),
            ("system", "member_added"),
            ("system", "member_removed"),
            ("user", "carol is gone"),
            ("system", "member_left"),
            ("system", "owner_changed"),
        ]
    );
    assert_eq!(
        bob.remove_member(&group_id, &bob).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(dave.get(&path).await.1["owner_id"], dave.id.as_str());
    assert_eq!(
        dave.remove_member(&group_id, &dave).await.0,
        StatusCode::NO_CONTENT
    );
    for user in [&alice, &bob, &dave] {
        assert_eq!(user.get(&path).await.0, StatusCode::NOT_FOUND);
        let (_, chats) = user.get("/api/chats").await;
        assert!(
            chats
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["id"] != group_id.as_str())
        );
    }
}

async fn messages_are_edited_deleted_replied_to_and_reacted_to_live(system: &System) {
    let (mut alice, mut bob, chat_id) =
        support::user::friends_with_a_chat(&system.base, &system.base).await;
    bob.connect().await;
    bob.subscribe(&chat_id).await;
    let first = alice
        .send_message(&chat_id, &format!("hello @{} and @nobody", bob.name))
        .await;
    assert_eq!(
        first["mentions"],
        json!([bob.id]),
        "a member named with @ is flagged"
    );
    assert_eq!(bob.expect_event("message.created").await["id"], first["id"]);
    let first_id = id(&first);
    let one = format!("/api/chats/{chat_id}/messages/{first_id}");

    // Edit: the author only.
    let (status, body) = bob.patch(&one, json!({ "content": "hijacked" })).await;
    assert_error(status, &body, StatusCode::FORBIDDEN);
    let (status, edited) = alice
        .patch(&one, json!({ "content": "hello, edited" }))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(edited["edited_at"].is_string());
    assert_eq!(
        (edited["seq"].as_i64(), edited["version"].as_i64()),
        (Some(1), Some(2))
    );
    let live = bob.expect_event("message.updated").await;
    assert_eq!(
        (live["content"].as_str(), live["version"].as_i64()),
        (Some("hello, edited"), Some(2))
    );
    let (status, body) = alice
        .patch(&one, json!({ "content": "x".repeat(4001) }))
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);

    // Reply, with a preview of the original; only to a message of the same chat.
    let (status, reply) = bob
        .try_send_message(
            &chat_id,
            json!({ "content": "hi back", "reply_to": first_id }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    assert_eq!(
        (
            reply["reply_to"]["id"].clone(),
            reply["reply_to"]["content"].as_str()
        ),
        (first["id"].clone(), Some("hello, edited"))
    );
    bob.expect_event("message.created").await;
    let (status, body) = bob
        .try_send_message(
            &chat_id,
            json!({ "content": "?", "reply_to": "1234567890123456789" }),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);

    // Reactions: toggled, counted.
    let (status, reacted) = bob.react(&chat_id, &first_id, "👍").await;
    assert_eq!(status, StatusCode::OK, "{reacted}");
    assert_eq!(
        reacted["reactions"],
        json!([{ "emoji": "👍", "count": 1, "user_ids": [bob.id] }])
    );
    assert_eq!(
        bob.expect_event("message.updated").await["reactions"][0]["count"],
        1
    );
    alice.react(&chat_id, &first_id, "👍").await;
    assert_eq!(
        bob.expect_event("message.updated").await["reactions"][0]["count"],
        2
    );
    let (_, toggled) = bob.react(&chat_id, &first_id, "👍").await;
    assert_eq!(
        toggled["reactions"],
        json!([{ "emoji": "👍", "count": 1, "user_ids": [alice.id] }])
    );
    bob.expect_event("message.updated").await;
    let (status, body) = bob.react(&chat_id, &first_id, "not an emoji").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);

    // Delete: the author only; a tombstone, content erased; gone for edits.
    let (status, body) = bob.delete(&one).await;
    assert_error(status, &body, StatusCode::FORBIDDEN);
    let (status, _) = alice.delete(&one).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let tombstone = bob.expect_event("message.deleted").await;
    assert_eq!(
        (
            tombstone["deleted"].as_bool(),
            tombstone["content"].as_str()
        ),
        (Some(true), Some(""))
    );
    assert_eq!(
        alice.patch(&one, json!({ "content": "back" })).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(alice.delete(&one).await.0, StatusCode::NOT_FOUND);

    // Every change since version 1, in version order, tombstone included.
    let (_, changes) = alice
        .get(&format!("/api/chats/{chat_id}/messages?after=1"))
        .await;
    let versions: Vec<i64> = changes
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["version"].as_i64().unwrap())
        .collect();
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
    assert_eq!(
        changes.as_array().unwrap().len(),
        2,
        "the first message (now deleted) and the reply"
    );
    assert_eq!(changes[1]["deleted"], true);
    alice.connect().await;
}

async fn history_pages_at_the_edges(system: &System) {
    let (alice, _bob, chat_id) =
        support::user::friends_with_a_chat(&system.base, &system.base).await;
    let messages = format!("/api/chats/{chat_id}/messages");
    assert_eq!(alice.get(&messages).await.1, json!([]), "an empty chat");
    for n in 1..=5 {
        alice.send_message(&chat_id, &format!("message {n}")).await;
    }
    let seqs = |page: &Value| -> Vec<i64> {
        page.as_array()
            .unwrap()
            .iter()
            .map(|m| m["seq"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(
        seqs(&alice.get(&format!("{messages}?limit=2")).await.1),
        vec![4, 5],
        "the latest page"
    );
    assert_eq!(
        seqs(&alice.get(&format!("{messages}?before=4&limit=2")).await.1),
        vec![2, 3]
    );
    assert_eq!(
        seqs(&alice.get(&format!("{messages}?before=2&limit=2")).await.1),
        vec![1],
        "the first page"
    );
    assert_eq!(
        seqs(&alice.get(&format!("{messages}?before=1")).await.1),
        Vec::<i64>::new(),
        "before the first"
    );
    assert_eq!(
        seqs(&alice.get(&format!("{messages}?after=0")).await.1),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(
        seqs(&alice.get(&format!("{messages}?after=5")).await.1),
        Vec::<i64>::new(),
        "nothing new"
    );
    assert_eq!(
        seqs(&alice.get(&format!("{messages}?limit=100")).await.1).len(),
        5
    );
    for bad in [
        "limit=0",
        "limit=101",
        "limit=-1",
        "before=x",
        "after=1.5",
        "before=3&after=1",
    ] {
        let (status, body) = alice.get(&format!("{messages}?{bad}")).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST);
    }
}

async fn chats_are_ordered_by_activity_with_unread_counts_and_read_markers(system: &System) {
    let (alice, mut bob, direct_id) =
        support::user::friends_with_a_chat(&system.base, &system.base).await;
    let carol = User::register(&system.base, "carol").await;
    alice.befriend(&carol).await;
    bob.befriend(&carol).await;
    let group_id = id(&alice.create_group("Three", &[&bob, &carol]).await);
    alice.send_message(&direct_id, "direct one").await;
    alice.send_message(&direct_id, "direct two").await;
    carol.send_message(&group_id, "group, latest").await;

    let (_, chats) = bob.get("/api/chats").await;
    let order: Vec<&str> = chats
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        vec![group_id.as_str(), direct_id.as_str()],
        "latest activity first"
    );
    assert_eq!(chats[0]["last_message"]["content"], "group, latest");
    assert_eq!(
        (chats[1]["last_seq"].as_i64(), chats[1]["unread"].as_i64()),
        (Some(2), Some(2))
    );
    let ready = bob.connect().await;
    let direct = ready["chats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == direct_id.as_str())
        .unwrap();
    assert_eq!(
        (direct["last_seq"].as_i64(), direct["unread"].as_i64()),
        (Some(2), Some(2))
    );

    let (status, _) = bob
        .post(&format!("/api/chats/{direct_id}/read"), json!({ "seq": 1 }))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        bob.get(&format!("/api/chats/{direct_id}")).await.1["unread"],
        1
    );
    bob.post(&format!("/api/chats/{direct_id}/read"), json!({ "seq": 2 }))
        .await;
    assert_eq!(
        bob.get(&format!("/api/chats/{direct_id}")).await.1["unread"],
        0
    );
    let (status, body) = bob
        .post(
            &format!("/api/chats/{direct_id}/read"),
            json!({ "seq": "two" }),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    // Bob's own message does not count as unread; a new one from alice does, and moves the chat up.
    bob.send_message(&direct_id, "mine").await;
    alice.send_message(&direct_id, "new").await;
    let (_, chats) = bob.get("/api/chats").await;
    assert_eq!(
        (chats[0]["id"].as_str(), chats[0]["unread"].as_i64()),
        (Some(direct_id.as_str()), Some(1))
    );
}

async fn typing_reaches_subscribers_at_most_every_three_seconds(system: &System) {
    let (mut alice, mut bob, chat_id) =
        support::user::friends_with_a_chat(&system.base, &system.base).await;
    alice.connect().await;
    bob.connect().await;
    bob.subscribe(&chat_id).await;
    alice.start_typing(&chat_id).await;
    let typing = bob.expect_event("typing.started").await;
    assert_eq!(
        (typing["chat_id"].as_str(), typing["user"]["id"].as_str()),
        (Some(chat_id.as_str()), Some(alice.id.as_str()))
    );
    alice.start_typing(&chat_id).await;
    let sent = alice.send_message(&chat_id, "done typing").await;
    assert_eq!(
        bob.expect_event("message.created").await["id"],
        sent["id"],
        "the second typing signal was dropped"
    );
    let mut carol = User::register(&system.base, "carol").await;
    carol.connect().await;
    carol.start_typing(&chat_id).await;
    assert_eq!(carol.next_frame().await["d"]["code"], "not_found");
}

async fn a_non_member_gets_404_for_everything_about_a_chat(system: &System) {
    let (alice, _bob, chat_id) =
        support::user::friends_with_a_chat(&system.base, &system.base).await;
    let message = alice.send_message(&chat_id, "private").await;
    let mut carol = User::register(&system.base, "carol").await;
    let chat = format!("/api/chats/{chat_id}");
    let one = format!("{chat}/messages/{}", id(&message));
    for (method, path, body) in [
        (Method::GET, chat.clone(), None),
        (Method::PATCH, chat.clone(), Some(json!({ "name": "x" }))),
        (Method::GET, format!("{chat}/messages"), None),
        (Method::GET, format!("{chat}/messages?after=0"), None),
        (
            Method::POST,
            format!("{chat}/messages"),
            Some(json!({ "content": "let me in" })),
        ),
        (Method::PATCH, one.clone(), Some(json!({ "content": "x" }))),
        (Method::DELETE, one.clone(), None),
        (
            Method::POST,
            format!("{one}/reactions"),
            Some(json!({ "emoji": "👍" })),
        ),
        (
            Method::POST,
            format!("{chat}/read"),
            Some(json!({ "seq": 1 })),
        ),
        (
            Method::POST,
            format!("{chat}/members"),
            Some(json!({ "user_id": carol.id })),
        ),
        (Method::DELETE, format!("{chat}/members/{}", carol.id), None),
        (
            Method::GET,
            "/api/chats/no_such_chat/messages".to_owned(),
            None,
        ),
    ] {
        let (status, body) = carol.call(method.clone(), &path, body).await;
        assert_error(status, &body, StatusCode::NOT_FOUND);
        assert_eq!(body["error"]["code"], "not_found", "{method} {path}");
    }
    carol.connect().await;
    carol
        .send(json!({ "op": "subscribe", "d": { "chat_id": chat_id } }))
        .await;
    assert_eq!(carol.next_frame().await["d"]["code"], "not_found");
    // And over gRPC, as any internal tool would ask.
    let mut grpc = MessagingServiceClient::new(system.channel(Role::Gateway, "messaging"));
    let request = ListMessagesRequest {
        chat_id: chat_id.clone(),
        ..Default::default()
    };
    assert_eq!(
        grpc.list_messages(for_user(request, &carol.token))
            .await
            .unwrap_err()
            .code(),
        tonic::Code::NotFound
    );
}

/// Many senders on two messaging replicas: every chat's numbers stay unique and gapless, and
/// concurrent retries of one nonce store one message.
#[tokio::test]
async fn concurrent_senders_on_two_replicas_keep_every_chat_gapless() {
    let options = Distributed {
        messaging_replicas: 2,
        ..Distributed::default()
    };
    let Some(system) = System::distributed_with(options).await else {
        return;
    };
    let replicas = ["messaging", "messaging-2"]
        .map(|name| MessagingServiceClient::new(system.channel(Role::Gateway, name)));
    const CHATS: usize = 4;
    const SENDS: usize = 40;
    let mut chats = Vec::new();
    for _ in 0..CHATS {
        chats.push(support::user::friends_with_a_chat(&system.base, &system.base).await);
    }
    let replicas = &replicas;
    let sends = chats.iter().flat_map(|(alice, bob, chat_id)| {
        (0..SENDS).map(move |n| {
            let (author, mut client) = if n % 2 == 0 {
                (alice, replicas[0].clone())
            } else {
                (bob, replicas[1].clone())
            };
            let request = SendMessageRequest {
                chat_id: chat_id.clone(),
                content: format!("message {n}"),
                nonce: if n % 10 == 0 {
                    "same-nonce".to_owned()
                } else {
                    format!("n-{n}")
                },
                reply_to_id: String::new(),
                attachment_ids: Vec::new(),
            };
            let retry = for_user(request.clone(), &author.token);
            let request = for_user(request, &author.token);
            let mut other = replicas[(n + 1) % 2].clone();
            async move {
                let (first, again) =
                    tokio::join!(client.send_message(request), other.send_message(retry));
                let (first, again) = (first.unwrap().into_inner(), again.unwrap().into_inner());
                assert_eq!(
                    first.id, again.id,
                    "a retry with the same nonce is the same message"
                );
            }
        })
    });
    futures::future::join_all(sends).await;
    for (alice, _, chat_id) in &chats {
        let mut seqs = Vec::new();
        let mut after = 0;
        loop {
            let (_, page) = alice
                .get(&format!(
                    "/api/chats/{chat_id}/messages?after={after}&limit=100"
                ))
                .await;
            let page = page.as_array().unwrap().clone();
            let Some(last) = page.last() else { break };
            after = last["version"].as_i64().unwrap();
            seqs.extend(page.iter().map(|m| m["seq"].as_i64().unwrap()));
        }
        // Alice's four "same-nonce" sends (every tenth) are one message.
        let distinct = SENDS - SENDS / 10 + 1;
        assert_eq!(
            seqs,
            (1..=i64::try_from(distinct).unwrap()).collect::<Vec<_>>(),
            "gapless, unique, in order"
        );
    }
    system.stop().await;
}

/// Each messaging replica keeps the member lists of the chats it sends to: a member added or
/// removed through one replica must count at once on the other (the gateway spreads calls
/// over both), for who may send and for who is told of a message.
#[tokio::test]
async fn member_changes_count_at_once_on_every_replica() {
    let options = Distributed {
        messaging_replicas: 2,
        ..Distributed::default()
    };
    let Some(system) = System::distributed_with(options).await else {
        return;
    };
    let alice = User::register(&system.base, "alice").await;
    let bob = User::register(&system.base, "bob").await;
    let mut carol = User::register(&system.base, "carol").await;
    alice.befriend(&bob).await;
    alice.befriend(&carol).await;
    carol.connect().await;
    let group_id = id(&alice.create_group("Rounds", &[&bob]).await);
    let messages = format!("/api/chats/{group_id}/messages");
    for round in 0..6 {
        // Warm both replicas' lists without carol.
        for n in 0..4 {
            let body = json!({ "content": format!("warm {round}.{n}") });
            assert_eq!(alice.post(&messages, body).await.0, StatusCode::CREATED);
        }
        let (status, body) = alice.add_member(&group_id, &carol).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            carol.expect_event("chat.created").await["id"],
            group_id.as_str()
        );
        carol.expect_group_change("member_added").await;
        for n in 0..3 {
            let (status, body) = carol
                .post(
                    &messages,
                    json!({ "content": format!("hello {round}.{n}") }),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "a new member sends: {body}");
            assert_eq!(
                carol.expect_event("message.created").await["content"],
                format!("hello {round}.{n}")
            );
            let content = format!("to all {round}.{n}");
            let (status, _) = alice.post(&messages, json!({ "content": content })).await;
            assert_eq!(status, StatusCode::CREATED);
            assert_eq!(
                carol.expect_event("message.created").await["content"],
                content.as_str(),
                "the new member is told"
            );
        }
        let (status, body) = alice.remove_member(&group_id, &carol).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        assert_eq!(
            carol.expect_event("chat.deleted").await["chat_id"],
            group_id.as_str()
        );
        for n in 0..3 {
            let (status, body) = carol
                .post(
                    &messages,
                    json!({ "content": format!("after {round}.{n}") }),
                )
                .await;
            assert_error(status, &body, StatusCode::NOT_FOUND);
            // Not told: her next event must be the next round's `chat.created` (after the
            // last round, bob's friend request).
            let body = json!({ "content": format!("secret {round}.{n}") });
            assert_eq!(alice.post(&messages, body).await.0, StatusCode::CREATED);
        }
    }
    let (status, sentinel) = bob
        .post("/api/friends/requests", json!({ "username": carol.name }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sentinel}");
    assert_eq!(
        carol.expect_event("friend_request.created").await["id"],
        sentinel["id"],
        "no message of the last round reached carol"
    );
    let (status, page) = alice.get(&format!("{messages}?limit=100")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.as_array()
            .unwrap()
            .iter()
            .all(|m| !m["content"].as_str().unwrap().starts_with("after")),
        "no message of a former member was stored"
    );
    system.stop().await;
}

/// A change whose event never came — written straight to the database, as if its publisher
/// had died and its outbox row were lost — is fetched by the gateway as soon as a later change
/// shows the gap: a subscribed connection still sees every version, in order.
async fn a_change_whose_event_never_came_is_fetched_before_the_next(system: &System) {
    let (alice, mut bob, chat_id) =
        support::user::friends_with_a_chat(&system.base, &system.base).await;
    bob.connect().await;
    bob.send(json!({ "op": "subscribe", "d": { "chat_id": chat_id } }))
        .await;
    let subscribed = bob.expect_op("subscribed").await;
    let version = subscribed["d"]["version"].as_i64().unwrap();
    let pool = astral_common::db::connect(&system.messaging_database_url)
        .await
        .unwrap();
    let (ghost_version,): (i64,) =
        sqlx::query_as("UPDATE chats SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq")
            .bind(&chat_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(ghost_version, version + 1);
    sqlx::query(
        "INSERT INTO messages (id, chat_id, seq, version, author_id, content, created_at_ms, mentions) \
         VALUES ($1, $2, $3, $3, $4, 'the lost one', $5, '')",
    )
    .bind(astral_common::ids::new_id())
    .bind(&chat_id)
    .bind(ghost_version)
    .bind(alice.id.parse::<i64>().unwrap())
    .bind(astral_common::time::now_ms())
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    alice.send_message(&chat_id, "the next one").await;
    let mut frames = Vec::new();
    while frames
        .iter()
        .filter(|frame: &&Value| frame["op"] == "event")
        .count()
        < 2
    {
        frames.push(bob.next_frame().await);
    }
    let delivered: Vec<(&str, &str, i64)> = frames
        .iter()
        .filter(|frame| frame["op"] == "event")
        .map(|frame| {
            let d = &frame["d"];
            let t = frame["t"].as_str().unwrap();
            (
                t,
                d["content"].as_str().unwrap(),
                d["version"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        delivered,
        [
            ("message.created", "the lost one", ghost_version),
            ("message.created", "the next one", ghost_version + 1)
        ],
        "{frames:?}"
    );
}

/// The friendship events messaging has counted (`astral_friendship_events_total`).
async fn friendship_events_seen(system: &System) -> f64 {
    let page = system.metrics_of("astral-messaging").await;
    page.lines()
        .filter(|line| line.starts_with("astral_friendship_events_total"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The rule of docs/architecture.md ("Degrading, not failing"): with social down, a direct
/// chat takes messages while messaging's newest word on its pair — social's last answer or
/// the latest friendship event — is "friends"; an unfriend it has seen refuses.
#[tokio::test]
async fn with_social_down_friends_keep_writing_and_a_seen_unfriend_still_refuses() {
    let Some(mut system) = System::distributed().await else {
        return;
    };
    let (alice, bob, ab) = support::user::friends_with_a_chat(&system.base, &system.base).await;
    let (carol, dave, cd) = support::user::friends_with_a_chat(&system.base, &system.base).await;
    let send = async |user: &User, chat_id: &str, content: &str| {
        user.try_send_message(chat_id, json!({ "content": content }))
            .await
    };
    alice.send_message(&ab, "before").await;
    carol.send_message(&cd, "before").await;
    // Dave ends the friendship; messaging hears of it on `friendships` (two friendships
    // made, one ended: three events).
    dave.unfriend(&carol).await;
    let deadline = tokio::time::Instant::now() + support::WAIT;
    while friendship_events_seen(&system).await < 3.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the unfriend never reached messaging"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        system
            .signal("astral-social", "KILL", std::time::Duration::from_secs(5))
            .await
            .is_some()
    );
    for (user, content) in [(&alice, "social is down"), (&bob, "and still we write")] {
        let (status, body) = send(user, &ab, content).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = send(&carol, &cd, "are we still friends?").await;
    assert_error(status, &body, StatusCode::FORBIDDEN);
    system.stop().await;
}
