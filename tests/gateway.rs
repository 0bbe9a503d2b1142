//! The gateway under pressure (issue 6): limits, oversize frames, connections per user,
//! delivery across gateways, and draining on SIGTERM.

#![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap does

mod support;

use reqwest::StatusCode;
use serde_json::json;
use support::system::Distributed;
use support::{System, User};
use tokio_tungstenite::tungstenite::Message;

in_both_modes!(
    sending_too_fast_is_answered_429_with_retry_after,
    a_connection_sending_too_many_frames_is_refused_then_closed,
    a_frame_over_64_kib_closes_the_connection_with_1009,
    a_user_has_at_most_twenty_connections_per_gateway,
    two_connections_of_one_user_each_get_every_event_once,
);

async fn sending_too_fast_is_answered_429_with_retry_after(system: &System) {
    let alice = User::register(&system.base, "alice").await;
    let bob = User::register(&system.base, "bob").await;
    alice.befriend(&bob).await;
    let (_, chat) = alice
        .post("/api/chats/direct", json!({ "user_id": bob.id }))
        .await;
    let path = format!(
        "{}/api/chats/{}/messages",
        system.base,
        chat["id"].as_str().unwrap()
    );
    let http = reqwest::Client::new();
    let mut limited = None;
    for n in 0..300 {
        let response = http
            .post(&path)
            .bearer_auth(&alice.token)
            .json(&json!({ "content": format!("{n}") }))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(response);
            break;
        }
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let limited = limited.expect("a burst of 300 sends is limited");
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    let body: serde_json::Value = limited.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // Others are not held back by alice's budget.
    assert_eq!(
        bob.post(
            &format!("/api/chats/{}/messages", chat["id"].as_str().unwrap()),
            json!({ "content": "me" })
        )
        .await
        .0,
        StatusCode::CREATED
    );
}

async fn a_connection_sending_too_many_frames_is_refused_then_closed(system: &System) {
    let mut alice = User::register(&system.base, "alice").await;
    alice.connect().await;
    for _ in 0..200 {
        alice.send(json!({ "op": "heartbeat" })).await;
    }
    let mut refused = 0;
    let code = loop {
        use futures::StreamExt as _;
        let socket = alice.socket.as_mut().unwrap();
        match tokio::time::timeout(support::WAIT, socket.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Text(text))) => {
                let frame: serde_json::Value = serde_json::from_str(&text).unwrap();
                if frame["d"]["code"] == "rate_limited" {
                    refused += 1;
                }
            }
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    };
    assert!(refused > 0, "frames past the budget are refused first");
    assert_eq!(code, Some(4029));
}

async fn a_frame_over_64_kib_closes_the_connection_with_1009(system: &System) {
    let mut alice = User::register(&system.base, "alice").await;
    alice.connect().await;
    alice
        .send(json!({ "op": "heartbeat", "d": { "padding": "x".repeat(70 * 1024) } }))
        .await;
    assert_eq!(alice.expect_close().await, 1009);
}

async fn a_user_has_at_most_twenty_connections_per_gateway(system: &System) {
    let alice = User::register(&system.base, "alice").await;
    let mut connections = Vec::new();
    for _ in 0..20 {
        let mut connection = alice.on(&system.base);
        connection.connect().await;
        connections.push(connection);
    }
    let mut one_more = alice.on(&system.base);
    let url = format!("{}/ws", system.base.replacen("http", "ws", 1));
    one_more.socket = Some(tokio_tungstenite::connect_async(url).await.unwrap().0);
    assert_eq!(one_more.next_frame().await["op"], "hello");
    one_more
        .send(json!({ "op": "identify", "d": { "token": alice.token } }))
        .await;
    assert_eq!(
        one_more.next_frame().await["d"]["code"],
        "too_many_connections"
    );
    assert_eq!(one_more.expect_close().await, 4030);
    // Closing one frees its place.
    connections.pop();
    let mut again = alice.on(&system.base);
    let deadline = tokio::time::Instant::now() + support::WAIT;
    loop {
        let url = format!("{}/ws", system.base.replacen("http", "ws", 1));
        again.socket = Some(tokio_tungstenite::connect_async(url).await.unwrap().0);
        again.next_frame().await;
        again
            .send(json!({ "op": "identify", "d": { "token": alice.token } }))
            .await;
        if again.next_frame().await["op"] == "ready" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the freed place is given back"
        );
    }
}

async fn two_connections_of_one_user_each_get_every_event_once(system: &System) {
    let alice = User::register(&system.base, "alice").await;
    let bob = User::register(&system.base, "bob").await;
    alice.befriend(&bob).await;
    let (_, chat) = alice
        .post("/api/chats/direct", json!({ "user_id": bob.id }))
        .await;
    let chat_id = chat["id"].as_str().unwrap().to_owned();
    let mut tabs = [bob.on(&system.base), bob.on(&system.base)];
    for tab in &mut tabs {
        tab.connect().await;
        tab.subscribe(&chat_id).await;
    }
    let messages = format!("/api/chats/{chat_id}/messages");
    let (_, first) = alice.post(&messages, json!({ "content": "one" })).await;
    let (_, second) = alice.post(&messages, json!({ "content": "two" })).await;
    for tab in &mut tabs {
        assert_eq!(tab.expect_event("message.created").await["id"], first["id"]);
        assert_eq!(
            tab.expect_event("message.created").await["id"],
            second["id"],
            "no duplicate in between"
        );
    }
}

#[tokio::test]
async fn messages_cross_gateways_live_and_once() {
    let Some(system) = System::distributed_with(Distributed {
        gateways: 2,
        ..Distributed::default()
    })
    .await
    else {
        return;
    };
    let alice = User::register(&system.bases[0], "alice").await;
    let bob = User::register(&system.bases[1], "bob").await;
    alice.befriend(&bob).await;
    let (_, chat) = alice
        .post("/api/chats/direct", json!({ "user_id": bob.id }))
        .await;
    let chat_id = chat["id"].as_str().unwrap().to_owned();
    let mut bob_live = bob.on(&system.bases[1]);
    bob_live.connect().await;
    bob_live.subscribe(&chat_id).await;
    let messages = format!("/api/chats/{chat_id}/messages");
    for n in 0..5 {
        let (_, sent) = alice
            .post(&messages, json!({ "content": format!("across {n}") }))
            .await;
        assert_eq!(
            bob_live.expect_event("message.created").await["id"],
            sent["id"]
        );
    }
    system.stop().await;
}

#[tokio::test]
async fn a_gateway_told_to_stop_asks_its_clients_to_reconnect_and_exits_promptly() {
    let Some(mut system) = System::distributed().await else {
        return;
    };
    let mut alice = User::register(&system.base, "alice").await;
    alice.connect().await;
    let took = system
        .signal(
            "astral-gateway-0",
            "TERM",
            std::time::Duration::from_secs(10),
        )
        .await;
    assert_eq!(alice.next_frame().await["op"], "reconnect");
    assert_eq!(alice.expect_close().await, 1012);
    let took = took.expect("the gateway exits within 10 s of SIGTERM");
    assert!(took < std::time::Duration::from_secs(10), "{took:?}");
    system.stop().await;
}
