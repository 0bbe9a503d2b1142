//! Query parameters, read strictly: anything malformed is a 400.

use crate::error::{ApiError, ApiResult};

/// A whole-number query parameter, if present; anything else is a 400.
pub fn number(
    query: &std::collections::HashMap<String, String>,
    name: &str,
) -> ApiResult<Option<i64>> {
    query
        .get(name)
        .map(|text| {
            text.parse::<i64>()
                .map_err(|_| ApiError::invalid(format!("{name} must be a whole number")))
        })
        .transpose()
}
