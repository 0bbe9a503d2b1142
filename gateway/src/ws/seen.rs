//! The ids of the events a connection received lately, to deliver each at most once.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

/// How many recent event ids a connection remembers to drop duplicates.
const SEEN_EVENTS: usize = 1024;

/// The ids of the events a connection received lately (shared with the event: no copy).
#[derive(Default)]
pub struct Seen {
    order: VecDeque<Arc<str>>,
    ids: HashSet<Arc<str>>,
}

impl Seen {
    /// True the first time an id is seen (within the last `SEEN_EVENTS`).
    pub fn first_time(&mut self, id: &Arc<str>) -> bool {
        if self.ids.contains(id) {
            return false;
        }
        if self.order.len() == SEEN_EVENTS
            && let Some(oldest) = self.order.pop_front()
        {
            self.ids.remove(&oldest);
        }
        self.order.push_back(id.clone());
        self.ids.insert(id.clone());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_arriving_twice_is_delivered_once() {
        let mut seen = Seen::default();
        assert!(seen.first_time(&"1".into()));
        assert!(!seen.first_time(&"1".into()));
        assert!(seen.first_time(&"2".into()));
    }

    #[test]
    fn the_memory_of_events_is_bounded() {
        let mut seen = Seen::default();
        for i in 0..(SEEN_EVENTS + 10) {
            seen.first_time(&i.to_string().into());
        }
        assert_eq!(seen.ids.len(), SEEN_EVENTS);
        assert!(seen.first_time(&"0".into()));
    }
}
