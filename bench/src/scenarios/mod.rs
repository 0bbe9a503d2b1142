//! The scenarios, and what the load scenarios share: running senders and receivers for a
//! warm-up and a measured window, measuring the processes meanwhile, waiting for the last
//! deliveries, and adding it all up.

pub mod direct;
pub mod fleet;
pub mod group;
pub mod idle;
pub mod storm;

use crate::client::socket::Identified;
use crate::measure::{Snapshot, Usage, Watched};
use crate::nonce::Window;
use crate::receivers::{self, ReceiverTally};
use crate::senders::{self, MAX_RATE_PER_SENDER, Pace, Sender, SenderTally};
use crate::system::System;
use crate::tally::{self, LoadFigures};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a load runs.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub warmup: Duration,
    pub duration: Duration,
    /// After the window: how long deliveries may still take before the missing are lost.
    pub drain: Duration,
}

/// Who sends, who listens, and whom each sender's messages must reach.
pub struct Traffic {
    pub senders: Vec<Sender>,
    pub receivers: Vec<(u32, Identified)>,
    pub receivers_of: Box<dyn Fn(u32) -> Vec<u32> + Send>,
    /// Deliveries each acknowledged message should make.
    pub fan_out: u64,
}

/// The pace of each sender: closed loop, or `rate` messages a second in all, spread
/// evenly over the senders (refused if a sender would exceed its budget).
pub fn paces(count: usize, rate: Option<f64>) -> anyhow::Result<Vec<Pace>> {
    let Some(rate) = rate else {
        return Ok(vec![Pace::Closed; count]);
    };
    let per_sender = rate / count as f64;
    anyhow::ensure!(
        per_sender <= MAX_RATE_PER_SENDER,
        "{rate} msg/s over {count} senders is {per_sender:.1} each, above a user's send budget \
         (20 a second): use more senders"
    );
    let period = Duration::from_secs_f64(1.0 / per_sender);
    Ok((0..count)
        .map(|n| Pace::Open {
            period,
            offset: period.mul_f64(n as f64 / count as f64),
        })
        .collect())
}

/// Runs `traffic`; returns the figures and each process's CPU and memory over the window.
pub async fn drive(
    traffic: Traffic,
    paces: Vec<Pace>,
    timing: Timing,
    system: &System,
) -> (LoadFigures, Vec<Usage>) {
    let window = Window {
        start: Instant::now(),
        measure_from_us: timing.warmup.as_micros() as u64,
        end_us: (timing.warmup + timing.duration).as_micros() as u64,
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let delivered = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(AtomicU64::new(0));
    let receiving: Vec<_> = traffic
        .receivers
        .into_iter()
        .map(|(index, socket)| {
            tokio::spawn(receivers::run(
                index,
                socket,
                window,
                stopped.clone(),
                delivered.clone(),
            ))
        })
        .collect();
    let sending: Vec<_> = traffic
        .senders
        .into_iter()
        .zip(paces)
        .map(|(sender, pace)| tokio::spawn(senders::run(sender, pace, window, acked.clone())))
        .collect();
    tokio::time::sleep_until(window.at(window.measure_from_us)).await;
    let mut watched = system.watched();
    watched.push((
        "astral-bench (load generator)".to_owned(),
        Watched::Pid(std::process::id()),
    ));
    watched.push(("whole machine (every process)".to_owned(), Watched::Machine));
    let snapshot = Snapshot::take(&watched);
    tokio::time::sleep_until(window.at(window.end_us)).await;
    let usage = snapshot.usage();
    let senders: Vec<SenderTally> = join(sending).await;
    drain(
        &delivered,
        acked.load(Ordering::Relaxed) * traffic.fan_out,
        timing.drain,
    )
    .await;
    let _ = stop.send(true);
    let receivers: Vec<ReceiverTally> = join(receiving).await;
    (
        tally::figures(&senders, &receivers, traffic.receivers_of, window),
        usage,
    )
}

/// Waits until `expected` deliveries have been counted, or `within` has passed.
async fn drain(delivered: &AtomicU64, expected: u64, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    while delivered.load(Ordering::Relaxed) < expected && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn join<T>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        match task.await {
            Ok(result) => results.push(result),
            Err(error) => eprintln!("astral-bench: a task failed: {error}"),
        }
    }
    results
}
