//! Friends (issue 4): requests, friendships and blocking through the public API in both run
//! modes, with their events on live WebSockets; and the races, many at once, against two
//! social-service replicas on PostgreSQL.

#![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap does

mod support;

use astral_common::guard::{Role, for_user};
use support::{assert_error, id};

use astral_proto::social::social_service_client::SocialServiceClient;
use astral_proto::social::{FriendRequestAction, RemoveFriendRequest, SendFriendRequestRequest};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::system::Distributed;
use support::{System, User};

in_both_modes!(
    requests_are_sent_declined_cancelled_and_accepted_live,
    request_errors_explain_without_revealing_what_is_not_yours,
    unfriending_makes_the_direct_chat_read_only_and_refriending_reopens_it,
    blocking_cuts_every_tie_without_revealing_itself,
    the_friends_list_comes_in_pages,
);

async fn request(from: &User, to: &User) -> (StatusCode, Value) {
    from.post("/api/friends/requests", json!({ "username": to.name }))
        .await
}

async fn requests_are_sent_declined_cancelled_and_accepted_live(system: &System) {
    let mut alice = User::register(&system.base, "alice").await;
    let mut bob = User::register(&system.base, "bob").await;
    alice.connect().await;
    bob.connect().await;

    // Declined by the recipient.
    let (status, first) = request(&alice, &bob).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(
        bob.expect_event("friend_request.created").await["from"]["username"],
        alice.name.as_str()
    );
    alice.expect_event("friend_request.created").await;
    let (_, bobs) = bob.get("/api/friends").await;
    assert_eq!(bobs["incoming"][0]["id"], first["id"]);
    let (_, alices) = alice.get("/api/friends").await;
    assert_eq!(alices["outgoing"][0]["id"], first["id"]);
    let (status, _) = bob
        .post(
            &format!("/api/friends/requests/{}/decline", id(&first)),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        alice.expect_event("friend_request.declined").await["id"],
        first["id"]
    );
    assert_eq!(
        bob.expect_event("friend_request.declined").await["id"],
        first["id"]
    );
    let (_, alices) = alice.get("/api/friends").await;
    assert_eq!(alices["outgoing"], json!([]));

    // Cancelled by the sender.
    let (_, second) = request(&alice, &bob).await;
    bob.expect_event("friend_request.created").await;
    alice.expect_event("friend_request.created").await;
    let (status, _) = alice
        .delete(&format!("/api/friends/requests/{}", id(&second)))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        bob.expect_event("friend_request.cancelled").await["id"],
        second["id"]
    );
    alice.expect_event("friend_request.cancelled").await;
    let (_, bobs) = bob.get("/api/friends").await;
    assert_eq!(bobs["incoming"], json!([]));

    // Accepted.
    let (_, third) = request(&alice, &bob).await;
    bob.expect_event("friend_request.created").await;
    alice.expect_event("friend_request.created").await;
    let (status, accepted) = bob
        .post(
            &format!("/api/friends/requests/{}/accept", id(&third)),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        accepted["friend"],
        json!({ "id": alice.id, "username": alice.name })
    );
    let seen = alice.expect_event("friend_request.accepted").await;
    assert_eq!(
        (seen["id"].as_str(), seen["to"]["id"].as_str()),
        (third["id"].as_str(), Some(bob.id.as_str()))
    );
    bob.expect_event("friend_request.accepted").await;
    let (_, alices) = alice.get("/api/friends").await;
    assert_eq!(
        support::named(&alices["friends"]),
        json!([{ "id": bob.id, "username": bob.name }])
    );
    let (_, bobs) = bob.get("/api/friends").await;
    assert_eq!(
        (bobs["friends"][0]["id"].as_str(), bobs["incoming"].clone()),
        (Some(alice.id.as_str()), json!([]))
    );
}

