//! Every benchmark message names itself in its nonce: `<sender>.<sequence>.<due µs>`, the
//! due time counted from the run's start. A receiver thus knows, from the event alone, whom
//! it came from, which message it was (to count losses and copies) and when it was due.

use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nonce {
    pub sender: u32,
    pub seq: u32,
    /// When the message was due, in µs since the run's start.
    pub due_us: u64,
}

impl Nonce {
    pub fn encode(&self) -> String {
        format!("{}.{}.{}", self.sender, self.seq, self.due_us)
    }

    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split('.');
        let nonce = Self {
            sender: parts.next()?.parse().ok()?,
            seq: parts.next()?.parse().ok()?,
            due_us: parts.next()?.parse().ok()?,
        };
        parts.next().is_none().then_some(nonce)
    }
}

/// The run's clock: times in µs since it started, and the window that is measured.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub start: Instant,
    /// Messages due from here on count (the warm-up ends).
    pub measure_from_us: u64,
    /// No message is due from here on.
    pub end_us: u64,
}

impl Window {
    pub fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    pub fn at(&self, us: u64) -> tokio::time::Instant {
        (self.start + std::time::Duration::from_micros(us)).into()
    }

    /// Whether a message due at `due_us` is measured (not warm-up).
    pub fn measures(&self, due_us: u64) -> bool {
        (self.measure_from_us..self.end_us).contains(&due_us)
    }

    pub fn measured_seconds(&self) -> f64 {
        (self.end_us - self.measure_from_us) as f64 / 1e6
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_reads_back_as_written_and_a_foreign_one_does_not_read() {
        let nonce = Nonce {
            sender: 12,
            seq: 345,
            due_us: 6_789_000,
        };
        assert_eq!(Nonce::parse(&nonce.encode()), Some(nonce));
        assert_eq!(Nonce::parse("someone else's"), None);
        assert_eq!(Nonce::parse("1.2.3.4"), None);
    }
}
