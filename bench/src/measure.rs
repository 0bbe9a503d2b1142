//! CPU time and resident memory of the processes under test, read from `/proc`: each
//! server process by its id, PostgreSQL's backends by their command line
//! (`postgres: …`), and the load generator itself.

use serde::Serialize;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What to watch: a process, or every PostgreSQL process (optionally only the backends of
/// some databases).
#[derive(Clone, Debug)]
pub enum Watched {
    Pid(u32),
    /// Processes whose command line starts with `postgres:` and, if given, names one of
    /// these databases.
    Postgres(Option<Vec<String>>),
    /// Every process on the machine (`/proc/stat`): what the others took shows as the
    /// difference.
    Machine,
}

/// One reading of a named group of processes: CPU ticks per process id, and total RSS.
#[derive(Clone, Debug, Default)]
struct Reading {
    ticks: HashMap<u32, u64>,
    rss_kib: u64,
}

/// The start of a measured interval.
pub struct Snapshot {
    at: Instant,
    readings: Vec<(String, Watched, Reading)>,
}

/// One process (or group) over a measured interval.
#[derive(Clone, Debug, Serialize)]
pub struct Usage {
    pub process: String,
    /// CPU (user + system) as % of one core, over the interval.
    pub cpu_percent: f64,
    /// Resident memory at the end of the interval.
    pub rss_mib: f64,
}

impl Snapshot {
    pub fn take(watched: &[(String, Watched)]) -> Self {
        Self {
            at: Instant::now(),
            readings: watched
                .iter()
                .map(|(name, what)| (name.clone(), what.clone(), read(what)))
                .collect(),
        }
    }

    /// CPU and memory of every watched process from this snapshot until now.
    pub fn usage(&self) -> Vec<Usage> {
        let elapsed = self.at.elapsed();
        self.readings
            .iter()
            .map(|(name, what, before)| usage(name, before, &read(what), elapsed))
            .collect()
    }
}

fn usage(name: &str, before: &Reading, after: &Reading, elapsed: Duration) -> Usage {
    let ticks: u64 = after
        .ticks
        .iter()
        .map(|(pid, ticks)| ticks.saturating_sub(before.ticks.get(pid).copied().unwrap_or(0)))
        .sum();
    let seconds = ticks as f64 / clock_ticks_per_second() as f64;
    Usage {
        process: name.to_owned(),
        cpu_percent: 100.0 * seconds / elapsed.as_secs_f64().max(1e-9),
        rss_mib: after.rss_kib as f64 / 1024.0,
    }
}

fn read(what: &Watched) -> Reading {
    let pids = match what {
        Watched::Pid(pid) => vec![*pid],
        Watched::Postgres(databases) => postgres_pids(databases.as_deref()),
        Watched::Machine => return machine(),
    };
    let mut reading = Reading::default();
    for pid in pids {
        if let Some((ticks, rss)) = stat(pid) {
            reading.ticks.insert(pid, ticks);
            reading.rss_kib += rss;
        }
    }
    reading
}

/// The busy ticks of all cores (everything but idle and iowait), as process 0.
fn machine() -> Reading {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|field| field.parse().ok())
        .collect();
    let busy = ticks.iter().sum::<u64>() - ticks.get(3..5).map_or(0, |idle| idle.iter().sum());
    let rss_kib = meminfo("MemTotal:").saturating_sub(meminfo("MemAvailable:"));
    Reading {
        ticks: HashMap::from([(0, busy)]),
        rss_kib,
    }
}

fn meminfo(key: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find(|line| line.starts_with(key))
        .and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// A process's CPU ticks (utime + stime) and RSS in KiB; `None` once it is gone.
fn stat(pid: u32) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it are plain.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime, rss_kib(pid).unwrap_or(0)))
}

/// `VmRSS` of a process, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn postgres_pids(databases: Option<&[String]>) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let cmdline = String::from_utf8_lossy(&cmdline);
            cmdline.starts_with("postgres:")
                && databases.is_none_or(|names| {
                    cmdline
                        .split_whitespace()
                        .any(|word| names.iter().any(|name| name == word))
                })
        })
        .collect()
}

/// `getconf CLK_TCK`, read once (100 on every Linux we run on).
fn clock_ticks_per_second() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|output| String::from_utf8_lossy(&output.stdout).trim().parse().ok())
            .unwrap_or(100)
    })
}
