//! The chaos suite (issue 14): Astral as real processes — two gateways, two messaging
//! replicas, social, auth, a PostgreSQL and a NATS of the test's own — under a steady load of
//! clients that behave as `docs/protocol.md` tells them to (senders retry with the same
//! nonce; receivers reconnect, resubscribe and catch up with `after=`), while faults are
//! injected one after another: SIGKILL, SIGSTOP and SIGTERM of each kind of process, NATS and
//! PostgreSQL restarts, and a messaging replica killed in the middle of a burst of sends
//! (repeated, to hit the window between a commit and its publish).
//!
//! After each fault the load pauses until it settles, and the invariants are checked: no
//! acknowledged message lost, none stored twice, `seq` gapless, every receiver's view
//! complete, each message delivered live at most once per connection and in order. The
//! table it prints (fault → lost / doubled / missing / out of order / recovery / answers
//! seen) is the one in `docs/reliability.md`.

#![allow(clippy::unwrap_used)] // a test fails loudly; that is what unwrap does

mod support;

use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::postgres::PrivatePostgres;
use support::system::Distributed;
use support::{System, User};

/// Direct chats under load, each with a sender and a receiver.
const PAIRS: usize = 8;
/// A sender's pace: under the per-user send budget (100 per 5 s).
const SEND_EVERY: Duration = Duration::from_millis(70);
/// Sends each sender fires at once when a burst is asked for.
const BURST: usize = 20;
/// Kills of a messaging replica during a burst: at least, and at most while none has yet
/// left an event behind.
const MIN_KILLS: usize = 3;
const MAX_KILLS: usize = 12;
/// How long a send is retried (same nonce) before the client gives up on it.
const GIVE_UP_AFTER: Duration = Duration::from_secs(60);
/// Load before a fault, and after it.
const BEFORE: Duration = Duration::from_millis(800);
const AFTER: Duration = Duration::from_secs(3);
/// How long the system may take to settle after a fault before what is missing counts.
const SETTLE: Duration = Duration::from_secs(30);

/// A message the server acknowledged (201).
#[derive(Clone)]
struct Acked {
    id: String,
    sent_at: Instant,
    /// From the first try to the 201, retries included.
    took: Duration,
}

/// What the clients of one pair saw.
#[derive(Default)]
struct Pair {
    acked: Vec<Acked>,
    /// Answers seen by the sender (status code, or `transport`).
    answers: BTreeMap<String, u32>,
    /// The receiver's view: message id → seq, from live events and catch-ups.
    view: HashMap<String, i64>,
    /// When each message first reached the receiver live.
    live_at: HashMap<String, Instant>,
    /// Live events that came out of version order, or that skipped a version.
    out_of_order: u32,
    /// Live deliveries of a message a connection had already delivered.
    doubled_live: u32,
}

struct Load {
    pairs: Vec<Arc<Mutex<Pair>>>,
    paused: AtomicBool,
    stopped: AtomicBool,
    burst: AtomicBool,
    /// Sends begun and not yet acknowledged or given up.
    sending: AtomicUsize,
}

