//! Benchmark: resident memory per idle, identified WebSocket connection on a gateway, the
//! time one event takes to reach all of them, and (with `storm`) a reconnect storm.
//!
//! `cargo build --release --workspace --bins --examples`, then
//! `target/release/examples/connection_memory [gateways] [connections per gateway] [storm]`
//! (defaults: 1 gateway, 15,000 connections; `4 12500` is 50,000 over four gateways).
//!
//! The benchmark runs the three services in its process (PostgreSQL, NATS), starts each
//! gateway as its own `astral-gateway` process, and one client process per gateway (a
//! process may hold at most 20,000 open files here), whose sockets are bound to their own
//! loopback source address (127.0.0.2 and up) so that no address runs out of ephemeral
//! ports. Each user holds 20 connections per gateway, the most a gateway allows.
//!
//! `storm`: after the fan-out, every gateway is killed (SIGKILL: its clients see their
//! sockets drop, as in a crash or an abrupt restart) and started again on the same port.
//! Every connection reconnects as the web client does (`web/js/socket.js`: full-jitter
//! exponential back-off, 0.5 s doubling up to 15 s; after a 1013 the gateway's
//! `retry_after_ms` plus that back-off). Reported: the time until every connection is
//! identified again, the attempts refused while the gateway was down, those deferred by its
//! admission control (close 1013), and errors (anything else: none expected).
//!
//! Profiling: `BENCH_GATEWAY_PREFIX="heaptrack -o /tmp/gw"` starts each gateway under that
//! command (its RSS figures are then the wrapper's); `BENCH_PAUSE_S=20` waits that long
//! before the fan-out, to attach `perf record -g -p <pid>` (the pids are printed).

#![allow(clippy::unwrap_used)] // a benchmark fails loudly

#[path = "support/mod.rs"]
mod support;

use astral_common::EventBus;
use astral_common::testing::{TempDir, TestDatabase, nats_server};
use astral_proto::auth::{RegisterRequest, auth_service_client::AuthServiceClient};
use astral_proto::events::{Event, SessionEnded, event::Kind};
use futures::{SinkExt as _, StreamExt as _};
use prost::Message as _;
use rand::Rng as _;
use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const PER_USER: usize = 20;
/// The web client's reconnect back-off (`web/js/socket.js`, `backoffMs`).
const BACKOFF_BASE_MS: f64 = 500.0;
const BACKOFF_CAP_MS: f64 = 15_000.0;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--client") {
        return client(&args[1..]);
    }
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(coordinator(&args));
}

/// Where the gateways find the services and the bus, and how many connections they take.
struct GatewaySetup {
    binary: PathBuf,
    auth_url: String,
    social_url: String,
    messaging_url: String,
    nats: String,
    per_gateway: usize,
}

impl GatewaySetup {
    /// Starts an `astral-gateway` on `port` and waits until it answers.
    async fn start(&self, port: u16) -> Child {
        let limit = (self.per_gateway + 1000).to_string();
        let prefix = std::env::var("BENCH_GATEWAY_PREFIX").unwrap_or_default();
        let mut command = prefix
            .split_whitespace()
            .chain([self.binary.to_str().unwrap()]);
        let gateway = Command::new(command.next().unwrap())
            .args(command)
            .env("ASTRAL_LISTEN", format!("127.0.0.1:{port}"))
            .env("ASTRAL_AUTH_URL", &self.auth_url)
            .env("ASTRAL_SOCIAL_URL", &self.social_url)
            .env("ASTRAL_MESSAGING_URL", &self.messaging_url)
            .env("NATS_URL", &self.nats)
            .env("RUST_LOG", "warn")
            // The services here are plaintext on loopback (the benchmark measures the
            // connections, not TLS): no secrets, as in development.
            .env("ASTRAL_INSECURE_DEV", "1")
            // One client process, from one address, opens all of this gateway's connections
            // at once: above the default caps (10,000 in all, 256 per address, 16 waiting
            // to identify), which are for real clients. Admission control (32 identifying at
            // once, 1,000 waiting) keeps its defaults.
            .env("ASTRAL_MAX_CONNECTIONS", &limit)
            .env("ASTRAL_MAX_CONNECTIONS_PER_ADDRESS", &limit)
            .env(
                "ASTRAL_MAX_UNIDENTIFIED_PER_ADDRESS",
                self.per_gateway.to_string(),
            )
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_ready(port).await;
        eprintln!("gateway on port {port}: pid {}", gateway.id());
        gateway
    }
}

