//! Web Push end to end (issue 19), in both run modes: a browser's subscription, a message
//! pushed to a member with no connection, encrypted and signed as RFC 8291 and 8292 say
//! (checked by a local push service that decrypts it as a browser would), and the cases
//! that push nothing: the author, a member who is connected, a muted chat, a gone browser,
//! a browser whose session has ended.

#![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap does

mod support;

use astral_common::testing::{PushPeer, PushSubscription};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use support::{System, User, assert_error};

in_both_modes!(
    a_message_is_pushed_to_members_who_are_not_here,
    push_endpoints_must_be_public_and_keys_usable,
);

/// How long a push may take to arrive.
const PUSH_WAIT: Duration = Duration::from_secs(15);

async fn subscribe(user: &User, subscription: &PushSubscription) {
    let body = json!({
        "endpoint": subscription.endpoint,
        "keys": { "p256dh": subscription.p256dh, "auth": subscription.auth },
        "expirationTime": null,
    });
    let (status, answer) = user.post("/api/push/subscriptions", body).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["endpoint"], subscription.endpoint.as_str());
}

/// The next push to `subscription`, decrypted, as JSON.
async fn next_push(peer: &PushPeer, subscription: &PushSubscription) -> Value {
    let delivery = peer.next(&subscription.endpoint, PUSH_WAIT).await.unwrap();
    assert!(delivery.ttl > 0);
    assert_eq!(delivery.subject, astral_messaging::push::DEFAULT_SUBJECT);
    serde_json::from_slice(&delivery.payload).unwrap()
}

/// Waits for `watcher` (a connected friend) to see `friend`'s presence turn to `status`:
/// then the social service knows it too, and so does the push sender.
async fn until_presence(watcher: &mut User, friend: &User, status: &str) {
    loop {
        let frame = watcher.expect_op("event").await;
        let event = &frame["d"];
        if frame["t"] == "presence.updated"
            && event["user_id"] == friend.id.as_str()
            && event["status"] == status
        {
            return;
        }
    }
}

async fn subscriptions_at(system: &System, endpoint: &str) -> i64 {
    let pool = astral_common::db::connect(&system.messaging_database_url)
        .await
        .unwrap();
    let count = sqlx::query_scalar("SELECT COUNT(*) FROM push_subscriptions WHERE endpoint = $1")
        .bind(endpoint)
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    count
}

