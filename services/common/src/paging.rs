//! Page sizes: the one check of a caller's `limit`, made by the service that pages.

use crate::Error;

/// How many items a page of at most `max` holds: `default` when the caller does not say,
/// else what they ask if it is between 1 and `max` (anything else is `InvalidArgument`).
pub fn page_size(limit: Option<i64>, default: i64, max: i64) -> Result<i64, Error> {
    match limit {
        None => Ok(default),
        Some(limit) if (1..=max).contains(&limit) => Ok(limit),
        Some(_) => Err(Error::invalid(format!("limit is between 1 and {max}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_the_default_or_what_was_asked_within_bounds() {
        assert_eq!(page_size(None, 50, 100).ok(), Some(50));
        assert_eq!(page_size(Some(1), 50, 100).ok(), Some(1));
        assert_eq!(page_size(Some(100), 50, 100).ok(), Some(100));
        for refused in [0, -1, 101, i64::MAX, i64::MIN] {
            assert!(page_size(Some(refused), 50, 100).is_err(), "{refused}");
        }
    }
}
