//! Benchmark: resident memory per idle, identified WebSocket connection on a gateway, and
//! the time one event takes to reach all of them.
//!
//! `cargo build --release --workspace --bins --examples`, then
//! `target/release/examples/connection_memory [gateways] [connections per gateway]`
//! (defaults: 1 gateway, 15,000 connections; `4 12500` is 50,000 over four gateways).
//!
//! The benchmark runs the three services in its process (PostgreSQL, NATS), starts each
//! gateway as its own `astral-gateway` process, and one client process per gateway (a
//! process may hold at most 20,000 open files here), whose sockets are bound to their own
//! loopback source address (127.0.0.2 and up) so that no address runs out of ephemeral
//! ports. Each user holds 20 connections per gateway, the most a gateway allows.

#![allow(clippy::unwrap_used)] // a benchmark fails loudly

#[path = "support/mod.rs"]
mod support;

use astral_common::EventBus;
use astral_common::testing::{TempDir, TestDatabase, nats_server};
use astral_proto::auth::{RegisterRequest, auth_service_client::AuthServiceClient};
use astral_proto::events::{Event, SessionEnded, event::Kind};
use futures::{SinkExt as _, StreamExt as _};
use prost::Message as _;
use std::io::{BufRead as _, Write as _};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_tungstenite::tungstenite::Message;

const PER_USER: usize = 20;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--client") {
        return client(&args[1..]);
    }
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(coordinator(&args));
}