/// One row of the table.
struct Row {
    fault: String,
    lost: usize,
    doubled: usize,
    missing: usize,
    out_of_order: u32,
    doubled_live: u32,
    recovery: Option<Duration>,
    answers: BTreeMap<String, u32>,
    /// Sends acknowledged per second from the fault until the load paused, and the
    /// 99th percentile of their latency (retries included).
    rate: f64,
    p99: Duration,
    /// Events the messaging replicas' outboxes swept up (left behind by a process that died
    /// between a commit and its publish, or by the bus) while the fault lasted.
    swept: f64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_invariant_holds_through_every_fault() {
    let Some(postgres) = PrivatePostgres::start() else {
        let missing = anyhow::anyhow!("PostgreSQL's programs are not installed");
        astral_common::testing::unavailable("PostgreSQL", &missing);
        return;
    };
    let options = Distributed {
        gateways: 2,
        messaging_replicas: 2,
        postgres: Some(postgres.url()),
        rust_log: "info,astral_common::outbox=info",
        ..Distributed::default()
    };
    let Some(mut system) = System::distributed_with(options).await else {
        return;
    };
    let bases = system.bases.clone();
    let mut clients = Vec::new();
    for n in 0..PAIRS {
        let (sender, receiver, chat_id) = support::user::friends_with_a_chat(
            &bases[n % bases.len()],
            &bases[(n + 1) % bases.len()],
        )
        .await;
        clients.push((sender, receiver, chat_id));
    }
    let load = Arc::new(Load {
        pairs: (0..PAIRS).map(|_| Arc::default()).collect(),
        paused: AtomicBool::new(false),
        stopped: AtomicBool::new(false),
        burst: AtomicBool::new(false),
        sending: AtomicUsize::new(0),
    });
    let mut tasks = Vec::new();
    for (n, (sender, receiver, chat_id)) in clients.iter().enumerate() {
        tasks.push(tokio::spawn(send(
            load.clone(),
            n,
            sender.token.clone(),
            chat_id.clone(),
            bases.clone(),
        )));
        tasks.push(tokio::spawn(receive(
            load.clone(),
            n,
            receiver.token.clone(),
            chat_id.clone(),
            bases.clone(),
        )));
    }

    let mut rows = Vec::new();
    let mut audit = Audit::default();
    // A messaging replica killed in the middle of a burst, the two in turn, at least
    // MIN_KILLS times and until a kill has left events behind for the outbox to sweep up
    // (the window between a commit and its publish), at most MAX_KILLS times.
    let mut kills = 0;
    while kills < MIN_KILLS || (rows.iter().all(|row: &Row| row.swept == 0.0) && kills < MAX_KILLS)
    {
        let fault = if kills % 2 == 0 {
            "messaging killed during a burst"
        } else {
            "messaging-2 killed during a burst"
        };
        kills += 1;
        let row = phase(&mut system, &postgres, &load, &clients, &mut audit, fault).await;
        rows.push(row);
    }
    for fault in [
        "messaging-2 stopped (SIGSTOP) 10 s",
        "gateway-0 killed",
        "gateway-1 terminated (SIGTERM)",
        "social killed",
        "auth killed",
        "NATS restarted",
        "PostgreSQL restarted",
    ] {
        let row = phase(&mut system, &postgres, &load, &clients, &mut audit, fault).await;
        rows.push(row);
    }
    load.stopped.store(true, Ordering::SeqCst);
    for task in tasks {
        task.abort();
    }
    let table = rows.iter().map(row_text).collect::<Vec<_>>().join("\n");
    println!("\n{HEADER}\n{table}\n");
    for row in &rows {
        assert!(
            row.lost == 0
                && row.doubled == 0
                && row.missing == 0
                && row.out_of_order == 0
                && row.doubled_live == 0,
            "an invariant broke:\n{HEADER}\n{table}"
        );
    }
    assert!(
        rows.iter().all(|row| !row.answers.contains_key("500")),
        "a 500 was answered:\n{table}"
    );
    system.stop().await;
}

/// Load, a fault, load, a pause until it settles: the fault's row.
async fn phase(
    system: &mut System,
    postgres: &PrivatePostgres,
    load: &Load,
    clients: &[(User, User, String)],
    audit: &mut Audit,
    fault: &str,
) -> Row {
    tokio::time::sleep(BEFORE).await;
    let marks: Vec<(usize, BTreeMap<String, u32>)> = load
        .pairs
        .iter()
        .map(|pair| {
            let pair = pair.lock().unwrap();
            (pair.acked.len(), pair.answers.clone())
        })
        .collect();
    let at = Instant::now();
    inject(system, postgres, load, fault).await;
    tokio::time::sleep(AFTER).await;
    load.paused.store(true, Ordering::SeqCst);
    let paused_at = Instant::now();
    settle(load).await;
    let mut row = audit
        .check(
            fault,
            at,
            &marks,
            load,
            clients,
            &system.bases[1],
            paused_at,
        )
        .await;
    row.swept = swept(system, &mut audit.swept);
    eprintln!("{}", row_text(&row));
    load.paused.store(false, Ordering::SeqCst);
    row
}

const HEADER: &str = "| fault | lost | doubled | receiver missing | out of order | delivered twice | recovery | sends/s, p99 | answers while it lasted | events swept up |\n|---|---|---|---|---|---|---|---|---|---|";

/// Events swept up by the messaging replicas' outboxes since the last call, from their logs
/// (which a restarted replica appends to).
fn swept(system: &System, so_far: &mut f64) -> f64 {
    let total: f64 = system
        .logs()
        .iter()
        .filter(|(name, _)| name.starts_with("astral-messaging"))
        .flat_map(|(_, text)| text.lines())
        .filter(|line| line.contains("publishing events left in the outbox"))
        .filter_map(|line| {
            let count = line
                .split("count=")
                .nth(1)
                .or_else(|| line.split("\"count\":").nth(1))?;
            let digits: String = count.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<f64>().ok()
        })
        .sum();
    let new = total - *so_far;
    *so_far = total;
    new
}

fn row_text(row: &Row) -> String {
    let answers: Vec<String> = row
        .answers
        .iter()
        .map(|(code, count)| format!("{code}×{count}"))
        .collect();
    format!(
        "| {} | {} | {} | {} | {} | {} | {} | {:.0}/s, {:.2} s | {} | {} |",
        row.fault,
        row.lost,
        row.doubled,
        row.missing,
        row.out_of_order,
        row.doubled_live,
        row.recovery.map_or("—".to_owned(), |took| format!(
            "{:.2} s",
            took.as_secs_f64()
        )),
        row.rate,
        row.p99.as_secs_f64(),
        answers.join(", "),
        row.swept.abs()
    )
}

async fn inject(system: &mut System, postgres: &PrivatePostgres, load: &Load, fault: &str) {
    let gone = Duration::from_secs(5);
    match fault {
        "messaging killed during a burst" | "messaging-2 killed during a burst" => {
            let process = if fault.starts_with("messaging-2") {
                "astral-messaging-2"
            } else {
                "astral-messaging"
            };
            load.burst.store(true, Ordering::SeqCst);
            // In the middle of the burst: once a quarter of it is stored, while the rest
            // commits and publishes on both replicas.
            let acked = || -> usize {
                load.pairs
                    .iter()
                    .map(|pair| pair.lock().unwrap().acked.len())
                    .sum()
            };
            let before = acked();
            let deadline = Instant::now() + Duration::from_secs(2);
            while acked() < before + PAIRS * BURST / 4 && Instant::now() < deadline {
                tokio::task::yield_now().await;
            }
            system.signal(process, "KILL", gone).await.unwrap();
            tokio::time::sleep(Duration::from_millis(500)).await;
            system.restart(process);
        }
        "messaging-2 stopped (SIGSTOP) 10 s" => {
            system
                .signal("astral-messaging-2", "STOP", Duration::ZERO)
                .await;
            tokio::time::sleep(Duration::from_secs(10)).await;
            system
                .signal("astral-messaging-2", "CONT", Duration::ZERO)
                .await;
        }
        "gateway-0 killed" => {
            system
                .signal("astral-gateway-0", "KILL", gone)
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_secs(1)).await;
            system.restart("astral-gateway-0");
        }
        "gateway-1 terminated (SIGTERM)" => {
            system
                .signal("astral-gateway-1", "TERM", Duration::from_secs(10))
                .await
                .unwrap();
            system.restart("astral-gateway-1");
        }
        "social killed" => {
            system.signal("astral-social", "KILL", gone).await.unwrap();
            tokio::time::sleep(Duration::from_secs(2)).await;
            system.restart("astral-social");
        }
        "auth killed" => {
            system.signal("astral-auth", "KILL", gone).await.unwrap();
            tokio::time::sleep(Duration::from_secs(2)).await;
            system.restart("astral-auth");
        }
        "NATS restarted" => {
            system.signal("nats", "KILL", gone).await.unwrap();
            tokio::time::sleep(Duration::from_secs(2)).await;
            system.restart_nats().await;
        }
        "PostgreSQL restarted" => tokio::task::block_in_place(|| postgres.restart()),
        other => panic!("no fault {other}"),
    }
}

