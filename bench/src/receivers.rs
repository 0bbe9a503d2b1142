//! Receivers: an identified socket per user, counting every benchmark message that reaches
//! it (per sender and sequence number, to find losses and copies) and its latency from the
//! message's due time.

use crate::client::socket::{self, Identified};
use crate::histogram::Histogram;
use crate::nonce::{Nonce, Window};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// What one receiver saw.
#[derive(Default)]
pub struct ReceiverTally {
    pub index: u32,
    /// Per sender, how often each sequence number arrived.
    pub counts: HashMap<u32, Vec<u8>>,
    /// Deliveries of messages due in the measured window.
    pub delivered_measured: u64,
    /// Due time → this socket, measured messages.
    pub latency: Histogram,
    /// When the last measured message arrived (µs since the run's start).
    pub last_us: u64,
    /// How the connection ended, if it ended before it was told to stop.
    pub closed_early: Option<String>,
}

impl ReceiverTally {
    fn count(&mut self, nonce: Nonce, window: Window) {
        let seqs = self.counts.entry(nonce.sender).or_default();
        let seq = nonce.seq as usize;
        if seqs.len() <= seq {
            seqs.resize(seq + 1, 0);
        }
        seqs[seq] = seqs[seq].saturating_add(1);
        if window.measures(nonce.due_us) {
            let now = window.now_us();
            self.delivered_measured += 1;
            self.latency.record(now.saturating_sub(nonce.due_us));
            self.last_us = self.last_us.max(now);
        }
    }

    /// How often `sender`'s message `seq` arrived here.
    pub fn times(&self, sender: u32, seq: u32) -> u8 {
        self.counts
            .get(&sender)
            .and_then(|seqs| seqs.get(seq as usize))
            .copied()
            .unwrap_or(0)
    }
}

/// Listens on `identified` as user `index` until `stop` turns true; its own messages (a
/// group member's echo) are not counted. `delivered` counts every delivery as it happens.
pub async fn run(
    index: u32,
    identified: Identified,
    window: Window,
    mut stop: tokio::sync::watch::Receiver<bool>,
    delivered: Arc<AtomicU64>,
) -> ReceiverTally {
    let mut tally = ReceiverTally {
        index,
        ..ReceiverTally::default()
    };
    let stopped = Box::pin(async move {
        let _ = stop.wait_for(|stop| *stop).await;
    });
    let ended = socket::listen(identified, stopped, |text| {
        let Some(nonce) = Nonce::parse(text) else {
            return;
        };
        if nonce.sender != index {
            tally.count(nonce, window);
            delivered.fetch_add(1, Ordering::Relaxed);
        }
    })
    .await;
    if let socket::Ended::Closed(code) = ended {
        tally.closed_early = Some(format!("closed ({code:?})"));
    }
    tally
}
