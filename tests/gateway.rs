//! The gateway under pressure (issue 6): limits, oversize frames, connections per user,
//! delivery across gateways, and draining on SIGTERM.

#![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap does

mod support;

use astral_common::guard::{Role, for_user};
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
    a_long_event_arrives_whole_and_a_plain_request_to_ws_is_refused_with_400,
    the_openapi_document_describes_every_route_and_only_those,
    the_web_client_is_served_compressed_with_validators,
);

async fn sending_too_fast_is_answered_429_with_retry_after(system: &System) {
    let alice = User::register(&system.base, "alice").await;
    let bob = User::register(&system.base, "bob").await;
    alice.befriend(&bob).await;
    let chat_id = support::id(&alice.open_direct_chat(&bob).await);
    let path = format!("{}/api/chats/{chat_id}/messages", system.base);
    use futures::StreamExt as _;
    let http = reqwest::Client::new();
    // 300 sends at once, 50 in flight: far above the 20 a second a user may keep up after a
    // burst of 100, however fast the machine answers.
    let responses: Vec<reqwest::Response> = futures::stream::iter(0..300)
        .map(|n| {
            http.post(&path)
                .bearer_auth(&alice.token)
                .json(&json!({ "content": format!("{n}") }))
                .send()
        })
        .buffer_unordered(50)
        .map(Result::unwrap)
        .collect()
        .await;
    let mut limited = None;
    for response in responses {
        match response.status() {
            StatusCode::TOO_MANY_REQUESTS => limited = Some(response),
            status => assert_eq!(status, StatusCode::CREATED),
        }
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
    bob.send_message(&chat_id, "me").await;
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

/// Frames over 1 KiB go out in fragments (the gateway's write buffer stays small); a client
/// gets them whole. A request to `/ws` that is not an upgrade gets the contract's error.
async fn a_long_event_arrives_whole_and_a_plain_request_to_ws_is_refused_with_400(system: &System) {
    let (alice, bob, chat_id) =
        support::user::friends_with_a_chat(&system.base, &system.base).await;
    let mut socket = bob.on(&system.base);
    socket.connect().await;
    socket.subscribe(&chat_id).await;
    let long = "é€😀x".repeat(1000);
    let messages = format!("/api/chats/{chat_id}/messages");
    let (status, _) = alice.post(&messages, json!({ "content": long })).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        socket.expect_event("message.created").await["content"],
        long
    );

    let plain = reqwest::get(format!("{}/ws", system.base)).await.unwrap();
    assert_eq!(plain.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = plain.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_argument", "{body}");
}

async fn two_connections_of_one_user_each_get_every_event_once(system: &System) {
    let (alice, bob, chat_id) =
        support::user::friends_with_a_chat(&system.base, &system.base).await;
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
    let (alice, bob, chat_id) =
        support::user::friends_with_a_chat(&system.bases[0], &system.bases[1]).await;
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

/// The versions a client has of a chat's messages, by message id.
fn ids_of(page: &serde_json::Value) -> Vec<(String, i64)> {
    page.as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap().to_owned(),
                m["seq"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_client_whose_gateway_is_killed_reconnects_elsewhere_and_misses_nothing() {
    let Some(mut system) = System::distributed_with(Distributed {
        gateways: 2,
        ..Distributed::default()
    })
    .await
    else {
        return;
    };
    let (alice, bob, chat_id) =
        support::user::friends_with_a_chat(&system.bases[1], &system.bases[0]).await;
    let messages = format!("/api/chats/{chat_id}/messages");
    let mut bob_live = bob.on(&system.bases[0]);
    bob_live.connect().await;
    bob_live.subscribe(&chat_id).await;

    // Bob sees the first messages live, then his gateway dies mid-stream.
    let mut seen = Vec::new();
    let mut last_version = 0;
    for n in 0..3 {
        alice
            .post(&messages, json!({ "content": format!("before {n}") }))
            .await;
        let event = bob_live.expect_event("message.created").await;
        last_version = event["version"].as_i64().unwrap();
        seen.push((
            event["id"].as_str().unwrap().to_owned(),
            event["seq"].as_i64().unwrap(),
        ));
    }
    assert!(
        system
            .signal(
                "astral-gateway-0",
                "KILL",
                std::time::Duration::from_secs(5)
            )
            .await
            .is_some()
    );
    for n in 0..3 {
        alice
            .post(&messages, json!({ "content": format!("while away {n}") }))
            .await;
    }

    // He reconnects to the other gateway and catches up from the last version he knows.
    let mut bob_again = bob.on(&system.bases[1]);
    let ready = bob_again.connect().await;
    let known = ready["chats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == chat_id.as_str())
        .unwrap();
    assert_eq!(known["last_seq"], 6);
    bob_again.subscribe(&chat_id).await;
    let (_, missed) = bob_again
        .get(&format!("{messages}?after={last_version}"))
        .await;
    seen.extend(ids_of(&missed));
    let (_, live) = alice.post(&messages, json!({ "content": "after" })).await;
    let event = bob_again.expect_event("message.created").await;
    assert_eq!(event["id"], live["id"]);
    seen.push((
        event["id"].as_str().unwrap().to_owned(),
        event["seq"].as_i64().unwrap(),
    ));

    let (_, history) = alice.get(&messages).await;
    assert_eq!(
        seen,
        ids_of(&history),
        "every message exactly once, in order"
    );
    system.stop().await;
}

#[tokio::test]
async fn when_the_bus_comes_back_the_gateway_resubscribes_and_tells_clients_to_catch_up() {
    let options = Distributed {
        ..Distributed::default()
    };
    let Some(mut system) = System::distributed_with(options).await else {
        return;
    };
    let (alice, bob, chat_id) =
        support::user::friends_with_a_chat(&system.base, &system.base).await;
    let mut bob_live = bob.on(&system.base);
    bob_live.connect().await;
    bob_live.subscribe(&chat_id).await;

    assert!(
        system
            .signal("nats", "KILL", std::time::Duration::from_secs(5))
            .await
            .is_some()
    );
    let messages = format!("/api/chats/{chat_id}/messages");
    let (status, during) = alice
        .post(&messages, json!({ "content": "while the bus is down" }))
        .await;
    assert_eq!(
        status,
        reqwest::StatusCode::CREATED,
        "sending does not depend on the bus"
    );
    system.restart_nats().await;
    bob_live.expect_op("catch_up").await;
    let (_, missed) = bob_live.get(&format!("{messages}?after=0")).await;
    assert!(
        ids_of(&missed)
            .iter()
            .any(|(id, _)| id == during["id"].as_str().unwrap()),
        "the missed message is fetched"
    );
    // Live again: the gateway's subscriptions came back with the bus.
    let mut ours = vec![during["id"].clone()];
    let deadline = tokio::time::Instant::now() + support::WAIT;
    loop {
        let (status, sent) = alice
            .post(&messages, json!({ "content": "live again?" }))
            .await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{sent}");
        ours.push(sent["id"].clone());
        // The services may still be reconnecting: the first sends after the restart can miss
        // the bus (the catch-up covers them); one soon reaches bob live.
        let frame =
            tokio::time::timeout(std::time::Duration::from_millis(500), bob_live.next_frame())
                .await;
        if let Ok(frame) = frame
            && frame["t"] == "message.created"
        {
            // The message is in `d`: one alice sent in this chat, at most as new as the
            // latest (the outbox may still be delivering the one sent while the bus was down).
            let live = &frame["d"];
            assert!(ours.contains(&live["id"]), "not one of alice's: {frame}");
            assert_eq!(live["chat_id"], chat_id.as_str(), "{frame}");
            assert!(
                live["seq"].as_i64().unwrap() <= sent["seq"].as_i64().unwrap(),
                "newer than the latest sent: {frame}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no live event after the bus came back"
        );
    }
    system.stop().await;
}

/// With NATS down, sends keep committing at their pace (the outbox keeps their events); when
/// it is back, a subscribed connection receives every one of them live, in order, once —
/// without fetching anything itself.
#[tokio::test]
async fn sends_commit_while_the_bus_is_down_and_their_events_follow_when_it_returns() {
    let Some(mut system) = System::distributed_with(Distributed::default()).await else {
        return;
    };
    let (alice, bob, chat_id) =
        support::user::friends_with_a_chat(&system.base, &system.base).await;
    let mut bob_live = bob.on(&system.base);
    bob_live.connect().await;
    bob_live.subscribe(&chat_id).await;
    assert!(
        system
            .signal("nats", "KILL", std::time::Duration::from_secs(5))
            .await
            .is_some()
    );
    let messages = format!("/api/chats/{chat_id}/messages");
    let started = std::time::Instant::now();
    let mut sent = Vec::new();
    for n in 0..60 {
        let (status, message) = alice
            .post(&messages, json!({ "content": format!("during {n}") }))
            .await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{message}");
        sent.push(message["id"].as_str().unwrap().to_owned());
    }
    let took = started.elapsed();
    eprintln!("60 sends with the bus down took {took:?}");
    assert!(
        took < std::time::Duration::from_secs(10),
        "sends do not wait for the bus: {took:?}"
    );
    system.restart_nats().await;
    // Whatever the relay and the sweeper publish, and then a new message that shows any gap
    // still left (sent again every 2 s of silence): bob receives every message, in order.
    let during = sent.len();
    let deadline = tokio::time::Instant::now() + support::WAIT * 3;
    let mut received: Vec<(String, i64)> = Vec::new();
    let mut quiet_since = tokio::time::Instant::now();
    while received.len() <= during {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of the {during} sent while the bus was down arrived",
            received.len().min(during)
        );
        if quiet_since.elapsed() > std::time::Duration::from_secs(2) {
            let (status, poke) = alice.post(&messages, json!({ "content": "back" })).await;
            if status == reqwest::StatusCode::CREATED {
                sent.push(poke["id"].as_str().unwrap().to_owned());
            }
            quiet_since = tokio::time::Instant::now();
        }
        let frame =
            tokio::time::timeout(std::time::Duration::from_millis(200), bob_live.next_frame())
                .await;
        if let Ok(frame) = frame
            && frame["t"] == "message.created"
        {
            received.push((
                frame["d"]["id"].as_str().unwrap().to_owned(),
                frame["d"]["version"].as_i64().unwrap(),
            ));
            quiet_since = tokio::time::Instant::now();
        }
    }
    let versions: Vec<i64> = received.iter().map(|(_, version)| *version).collect();
    let first = versions[0];
    assert_eq!(
        versions,
        (first..first + versions.len() as i64).collect::<Vec<_>>(),
        "in order, none missing, none twice"
    );
    let ids: Vec<&String> = received.iter().map(|(id, _)| id).collect();
    assert_eq!(ids, sent.iter().take(ids.len()).collect::<Vec<_>>());
    system.stop().await;
}

async fn the_openapi_document_describes_every_route_and_only_those(system: &System) {
    let http = reqwest::Client::new();
    let spec: serde_json::Value = http
        .get(format!("{}/api/openapi.json", system.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    let paths = spec["paths"].as_object().unwrap();
    for required in [
        "/api/auth/register",
        "/api/friends/requests",
        "/api/chats/{chat_id}/messages",
        "/api/blocks",
    ] {
        assert!(paths.contains_key(required), "{required}");
    }
    // Every documented route exists: probed with a malformed body or unknown ids, it answers
    // as that route would (never "no such route" and never 405).
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let user = User::register(&system.base, "probe").await;
            let url = format!(
                "{}{}",
                system.base,
                path.replace("{chat_id}", "1_2").replace(['{', '}'], "")
            );
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = http
                .request(method.clone(), &url)
                .bearer_auth(&user.token)
                .body("{")
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body = response.text().await.unwrap();
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert!(
                !body.contains("no such API route"),
                "{method} {path}: {body}"
            );
            assert!(
                !status.is_server_error(),
                "{method} {path}: {status} {body}"
            );
        }
    }
    // And a route that is not documented does not exist.
    let response = http
        .get(format!("{}/api/not/a/route", system.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let page = http
        .get(format!("{}/api-docs.html", system.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        page.status(),
        StatusCode::OK,
        "the page that renders the document"
    );
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_two_heartbeat_periods() {
    let system = System::all_in_one_with_heartbeat(300).await;
    let mut quiet = User::register(&system.base, "quiet").await;
    let mut chatty = User::register(&system.base, "chatty").await;
    quiet.connect().await;
    chatty.connect().await;
    let started = std::time::Instant::now();
    // The chatty one heartbeats and stays; the quiet one is closed with 4000.
    let keep_alive = async {
        loop {
            chatty.send(json!({ "op": "heartbeat" })).await;
            chatty.expect_op("heartbeat_ack").await;
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };
    tokio::select! {
        code = quiet.expect_close() => assert_eq!(code, 4000),
        () = keep_alive => unreachable!(),
    }
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(500),
        "not before two periods"
    );
    chatty.send(json!({ "op": "heartbeat" })).await;
    chatty.expect_op("heartbeat_ack").await;
    system.stop().await;
}

#[tokio::test]
async fn arbitrary_frames_never_break_a_session() {
    use rand::{Rng as _, SeedableRng as _};
    let system = System::all_in_one().await;
    let mut alice = User::register(&system.base, "alice").await;
    alice.connect().await;
    let seed = rand::random::<u64>();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let ops = [
        "identify",
        "heartbeat",
        "subscribe",
        "unsubscribe",
        "typing",
        "ready",
        "event",
        "",
        "💥",
    ];
    let values = [
        json!(null),
        json!(1),
        json!(-1.5),
        json!("1_2"),
        json!([]),
        json!({}),
        json!("x".repeat(300)),
        json!(true),
    ];
    for round in 0..150 {
        let frame = match rng.gen_range(0..4) {
            // Random bytes, often not even UTF-8 JSON.
            0 => {
                let bytes: Vec<u8> = (0..rng.gen_range(0..200)).map(|_| rng.r#gen()).collect();
                Message::Binary(bytes.into())
            }
            1 => Message::Text(
                String::from_utf8_lossy(
                    &(0..rng.gen_range(0..100))
                        .map(|_| rng.gen_range(32..127))
                        .collect::<Vec<u8>>(),
                )
                .into_owned()
                .into(),
            ),
            // Frames of the right shape with wrong or odd contents.
            _ => {
                let op = ops[rng.gen_range(0..ops.len())];
                let d = match rng.gen_range(0..3) {
                    0 => values[rng.gen_range(0..values.len())].clone(),
                    1 => {
                        json!({ "chat_id": values[rng.gen_range(0..values.len())], "token": values[rng.gen_range(0..values.len())] })
                    }
                    _ => json!({ "chat_id": "1234567890123456789_9234567890123456789" }),
                };
                Message::Text(json!({ "op": op, "d": d }).to_string().into())
            }
        };
        use futures::SinkExt as _;
        alice
            .socket
            .as_mut()
            .unwrap()
            .send(frame)
            .await
            .unwrap_or_else(|e| panic!("seed {seed}, round {round}: {e}"));
        // Stay within the frame budget (60 at once, 20 a second): 15 frames and a heartbeat,
        // then the rest of a second's worth of time.
        if round % 15 == 14 {
            alice.send(json!({ "op": "heartbeat" })).await;
            alice.expect_op_allowing_errors("heartbeat_ack").await;
            tokio::time::sleep(std::time::Duration::from_millis(800)).await;
        }
    }
    alice.send(json!({ "op": "heartbeat" })).await;
    alice.expect_op_allowing_errors("heartbeat_ack").await;
    // The session still works end to end.
    let (status, _) = alice.get("/api/users/me").await;
    assert_eq!(status, StatusCode::OK, "seed {seed}");
    system.stop().await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_disconnected_and_others_carry_on() {
    use astral_proto::messaging::{
        SendMessageRequest, messaging_service_client::MessagingServiceClient,
    };
    let system = System::all_in_one().await;
    // Eight senders in one group (each within their own send budget), bob listening.
    let alice = User::register(&system.base, "alice").await;
    let bob = User::register(&system.base, "bob").await;
    let mut senders = vec![];
    for _ in 0..7 {
        let sender = User::register(&system.base, "sender").await;
        alice.befriend(&sender).await;
        senders.push(sender);
    }
    alice.befriend(&bob).await;
    let members: Vec<&User> = senders.iter().chain([&bob]).collect();
    let chat_id = support::id(&alice.create_group("firehose", &members).await);
    senders.push(alice);
    let mut stalled = bob.on(&system.base);
    stalled.connect().await;
    stalled.subscribe(&chat_id).await;
    let mut reading = bob.on(&system.base);
    reading.connect().await;

    // Big messages, straight to the messaging service, while the stalled client reads
    // nothing: socket buffers fill, then its queue, and the gateway lets it go.
    let mut messaging = MessagingServiceClient::new(system.channel(Role::Gateway, "messaging"));
    // 4,000 characters of four bytes each: about 16 KiB per event.
    let content = "😀".repeat(4000);
    const SENT: usize = 800;
    for batch in 0..SENT / 50 {
        let sender = &senders[batch % senders.len()];
        for _ in 0..50 {
            let request = SendMessageRequest {
                chat_id: chat_id.clone(),
                content: content.clone(),
                ..Default::default()
            };
            messaging
                .send_message(for_user(request, &sender.token))
                .await
                .unwrap();
        }
        // The reading connection keeps up the whole time (and keeps its heartbeat).
        for _ in 0..50 {
            assert_eq!(
                reading.expect_event("message.created").await["chat_id"],
                chat_id.as_str()
            );
        }
        reading.send(json!({ "op": "heartbeat" })).await;
        reading.expect_op("heartbeat_ack").await;
        // The stalled client still writes its heartbeats (it only never reads), until the
        // gateway has let it go.
        let heartbeat = Message::Text(json!({ "op": "heartbeat" }).to_string().into());
        if futures::SinkExt::send(stalled.socket.as_mut().unwrap(), heartbeat)
            .await
            .is_err()
        {
            break;
        }
    }
    // Now the stalled client reads: what was buffered, then the end of the connection.
    let (received, ending) = read_to_end(&mut stalled).await;
    assert!(
        received < SENT,
        "it was cut off ({received} of {SENT} events), not served without end"
    );
    assert!(
        matches!(ending, None | Some(4008)),
        "closed as too slow, or dropped: {ending:?}"
    );
    reading.send(json!({ "op": "heartbeat" })).await;
    reading.expect_op("heartbeat_ack").await;
    system.stop().await;
}

/// Reads a socket to its end: the events received, and the close code if it closed cleanly.
async fn read_to_end(user: &mut User) -> (usize, Option<u16>) {
    use futures::StreamExt as _;
    let socket = user.socket.as_mut().unwrap();
    let mut events = 0;
    loop {
        match tokio::time::timeout(support::WAIT, socket.next())
            .await
            .expect("the connection ends")
        {
            Some(Ok(Message::Close(frame))) => return (events, frame.map(|f| u16::from(f.code))),
            Some(Ok(Message::Text(text))) if text.contains(r#""op":"event""#) => events += 1,
            Some(Ok(_)) => {}
            None | Some(Err(_)) => return (events, None),
        }
    }
}

/// The auth service stopped: users whose tokens are still good reconnect (the token names
/// them, so `ready` does not ask auth) and keep sending (tokens verify locally).
#[tokio::test]
async fn with_auth_stopped_identified_users_reconnect_and_send() {
    let Some(mut system) = System::distributed().await else {
        return;
    };
    let (alice, mut bob, chat_id) =
        support::user::friends_with_a_chat(&system.base, &system.base).await;
    system
        .signal("astral-auth", "STOP", std::time::Duration::ZERO)
        .await;
    let ready = bob.connect().await;
    assert_eq!(ready["user"]["username"], bob.name.as_str());
    bob.subscribe(&chat_id).await;
    alice
        .send_message(&chat_id, "auth is down, chat is not")
        .await;
    let created = bob.expect_event("message.created").await;
    assert_eq!(created["content"], "auth is down, chat is not");
    system
        .signal("astral-auth", "CONT", std::time::Duration::ZERO)
        .await;
    system.stop().await;
}

async fn the_web_client_is_served_compressed_with_validators(system: &System) {
    use std::io::Read as _;
    let http = reqwest::Client::new();
    let get = |path: &str, headers: &[(&str, &str)]| {
        let mut request = http.get(format!("{}{path}", system.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send()
    };
    let header = |response: &reqwest::Response, name: &str| {
        response
            .headers()
            .get(name)
            .map(|value| value.to_str().unwrap().to_owned())
    };
    let plain = get("/js/main.js", &[("accept-encoding", "identity")])
        .await
        .unwrap();
    assert_eq!(plain.status(), StatusCode::OK);
    assert_eq!(header(&plain, "content-encoding"), None);
    let etag = header(&plain, "etag").unwrap();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "a strong ETag: {etag}"
    );
    assert_eq!(header(&plain, "cache-control").as_deref(), Some("no-cache"));
    assert_eq!(header(&plain, "vary").as_deref(), Some("Accept-Encoding"));
    let source = plain.bytes().await.unwrap();

    let br = get("/js/main.js", &[("accept-encoding", "gzip, deflate, br")])
        .await
        .unwrap();
    assert_eq!(header(&br, "content-encoding").as_deref(), Some("br"));
    let br_etag = header(&br, "etag").unwrap();
    assert_ne!(br_etag, etag, "each encoding has its own strong validator");
    let packed = br.bytes().await.unwrap();
    assert!(packed.len() < source.len());
    let mut unpacked = Vec::new();
    brotli::Decompressor::new(&packed[..], 4096)
        .read_to_end(&mut unpacked)
        .unwrap();
    assert_eq!(unpacked, source);

    let gz = get("/app.css", &[("accept-encoding", "gzip, br;q=0")])
        .await
        .unwrap();
    assert_eq!(header(&gz, "content-encoding").as_deref(), Some("gzip"));
    let packed = gz.bytes().await.unwrap();
    let mut unpacked = Vec::new();
    flate2::read::GzDecoder::new(&packed[..])
        .read_to_end(&mut unpacked)
        .unwrap();
    let css = get("/app.css", &[]).await.unwrap().bytes().await.unwrap();
    assert_eq!(unpacked, css);

    // A browser holding the file asks with its ETag and gets 304, with no body.
    for held in [&etag, &br_etag] {
        let again = get(
            "/js/main.js",
            &[("accept-encoding", "br"), ("if-none-match", held)],
        )
        .await
        .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{held}");
        assert!(again.bytes().await.unwrap().is_empty());
    }
    let stale = get("/js/main.js", &[("if-none-match", "\"0000\"")])
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::OK);

    // Asked for by its version, a file may be kept for a year; by another, it may not.
    let version = etag.trim_matches('"');
    let pinned = get(&format!("/js/main.js?v={version}"), &[]).await.unwrap();
    assert_eq!(
        header(&pinned, "cache-control").as_deref(),
        Some("public, max-age=31536000, immutable")
    );
    let other = get("/js/main.js?v=0123", &[]).await.unwrap();
    assert_eq!(header(&other, "cache-control").as_deref(), Some("no-cache"));
    assert_eq!(
        get("/../Cargo.toml", &[]).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    // The service worker carries the version of the whole client, filled in by the gateway.
    let worker = get("/sw.js", &[]).await.unwrap().text().await.unwrap();
    assert!(!worker.contains("__WEB_VERSION__"));
    let version = worker
        .split("const VERSION = '")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap();
    assert_eq!(version.len(), 24, "{version}");
    assert!(version.chars().all(|c| c.is_ascii_hexdigit()));
}
