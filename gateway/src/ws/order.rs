//! Message events of a subscribed chat, delivered in `version` order with none missing and
//! none twice. Every change to a chat's messages takes the chat's next number, so the
//! versions a connection receives should follow each other; the bus may still deliver them
//! out of order (two replicas, an outbox sweeping up after a crash) or not at all (a NATS
//! outage). An event that comes early waits; if the one before it has not come within
//! [`GAP_WAIT`], the connection fetches the changes it lacks (`after=`) and delivers those
//! first. Events of other kinds, and of chats not subscribed, pass through as they come.

use crate::delivery::Delivery;
use astral_proto::events::{Event, MessageEvent, event::Kind};
use astral_proto::messaging::Message;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How long an early event waits for the ones before it before they are fetched.
pub const GAP_WAIT: Duration = Duration::from_millis(300);
/// Early events held per chat; past this the missing ones are fetched at once.
const MAX_WAITING: usize = 256;
/// Fetches tried (each [`GAP_WAIT`] longer after the last) before a gap is given up.
const FETCH_ATTEMPTS: u32 = 3;

/// The order of the connection's subscribed chats.
#[derive(Default)]
pub struct Ordering {
    chats: HashMap<String, Cursor>,
}

struct Cursor {
    /// The highest version delivered (or known to the client when it subscribed).
    delivered: i64,
    /// Events that came early, by version.
    waiting: BTreeMap<i64, Arc<Delivery>>,
    /// When the missing versions are to be fetched, while some are missing.
    fetch_at: Option<Instant>,
    /// Fetches of the current gap that failed.
    failed_fetches: u32,
}

impl Ordering {
    /// Orders the chat's message events from after `version` (its last change when the
    /// connection subscribed: what the client can load with `after=`).
    pub fn track(&mut self, chat_id: &str, version: i64) {
        self.chats.insert(
            chat_id.to_owned(),
            Cursor {
                delivered: version,
                waiting: BTreeMap::new(),
                fetch_at: None,
                failed_fetches: 0,
            },
        );
    }

    pub fn forget(&mut self, chat_id: &str) {
        self.chats.remove(chat_id);
    }

    /// What to deliver now that `event` came, in order: nothing if it is early or old, the
    /// event and any that waited for it if it is next.
    pub fn accept(&mut self, event: Arc<Delivery>, now: Instant) -> Vec<Arc<Delivery>> {
        let Some((chat_id, version)) = message_version(&event) else {
            return vec![event];
        };
        let Some(cursor) = self.chats.get_mut(chat_id) else {
            return vec![event];
        };
        if version <= cursor.delivered {
            return Vec::new();
        }
        cursor.waiting.insert(version, event);
        let ready = cursor.release();
        if cursor.waiting.len() > MAX_WAITING {
            cursor.fetch_at = Some(now);
        } else if !cursor.waiting.is_empty() && cursor.fetch_at.is_none() {
            cursor.fetch_at = Some(now + GAP_WAIT);
        }
        ready
    }

    /// When the next fetch is due, if any chat is missing versions.
    pub fn next_fetch(&self) -> Option<Instant> {
        self.chats
            .values()
            .filter_map(|cursor| cursor.fetch_at)
            .min()
    }

    /// The chats whose missing versions are due to be fetched, with the version to fetch
    /// after.
    pub fn due(&self, now: Instant) -> Vec<(String, i64)> {
        self.chats
            .iter()
            .filter(|(_, cursor)| cursor.fetch_at.is_some_and(|at| at <= now))
            .map(|(chat_id, cursor)| (chat_id.clone(), cursor.delivered))
            .collect()
    }

