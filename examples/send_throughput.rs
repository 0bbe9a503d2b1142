//! Benchmark: messages sent through the messaging service's gRPC API, persisted in
//! PostgreSQL, events on NATS. 100 chats, one sender per chat; reports messages per second
//! and latency percentiles.
//!
//! `cargo run --release --example send_throughput -- [seconds] [chats] [rate]`
//!
//! Without a rate, each sender sends as fast as its answers come back (a closed loop: the
//! most the system takes). With a rate (messages a second, all chats together), each chat
//! sends on a fixed schedule (an open loop, as people send), and each latency is counted from
//! when the message was due, so a stall shows in the figures instead of slowing the senders.
//! Each kind of chat is measured after two seconds of warm-up.
//! Needs PostgreSQL (127.0.0.1:5432) and NATS (127.0.0.1:4222), like the tests.

#![allow(clippy::unwrap_used)] // a benchmark fails loudly

#[path = "support/mod.rs"]
mod support;

use astral_common::guard::for_user;
use astral_common::testing::{TestDatabase, nats_server};
use astral_common::{EventBus, grpc::channel};
use astral_proto::auth::{RegisterRequest, auth_service_client::AuthServiceClient};
use astral_proto::messaging::messaging_service_client::MessagingServiceClient;
use astral_proto::messaging::{CreateGroupChatRequest, OpenDirectChatRequest, SendMessageRequest};
use astral_proto::social::{
    FriendRequestAction, SendFriendRequestRequest, social_service_client::SocialServiceClient,
};
use std::time::{Duration, Instant};

/// Sends before the measurement starts, for each kind of chat.
const WARM_UP: Duration = Duration::from_secs(2);

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().map_or(10, |a| a.parse().unwrap());
    let chats: usize = args.next().map_or(100, |a| a.parse().unwrap());
    let rate: Option<f64> = args.next().map(|a| a.parse().unwrap());

    let databases = [
        TestDatabase::postgres().await.unwrap(),
        TestDatabase::postgres().await.unwrap(),
        TestDatabase::postgres().await.unwrap(),
    ];
    let bus = EventBus::nats(&nats_server()).await.unwrap();
    let (auth_url, social_url, messaging_url) = support::start_services(&databases, bus).await;
    let auth = AuthServiceClient::new(channel(&auth_url, None).unwrap());
    let mut social = SocialServiceClient::new(channel(&social_url, None).unwrap());
    let messaging = MessagingServiceClient::new(channel(&messaging_url, None).unwrap());

    // One pair of friends per chat.
    let mut pairs = Vec::new();
    for n in 0..chats {
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
            register(format!("bench_a{n}")).await,
            register(format!("bench_b{n}")).await,
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
        pairs.push((a, b));
    }

    for kind in ["direct", "group"] {
        let mut chat_ids = Vec::new();
        for (a, b) in &pairs {
            let mut client = messaging.clone();
            let chat = if kind == "direct" {
                let request = OpenDirectChatRequest {
                    user_id: b.user.clone().unwrap().id,
                };
                client
                    .open_direct_chat(for_user(request, &a.access_token))
                    .await
            } else {
                let request = CreateGroupChatRequest {
                    name: "bench".into(),
                    member_ids: vec![b.user.clone().unwrap().id],
                };
                client
                    .create_group_chat(for_user(request, &a.access_token))
                    .await
            };
            chat_ids.push((a.access_token.clone(), chat.unwrap().into_inner().id));
        }
        let begin = Instant::now();
        // Measured after a warm-up (connections open, statements prepared, caches filled).
        let measured_from = begin + WARM_UP;
        let deadline = measured_from + Duration::from_secs(seconds);
        // Nonces of their own for each run: a retried nonce takes the slow path.
        let run = astral_common::ids::new_id();
        // With a rate: each chat's gap between messages, and the chats spread over it.
        let gap = rate.map(|rate| Duration::from_secs_f64(chats as f64 / rate));
        let senders = chat_ids
            .into_iter()
            .enumerate()
            .map(|(i, (author, chat_id))| {
                let mut client = messaging.clone();
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    let mut n = 0;
                    let first = gap.map(|gap| begin + gap.mul_f64(i as f64 / chats as f64));
                    loop {
                        let due = first.map(|first| first + gap.unwrap() * n);
                        if due.unwrap_or_else(Instant::now) >= deadline {
                            break;
                        }
                        if let Some(due) = due {
                            tokio::time::sleep_until(due.into()).await;
                        }
                        n += 1;
                        let request = SendMessageRequest {
                            chat_id: chat_id.clone(),
                            content: format!("benchmark message {n}"),
                            nonce: format!("bench-{run}-{n}"),
                            reply_to_id: String::new(),
                            attachment_ids: Vec::new(),
                        };
                        let start = due.unwrap_or_else(Instant::now);
                        client
                            .send_message(for_user(request, &author))
                            .await
                            .unwrap();
                        if start >= measured_from {
                            latencies.push(start.elapsed());
                        }
                    }
                    latencies
                })
            });
        let mut latencies: Vec<Duration> = Vec::new();
        for sender in futures::future::join_all(senders).await {
            latencies.extend(sender.unwrap());
        }
        let elapsed = measured_from.elapsed().as_secs_f64();
        latencies.sort();
        let at = |q: f64| {
            latencies[((latencies.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0
        };
        let offered = rate.map_or_else(
            || "as fast as answered".to_owned(),
            |rate| format!("offered {rate:.0} msg/s"),
        );
        println!(
            "{kind:6} chats: {chats} senders, {offered}: {} messages in {elapsed:.1} s = {:.0} msg/s; latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            latencies.len(),
            latencies.len() as f64 / elapsed,
            at(0.5),
            at(0.9),
            at(0.99),
            at(1.0),
        );
    }
}
