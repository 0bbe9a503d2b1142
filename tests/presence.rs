//! Presence, read receipts and the settings that govern them (issue 19), in both run modes;
//! presence across two gateways, one of them killed, in the distributed mode.

#![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap does

mod support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use support::system::Distributed;
use support::{System, User, assert_error};

in_both_modes!(
    read_receipts_are_shared_only_between_those_who_share_them,
    presence_follows_connections_and_the_privacy_switch,
);

/// The `read_states` of a chat as `user` sees it, by member.
async fn read_states(user: &User, chat_id: &str) -> Vec<(String, i64)> {
    let (status, chat) = user.get(&format!("/api/chats/{chat_id}")).await;
    assert_eq!(status, StatusCode::OK, "{chat}");
    let mut states: Vec<(String, i64)> = chat["read_states"]
        .as_array()
        .unwrap_or_else(|| panic!("read_states in {chat}"))
        .iter()
        .map(|state| {
            (
                state["user_id"].as_str().unwrap().to_owned(),
                state["seq"].as_i64().unwrap(),
            )
        })
        .collect();
    states.sort();
    states
}

async fn mark_read(user: &User, chat_id: &str, seq: i64) {
    let (status, body) = user
        .post(&format!("/api/chats/{chat_id}/read"), json!({ "seq": seq }))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
}

async fn read_receipts_are_shared_only_between_those_who_share_them(system: &System) {
    let base = &system.base;
    let (mut alice, mut bob, direct) = support::user::friends_with_a_chat(base, base).await;
    let (status, settings) = bob.get("/api/users/me/settings").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        settings,
        json!({ "share_presence": true, "share_read_receipts": true })
    );
    // Presence kept out of this story: their sockets carry only what it is about.
    for user in [&alice, &bob] {
        let both = json!({ "share_presence": false, "share_read_receipts": true });
        let (status, settings) = user.patch("/api/users/me/settings", both.clone()).await;
        assert_eq!((status, settings), (StatusCode::OK, both));
    }
    alice.connect().await;
    alice.subscribe(&direct).await;
    bob.connect().await;
    bob.subscribe(&direct).await;

    let first = alice.send_message(&direct, "did you see this?").await;
    let seq = first["seq"].as_i64().unwrap();
    alice.expect_event("message.created").await;
    bob.expect_event("message.created").await;
    mark_read(&bob, &direct, seq).await;
    let read = alice.expect_event("read.updated").await;
    assert_eq!(
        read,
        json!({ "chat_id": direct, "user_id": bob.id, "seq": seq })
    );
    assert_eq!(bob.expect_event("read.updated").await, read, "his own too");
    assert_eq!(
        read_states(&alice, &direct).await,
        sorted([(alice.id.clone(), 0), (bob.id.clone(), seq)])
    );

    // Bob stops sharing: his marker is hidden from alice, and he no longer sees hers.
    let (status, settings) = bob
        .patch(
            "/api/users/me/settings",
            json!({ "share_read_receipts": false }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{settings}");
    assert_eq!(
        settings,
        json!({ "share_presence": false, "share_read_receipts": false })
    );
    assert_eq!(
        bob.expect_event("settings.updated").await,
        json!({ "share_read_receipts": false }),
        "his other devices are told"
    );
    assert_eq!(read_states(&alice, &direct).await, [(alice.id.clone(), 0)]);
    assert_eq!(read_states(&bob, &direct).await, []);

    // Alice reads (bob's socket must not carry it), then bob reads her answer (alice's
    // socket must not carry that): the next event each gets is the next message.
    let answer = bob.send_message(&direct, "yes").await;
    let answer_seq = answer["seq"].as_i64().unwrap();
    bob.expect_event("message.created").await;
    alice.expect_event("message.created").await;
    mark_read(&alice, &direct, answer_seq).await;
    assert_eq!(
        alice.expect_exactly("read.updated").await["user_id"],
        alice.id
    );
    mark_read(&bob, &direct, answer_seq).await;
    alice.send_message(&direct, "good").await;
    assert_eq!(
        bob.expect_exactly("message.created").await["content"],
        "good"
    );
    assert_eq!(
        alice.expect_exactly("message.created").await["content"],
        "good"
    );

    // Bad settings are refused with the contract's body.
    for bad in [
        json!({ "share_read_receipts": "no" }),
        json!({ "share_everything": true }),
    ] {
        let (status, body) = bob.patch("/api/users/me/settings", bad).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST);
    }
}

fn sorted<const N: usize>(mut states: [(String, i64); N]) -> [(String, i64); N] {
    states.sort();
    states
}

/// `friend`'s presence in `user`'s friends list.
async fn presence_in_list(user: &User, friend: &User) -> Value {
    let (status, friends) = user.get("/api/friends").await;
    assert_eq!(status, StatusCode::OK);
    friends["friends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|listed| listed["id"] == friend.id.as_str())
        .unwrap()["presence"]
        .clone()
}

/// Waits (up to `within`, keeping `user`'s socket alive with heartbeats) for the next
/// `presence.updated` and checks it is `friend`'s with `status`.
async fn expect_presence(user: &mut User, friend: &User, status: &str, within: Duration) -> Value {
    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < within,
            "no presence.updated for {status} within {within:?}"
        );
        user.send(json!({ "op": "heartbeat" })).await;
        // Its answer, then whatever comes within a few seconds (else another heartbeat).
        while let Ok(frame) = tokio::time::timeout(Duration::from_secs(5), user.next_frame()).await
        {
            if frame["op"] == "heartbeat_ack" {
                continue;
            }
            assert_eq!(frame["t"], "presence.updated", "unexpected: {frame}");
            let presence = frame["d"].clone();
            assert_eq!(presence["user_id"], friend.id.as_str(), "{presence}");
            assert_eq!(presence["status"], status, "{presence}");
            return presence;
        }
    }
}

