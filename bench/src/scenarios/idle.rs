//! `idle`: K identified, heartbeating, idle connections on one gateway (from holder
//! processes, over many client addresses). Reports the gateway's memory per connection and
//! how long one message takes to reach every connection (each user is in a group of 50;
//! one message per group reaches all 20 connections of every member), and with
//! `--idle-secs` what the connections cost while nothing happens (bus messages, CPU).

use super::fleet::{self, Connections, DROPPED, Fleet};
use crate::client::api::Outcome;
use crate::holder::unix_us;
use crate::measure::Snapshot;
use crate::report::{ConnectionFigures, IdleFigures, Report};
use crate::system::{self, System};
use futures::StreamExt as _;
use std::time::Duration;

/// Members per group (the owner accepts 49 friend requests: within its budget of 60).
const GROUP: usize = 50;
/// How long memory may settle once every connection is identified.
const SETTLE: Duration = Duration::from_secs(2);
const DELIVER_WITHIN: Duration = Duration::from_secs(60);

pub async fn run(options: &system::Options, c: &Connections) -> anyhow::Result<Report> {
    let system = System::start(&fleet::options(options, c)).await?;
    eprintln!(
        "astral-bench: {} connections: registering, making groups…",
        c.connections
    );
    let users = fleet::users(&system, c).await?;
    let owners = groups(users.accounts.len());
    let pairs: Vec<(usize, usize)> = owners
        .iter()
        .flat_map(|(owner, members)| members.iter().map(|&m| (m, *owner)))
        .collect();
    users.befriend(&pairs).await?;
    let mut chats = Vec::new();
    for (owner, members) in &owners {
        chats.push(
            users
                .group(*owner, members, &format!("idle {owner}"))
                .await?,
        );
    }
    let before = fleet::gateway_rss(&system);
    let bus_before = system.bus_messages().await?;
    eprintln!("astral-bench: connecting…");
    let started = unix_us();
    let mut holders = Fleet::start(&system, &users, c)?;
    let snapshot = Snapshot::take(&holders.watched(&system));
    let (identified_at, mut errors) = holders.identified().await?;
    eprintln!(
        "astral-bench: all identified in {:.1} s",
        (identified_at - started) as f64 / 1e6
    );
    tokio::time::sleep(SETTLE).await;
    let after = fleet::gateway_rss(&system);
    let processes = snapshot.usage();
    let bus_connected = system.bus_messages().await?;
    let idle = watch_idle(&system, &holders, c.idle_secs).await?;
    let sent_at = unix_us();
    let outcomes: Vec<Outcome> = futures::stream::iter(owners.iter().zip(&chats))
        .map(|((owner, _), chat)| {
            let (api, token) = (
                users.api(*owner).clone(),
                users.accounts[*owner].token.clone(),
            );
            let nonce = format!("idle.{owner}.{sent_at}");
            async move { api.send(&token, chat, &nonce).await }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let answered_at = unix_us();
    let refused = outcomes
        .iter()
        .filter(|o| **o != Outcome::Status(201))
        .count();
    anyhow::ensure!(
        refused == 0,
        "{refused} of the group messages were refused: {outcomes:?}"
    );
    let (received_at, _) = holders.next("received", sent_at, DELIVER_WITHIN).await?;
    drop(holders);
    let mut report = Report::new("idle", options.mode, processes);
    report.setting("connections", c.connections);
    report.setting("holder processes", c.connections.div_ceil(c.per_process));
    report.setting("groups (one message each)", chats.len());
    report.connections = Some(ConnectionFigures {
        connections: c.connections as u64,
        gateway_rss_before_kib: before,
        gateway_rss_after_kib: after,
        kib_per_connection: after.saturating_sub(before) as f64 / c.connections as f64,
        one_event_to_all_ms: Some(received_at.saturating_sub(sent_at) as f64 / 1000.0),
        sends_answered_ms: Some(answered_at.saturating_sub(sent_at) as f64 / 1000.0),
        dropped: errors.remove(DROPPED).unwrap_or(0),
        errors,
        bus_messages_connecting: bus_before
            .zip(bus_connected)
            .map(|(before, after)| after.saturating_sub(before)),
        idle,
        ..ConnectionFigures::default()
    });
    Ok(report)
}

/// Watches the identified connections for `seconds` with nothing sent: what they cost
/// then (presence renewals, heartbeats); `None` when not asked for.
async fn watch_idle(
    system: &System,
    holders: &Fleet,
    seconds: u64,
) -> anyhow::Result<Option<IdleFigures>> {
    if seconds == 0 {
        return Ok(None);
    }
    eprintln!("astral-bench: watching {seconds} s with nothing sent…");
    let snapshot = Snapshot::take(&holders.watched(system));
    let before = system.bus_messages().await?;
    let started = std::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let after = system.bus_messages().await?;
    Ok(Some(IdleFigures {
        seconds: started.elapsed().as_secs_f64(),
        bus_messages: before.zip(after).map(|(b, a)| a.saturating_sub(b)),
        processes: snapshot.usage(),
    }))
}

/// Users in groups of [`GROUP`]: (owner, the other members); a last group of one joins the
/// one before.
fn groups(users: usize) -> Vec<(usize, Vec<usize>)> {
    let mut groups: Vec<(usize, Vec<usize>)> = (0..users)
        .step_by(GROUP)
        .map(|owner| (owner, (owner + 1..(owner + GROUP).min(users)).collect()))
        .collect();
    if groups.len() > 1
        && groups.last().is_some_and(|(_, members)| members.is_empty())
        && let Some((lonely, _)) = groups.pop()
        && let Some((_, members)) = groups.last_mut()
    {
        members.push(lonely);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_user_is_in_one_group_and_nobody_is_alone() {
        let made = groups(101);
        assert_eq!(made.len(), 2);
        assert_eq!(made[1].1.len(), 50);
        let everyone: usize = made.iter().map(|(_, members)| members.len() + 1).sum();
        assert_eq!(everyone, 101);
    }
}
