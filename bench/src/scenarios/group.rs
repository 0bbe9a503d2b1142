//! `group`: groups of M members (50 by default), every member with an identified socket
//! and sending into its group over HTTP; one send fans out to the M − 1 other members'
//! sockets. The figure is delivered events a second.

use super::{Timing, Traffic, drive, paces};
use crate::population::Population;
use crate::report::Report;
use crate::senders::Sender;
use crate::system::{self, System};
use std::net::SocketAddr;

/// Members per client address: 40 sockets and up to 160 sending connections.
const MEMBERS_PER_ADDRESS: usize = 40;

pub struct Group {
    pub groups: usize,
    pub size: usize,
    pub rate: Option<f64>,
    pub timing: Timing,
}

pub async fn run(options: &system::Options, group: &Group) -> anyhow::Result<Report> {
    anyhow::ensure!(
        (2..=50).contains(&group.size),
        "a group here has 2 to 50 members"
    );
    let members = group.groups * group.size;
    let paces = paces(members, group.rate)?;
    let system = System::start(options).await?;
    eprintln!(
        "astral-bench: {} groups of {}: registering, befriending, connecting…",
        group.groups, group.size
    );
    let users = Population::register(&system.base, "member_", members, MEMBERS_PER_ADDRESS).await?;
    let chats = make_groups(&users, group.groups, group.size).await?;
    let gateway = SocketAddr::from(([127, 0, 0, 1], system.port));
    let everyone: Vec<usize> = (0..members).collect();
    let sockets = users.connect(gateway, &everyone).await?;
    let senders = everyone
        .iter()
        .map(|&n| Sender {
            index: n as u32,
            token: users.accounts[n].token.clone(),
            chat: chats[n / group.size].clone(),
            api: users.api(n).clone(),
        })
        .collect();
    let size = group.size as u32;
    let traffic = Traffic {
        senders,
        receivers: everyone.iter().map(|&n| n as u32).zip(sockets).collect(),
        receivers_of: Box::new(move |sender| {
            let first = sender / size * size;
            (first..first + size)
                .filter(|&member| member != sender)
                .collect()
        }),
        fan_out: u64::from(size - 1),
    };
    eprintln!("astral-bench: sending…");
    let (figures, processes) = drive(traffic, paces, group.timing, &system).await;
    let mut report = Report::new("group", options.mode, processes);
    report.setting("groups", group.groups);
    report.setting("members per group", group.size);
    report.load(figures, group.rate, group.timing);
    Ok(report)
}

/// Groups of `size` consecutive users, the first of each the owner (whom every other
/// member asks to be friends: one request each, the owner's 49 accepts fit its budget of
/// 60 a minute); returns each group's chat id.
pub async fn make_groups(
    users: &Population,
    groups: usize,
    size: usize,
) -> anyhow::Result<Vec<String>> {
    let pairs: Vec<(usize, usize)> = (0..groups)
        .flat_map(|g| (1..size).map(move |k| (g * size + k, g * size)))
        .collect();
    users.befriend(&pairs).await?;
    let mut chats = Vec::with_capacity(groups);
    for g in 0..groups {
        let owner = g * size;
        let members: Vec<usize> = (owner + 1..owner + size).collect();
        chats.push(users.group(owner, &members, &format!("group {g}")).await?);
    }
    Ok(chats)
}
