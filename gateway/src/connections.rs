//! The gateway's WebSockets: how many it holds (identified ones per user, and how many of
//! those are idle; ones not identified yet per client address; each a slot that counts until
//! dropped), the presence changes this makes for the social service (`presence.rs` reports
//! them), whose turn it is to identify (`identify_queue.rs`), and the word to drain.

use crate::identify_queue::{IDENTIFYING_AT_ONCE, IdentifyQueue, Turn, WAITING_TO_IDENTIFY};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

/// The most WebSocket connections one user may hold on one gateway.
pub const MAX_CONNECTIONS_PER_USER: usize = 20;

/// A user's presence on this gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Online,
    Idle,
    /// No connection of theirs is left here.
    Offline,
}

impl Presence {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Idle => "idle",
            Self::Offline => "offline",
        }
    }
}

/// One user's identified connections on this gateway.
#[derive(Debug, Default, Clone, Copy)]
struct Open {
    connections: usize,
    idle: usize,
}

impl Open {
    /// Online while any connection is not idle.
    fn presence(self) -> Presence {
        match self.connections {
            0 => Presence::Offline,
            n if self.idle == n => Presence::Idle,
            _ => Presence::Online,
        }
    }
}

/// How long a user's last connection here may be gone before it is reported: a page that
/// reloads, or a phone that switches networks, comes back within it and their friends see
/// no offline-then-online flicker.
pub const OFFLINE_GRACE: Duration = Duration::from_secs(5);

/// Identified connections per user, and whose presence changed since the last report
/// (each user's latest change, and when it happened).
#[derive(Default)]
struct Users {
    open: HashMap<String, Open>,
    changed: HashMap<String, (Presence, Instant)>,
}

impl Users {
    /// Changes `user`'s counts, noting the change of presence it makes (if any).
    fn update(&mut self, user: &str, change: impl FnOnce(&mut Open)) -> bool {
        let open = self.open.entry(user.to_owned()).or_default();
        let before = open.presence();
        change(open);
        let after = open.presence();
        if after == Presence::Offline {
            self.open.remove(user);
        }
        if before == after {
            return false;
        }
        self.changed
            .insert(user.to_owned(), (after, Instant::now()));
        true
    }
}

/// When a change may be reported: at once, or once an offline has outlasted the grace.
fn due_at(presence: Presence, at: Instant) -> Instant {
    match presence {
        Presence::Offline => at + OFFLINE_GRACE,
        _ => at,
    }
}

/// Live connections on this gateway: identified ones per user, the others per address.
#[derive(Clone)]
pub struct Connections {
    users: Arc<Mutex<Users>>,
    /// Woken when a user's presence here changes.
    presence_changed: Arc<Notify>,
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
            presence_changed: Arc::default(),
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

    /// A slot for one more connection of `user` (online), unless they have the most allowed.
    pub fn admit(&self, user: &str) -> Option<ConnectionSlot> {
        let mut users = lock(&self.users);
        let open = users.open.get(user).map_or(0, |open| open.connections);
        if open >= MAX_CONNECTIONS_PER_USER {
            return None;
        }
        if users.update(user, |open| open.connections += 1) {
            self.presence_changed.notify_one();
        }
        self.total.send_modify(|total| *total += 1);
        metrics::gauge!("astral_ws_connections").increment(1.0);
        Some(ConnectionSlot {
            total: self.total.clone(),
            users: self.users.clone(),
            presence_changed: self.presence_changed.clone(),
            user: user.to_owned(),
            idle: false,
        })
    }

    /// Completes when a user's presence here changed since the last [`Self::take_changes`].
    pub async fn presence_changed(&self) {
        self.presence_changed.notified().await;
    }

    /// The presence changes due by `now`, each user's latest: an offline only once it has
    /// lasted [`OFFLINE_GRACE`] (a user back meanwhile is reported online, which changes
    /// nothing for their friends).
    pub fn take_changes(&self, now: Instant) -> Vec<(String, Presence)> {
        let mut users = lock(&self.users);
        let due: Vec<String> = users
            .changed
            .iter()
            .filter(|(_, (presence, at))| due_at(*presence, *at) <= now)
            .map(|(user, _)| user.clone())
            .collect();
        due.into_iter()
            .filter_map(|user| {
                let (presence, _) = users.changed.remove(&user)?;
                Some((user, presence))
            })
            .collect()
    }

    /// When the next change held back (an offline in its grace) falls due.
    pub fn next_change_due(&self) -> Option<Instant> {
        lock(&self.users)
            .changed
            .values()
            .map(|(presence, at)| due_at(*presence, *at))
            .min()
    }