/// Waits until no send is on its way and every receiver has every acknowledged message of
/// its chat, or [`SETTLE`] has passed (what is missing then counts).
async fn settle(load: &Load) {
    let deadline = Instant::now() + SETTLE;
    while Instant::now() < deadline {
        let complete = load.sending.load(Ordering::SeqCst) == 0
            && load.pairs.iter().all(|pair| {
                let pair = pair.lock().unwrap();
                pair.acked
                    .iter()
                    .all(|acked| pair.view.contains_key(&acked.id))
            });
        if complete {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The messages of a chat read so far (id → (seq, nonce)), and the newest version read.
type History = (HashMap<String, (i64, String)>, i64);

/// The history read so far, per chat.
#[derive(Default)]
struct Audit {
    history: HashMap<String, History>,
    /// Events swept up so far (see [`swept`]).
    swept: f64,
}

impl Audit {
    /// Reads what was stored since the last audit and checks the invariants for the fault
    /// that began `at`.
    #[allow(clippy::too_many_arguments)]
    async fn check(
        &mut self,
        fault: &str,
        at: Instant,
        marks: &[(usize, BTreeMap<String, u32>)],
        load: &Load,
        clients: &[(User, User, String)],
        base: &str,
        paused_at: Instant,
    ) -> Row {
        let http = reqwest::Client::new();
        let mut row = Row {
            fault: fault.to_owned(),
            lost: 0,
            doubled: 0,
            missing: 0,
            out_of_order: 0,
            doubled_live: 0,
            recovery: Some(Duration::ZERO),
            answers: BTreeMap::new(),
            swept: 0.0,
            rate: 0.0,
            p99: Duration::ZERO,
        };
        let mut latencies = Vec::new();
        for (n, (sender, _, chat_id)) in clients.iter().enumerate() {
            let (stored, version) = self.history.entry(chat_id.clone()).or_default();
            loop {
                let response = http
                    .get(format!(
                        "{base}/api/chats/{chat_id}/messages?after={version}&limit=100"
                    ))
                    .bearer_auth(&sender.token)
                    .send()
                    .await
                    .unwrap();
                assert!(
                    response.status().is_success(),
                    "{fault}: history: {}",
                    response.status()
                );
                let page: Value = response.json().await.unwrap();
                let messages = page.as_array().unwrap().clone();
                for message in &messages {
                    *version = (*version).max(message["version"].as_i64().unwrap());
                    let id = message["id"].as_str().unwrap().to_owned();
                    let nonce = message["nonce"].as_str().unwrap_or_default().to_owned();
                    stored.insert(id, (message["seq"].as_i64().unwrap(), nonce));
                }
                if messages.len() < 100 {
                    break;
                }
            }
            let mut seqs: Vec<i64> = stored.values().map(|(seq, _)| *seq).collect();
            seqs.sort_unstable();
            assert_eq!(
                seqs,
                (1..=seqs.len() as i64).collect::<Vec<_>>(),
                "{fault}: seq is gapless in {chat_id}"
            );
            let mut nonces = HashSet::new();
            row.doubled += stored
                .values()
                .filter(|(_, nonce)| !nonce.is_empty() && !nonces.insert(nonce.clone()))
                .count();
            let pair = load.pairs[n].lock().unwrap();
            row.lost += pair
                .acked
                .iter()
                .filter(|acked| !stored.contains_key(&acked.id))
                .count();
            row.missing += pair
                .acked
                .iter()
                .filter(|acked| !pair.view.contains_key(&acked.id))
                .count();
            row.out_of_order += pair.out_of_order;
            row.doubled_live += pair.doubled_live;
            let (acked_before, answers_before) = &marks[n];
            for (code, count) in &pair.answers {
                let before = answers_before.get(code).copied().unwrap_or(0);
                if *count > before {
                    *row.answers.entry(code.clone()).or_default() += count - before;
                }
            }
            latencies.extend(
                pair.acked[*acked_before..]
                    .iter()
                    .filter(|acked| acked.sent_at > at && acked.sent_at < paused_at)
                    .map(|acked| acked.took),
            );
            // Back when a message sent after the fault reached its receiver live.
            let recovered = pair.acked[*acked_before..]
                .iter()
                .filter(|acked| acked.sent_at > at)
                .filter_map(|acked| pair.live_at.get(&acked.id))
                .min()
                .map(|live| live.duration_since(at));
            row.recovery = match (row.recovery, recovered) {
                (Some(worst), Some(this)) => Some(worst.max(this)),
                _ => None,
            };
        }
        latencies.sort_unstable();
        row.rate = latencies.len() as f64 / paused_at.duration_since(at).as_secs_f64();
        row.p99 = latencies
            .get((latencies.len() * 99).div_ceil(100).saturating_sub(1))
            .copied()
            .unwrap_or_default();
        row
    }
}

/// A sender: one message every [`SEND_EVERY`] (and [`BURST`] at once when asked), each
/// retried with its nonce until acknowledged, on the other gateway when one does not answer.
async fn send(load: Arc<Load>, n: usize, token: String, chat_id: String, bases: Vec<String>) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let mut count = 0_u64;
    let mut gateway = n % bases.len();
    while !load.stopped.load(Ordering::SeqCst) {
        if load.paused.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let sends = if load.burst.swap(false, Ordering::SeqCst) {
            BURST
        } else {
            1
        };
        let mut batch = Vec::new();
        for _ in 0..sends {
            count += 1;
            let nonce = format!("chaos-{n}-{count}");
            load.sending.fetch_add(1, Ordering::SeqCst);
            batch.push(send_one(
                &load, n, &http, &token, &chat_id, &bases, gateway, nonce,
            ));
        }
        for moved in futures::future::join_all(batch).await {
            gateway = moved;
        }
        tokio::time::sleep(SEND_EVERY).await;
    }
}

/// Sends one message until it is acknowledged; the gateway to use next.
#[allow(clippy::too_many_arguments)]
async fn send_one(
    load: &Load,
    n: usize,
    http: &reqwest::Client,
    token: &str,
    chat_id: &str,
    bases: &[String],
    mut gateway: usize,
    nonce: String,
) -> usize {
    let sent_at = Instant::now();
    let body = json!({ "content": format!("message {nonce}"), "nonce": nonce });
    while sent_at.elapsed() < GIVE_UP_AFTER {
        let answer = http
            .post(format!("{}/api/chats/{chat_id}/messages", bases[gateway]))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await;
        let (code, wait) = match answer {
            Ok(response) if response.status() == reqwest::StatusCode::CREATED => {
                let message: Value = response.json().await.unwrap();
                let mut pair = load.pairs[n].lock().unwrap();
                *pair.answers.entry("201".into()).or_default() += 1;
                pair.acked.push(Acked {
                    id: message["id"].as_str().unwrap().to_owned(),
                    sent_at,
                    took: sent_at.elapsed(),
                });
                load.sending.fetch_sub(1, Ordering::SeqCst);
                return gateway;
            }
            Ok(response) => {
                let wait = response
                    .headers()
                    .get("retry-after")
                    .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
                    .map_or(Duration::from_millis(100), |s| {
                        Duration::from_secs(s).min(Duration::from_secs(1))
                    });
                (response.status().as_u16().to_string(), wait)
            }
            Err(_) => {
                gateway = (gateway + 1) % bases.len();
                ("transport".to_owned(), Duration::from_millis(100))
            }
        };
        *load.pairs[n]
            .lock()
            .unwrap()
            .answers
            .entry(code)
            .or_default() += 1;
        tokio::time::sleep(wait).await;
    }
    load.sending.fetch_sub(1, Ordering::SeqCst);
    gateway
}

/// A receiver: a WebSocket on one gateway, subscribed to its chat, catching up with
/// `after=` whenever it (re)connects or is told to; on the other gateway when its own goes.
async fn receive(load: Arc<Load>, n: usize, token: String, chat_id: String, bases: Vec<String>) {
    let http = reqwest::Client::new();
    let mut gateway = (n + 1) % bases.len();
    let mut known_version = 0_i64;
    while !load.stopped.load(Ordering::SeqCst) {
        let _ = session(
            &load,
            n,
            &http,
            &token,
            &chat_id,
            &bases[gateway],
            &mut known_version,
        )
        .await;
        gateway = (gateway + 1) % bases.len();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One connection, until it closes.
async fn session(
    load: &Load,
    n: usize,
    http: &reqwest::Client,
    token: &str,
    chat_id: &str,
    base: &str,
    known_version: &mut i64,
) -> anyhow::Result<()> {
    use tokio_tungstenite::tungstenite::Message;
    let url = format!("{}/ws", base.replacen("http", "ws", 1));
    let (mut socket, _) = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_tungstenite::connect_async(url),
    )
    .await??;
    let identify = json!({ "op": "identify", "d": { "token": token } });
    socket
        .send(Message::Text(identify.to_string().into()))
        .await?;
    let subscribe = json!({ "op": "subscribe", "d": { "chat_id": chat_id } });
    let mut subscribed = false;
    let mut expected: Option<i64> = None;
    let mut delivered = HashSet::new();
    let mut heartbeat = tokio::time::interval(Duration::from_secs(5));
    loop {
        let frame = tokio::select! {
            frame = socket.next() => frame,
            _ = heartbeat.tick() => {
                socket.send(Message::Text(json!({ "op": "heartbeat" }).to_string().into())).await?;
                continue;
            }
        };
        let Some(frame) = frame else {
            return Ok(());
        };
        let Message::Text(text) = frame? else {
            continue;
        };
        let frame: Value = serde_json::from_str(&text)?;
        match frame["op"].as_str().unwrap_or_default() {
            "ready" => {
                socket
                    .send(Message::Text(subscribe.to_string().into()))
                    .await?;
            }
            "subscribed" => {
                subscribed = true;
                expected = Some(frame["d"]["version"].as_i64().unwrap_or(0) + 1);
                catch_up(load, n, http, token, chat_id, base, known_version).await?;
            }
            "catch_up" => {
                catch_up(load, n, http, token, chat_id, base, known_version).await?;
                expected = None;
            }
            "reconnect" => return Ok(()),
            "event" if subscribed && frame["t"] == "message.created" => {
                let message = &frame["d"];
                if message["chat_id"] != chat_id {
                    continue;
                }
                let id = message["id"].as_str().unwrap().to_owned();
                let version = message["version"].as_i64().unwrap();
                let mut pair = load.pairs[n].lock().unwrap();
                if !delivered.insert(id.clone()) {
                    pair.doubled_live += 1;
                }
                if let Some(next) = expected
                    && version != next
                {
                    pair.out_of_order += 1;
                }
                expected = Some(version + 1);
                pair.live_at.entry(id.clone()).or_insert_with(Instant::now);
                pair.view.insert(id, message["seq"].as_i64().unwrap());
                *known_version = (*known_version).max(version);
            }
            _ => {}
        }
    }
}

/// Loads every change after the newest version the receiver knows.
async fn catch_up(
    load: &Load,
    n: usize,
    http: &reqwest::Client,
    token: &str,
    chat_id: &str,
    base: &str,
    known_version: &mut i64,
) -> anyhow::Result<()> {
    loop {
        let response = http
            .get(format!(
                "{base}/api/chats/{chat_id}/messages?after={known_version}&limit=100"
            ))
            .bearer_auth(token)
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "catch-up: {}",
            response.status()
        );
        let page: Value = response.json().await?;
        let messages = page.as_array().cloned().unwrap_or_default();
        let mut pair = load.pairs[n].lock().unwrap();
        for message in &messages {
            let version = message["version"].as_i64().unwrap();
            *known_version = (*known_version).max(version);
            pair.view.insert(
                message["id"].as_str().unwrap().to_owned(),
                message["seq"].as_i64().unwrap(),
            );
        }
        if messages.len() < 100 {
            return Ok(());
        }
    }
}
