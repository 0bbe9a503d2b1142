//! Reading HTTP headers that hold lists.

use axum::http::HeaderMap;
use axum::http::header::AsHeaderName;

/// The items of a comma-separated list header, trimmed, across all its lines in order
/// (several lines of one header are one list); lines that are not text are skipped.
pub fn list_items(headers: &HeaderMap, name: impl AsHeaderName) -> impl Iterator<Item = &str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn a_list_is_read_across_lines_in_order_and_trimmed() {
        let mut headers = HeaderMap::new();
        headers.append("x-list", HeaderValue::from_static("a, b"));
        headers.append("x-list", HeaderValue::from_static(" c"));
        let items: Vec<&str> = list_items(&headers, "x-list").collect();
        assert_eq!(items, ["a", "b", "c"]);
        assert_eq!(list_items(&headers, "x-none").count(), 0);
    }
}