async fn request_errors_explain_without_revealing_what_is_not_yours(system: &System) {
    let mut alice = User::register(&system.base, "alice").await;
    let bob = User::register(&system.base, "bob").await;
    let carol = User::register(&system.base, "carol").await;
    let (status, body) = request(&alice, &alice).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = alice
        .post(
            "/api/friends/requests",
            json!({ "username": "no_such_person" }),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = alice
        .post("/api/friends/requests", json!({ "username": 42 }))
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);

    let (_, pending) = request(&alice, &bob).await;
    let (status, body) = request(&alice, &bob).await;
    assert_error(status, &body, StatusCode::CONFLICT);
    // Not yours to act on: 404, as for a request that does not exist.
    let accept = format!("/api/friends/requests/{}/accept", id(&pending));
    let decline = format!("/api/friends/requests/{}/decline", id(&pending));
    let cancel = format!("/api/friends/requests/{}", id(&pending));
    for (who, method, path) in [
        (&alice, Method::POST, &accept),
        (&alice, Method::POST, &decline),
        (&bob, Method::DELETE, &cancel),
        (&carol, Method::POST, &accept),
        (&carol, Method::POST, &decline),
        (&carol, Method::DELETE, &cancel),
    ] {
        let (status, body) = who.call(method, path, Some(json!({}))).await;
        assert_error(status, &body, StatusCode::NOT_FOUND);
    }
    for unknown in ["1234567890123456789", "abc"] {
        let (status, body) = bob
            .post(
                &format!("/api/friends/requests/{unknown}/accept"),
                json!({}),
            )
            .await;
        assert_error(status, &body, StatusCode::NOT_FOUND);
    }

    // Asking someone who already asked you accepts their request (no second one).
    alice.connect().await;
    let (status, answer) = request(&bob, &alice).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        (answer["accepted"].as_bool(), answer["id"].as_str()),
        (Some(true), pending["id"].as_str())
    );
    assert_eq!(
        alice.expect_event("friend_request.accepted").await["id"],
        pending["id"]
    );
    let (_, friends) = alice.get("/api/friends").await;
    assert_eq!(friends["friends"][0]["id"], bob.id.as_str());
    assert_eq!(
        (friends["incoming"].clone(), friends["outgoing"].clone()),
        (json!([]), json!([]))
    );
    let (status, body) = request(&alice, &bob).await;
    assert_error(status, &body, StatusCode::CONFLICT);
    let (status, body) = carol.delete(&format!("/api/friends/{}", alice.id)).await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
}

async fn unfriending_makes_the_direct_chat_read_only_and_refriending_reopens_it(system: &System) {
    let mut alice = User::register(&system.base, "alice").await;
    let mut bob = User::register(&system.base, "bob").await;
    alice.befriend(&bob).await;
    let chat = alice.open_direct_chat(&bob).await;
    let chat_id = id(&chat);
    alice.send_message(&chat_id, "before").await;
    alice.connect().await;
    bob.connect().await;

    bob.unfriend(&alice).await;
    assert_eq!(
        alice.expect_event("friend.removed").await["friend_id"],
        bob.id.as_str()
    );
    assert_eq!(
        bob.expect_event("friend.removed").await["friend_id"],
        alice.id.as_str()
    );
    let (status, body) = alice
        .try_send_message(&chat_id, json!({ "content": "after" }))
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN);
    let (_, chats) = alice.get("/api/chats").await;
    assert_eq!(
        (chats[0]["id"].clone(), chats[0]["read_only"].as_bool()),
        (chat["id"].clone(), Some(true))
    );
    assert_eq!(
        bob.history(&chat_id).await[0]["content"],
        "before",
        "history is kept"
    );
    let (status, body) = bob.delete(&format!("/api/friends/{}", alice.id)).await;
    assert_error(status, &body, StatusCode::NOT_FOUND);

    alice.befriend(&bob).await;
    let again = bob.open_direct_chat(&alice).await;
    assert_eq!(
        (again["id"].clone(), again["read_only"].as_bool()),
        (chat["id"].clone(), Some(false))
    );
    alice.send_message(&chat_id, "friends again").await;
}

