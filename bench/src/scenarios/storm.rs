//! `storm`: K identified connections, then the gateway process is killed (SIGKILL) and
//! started again at once; every client reconnects with jittered exponential back-off.
//! Reports how long until every connection is identified again, and what failed meanwhile.

use super::fleet::{self, Connections, DROPPED, Fleet};
use crate::holder::unix_us;
use crate::measure::Snapshot;
use crate::report::{ConnectionFigures, Report};
use crate::system::{self, System};
use std::time::Duration;

/// How long the connections may take to come back.
const RECOVER_WITHIN: Duration = Duration::from_secs(300);

pub async fn run(options: &system::Options, c: &Connections) -> anyhow::Result<Report> {
    let mut system = System::start(&fleet::options(options, c)).await?;
    eprintln!("astral-bench: {} connections: registering…", c.connections);
    let users = fleet::users(&system, c).await?;
    eprintln!("astral-bench: connecting…");
    let mut holders = Fleet::start(&system, &users, c)?;
    let (_, before) = holders.identified().await?;
    eprintln!("astral-bench: all identified; killing the gateway");
    let killed_at = unix_us();
    let restart = system.restart_gateway().await?;
    let snapshot = Snapshot::take(&holders.watched(&system));
    let (identified_at, after) = holders
        .next("identified", killed_at, RECOVER_WITHIN)
        .await?;
    let processes = snapshot.usage();
    drop(holders);
    let mut errors = after;
    for (kind, count) in before {
        if let Some(total) = errors.get_mut(&kind) {
            *total = total.saturating_sub(count);
        }
    }
    errors.retain(|_, count| *count > 0);
    let mut report = Report::new("storm", options.mode, processes);
    report.setting("connections", c.connections);
    report.setting("holder processes", c.connections.div_ceil(c.per_process));
    report.connections = Some(ConnectionFigures {
        connections: c.connections as u64,
        gateway_restart_ms: Some(restart.as_secs_f64() * 1000.0),
        all_identified_again_ms: Some(identified_at.saturating_sub(killed_at) as f64 / 1000.0),
        dropped: errors.remove(DROPPED).unwrap_or(0),
        errors,
        ..ConnectionFigures::default()
    });
    Ok(report)
}
