//! Typing indicators: at most one `typing.started` per user per chat every 3 seconds.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The least time between two typing events of one user in one chat.
pub const TYPING_GAP: Duration = Duration::from_secs(3);

/// Remembers when each (user, chat) last typed, forgetting entries older than the gap.
#[derive(Default)]
pub struct TypingLimiter {
    last: Mutex<HashMap<(i64, String), Instant>>,
}

impl TypingLimiter {
    /// Whether this typing signal may be published now.
    pub fn allow(&self, user: i64, chat_id: &str) -> bool {
        self.allow_at(user, chat_id, Instant::now())
    }

    fn allow_at(&self, user: i64, chat_id: &str, now: Instant) -> bool {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.len() > 10_000 {
            last.retain(|_, at| now.duration_since(*at) < TYPING_GAP);
        }
        let key = (user, chat_id.to_owned());
        match last.get(&key) {
            Some(at) if now.duration_since(*at) < TYPING_GAP => false,
            _ => {
                last.insert(key, now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typing_is_published_at_most_every_three_seconds_per_user_and_chat() {
        let limiter = TypingLimiter::default();
        let start = Instant::now();
        assert!(limiter.allow_at(1, "c", start));
        assert!(!limiter.allow_at(1, "c", start + Duration::from_secs(2)));
        assert!(limiter.allow_at(2, "c", start + Duration::from_secs(2)));
        assert!(limiter.allow_at(1, "d", start + Duration::from_secs(2)));
        assert!(limiter.allow_at(1, "c", start + TYPING_GAP));
    }
}
