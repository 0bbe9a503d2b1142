//! Benchmark: sends while NATS is down (issue 14: "writes never wait for the bus").
//!
//! `cargo run --release --example bus_outage -- [outage seconds] [rate]`
//!
//! Starts a NATS server of its own and the three services in this process (on PostgreSQL,
//! like `send_throughput`), sends at a fixed rate (messages a second over 100 direct chats,
//! an open loop: latency counted from when each message was due) for 10 s, stops NATS for
//! the outage, starts it again and sends for 10 s more. A subscriber counts every event on
//! `chat.*`. Reports the send rate and latency before, during and after the outage, and how
//! long after NATS returned every message's event had arrived.
//! Needs PostgreSQL (127.0.0.1:5432) and `/usr/sbin/nats-server`.

#![allow(clippy::unwrap_used)] // a benchmark fails loudly

#[path = "support/mod.rs"]
mod support;

use astral_common::guard::for_user;
use astral_common::testing::TestDatabase;
use astral_common::{EventBus, grpc::channel};
use astral_proto::auth::{RegisterRequest, auth_service_client::AuthServiceClient};
use astral_proto::messaging::messaging_service_client::MessagingServiceClient;
use astral_proto::messaging::{OpenDirectChatRequest, SendMessageRequest};
use astral_proto::social::{
    FriendRequestAction, SendFriendRequestRequest, social_service_client::SocialServiceClient,
};
use futures::StreamExt as _;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CHATS: usize = 100;
const BEFORE: Duration = Duration::from_secs(10);
const AFTER: Duration = Duration::from_secs(10);