    /// Puts back changes a report could not deliver (due at once), unless newer ones came
    /// meanwhile.
    pub fn restore_changes(&self, changes: Vec<(String, Presence)>) {
        let mut users = lock(&self.users);
        let long_ago = Instant::now()
            .checked_sub(OFFLINE_GRACE)
            .unwrap_or_else(Instant::now);
        for (user, presence) in changes {
            users.changed.entry(user).or_insert((presence, long_ago));
        }
    }

    /// Every user here with their presence, as changes (for a report of them all).
    pub fn note_everyone_changed(&self) {
        let mut users = lock(&self.users);
        let everyone: Vec<(String, Presence)> = users
            .open
            .iter()
            .map(|(user, open)| (user.clone(), open.presence()))
            .collect();
        let now = Instant::now();
        for (user, presence) in everyone {
            users.changed.entry(user).or_insert((presence, now));
        }
        self.presence_changed.notify_one();
    }

    /// How many users have an identified connection here.
    pub fn users(&self) -> usize {
        lock(&self.users).open.len()
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
    users: Arc<Mutex<Users>>,
    presence_changed: Arc<Notify>,
    user: String,
    idle: bool,
}

impl ConnectionSlot {
    /// The client says it is idle (no input for a while, or hidden), or back.
    pub fn set_idle(&mut self, idle: bool) {
        if self.idle == idle {
            return;
        }
        self.idle = idle;
        let changed = lock(&self.users).update(&self.user, |open| {
            if idle {
                open.idle += 1;
            } else {
                open.idle -= 1;
            }
        });
        if changed {
            self.presence_changed.notify_one();
        }
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let idle = self.idle;
        let changed = lock(&self.users).update(&self.user, |open| {
            open.connections -= 1;
            if idle {
                open.idle -= 1;
            }
        });
        if changed {
            self.presence_changed.notify_one();
        }
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

fn lock<T>(counts: &Mutex<T>) -> MutexGuard<'_, T> {
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

    /// Every change noted, offlines included (as if their grace were over).
    fn changes(connections: &Connections) -> Vec<(String, Presence)> {
        let mut changes = connections.take_changes(Instant::now() + OFFLINE_GRACE);
        changes.sort_by(|a, b| a.0.cmp(&b.0));
        changes
    }

    #[test]
    fn presence_changes_only_with_the_first_connection_the_last_one_and_all_idle() {
        let connections = Connections::default();
        let change = |user: &str, presence| vec![(user.to_owned(), presence)];
        let mut phone = connections.admit("alice").unwrap();
        assert_eq!(changes(&connections), change("alice", Presence::Online));
        let mut laptop = connections.admit("alice").unwrap();
        assert_eq!(changes(&connections), [], "still online");
        phone.set_idle(true);
        assert_eq!(changes(&connections), [], "the laptop is not idle");
        laptop.set_idle(true);
        laptop.set_idle(true);
        assert_eq!(changes(&connections), change("alice", Presence::Idle));
        phone.set_idle(false);
        assert_eq!(changes(&connections), change("alice", Presence::Online));
        drop(phone);
        assert_eq!(changes(&connections), change("alice", Presence::Idle));
        drop(laptop);
        assert_eq!(changes(&connections), change("alice", Presence::Offline));
        assert_eq!(connections.users(), 0);

        // Changes not yet taken fold into each user's latest; an undelivered report is put
        // back under anything newer.
        let bob = connections.admit("bob").unwrap();
        let carol = connections.admit("carol").unwrap();
        drop(bob);
        let taken = changes(&connections);
        assert_eq!(
            taken,
            [
                ("bob".to_owned(), Presence::Offline),
                ("carol".to_owned(), Presence::Online)
            ]
        );
        drop(carol);
        connections.restore_changes(taken);
        assert_eq!(
            changes(&connections),
            [
                ("bob".to_owned(), Presence::Offline),
                ("carol".to_owned(), Presence::Offline)
            ]
        );
        let _dave = connections.admit("dave").unwrap();
        let _ = changes(&connections);
        connections.note_everyone_changed();
        assert_eq!(changes(&connections), change("dave", Presence::Online));
    }

    #[test]
    fn a_user_back_within_the_grace_is_never_reported_gone() {
        let connections = Connections::default();
        let tab = connections.admit("alice").unwrap();
        let _ = changes(&connections);
        drop(tab);
        let gone_at = connections.next_change_due().expect("the offline is held");
        assert!(gone_at > Instant::now() + OFFLINE_GRACE / 2);
        assert_eq!(connections.take_changes(Instant::now()), [], "not yet");
        // The page reloads: the new connection's online replaces the held offline.
        let _reloaded = connections.admit("alice").unwrap();
        assert_eq!(
            connections.take_changes(Instant::now()),
            [("alice".to_owned(), Presence::Online)]
        );
        assert_eq!(connections.next_change_due(), None);
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
