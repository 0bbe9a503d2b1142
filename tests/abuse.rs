//! Abuse resistance (issue 13) through the public API, in both run modes: every
//! state-changing route has a per-user budget (429 with Retry-After past it), held across
//! gateways and replicas; a user has at most 20 reactions on a message; typing is refused
//! where sending is; text that disguises itself is refused.

#![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap does

mod support;

use futures::StreamExt as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Instant;
use support::system::Distributed;
use support::{System, User};

in_both_modes!(
    every_state_changing_route_has_a_per_user_budget,
    a_user_has_at_most_twenty_reactions_on_a_message,
    typing_is_refused_where_sending_is,
    text_that_disguises_itself_is_refused,
);

/// A route's budget as a flood sees it.
struct Budget {
    requests: usize,
    /// One request comes back every so many milliseconds.
    refill_ms: u128,
    /// What leases a replica took but was not asked to spend (a flood may fall this short).
    unspent: usize,
}

/// One flood: `budget + 20` requests at once (20 in flight) of `method path` with a body;
/// checks that `budget` pass (plus what refilled while the flood ran, at one per
/// `refill_ms`; minus `unspent`, what leases a replica took but was not asked to spend) and
/// the rest get 429 with a Retry-After.
async fn flood(
    user: &User,
    bases: &[String],
    method: Method,
    path: &str,
    body: impl Fn(usize) -> Option<Value>,
    budget: Budget,
) {
    let Budget {
        requests: budget,
        refill_ms,
        unspent,
    } = budget;
    let count = budget + 20;
    let http = reqwest::Client::new();
    let started = Instant::now();
    let answers: Vec<(StatusCode, Option<String>)> = futures::stream::iter(0..count)
        .map(|n| {
            let base = &bases[n % bases.len()];
            let mut request = http
                .request(method.clone(), format!("{base}/api{path}"))
                .bearer_auth(&user.token);
            if let Some(body) = body(n) {
                request = request.json(&body);
            }
            async move {
                let response = request.send().await.unwrap();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned());
                (response.status(), retry_after)
            }
        })
        .buffer_unordered(20)
        .collect()
        .await;
    let refilled = usize::try_from(started.elapsed().as_millis() / refill_ms).unwrap() + 1;
    let passed = answers
        .iter()
        .filter(|(status, _)| *status != StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(
        (budget - unspent..=budget + refilled).contains(&passed),
        "{method} {path}: {passed} of {count} passed, budget {budget} (+{refilled}): {answers:?}"
    );
    for (status, retry_after) in &answers {
        assert_ne!(
            *status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{method} {path}"
        );
        if *status == StatusCode::TOO_MANY_REQUESTS {
            let seconds: u64 = retry_after.as_deref().unwrap().parse().unwrap();
            assert!(seconds >= 1, "{method} {path}: Retry-After {seconds}");
        }
    }
}

/// What a replica may lease of a budget and not be asked to spend by the end of a flood
/// (none in the all-in-one: it counts in memory, call by call).
fn unspent(system: &System, budget: usize) -> usize {
    if system.data_dir().is_some() || budget < 50 {
        0
    } else {
        budget / 10
    }
}

