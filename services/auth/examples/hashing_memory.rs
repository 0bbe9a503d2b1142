//! Benchmark: what password hashing leaves in the auth process's memory. Starts the real
//! `astral-auth` binary (SQLite, the local NATS, development plaintext), then registers 1,000
//! accounts 50 at a time and logs 200 of them in at once, reading the process's resident
//! memory (`VmRSS`) and its peak (`VmHWM`) from `/proc` after each phase.
//!
//! `cargo build --release -p astral-auth --bin astral-auth --example hashing_memory`, then
//! `target/release/examples/hashing_memory [registrations] [concurrent logins]`.

#![allow(clippy::unwrap_used)] // a benchmark fails loudly

use astral_common::testing::TempDir;
use astral_proto::auth::auth_service_client::AuthServiceClient;
use astral_proto::auth::{LoginRequest, RegisterRequest};
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

const PASSWORD: &str = "correct horse battery";

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let registrations = args.first().copied().unwrap_or(1000);
    let logins = args.get(1).copied().unwrap_or(200);
    let dir = TempDir::new();
    let port = free_port();
    let binary = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("astral-auth");
    let mut auth = Command::new(&binary)
        .env("ASTRAL_INSECURE_DEV", "1")
        .env("ASTRAL_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "ASTRAL_METRICS_LISTEN",
            format!("127.0.0.1:{}", free_port()),
        )
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.0.join("auth.db").display()),
        )
        .env("ASTRAL_REGISTRATIONS_PER_10_MIN", "1000000")
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap_or_else(|error| panic!("start {}: {error}", binary.display()));
    let client = connect(port).await;
    println!(
        "cores: {}",
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    report(&auth, "started");

    let start = Instant::now();
    let names: Vec<String> = (0..registrations).map(|n| format!("user_{n}")).collect();
    let mut refused = 0;
    for batch in names.chunks(50) {
        let calls = batch.iter().map(|name| {
            let mut client = client.clone();
            let request = RegisterRequest {
                username: name.clone(),
                password: PASSWORD.into(),
                user_agent: "bench".into(),
                client_addr: "127.0.0.1".into(),
            };
            async move { client.register(request).await }
        });
        for answer in futures::future::join_all(calls).await {
            match answer {
                Ok(_) => {}
                Err(status) if status.code() == tonic::Code::Unavailable => refused += 1,
                Err(status) => panic!("register: {status}"),
            }
        }
    }
    let elapsed = start.elapsed();
    println!(
        "{registrations} registrations, 50 at a time: {:.1} s, {:.0}/s, {refused} refused (busy)",
        elapsed.as_secs_f64(),
        registrations as f64 / elapsed.as_secs_f64()
    );
    report(&auth, "after registrations");

    let start = Instant::now();
    let calls = names.iter().take(logins).enumerate().map(|(n, name)| {
        let mut client = client.clone();
        let request = LoginRequest {
            username: name.clone(),
            password: PASSWORD.into(),
            user_agent: "bench".into(),
            client_addr: format!("10.1.{}.{}", n / 250, n % 250),
        };
        async move { client.login(request).await }
    });
    let answers = futures::future::join_all(calls).await;
    let ok = answers.iter().filter(|a| a.is_ok()).count();
    let busy = answers
        .iter()
        .filter(|a| matches!(a, Err(s) if s.code() == tonic::Code::Unavailable))
        .count();
    println!(
        "{logins} logins at once: {ok} in, {busy} refused (busy, 503), {:.1} s",
        start.elapsed().as_secs_f64()
    );
    report(&auth, "after concurrent logins");
    tokio::time::sleep(Duration::from_secs(2)).await;
    report(&auth, "2 s later");
    auth.kill().unwrap();
    auth.wait().unwrap();
}

async fn connect(port: u16) -> AuthServiceClient<Channel> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match Channel::from_shared(format!("http://127.0.0.1:{port}"))
            .unwrap()
            .connect()
            .await
        {
            Ok(channel) => return AuthServiceClient::new(channel),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("astral-auth did not start: {error}"),
        }
    }
}

fn report(process: &Child, when: &str) {
    let status = std::fs::read_to_string(format!("/proc/{}/status", process.id())).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.split_whitespace().nth(1))
            .map_or(0, |kib| kib.parse::<u64>().unwrap() / 1024)
    };
    println!(
        "{when:28} RSS {:4} MiB   peak {:4} MiB",
        field("VmRSS:"),
        field("VmHWM:")
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
