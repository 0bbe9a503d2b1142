//! Shared subscriptions: one event-bus subscription per subject for the whole gateway,
//! however many of its connections need it, dropped when the last one leaves. Each payload
//! is decoded and rendered once (`delivery.rs`) and the same [`Delivery`] queued for every
//! listener. Each connection receives from one bounded queue (`mailbox.rs`); a connection
//! that stops reading fills it and is told to go (it catches up with `after=` when it
//! reconnects), so memory stays bounded.

use crate::delivery::Delivery;
use crate::mailbox::Mailbox;
use astral_common::EventBus;
use bytes::Bytes;
use futures::StreamExt as _;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// How many events may wait for one connection before it counts as too slow.
pub const QUEUE: usize = 256;

/// The gateway's subjects and who listens to each.
#[derive(Clone)]
pub struct Hub {
    bus: EventBus,
    topics: Arc<Mutex<HashMap<String, Topic>>>,
    next_listener: Arc<AtomicU64>,
    recent: Arc<Mutex<Recent>>,
}

/// How many decoded events are kept (times two generations) for their copies on other
/// subjects: a message arrives on its chat and on each member's subject within moments.
const RECENT: usize = 1024;

/// Events decoded lately, by payload, so the copies of one event on several subjects are
/// decoded and rendered once. Two generations: when the newer fills up, the older goes.
#[derive(Default)]
struct Recent {
    newer: HashMap<Bytes, Arc<Delivery>>,
    older: HashMap<Bytes, Arc<Delivery>>,
}

impl Recent {
    fn decode(recent: &Mutex<Self>, payload: Bytes) -> Option<Arc<Delivery>> {
        let lock = || {
            recent
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        {
            let recent = lock();
            if let Some(known) = recent
                .newer
                .get(&payload)
                .or_else(|| recent.older.get(&payload))
            {
                return Some(known.clone());
            }
        }
        let delivery = Delivery::decode(payload.clone())?;
        let mut recent = lock();
        if recent.newer.len() >= RECENT {
            recent.older = std::mem::take(&mut recent.newer);
        }
        recent.newer.insert(payload, delivery.clone());
        Some(delivery)
    }
}

struct Topic {
    listeners: HashMap<u64, Listener>,
    /// The task reading the bus subscription; `None` while it is being set up.
    reader: Option<tokio::task::JoinHandle<()>>,
}

/// A connection's queue, as the hub fills it.
pub type Queue = Arc<Mailbox<Arc<Delivery>>>;

type Listener = Queue;

impl Hub {
    pub fn new(bus: EventBus) -> Self {
        Self {
            bus,
            topics: Arc::default(),
            next_listener: Arc::default(),
            recent: Arc::default(),
        }
    }

    /// A new listener: what it holds to join subjects (and its queue of events).
    pub fn listener(&self) -> Subscriptions {
        let id = self.next_listener.fetch_add(1, Ordering::Relaxed);
        Subscriptions {
            hub: self.clone(),
            id,
            listener: Arc::new(Mailbox::new(QUEUE)),
            subjects: HashSet::new(),
        }
    }

    /// Counts the bus's (re)connections: a change means events published meanwhile may
    /// never have arrived.
    pub fn bus_connections(&self) -> tokio::sync::watch::Receiver<u64> {
        self.bus.connections()
    }

    /// How many subjects this gateway is subscribed to on the bus (for tests and metrics).
    pub fn subject_count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Topic>> {
        self.topics
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn join(&self, subject: &str, id: u64, listener: &Listener) -> anyhow::Result<()> {
        {
            let mut topics = self.lock();
            if let Some(topic) = topics.get_mut(subject) {
                topic.listeners.insert(id, listener.clone());
                return Ok(());
            }
            let listeners = HashMap::from([(id, listener.clone())]);
            topics.insert(
                subject.to_owned(),
                Topic {
                    listeners,
                    reader: None,
                },
            );
        }
        let subscription = match self.bus.subscribe(subject.to_owned()).await {
            Ok(subscription) => subscription,
            Err(error) => {
                self.lock().remove(subject);
                return Err(error);
            }
        };
        let reader = tokio::spawn(fan_out(
            self.topics.clone(),
            self.recent.clone(),
            subject.to_owned(),
            subscription,
        ));
        let mut topics = self.lock();
        match topics.get_mut(subject) {
            Some(topic) if topic.reader.is_none() => topic.reader = Some(reader),
            // Everyone left while the subscription was being made.
            _ => reader.abort(),
        }
        Ok(())
    }

    fn leave(&self, subject: &str, id: u64) {
        let mut topics = self.lock();
        let Some(topic) = topics.get_mut(subject) else {
            return;
        };
        topic.listeners.remove(&id);
        if topic.listeners.is_empty()
            && let Some(topic) = topics.remove(subject)
            && let Some(reader) = topic.reader
        {
            // Dropping the bus subscription (inside the task) unsubscribes.
            reader.abort();
        }
    }
}

/// Decodes each payload of one subject once (once for all subjects, if another one brought
/// it moments ago) and queues it for every listener; a full queue marks its listener as too
/// slow.
async fn fan_out(
    topics: Arc<Mutex<HashMap<String, Topic>>>,
    recent: Arc<Mutex<Recent>>,
    subject: String,
    mut subscription: astral_common::bus::Subscription,
) {
    while let Some(delivery) = subscription.next().await {
        metrics::counter!("astral_events_received_total").increment(1);
        let span =
            tracing::info_span!("event.fan_out", %subject, listeners = tracing::field::Empty);
        astral_common::telemetry::set_parent(&span, delivery.trace);
        let _entered = span.enter();
        let Some(event) = Recent::decode(&recent, delivery.payload) else {
            continue;
        };
        let listeners: Vec<Listener> = {
            let topics = topics
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            topics
                .get(&subject)
                .map(|topic| topic.listeners.values().cloned().collect())
                .unwrap_or_default()
        };
        span.record("listeners", listeners.len());
        for listener in listeners {
            listener.push(event.clone());
        }
    }
}

/// One connection's subjects; leaving them all when dropped.
pub struct Subscriptions {
    hub: Hub,
    id: u64,
    listener: Listener,
    subjects: HashSet<String>,
}

impl Subscriptions {
    pub async fn join(&mut self, subject: String) -> anyhow::Result<()> {
        if self.subjects.contains(&subject) {
            return Ok(());
        }
        self.hub.join(&subject, self.id, &self.listener).await?;
        self.subjects.insert(subject);
        Ok(())
    }