async fn a_message_is_pushed_to_members_who_are_not_here(system: &System) {
    let base = &system.base;
    let peer = PushPeer::start().await.unwrap();
    let (mut alice, bob, direct) = support::user::friends_with_a_chat(base, base).await;
    let (status, key) = bob.get("/api/push/key").await;
    assert_eq!(status, StatusCode::OK, "{key}");
    let key = key["public_key"].as_str().unwrap();
    assert_eq!(
        alice.get("/api/push/key").await.1["public_key"],
        key,
        "one key"
    );
    peer.expect_vapid_key(key);
    let bobs = peer.subscribe();
    subscribe(&bob, &bobs).await;
    let alices = peer.subscribe();
    subscribe(&alice, &alices).await;
    alice.connect().await;

    // Bob has no connection: he is pushed the message; alice, its author, is not.
    let sent = alice.send_message(&direct, "hello bob").await;
    let push = next_push(&peer, &bobs).await;
    assert_eq!(
        push,
        json!({
            "type": "message", "chat_id": direct, "message_id": sent["id"],
            "author_id": alice.id, "title": alice.name, "body": "hello bob",
        })
    );

    // Connected, he sees it live: no push. Muted, no push either. The next push he gets
    // is the message sent once he is gone and has unmuted.
    let mut bob_live = bob.login_again().await;
    bob_live.connect().await;
    until_presence(&mut alice, &bob, "online").await;
    alice.send_message(&direct, "while you are here").await;
    let (status, _) = bob
        .patch(
            &format!("/api/chats/{direct}/settings"),
            json!({ "muted": true }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    bob_live.socket = None;
    until_presence(&mut alice, &bob, "offline").await;
    alice.send_message(&direct, "muted").await;
    bob.patch(
        &format!("/api/chats/{direct}/settings"),
        json!({ "muted": false }),
    )
    .await;
    alice.send_message(&direct, "unmuted").await;
    assert_eq!(next_push(&peer, &bobs).await["body"], "unmuted");

    // A slow push service does not hold a send back: the send is answered before the push
    // service has answered the push.
    peer.set_delay(Duration::from_secs(3));
    alice.send_message(&direct, "slowly").await;
    assert_eq!(peer.deliveries(&bobs.endpoint), 2, "not delivered yet");
    assert_eq!(next_push(&peer, &bobs).await["body"], "slowly");
    peer.set_delay(Duration::ZERO);

    // A browser its push service no longer knows (410) is forgotten.
    let hits = peer.hits(&bobs.endpoint);
    peer.gone(&bobs.endpoint);
    alice.send_message(&direct, "to a gone browser").await;
    let start = Instant::now();
    while subscriptions_at(system, &bobs.endpoint).await > 0 {
        assert!(
            start.elapsed() < PUSH_WAIT,
            "the gone subscription is still kept"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(peer.hits(&bobs.endpoint), hits + 1);
    assert_eq!(peer.deliveries(&alices.endpoint), 0, "never to the author");
    assert_eq!(peer.failures(), Vec::<String>::new());

    // A browser whose session has ended (signed out there, or everywhere) is forgotten and
    // gets nothing more, though the client never said goodbye.
    let phone = bob.login_again().await;
    let phones = peer.subscribe();
    subscribe(&phone, &phones).await;
    let (status, _) = phone.post("/api/auth/logout", json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    alice.send_message(&direct, "after signing out").await;
    let start = Instant::now();
    while subscriptions_at(system, &phones.endpoint).await > 0 {
        assert!(
            start.elapsed() < PUSH_WAIT,
            "the signed-out browser is still kept"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        peer.hits(&phones.endpoint),
        0,
        "nothing pushed after signing out"
    );

    // Unsubscribing is idempotent, and only removes the caller's own.
    let forget = json!({ "endpoint": alices.endpoint });
    let (status, _) = bob
        .call(
            Method::DELETE,
            "/api/push/subscriptions",
            Some(forget.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        subscriptions_at(system, &alices.endpoint).await,
        1,
        "not bob's to remove"
    );
    for _ in 0..2 {
        let (status, _) = alice
            .call(
                Method::DELETE,
                "/api/push/subscriptions",
                Some(forget.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    assert_eq!(subscriptions_at(system, &alices.endpoint).await, 0);
}

async fn push_endpoints_must_be_public_and_keys_usable(system: &System) {
    let base = &system.base;
    let peer = PushPeer::start().await.unwrap();
    let carol = User::register(base, "carol").await;
    let good = peer.subscribe();
    let keys = json!({ "p256dh": good.p256dh, "auth": good.auth });
    for endpoint in [
        "https://10.0.0.1/push",
        "https://169.254.169.254/latest/meta-data",
        "https://[fd00::1]/push",
        "http://push.example.com/push",
        "ftp://push.example.com/push",
        "https://user:secret@push.example.com/push",
        "not a url",
    ] {
        let body = json!({ "endpoint": endpoint, "keys": keys });
        let (status, answer) = carol.post("/api/push/subscriptions", body).await;
        assert_error(status, &answer, StatusCode::BAD_REQUEST);
        assert_eq!(
            answer["error"]["code"], "invalid_argument",
            "{endpoint}: {answer}"
        );
    }
    for keys in [
        json!({ "p256dh": "AAAA", "auth": good.auth }),
        json!({ "p256dh": good.p256dh, "auth": "c2hvcnQ" }),
        json!({ "p256dh": "not base64!", "auth": good.auth }),
    ] {
        let body = json!({ "endpoint": good.endpoint, "keys": keys });
        let (status, answer) = carol.post("/api/push/subscriptions", body).await;
        assert_error(status, &answer, StatusCode::BAD_REQUEST);
    }
    let (status, answer) = carol
        .post(
            "/api/push/subscriptions",
            json!({ "endpoint": good.endpoint }),
        )
        .await;
    assert_error(status, &answer, StatusCode::BAD_REQUEST);
    assert_eq!(subscriptions_at(system, &good.endpoint).await, 0);

    let anonymous = reqwest::get(format!("{base}/api/push/key")).await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}