/// Waits for the event `name`, skipping friends' presence changes (which come when they
/// will).
async fn expect_event_among_presence(user: &mut User, name: &str) -> Value {
    loop {
        let frame = user.expect_op("event").await;
        if frame["t"] == name {
            return frame["d"].clone();
        }
        assert_eq!(frame["t"], "presence.updated", "unexpected: {frame}");
    }
}

async fn presence_follows_connections_and_the_privacy_switch(system: &System) {
    let base = &system.base;
    let (mut alice, mut bob, _) = support::user::friends_with_a_chat(base, base).await;
    let carol = User::register(base, "carol").await;
    carol.befriend(&alice).await;
    bob.connect().await;
    assert_eq!(
        presence_in_list(&bob, &alice).await,
        json!({ "status": "offline", "last_seen_at": null })
    );

    alice.connect().await;
    let online = expect_presence(&mut bob, &alice, "online", support::WAIT).await;
    assert!(online["last_seen_at"].is_string(), "{online}");
    assert_eq!(presence_in_list(&bob, &alice).await["status"], "online");
    assert_eq!(presence_in_list(&carol, &alice).await["status"], "online");

    // Idle only when every connection is; back online with any.
    alice
        .send(json!({ "op": "presence", "d": { "status": "idle" } }))
        .await;
    expect_presence(&mut bob, &alice, "idle", support::WAIT).await;
    let mut phone = alice.login_again().await;
    phone.connect().await;
    expect_presence(&mut bob, &alice, "online", support::WAIT).await;
    phone.socket = None;
    expect_presence(&mut bob, &alice, "idle", support::WAIT).await;
    alice
        .send(json!({ "op": "presence", "d": { "status": "online" } }))
        .await;
    expect_presence(&mut bob, &alice, "online", support::WAIT).await;
    alice
        .send(json!({ "op": "presence", "d": { "status": "away" } }))
        .await;
    let error = alice.expect_op("error").await;
    assert_eq!(error["d"]["code"], "invalid_argument", "{error}");

    // Not sharing: friends see offline, without a last seen time.
    let (status, settings) = alice
        .patch("/api/users/me/settings", json!({ "share_presence": false }))
        .await;
    assert_eq!(status, StatusCode::OK, "{settings}");
    assert_eq!(settings["share_presence"], false);
    let hidden = expect_presence(&mut bob, &alice, "offline", support::WAIT).await;
    assert_eq!(hidden["last_seen_at"], Value::Null);
    assert_eq!(
        presence_in_list(&carol, &alice).await,
        json!({ "status": "offline", "last_seen_at": null })
    );
    assert_eq!(
        expect_event_among_presence(&mut alice, "settings.updated").await,
        json!({ "share_presence": false })
    );
    alice
        .patch("/api/users/me/settings", json!({ "share_presence": true }))
        .await;
    expect_presence(&mut bob, &alice, "online", support::WAIT).await;

    // Gone: offline, last seen this minute.
    alice.socket = None;
    let gone = expect_presence(&mut bob, &alice, "offline", support::WAIT).await;
    let last_seen = gone["last_seen_at"].as_str().unwrap();
    assert!(
        last_seen.ends_with(":00.000Z"),
        "to the minute: {last_seen}"
    );
    assert_eq!(presence_in_list(&bob, &alice).await, {
        let mut expected = gone.clone();
        expected.as_object_mut().unwrap().remove("user_id");
        expected
    });
}

/// A user connected to two gateways is online until both connections close; a gateway killed
/// without a word takes its users offline within 60 s.
#[tokio::test]
async fn presence_spans_gateways_and_outlives_none_of_them() {
    let options = Distributed {
        gateways: 2,
        ..Distributed::default()
    };
    let Some(mut system) = System::distributed_with(options).await else {
        return;
    };
    let (first, second) = (system.bases[0].clone(), system.bases[1].clone());
    let (mut alice, mut bob, _) = support::user::friends_with_a_chat(&first, &first).await;
    bob.connect().await;
    // Each step waits for bob to hear of it: the two gateways report on their own.
    let mut elsewhere = alice.on(&second);
    elsewhere.connect().await;
    expect_presence(&mut bob, &alice, "online", support::WAIT).await;
    elsewhere
        .send(json!({ "op": "presence", "d": { "status": "idle" } }))
        .await;
    expect_presence(&mut bob, &alice, "idle", support::WAIT).await;
    alice.connect().await;
    expect_presence(&mut bob, &alice, "online", support::WAIT).await;
    // Closing the first gateway's connection leaves the idle one on the second.
    alice.socket = None;
    expect_presence(&mut bob, &alice, "idle", support::WAIT).await;

    let killed = Instant::now();
    system
        .signal("astral-gateway-1", "KILL", Duration::from_secs(5))
        .await
        .expect("the second gateway dies");
    let offline = expect_presence(&mut bob, &alice, "offline", Duration::from_secs(75)).await;
    let took = killed.elapsed();
    assert!(
        took <= Duration::from_secs(60),
        "offline {took:?} after the gateway died"
    );
    assert!(offline["last_seen_at"].is_string(), "{offline}");
    system.stop().await;
}
