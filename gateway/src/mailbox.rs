//! One connection's bounded queue of events. A lock around a `VecDeque` that holds no memory
//! while empty, and two wake-ups (an item arrived; the queue overflowed): about 130 bytes
//! per idle connection, where a tokio channel reserves a block of 32 slots (over 1.5 KiB)
//! from the start.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};
use tokio::sync::Notify;

/// Room an emptied queue keeps; the larger buffer of a burst is given back.
const KEEP: usize = 8;

/// A bounded queue with one receiver.
pub struct Mailbox<T> {
    items: Mutex<VecDeque<T>>,
    arrived: Notify,
    overflowed: Notify,
    capacity: usize,
}

impl<T> Mailbox<T> {
    pub fn new(capacity: usize) -> Self {
        Self {
            items: Mutex::new(VecDeque::new()),
            arrived: Notify::new(),
            overflowed: Notify::new(),
            capacity,
        }
    }

    /// Queues `item`; if the queue is full, drops it and tells the receiver it overflowed.
    pub fn push(&self, item: T) {
        let mut items = self.lock();
        if items.len() >= self.capacity {
            drop(items);
            self.overflowed.notify_one();
            return;
        }
        items.push_back(item);
        drop(items);
        self.arrived.notify_one();
    }

    /// The next item, once there is one. Cancel-safe: an item stays queued until taken.
    pub async fn recv(&self) -> T {
        loop {
            if let Some(item) = self.pop() {
                return item;
            }
            self.arrived.notified().await;
        }
    }

    /// Completes when an item could not be queued because the receiver is not taking them.
    pub async fn overflowed(&self) {
        self.overflowed.notified().await;
    }

    fn pop(&self) -> Option<T> {
        let mut items = self.lock();
        let item = items.pop_front();
        if items.is_empty() && items.capacity() > KEEP {
            *items = VecDeque::new();
        }
        item
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<T>> {
        self.items.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    const WAIT: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn items_come_out_in_order_and_a_waiting_receiver_is_woken() {
        let mailbox = Arc::new(Mailbox::new(4));
        mailbox.push(1);
        mailbox.push(2);
        assert_eq!(mailbox.recv().await, 1);
        assert_eq!(mailbox.recv().await, 2);
        let receiver = tokio::spawn({
            let mailbox = mailbox.clone();
            async move { mailbox.recv().await }
        });
        mailbox.push(3);
        assert_eq!(
            tokio::time::timeout(WAIT, receiver).await.unwrap().unwrap(),
            3
        );
    }

    #[tokio::test]
    async fn a_full_mailbox_drops_the_item_and_says_it_overflowed() {
        let mailbox = Mailbox::new(2);
        for item in 0..3 {
            mailbox.push(item);
        }
        tokio::time::timeout(WAIT, mailbox.overflowed())
            .await
            .expect("overflow signalled");
        assert_eq!(mailbox.recv().await, 0);
        assert_eq!(mailbox.recv().await, 1);
        assert!(mailbox.pop().is_none(), "the third was dropped");
    }

    #[test]
    fn an_emptied_mailbox_gives_back_a_bursts_memory() {
        let mailbox = Mailbox::new(256);
        for item in 0..100 {
            mailbox.push(item);
        }
        while mailbox.pop().is_some() {}
        assert_eq!(mailbox.lock().capacity(), 0);
    }
}
