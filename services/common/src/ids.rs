//! Ids: 64-bit, time-ordered, generated without coordination, shown as 19-digit strings.
//!
//! Layout: milliseconds since the Unix epoch (41 bits) | node (10 bits, leased per process
//! from the service's database: [`NodeLease`]; random until then) | sequence (12 bits). Every id made between 1977 and 2039 has exactly 19 decimal digits, so
//! ordering ids as strings (as the direct chat id `<a>_<b>` does) agrees with ordering them
//! as numbers.

mod lease;

pub use lease::{LEASE, NodeLease, claim, renew};

use std::sync::Mutex;
use std::sync::OnceLock;

/// How many nodes there are (10 bits).
const NODES: i64 = 1 << 10;

struct Generator {
    node: i64,
    last_ms: i64,
    sequence: i64,
}

static GENERATOR: OnceLock<Mutex<Generator>> = OnceLock::new();

fn generator() -> std::sync::MutexGuard<'static, Generator> {
    GENERATOR
        .get_or_init(|| {
            Mutex::new(Generator {
                node: rand::random::<i64>() & (NODES - 1),
                last_ms: 0,
                sequence: 0,
            })
        })
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Makes this process's ids with `node` from now on (its lease, [`NodeLease`]).
fn set_node(node: i64) {
    generator().node = node & (NODES - 1);
}

/// A new id, unique within this process, and across the processes that share a database
/// once each holds its node's lease ([`NodeLease`]).
pub fn new_id() -> i64 {
    let mut state = generator();
    let mut now = crate::time::now_ms();
    if now <= state.last_ms {
        // Same millisecond (or the clock stepped back): keep counting from the last one.
        now = state.last_ms;
        state.sequence += 1;
        if state.sequence > 0xfff {
            now += 1;
            state.sequence = 0;
        }
    } else {
        state.sequence = 0;
    }
    state.last_ms = now;
    (now << 22) | (state.node << 12) | state.sequence
}

/// A new id as the string the outside world sees.
pub fn new_id_string() -> String {
    new_id().to_string()
}

/// Parses an id from the outside world; `None` for anything that is not one.
pub fn parse_id(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_increasing_and_nineteen_digits() {
        let ids: Vec<i64> = (0..10_000).map(|_| new_id()).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(ids.iter().all(|id| id.to_string().len() == 19));
    }

    #[test]
    fn parse_id_refuses_what_is_not_an_id() {
        assert_eq!(parse_id("123"), Some(123));
        assert_eq!(parse_id(""), None);
        assert_eq!(parse_id("-1"), None);
        assert_eq!(parse_id("1e5"), None);
        assert_eq!(parse_id("99999999999999999999"), None);
    }
}