async fn blocking_cuts_every_tie_without_revealing_itself(system: &System) {
    let alice = User::register(&system.base, "alice").await;
    let mut bob = User::register(&system.base, "bob").await;
    let carol = User::register(&system.base, "carol").await;
    alice.befriend(&bob).await;
    let chat_id = id(&alice.open_direct_chat(&bob).await);
    let (_, from_carol) = request(&carol, &alice).await;
    bob.connect().await;

    let (status, blocked) = alice
        .post("/api/blocks", json!({ "user_id": bob.id }))
        .await;
    assert_eq!(status, StatusCode::OK, "{blocked}");
    assert_eq!(
        blocked["blocked"],
        json!([{ "id": bob.id, "username": bob.name }])
    );
    assert_eq!(
        bob.expect_event("friend.removed").await["friend_id"],
        alice.id.as_str()
    );
    let (_, friends) = alice.get("/api/friends").await;
    assert_eq!(friends["friends"], json!([]));

    // Bob cannot reach alice, and is answered as if she did not exist or he were unfriended.
    let (status, to_blocker) = request(&bob, &alice).await;
    let (_, to_nobody) = bob
        .post(
            "/api/friends/requests",
            json!({ "username": "nobody_by_that_name" }),
        )
        .await;
    // An error body, not two empty ones that would compare equal whatever was answered.
    assert_error(status, &to_blocker, StatusCode::NOT_FOUND);
    assert_eq!(
        to_blocker, to_nobody,
        "the same answer as for an unknown username"
    );
    let (status, body) = bob
        .try_send_message(&chat_id, json!({ "content": "hello?" }))
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN);
    assert_eq!(
        bob.open_direct_chat(&alice).await["read_only"].as_bool(),
        Some(true),
        "the chat stays, read-only"
    );
    // Alice is told her own block is in the way.
    let (status, body) = request(&alice, &bob).await;
    assert_error(status, &body, StatusCode::FORBIDDEN);

    // Blocking ends pending requests both ways; blocking twice is harmless.
    let (status, blocked) = alice
        .post("/api/blocks", json!({ "user_id": carol.id }))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(blocked["blocked"].as_array().unwrap().len(), 2);
    let (_, carols) = carol.get("/api/friends").await;
    assert_eq!(
        carols["outgoing"],
        json!([]),
        "carol's request {} is gone",
        from_carol["id"]
    );
    assert_eq!(
        alice
            .post("/api/blocks", json!({ "user_id": carol.id }))
            .await
            .0,
        StatusCode::OK
    );
    let (status, body) = alice
        .post("/api/blocks", json!({ "user_id": alice.id }))
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = alice
        .post("/api/blocks", json!({ "user_id": "1234567890123456789" }))
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    let (_, listed) = alice.get("/api/blocks").await;
    assert_eq!(listed["blocked"].as_array().unwrap().len(), 2);

    // Unblocking lets them start over; the friendship is not restored by itself.
    let (status, listed) = alice.delete(&format!("/api/blocks/{}", bob.id)).await;
    assert_eq!(
        (status, listed["blocked"].as_array().unwrap().len()),
        (StatusCode::OK, 1)
    );
    let (_, friends) = alice.get("/api/friends").await;
    assert_eq!(friends["friends"], json!([]));
    assert_eq!(request(&bob, &alice).await.0, StatusCode::CREATED);
}

async fn the_friends_list_comes_in_pages(system: &System) {
    let alice = User::register(&system.base, "alice").await;
    let mut names = Vec::new();
    for _ in 0..5 {
        let friend = User::register(&system.base, "pal").await;
        alice.befriend(&friend).await;
        names.push(friend.name);
    }
    names.sort();
    let mut seen = Vec::new();
    let mut path = "/api/friends?limit=2".to_owned();
    loop {
        let (status, page) = alice.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let friends = page["friends"].as_array().unwrap();
        assert!(friends.len() <= 2);
        seen.extend(
            friends
                .iter()
                .map(|f| f["username"].as_str().unwrap().to_owned()),
        );
        match page["next_after"].as_str() {
            Some(after) => path = format!("/api/friends?limit=2&after={after}"),
            None => break,
        }
    }
    assert_eq!(seen, names);
    let (_, all) = alice.get("/api/friends").await;
    assert_eq!(all["friends"].as_array().unwrap().len(), 5);
    for bad in ["limit=0", "limit=1001", "limit=abc"] {
        let (status, body) = alice.get(&format!("/api/friends?{bad}")).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST);
    }
}