async fn coordinator(args: &[String]) {
    let gateways: usize = args.first().map_or(1, |a| a.parse().unwrap());
    let per_gateway: usize = args.get(1).map_or(15_000, |a| a.parse().unwrap());
    let storm = args.get(2).map(String::as_str) == Some("storm");
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

    let accounts = register(&auth_url, users).await;
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

    let setup = GatewaySetup {
        binary: sibling("astral-gateway"),
        auth_url,
        social_url,
        messaging_url,
        nats: nats.clone(),
        per_gateway,
    };
    let mut gateway_processes = Vec::new();
    let mut clients = Vec::new();
    for g in 0..gateways {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let gateway = setup.start(port).await;
        let idle_rss = rss_kib(gateway.id());
        clients.push(start_client(port, g, per_gateway, &tokens));
        gateway_processes.push((gateway, idle_rss, port));
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
    for (g, (gateway, idle, _)) in gateway_processes.iter().enumerate() {
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

    if let Ok(pause) = std::env::var("BENCH_PAUSE_S") {
        eprintln!("pausing {pause} s before the fan-out…");
        tokio::time::sleep(Duration::from_secs(pause.parse().unwrap())).await;
    }
    fan_out(&nats, &accounts, &mut lines, connections).await;
    if storm {
        reconnect_storm(&setup, &mut gateway_processes, &mut lines, connections).await;
    }
    for (mut gateway, _, _) in gateway_processes {
        let _ = gateway.kill();
        let _ = gateway.wait();
    }
    for mut client in clients {
        let _ = client.kill();
        let _ = client.wait();
    }
}

/// Registers `users` accounts; their ids and access tokens.
async fn register(auth_url: &str, users: usize) -> Vec<(String, String)> {
    let auth = AuthServiceClient::new(astral_common::grpc::channel(auth_url, None).unwrap());
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
    futures::stream::iter(registrations)
        .buffer_unordered(4)
        .collect::<Vec<_>>()
        .await
}

/// A binary beside this example's folder (`target/release/<name>`).
fn sibling(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join(name)
}

/// The client process for gateway `g`, from source address 127.0.0.<g + 2>.
fn start_client(port: u16, g: usize, count: usize, tokens: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--client",
            &format!("ws://127.0.0.1:{port}/ws"),
            &format!("127.0.0.{}", g + 2),
            &count.to_string(),
        ])
        .arg(tokens)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

type Lines = std::io::Lines<std::io::BufReader<std::process::ChildStdout>>;

/// One event, published on every user's subject, reaches every connection.
async fn fan_out(
    nats: &str,
    accounts: &[(String, String)],
    lines: &mut [Lines],
    connections: usize,
) {
    let bus = async_nats::connect(nats).await.unwrap();
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
    for (user_id, _) in accounts {
        bus.publish(format!("user.{user_id}"), payload.clone().into())
            .await
            .unwrap();
    }
    bus.flush().await.unwrap();
    let mut last = 0;
    for lines in lines {
        // "received N at T"
        let line = lines.next().unwrap().unwrap();
        let at: u128 = line.rsplit(' ').next().unwrap().parse().unwrap();
        last = last.max(at);
    }
    println!(
        "one event to all {connections} connections: {:.1} ms",
        (last - published_at) as f64 / 1000.0
    );
}

/// Kills every gateway, starts each again on its port, and waits until every connection
/// is identified again.
async fn reconnect_storm(
    setup: &GatewaySetup,
    gateways: &mut [(Child, i64, u16)],
    lines: &mut [Lines],
    connections: usize,
) {
    let cpu_before = cpu_seconds(std::process::id());
    let killed_at = now_us();
    for (gateway, _, _) in gateways.iter_mut() {
        gateway.kill().unwrap();
        gateway.wait().unwrap();
    }
    for (gateway, _, port) in gateways.iter_mut() {
        *gateway = setup.start(*port).await;
    }
    let answering_at = now_us();
    let mut last = 0;
    let mut totals = [0u64; 4];
    for lines in lines {
        // "identified again N at T attempts A refused R deferred D errors E"
        let line = lines.next().unwrap().unwrap();
        eprintln!("{line}");
        let words: Vec<&str> = line.split(' ').collect();
        last = last.max(words[4].parse::<u128>().unwrap());
        for (total, at) in totals.iter_mut().zip([6, 8, 10, 12]) {
            *total += words[at].parse::<u64>().unwrap();
        }
    }
    let services_cpu = cpu_seconds(std::process::id()) - cpu_before;
    let [attempts, refused, deferred, errors] = totals;
    println!(
        "reconnect storm: all {connections} identified again {:.2} s after the kill ({:.2} s after the new gateway answered); \
         {attempts} attempts: {refused} refused while it was down, {deferred} deferred (1013), {errors} errors; \
         services' CPU meanwhile {services_cpu:.2} s",
        (last - killed_at) as f64 / 1e6,
        (last.saturating_sub(answering_at)) as f64 / 1e6,
    );
    for (g, (gateway, _, _)) in gateways.iter().enumerate() {
        println!(
            "gateway {g} after the storm: RSS {} KiB",
            rss_kib(gateway.id())
        );
    }
}

async fn wait_ready(port: u16) {
    loop {
        if let Ok(response) = reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await
            && response.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn rss_kib(pid: u32) -> i64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// User and system CPU time of a process so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn now_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros()
}

/// What one client process counts, over all its connections.
#[derive(Default)]
struct Counts {
    connected: AtomicUsize,
    received: AtomicUsize,
    identified_again: AtomicUsize,
    attempts: AtomicUsize,
    refused: AtomicUsize,
    deferred: AtomicUsize,
    errors: AtomicUsize,
    all_connected: tokio::sync::Notify,
    everyone_received: tokio::sync::Notify,
    all_identified_again: tokio::sync::Notify,
}

/// Why an attempt to connect and identify did not end in `ready`.
enum Failure {
    /// No gateway there (refused, or gone during the handshake).
    Refused,
    /// Close 1013: come back after this many milliseconds.
    Busy(u64),
    /// Anything else.
    Error(String),
}

type Socket = tokio_tungstenite::WebSocketStream<TcpStream>;

/// A client process: `count` connections to `url` from `source`, identified with the tokens
/// (20 each); prints "connected N", then "received N at <µs>" when the event reached all,
/// then, if the gateway was restarted, "identified again N at <µs> …" with its counts.
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
        let counts = Arc::new(Counts::default());
        let first_connects = Arc::new(tokio::sync::Semaphore::new(64));
        for n in 0..count {
            let token = tokens[n / PER_USER].clone();
            let (url, source) = (url.clone(), source.clone());
            let (counts, first_connects) = (counts.clone(), first_connects.clone());
            tokio::spawn(async move {
                let permit = first_connects.acquire_owned().await.unwrap();
                connection(&url, &source, &token, &counts, count, Some(permit)).await;
            });
        }
        counts.all_connected.notified().await;
        say(&format!("connected {count}"));
        counts.everyone_received.notified().await;
        say(&format!("received {count} at {}", now_us()));
        counts.all_identified_again.notified().await;
        let at = now_us();
        let load = |counter: &AtomicUsize| counter.load(Ordering::SeqCst);
        say(&format!(
            "identified again {count} at {at} attempts {} refused {} deferred {} errors {}",
            load(&counts.attempts),
            load(&counts.refused),
            load(&counts.deferred),
            load(&counts.errors)
        ));
        std::future::pending::<()>().await;
    });
}

