//! From what the senders and receivers counted to the figures of a run: sent, delivered,
//! lost (acknowledged but never delivered), duplicated, errors, rates and percentiles.

use crate::client::api::Outcome;
use crate::histogram::{Histogram, Percentiles};
use crate::nonce::Window;
use crate::receivers::ReceiverTally;
use crate::senders::SenderTally;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// The figures of a load run (the measured window, unless said otherwise).
#[derive(Clone, Debug, Default, Serialize)]
pub struct LoadFigures {
    /// Messages due in the window that were sent.
    pub sent: u64,
    /// Of those, acknowledged (201).
    pub acknowledged: u64,
    /// Deliveries to receivers' sockets of messages sent in the window.
    pub delivered: u64,
    /// Deliveries expected: acknowledged × receivers per message.
    pub expected: u64,
    /// Deliveries of acknowledged messages (warm-up included) that never happened.
    pub lost: u64,
    /// Extra copies delivered (warm-up included).
    pub duplicated: u64,
    /// Sends not answered 201, by status ("no answer": the connection failed).
    pub errors: BTreeMap<String, u64>,
    /// Messages due per second in the window (the rate offered, in the open loop).
    pub sent_per_s: f64,
    /// Deliveries per second, over the window or, if the last delivery came later, from
    /// the window's start to the last delivery (what the system kept up with).
    pub delivered_per_s: f64,
    /// Due time → the receiver's socket.
    pub latency: Percentiles,
    /// Due time → the HTTP answer.
    pub answered: Percentiles,
    /// Closed loop: sends that waited for the user's budget.
    pub budget_waits: u64,
    /// Receivers whose connection ended during the run.
    pub closed_early: u64,
}

/// Adds it all up. `receivers_of(sender)` names the receivers each message should reach.
pub fn figures(
    senders: &[SenderTally],
    receivers: &[ReceiverTally],
    receivers_of: impl Fn(u32) -> Vec<u32>,
    window: Window,
) -> LoadFigures {
    let by_index: HashMap<u32, &ReceiverTally> = receivers.iter().map(|r| (r.index, r)).collect();
    let mut figures = LoadFigures::default();
    let (mut latency, mut answered) = (Histogram::default(), Histogram::default());
    for sender in senders {
        let targets = receivers_of(sender.index);
        figures.sent += sender.sent_measured;
        figures.acknowledged += sender.acked_measured;
        figures.expected += sender.acked_measured * targets.len() as u64;
        figures.budget_waits += sender.budget_waits;
        answered.merge(&sender.answered);
        for (outcome, count) in sender
            .outcomes
            .iter()
            .filter(|(o, _)| **o != Outcome::Status(201))
        {
            *figures.errors.entry(describe(*outcome)).or_default() += count;
        }
        for seq in &sender.acked {
            let missing = targets
                .iter()
                .filter(|target| {
                    by_index
                        .get(target)
                        .is_none_or(|r| r.times(sender.index, *seq) == 0)
                })
                .count();
            figures.lost += missing as u64;
        }
    }
    for receiver in receivers {
        figures.delivered += receiver.delivered_measured;
        latency.merge(&receiver.latency);
        figures.closed_early += u64::from(receiver.closed_early.is_some());
        figures.duplicated += receiver
            .counts
            .values()
            .flatten()
            .map(|times| u64::from(times.saturating_sub(1)))
            .sum::<u64>();
    }
    let seconds = window.measured_seconds().max(1e-9);
    let last_us = receivers.iter().map(|r| r.last_us).max().unwrap_or(0);
    let until_last = last_us.saturating_sub(window.measure_from_us) as f64 / 1e6;
    figures.sent_per_s = figures.sent as f64 / seconds;
    figures.delivered_per_s = figures.delivered as f64 / seconds.max(until_last);
    figures.latency = latency.percentiles();
    figures.answered = answered.percentiles();
    figures
}

fn describe(outcome: Outcome) -> String {
    match outcome {
        Outcome::Status(status) => format!("HTTP {status}"),
        Outcome::NoAnswer => "no answer".to_owned(),
    }
}
