//! Admission control for identifying. Loading `ready` asks the services for the user's chats,
//! so a gateway lets only so many WebSockets identify at once; a bounded number wait their
//! turn (in order), and the rest are told to come back a little later (close 1013 with a
//! retry hint, `docs/protocol.md`) rather than piling onto the services — as 15,000 clients
//! reconnecting at once after a gateway restart would.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// WebSockets identifying at once, and waiting for their turn, unless configured
/// (`ASTRAL_MAX_IDENTIFYING`, `ASTRAL_MAX_WAITING_TO_IDENTIFY`; docs/architecture.md says why).
pub const IDENTIFYING_AT_ONCE: usize = 32;
pub const WAITING_TO_IDENTIFY: usize = 1000;
/// How long a client told to come back should wait at least (it adds its own jitter).
pub const RETRY_AFTER: Duration = Duration::from_secs(1);
/// How long a connection waits for its turn before it is told to come back.
pub const MAX_WAIT: Duration = Duration::from_secs(5);

/// The turns to identify on one gateway.
#[derive(Clone)]
pub struct IdentifyQueue {
    turns: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
}

/// A connection's turn to identify; the next one's begins when it is dropped.
pub type Turn = OwnedSemaphorePermit;

impl IdentifyQueue {
    /// At most `at_once` identifying at a time (at least one), `max_waiting` waiting.
    pub fn new(at_once: usize, max_waiting: usize) -> Self {
        Self {
            turns: Arc::new(Semaphore::new(at_once.max(1))),
            waiting: Arc::default(),
            max_waiting,
        }
    }

    /// Connections waiting for their turn.
    #[cfg(test)]
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// This connection's turn, at once or after a wait; `None` if too many are waiting
    /// already or the wait passed [`MAX_WAIT`]: the client is to come back later.
    pub async fn turn(&self) -> Option<Turn> {
        if let Ok(turn) = self.turns.clone().try_acquire_owned() {
            return Some(turn);
        }
        let turn = match Place::take(&self.waiting, self.max_waiting) {
            Some(_place) => tokio::time::timeout(MAX_WAIT, self.turns.clone().acquire_owned())
                .await
                .ok()
                .and_then(Result::ok),
            None => None,
        };
        if turn.is_none() {
            metrics::counter!("astral_ws_identify_deferred_total").increment(1);
        }
        turn
    }
}

/// A place among those waiting; given up when dropped.
struct Place<'a>(&'a AtomicUsize);

impl<'a> Place<'a> {
    fn take(waiting: &'a AtomicUsize, max: usize) -> Option<Self> {
        let taken = waiting.fetch_add(1, Ordering::AcqRel);
        let place = Self(waiting);
        (taken < max).then_some(place)
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn turns_past_the_limit_wait_and_those_past_the_queue_come_back_later() {
        let queue = IdentifyQueue::new(1, 1);
        let first = queue.turn().await.expect("a turn at once");
        let waiting = tokio::spawn({
            let queue = queue.clone();
            async move { queue.turn().await.is_some() }
        });
        let queued = async {
            while queue.waiting.load(Ordering::Acquire) == 0 {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), queued)
            .await
            .expect("the second waits");
        assert!(queue.turn().await.is_none(), "the queue is full: later");
        drop(first);
        let waited = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        assert!(waited.unwrap().unwrap(), "the waiting one had its turn");
        assert_eq!(queue.waiting.load(Ordering::Acquire), 0);
    }
}