async fn coordinator(args: &[String]) {
    let gateways: usize = args.first().map_or(1, |a| a.parse().unwrap());
    let per_gateway: usize = args.get(1).map_or(15_000, |a| a.parse().unwrap());
    let databases = [
        TestDatabase::postgres().await.unwrap(),
        TestDatabase::postgres().await.unwrap(),
        TestDatabase::postgres().await.unwrap(),
    ];
    let nats = nats_server();
    let (auth_url, social_url, messaging_url) =
        support::start_services(&databases, EventBus::nats(&nats).await.unwrap()).await;

    let users = per_gateway.div_ceil(PER_USER);
    eprintln!("registering {users} users…");
    let auth = AuthServiceClient::new(astral_common::grpc::channel(&auth_url, None).unwrap());
    let registrations = (0..users).map(|n| {
        let mut auth = auth.clone();
        async move {
            let request = RegisterRequest {
                username: format!("conn_{n}"),
                password: "correct horse".into(),
                user_agent: "bench".into(),
                client_addr: "127.0.0.1".into(),
            };
            let answer = auth.register(request).await.unwrap().into_inner();
            (answer.user.unwrap().id, answer.access_token)
        }
    });
    let accounts = futures::stream::iter(registrations)
        .buffer_unordered(4)
        .collect::<Vec<_>>()
        .await;
    let dir = TempDir::new();
    let tokens = dir.0.join("tokens");
    std::fs::write(
        &tokens,
        accounts
            .iter()
            .map(|(_, token)| token.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();

    let binary = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("astral-gateway");
    let mut gateway_processes = Vec::new();
    let mut clients = Vec::new();
    for g in 0..gateways {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let gateway = Command::new(&binary)
            .env("ASTRAL_LISTEN", format!("127.0.0.1:{port}"))
            .env("ASTRAL_AUTH_URL", &auth_url)
            .env("ASTRAL_SOCIAL_URL", &social_url)
            .env("ASTRAL_MESSAGING_URL", &messaging_url)
            .env("NATS_URL", &nats)
            .env("RUST_LOG", "warn")
            // One client process, from one address, opens all of this gateway's connections
            // at once: above the default caps (10,000 in all, 256 per address, 16 waiting
            // to identify), which are for real clients.
            .env("ASTRAL_MAX_CONNECTIONS", (per_gateway + 1000).to_string())
            .env(
                "ASTRAL_MAX_CONNECTIONS_PER_ADDRESS",
                (per_gateway + 1000).to_string(),
            )
            .env(
                "ASTRAL_MAX_UNIDENTIFIED_PER_ADDRESS",
                per_gateway.to_string(),
            )
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_ready(port).await;
        let idle_rss = rss_kib(gateway.id());
        let client = Command::new(std::env::current_exe().unwrap())
            .args([
                "--client",
                &format!("ws://127.0.0.1:{port}/ws"),
                &format!("127.0.0.{}", g + 2),
                &per_gateway.to_string(),
            ])
            .arg(&tokens)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        gateway_processes.push((gateway, idle_rss));
        clients.push(client);
    }
    // Each client prints "connected N" once all its connections are identified.
    let mut lines: Vec<_> = clients
        .iter_mut()
        .map(|c| std::io::BufReader::new(c.stdout.take().unwrap()).lines())
        .collect();
    for (g, lines) in lines.iter_mut().enumerate() {
        let line = lines.next().unwrap().unwrap();
        eprintln!("gateway {g}: {line}");
    }
    let mut total_delta = 0;
    for (g, (gateway, idle)) in gateway_processes.iter().enumerate() {
        let rss = rss_kib(gateway.id());
        total_delta += rss - idle;
        println!(
            "gateway {g}: RSS {idle} KiB idle, {rss} KiB with {per_gateway} connections = {:.2} KiB per connection",
            (rss - idle) as f64 / per_gateway as f64
        );
    }
    let connections = gateways * per_gateway;
    println!(
        "all gateways: {:.2} KiB per connection over {connections} connections",
        total_delta as f64 / connections as f64
    );

    // One event, published on every user's subject, reaches every connection.
    let bus = async_nats::connect(&nats).await.unwrap();
    let event = Event {
        id: "bench-event".into(),
        occurred_at_ms: 0,
        kind: Some(Kind::SessionEnded(SessionEnded {
            user_id: String::new(),
            session_id: "not-a-session".into(),
            revoked_at_ms: 0,
        })),
    };
    let payload = event.encode_to_vec();
    let published_at = now_us();
    for (user_id, _) in &accounts {
        bus.publish(format!("user.{user_id}"), payload.clone().into())
            .await
            .unwrap();
    }
    bus.flush().await.unwrap();
    let mut last = 0;
    for lines in &mut lines {
        // "received N at T"
        let line = lines.next().unwrap().unwrap();
        let at: u128 = line.rsplit(' ').next().unwrap().parse().unwrap();
        last = last.max(at);
    }
    println!(
        "one event to all {connections} connections: {:.1} ms",
        (last - published_at) as f64 / 1000.0
    );
    for (mut gateway, _) in gateway_processes {
        let _ = gateway.kill();
    }
    for mut client in clients {
        let _ = client.kill();
    }
}

async fn wait_ready(port: u16) {
    loop {
        if let Ok(response) = reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await
            && response.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn rss_kib(pid: u32) -> i64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn now_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros()
}

/// A client process: `count` connections to `url` from `source`, identified with the tokens
/// (20 each); prints "connected N", then "received N at <µs>" when the event reached all.
fn client(args: &[String]) {
    let (url, source, count, tokens) = (
        args[0].clone(),
        args[1].clone(),
        args[2].parse::<usize>().unwrap(),
        &args[3],
    );
    let tokens: Vec<String> = std::fs::read_to_string(tokens)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let received = Arc::new(AtomicUsize::new(0));
        let everyone = Arc::new(tokio::sync::Notify::new());
        let connected = Arc::new(AtomicUsize::new(0));
        let all_connected = Arc::new(tokio::sync::Notify::new());
        let limit = Arc::new(tokio::sync::Semaphore::new(64));
        for n in 0..count {
            let (url, source, token) = (url.clone(), source.clone(), tokens[n / PER_USER].clone());
            let (received, everyone, connected, all_connected, limit) = (received.clone(), everyone.clone(), connected.clone(), all_connected.clone(), limit.clone());
            tokio::spawn(async move {
                let permit = limit.acquire_owned().await.unwrap();
                let socket = tokio::net::TcpSocket::new_v4().unwrap();
                socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
                let stream = socket.connect(url.trim_start_matches("ws://").trim_end_matches("/ws").parse().unwrap()).await.unwrap();
                let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
                ws.next().await; // hello
                let identify = format!(r#"{{"op":"identify","d":{{"token":"{token}"}}}}"#);
                ws.send(Message::Text(identify.into())).await.unwrap();
                while let Some(Ok(message)) = ws.next().await {
                    if message.to_text().unwrap_or_default().contains(r#""op":"ready""#) {
                        break;
                    }
                }
                drop(permit);
                if connected.fetch_add(1, Ordering::SeqCst) + 1 == count {
                    all_connected.notify_one();
                }
                let mut heartbeat = tokio::time::interval(Duration::from_secs(20));
                loop {
                    tokio::select! {
                        _ = heartbeat.tick() => {
                            if ws.send(Message::Text(r#"{"op":"heartbeat"}"#.into())).await.is_err() { return; }
                        }
                        message = ws.next() => {
                            let Some(Ok(message)) = message else { return };
                            if message.to_text().unwrap_or_default().contains("not-a-session")
                                && received.fetch_add(1, Ordering::SeqCst) + 1 == count
                            {
                                everyone.notify_one();
                            }
                        }
                    }
                }
            });
        }
        all_connected.notified().await;
        println!("connected {count}");
        std::io::stdout().flush().unwrap();
        everyone.notified().await;
        println!("received {count} at {}", now_us());
        std::io::stdout().flush().unwrap();
        std::future::pending::<()>().await;
    });
}