    /// A fetch of the chat's missing versions failed: it is tried again a little later
    /// (`None`), up to [`FETCH_ATTEMPTS`] times; then the gap is given up and what waited is
    /// delivered as it is (the client is to catch up with `after=`).
    pub fn fetch_failed(&mut self, chat_id: &str, now: Instant) -> Option<Vec<Arc<Delivery>>> {
        let cursor = self.chats.get_mut(chat_id)?;
        cursor.failed_fetches += 1;
        if cursor.failed_fetches < FETCH_ATTEMPTS {
            cursor.fetch_at = Some(now + GAP_WAIT * (cursor.failed_fetches + 1));
            return None;
        }
        Some(self.filled(chat_id, Vec::new(), true))
    }

    /// What to deliver now that the changes after the delivered version were fetched (a page
    /// in `version` order; `complete` when it reached the chat's newest change, or the rest
    /// is given up): each message as its event, then whatever waited and now follows.
    pub fn filled(
        &mut self,
        chat_id: &str,
        fetched: Vec<Message>,
        complete: bool,
    ) -> Vec<Arc<Delivery>> {
        let Some(cursor) = self.chats.get_mut(chat_id) else {
            return Vec::new();
        };
        let since = cursor.delivered;
        let mut ready = Vec::new();
        for message in fetched {
            if message.version <= cursor.delivered {
                continue;
            }
            cursor.delivered = message.version;
            ready.push(as_event(message, since));
        }
        if complete {
            // Nothing is missing below the newest change: what waits is newer still.
            if let Some(first) = cursor.waiting.keys().next() {
                cursor.delivered = cursor.delivered.max(first - 1);
            }
        }
        cursor
            .waiting
            .retain(|version, _| *version > cursor.delivered);
        ready.extend(cursor.release());
        cursor.failed_fetches = 0;
        cursor.fetch_at = (!cursor.waiting.is_empty()).then(|| Instant::now() + GAP_WAIT);
        ready
    }
}

impl Cursor {
    /// Takes the waiting events that follow the delivered version without a gap.
    fn release(&mut self) -> Vec<Arc<Delivery>> {
        let mut ready = Vec::new();
        while let Some(entry) = self.waiting.first_entry() {
            if *entry.key() != self.delivered + 1 {
                break;
            }
            self.delivered += 1;
            ready.push(entry.remove());
        }
        if self.waiting.is_empty() {
            self.fetch_at = None;
        }
        ready
    }
}

/// The chat and version of a message event.
fn message_version(delivery: &Delivery) -> Option<(&str, i64)> {
    let message = match delivery.event.kind.as_ref()? {
        Kind::MessageCreated(e) | Kind::MessageUpdated(e) | Kind::MessageDeleted(e) => {
            e.message.as_ref()?
        }
        _ => return None,
    };
    Some((message.chat_id.as_str(), message.version))
}

