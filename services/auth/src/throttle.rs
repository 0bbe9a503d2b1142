//! Login throttling: how many failed logins a username, or a client address, may have in a
//! minute before it must wait.

/// A budget of failures in a sliding window.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub failures: i64,
    pub window_ms: i64,
}

/// Failures one username may have per minute: guessing one person's password is slow.
pub const PER_USERNAME: Limit = Limit {
    failures: 5,
    window_ms: 60_000,
};
/// Failures one client address may have per minute, across usernames (looser: several
/// people may share an address).
pub const PER_ADDRESS: Limit = Limit {
    failures: 20,
    window_ms: 60_000,
};

/// Seconds to wait, if `count` failures (the oldest at `oldest_ms`) used up the budget.
pub fn retry_after_s(limit: Limit, count: i64, oldest_ms: Option<i64>, now_ms: i64) -> Option<u64> {
    if count < limit.failures {
        return None;
    }
    let frees_at = oldest_ms.unwrap_or(now_ms) + limit.window_ms;
    let wait_ms = (frees_at - now_ms).max(1000);
    Some(u64::try_from((wait_ms + 999) / 1000).unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_allows_failures_up_to_the_limit() {
        assert_eq!(retry_after_s(PER_USERNAME, 4, Some(0), 1000), None);
    }

    #[test]
    fn past_the_limit_the_wait_is_until_the_oldest_failure_leaves_the_window() {
        assert_eq!(
            retry_after_s(PER_USERNAME, 5, Some(10_000), 40_000),
            Some(30)
        );
        assert_eq!(
            retry_after_s(PER_USERNAME, 5, Some(10_000), 69_900),
            Some(1)
        );
    }
}