/// The races of issue 4, many at once, each side through a different social replica.
#[tokio::test]
async fn racing_changes_end_in_one_consistent_state_across_two_replicas() {
    let options = Distributed {
        social_replicas: 2,
        ..Distributed::default()
    };
    let Some(system) = System::distributed_with(options).await else {
        return;
    };
    let replica = |name: &str| SocialServiceClient::new(system.channel(Role::Gateway, name));
    let (one, two) = (replica("social"), replica("social-2"));
    const PAIRS: usize = 12;
    let mut pairs = Vec::new();
    for _ in 0..PAIRS {
        pairs.push((
            User::register(&system.base, "left").await,
            User::register(&system.base, "right").await,
        ));
    }
    let send = |client: &SocialServiceClient<_>, from: &User, to: &User| {
        let mut client = client.clone();
        let request = SendFriendRequestRequest {
            username: to.name.clone(),
        };
        let request = for_user(request, &from.token);
        async move {
            client
                .send_friend_request(request)
                .await
                .map(|r| r.into_inner())
        }
    };
    let act = |client: &SocialServiceClient<_>, actor: &User, request_id: &str, accept: bool| {
        let mut client = client.clone();
        let action = FriendRequestAction {
            request_id: request_id.to_owned(),
        };
        let action = for_user(action, &actor.token);
        async move {
            if accept {
                client.accept_friend_request(action).await.map(|_| ())
            } else {
                client.cancel_friend_request(action).await.map(|_| ())
            }
        }
    };

    // 1. Both ask each other at the same moment: friends exactly once, nothing left pending.
    let crossing = pairs
        .iter()
        .map(|(a, b)| async { tokio::join!(send(&one, a, b), send(&two, b, a)) });
    for ((a, b), (ab, ba)) in pairs.iter().zip(futures::future::join_all(crossing).await) {
        let (ab, ba) = (ab.unwrap(), ba.unwrap());
        assert_eq!(
            [ab.accepted, ba.accepted].iter().filter(|x| **x).count(),
            1,
            "one created, one accepted"
        );
        assert_eq!(
            ab.request.unwrap().id,
            ba.request.unwrap().id,
            "one request between them"
        );
        let (_, friends) = a.get("/api/friends").await;
        assert_eq!(
            support::named(&friends["friends"]),
            json!([{ "id": b.id, "username": b.name }])
        );
        assert_eq!(
            (friends["incoming"].clone(), friends["outgoing"].clone()),
            (json!([]), json!([]))
        );
    }
    for (a, b) in &pairs {
        a.unfriend(b).await;
    }

    // 2. Accept races cancel; 3. two accepts race; 4. unfriend races accept.
    let ids = pending(&pairs).await;
    let races = pairs.iter().zip(&ids).map(|((a, b), id)| async {
        tokio::join!(act(&one, b, id, true), act(&two, a, id, false))
    });
    for ((a, b), (accepted, cancelled)) in pairs.iter().zip(futures::future::join_all(races).await)
    {
        assert!(
            accepted.is_ok() != cancelled.is_ok(),
            "exactly one wins: {accepted:?} {cancelled:?}"
        );
        let (_, friends) = a.get("/api/friends").await;
        let are_friends = friends["friends"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == b.id.as_str());
        assert_eq!(are_friends, accepted.is_ok());
        assert_eq!(
            (friends["incoming"].clone(), friends["outgoing"].clone()),
            (json!([]), json!([]))
        );
        if are_friends {
            a.unfriend(b).await;
        }
    }
    let ids = pending(&pairs).await;
    let races = pairs
        .iter()
        .zip(&ids)
        .map(|((_, b), id)| async { tokio::join!(act(&one, b, id, true), act(&two, b, id, true)) });
    for ((a, b), (first, second)) in pairs.iter().zip(futures::future::join_all(races).await) {
        assert!(
            first.is_ok() != second.is_ok(),
            "exactly one accept wins: {first:?} {second:?}"
        );
        let (_, friends) = b.get("/api/friends").await;
        assert_eq!(friends["friends"][0]["id"], a.id.as_str());
        a.unfriend(b).await;
    }
    let ids = pending(&pairs).await;
    let races = pairs.iter().zip(&ids).map(|((a, b), id)| async {
        let mut two = two.clone();
        let unfriend = RemoveFriendRequest {
            user_id: b.id.clone(),
        };
        let unfriend = for_user(unfriend, &a.token);
        tokio::join!(act(&one, b, id, true), async move {
            two.remove_friend(unfriend).await.map(|_| ())
        })
    });
    for ((a, b), (accepted, unfriended)) in pairs.iter().zip(futures::future::join_all(races).await)
    {
        assert!(
            accepted.is_ok(),
            "the accept itself cannot fail: {accepted:?}"
        );
        let (_, friends) = a.get("/api/friends").await;
        let are_friends = friends["friends"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == b.id.as_str());
        assert_eq!(
            are_friends,
            unfriended.is_err(),
            "unfriended after the accept, or it found no friendship"
        );
    }
    system.stop().await;
}

