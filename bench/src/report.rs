//! A run's report: its settings, the load or connection figures, and every process's CPU
//! and memory; printed as a table for people, or as JSON.

use crate::histogram::Percentiles;
use crate::measure::Usage;
use crate::scenarios::Timing;
use crate::system::Mode;
use crate::tally::LoadFigures;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub scenario: String,
    pub mode: Mode,
    pub date: String,
    pub settings: BTreeMap<String, String>,
    pub load: Option<LoadFigures>,
    pub connections: Option<ConnectionFigures>,
    /// Over the measured window (load), or while the connections were made (connections).
    pub processes: Vec<Usage>,
}

/// The idle and storm scenarios' figures.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ConnectionFigures {
    pub connections: u64,
    /// Idle: the gateway's RSS before and with every connection identified.
    pub gateway_rss_before_kib: u64,
    pub gateway_rss_after_kib: u64,
    pub kib_per_connection: f64,
    /// Idle: from the sends to the last connection's `message.created`.
    pub one_event_to_all_ms: Option<f64>,
    /// Idle: from the sends to the last one's HTTP answer.
    pub sends_answered_ms: Option<f64>,
    /// Storm: from the kill to the restarted gateway's `/readyz`.
    pub gateway_restart_ms: Option<f64>,
    /// Storm: from the kill until every connection is identified again.
    pub all_identified_again_ms: Option<f64>,
    /// Failed attempts by kind (connecting, identifying).
    pub errors: BTreeMap<String, u64>,
    /// Connections that were closed or broke (storm: every one, by the kill).
    pub dropped: u64,
    /// Idle: bus messages while the connections were made and identified.
    pub bus_messages_connecting: Option<u64>,
    /// Idle: the watch with nothing sent, if asked for.
    pub idle: Option<IdleFigures>,
}

/// What identified connections cost while nothing happens.
#[derive(Clone, Debug, Default, Serialize)]
pub struct IdleFigures {
    pub seconds: f64,
    /// Messages NATS received meanwhile (none measured in the all-in-one).
    pub bus_messages: Option<u64>,
    pub processes: Vec<Usage>,
}

impl Report {
    pub fn new(scenario: &str, mode: Mode, processes: Vec<Usage>) -> Self {
        Self {
            scenario: scenario.to_owned(),
            mode,
            date: today(),
            settings: BTreeMap::new(),
            load: None,
            connections: None,
            processes,
        }
    }

    pub fn setting(&mut self, name: &str, value: impl ToString) {
        self.settings.insert(name.to_owned(), value.to_string());
    }

    pub fn load(&mut self, figures: LoadFigures, rate: Option<f64>, timing: Timing) {
        let pace = rate.map_or("closed loop".to_owned(), |rate| {
            format!("open loop, {rate} msg/s")
        });
        self.setting("pace", pace);
        self.setting("warm-up s", timing.warmup.as_secs_f64());
        self.setting("measured s", timing.duration.as_secs_f64());
        self.load = Some(figures);
    }

    pub fn table(&self) -> String {
        let mut out = String::new();
        let settings: Vec<String> = self
            .settings
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        let _ = writeln!(
            out,
            "astral-bench {} ({}), {}; {}",
            self.scenario,
            self.mode.name(),
            self.date,
            settings.join(", ")
        );
        if let Some(load) = &self.load {
            load_table(&mut out, load);
        }
        if let Some(connections) = &self.connections {
            connection_table(&mut out, connections);
        }
        let _ = writeln!(out, "{:<34} {:>8} {:>10}", "process", "CPU %", "RSS MiB");
        for usage in &self.processes {
            let _ = writeln!(
                out,
                "{:<34} {:>8.1} {:>10.1}",
                usage.process, usage.cpu_percent, usage.rss_mib
            );
        }
        out
    }
}

fn load_table(out: &mut String, load: &LoadFigures) {
    let _ = writeln!(
        out,
        "sent {}  acknowledged {}  delivered {} of {}  lost {}  duplicated {}  errors {}",
        load.sent,
        load.acknowledged,
        load.delivered,
        load.expected,
        load.lost,
        load.duplicated,
        errors(&load.errors)
    );
    let _ = writeln!(
        out,
        "sent/s {:.0}  delivered/s {:.0}  budget waits {}  sockets closed early {}",
        load.sent_per_s, load.delivered_per_s, load.budget_waits, load.closed_early
    );
    let _ = writeln!(
        out,
        "{:<34} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "latency (ms)", "p50", "p90", "p99", "p99.9", "max", "count"
    );
    percentile_row(out, "due → receiver's socket", &load.latency);
    percentile_row(out, "due → HTTP answer", &load.answered);
}

fn percentile_row(out: &mut String, name: &str, p: &Percentiles) {
    let _ = writeln!(
        out,
        "{name:<34} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>9}",
        p.p50_ms, p.p90_ms, p.p99_ms, p.p999_ms, p.max_ms, p.count
    );
}

fn connection_table(out: &mut String, c: &ConnectionFigures) {
    let _ = writeln!(out, "connections {}", c.connections);
    if c.gateway_rss_after_kib > 0 {
        let _ = writeln!(
            out,
            "gateway RSS {} KiB before, {} KiB with the connections: {:.2} KiB per connection",
            c.gateway_rss_before_kib, c.gateway_rss_after_kib, c.kib_per_connection
        );
    }
    if let Some(ms) = c.one_event_to_all_ms {
        let _ = writeln!(out, "one event to every connection: {ms:.1} ms");
    }
    if let Some(ms) = c.sends_answered_ms {
        let _ = writeln!(out, "(the sends' HTTP answers: all within {ms:.1} ms)");
    }
    if let Some(ms) = c.gateway_restart_ms {
        let _ = writeln!(
            out,
            "gateway killed and restarted: ready again after {ms:.0} ms"
        );
    }
    if let Some(ms) = c.all_identified_again_ms {
        let _ = writeln!(
            out,
            "every connection identified again {ms:.0} ms after the kill"
        );
    }
    let _ = writeln!(
        out,
        "errors {}  connections dropped {}",
        errors(&c.errors),
        c.dropped
    );
    if let Some(messages) = c.bus_messages_connecting {
        let _ = writeln!(out, "bus messages while connecting: {messages}");
    }
    if let Some(idle) = &c.idle {
        let messages = idle.bus_messages.map_or("not measured".to_owned(), |m| {
            format!("{m} ({:.2}/s)", m as f64 / idle.seconds)
        });
        let _ = writeln!(
            out,
            "idle {:.0} s: bus messages {messages}; CPU meanwhile:",
            idle.seconds
        );
        for usage in &idle.processes {
            let _ = writeln!(
                out,
                "  {:<32} {:>8.2} % {:>8.1} MiB",
                usage.process, usage.cpu_percent, usage.rss_mib
            );
        }
    }
}

fn errors(errors: &BTreeMap<String, u64>) -> String {
    if errors.is_empty() {
        return "0".to_owned();
    }
    let parts: Vec<String> = errors
        .iter()
        .map(|(kind, n)| format!("{kind}: {n}"))
        .collect();
    format!("{} ({})", errors.values().sum::<u64>(), parts.join(", "))
}

/// Today's date (UTC), from `date`.
fn today() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .unwrap_or_default()
}
