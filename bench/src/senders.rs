//! Senders: each user sends into one chat over HTTP, on a fixed schedule (open loop:
//! latency counts from each message's due time, so a stall shows instead of slowing the
//! senders down) or as fast as answers come back (closed loop), never past the user's send
//! budget (100 at once, then 20 a second).

use crate::client::api::{Api, Outcome};
use crate::histogram::Histogram;
use crate::nonce::{Nonce, Window};
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Sends a sender may have waiting for an answer (open loop); more wait their turn, late.
const IN_FLIGHT: usize = 4;
/// The send budget, kept on the client's side a little under the server's (100 at once,
/// then one every 50 ms) so that a closed loop is paced, not refused.
const BUDGET_BURST: u32 = 90;
const BUDGET_INTERVAL: Duration = Duration::from_millis(52);
/// The most a sender may be asked for in the open loop (the budget is 20 a second).
pub const MAX_RATE_PER_SENDER: f64 = 19.0;

/// One sender: a user, the chat it sends to, its HTTP client.
pub struct Sender {
    pub index: u32,
    pub token: String,
    pub chat: String,
    pub api: Api,
}

#[derive(Clone, Copy, Debug)]
pub enum Pace {
    /// The next send when the last one is answered.
    Closed,
    /// One send every `period`, this sender's first at `offset`.
    Open { period: Duration, offset: Duration },
}

/// What one sender did.
#[derive(Default)]
pub struct SenderTally {
    pub index: u32,
    /// The sequence numbers the system acknowledged (201), warm-up included.
    pub acked: Vec<u32>,
    /// Acknowledged sends that were due in the measured window.
    pub acked_measured: u64,
    /// Sends due in the measured window.
    pub sent_measured: u64,
    /// How the measured sends ended.
    pub outcomes: BTreeMap<Outcome, u64>,
    /// Due time → HTTP answer, measured sends.
    pub answered: Histogram,
    /// Closed loop: sends held back to stay within the budget.
    pub budget_waits: u64,
}

/// Sends until the window ends; counts acknowledged sends in `acked_total` as they come.
pub async fn run(
    sender: Sender,
    pace: Pace,
    window: Window,
    acked_total: Arc<AtomicU64>,
) -> SenderTally {
    let mut tally = SenderTally {
        index: sender.index,
        ..SenderTally::default()
    };
    match pace {
        Pace::Closed => closed(&sender, window, &mut tally, &acked_total).await,
        Pace::Open { period, offset } => {
            open(&sender, period, offset, window, &mut tally, &acked_total).await
        }
    }
    tally
}

async fn closed(sender: &Sender, window: Window, tally: &mut SenderTally, acked_total: &AtomicU64) {
    let mut budget = Budget::new();
    let mut seq = 0;
    loop {
        if budget.take().await {
            tally.budget_waits += 1;
        }
        let due_us = window.now_us();
        if due_us >= window.end_us {
            return;
        }
        let outcome = send(sender, seq, due_us).await;
        tally.record(seq, due_us, outcome, window, acked_total);
        seq += 1;
    }
}

async fn open(
    sender: &Sender,
    period: Duration,
    offset: Duration,
    window: Window,
    tally: &mut SenderTally,
    acked_total: &AtomicU64,
) {
    let period_us = period.as_micros() as u64;
    let mut next_due = offset.as_micros() as u64;
    let mut seq = 0;
    let mut in_flight = FuturesUnordered::new();
    loop {
        let may_send = next_due < window.end_us && in_flight.len() < IN_FLIGHT;
        if next_due >= window.end_us && in_flight.is_empty() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(window.at(next_due)), if may_send => {
                let (this, due_us) = (seq, next_due);
                in_flight.push(async move { (this, due_us, send(sender, this, due_us).await) });
                seq += 1;
                next_due += period_us;
            }
            Some((seq, due_us, outcome)) = in_flight.next() => {
                tally.record(seq, due_us, outcome, window, acked_total);
            }
        }
    }
}

async fn send(sender: &Sender, seq: u32, due_us: u64) -> Outcome {
    let nonce = Nonce {
        sender: sender.index,
        seq,
        due_us,
    }
    .encode();
    sender.api.send(&sender.token, &sender.chat, &nonce).await
}

impl SenderTally {
    fn record(
        &mut self,
        seq: u32,
        due_us: u64,
        outcome: Outcome,
        window: Window,
        acked_total: &AtomicU64,
    ) {
        let acked = outcome == Outcome::Status(201);
        if acked {
            self.acked.push(seq);
            acked_total.fetch_add(1, Ordering::Relaxed);
        }
        if window.measures(due_us) {
            self.sent_measured += 1;
            self.acked_measured += u64::from(acked);
            *self.outcomes.entry(outcome).or_default() += 1;
            self.answered.record(window.now_us().saturating_sub(due_us));
        }
    }
}

/// The user's send budget as a client keeps it (GCRA: a theoretical arrival time).
struct Budget {
    arrival: tokio::time::Instant,
}

impl Budget {
    fn new() -> Self {
        Self {
            arrival: tokio::time::Instant::now(),
        }
    }

    /// Waits until one more send fits; says whether it had to wait.
    async fn take(&mut self) -> bool {
        let now = tokio::time::Instant::now();
        let arrival = self.arrival.max(now);
        let allowed_at = arrival
            .checked_sub(BUDGET_INTERVAL * (BUDGET_BURST - 1))
            .unwrap_or(now);
        let waited = allowed_at > now;
        if waited {
            tokio::time::sleep_until(allowed_at).await;
        }
        self.arrival = arrival + BUDGET_INTERVAL;
        waited
    }
}
