//! What the idle and storm scenarios share: users with 20 connections each (the most a
//! gateway allows a user), the connections spread over holder processes (`hold`) and client
//! addresses, and the holders' reports read back.

use crate::measure::{Watched, rss_kib};
use crate::population::Population;
use crate::system::process::ScratchDir;
use crate::system::{self, System};
use anyhow::Context as _;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

/// Connections per user (a gateway allows 20 per user).
pub const PER_USER: usize = 20;
/// The errors' entry for connections that dropped.
pub const DROPPED: &str = "connections dropped";
/// How long the connections may take to be identified.
const CONNECT_WITHIN: Duration = Duration::from_secs(600);

#[derive(Clone, Debug)]
pub struct Connections {
    pub connections: usize,
    /// Connections per holder process.
    pub per_process: usize,
    /// Connections per client address (a gateway allows 256 per address).
    pub per_address: usize,
    /// Idle: how long to watch the identified connections with nothing sent.
    pub idle_secs: u64,
}

/// The gateway settings these many connections need: its total cap raised (10,000 by
/// default); the per-address caps are kept, the connections spread over addresses instead.
pub fn gateway_env(connections: usize) -> Vec<(String, String)> {
    vec![(
        "ASTRAL_MAX_CONNECTIONS".to_owned(),
        (connections + 1000).max(10_000).to_string(),
    )]
}

/// The holder processes, and their reports as they come.
pub struct Fleet {
    holders: Vec<(Child, Lines<BufReader<ChildStdout>>)>,
    _dir: ScratchDir,
}

impl Fleet {
    /// Starts the holders for `c.connections` connections of `users`.
    pub fn start(system: &System, users: &Population, c: &Connections) -> anyhow::Result<Self> {
        let dir = ScratchDir::new()?;
        let tokens = dir.path().join("tokens");
        let lines: Vec<&str> = users.accounts.iter().map(|a| a.token.as_str()).collect();
        std::fs::write(&tokens, lines.join("\n"))?;
        anyhow::ensure!(
            c.per_process.is_multiple_of(c.per_address),
            "--per-process must be a multiple of --per-address (an address in one process only)"
        );
        let program = std::env::current_exe()?;
        let mut holders = Vec::new();
        for from in (0..c.connections).step_by(c.per_process) {
            let count = c.per_process.min(c.connections - from);
            let mut child = tokio::process::Command::new(&program)
                .arg("hold")
                .args(["--gateway", &format!("127.0.0.1:{}", system.port)])
                .arg("--tokens")
                .arg(&tokens)
                .args(["--from", &from.to_string(), "--count", &count.to_string()])
                .args(["--per-address", &c.per_address.to_string()])
                .args(["--per-user", &PER_USER.to_string()])
                .stdout(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .context("start a holder process")?;
            let stdout = child.stdout.take().context("a holder's output")?;
            holders.push((child, BufReader::new(stdout).lines()));
        }
        Ok(Self { holders, _dir: dir })
    }

    /// Waits for every holder's next `event` line whose time is after `after` (µs since the
    /// epoch); returns the latest time and the errors and drops they reported.
    pub async fn next(
        &mut self,
        event: &str,
        after: u64,
        within: Duration,
    ) -> anyhow::Result<(u64, BTreeMap<String, u64>)> {
        let mut latest = 0;
        let mut errors = BTreeMap::new();
        for (_, lines) in &mut self.holders {
            let line = tokio::time::timeout(within, next_event(lines, event, after))
                .await
                .with_context(|| format!("no holder said {event} within {within:?}"))??;
            latest = latest.max(line["at"].as_u64().unwrap_or(0));
            if let Some(reported) = line["errors"].as_object() {
                for (kind, count) in reported {
                    *errors.entry(kind.clone()).or_default() += count.as_u64().unwrap_or(0);
                }
            }
            if let Some(dropped) = line["dropped"].as_u64().filter(|&d| d > 0) {
                *errors.entry(DROPPED.to_owned()).or_default() += dropped;
            }
        }
        Ok((latest, errors))
    }

    /// The system's processes, the holders (the load generator) and the whole machine.
    pub fn watched(&self, system: &System) -> Vec<(String, Watched)> {
        let mut watched = system.watched();
        for (n, (child, _)) in self.holders.iter().enumerate() {
            if let Some(pid) = child.id() {
                watched.push((format!("astral-bench holder {n}"), Watched::Pid(pid)));
            }
        }
        watched.push(("whole machine (every process)".to_owned(), Watched::Machine));
        watched
    }

    /// Waits until every connection is identified for the first time.
    pub async fn identified(&mut self) -> anyhow::Result<(u64, BTreeMap<String, u64>)> {
        self.next("identified", 0, CONNECT_WITHIN).await
    }
}

async fn next_event(
    lines: &mut Lines<BufReader<ChildStdout>>,
    event: &str,
    after: u64,
) -> anyhow::Result<Value> {
    while let Some(line) = lines.next_line().await? {
        let value: Value =
            serde_json::from_str(&line).with_context(|| format!("a holder said {line:?}"))?;
        if value["event"] == event && value["at"].as_u64().unwrap_or(0) > after {
            return Ok(value);
        }
    }
    anyhow::bail!("a holder exited")
}

/// Registers a user per 20 connections, the same address for a user's connections and
/// its HTTP calls.
pub async fn users(system: &System, c: &Connections) -> anyhow::Result<Population> {
    anyhow::ensure!(
        c.per_address.is_multiple_of(PER_USER),
        "--per-address must be a multiple of {PER_USER}"
    );
    let count = c.connections.div_ceil(PER_USER);
    Population::register(&system.base, "holder_", count, c.per_address / PER_USER).await
}

/// The gateway process's RSS in KiB.
pub fn gateway_rss(system: &System) -> u64 {
    system.gateway_pid().and_then(rss_kib).unwrap_or(0)
}

pub fn options(base: &system::Options, c: &Connections) -> system::Options {
    system::Options {
        mode: base.mode,
        bin_dir: base.bin_dir.clone(),
        gateway_env: gateway_env(c.connections),
    }
}