/// A fetched change as the event that would have announced it: created if the message is
/// newer than what the client had before (`since`), deleted if it is a tombstone, updated
/// otherwise (rendered for this connection alone).
fn as_event(message: Message, since: i64) -> Arc<Delivery> {
    let id = format!("{}:{}", message.chat_id, message.version);
    let (deleted, created) = (message.deleted, message.seq > since);
    let event = MessageEvent {
        message: Some(message),
    };
    let kind = if deleted {
        Kind::MessageDeleted(event)
    } else if created {
        Kind::MessageCreated(event)
    } else {
        Kind::MessageUpdated(event)
    };
    Arc::new(Delivery::new(Event {
        id,
        occurred_at_ms: astral_common::time::now_ms(),
        kind: Some(kind),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(seq: i64, version: i64) -> Message {
        Message {
            id: seq.to_string(),
            chat_id: "c".into(),
            seq,
            version,
            ..Message::default()
        }
    }

    fn created(version: i64) -> Arc<Delivery> {
        Arc::new(Delivery::new(Event {
            id: format!("e{version}"),
            occurred_at_ms: 0,
            kind: Some(Kind::MessageCreated(MessageEvent {
                message: Some(message(version, version)),
            })),
        }))
    }

    fn versions(events: &[Arc<Delivery>]) -> Vec<i64> {
        events
            .iter()
            .map(|event| message_version(event).unwrap().1)
            .collect()
    }

    #[test]
    fn early_events_wait_for_the_one_before_them() {
        let mut order = Ordering::default();
        order.track("c", 10);
        let now = Instant::now();
        assert!(versions(&order.accept(created(10), now)).is_empty(), "old");
        assert_eq!(versions(&order.accept(created(11), now)), [11]);
        assert!(order.accept(created(13), now).is_empty(), "early");
        assert!(order.accept(created(14), now).is_empty(), "early");
        assert_eq!(order.next_fetch(), Some(now + GAP_WAIT));
        assert_eq!(versions(&order.accept(created(12), now)), [12, 13, 14]);
        assert_eq!(order.next_fetch(), None, "nothing missing");
        assert!(order.accept(created(13), now).is_empty(), "twice");
    }

    #[test]
    fn a_gap_that_stays_is_fetched_and_filled_in_order() {
        let mut order = Ordering::default();
        order.track("c", 5);
        let now = Instant::now();
        assert!(order.accept(created(9), now).is_empty());
        assert!(order.due(now).is_empty(), "not yet");
        assert_eq!(order.due(now + GAP_WAIT), [("c".to_owned(), 5)]);
        // 6 was created, 7 edited message 4, 8 deleted message 6 (so 6 shows as version 8).
        let mut edited = message(4, 7);
        edited.content = "edited".into();
        let mut deleted = message(6, 8);
        deleted.deleted = true;
        let filled = order.filled("c", vec![edited, deleted, message(9, 9)], true);
        assert_eq!(versions(&filled), [7, 8, 9]);
        assert!(matches!(
            filled[0].event.kind,
            Some(Kind::MessageUpdated(_))
        ));
        assert!(matches!(
            filled[1].event.kind,
            Some(Kind::MessageDeleted(_))
        ));
        assert!(matches!(
            filled[2].event.kind,
            Some(Kind::MessageCreated(_))
        ));
        assert_eq!(order.next_fetch(), None);
        assert!(
            order.accept(created(9), now).is_empty(),
            "the live copy is dropped"
        );
        assert_eq!(versions(&order.accept(created(10), now)), [10]);
    }

    #[test]
    fn a_fetch_that_keeps_failing_delivers_what_waited() {
        let mut order = Ordering::default();
        order.track("c", 1);
        let now = Instant::now();
        assert!(order.accept(created(3), now).is_empty());
        assert!(order.fetch_failed("c", now).is_none(), "tried again");
        assert!(order.due(now + GAP_WAIT).is_empty(), "a little later");
        assert_eq!(order.due(now + GAP_WAIT * 2).len(), 1);
        assert!(order.fetch_failed("c", now).is_none(), "and again");
        assert_eq!(versions(&order.fetch_failed("c", now).unwrap()), [3]);
        assert_eq!(versions(&order.accept(created(4), now)), [4]);
    }

    #[test]
    fn too_many_early_events_are_fetched_at_once_and_other_kinds_pass() {
        let mut order = Ordering::default();
        order.track("c", 0);
        let now = Instant::now();
        for version in 2..(MAX_WAITING as i64 + 2) {
            assert!(order.accept(created(version), now).is_empty());
        }
        assert!(order.due(now).is_empty(), "the wait goes on");
        order.accept(created(MAX_WAITING as i64 + 2), now);
        assert_eq!(order.due(now), [("c".to_owned(), 0)], "too many: fetch now");
        let typing = Arc::new(Delivery::new(Event {
            id: "t".into(),
            occurred_at_ms: 0,
            kind: Some(Kind::TypingStarted(Default::default())),
        }));
        assert_eq!(order.accept(typing, now).len(), 1);
        let mut other = Ordering::default();
        assert_eq!(
            versions(&other.accept(created(7), now)),
            [7],
            "not subscribed"
        );
    }
}
