//! How many WebSockets the gateway holds: identified ones per user, and ones not identified
//! yet per client address. Each is a slot that counts until dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The most WebSocket connections one user may hold on one gateway.
pub const MAX_CONNECTIONS_PER_USER: usize = 20;

/// Live connections on this gateway: identified ones per user, the others per address.
#[derive(Default, Clone)]
pub struct ConnectionCounts {
    users: Arc<Mutex<HashMap<String, usize>>>,
    unidentified: Arc<Mutex<HashMap<String, usize>>>,
}

impl ConnectionCounts {
    /// A slot for one more connection of `user`, unless they have the most allowed.
    pub fn admit(&self, user: &str) -> Option<ConnectionSlot> {
        let mut users = lock(&self.users);
        let count = users.entry(user.to_owned()).or_default();
        if *count >= MAX_CONNECTIONS_PER_USER {
            return None;
        }
        *count += 1;
        metrics::gauge!("astral_ws_connections").increment(1.0);
        Some(ConnectionSlot {
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
        lock(&self.users).values().sum()
    }
}

/// One identified connection; uncounted when dropped.
pub struct ConnectionSlot {
    _slot: Slot,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
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
        let counts = ConnectionCounts::default();
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
}