fn say(line: &str) {
    println!("{line}");
    std::io::stdout().flush().unwrap();
}

/// One connection for ever: connects and identifies (backing off as the web client does),
/// idles until the socket ends, and starts again.
async fn connection(
    url: &str,
    source: &str,
    token: &str,
    counts: &Counts,
    count: usize,
    mut first: Option<tokio::sync::OwnedSemaphorePermit>,
) {
    let mut attempt = 0;
    let mut identified_before = false;
    loop {
        if identified_before {
            counts.attempts.fetch_add(1, Ordering::SeqCst);
        }
        let wait = match identify(url, source, token).await {
            Ok(ws) => {
                drop(first.take());
                let (counter, all) = if identified_before {
                    (&counts.identified_again, &counts.all_identified_again)
                } else {
                    (&counts.connected, &counts.all_connected)
                };
                if counter.fetch_add(1, Ordering::SeqCst) + 1 == count {
                    all.notify_one();
                }
                identified_before = true;
                idle(ws, counts, count).await;
                attempt = 0;
                backoff(attempt)
            }
            Err(Failure::Refused) => {
                counts.refused.fetch_add(1, Ordering::SeqCst);
                backoff(attempt)
            }
            Err(Failure::Busy(retry_after_ms)) => {
                counts.deferred.fetch_add(1, Ordering::SeqCst);
                Duration::from_millis(retry_after_ms) + backoff(attempt)
            }
            Err(Failure::Error(error)) => {
                if counts.errors.fetch_add(1, Ordering::SeqCst) < 5 {
                    eprintln!("client error: {error}");
                }
                backoff(attempt)
            }
        };
        attempt += 1;
        tokio::time::sleep(wait).await;
    }
}