    pub fn leave(&mut self, subject: &str) {
        if self.subjects.remove(subject) {
            self.hub.leave(subject, self.id);
        }
    }

    pub fn contains(&self, subject: &str) -> bool {
        self.subjects.contains(subject)
    }

    /// The queue the events of these subjects arrive in; it also says when it overflowed
    /// because this connection is not reading.
    pub fn queue(&self) -> Queue {
        self.listener.clone()
    }
}

impl Drop for Subscriptions {
    fn drop(&mut self) {
        for subject in self.subjects.drain() {
            self.hub.leave(&subject, self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use astral_proto::events::{ChatDeleted, Event, event::Kind};
    use bytes::Bytes;
    use prost::Message as _;
    use std::time::Duration;

    const WAIT: Duration = Duration::from_secs(5);

    fn event(id: &str) -> Bytes {
        let kind = Kind::ChatDeleted(ChatDeleted {
            chat_id: "1".into(),
        });
        let event = Event {
            id: id.into(),
            occurred_at_ms: 0,
            kind: Some(kind),
        };
        event.encode_to_vec().into()
    }

    async fn next_id(queue: &Queue) -> String {
        let delivery = tokio::time::timeout(WAIT, queue.recv()).await.unwrap();
        delivery.id.to_string()
    }

    #[tokio::test]
    async fn one_bus_subscription_serves_every_listener_and_goes_with_the_last() {
        let bus = EventBus::local();
        let hub = Hub::new(bus.clone());
        let mut first = hub.listener();
        let mut second = hub.listener();
        first.join("chat.1".into()).await.unwrap();
        second.join("chat.1".into()).await.unwrap();
        second.join("user.2".into()).await.unwrap();
        assert_eq!(hub.subject_count(), 2);
        bus.publish("chat.1".into(), event("hi")).await.unwrap();
        assert_eq!(next_id(&first.queue()).await, "hi");
        assert_eq!(next_id(&second.queue()).await, "hi");
        first.leave("chat.1");
        assert_eq!(hub.subject_count(), 2, "second still listens to chat.1");
        drop(second);
        assert_eq!(hub.subject_count(), 0, "the last one out unsubscribes");
    }

    #[tokio::test]
    async fn every_listener_gets_the_same_rendered_event() {
        let bus = EventBus::local();
        let hub = Hub::new(bus.clone());
        let mut listeners = [hub.listener(), hub.listener()];
        for listener in &mut listeners {
            listener.join("user.1".into()).await.unwrap();
        }
        bus.publish("user.1".into(), event("e")).await.unwrap();
        let [first, second] = &listeners;
        let first = tokio::time::timeout(WAIT, first.queue().recv())
            .await
            .unwrap();
        let second = tokio::time::timeout(WAIT, second.queue().recv())
            .await
            .unwrap();
        assert!(Arc::ptr_eq(&first, &second), "decoded and rendered once");
    }

    #[tokio::test]
    async fn an_event_on_several_subjects_is_decoded_once_for_all() {
        let bus = EventBus::local();
        let hub = Hub::new(bus.clone());
        let mut on_chat = hub.listener();
        let mut on_user = hub.listener();
        on_chat.join("chat.1".into()).await.unwrap();
        on_user.join("user.2".into()).await.unwrap();
        let subjects = ["chat.1".to_owned(), "user.2".to_owned()];
        bus.publish_on(&subjects, event("e")).await.unwrap();
        let first = tokio::time::timeout(WAIT, on_chat.queue().recv())
            .await
            .unwrap();
        let second = tokio::time::timeout(WAIT, on_user.queue().recv())
            .await
            .unwrap();
        assert!(Arc::ptr_eq(&first, &second), "one decode for both subjects");
        bus.publish_on(&subjects, event("f")).await.unwrap();
        let third = tokio::time::timeout(WAIT, on_chat.queue().recv())
            .await
            .unwrap();
        assert_eq!(&*third.id, "f", "another payload is another event");
    }

    #[tokio::test]
    async fn a_listener_that_does_not_read_is_told_it_overflowed() {
        let bus = EventBus::local();
        let hub = Hub::new(bus.clone());
        let mut slow = hub.listener();
        slow.join("chat.1".into()).await.unwrap();
        let queue = slow.queue();
        for n in 0..=QUEUE {
            bus.publish("chat.1".into(), event(&n.to_string()))
                .await
                .unwrap();
        }
        tokio::time::timeout(WAIT, queue.overflowed())
            .await
            .expect("overflow signalled");
    }
}