/// A request from each left to each right, all at once; their ids.
async fn pending(pairs: &[(User, User)]) -> Vec<String> {
    futures::future::join_all(
        pairs
            .iter()
            .map(|(a, b)| async { id(&request(a, b).await.1) }),
    )
    .await
}

/// Callers balance over the social replicas, and keep working when one of them dies.
#[tokio::test]
async fn calls_spread_over_two_social_replicas_and_survive_one_being_killed() {
    let options = Distributed {
        social_replicas: 2,
        rust_log: "info,astral_social=debug",
        ..Distributed::default()
    };
    let Some(mut system) = System::distributed_with(options).await else {
        return;
    };
    let alice = User::register(&system.base, "alice").await;
    let bob = User::register(&system.base, "bob").await;
    alice.befriend(&bob).await;
    let chat_id = id(&alice.open_direct_chat(&bob).await);
    let messages = format!("/api/chats/{chat_id}/messages");
    // Every direct message asks social whether the two are still friends.
    for n in 0..40 {
        alice.send_message(&chat_id, &format!("{n}")).await;
    }
    let answered = |system: &System, replica: &str| {
        let logs = system.logs();
        logs.iter()
            .find(|(name, _)| name == &format!("{replica}.log"))
            .map_or(0, |(_, text)| text.matches("friendships checked").count())
    };
    let (first, second) = (
        answered(&system, "astral-social"),
        answered(&system, "astral-social-2"),
    );
    assert!(
        first > 0 && second > 0,
        "both replicas answer: {first} and {second}"
    );

    assert!(
        system
            .signal("astral-social", "KILL", std::time::Duration::from_secs(5))
            .await
            .is_some()
    );
    // Calls on their way to the dead replica may fail, cleanly, until the balancer has
    // dropped it (within a probe round, 2 s); then sending works on.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut in_a_row = 0;
    while in_a_row < 20 {
        let (status, _) = alice.post(&messages, json!({ "content": "after" })).await;
        assert!(
            status == StatusCode::CREATED || status == StatusCode::SERVICE_UNAVAILABLE,
            "{status}: a clean 503 at worst"
        );
        in_a_row = if status == StatusCode::CREATED {
            in_a_row + 1
        } else {
            0
        };
        assert!(
            tokio::time::Instant::now() < deadline,
            "sends kept failing after a replica died"
        );
    }
    assert!(
        answered(&system, "astral-social-2") > second,
        "the surviving replica answers"
    );
    system.stop().await;
}