fn start_nats(port: u16) -> std::process::Child {
    std::process::Command::new("/usr/sbin/nats-server")
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start /usr/sbin/nats-server")
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let outage = Duration::from_secs(args.next().map_or(60, |a| a.parse().unwrap()));
    let rate: f64 = args.next().map_or(500.0, |a| a.parse().unwrap());

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut nats = start_nats(port);
    let url = format!("nats://127.0.0.1:{port}");
    let databases = [
        TestDatabase::postgres().await.unwrap(),
        TestDatabase::postgres().await.unwrap(),
        TestDatabase::postgres().await.unwrap(),
    ];
    let bus = EventBus::nats(&url).await.unwrap();
    let (auth_url, social_url, messaging_url) = support::start_services(&databases, bus).await;
    let auth = AuthServiceClient::new(channel(&auth_url, None).unwrap());
    let mut social = SocialServiceClient::new(channel(&social_url, None).unwrap());
    let messaging = MessagingServiceClient::new(channel(&messaging_url, None).unwrap());

    // When each message's event first came (by message id), to a subscriber that reconnects
    // as gateways do.
    let seen = Arc::new(Mutex::new(HashMap::<String, Instant>::new()));
    let listener = EventBus::nats(&url).await.unwrap();
    let mut events = listener.subscribe("chat.*".into()).await.unwrap();
    let counted = seen.clone();
    tokio::spawn(async move {
        while let Some(delivery) = events.next().await {
            let Ok(event) =
                <astral_proto::events::Event as prost::Message>::decode(delivery.payload)
            else {
                continue;
            };
            if let Some(astral_proto::events::event::Kind::MessageCreated(created)) = event.kind
                && let Some(message) = created.message
            {
                counted
                    .lock()
                    .unwrap()
                    .entry(message.id)
                    .or_insert_with(Instant::now);
            }
        }
    });

    let mut chats = Vec::new();
    for n in 0..CHATS {
        let register = |name: String| {
            let request = RegisterRequest {
                username: name,
                password: "correct horse".into(),
                user_agent: "bench".into(),
                client_addr: "127.0.0.1".into(),
            };
            let mut auth = auth.clone();
            async move { auth.register(request).await.unwrap().into_inner() }
        };
        let (a, b) = (
            register(format!("outage_a{n}")).await,
            register(format!("outage_b{n}")).await,
        );
        let sent = social
            .send_friend_request(for_user(
                SendFriendRequestRequest {
                    username: b.user.clone().unwrap().username,
                },
                &a.access_token,
            ))
            .await
            .unwrap();
        let request_id = sent.into_inner().request.unwrap().id;
        social
            .accept_friend_request(for_user(
                FriendRequestAction { request_id },
                &b.access_token,
            ))
            .await
            .unwrap();
        let request = OpenDirectChatRequest {
            user_id: b.user.clone().unwrap().id,
        };
        let chat = messaging
            .clone()
            .open_direct_chat(for_user(request, &a.access_token))
            .await
            .unwrap()
            .into_inner();
        chats.push((a.access_token, chat.id));
    }

    let begin = Instant::now();
    let down_at = begin + BEFORE;
    let up_at = down_at + outage;
    let end = up_at + AFTER;
    let gap = Duration::from_secs_f64(CHATS as f64 / rate);
    let run = astral_common::ids::new_id();
    let senders = chats.into_iter().enumerate().map(|(i, (author, chat_id))| {
        let mut client = messaging.clone();
        tokio::spawn(async move {
            // (when due, latency, message id) of each acknowledged send.
            let mut sent = Vec::new();
            let first = begin + gap.mul_f64(i as f64 / CHATS as f64);
            for n in 0.. {
                let due = first + gap * n;
                if due >= end {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
                let request = SendMessageRequest {
                    chat_id: chat_id.clone(),
                    content: format!("outage message {n}"),
                    nonce: format!("outage-{run}-{n}"),
                    reply_to_id: String::new(),
                    attachment_ids: Vec::new(),
                };
                let message = client
                    .send_message(for_user(request, &author))
                    .await
                    .unwrap()
                    .into_inner();
                sent.push((due, due.elapsed(), message.id));
            }
            sent
        })
    });
    let stopping = tokio::spawn(async move {
        tokio::time::sleep_until(down_at.into()).await;
        nats.kill().unwrap();
        nats.wait().unwrap();
        println!("NATS stopped for {outage:?}");
        tokio::time::sleep_until(up_at.into()).await;
        start_nats(port)
    });
    let mut sent = Vec::new();
    for sender in futures::future::join_all(senders).await {
        sent.extend(sender.unwrap());
    }
    let mut nats = stopping.await.unwrap();

    for (name, from, to) in [
        ("before", begin, down_at),
        ("during", down_at, up_at),
        ("after", up_at, end),
    ] {
        let mut latencies: Vec<Duration> = sent
            .iter()
            .filter(|(due, _, _)| *due >= from && *due < to)
            .map(|(_, took, _)| *took)
            .collect();
        latencies.sort();
        let at = |q: f64| {
            latencies[((latencies.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0
        };
        println!(
            "{name:6} the outage: {} sends in {:.0} s = {:.0} msg/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            latencies.len(),
            (to - from).as_secs_f64(),
            latencies.len() as f64 / (to - from).as_secs_f64(),
            at(0.5),
            at(0.99),
            at(1.0),
        );
    }
    // Every message's event, however long it takes (at most a minute).
    let waited = Instant::now();
    while seen.lock().unwrap().len() < sent.len() && waited.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = seen.lock().unwrap();
    let backlog = sent
        .iter()
        .filter(|(due, _, _)| *due < up_at)
        .filter_map(|(_, _, id)| seen.get(id))
        .max()
        .map_or(0.0, |last| last.duration_since(up_at).as_secs_f64());
    let missing = sent
        .iter()
        .filter(|(_, _, id)| !seen.contains_key(id))
        .count();
    println!(
        "events received: {} of {} messages ({missing} never came); every event of a message sent before NATS returned had come {backlog:.2} s after it returned",
        seen.len(),
        sent.len(),
    );
    nats.kill().unwrap();
    nats.wait().unwrap();
}
