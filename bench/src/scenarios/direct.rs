//! `direct`: N pairs of friends, each with its direct chat; one of each pair sends over
//! HTTP, the other's identified socket receives `message.created`.

use super::{Timing, Traffic, drive, paces};
use crate::population::Population;
use crate::report::Report;
use crate::senders::Sender;
use crate::system::{self, System};
use std::net::SocketAddr;

/// Pairs per client address: 40 receivers' sockets and up to 160 senders' connections,
/// under a gateway's 256 per address.
const PAIRS_PER_ADDRESS: usize = 40;

pub struct Direct {
    pub pairs: usize,
    /// Messages a second in all (open loop); closed loop if `None`.
    pub rate: Option<f64>,
    pub timing: Timing,
}

pub async fn run(options: &system::Options, direct: &Direct) -> anyhow::Result<Report> {
    let paces = paces(direct.pairs, direct.rate)?;
    let system = System::start(options).await?;
    eprintln!(
        "astral-bench: {} pairs: registering, befriending, connecting…",
        direct.pairs
    );
    let users = Population::register(
        &system.base,
        "pair_",
        2 * direct.pairs,
        2 * PAIRS_PER_ADDRESS,
    )
    .await?;
    // User 2p sends to user 2p + 1.
    let pairs: Vec<(usize, usize)> = (0..direct.pairs).map(|p| (2 * p, 2 * p + 1)).collect();
    users.befriend(&pairs).await?;
    let chats = users.direct_chats(&pairs).await?;
    let gateway = SocketAddr::from(([127, 0, 0, 1], system.port));
    let receiving: Vec<usize> = pairs.iter().map(|&(_, b)| b).collect();
    let sockets = users.connect(gateway, &receiving).await?;
    let senders = pairs
        .iter()
        .zip(chats)
        .map(|(&(a, _), chat)| Sender {
            index: a as u32,
            token: users.accounts[a].token.clone(),
            chat,
            api: users.api(a).clone(),
        })
        .collect();
    let traffic = Traffic {
        senders,
        receivers: receiving.iter().map(|&b| b as u32).zip(sockets).collect(),
        receivers_of: Box::new(|sender| vec![sender + 1]),
        fan_out: 1,
    };
    eprintln!("astral-bench: sending…");
    let (figures, processes) = drive(traffic, paces, direct.timing, &system).await;
    let mut report = Report::new("direct", options.mode, processes);
    report.setting("pairs", direct.pairs);
    report.load(figures, direct.rate, direct.timing);
    Ok(report)
}