/// The wait before reconnect attempt `n` (0-based): full jitter, uniform between zero and
/// 0.5 s doubling up to 15 s.
fn backoff(n: u32) -> Duration {
    let ceiling = (BACKOFF_BASE_MS * 2f64.powi(n.min(16) as i32)).min(BACKOFF_CAP_MS);
    Duration::from_secs_f64(rand::thread_rng().gen_range(0.0..=ceiling) / 1000.0)
}

/// Connects from `source`, says hello and identifies; the socket once `ready` came.
async fn identify(url: &str, source: &str, token: &str) -> Result<Socket, Failure> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let address = url.trim_start_matches("ws://").trim_end_matches("/ws");
    let stream = socket
        .connect(address.parse().unwrap())
        .await
        .map_err(|_| Failure::Refused)?;
    let (mut ws, _) = match tokio_tungstenite::client_async(url, stream).await {
        Ok(ws) => ws,
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            return Err(Failure::Error(format!(
                "upgrade answered {}",
                response.status()
            )));
        }
        Err(_) => return Err(Failure::Refused),
    };
    ws.next().await; // hello
    let identify = format!(r#"{{"op":"identify","d":{{"token":"{token}"}}}}"#);
    if ws.send(Message::Text(identify.into())).await.is_err() {
        return Err(Failure::Refused);
    }
    let mut retry_after_ms = 0;
    while let Some(Ok(message)) = ws.next().await {
        match message {
            Message::Text(text) if text.contains(r#""op":"ready""#) => return Ok(ws),
            Message::Text(text) if text.contains(r#""op":"error""#) => {
                let frame: serde_json::Value = serde_json::from_str(&text).unwrap();
                match frame["d"]["retry_after_ms"].as_u64() {
                    Some(ms) => retry_after_ms = ms,
                    None => return Err(Failure::Error(format!("identify answered {text}"))),
                }
            }
            Message::Close(Some(close)) if close.code == CloseCode::Again => {
                return Err(Failure::Busy(retry_after_ms));
            }
            Message::Close(close) => return Err(Failure::Error(format!("closed: {close:?}"))),
            _ => {}
        }
    }
    Err(Failure::Error("dropped before ready".into()))
}

/// An identified connection: heartbeats, counts the benchmark's event; returns when the
/// socket ends.
async fn idle(mut ws: Socket, counts: &Counts, count: usize) {
    let mut heartbeat = tokio::time::interval(Duration::from_secs(20));
    loop {
        tokio::select! {
            _ = heartbeat.tick() => {
                if ws.send(Message::Text(r#"{"op":"heartbeat"}"#.into())).await.is_err() {
                    return;
                }
            }
            message = ws.next() => {
                let Some(Ok(message)) = message else { return };
                if message.to_text().unwrap_or_default().contains("not-a-session")
                    && counts.received.fetch_add(1, Ordering::SeqCst) + 1 == count
                {
                    counts.everyone_received.notify_one();
                }
            }
        }
    }
}
