//! When the token keys are fetched again because a token named a key this process does not
//! know. A rotation makes that happen once; a forged key id can make it happen on every
//! request, so such fetches are rationed: at most one per [`GAP`] across all requests, and a
//! fetch in progress is shared by every request that finds one.

use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

/// The least time between two fetches asked for by tokens naming unknown keys.
pub const GAP: Duration = Duration::from_secs(5);

/// What a request that met an unknown key id should do.
pub enum Asked {
    /// A fetch is under way: wait for it (briefly), then look again.
    Wait(watch::Receiver<u64>),
    /// A fetch happened less than [`GAP`] ago: answer now. One more is made when the gap
    /// has passed, so a key rotated meanwhile is still learned.
    TooSoon,
}

/// The fetches asked for, between the requests that ask and the task that fetches.
pub struct KeyFetches {
    state: Mutex<State>,
    /// Wakes the fetching task.
    wake: Notify,
    /// Counts the fetches finished (successful or not).
    finished: watch::Sender<u64>,
}

struct State {
    /// A fetch is running (or about to).
    running: bool,
    /// When the last fetch asked for by a request started.
    last_asked: Option<Instant>,
    /// A request asked during the gap: fetch when it ends.
    pending: bool,
}

impl Default for KeyFetches {
    fn default() -> Self {
        Self {
            // The first fetch starts with the process.
            state: Mutex::new(State {
                running: true,
                last_asked: None,
                pending: false,
            }),
            wake: Notify::new(),
            finished: watch::Sender::new(0),
        }
    }
}

impl KeyFetches {
    /// A request met an unknown key id.
    pub fn ask(&self) -> Asked {
        let mut state = self.lock();
        // Subscribed under the lock: the fetch it waits for cannot finish unseen.
        let finished = self.finished.subscribe();
        if state.running {
            return Asked::Wait(finished);
        }
        let now = Instant::now();
        if state.last_asked.is_some_and(|at| now < at + GAP) {
            state.pending = true;
            self.wake.notify_one();
            return Asked::TooSoon;
        }
        state.running = true;
        state.pending = false;
        state.last_asked = Some(now);
        self.wake.notify_one();
        Asked::Wait(finished)
    }

    /// Waits until a fetch is due: one a request asked for (at most one per [`GAP`]), or
    /// the periodic one after `every`.
    pub async fn due(&self, every: Duration) {
        let periodic = Instant::now() + every;
        loop {
            let wait_until = {
                let mut state = self.lock();
                let now = Instant::now();
                if state.running {
                    return;
                }
                let asked_due = state
                    .pending
                    .then(|| state.last_asked.map_or(now, |at| at + GAP));
                if asked_due.is_some_and(|due| now >= due) {
                    state.last_asked = Some(now);
                }
                if asked_due.is_some_and(|due| now >= due) || now >= periodic {
                    state.pending = false;
                    state.running = true;
                    return;
                }
                asked_due.map_or(periodic, |due| due.min(periodic))
            };
            let _ = tokio::time::timeout_at(wait_until, self.wake.notified()).await;
        }
    }

    /// The fetch is over: whoever waited for it looks again.
    pub fn finished(&self) {
        self.lock().running = false;
        self.finished.send_modify(|count| *count += 1);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
