//! Searching your messages.

use crate::error::{ApiError, ApiResult};
use crate::json;
use crate::session::Caller;
use crate::state::Messaging;
use astral_proto::messaging as pb;
use axum::Json;
use axum::extract::{Query, State};
use serde_json::{Value, json};
use std::collections::HashMap;

/// `GET /api/search?q=…[&chat_id][&author_id][&before][&limit]`.
pub async fn search(
    State(Messaging(mut messaging)): State<Messaging>,
    caller: Caller,
    Query(mut query): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let request = pb::SearchMessagesRequest {
        q: query
            .remove("q")
            .ok_or_else(|| ApiError::invalid("q is required: say what to search for"))?,
        limit: super::query::number(&query, "limit")?,
        chat_id: query.remove("chat_id"),
        author_id: query.remove("author_id"),
        before: query.remove("before"),
    };
    let page = messaging
        .search_messages(caller.request(request))
        .await?
        .into_inner();
    let results: Vec<Value> = page
        .results
        .iter()
        .filter_map(|result| {
            let message = result.message.as_ref()?;
            let highlights: Vec<Value> = result
                .highlights
                .iter()
                .map(|h| json!({ "start": h.start, "end": h.end }))
                .collect();
            Some(json!({ "message": json::message(message), "highlights": highlights }))
        })
        .collect();
    Ok(Json(
        json!({ "results": results, "next_before": page.next_before }),
    ))
}
