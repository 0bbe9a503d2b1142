//! A holder process (`astral-bench hold`, started by the idle and storm scenarios): it
//! opens its share of the connections (a process may hold at most 20,000 open files), each
//! from its loopback address, identifies them, keeps them alive, and reconnects any that
//! drop with jittered exponential back-off. It tells its parent, one JSON line at a time,
//! when every connection is identified (again), and when every connection has received a
//! `message.created`.

use crate::client::socket;
use crate::population::address;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Connections of one address identifying at once (a gateway lets an address have 16
/// waiting to identify).
const IDENTIFYING_PER_ADDRESS: usize = 6;
/// Back-off after a failed attempt: up to 200 ms × 2^(failures − 1), at most 5 s, the
/// actual wait drawn at random below it (full jitter).
const BACKOFF_BASE: Duration = Duration::from_millis(200);
const BACKOFF_CAP: Duration = Duration::from_secs(5);
/// A dropped connection waits up to this long (at random) before its first new attempt.
const RECONNECT_SPREAD: Duration = Duration::from_secs(1);

#[derive(Clone, Debug, clap::Args)]
pub struct Hold {
    #[arg(long)]
    pub gateway: SocketAddr,
    /// One access token per line; connection c identifies as user c / per-user.
    #[arg(long)]
    pub tokens: PathBuf,
    /// The first of this process's connections (numbered across all processes).
    #[arg(long)]
    pub from: usize,
    #[arg(long)]
    pub count: usize,
    /// Connections per client address (connection c uses address c / per-address).
    #[arg(long)]
    pub per_address: usize,
    #[arg(long)]
    pub per_user: usize,
}

/// What the connections share.
struct Shared {
    count: usize,
    identified: AtomicUsize,
    /// When the last connection of a full set identified (µs since the Unix epoch).
    all_identified_at: AtomicU64,
    received: AtomicUsize,
    all_received_at: AtomicU64,
    dropped: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
}

pub async fn run(hold: Hold) -> anyhow::Result<()> {
    let tokens: Vec<String> = std::fs::read_to_string(&hold.tokens)?
        .lines()
        .map(str::to_owned)
        .collect();
    let shared = Arc::new(Shared {
        count: hold.count,
        identified: AtomicUsize::new(0),
        all_identified_at: AtomicU64::new(0),
        received: AtomicUsize::new(0),
        all_received_at: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
        errors: Mutex::new(BTreeMap::new()),
    });
    let mut gates: BTreeMap<usize, Arc<Semaphore>> = BTreeMap::new();
    for c in hold.from..hold.from + hold.count {
        let k = c / hold.per_address;
        let gate = gates
            .entry(k)
            .or_insert_with(|| Arc::new(Semaphore::new(IDENTIFYING_PER_ADDRESS)))
            .clone();
        let token = tokens.get(c / hold.per_user).cloned().unwrap_or_default();
        let source = address(k)?;
        tokio::spawn(keep(hold.gateway, source, token, gate, shared.clone()));
    }
    report(&shared).await
}

/// One connection, kept identified for as long as the process lives.
async fn keep(
    gateway: SocketAddr,
    source: std::net::IpAddr,
    token: String,
    gate: Arc<Semaphore>,
    shared: Arc<Shared>,
) {
    let mut failures = 0;
    loop {
        let attempt = {
            let _permit = gate.acquire().await;
            socket::connect(gateway, source, &token).await
        };
        let identified = match attempt {
            Ok(identified) => identified,
            Err(error) => {
                failures += 1;
                shared.error(classify(&format!("{error:#}")));
                tokio::time::sleep(backoff(failures)).await;
                continue;
            }
        };
        failures = 0;
        if shared.identified.fetch_add(1, Ordering::SeqCst) + 1 == shared.count {
            shared.all_identified_at.store(unix_us(), Ordering::SeqCst);
        }
        let mut received = false;
        socket::listen(identified, std::future::pending(), |_| {
            if !received {
                received = true;
                if shared.received.fetch_add(1, Ordering::SeqCst) + 1 == shared.count {
                    shared.all_received_at.store(unix_us(), Ordering::SeqCst);
                }
            }
        })
        .await;
        shared.identified.fetch_sub(1, Ordering::SeqCst);
        shared.dropped.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(RECONNECT_SPREAD.mul_f64(rand::random::<f64>())).await;
    }
}

impl Shared {
    fn error(&self, kind: String) {
        if let Ok(mut errors) = self.errors.lock() {
            *errors.entry(kind).or_default() += 1;
        }
    }
}

/// Prints a line whenever every connection has (again) identified, and once every
/// connection has received a message.
async fn report(shared: &Shared) -> anyhow::Result<()> {
    let (mut identified_seen, mut received_seen) = (0, 0);
    loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let identified_at = shared.all_identified_at.load(Ordering::SeqCst);
        if identified_at != identified_seen {
            identified_seen = identified_at;
            let errors = shared
                .errors
                .lock()
                .map(|errors| errors.clone())
                .unwrap_or_default();
            let dropped = shared.dropped.load(Ordering::Relaxed);
            say(
                json!({ "event": "identified", "at": identified_at, "errors": errors, "dropped": dropped }),
            )?;
        }
        let received_at = shared.all_received_at.load(Ordering::SeqCst);
        if received_at != received_seen {
            received_seen = received_at;
            say(json!({ "event": "received", "at": received_at }))?;
        }
    }
}

fn say(line: serde_json::Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

fn backoff(failures: u32) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(1 << failures.saturating_sub(1).min(10))
        .min(BACKOFF_CAP);
    ceiling.mul_f64(rand::random::<f64>())
}

/// A failed attempt's kind, for the report.
fn classify(error: &str) -> String {
    if let Some(code) = quoted_after(error, r#""code":""#) {
        return format!("identify: error {code}");
    }
    if let Some(start) = error.find("upgrade: HTTP ") {
        let status = error[start..].split_whitespace().nth(2).unwrap_or_default();
        return format!("upgrade: HTTP {status}");
    }
    if let Some(cause) = error.strip_prefix("upgrade: ") {
        return format!(
            "upgrade: {}",
            cause.split(" (os error").next().unwrap_or(cause)
        );
    }
    let kinds = [
        ("Connection refused", "connect: refused"),
        ("429", "upgrade: HTTP 429"),
        ("503", "upgrade: HTTP 503"),
        ("identify:", "identify: error frame"),
        ("no answer", "identify: no answer in 30 s"),
        ("closed", "identify: closed"),
        ("connect", "connect: other"),
    ];
    kinds
        .iter()
        .find(|(needle, _)| error.contains(needle))
        .map_or_else(|| format!("other: {error}"), |(_, kind)| (*kind).to_owned())
}

/// Now, in µs since the Unix epoch (comparable across the benchmark's processes).
pub fn unix_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_micros() as u64)
}

/// The text between `key` and the next quote.
fn quoted_after<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let start = text.find(key)? + key.len();
    let length = text[start..].find('"')?;
    Some(&text[start..start + length])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_attempts_are_told_apart_by_what_the_gateway_said() {
        let refused = r#"identify: {"op":"error","d":{"code":"unavailable","message":"x"}}"#;
        assert_eq!(classify(refused), "identify: error unavailable");
        assert_eq!(classify("upgrade: HTTP 429 {}"), "upgrade: HTTP 429");
        let reset = "upgrade: IO error: Connection reset by peer (os error 104)";
        assert_eq!(
            classify(reset),
            "upgrade: IO error: Connection reset by peer"
        );
        assert_eq!(
            classify("connect: Connection refused (os error 111)"),
            "connect: refused"
        );
    }
}
