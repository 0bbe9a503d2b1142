//! The gateway's WebSockets: how many it holds (identified ones per user, ones not identified
//! yet per client address; each a slot that counts until dropped), whose turn it is to
//! identify (`identify_queue.rs`), and the word to drain.

use crate::identify_queue::{IDENTIFYING_AT_ONCE, IdentifyQueue, Turn, WAITING_TO_IDENTIFY};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::watch;

/// The most WebSocket connections one user may hold on one gateway.
pub const MAX_CONNECTIONS_PER_USER: usize = 20;

/// Live connections on this gateway: identified ones per user, the others per address.
#[derive(Clone)]
pub struct Connections {
    users: Arc<Mutex<HashMap<String, usize>>>,
    unidentified: Arc<Mutex<HashMap<String, usize>>>,
    /// Identified connections in all, watched by a draining gateway.
    total: Arc<watch::Sender<usize>>,
    /// Set when the gateway is shutting down: connections send `reconnect` and close.
    draining: Arc<watch::Sender<bool>>,
    /// Turns to identify (load `ready`).
    identifying: IdentifyQueue,
}

impl Default for Connections {
    fn default() -> Self {
        Self::new(IdentifyQueue::new(IDENTIFYING_AT_ONCE, WAITING_TO_IDENTIFY))
    }
}

impl Connections {
    /// No connections yet; turns to identify given by `identifying`.
    pub fn new(identifying: IdentifyQueue) -> Self {
        Self {
            users: Arc::default(),
            unidentified: Arc::default(),
            total: Arc::new(watch::Sender::new(0)),
            draining: Arc::new(watch::Sender::new(false)),
            identifying,
        }
    }

    /// Connections waiting for their turn to identify.
    #[cfg(test)]
    pub fn waiting_to_identify(&self) -> usize {
        self.identifying.waiting()
    }

    /// Waits for a connection's turn to identify; `None`: come back later.
    pub async fn turn_to_identify(&self) -> Option<Turn> {
        self.identifying.turn().await
    }

    /// A slot for one more connection of `user`, unless they have the most allowed.
    pub fn admit(&self, user: &str) -> Option<ConnectionSlot> {
        let mut users = lock(&self.users);
        let count = users.entry(user.to_owned()).or_default();
        if *count >= MAX_CONNECTIONS_PER_USER {
            return None;
        }
        *count += 1;
        self.total.send_modify(|total| *total += 1);
        metrics::gauge!("astral_ws_connections").increment(1.0);
        Some(ConnectionSlot {
            total: self.total.clone(),
            _slot: Slot {
                counts: self.users.clone(),
                key: user.to_owned(),
            },
        })
    }

    /// A slot for one more connection from `address` that has not identified yet, unless
    /// `max` such connections are open from there.
    pub fn admit_unidentified(&self, address: &str, max: usize) -> Option<UnidentifiedSlot> {
        let mut unidentified = lock(&self.unidentified);
        let count = unidentified.entry(address.to_owned()).or_default();
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(UnidentifiedSlot {
            _slot: Slot {
                counts: self.unidentified.clone(),
                key: address.to_owned(),
            },
        })
    }

    /// Identified connections on this gateway.
    pub fn total(&self) -> usize {
        *self.total.borrow()
    }

    /// Tells every connection to send `reconnect` and close (the gateway is stopping).
    pub fn drain(&self) {
        self.draining.send_replace(true);
    }

    /// Completes once the gateway is draining.
    pub fn draining(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut draining = self.draining.subscribe();
        async move {
            // An error means the sender is gone, which it never is while `self` lives.
            if draining.wait_for(|draining| *draining).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Completes when no identified connection is left.
    pub async fn all_closed(&self) {
        let mut total = self.total.subscribe();
        let _ = total.wait_for(|total| *total == 0).await;
    }
}

/// One identified connection; uncounted when dropped.
pub struct ConnectionSlot {
    total: Arc<watch::Sender<usize>>,
    _slot: Slot,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.total.send_modify(|total| *total -= 1);
        metrics::gauge!("astral_ws_connections").decrement(1.0);
    }
}

/// One connection that has not identified yet; uncounted when dropped (it identified, or
/// it closed).
pub struct UnidentifiedSlot {
    _slot: Slot,
}

/// A place in one of the counts.
struct Slot {
    counts: Arc<Mutex<HashMap<String, usize>>>,
    key: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = lock(&self.counts);
        if let Some(count) = counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

fn lock(counts: &Mutex<HashMap<String, usize>>) -> MutexGuard<'_, HashMap<String, usize>> {
    counts.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unidentified_connections_are_capped_per_address_until_they_identify_or_close() {
        let counts = Connections::default();
        let first = counts.admit_unidentified("10.0.0.1", 2);
        let second = counts.admit_unidentified("10.0.0.1", 2);
        assert!(first.is_some() && second.is_some());
        assert!(counts.admit_unidentified("10.0.0.1", 2).is_none());
        assert!(counts.admit_unidentified("10.0.0.2", 2).is_some());
        drop(first);
        assert!(counts.admit_unidentified("10.0.0.1", 2).is_some());
        assert_eq!(
            counts.total(),
            0,
            "none of them is an identified connection"
        );
    }

    #[tokio::test]
    async fn a_draining_gateway_learns_when_its_last_connection_closes() {
        let connections = Connections::default();
        let alice = connections.admit("alice");
        let bob = connections.admit("bob");
        let all_closed = tokio::spawn({
            let connections = connections.clone();
            async move { connections.all_closed().await }
        });
        drop(alice);
        assert_eq!(connections.total(), 1);
        assert!(!all_closed.is_finished());
        drop(bob);
        tokio::time::timeout(std::time::Duration::from_secs(5), all_closed)
            .await
            .expect("told when the last one closed")
            .unwrap();
    }
}
