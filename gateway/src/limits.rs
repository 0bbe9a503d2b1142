//! A WebSocket connection's frame budget: a token bucket (refuse, then close a connection
//! that keeps pushing). Per-user budgets of the API's calls are counted by the services that
//! own them (`astral_common::ratelimit`).

use std::time::Duration;
use tokio::time::Instant;

/// Up to `burst` at once, earning back `per_second`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    burst: f64,
    per_second: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl TokenBucket {
    pub fn new(burst: f64, per_second: f64) -> Self {
        Self {
            burst,
            per_second,
            tokens: burst,
            last: None,
        }
    }

    /// Takes one token, or says how long until one is earned.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / self.per_second,
            ))
        }
    }

    fn refill(&mut self, now: Instant) {
        if let Some(last) = self.last {
            self.tokens = (self.tokens + now.duration_since(last).as_secs_f64() * self.per_second)
                .min(self.burst);
        }
        self.last = Some(now);
    }
}

/// Refused frames in a row before the connection is closed.
const REFUSALS_BEFORE_CLOSE: u32 = 60;

#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    Yes,
    /// Answer an error frame and drop this frame.
    Refuse,
    /// Close the connection.
    Close,
}

/// A WebSocket connection's frames: 60 at once, 20 a second after that.
pub struct FrameRate {
    bucket: TokenBucket,
    refusals: u32,
}

impl Default for FrameRate {
    fn default() -> Self {
        Self {
            bucket: TokenBucket::new(60.0, 20.0),
            refusals: 0,
        }
    }
}

impl FrameRate {
    pub fn admit(&mut self, now: Instant) -> Admit {
        if self.bucket.take(now).is_ok() {
            self.refusals = 0;
            return Admit::Yes;
        }
        self.refusals += 1;
        if self.refusals >= REFUSALS_BEFORE_CLOSE {
            Admit::Close
        } else {
            Admit::Refuse
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_frames_are_refused_then_the_connection_closes() {
        let mut rate = FrameRate::default();
        let start = Instant::now();
        for _ in 0..60 {
            assert_eq!(rate.admit(start), Admit::Yes);
        }
        for _ in 0..59 {
            assert_eq!(rate.admit(start), Admit::Refuse);
        }
        assert_eq!(rate.admit(start), Admit::Close);
    }

    #[test]
    fn the_budget_refills_over_time() {
        let mut bucket = TokenBucket::new(2.0, 10.0);
        let start = Instant::now();
        assert!(bucket.take(start).is_ok() && bucket.take(start).is_ok());
        let wait = bucket.take(start).unwrap_err();
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        assert!(bucket.take(start + Duration::from_millis(100)).is_ok());
    }
}