async fn every_state_changing_route_has_a_per_user_budget(system: &System) {
    let bases = std::slice::from_ref(&system.base);
    let (alice, bob, chat) = support::user::friends_with_a_chat(&system.base, &system.base).await;
    let message = support::id(&alice.send_message(&chat, "hello").await);
    let messages = format!("/chats/{chat}/messages/{message}");
    let edit = |n: usize| Some(json!({ "content": format!("edit {n}") }));
    flood(
        &alice,
        bases,
        Method::PATCH,
        &messages,
        edit,
        Budget {
            requests: 60,
            refill_ms: 1000,
            unspent: unspent(system, 60),
        },
    )
    .await;
    let reaction =
        |n: usize| Some(json!({ "emoji": if n.is_multiple_of(2) { "👍" } else { "❤️" } }));
    flood(
        &bob,
        bases,
        Method::POST,
        &format!("{messages}/reactions"),
        reaction,
        Budget {
            requests: 60,
            refill_ms: 1000,
            unspent: unspent(system, 60),
        },
    )
    .await;
    let read = |_| Some(json!({ "seq": 1 }));
    flood(
        &bob,
        bases,
        Method::POST,
        &format!("/chats/{chat}/read"),
        read,
        Budget {
            requests: 300,
            refill_ms: 200,
            unspent: unspent(system, 300),
        },
    )
    .await;
    let group = |n: usize| Some(json!({ "name": format!("group {n}"), "member_ids": [] }));
    flood(
        &alice,
        bases,
        Method::POST,
        "/chats",
        group,
        Budget {
            requests: 10,
            refill_ms: 6000,
            unspent: unspent(system, 10),
        },
    )
    .await;
    let carol = User::register(&system.base, "carol").await;
    let request = |_| Some(json!({ "username": carol.name }));
    flood(
        &bob,
        bases,
        Method::POST,
        "/friends/requests",
        request,
        Budget {
            requests: 20,
            refill_ms: 3000,
            unspent: unspent(system, 20),
        },
    )
    .await;
    let block = |_| Some(json!({ "user_id": carol.id }));
    flood(
        &alice,
        bases,
        Method::POST,
        "/blocks",
        block,
        Budget {
            requests: 30,
            refill_ms: 2000,
            unspent: unspent(system, 30),
        },
    )
    .await;
    let password = |_| {
        Some(json!({ "current_password": "a wrong guess", "new_password": "another password" }))
    };
    flood(
        &carol,
        bases,
        Method::POST,
        "/users/me/password",
        password,
        Budget {
            requests: 5,
            refill_ms: 120_000,
            unspent: unspent(system, 5),
        },
    )
    .await;
    // Typing, over the WebSocket: 30 a minute, then an error frame each.
    let mut typist = alice.on(&system.base);
    typist.connect().await;
    for _ in 0..40 {
        typist
            .send(json!({ "op": "typing", "d": { "chat_id": chat } }))
            .await;
    }
    typist.send(json!({ "op": "heartbeat" })).await;
    let mut limited = 0;
    loop {
        let frame = typist.next_frame().await;
        match frame["op"].as_str() {
            Some("heartbeat_ack") => break,
            Some("error") => {
                assert_eq!(frame["d"]["code"], "rate_limited", "{frame}");
                limited += 1;
            }
            _ => {}
        }
    }
    assert!(
        (8..=10).contains(&limited),
        "{limited} of 40 typing frames refused"
    );
    // Budgets are per user: bob's floods left alice's reactions alone.
    let (status, _) = alice
        .post(
            &format!("/api{messages}/reactions"),
            json!({ "emoji": "🎉" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

/// Spread over two gateways and two messaging replicas, a user's edits still share one budget.
#[tokio::test]
async fn budgets_hold_across_gateways_and_replicas() {
    let Some(system) = System::distributed_with(Distributed {
        gateways: 2,
        messaging_replicas: 2,
        ..Distributed::default()
    })
    .await
    else {
        return;
    };
    let (alice, _bob, chat) = support::user::friends_with_a_chat(&system.base, &system.base).await;
    let message = alice.send_message(&chat, "hello").await;
    let path = format!("/chats/{chat}/messages/{}", support::id(&message));
    let edit = |n: usize| Some(json!({ "content": format!("edit {n}") }));
    flood(
        &alice,
        &system.bases,
        Method::PATCH,
        &path,
        edit,
        Budget {
            requests: 60,
            refill_ms: 1000,
            unspent: 2 * 60 / 10,
        },
    )
    .await;
    system.stop().await;
}

async fn a_user_has_at_most_twenty_reactions_on_a_message(system: &System) {
    let (alice, bob, chat) = support::user::friends_with_a_chat(&system.base, &system.base).await;
    let message = alice.send_message(&chat, "react to me").await;
    let path = format!(
        "/api/chats/{chat}/messages/{}/reactions",
        message["id"].as_str().unwrap()
    );
    let emoji: Vec<String> = ('😀'..='😙').map(String::from).collect();
    assert!(emoji.len() > 21);
    for (n, e) in emoji.iter().take(20).enumerate() {
        let (status, body) = bob.post(&path, json!({ "emoji": e })).await;
        assert_eq!(status, StatusCode::OK, "reaction {n}: {body}");
    }
    let (status, body) = bob.post(&path, json!({ "emoji": emoji[20] })).await;
    support::assert_error(status, &body, StatusCode::CONFLICT);
    // Taking one back makes room; someone else's reactions are their own.
    let (status, _) = bob.post(&path, json!({ "emoji": emoji[0] })).await;
    assert_eq!(status, StatusCode::OK);
    let (status, reacted) = bob.post(&path, json!({ "emoji": emoji[20] })).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = alice.post(&path, json!({ "emoji": emoji[21] })).await;
    assert_eq!(status, StatusCode::OK);
    let bobs = reacted["reactions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["user_ids"].as_array().unwrap().contains(&json!(bob.id)))
        .count();
    assert_eq!(bobs, 20);
}

/// Once they are no longer friends, a direct chat is read-only: typing into it is refused
/// like a send, and the other side sees nothing.
async fn typing_is_refused_where_sending_is(system: &System) {
    let (mut alice, mut bob, chat) =
        support::user::friends_with_a_chat(&system.base, &system.base).await;
    alice.connect().await;
    bob.connect().await;
    bob.subscribe(&chat).await;
    alice.start_typing(&chat).await;
    assert_eq!(
        bob.expect_event("typing.started").await["user"]["id"],
        alice.id.as_str()
    );
    bob.unfriend(&alice).await;
    let (status, _) = alice
        .try_send_message(&chat, json!({ "content": "still there?" }))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    alice.start_typing(&chat).await;
    let refused = alice.expect_op_allowing_errors("error").await;
    assert_eq!(refused["d"]["code"], "forbidden", "{refused}");
    // Bob's next frame is his own marker's answer, not alice typing.
    bob.send(json!({ "op": "unsubscribe", "d": { "chat_id": chat } }))
        .await;
    loop {
        let frame = bob.next_frame().await;
        assert_ne!(frame["t"], "typing.started", "{frame}");
        if frame["op"] == "unsubscribed" {
            break;
        }
    }
}

async fn text_that_disguises_itself_is_refused(system: &System) {
    let (alice, _bob, chat) = support::user::friends_with_a_chat(&system.base, &system.base).await;
    let messages = format!("/api/chats/{chat}/messages");
    for content in [
        "invoice\u{202E}fdp.exe",
        "\u{200B}\u{200D}",
        "\u{3164}",
        " \u{2800} ",
    ] {
        let (status, body) = alice.post(&messages, json!({ "content": content })).await;
        support::assert_error(status, &body, StatusCode::BAD_REQUEST);
    }
    for name in ["\u{202E}puorg", "\u{200B}"] {
        let (status, body) = alice
            .post("/api/chats", json!({ "name": name, "member_ids": [] }))
            .await;
        support::assert_error(status, &body, StatusCode::BAD_REQUEST);
    }
    let (status, _) = alice
        .post(&messages, json!({ "content": "שלום, world 👩\u{200D}💻" }))
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

/// Two replicas counting one user's budget in one database: calls spread over both all pass
/// while the budget lasts, and together they never pass more than it (leases are counted
/// when taken, and a replica asks for one slice at a time, so none is stranded by a crowd).
#[tokio::test]
async fn replicas_share_a_budget_without_exceeding_or_stranding_it() {
    use astral_common::ratelimit::{self, Limited, Rate};
    use astral_common::testing::{MigratedDatabase, TestDatabase};
    let postgres = TestDatabase::postgres().await.unwrap();
    let MigratedDatabase { database, .. } =
        MigratedDatabase::on("postgres", postgres, &astral_messaging::MIGRATOR).await;
    let replicas = [
        ratelimit::for_database(&database.url).await.unwrap(),
        ratelimit::for_database(&database.url).await.unwrap(),
    ];
    let send = Rate::per_seconds(100, 5);
    let burst = async |calls: usize| {
        let takes = (0..calls).map(|n| replicas[n % 2].take(7, "SendMessage", send));
        futures::future::join_all(takes).await
    };
    let started = Instant::now();
    let first = burst(80).await;
    assert!(
        first.iter().all(Result::is_ok),
        "within the budget: {first:?}"
    );
    let second = burst(120).await;
    let refilled = usize::try_from(started.elapsed().as_millis() / 50).unwrap() + 1;
    let passed = 80 + second.iter().filter(|r| r.is_ok()).count();
    assert!(
        (100 - 2 * 9..=100 + refilled).contains(&passed),
        "{passed} passed of a budget of 100 (+{refilled} refilled)"
    );
    assert!(
        second
            .iter()
            .all(|r| matches!(r, Ok(()) | Err(Limited::Wait(_)))),
        "{second:?}"
    );
}
