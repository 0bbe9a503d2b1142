//! Throttles on the doors anyone can knock on: how many logins a username may try from one
//! address, how many an address may try across usernames, how many accounts an address may
//! create. Attempts are reserved in the auth database before the password work (see
//! `Store::reserve_attempt`), so they hold under concurrency and across replicas.

/// A budget of attempts in a sliding window; spent, the key waits, longer each time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub attempts: i64,
    pub window_ms: i64,
    /// The longest wait the back-off reaches (the window itself: no back-off).
    pub longest_block_ms: i64,
}

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;

/// Failed logins for one username from one address: guessing a password is slow, and the
/// owner elsewhere is never locked out by it.
pub const PER_NAME_AND_ADDRESS: Limit = Limit {
    attempts: 5,
    window_ms: MINUTE_MS,
    longest_block_ms: HOUR_MS,
};

/// Failed logins from one address across usernames (looser: several people may share an
/// address behind a NAT).
pub const PER_ADDRESS: Limit = Limit {
    attempts: 20,
    window_ms: MINUTE_MS,
    longest_block_ms: HOUR_MS,
};

/// Accounts one address may create in ten minutes, by default
/// (`ASTRAL_REGISTRATIONS_PER_10_MIN`): a class or an office behind one NAT can sign up at
/// once; a script creating accounts by the thousand cannot.
pub const REGISTRATIONS_PER_10_MIN: i64 = 100;

pub fn registrations(per_10_min: i64) -> Limit {
    Limit {
        attempts: per_10_min.max(1),
        window_ms: 10 * MINUTE_MS,
        longest_block_ms: 10 * MINUTE_MS,
    }
}

/// A key's back-off is forgotten after this long without a lockout.
pub const FORGET_LOCKOUTS_AFTER_MS: i64 = 24 * HOUR_MS;

/// How long a key that just spent its budget for the `lockouts`-th time in a row waits:
/// the window, doubled each time, up to the limit's longest block.
pub fn block_ms(limit: Limit, lockouts: i64) -> i64 {
    let doublings = u32::try_from((lockouts - 1).clamp(0, 20)).unwrap_or(20);
    limit
        .window_ms
        .saturating_mul(1 << doublings)
        .min(limit.longest_block_ms.max(limit.window_ms))
}

/// Whole seconds to wait for `ms` milliseconds, at least one.
pub fn seconds(ms: i64) -> u64 {
    u64::try_from((ms.max(1) + 999) / 1000).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_with_each_lockout_up_to_the_longest_block() {
        let waits: Vec<i64> = (1..=8)
            .map(|n| block_ms(PER_NAME_AND_ADDRESS, n) / 1000)
            .collect();
        assert_eq!(waits, [60, 120, 240, 480, 960, 1920, 3600, 3600]);
    }

    #[test]
    fn registrations_do_not_back_off_past_their_window() {
        assert_eq!(block_ms(registrations(30), 5), 10 * MINUTE_MS);
    }

    #[test]
    fn waits_are_whole_seconds_rounded_up() {
        assert_eq!(seconds(1), 1);
        assert_eq!(seconds(59_001), 60);
        assert_eq!(seconds(-5), 1);
    }
}
